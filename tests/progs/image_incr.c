/* SPDX-License-Identifier: MIT */
/*
 * image_incr - incremental checkpoints (run with CRAC_IMAGE_INCREMENTAL=1).
 *
 *   image_incr DIR0 DIR1 DIR2 [MiB]
 *       stage 0: builds its memory, checkpoints into DIR0 with keep-running;
 *       changes it (stage 1), checkpoints into DIR1 with keep-running;
 *       changes it (stage 2), checkpoints into DIR2 and exits there.
 *   crac restore DIRn [-- next DIR]
 *       verifies every page against what stage n held ("ok stage N");
 *       with "next DIR", makes the changes of stage n+1 and checkpoints
 *       into DIR (then exits: restore DIR to see stage n+1).
 *   crac restore DIRn -- next-unread DIR
 *       the same without verifying first: the pages the changes do not
 *       touch are never read before the checkpoint (a lazy restore with
 *       CRAC_LAZY_PREFETCH=off has not loaded them yet).
 *
 * What changes from one stage to the next (big: an anonymous mapping of
 * MiB mebibytes, default 16; heap: 96 KiB malloc'd from the brk heap; extra: a mapping
 * made after stage 0; gone: a mapping unmapped after stage 0):
 *   stage 0   big: every page but those p % 7 == 3 (never touched: holes)
 *   stage 1   big: p % 100 == 1 rewritten; p % 100 == 2 dropped with
 *             MADV_DONTNEED (zeros); p % 100 == 3 written (holes before);
 *             p % 100 == 5 written by the kernel (read(2) from a pipe);
 *             pages 8..11 written with zeros; heap rewritten; extra mapped;
 *             gone unmapped
 *   stage 2   big: p % 100 == 10 rewritten; p % 100 == 1 dropped; a forked
 *             child writes p % 100 == 11 (in its own memory only); extra:
 *             its second half rewritten; heap rewritten again; big's pages
 *             300..309 made read-only (three mappings)
 * A second thread owns tbuf (1 MiB): at every stage it rewrites the pages
 * p % 3 == stage % 3 with that stage's generation (asked through a
 * condition variable, so it is waiting in pthread_cond_wait at every
 * checkpoint).
 * Prints "FAIL: ..." and exits 1 on any difference.
 */
#include <crac.h>
#include "image_ckpt.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096ul

static unsigned char *big, *extra, *gone, *heap;
static size_t big_len, n_pages;
static int stage;
static const size_t extra_len = 2u << 20, gone_len = 1u << 20, heap_len = 96u << 10;
static char next_dir[4096];
static bool next_unread;

/* the second thread and its memory */
#define TBUF_LEN (1u << 20)
static unsigned char *tbuf;
static pthread_mutex_t tlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tcond = PTHREAD_COND_INITIALIZER;
static int t_asked = -1, t_done = -1;

/* What page p of tbuf holds at stage s: the last stage that rewrote it. */
static int tbuf_gen(int s, size_t p)
{
	for (int k = s; k >= 0; k--)
		if (p % 3 == (size_t)k % 3)
			return 200 + k;
	return -1;
}

static void *writer(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&tlock);
	for (;;) {
		while (t_asked == t_done)
			pthread_cond_wait(&tcond, &tlock);
		int s = t_asked;
		for (size_t p = (size_t)s % 3; p < TBUF_LEN / PG; p += 3)
			for (size_t i = 0; i < PG / 8; i++)
				((uint64_t *)(tbuf + p * PG))[i] = (p << 20) ^ (i * 0x9e3779b97f4a7c15ull) ^
								   (0x5eed + (uint64_t)(200 + s) * 0x1234567);
		t_done = s;
		pthread_cond_broadcast(&tcond);
	}
	return NULL;
}

/* Has the thread write stage s, and waits for it. */
static void thread_stage(int s)
{
	pthread_mutex_lock(&tlock);
	t_asked = s;
	pthread_cond_broadcast(&tcond);
	while (t_done != s)
		pthread_cond_wait(&tcond, &tlock);
	pthread_mutex_unlock(&tlock);
}

static uint64_t word(size_t page, size_t i, int gen)
{
	return (page << 20) ^ (i * 0x9e3779b97f4a7c15ull) ^ (0x5eed + (uint64_t)gen * 0x1234567);
}

static void fill_page(unsigned char *base, size_t p, int gen)
{
	for (size_t i = 0; i < PG / 8; i++)
		((uint64_t *)(base + p * PG))[i] = word(p, i, gen);
}

/* What page p of big holds at stage s: -1 zeros, else the generation. */
static int big_gen(int s, size_t p)
{
	int g = p % 7 == 3 ? -1 : 0;
	if (s >= 1) {
		if (p % 100 == 1)
			g = 1;
		if (p % 100 == 2)
			g = -1;
		if (p % 100 == 3)
			g = 1;
		if (p % 100 == 5)
			g = 5;   /* the kernel's write, see below */
		if (p >= 8 && p < 12)
			g = -1;
	}
	if (s >= 2) {
		if (p % 100 == 10)
			g = 2;
		if (p % 100 == 1)
			g = -1;
	}
	return g;
}

static bool page_is(const unsigned char *base, size_t p, int gen)
{
	for (size_t i = 0; i < PG / 8; i++) {
		uint64_t want = gen < 0 ? 0 : word(p, i, gen);
		if (((const uint64_t *)(base + p * PG))[i] != want)
			return false;
	}
	return true;
}

static int fail(const char *what, size_t p)
{
	printf("FAIL: stage %d: %s (page %zu)\n", stage, what, p);
	return 1;
}

static int verify(void)
{
	for (size_t p = 0; p < n_pages; p++)
		if (!page_is(big, p, big_gen(stage, p)))
			return fail("big mapping differs", p);
	for (size_t p = 0; p < heap_len / PG; p++)
		if (!page_is(heap, p, 100 + stage))
			return fail("heap block differs", p);
	for (size_t p = 0; p < TBUF_LEN / PG; p++)
		if (!page_is(tbuf, p, tbuf_gen(stage, p)))
			return fail("the second thread's memory differs", p);
	/* the thread still works */
	thread_stage(stage + 10);
	for (size_t p = (size_t)(stage + 10) % 3; p < TBUF_LEN / PG; p += 3)
		if (!page_is(tbuf, p, 200 + stage + 10))
			return fail("the second thread did not write after the restore", p);
	for (size_t p = (size_t)(stage + 10) % 3; p < TBUF_LEN / PG; p += 3) {   /* as it was */
		if (tbuf_gen(stage, p) < 0)
			memset(tbuf + p * PG, 0, PG);
		else
			fill_page(tbuf, p, tbuf_gen(stage, p));
	}
	if (stage >= 1) {
		for (size_t p = 0; p < extra_len / PG; p++)
			if (!page_is(extra, p, stage >= 2 && p >= extra_len / PG / 2 ? 22 : 11))
				return fail("extra mapping differs", p);
		if (msync(gone, gone_len, MS_ASYNC) == 0 || errno != ENOMEM)
			return fail("the unmapped mapping is back", 0);
	} else {
		for (size_t p = 0; p < gone_len / PG; p++)
			if (!page_is(gone, p, 7))
				return fail("second mapping differs", p);
	}
	/* anonymous semantics survive: a dropped page reads zeros */
	madvise(big, PG, MADV_DONTNEED);
	if (!page_is(big, 0, -1))
		return fail("MADV_DONTNEED does not give zeros", 0);
	fill_page(big, 0, big_gen(stage, 0));
	printf("ok stage %d\n", stage);
	return 0;
}

/* The changes that lead to stage s. */
static int change(int s)
{
	if (s == 1) {
		int fds[2];
		if (pipe(fds) < 0)
			return fail("pipe", 0);
		for (size_t p = 0; p < n_pages; p++) {
			if (p % 100 == 1 || p % 100 == 3)
				fill_page(big, p, 1);
			else if (p % 100 == 2)
				madvise(big + p * PG, PG, MADV_DONTNEED);
			else if (p % 100 == 5) {
				/* the kernel writes the page: read(2) from a pipe */
				static unsigned char buf[PG];
				for (size_t i = 0; i < PG / 8; i++)
					((uint64_t *)buf)[i] = word(p, i, 5);
				for (size_t done = 0; done < PG;) {
					ssize_t n = write(fds[1], buf + done, PG - done);
					ssize_t m = n > 0 ? read(fds[0], big + p * PG + done, (size_t)n) : -1;
					if (m != n)
						return fail("pipe transfer", p);
					done += (size_t)n;
				}
			}
		}
		close(fds[0]);
		close(fds[1]);
		memset(big + 8 * PG, 0, 4 * PG);
		extra = mmap(NULL, extra_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (extra == MAP_FAILED)
			return fail("mmap", 0);
		for (size_t p = 0; p < extra_len / PG; p++)
			fill_page(extra, p, 11);
		munmap(gone, gone_len);
	} else if (s == 2) {
		for (size_t p = 0; p < n_pages; p++) {
			if (p % 100 == 10)
				fill_page(big, p, 2);
			else if (p % 100 == 1)
				madvise(big + p * PG, PG, MADV_DONTNEED);
		}
		pid_t child = fork();
		if (child == 0) {
			for (size_t p = 11; p < n_pages; p += 100)
				fill_page(big, p, 9);
			_exit(0);
		}
		if (child < 0 || waitpid(child, NULL, 0) != child)
			return fail("fork", 0);
		for (size_t p = extra_len / PG / 2; p < extra_len / PG; p++)
			fill_page(extra, p, 22);
		/* big split in three mappings: chunks of the images below now
		 * straddle mappings (the loader copies through a buffer) */
		if (mprotect(big + 300 * PG, 10 * PG, PROT_READ) < 0)
			return fail("mprotect", 300);
	}
	for (size_t p = 0; p < heap_len / PG; p++)
		fill_page(heap, p, 100 + s);
	thread_stage(s);
	stage = s;
	return 0;
}

static int after(const crac_event *ev, void *arg)
{
	(void)arg;
	if (ev->argc == 2 && (!strcmp(ev->argv[0], "next") || !strcmp(ev->argv[0], "next-unread"))) {
		snprintf(next_dir, sizeof(next_dir), "%s", ev->argv[1]);
		next_unread = !strcmp(ev->argv[0], "next-unread");
	}
	return 0;
}

/* Checkpoints into dir; returns CRAC_CONTINUED (keep) or CRAC_RESTORED. */
static int checkpoint(const char *dir, bool keep)
{
	return image_checkpoint(dir, (keep ? CRAC_KEEP_RUNNING : 0u));
}

/* In a restored process: verify, then maybe go on to the next stage. */
static int restored(void)
{
	if (!(next_dir[0] && next_unread) && verify())
		return 1;
	if (!next_dir[0])
		return 0;
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", next_dir);
	next_dir[0] = 0;
	if (change(stage + 1))
		return 1;
	if (checkpoint(dir, false) == CRAC_RESTORED)
		return restored();
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: image_incr DIR0 DIR1 DIR2 [MiB]\n");
		return 2;
	}
	big_len = (argc > 4 ? strtoull(argv[4], NULL, 10) : 16) << 20;
	n_pages = big_len / PG;
	setvbuf(stdout, NULL, _IONBF, 0);
	big = mmap(NULL, big_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gone = mmap(NULL, gone_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	heap = malloc(heap_len + PG);
	if (big == MAP_FAILED || gone == MAP_FAILED || !heap)
		return 1;
	heap = (unsigned char *)(((uintptr_t)heap + PG - 1) & ~(PG - 1));
	for (size_t p = 0; p < n_pages; p++)
		if (big_gen(0, p) == 0)
			fill_page(big, p, 0);
	for (size_t p = 0; p < gone_len / PG; p++)
		fill_page(gone, p, 7);
	for (size_t p = 0; p < heap_len / PG; p++)
		fill_page(heap, p, 100);
	tbuf = mmap(NULL, TBUF_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_t th;
	if (tbuf == MAP_FAILED || pthread_create(&th, NULL, writer, NULL))
		return 1;
	thread_stage(0);

	struct crac_resource_def def = { .name = "incr", .after_restore = after };
	crac_register(NULL, &def, NULL);

	if (checkpoint(argv[1], true) == CRAC_RESTORED)
		return restored();
	printf("continued after stage 0\n");
	if (change(1))
		return 1;
	if (checkpoint(argv[2], true) == CRAC_RESTORED)
		return restored();
	printf("continued after stage 1\n");
	if (change(2))
		return 1;
	if (checkpoint(argv[3], false) == CRAC_RESTORED)
		return restored();
	return 0;
}
