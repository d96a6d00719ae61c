/* SPDX-License-Identifier: MIT */
/*
 * robust_hammer - threads that take and release one robust mutex in a tight
 * loop when the image engine stops them: most of their time is inside the
 * C library's lock and unlock code, which reads the thread's tid once and
 * stores it into the lock word later (tests/cli/image_robust_tid.bats).
 *
 *   robust_hammer DIR
 *       starts 4 workers, checkpoints into DIR (the original exits 0 after
 *       printing "checkpointed"); in a restored instance the workers go on
 *       for 100 ms, are told to stop and are joined, each within 10 s.
 *       Prints "restored ok: ..." and exits 0, or "FAIL: ..." and exits 1
 *       (an unlock that failed, EPERM when the lock word held a tid the
 *       thread no longer has; a worker that never came back, left waiting
 *       for a lock that nobody will release).
 *
 * Restored with fresh thread ids (as an unprivileged user, where clone3
 * cannot ask for the old ones), a worker stopped between reading its tid
 * and storing it must store its new one.
 */
#include <crac.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N 4

static pthread_mutex_t robust;
static atomic_int stop, failures;
static long count;
static char fail_msg[160];

static void fail(const char *what, int id, int rc)
{
	if (atomic_fetch_add(&failures, 1) == 0)
		snprintf(fail_msg, sizeof(fail_msg), "worker %d: %s returned %d (%s)", id, what, rc, strerror(rc));
}

static void *worker(void *arg)
{
	int id = (int)(long)arg, rc;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		if ((rc = pthread_mutex_lock(&robust))) {
			fail("pthread_mutex_lock", id, rc);
			break;
		}
		count++;
		if ((rc = pthread_mutex_unlock(&robust))) {
			fail("pthread_mutex_unlock", id, rc);
			break;
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_mutexattr_t ma;
	pthread_t th[N];
	struct crac_options o;
	crac_report *rep = NULL;

	if (argc != 2) {
		fprintf(stderr, "usage: robust_hammer DIR\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&robust, &ma);
	for (long i = 0; i < N; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)i)) {
			printf("FAIL: pthread_create\n");
			return 1;
		}
	struct timespec warm = { 0, 50 * 1000000L };
	nanosleep(&warm, NULL);

	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = argv[1];
	int rc = crac_checkpoint_restore(&o, &rep);
	if (rc != CRAC_RESTORED && rc != CRAC_CONTINUED) {
		printf("FAIL: checkpoint into %s returned %d\n", argv[1], rc);
		crac_report_print(rep, stdout);
		return 1;
	}
	crac_report_free(rep);

	struct timespec run = { 0, 100 * 1000000L };
	nanosleep(&run, NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < N; i++) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 10;
		int jr = pthread_timedjoin_np(th[i], NULL, &until);
		if (jr) {
			/* the lock word's owner and the workers' tids, to tell a
			 * stale tid from a plain deadlock */
			printf("FAIL: worker %d not joined in 10 s (%s): robust mutex lock word %#x, owner %d%s%s\n",
			       i, strerror(jr), (unsigned)robust.__data.__lock, robust.__data.__owner,
			       atomic_load(&failures) ? "; " : "", atomic_load(&failures) ? fail_msg : "");
			fflush(stdout);
			_exit(1);
		}
	}
	if (atomic_load(&failures)) {
		printf("FAIL: %s (%d failures)\n", fail_msg, atomic_load(&failures));
		return 1;
	}
	if (rc == CRAC_CONTINUED) {
		printf("checkpointed\n");
		return 0;
	}
	printf("restored ok: %d workers joined, %ld lock rounds\n", N, count);
	return 0;
}
