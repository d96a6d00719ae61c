/* SPDX-License-Identifier: MIT */
/*
 * incr_remap - incremental checkpoints across mremap and remapping
 * (tests/cli/image_incremental_adversary.bats; run with
 * CRAC_IMAGE_INCREMENTAL=1).
 *
 *   incr_remap DIR0 DIR1
 *       builds its mappings, checkpoints into DIR0 with keep-running, moves
 *       memory around (below), checkpoints into DIR1 (incremental on DIR0)
 *       and exits there; prints "continued".
 *   crac restore DIR1
 *       verifies every page of every mapping: "ok remap", or "FAIL: ...".
 *   crac restore DIR0 -- into DIR
 *       the restored process moves its memory around as the first one did
 *       and checkpoints into DIR (incremental on DIR0), then exits there
 *       (restored lazily: while its pages are still loading).
 *   crac restore DIR0 -- loaded-into DIR
 *       the same once every page is loaded (a fork waits for that), and
 *       the checkpoint right after the moves (the pages are verified only
 *       by the restore of DIR): the lazy loader still serves, and clears
 *       the write protection of the pages moved only once each mremap is
 *       complete.
 *
 * Between the two checkpoints (pattern N: page p holds bytes of N and p):
 *   a, b  4 MiB, patterns 1 and 2: b moved onto a's address (MREMAP_FIXED):
 *         a's address holds b's bytes; b's address mapped anew (MAP_FIXED),
 *         never written: zeros
 *   c     2 MiB, pattern 3: its second half unmapped, then the first
 *         half grown in place to 2 MiB again; the new half is untouched but
 *         its first page (pattern 7)
 *   d     1 MiB, pattern 4: moved with MREMAP_DONTUNMAP to e: d's range
 *         reads zeros, e holds d's bytes
 *   g     2 MiB, pattern 6: moved away and back to its own address
 *   h     1 MiB, pattern 8: unmapped, mapped anew at the same address,
 *         its even pages written with pattern 9 (odd pages: zeros)
 *   n     1 MiB, pattern 10: made PROT_NONE then read-write again, its even
 *         pages then written with pattern 11
 *   q     1 MiB, pattern 12: made PROT_NONE (and restored so)
 *   t     4 MiB in transparent huge pages (MADV_HUGEPAGE, 2 MiB aligned),
 *         pattern 13: one page in the middle of each huge page written
 *         with pattern 14
 *   u     1 MiB, pattern 15: pages 0-3 written with pattern 16 through
 *         /proc/self/mem, page 10 through process_vm_writev (the kernel
 *         writes, not the program)
 * The images below hold the old bytes at every one of these addresses: a
 * reference to them where the memory changed without being written in
 * place would restore the wrong bytes.
 */
#include <crac.h>
#include "image_ckpt.h"
#include "page_pattern.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define PG 4096ul
#define MIB (1ul << 20)

static unsigned char *a, *b, *c, *d, *e, *g, *h, *n, *q, *t, *u;

static int checkpoint(const char *dir, bool keep)
{
	return image_checkpoint(dir, (keep ? CRAC_KEEP_RUNNING : 0u));
}

static int verify(void)
{
	int bad = 0;
	for (size_t p = 0; p < 4 * MIB / PG; p++) {
		bad |= pattern_check("a (b moved there)", a, p, 2);
		bad |= pattern_check("b (mapped anew)", b, p, 0);
	}
	for (size_t p = 0; p < 2 * MIB / PG; p++)
		bad |= pattern_check("c (grown)", c, p, p < MIB / PG ? 3 : p == MIB / PG ? 7 : 0);
	for (size_t p = 0; p < MIB / PG; p++) {
		bad |= pattern_check("d (moved away, kept mapped)", d, p, 0);
		bad |= pattern_check("e (d moved there)", e, p, 4);
		bad |= pattern_check("h (mapped anew)", h, p, p % 2 ? 0 : 9);
	}
	for (size_t p = 0; p < 2 * MIB / PG; p++)
		bad |= pattern_check("g (moved away and back)", g, p, 6);
	if (mprotect(q, MIB, PROT_READ) < 0) {
		perror("mprotect q");
		return 1;
	}
	for (size_t p = 0; p < MIB / PG; p++) {
		bad |= pattern_check("n (protection changed, then written)", n, p, p % 2 ? 10 : 11);
		bad |= pattern_check("q (PROT_NONE)", q, p, 12);
	}
	mprotect(q, MIB, PROT_NONE);
	for (size_t p = 0; p < 4 * MIB / PG; p++)
		bad |= pattern_check("t (huge pages)", t, p, p % 512 == 256 ? 14 : 13);
	for (size_t p = 0; p < MIB / PG; p++)
		bad |= pattern_check("u (written by the kernel)", u, p, p < 4 || p == 10 ? 16 : 15);
	if (!bad)
		printf("ok remap\n");
	return bad;
}

static char into[4096];
static bool loaded_first;   /* "loaded-into" */

static int after(const crac_event *ev, void *arg)
{
	(void)arg;
	if (ev->argc == 2 && (!strcmp(ev->argv[0], "into") || !strcmp(ev->argv[0], "loaded-into"))) {
		snprintf(into, sizeof(into), "%s", ev->argv[1]);
		loaded_first = !strcmp(ev->argv[0], "loaded-into");
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: incr_remap DIR0 DIR1\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	a = pattern_map(4 * MIB, 1);
	b = pattern_map(4 * MIB, 2);
	c = pattern_map(2 * MIB, 3);
	d = pattern_map(MIB, 4);
	g = pattern_map(2 * MIB, 6);
	h = pattern_map(MIB, 8);
	n = pattern_map(MIB, 10);
	q = pattern_map(MIB, 12);
	/* t: 4 MiB at a 2 MiB boundary, in huge pages where the kernel gives them */
	unsigned char *room = mmap(NULL, 6 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (room == MAP_FAILED) {
		perror("mmap t");
		return 1;
	}
	t = (unsigned char *)(((uintptr_t)room + 2 * MIB - 1) & ~(2 * MIB - 1));
	madvise(t, 4 * MIB, MADV_HUGEPAGE);
	u = pattern_map(MIB, 15);
	for (size_t p = 0; p < 4 * MIB / PG; p++)
		pattern_fill(t, p, 13);

	struct crac_resource_def def = { .name = "remap", .after_restore = after };
	crac_register(NULL, &def, NULL);
	const char *dir1 = argv[2];
	if (checkpoint(argv[1], true) == CRAC_RESTORED) {
		if (!into[0]) {
			printf("FAIL: restored from %s: restore %s\n", argv[1], argv[2]);
			return 1;
		}
		dir1 = into;
		if (loaded_first) {
			/* glibc's fork waits for the lazy loader to load everything */
			pid_t k = fork();
			if (k == 0)
				_exit(0);
			if (k < 0 || waitpid(k, NULL, 0) != k) {
				printf("FAIL: fork\n");
				return 1;
			}
		}
	}
	/* b onto a; b's range mapped anew */
	if (mremap(b, 4 * MIB, 4 * MIB, MREMAP_MAYMOVE | MREMAP_FIXED, a) != a ||
	    mmap(b, 4 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != b) {
		perror("mremap b");
		return 1;
	}
	/* c: its second half unmapped, then grown back in place */
	munmap(c + MIB, MIB);
	if (mremap(c, MIB, 2 * MIB, 0) != c) {
		perror("mremap c");
		return 1;
	}
	pattern_fill(c, MIB / PG, 7);
	/* d moved, its range kept (reads zeros) */
	e = mremap(d, MIB, MIB, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
	if (e == MAP_FAILED) {
		perror("mremap d");
		return 1;
	}
	/* g away and back */
	unsigned char *away = mmap(NULL, 2 * MIB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (away == MAP_FAILED || mremap(g, 2 * MIB, 2 * MIB, MREMAP_MAYMOVE | MREMAP_FIXED, away) != away ||
	    mremap(away, 2 * MIB, 2 * MIB, MREMAP_MAYMOVE | MREMAP_FIXED, g) != g) {
		perror("mremap g");
		return 1;
	}
	/* h anew */
	munmap(h, MIB);
	if (mmap(h, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != h) {
		perror("mmap h");
		return 1;
	}
	for (size_t p = 0; p < MIB / PG; p += 2)
		pattern_fill(h, p, 9);
	/* n: protection round trip, then written; q: no access */
	if (mprotect(n, MIB, PROT_NONE) < 0 || mprotect(n, MIB, PROT_READ | PROT_WRITE) < 0 ||
	    mprotect(q, MIB, PROT_NONE) < 0) {
		perror("mprotect");
		return 1;
	}
	for (size_t p = 0; p < MIB / PG; p += 2)
		pattern_fill(n, p, 11);
	for (size_t p = 256; p < 4 * MIB / PG; p += 512)
		pattern_fill(t, p, 14);
	/* u: written by the kernel on our behalf. (Restored lazily, its pages
	 * are read first: a write through /proc/self/mem or process_vm_writev
	 * cannot wait for the lazy loader, the kernel fails it with EIO.) */
	for (size_t p = 0; into[0] && p < 11; p++)
		(void)*(volatile unsigned char *)(u + p * PG);
	unsigned char *src = pattern_map(11 * PG, 16);
	int mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	struct iovec li = { src + 10 * PG, PG }, ri = { u + 10 * PG, PG };
	if (mem < 0 || pwrite(mem, src, 4 * PG, (off_t)(uintptr_t)u) != (ssize_t)(4 * PG) ||
	    process_vm_writev(getpid(), &li, 1, &ri, 1, 0) != (ssize_t)PG) {
		perror("/proc/self/mem or process_vm_writev");
		return 1;
	}
	close(mem);
	munmap(src, 11 * PG);
	if (!loaded_first && verify())
		return 1;
	if (checkpoint(dir1, false) == CRAC_RESTORED)
		return verify();
	printf("continued\n");
	return 0;
}
