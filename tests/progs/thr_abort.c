/* SPDX-License-Identifier: MIT */
/*
 * thr_abort - helper for tests/cli/image_sigblock.bats: a checkpoint that
 * fails at its deadline because a thread cannot take the stop signal in
 * time leaves the process as it was.
 *
 *   thr_abort DIR
 *
 * Thread "thr-vfork" calls vfork(); the child sleeps 3 s and exits, so the
 * thread waits 3 s in the kernel where only fatal signals reach it. The
 * main thread checkpoints with the image engine into DIR with a 1.5 s
 * deadline (the child needs the policy `child * warn`): the checkpoint
 * fails. Then the stop signal, still pending for the thread, must not
 * reach it once vfork returns: the main thread waits until "thr-vfork" is
 * back and running, and prints
 *     checkpoint: rc=R ms=M
 *     alive after abort
 * and exits 0 (killed by SIGRTMAX-1, or hanging, before the fix).
 */
#include <crac.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_int vfork_back, ticks;

static void nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *vforker(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, "thr-vfork", 0, 0, 0);
	pid_t p = vfork();
	if (p == 0) {
		/* the child: system calls only (it runs on our stack) */
		struct timespec ts = { 3, 0 };
		syscall(SYS_nanosleep, &ts, NULL);
		syscall(SYS_exit_group, 0);
	}
	atomic_store(&vfork_back, 1);
	if (p > 0)
		waitpid(p, NULL, 0);
	for (;;) {
		atomic_fetch_add(&ticks, 1);
		nap(5);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th;

	if (argc < 2) {
		fprintf(stderr, "usage: thr_abort DIR\n");
		return 2;
	}
	if (pthread_create(&th, NULL, vforker, NULL) != 0) {
		printf("FAIL: pthread_create\n");
		return 1;
	}
	nap(200);   /* the thread is in vfork now */

	struct crac_options o;
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = argv[1];
	o.deadline_ms = 1500;
	crac_report *rep = NULL;
	double t0 = now_ms();
	int rc = crac_checkpoint_restore(&o, &rep);
	printf("checkpoint: rc=%d ms=%.0f\n", rc, now_ms() - t0);
	if (rep) {
		crac_report_print(rep, stdout);
		crac_report_free(rep);
	}
	fflush(stdout);
	for (int k = 0; k < 600 && !atomic_load(&vfork_back); k++)
		nap(10);
	int t = atomic_load(&ticks);
	nap(300);
	if (!atomic_load(&vfork_back) || atomic_load(&ticks) < t + 10) {
		printf("FAIL: thr-vfork is not running again\n");
		return 1;
	}
	printf("alive after abort\n");
	return 0;
}
