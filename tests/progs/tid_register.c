/* SPDX-License-Identifier: MIT */
/*
 * tid_register - helper for tests/cli/image_tid_register.bats: a program
 * whose main thread keeps its own pid (its tid) in a register while it
 * spins, when another of its threads checkpoints it.
 *
 *   tid_register DIR     checkpoints into DIR; prints "checkpointed" (the
 *                        original) or "restored orig=kept|changed"
 *   tid_register --yield DIR   the same, the main thread calling
 *                        sched_yield(2) as it spins: stopped right after a
 *                        system call of the C library that returned 0
 *                        (most of its stops), with the pid in a register
 *                        its caller keeps across the call
 *
 * Every stop of the main thread finds its tid in a register, as in the C
 * library's lock windows that cache a tid (image_threads.c, fix_cached_tid);
 * but the program's own value must come back as it was: "kept".
 */
#include <crac.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static atomic_int done;
static pid_t first;
static int rc;

static void *checkpointer(void *dir)
{
	struct timespec ts = { 0, 100 * 1000000L };   /* the main thread spinning by then */
	crac_report *rep = NULL;
	struct crac_options o;

	nanosleep(&ts, NULL);
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = dir;
	rc = crac_checkpoint_restore(&o, &rep);
	if (rc != CRAC_RESTORED && rc != CRAC_CONTINUED && rep)
		crac_report_print(rep, stderr);
	crac_report_free(rep);
	atomic_store(&done, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th;

	int yield = argc == 3 && !strcmp(argv[1], "--yield");
	if (argc != 2 + yield) {
		fprintf(stderr, "usage: tid_register [--yield] DIR\n");
		return 2;
	}
	first = getpid();
	if (pthread_create(&th, NULL, checkpointer, argv[1 + yield]) != 0)
		return 1;
	pid_t orig = getpid();
	while (!atomic_load_explicit(&done, memory_order_relaxed)) {
		__asm__ volatile("" : "+r"(orig));   /* the pid lives in a register */
		if (yield)
			sched_yield();
	}
	pthread_join(th, NULL);
	if (rc == CRAC_RESTORED)
		printf("restored orig=%s\n", orig == first ? "kept" : "changed");
	else if (rc == CRAC_CONTINUED)
		printf("checkpointed\n");
	else
		return 1;
	return 0;
}
