/* SPDX-License-Identifier: MIT */
/*
 * criu_late - checkpoints itself with the criu engine on its main thread
 * (keep-running: the original prints its result and exits 0); every
 * restored instance goes on for SECONDS seconds with no signal blocked,
 * printing "alive N" every 100 ms, then exits 0: what happens to it after
 * the round shows (a signal of crac's arriving late must not kill it).
 *
 *   criu_late DIR SECONDS
 *
 * Prints "result R" (CRAC_CONTINUED 1, CRAC_RESTORED 2) after the call.
 */
#include <crac.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: criu_late DIR SECONDS\n");
		return 2;
	}
	struct crac_options o;
	crac_options_init(&o);
	o.engine = "criu";
	o.image_dir = argv[1];
	o.flags = CRAC_KEEP_RUNNING;
	crac_report *rep = NULL;
	int rc = crac_checkpoint_restore(&o, &rep);
	printf("result %d\n", rc);
	if (rep)
		crac_report_print(rep, stdout);
	crac_report_free(rep);
	fflush(stdout);
	if (rc != CRAC_RESTORED)
		return rc == CRAC_CONTINUED ? 0 : 1;
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int n = 0; n < atoi(argv[2]) * 10; n++) {
		struct timespec ts = { 0, 100000000L };
		nanosleep(&ts, NULL);
		printf("alive %d\n", n);
		fflush(stdout);
	}
	return 0;
}
