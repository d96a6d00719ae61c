/* SPDX-License-Identifier: MIT */
/*
 * fork_late - a program that forks, or creates a POSIX timer, while a
 * checkpoint runs: after the safety checks looked (they saw neither),
 * before its threads are stopped (the window the test widens with
 * CRAC_TEST_FREEZE_DELAY_MS).
 *
 *   fork_late child|timer FILE
 *
 * Starts its control endpoint, prints "ready", waits until FILE exists,
 * then forks a child that sleeps 60 s (child) or creates a POSIX timer
 * (timer), prints "done" and waits. A restored copy prints "restored" and
 * exits 0.
 */
#include "crac.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "child") && strcmp(argv[1], "timer"))) {
		fprintf(stderr, "usage: fork_late child|timer FILE\n");
		return 2;
	}
	int rc = crac_control_start();
	if (rc < 0) {
		fprintf(stderr, "fork_late: crac_control_start: %s\n", strerror(-rc));
		return 1;
	}
	pid_t orig = getpid();
	printf("ready pid=%d\n", (int)orig);
	fflush(stdout);
	while (access(argv[2], F_OK) != 0)
		usleep(2000);
	if (!strcmp(argv[1], "child")) {
		pid_t c = fork();
		if (c == 0) {
			sleep(60);
			_exit(0);
		}
	} else {
		timer_t t;
		/* aimed at this thread: a timer the image engine cannot create
		 * again (one at the process it carries, late or not) */
		struct sigevent ev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR2 };
		ev._sigev_un._tid = gettid();
		signal(SIGUSR2, SIG_IGN);
		if (timer_create(CLOCK_MONOTONIC, &ev, &t) < 0) {
			perror("timer_create");
			return 1;
		}
	}
	printf("done\n");
	fflush(stdout);
	for (int k = 0; k < 6000 && getpid() == orig; k++)
		usleep(10000);
	if (getpid() != orig) {
		printf("restored\n");
		return 0;
	}
	return 1;
}
