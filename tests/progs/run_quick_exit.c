/* SPDX-License-Identifier: MIT */
/*
 * run_quick_exit.c - a program for tests/cli/run_report.bats: it is
 * checkpointed by `crac run`'s trigger (sim engine: a restore at once) and
 * exits within microseconds of its restore, while its report is still
 * being made.
 *
 *   run_quick_exit MODE
 *
 * Two resources: "quick-flag" (registered last: its after_restore runs
 * first) tells the main thread that the process was restored; "quick-fail"
 * then fails its after_restore with a message, a line of the restore's
 * report. The main thread, told, ends the process at once, by MODE:
 *   exit  - exit(5): the normal way out (atexit handlers, destructors);
 *   _exit - _exit(5): no handler runs (the report may be cut short);
 *   kill  - SIGKILL on itself (the report is cut short).
 */
#include <crac.h>

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NO_RESTORE_S 60   /* a generous bound on a checkpoint triggered after 20 ms */

static atomic_int restored;

static int flag_after(const crac_event *ev, void *arg)
{
	(void)ev;
	(void)arg;
	atomic_store(&restored, 1);
	return 0;
}

static int fail_after(const crac_event *ev, void *arg)
{
	(void)ev;
	(void)arg;
	/* a little work, as a real callback does (a reconnect): the main
	 * thread has ended the process by the time it is done */
	for (int i = 0; i < 200; i++)
		sched_yield();
	return crac_fail(-ECONNREFUSED, "quick-fail could not reconnect");
}

int main(int argc, char **argv)
{
	struct crac_resource_def fail = { .name = "quick-fail", .after_restore = fail_after };
	struct crac_resource_def flag = { .name = "quick-flag", .after_restore = flag_after };

	if (argc < 2) {
		fprintf(stderr, "usage: run_quick_exit exit|_exit|kill\n");
		return 2;
	}
	if (crac_register(NULL, &fail, NULL) < 0 || crac_register(NULL, &flag, NULL) < 0) {
		fprintf(stderr, "run_quick_exit: crac_register failed\n");
		return 2;
	}
	/* spins (yielding): the restore is noticed at once. Bounded: a
	 * checkpoint that never comes (the trigger's request failed) ends the
	 * round with a message instead of keeping the test until ctest's
	 * timeout, which shows nothing of what went wrong */
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned n = 0; !atomic_load(&restored); n++) {
		sched_yield();
		if (n % 1024 == 0 && clock_gettime(CLOCK_MONOTONIC, &now) == 0 && now.tv_sec - t0.tv_sec > NO_RESTORE_S) {
			fprintf(stderr, "run_quick_exit: not restored within %d s: the trigger's checkpoint did not "
				"come\n", NO_RESTORE_S);
			return 4;
		}
	}
	if (!strcmp(argv[1], "_exit"))
		_exit(5);
	if (!strcmp(argv[1], "kill"))
		kill(getpid(), SIGKILL);
	return 5;
}
