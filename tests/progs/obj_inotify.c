/* SPDX-License-Identifier: MIT */
/*
 * obj_inotify - inotify instances carried across an image restore.
 *
 *   obj_inotify DIR WORK [pending | sparse | proc]
 *
 * In WORK (a directory of the test's) makes d/, d/f and other, and two
 * inotify instances:
 *   fd A  IN_NONBLOCK | IN_CLOEXEC, watch numbers with gaps (watches
 *         removed before the checkpoint): wd 2 on d (IN_CREATE |
 *         IN_DELETE), wd 4 on d/f (IN_MODIFY | IN_CLOSE_WRITE, with
 *         IN_EXCL_UNLINK), wd 5 on other (IN_ATTRIB | IN_ONESHOT)
 *   fd B  blocking, no close-on-exec: wd 1 on d/f (IN_OPEN)
 * A is registered in an epoll instance and duplicated.
 * then checkpoints into DIR (the original exits 0 there) and, in every
 * restored instance, checks and prints "ok NAME" or "FAIL: ..." lines
 * (exit 0 or 1): the same numbers, masks and flags in fdinfo; events
 * after the restore come with the same wd numbers (a file created in d, a
 * write to d/f, a chmod of other: its one-shot watch then goes; epoll
 * reports A ready with its data; the event is read through A's duplicate); a new
 * watch gets the number after the highest; B reports the open. It undoes
 * what it did in WORK, so that the image restores again.
 * Refusals (the report is printed and the program exits 3): "pending"
 * leaves an unread event on A; "sparse" makes B's next watch number 65539
 * (watches added and removed), with 2 watches left; "proc" has B watch
 * /proc/self/status (wd 2), whose file system opens no file by handle.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "obj_check.h"

static char work[512];

static const char *at(const char *name)
{
	static char buf[4][1024];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", work, name);
	return buf[k];
}

/* The watch lines of fdinfo: "wd:HEX ... mask:HEX" as "wd=N mask=HEX;" */
static void watches(int fd, char *out, size_t cap)
{
	char path[64], line[1024];
	size_t len = 0;

	out[0] = 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned wd, mask;
		char *w = strstr(line, "wd:"), *m = strstr(line, " mask:");
		if (strncmp(line, "inotify ", 8) || !w || !m || sscanf(w, "wd:%x", &wd) != 1 ||
		    sscanf(m, " mask:%x", &mask) != 1)
			continue;
		len += (size_t)snprintf(out + len, cap - len, "wd=%u mask=%x;", wd, mask);
		if (len >= cap)
			break;
	}
	fclose(f);
}

/* Drops whatever an instance holds (IN_IGNORED of removed watches); never
 * blocks. */
static void drain(int fd)
{
	char buf[4096];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	while (poll(&p, 1, 0) == 1 && read(fd, buf, sizeof(buf)) > 0)
		;
}

/* One event within 2 s: 0, or -1. */
static int next_event(int fd, struct inotify_event *ev, char *name, size_t cap)
{
	static char buf[4096] __attribute__((aligned(8)));
	static ssize_t have, off;

	if (off >= have) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 2000) != 1)
			return -1;
		have = read(fd, buf, sizeof(buf));
		off = 0;
		if (have <= 0)
			return -1;
	}
	memcpy(ev, buf + off, sizeof(*ev));
	snprintf(name, cap, "%s", ev->len ? buf + off + sizeof(*ev) : "");
	off += (ssize_t)(sizeof(*ev) + ev->len);
	return 0;
}

static int touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	return fd < 0 ? -1 : close(fd);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: obj_inotify DIR WORK [pending | sparse | proc]\n");
		return 2;
	}
	const char *mode = argc > 3 ? argv[3] : "";
	snprintf(work, sizeof(work), "%s", argv[2]);
	setvbuf(stdout, NULL, _IOLBF, 0);

	mkdir(at("d"), 0755);
	if (touch(at("d/f")) < 0 || touch(at("other")) < 0) {
		perror("setup");
		return 2;
	}
	chmod(at("other"), 0644);
	int a = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	int b = inotify_init();
	if (a < 0 || b < 0) {
		perror("inotify_init");
		return 2;
	}
	/* numbers with gaps: 1 and 3 are watches removed again */
	int w1 = inotify_add_watch(a, at("other"), IN_ATTRIB);
	int wd_dir = inotify_add_watch(a, at("d"), IN_CREATE | IN_DELETE);
	inotify_rm_watch(a, w1);
	int w3 = inotify_add_watch(a, at("other"), IN_ATTRIB);
	inotify_rm_watch(a, w3);
	int wd_file = inotify_add_watch(a, at("d/f"), IN_MODIFY | IN_CLOSE_WRITE | IN_EXCL_UNLINK);
	int wd_one = inotify_add_watch(a, at("other"), IN_ATTRIB | IN_ONESHOT);
	int wd_b = inotify_add_watch(b, at("d/f"), IN_OPEN);
	drain(a);
	if (wd_dir != 2 || wd_file != 4 || wd_one != 5 || wd_b != 1) {
		printf("setup: unexpected watch numbers %d %d %d %d\n", wd_dir, wd_file, wd_one, wd_b);
		return 2;
	}
	/* A registered in an epoll instance, and duplicated */
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event reg = { .events = EPOLLIN, .data.u64 = 0xabc };
	int a2 = dup(a);
	if (ep < 0 || a2 < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, a, &reg) < 0) {
		perror("epoll, dup");
		return 2;
	}
	if (!strcmp(mode, "pending"))
		touch(at("d/unread"));   /* an IN_CREATE left in A's queue */
	if (!strcmp(mode, "proc"))
		inotify_add_watch(b, "/proc/self/status", IN_MODIFY);   /* wd 2 */
	if (!strcmp(mode, "sparse")) {
		/* 65537 numbers used and given back: more than a restore skips */
		for (int k = 0; k < 65537; k++) {
			int t = inotify_add_watch(b, at("other"), IN_ATTRIB);
			inotify_rm_watch(b, t);
			if (k % 1024 == 0)
				drain(b);
		}
		drain(b);
		inotify_add_watch(b, at("d"), IN_CREATE);
	}

	char before_a[1024], before_b[1024], after[1024];
	watches(a, before_a, sizeof(before_a));
	watches(b, before_b, sizeof(before_b));

	checkpoint(argv[1], NULL);

	printf("restored\n");
	watches(a, after, sizeof(after));
	CHECK("inotify watches", !strcmp(after, before_a), "A has \"%s\", had \"%s\"", after, before_a);
	watches(b, after, sizeof(after));
	CHECK("inotify second instance", !strcmp(after, before_b), "B has \"%s\", had \"%s\"", after, before_b);
	int fl = fcntl(a, F_GETFL), fdfl = fcntl(a, F_GETFD);
	CHECK("inotify flags", fl >= 0 && (fl & O_NONBLOCK) && (fdfl & FD_CLOEXEC), "A: F_GETFL %#x F_GETFD %#x",
	      fl, fdfl);
	fl = fcntl(b, F_GETFL), fdfl = fcntl(b, F_GETFD);
	CHECK("inotify blocking", fl >= 0 && !(fl & O_NONBLOCK) && !(fdfl & FD_CLOEXEC), "B: F_GETFL %#x F_GETFD %#x",
	      fl, fdfl);
	int pending = -1;
	CHECK("inotify nothing pending", ioctl(a, FIONREAD, &pending) == 0 && pending == 0, "%d bytes pending", pending);

	struct inotify_event ev;
	char name[256];
	touch(at("d/new"));
	struct epoll_event out = { 0 };
	int ready = epoll_wait(ep, &out, 1, 2000);
	CHECK("inotify in epoll", ready == 1 && out.data.u64 == 0xabc && (out.events & EPOLLIN),
	      "epoll_wait %d, data %#llx", ready, (unsigned long long)out.data.u64);
	/* read through the duplicate: the same instance */
	int got = next_event(a2, &ev, name, sizeof(name));
	CHECK("inotify create event", !got && ev.wd == 2 && (ev.mask & IN_CREATE) && !strcmp(name, "new"),
	      "got %d: wd %d mask %#x name \"%s\"", got, ev.wd, ev.mask, name);
	int fd = open(at("d/f"), O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "x", 1) != 1)
			perror("write");
		close(fd);
	}
	got = next_event(a, &ev, name, sizeof(name));
	CHECK("inotify modify event", !got && ev.wd == 4 && ev.mask == IN_MODIFY, "got %d: wd %d mask %#x", got,
	      ev.wd, ev.mask);
	got = next_event(a, &ev, name, sizeof(name));
	CHECK("inotify close_write event", !got && ev.wd == 4 && ev.mask == IN_CLOSE_WRITE, "got %d: wd %d mask %#x",
	      got, ev.wd, ev.mask);
	chmod(at("other"), 0600);
	got = next_event(a, &ev, name, sizeof(name));
	CHECK("inotify oneshot event", !got && ev.wd == 5 && ev.mask == IN_ATTRIB, "got %d: wd %d mask %#x", got,
	      ev.wd, ev.mask);
	got = next_event(a, &ev, name, sizeof(name));
	CHECK("inotify oneshot gone", !got && ev.wd == 5 && ev.mask == IN_IGNORED, "got %d: wd %d mask %#x", got,
	      ev.wd, ev.mask);
	int w6 = inotify_add_watch(a, at("d/new"), IN_DELETE_SELF);
	CHECK("inotify new watch number", w6 == 6, "got wd %d", w6);
	struct pollfd p = { .fd = b, .events = POLLIN };
	static char bbuf[512] __attribute__((aligned(8)));
	got = poll(&p, 1, 2000) == 1 && read(b, bbuf, sizeof(bbuf)) >= (ssize_t)sizeof(ev) ? 0 : -1;
	memcpy(&ev, bbuf, sizeof(ev));
	CHECK("inotify open event", !got && ev.wd == 1 && ev.mask == IN_OPEN, "got %d: wd %d mask %#x", got, ev.wd,
	      ev.mask);

	/* as it was, for the next restore (other's mode, no d/new) */
	chmod(at("other"), 0644);
	unlink(at("d/new"));
	printf(fails ? "restored with %d failures\n" : "restored ok\n", fails);
	return fails ? 1 : 0;
}
