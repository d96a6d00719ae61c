/* SPDX-License-Identifier: MIT */
/*
 * test_pause.c - the pause engine in-process (DESIGN §1 third bullet, §2
 * engines): crac_checkpoint_restore(engine "pause") runs the before
 * callbacks and then blocks until resumed (internal crac__pause_resume, the
 * call behind `crac restore --pid`); the after_restore callbacks then run
 * with engine "pause", a new generation and instance id, and see the new
 * args/env. Nothing paused -> -EAGAIN. A failed before-callback does not
 * pause at all. (The CLI path is in tests/cli/pause.bats.)
 */
#include "test_common.h"
#include "core/internal.h"

#include <sys/stat.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool before_done;

struct seen {
	atomic_int nafter;
	crac_event before, after;
	int argc;
	char argv[8][32];
	bool argv_terminated;
	char envp[8][32];
	int nenv;
};
static struct seen seen;

static int p_before(const crac_event *ev, void *arg)
{
	seen.before = *ev;
	pthread_mutex_lock(&mu);
	before_done = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	return 0;
}

static int p_after(const crac_event *ev, void *arg)
{
	seen.after = *ev;
	seen.argc = ev->argc;
	for (int i = 0; i < ev->argc && i < 8 && ev->argv; i++)
		snprintf(seen.argv[i], sizeof(seen.argv[i]), "%s", ev->argv[i] ? ev->argv[i] : "(null)");
	seen.argv_terminated = ev->argv && ev->argc < 8 && ev->argv[ev->argc] == NULL;
	seen.nenv = 0;
	for (int i = 0; ev->envp && ev->envp[i] && i < 8; i++)
		snprintf(seen.envp[seen.nenv++], sizeof(seen.envp[0]), "%s", ev->envp[i]);
	atomic_fetch_add(&seen.nafter, 1);
	return 0;
}

struct cp { int rc; crac_report *rep; };
static void *pause_thread(void *p)
{
	struct cp *c = p;
	c->rc = t_checkpoint("pause", 5000, 5000, 0, &c->rep);
	return NULL;
}

/* A requester standing for `crac restore --pid`: gets the final status. */
struct fake_rq { struct crac_requester rq; atomic_int finished; int status; };
static void rq_reply(struct crac_requester *rq, int status, const char *text) {}
static void rq_finish(struct crac_requester *rq, int status, const crac_report *rep)
{
	struct fake_rq *f = (struct fake_rq *)rq;
	f->status = status;
	atomic_store(&f->finished, 1);
}

/* Resumes, retrying while the engine has not reached its paused state yet
 * (between the before-callbacks and the pause itself). */
static int resume(char *const *argv, char *const *envp, struct crac_requester *rq)
{
	int rc = -EAGAIN;
	for (int i = 0; i < 500 && rc == -EAGAIN; i++) {
		rc = crac__pause_resume(argv, envp, rq);
		if (rc == -EAGAIN)
			t_sleep_ms(10);
	}
	return rc;
}

static void wait_before_done(void)
{
	pthread_mutex_lock(&mu);
	while (!before_done)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static void test_pause_and_resume_with_args(void)
{
	crac_resource *h = NULL;
	struct crac_resource_def d = { .name = "p", .before_checkpoint = p_before,
				       .after_restore = p_after };
	REQUIRE(crac_register(NULL, &d, &h) == 0);
	memset(&seen, 0, sizeof(seen));
	before_done = false;

	CHECK_EQ(crac__pause_resume(NULL, NULL, NULL), -EAGAIN);  /* nothing paused */

	struct cp c = { 0 };
	pthread_t t;
	pthread_create(&t, NULL, pause_thread, &c);
	wait_before_done();
	/* it blocks: no after_restore while nobody resumed it */
	t_sleep_ms(200);
	CHECK_EQ(atomic_load(&seen.nafter), 0);

	char *argv[] = { "a", "b", NULL };
	char *envp[] = { "X=1", "EMPTY=", NULL };
	struct fake_rq f = { .rq = { .reply = rq_reply, .finish = rq_finish } };
	CHECK_EQ(resume(argv, envp, &f.rq), 0);
	pthread_join(t, NULL);

	CHECK_EQ(c.rc, CRAC_RESTORED);
	CHECK_NO_FAILURES(c.rep);
	crac_report_free(c.rep);
	CHECK_EQ(atomic_load(&seen.nafter), 1);
	CHECK(seen.before.engine && strcmp(seen.before.engine, "pause") == 0);
	CHECK(seen.after.engine && strcmp(seen.after.engine, "pause") == 0);
	CHECK_EQ(seen.after.outcome, CRAC_RESTORED);
	CHECK_EQ(seen.after.generation, seen.before.generation + 1);
	CHECK(memcmp(seen.after.instance_id, seen.before.instance_id, 16) != 0);
	CHECK(seen.after.restore_monotonic >= seen.before.checkpoint_monotonic + 200 * 1000000LL);
	CHECK_EQ(seen.argc, 2);
	CHECK(strcmp(seen.argv[0], "a") == 0);
	CHECK(strcmp(seen.argv[1], "b") == 0);
	CHECK(seen.argv_terminated);
	CHECK_EQ(seen.nenv, 2);
	CHECK(strcmp(seen.envp[0], "X=1") == 0);
	CHECK(strcmp(seen.envp[1], "EMPTY=") == 0);
	CHECKF(atomic_load(&f.finished) == 1, "the resumer never got its answer");
	CHECK_EQ(f.status, CRAC_RESTORED);

	/* nothing paused any more */
	CHECK_EQ(crac__pause_resume(NULL, NULL, NULL), -EAGAIN);
	CHECK_EQ(crac_unregister(h), 0);
}

/* Resumed without new args/env: argc 0, argv/envp NULL; a second pause in
 * the same process works and advances the generation again. */
static void test_resume_without_args(void)
{
	crac_resource *h = NULL;
	struct crac_resource_def d = { .name = "p", .before_checkpoint = p_before,
				       .after_restore = p_after };
	REQUIRE(crac_register(NULL, &d, &h) == 0);
	uint64_t last_gen = 0;
	for (int i = 0; i < 2; i++) {
		memset(&seen, 0, sizeof(seen));
		before_done = false;
		struct cp c = { 0 };
		pthread_t t;
		pthread_create(&t, NULL, pause_thread, &c);
		wait_before_done();
		struct fake_rq f = { .rq = { .reply = rq_reply, .finish = rq_finish } };
		CHECK_EQ(resume(NULL, NULL, &f.rq), 0);
		pthread_join(t, NULL);
		CHECK_EQ(c.rc, CRAC_RESTORED);
		crac_report_free(c.rep);
		CHECK_EQ(seen.after.argc, 0);
		CHECK(seen.after.argv == NULL);
		CHECK(seen.after.envp == NULL);
		if (i > 0)
			CHECK_EQ(seen.after.generation, last_gen + 1);
		last_gen = seen.after.generation;
	}
	CHECK_EQ(crac_unregister(h), 0);
}

/* A failing before_checkpoint: no pause, CRAC_ABORTED at once. */
static int p_fail(const crac_event *ev, void *arg) { return crac_fail(-EBUSY, "not now"); }

static void test_abort_does_not_pause(void)
{
	crac_resource *h = NULL;
	struct crac_resource_def d = { .name = "nope", .before_checkpoint = p_fail };
	REQUIRE(crac_register(NULL, &d, &h) == 0);
	crac_report *rep = NULL;
	int64_t t0 = t_mono_ms();
	int rc = t_checkpoint("pause", 5000, 5000, 0, &rep);
	CHECK_EQ(rc, CRAC_ABORTED);
	CHECK(t_mono_ms() - t0 < 3000);
	CHECK(t_find(rep, "nope", CRAC_PHASE_CHECKPOINT) != NULL);
	crac_report_free(rep);
	CHECK_EQ(crac__pause_resume(NULL, NULL, NULL), -EAGAIN);
	CHECK_EQ(crac_unregister(h), 0);
}

int main(void)
{
	static char dir[128];
	unsetenv("CRAC_ENGINE");
	alarm(90);  /* a deadlock fails the test instead of hanging it */
	/* the pause engine starts the control endpoint: keep it out of /tmp/crac-UID */
	char base[] = "/tmp/crac-test-pause-XXXXXX";
	if (!mkdtemp(base))
		t_skip_all("cannot create a temporary directory");
	snprintf(dir, sizeof(dir), "%s/ctl", base);
	setenv("CRAC_CONTROL_DIR", dir, 1);

	RUN(test_pause_and_resume_with_args);
	RUN(test_resume_without_args);
	RUN(test_abort_does_not_pause);

	crac_control_stop();
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", base);
	return t_done();
}
