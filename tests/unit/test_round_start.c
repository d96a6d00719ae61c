/* SPDX-License-Identifier: MIT */
/*
 * test_round_start.c - how a checkpoint round starts.
 *
 *  - The engine: crac_options.engine, else $CRAC_ENGINE, else "image" when
 *    an image directory is given (crac_options.image_dir or
 *    $CRAC_IMAGE_DIR), else "sim" (issue 11: a checkpoint directory
 *    implies the image engine). Seen by the callbacks as ev->engine, in dry
 *    runs (nothing is written).
 *  - No memory for the round's own report: -ENOMEM, and still a report
 *    (a static one) that says so; nothing notified, nothing left claimed.
 *
 * Failing the first allocation deterministically: this file defines
 * calloc() (malloc underneath), which the statically linked library
 * calls; when armed, the next call fails.
 */
#include "test_common.h"

static volatile int fail_next_calloc;

/* Through a pointer the compiler cannot see through: it would otherwise
 * turn malloc + memset back into a (recursive) call to calloc. malloc is
 * whichever the process uses (glibc's, or the sanitizer's), so that free()
 * matches. */
static void *(*volatile malloc_fn)(size_t) = malloc;

void *calloc(size_t n, size_t size)
{
	size_t total;
	void *p;

	if (fail_next_calloc || __builtin_mul_overflow(n, size, &total)) {
		fail_next_calloc = 0;
		errno = ENOMEM;
		return NULL;
	}
	p = malloc_fn(total);
	if (p)
		memset(p, 0, total);
	return p;
}

static char seen_engine[32];
static int n_before;

static int record_before(const crac_event *ev, void *arg)
{
	snprintf(seen_engine, sizeof(seen_engine), "%s", ev->engine ? ev->engine : "(null)");
	n_before++;
	return 0;
}

/* A dry run with these options; returns the engine the callbacks saw. */
static const char *engine_of(const char *engine, const char *image_dir)
{
	struct crac_options o;
	crac_report *rep = NULL;
	int rc;

	crac_options_init(&o);
	o.engine = engine;
	o.image_dir = image_dir;
	o.flags = CRAC_DRY_RUN;
	seen_engine[0] = 0;
	rc = crac_checkpoint_restore(&o, &rep);
	/* the image engine's checks may refuse what this test process holds:
	 * aborted is fine, a failure to start is not */
	CHECKF(rc == CRAC_CONTINUED || rc == CRAC_ABORTED, "rc %d", rc);
	crac_report_free(rep);
	return seen_engine;
}

static void test_engine_default(void)
{
	crac_resource *res = NULL;
	struct crac_resource_def d = { .name = "rec", .before_checkpoint = record_before };
	char dir[] = "/tmp/crac-unit-round.XXXXXX";
	char img[64];

	REQUIRE(mkdtemp(dir) != NULL);
	snprintf(img, sizeof(img), "%s/img", dir);
	REQUIRE(crac_register(NULL, &d, &res) == 0);
	unsetenv("CRAC_ENGINE");
	unsetenv("CRAC_IMAGE_DIR");

	CHECK(strcmp(engine_of(NULL, NULL), "sim") == 0);
	/* an image directory with no engine named: the image engine */
	CHECKF(strcmp(engine_of(NULL, img), "image") == 0, "engine %s", seen_engine);
	setenv("CRAC_IMAGE_DIR", img, 1);
	CHECKF(strcmp(engine_of(NULL, NULL), "image") == 0, "engine %s", seen_engine);
	/* an engine named anywhere wins */
	CHECK(strcmp(engine_of("sim", NULL), "sim") == 0);
	setenv("CRAC_ENGINE", "sim", 1);
	CHECK(strcmp(engine_of(NULL, img), "sim") == 0);
	unsetenv("CRAC_ENGINE");
	unsetenv("CRAC_IMAGE_DIR");
	/* dry runs: nothing was written */
	CHECK(access(img, F_OK) != 0);

	CHECK_EQ(crac_unregister(res), 0);
	rmdir(dir);
}

static void test_no_memory_for_the_report(void)
{
	crac_resource *res = NULL;
	struct crac_resource_def d = { .name = "rec", .before_checkpoint = record_before };
	crac_report *rep = NULL;

	REQUIRE(crac_register(NULL, &d, &res) == 0);
	n_before = 0;
	fail_next_calloc = 1;
	CHECK_EQ(t_sim(&rep), -ENOMEM);
	CHECK(!fail_next_calloc);
	REQUIRE(rep != NULL);
	CHECK_EQ(crac_report_status(rep), -ENOMEM);
	CHECK_EQ(crac_report_count(rep), 1);
	CHECK(t_find_code(rep, -ENOMEM) != NULL);
	CHECKF(strstr(t_format(rep), "out of memory") != NULL, "report: %s", t_format(rep));
	crac_report_free(rep);   /* static: harmless */
	CHECK_EQ(n_before, 0);

	/* nothing left claimed: the next round runs */
	rep = NULL;
	CHECK_EQ(t_sim(&rep), CRAC_RESTORED);
	CHECK_NO_FAILURES(rep);
	crac_report_free(rep);
	CHECK_EQ(n_before, 1);
	CHECK_EQ(crac_unregister(res), 0);
}

int main(void)
{
	RUN(test_engine_default);
	RUN(test_no_memory_for_the_report);
	return t_done();
}
