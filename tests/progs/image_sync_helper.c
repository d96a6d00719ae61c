/* SPDX-License-Identifier: MIT */
/*
 * image_sync_helper - the image engine's fsync helper (image_capture.c) is
 * invisible to the program: checkpoints with keep-running leave no child
 * (running, zombie or reaped by the program), send no SIGCHLD, add no
 * thread, and the images restore.
 *
 *   image_sync_helper DIR [MIB]
 *
 * Maps MIB mebibytes (default 24: several early fdatasyncs of 4 MiB) of
 * private anonymous memory, writes every page, starts a second thread (it
 * waits on a pipe), installs a SIGCHLD handler that counts, then
 * checkpoints three times into DIR/0, DIR/1, DIR/2 with keep-running,
 * changing a page between them. After each: the thread count is 2, no
 * child of any kind is left (waitid __WALL gives ECHILD), no SIGCHLD came.
 * Prints "continued ok" (or "FAIL: ..." and exits 1). A restored instance
 * checks the memory of its stage and prints "restored N ok".
 */
#include <crac.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096u

static unsigned char *heap;
static size_t heap_len;
static volatile sig_atomic_t n_sigchld;
static int wake[2];

static void on_sigchld(int sig)
{
	(void)sig;
	n_sigchld++;
}

static void *waiter(void *arg)
{
	char b;

	(void)arg;
	while (read(wake[0], &b, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static int n_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* What page p holds at stage s (page s * 7 + 1 rewritten at each stage). */
static unsigned char expect(size_t p, int s)
{
	for (int k = s; k > 0; k--)
		if (p == (size_t)k * 7 + 1)
			return (unsigned char)(0xc0 + k);
	return (unsigned char)(p * 31 + 1);
}

static void check_memory(int s)
{
	for (size_t p = 0; p < heap_len / PG; p++)
		for (size_t i = 0; i < PG; i += 512)
			if (heap[p * PG + i] != expect(p, s)) {
				printf("FAIL: stage %d: page %zu byte %zu is %#x, not %#x\n", s, p, i, heap[p * PG + i],
				       expect(p, s));
				exit(1);
			}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: image_sync_helper DIR [MIB]\n");
		return 2;
	}
	heap_len = (argc > 2 ? strtoull(argv[2], NULL, 10) : 24) << 20;
	heap = mmap(NULL, heap_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (heap == MAP_FAILED)
		return 1;
	for (size_t p = 0; p < heap_len / PG; p++)
		memset(heap + p * PG, (int)expect(p, 0), PG);
	setvbuf(stdout, NULL, _IONBF, 0);
	pthread_t t;
	if (pipe(wake) < 0 || pthread_create(&t, NULL, waiter, NULL) != 0)
		return 1;
	struct sigaction sa = { .sa_handler = on_sigchld };
	sigaction(SIGCHLD, &sa, NULL);

	for (int s = 0; s < 3; s++) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/%d", argv[1], s);
		if (s > 0)
			memset(heap + ((size_t)s * 7 + 1) * PG, 0xc0 + s, PG);
		struct crac_options o;
		crac_options_init(&o);
		o.engine = "image";
		o.image_dir = dir;
		o.flags |= CRAC_KEEP_RUNNING;
		crac_report *rep = NULL;
		int rc = crac_checkpoint_restore(&o, &rep);
		if (rc == CRAC_RESTORED) {
			check_memory(s);
			printf("restored %d ok\n", s);
			return 0;
		}
		if (rc != CRAC_CONTINUED) {
			printf("FAIL: checkpoint into %s: %d\n", dir, rc);
			if (rep)
				crac_report_print(rep, stdout);
			return 1;
		}
		crac_report_free(rep);
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		int w = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | __WALL);
		if (w == 0 && si.si_pid) {
			printf("FAIL: after checkpoint %d: a child %d is left\n", s, si.si_pid);
			return 1;
		}
		if (w == 0 || errno != ECHILD) {
			printf("FAIL: after checkpoint %d: waitid gives %d (%s), not ECHILD: a child is left\n", s, w,
			       strerror(errno));
			return 1;
		}
		if (n_sigchld) {
			printf("FAIL: after checkpoint %d: %d SIGCHLD\n", s, (int)n_sigchld);
			return 1;
		}
		if (n_threads() != 2) {
			printf("FAIL: after checkpoint %d: %d threads, not 2\n", s, n_threads());
			return 1;
		}
		check_memory(s);
	}
	printf("continued ok\n");
	return 0;
}
