/* SPDX-License-Identifier: MIT */
/*
 * sigchld_ign - runs a program with SIGCHLD ignored (SIG_IGN survives
 * execve(2)): its children are reaped by the kernel as they exit, and
 * their wait status is lost to anyone waiting for them the ordinary way.
 *
 *   sigchld_ign PROG [ARGS...]
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: sigchld_ign PROG [ARGS...]\n");
		return 2;
	}
	signal(SIGCHLD, SIG_IGN);
	execv(argv[1], argv + 1);
	perror(argv[1]);
	return 127;
}
