/* SPDX-License-Identifier: MIT */
/*
 * incr_near - an incremental checkpoint stores what was written, even in a
 * mapping that lies right next to the checkpointing thread's TLS block
 * (run with CRAC_IMAGE_INCREMENTAL=1).
 *
 *   incr_near DIR0 DIR1
 *       maps up to 4 MiB one page below the mapping that holds the main
 *       thread's thread pointer (fs base) and up to 4 MiB one page above
 *       it, as much as the hole on that side holds (one page kept free at
 *       each end, so that nothing merges), on each side where that
 *       mapping still has at least NEAR_MIN pages within the capture's
 *       1 MiB window around the thread pointer (at least one side must
 *       qualify); fills them, prints "near ADDR LEN" for each, checkpoints
 *       into DIR0 with keep-running, rewrites page 0 of each, and
 *       checkpoints into DIR1 (exits there).
 *
 * The holes differ with the build: a Debug libcrac is over 2 MiB, the
 * kernel places it 2 MiB-aligned, and the dynamic linker's TLS block then
 * lands in what is left of that hole, with ~1.6 MiB below it and a few
 * pages above: no room for a fixed 4 MiB on either side.
 *   crac restore DIR1
 *       verifies every page ("ok", or "FAIL: ..." and exit 1).
 *
 * The capture stores, never references, the pages it may change itself
 * while it runs: within 1 MiB of its own stack pointer and thread pointer.
 * That window must stay inside the mapping that holds the address: once it
 * reached into the neighbours, and a heap that ASLR put right below the
 * TLS block was stored (up to 1 MiB) at every incremental checkpoint.
 */
#include <crac.h>
#include "image_ckpt.h"

#include <asm/prctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define PG 4096ul
#define LEN_MAX (4ul << 20)
#define WINDOW (1ul << 20)    /* the capture's window around its thread pointer */
#define NEAR_MIN 2ul          /* pages of a mapping inside that window, at least: page 0
                                 * and one more, which a window let into it stores */

static unsigned char *near_map[2];
static size_t near_len[2];

static uint64_t word(uint64_t at, size_t i, int gen)
{
	return (at << 12) ^ (i * 0x9e3779b97f4a7c15ull) ^ (uint64_t)(gen + 1) * 0x5851f42d4c957f2dull;
}

static void fill(unsigned char *base, size_t p, int gen)
{
	for (size_t i = 0; i < PG / 8; i++)
		((uint64_t *)(base + p * PG))[i] = word((uint64_t)(uintptr_t)base + p * PG, i, gen);
}

static int verify(void)
{
	for (int k = 0; k < 2; k++) {
		if (!near_map[k])
			continue;
		for (size_t p = 0; p < near_len[k] / PG; p++)
			for (size_t i = 0; i < PG / 8; i++)
				if (((uint64_t *)(near_map[k] + p * PG))[i] !=
				    word((uint64_t)(uintptr_t)near_map[k] + p * PG, i, p == 0)) {
					printf("FAIL: mapping %p differs at page %zu\n", (void *)near_map[k], p);
					return 1;
				}
	}
	printf("ok\n");
	return 0;
}

/*
 * The mapping of /proc/self/maps that holds a: [*s, *e), and the hole
 * around it: *lo, the end of the mapping below (0 if none), *hi, the start
 * of the mapping above (the top of user space if none).
 */
static int mapping_of(uint64_t a, uint64_t *s, uint64_t *e, uint64_t *lo, uint64_t *hi)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;

	*lo = 0;
	*hi = 1ull << 47;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long ls, le;
		if (sscanf(line, "%lx-%lx", &ls, &le) != 2)
			continue;
		if (a >= ls && a < le) {
			*s = ls;
			*e = le;
			found = 1;
		} else if (!found) {
			*lo = le;
		} else {
			*hi = ls;
			break;
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* Pages of [m, m + len) within WINDOW of fs. */
static uint64_t window_pages(uint64_t m, uint64_t len, uint64_t fs)
{
	uint64_t s = m > fs - WINDOW ? m : fs - WINDOW, e = m + len < fs + WINDOW ? m + len : fs + WINDOW;
	return e > s ? (e - s) / PG : 0;
}

int main(int argc, char **argv)
{
	unsigned long fs = 0;
	uint64_t ts, te, lo, hi;

	if (argc < 3) {
		fprintf(stderr, "usage: incr_near DIR0 DIR1\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	if (syscall(SYS_arch_prctl, ARCH_GET_FS, &fs) < 0 || !mapping_of(fs, &ts, &te, &lo, &hi)) {
		printf("FAIL: no mapping holds the thread pointer %#lx\n", fs);
		return 1;
	}
	/*
	 * One page apart from the TLS block's mapping and from the neighbour
	 * on the far side: separate mappings that never merge with either.
	 */
	uint64_t room[2] = { ts - lo >= 2 * PG ? ts - lo - 2 * PG : 0, hi - te >= 2 * PG ? hi - te - 2 * PG : 0 };
	int n = 0;
	for (int k = 0; k < 2; k++) {
		uint64_t len = room[k] < LEN_MAX ? room[k] : LEN_MAX;
		uint64_t at = k == 0 ? ts - PG - len : te + PG;
		if (!len || window_pages(at, len, fs) < NEAR_MIN)
			continue;   /* too little of it where the window would reach */
		void *m = mmap((void *)(uintptr_t)at, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (m == MAP_FAILED || m != (void *)(uintptr_t)at) {
			if (m != MAP_FAILED)
				munmap(m, len);
			continue;
		}
		near_map[k] = m;
		near_len[k] = len;
		for (size_t p = 0; p < len / PG; p++)
			fill(near_map[k], p, 0);
		printf("near %lx %lx\n", (unsigned long)at, (unsigned long)len);
		n++;
	}
	if (!n) {
		printf("FAIL: no room next to the TLS block at %#llx-%#llx (holes %#llx-, -%#llx)\n",
		       (unsigned long long)ts, (unsigned long long)te, (unsigned long long)lo,
		       (unsigned long long)hi);
		return 1;
	}
	if (image_checkpoint(argv[1], CRAC_KEEP_RUNNING) == CRAC_RESTORED)
		return verify();
	for (int k = 0; k < 2; k++)
		if (near_map[k])
			fill(near_map[k], 0, 1);
	if (image_checkpoint(argv[2], 0) == CRAC_RESTORED)
		return verify();
	return 0;
}
