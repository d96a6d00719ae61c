/* SPDX-License-Identifier: MIT */
/*
 * test_failures.c - failure paths of a checkpoint (crac.h "Ordering",
 * crac_fail, crac_checkpoint_restore, CRAC_DRY_RUN; DESIGN §3):
 *  - a failing before_checkpoint aborts, every other resource is still
 *    notified, after_restore runs for every notified resource (the failing
 *    one included) and the report lists every failure;
 *  - after_restore failures are reported but the outcome stays RESTORED;
 *  - positive return values and non-negative crac_fail codes mean -EIO;
 *  - failures without crac_fail still get a message;
 *  - unknown engine -> -ENOENT with a report; dry run takes no snapshot.
 */
#include "test_common.h"

/* r2 fails with crac_fail(-EBUSY, "msg %d", 42): CRAC_ABORTED; r3, r2, r1
 * all notified before; r1, r2, r3 all get after_restore (outcome ABORTED);
 * the report has exactly one entry for r2 with phase, code and message. */
static int fail_busy_42(const crac_event *ev, void *arg)
{
	struct tres *r = arg;
	atomic_fetch_add(&r->nbefore, 1);
	tlog_add("B:%s", r->name);
	int x = 42;
	return crac_fail(-EBUSY, "msg %d", x);
}

static void test_before_failure_aborts(void)
{
	struct tres r1, r2, r3;
	tres_init(&r1, "r1"); tres_init(&r2, "r2"); tres_init(&r3, "r3");
	tres_reg(NULL, &r1, 0);
	struct crac_resource_def d = { .name = "r2", .before_checkpoint = fail_busy_42,
				       .after_restore = tres_after, .arg = &r2 };
	REQUIRE(crac_register(NULL, &d, &r2.h) == 0);
	tres_reg(NULL, &r3, 0);

	uint64_t gen_before_round;
	crac_report *rep = NULL;
	tlog_reset();
	int rc = t_sim(&rep);
	CHECK_EQ(rc, CRAC_ABORTED);
	CHECK_LOG("B:r3 B:r2 B:r1 A:r1 A:r2 A:r3");
	REQUIRE(rep != NULL);
	CHECK_EQ(crac_report_status(rep), CRAC_ABORTED);
	CHECK_EQ(t_count_for(rep, "r2"), 1);
	CHECK_EQ(t_count_for(rep, "r1"), 0);
	CHECK_EQ(t_count_for(rep, "r3"), 0);
	const struct crac_failure *f = t_find(rep, "r2", 0);
	REQUIRE(f != NULL);
	CHECK_EQ(f->phase, CRAC_PHASE_CHECKPOINT);
	CHECK_EQ(f->code, -EBUSY);
	REQUIRE(f->message != NULL);
	CHECKF(strstr(f->message, "msg 42") != NULL, "message: %s", f->message);

	/* after_restore saw an aborted round, and no restore happened: the
	 * generation and instance id did not change. */
	CHECK_EQ(r1.ev_after.kind, CRAC_EVENT_AFTER_RESTORE);
	CHECK_EQ(r1.ev_after.outcome, CRAC_ABORTED);
	CHECK_EQ(r3.ev_after.outcome, CRAC_ABORTED);
	gen_before_round = r1.ev_before.generation;
	CHECK_EQ(r1.ev_after.generation, gen_before_round);
	CHECK(memcmp(r1.ev_after.instance_id, r1.ev_before.instance_id, 16) == 0);
	crac_report_free(rep);

	/* Once the failing resource is gone, the next round succeeds. */
	CHECK_EQ(crac_unregister(r2.h), 0);
	r2.h = NULL;
	rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_RESTORED);
	CHECK_NO_FAILURES(rep);
	crac_report_free(rep);
	tres_unreg(&r1); tres_unreg(&r3);
}

/* Several failures: every one is listed, each with its own code and
 * message; non-failing resources are not listed; all are notified. */
static void test_multiple_failures_listed(void)
{
	struct tres a, b, c, d;
	tres_init(&a, "a"); tres_init(&b, "b"); tres_init(&c, "c"); tres_init(&d, "d");
	a.fail_before = -EBUSY;
	c.fail_before = -EINVAL;
	d.fail_before = -ENOSPC;
	tres_reg(NULL, &a, 0); tres_reg(NULL, &b, 0);
	tres_reg(NULL, &c, 0); tres_reg(NULL, &d, 0);

	crac_report *rep = NULL;
	tlog_reset();
	CHECK_EQ(t_sim(&rep), CRAC_ABORTED);
	CHECK_LOG("B:d B:c B:b B:a A:a A:b A:c A:d");
	REQUIRE(rep != NULL);
	CHECK(crac_report_count(rep) >= 3);
	struct { const char *n; int code; } want[] = { {"a", -EBUSY}, {"c", -EINVAL}, {"d", -ENOSPC} };
	for (size_t i = 0; i < 3; i++) {
		const struct crac_failure *f = t_find(rep, want[i].n, CRAC_PHASE_CHECKPOINT);
		CHECKF(f != NULL, "no failure for %s", want[i].n);
		if (!f)
			continue;
		CHECK_EQ(t_count_for(rep, want[i].n), 1);
		CHECK_EQ(f->code, want[i].code);
		char expect[64];
		snprintf(expect, sizeof(expect), "%s: before failed on purpose", want[i].n);
		CHECKF(f->message && strstr(f->message, expect), "message for %s: %s", want[i].n,
		       f->message ? f->message : "(null)");
	}
	CHECK_EQ(t_count_for(rep, "b"), 0);
	crac_report_free(rep);
	tres_unreg(&a); tres_unreg(&b); tres_unreg(&c); tres_unreg(&d);
}

/* after_restore failures are reported with phase RESTORE (a report is
 * returned even though the round succeeded), the remaining after_restore
 * callbacks still run, and the outcome stays CRAC_RESTORED. Before and
 * after failures of one round are all in one report. */
static void test_after_failure_reported(void)
{
	struct tres r1, r2, r3;
	tres_init(&r1, "r1"); tres_init(&r2, "r2"); tres_init(&r3, "r3");
	r2.fail_after = -ENOTCONN;
	r1.fail_after = -EPIPE;
	tres_reg(NULL, &r1, 0); tres_reg(NULL, &r2, 0); tres_reg(NULL, &r3, 0);

	crac_report *rep = NULL;
	tlog_reset();
	CHECK_EQ(t_sim(&rep), CRAC_RESTORED);
	CHECK_LOG("B:r3 B:r2 B:r1 A:r1 A:r2 A:r3");
	REQUIRE(rep != NULL);
	CHECK_EQ(crac_report_status(rep), CRAC_RESTORED);
	const struct crac_failure *f = t_find(rep, "r2", 0);
	REQUIRE(f != NULL);
	CHECK_EQ(f->phase, CRAC_PHASE_RESTORE);
	CHECK_EQ(f->code, -ENOTCONN);
	CHECKF(f->message && strstr(f->message, "r2: after failed on purpose"), "msg %s", f->message);
	f = t_find(rep, "r1", 0);
	REQUIRE(f != NULL);
	CHECK_EQ(f->phase, CRAC_PHASE_RESTORE);
	CHECK_EQ(f->code, -EPIPE);
	CHECK_EQ(t_count_for(rep, "r3"), 0);
	CHECK_EQ(r3.ev_after.outcome, CRAC_RESTORED);
	crac_report_free(rep);

	/* Both phases fail in one round: one report lists both. */
	r3.fail_before = -EBUSY;
	rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_ABORTED);
	CHECK(t_find(rep, "r3", CRAC_PHASE_CHECKPOINT) != NULL);
	CHECK(t_find(rep, "r2", CRAC_PHASE_RESTORE) != NULL);
	CHECK(t_find(rep, "r1", CRAC_PHASE_RESTORE) != NULL);
	crac_report_free(rep);
	tres_unreg(&r1); tres_unreg(&r2); tres_unreg(&r3);
}

/* A callback returning a positive value failed: code -EIO, with a message. */
static int ret_positive(const crac_event *ev, void *arg) { return 7; }
static int ret_positive_after(const crac_event *ev, void *arg) { return 1; }

static void test_positive_return_is_eio(void)
{
	crac_resource *h = NULL;
	struct crac_resource_def d = { .name = "pos", .before_checkpoint = ret_positive };
	REQUIRE(crac_register(NULL, &d, &h) == 0);
	crac_report *rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_ABORTED);
	const struct crac_failure *f = t_find(rep, "pos", 0);
	REQUIRE(f != NULL);
	CHECK_EQ(f->code, -EIO);
	CHECK(f->message != NULL && f->message[0] != '\0');
	crac_report_free(rep);
	CHECK_EQ(crac_unregister(h), 0);

	struct crac_resource_def d2 = { .name = "posafter", .after_restore = ret_positive_after };
	REQUIRE(crac_register(NULL, &d2, &h) == 0);
	rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_RESTORED);
	f = t_find(rep, "posafter", CRAC_PHASE_RESTORE);
	REQUIRE(f != NULL);
	CHECK_EQ(f->code, -EIO);
	crac_report_free(rep);
	CHECK_EQ(crac_unregister(h), 0);
}

/* crac_fail returns its code; a non-negative code becomes -EIO (returned
 * and reported), the message is kept. */
static int rv_fail_pos, rv_fail_zero;
static int fail_nonneg(const crac_event *ev, void *arg)
{
	rv_fail_pos = crac_fail(5, "positive code %s", "here");
	rv_fail_zero = crac_fail(0, "zero code");
	return crac_fail(3, "nonneg %d", 3);
}

static void test_crac_fail_nonnegative(void)
{
	crac_resource *h = NULL;
	struct crac_resource_def d = { .name = "nonneg", .before_checkpoint = fail_nonneg };
	REQUIRE(crac_register(NULL, &d, &h) == 0);
	crac_report *rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_ABORTED);
	CHECK_EQ(rv_fail_pos, -EIO);
	CHECK_EQ(rv_fail_zero, -EIO);
	const struct crac_failure *f = t_find(rep, "nonneg", 0);
	REQUIRE(f != NULL);
	CHECK_EQ(f->code, -EIO);
	CHECKF(f->message && strstr(f->message, "nonneg 3"), "msg %s", f->message);
	crac_report_free(rep);
	CHECK_EQ(crac_unregister(h), 0);

	/* outside a callback crac_fail is harmless and still returns the code */
	CHECK_EQ(crac_fail(-EBUSY, "outside %d", 1), -EBUSY);
	CHECK_EQ(crac_fail(9, "outside"), -EIO);
	rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_RESTORED);
	CHECK_NO_FAILURES(rep);
	crac_report_free(rep);
}

/* A callback failing without crac_fail still gets a useful message
 * (strerror-like, never NULL or empty). A message set with crac_fail by an
 * earlier callback that then returned 0 must not leak into it: the message
 * is kept only until that callback returns. */
static int set_msg_but_succeed(const crac_event *ev, void *arg)
{
	(void)crac_fail(-EBUSY, "STALE-MARKER should never be reported");
	return 0;
}
static int plain_enospc(const crac_event *ev, void *arg) { return -ENOSPC; }

static void test_failure_without_message(void)
{
	crac_resource *h1 = NULL, *h2 = NULL;
	/* registration order: plain first, stale second -> stale runs first */
	struct crac_resource_def d1 = { .name = "plain", .before_checkpoint = plain_enospc };
	struct crac_resource_def d2 = { .name = "stale", .before_checkpoint = set_msg_but_succeed };
	REQUIRE(crac_register(NULL, &d1, &h1) == 0);
	REQUIRE(crac_register(NULL, &d2, &h2) == 0);
	crac_report *rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_ABORTED);
	const struct crac_failure *f = t_find(rep, "plain", 0);
	REQUIRE(f != NULL);
	CHECK_EQ(f->code, -ENOSPC);
	REQUIRE(f->message != NULL);
	CHECK(f->message[0] != '\0');
	CHECKF(strstr(f->message, "STALE-MARKER") == NULL, "stale message leaked: %s", f->message);
	CHECK_EQ(t_count_for(rep, "stale"), 0);
	/* nothing in the whole report mentions the stale message */
	for (size_t i = 0; i < crac_report_count(rep); i++) {
		const struct crac_failure *g = crac_report_get(rep, i);
		CHECK(g && g->message && strstr(g->message, "STALE-MARKER") == NULL);
	}
	crac_report_free(rep);
	CHECK_EQ(crac_unregister(h1), 0);
	CHECK_EQ(crac_unregister(h2), 0);
}

/* A very long crac_fail message is kept (possibly truncated) without
 * overflowing anything (ASan build). */
static int fail_long(const crac_event *ev, void *arg)
{
	static char big[20000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	return crac_fail(-E2BIG, "LONG:%s", big);
}

static void test_long_message(void)
{
	crac_resource *h = NULL;
	struct crac_resource_def d = { .name = "long", .before_checkpoint = fail_long };
	REQUIRE(crac_register(NULL, &d, &h) == 0);
	crac_report *rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_ABORTED);
	const struct crac_failure *f = t_find(rep, "long", 0);
	REQUIRE(f != NULL);
	CHECK_EQ(f->code, -E2BIG);
	CHECK(f->message && strncmp(f->message, "LONG:xxxx", 9) == 0);
	crac_report_free(rep);
	CHECK_EQ(crac_unregister(h), 0);
}

/* Unknown engine: -ENOENT, a report whose status is -ENOENT and which says
 * which engine; nothing is left half-done (every resource notified before
 * is notified after, in particular no before-only notification). */
static void test_unknown_engine(void)
{
	struct tres r;
	tres_init(&r, "r");
	tres_reg(NULL, &r, 0);
	crac_report *rep = NULL;
	int rc = t_checkpoint("no-such-engine", 0, 0, 0, &rep);
	CHECK_EQ(rc, -ENOENT);
	REQUIRE(rep != NULL);
	CHECK_EQ(crac_report_status(rep), -ENOENT);
	CHECK(crac_report_count(rep) >= 1);
	const struct crac_failure *f = t_find_code(rep, -ENOENT);
	CHECKF(f != NULL, "no -ENOENT entry");
	const char *text = t_format(rep);
	CHECKF(strstr(text, "no-such-engine") != NULL, "report does not name the engine:\n%s", text);
	CHECK_EQ(atomic_load(&r.nbefore), atomic_load(&r.nafter));
	crac_report_free(rep);

	/* without a report pointer: same return, no crash */
	CHECK_EQ(t_checkpoint("no-such-engine", 0, 0, 0, NULL), -ENOENT);
	/* and the library is still usable */
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	tres_unreg(&r);
}

/* CRAC_DRY_RUN: callbacks run (before and after), no snapshot: CONTINUED
 * when all went well (no restore: same generation and instance id, the
 * event's outcome says CONTINUED), ABORTED when a callback failed. */
static void test_dry_run(void)
{
	struct tres r1, r2;
	tres_init(&r1, "r1"); tres_init(&r2, "r2");
	tres_reg(NULL, &r1, 0); tres_reg(NULL, &r2, 0);

	crac_report *rep = NULL;
	tlog_reset();
	CHECK_EQ(t_checkpoint("sim", 0, 0, CRAC_DRY_RUN, &rep), CRAC_CONTINUED);
	CHECK_LOG("B:r2 B:r1 A:r1 A:r2");
	CHECK_NO_FAILURES(rep);
	crac_report_free(rep);
	CHECK_EQ(r1.ev_after.outcome, CRAC_CONTINUED);
	CHECK_EQ(r1.ev_after.generation, r1.ev_before.generation);
	CHECK(memcmp(r1.ev_after.instance_id, r1.ev_before.instance_id, 16) == 0);

	r2.fail_before = -EBUSY;
	rep = NULL;
	tlog_reset();
	CHECK_EQ(t_checkpoint("sim", 0, 0, CRAC_DRY_RUN, &rep), CRAC_ABORTED);
	CHECK_LOG("B:r2 B:r1 A:r1 A:r2");
	CHECK(t_find(rep, "r2", CRAC_PHASE_CHECKPOINT) != NULL);
	crac_report_free(rep);
	tres_unreg(&r1); tres_unreg(&r2);
}

/* report == NULL is allowed even when there are failures. */
static void test_null_report_pointer(void)
{
	struct tres r;
	tres_init(&r, "r");
	r.fail_before = -EBUSY;
	tres_reg(NULL, &r, 0);
	CHECK_EQ(crac_checkpoint_restore(NULL, NULL), CRAC_ABORTED);
	CHECK_EQ(atomic_load(&r.nafter), 1);
	tres_unreg(&r);
}

int main(void)
{
	unsetenv("CRAC_ENGINE");
	RUN(test_before_failure_aborts);
	RUN(test_multiple_failures_listed);
	RUN(test_after_failure_reported);
	RUN(test_positive_return_is_eio);
	RUN(test_crac_fail_nonnegative);
	RUN(test_failure_without_message);
	RUN(test_long_message);
	RUN(test_unknown_engine);
	RUN(test_dry_run);
	RUN(test_null_report_pointer);
	return t_done();
}
