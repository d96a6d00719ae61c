/* SPDX-License-Identifier: MIT */
/*
 * test_log.c - crac's logger: a program's sink receives crac's messages
 * with their level; the level filters (default warn); crac_log_set_level
 * returns the previous level and refuses unknown ones; the default sink
 * writes "crac: MESSAGE\n" to stderr in one piece; while threads are
 * stopped for an image the default sink is used even when the program set
 * its own; a restored process says which after_restore callbacks failed
 * (the sim engine reports a restore).
 */
#include "test_common.h"
#include "core/internal.h"

#include <fcntl.h>

static char got[16][512];
static int got_level[16];
static int n_got;

static void sink(enum crac_log_level level, const char *msg, void *arg)
{
	CHECK(arg == (void *)got);
	if (n_got < 16) {
		snprintf(got[n_got], sizeof(got[n_got]), "%s", msg);
		got_level[n_got] = (int)level;
		n_got++;
	}
}

static bool received(const char *needle)
{
	for (int i = 0; i < n_got; i++)
		if (strstr(got[i], needle))
			return true;
	return false;
}

/* Runs fn with stderr redirected to a pipe; returns what was written. */
static void capture_stderr(void (*fn)(void), char *out, size_t len)
{
	int p[2], saved = dup(2);

	REQUIRE(pipe(p) == 0);
	dup2(p[1], 2);
	close(p[1]);
	fn();
	dup2(saved, 2);
	close(saved);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	ssize_t n = read(p[0], out, len - 1);
	out[n > 0 ? n : 0] = 0;
	close(p[0]);
}

static void test_handler_and_levels(void)
{
	n_got = 0;
	CHECK_EQ(crac_log_set_handler(sink, got), 0);
	crac__log(CRAC_LOG_WARN, "one %d", 1);
	crac__log(CRAC_LOG_DEBUG, "hidden");
	CHECK_EQ(n_got, 1);
	CHECK(strcmp(got[0], "one 1") == 0);
	CHECK_EQ(got_level[0], CRAC_LOG_WARN);
	CHECK(!received("hidden"));

	CHECK_EQ(crac_log_set_level(CRAC_LOG_DEBUG), CRAC_LOG_WARN);
	crac__log(CRAC_LOG_DEBUG, "shown");
	CHECK(received("shown"));
	CHECK_EQ(crac_log_set_level(CRAC_LOG_ERROR), CRAC_LOG_DEBUG);
	crac__log(CRAC_LOG_WARN, "dropped");
	CHECK(!received("dropped"));
	CHECK_EQ(crac_log_set_level((enum crac_log_level)7), -EINVAL);
	CHECK_EQ(crac_log_set_level(CRAC_LOG_WARN), CRAC_LOG_ERROR);
	CHECK_EQ(crac_log_set_handler(NULL, NULL), 0);
}

static void say_default(void)
{
	errno = EIO;
	crac__log(CRAC_LOG_ERROR, "to stderr %s", "x");
	CHECK_EQ(errno, EIO);   /* errno preserved */
}

static void test_default_sink(void)
{
	char out[256];

	n_got = 0;
	capture_stderr(say_default, out, sizeof(out));
	CHECKF(strcmp(out, "crac: to stderr x\n") == 0, "stderr got \"%s\"", out);
	CHECK_EQ(n_got, 0);
}

static void say_stopped(void)
{
	crac__log_stopped_begin();
	crac__log(CRAC_LOG_WARN, "threads are stopped");
	crac__log_stopped_end();
}

static void test_stopped_window(void)
{
	char out[256];

	n_got = 0;
	crac_log_set_handler(sink, got);
	capture_stderr(say_stopped, out, sizeof(out));
	CHECKF(strstr(out, "crac: threads are stopped\n") != NULL, "stderr got \"%s\"", out);
	CHECK_EQ(n_got, 0);
	crac__log(CRAC_LOG_WARN, "after the window");
	CHECK(received("after the window"));
	crac_log_set_handler(NULL, NULL);
}

static void test_long_message_is_cut(void)
{
	static char big[8192];
	char out[4096];

	memset(big, 'a', sizeof(big) - 1);
	n_got = 0;
	int p[2], saved = dup(2);
	REQUIRE(pipe(p) == 0);
	dup2(p[1], 2);
	close(p[1]);
	crac__log(CRAC_LOG_ERROR, "%s", big);
	dup2(saved, 2);
	close(saved);
	ssize_t n = read(p[0], out, sizeof(out));
	close(p[0]);
	REQUIRE(n > 10);
	CHECK(memcmp(out, "crac: aaa", 9) == 0);
	CHECK(memcmp(out + n - 4, "...\n", 4) == 0);
}

static int fail_after(const crac_event *ev, void *arg)
{
	if (ev->outcome != CRAC_RESTORED)
		return 0;
	return crac_fail(-ENOENT, "config file vanished");
}

static void test_restored_failures_logged(void)
{
	struct crac_resource_def d = { .name = "cfg", .after_restore = fail_after };
	crac_resource *res = NULL;
	crac_report *rep = NULL;

	n_got = 0;
	crac_log_set_handler(sink, got);
	REQUIRE(crac_register(NULL, &d, &res) == 0);
	int rc = t_sim(&rep);
	CHECK_EQ(rc, CRAC_RESTORED);
	CHECKF(received("after restore: cfg: ENOENT: config file vanished"),
	       "got %d messages, first \"%s\"", n_got, n_got ? got[0] : "");
	crac_report_free(rep);
	crac_unregister(res);
	crac_log_set_handler(NULL, NULL);
}

int main(void)
{
	RUN(test_handler_and_levels);
	RUN(test_default_sink);
	RUN(test_stopped_window);
	RUN(test_long_message_is_cut);
	RUN(test_restored_failures_logged);
	return t_done();
}
