/* SPDX-License-Identifier: MIT */
/*
 * test_obj_probe.c - crac_obj_probe() (src/objects/table.c), what the
 * safety checks ask of every descriptor, called from several threads at
 * once: crac_check() may run on any number of threads (and the control
 * endpoint's check besides), so a probe keeps no state between calls and
 * shares none. Every answer must be the one a lone probe gives: a pipe
 * whose both ends are here is a pipe, a memfd nobody maps is a memfd.
 */
#include "harness.h"

#include "objects/objects.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define N_PIPES 200
#define N_MEMFDS 8
#define N_THREADS 4

static int fds[2 * N_PIPES + N_MEMFDS];
static uint32_t kinds[2 * N_PIPES + N_MEMFDS];
static int n_fds;
static atomic_int wrong;
static atomic_int stop;
static char first_wrong[512];

static void *prober(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		for (int k = 0; k < n_fds && !atomic_load(&stop); k++) {
			char msg[256];
			struct crac_img_buf why = { msg, 0, sizeof(msg) };
			msg[0] = 0;
			int rc = crac_obj_probe(fds[k], &why);
			if (rc != (int)kinds[k] && atomic_fetch_add(&wrong, 1) == 0)
				snprintf(first_wrong, sizeof(first_wrong), "fd %d: %d (%s), kind %u expected", fds[k], rc,
					 msg, kinds[k]);
		}
	return NULL;
}

/* pipes (both ends here) and memfds, probed by several threads at once */
static void test_probe_threads(void)
{
	for (int i = 0; i < N_PIPES; i++) {
		int p[2];
		REQUIRE(pipe(p) == 0);
		fds[n_fds] = p[0];
		kinds[n_fds++] = CRAC_OBJ_PIPE;
		fds[n_fds] = p[1];
		kinds[n_fds++] = CRAC_OBJ_PIPE;
	}
	for (int i = 0; i < N_MEMFDS; i++) {
		int m = (int)syscall(SYS_memfd_create, "probe", 0);
		REQUIRE(m >= 0);
		REQUIRE(write(m, "x", 1) == 1);
		fds[n_fds] = m;
		kinds[n_fds++] = CRAC_OBJ_MEMFD;
	}
	/* each alone first: what the answers must be */
	for (int k = 0; k < n_fds; k++) {
		char msg[256];
		struct crac_img_buf why = { msg, 0, sizeof(msg) };
		msg[0] = 0;
		CHECKF(crac_obj_probe(fds[k], &why) == (int)kinds[k], "fd %d alone: %s", fds[k], msg);
	}
	pthread_t th[N_THREADS];
	for (int t = 0; t < N_THREADS; t++)
		REQUIRE(pthread_create(&th[t], NULL, prober, NULL) == 0);
	struct timespec ts = { 2, 0 };
	nanosleep(&ts, NULL);
	atomic_store(&stop, 1);
	for (int t = 0; t < N_THREADS; t++)
		pthread_join(th[t], NULL);
	CHECKF(atomic_load(&wrong) == 0, "%d wrong answers, the first: %s", atomic_load(&wrong), first_wrong);
}

int main(void)
{
	RUN(test_probe_threads);
	return t_done();
}
