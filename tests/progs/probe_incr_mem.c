/* SPDX-License-Identifier: MIT */
/*
 * probe_incr_mem - memory changed between a parent image and its child in
 * ways tests/progs/incr_remap.c does not (tests/cli/probe_incr_mem.bats;
 * run with CRAC_IMAGE_INCREMENTAL=1).
 *
 *   probe_incr_mem FILE DIR0 DIR1
 *       builds its memory, checkpoints into DIR0 with keep-running, changes
 *       it (below), checkpoints into DIR1 (incremental on DIR0) and exits
 *       there. FILE: a scratch file of 1 MiB it makes.
 *   crac restore DIR0 -- into DIR
 *       the restored process makes the same changes (lazily restored: to
 *       pages perhaps not loaded yet) and checkpoints into DIR
 *       (incremental on DIR0), then exits there.
 *   crac restore DIR1
 *       verifies every page: "ok mem", or "FAIL: ..." and status 1.
 *
 * Before DIR0 (pattern N: page p holds bytes of N and p), then between:
 *   f   1 MiB private writable mapping of FILE (pattern 20 in the file),
 *       its even pages written with pattern 21; then pages 0-7 dropped
 *       with MADV_DONTNEED (they read the file again: 20, not 21)
 *   k   the brk heap grown by 1 MiB (sbrk), pattern 22; then shrunk by
 *       512 KiB and grown back: the upper half reads zeros, and its page
 *       at 768 KiB is written with pattern 23
 *   s   2 MiB, pattern 24: shrunk in place to 1 MiB with mremap, then
 *       grown in place to 2 MiB again: the upper half zeros
 *   m   1 MiB, pattern 25: grown to 3 MiB with MREMAP_MAYMOVE (it may
 *       move): its first MiB keeps pattern 25, the rest zeros but page 300
 *       (pattern 26)
 *   r   1 MiB, pattern 27, PROT_NONE when DIR0 is written (so not tracked
 *       from then on); then read-write again, pages 0-15 written with
 *       pattern 28, pages 16-31 dropped (zeros), PROT_NONE again
 *   w   1 MiB, pattern 29: made read-only, then read-write again, pages
 *       100-131 dropped with MADV_DONTNEED (zeros), then read-only again
 *   z   1 MiB, pattern 30: every page dropped with MADV_FREE and then
 *       every third page written with pattern 31 (others: 30 or zeros, as
 *       the kernel chose; checked only where written)
 *   x   1 MiB, pattern 32: pages 5-36 made read-only (three mappings now,
 *       one chunk of the parent across them), page 2 dropped, page 40
 *       written with pattern 33
 *   y   1 MiB, pattern 34: pages 6-9 replaced by FILE's pages 6-9
 *       (MAP_FIXED, private, never written: pattern 20), pages 12-13
 *       replaced by a new anonymous mapping written with pattern 35
 * The image below holds the old bytes at every one of these addresses: a
 * reference to them where the memory changed would restore wrong bytes.
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
#include <unistd.h>

#define PG 4096ul
#define MIB (1ul << 20)

static unsigned char *f, *k, *s, *m, *r, *w, *z, *x, *y;

/* 1 if page p of `at` does not hold pattern pat (said on stdout, with a name) */
static void die(const char *what)
{
	printf("FAIL: %s\n", what);
	exit(1);
}

static char scratch[4096];   /* FILE's path */

static void build(const char *file)
{
	int fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	unsigned char *tmp = pattern_map(MIB, 20);
	if (fd < 0 || write(fd, tmp, MIB) != (ssize_t)MIB)
		die("cannot write the scratch file");
	munmap(tmp, MIB);
	f = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	snprintf(scratch, sizeof(scratch), "%s", file);
	if (f == MAP_FAILED)
		die("cannot map the scratch file");
	for (size_t p = 0; p < MIB / PG; p += 2)
		pattern_fill(f, p, 21);

	k = sbrk(0);
	if (k == (void *)-1 || sbrk((intptr_t)MIB) != k)
		die("sbrk");
	for (size_t p = 0; p < MIB / PG; p++)
		pattern_fill(k, p, 22);

	s = pattern_map(2 * MIB, 24);
	m = pattern_map(MIB, 25);
	r = pattern_map(MIB, 27);
	mprotect(r, MIB, PROT_NONE);
	w = pattern_map(MIB, 29);
	z = pattern_map(MIB, 30);
	x = pattern_map(MIB, 32);
	y = pattern_map(MIB, 34);
}

static void change(void)
{
	madvise(f, 8 * PG, MADV_DONTNEED);

	if (sbrk(-(intptr_t)(MIB / 2)) == (void *)-1 || sbrk((intptr_t)(MIB / 2)) == (void *)-1)
		die("sbrk shrink/grow");
	pattern_fill(k, 192, 23);

	if (mremap(s, 2 * MIB, MIB, 0) != s || mremap(s, MIB, 2 * MIB, 0) != s)
		die("mremap s in place (the room after it taken?)");

	unsigned char *moved = mremap(m, MIB, 3 * MIB, MREMAP_MAYMOVE);
	if (moved == MAP_FAILED)
		die("mremap m");
	m = moved;
	pattern_fill(m, 300, 26);

	mprotect(r, MIB, PROT_READ | PROT_WRITE);
	for (size_t p = 0; p < 16; p++)
		pattern_fill(r, p, 28);
	madvise(r + 16 * PG, 16 * PG, MADV_DONTNEED);
	mprotect(r, MIB, PROT_NONE);

	mprotect(w, MIB, PROT_READ);
	mprotect(w, MIB, PROT_READ | PROT_WRITE);
	madvise(w + 100 * PG, 32 * PG, MADV_DONTNEED);
	mprotect(w, MIB, PROT_READ);

	madvise(z, MIB, MADV_FREE);
	for (size_t p = 0; p < MIB / PG; p += 3)
		pattern_fill(z, p, 31);

	mprotect(x + 5 * PG, 32 * PG, PROT_READ);
	madvise(x + 2 * PG, PG, MADV_DONTNEED);
	pattern_fill(x, 40, 33);

	int fd = open(scratch, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || mmap(y + 6 * PG, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 6 * PG) != y + 6 * PG)
		die("mmap FILE over y");
	close(fd);
	if (mmap(y + 12 * PG, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != y + 12 * PG)
		die("mmap anew over y");
	pattern_fill(y, 12, 35);
	pattern_fill(y, 13, 35);
}

static int verify(void)
{
	int bad = 0;
	for (size_t p = 0; p < MIB / PG; p++)
		bad |= pattern_check("f (private file mapping, dropped pages read the file)", f, p,
				     p < 8 || p % 2 ? 20 : 21);
	for (size_t p = 0; p < MIB / PG; p++)
		bad |= pattern_check("k (brk heap shrunk and grown)", k, p, p < 128 ? 22 : p == 192 ? 23 : 0);
	for (size_t p = 0; p < 2 * MIB / PG; p++)
		bad |= pattern_check("s (shrunk and grown in place)", s, p, p < 256 ? 24 : 0);
	for (size_t p = 0; p < 3 * MIB / PG; p++)
		bad |= pattern_check("m (grown, may have moved)", m, p, p < 256 ? 25 : p == 300 ? 26 : 0);
	mprotect(r, MIB, PROT_READ);
	for (size_t p = 0; p < MIB / PG; p++)
		bad |= pattern_check("r (PROT_NONE at the parent, then written)", r, p, p < 16 ? 28 : p < 32 ? 0 : 27);
	for (size_t p = 0; p < MIB / PG; p++)
		bad |= pattern_check("w (read-only, dropped while writable)", w, p, p >= 100 && p < 132 ? 0 : 29);
	for (size_t p = 0; p < MIB / PG; p += 3)
		bad |= pattern_check("z (MADV_FREE, then written)", z, p, 31);
	for (size_t p = 1; p < MIB / PG; p++) {
		if (p % 3 && pattern_check(NULL, z, p, 30) && pattern_check(NULL, z, p, 0)) {
			printf("FAIL: z (MADV_FREE) page %zu holds neither its bytes nor zeros\n", p);
			bad = 1;
		}
	}
	for (size_t p = 0; p < MIB / PG; p++)
		bad |= pattern_check("x (split by mprotect)", x, p, p == 2 ? 0 : p == 40 ? 33 : 32);
	for (size_t p = 0; p < MIB / PG; p++)
		bad |= pattern_check("y (file and anonymous mappings over its middle)", y, p,
				     p >= 6 && p < 10 ? 20 : p == 12 || p == 13 ? 35 : 34);
	if (!bad)
		printf("ok mem\n");
	return bad;
}

static char into[4096];

static int after(const crac_event *ev, void *arg)
{
	(void)arg;
	if (ev->argc == 2 && !strcmp(ev->argv[0], "into"))
		snprintf(into, sizeof(into), "%s", ev->argv[1]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: probe_incr_mem FILE DIR0 DIR1\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	build(argv[1]);
	struct crac_resource_def def = { .name = "probe", .after_restore = after };
	crac_register(NULL, &def, NULL);
	const char *dir1 = argv[3];
	if (image_checkpoint(argv[2], CRAC_KEEP_RUNNING) == CRAC_RESTORED) {
		if (!into[0])
			return verify();
		dir1 = into;   /* restored from DIR0 to change it again */
	}
	change();
	/* what the child image must hold, checked before it is written (not
	 * printed: "ok mem" is the restored image's word) */
	int saved = dup(1), devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	dup2(devnull, 1);
	int bad = verify();
	dup2(saved, 1);
	close(saved);
	close(devnull);
	if (bad) {
		verify();
		return 1;
	}
	if (image_checkpoint(dir1, 0) == CRAC_RESTORED)
		return verify();
	return 0;   /* not reached: the checkpoint ends the process */
}
