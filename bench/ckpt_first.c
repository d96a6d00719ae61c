/*
 * ckpt_first.c - the first checkpoint of a fresh process, and the ones
 * after it. Driven by bench/checkpoint.sh.
 *
 *   ckpt_first checkpoint DIR MIB PATTERN REPS
 *       Closes every descriptor above 2, maps MIB mebibytes of anonymous
 *       memory and writes every page (PATTERN "dirty": every 8-byte word a
 *       different non-zero value; "half": the same, then every other 64 KiB
 *       block cleared again, so half of the pages are all zero but
 *       resident), then REPS times: removes DIR, syncs, and times
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

static int build(const char *mib_arg, const char *pattern)
{
	size_t len = (size_t)strtoull(mib_arg, NULL, 10) << 20;
	bool half = !strcmp(pattern, "half");
	if (!len || (!half && strcmp(pattern, "dirty"))) {
		fprintf(stderr, "ckpt_first: bad size %s or pattern %s (dirty, half)\n", mib_arg, pattern);
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
	if (half)
		for (size_t b = 1; b < len / 65536; b += 2)
			memset((char *)heap + b * 65536, 0, 65536);
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
