/* SPDX-License-Identifier: MIT */
/*
 * test_registration.c - registering and unregistering while a checkpoint
 * runs (crac.h "Ordering" last paragraph, crac_register, crac_unregister):
 *  - a resource registered by a callback is not notified in this round
 *    (neither before nor after) but is in the next;
 *  - a resource unregistered before its turn is not called at all; one
 *    unregistered after being notified gets no after_restore;
 *  - a callback may unregister its own resource (no crash, no more calls);
 *  - contexts destroyed/created from callbacks behave the same;
 *  - crac_unregister from another thread waits for a running callback.
 * Resources that get unregistered live in malloc'd memory that is freed
 * right after crac_unregister returns, so the ASan build catches any late
 * callback (use-after-free).
 */
#include "test_common.h"

/* ---- registering from a callback ------------------------------------ */

static struct tres *late_res;  /* registered by the registrar's callback */
static int registrar_before(const crac_event *ev, void *arg)
{
	struct tres *self = arg;
	tlog_add("B:%s", self->name);
	if (!late_res->h) {
		struct crac_resource_def d = { .name = "late", .before_checkpoint = tres_before,
					       .after_restore = tres_after, .arg = late_res };
		int rc = crac_register(NULL, &d, &late_res->h);
		CHECKF(rc == 0, "register from callback: %d", rc);
	}
	return 0;
}

/* r0 then the registrar are registered (before order: reg, r0). The
 * registrar adds "late" during the round, before r0's turn: "late" is not
 * notified at all in this round, and is notified (first, being the newest)
 * in the next one. */
static void test_register_during_round(void)
{
	struct tres reg, r0;
	tres_init(&reg, "reg"); tres_init(&r0, "r0");
	late_res = calloc(1, sizeof(*late_res));
	REQUIRE(late_res != NULL);
	tres_init(late_res, "late");
	tres_reg(NULL, &r0, 0);
	struct crac_resource_def d = { .name = "reg", .before_checkpoint = registrar_before,
				       .after_restore = tres_after, .arg = &reg };
	REQUIRE(crac_register(NULL, &d, &reg.h) == 0);

	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	/* "late" registered while r0 had not run yet: still not in this round */
	CHECK_LOG("B:reg B:r0 A:r0 A:reg");
	CHECK(late_res->h != NULL);
	CHECK_EQ(atomic_load(&late_res->nbefore), 0);
	CHECK_EQ(atomic_load(&late_res->nafter), 0);

	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:late B:reg B:r0 A:r0 A:reg A:late");
	tres_unreg(late_res);
	free(late_res);
	tres_unreg(&reg); tres_unreg(&r0);
}

/* Registering from a callback into a context that has NOT been notified
 * yet in this round must not make the new resource part of this round
 * either (its context is visited later in the same round). */
static crac_context *later_ctx;
static struct tres *late2;
static int registrar_into_ctx(const crac_event *ev, void *arg)
{
	tlog_add("B:first");
	if (!late2->h) {
		struct crac_resource_def d = { .name = "late2", .before_checkpoint = tres_before,
					       .after_restore = tres_after, .arg = late2 };
		CHECK_EQ(crac_register(later_ctx, &d, &late2->h), 0);
	}
	return 0;
}

static void test_register_into_unvisited_context(void)
{
	crac_resource *h = NULL;
	late2 = calloc(1, sizeof(*late2));
	REQUIRE(late2 != NULL);
	tres_init(late2, "late2");
	REQUIRE(crac_context_create(NULL, "later", 0, &later_ctx) == 0);
	/* registered after later_ctx -> notified before it */
	struct crac_resource_def d = { .name = "first", .before_checkpoint = registrar_into_ctx };
	REQUIRE(crac_register(NULL, &d, &h) == 0);

	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:first");
	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:first B:late2 A:late2");
	CHECK_EQ(crac_unregister(h), 0);
	CHECK_EQ(crac_context_destroy(later_ctx), 0);
	free(late2);
}

/* ---- unregistering from a callback ---------------------------------- */

static struct tres *victim;
static int unregister_victim(const crac_event *ev, void *arg)
{
	struct tres *self = arg;
	tlog_add("B:%s", self->name);
	if (victim && victim->h) {
		int rc = crac_unregister(victim->h);
		CHECKF(rc == 0, "unregister from callback: %d", rc);
		victim->h = NULL;
		free(victim);  /* any later callback of it is a use-after-free */
		victim = NULL;
	}
	return 0;
}

/* victim registered first (notified last); killer unregisters it before
 * its turn: the victim is called neither before nor after. */
static void test_unregister_not_yet_notified(void)
{
	struct tres killer, other;
	tres_init(&killer, "killer"); tres_init(&other, "other");
	victim = calloc(1, sizeof(*victim));
	REQUIRE(victim != NULL);
	tres_init(victim, "victim");
	tres_reg(NULL, victim, 0);
	tres_reg(NULL, &other, 0);
	struct crac_resource_def d = { .name = "killer", .before_checkpoint = unregister_victim,
				       .after_restore = tres_after, .arg = &killer };
	REQUIRE(crac_register(NULL, &d, &killer.h) == 0);

	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:killer B:other A:other A:killer");
	CHECK(victim == NULL);
	tres_unreg(&killer); tres_unreg(&other);
}

/* victim registered last (notified first); the killer, notified after it,
 * unregisters it: the victim must not get after_restore ("after
 * crac_unregister() returns, none of the resource's callbacks start"). */
static void test_unregister_already_notified(void)
{
	struct tres killer;
	tres_init(&killer, "killer");
	struct crac_resource_def d = { .name = "killer", .before_checkpoint = unregister_victim,
				       .after_restore = tres_after, .arg = &killer };
	REQUIRE(crac_register(NULL, &d, &killer.h) == 0);
	victim = calloc(1, sizeof(*victim));
	REQUIRE(victim != NULL);
	tres_init(victim, "victim");
	tres_reg(NULL, victim, 0);

	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:victim B:killer A:killer");
	tres_unreg(&killer);
}

/* An after_restore callback unregistering a resource whose after_restore
 * has not run yet: it does not run. */
static int unregister_victim_after(const crac_event *ev, void *arg)
{
	tlog_add("A:killer");
	if (victim && victim->h) {
		CHECK_EQ(crac_unregister(victim->h), 0);
		victim->h = NULL;
		free(victim);
		victim = NULL;
	}
	return 0;
}

static void test_unregister_in_after_restore(void)
{
	crac_resource *kh = NULL;
	/* killer registered first -> its after_restore runs first */
	struct crac_resource_def d = { .name = "killer", .after_restore = unregister_victim_after };
	REQUIRE(crac_register(NULL, &d, &kh) == 0);
	victim = calloc(1, sizeof(*victim));
	REQUIRE(victim != NULL);
	tres_init(victim, "victim");
	tres_reg(NULL, victim, 0);

	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:victim A:killer");
	CHECK_EQ(crac_unregister(kh), 0);
}

/* A callback unregisters its own resource (in before_checkpoint, then in a
 * second test in after_restore): returns 0 without deadlock, no further
 * callbacks of it, nothing else disturbed. */
struct selfres { crac_resource *h; int phase; atomic_int calls; };
static int self_unreg_cb(const crac_event *ev, void *arg)
{
	struct selfres *s = arg;
	atomic_fetch_add(&s->calls, 1);
	tlog_add("%c:self", ev->kind == CRAC_EVENT_BEFORE_CHECKPOINT ? 'B' : 'A');
	if ((int)ev->kind == s->phase) {
		int rc = crac_unregister(s->h);
		CHECKF(rc == 0, "self unregister: %d", rc);
		/* the resource is gone; free our state right now (ASan) */
		free(s);
	}
	return 0;
}

static void test_self_unregister(void)
{
	for (int phase = CRAC_EVENT_BEFORE_CHECKPOINT; phase <= CRAC_EVENT_AFTER_RESTORE; phase++) {
		struct tres a, b;
		tres_init(&a, "a"); tres_init(&b, "b");
		tres_reg(NULL, &a, 0);
		struct selfres *s = calloc(1, sizeof(*s));
		REQUIRE(s != NULL);
		s->phase = phase;
		struct crac_resource_def d = { .name = "self", .before_checkpoint = self_unreg_cb,
					       .after_restore = self_unreg_cb, .arg = s };
		REQUIRE(crac_register(NULL, &d, &s->h) == 0);
		tres_reg(NULL, &b, 0);

		tlog_reset();
		CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
		if (phase == CRAC_EVENT_BEFORE_CHECKPOINT)
			CHECK_LOG("B:b B:self B:a A:a A:b");
		else
			CHECK_LOG("B:b B:self B:a A:a A:self A:b");
		tlog_reset();
		CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
		CHECK_LOG("B:b B:a A:a A:b");
		tres_unreg(&a); tres_unreg(&b);
	}
}

/* A callback destroys a context that has not been notified yet: none of
 * the context's resources are called (their memory is freed at once). */
static crac_context *doomed_ctx;
static struct tres *doomed_res;
static int destroy_ctx_cb(const crac_event *ev, void *arg)
{
	tlog_add("B:destroyer");
	if (doomed_ctx) {
		CHECK_EQ(crac_context_destroy(doomed_ctx), 0);
		doomed_ctx = NULL;
		free(doomed_res);
		doomed_res = NULL;
	}
	return 0;
}

static void test_destroy_context_during_round(void)
{
	crac_resource *h = NULL;
	doomed_res = calloc(1, sizeof(*doomed_res));
	REQUIRE(doomed_res != NULL);
	tres_init(doomed_res, "doomed");
	REQUIRE(crac_context_create(NULL, "doomedctx", 0, &doomed_ctx) == 0);
	tres_reg(doomed_ctx, doomed_res, 0);
	struct crac_resource_def d = { .name = "destroyer", .before_checkpoint = destroy_ctx_cb };
	REQUIRE(crac_register(NULL, &d, &h) == 0);

	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:destroyer");
	CHECK(doomed_ctx == NULL);
	CHECK_EQ(crac_unregister(h), 0);
}

/* ---- unregister from another thread while the callback runs --------- */

struct slowres {
	crac_resource *h;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool started;
	atomic_int returned;     /* set just before the callback returns */
	atomic_int after_calls;
};

static int slow_before(const crac_event *ev, void *arg)
{
	struct slowres *s = arg;
	pthread_mutex_lock(&s->mu);
	s->started = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	/* Timing is the point: give the other thread ample time to (wrongly)
	 * return from crac_unregister while we are still running. */
	t_sleep_ms(300);
	atomic_store(&s->returned, 1);
	return 0;
}
static int slow_after(const crac_event *ev, void *arg)
{
	struct slowres *s = arg;
	atomic_fetch_add(&s->after_calls, 1);
	return 0;
}

/* s (zeroed by the caller) made ready and registered in ctx (NULL: the
 * default context); false if crac_register failed. */
static bool slowres_start(struct slowres *s, crac_context *ctx)
{
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	struct crac_resource_def d = { .name = "slow", .before_checkpoint = slow_before,
				       .after_restore = slow_after, .arg = s };
	return crac_register(ctx, &d, &s->h) == 0;
}

static void slowres_free(struct slowres *s)
{
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

/* The race: one thread checkpoints (t_sim) while another, once s's
 * before_checkpoint has started, calls remove(arg) (crac_unregister,
 * crac_context_destroy). rc: remove's result; returned_at: whether the
 * callback had returned when remove did (it must have, if remove waited
 * for it); cp_rc: the checkpoint's result. */
struct race {
	struct slowres *s;
	int (*remove)(void *arg);
	void *arg;
	int rc, returned_at, cp_rc;
};

static void *race_remove_fn(void *p)
{
	struct race *r = p;
	pthread_mutex_lock(&r->s->mu);
	while (!r->s->started)
		pthread_cond_wait(&r->s->cv, &r->s->mu);
	pthread_mutex_unlock(&r->s->mu);
	r->rc = r->remove(r->arg);
	r->returned_at = atomic_load(&r->s->returned);
	return NULL;
}

static void *race_checkpoint_fn(void *p)
{
	struct race *r = p;
	r->cp_rc = t_sim(NULL);
	return NULL;
}

static void race_run(struct race *r)
{
	pthread_t tu, tc;
	pthread_create(&tu, NULL, race_remove_fn, r);
	pthread_create(&tc, NULL, race_checkpoint_fn, r);
	pthread_join(tu, NULL);
	pthread_join(tc, NULL);
}

static int remove_unregister(void *arg)
{
	return crac_unregister(((struct slowres *)arg)->h);
}

static int remove_context(void *arg)
{
	return crac_context_destroy(arg);
}

static void test_unregister_waits_for_running_callback(void)
{
	struct slowres *s = calloc(1, sizeof(*s));
	REQUIRE(s != NULL);
	REQUIRE(slowres_start(s, NULL));

	struct race r = { .s = s, .remove = remove_unregister, .arg = s };
	race_run(&r);

	CHECK_EQ(r.rc, 0);
	CHECKF(r.returned_at == 1, "crac_unregister returned while the callback was running");
	CHECK_EQ(r.cp_rc, CRAC_RESTORED);
	/* unregistered after being notified: no after_restore */
	CHECK_EQ(atomic_load(&s->after_calls), 0);
	slowres_free(s);
}

/* A callback destroys the very context its resource lives in (so it
 * unregisters itself, indirectly): no deadlock, returns 0, the context's
 * resources that had not run yet are not called. */
static crac_context *own_ctx;
static struct tres *own_sibling;
static int destroy_own_ctx(const crac_event *ev, void *arg)
{
	tlog_add("B:suicidal");
	int rc = crac_context_destroy(own_ctx);
	CHECKF(rc == 0, "destroy own context from its callback: %d", rc);
	own_ctx = NULL;
	free(own_sibling);   /* any later call of it is a use-after-free */
	own_sibling = NULL;
	return 0;
}

static void test_destroy_own_context_from_callback(void)
{
	struct tres outside;
	tres_init(&outside, "outside");
	tres_reg(NULL, &outside, 0);
	REQUIRE(crac_context_create(NULL, "own", 0, &own_ctx) == 0);
	own_sibling = calloc(1, sizeof(*own_sibling));
	REQUIRE(own_sibling != NULL);
	tres_init(own_sibling, "sibling");
	tres_reg(own_ctx, own_sibling, 0);          /* older: notified after */
	struct crac_resource_def d = { .name = "suicidal", .before_checkpoint = destroy_own_ctx };
	REQUIRE(crac_register(own_ctx, &d, NULL) == 0);

	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:suicidal B:outside A:outside");
	CHECK(own_ctx == NULL);
	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:outside A:outside");
	tres_unreg(&outside);
}

/* crac_context_destroy from another thread while a callback of a resource in
 * that context runs: waits for the callback to return, like crac_unregister. */
static void test_destroy_context_waits_for_running_callback(void)
{
	struct slowres *s = calloc(1, sizeof(*s));
	REQUIRE(s != NULL);
	crac_context *ctx = NULL;
	REQUIRE(crac_context_create(NULL, "slowctx", 0, &ctx) == 0);
	REQUIRE(slowres_start(s, ctx));

	struct race r = { .s = s, .remove = remove_context, .arg = ctx };
	race_run(&r);

	CHECK_EQ(r.rc, 0);
	CHECKF(r.returned_at == 1, "crac_context_destroy returned while a callback in it was running");
	CHECK_EQ(r.cp_rc, CRAC_RESTORED);
	CHECK_EQ(atomic_load(&s->after_calls), 0);
	slowres_free(s);
}

/* A context created by a callback during the round (and a resource put in
 * it) takes part from the next round on, like any other registration. */
static crac_context *made_ctx;
static struct tres *made_res;
static int create_ctx_cb(const crac_event *ev, void *arg)
{
	tlog_add("B:maker");
	if (!made_ctx) {
		CHECK_EQ(crac_context_create(NULL, "made", CRAC_PRIO_NORMAL, &made_ctx), 0);
		tres_reg(made_ctx, made_res, 0);
	}
	return 0;
}

static void test_context_created_during_round(void)
{
	crac_resource *h = NULL;
	struct tres older;
	tres_init(&older, "older");
	tres_reg(NULL, &older, 0);
	made_res = calloc(1, sizeof(*made_res));
	REQUIRE(made_res != NULL);
	tres_init(made_res, "inmade");
	struct crac_resource_def d = { .name = "maker", .before_checkpoint = create_ctx_cb };
	REQUIRE(crac_register(NULL, &d, &h) == 0);

	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:maker B:older A:older");
	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:inmade B:maker B:older A:older A:inmade");
	CHECK_EQ(crac_context_destroy(made_ctx), 0);
	free(made_res);
	CHECK_EQ(crac_unregister(h), 0);
	tres_unreg(&older);
}

/* ---- the size field ---------------------------------------------------- */

static int size_cb(const crac_event *ev, void *arg) { return 0; }

/* 0 and sizeof are accepted; a size short of the fields up to `size` is not. */
static void test_def_size(void)
{
	struct crac_resource_def d = { .name = "sized", .before_checkpoint = size_cb };
	crac_resource *h = NULL;

	CHECK_EQ(crac_register(NULL, &d, &h), 0);
	CHECK_EQ(crac_unregister(h), 0);
	d.size = sizeof(d);
	CHECK_EQ(crac_register(NULL, &d, &h), 0);
	CHECK_EQ(crac_unregister(h), 0);
	d.size = sizeof(d) + 64;   /* a newer caller: fields we do not know */
	CHECK_EQ(crac_register(NULL, &d, &h), 0);
	CHECK_EQ(crac_unregister(h), 0);
	d.size = 1;
	CHECK_EQ(crac_register(NULL, &d, &h), -EINVAL);
	d.size = offsetof(struct crac_resource_def, size);
	CHECK_EQ(crac_register(NULL, &d, &h), -EINVAL);
}

int main(void)
{
	unsetenv("CRAC_ENGINE");
	alarm(60);  /* a deadlock fails the test instead of hanging it */
	RUN(test_register_during_round);
	RUN(test_register_into_unvisited_context);
	RUN(test_unregister_not_yet_notified);
	RUN(test_unregister_already_notified);
	RUN(test_unregister_in_after_restore);
	RUN(test_self_unregister);
	RUN(test_destroy_context_during_round);
	RUN(test_context_created_during_round);
	RUN(test_unregister_waits_for_running_callback);
	RUN(test_destroy_own_context_from_callback);
	RUN(test_destroy_context_waits_for_running_callback);
	RUN(test_def_size);
	return t_done();
}
