/* SPDX-License-Identifier: MIT */
/*
 * sigfd_epoll - an unmodified program (no libcrac call) that reads its
 * signals through a signalfd in an epoll loop: the signals pending at the
 * checkpoint must be read through the restored signalfd
 * (tests/cli/image_pending_signals.bats).
 *
 *   sigfd_epoll [et]
 *       blocks SIGUSR2, SIGTERM, SIGCHLD and SIGRTMIN, reads them through a
 *       blocking signalfd watched by an epoll (edge-triggered with "et"),
 *       queues to itself SIGTERM, SIGCHLD, SIGUSR2 (kill) and SIGRTMIN with
 *       values 11 then 12, asks its parent (`crac run --checkpoint-on
 *       SIGUSR1`) for the checkpoint and sleeps until it runs under another
 *       pid. Then it waits in epoll_wait (5 s at most) and reads the
 *       signalfd until nothing of the set is pending, printing what it read
 *       in order: "restored: USR2 TERM CHLD RTMIN/11 RTMIN/12" (the
 *       kernel's order: standard signals by number, then real-time ones),
 *       or "restored: FAIL ..." (exit 1).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

static const char *name(int sig)
{
	return sig == SIGUSR2 ? "USR2" : sig == SIGTERM ? "TERM" : sig == SIGCHLD ? "CHLD" : sig == SIGRTMIN ? "RTMIN" : "?";
}

int main(int argc, char **argv)
{
	bool et = argc == 2 && !strcmp(argv[1], "et");
	sigset_t set;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGRTMIN);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC), ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN | (et ? EPOLLET : 0), .data.fd = sfd };
	if (sfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) < 0) {
		perror("signalfd/epoll");
		return 2;
	}
	int pid = getpid();
	kill(pid, SIGTERM);
	kill(pid, SIGCHLD);
	kill(pid, SIGUSR2);
	for (int v = 11; v <= 12; v++)
		sigqueue(pid, SIGRTMIN, (union sigval){ .sival_int = v });

	printf("ready\n");
	kill(getppid(), SIGUSR1);
	for (int i = 0; getpid() == pid && i < 30000; i++) {
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
	}
	if (getpid() == pid) {
		printf("original: FAIL not checkpointed\n");
		return 1;
	}

	char line[256] = "";
	struct epoll_event got;
	int n = epoll_wait(ep, &got, 1, 5000);
	if (n != 1 || got.data.fd != sfd) {
		printf("restored: FAIL epoll_wait returned %d (%s)\n", n, n < 0 ? strerror(errno) : "no event");
		return 1;
	}
	int fl = fcntl(sfd, F_GETFL);
	if (fl < 0 || (fl & O_NONBLOCK)) {
		printf("restored: FAIL the signalfd's flags 0x%x (it was blocking)\n", fl);
		return 1;
	}
	for (;;) {
		sigset_t pend;
		sigpending(&pend);
		bool any = false;
		for (int s = 1; s < NSIG; s++)
			any |= sigismember(&set, s) && sigismember(&pend, s);
		if (!any)
			break;
		struct signalfd_siginfo si;
		if (read(sfd, &si, sizeof(si)) != sizeof(si)) {
			printf("restored: FAIL read: %s\n", strerror(errno));
			return 1;
		}
		size_t k = strlen(line);
		if ((int)si.ssi_signo == SIGRTMIN)
			snprintf(line + k, sizeof(line) - k, " RTMIN/%d", si.ssi_int);
		else
			snprintf(line + k, sizeof(line) - k, " %s", name((int)si.ssi_signo));
		if ((int)si.ssi_pid != pid && (int)si.ssi_signo != SIGRTMIN) {
			printf("restored: FAIL %s from pid %u, not %d\n", name((int)si.ssi_signo), si.ssi_pid, pid);
			return 1;
		}
	}
	printf("restored:%s\n", line);
	return 0;
}
