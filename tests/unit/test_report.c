/* SPDX-License-Identifier: MIT */
/*
 * test_report.c - the report API (crac.h "Reports"): count/get/status,
 * print (documented format), format (same text as print), free, NULL
 * safety, failing output stream, lifetime of the strings.
 */
#include "test_common.h"

#include <sys/stat.h>

/* Splits `text` into lines (modifies it); returns the number of lines. */
static int split_lines(char *text, char **lines, int max)
{
	int n = 0;
	for (char *p = text; *p && n < max;) {
		char *nl = strchr(p, '\n');
		lines[n++] = p;
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	return n;
}

/* A report with two failures: db/pool -EBUSY "3 connections open" and
 * cache -ENOSPC "disk full". */
static crac_report *make_two_failure_report(crac_context **ctx, struct tres *pool, struct tres *cache)
{
	crac_report *rep = NULL;
	if (crac_context_create(NULL, "db", 0, ctx) != 0)
		return NULL;
	tres_init(pool, "pool");
	tres_init(cache, "cache");
	pool->fail_before = -EBUSY;
	cache->fail_before = -ENOSPC;
	tres_reg(*ctx, pool, 0);
	tres_reg(NULL, cache, 0);
	int rc = t_sim(&rep);
	CHECK_EQ(rc, CRAC_ABORTED);
	return rep;
}

/* Print format: first line "crac: checkpoint aborted: N problem(s)", then
 * one line per failure with the phase word, the resource path, the errno
 * name and the message. */
static void test_print_format(void)
{
	crac_context *ctx = NULL;
	struct tres pool, cache;
	crac_report *rep = make_two_failure_report(&ctx, &pool, &cache);
	REQUIRE(rep != NULL);
	size_t n = crac_report_count(rep);
	CHECK(n >= 2);

	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	REQUIRE(f != NULL);
	CHECK_EQ(crac_report_print(rep, f), 0);
	fclose(f);
	REQUIRE(buf != NULL);

	char *copy = strdup(buf), *lines[64];
	int nl = split_lines(copy, lines, 64);
	char first[64];
	snprintf(first, sizeof(first), "crac: checkpoint aborted: %zu problem", n);
	CHECKF(nl >= 1 && strncmp(lines[0], first, strlen(first)) == 0, "first line: %s", nl ? lines[0] : "");
	CHECKF(nl == (int)n + 1, "expected %zu lines, got %d:\n%s", n + 1, nl, buf);

	bool saw_pool = false, saw_cache = false;
	for (int i = 1; i < nl; i++) {
		if (strstr(lines[i], "db/pool")) {
			saw_pool = true;
			CHECKF(strstr(lines[i], "before_checkpoint") != NULL, "line: %s", lines[i]);
			CHECKF(strstr(lines[i], "EBUSY") != NULL, "line: %s", lines[i]);
			CHECKF(strstr(lines[i], "pool: before failed on purpose") != NULL, "line: %s", lines[i]);
		}
		if (strstr(lines[i], "cache")) {
			saw_cache = true;
			CHECKF(strstr(lines[i], "before_checkpoint") != NULL, "line: %s", lines[i]);
			CHECKF(strstr(lines[i], "ENOSPC") != NULL, "line: %s", lines[i]);
			CHECKF(strstr(lines[i], "cache: before failed on purpose") != NULL, "line: %s", lines[i]);
		}
	}
	CHECKF(saw_pool && saw_cache, "report:\n%s", buf);

	/* crac_report_format gives exactly the printed text */
	char *s = NULL;
	CHECK_EQ(crac_report_format(rep, &s), 0);
	REQUIRE(s != NULL);
	CHECKF(strcmp(s, buf) == 0, "format:\n%s\nprint:\n%s", s, buf);
	free(s);
	free(copy);
	free(buf);
	crac_report_free(rep);
	CHECK_EQ(crac_context_destroy(ctx), 0);
	tres_unreg(&cache);
}

/* Singular: exactly one problem -> "1 problem" (first line), one more line. */
static void test_print_one_problem(void)
{
	struct tres r;
	tres_init(&r, "solo");
	r.fail_before = -EAGAIN;
	tres_reg(NULL, &r, 0);
	crac_report *rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_ABORTED);
	if (crac_report_count(rep) == 1) {
		const char *text = t_format(rep);
		CHECKF(strncmp(text, "crac: checkpoint aborted: 1 problem", 35) == 0, "text:\n%s", text);
		CHECKF(strstr(text, "1 problems") == NULL, "text:\n%s", text);
		CHECKF(strstr(text, "EAGAIN") && strstr(text, "solo"), "text:\n%s", text);
	} else {
		CHECKF(0, "expected one failure, got %zu", crac_report_count(rep));
		t_dump(rep);
	}
	crac_report_free(rep);
	tres_unreg(&r);
}

/* An after_restore failure prints with the phase word "after_restore". */
static void test_print_after_restore_line(void)
{
	struct tres r;
	tres_init(&r, "reopen");
	r.fail_after = -ENOENT;
	tres_reg(NULL, &r, 0);
	crac_report *rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_RESTORED);
	REQUIRE(rep != NULL);
	const char *text = t_format(rep);
	bool found = false;
	char *copy = strdup(text), *lines[64];
	int nl = split_lines(copy, lines, 64);
	for (int i = 0; i < nl; i++)
		if (strstr(lines[i], "reopen") && strstr(lines[i], "after_restore") &&
		    strstr(lines[i], "ENOENT") && strstr(lines[i], "reopen: after failed on purpose"))
			found = true;
	CHECKF(found, "no after_restore line in:\n%s", text);
	/* the round was not aborted: the text must not claim so */
	CHECKF(strstr(text, "checkpoint aborted") == NULL, "text:\n%s", text);
	free(copy);
	crac_report_free(rep);
	tres_unreg(&r);
}

/* get/count agree; out of range and NULL give NULL/0; free(NULL) is fine;
 * status reports the outcome. */
static void test_accessors_and_null_safety(void)
{
	CHECK_EQ(crac_report_count(NULL), 0);
	CHECK(crac_report_get(NULL, 0) == NULL);
	crac_report_free(NULL);

	crac_context *ctx = NULL;
	struct tres pool, cache;
	crac_report *rep = make_two_failure_report(&ctx, &pool, &cache);
	REQUIRE(rep != NULL);
	size_t n = crac_report_count(rep);
	for (size_t i = 0; i < n; i++) {
		const struct crac_failure *f = crac_report_get(rep, i);
		CHECK(f != NULL);
		if (f) {
			CHECK(f->resource != NULL);
			CHECK(f->message != NULL);
			CHECK(f->code < 0);
			CHECK(f->phase >= CRAC_PHASE_CHECKPOINT && f->phase <= CRAC_PHASE_RESTORE);
		}
	}
	CHECK(crac_report_get(rep, n) == NULL);
	CHECK(crac_report_get(rep, n + 100) == NULL);
	CHECK(crac_report_get(rep, (size_t)-1) == NULL);
	CHECK_EQ(crac_report_status(rep), CRAC_ABORTED);
	crac_report_free(rep);
	CHECK_EQ(crac_context_destroy(ctx), 0);
	tres_unreg(&cache);
}

/* Printing to a stream that cannot be written returns -EIO. */
static void test_print_io_error(void)
{
	struct tres r;
	tres_init(&r, "r");
	r.fail_before = -EBUSY;
	tres_reg(NULL, &r, 0);
	crac_report *rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_ABORTED);
	REQUIRE(rep != NULL);
	FILE *f = fopen("/dev/full", "w");
	if (f) {
		setvbuf(f, NULL, _IONBF, 0);
		CHECK_EQ(crac_report_print(rep, f), -EIO);
		fclose(f);
	}
	/* a read-only stream fails as well */
	f = fopen("/dev/null", "r");
	if (f) {
		CHECK_EQ(crac_report_print(rep, f), -EIO);
		fclose(f);
	}
	crac_report_free(rep);
	tres_unreg(&r);
}

/* The strings of a report live as long as the report: later rounds (which
 * build new reports and reuse per-thread message buffers) and unregistering
 * the resource do not change them (ASan catches use-after-free). */
static void test_strings_outlive_round(void)
{
	struct tres *r = calloc(1, sizeof(*r));
	REQUIRE(r != NULL);
	char *name = strdup("ephemeral");
	tres_init(r, name);
	r->fail_before = -EBUSY;
	tres_reg(NULL, r, 0);
	crac_report *rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_ABORTED);
	tres_unreg(r);
	free(r);
	free(name);

	struct tres other;
	tres_init(&other, "other");
	other.fail_before = -EINVAL;
	tres_reg(NULL, &other, 0);
	for (int i = 0; i < 3; i++) {
		crac_report *r2 = NULL;
		CHECK_EQ(t_sim(&r2), CRAC_ABORTED);
		crac_report_free(r2);
	}
	tres_unreg(&other);

	const struct crac_failure *f = t_find(rep, "ephemeral", 0);
	REQUIRE(f != NULL);
	CHECK_EQ(f->code, -EBUSY);
	CHECKF(strstr(f->message, "ephemeral: before failed on purpose") != NULL, "msg %s", f->message);
	crac_report_free(rep);
}

/* An unusual errno value still prints (name unknown is fine), no crash. */
static int fail_weird(const crac_event *ev, void *arg) { return crac_fail(-4000, "weird code"); }

static void test_unknown_errno_prints(void)
{
	crac_resource *h = NULL;
	struct crac_resource_def d = { .name = "weird", .before_checkpoint = fail_weird };
	REQUIRE(crac_register(NULL, &d, &h) == 0);
	crac_report *rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_ABORTED);
	const struct crac_failure *f = t_find(rep, "weird", 0);
	REQUIRE(f != NULL);
	CHECK_EQ(f->code, -4000);
	const char *text = t_format(rep);
	CHECKF(strstr(text, "weird code") != NULL, "text:\n%s", text);
	crac_report_free(rep);
	CHECK_EQ(crac_unregister(h), 0);
}

int main(void)
{
	unsetenv("CRAC_ENGINE");
	RUN(test_print_format);
	RUN(test_print_one_problem);
	RUN(test_print_after_restore_line);
	RUN(test_accessors_and_null_safety);
	RUN(test_print_io_error);
	RUN(test_strings_outlive_round);
	RUN(test_unknown_errno_prints);
	return t_done();
}
