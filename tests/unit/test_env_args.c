/* SPDX-License-Identifier: MIT */
/*
 * test_env_args.c - new arguments and environment given at restore:
 * crac_restore_args() and the exported variables.
 *
 *  - the hook alone, with a hand-made round (copies, setenv, malformed
 *    entries reported, replaced by the next restore);
 *  - a whole round with the pause engine, resumed in-process through the
 *    hidden crac__pause_resume() that the control endpoint uses (the CLI
 *    path is tests/cli/env_args.bats).
 */
#include "crac.h"
#include "core/internal.h"
#include "harness.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int envp_has(char *const *envp, const char *kv)
{
	for (; envp && *envp; envp++)
		if (strcmp(*envp, kv) == 0)
			return 1;
	return 0;
}

static void test_hook(void)
{
	char *argv[] = { "a", "b c", NULL };
	char *envp[] = { "CRAC_T_X=1", "BAD", "=novar", "CRAC_T_Y=with=eq", "CRAC_T_E=", NULL };
	struct crac_round r;
	int argc = -1;
	char *const *av = NULL, *const *ev = NULL;

	memset(&r, 0, sizeof(r));
	REQUIRE((r.report = crac__report_new()) != NULL);
	r.new_argc = 2;
	r.new_argv = argv;
	r.new_envp = envp;
	unsetenv("CRAC_T_X");
	crac__args_restored(&r);

	CHECK_EQ(crac_restore_args(&argc, &av, &ev), 0);
	CHECK_EQ(argc, 2);
	REQUIRE(av && ev);
	CHECK(strcmp(av[0], "a") == 0 && strcmp(av[1], "b c") == 0 && av[2] == NULL);
	CHECK(av != (char *const *)argv && av[0] != argv[0]);   /* copies, not the round's */
	CHECK(envp_has(ev, "CRAC_T_X=1") && envp_has(ev, "CRAC_T_Y=with=eq"));
	CHECK(getenv("CRAC_T_X") && strcmp(getenv("CRAC_T_X"), "1") == 0);
	CHECK(getenv("CRAC_T_Y") && strcmp(getenv("CRAC_T_Y"), "with=eq") == 0);
	CHECK(getenv("CRAC_T_E") && strcmp(getenv("CRAC_T_E"), "") == 0);
	/* "BAD" and "=novar" are not KEY=VALUE: reported, not exported. */
	CHECK_EQ(crac_report_count(r.report), 2);
	CHECK(getenv("BAD") == NULL);
	CHECK_EQ(crac_restore_args(NULL, NULL, NULL), 0);
	crac_report_free(r.report);

	/* The next restore without args replaces them (the old ones are freed:
	 * the sanitizer build checks that). */
	memset(&r, 0, sizeof(r));
	REQUIRE((r.report = crac__report_new()) != NULL);
	crac__args_restored(&r);
	CHECK_EQ(crac_restore_args(&argc, &av, &ev), 0);
	CHECK_EQ(argc, 0);
	CHECK(av == NULL && ev == NULL);
	CHECK(getenv("CRAC_T_X") && strcmp(getenv("CRAC_T_X"), "1") == 0);  /* environ keeps it */
	CHECK_EQ(crac_report_count(r.report), 0);
	crac_report_free(r.report);
}

/* ---- a pause round resumed in-process ---------------------------------- */

static struct {
	int called;
	int outcome;
	int ev_argc;
	char ev_arg1[64];
	int api_argc;
	char api_arg0[64], api_arg1[64];
	char env_p[64];
	int env_seen;
} seen;

static int after(const crac_event *ev, void *arg)
{
	int argc = 0;
	char *const *av = NULL;
	const char *p;

	(void)arg;
	seen.called++;
	seen.outcome = ev->outcome;
	seen.ev_argc = ev->argc;
	if (ev->argc > 1)
		snprintf(seen.ev_arg1, sizeof(seen.ev_arg1), "%s", ev->argv[1]);
	crac_restore_args(&argc, &av, NULL);
	seen.api_argc = argc;
	if (argc > 1) {
		snprintf(seen.api_arg0, sizeof(seen.api_arg0), "%s", av[0]);
		snprintf(seen.api_arg1, sizeof(seen.api_arg1), "%s", av[1]);
	}
	if ((p = getenv("CRAC_T_P"))) {
		seen.env_seen = 1;
		snprintf(seen.env_p, sizeof(seen.env_p), "%s", p);
	}
	return 0;
}

static int round_rc;

static void *pause_round(void *p)
{
	struct crac_options o;
	(void)p;
	crac_options_init(&o);
	o.engine = "pause";
	round_rc = crac_checkpoint_restore(&o, NULL);
	return NULL;
}

static void test_pause_round(void)
{
	char dir[] = "/tmp/crac-test-env-args-XXXXXX";
	char *argv[] = { "first", "second arg", NULL };
	char *envp[] = { "CRAC_T_P=resumed value", NULL };
	struct crac_resource_def d = { .name = "args-recorder", .after_restore = after };
	crac_resource *h = NULL;
	pthread_t th;
	int rc = -EAGAIN;

	REQUIRE(mkdtemp(dir) != NULL);
	setenv("CRAC_CONTROL_DIR", dir, 1);
	unsetenv("CRAC_T_P");
	REQUIRE(crac_register(NULL, &d, &h) == 0);
	REQUIRE(pthread_create(&th, NULL, pause_round, NULL) == 0);
	/* Wait (up to 10 s) until the round is paused, then resume it. */
	for (int i = 0; i < 1000 && rc == -EAGAIN; i++) {
		rc = crac__pause_resume(argv, envp, NULL);
		if (rc == -EAGAIN)
			usleep(10 * 1000);
	}
	CHECK_EQ(rc, 0);
	if (rc != 0) {
		/* The round never paused: it must have failed; do not hang. */
		pthread_join(th, NULL);
		CHECKF(0, "pause round returned %d without pausing", round_rc);
		goto out;
	}
	pthread_join(th, NULL);
	CHECK_EQ(round_rc, CRAC_RESTORED);
	CHECK_EQ(seen.called, 1);
	CHECK_EQ(seen.outcome, CRAC_RESTORED);
	CHECK_EQ(seen.ev_argc, 2);
	CHECK(strcmp(seen.ev_arg1, "second arg") == 0);
	CHECK_EQ(seen.api_argc, 2);
	CHECK(strcmp(seen.api_arg0, "first") == 0 && strcmp(seen.api_arg1, "second arg") == 0);
	CHECK(seen.env_seen && strcmp(seen.env_p, "resumed value") == 0);

	/* Still there after the round (the round's own copies are gone). */
	int argc = 0;
	char *const *av = NULL, *const *ev = NULL;
	crac_restore_args(&argc, &av, &ev);
	CHECK_EQ(argc, 2);
	CHECK(av && strcmp(av[1], "second arg") == 0);
	CHECK(envp_has(ev, "CRAC_T_P=resumed value"));
out:
	CHECK_EQ(crac_unregister(h), 0);
	crac_control_stop();
	rmdir(dir);
}

int main(void)
{
	RUN(test_hook);
	RUN(test_pause_round);
	return t_done();
}
