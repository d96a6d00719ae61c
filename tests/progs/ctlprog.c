/* SPDX-License-Identifier: MIT */
/*
 * ctlprog - helper for tests/cli/{checkpoint,pause,control_uid}.bats.
 *
 * Registers resources and prints every callback on stdout, one line each:
 *     before NAME gen=G engine=E
 *     after NAME gen=G engine=E outcome=O argc=N argv=a,b env=K=V,K2=V2
 * Resources (registration order): "alpha", "beta" in the global context and
 * a context "svc" holding "db"; so before: svc/db beta alpha, after: alpha
 * beta svc/db.
 *
 * Options:
 *   --control          start the control endpoint (else only if CRAC_CONTROL=1)
 *   --fail-before NAME that resource (NAME as printed: alpha, beta, svc/db)'s before_checkpoint fails with -EBUSY
 *                      and the message "NAME is busy (test)"
 *   --fail-after NAME  that resource's after_restore fails with -ENOTCONN
 *                      and the message "NAME cannot reconnect (test)"
 *   --slow NAME MS     that resource's before_checkpoint sleeps MS milliseconds
 *   --self ENGINE      after start-up, call crac_checkpoint_restore() itself
 *                      with ENGINE on the main thread and print "result=R"
 *                      (R: the return value) and the report, if any
 *   --deadline MS      --self's checkpoint deadline (crac_options.deadline_ms)
 *   --exit-before NAME CODE  that resource's before_checkpoint ends the process:
 *                      _exit(CODE), or with CODE < 0 kill(getpid(), -CODE)
 *   --exit-after NAME CODE   the same in its after_restore (the image, if
 *                      any, is in place by then; the answer not sent yet)
 * Prints "ready pid=PID" once set up (after --self's "checkpointing" line if
 * any: "checkpointing" is printed just before the call), then waits for
 * SIGTERM/SIGINT, stops the endpoint and exits 0.
 */
#include "crac.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *fail_before, *fail_after, *slow_name, *exit_name, *exit_after_name;
static int slow_ms, exit_code;

static int on_before(const crac_event *ev, void *arg)
{
	const char *name = arg;
	printf("before %s gen=%llu engine=%s\n", name, (unsigned long long)ev->generation,
	       ev->engine ? ev->engine : "(null)");
	fflush(stdout);
	if (slow_name && strcmp(slow_name, name) == 0) {
		struct timespec ts = { slow_ms / 1000, (long)(slow_ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	if (exit_name && strcmp(exit_name, name) == 0) {
		if (exit_code < 0)
			kill(getpid(), -exit_code);
		_exit(exit_code);
	}
	if (fail_before && strcmp(fail_before, name) == 0)
		return crac_fail(-EBUSY, "%s is busy (test)", name);
	return 0;
}

static int on_after(const crac_event *ev, void *arg)
{
	const char *name = arg;
	printf("after %s gen=%llu engine=%s outcome=%d argc=%d argv=", name,
	       (unsigned long long)ev->generation, ev->engine ? ev->engine : "(null)",
	       (int)ev->outcome, ev->argc);
	for (int i = 0; ev->argv && i < ev->argc; i++)
		printf("%s%s", i ? "," : "", ev->argv[i]);
	printf(" env=");
	for (int i = 0; ev->envp && ev->envp[i]; i++)
		printf("%s%s", i ? "," : "", ev->envp[i]);
	printf("\n");
	fflush(stdout);
	if (exit_after_name && strcmp(exit_after_name, name) == 0) {
		if (exit_code < 0)
			kill(getpid(), -exit_code);
		_exit(exit_code);
	}
	if (fail_after && strcmp(fail_after, name) == 0)
		return crac_fail(-ENOTCONN, "%s cannot reconnect (test)", name);
	return 0;
}

static void reg(crac_context *ctx, const char *name, const char *path)
{
	struct crac_resource_def d = {
		.name = name, .before_checkpoint = on_before, .after_restore = on_after,
		.arg = (void *)path,
	};
	int rc = crac_register(ctx, &d, NULL);
	if (rc < 0) {
		fprintf(stderr, "ctlprog: register %s: %s\n", name, strerror(-rc));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	int control = 0;
	const char *self_engine = NULL;
	long self_deadline_ms = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--control"))
			control = 1;
		else if (!strcmp(argv[i], "--fail-before") && i + 1 < argc)
			fail_before = argv[++i];
		else if (!strcmp(argv[i], "--fail-after") && i + 1 < argc)
			fail_after = argv[++i];
		else if (!strcmp(argv[i], "--slow") && i + 2 < argc) {
			slow_name = argv[++i];
			slow_ms = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--self") && i + 1 < argc)
			self_engine = argv[++i];
		else if (!strcmp(argv[i], "--exit-before") && i + 2 < argc) {
			exit_name = argv[++i];
			exit_code = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--exit-after") && i + 2 < argc) {
			exit_after_name = argv[++i];
			exit_code = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--deadline") && i + 1 < argc)
			self_deadline_ms = atol(argv[++i]);
		else {
			fprintf(stderr, "ctlprog: unknown argument %s\n", argv[i]);
			return 2;
		}
	}

	/* every thread (the endpoint's too) inherits the blocked mask, so only
	 * sigwait below sees SIGTERM/SIGINT */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	crac_context *svc = NULL;
	reg(NULL, "alpha", "alpha");
	reg(NULL, "beta", "beta");
	if (crac_context_create(NULL, "svc", CRAC_PRIO_NORMAL, &svc) < 0)
		return 1;
	reg(svc, "db", "svc/db");

	if (control) {
		int rc = crac_control_start();
		if (rc < 0) {
			fprintf(stderr, "ctlprog: crac_control_start: %s\n", strerror(-rc));
			return 1;
		}
	}

	if (self_engine) {
		struct crac_options o;
		crac_report *rep = NULL;
		crac_options_init(&o);
		o.engine = self_engine;
		if (self_deadline_ms)
			o.deadline_ms = self_deadline_ms;
		printf("checkpointing\n");
		fflush(stdout);
		int rc = crac_checkpoint_restore(&o, &rep);
		printf("result=%d\n", rc);
		if (rep)
			crac_report_print(rep, stdout);
		fflush(stdout);
		crac_report_free(rep);
	}

	printf("ready pid=%d\n", (int)getpid());
	fflush(stdout);
	int sig;
	sigwait(&set, &sig);
	crac_control_stop();
	printf("exiting\n");
	fflush(stdout);
	return 0;
}
