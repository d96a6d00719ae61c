/* SPDX-License-Identifier: MIT */
/*
 * image_heap.c - the image engine with a large dirty heap (DESIGN §7):
 * checkpoint time, restore latency and the cost of touching restored memory.
 * Driven by bench/image.sh; every line it prints is "key=value ...".
 *
 *   image_heap checkpoint DIR MIB REPS
 *       Closes every descriptor above 2, allocates MIB mebibytes with one malloc() (glibc serves it with one
 *       anonymous mapping), fills every 8-byte word with a different non-zero
 *       value (all pages really dirty), then REPS times: removes DIR, and
 *       times crac_checkpoint_restore(engine "image", CRAC_KEEP_RUNNING) from
 *       just before the call to its CRAC_CONTINUED return (the image is
 *       written, fsync'd and renamed into place by then). Prints
 *           ckpt rep=I ms=T
 *       The image left in DIR is the last one. In every instance restored
 *       from it (`crac restore DIR`), prints
 *           restored cb_ns=A ret_ns=B faults=F (page faults since the spawn, at A)
 *       where A is CLOCK_MONOTONIC taken first thing in an after_restore
 *       callback registered with a priority above every built-in one (so it
 *       is the first callback to run) and B is CLOCK_MONOTONIC when
 *       crac_checkpoint_restore() returned CRAC_RESTORED; then reads every
 *       word of the heap (checking the sum against the one taken before the
 *       checkpoint) and writes every byte of it:
 *           touch read_ms=R write_ms=W sum=ok
 *
 *   image_heap fresh MIB
 *       The never-restored baseline: a fresh process mallocs the same heap
 *       and times the first write to every byte (fresh anonymous pages:
 *       what building the heap costs), fills it with the same data, then
 *       times the same read-all and write-all passes:
 *           fresh first_write_ms=F read_ms=R write_ms=W
 *
 *   image_heap spawn PROGRAM ARGS...
 *       The restore driver: takes CLOCK_MONOTONIC right before
 *       posix_spawn(PROGRAM, ARGS), waits for it and then prints
 *           spawn_ns=T status=S
 *       (after the child's own output). Exits with the child's status.
 *
 * CLOCK_MONOTONIC is system-wide, so spawn_ns and cb_ns can be subtracted.
 */
#include <crac.h>

#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <linux/close_range.h>

extern char **environ;

static uint64_t *heap;
static size_t heap_words;
static uint64_t heap_sum;               /* taken before the checkpoint */
static volatile int64_t cb_ns;          /* first after_restore callback */
static volatile uint64_t sink;

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t mix(uint64_t x)
{
	/* splitmix64 finaliser: every word different, never uniform */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return (x ^ (x >> 31)) | 1;     /* non-zero */
}

static void fill(void)
{
	for (size_t i = 0; i < heap_words; i++)
		heap[i] = mix(i);
}

static uint64_t read_all(void)
{
	uint64_t s = 0;
	for (size_t i = 0; i < heap_words; i++)
		s += heap[i];
	return s;
}

static void write_all(int round)
{
	memset(heap, 0x5a ^ round, heap_words * sizeof(uint64_t));
	sink = heap[heap_words / 2];
}

static int alloc_heap(const char *mib_arg)
{
	char *end;
	unsigned long long mib = strtoull(mib_arg, &end, 10);
	if (*end || !mib) {
		fprintf(stderr, "image_heap: bad size %s\n", mib_arg);
		return -1;
	}
	size_t len = (size_t)mib << 20;
	heap = malloc(len);
	if (!heap) {
		fprintf(stderr, "image_heap: malloc(%llu MiB): %s\n", mib, strerror(errno));
		return -1;
	}
	heap_words = len / sizeof(uint64_t);
	return 0;
}

/* Removes DIR (an image directory: plain files only) if it exists. */
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
		if (unlink(path) < 0) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return rmdir(dir);
}

static long cb_faults;                  /* page faults of this process up to cb_ns */

static int on_restore(const crac_event *ev, void *arg)
{
	(void)arg;
	if (ev->outcome == CRAC_RESTORED && !cb_ns) {
		struct rusage ru;
		cb_ns = mono_ns();
		/* since its spawn: the crac command, the loader, the restore */
		if (getrusage(RUSAGE_SELF, &ru) == 0)
			cb_faults = ru.ru_minflt + ru.ru_majflt;
	}
	return 0;
}

static int restored(int64_t ret_ns)
{
	printf("restored cb_ns=%lld ret_ns=%lld faults=%ld\n", (long long)cb_ns, (long long)ret_ns, cb_faults);
	int64_t t0 = mono_ns();
	uint64_t s = read_all();
	int64_t t1 = mono_ns();
	write_all(1);
	int64_t t2 = mono_ns();
	printf("touch read_ms=%.3f write_ms=%.3f sum=%s\n", (t1 - t0) / 1e6, (t2 - t1) / 1e6,
	       s == heap_sum ? "ok" : "BAD");
	fflush(stdout);
	return s == heap_sum ? 0 : 1;
}

static int cmd_checkpoint(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: image_heap checkpoint DIR MIB REPS\n");
		return 2;
	}
	/* Descriptors inherited from whatever started us (a CI runner's pipes)
	 * would make the image engine refuse: not ours to keep. */
	close_range(3, ~0u, 0);
	const char *dir = argv[2];
	int reps = atoi(argv[4]);
	if (alloc_heap(argv[3]) < 0 || reps < 1)
		return 2;
	fill();
	heap_sum = read_all();

	struct crac_resource_def def = {
		.name = "bench-first-after-restore",
		.after_restore = on_restore,
		.priority = 1000000,        /* above CRAC_PRIO_CHECKS: runs first after restore */
	};
	if (crac_register(NULL, &def, NULL) < 0) {
		fprintf(stderr, "image_heap: crac_register failed\n");
		return 1;
	}
	struct crac_options o;
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = dir;
	o.flags = CRAC_KEEP_RUNNING;

	for (int i = 0; i < reps; i++) {
		if (remove_image(dir) < 0) {
			fprintf(stderr, "image_heap: cannot remove %s: %s\n", dir, strerror(errno));
			return 1;
		}
		sync();
		crac_report *rep = NULL;
		int64_t t0 = mono_ns();
		int rc = crac_checkpoint_restore(&o, &rep);
		int64_t t1 = mono_ns();
		if (rc == CRAC_RESTORED) {
			if (rep) {
				/* after_restore problems: shown, not fatal to the timing */
				crac_report_print(rep, stderr);
				crac_report_free(rep);
			}
			return restored(t1);
		}
		if (rc != CRAC_CONTINUED) {
			printf("error rc=%d\n", rc);
			fprintf(stderr, "image_heap: crac_checkpoint_restore returned %d\n", rc);
			if (rep)
				crac_report_print(rep, stderr);
			return 1;
		}
		if (rep)
			crac_report_free(rep);
		printf("ckpt rep=%d ms=%.3f\n", i, (t1 - t0) / 1e6);
		fflush(stdout);
	}
	return 0;
}

static int cmd_fresh(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: image_heap fresh MIB\n");
		return 2;
	}
	if (alloc_heap(argv[2]) < 0)
		return 2;
	int64_t t0 = mono_ns();
	write_all(0);                   /* first touch: fresh anonymous pages */
	int64_t t1 = mono_ns();
	fill();
	heap_sum = read_all();
	int64_t t2 = mono_ns();
	uint64_t s = read_all();
	int64_t t3 = mono_ns();
	write_all(1);
	int64_t t4 = mono_ns();
	printf("fresh first_write_ms=%.3f read_ms=%.3f write_ms=%.3f sum=%s\n", (t1 - t0) / 1e6,
	       (t3 - t2) / 1e6, (t4 - t3) / 1e6, s == heap_sum ? "ok" : "BAD");
	return 0;
}

static int cmd_spawn(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: image_heap spawn PROGRAM ARGS...\n");
		return 2;
	}
	fflush(stdout);
	pid_t pid;
	int64_t t0 = mono_ns();
	int rc = posix_spawn(&pid, argv[2], NULL, NULL, argv + 2, environ);
	if (rc) {
		fprintf(stderr, "image_heap: posix_spawn %s: %s\n", argv[2], strerror(rc));
		return 127;
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			perror("waitpid");
			return 127;
		}
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	printf("spawn_ns=%lld status=%d\n", (long long)t0, code);
	return code;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "checkpoint"))
		return cmd_checkpoint(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "fresh"))
		return cmd_fresh(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "spawn"))
		return cmd_spawn(argc, argv);
	fprintf(stderr, "usage: image_heap checkpoint DIR MIB REPS | fresh MIB | spawn PROGRAM ARGS...\n");
	return 2;
}
