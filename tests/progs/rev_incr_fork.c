/* SPDX-License-Identifier: MIT */
/*
 * rev_incr_fork - review: fork after a keep-running incremental
 * checkpoint (the written pages protected again by the two-pass scan,
 * uffd-wp markers in the holes). Run with CRAC_IMAGE_INCREMENTAL=1.
 *
 *   rev_incr_fork DIR
 *       S: 4 MiB of small pages, U: 4 MiB of THP (2 MiB aligned), their
 *       even pages written. Checkpoints DIR/k0, then forks. The child
 *       reads hole 1, writes page 2, drops page 4 of each: DIR/c1; writes
 *       hole 3: DIR/c2; exits 0 ("child done"). The parent waits for it,
 *       then writes page 6 and reads hole 5 of each: DIR/p1 ("done").
 *       Each verifies every byte after each checkpoint.
 *   crac restore DIR/x: verifies every byte: "ok x".
 * Prints "FAIL: ..." and exits 1 on any difference.
 */
#include <crac.h>
#include "image_ckpt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096ul
#define HUGE (2ul << 20)
#define NP 1024ul   /* 4 MiB each */

static uint64_t *reg[2];
static uint32_t gen[2][NP];
static char name[16];

static uint64_t word(int r, size_t p, size_t i, uint32_t g)
{
	return g ? ((uint64_t)g << 40) ^ ((uint64_t)r << 36) ^ (p * 8191u + i + 1) : 0;
}

static void wr(int r, size_t p, uint32_t g)
{
	gen[r][p] = g;
	for (size_t i = 0; i < PG / 8; i++)
		reg[r][p * PG / 8 + i] = word(r, p, i, g);
}

static int verify(void)
{
	for (int r = 0; r < 2; r++)
		for (size_t p = 0; p < NP; p++)
			for (size_t i = 0; i < PG / 8; i++)
				if (((volatile uint64_t *)reg[r])[p * PG / 8 + i] != word(r, p, i, gen[r][p])) {
					printf("FAIL: %s: %s page %zu word %zu is %#llx (gen %u)\n", name, r ? "U" : "S", p,
					       i, (unsigned long long)reg[r][p * PG / 8 + i], gen[r][p]);
					return 1;
				}
	printf("ok %s\n", name);
	return 0;
}

static void checkpoint(const char *dir, const char *x)
{
	image_round(dir, x, name, sizeof(name), verify, true);
}

static uint64_t *map_aligned(int advice)
{
	char *raw = mmap(NULL, NP * PG + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		exit(1);
	uint64_t *m = (uint64_t *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
	madvise(m, NP * PG, advice);
	return m;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: rev_incr_fork DIR\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	reg[0] = map_aligned(MADV_NOHUGEPAGE);
	reg[1] = map_aligned(MADV_HUGEPAGE);
	for (int r = 0; r < 2; r++)
		for (size_t p = 0; p < NP; p += 2)
			wr(r, p, 1);
	checkpoint(argv[1], "k0");
	fflush(stdout);
	pid_t child = fork();
	if (child < 0)
		return 1;
	if (child == 0) {
		snprintf(name, sizeof(name), "child");
		if (verify())
			_exit(1);
		for (int r = 0; r < 2; r++) {
			if (reg[r][1 * PG / 8] != 0)
				_exit(1);
			wr(r, 2, 2);
			if (madvise(reg[r] + 4 * PG / 8, PG, MADV_DONTNEED) != 0)
				_exit(1);
			gen[r][4] = 0;
		}
		checkpoint(argv[1], "c1");
		for (int r = 0; r < 2; r++)
			wr(r, 3, 3);
		checkpoint(argv[1], "c2");
		printf("child done\n");
		_exit(0);
	}
	int st;
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		printf("FAIL: the child ended with status %#x\n", st);
		return 1;
	}
	for (int r = 0; r < 2; r++) {
		wr(r, 6, 4);
		if (reg[r][5 * PG / 8] != 0)
			return 1;
	}
	checkpoint(argv[1], "p1");
	printf("done\n");
	return 0;
}
