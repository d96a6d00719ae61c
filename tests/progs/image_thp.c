/* SPDX-License-Identifier: MIT */
/*
 * image_thp - a dense anonymous mapping that neither starts nor ends on a
 * 2 MiB boundary, between two small read-only neighbours that lie inside
 * the 2 MiB blocks of its ends: what the restore loader fills in whole huge
 * pages before it maps the rest (src/loader/loader.c, map_wide); the
 * neighbours (128 KiB each) it fills through /proc/self/mem (fill_mem).
 *
 *   image_thp DIR        checkpoint into DIR (the original exits 0)
 *   crac restore DIR     the restored instance checks, then prints
 *       ok                  every page of the big mapping and of both
 *                           neighbours holds its pattern, the three
 *                           mappings are where and as they were
 *                           (/proc/self/maps), MADV_DONTNEED on the first
 *                           page of the big mapping gives zeros and leaves
 *                           the second intact, a forked child sees every
 *                           page (or "FAIL: ..." and exit status 1)
 *       ends huge|small     whether the first and the last page of the big
 *                           mapping belong to transparent huge pages
 *                           (/proc/self/pagemap and /proc/kpageflags), or
 *       ends unknown: WHY   when they cannot be read (not root)
 */
#include <crac.h>
#include "image_ckpt.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096ul
#define HUGE (2ul << 20)
#define SIDE (32 * PG)                   /* each neighbour: more than the loader's read window (fill_mem) */
#define BIG_OFF 0x1a0000ul               /* the big mapping's start within its 2 MiB block */
#define BIG_LEN ((8ul << 20) + 0x13000)  /* its end: off a boundary too */

static unsigned char *big, *below, *above;
static char maps_before[1024];

static uint64_t word(uintptr_t at)
{
	return (uint64_t)at * 0x9e3779b97f4a7c15ull ^ 0x7417;
}

static void fill(unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i += 8)
		*(uint64_t *)(p + i) = word((uintptr_t)(p + i));
}

static size_t bad_pages(const unsigned char *p, size_t len)
{
	size_t bad = 0;
	for (size_t pg = 0; pg < len; pg += PG)
		for (size_t i = 0; i < PG; i += 8)
			if (*(const uint64_t *)(p + pg + i) != word((uintptr_t)(p + pg + i))) {
				bad++;
				break;
			}
	return bad;
}

/* The lines of /proc/self/maps for [below, above + SIDE), joined. */
static int our_maps(char *out, size_t cap)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	size_t used = 0;

	if (!f)
		return -1;
	out[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx", &s, &e) != 2)
			continue;
		if (e <= (uintptr_t)below || s >= (uintptr_t)above + SIDE)
			continue;
		size_t n = strlen(line);
		if (used + n + 1 > cap)
			break;
		memcpy(out + used, line, n + 1);
		used += n;
	}
	fclose(f);
	return 0;
}

static int fail(const char *what, size_t n)
{
	printf("FAIL: %s (%zu)\n", what, n);
	return 1;
}

/* 1 if the page at p is part of a transparent huge page, 0 if not, -1 if
 * that cannot be read here (*why says why). */
static int in_thp(const void *p, const char **why)
{
	uint64_t e = 0, flags = 0;
	int pm = open("/proc/self/pagemap", O_RDONLY), kf = open("/proc/kpageflags", O_RDONLY);
	int r = -1;

	*why = "no /proc/kpageflags (not root)";
	if (pm >= 0 && kf >= 0 && pread(pm, &e, 8, (off_t)((uintptr_t)p / PG * 8)) == 8) {
		uint64_t pfn = e & ((1ull << 55) - 1);
		*why = "the page is not present, or /proc/self/pagemap hides its frame (no CAP_SYS_ADMIN)";
		if ((e >> 63) && pfn && pread(kf, &flags, 8, (off_t)(pfn * 8)) == 8)
			r = (int)(flags >> 22 & 1);   /* KPF_THP */
	}
	if (pm >= 0)
		close(pm);
	if (kf >= 0)
		close(kf);
	return r;
}

static int check(void)
{
	char now[1024];
	size_t n;

	if (our_maps(now, sizeof(now)) < 0 || strcmp(now, maps_before)) {
		printf("before:\n%snow:\n%s", maps_before, now);
		return fail("the mappings differ from the checkpointed ones", 0);
	}
	/* the ends first, before anything here touches them */
	const char *why = "";
	int head = in_thp(big, &why), tail = in_thp(big + BIG_LEN - PG, &why);
	if ((n = bad_pages(big, BIG_LEN)))
		return fail("pages of the big mapping without their pattern", n);
	if ((n = bad_pages(below, SIDE)) || (n = bad_pages(above, SIDE)))
		return fail("pages of a neighbour without their pattern", n);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(bad_pages(big, BIG_LEN) ? 1 : 0);
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return fail("a forked child saw pages without their pattern, status", (size_t)st);
	if (madvise(big, PG, MADV_DONTNEED) < 0)
		return fail("madvise", 0);
	for (size_t i = 0; i < PG; i++)
		if (big[i])
			return fail("MADV_DONTNEED did not give zeros at byte", i);
	if ((n = bad_pages(big + PG, BIG_LEN - PG)))
		return fail("pages without their pattern after MADV_DONTNEED of the first", n);
	printf("ok\n");
	if (head < 0 || tail < 0)
		printf("ends unknown: %s\n", why);
	else
		printf("ends %s\n", head && tail ? "huge" : "small");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: image_thp DIR\n");
		return 2;
	}
	/* a reservation, then the three mappings at chosen places in it */
	size_t span = BIG_LEN + 4 * HUGE;
	unsigned char *r = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return 1;
	uintptr_t block = ((uintptr_t)r + HUGE - 1) & ~(HUGE - 1);
	big = (unsigned char *)(block + HUGE + BIG_OFF);
	below = big - SIDE;
	above = big + BIG_LEN;
	if (munmap(r, span) < 0 ||
	    mmap(below, SIDE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) !=
		    below ||
	    mmap(big, BIG_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) !=
		    big ||
	    mmap(above, SIDE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) !=
		    above) {
		perror("image_thp: mmap");
		return 1;
	}
	fill(below, SIDE);
	fill(big, BIG_LEN);
	fill(above, SIDE);
	/* read-only neighbours: three mappings, not one */
	if (mprotect(below, SIDE, PROT_READ) < 0 || mprotect(above, SIDE, PROT_READ) < 0)
		return 1;
	if (our_maps(maps_before, sizeof(maps_before)) < 0)
		return 1;
	printf("big=%p len=%lu\n", (void *)big, BIG_LEN);
	fflush(stdout);

	crac_report *rep = NULL;
	int rc = image_try(argv[1], 0, &rep);
	if (rc != CRAC_RESTORED) {
		if (rc != CRAC_CONTINUED && rep)
			crac_report_print(rep, stderr);
		crac_report_free(rep);
		return rc == CRAC_CONTINUED ? 0 : 1;
	}
	crac_report_free(rep);
	return check();
}
