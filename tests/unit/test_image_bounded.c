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
#include <stdint.h>
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

int main(void)
{
	RUN(test_returns);
	RUN(test_caller_stack);
	RUN(test_given_up);
	return t_done();
}
