/* SPDX-License-Identifier: MIT */
/*
 * incr_near - an incremental checkpoint stores what was written, even in a
 * mapping that lies right next to the checkpointing thread's TLS block
 * (run with CRAC_IMAGE_INCREMENTAL=1).
 *
 *   incr_near DIR0 DIR1
 *       lays out, in a region of its own, a thread's stack, its TLS block
 *       at the top (where glibc puts it for a stack given by
 *       pthread_attr_setstack), and a mapping of 4 MiB one page below and
 *       one page above it (PROT_NONE pages between, so that nothing
 *       merges); fills them, prints "near ADDR LEN" for each, and that
 *       thread checkpoints into DIR0 with keep-running, rewrites page 0 of
 *       each, and checkpoints into DIR1 (exits there).
 *   crac restore DIR1
 *       verifies every page ("ok", or "FAIL: ..." and exit 1).
 *
 * It once used the main thread's TLS block and what room ASLR left next to
 * it; but that room depends on the build: a Debug libcrac is over 2 MiB,
 * placed 2 MiB-aligned, and the TLS block lands in what is left of that
 * hole; under ASan the dynamic linker's TLS mapping lies right below
 * libgcc_s and right above (or a few pages above) libasan's 5.6 MiB .bss,
 * often with no room at all. A stack and TLS block of the program's own
 * are in the same place relative to their neighbours in every build.
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
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PG 4096ul
#define LEN (4ul << 20)        /* each mapping next to the stack */
#define STACK (512ul << 10)   /* the thread's stack, its TLS block at the top: the mapping below
                                 * is within the window too */
#define WINDOW (1ul << 20)    /* the capture's window around its thread pointer */
#define NEAR_MIN 2ul          /* pages of a mapping inside that window, at least: page 0
                                 * and one more, which a window let into it stores */

static unsigned char *near_map[2];
static size_t near_len[2];

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
		for (size_t p = 0; p < near_len[k] / PG; p++)
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

/* Pages of [m, m + len) within WINDOW of fs. */
static uint64_t window_pages(uint64_t m, uint64_t len, uint64_t fs)
{
	uint64_t s = m > fs - WINDOW ? m : fs - WINDOW, e = m + len < fs + WINDOW ? m + len : fs + WINDOW;
	return e > s ? (e - s) / PG : 0;
}

/* The thread that checkpoints: its thread pointer is the one whose window
 * must stay inside the stack's mapping. Exits the process. */
static void *checkpointer(void *arg)
{
	char **argv = arg;
	unsigned long fs = 0;

	if (syscall(SYS_arch_prctl, ARCH_GET_FS, &fs) < 0 || !(fs >= (uintptr_t)near_map[0] + LEN + PG &&
							       fs < (uintptr_t)near_map[1] - PG)) {
		printf("FAIL: the thread pointer %#lx is not in the stack given (%p-%p)\n", fs,
		       (void *)(near_map[0] + LEN + PG), (void *)(near_map[1] - PG));
		exit(1);
	}
	for (int k = 0; k < 2; k++)
		if (window_pages((uintptr_t)near_map[k], LEN, fs) < NEAR_MIN) {
			printf("FAIL: mapping %p has fewer than %lu pages within 1 MiB of the thread pointer %#lx\n",
			       (void *)near_map[k], NEAR_MIN, fs);
			exit(1);
		}
	if (image_checkpoint(argv[1], CRAC_KEEP_RUNNING) == CRAC_RESTORED)
		exit(verify());
	for (int k = 0; k < 2; k++)
		fill(near_map[k], 0, 1);
	if (image_checkpoint(argv[2], 0) == CRAC_RESTORED)
		exit(verify());
	exit(0);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: incr_near DIR0 DIR1\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	/*
	 * [gap][mapping below][gap][stack][gap][mapping above][gap]: the gaps
	 * stay PROT_NONE (distinct mappings: nothing merges), the rest is
	 * mapped over the reservation.
	 */
	size_t total = 4 * PG + 2 * LEN + STACK;
	unsigned char *r = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED) {
		perror("incr_near: mmap of the region");
		return 1;
	}
	unsigned char *at[3] = { r + PG, r + 2 * PG + LEN, r + 3 * PG + LEN + STACK };
	size_t len[3] = { LEN, STACK, LEN };
	for (int i = 0; i < 3; i++)
		if (mmap(at[i], len[i], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
		    at[i]) {
			perror("incr_near: mmap");
			return 1;
		}
	near_map[0] = at[0];
	near_map[1] = at[2];
	for (int k = 0; k < 2; k++) {
		near_len[k] = LEN;
		for (size_t p = 0; p < LEN / PG; p++)
			fill(near_map[k], p, 0);
		printf("near %lx %lx\n", (unsigned long)(uintptr_t)near_map[k], LEN);
	}
	pthread_attr_t a;
	pthread_t t;
	int e = pthread_attr_init(&a);
	if (!e)
		e = pthread_attr_setstack(&a, at[1], STACK);
	if (!e)
		e = pthread_create(&t, &a, checkpointer, argv);
	if (e) {
		printf("FAIL: the checkpointing thread: %s\n", strerror(e));
		return 1;
	}
	pthread_join(t, NULL);   /* it exits the process */
	return 1;
}
