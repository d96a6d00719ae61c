/* SPDX-License-Identifier: MIT */
/*
 * test_concurrency.c - concurrent and recursive checkpoint requests
 * (crac_checkpoint_restore: -EBUSY, -EDEADLK) and a bounded stress test of
 * registration/unregistration racing with checkpoints (run it under the
 * ASan build: freed resources must never be called).
 */
#include "test_common.h"

/* ---- two threads at once -------------------------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool in_callback, second_tried;

static int blocking_before(const crac_event *ev, void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
	pthread_mutex_lock(&mu);
	in_callback = true;
	pthread_cond_broadcast(&cv);
	while (!second_tried)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return 0;
}

struct cp_arg { int rc; crac_report *rep; };
static void *first_thread(void *p)
{
	struct cp_arg *a = p;
	a->rc = t_sim(&a->rep);
	return NULL;
}

/* Thread 1's checkpoint blocks inside a callback until thread 2 (main) has
 * tried: thread 2 gets -EBUSY at once with a report saying so, and did not
 * run any callback; thread 1 then completes normally. */
static void test_concurrent_request_busy(void)
{
	atomic_int calls = 0;
	crac_resource *h = NULL;
	struct crac_resource_def d = { .name = "blocker", .before_checkpoint = blocking_before,
				       .arg = &calls };
	REQUIRE(crac_register(NULL, &d, &h) == 0);
	in_callback = second_tried = false;

	struct cp_arg a = { 0 };
	pthread_t t;
	pthread_create(&t, NULL, first_thread, &a);
	pthread_mutex_lock(&mu);
	while (!in_callback)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);

	crac_report *rep = NULL;
	int64_t t0 = t_mono_ms();
	int rc = t_sim(&rep);
	int64_t waited = t_mono_ms() - t0;

	pthread_mutex_lock(&mu);
	second_tried = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(t, NULL);

	CHECK_EQ(rc, -EBUSY);
	CHECKF(waited < 2000, "the second request waited %lld ms instead of failing", (long long)waited);
	REQUIRE(rep != NULL);
	CHECK_EQ(crac_report_status(rep), -EBUSY);
	const struct crac_failure *f = t_find_code(rep, -EBUSY);
	CHECKF(f != NULL && f->message && f->message[0], "no -EBUSY entry with a message");
	const char *text = t_format(rep);
	CHECKF(text[0] != '\0', "empty report text");
	crac_report_free(rep);

	CHECK_EQ(a.rc, CRAC_RESTORED);
	CHECK_NO_FAILURES(a.rep);
	crac_report_free(a.rep);
	CHECK_EQ(atomic_load(&calls), 1);
	CHECK_EQ(crac_unregister(h), 0);

	/* and afterwards a new checkpoint works */
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
}

/* ---- recursive checkpoint ------------------------------------------- */

static int rec_rc_before, rec_rc_after;
static char rec_msg_before[256], rec_msg_after[256];

static void recursive_try(int *rc, char *msg)
{
	crac_report *rep = NULL;
	*rc = t_sim(&rep);
	msg[0] = '\0';
	if (rep) {
		snprintf(msg, 256, "%s", t_format(rep));
		CHECK_EQ(crac_report_status(rep), -EDEADLK);
		CHECK(t_find_code(rep, -EDEADLK) != NULL);
	}
	crac_report_free(rep);
}
static int rec_before(const crac_event *ev, void *arg)
{
	recursive_try(&rec_rc_before, rec_msg_before);
	return 0;
}
static int rec_after(const crac_event *ev, void *arg)
{
	recursive_try(&rec_rc_after, rec_msg_after);
	return 0;
}

/* crac_checkpoint_restore from inside a callback (both phases) returns
 * -EDEADLK with "recursive checkpoint" in the report; the outer round is
 * not disturbed. */
static void test_recursive_checkpoint(void)
{
	struct tres other;
	tres_init(&other, "other");
	tres_reg(NULL, &other, 0);
	crac_resource *h = NULL;
	struct crac_resource_def d = { .name = "rec", .before_checkpoint = rec_before,
				       .after_restore = rec_after };
	REQUIRE(crac_register(NULL, &d, &h) == 0);

	crac_report *rep = NULL;
	tlog_reset();
	CHECK_EQ(t_sim(&rep), CRAC_RESTORED);
	CHECK_NO_FAILURES(rep);
	crac_report_free(rep);
	CHECK_LOG("B:other A:other");
	CHECK_EQ(rec_rc_before, -EDEADLK);
	CHECK_EQ(rec_rc_after, -EDEADLK);
	CHECKF(strstr(rec_msg_before, "recursive checkpoint") != NULL, "report: %s", rec_msg_before);
	CHECKF(strstr(rec_msg_after, "recursive checkpoint") != NULL, "report: %s", rec_msg_after);
	CHECK_EQ(crac_unregister(h), 0);
	tres_unreg(&other);
}

/* ---- stress ----------------------------------------------------------- */

/* A resource owned by a churn thread; freed right after unregister. */
struct sres {
	atomic_int before, after;
	unsigned magic;
};
#define SRES_MAGIC 0x5eed1234u

static atomic_int bad_calls;
static int sres_before(const crac_event *ev, void *arg)
{
	struct sres *s = arg;
	if (s->magic != SRES_MAGIC)
		atomic_fetch_add(&bad_calls, 1);
	atomic_fetch_add(&s->before, 1);
	return 0;
}
static int sres_after(const crac_event *ev, void *arg)
{
	struct sres *s = arg;
	if (s->magic != SRES_MAGIC)
		atomic_fetch_add(&bad_calls, 1);
	/* never more after_restore than before_checkpoint calls */
	if (atomic_fetch_add(&s->after, 1) + 1 > atomic_load(&s->before))
		atomic_fetch_add(&bad_calls, 1);
	return 0;
}

static atomic_int stop_flag;
static atomic_int churn_errors;

static void *churn_thread(void *p)
{
	unsigned seed = (unsigned)(uintptr_t)p;
	crac_context *ctx = NULL;
	while (!atomic_load(&stop_flag)) {
		struct sres *s[8];
		crac_resource *h[8];
		int n = 1 + (int)(rand_r(&seed) % 8);
		bool use_ctx = rand_r(&seed) % 2;
		if (use_ctx && crac_context_create(NULL, "churn", (int)(rand_r(&seed) % 3) * 100, &ctx) != 0) {
			atomic_fetch_add(&churn_errors, 1);
			use_ctx = false;
		}
		for (int i = 0; i < n; i++) {
			s[i] = calloc(1, sizeof(*s[i]));
			s[i]->magic = SRES_MAGIC;
			struct crac_resource_def d = { .name = "s", .before_checkpoint = sres_before,
						       .after_restore = sres_after, .arg = s[i],
						       .priority = (int)(rand_r(&seed) % 3) - 1 };
			if (crac_register(use_ctx ? ctx : NULL, &d, &h[i]) != 0)
				atomic_fetch_add(&churn_errors, 1);
		}
		for (int i = 0; i < n; i++) {
			if (use_ctx && i == n / 2) {
				/* destroy the context instead of unregistering the rest */
				if (crac_context_destroy(ctx) != 0)
					atomic_fetch_add(&churn_errors, 1);
				for (int j = i; j < n; j++) {
					s[j]->magic = 0xdead;
					free(s[j]);
				}
				break;
			}
			if (crac_unregister(h[i]) != 0)
				atomic_fetch_add(&churn_errors, 1);
			s[i]->magic = 0xdead;
			free(s[i]);
			if (use_ctx && i == n - 1 && crac_context_destroy(ctx) != 0)
				atomic_fetch_add(&churn_errors, 1);
		}
	}
	return NULL;
}

static atomic_int cp_other_bad, cp_other_count;
static void *checkpoint_thread(void *p)
{
	while (!atomic_load(&stop_flag)) {
		int rc = t_sim(NULL);
		if (rc != CRAC_RESTORED && rc != -EBUSY)
			atomic_fetch_add(&cp_other_bad, 1);
		atomic_fetch_add(&cp_other_count, 1);
	}
	return NULL;
}

/* Four threads register/unregister resources (and create/destroy contexts)
 * while two threads checkpoint in a loop for ~1.5 s. Every checkpoint
 * returns RESTORED or -EBUSY; no freed resource is ever called (magic check
 * + ASan); no resource gets more after_restore than before_checkpoint; a
 * resident resource is notified consistently (before == after). */
static void test_stress_register_vs_checkpoint(void)
{
	struct tres resident;
	tres_init(&resident, "resident");
	tres_reg(NULL, &resident, 0);
	atomic_store(&stop_flag, 0);
	atomic_store(&bad_calls, 0);

	pthread_t churn[4], cps[2];
	for (int i = 0; i < 4; i++)
		pthread_create(&churn[i], NULL, churn_thread, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < 2; i++)
		pthread_create(&cps[i], NULL, checkpoint_thread, NULL);

	int64_t end = t_mono_ms() + 1500;
	int rounds = 0, bad = 0;
	while (t_mono_ms() < end) {
		crac_report *rep = NULL;
		int rc = t_sim(&rep);
		if (rc == CRAC_RESTORED)
			rounds++;
		else if (rc != -EBUSY) {
			bad++;
			t_dump(rep);
		}
		crac_report_free(rep);
	}
	atomic_store(&stop_flag, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(churn[i], NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(cps[i], NULL);

	CHECK_EQ(bad, 0);
	CHECK_EQ(atomic_load(&cp_other_bad), 0);
	CHECK_EQ(atomic_load(&bad_calls), 0);
	CHECK_EQ(atomic_load(&churn_errors), 0);
	CHECKF(rounds + atomic_load(&cp_other_count) > 10, "only %d rounds", rounds);
	CHECK_EQ(atomic_load(&resident.nbefore), atomic_load(&resident.nafter));
	CHECK(atomic_load(&resident.nbefore) > 0);
	tres_unreg(&resident);

	/* everything was unregistered: a final round notifies nothing else */
	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("");
}

int main(void)
{
	unsetenv("CRAC_ENGINE");
	alarm(90);  /* a deadlock fails the test instead of hanging it */
	RUN(test_concurrent_request_busy);
	RUN(test_recursive_checkpoint);
	RUN(test_stress_register_vs_checkpoint);
	return t_done();
}
