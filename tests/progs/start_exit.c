/* SPDX-License-Identifier: MIT */
/*
 * start_exit.c - a program for tests/cli/start_review.bats (crac start).
 *
 *   start_exit DIR MODE [MB]
 *
 * Each cold start appends a line to DIR/boots; MB MiB of memory are
 * dirtied (a slower restore); then, by MODE:
 *   exit  - runs until its environment has START_EXIT_NOW (a restore
 *           with it set: crac start hands its environment to the restored
 *           program), then exits 7 at once: before anyone can have asked
 *           it anything;
 *   wait  - sleeps until a signal ends it (default actions).
 * It knows nothing of crac.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char path[4096];
	FILE *f;

	if (argc < 3) {
		fprintf(stderr, "usage: start_exit DIR exit|wait [MB]\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/boots", argv[1]);
	if ((f = fopen(path, "a"))) {
		fprintf(f, "boot %d\n", (int)getpid());
		fclose(f);
	}
	size_t mb = argc > 3 ? (size_t)atol(argv[3]) : 0;
	if (mb) {
		char *m = malloc(mb << 20);
		if (m)
			for (size_t i = 0; i < mb << 20; i += 4096)
				m[i] = (char)(i / 4096 + 1);
	}
	if (!strcmp(argv[2], "exit")) {
		for (;;) {
			if (getenv("START_EXIT_NOW"))
				_exit(7);
			sched_yield();
		}
	}
	for (;;)
		pause();
}
