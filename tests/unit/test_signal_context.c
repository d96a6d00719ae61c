/* SPDX-License-Identifier: MIT */
/*
 * test_signal_context.c - crac_checkpoint_restore() called from a signal
 * handler (issue 10 item 14): refused before anything is locked or
 * allocated when that can be told,
 *   -EINVAL   the handler runs on the alternate signal stack (SA_ONSTACK);
 *   -EDEADLK  the handler interrupted this thread inside crac (here: inside
 *             crac_register, crac_context_create and crac_inhibit, while
 *             they allocate);
 * each with a one-line report that needs no memory (crac_report_free() of
 * it is harmless). The interrupted call then completes normally, nothing
 * was notified, and later checkpoints work. A handler that interrupted a
 * callback still gets the "recursive checkpoint" refusal, not this one.
 *
 * Interrupting crac deterministically: this file defines strdup(), which
 * the statically linked library calls while it registers; when armed, it
 * raises SIGALRM first.
 */
#include "test_common.h"

#include <signal.h>

/* ---- the signal and what its handler saw ----------------------------- */

/* volatile: written by the handler behind the compiler's back */
static volatile sig_atomic_t armed;     /* strdup() raises SIGALRM once */
static volatile sig_atomic_t handled;
static volatile int h_rc;
static volatile int h_status;
static volatile size_t h_count;
static volatile char h_msg[256];
static volatile bool h_freed_ok;

/* h_msg as a string (a copy) */
static const char *seen_msg(void)
{
	static char buf[sizeof(h_msg)];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = h_msg[i];
	buf[sizeof(buf) - 1] = 0;
	return buf;
}

/* Called in the handler: only what the test needs, copied out. */
static void try_checkpoint_in_handler(int sig)
{
	crac_report *rep = NULL;

	(void)sig;
	h_rc = t_sim(&rep);
	h_status = crac_report_status(rep);
	h_count = crac_report_count(rep);
	h_msg[0] = 0;
	if (h_count) {
		const struct crac_failure *f = crac_report_get(rep, 0);
		/* no snprintf: a bounded copy */
		size_t i = 0;
		for (; f->message[i] && i < sizeof(h_msg) - 1; i++)
			h_msg[i] = f->message[i];
		h_msg[i] = 0;
	}
	crac_report_free(rep);
	h_freed_ok = true;
	handled++;
}

char *strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p;

	if (armed) {
		armed = 0;
		raise(SIGALRM);
	}
	p = malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}

static void set_handler(bool on_altstack)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = try_checkpoint_in_handler;
	sa.sa_flags = on_altstack ? SA_ONSTACK : 0;
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGALRM, &sa, NULL), 0);
}

static void reset_seen(void)
{
	handled = 0;
	h_rc = 12345;
	h_status = 12345;
	h_count = 0;
	h_msg[0] = 0;
	h_freed_ok = false;
}

/* A resource that counts its callbacks: a refused call notifies nothing. */
static atomic_int n_before, n_after;
static int count_before(const crac_event *ev, void *arg) { n_before++; return 0; }
static int count_after(const crac_event *ev, void *arg) { n_after++; return 0; }

/* ---- alternate signal stack -------------------------------------------- */

static void test_altstack_einval(void)
{
	stack_t ss = { .ss_size = 256 * 1024 }, old;
	crac_resource *res = NULL;
	struct crac_resource_def d = { .name = "counted", .before_checkpoint = count_before,
				       .after_restore = count_after };

	REQUIRE(crac_register(NULL, &d, &res) == 0);
	ss.ss_sp = malloc(ss.ss_size);
	REQUIRE(ss.ss_sp != NULL);
	REQUIRE(sigaltstack(&ss, &old) == 0);
	set_handler(true);
	reset_seen();
	n_before = n_after = 0;

	raise(SIGALRM);

	CHECK_EQ(handled, 1);
	CHECK_EQ(h_rc, -EINVAL);
	CHECK_EQ(h_status, -EINVAL);
	CHECK_EQ(h_count, 1);
	CHECKF(strstr(seen_msg(), "alternate signal stack") != NULL, "message: %s", seen_msg());
	CHECK(h_freed_ok);
	CHECK_EQ(n_before, 0);
	CHECK_EQ(n_after, 0);

	/* off the signal stack, the same call works */
	signal(SIGALRM, SIG_DFL);
	ss.ss_flags = SS_DISABLE;
	CHECK_EQ(sigaltstack(&ss, NULL), 0);
	free(ss.ss_sp);
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_EQ(n_before, 1);
	CHECK_EQ(n_after, 1);
	CHECK_EQ(crac_unregister(res), 0);
}

/* ---- a handler that interrupted crac --------------------------------- */

static void check_refused_in_crac(const char *what)
{
	CHECKF(handled == 1, "%s: handler ran %d times", what, (int)handled);
	CHECKF(h_rc == -EDEADLK, "%s: rc %d", what, (int)h_rc);
	CHECK_EQ(h_status, -EDEADLK);
	CHECK_EQ(h_count, 1);
	CHECKF(strstr(seen_msg(), "signal handler that interrupted crac") != NULL, "%s: message: %s",
	       what, seen_msg());
	CHECK(h_freed_ok);
}

static void test_interrupted_crac_edeadlk(void)
{
	crac_resource *res = NULL;
	crac_context *ctx = NULL;
	crac_inhibitor *inh = NULL;
	struct crac_resource_def d = { .name = "counted", .before_checkpoint = count_before,
				       .after_restore = count_after };

	set_handler(false);
	n_before = n_after = 0;

	reset_seen();
	armed = 1;
	CHECK_EQ(crac_register(NULL, &d, &res), 0);   /* interrupted, then completes */
	CHECK(!armed);
	check_refused_in_crac("crac_register");

	reset_seen();
	armed = 1;
	CHECK_EQ(crac_context_create(NULL, "ctx", 0, &ctx), 0);
	check_refused_in_crac("crac_context_create");

	reset_seen();
	armed = 1;
	CHECK_EQ(crac_inhibit("test", &inh), 0);
	check_refused_in_crac("crac_inhibit");
	CHECK_EQ(crac_release(inh), 0);

	/* nothing was notified; afterwards (not in crac) checkpoints work, and
	 * the resource registered while interrupted is there */
	CHECK_EQ(n_before, 0);
	crac_report *rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_RESTORED);
	CHECK_NO_FAILURES(rep);
	crac_report_free(rep);
	CHECK_EQ(n_before, 1);
	CHECK_EQ(n_after, 1);

	/* the same handler, raised outside crac on the normal stack, is not
	 * told apart from an ordinary call (documented): the round runs */
	reset_seen();
	raise(SIGALRM);
	CHECK_EQ(handled, 1);
	CHECK_EQ(h_rc, CRAC_RESTORED);
	CHECK_EQ(n_before, 2);

	signal(SIGALRM, SIG_DFL);
	CHECK_EQ(crac_unregister(res), 0);
	CHECK_EQ(crac_context_destroy(ctx), 0);
}

/* ---- a handler that interrupted a callback ---------------------------- */

static int raise_before(const crac_event *ev, void *arg)
{
	raise(SIGALRM);
	return 0;
}

/* Callbacks are the program's code: a handler that interrupted one is
 * refused as a recursive checkpoint (the round is this thread's), with
 * that message, and the outer round is not disturbed. */
static void test_interrupted_callback_recursive(void)
{
	crac_resource *res = NULL;
	struct crac_resource_def d = { .name = "raiser", .before_checkpoint = raise_before };
	crac_report *rep = NULL;

	REQUIRE(crac_register(NULL, &d, &res) == 0);
	set_handler(false);
	reset_seen();
	CHECK_EQ(t_sim(&rep), CRAC_RESTORED);
	CHECK_NO_FAILURES(rep);
	crac_report_free(rep);
	CHECK_EQ(handled, 1);
	CHECK_EQ(h_rc, -EDEADLK);
	CHECKF(strstr(seen_msg(), "recursive checkpoint") != NULL, "message: %s", seen_msg());
	signal(SIGALRM, SIG_DFL);
	CHECK_EQ(crac_unregister(res), 0);
}

int main(void)
{
	unsetenv("CRAC_ENGINE");
	unsetenv("CRAC_IMAGE_DIR");
	RUN(test_altstack_einval);
	RUN(test_interrupted_crac_edeadlk);
	RUN(test_interrupted_callback_recursive);
	return t_done();
}
