/* SPDX-License-Identifier: MIT */
/*
 * test_version.c - crac_version (matches the header macros), crac_engines
 * (NULL-terminated, lists the built-in "sim" and "pause", every listed
 * engine is known to crac_checkpoint_restore), crac_global_context.
 */
#include "test_common.h"

#define STR2(x) #x
#define STR(x) STR2(x)

static void test_version_string(void)
{
	const char *v = crac_version();
	REQUIRE(v != NULL);
	CHECKF(strcmp(v, STR(CRAC_VERSION_MAJOR) "." STR(CRAC_VERSION_MINOR) "."
		      STR(CRAC_VERSION_PATCH)) == 0, "version %s", v);
	CHECK(crac_version() == v || strcmp(crac_version(), v) == 0);
}

static void test_engines_list(void)
{
	const char *const *e = crac_engines();
	REQUIRE(e != NULL);
	bool sim = false, pause = false;
	int n = 0;
	for (; e[n] && n < 64; n++) {
		CHECK(e[n][0] != '\0');
		if (strcmp(e[n], "sim") == 0)
			sim = true;
		if (strcmp(e[n], "pause") == 0)
			pause = true;
		/* no duplicates */
		for (int j = 0; j < n; j++)
			CHECKF(strcmp(e[j], e[n]) != 0, "duplicate engine %s", e[n]);
	}
	CHECKF(n < 64, "engine list not NULL-terminated");
	CHECK(sim);
	CHECK(pause);
	/* every listed engine is known: it never yields -ENOENT (it may be
	 * unavailable here: -ENOTSUP; it may fail: any other result). A dry run
	 * keeps engines from taking a snapshot or pausing. */
	for (int i = 0; i < n; i++) {
		crac_report *rep = NULL;
		int rc = t_checkpoint(e[i], 2000, 2000, CRAC_DRY_RUN, &rep);
		CHECKF(rc != -ENOENT, "listed engine %s unknown", e[i]);
		crac_report_free(rep);
	}
}

static void test_global_context(void)
{
	crac_context *g = crac_global_context();
	CHECK(g != NULL);
	CHECK(g == crac_global_context());
}

int main(void)
{
	unsetenv("CRAC_ENGINE");
	/* engines may start the control endpoint: keep it out of /tmp/crac-UID */
	char base[] = "/tmp/crac-test-version-XXXXXX", dir[64], cmd[100];
	if (!mkdtemp(base))
		t_skip_all("cannot create a temporary directory");
	snprintf(dir, sizeof(dir), "%s/ctl", base);
	setenv("CRAC_CONTROL_DIR", dir, 1);
	RUN(test_version_string);
	RUN(test_global_context);
	RUN(test_engines_list);
	crac_control_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", base);
	return t_done();
}
