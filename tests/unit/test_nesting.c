/* SPDX-License-Identifier: MIT */
/*
 * test_nesting.c - contexts inside contexts (crac.h "Contexts and
 * resources"): a context is a resource of its parent, its children are
 * notified in its turn (with the same ordering rules inside), report names
 * are paths ("outer/inner/res"), and crac_context_destroy unregisters
 * everything in it, recursively.
 */
#include "test_common.h"

/*
 * global: g1, outer, g2          outer: o1, inner, o2          inner: i1, i2
 * before: g2, [outer: o2, [inner: i2, i1], o1], g1
 * after:  the exact reverse.
 */
static void test_nested_order(void)
{
	struct tres g1, g2, o1, o2, i1, i2;
	crac_context *outer = NULL, *inner = NULL;
	tres_init(&g1, "g1"); tres_init(&g2, "g2"); tres_init(&o1, "o1");
	tres_init(&o2, "o2"); tres_init(&i1, "i1"); tres_init(&i2, "i2");

	tres_reg(NULL, &g1, 0);
	REQUIRE(crac_context_create(NULL, "outer", CRAC_PRIO_NORMAL, &outer) == 0);
	REQUIRE(outer != NULL);
	tres_reg(NULL, &g2, 0);
	tres_reg(outer, &o1, 0);
	REQUIRE(crac_context_create(outer, "inner", CRAC_PRIO_NORMAL, &inner) == 0);
	REQUIRE(inner != NULL);
	tres_reg(outer, &o2, 0);
	tres_reg(inner, &i1, 0);
	tres_reg(inner, &i2, 0);

	crac_report *rep = NULL;
	tlog_reset();
	CHECK_EQ(t_sim(&rep), CRAC_RESTORED);
	CHECK_NO_FAILURES(rep);
	CHECK_LOG("B:g2 B:o2 B:i2 B:i1 B:o1 B:g1 A:g1 A:o1 A:i1 A:i2 A:o2 A:g2");
	crac_report_free(rep);

	/* Destroying outer unregisters o1, o2, inner, i1, i2. */
	CHECK_EQ(crac_context_destroy(outer), 0);
	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:g2 B:g1 A:g1 A:g2");
	tres_unreg(&g1); tres_unreg(&g2);
}

/* Priorities apply to contexts too, and inside a context: a CHECKS-priority
 * context runs after NORMAL resources of its parent before the checkpoint
 * and before them after restore; inside it, its own priorities apply. */
static void test_context_priority(void)
{
	struct tres a, b, c1, c2;
	crac_context *late = NULL;
	tres_init(&a, "a"); tres_init(&b, "b"); tres_init(&c1, "c1"); tres_init(&c2, "c2");

	REQUIRE(crac_context_create(NULL, "late", CRAC_PRIO_CHECKS, &late) == 0);
	tres_reg(late, &c1, CRAC_PRIO_RUNTIME);
	tres_reg(late, &c2, CRAC_PRIO_NORMAL);
	tres_reg(NULL, &a, 0);
	tres_reg(NULL, &b, 0);

	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:b B:a B:c2 B:c1 A:c1 A:c2 A:a A:b");
	CHECK_EQ(crac_context_destroy(late), 0);
	tres_unreg(&a); tres_unreg(&b);
}

/* Report names are paths from the global context: "res" for a resource of
 * the global context, "outer/inner/res" for a nested one; both phases. */
static void test_report_paths(void)
{
	struct tres top, deep, mid;
	crac_context *outer = NULL, *inner = NULL;
	tres_init(&top, "top"); tres_init(&deep, "res"); tres_init(&mid, "mid");
	top.fail_before = -EBUSY;
	deep.fail_before = -EAGAIN;
	mid.fail_after = -ENOTCONN;

	REQUIRE(crac_context_create(NULL, "outer", 0, &outer) == 0);
	REQUIRE(crac_context_create(outer, "inner", 0, &inner) == 0);
	tres_reg(NULL, &top, 0);
	tres_reg(inner, &deep, 0);
	tres_reg(outer, &mid, 0);

	crac_report *rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_ABORTED);
	const struct crac_failure *f = t_find(rep, "outer/inner/res", CRAC_PHASE_CHECKPOINT);
	CHECKF(f != NULL, "no failure named outer/inner/res");
	if (f)
		CHECK_EQ(f->code, -EAGAIN);
	f = t_find(rep, "top", CRAC_PHASE_CHECKPOINT);
	CHECKF(f != NULL, "no failure named top");
	if (f)
		CHECK_EQ(f->code, -EBUSY);
	f = t_find(rep, "outer/mid", CRAC_PHASE_RESTORE);
	CHECKF(f != NULL, "no after_restore failure named outer/mid");
	if (f)
		CHECK_EQ(f->code, -ENOTCONN);
	if (!f)
		t_dump(rep);
	/* the printed report carries the paths too */
	const char *text = t_format(rep);
	CHECKF(strstr(text, "outer/inner/res") != NULL, "formatted report:\n%s", text);
	CHECKF(strstr(text, "outer/mid") != NULL, "formatted report:\n%s", text);
	crac_report_free(rep);

	CHECK_EQ(crac_context_destroy(outer), 0);
	tres_unreg(&top);
}

/* Every resource of a context is notified in its turn even when a sibling
 * inside a nested context failed, and after_restore reaches all of them. */
static void test_nested_failure_notifies_all(void)
{
	struct tres a, b, c;
	crac_context *ctx = NULL;
	tres_init(&a, "a"); tres_init(&b, "b"); tres_init(&c, "c");
	b.fail_before = -EBUSY;
	REQUIRE(crac_context_create(NULL, "ctx", 0, &ctx) == 0);
	tres_reg(ctx, &a, 0);
	tres_reg(ctx, &b, 0);
	tres_reg(ctx, &c, 0);

	tlog_reset();
	crac_report *rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_ABORTED);
	CHECK_LOG("B:c B:b B:a A:a A:b A:c");
	CHECK(t_find(rep, "ctx/b", CRAC_PHASE_CHECKPOINT) != NULL);
	crac_report_free(rep);
	CHECK_EQ(crac_context_destroy(ctx), 0);
}

/* An empty context is fine; contexts can be created and destroyed
 * repeatedly with the same name. */
static void test_empty_and_repeated_contexts(void)
{
	for (int i = 0; i < 50; i++) {
		crac_context *c = NULL, *d = NULL;
		REQUIRE(crac_context_create(NULL, "again", 0, &c) == 0);
		REQUIRE(crac_context_create(c, "child", 0, &d) == 0);
		if (i % 10 == 0)
			CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
		CHECK_EQ(crac_context_destroy(c), 0);
	}
}

/* Argument checks: missing name or out pointer -> -EINVAL; the global
 * context cannot be destroyed (and stays usable). */
static void test_context_invalid(void)
{
	crac_context *c = NULL;
	CHECK_EQ(crac_context_create(NULL, NULL, 0, &c), -EINVAL);
	CHECK_EQ(crac_context_create(NULL, "x", 0, NULL), -EINVAL);
	CHECK(crac_global_context() != NULL);
	CHECK(crac_global_context() == crac_global_context());
	CHECK_EQ(crac_context_destroy(crac_global_context()), -EINVAL);
	CHECK(crac_context_destroy(NULL) < 0);

	/* explicit global context == NULL context */
	struct tres r;
	tres_init(&r, "r");
	tres_reg(crac_global_context(), &r, 0);
	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:r A:r");
	tres_unreg(&r);
}

/* A resource of a destroyed child context is never called again, even if
 * the child was destroyed through its grandparent (recursive destroy). The
 * struct tres is freed right after destroy so ASan catches a late call. */
static void test_destroy_recursive_frees(void)
{
	crac_context *a = NULL, *b = NULL, *c = NULL;
	REQUIRE(crac_context_create(NULL, "a", 0, &a) == 0);
	REQUIRE(crac_context_create(a, "b", 0, &b) == 0);
	REQUIRE(crac_context_create(b, "c", 0, &c) == 0);
	struct tres *r = malloc(sizeof(*r));
	REQUIRE(r != NULL);
	tres_init(r, "deep");
	tres_reg(c, r, 0);

	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("B:deep A:deep");
	CHECK_EQ(crac_context_destroy(a), 0);
	free(r);
	tlog_reset();
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_LOG("");
}

int main(void)
{
	unsetenv("CRAC_ENGINE");
	RUN(test_nested_order);
	RUN(test_context_priority);
	RUN(test_report_paths);
	RUN(test_nested_failure_notifies_all);
	RUN(test_empty_and_repeated_contexts);
	RUN(test_context_invalid);
	RUN(test_destroy_recursive_frees);
	return t_done();
}
