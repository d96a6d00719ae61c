/* SPDX-License-Identifier: MIT */
/*
 * ext_prog.c - a program for the external engine's tests
 * (tests/cli/engine_external*.bats). Run with CRAC_ENGINE=external.
 *
 *   ext_prog [--self] [--fail-before] [--slow-before MS]
 *
 * Registers two resources, alpha and beta, whose callbacks print one line
 * each (flushed at once):
 *   before NAME gen=G engine=E
 *   after NAME gen=G engine=E outcome=O unannounced=U id=UUID
 * then prints "ready PID" and waits for ever (the engine's threads do the
 * rest). --self: after "ready", calls crac_checkpoint_restore() itself and
 * prints "returned STATUS" and the report, if any, then "id UUID" with the
 * instance id crac_instance_uuid() gives now. --fail-before: alpha's
 * before_checkpoint fails with EBUSY. --slow-before MS: alpha's
 * before_checkpoint takes MS milliseconds (after its line is printed).
 */
#include <crac.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fail_before;
static long slow_before_ms;

static int before(const crac_event *ev, void *arg)
{
	printf("before %s gen=%llu engine=%s\n", (const char *)arg,
	       (unsigned long long)ev->generation, ev->engine);
	fflush(stdout);
	if (slow_before_ms && strcmp(arg, "alpha") == 0) {
		struct timespec ts = { .tv_sec = slow_before_ms / 1000,
				       .tv_nsec = slow_before_ms % 1000 * 1000000L };
		nanosleep(&ts, NULL);
	}
	if (fail_before && strcmp(arg, "alpha") == 0)
		return crac_fail(-EBUSY, "alpha refuses on purpose");
	return 0;
}

static int after(const crac_event *ev, void *arg)
{
	char uuid[37];
	int unannounced = ev->size > offsetof(crac_event, unannounced) ? ev->unannounced : -1;

	crac_instance_uuid(uuid);
	printf("after %s gen=%llu engine=%s outcome=%d unannounced=%d id=%s\n", (const char *)arg,
	       (unsigned long long)ev->generation, ev->engine, (int)ev->outcome, unannounced, uuid);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	int self = 0;
	char uuid[37];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--self") == 0)
			self = 1;
		else if (strcmp(argv[i], "--fail-before") == 0)
			fail_before = 1;
		else if (strcmp(argv[i], "--slow-before") == 0 && i + 1 < argc)
			slow_before_ms = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: ext_prog [--self] [--fail-before] [--slow-before MS]\n");
			return 2;
		}
	}
	static char alpha[] = "alpha", beta[] = "beta";
	struct crac_resource_def a = { .name = alpha, .before_checkpoint = before,
				       .after_restore = after, .arg = alpha };
	struct crac_resource_def b = { .name = beta, .before_checkpoint = before,
				       .after_restore = after, .arg = beta };
	if (crac_register(NULL, &a, NULL) < 0 || crac_register(NULL, &b, NULL) < 0)
		return 1;
	crac_instance_uuid(uuid);
	printf("ready %d id=%s\n", (int)getpid(), uuid);
	fflush(stdout);
	if (self) {
		crac_report *rep = NULL;
		int rc = crac_checkpoint_restore(NULL, &rep);
		printf("returned %d\n", rc);
		if (rep)
			crac_report_print(rep, stdout);
		crac_report_free(rep);
		crac_instance_uuid(uuid);
		printf("id %s\n", uuid);
		fflush(stdout);
	}
	for (;;)
		pause();
}
