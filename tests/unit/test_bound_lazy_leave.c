/* SPDX-License-Identifier: MIT */
/*
 * test_bound_lazy_leave.c - crac__img_lazy_leave (engines/image_lazy.c),
 * called with the program's threads stopped, waits for a serving lazy
 * loader to exit: at most the grace of the bounded waits
 * (CRAC_TEST_SYNC_GRACE_MS here), then gives up with a warning naming the
 * thread. A loader that never exits is played by a thread that never
 * does (a close of the image's pages file on a file system that does not
 * answer); before, the wait never ended. Each case runs in a child, so
 * that a wait that does not end fails the test instead of hanging it.
 */
#include "harness.h"
#include "engines/image_engine.h"
#include "image/bounded.h"

#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile uint32_t loader_tid;

/* A loader that never leaves. */
static void *stuck_loader(void *arg)
{
	(void)arg;
	loader_tid = (uint32_t)syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

/* A loader that leaves when asked: as the kernel does for the real one
 * (CLONE_CHILD_CLEARTID), lazy_tid cleared and its waiters woken. */
static void *leaving_loader(void *arg)
{
	struct crac_img_resume *res = &crac__img_self.resume;

	(void)arg;
	loader_tid = (uint32_t)syscall(SYS_gettid);
	while (__atomic_load_n(&res->lazy_state, __ATOMIC_ACQUIRE) != CRAC_LAZY_STATE_LEAVE) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	__atomic_store_n(&res->lazy_tid, 0, __ATOMIC_RELEASE);
	syscall(SYS_futex, &res->lazy_tid, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
	return NULL;
}

/*
 * In a child: a loader played by fn, serving (LOADED), and
 * crac__img_lazy_leave with a grace of 500 ms. The child writes how long
 * the call took (ms) to stdout's pipe, its stderr to another. Returns the
 * ms (-1: the call did not return within 10 s, the child killed), stderr's
 * text in err.
 */
static long leave_in_child(void *(*fn)(void *), char *err, size_t errlen)
{
	int out[2], er[2];
	if (pipe(out) < 0 || pipe(er) < 0)
		return -2;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(er[1], 2);
		close(out[0]);
		close(er[0]);
		setenv("CRAC_TEST_SYNC_GRACE_MS", "500", 1);
		pthread_t th;
		if (pthread_create(&th, NULL, fn, NULL) != 0)
			_exit(3);
		while (!loader_tid)
			sched_yield();
		struct crac_img_resume *res = &crac__img_self.resume;
		res->lazy_pid = (uint32_t)getpid();
		res->lazy_entry = 0;
		__atomic_store_n(&res->lazy_state, CRAC_LAZY_STATE_LOADED, __ATOMIC_RELEASE);
		__atomic_store_n(&res->lazy_tid, loader_tid, __ATOMIC_RELEASE);
		int64_t t0 = crac_bounded_mono_ns();
		crac__img_lazy_leave();
		long ms = (long)((crac_bounded_mono_ns() - t0) / 1000000);
		dprintf(out[1], "%ld\n", ms);
		_exit(0);
	}
	close(out[1]);
	close(er[1]);
	long ms = -1;
	int status;
	for (int i = 0; i < 1000; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			char buf[64] = "";
			ssize_t n = read(out[0], buf, sizeof(buf) - 1);
			ms = n > 0 ? strtol(buf, NULL, 10) : -3;
			pid = 0;
			break;
		}
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	if (pid) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	ssize_t n = read(er[0], err, errlen - 1);
	err[n > 0 ? n : 0] = 0;
	close(out[0]);
	close(er[0]);
	return ms;
}

static void test_stuck_loader_given_up(void)
{
	char err[1024];
	long ms = leave_in_child(stuck_loader, err, sizeof(err));

	CHECKF(ms >= 0, "crac__img_lazy_leave did not return within 10 s (%ld)", ms);
	CHECKF(ms >= 490 && ms < 5000, "%ld ms", ms);
	CHECKF(strstr(err, "crac: warning: the lazy loader (thread ") != NULL, "stderr: %s", err);
	CHECKF(strstr(err, " ms (500 ms at most, the program's threads stopped): its way out closes the image's "
			   "files, whose file system may not answer; given up") != NULL, "stderr: %s", err);
}

static void test_leaving_loader_waited_for(void)
{
	char err[1024];
	long ms = leave_in_child(leaving_loader, err, sizeof(err));

	CHECKF(ms >= 0 && ms < 400, "%ld ms", ms);
	CHECKF(err[0] == 0, "stderr: %s", err);
}

int main(void)
{
	RUN(test_stuck_loader_given_up);
	RUN(test_leaving_loader_waited_for);
	return t_done();
}
