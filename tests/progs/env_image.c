/* SPDX-License-Identifier: MIT */
/*
 * env_image - the restore-time environment with real image restores.
 *
 *   env_image DIR CYCLES
 *
 * Checkpoints itself into DIR with the image engine. Every restored
 * instance prints what its after_restore callback saw (new arguments and
 * environment from `crac restore DIR --env K=V -- ARGS`, getenv of the
 * variables, the generation) and checks that crac_clock_monotonic_ns()
 * did not go backwards across the restore; then, until CYCLES restores
 * were made, it checkpoints itself into DIR again (the restored process
 * exits there, like the first one). Prints "FAIL: ..." and exits 1 on any
 * problem.
 */
#include <crac.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char seen[1024];

static int after(const crac_event *ev, void *arg)
{
	size_t n = 0;

	(void)arg;
	n += (size_t)snprintf(seen + n, sizeof(seen) - n, "gen=%llu argc=%d",
			      (unsigned long long)ev->generation, ev->argc);
	for (int i = 0; i < ev->argc && n < sizeof(seen); i++)
		n += (size_t)snprintf(seen + n, sizeof(seen) - n, " [%s]", ev->argv[i]);
	for (char *const *e = ev->envp; e && *e && n < sizeof(seen); e++)
		n += (size_t)snprintf(seen + n, sizeof(seen) - n, " env=[%s]", *e);
	return 0;
}

int main(int argc, char **argv)
{
	struct crac_options o;
	crac_report *rep = NULL;

	if (argc < 3) {
		fprintf(stderr, "usage: env_image DIR CYCLES\n");
		return 2;
	}
	int cycles = atoi(argv[2]);
	struct crac_resource_def def = { .name = "env_image", .after_restore = after };
	if (crac_register(NULL, &def, NULL) < 0) {
		printf("FAIL: register\n");
		return 1;
	}
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = argv[1];
	for (int cycle = 1; cycle <= cycles; cycle++) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t raw_before = ts.tv_sec * 1000000000LL + ts.tv_nsec;
		int64_t before = crac_clock_monotonic_ns();
		int rc = crac_checkpoint_restore(&o, &rep);
		if (rc != CRAC_RESTORED) {
			crac_report_print(rep, stdout);
			printf("FAIL: cycle %d: crac_checkpoint_restore returned %d\n", cycle, rc);
			return 1;
		}
		crac_report_free(rep);
		rep = NULL;
		int64_t after_ns = crac_clock_monotonic_ns();
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t raw_after = ts.tv_sec * 1000000000LL + ts.tv_nsec;
		printf("cycle %d: CLOCK_MONOTONIC moved %lld ms\n", cycle, (long long)((raw_after - raw_before) / 1000000));
		const char *x = getenv("X"), *y = getenv("Y");
		printf("cycle %d: %s X=%s Y=%s\n", cycle, seen, x ? x : "(unset)", y ? y : "(unset)");
		if (after_ns < before) {
			printf("FAIL: cycle %d: crac_clock_monotonic_ns went back from %lld to %lld\n", cycle,
			       (long long)before, (long long)after_ns);
			return 1;
		}
		printf("cycle %d: monotonic ok (+%lld ns)\n", cycle, (long long)(after_ns - before));
		fflush(stdout);
	}
	printf("done\n");
	return 0;
}
