/* SPDX-License-Identifier: MIT */
/*
 * ckpt_incr.c - incremental against full checkpoints of a large heap with
 * a small part of it written between checkpoints. Driven by
 * bench/incremental.sh.
 *
 *   ckpt_incr DIR MIB PERMILLE REPS
 *       Closes every descriptor above 2, maps MIB mebibytes of anonymous
 *       memory and writes every page, then checkpoints (engine "image",
 *       CRAC_KEEP_RUNNING, CRAC_IMAGE_INCREMENTAL=1) into DIR/base: a full
 *       image, after which the process tracks the pages it writes. Then
 *       REPS times (at most 7: a chain holds 8 images): writes PERMILLE
 *       per mille of the pages (spread evenly) and times an incremental
 *       checkpoint into DIR/incN (parent: the previous image) and, after
 *       writing the same pages again, a full one into DIR/fullN
 *       (CRAC_IMAGE_INCREMENTAL unset), each from just before the call to
 *       its CRAC_CONTINUED return (written, fsync'd, verified, renamed
 *       into place). Prints "incr rep=I ms=T" and "full rep=I ms=T". A
 *       last incremental image is then written without keep-running into
 *       DIR/last (no pages to protect again for a next one; the process
 *       exits in the call: its CRAC_IMAGE_STATS line says the time). A
 *       restored instance checks the heap and prints "restored sum=ok"
 *       (or BAD). With CRAC_BENCH_INCR_ONLY=1 in the environment, no full
 *       images (quicker paired runs of incremental ones).
 */
#include <crac.h>

#include <linux/close_range.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t *heap;
static size_t n_pages;
static uint64_t gen;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint64_t sum(void)
{
	uint64_t s = 0;
	for (size_t i = 0; i < n_pages * 512; i++)
		s = s * 31 + heap[i];
	return s;
}

/* Checkpoints into dir; exits in a restored instance after checking. */
static double checkpoint(const char *dir, bool keep, uint64_t want)
{
	struct crac_options o;
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = dir;
	if (keep)
		o.flags |= CRAC_KEEP_RUNNING;
	crac_report *rep = NULL;
	double t0 = now_ms();
	int rc = crac_checkpoint_restore(&o, &rep);
	double t = now_ms() - t0;
	if (rc == CRAC_RESTORED) {
		printf("restored sum=%s\n", sum() == want ? "ok" : "BAD");
		exit(0);
	}
	if (rc != CRAC_CONTINUED) {
		printf("checkpoint into %s failed: %d\n", dir, rc);
		if (rep)
			crac_report_print(rep, stdout);
		exit(1);
	}
	crac_report_free(rep);
	return t;
}

static void touch(unsigned permille, unsigned rep)
{
	size_t step = permille ? 1000 / permille : n_pages;
	gen++;
	for (size_t p = rep % step; p < n_pages; p += step)
		heap[p * 512 + gen % 512] += gen;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: ckpt_incr DIR MIB PERMILLE REPS\n");
		return 2;
	}
	syscall(SYS_close_range, 3, ~0u, 0);
	size_t mib = strtoull(argv[2], NULL, 10);
	unsigned permille = (unsigned)strtoul(argv[3], NULL, 10), reps = (unsigned)strtoul(argv[4], NULL, 10);
	if (reps > 7)
		reps = 7;
	n_pages = mib << 8;
	heap = mmap(NULL, n_pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (heap == MAP_FAILED)
		return 1;
	for (size_t i = 0; i < n_pages * 512; i++)
		heap[i] = i * 0x9e3779b97f4a7c15ull + 1;
	setvbuf(stdout, NULL, _IONBF, 0);
	char path[4096];

	setenv("CRAC_IMAGE_INCREMENTAL", "1", 1);
	snprintf(path, sizeof(path), "%s/base", argv[1]);
	printf("base ms=%.1f\n", checkpoint(path, true, sum()));
	for (unsigned r = 1; r <= reps; r++) {
		touch(permille, r);
		snprintf(path, sizeof(path), "%s/inc%u", argv[1], r);
		printf("incr rep=%u ms=%.1f\n", r, checkpoint(path, true, sum()));
		if (getenv("CRAC_BENCH_INCR_ONLY"))
			continue;
		/* the same amount written, then a full image (tracking goes on:
		 * the next incremental image still has the right parent) */
		unsetenv("CRAC_IMAGE_INCREMENTAL");
		snprintf(path, sizeof(path), "%s/full%u", argv[1], r);
		printf("full rep=%u ms=%.1f\n", r, checkpoint(path, true, sum()));
		setenv("CRAC_IMAGE_INCREMENTAL", "1", 1);
	}
	touch(permille, 0);
	snprintf(path, sizeof(path), "%s/last", argv[1]);
	checkpoint(path, false, sum());   /* exits there */
	return 0;
}
