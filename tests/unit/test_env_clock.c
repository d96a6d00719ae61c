/* SPDX-License-Identifier: MIT */
/*
 * test_env_clock.c - crac_clock_monotonic across restores (issue 5).
 *
 * The sim engine runs a full round in one process; the hidden hook
 * crac__clock_test_next_restore() makes the restore side see another
 * machine: another boot id, a shifted wall clock and a shifted
 * CLOCK_MONOTONIC (a new boot starts near 0). Checked: the CRaC rule
 * (boot change: advance by the wall-clock gap, a negative gap counting as
 * 0; same boot: never backwards), the event fields, and that no thread ever
 * reads a smaller value than before, over several cycles.
 */
#include "crac.h"
#include "harness.h"
#include "test_common.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S 1000000000LL

static int64_t real_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * S + ts.tv_nsec;
}

/* ---- a resource that records what callbacks see ------------------------ */

static crac_event ev_after;
static int n_after;
static int64_t mono_in_before, mono_in_after;

static int rec_before(const crac_event *ev, void *arg)
{
	(void)ev; (void)arg;
	mono_in_before = crac_clock_monotonic_ns();
	return 0;
}

static int rec_after(const crac_event *ev, void *arg)
{
	(void)arg;
	mono_in_after = crac_clock_monotonic_ns();
	ev_after = *ev;
	n_after++;
	return 0;
}

static crac_resource *recorder;

static void recorder_on(void)
{
	struct crac_resource_def d = {
		.name = "clock-recorder", .before_checkpoint = rec_before,
		.after_restore = rec_after,
	};
	if (!recorder)
		CHECK_EQ(crac_register(NULL, &d, &recorder), 0);
}

static void recorder_off(void)
{
	if (recorder)
		CHECK_EQ(crac_unregister(recorder), 0);
	recorder = NULL;
}

/* Checks that the event's offset is what crac_clock_monotonic_ns() adds to
 * CLOCK_MONOTONIC right now. */
static void check_offset_matches(int64_t offset)
{
	int64_t r1 = real_ns(CLOCK_MONOTONIC);
	int64_t c = crac_clock_monotonic_ns();
	int64_t r2 = real_ns(CLOCK_MONOTONIC);
	CHECKF(r1 + offset <= c && c <= r2 + offset,
	       "offset %lld does not explain crac %lld (raw %lld..%lld)",
	       (long long)offset, (long long)c, (long long)r1, (long long)r2);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_basics(void)
{
	struct timespec ts;
	int64_t raw, c, prev;
	int64_t t0, t1;
	const int n = 1000000;

	crac__clock_test_reset();
	CHECK_EQ(crac_clock_monotonic(NULL), -EINVAL);

	raw = real_ns(CLOCK_MONOTONIC);
	c = crac_clock_monotonic_ns();
	CHECKF(c >= raw && c - raw < S, "no restore yet: offset 0 (raw %lld, crac %lld)",
	       (long long)raw, (long long)c);

	CHECK_EQ(crac_clock_monotonic(&ts), 0);
	CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
	int64_t from_ts = (int64_t)ts.tv_sec * S + ts.tv_nsec;
	CHECK(from_ts >= c && from_ts - c < S);

	prev = crac_clock_monotonic_ns();
	t0 = real_ns(CLOCK_MONOTONIC);
	for (int i = 0; i < n; i++) {
		int64_t v = crac_clock_monotonic_ns();
		if (v < prev) {
			CHECKF(v >= prev, "went backwards at read %d", i);
			break;
		}
		prev = v;
	}
	t1 = real_ns(CLOCK_MONOTONIC);
	printf("# crac_clock_monotonic_ns: %.1f ns per call\n", (double)(t1 - t0) / n);
}

/* A plain sim restore on this machine: same boot, offset stays 0. */
static void test_same_boot(void)
{
	crac__clock_test_reset();
	recorder_on();
	int64_t before = crac_clock_monotonic_ns();
	int64_t rt0 = real_ns(CLOCK_REALTIME);
	n_after = 0;
	CHECK_EQ(t_sim_printed(), CRAC_RESTORED);
	int64_t rt1 = real_ns(CLOCK_REALTIME);
	int64_t after = crac_clock_monotonic_ns();
	CHECK_EQ(n_after, 1);
	CHECK(after >= before);
	CHECK(mono_in_after >= mono_in_before);
	CHECK_EQ(ev_after.boot_changed, 0);
	CHECK_EQ(ev_after.monotonic_offset, 0);
	CHECKF(ev_after.realtime_jump >= 0 && ev_after.realtime_jump <= rt1 - rt0,
	       "realtime_jump %lld outside [0, %lld]", (long long)ev_after.realtime_jump,
	       (long long)(rt1 - rt0));
	recorder_off();
}

/*
 * A reader that must never see the clock go backwards. It reads inside an
 * inhibitor, so it is held still while a round runs, as an image engine
 * holds every thread still while it writes the image.
 */
static atomic_int reader_stop;
static atomic_long reader_reads;
static int64_t reader_worst;   /* most negative step seen (0: none) */

static void *reader(void *p)
{
	int64_t last = crac_clock_monotonic_ns();
	(void)p;
	while (!atomic_load(&reader_stop)) {
		crac_inhibitor *inh;
		if (crac_inhibit("clock reader", &inh) != 0)
			continue;
		for (int i = 0; i < 100; i++) {
			int64_t v = crac_clock_monotonic_ns();
			if (v - last < reader_worst)
				reader_worst = v - last;
			last = v;
		}
		atomic_fetch_add(&reader_reads, 100);
		crac_release(inh);
	}
	return NULL;
}

/* Lets the reader (if running) read a while, so that it really reads
 * before and after every round. */
static int reader_running;

static void let_reader_read(void)
{
	long start = atomic_load(&reader_reads);
	for (int i = 0; reader_running && i < 5000 && atomic_load(&reader_reads) < start + 1000; i++)
		usleep(1000);
}

/* One cycle: prepare the world of the restore, run a round, check the rule. */
struct cycle {
	const char *what;
	const char *boot;          /* boot id after the restore */
	int64_t realtime_shift;    /* wall clock after the restore, vs. the real one */
	int64_t monotonic_shift;   /* CLOCK_MONOTONIC after the restore, vs. the real one */
	int boot_changed;          /* expected event field */
	int64_t jump_min, jump_max;        /* expected realtime_jump */
	int64_t advance_min, advance_max;  /* expected crac clock advance over the round */
};

static void run_cycle(const struct cycle *c, int64_t *prev_offset, int same_offset)
{
	crac__clock_test_next_restore(c->boot, c->realtime_shift, c->monotonic_shift);
	let_reader_read();
	int64_t before = crac_clock_monotonic_ns();
	n_after = 0;
	int rc = t_sim_printed();
	int64_t after = crac_clock_monotonic_ns();
	let_reader_read();

	CHECKF(rc == CRAC_RESTORED, "%s: round returned %d", c->what, rc);
	CHECKF(n_after == 1, "%s: after_restore ran %d times", c->what, n_after);
	CHECKF(after >= before, "%s: clock went back by %lld ns", c->what, (long long)(before - after));
	CHECKF(mono_in_before >= before && mono_in_after >= mono_in_before && after >= mono_in_after,
	       "%s: not monotonic: %lld %lld %lld %lld", c->what, (long long)before,
	       (long long)mono_in_before, (long long)mono_in_after, (long long)after);
	CHECKF(after - before >= c->advance_min && after - before <= c->advance_max,
	       "%s: advanced %lld ns, expected [%lld, %lld]", c->what, (long long)(after - before),
	       (long long)c->advance_min, (long long)c->advance_max);
	CHECKF(ev_after.boot_changed == c->boot_changed, "%s: boot_changed %d", c->what,
	       ev_after.boot_changed);
	CHECKF(ev_after.realtime_jump >= c->jump_min && ev_after.realtime_jump <= c->jump_max,
	       "%s: realtime_jump %lld, expected [%lld, %lld]", c->what,
	       (long long)ev_after.realtime_jump, (long long)c->jump_min, (long long)c->jump_max);
	check_offset_matches(ev_after.monotonic_offset);
	if (same_offset)
		CHECKF(ev_after.monotonic_offset == *prev_offset,
		       "%s: same boot and clock: offset moved from %lld to %lld", c->what,
		       (long long)*prev_offset, (long long)ev_after.monotonic_offset);
	*prev_offset = ev_after.monotonic_offset;
}

static void test_three_cycles(void)
{
	pthread_t th;
	int64_t offset = 0;
	const int64_t slack = 5 * S;   /* time the rounds themselves may take */
	int64_t raw;

	crac__clock_test_reset();
	recorder_on();
	atomic_store(&reader_stop, 0);
	reader_worst = 0;
	REQUIRE(pthread_create(&th, NULL, reader, NULL) == 0);
	reader_running = 1;

	/* 1: another boot, whose wall clock is an hour behind and whose
	 *    CLOCK_MONOTONIC is at 2 s: the negative gap counts as 0, so the
	 *    clock continues where it stopped. */
	raw = real_ns(CLOCK_MONOTONIC);
	struct cycle c1 = {
		"boot change, wall clock 1 h back", "11111111-0000-4000-8000-000000000001",
		-3600 * S, -(raw - 2 * S), 1, -3600 * S, -3600 * S + slack, 0, slack,
	};
	run_cycle(&c1, &offset, 0);

	/* 2: yet another boot, with the real wall clock (1 h ahead of the
	 *    previous world) and CLOCK_MONOTONIC at 5 s: advance by the gap. */
	raw = real_ns(CLOCK_MONOTONIC);
	int64_t shift2 = -(raw - 5 * S);
	struct cycle c2 = {
		"boot change, wall clock 1 h ahead", "22222222-0000-4000-8000-000000000002",
		0, shift2, 1, 3600 * S, 3600 * S + slack, 3600 * S, 3600 * S + slack,
	};
	run_cycle(&c2, &offset, 0);

	/* 3: same boot as 2, but the wall clock went back 10 min and
	 *    CLOCK_MONOTONIC is 30 s behind the record (another time
	 *    namespace): must not go backwards, must not leap either. */
	struct cycle c3 = {
		"same boot, both clocks behind", "22222222-0000-4000-8000-000000000002",
		-600 * S, shift2 - 30 * S, 0, -600 * S, -600 * S + slack, 0, slack,
	};
	run_cycle(&c3, &offset, 0);

	/* 4: same boot, nothing changed since 3: the offset stays as it is. */
	struct cycle c4 = {
		"same boot, nothing changed", "22222222-0000-4000-8000-000000000002",
		-600 * S, shift2 - 30 * S, 0, 0, slack, 0, slack,
	};
	run_cycle(&c4, &offset, 1);

	atomic_store(&reader_stop, 1);
	pthread_join(th, NULL);
	reader_running = 0;
	CHECKF(reader_worst == 0, "a reader saw the clock step back by %lld ns",
	       (long long)-reader_worst);
	CHECKF(atomic_load(&reader_reads) >= 8 * 1000, "the reader read only %ld times",
	       (long)atomic_load(&reader_reads));
	printf("# reader: %ld reads across the cycles\n", (long)atomic_load(&reader_reads));

	recorder_off();
	crac__clock_test_reset();
}

/* The record is taken after every user callback: a callback that reads the
 * clock late and long before the snapshot never sees a value above it. */
static int slow_before(const crac_event *ev, void *arg)
{
	struct timespec d = { 0, 50 * 1000000L };
	(void)ev; (void)arg;
	nanosleep(&d, NULL);
	mono_in_before = crac_clock_monotonic_ns();
	return 0;
}

static void test_record_after_callbacks(void)
{
	crac_resource *h = NULL;
	struct crac_resource_def d = {
		.name = "slow", .before_checkpoint = slow_before, .after_restore = rec_after,
		.priority = CRAC_PRIO_CHECKS,
	};

	crac__clock_test_reset();
	REQUIRE(crac_register(NULL, &d, &h) == 0);
	/* Another boot whose wall clock is far behind: the clock continues
	 * exactly from the record, so a record taken before the 50 ms callback
	 * would make mono_in_after < mono_in_before. */
	crac__clock_test_next_restore("33333333-0000-4000-8000-000000000003", -86400 * S,
				      -(real_ns(CLOCK_MONOTONIC) - S));
	CHECK_EQ(t_sim_printed(), CRAC_RESTORED);
	CHECKF(mono_in_after >= mono_in_before, "after_restore read %lld, before_checkpoint %lld",
	       (long long)mono_in_after, (long long)mono_in_before);
	CHECK_EQ(crac_unregister(h), 0);
	crac__clock_test_reset();
}

/* No restore, no move: aborted and dry-run rounds leave the offset alone. */
static int failing_before(const crac_event *ev, void *arg)
{
	(void)ev; (void)arg;
	return crac_fail(-EBUSY, "not now");
}

static void test_abort_keeps_offset(void)
{
	crac_resource *h = NULL;
	struct crac_resource_def d = {
		.name = "refuser", .before_checkpoint = failing_before, .after_restore = rec_after,
	};

	crac__clock_test_reset();
	REQUIRE(crac_register(NULL, &d, &h) == 0);
	crac__clock_test_next_restore("44444444-0000-4000-8000-000000000004", 3600 * S, 0);
	int64_t before = crac_clock_monotonic_ns();
	CHECK_EQ(t_sim_printed(), CRAC_ABORTED);
	int64_t after = crac_clock_monotonic_ns();
	CHECKF(after - before < S, "an aborted round moved the clock by %lld ns",
	       (long long)(after - before));
	CHECK_EQ(ev_after.monotonic_offset, 0);
	CHECK_EQ(ev_after.boot_changed, 0);
	CHECK_EQ(crac_unregister(h), 0);
	crac__clock_test_reset();
}

/* An image engine moves the clock early (before it releases the restored
 * threads); the core's hook later only fills the event. */
static void test_restore_early(void)
{
	crac_event ev;

	crac__clock_test_reset();
	crac__clock_checkpointing();
	int64_t before = crac_clock_monotonic_ns();
	crac__clock_test_next_restore("55555555-0000-4000-8000-000000000005", 3600 * S,
				      -(real_ns(CLOCK_MONOTONIC) - S));
	crac__runtime_restore_early();
	int64_t early = crac_clock_monotonic_ns();
	int64_t off_early = early - real_ns(CLOCK_MONOTONIC);
	CHECKF(early - before >= 3600 * S && early - before < 3600 * S + 5 * S,
	       "early restore advanced %lld ns", (long long)(early - before));
	usleep(20 * 1000);

	memset(&ev, 0, sizeof(ev));
	crac__clock_restored(&ev);
	CHECK_EQ(ev.boot_changed, 1);
	CHECK(ev.realtime_jump >= 3600 * S && ev.realtime_jump < 3600 * S + 5 * S);
	check_offset_matches(ev.monotonic_offset);
	/* not moved a second time (off_early was read a few ns late) */
	CHECKF(ev.monotonic_offset >= off_early && ev.monotonic_offset - off_early < S / 100,
	       "offset moved from %lld to %lld", (long long)off_early, (long long)ev.monotonic_offset);
	crac__clock_test_reset();
}

/* crac__wake_threads: a sleeper is interrupted (handler without SA_RESTART). */
static atomic_int woke_errno = -1;

static void on_signal(int s) { (void)s; }

static void *sleeper(void *p)
{
	struct timespec d = { 30, 0 };
	(void)p;
	int rc = nanosleep(&d, NULL);
	atomic_store(&woke_errno, rc < 0 ? errno : 0);
	return NULL;
}

static void test_wake_threads(void)
{
	struct sigaction sa, old;
	pthread_t th;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;   /* no SA_RESTART: interrupted calls fail with EINTR */
	sigemptyset(&sa.sa_mask);
	REQUIRE(sigaction(SIGUSR1, &sa, &old) == 0);
	REQUIRE(pthread_create(&th, NULL, sleeper, NULL) == 0);
	usleep(100 * 1000);   /* let it enter nanosleep */
	int64_t t0 = real_ns(CLOCK_MONOTONIC);
	int n = crac__wake_threads(SIGUSR1);
	CHECKF(n >= 1, "signalled %d threads", n);
	pthread_join(th, NULL);
	CHECKF(real_ns(CLOCK_MONOTONIC) - t0 < 10 * S, "sleeper was not woken");
	CHECK_EQ(atomic_load(&woke_errno), EINTR);
	sigaction(SIGUSR1, &old, NULL);
}

int main(void)
{
	RUN(test_basics);
	RUN(test_same_boot);
	RUN(test_three_cycles);
	RUN(test_record_after_callbacks);
	RUN(test_abort_keeps_offset);
	RUN(test_restore_early);
	RUN(test_wake_threads);
	return t_done();
}
