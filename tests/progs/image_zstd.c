/* SPDX-License-Identifier: MIT */
/*
 * image_zstd - compressed images (tests/cli/image_compress.bats).
 *
 *   image_zstd DIR0 DIR1 [MiB] [api]
 *       stage 0: builds its memory, checkpoints into DIR0 with keep-running;
 *       changes it (stage 1), checkpoints into DIR1 and exits there.
 *       Fails if the checkpoint left a child process behind.
 *       Compression is asked for by the caller ($CRAC_IMAGE_COMPRESS), or
 *       with "api" by the CRAC_COMPRESS flag; "api0" / "api1": the flag
 *       for the checkpoint of stage 0 / 1 only (a chain with compressed
 *       and uncompressed images).
 *   crac restore DIRn
 *       verifies every page against what stage n held: "ok stage N".
 *
 * The big mapping (MiB mebibytes, default 8): its first half text-like
 * (words of a small dictionary: compresses well), the next quarter
 * pseudo-random (does not compress: stored as it is), the last quarter
 * never touched. Stage 1 rewrites every 50th text page and every 50th
 * random page. Prints "FAIL: ..." and exits 1 on any difference.
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

#define PG 4096ul

static unsigned char *big;
static size_t n_pages;
static int stage;
static bool api;
static int api_stage = -1;   /* api0 / api1: the flag for that stage only */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static const char *const words[] = {
	"checkpoint", "restore", "the", "process", "memory", "page", "image", "of", "and", "zstd",
	"frame", "chunk", "lazy", "loader", "heap", "to", "a", "is", "in", "file",
};

/* Which generation page p holds at stage s: 0 text, 1 random, -1 zero. */
static int kind(size_t p)
{
	return p < n_pages / 2 ? 0 : p < n_pages * 3 / 4 ? 1 : -1;
}

static int gen_of(int s, size_t p)
{
	return s >= 1 && p % 50 == 1 ? 1 : 0;
}

static void make_page(unsigned char *out, size_t p, int gen)
{
	if (kind(p) < 0) {
		memset(out, 0, PG);
	} else if (kind(p) == 1) {
		for (size_t i = 0; i < PG / 8; i++) {
			uint64_t w = mix(p * 4096 + i + (uint64_t)gen * 0x1000000000ull);
			memcpy(out + i * 8, &w, 8);
		}
	} else {
		size_t at = 0;
		for (uint64_t k = 0; at < PG; k++) {
			const char *w = words[mix(p * 1000 + k + (uint64_t)gen * 77777) % 20];
			for (size_t j = 0; w[j] && at < PG; j++)
				out[at++] = (unsigned char)w[j];
			if (at < PG)
				out[at++] = k % 12 == 11 ? '\n' : ' ';
		}
	}
}

static void change(int s)
{
	for (size_t p = 0; p < n_pages; p++)
		if (kind(p) >= 0 && (s == 0 || gen_of(s, p) != gen_of(s - 1, p)))
			make_page(big + p * PG, p, gen_of(s, p));
	stage = s;
}

static int verify(void)
{
	unsigned char want[PG];

	for (size_t p = 0; p < n_pages; p++) {
		make_page(want, p, gen_of(stage, p));
		if (memcmp(big + p * PG, want, PG)) {
			printf("FAIL: stage %d: page %zu differs\n", stage, p);
			return 1;
		}
	}
	printf("ok stage %d\n", stage);
	return 0;
}

/* Checkpoints into dir; returns CRAC_CONTINUED (keep) or CRAC_RESTORED. */
static int checkpoint(const char *dir, bool keep)
{
	bool z = api && (api_stage < 0 || api_stage == stage);

	return image_checkpoint(dir, (keep ? CRAC_KEEP_RUNNING : 0u) | (z ? CRAC_COMPRESS : 0));
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: image_zstd DIR0 DIR1 [MiB] [api]\n");
		return 2;
	}
	size_t len = (argc > 3 ? strtoull(argv[3], NULL, 10) : 8) << 20;
	api = argc > 4 && !strncmp(argv[4], "api", 3);
	if (api && argv[4][3])
		api_stage = argv[4][3] - '0';
	n_pages = len / PG;
	setvbuf(stdout, NULL, _IONBF, 0);
	big = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (big == MAP_FAILED)
		return 1;
	change(0);
	if (checkpoint(argv[1], true) == CRAC_RESTORED)
		return verify();
	/* the engine left no child behind (its compressor, its helpers) */
	if (waitpid(-1, NULL, WNOHANG | __WALL) != -1) {
		printf("FAIL: a child process is left after the checkpoint\n");
		return 1;
	}
	printf("continued after stage 0\n");
	change(1);
	if (checkpoint(argv[2], false) == CRAC_RESTORED)
		return verify();
	return 0;
}
