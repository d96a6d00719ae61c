/* SPDX-License-Identifier: MIT */
/*
 * test_event.c - contents of struct crac_event with the sim engine: kind,
 * outcome, engine name, size, generation (+1 per restore), instance id
 * (fresh 16 random bytes per restore), checkpoint/restore times (set,
 * ordered, on the right clocks), fields that do not apply are zero.
 */
#include "test_common.h"

#define MAXR 4
struct evrec {
	crac_event before[MAXR], after[MAXR];
	int nb, na;
	bool after_argv_null, after_envp_null;
};

static int rec_before(const crac_event *ev, void *arg)
{
	struct evrec *r = arg;
	if (r->nb < MAXR)
		r->before[r->nb++] = *ev;
	return 0;
}
static int rec_after(const crac_event *ev, void *arg)
{
	struct evrec *r = arg;
	if (r->na < MAXR)
		r->after[r->na++] = *ev;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

#define SEC 1000000000LL

/* Three sim rounds: every field checked in both phases. */
static void test_event_fields(void)
{
	struct evrec r = { 0 }, r2 = { 0 };
	crac_resource *h = NULL, *h2 = NULL;
	struct crac_resource_def d = { .name = "ev", .before_checkpoint = rec_before,
				       .after_restore = rec_after, .arg = &r };
	struct crac_resource_def d2 = { .name = "ev2", .before_checkpoint = rec_before,
					.after_restore = rec_after, .arg = &r2 };
	REQUIRE(crac_register(NULL, &d, &h) == 0);
	REQUIRE(crac_register(NULL, &d2, &h2) == 0);

	int64_t t0_mono[3], t1_mono[3], t0_real[3], t1_real[3];
	for (int i = 0; i < 3; i++) {
		t0_mono[i] = t_now_ns(CLOCK_MONOTONIC);
		t0_real[i] = t_now_ns(CLOCK_REALTIME);
		CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
		t1_mono[i] = t_now_ns(CLOCK_MONOTONIC);
		t1_real[i] = t_now_ns(CLOCK_REALTIME);
	}
	REQUIRE(r.nb == 3 && r.na == 3);

	for (int i = 0; i < 3; i++) {
		const crac_event *b = &r.before[i], *a = &r.after[i];
		/* kinds, sizes, engine */
		CHECK_EQ(b->size, sizeof(crac_event));
		CHECK_EQ(a->size, sizeof(crac_event));
		CHECK_EQ(b->kind, CRAC_EVENT_BEFORE_CHECKPOINT);
		CHECK_EQ(a->kind, CRAC_EVENT_AFTER_RESTORE);
		CHECK_EQ(b->outcome, 0);            /* after_restore only */
		CHECK_EQ(a->outcome, CRAC_RESTORED);
		CHECK(b->engine && strcmp(b->engine, "sim") == 0);
		CHECK(a->engine && strcmp(a->engine, "sim") == 0);

		/* generation: +1 by the restore */
		CHECK_EQ(a->generation, b->generation + 1);
		if (i > 0)
			CHECK_EQ(b->generation, r.after[i - 1].generation);

		/* instance id: not all zero, changes on restore, kept until the
		 * next restore */
		CHECK(!all_zero(b->instance_id, 16));
		CHECK(!all_zero(a->instance_id, 16));
		CHECK(memcmp(a->instance_id, b->instance_id, 16) != 0);
		if (i > 0)
			CHECK(memcmp(b->instance_id, r.after[i - 1].instance_id, 16) == 0);

		/* times: checkpoint_* set in both, within the call, ordered */
		CHECK(b->checkpoint_monotonic >= t0_mono[i] && b->checkpoint_monotonic <= t1_mono[i]);
		CHECK(b->checkpoint_realtime >= t0_real[i] - SEC && b->checkpoint_realtime <= t1_real[i] + SEC);
		CHECK_EQ(a->checkpoint_monotonic, b->checkpoint_monotonic);
		CHECK_EQ(a->checkpoint_realtime, b->checkpoint_realtime);
		CHECK_EQ(b->restore_monotonic, 0);
		CHECK_EQ(b->restore_realtime, 0);
		CHECK(a->restore_monotonic >= a->checkpoint_monotonic);
		CHECK(a->restore_monotonic <= t1_mono[i]);
		CHECK(a->restore_realtime >= a->checkpoint_realtime - SEC);
		CHECK(a->restore_realtime <= t1_real[i] + SEC);
		/* the realtime stamps are really CLOCK_REALTIME (not monotonic) */
		CHECK(b->checkpoint_realtime > 1600000000LL * SEC);

		/* deadlines set by default */
		CHECK(b->deadline_monotonic > b->checkpoint_monotonic);
		CHECK(a->deadline_monotonic > a->restore_monotonic);

		/* no new args/env with sim */
		CHECK_EQ(b->argc, 0);
		CHECK(b->argv == NULL);
		CHECK(b->envp == NULL);
		CHECK_EQ(a->argc, 0);
		CHECK(a->argv == NULL);
		CHECK(a->envp == NULL);

		/* all callbacks of a round see the same lineage data */
		CHECK_EQ(r2.before[i].generation, b->generation);
		CHECK_EQ(r2.after[i].generation, a->generation);
		CHECK(memcmp(r2.after[i].instance_id, a->instance_id, 16) == 0);
		CHECK_EQ(r2.before[i].checkpoint_monotonic, b->checkpoint_monotonic);
	}
	/* all three restored ids differ from each other */
	CHECK(memcmp(r.after[0].instance_id, r.after[1].instance_id, 16) != 0);
	CHECK(memcmp(r.after[1].instance_id, r.after[2].instance_id, 16) != 0);
	CHECK(memcmp(r.after[0].instance_id, r.after[2].instance_id, 16) != 0);
	CHECK(r.after[2].generation == r.before[0].generation + 3);

	CHECK_EQ(crac_unregister(h), 0);
	CHECK_EQ(crac_unregister(h2), 0);
}

/* The ids look random: over 8 restores, each of the 16 byte positions takes
 * more than one value (a counter or a timestamp would leave most bytes
 * constant). */
static void test_instance_id_random(void)
{
	struct evrec r = { 0 };
	crac_resource *h = NULL;
	struct crac_resource_def d = { .name = "ev", .after_restore = rec_after, .arg = &r };
	REQUIRE(crac_register(NULL, &d, &h) == 0);
	uint8_t ids[8][16];
	for (int i = 0; i < 8; i++) {
		r.na = 0;
		CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
		memcpy(ids[i], r.after[0].instance_id, 16);
	}
	int varying = 0;
	for (int b = 0; b < 16; b++) {
		bool differs = false;
		for (int i = 1; i < 8; i++)
			if (ids[i][b] != ids[0][b])
				differs = true;
		varying += differs;
	}
	/* RFC 9562 v4 ids fix a few bits of bytes 6 and 8; allow that */
	CHECKF(varying >= 14, "only %d of 16 id bytes vary", varying);
	CHECK_EQ(crac_unregister(h), 0);
}

/* An aborted round restores nothing: generation and id unchanged for the
 * next round. */
static void test_abort_keeps_identity(void)
{
	struct tres ok, bad;
	tres_init(&ok, "ok"); tres_init(&bad, "bad");
	tres_reg(NULL, &ok, 0);
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	uint64_t gen = ok.ev_after.generation;
	uint8_t id[16];
	memcpy(id, ok.ev_after.instance_id, 16);

	bad.fail_before = -EBUSY;
	tres_reg(NULL, &bad, 0);
	CHECK_EQ(t_sim(NULL), CRAC_ABORTED);
	tres_unreg(&bad);
	CHECK_EQ(ok.ev_after.generation, gen);
	CHECK(memcmp(ok.ev_after.instance_id, id, 16) == 0);
	CHECK_EQ(t_sim(NULL), CRAC_RESTORED);
	CHECK_EQ(ok.ev_before.generation, gen);
	CHECK_EQ(ok.ev_after.generation, gen + 1);
	tres_unreg(&ok);
}

int main(void)
{
	unsetenv("CRAC_ENGINE");
	RUN(test_event_fields);
	RUN(test_instance_id_random);
	RUN(test_abort_keeps_identity);
	return t_done();
}
