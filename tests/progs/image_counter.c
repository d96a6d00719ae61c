/* SPDX-License-Identifier: MIT */
/*
 * image_counter - single-threaded image engine test program.
 *
 *   image_counter DIR [MiB [keep]]
 *
 * Builds state (heap blocks from malloc, a large anonymous mapping of MiB
 * mebibytes (default 4), a static array, a file-backed library), prints its
 * checksum, checkpoints with the image engine into DIR (the original
 * process exits 0 there) and, in every restored instance, prints:
 *
 *   restored: checksum=<same as before> pid=<getpid()> args=<new args>
 *   clock ok / malloc ok / dontneed ok
 *
 * and exits 0, or prints "FAIL: ..." and exits 1.
 */
#include <crac.h>

#include "fnv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t static_state[1024];
static char *blocks[64];
static unsigned char *big;
static size_t big_len;
static int new_argc = -1;
static char new_args[256];


static uint64_t checksum(void)
{
	uint64_t h = FNV_START;
	h = fnv(h, static_state, sizeof(static_state));
	for (int i = 0; i < 64; i++)
		h = fnv(h, blocks[i], (size_t)(i + 1) * 100);
	/* sample the big mapping: one word per page plus its ends */
	for (size_t off = 0; off < big_len; off += 4096)
		h = fnv(h, big + off, 8);
	h = fnv(h, big + big_len - 64, 64);
	return h;
}

static int after(const crac_event *ev, void *arg)
{
	(void)arg;
	new_argc = ev->argc;
	new_args[0] = 0;
	for (int i = 0; i < ev->argc; i++) {
		strncat(new_args, ev->argv[i], sizeof(new_args) - strlen(new_args) - 2);
		strcat(new_args, i + 1 < ev->argc ? "," : "");
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: image_counter DIR [MiB]\n");
		return 2;
	}
	big_len = (argc > 2 ? strtoull(argv[2], NULL, 10) : 4) << 20;

	for (int i = 0; i < 1024; i++)
		static_state[i] = (uint64_t)i * 2654435761u;
	for (int i = 0; i < 64; i++) {
		blocks[i] = malloc((size_t)(i + 1) * 100);
		memset(blocks[i], 'a' + i % 26, (size_t)(i + 1) * 100);
	}
	big = mmap(NULL, big_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (big == MAP_FAILED)
		return 1;
	for (size_t off = 0; off < big_len; off += 4096)
		memset(big + off, (int)(off >> 12), 4096);   /* every page touched */

	struct crac_resource_def def = { .name = "counter", .after_restore = after };
	crac_register(NULL, &def, NULL);

	uint64_t before = checksum();
	int pid_before = getpid();
	printf("before: checksum=%016llx\n", (unsigned long long)before);
	fflush(stdout);

	struct crac_options o;
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = argv[1];
	bool keep = argc > 3 && !strcmp(argv[3], "keep");
	if (keep)
		o.flags |= CRAC_KEEP_RUNNING;
	crac_report *rep = NULL;
	int rc = crac_checkpoint_restore(&o, &rep);
	if (keep && rc == CRAC_CONTINUED) {
		/* keep-running: the original goes on and changes its state; the
		 * image keeps the state of the checkpoint. */
		crac_report_free(rep);
		static_state[0] ^= 0x5555;
		printf("continued: checksum=%016llx pid=%d\n", (unsigned long long)checksum(), getpid());
		return 0;
	}
	if (rc != CRAC_RESTORED) {
		printf("FAIL: crac_checkpoint_restore returned %d\n", rc);
		if (rep)
			crac_report_print(rep, stdout);
		return 1;
	}
	if (rep) {
		crac_report_print(rep, stdout);
		crac_report_free(rep);
	}

	uint64_t now = checksum();
	printf("restored: checksum=%016llx pid_changed=%s args=%d:%s\n", (unsigned long long)now,
	       getpid() != pid_before ? "yes" : "no", new_argc, new_args);
	printf("pid=%d\n", getpid());
	if (now != before) {
		printf("FAIL: checksum differs\n");
		return 1;
	}

	/* The vDSO is back where glibc expects it. */
	struct timespec a, b;
	if (clock_gettime(CLOCK_MONOTONIC, &a) || clock_gettime(CLOCK_REALTIME, &b) || a.tv_sec == 0) {
		printf("FAIL: clock_gettime\n");
		return 1;
	}
	printf("clock ok\n");

	/* malloc keeps working: brk and the main arena were restored. */
	for (int i = 0; i < 1000; i++) {
		char *p = malloc((size_t)(i % 50 + 1) * 1000);
		if (!p) {
			printf("FAIL: malloc\n");
			return 1;
		}
		memset(p, 1, (size_t)(i % 50 + 1) * 1000);
		if (i % 3)
			free(p);
	}
	for (int i = 0; i < 64; i++)
		free(blocks[i]);
	void *p = malloc(64 << 20);   /* mmap'd */
	if (!p) {
		printf("FAIL: big malloc\n");
		return 1;
	}
	memset(p, 2, 64 << 20);
	free(p);
	printf("malloc ok\n");

	/* Restored memory is anonymous memory: DONTNEED gives zeros. */
	if (madvise(big, big_len, MADV_DONTNEED) < 0) {
		printf("FAIL: madvise: %s\n", strerror(errno));
		return 1;
	}
	for (size_t off = 0; off < big_len; off += 4096)
		if (big[off] || big[off + 4095]) {
			printf("FAIL: page at +%zu not zero after MADV_DONTNEED\n", off);
			return 1;
		}
	if (madvise(big, big_len, MADV_FREE) < 0) {
		printf("FAIL: MADV_FREE: %s\n", strerror(errno));
		return 1;
	}
	printf("dontneed ok\n");
	return 0;
}
