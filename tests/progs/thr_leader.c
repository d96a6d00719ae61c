/* SPDX-License-Identifier: MIT */
/*
 * thr_leader - helper for tests/cli/image_leader.bats: a program whose
 * checkpoints are taken from outside (`crac run`, then `crac checkpoint
 * PID`), so on the control endpoint's thread, not on its main thread.
 *
 * The main thread names itself "thr-main", starts a worker "thr-work" and
 * then both tick: every 20 ms the main thread prints
 *     tick N leader=L
 * where L is 1 while the main thread is the thread-group leader (its tid
 * is the pid), 0 if not. The worker only counts. Runs until killed.
 *
 *   thr_leader [--block]
 * --block: the main thread blocks SIGRTMAX-1 (the image engine's stop
 * signal) and prints "blocked=B" on each tick (B: 1 while it still does).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static atomic_long work;

static void nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void *worker(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, "thr-work", 0, 0, 0);
	for (;;) {
		atomic_fetch_add(&work, 1);
		nap(5);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int block = argc > 1 && !strcmp(argv[1], "--block");
	pthread_t th;
	sigset_t set;

	prctl(PR_SET_NAME, "thr-main", 0, 0, 0);
	sigemptyset(&set);
	sigaddset(&set, SIGRTMAX - 1);
	if (block)
		pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&th, NULL, worker, NULL) != 0) {
		fprintf(stderr, "thr_leader: pthread_create failed\n");
		return 1;
	}
	printf("ready pid=%d\n", (int)getpid());
	fflush(stdout);
	for (long n = 1;; n++) {
		if (block) {
			pthread_sigmask(SIG_BLOCK, NULL, &set);
			printf("tick %ld leader=%d blocked=%d\n", n, gettid() == getpid(), sigismember(&set, SIGRTMAX - 1));
		} else {
			printf("tick %ld leader=%d\n", n, gettid() == getpid());
		}
		fflush(stdout);
		nap(20);
	}
}
