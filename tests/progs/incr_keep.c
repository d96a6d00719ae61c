/* SPDX-License-Identifier: MIT */
/*
 * incr_keep - the engine arena that a process keeping running keeps from
 * one checkpoint to the next (engines/image.c, kept_arena). With
 * CRAC_IMAGE_INCREMENTAL=1 k1 and k2 are incremental; without, every image
 * is full.
 *
 *   incr_keep DIR
 *       checkpoints into DIR/k0 (keep-running), then finds the mapping
 *       that stayed (the kept arena: the one new mapping of 1 MiB or more);
 *       forks a child, which must not have it (MADV_DONTFORK), changes its
 *       memory and checkpoints into DIR/c1 (keep-running: a full image, it
 *       has no tracking of its own), then exits; the parent changes its
 *       memory and checkpoints into DIR/k1 and DIR/k2 (incremental if asked, the
 *       arena reused: still at the same address, and no second one), and
 *       exits. Prints "kept arena", "child ok", "reused arena" on the way.
 *   crac restore DIR/X
 *       verifies every page against what the process held when it wrote X:
 *       "ok X".
 * Prints "FAIL: ..." and exits 1 on any difference.
 */
#include <crac.h>
#include "image_ckpt.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096ul
#define N_PAGES 2048ul   /* 8 MiB */
#define MAX_MAPS 4096

static uint64_t *mem;
static char name[16];
static uint64_t gen_of[N_PAGES];

static void write_page(size_t p, uint64_t gen)
{
	gen_of[p] = gen;
	for (size_t i = 0; i < PG / 8; i++)
		mem[p * PG / 8 + i] = gen * 1000003u + p * 131u + i;
}

static int verify(void)
{
	for (size_t p = 0; p < N_PAGES; p++)
		for (size_t i = 0; i < PG / 8; i++)
			if (mem[p * PG / 8 + i] != gen_of[p] * 1000003u + p * 131u + i) {
				printf("FAIL: %s: page %zu word %zu differs\n", name, p, i);
				return 1;
			}
	printf("ok %s\n", name);
	return 0;
}

/* The start of every mapping of 1 MiB or more (/proc/self/maps). */
static size_t big_maps(uint64_t *out)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long long s, e;
	char line[4096];
	size_t n = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx-%llx", &s, &e) == 2 && e - s >= (1u << 20) && n < MAX_MAPS)
			out[n++] = s;
	if (f)
		fclose(f);
	return n;
}

static bool has(const uint64_t *v, size_t n, uint64_t a)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == a)
			return true;
	return false;
}

/* Checkpoints into DIR/x; returns only in the process that goes on. */
static void checkpoint(const char *dir, const char *x)
{
	image_round(dir, x, name, sizeof(name), verify, false);
}

int main(int argc, char **argv)
{
	static uint64_t before[MAX_MAPS], after[MAX_MAPS], later[MAX_MAPS];

	if (argc < 2) {
		fprintf(stderr, "usage: incr_keep DIR\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	mem = mmap(NULL, N_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 1;
	for (size_t p = 0; p < N_PAGES; p++)
		write_page(p, 1);
	size_t nb = big_maps(before);
	checkpoint(argv[1], "k0");
	size_t na = big_maps(after);
	uint64_t arena = 0;
	int n_new = 0;
	for (size_t i = 0; i < na; i++)
		if (!has(before, nb, after[i])) {
			arena = after[i];
			n_new++;
		}
	if (n_new != 1) {
		printf("FAIL: %d new mappings of 1 MiB or more after a keep-running checkpoint, not one\n", n_new);
		return 1;
	}
	printf("kept arena\n");

	pid_t child = fork();
	if (child == 0) {
		size_t nc = big_maps(later);
		if (has(later, nc, arena)) {
			printf("FAIL: the child has the parent's arena\n");
			_exit(1);
		}
		for (size_t p = 3; p < N_PAGES; p += 10)
			write_page(p, 5);
		checkpoint(argv[1], "c1");
		verify();   /* its memory is still its own */
		printf("child ok\n");
		_exit(0);
	}
	int st = 0;
	if (child < 0 || waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st)) {
		printf("FAIL: the child failed\n");
		return 1;
	}
	for (size_t p = 0; p < N_PAGES; p += 7)
		write_page(p, 2);
	checkpoint(argv[1], "k1");
	for (size_t p = 1; p < N_PAGES; p += 13)
		write_page(p, 3);
	madvise(mem + 100 * PG / 8, 4 * PG, MADV_DONTNEED);   /* dropped, then written anew */
	for (size_t p = 100; p < 104; p++)
		write_page(p, 4);
	checkpoint(argv[1], "k2");
	size_t nl = big_maps(later);
	int n_later = 0;
	for (size_t i = 0; i < nl; i++)
		n_later += !has(before, nb, later[i]);
	if (!has(later, nl, arena) || n_later != 1) {
		printf("FAIL: the arena was not reused (%d new mappings)\n", n_later);
		return 1;
	}
	printf("reused arena\n");
	return 0;
}
