/* SPDX-License-Identifier: MIT */
/*
 * watch.c - a command's file work done by a child process that its parent
 * watches, step by step, against a limit (crac flatten --timeout).
 *
 * Some work cannot be split into the bounded helpers of image/dir.c (a
 * clone sharing our memory that may only make raw system calls): crac
 * flatten reads a chain of images through the image library, decompresses
 * and compresses chunks and writes a new image, all with malloc and stdio.
 * On a file system that stopped answering (an NFS or FUSE server gone)
 * any of its opens, reads or writes may never return. So the command runs
 * that work in a forked child (its own memory: libc is whole there) and
 * the parent only watches it: before each call that may not return, the
 * child names the step in a page they share (cli_watch_step: "the read of
 * chunk #3 of /img/pages") and when it began; a step that lasts longer
 * than the limit is given up on: the child is killed (SIGKILL: whenever
 * its call returns it runs nothing more), the parent says which step, on
 * which file, and how long it waited, removes the temporary the child had
 * named (cli_watch_tmp; bounded as image/dir.c bounds a removal; one it
 * cannot remove is stale once the child is gone, and the next flatten or
 * checkpoint to the same place removes it), and fails. Between steps (the
 * child idle: cli_watch_idle) the child runs image/dir.c's own bounded
 * helpers, which end at the same limit themselves and say so.
 *
 * The child dies with its parent (PR_SET_PDEATHSIG): killing the command
 * kills its work. A child that a signal kills is said; otherwise the
 * parent ends with the child's exit status.
 *
 * Tests slow a step with CRAC_TEST_SLOW_FS=OP:MS (the step's `slow` name,
 * image/dir.c's crac_img_test_pause): a file system that does not answer.
 */
#include "cli.h"
#include "image/bounded.h"
#include "image/dir.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* What the child is at, shared with its parent (one page or so). */
struct watch_page {
	int64_t since_ns;        /* CLOCK_MONOTONIC when the step began; 0: idle */
	char what[2048];         /* the step, "the read of chunk #3 of /img/pages" */
	char tmp[PATH_MAX];      /* the temporary to remove if the child is given up on; "": none */
};

/* The child's view (NULL in the parent and without a watcher). */
static struct watch_page *me;
/* The child's: its watcher's pid. */
static int watcher;

int cli_watch_owner(void)
{
	return me ? watcher : (int)getpid();
}

void cli_watch_step(const char *slow, const char *fmt, ...)
{
	if (me) {
		va_list ap;
		/* idle while the text changes: the parent never reads it half written */
		__atomic_store_n(&me->since_ns, 0, __ATOMIC_RELEASE);
		va_start(ap, fmt);
		vsnprintf(me->what, sizeof(me->what), fmt, ap);
		va_end(ap);
		__atomic_store_n(&me->since_ns, crac_bounded_mono_ns(), __ATOMIC_RELEASE);
	}
	if (slow)
		crac_img_test_pause(slow);   /* tests: a file system that does not answer */
}

void cli_watch_idle(void)
{
	if (me)
		__atomic_store_n(&me->since_ns, 0, __ATOMIC_RELEASE);
}

void cli_watch_tmp(const char *path)
{
	if (me)
		snprintf(me->tmp, sizeof(me->tmp), "%s", path ? path : "");
}

/* The child's end: its exit status, said if a signal killed it. */
static int child_status(const char *who, int pid, int ws)
{
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	cli_err("%s: its worker (pid %d) was killed by signal %d (%s)", who, pid, WTERMSIG(ws),
		strsignal(WTERMSIG(ws)));
	return 1;
}

/* The child given up on: killed, reaped if it ends within 100 ms (its
 * call may not return: then it is left to init). True if reaped. */
static bool give_up(int pid)
{
	kill(pid, SIGKILL);
	for (int k = 0; k < 10; k++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return true;
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

int cli_watch_run(const char *who, long limit_ms, const char *bound, int (*body)(void *), void *arg)
{
	if (limit_ms <= 0)
		return body(arg);   /* no limit: no watcher */
	struct watch_page *page = mmap(NULL, sizeof(*page), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED) {
		cli_err("%s: cannot map the page its worker reports in: %s", who, strerror(errno));
		return 1;
	}
	int parent = (int)getpid();
	fflush(NULL);   /* (nothing buffered is written twice) */
	int pid = (int)fork();
	if (pid < 0) {
		cli_err("%s: cannot start its worker: %s", who, strerror(errno));
		munmap(page, sizeof(*page));
		return 1;
	}
	if (pid == 0) {
		/* the child: dies with its parent, does the work */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if ((int)getppid() != parent)
			_exit(1);
		me = page;
		watcher = parent;
		int rc = body(arg);
		fflush(NULL);
		_exit(rc);
	}
	/* the parent: waits for the child, each step of it at most limit_ms */
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int64_t limit_ns = (int64_t)limit_ms * 1000000;
	int ws = 0, rc;
	for (;;) {
		int r = (int)waitpid(pid, &ws, WNOHANG);
		if (r == pid) {
			rc = child_status(who, pid, ws);
			break;
		}
		int64_t since = __atomic_load_n(&page->since_ns, __ATOMIC_ACQUIRE), now = crac_bounded_mono_ns();
		if (since && now - since >= limit_ns) {
			bool reaped = give_up(pid);
			/* (killed: what it names is what it was at) */
			cli_err("%s: %s did not return after %lld ms (%s): its file system does not answer; given up",
				who, page->what, (long long)((now - since) / 1000000), bound);
			if (page->tmp[0]) {
				char msg[PATH_MAX + 400];
				if (!reaped)
					cli_err("%s: warning: its temporary %s is left (its writer, pid %d, is stuck in "
						"the kernel): the next flatten or checkpoint there removes it once its "
						"file system answers", who, page->tmp, pid);
				else if (crac_img_remove_msg(page->tmp, msg, sizeof(msg)) < 0)
					cli_err("%s: warning: its temporary %s is left (%s): the next flatten or "
						"checkpoint there removes it", who, page->tmp, msg);
			}
			rc = 1;
			break;
		}
		/* until the step's limit, or a second when idle (a step may begin) */
		int64_t wait_ms = since ? (since + limit_ns - now) / 1000000 + 1 : limit_ms;
		if (wait_ms > 1000)
			wait_ms = 1000;
		if (pidfd >= 0) {
			struct pollfd p = { .fd = pidfd, .events = POLLIN };
			poll(&p, 1, (int)wait_ms);
		} else {
			struct timespec ts = { 0, 10000000 };   /* (no pidfd: before Linux 5.3) */
			nanosleep(&ts, NULL);
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	munmap(page, sizeof(*page));
	return rc;
}
