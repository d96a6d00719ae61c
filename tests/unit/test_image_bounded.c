/* SPDX-License-Identifier: MIT */
/*
 * test_image_bounded.c - the helpers of src/image/bounded.c: a call that
 * returns is waited for and its helper reaped; one that does not is given
 * up on after the grace, or at a later deadline, or at once with neither,
 * and leaves no child behind.
 */
#include "harness.h"
#include "image/bounded.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct work {
	long sleep_ms;
	long pid;       /* what getpid says in the helper */
};

/* The helper's fn: raw system calls only. */
static void work_run(void *arg)
{
	struct work *w = arg;

	crac_bounded_test_sleep(w->sleep_ms);
	w->pid = crac_raw_syscall3(SYS_getpid, 0, 0, 0);
}

static int64_t now_ms(void)
{
	return crac_bounded_mono_ns() / 1000000;
}

/* No helper is left (alive or unreaped). */
static bool no_child(void)
{
	return waitpid(-1, NULL, __WCLONE | WNOHANG) < 0 && errno == ECHILD;
}

static void test_returns(void)
{
	struct crac_bounded b;
	struct work w = { .sleep_ms = 50 };
	int64_t waited = 0;

	REQUIRE(crac_bounded_start(&b, work_run, &w, NULL) == 0);
	CHECK(b.pid > 0 && b.own_stack);
	CHECK_EQ(crac_bounded_wait(&b, 0, 5000, &waited), 0);
	CHECK_EQ(waited, -1);
	CHECK_EQ(b.pid, 0);
	CHECK(b.stack == NULL);
	/* its own thread group: a process of our address space, not us */
	CHECK(w.pid > 0 && w.pid != getpid());
	CHECK(no_child());
	CHECK(crac_bounded_done(&b));   /* none: done */
	CHECK_EQ(crac_bounded_wait(&b, 0, 5000, &waited), 0);
}

static void test_caller_stack(void)
{
	static char stack[CRAC_BOUNDED_STACK] __attribute__((aligned(16)));
	struct crac_bounded b;
	struct work w = { 0 };
	int64_t waited;

	REQUIRE(crac_bounded_start(&b, work_run, &w, stack) == 0);
	CHECK(!b.own_stack);
	CHECK_EQ(crac_bounded_wait(&b, 0, 5000, &waited), 0);
	CHECK(w.pid > 0);
	CHECK(no_child());
}

static void test_given_up(void)
{
	struct crac_bounded b;
	struct work w = { .sleep_ms = 20000 };
	int64_t waited, t0;

	/* after the grace when there is no deadline */
	REQUIRE(crac_bounded_start(&b, work_run, &w, NULL) == 0);
	CHECK(!crac_bounded_done(&b));
	t0 = now_ms();
	CHECK_EQ(crac_bounded_wait(&b, 0, 300, &waited), -ETIMEDOUT);
	CHECKF(waited >= 300 && now_ms() - t0 < 5000, "waited %lld ms", (long long)waited);
	CHECK_EQ(b.pid, 0);
	CHECK_EQ(w.pid, 0);   /* killed before its call returned: it ran nothing more */
	CHECK(no_child());    /* a sleep is killable: reaped at once */

	/* at a deadline later than the grace */
	REQUIRE(crac_bounded_start(&b, work_run, &w, NULL) == 0);
	t0 = now_ms();
	CHECK_EQ(crac_bounded_wait(&b, crac_bounded_mono_ns() + 1000 * 1000000LL, 300, &waited), -ETIMEDOUT);
	CHECKF(now_ms() - t0 >= 900 && now_ms() - t0 < 5000, "gave up after %lld ms", (long long)(now_ms() - t0));
	CHECK(no_child());

	/* neither: at once */
	REQUIRE(crac_bounded_start(&b, work_run, &w, NULL) == 0);
	t0 = now_ms();
	CHECK_EQ(crac_bounded_wait(&b, 0, 0, &waited), -ETIMEDOUT);
	CHECKF(waited < 100 && now_ms() - t0 < 1000, "waited %lld ms", (long long)waited);
	CHECK(no_child());
	CHECK_EQ(w.pid, 0);
}

/* A helper given up on whose call has not returned yet (simulated:
 * CRAC_TEST_BOUNDED_UNREAPED=1 skips the wait for its end) keeps its stack
 * mapped until it is reaped: a late call would write its results there. */
static void test_unreaped_keeps_stack(void)
{
	struct crac_bounded b;
	struct work w = { .sleep_ms = 20000 };
	int64_t waited;

	setenv("CRAC_TEST_BOUNDED_UNREAPED", "1", 1);
	REQUIRE(crac_bounded_start(&b, work_run, &w, NULL) == 0);
	char *stack = b.stack;
	CHECK_EQ(crac_bounded_wait(&b, 0, 100, &waited), -ETIMEDOUT);
	unsetenv("CRAC_TEST_BOUNDED_UNREAPED");
	CHECK_EQ(b.pid, 0);
	CHECK(b.stack == NULL);
	CHECKF(msync(stack, 4096, MS_ASYNC) == 0, "the given-up helper's stack was unmapped before it was reaped: %s",
	       strerror(errno));
	/* killed, it is gone soon; the next reap lets the stack go */
	usleep(200 * 1000);
	crac_bounded_reap();
	CHECK(msync(stack, 4096, MS_ASYNC) < 0 && errno == ENOMEM);
	CHECK(no_child());
}

/*
 * A helper given up on writes nothing into the caller's memory once the
 * caller's wait has returned: not its `done`, not fn's results (the
 * caller's frame is gone by then, reused by the next call), in every mode,
 * the tests' too (=1: killed but left unreaped; =2: not even killed until
 * the test sends it). Here the caller's memory (its struct crac_bounded
 * and fn's argument) is filled with a pattern once the wait has returned,
 * and still holds it once the helper's sleep would be over.
 */
static void test_given_up_writes_nothing(void)
{
	static const char *const modes[] = { NULL, "1", "2" };
	static struct {
		struct crac_bounded b;
		struct work w;
	} caller;

	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		int64_t waited;
		memset(&caller, 0, sizeof(caller));
		caller.w.sleep_ms = 400;
		if (modes[m])
			setenv("CRAC_TEST_BOUNDED_UNREAPED", modes[m], 1);
		REQUIRE(crac_bounded_start(&caller.b, work_run, &caller.w, NULL) == 0);
		int pid = caller.b.pid;
		/* (given up on 100 ms on: in its sleep by then) */
		CHECK_EQ(crac_bounded_wait(&caller.b, 0, 100, &waited), -ETIMEDOUT);
		unsetenv("CRAC_TEST_BOUNDED_UNREAPED");
		memset(&caller, 0xa5, sizeof(caller));   /* reused */
		usleep(700 * 1000);   /* the helper's sleep over */
		size_t changed = 0;
		for (size_t i = 0; i < sizeof(caller); i++)
			changed += ((const unsigned char *)&caller)[i] != 0xa5;
		CHECKF(changed == 0, "mode %s: a helper given up on wrote %zu bytes into its caller's memory after the "
		       "wait returned", modes[m] ? modes[m] : "0", changed);
		kill(pid, SIGKILL);   /* (=2: the test's kill) */
		usleep(100 * 1000);
		crac_bounded_reap();
		CHECK(no_child());
	}
}

/* Many helpers given up on whose calls have not returned (more than any
 * fixed table holds: a file system that stays stuck while a long-running
 * program tries again and again): every one is reaped once it ended, and
 * its stack then let go; none is left a zombie, none keeps its stack. */
static void test_unreaped_flood(void)
{
	enum { N = 40 };
	struct crac_bounded b;
	static struct work w = { .sleep_ms = 20000 };
	char *stacks[N];
	int pids[N];
	int64_t waited;

	/* =2: not even killed yet, so that all are there at once */
	setenv("CRAC_TEST_BOUNDED_UNREAPED", "2", 1);
	for (int i = 0; i < N; i++) {
		stacks[i] = NULL;
		pids[i] = 0;
		if (crac_bounded_start(&b, work_run, &w, NULL) != 0)
			break;
		stacks[i] = b.stack;
		pids[i] = b.pid;
		CHECK_EQ(crac_bounded_wait(&b, 0, 0, &waited), -ETIMEDOUT);
	}
	unsetenv("CRAC_TEST_BOUNDED_UNREAPED");
	for (int i = 0; i < N; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);   /* their calls return now */
	usleep(200 * 1000);   /* all gone by now */
	crac_bounded_reap();
	int kept = 0, zombies = 0;
	for (int i = 0; i < N; i++) {
		REQUIRE(stacks[i]);
		kept += msync(stacks[i], 4096, MS_ASYNC) == 0;
	}
	while (waitpid(-1, NULL, __WCLONE | WNOHANG) > 0)
		zombies++;   /* (reaped here so that the next tests start clean) */
	CHECKF(kept == 0 && zombies == 0, "of %d helpers given up on, %d kept their stacks after they ended, "
	       "%d were never reaped", N, kept, zombies);
}

/* Threads giving up on helpers and reaping them at once (crac_control_path
 * may be called by any thread of the program while another checkpoints):
 * each orphan is recorded once and reaped once (a stack unmapped twice
 * could be another helper's, or a thread's, by then), and a helper that
 * returns is waited for as ever. */
struct flood_arg {
	int given_up, returned, failed;
};

static void *flood_thread(void *arg)
{
	struct flood_arg *a = arg;

	for (int i = 0; i < 60; i++) {
		struct crac_bounded b;
		struct work slow = { .sleep_ms = 20000 }, quick = { 0 };
		int64_t waited;
		if (crac_bounded_start(&b, work_run, &slow, NULL) == 0 &&
		    crac_bounded_wait(&b, 0, 0, &waited) == -ETIMEDOUT)
			a->given_up++;
		if (crac_bounded_start(&b, work_run, &quick, NULL) == 0 &&
		    crac_bounded_wait(&b, 0, 5000, &waited) == 0 && quick.pid > 0)
			a->returned++;
		else
			a->failed++;
	}
	return NULL;
}

static void test_unreaped_threads(void)
{
	enum { T = 4 };
	pthread_t th[T];
	struct flood_arg args[T];

	setenv("CRAC_TEST_BOUNDED_UNREAPED", "1", 1);
	for (int i = 0; i < T; i++) {
		args[i] = (struct flood_arg){ 0 };
		REQUIRE(pthread_create(&th[i], NULL, flood_thread, &args[i]) == 0);
	}
	for (int i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	unsetenv("CRAC_TEST_BOUNDED_UNREAPED");
	usleep(200 * 1000);
	crac_bounded_reap();
	int zombies = 0, failed = 0;
	for (int i = 0; i < T; i++)
		failed += args[i].failed;
	while (waitpid(-1, NULL, __WCLONE | WNOHANG) > 0)
		zombies++;
	CHECKF(failed == 0, "%d helpers that returned were not waited for", failed);
	CHECKF(zombies == 0, "%d helpers given up on were never reaped", zombies);
}

/* A helper that opens a file, then does not answer. */
struct opener {
	long fd;        /* what the open returned in the helper */
	int keep;       /* a caller's descriptor it should still have */
	long keep_res;  /* fcntl(keep, F_GETFD) in the helper */
	long other_res; /* fcntl(other, F_GETFD) in the helper */
	int other;      /* a caller's descriptor it should not have */
};

static void opener_run(void *arg)
{
	struct opener *o = arg;

	o->keep_res = crac_raw_syscall3(SYS_fcntl, o->keep, F_GETFD, 0);
	o->other_res = crac_raw_syscall3(SYS_fcntl, o->other, F_GETFD, 0);
	o->fd = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)"/dev/null", O_RDONLY | O_CLOEXEC);
	crac_bounded_test_sleep(20000);
}

/* Is fd open in our table? */
static bool open_here(long fd)
{
	return fd >= 0 && fcntl((int)fd, F_GETFD) >= 0;
}

/* How many descriptors are open in our table (below 4096). */
static int n_open(void)
{
	int n = 0;

	for (int fd = 0; fd < 4096; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

static void test_own_files(void)
{
	struct crac_bounded b;
	struct opener o = { .fd = -1 };
	int64_t waited;

	o.keep = open("/dev/null", O_RDONLY | O_CLOEXEC);
	o.other = open("/dev/null", O_RDONLY | O_CLOEXEC);
	REQUIRE(o.keep >= 0 && o.other >= 0);

	/* shared table (crac_bounded_start): a descriptor the killed helper
	 * opened stays in ours (what crac_bounded_start_own is for) */
	REQUIRE(crac_bounded_start(&b, opener_run, &o, NULL) == 0);
	CHECK_EQ(crac_bounded_wait(&b, 0, 300, &waited), -ETIMEDOUT);
	CHECKF(o.fd >= 0 && open_here(o.fd), "fd %ld", o.fd);
	if (o.fd >= 0)
		close((int)o.fd);

	/* own table: it keeps only `keep`, and what it opened ends with it */
	o.fd = -1;
	int before = n_open();
	REQUIRE(crac_bounded_start_own(&b, opener_run, &o, NULL, o.keep, -1) == 0);
	CHECK_EQ(crac_bounded_wait(&b, 0, 300, &waited), -ETIMEDOUT);
	CHECK_EQ(o.keep_res, FD_CLOEXEC);
	CHECK_EQ(o.other_res, -EBADF);
	/* (its number is of its table: the lowest free there, 0) */
	CHECKF(o.fd >= 0 && n_open() == before, "fd %ld, %d open before, %d after", o.fd, before, n_open());
	CHECK(open_here(o.keep) && open_here(o.other));   /* ours untouched */
	CHECK(no_child());
	close(o.keep);
	close(o.other);
}

/* A helper of a program killed while it was at work goes no further: the
 * rest of its steps (here: a file made after a sleep) never happen after
 * the program's end. */
static char marker[64];

static void late_step_run(void *arg)
{
	(void)arg;
	crac_bounded_test_sleep(800);
	long fd = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)marker, O_CREAT | O_WRONLY | O_CLOEXEC);
	if (fd >= 0)
		crac_raw_syscall3(SYS_close, fd, 0, 0);
}

static void test_dies_with_program(void)
{
	snprintf(marker, sizeof(marker), "/tmp/crac-test-bounded-%d", (int)getpid());
	unlink(marker);
	pid_t c = fork();
	REQUIRE(c >= 0);
	if (c == 0) {
		struct crac_bounded b;
		if (crac_bounded_start(&b, late_step_run, NULL, NULL) < 0)
			_exit(3);
		pause();
		_exit(0);
	}
	usleep(200 * 1000);
	kill(c, SIGKILL);
	int st = 0;
	waitpid(c, &st, 0);
	CHECK(WIFSIGNALED(st));
	usleep(1500 * 1000);   /* the helper's sleep is over by now */
	CHECKF(access(marker, F_OK) < 0, "the helper of a program killed -9 went on after its end (%s made)", marker);
	unlink(marker);
}

int main(void)
{
	RUN(test_returns);
	RUN(test_caller_stack);
	RUN(test_given_up);
	RUN(test_unreaped_keeps_stack);
	RUN(test_given_up_writes_nothing);
	RUN(test_unreaped_flood);
	RUN(test_unreaped_threads);
	RUN(test_own_files);
	RUN(test_dies_with_program);
	return t_done();
}
