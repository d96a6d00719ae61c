/* SPDX-License-Identifier: MIT */
/*
 * incr_holes - holes, dropped pages and the zero page in a tracked mapping
 * across a chain of incremental checkpoints (keep-running). Run with
 * CRAC_IMAGE_INCREMENTAL=1.
 *
 * A hole, a page read as the zero page, a page dropped (MADV_DONTNEED) and
 * a 2 MiB range dropped whole (its page table may be freed: no entry at
 * all) must be restored as zeros by every later image, never as bytes of
 * an image below (a re-protect that marks holes with uffd-wp markers, as
 * the kernel's written-only fast path does, must keep this true).
 *
 *   incr_holes DIR
 *       H: 4 MiB, its even pages written, its odd pages never touched;
 *       D: 2 MiB, every page written. Checkpoints DIR/k0 (a full image;
 *       tracking starts), DIR/k1 (nothing written), then reads odd pages
 *       1-9 of H (the zero page), writes odd page 11, drops even page 4
 *       and the whole of D: DIR/k2; writes page 0 of D: DIR/k3; nothing:
 *       DIR/k4. Prints "done".
 *   crac restore DIR/kN
 *       verifies every page of H and D against what the process held when
 *       it wrote kN (zeros where it held none): "ok kN".
 * Prints "FAIL: ..." and exits 1 on any difference.
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
#define H_PAGES 1024ul   /* 4 MiB */
#define D_PAGES 512ul    /* 2 MiB */
#define N_PAGES (H_PAGES + D_PAGES)

static uint64_t *mem;   /* H, then D: 2 MiB aligned */
static char name[16];
static uint64_t gen_of[N_PAGES];   /* 0: never written, or dropped (zeros) */

static uint64_t word(size_t p, size_t i, uint64_t gen)
{
	return gen ? gen * 1000003u + p * 131u + i + 1 : 0;
}

static void write_page(size_t p, uint64_t gen)
{
	gen_of[p] = gen;
	for (size_t i = 0; i < PG / 8; i++)
		mem[p * PG / 8 + i] = word(p, i, gen);
}

static void drop(size_t p, size_t n)
{
	if (madvise(mem + p * PG / 8, n * PG, MADV_DONTNEED) != 0) {
		printf("FAIL: madvise: %m\n");
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		gen_of[p + i] = 0;
}

static int verify(void)
{
	for (size_t p = 0; p < N_PAGES; p++)
		for (size_t i = 0; i < PG / 8; i++)
			if (mem[p * PG / 8 + i] != word(p, i, gen_of[p])) {
				printf("FAIL: %s: page %zu (%s %zu) word %zu is %#llx, not %#llx\n", name, p,
				       p < H_PAGES ? "H" : "D", p < H_PAGES ? p : p - H_PAGES, i,
				       (unsigned long long)mem[p * PG / 8 + i],
				       (unsigned long long)word(p, i, gen_of[p]));
				return 1;
			}
	printf("ok %s\n", name);
	return 0;
}

/* Checkpoints into DIR/x; returns only in the process that goes on. */
static void checkpoint(const char *dir, const char *x)
{
	image_round(dir, x, name, sizeof(name), verify, true);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: incr_holes DIR\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	char *raw = mmap(NULL, N_PAGES * PG + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return 1;
	mem = (uint64_t *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
	/* page tables of small pages, whatever the THP setting */
	madvise(mem, N_PAGES * PG, MADV_NOHUGEPAGE);
	for (size_t p = 0; p < H_PAGES; p += 2)
		write_page(p, 1);
	for (size_t p = H_PAGES; p < N_PAGES; p++)
		write_page(p, 1);
	checkpoint(argv[1], "k0");
	checkpoint(argv[1], "k1");
	volatile uint64_t sum = 0;
	for (size_t p = 1; p < 10; p += 2)
		sum += mem[p * PG / 8];   /* the zero page */
	if (sum != 0) {
		printf("FAIL: a hole reads %#llx\n", (unsigned long long)sum);
		return 1;
	}
	write_page(11, 2);
	drop(4, 1);
	drop(H_PAGES, D_PAGES);
	checkpoint(argv[1], "k2");
	write_page(H_PAGES, 3);
	checkpoint(argv[1], "k3");
	checkpoint(argv[1], "k4");
	printf("done\n");
	return 0;
}
