/* SPDX-License-Identifier: MIT */
/*
 * test_timeout.c - checkpoint deadlines (struct crac_options deadline_ms /
 * restore_deadline_ms, crac_event.deadline_monotonic; DESIGN §3 "Timeouts"):
 * a callback over the budget aborts the checkpoint with -ETIMEDOUT naming
 * it; an after_restore over its budget is reported but the restore stands.
 * Sleeps are the point here; margins are generous (3x).
 */
#include "test_common.h"

struct sleepy {
	const char *name;
	int before_ms, after_ms;
	atomic_int nbefore, nafter;
	int64_t deadline_before, deadline_after;
	int64_t cp_mono, restore_mono;
	int64_t seen_remaining_ms;
};

static int sleepy_before(const crac_event *ev, void *arg)
{
	struct sleepy *s = arg;
	atomic_fetch_add(&s->nbefore, 1);
	tlog_add("B:%s", s->name);
	s->deadline_before = ev->deadline_monotonic;
	s->cp_mono = ev->checkpoint_monotonic;
	if (s->before_ms)
		t_sleep_ms(s->before_ms);
	return 0;
}
static int sleepy_after(const crac_event *ev, void *arg)
{
	struct sleepy *s = arg;
	atomic_fetch_add(&s->nafter, 1);
	tlog_add("A:%s", s->name);
	s->deadline_after = ev->deadline_monotonic;
	s->restore_mono = ev->restore_monotonic;
	if (s->after_ms)
		t_sleep_ms(s->after_ms);
	return 0;
}

static crac_resource *sleepy_reg(struct sleepy *s, const char *name, int before_ms, int after_ms)
{
	crac_resource *h = NULL;
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->before_ms = before_ms;
	s->after_ms = after_ms;
	struct crac_resource_def d = { .name = name, .before_checkpoint = sleepy_before,
				       .after_restore = sleepy_after, .arg = s };
	CHECK_EQ(crac_register(NULL, &d, &h), 0);
	return h;
}

#define MS 1000000LL

/* deadline_ms = 100, a before_checkpoint sleeping 300 ms: ABORTED, an entry
 * with -ETIMEDOUT naming the resource; after_restore still runs for every
 * notified resource; the event's deadline is checkpoint start + ~100 ms. */
static void test_before_timeout(void)
{
	struct sleepy slow, fast;
	crac_resource *hf = sleepy_reg(&fast, "fast", 0, 0);
	crac_resource *hs = sleepy_reg(&slow, "slow", 300, 0);

	crac_report *rep = NULL;
	int64_t t0 = t_mono_ms();
	int rc = t_checkpoint("sim", 100, 0, 0, &rep);
	int64_t took = t_mono_ms() - t0;
	CHECK_EQ(rc, CRAC_ABORTED);
	REQUIRE(rep != NULL);
	CHECK_EQ(crac_report_status(rep), CRAC_ABORTED);
	const struct crac_failure *f = t_find(rep, "slow", 0);
	CHECKF(f != NULL, "no failure names \"slow\"");
	if (f) {
		CHECK_EQ(f->code, -ETIMEDOUT);
		CHECK_EQ(f->phase, CRAC_PHASE_CHECKPOINT);
		CHECK(f->message && f->message[0]);
	} else {
		t_dump(rep);
	}
	CHECK(t_find_code(rep, -ETIMEDOUT) != NULL);
	crac_report_free(rep);
	/* the sleeping callback cannot be interrupted, but nothing else waits */
	CHECKF(took < 2000, "took %lld ms", (long long)took);

	CHECK_EQ(atomic_load(&slow.nafter), atomic_load(&slow.nbefore));
	CHECK_EQ(atomic_load(&slow.nafter), 1);
	CHECK_EQ(atomic_load(&fast.nafter), atomic_load(&fast.nbefore));
	CHECK(slow.deadline_before > 0);
	int64_t d = slow.deadline_before - slow.cp_mono;
	CHECKF(d >= 50 * MS && d <= 150 * MS, "deadline - checkpoint_monotonic = %lld ns", (long long)d);
	CHECK_EQ(fast.deadline_before, slow.deadline_before);

	CHECK_EQ(crac_unregister(hs), 0);
	CHECK_EQ(crac_unregister(hf), 0);
}

/* The budget is for the whole before-phase: two callbacks of 120 ms each
 * with a 150 ms budget exceed it together; the report has -ETIMEDOUT and
 * names one of them. */
static void test_budget_is_cumulative(void)
{
	struct sleepy a, b;
	crac_resource *ha = sleepy_reg(&a, "a", 120, 0);
	crac_resource *hb = sleepy_reg(&b, "b", 120, 0);
	crac_report *rep = NULL;
	CHECK_EQ(t_checkpoint("sim", 150, 0, 0, &rep), CRAC_ABORTED);
	const struct crac_failure *f = t_find_code(rep, -ETIMEDOUT);
	CHECKF(f != NULL, "no -ETIMEDOUT entry");
	if (f)
		CHECKF(strcmp(f->resource, "a") == 0 || strcmp(f->resource, "b") == 0,
		       "timeout names %s", f->resource);
	else
		t_dump(rep);
	crac_report_free(rep);
	CHECK_EQ(crac_unregister(ha), 0);
	CHECK_EQ(crac_unregister(hb), 0);
}

/* A callback well within its budget does not time out (no false alarm),
 * and deadline_ms = 0 means the 10 s default, < 0 means none (0 in the
 * event). */
static void test_defaults_and_no_deadline(void)
{
	struct sleepy s;
	crac_resource *h = sleepy_reg(&s, "ok", 20, 20);
	crac_report *rep = NULL;
	CHECK_EQ(t_checkpoint("sim", 1000, 1000, 0, &rep), CRAC_RESTORED);
	CHECK_NO_FAILURES(rep);
	crac_report_free(rep);

	CHECK_EQ(t_checkpoint("sim", 0, 0, 0, NULL), CRAC_RESTORED);
	int64_t d = s.deadline_before - s.cp_mono;
	CHECKF(d >= 9000 * MS && d <= 11000 * MS, "default before deadline: +%lld ns", (long long)d);
	d = s.deadline_after - s.restore_mono;
	CHECKF(d >= 9000 * MS && d <= 11000 * MS, "default restore deadline: +%lld ns", (long long)d);

	CHECK_EQ(t_checkpoint("sim", -1, -1, 0, NULL), CRAC_RESTORED);
	CHECK_EQ(s.deadline_before, 0);
	CHECK_EQ(s.deadline_after, 0);
	CHECK_EQ(crac_unregister(h), 0);
}

/* A budget too large for CLOCK_MONOTONIC nanoseconds (from 2^63 / 10^6 ms
 * on, less the clock's value) is no deadline: 0 in the event, and nothing
 * times out. now + ms * 10^6 overflowed (undefined behaviour) and came out
 * in the past: every such checkpoint was aborted at once with ETIMEDOUT
 * ("ran past the checkpoint deadline" after 0.0 ms). */
static void test_huge_deadline(void)
{
	static const int64_t huge[] = { INT64_MAX, INT64_MAX / 1000000, 9223372036854LL, 922337203685477LL };
	struct sleepy s;
	crac_resource *h = sleepy_reg(&s, "huge", 0, 0);

	for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
		crac_report *rep = NULL;
		CHECKF(t_checkpoint("sim", huge[i], huge[i], 0, &rep) == CRAC_RESTORED, "deadline_ms %lld",
		       (long long)huge[i]);
		CHECK_NO_FAILURES(rep);
		crac_report_free(rep);
		CHECKF(s.deadline_before == 0 || s.deadline_before > s.cp_mono, "deadline_ms %lld: before %lld",
		       (long long)huge[i], (long long)s.deadline_before);
		CHECKF(s.deadline_after == 0 || s.deadline_after > s.restore_mono, "deadline_ms %lld: after %lld",
		       (long long)huge[i], (long long)s.deadline_after);
	}
	/* the largest that fits still is one */
	int64_t fits = (INT64_MAX - t_mono_ms() * MS) / MS / 2;
	CHECK_EQ(t_checkpoint("sim", fits, fits, 0, NULL), CRAC_RESTORED);
	CHECK(s.deadline_before > s.cp_mono);
	CHECK(s.deadline_after > s.restore_mono);
	CHECK_EQ(crac_unregister(h), 0);
}

/* restore_deadline_ms = 100 with an after_restore sleeping 300 ms: the
 * restore stands (RESTORED), the report has an after_restore entry with
 * -ETIMEDOUT naming it; the after-event deadline is restore + ~100 ms. */
static void test_restore_timeout(void)
{
	struct sleepy slow, other;
	/* registered first -> its after_restore runs first, "other" after it */
	crac_resource *hs = sleepy_reg(&slow, "slowafter", 0, 300);
	crac_resource *ho = sleepy_reg(&other, "other", 0, 0);
	crac_report *rep = NULL;
	int rc = t_checkpoint("sim", 0, 100, 0, &rep);
	CHECK_EQ(rc, CRAC_RESTORED);
	REQUIRE(rep != NULL);
	CHECK_EQ(crac_report_status(rep), CRAC_RESTORED);
	const struct crac_failure *f = t_find(rep, "slowafter", CRAC_PHASE_RESTORE);
	CHECKF(f != NULL, "no after_restore failure names slowafter");
	if (f)
		CHECK_EQ(f->code, -ETIMEDOUT);
	else
		t_dump(rep);
	crac_report_free(rep);
	CHECK(slow.deadline_after > 0);
	int64_t d = slow.deadline_after - slow.restore_mono;
	CHECKF(d >= 50 * MS && d <= 150 * MS, "deadline - restore_monotonic = %lld ns", (long long)d);
	/* every notified resource got after_restore, including the one after
	 * the slow one */
	CHECK_EQ(atomic_load(&other.nafter), 1);
	CHECK_EQ(crac_unregister(hs), 0);
	CHECK_EQ(crac_unregister(ho), 0);
}

int main(void)
{
	unsetenv("CRAC_ENGINE");
	alarm(90);  /* a deadlock fails the test instead of hanging it */
	RUN(test_before_timeout);
	RUN(test_budget_is_cumulative);
	RUN(test_defaults_and_no_deadline);
	RUN(test_restore_timeout);
	RUN(test_huge_deadline);
	return t_done();
}
