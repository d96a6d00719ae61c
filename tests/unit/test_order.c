/* SPDX-License-Identifier: MIT */
/*
 * test_order.c - notification order (crac.h "Ordering"), with the sim engine:
 *  - before_checkpoint in reverse registration order, after_restore forward;
 *  - priorities: lower runs first before the checkpoint, last after restore;
 *  - after_restore runs over exactly the notified set in exact reverse;
 *  - resources with only one callback, argument validation, the default
 *    engine and the size-versioned options struct.
 */
#include "test_common.h"

#include <stddef.h>

/* Three resources of equal priority: before r3 r2 r1, after r1 r2 r3, and a
 * second round repeats the same order (registration order is kept). */
static void test_reverse_registration_order(void)
{
	struct tres r1, r2, r3;
	tres_init(&r1, "r1"); tres_init(&r2, "r2"); tres_init(&r3, "r3");
	tres_reg(NULL, &r1, CRAC_PRIO_NORMAL);
	tres_reg(NULL, &r2, CRAC_PRIO_NORMAL);
	tres_reg(NULL, &r3, CRAC_PRIO_NORMAL);

	for (int round = 0; round < 2; round++) {
		crac_report *rep = NULL;
		tlog_reset();
		int rc = t_sim(&rep);
		CHECK_EQ(rc, CRAC_RESTORED);
		CHECK_NO_FAILURES(rep);
		CHECK_LOG("B:r3 B:r2 B:r1 A:r1 A:r2 A:r3");
		crac_report_free(rep);
	}
	tres_unreg(&r1); tres_unreg(&r2); tres_unreg(&r3);
}

/* Priorities: before_checkpoint in increasing priority (reverse registration
 * among equals), after_restore the exact reverse. CHECKS resources run after
 * NORMAL ones before the checkpoint and before them after restore. The
 * registration order is deliberately mixed. */
static void test_priorities(void)
{
	struct tres chk, n1, rt, n2, neg, sec;
	tres_init(&chk, "chk"); tres_init(&n1, "n1"); tres_init(&rt, "rt");
	tres_init(&n2, "n2"); tres_init(&neg, "neg"); tres_init(&sec, "sec");
	tres_reg(NULL, &chk, CRAC_PRIO_CHECKS);
	tres_reg(NULL, &n1, CRAC_PRIO_NORMAL);
	tres_reg(NULL, &rt, CRAC_PRIO_RUNTIME);
	tres_reg(NULL, &sec, CRAC_PRIO_SECURITY);
	tres_reg(NULL, &n2, CRAC_PRIO_NORMAL);
	tres_reg(NULL, &neg, -10);

	crac_report *rep = NULL;
	tlog_reset();
	CHECK_EQ(t_sim(&rep), CRAC_RESTORED);
	CHECK_NO_FAILURES(rep);
	CHECK_LOG("B:neg B:n2 B:n1 B:rt B:sec B:chk A:chk A:sec A:rt A:n1 A:n2 A:neg");
	crac_report_free(rep);
	tres_unreg(&chk); tres_unreg(&n1); tres_unreg(&rt);
	tres_unreg(&n2); tres_unreg(&neg); tres_unreg(&sec);
}

/* Priorities also order resources registered with equal priority but
 * interleaved: two CHECKS resources keep reverse registration among
 * themselves while NORMAL ones run before both. */
static void test_priorities_equal_groups(void)
{
	struct tres c1, a, c2, b;
	tres_init(&c1, "c1"); tres_init(&a, "a"); tres_init(&c2, "c2"); tres_init(&b, "b");
	tres_reg(NULL, &c1, CRAC_PRIO_CHECKS);
	tres_reg(NULL, &a, CRAC_PRIO_NORMAL);
	tres_reg(NULL, &c2, CRAC_PRIO_CHECKS);
	tres_reg(NULL, &b, CRAC_PRIO_NORMAL);

	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:b B:a B:c2 B:c1 A:c1 A:c2 A:a A:b");
	tres_unreg(&c1); tres_unreg(&a); tres_unreg(&c2); tres_unreg(&b);
}

/* A resource that has only an after_restore callback (e.g. "reseed after
 * restore") is still part of the round: it gets after_restore, in its
 * place; one with only before_checkpoint gets only that. */
static void test_single_callback_resources(void)
{
	struct tres r1, only_after, only_before, r4;
	tres_init(&r1, "r1"); tres_init(&only_after, "oa");
	tres_init(&only_before, "ob"); tres_init(&r4, "r4");
	tres_reg(NULL, &r1, 0);
	struct crac_resource_def d1 = { .name = "oa", .after_restore = tres_after, .arg = &only_after };
	CHECK_EQ(crac_register(NULL, &d1, &only_after.h), 0);
	struct crac_resource_def d2 = { .name = "ob", .before_checkpoint = tres_before, .arg = &only_before };
	CHECK_EQ(crac_register(NULL, &d2, &only_before.h), 0);
	tres_reg(NULL, &r4, 0);

	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:r4 B:ob B:r1 A:r1 A:oa A:r4");
	CHECK_EQ(atomic_load(&only_after.nafter), 1);
	CHECK_EQ(atomic_load(&only_before.nbefore), 1);
	tres_unreg(&r1); tres_unreg(&only_after); tres_unreg(&only_before); tres_unreg(&r4);
}

/* Unregistering a resource removes it from later rounds; the others keep
 * their relative order. `out` may be NULL at registration. */
static void test_unregister_between_rounds(void)
{
	struct tres r1, r2, r3;
	static struct tres r4;  /* registered without a handle: must outlive the test */
	tres_init(&r1, "r1"); tres_init(&r2, "r2"); tres_init(&r3, "r3"); tres_init(&r4, "r4");
	tres_reg(NULL, &r1, 0);
	tres_reg(NULL, &r2, 0);
	tres_reg(NULL, &r3, 0);

	CHECK_EQ(crac_unregister(r2.h), 0);
	r2.h = NULL;
	/* out == NULL is allowed */
	struct crac_resource_def d = { .name = "r4", .before_checkpoint = tres_before,
				       .after_restore = tres_after, .arg = &r4 };
	CHECK_EQ(crac_register(NULL, &d, NULL), 0);

	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:r4 B:r3 B:r1 A:r1 A:r3 A:r4");
	CHECK_EQ(atomic_load(&r2.nbefore), 0);
	tres_unreg(&r1); tres_unreg(&r3);
}

/* Invalid registrations are refused with -EINVAL and register nothing. */
static void test_register_invalid(void)
{
	crac_resource *h = (crac_resource *)0;
	struct tres r;
	tres_init(&r, "bad");

	CHECK_EQ(crac_register(NULL, NULL, &h), -EINVAL);
	struct crac_resource_def noname = { .before_checkpoint = tres_before, .arg = &r };
	CHECK_EQ(crac_register(NULL, &noname, &h), -EINVAL);
	struct crac_resource_def nocb = { .name = "bad", .arg = &r };
	CHECK_EQ(crac_register(NULL, &nocb, &h), -EINVAL);
	CHECK_EQ(crac_unregister(NULL), -EINVAL);

	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_EQ(atomic_load(&r.nbefore), 0);
}

/* The name is copied: changing the caller's buffer after registration does
 * not change the name in reports. */
static void test_name_copied(void)
{
	char name[32] = "copied-name";
	struct tres r;
	tres_init(&r, "x");
	r.fail_before = -EBUSY;
	struct crac_resource_def d = { .name = name, .before_checkpoint = tres_before,
				       .after_restore = tres_after, .arg = &r };
	REQUIRE(crac_register(NULL, &d, &r.h) == 0);
	strcpy(name, "CHANGED");

	crac_report *rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_ABORTED);
	CHECK(t_find(rep, "copied-name", CRAC_PHASE_CHECKPOINT) != NULL);
	CHECK(t_find(rep, "CHANGED", 0) == NULL);
	crac_report_free(rep);
	tres_unreg(&r);
}

/* opts == NULL: engine from $CRAC_ENGINE, else "sim". */
static void test_default_engine(void)
{
	struct tres r;
	tres_init(&r, "r");
	tres_reg(NULL, &r, 0);

	unsetenv("CRAC_ENGINE");
	tlog_reset();
	CHECK_EQ(crac_checkpoint_restore(NULL, NULL), CRAC_RESTORED);
	CHECK_LOG("B:r A:r");
	CHECK(r.ev_after.engine && strcmp(r.ev_after.engine, "sim") == 0);

	/* options with engine NULL also fall back to "sim" */
	struct crac_options o;
	crac_options_init(&o);
	CHECK_EQ(o.size, sizeof(o));
	CHECK(o.engine == NULL);
	CHECK_EQ(o.flags, 0);
	CHECK_EQ(crac_checkpoint_restore(&o, NULL), CRAC_RESTORED);

	/* $CRAC_ENGINE is honoured when opts do not name an engine */
	setenv("CRAC_ENGINE", "no-such-engine-from-env", 1);
	crac_report *rep = NULL;
	atomic_store(&r.nbefore, 0);
	CHECK_EQ(crac_checkpoint_restore(NULL, &rep), -ENOENT);
	CHECK(rep != NULL);
	CHECK_EQ(crac_checkpoint_restore(&o, NULL), -ENOENT);
	/* ...but an explicit engine wins over the environment */
	o.engine = "sim";
	CHECK_EQ(crac_checkpoint_restore(&o, NULL), CRAC_RESTORED);
	unsetenv("CRAC_ENGINE");
	crac_report_free(rep);
	tres_unreg(&r);
}

/* The library reads at most opts->size bytes: an "old binary" whose struct
 * ends before `flags` cannot ask for a dry run by accident (garbage there is
 * ignored), so the sim engine restores instead of returning CONTINUED. */
static void test_options_size_respected(void)
{
	struct tres r;
	tres_init(&r, "r");
	tres_reg(NULL, &r, 0);

	struct crac_options o;
	crac_options_init(&o);
	o.engine = "sim";
	o.flags = CRAC_DRY_RUN;
	o.size = offsetof(struct crac_options, flags);
	CHECK_EQ(crac_checkpoint_restore(&o, NULL), CRAC_RESTORED);

	o.size = sizeof(o);
	CHECK_EQ(crac_checkpoint_restore(&o, NULL), CRAC_CONTINUED);
	tres_unreg(&r);
}

/* A round with no resources at all still succeeds. */
static void test_empty_round(void)
{
	crac_report *rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_RESTORED);
	CHECK_NO_FAILURES(rep);
	crac_report_free(rep);
}

/* Property check over many resources: 1500 resources with random priorities
 * (some equal): before order is (priority ascending, registration
 * descending), after order is its exact reverse, each exactly once. */
#define NPROP 1500
static int prop_order_before[NPROP], prop_order_after[NPROP];
static atomic_int prop_nb, prop_na;
static int prop_prio[NPROP];
static int prop_before(const crac_event *ev, void *arg)
{
	int i = atomic_fetch_add(&prop_nb, 1);
	if (i < NPROP)
		prop_order_before[i] = (int)(intptr_t)arg;
	return 0;
}
static int prop_after(const crac_event *ev, void *arg)
{
	int i = atomic_fetch_add(&prop_na, 1);
	if (i < NPROP)
		prop_order_after[i] = (int)(intptr_t)arg;
	return 0;
}

static void test_order_property_many(void)
{
	static crac_resource *h[NPROP];
	unsigned seed = 12345;
	for (int i = 0; i < NPROP; i++) {
		prop_prio[i] = (int)(rand_r(&seed) % 7) * 50 - 100;
		struct crac_resource_def d = { .name = "p", .before_checkpoint = prop_before,
					       .after_restore = prop_after, .arg = (void *)(intptr_t)i,
					       .priority = prop_prio[i] };
		REQUIRE(crac_register(NULL, &d, &h[i]) == 0);
	}
	atomic_store(&prop_nb, 0);
	atomic_store(&prop_na, 0);
	int64_t t0 = t_mono_ms();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECKF(t_mono_ms() - t0 < 2000, "%d resources took %lld ms", NPROP, (long long)(t_mono_ms() - t0));
	CHECK_EQ(atomic_load(&prop_nb), NPROP);
	CHECK_EQ(atomic_load(&prop_na), NPROP);
	int bad = 0;
	for (int k = 1; k < NPROP; k++) {
		int a = prop_order_before[k - 1], b = prop_order_before[k];
		if (!(prop_prio[a] < prop_prio[b] || (prop_prio[a] == prop_prio[b] && a > b)))
			bad++;
	}
	CHECKF(bad == 0, "%d adjacent pairs out of order before the checkpoint", bad);
	bad = 0;
	for (int k = 0; k < NPROP; k++)
		if (prop_order_after[k] != prop_order_before[NPROP - 1 - k])
			bad++;
	CHECKF(bad == 0, "%d after_restore positions are not the exact reverse", bad);
	for (int i = 0; i < NPROP; i++)
		CHECK_EQ(crac_unregister(h[i]), 0);
}

int main(void)
{
	unsetenv("CRAC_ENGINE");
	RUN(test_empty_round);
	RUN(test_reverse_registration_order);
	RUN(test_priorities);
	RUN(test_priorities_equal_groups);
	RUN(test_single_callback_resources);
	RUN(test_register_invalid);
	RUN(test_name_copied);
	RUN(test_default_engine);
	RUN(test_options_size_respected);
	RUN(test_order_property_many);
	RUN(test_unregister_between_rounds);  /* leaves one resource registered: last */
	return t_done();
}
