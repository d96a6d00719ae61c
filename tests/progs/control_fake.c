/* SPDX-License-Identifier: MIT */
/*
 * control_fake - a fake control endpoint, for tests/cli/control_trust.bats.
 *
 *     control_fake DIR PID|self LINE...
 *
 * Listens on DIR/PID.sock (DIR is created 0700 if missing; "self" means our
 * own pid, so that the client's peer check passes and only what we answer
 * is tested). To every connection it answers each LINE (as is: the test
 * puts escape sequences in them) then "STATUS 0", and logs on stdout:
 *     ready pid=OURPID
 *     request <the request line>       (for every request received)
 * Runs until killed. With CONTROL_FAKE_NO_STATUS=1 in its environment it
 * closes each connection without the STATUS line (a refusal); with
 * CONTROL_FAKE_HANG=1 it answers nothing more after the lines and keeps the
 * first connection open until killed (a checkpoint that takes for ever, of
 * a libcrac that sends no progress records).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void put(int fd, const char *s)
{
	size_t len = strlen(s);

	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int lfd, pid;

	if (argc < 3) {
		fprintf(stderr, "usage: control_fake DIR PID|self LINE...\n");
		return 2;
	}
	pid = strcmp(argv[2], "self") ? atoi(argv[2]) : (int)getpid();
	if (mkdir(argv[1], 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "control_fake: mkdir %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (snprintf(a.sun_path, sizeof(a.sun_path), "%s/%d.sock", argv[1], pid) >= (int)sizeof(a.sun_path)) {
		fprintf(stderr, "control_fake: %s: path too long\n", argv[1]);
		return 1;
	}
	unlink(a.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 8) < 0) {
		fprintf(stderr, "control_fake: %s: %s\n", a.sun_path, strerror(errno));
		return 1;
	}
	chmod(a.sun_path, 0600);
	printf("ready pid=%d\n", (int)getpid());
	fflush(stdout);
	for (;;) {
		char req[4096];
		ssize_t n;
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			continue;
		/* the request, if the client sends one (a careful client does not) */
		struct timeval tv = { .tv_sec = 2 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		n = recv(fd, req, sizeof(req) - 1, 0);
		if (n > 0) {
			req[n] = 0;
			req[strcspn(req, "\n")] = 0;
			printf("request %s\n", req);
			fflush(stdout);
		}
		for (int i = 3; i < argc; i++) {
			put(fd, argv[i]);
			put(fd, "\n");
		}
		while (getenv("CONTROL_FAKE_HANG"))
			pause();
		if (!getenv("CONTROL_FAKE_NO_STATUS"))
			put(fd, "STATUS 0\n");
		close(fd);
	}
}
