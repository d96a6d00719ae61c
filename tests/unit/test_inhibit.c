/* SPDX-License-Identifier: MIT */
/*
 * test_inhibit.c - inhibitors (crac.h "Inhibitors"; DESIGN §3): a
 * checkpoint waits for held inhibitors up to its deadline (-ETIMEDOUT and
 * the inhibitor named in the report otherwise); crac_inhibit from a
 * callback is -EDEADLK; crac_inhibit while a checkpoint runs blocks until
 * it finished.
 */
#include "test_common.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

/* Records when the snapshot side happened: restore_monotonic of the event. */
static int64_t restore_mono_seen;
static atomic_int after_ran;
static int note_after(const crac_event *ev, void *arg)
{
	restore_mono_seen = ev->restore_monotonic;
	atomic_store(&after_ran, 1);
	return 0;
}

/* ---- checkpoint waits for a held inhibitor -------------------------- */

struct holder {
	const char *why;
	int hold_ms;
	bool holding;
	int64_t released_at_ns;
	int rc_inhibit, rc_release;
};

static void *holder_thread(void *p)
{
	struct holder *h = p;
	crac_inhibitor *inh = NULL;
	h->rc_inhibit = crac_inhibit(h->why, &inh);
	pthread_mutex_lock(&mu);
	h->holding = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	if (h->rc_inhibit != 0)
		return NULL;
	t_sleep_ms(h->hold_ms);
	h->released_at_ns = t_now_ns(CLOCK_MONOTONIC);
	h->rc_release = crac_release(inh);
	return NULL;
}

static void wait_holding(struct holder *h)
{
	pthread_mutex_lock(&mu);
	while (!h->holding)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

/* An inhibitor held for 300 ms: the checkpoint (deadline 5 s) waits for its
 * release and then succeeds; the snapshot point (restore time of the sim
 * engine) is after the release. */
static void test_waits_for_release(void)
{
	crac_resource *r = NULL;
	struct crac_resource_def d = { .name = "note", .after_restore = note_after };
	REQUIRE(crac_register(NULL, &d, &r) == 0);

	struct holder h = { .why = "flush", .hold_ms = 300 };
	pthread_t t;
	pthread_create(&t, NULL, holder_thread, &h);
	wait_holding(&h);
	REQUIRE(h.rc_inhibit == 0);

	crac_report *rep = NULL;
	int64_t t0 = t_mono_ms();
	int rc = t_checkpoint("sim", 5000, 0, 0, &rep);
	int64_t took = t_mono_ms() - t0;
	pthread_join(t, NULL);

	CHECK_EQ(rc, CRAC_RESTORED);
	CHECK_NO_FAILURES(rep);
	crac_report_free(rep);
	CHECK_EQ(h.rc_release, 0);
	CHECKF(took >= 200, "checkpoint did not wait for the inhibitor (%lld ms)", (long long)took);
	CHECKF(took < 3000, "checkpoint waited %lld ms", (long long)took);
	CHECKF(restore_mono_seen >= h.released_at_ns, "snapshot before the release");
	CHECK_EQ(crac_unregister(r), 0);
}

/* Two inhibitors released one after the other: the checkpoint waits for
 * the last one. */
static void test_waits_for_all(void)
{
	crac_resource *r = NULL;
	struct crac_resource_def d = { .name = "note", .after_restore = note_after };
	REQUIRE(crac_register(NULL, &d, &r) == 0);

	struct holder h1 = { .why = "one", .hold_ms = 100 }, h2 = { .why = "two", .hold_ms = 350 };
	pthread_t t1, t2;
	pthread_create(&t1, NULL, holder_thread, &h1);
	pthread_create(&t2, NULL, holder_thread, &h2);
	wait_holding(&h1);
	wait_holding(&h2);

	int rc = t_checkpoint("sim", 5000, 0, 0, NULL);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	CHECK_EQ(rc, CRAC_RESTORED);
	CHECKF(restore_mono_seen >= h2.released_at_ns, "snapshot before the last release");
	CHECK_EQ(crac_unregister(r), 0);
}

/* Never released before the deadline (200 ms): -ETIMEDOUT, the report
 * names "flush"; every notified resource still got after_restore. After
 * the release, checkpoints work again. */
static void test_timeout_names_inhibitor(void)
{
	struct tres res;
	tres_init(&res, "res");
	tres_reg(NULL, &res, 0);
	/* held by another thread for 800 ms, far beyond the 200 ms deadline */
	struct holder h = { .why = "flush", .hold_ms = 800 };
	pthread_t t;
	pthread_create(&t, NULL, holder_thread, &h);
	wait_holding(&h);
	REQUIRE(h.rc_inhibit == 0);

	crac_report *rep = NULL;
	int64_t t0 = t_mono_ms();
	int rc = t_checkpoint("sim", 200, 0, 0, &rep);
	int64_t took = t_mono_ms() - t0;
	CHECK_EQ(rc, -ETIMEDOUT);
	CHECKF(took >= 150 && took < 3000, "took %lld ms", (long long)took);
	REQUIRE(rep != NULL);
	CHECK_EQ(crac_report_status(rep), -ETIMEDOUT);
	const struct crac_failure *f = t_find_code(rep, -ETIMEDOUT);
	CHECKF(f != NULL, "no -ETIMEDOUT entry");
	const char *text = t_format(rep);
	CHECKF(strstr(text, "flush") != NULL, "report does not name the inhibitor:\n%s", text);
	crac_report_free(rep);
	CHECK_EQ(atomic_load(&res.nbefore), atomic_load(&res.nafter));

	pthread_join(t, NULL);
	CHECK_EQ(h.rc_release, 0);
	CHECK_EQ(t_checkpoint("sim", 1000, 0, 0, NULL), CRAC_RESTORED);
	tres_unreg(&res);
}

/* crac_inhibit from inside a callback: -EDEADLK (both phases); nothing is
 * left held (the next checkpoint with a short deadline succeeds). */
static int inh_rc_before = 1, inh_rc_after = 1;
static int inhibit_in_before(const crac_event *ev, void *arg)
{
	crac_inhibitor *inh = NULL;
	inh_rc_before = crac_inhibit("from-callback", &inh);
	if (inh_rc_before == 0)
		crac_release(inh);
	return 0;
}
static int inhibit_in_after(const crac_event *ev, void *arg)
{
	crac_inhibitor *inh = NULL;
	inh_rc_after = crac_inhibit("from-callback", &inh);
	if (inh_rc_after == 0)
		crac_release(inh);
	return 0;
}

static void test_inhibit_in_callback(void)
{
	crac_resource *h = NULL;
	struct crac_resource_def d = { .name = "inh", .before_checkpoint = inhibit_in_before,
				       .after_restore = inhibit_in_after };
	REQUIRE(crac_register(NULL, &d, &h) == 0);
	CHECK_EQ(t_checkpoint("sim", 2000, 2000, 0, NULL), CRAC_RESTORED);
	CHECK_EQ(inh_rc_before, -EDEADLK);
	CHECK_EQ(inh_rc_after, -EDEADLK);
	CHECK_EQ(crac_unregister(h), 0);
	CHECK_EQ(t_checkpoint("sim", 300, 0, 0, NULL), CRAC_RESTORED);
}

/* crac_inhibit from another thread while a checkpoint runs blocks until
 * the checkpoint finished (after_restore has run by the time it returns). */
static bool cb_started;
static int started_and_linger(const crac_event *ev, void *arg)
{
	pthread_mutex_lock(&mu);
	cb_started = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	t_sleep_ms(300);  /* time for a wrong crac_inhibit to return early */
	return 0;
}

struct late_inh { int rc; int after_ran_at_return; };
static void *late_inhibitor(void *p)
{
	struct late_inh *l = p;
	pthread_mutex_lock(&mu);
	while (!cb_started)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	crac_inhibitor *inh = NULL;
	l->rc = crac_inhibit("late", &inh);
	l->after_ran_at_return = atomic_load(&after_ran);
	if (l->rc == 0)
		crac_release(inh);
	return NULL;
}

static void test_inhibit_blocks_during_checkpoint(void)
{
	crac_resource *h = NULL;
	struct crac_resource_def d = { .name = "linger", .before_checkpoint = started_and_linger,
				       .after_restore = note_after };
	REQUIRE(crac_register(NULL, &d, &h) == 0);
	atomic_store(&after_ran, 0);
	cb_started = false;

	struct late_inh l = { 0 };
	pthread_t t;
	pthread_create(&t, NULL, late_inhibitor, &l);
	int rc = t_checkpoint("sim", 5000, 0, 0, NULL);
	pthread_join(t, NULL);
	CHECK_EQ(rc, CRAC_RESTORED);
	CHECK_EQ(l.rc, 0);
	CHECKF(l.after_ran_at_return == 1, "crac_inhibit returned while the checkpoint was running");
	CHECK_EQ(crac_unregister(h), 0);
}

/* Plain use outside any checkpoint: immediate; crac_release(NULL) -EINVAL. */
static void test_basic(void)
{
	crac_inhibitor *a = NULL, *b = NULL;
	CHECK_EQ(crac_inhibit("a", &a), 0);
	CHECK_EQ(crac_inhibit("a", &b), 0);   /* same reason twice is fine */
	CHECK(a != NULL && b != NULL && a != b);
	CHECK_EQ(crac_release(a), 0);
	CHECK_EQ(crac_release(b), 0);
	CHECK_EQ(crac_release(NULL), -EINVAL);
	/* nothing held any more */
	CHECK_EQ(t_checkpoint("sim", 300, 0, 0, NULL), CRAC_RESTORED);
}

int main(void)
{
	unsetenv("CRAC_ENGINE");
	alarm(90);  /* a deadlock fails the test instead of hanging it */
	RUN(test_basic);
	RUN(test_waits_for_release);
	RUN(test_waits_for_all);
	RUN(test_timeout_names_inhibitor);
	RUN(test_inhibit_in_callback);
	RUN(test_inhibit_blocks_during_checkpoint);
	return t_done();
}
