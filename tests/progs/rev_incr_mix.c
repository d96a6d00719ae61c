/* SPDX-License-Identifier: MIT */
/*
 * rev_incr_mix - the scan of a keep-running incremental checkpoint
 * (image_capture.c scan_map; written for a two-pass variant since dropped)
 * on holes, THP, mremap and full scan vectors. Run with
 * CRAC_IMAGE_INCREMENTAL=1.
 *
 * Five regions, each with the generation of every page (0: zeros):
 *   A   4 MiB of small pages (MADV_NOHUGEPAGE): holes read, written,
 *       dropped and read again, dropped and written again;
 *   T   6 MiB of THP (MADV_HUGEPAGE, 2 MiB aligned): a page dropped out of
 *       a huge page (split), a huge page dropped whole and read, written
 *       again whole;
 *   R   1 MiB moved by mremap, then grown (moved again) to 2 MiB;
 *   F1  16 MiB, every third page a hole: more present runs than one
 *       scan vector holds;
 *   F2  16 MiB all written, then every other page written again: more
 *       written runs than one scan vector holds.
 * Checkpoints DIR/k0 .. DIR/k6 (keep-running), each after some of the
 * changes above; verifies every byte after each one (the process that
 * goes on) and prints "done".
 *   crac restore DIR/kN: verifies every byte against what the process held
 *   when it wrote kN: "ok kN". Prints "FAIL: ..." and exits 1 otherwise.
 */
#include <crac.h>
#include "image_ckpt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096ul
#define HUGE (2ul << 20)

enum { A, T, R, F1, F2, NREG };
static const char *const rname[NREG] = { "A", "T", "R", "F1", "F2" };
#define MAXP 4096ul   /* 16 MiB */

static struct reg {
	uint64_t *base;
	size_t pages;
	uint32_t gen[MAXP];
} reg[NREG];
static char name[16];

static uint64_t word(int r, size_t p, size_t i, uint32_t gen)
{
	return gen ? ((uint64_t)gen << 48) ^ ((uint64_t)r << 40) ^ (p * 4099u + i + 1) : 0;
}

static void die(const char *what)
{
	printf("FAIL: %s: %s\n", name, what);
	exit(1);
}

static void wr(int r, size_t p, uint32_t gen)
{
	reg[r].gen[p] = gen;
	for (size_t i = 0; i < PG / 8; i++)
		reg[r].base[p * PG / 8 + i] = word(r, p, i, gen);
}

static int check_page(int r, size_t p)
{
	for (size_t i = 0; i < PG / 8; i++) {
		uint64_t v = ((volatile uint64_t *)reg[r].base)[p * PG / 8 + i];
		if (v != word(r, p, i, reg[r].gen[p])) {
			printf("FAIL: %s: %s page %zu (%p) word %zu is %#llx, not %#llx (gen %u)\n", name, rname[r], p,
			       (void *)(reg[r].base + p * PG / 8), i, (unsigned long long)v,
			       (unsigned long long)word(r, p, i, reg[r].gen[p]), reg[r].gen[p]);
			return 1;
		}
	}
	return 0;
}

/* a read of the page (it must hold what it should already) */
static void rd(int r, size_t p)
{
	if (check_page(r, p))
		exit(1);
}

static void drop(int r, size_t p, size_t n)
{
	if (madvise(reg[r].base + p * PG / 8, n * PG, MADV_DONTNEED) != 0)
		die("madvise DONTNEED");
	for (size_t i = 0; i < n; i++)
		reg[r].gen[p + i] = 0;
}

static int verify(void)
{
	for (int r = 0; r < NREG; r++)
		for (size_t p = 0; p < reg[r].pages; p++)
			if (check_page(r, p))
				return 1;
	printf("ok %s\n", name);
	return 0;
}

static void checkpoint(const char *dir, const char *x)
{
	image_round(dir, x, name, sizeof(name), verify, true);
}

/* n pages, 2 MiB aligned */
static uint64_t *map_aligned(size_t pages, int advice)
{
	char *raw = mmap(NULL, pages * PG + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		die("mmap");
	uint64_t *m = (uint64_t *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
	if (madvise(m, pages * PG, advice) != 0 && advice == MADV_HUGEPAGE)
		printf("note: no MADV_HUGEPAGE\n");
	return m;
}

/* R moved to a new place of new_pages (MREMAP_FIXED over a fresh mapping) */
static void move_r(size_t new_pages)
{
	void *to = mmap(NULL, new_pages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (to == MAP_FAILED)
		die("mmap for mremap");
	void *got = mremap(reg[R].base, reg[R].pages * PG, new_pages * PG, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (got != to)
		die("mremap");
	reg[R].base = got;
	reg[R].pages = new_pages;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: rev_incr_mix DIR\n");
		return 2;
	}
	const char *dir = argv[1];
	setvbuf(stdout, NULL, _IONBF, 0);
	snprintf(name, sizeof(name), "setup");
	reg[A].pages = 1024;
	reg[A].base = map_aligned(1024, MADV_NOHUGEPAGE);
	reg[T].pages = 1536;
	reg[T].base = map_aligned(1536, MADV_HUGEPAGE);
	reg[R].pages = 256;
	reg[R].base = map_aligned(256, MADV_NOHUGEPAGE);
	reg[F1].pages = MAXP;
	reg[F1].base = map_aligned(MAXP, MADV_NOHUGEPAGE);
	reg[F2].pages = MAXP;
	reg[F2].base = map_aligned(MAXP, MADV_NOHUGEPAGE);

	/* k0 */
	for (size_t p = 0; p < 1024; p += 2)
		wr(A, p, 1);
	for (size_t p = 0; p < 512; p++)
		wr(T, p, 1);          /* huge page 0 whole */
	for (size_t p = 512; p < 768; p++)
		wr(T, p, 1);          /* half of huge page 1; huge page 2 untouched */
	for (size_t p = 0; p < 256; p++)
		wr(R, p, 1);
	for (size_t p = 0; p < MAXP; p++) {
		if (p % 3)
			wr(F1, p, 1);
		wr(F2, p, 1);
	}
	checkpoint(dir, "k0");
	checkpoint(dir, "k1");

	/* k2 */
	for (size_t p = 1; p < 100; p += 2)
		rd(A, p);             /* holes read: the zero page */
	wr(A, 2, 2);
	drop(A, 6, 1);
	rd(A, 6);
	drop(A, 8, 1);
	wr(A, 8, 2);
	wr(A, 11, 2);
	drop(T, 5, 1);                /* splits huge page 0 */
	wr(T, 1024 + 10, 2);          /* a page in the untouched huge page 2 */
	rd(T, 512 + 300);             /* a hole of huge page 1 */
	move_r(256);
	wr(R, 3, 2);
	for (size_t p = 1; p < MAXP; p += 6)
		wr(F1, p, 2);
	for (size_t p = 0; p < MAXP; p += 2)
		wr(F2, p, 2);
	checkpoint(dir, "k2");

	/* k3 */
	wr(A, 1, 3);                  /* a hole read before */
	drop(A, 10, 11);
	wr(A, 13, 3);
	drop(T, 512, 512);            /* huge page 1 whole */
	rd(T, 512 + 7);
	move_r(512);
	wr(R, 300, 3);
	drop(F2, 100, 100);
	checkpoint(dir, "k3");

	/* k4 */
	for (size_t p = 101; p <= 120; p++)
		wr(A, p, 4);
	for (size_t p = 0; p < 512; p++)
		wr(T, p, 4);
	wr(T, 512, 4);
	drop(R, 0, 1);
	drop(F1, 0, MAXP);
	checkpoint(dir, "k4");
	checkpoint(dir, "k5");

	/* k6 */
	drop(A, 0, 1024);
	wr(A, 0, 6);
	drop(T, 0, 1536);
	for (size_t p = 1024; p < 1536; p++)
		wr(T, p, 6);
	wr(R, 1, 6);
	for (size_t p = 150; p < 160; p++)
		wr(F2, p, 6);
	checkpoint(dir, "k6");
	printf("done\n");
	return 0;
}
