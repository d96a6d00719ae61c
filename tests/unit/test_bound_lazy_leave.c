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
 *
 * After such a give-up, nothing waits for that loader unbounded again:
 * fork() (the atfork handler, crac__img_lazy_finish) goes on at once,
 * saying so; a checkpoint fails at once with one line naming it (before,
 * both waited for ever: its state stays LEAVE while its thread lives).
 * crac__img_lazy_settle, whose wait for a loader it asked to leave had no
 * bound either, gives up after the grace the same way.
 */
#include "harness.h"
#include "engines/image_engine.h"
#include "image/bounded.h"

#include <crac.h>

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

/* What the child does once its loader runs (timed). */
static void act_leave(void)
{
	crac__img_lazy_leave();
}

/*
 * In a child: a loader played by fn, in lazy_state state, and act() with
 * a grace of 500 ms. The child writes how long act took (ms) to stdout's
 * pipe, its stderr to another. Returns the ms (-1: act did not return
 * within 10 s, the child killed), stderr's text in err.
 */
static long act_in_child(void *(*fn)(void *), uint32_t state, void (*act)(void), char *err, size_t errlen)
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
		__atomic_store_n(&res->lazy_state, state, __ATOMIC_RELEASE);
		__atomic_store_n(&res->lazy_tid, loader_tid, __ATOMIC_RELEASE);
		int64_t t0 = crac_bounded_mono_ns();
		act();
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

static long leave_in_child(void *(*fn)(void *), char *err, size_t errlen)
{
	return act_in_child(fn, CRAC_LAZY_STATE_LOADED, act_leave, err, errlen);
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

/* A fork: its child exits at once; how long the fork took (ms) is
 * printed after act_in_child's. */
static void fork_now(void)
{
	crac__img_lazy_prepare();   /* the atfork handler */
	pid_t c = fork();
	if (c == 0)
		_exit(0);
	if (c > 0)
		waitpid(c, NULL, 0);
}

/* The loader given up on (crac__img_lazy_leave), then a fork. */
static void act_leave_then_fork(void)
{
	crac__img_lazy_leave();
	int64_t t0 = crac_bounded_mono_ns();
	fork_now();
	fork_now();   /* (said once) */
	fprintf(stderr, "fork took %lld ms\n", (long long)((crac_bounded_mono_ns() - t0) / 1000000));
}

static void test_fork_after_give_up(void)
{
	char err[2048];
	long ms = act_in_child(stuck_loader, CRAC_LAZY_STATE_LOADED, act_leave_then_fork, err, sizeof(err));

	CHECKF(ms >= 0, "the forks after the give-up did not return within 10 s (%ld); stderr: %s", ms, err);
	const char *f = strstr(err, "fork took ");
	CHECKF(f && strtol(f + 10, NULL, 10) < 200, "stderr: %s", err);
	const char *w = strstr(err, "crac: warning: fork: the lazy loader (thread ");
	CHECKF(w && strstr(w, ") was given up on, its way out does not return: not waited for\n"), "stderr: %s", err);
	CHECKF(w && !strstr(w + 1, "crac: warning: fork:"), "said twice: %s", err);
}

/* A loader asked to leave (not given up on yet) that never does: a fork
 * waits for it the grace at most. */
static void test_fork_waits_leaving_loader_bounded(void)
{
	char err[2048];
	long ms = act_in_child(stuck_loader, CRAC_LAZY_STATE_LEAVE, fork_now, err, sizeof(err));

	CHECKF(ms >= 0, "the fork did not return within 10 s (%ld)", ms);
	CHECKF(ms >= 490 && ms < 5000, "%ld ms", ms);
	CHECKF(strstr(err, " ms (500 ms at most, waited for before a fork or a checkpoint): its way out closes the "
			   "image's files, whose file system may not answer; given up") != NULL,
	       "stderr: %s", err);
}

/* The loader given up on, then a checkpoint (the sim engine, no
 * deadline): refused at once, one line naming it. */
static void act_leave_then_checkpoint(void)
{
	crac__img_lazy_leave();
	struct crac_options o;
	crac_options_init(&o);
	o.engine = "sim";
	o.deadline_ms = -1;
	crac_report *rep = NULL;
	int64_t t0 = crac_bounded_mono_ns();
	int rc = crac_checkpoint_restore(&o, &rep);
	long ms = (long)((crac_bounded_mono_ns() - t0) / 1000000);
	fprintf(stderr, "checkpoint: %d in %ld ms\n", rc, ms);
	if (rep)
		crac_report_print(rep, stderr);
	crac_report_free(rep);
}

static void test_checkpoint_after_give_up(void)
{
	char err[4096];
	long ms = act_in_child(stuck_loader, CRAC_LAZY_STATE_LOADED, act_leave_then_checkpoint, err, sizeof(err));

	CHECKF(ms >= 0, "the checkpoint after the give-up did not return within 10 s (%ld); stderr: %s", ms, err);
	const char *c = strstr(err, "checkpoint: ");
	CHECKF(c && strtol(c + 12, NULL, 10) < 0, "stderr: %s", err);
	const char *in = c ? strstr(c, " in ") : NULL;
	CHECKF(in && strtol(in + 4, NULL, 10) < 200, "stderr: %s", err);
	CHECKF(strstr(err, "(crac's lazy loader) was given up on: every page is in, but its way out (the close of "
			   "its image's files) has not returned, its file system may not answer. No checkpoint is "
			   "taken while it is there") != NULL,
	       "stderr: %s", err);
}

/* crac__img_lazy_settle: a loader back at LOADING (pages mremap moved)
 * that does not settle in 1 s is asked to leave, and waited for the
 * grace at most. */
static void act_settle(void)
{
	bool settled = crac__img_lazy_settle();
	fprintf(stderr, "settled: %d\n", settled);
}

static void test_settle_bounded(void)
{
	char err[2048];
	long ms = act_in_child(stuck_loader, CRAC_LAZY_STATE_LOADING, act_settle, err, sizeof(err));

	CHECKF(ms >= 0, "crac__img_lazy_settle did not return within 10 s (%ld)", ms);
	CHECKF(ms >= 1490 && ms < 6000, "%ld ms", ms);
	CHECKF(strstr(err, "settled: 0") != NULL, "stderr: %s", err);
	CHECKF(strstr(err, " ms (500 ms at most, the program's threads stopped): its way out closes the image's "
			   "files, whose file system may not answer; given up") != NULL,
	       "stderr: %s", err);
}

int main(void)
{
	RUN(test_stuck_loader_given_up);
	RUN(test_leaving_loader_waited_for);
	RUN(test_fork_after_give_up);
	RUN(test_fork_waits_leaving_loader_bounded);
	RUN(test_checkpoint_after_give_up);
	RUN(test_settle_bounded);
	return t_done();
}
