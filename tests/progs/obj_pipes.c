/* SPDX-License-Identifier: MIT */
/*
 * obj_pipes - pipes and FIFOs carried across an image restore.
 *
 *   obj_pipes DIR WORK [child | packet]
 *
 * Builds pipes whose ends are all in this process, and a FIFO WORK/fifo,
 * checkpoints into DIR (the original exits 0 there) and, in every restored
 * instance, checks each object and prints "ok NAME" or "FAIL: ..." lines
 * (exit 0 or 1):
 *   pipe      unread content, O_NONBLOCK on the read end, FD_CLOEXEC on the
 *             write end, then more data through it
 *   big       a 256 KiB pipe (F_SETPIPE_SZ kept) with 200000 unread bytes
 *   eof       write end closed: the content, then end of file
 *   epipe     read end closed: write fails with EPIPE
 *   reopened  a second read end opened through /proc/self/fd (its own
 *             status flags), same pipe
 *   fifo      a FIFO's unread content (exactly once), same inode, more data
 *             through it; WORK/fifo is made unless it exists
 * Refusals: "child" gives the read end of a pipe to a child process;
 * "packet" leaves content in a packet-mode (O_DIRECT) pipe. The checkpoint
 * then fails: the report is printed and the program exits 3.
 */
#include <crac.h>
#include "image_ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "obj_check.h"

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 7 + 3);
}

static ssize_t read_all(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: obj_pipes DIR WORK [child | packet]\n");
		return 2;
	}
	const char *mode = argc > 3 ? argv[3] : "";
	char fifo_path[4096];
	snprintf(fifo_path, sizeof(fifo_path), "%s/fifo", argv[2]);
	signal(SIGPIPE, SIG_IGN);

	/* pipe: content, flags */
	int p[2];
	if (pipe(p) < 0)
		return 1;
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	fcntl(p[1], F_SETFD, FD_CLOEXEC);
	if (write(p[1], "hello pipe\n", 11) != 11)
		return 1;

	/* big: a larger pipe, lots of content */
	int big[2];
	if (pipe2(big, O_NONBLOCK) < 0 || fcntl(big[0], F_SETPIPE_SZ, 262144) < 0)
		return 1;
	static char buf[300000];
	for (size_t i = 0; i < 200000; i++)
		buf[i] = (char)pattern(i);
	if (write(big[1], buf, 200000) != 200000)
		return 1;

	/* eof: the writer is gone */
	int eof[2];
	if (pipe(eof) < 0 || write(eof[1], "last words", 10) != 10)
		return 1;
	close(eof[1]);

	/* epipe: the reader is gone */
	int ep[2];
	if (pipe(ep) < 0)
		return 1;
	close(ep[0]);

	/* reopened: a second open file of the read end */
	int ro[2];
	char self[64];
	if (pipe(ro) < 0)
		return 1;
	snprintf(self, sizeof(self), "/proc/self/fd/%d", ro[0]);
	int ro2 = open(self, O_RDONLY | O_NONBLOCK);
	if (ro2 < 0 || write(ro[1], "shared", 6) != 6)
		return 1;

	/* fifo: both ends here, content unread */
	/* made here, or already there (a test keeps it open meanwhile) */
	if (mkfifo(fifo_path, 0600) < 0 && errno != EEXIST)
		return 1;
	int fr = open(fifo_path, O_RDONLY | O_NONBLOCK);
	int fw = open(fifo_path, O_WRONLY);
	if (fr < 0 || fw < 0 || write(fw, "fifo data", 9) != 9)
		return 1;
	struct stat fst;
	fstat(fr, &fst);

	pid_t child = -1;
	if (!strcmp(mode, "child")) {
		int c[2];
		if (pipe(c) < 0)
			return 1;
		child = fork();
		if (child == 0) {
			close(c[1]);
			char x;
			while (read(c[0], &x, 1) > 0)
				;
			_exit(0);
		}
		close(c[0]);   /* our write end's reader is the child */
	} else if (!strcmp(mode, "packet")) {
		int k[2];
		if (pipe2(k, O_DIRECT) < 0 || write(k[1], "packet", 6) != 6)
			return 1;
	}

	crac_report *rep = NULL;
	int rc = image_try(argv[1], 0, &rep);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	if (rc != CRAC_RESTORED) {
		printf("checkpoint refused: %d\n", rc);
		if (rep)
			crac_report_print(rep, stdout);
		return 3;
	}
	crac_report_free(rep);

	char got[64] = { 0 };
	ssize_t n;

	/* pipe */
	n = read(p[0], got, sizeof(got));
	CHECK("pipe content", n == 11 && !memcmp(got, "hello pipe\n", 11), "read %zd", n);
	CHECK("pipe flags", (fcntl(p[0], F_GETFL) & O_NONBLOCK) && !(fcntl(p[1], F_GETFL) & O_NONBLOCK) &&
		      fcntl(p[1], F_GETFD) == FD_CLOEXEC && fcntl(p[0], F_GETFD) == 0,
	      "read end flags %#x fd flags %d, write end %#x %d", fcntl(p[0], F_GETFL), fcntl(p[0], F_GETFD),
	      fcntl(p[1], F_GETFL), fcntl(p[1], F_GETFD));
	n = read(p[0], got, sizeof(got));
	CHECK("pipe empty", n < 0 && errno == EAGAIN, "read %zd", n);
	n = write(p[1], "again", 5) == 5 ? read(p[0], got, sizeof(got)) : -1;
	CHECK("pipe again", n == 5 && !memcmp(got, "again", 5), "read %zd", n);

	/* big */
	int sz = fcntl(big[0], F_GETPIPE_SZ);
	CHECK("big size", sz == 262144, "F_GETPIPE_SZ %d", sz);
	n = read_all(big[0], buf, sizeof(buf));
	int same = n == 200000;
	for (size_t i = 0; same && i < 200000; i++)
		same = (unsigned char)buf[i] == pattern(i);
	CHECK("big content", same, "read %zd bytes%s", n, n == 200000 ? ", not the same" : "");

	/* eof */
	n = read(eof[0], got, sizeof(got));
	ssize_t n2 = read(eof[0], got + 10, sizeof(got) - 10);
	CHECK("eof", n == 10 && !memcmp(got, "last words", 10) && n2 == 0, "read %zd then %zd", n, n2);

	/* epipe */
	n = write(ep[1], "x", 1);
	CHECK("epipe", n < 0 && errno == EPIPE, "write %zd (%s)", n, strerror(errno));

	/* reopened */
	n = read(ro2, got, sizeof(got));
	CHECK("reopened content", n == 6 && !memcmp(got, "shared", 6), "read %zd", n);
	CHECK("reopened flags", (fcntl(ro2, F_GETFL) & O_NONBLOCK) && !(fcntl(ro[0], F_GETFL) & O_NONBLOCK),
	      "flags %#x and %#x", fcntl(ro2, F_GETFL), fcntl(ro[0], F_GETFL));
	n = write(ro[1], "x", 1) == 1 ? read(ro[0], got, 1) : -1;
	CHECK("reopened same pipe", n == 1 && got[0] == 'x', "read %zd", n);

	/* fifo */
	struct stat now;
	fstat(fr, &now);
	CHECK("fifo same", now.st_ino == fst.st_ino && S_ISFIFO(now.st_mode), "inode %lu, was %lu",
	      (unsigned long)now.st_ino, (unsigned long)fst.st_ino);
	memset(got, 0, sizeof(got));
	n = read(fr, got, sizeof(got));
	CHECK("fifo content", n == 9 && !memcmp(got, "fifo data", 9), "read %zd: %.20s", n, got);
	n = write(fw, "more", 4) == 4 ? read(fr, got, sizeof(got)) : -1;
	CHECK("fifo again", n == 4 && !memcmp(got, "more", 4), "read %zd", n);
	CHECK("fifo flags", (fcntl(fr, F_GETFL) & O_NONBLOCK) && !(fcntl(fw, F_GETFL) & O_NONBLOCK) &&
		      (fcntl(fw, F_GETFL) & O_ACCMODE) == O_WRONLY,
	      "flags %#x and %#x", fcntl(fr, F_GETFL), fcntl(fw, F_GETFL));

	printf("%s\n", fails ? "restored with failures" : "restored ok");
	return fails ? 1 : 0;
}
