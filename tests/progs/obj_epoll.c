/* SPDX-License-Identifier: MIT */
/*
 * obj_epoll - an epoll instance carried across an image restore
 * (src/objects/epoll.c).
 *
 *   obj_epoll DIR [MODE]
 *
 * Default mode: an epoll instance (EPOLL_CLOEXEC) watches a TCP listener
 * on 127.0.0.1 (SO_REUSEADDR, EPOLLIN, data 0xfeedface12345678), an
 * eventfd (EPOLLIN | EPOLLET, data 7) and the read end of a pipe
 * (EPOLLIN | EPOLLRDHUP, data 9); a second epoll instance watches the
 * first one (data 11), and an EPOLLONESHOT registration of a second
 * eventfd (data 13) has already fired. Checkpoints into DIR (the original
 * exits 0 there) and, in every restored instance, prints "ok NAME" or
 * "FAIL: ..." lines, then "restored ok":
 *   quiet      nothing is ready right after the restore
 *   flags      FD_CLOEXEC of the epoll descriptor kept
 *   listener   a client connects: epoll_wait reports the listener with its
 *              data; accept works
 *   eventfd    a write to the eventfd is reported with its data, once (ET)
 *   pipe       a write to the pipe is reported with its data
 *   nested     the outer instance reports the inner one
 *   oneshot    the fired one-shot registration stays quiet
 * Refusal modes (the checkpoint is refused: report printed, exit 3):
 *   reused     a watched descriptor number closed and reused by another
 *              socket while the watched file stays open (a dup)
 *   omitted    a watched listener that a policy leaves out
 *   closed     a watched number closed while the watched file stays open
 *              (a dup): the registration could not be made again
 */
#include <crac.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "obj_check.h"

#define LISTENER_DATA 0xfeedface12345678ull

static int tcp_listener(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (s < 0 || bind(s, (void *)&a, sizeof(a)) < 0 || listen(s, 16) < 0) {
		perror("listener");
		exit(1);
	}
	return s;
}

static int port_of(int s)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);
	getsockname(s, (void *)&a, &l);
	return ntohs(a.sin_port);
}

static void add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		perror("epoll_ctl");
		exit(1);
	}
}

/* One wait: how many events, the first one's data. */
static int wait1(int ep, int ms, uint64_t *data)
{
	struct epoll_event ev[4];
	int n = epoll_wait(ep, ev, 4, ms);
	*data = n > 0 ? ev[0].data.u64 : 0;
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: obj_epoll DIR [reused | omitted]\n");
		return 2;
	}
	const char *mode = argc > 2 ? argv[2] : "";
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	int ep = epoll_create1(EPOLL_CLOEXEC);
	int l = tcp_listener();
	add(ep, l, EPOLLIN, LISTENER_DATA);

	if (!strcmp(mode, "reused")) {
		/* watch a socket, keep its file open through a dup, put another socket at its number */
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		add(ep, s, EPOLLIN, 5);
		int keep = dup(s);
		int other = socket(AF_INET, SOCK_DGRAM, 0);
		dup2(other, s);
		close(other);
		(void)keep;
		checkpoint(argv[1], NULL);
		printf("FAIL: restored\n");
		return 1;
	}
	if (!strcmp(mode, "closed")) {
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		add(ep, s, EPOLLIN, 5);
		int keep = fcntl(s, F_DUPFD, 100);
		close(s);
		(void)keep;
		checkpoint(argv[1], NULL);
		printf("FAIL: restored\n");
		return 1;
	}
	if (!strcmp(mode, "omitted")) {
		checkpoint(argv[1], "tcp 127.0.0.1:* close");
		printf("FAIL: restored\n");
		return 1;
	}

	int efd = eventfd(0, EFD_NONBLOCK);
	add(ep, efd, EPOLLIN | EPOLLET, 7);
	int p[2];
	if (pipe2(p, O_NONBLOCK) < 0)
		return 1;
	add(ep, p[0], EPOLLIN | EPOLLRDHUP, 9);
	int outer = epoll_create1(0);
	add(outer, ep, EPOLLIN, 11);
	int once = eventfd(0, EFD_NONBLOCK);
	add(ep, once, EPOLLIN | EPOLLONESHOT, 13);
	uint64_t one = 1, data;
	if (write(once, &one, 8) != 8 || wait1(ep, 1000, &data) != 1 || data != 13 || read(once, &one, 8) != 8) {
		printf("one-shot registration did not fire\n");
		return 1;
	}
	int port = port_of(l);
	printf("port %d\n", port);

	checkpoint(argv[1], NULL);

	int n = wait1(ep, 0, &data);
	CHECK("quiet", n == 0, "%d events, first data %#llx", n, (unsigned long long)data);
	CHECK("flags", fcntl(ep, F_GETFD) == FD_CLOEXEC && fcntl(outer, F_GETFD) == 0, "fd flags %d %d",
	      fcntl(ep, F_GETFD), fcntl(outer, F_GETFD));

	/* listener */
	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int ok = connect(c, (void *)&a, sizeof(a)) == 0;
	n = wait1(ep, 2000, &data);
	int acc = n == 1 && data == LISTENER_DATA ? accept(l, NULL, NULL) : -1;
	CHECK("listener", ok && n == 1 && data == LISTENER_DATA && acc >= 0, "connect %d, %d events, data %#llx, accept %d",
	      ok, n, (unsigned long long)data, acc);
	if (acc >= 0)
		close(acc);
	close(c);

	/* nested: the outer instance sees the inner one once something is ready */
	if (write(efd, &one, 8) != 8)
		return 1;
	n = wait1(outer, 2000, &data);
	CHECK("nested", n == 1 && data == 11, "%d events, data %#llx", n, (unsigned long long)data);

	/* eventfd, edge-triggered: reported once */
	n = wait1(ep, 2000, &data);
	uint64_t again;
	int m = wait1(ep, 0, &again);
	CHECK("eventfd", n == 1 && data == 7 && m == 0, "%d events, data %#llx; then %d", n, (unsigned long long)data, m);
	if (read(efd, &one, 8) != 8)
		return 1;

	/* pipe */
	if (write(p[1], "x", 1) != 1)
		return 1;
	n = wait1(ep, 2000, &data);
	CHECK("pipe", n == 1 && data == 9, "%d events, data %#llx", n, (unsigned long long)data);
	char ch;
	if (read(p[0], &ch, 1) != 1)
		return 1;

	/* the fired one-shot registration stays disabled */
	one = 1;
	if (write(once, &one, 8) != 8)
		return 1;
	n = wait1(ep, 100, &data);
	CHECK("oneshot", n == 0, "%d events, data %#llx", n, (unsigned long long)data);

	if (fails)
		return 1;
	printf("restored ok\n");
	return 0;
}
