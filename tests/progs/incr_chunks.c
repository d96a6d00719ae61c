/* SPDX-License-Identifier: MIT */
/*
 * incr_chunks - incremental images whose chunks are of different sizes
 * (tests/cli/image_chunks.bats; run with CRAC_IMAGE_INCREMENTAL=1).
 *
 *   incr_chunks DIR0 DIR1 DIR2 [ZZZ]
 *       maps A, 60 MiB (under the 64 MiB line: chunks of 128 KiB when not
 *       compressed), every page written (pattern 1), and checkpoints into
 *       DIR0 keep-running; writes pages 0-9 and the page at 30 MiB
 *       (pattern 2), checkpoints into DIR1 (incremental on DIR0); grows A
 *       with mremap to 72 MiB (across the line: chunks of 1 MiB), writes
 *       the page at 5 MiB and every even page of the new 12 MiB (pattern
 *       3), checkpoints into DIR2 (incremental on DIR1) and exits there
 *       printing "continued". ZZZ: for each checkpoint, 1 compressed
 *       (CRAC_IMAGE_COMPRESS=1), 0 not (default 100).
 *   crac restore DIRn
 *       verifies every page of A as it was at that checkpoint: "ok N"
 *       (else "FAIL: ...", exit 1).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "image_ckpt.h"

#define PG 4096ul
#define MIB (1ul << 20)

static void fill(char *a, uint64_t p, uint64_t n)
{
	uint64_t *w = (uint64_t *)(a + p * PG);
	for (uint64_t i = 0; i < PG / 8; i++)
		w[i] = (n << 56) ^ (p * 0x9e3779b97f4a7c15ull) ^ i;
}

static int same(const char *a, uint64_t p, uint64_t n)
{
	const uint64_t *w = (const uint64_t *)(a + p * PG);
	for (uint64_t i = 0; i < PG / 8; i++)
		if (w[i] != (n ? (n << 56) ^ (p * 0x9e3779b97f4a7c15ull) ^ i : 0))
			return 0;
	return 1;
}

/* the pattern page p of A holds after checkpoint `stage` (0: zeros) */
static uint64_t want(int stage, uint64_t p)
{
	if (stage == 2 && p >= 60 * MIB / PG)
		return p % 2 ? 0 : 3;
	if (stage == 2 && p == 5 * MIB / PG)
		return 3;
	if (stage >= 1 && (p < 10 || p == 30 * MIB / PG))
		return 2;
	return 1;
}

static volatile int stage;
static char *volatile A;
static volatile uint64_t alen;

static int verify(void)
{
	for (uint64_t p = 0; p < alen / PG; p++)
		if (!same(A, p, want(stage, p))) {
			printf("FAIL: stage %d: page %llu of A (at %p) is not pattern %llu\n", stage,
			       (unsigned long long)p, (void *)(A + p * PG), (unsigned long long)want(stage, p));
			return 1;
		}
	printf("ok %d\n", stage);
	return 0;
}

static void ckpt(const char *dir, int z)
{
	if (z)
		setenv("CRAC_IMAGE_COMPRESS", "1", 1);
	else
		unsetenv("CRAC_IMAGE_COMPRESS");
	if (image_checkpoint(dir, CRAC_KEEP_RUNNING) == CRAC_RESTORED)
		exit(verify());
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: incr_chunks DIR0 DIR1 DIR2 [ZZZ]\n");
		return 2;
	}
	const char *z = argc > 4 ? argv[4] : "100";
	setvbuf(stdout, NULL, _IOLBF, 0);
	alen = 60 * MIB;
	A = mmap(NULL, alen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (A == MAP_FAILED)
		return 1;
	for (uint64_t p = 0; p < alen / PG; p++)
		fill(A, p, 1);
	stage = 0;
	ckpt(argv[1], z[0] == '1');
	for (uint64_t p = 0; p < 10; p++)
		fill(A, p, 2);
	fill(A, 30 * MIB / PG, 2);
	stage = 1;
	ckpt(argv[2], z[1] == '1');
	char *b = mremap(A, alen, 72 * MIB, MREMAP_MAYMOVE);
	if (b == MAP_FAILED) {
		perror("mremap");
		return 1;
	}
	A = b;
	alen = 72 * MIB;
	fill(A, 5 * MIB / PG, 3);
	for (uint64_t p = 60 * MIB / PG; p < alen / PG; p += 2)
		fill(A, p, 3);
	stage = 2;
	ckpt(argv[3], z[2] == '1');
	printf("continued\n");
	return 0;
}
