/* SPDX-License-Identifier: MIT */
/*
 * image_threads - multithreaded image engine test program.
 *
 *   image_threads DIR [--from-thread]
 *
 * Eight worker threads share a counter under a normal mutex with a condition
 * variable, and a second counter under a robust mutex; each checks its own
 * TLS. Some wait on the condvar, some sleep, some spin, when the checkpoint
 * is taken (from the main thread, or from a ninth thread with
 * --from-thread). In every restored instance the workers go on for a
 * while, get SIGUSR1 through pthread_kill (handler restored), are told to
 * stop, and are joined (each within 20 s). Prints "restored ok: ..." and
 * exits 0, or "FAIL: ..." and exits 1.
 */
#include <crac.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N 8

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t robust;
static long shared_count, robust_count;
static long per_thread[N];
static atomic_int stop, failures, usr1_total;
static __thread int my_id = -1;
static __thread int my_usr1;
static pthread_t th[N];
static char fail_msg[256];

static void fail(const char *fmt, int a, int b)
{
	if (atomic_fetch_add(&failures, 1) == 0)
		snprintf(fail_msg, sizeof(fail_msg), fmt, a, b);
}

static void on_usr1(int sig)
{
	(void)sig;
	my_usr1++;
	atomic_fetch_add(&usr1_total, 1);
}

static void *worker(void *arg)
{
	int id = (int)(long)arg, rc;

	my_id = id;
	while (!atomic_load(&stop)) {
		if ((rc = pthread_mutex_lock(&mu)))
			fail("thread %d: mutex_lock %d", id, rc);
		shared_count++;
		per_thread[id]++;
		if (id % 3 == 0) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 2000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&cv, &mu, &ts);
		} else {
			pthread_cond_signal(&cv);
		}
		if ((rc = pthread_mutex_unlock(&mu)))
			fail("thread %d: mutex_unlock %d", id, rc);

		rc = pthread_mutex_lock(&robust);
		if (rc)
			fail("thread %d: robust lock %d", id, rc);
		robust_count++;
		if (id % 4 == 1)
			usleep(300);   /* sleeps while holding the robust mutex */
		if ((rc = pthread_mutex_unlock(&robust)))
			fail("thread %d: robust unlock returned %d", id, rc);

		if (my_id != id)
			fail("thread %d: TLS says %d", id, my_id);
		if (id % 4 == 2)
			usleep(500);
	}
	if (my_id != id)
		fail("thread %d: TLS says %d at exit", id, my_id);
	return (void *)(long)(my_usr1 + 1000 * id);
}

static int do_checkpoint(const char *dir)
{
	struct crac_options o;
	crac_report *rep = NULL;

	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = dir;
	int rc = crac_checkpoint_restore(&o, &rep);
	if (rep) {
		crac_report_print(rep, stdout);
		crac_report_free(rep);
	}
	return rc;
}

static const char *g_dir;
static int thread_rc;
static void *checkpointer(void *arg)
{
	(void)arg;
	thread_rc = do_checkpoint(g_dir);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_mutexattr_t ma;
	struct sigaction sa;
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: image_threads DIR [--from-thread]\n");
		return 2;
	}
	g_dir = argv[1];
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&robust, &ma);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);

	for (long i = 0; i < N; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	usleep(50000);
	printf("before: %d threads running\n", N);
	fflush(stdout);

	if (argc > 2 && !strcmp(argv[2], "--from-thread")) {
		pthread_t c;
		pthread_create(&c, NULL, checkpointer, NULL);
		pthread_join(c, NULL);
		rc = thread_rc;
	} else {
		rc = do_checkpoint(argv[1]);
	}
	if (rc != CRAC_RESTORED) {
		printf("FAIL: crac_checkpoint_restore returned %d\n", rc);
		return 1;
	}

	long c0 = 0;
	pthread_mutex_lock(&mu);
	c0 = shared_count;
	pthread_mutex_unlock(&mu);
	usleep(200000);
	for (int i = 0; i < N; i++)
		if ((rc = pthread_kill(th[i], SIGUSR1)))
			fail("pthread_kill(thread %d): %d", i, rc);
	usleep(100000);
	atomic_store(&stop, 1);
	pthread_mutex_lock(&mu);
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	int got_usr1 = 0;
	for (int i = 0; i < N; i++) {
		void *ret;
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 20;
		if ((rc = pthread_timedjoin_np(th[i], &ret, &until)) == ETIMEDOUT) {
			/* never a hang: a worker left waiting for a lock says which */
			printf("FAIL: thread %d not joined in 20 s: robust mutex lock word %#x owner %d, "
			       "mutex lock word %#x owner %d%s%s\n", i, (unsigned)robust.__data.__lock,
			       robust.__data.__owner, (unsigned)mu.__data.__lock, mu.__data.__owner,
			       atomic_load(&failures) ? "; " : "", atomic_load(&failures) ? fail_msg : "");
			fflush(stdout);
			_exit(1);
		}
		if (rc)
			fail("pthread_join(thread %d): %d", i, rc);
		long v = (long)ret;
		if (v / 1000 != i)
			fail("thread %d returned %d", i, (int)v);
		got_usr1 += (int)(v % 1000);
	}
	long c1 = shared_count;
	if (c1 <= c0)
		fail("workers made no progress after restore (%d -> %d)", (int)c0, (int)c1);
	if (got_usr1 != N)
		fail("%d of %d threads got SIGUSR1", got_usr1, N);
	if (pthread_mutex_lock(&robust) != 0 || pthread_mutex_unlock(&robust) != 0)
		fail("robust mutex unusable after join%s", 0, 0);
	if (atomic_load(&failures)) {
		printf("FAIL: %s (%d failures)\n", fail_msg, atomic_load(&failures));
		return 1;
	}
	printf("restored ok: %d threads joined, counter %ld -> %ld, robust %ld, usr1 %d\n", N, c0, c1,
	       robust_count, got_usr1);
	return 0;
}
