/* SPDX-License-Identifier: MIT */
/*
 * test_common.h - helpers shared by the API unit tests (header only; every
 * test_*.c is its own executable, so everything here is static).
 *
 *  - a thread-safe call log ("B:name" for before_checkpoint, "A:name" for
 *    after_restore) to check the exact notification order;
 *  - struct tres, a recording resource whose callbacks log themselves, keep
 *    a copy of the last event and can be told to fail;
 *  - report look-ups and a monotonic clock.
 */
#ifndef CRAC_TEST_COMMON_H
#define CRAC_TEST_COMMON_H

#include "crac.h"
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Not every test uses every helper. */
#pragma GCC diagnostic ignored "-Wunused-function"

/* ---- time ---------------------------------------------------------- */

static inline int64_t t_now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
static inline int64_t t_mono_ms(void) { return t_now_ns(CLOCK_MONOTONIC) / 1000000LL; }
static inline void t_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- call log ------------------------------------------------------ */

#define TLOG_MAX 512
static pthread_mutex_t tlog_mu = PTHREAD_MUTEX_INITIALIZER;
static int tlog_n;
static char tlog_ent[TLOG_MAX][64];
static char tlog_buf[TLOG_MAX * 66];

static void tlog_reset(void)
{
	pthread_mutex_lock(&tlog_mu);
	tlog_n = 0;
	pthread_mutex_unlock(&tlog_mu);
}

static void tlog_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void tlog_add(const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&tlog_mu);
	if (tlog_n < TLOG_MAX) {
		va_start(ap, fmt);
		vsnprintf(tlog_ent[tlog_n++], sizeof(tlog_ent[0]), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&tlog_mu);
}

/* The log as one space-separated string (static buffer). */
static const char *tlog_str(void)
{
	size_t used = 0;
	pthread_mutex_lock(&tlog_mu);
	tlog_buf[0] = '\0';
	for (int i = 0; i < tlog_n; i++)
		used += (size_t)snprintf(tlog_buf + used, sizeof(tlog_buf) - used, "%s%s",
					 i ? " " : "", tlog_ent[i]);
	pthread_mutex_unlock(&tlog_mu);
	return tlog_buf;
}

/* Compares the log with `expect`; prints both on mismatch. */
#define CHECK_LOG(expect) do { const char *_got = tlog_str(); \
	CHECKF(strcmp(_got, (expect)) == 0, "log\n   got: %s\n  want: %s", _got, (expect)); } while (0)

/* ---- a recording resource ------------------------------------------ */

struct tres {
	const char *name;
	int fail_before;          /* if non-zero: before_checkpoint fails with crac_fail(code) */
	int fail_after;           /* same for after_restore */
	atomic_int nbefore, nafter;
	crac_event ev_before, ev_after;   /* copy of the last events */
	crac_resource *h;
};

static int tres_before(const crac_event *ev, void *arg)
{
	struct tres *r = arg;
	atomic_fetch_add(&r->nbefore, 1);
	r->ev_before = *ev;
	tlog_add("B:%s", r->name);
	if (r->fail_before)
		return crac_fail(r->fail_before, "%s: before failed on purpose", r->name);
	return 0;
}

static int tres_after(const crac_event *ev, void *arg)
{
	struct tres *r = arg;
	atomic_fetch_add(&r->nafter, 1);
	r->ev_after = *ev;
	tlog_add("A:%s", r->name);
	if (r->fail_after)
		return crac_fail(r->fail_after, "%s: after failed on purpose", r->name);
	return 0;
}

static void tres_init(struct tres *r, const char *name)
{
	memset(r, 0, sizeof(*r));
	r->name = name;
}

/* Registers r in ctx (NULL: global) with both callbacks; REQUIREs success. */
static int tres_reg(crac_context *ctx, struct tres *r, int prio)
{
	struct crac_resource_def d = {
		.name = r->name, .before_checkpoint = tres_before,
		.after_restore = tres_after, .arg = r, .priority = prio,
	};
	int rc = crac_register(ctx, &d, &r->h);
	CHECKF(rc == 0, "crac_register(%s) = %d", r->name, rc);
	return rc;
}

static void tres_unreg(struct tres *r)
{
	if (r->h) {
		int rc = crac_unregister(r->h);
		CHECKF(rc == 0, "crac_unregister(%s) = %d", r->name, rc);
		r->h = NULL;
	}
}

/* ---- checkpoints and reports --------------------------------------- */

/* One checkpoint with the sim engine and the given deadlines/flags. */
static int t_checkpoint(const char *engine, int64_t deadline_ms, int64_t restore_deadline_ms,
			unsigned flags, crac_report **rep)
{
	struct crac_options o;
	crac_options_init(&o);
	o.engine = engine;
	o.deadline_ms = deadline_ms;
	o.restore_deadline_ms = restore_deadline_ms;
	o.flags = flags;
	if (rep)
		*rep = NULL;
	return crac_checkpoint_restore(&o, rep);
}

static int t_sim(crac_report **rep) { return t_checkpoint("sim", 0, 0, 0, rep); }

/* One sim checkpoint whose report, if any, is printed to stderr (to read
 * when a check fails) and freed. */
static int t_sim_printed(void)
{
	crac_report *rep = NULL;
	int rc = t_sim(&rep);

	if (rep) {
		crac_report_print(rep, stderr);
		crac_report_free(rep);
	}
	return rc;
}

/* The first failure of `resource` (any phase if phase == 0), or NULL. */
static const struct crac_failure *t_find(const crac_report *rep, const char *resource, int phase)
{
	size_t n = crac_report_count(rep);
	for (size_t i = 0; i < n; i++) {
		const struct crac_failure *f = crac_report_get(rep, i);
		if (!f)
			continue;
		if (resource && (!f->resource || strcmp(f->resource, resource) != 0))
			continue;
		if (phase && (int)f->phase != phase)
			continue;
		return f;
	}
	return NULL;
}

/* Number of failures naming `resource`. */
static size_t t_count_for(const crac_report *rep, const char *resource)
{
	size_t n = crac_report_count(rep), c = 0;
	for (size_t i = 0; i < n; i++) {
		const struct crac_failure *f = crac_report_get(rep, i);
		if (f && f->resource && strcmp(f->resource, resource) == 0)
			c++;
	}
	return c;
}

/* First failure with this code, or NULL. */
static const struct crac_failure *t_find_code(const crac_report *rep, int code)
{
	size_t n = crac_report_count(rep);
	for (size_t i = 0; i < n; i++) {
		const struct crac_failure *f = crac_report_get(rep, i);
		if (f && f->code == code)
			return f;
	}
	return NULL;
}

/* Prints the report to stderr (diagnostics for failing tests). */
static void t_dump(const crac_report *rep)
{
	if (rep) {
		fprintf(stderr, "  [report, status %d]\n", crac_report_status(rep));
		crac_report_print(rep, stderr);
	}
}

/* Checks that a successful checkpoint left no failure behind. */
#define CHECK_NO_FAILURES(rep) do { CHECKF(crac_report_count(rep) == 0, \
	"expected no failures, got %zu", crac_report_count(rep)); \
	if (crac_report_count(rep)) t_dump(rep); } while (0)

/* The text of crac_report_format (static copy; "" on error). */
static const char *t_format(const crac_report *rep)
{
	static char buf[16384];
	char *s = NULL;
	buf[0] = '\0';
	if (crac_report_format(rep, &s) == 0 && s) {
		snprintf(buf, sizeof(buf), "%s", s);
		free(s);
	}
	return buf;
}

#endif
