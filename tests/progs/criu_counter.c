/* SPDX-License-Identifier: MIT */
/*
 * criu_counter - the image engine's key end-to-end checks, for any engine
 * that writes an image (image, criu): tests/cli/engine_criu.bats runs it
 * with both.
 *
 *   criu_counter ENGINE DIR [CYCLES [keep]]
 *
 * Builds state (heap blocks, a 4 MiB anonymous mapping with every page
 * touched, a static array), prints
 *
 *   before: checksum=<hex> gen=<n> id=<uuid> engine=<e>
 *
 * and checkpoints into DIR with ENGINE (the original exits 0 there; with
 * "keep" it goes on and prints "continued: ..."). Every restored instance
 * prints what its after_restore callback saw and checks the rest:
 *
 *   restored: checksum=<same> outcome=2 engine=<e> gen=<n+1> id=<uuid>
 *             id_changed=yes jump_ok=yes args=<argc>:<a,b> env=[K=V]... CRAC_T=<getenv>
 *   rand=<first crac_random_u64 after the restore, hex>
 *   clock ok / malloc ok / dontneed ok
 *
 * then, until CYCLES restores were made (default 1), checkpoints into DIR
 * again (a restored process checkpointed again: generation 2...). With
 * CRAC_T_IGNCHLD set, SIGCHLD is ignored (children are reaped by the
 * kernel, as in programs that do not wait for theirs). Prints
 * "FAIL: ..." and exits 1 on any problem.
 */
#include <crac.h>

#include "fnv.h"

#include <errno.h>
#include <signal.h>
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
static size_t big_len = 4u << 20;
static char seen[2048];
static int seen_outcome;
static uint64_t seen_gen;
static uint8_t seen_id[16];
static bool seen_jump_ok;

static uint64_t checksum(void)
{
	uint64_t h = FNV_START;
	h = fnv(h, static_state, sizeof(static_state));
	for (int i = 0; i < 64; i++)
		h = fnv(h, blocks[i], (size_t)(i + 1) * 100);
	for (size_t off = 0; off < big_len; off += 4096)
		h = fnv(h, big + off, 8);
	return h;
}

static int after(const crac_event *ev, void *arg)
{
	size_t n = 0;

	(void)arg;
	seen_outcome = ev->outcome;
	seen_gen = ev->generation;
	memcpy(seen_id, ev->instance_id, 16);
	/* the wall clock moved forward between checkpoint and restore */
	seen_jump_ok = ev->restore_realtime > ev->checkpoint_realtime && ev->realtime_jump > 0 &&
		       ev->checkpoint_realtime > 0;
	n += (size_t)snprintf(seen + n, sizeof(seen) - n, "args=%d:", ev->argc);
	for (int i = 0; i < ev->argc && n < sizeof(seen); i++)
		n += (size_t)snprintf(seen + n, sizeof(seen) - n, "%s%s", ev->argv[i], i + 1 < ev->argc ? "," : "");
	for (char *const *e = ev->envp; e && *e && n < sizeof(seen); e++)
		n += (size_t)snprintf(seen + n, sizeof(seen) - n, " env=[%s]", *e);
	if (n < sizeof(seen)) {
		const char *t = getenv("CRAC_T");
		snprintf(seen + n, sizeof(seen) - n, " CRAC_T=%s", t ? t : "(unset)");
	}
	return 0;
}

static void uuid(const uint8_t id[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0], id[1],
		 id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11], id[12], id[13], id[14],
		 id[15]);
}

static int checks(void)
{
	struct timespec a;
	if (clock_gettime(CLOCK_MONOTONIC, &a) || a.tv_sec == 0) {
		printf("FAIL: clock_gettime\n");
		return 1;
	}
	printf("clock ok\n");
	for (int i = 0; i < 1000; i++) {
		char *p = malloc((size_t)(i % 50 + 1) * 1000);
		if (!p) {
			printf("FAIL: malloc\n");
			return 1;
		}
		memset(p, 1, (size_t)(i % 50 + 1) * 1000);
		free(p);
	}
	printf("malloc ok\n");
	unsigned char *copy = malloc(big_len);
	if (!copy)
		return 1;
	memcpy(copy, big, big_len);
	if (madvise(big, big_len, MADV_DONTNEED) < 0) {
		printf("FAIL: madvise: %s\n", strerror(errno));
		return 1;
	}
	for (size_t off = 0; off < big_len; off += 4096)
		if (big[off] || big[off + 4095]) {
			printf("FAIL: page at +%zu not zero after MADV_DONTNEED\n", off);
			return 1;
		}
	memcpy(big, copy, big_len);   /* the state stays the same for the next cycle */
	free(copy);
	printf("dontneed ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: criu_counter ENGINE DIR [CYCLES [keep]]\n");
		return 2;
	}
	int cycles = argc > 3 ? atoi(argv[3]) : 1;
	/* A program that reaps no child (the engine's own must still be waited for) */
	if (getenv("CRAC_T_IGNCHLD"))
		signal(SIGCHLD, SIG_IGN);
	bool keep = argc > 4 && !strcmp(argv[4], "keep");

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
		memset(big + off, (int)(off >> 12) | 1, 4096);

	struct crac_resource_def def = { .name = "counter", .after_restore = after };
	crac_register(NULL, &def, NULL);

	uint64_t before = checksum();
	for (int cycle = 1; cycle <= cycles; cycle++) {
		uint8_t id[16];
		uint64_t gen;
		char text[37];
		crac_instance_id(id, &gen);
		uuid(id, text);
		printf("before: checksum=%016llx gen=%llu id=%s engine=%s\n", (unsigned long long)before,
		       (unsigned long long)gen, text, argv[1]);
		fflush(stdout);
		int64_t mono_before = crac_clock_monotonic_ns();

		struct crac_options o;
		crac_options_init(&o);
		o.engine = argv[1];
		o.image_dir = argv[2];
		if (keep)
			o.flags |= CRAC_KEEP_RUNNING;
		crac_report *rep = NULL;
		int rc = crac_checkpoint_restore(&o, &rep);
		if (keep && rc == CRAC_CONTINUED) {
			crac_report_free(rep);
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
		char seen_text[37];
		uuid(seen_id, seen_text);
		printf("restored: checksum=%016llx outcome=%d engine=%s gen=%llu id=%s id_changed=%s jump_ok=%s %s\n",
		       (unsigned long long)now, seen_outcome, argv[1], (unsigned long long)seen_gen, seen_text,
		       memcmp(seen_id, id, 16) ? "yes" : "no", seen_jump_ok ? "yes" : "no", seen);
		printf("rand=%016llx\n", (unsigned long long)crac_random_u64());
		if (now != before) {
			printf("FAIL: checksum differs\n");
			return 1;
		}
		if (crac_clock_monotonic_ns() < mono_before) {
			printf("FAIL: crac_clock_monotonic_ns went backwards\n");
			return 1;
		}
		if (checks())
			return 1;
		fflush(stdout);
	}
	return 0;
}
