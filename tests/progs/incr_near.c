/* SPDX-License-Identifier: MIT */
/*
 * incr_near - an incremental checkpoint stores what was written, even in a
 * mapping that lies right next to the checkpointing thread's TLS block
 * (run with CRAC_IMAGE_INCREMENTAL=1).
 *
 *   incr_near DIR0 DIR1
 *       maps 4 MiB one page below the mapping that holds the main thread's
 *       thread pointer (fs base) and 4 MiB one page above it (where there
 *       is room: at least one), fills them, prints "near ADDR" for each,
 *       checkpoints into DIR0 with keep-running, rewrites page 0 of each,
 *       and checkpoints into DIR1 (exits there).
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
#define LEN (4ul << 20)

static unsigned char *near_map[2];

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
		for (size_t p = 0; p < LEN / PG; p++)
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

/* The mapping of /proc/self/maps that holds a: [*s, *e). */
static int mapping_of(uint64_t a, uint64_t *s, uint64_t *e)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;

	while (f && !found && fgets(line, sizeof(line), f)) {
		unsigned long ls, le;
		if (sscanf(line, "%lx-%lx", &ls, &le) == 2 && a >= ls && a < le) {
			*s = ls;
			*e = le;
			found = 1;
		}
	}
	if (f)
		fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	unsigned long fs = 0;
	uint64_t ts, te;

	if (argc < 3) {
		fprintf(stderr, "usage: incr_near DIR0 DIR1\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	if (syscall(SYS_arch_prctl, ARCH_GET_FS, &fs) < 0 || !mapping_of(fs, &ts, &te)) {
		printf("FAIL: no mapping holds the thread pointer %#lx\n", fs);
		return 1;
	}
	/* one page apart: separate mappings that never merge with the TLS's */
	uint64_t want[2] = { ts - PG - LEN, te + PG };
	int n = 0;
	for (int k = 0; k < 2; k++) {
		void *m = mmap((void *)(uintptr_t)want[k], LEN, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (m == MAP_FAILED || m != (void *)(uintptr_t)want[k]) {
			if (m != MAP_FAILED)
				munmap(m, LEN);
			continue;
		}
		near_map[k] = m;
		for (size_t p = 0; p < LEN / PG; p++)
			fill(near_map[k], p, 0);
		printf("near %lx\n", (unsigned long)want[k]);
		n++;
	}
	if (!n) {
		printf("FAIL: no room next to the TLS block at %#llx-%#llx\n", (unsigned long long)ts,
		       (unsigned long long)te);
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
