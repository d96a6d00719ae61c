/* SPDX-License-Identifier: MIT */
/*
 * ckpt_first.c - the first checkpoint of a fresh process, and the ones
 * after it. Driven by bench/checkpoint.sh.
 *
 *   ckpt_first checkpoint DIR MIB PATTERN REPS
 *       Closes every descriptor above 2, maps MIB mebibytes of anonymous
 *       memory and writes every page (PATTERN "dirty": every 8-byte word a
 *       different non-zero value; "half": the same, then every other 64 KiB
 *       block cleared again, so half of the pages are all zero but
 *       resident; "halftext": half zeros the same way, the other blocks
 *       text-like: words and numbers, as a program's strings and JSON
 *       would be, each block a different cut of a 1 MiB text), then REPS times: removes DIR, syncs, and times
 *       crac_checkpoint_restore(engine "image", CRAC_KEEP_RUNNING) from just
 *       before the call to its CRAC_CONTINUED return (the image written,
 *       fsync'd and renamed into place). Prints "ckpt rep=I ms=T" (rep 0 is
 *       the process's first checkpoint). A restored instance checks the
 *       heap and prints "restored sum=ok" (or BAD).
 *
 *   ckpt_first hold MIB PATTERN
 *       Closes every descriptor above 2, builds the same heap, prints
 *       "ready pid=P" and waits for a signal (for an external checkpointer
 *       such as CRIU).
 */
#include <crac.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t *heap;
static size_t heap_words;
static uint64_t heap_sum;

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t sum(void)
{
	uint64_t s = 0;
	for (size_t i = 0; i < heap_words; i++)
		s = s * 31 + heap[i];
	return s;
}

/* 1 MiB of text-like bytes: words of a vocabulary and numbers, chosen by
 * a fixed pseudo-random sequence. */
static char *text_pool(size_t size)
{
	static const char *const w[] = {
		"the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
		"on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
		"had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
		"been", "if", "more", "when", "will", "would", "who", "so", "no", "\"name\":", "\"id\":",
		"\"value\":", "{", "}", "[", "],", "checkpoint", "restore", "request", "response", "error",
		"user", "session", "timeout", "buffer",
	};
	char *p = malloc(size);
	uint64_t x = 88172645463325252ull;
	size_t at = 0;
	if (!p)
		return NULL;
	while (at < size) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		char word[32];
		int n = (x >> 40) % 8 == 0 ? snprintf(word, sizeof(word), "%u", (unsigned)(x >> 20) % 100000)
					   : snprintf(word, sizeof(word), "%s", w[(x >> 8) % (sizeof(w) / sizeof(w[0]))]);
		for (int i = 0; i < n && at < size; i++)
			p[at++] = word[i];
		if (at < size)
			p[at++] = (x >> 32) % 11 == 0 ? '\n' : ' ';
	}
	return p;
}

static int build(const char *mib_arg, const char *pattern)
{
	size_t len = (size_t)strtoull(mib_arg, NULL, 10) << 20;
	bool half = !strcmp(pattern, "half"), text = !strcmp(pattern, "halftext");
	if (!len || (!half && !text && strcmp(pattern, "dirty"))) {
		fprintf(stderr, "ckpt_first: bad size %s or pattern %s (dirty, half, halftext)\n", mib_arg, pattern);
		return -1;
	}
	heap = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (heap == MAP_FAILED) {
		perror("mmap");
		return -1;
	}
	heap_words = len / 8;
	for (size_t i = 0; i < heap_words; i++)
		heap[i] = ((i + 1) * 0x9e3779b97f4a7c15ull) | 1;
	if (half || text)
		for (size_t b = 1; b < len / 65536; b += 2)
			memset((char *)heap + b * 65536, 0, 65536);
	if (text) {
		const size_t pool_len = 1u << 20;
		char *pool = text_pool(pool_len);
		if (!pool)
			return -1;
		for (size_t b = 0; b < len / 65536; b += 2) {
			char *blk = (char *)heap + b * 65536;
			memcpy(blk, pool + (b * 4099) % (pool_len - 65536), 65536);
			snprintf(blk, 24, "block %zu ", b);   /* no two blocks alike */
		}
		free(pool);
	}
	heap_sum = sum();
	return 0;
}

static int remove_image(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	struct dirent *e;
	char path[PATH_MAX];
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	return rmdir(dir);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "hold")) {
		/* nothing but stdio for the outside checkpointer (CRIU refuses
		 * a descriptor it cannot place, e.g. one opened in another
		 * mount namespace) */
		close_range(3, ~0u, 0);
		if (build(argv[2], argv[3]) < 0)
			return 2;
		printf("ready pid=%d\n", (int)getpid());
		for (;;)
			pause();
	}
	if (argc != 6 || strcmp(argv[1], "checkpoint")) {
		fprintf(stderr, "usage: ckpt_first checkpoint DIR MIB PATTERN REPS | hold MIB PATTERN\n");
		return 2;
	}
	close_range(3, ~0u, 0);
	const char *dir = argv[2];
	int reps = atoi(argv[5]);
	if (build(argv[3], argv[4]) < 0 || reps < 1)
		return 2;

	struct crac_options o;
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = dir;
	o.flags = CRAC_KEEP_RUNNING;
	for (int i = 0; i < reps; i++) {
		if (remove_image(dir) < 0) {
			fprintf(stderr, "ckpt_first: cannot remove %s: %s\n", dir, strerror(errno));
			return 1;
		}
		sync();
		crac_report *rep = NULL;
		int64_t t0 = mono_ns();
		int rc = crac_checkpoint_restore(&o, &rep);
		int64_t t1 = mono_ns();
		if (rc == CRAC_RESTORED) {
			crac_report_free(rep);
			printf("restored sum=%s\n", sum() == heap_sum ? "ok" : "BAD");
			return sum() == heap_sum ? 0 : 1;
		}
		if (rc != CRAC_CONTINUED) {
			fprintf(stderr, "ckpt_first: crac_checkpoint_restore returned %d\n", rc);
			if (rep)
				crac_report_print(rep, stderr);
			return 1;
		}
		crac_report_free(rep);
		printf("ckpt rep=%d ms=%.3f\n", i, (t1 - t0) / 1e6);
	}
	return 0;
}
