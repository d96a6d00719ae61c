/* SPDX-License-Identifier: MIT */
/*
 * start_server.c - an unmodified service for the tests of `crac start`,
 * the warm-up triggers and systemd (tests/cli/start*.bats, triggers*.bats,
 * systemd*.bats). It knows nothing of crac.
 *
 *   start_server DIR [WARMUP_MS]
 *
 * Listens on TCP: the first socket of socket activation (LISTEN_FDS,
 * LISTEN_PID) if it is passed one, else 127.0.0.1 on $START_PORT (a free
 * port when unset), after the warm-up with $START_LISTEN_LATE=1; writes
 * the port to DIR/port. With $START_UNIX set (and no socket activation) it
 * listens on that Unix stream path instead (nothing removed there first:
 * a file there fails it) and writes the path to DIR/port. Each cold start appends a line to DIR/boots. Warms
 * up for WARMUP_MS (default 0), then sends READY=1 to $NOTIFY_SOCKET if
 * set, and answers every connection with one line:
 *     answer pid=PID boots=N served=K activated=A
 * (and " notify=VALUE" of NOTIFY_SOCKET with START_SHOW_NOTIFY set)
 * (PID: getpid() now; N: lines in DIR/boots when it started cold; K: the
 * connections it served, counting those before a checkpoint; A: 1 if the
 * listener came from socket activation). SIGTERM ends it (default action).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void notify(const char *msg)
{
	const char *p = getenv("NOTIFY_SOCKET");
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	if (!p || !*p || strlen(p) >= sizeof(a.sun_path))
		return;
	strcpy(a.sun_path, p);
	if (a.sun_path[0] == '@')
		a.sun_path[0] = 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&a,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(p))) < 0)
		perror("start_server: sd_notify");
	close(fd);
}

int main(int argc, char **argv)
{
	char path[4096], line[256];
	const char *lp = getenv("LISTEN_PID"), *lf = getenv("LISTEN_FDS");
	int lfd, boots = 0, activated = 0;
	long served = 0;
	FILE *f;

	if (argc < 2) {
		fprintf(stderr, "usage: start_server DIR [WARMUP_MS]\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/boots", argv[1]);
	if ((f = fopen(path, "a"))) {
		fprintf(f, "cold %d\n", (int)getpid());
		fclose(f);
	}
	if ((f = fopen(path, "r"))) {
		while (fgets(line, sizeof(line), f))
			boots++;
		fclose(f);
	}
	long warm = argc > 2 ? atol(argv[2]) : 0;
	struct timespec ts = { warm / 1000, (warm % 1000) * 1000000L };
	/* the warm-up: time spent before the service is worth a checkpoint */
	if (getenv("START_LISTEN_LATE"))
		nanosleep(&ts, NULL);
	if (lp && lf && atoi(lp) == (int)getpid() && atoi(lf) >= 1) {
		lfd = 3;
		activated = 1;
	} else if (getenv("START_UNIX")) {
		struct sockaddr_un u = { .sun_family = AF_UNIX };
		if (strlen(getenv("START_UNIX")) >= sizeof(u.sun_path)) {
			fprintf(stderr, "start_server: START_UNIX too long\n");
			return 1;
		}
		strcpy(u.sun_path, getenv("START_UNIX"));
		lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&u, sizeof(u)) < 0 || listen(lfd, 64) < 0) {
			perror("start_server: listen on START_UNIX");
			return 1;
		}
	} else {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int one = 1;
		a.sin_port = htons((unsigned short)atoi(getenv("START_PORT") ? getenv("START_PORT") : "0"));
		lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd >= 0)
			setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 64) < 0) {
			perror("start_server: listen");
			return 1;
		}
	}
	struct sockaddr_in got;
	socklen_t gl = sizeof(got);
	getsockname(lfd, (struct sockaddr *)&got, &gl);
	if (!getenv("START_LISTEN_LATE"))
		nanosleep(&ts, NULL);
	snprintf(path, sizeof(path), "%s/port", argv[1]);
	if ((f = fopen(path, "w"))) {
		if (got.sin_family == AF_UNIX)
			fprintf(f, "%s\n", getenv("START_UNIX"));
		else
			fprintf(f, "%d\n", ntohs(got.sin_port));
		fclose(f);
	}
	notify("READY=1\nSTATUS=warm");
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			perror("start_server: accept");
			return 1;
		}
		served++;
		int len = snprintf(line, sizeof(line), "answer pid=%d boots=%d served=%ld activated=%d", (int)getpid(),
				   boots, served, activated);
		if (getenv("START_SHOW_NOTIFY")) {   /* what NOTIFY_SOCKET holds now */
			const char *ns = getenv("NOTIFY_SOCKET");
			len += snprintf(line + len, sizeof(line) - (size_t)len, " notify=%s", ns ? ns : "(unset)");
		}
		len += snprintf(line + len, sizeof(line) - (size_t)len, "\n");
		if (write(c, line, (size_t)len) < 0)
			perror("start_server: write");
		close(c);
	}
}
