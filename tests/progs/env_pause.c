/* SPDX-License-Identifier: MIT */
/*
 * env_pause - helper for tests/cli/env_args.bats.
 *
 * Runs two checkpoint rounds with the pause engine, each on its own thread
 * (as a service would from a worker), and prints what the restore brought:
 * from an after_restore callback (crac_restore_args, the event, getenv) and
 * again from main once the round returned. The test resumes the process
 * with `crac restore --pid PID [--env K=V]... [-- ARGS]`.
 *
 * Output lines (stdout), per round N:
 *   round N after_restore: outcome=O argc=C [arg]... env=[K=V]... X=<v> Y=<v>
 *   round N returned R: argc=C [arg]... env=[K=V]... X=<v> Y=<v>
 * where <v> is the variable's value, or "unset".
 */
#include <crac.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int current_round;

/* Appends " argc=C [a]... env=[K=V]... X=<v> Y=<v>" to stdout. */
static void print_state(void)
{
	int argc = -1;
	char *const *argv = NULL, *const *envp = NULL;
	const char *x = getenv("X"), *y = getenv("Y");

	crac_restore_args(&argc, &argv, &envp);
	printf(" argc=%d", argc);
	for (int i = 0; i < argc; i++)
		printf(" [%s]", argv[i]);
	for (char *const *e = envp; e && *e; e++)
		printf(" env=[%s]", *e);
	printf(" X=%s Y=%s\n", x ? x : "unset", y ? y : "unset");
	fflush(stdout);
}

static int after_restore(const crac_event *ev, void *arg)
{
	(void)arg;
	printf("round %d after_restore: outcome=%d", current_round, (int)ev->outcome);
	/* The event carries the same arguments. */
	if (ev->argc) {
		int argc = 0;
		char *const *argv = NULL;
		crac_restore_args(&argc, &argv, NULL);
		if (argc != ev->argc || strcmp(argv[argc - 1], ev->argv[ev->argc - 1]) != 0)
			printf(" EVENT-MISMATCH");
	}
	print_state();
	return 0;
}

static void *round_thread(void *p)
{
	struct crac_options o;
	crac_report *rep = NULL;
	int *rc = p;

	crac_options_init(&o);
	o.engine = "pause";
	*rc = crac_checkpoint_restore(&o, &rep);
	if (rep) {
		crac_report_print(rep, stderr);
		crac_report_free(rep);
	}
	return NULL;
}

int main(void)
{
	struct crac_resource_def d = { .name = "env-pause", .after_restore = after_restore };
	int rc;

	if (crac_register(NULL, &d, NULL) != 0 || crac_control_start() != 0) {
		fprintf(stderr, "env_pause: cannot register or start the control endpoint\n");
		return 2;
	}
	for (current_round = 1; current_round <= 2; current_round++) {
		pthread_t th;
		rc = 0;
		if (pthread_create(&th, NULL, round_thread, &rc) != 0)
			return 2;
		pthread_join(th, NULL);
		printf("round %d returned %d:", current_round, rc);
		print_state();
		if (rc != CRAC_RESTORED)
			return 1;
	}
	crac_control_stop();
	return 0;
}
