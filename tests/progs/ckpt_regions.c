/* SPDX-License-Identifier: MIT */
/*
 * ckpt_regions - one anonymous mapping with many separate dirty regions.
 *
 *   ckpt_regions DIR [REGIONS]
 *
 * Maps 2 * REGIONS pages (default 3000 regions) of anonymous memory and
 * writes every other page, so that the mapping holds REGIONS separate runs
 * of written pages between untouched ones (a JVM heap under allocation
 * looks like this). Checkpoints into DIR with the image engine (the
 * original exits 0 there) and, restored, checks every page (the untouched
 * ones read as zeros):
 *
 *   before: checksum=X regions=N
 *   restored: checksum=X
 *   pages ok
 *
 * or "FAIL: ..." and exit 1.
 */
#include <crac.h>

#include "fnv.h"
#include "image_ckpt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096u

static unsigned char *map;
static size_t n_regions;

/* Over the written pages only: reading an untouched page would map it. */
static uint64_t checksum(void)
{
	uint64_t h = FNV_START;

	for (size_t i = 0; i < n_regions; i++)
		h = fnv(h, map + 2 * i * PG, PG);
	return h;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: ckpt_regions DIR [REGIONS]\n");
		return 2;
	}
	n_regions = argc > 2 ? strtoul(argv[2], NULL, 10) : 3000;
	map = mmap(NULL, n_regions * 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	/* Written pages at even indexes; odd ones never touched. */
	for (size_t i = 0; i < n_regions; i++)
		memset(map + 2 * i * PG, (int)(i * 7 + 1), PG);

	uint64_t before = checksum();
	printf("before: checksum=%016llx regions=%zu\n", (unsigned long long)before, n_regions);
	fflush(stdout);

	image_restored(argv[1]);

	uint64_t now = checksum();
	printf("restored: checksum=%016llx\n", (unsigned long long)now);
	for (size_t i = 0; i < 2 * n_regions; i++) {
		unsigned char want = i % 2 ? 0 : (unsigned char)((i / 2) * 7 + 1);
		for (size_t k = 0; k < PG; k++)
			if (map[i * PG + k] != want) {
				printf("FAIL: page %zu byte %zu is %u, not %u\n", i, k, map[i * PG + k], want);
				return 1;
			}
	}
	if (now != before) {
		printf("FAIL: checksum differs\n");
		return 1;
	}
	printf("pages ok\n");
	return 0;
}
