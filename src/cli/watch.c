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
 * kills its work. A child that a signal kills is said and the temporary it
 * named removed; otherwise the parent ends with the child's exit status.
 *
 * The child's end is not the end of its work: image/dir.c's bounded
 * helpers are children of the child (clones sharing its memory and, most
 * of them, its table of descriptors), which die with it (PR_SET_PDEATHSIG)
 * only once the kernel gets to it: a helper killed in the middle of a
 * rename finishes the rename, and a helper sharing the table keeps every
 * descriptor of it open, among them the lock on the previous image the
 * commit moved aside (OUT.old-PID-START, image/dir.c aside_lock), until it
 * has run its own exit. On a busy machine that comes after the child is
 * reaped: a cleanup that looked then found the previous image locked and
 * left it (as it must leave what another writer holds), and a rename
 * still under way could land after the cleanup had looked. So the parent
 * is a child subreaper while it watches (PR_SET_CHILD_SUBREAPER: the
 * helpers of a dead child become its children) and, before it looks at
 * what a killed child left, waits until none of them is left (bounded by
 * the limit: one whose call does not return is said, and what the child
 * left is then left for the next flatten or checkpoint there).
 *
 * A child may be killed at any moment, by anyone: also after its
 * temporary is whole, while it renames it into place. The temporary is
 * named with its identity (cli_watch_tmp), and removed only while it is
 * still the child's own: a rename that exchanged it with the image at the
 * place (image/dir.c crac_img_commit) leaves the previous image under its
 * name, which is not ours to remove here. The place it goes to
 * (cli_watch_place, also named before the temporary exists) tells the
 * rest: if the place is the child's temporary now, the work is done (said,
 * and the parent ends with 0: what its status says is what is at the
 * place); and what is left next to it under a temporary's name of the
 * parent's (the temporaries are named after it: cli_watch_owner), a
 * temporary the child had just created and not named yet, or the image it
 * replaced, is removed (image/dir.c crac_img_clean_stale, for which the
 * parent's own temporaries are stale once its child is dead).
 * SIGINT, SIGTERM and SIGHUP to the parent while the child runs (those not
 * ignored) stop the child (SIGKILL), its temporary is removed, and the
 * parent dies of the same signal. The parent waits for its child whatever
 * SIGCHLD's disposition was (an ignored SIGCHLD, inherited across exec,
 * would have the kernel reap the child unseen): SIG_DFL while it watches.
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* What the child is at, shared with its parent (one page or so). */
struct watch_page {
	int64_t since_ns;        /* CLOCK_MONOTONIC when the step began; 0: idle */
	int tmp_set;             /* 1: tmp is written whole (read once the child is dead) */
	int tmp_id;              /* 1: tmp_dev and tmp_ino are its identity */
	int place_set;           /* 1: place is written whole */
	char what[2048];         /* the step, "the read of chunk #3 of /img/pages" */
	char tmp[PATH_MAX];      /* the temporary to remove if the child is given up on; "": none */
	uint64_t tmp_dev, tmp_ino;
	char place[PATH_MAX];    /* where tmp is renamed to once whole */
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

void cli_watch_tmp(const char *path, const struct stat *st)
{
	if (!me)
		return;
	/* published once whole: a child killed while it writes the name
	 * leaves no part of it (a prefix of a temporary's name may be OUT) */
	__atomic_store_n(&me->tmp_set, 0, __ATOMIC_RELEASE);
	if (path && *path) {
		snprintf(me->tmp, sizeof(me->tmp), "%s", path);
		me->tmp_id = st != NULL;
		me->tmp_dev = st ? (uint64_t)st->st_dev : 0;
		me->tmp_ino = st ? (uint64_t)st->st_ino : 0;
		__atomic_store_n(&me->tmp_set, 1, __ATOMIC_RELEASE);
	}
}

void cli_watch_place(const char *path)
{
	if (!me)
		return;
	__atomic_store_n(&me->place_set, 0, __ATOMIC_RELEASE);
	if (path && *path && snprintf(me->place, sizeof(me->place), "%s", path) < (int)sizeof(me->place))
		__atomic_store_n(&me->place_set, 1, __ATOMIC_RELEASE);
}

/* The first of SIGINT, SIGTERM, SIGHUP the parent got while it watched. */
static volatile sig_atomic_t stop_sig;

static void on_stop(int sig)
{
	if (!stop_sig)
		stop_sig = sig;
}

static const int stop_sigs[] = { SIGINT, SIGTERM, SIGHUP };
#define N_STOP_SIGS (int)(sizeof(stop_sigs) / sizeof(stop_sigs[0]))

/* Is path the directory of that identity? -1: cannot tell (said in msg). */
static int is_dir_id(const char *path, uint64_t dev, uint64_t ino, char *msg, size_t msglen)
{
	struct stat st;
	int rc = crac_img_lstat_msg(path, &st, msg, msglen);

	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return -1;
	return (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
}

/* The first of our children still there (/proc/self/task/TID/children),
 * or -1 if it cannot be told. */
static int a_child(void)
{
	char path[64], buf[32];
	int pid = -1;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)syscall(SYS_gettid));
	FILE *f = fopen(path, "re");
	if (f) {
		if (fgets(buf, sizeof(buf), f))
			pid = atoi(buf) > 0 ? atoi(buf) : -1;
		fclose(f);
	}
	return pid;
}

/*
 * The dead worker's helpers (ours: we are a child subreaper; we start no
 * other child) waited for until none is left, limit_ms at most: 0, or the
 * pid of one still there (-1: which one cannot be told), with *waited_ms.
 */
static int helpers_end(long limit_ms, int64_t *waited_ms)
{
	int64_t start = crac_bounded_mono_ns(), until = start + (int64_t)limit_ms * 1000000;

	for (;;) {
		int r = (int)waitpid(-1, NULL, __WALL | WNOHANG);
		if (r > 0 || (r < 0 && errno == EINTR))
			continue;   /* one ended (reaped now) */
		if (r < 0)
			return 0;   /* none left (ECHILD) */
		int64_t now = crac_bounded_mono_ns();
		*waited_ms = (now - start) / 1000000;
		if (now >= until)
			return a_child();
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
}

/*
 * What the killed child left, once it is dead (reaped) and its helpers too
 * (helpers_end, limit_ms at most): the temporary it named removed while it
 * is still its own, and the rest of ours next to its place (see the top of
 * the file); one left is said. A helper that does not end leaves all of it
 * as it is (said). True if the child had put its temporary in place (said
 * as done).
 */
static bool after_child(const char *who, const struct watch_page *page, int pid, bool reaped, long limit_ms)
{
	bool tmp = __atomic_load_n(&page->tmp_set, __ATOMIC_ACQUIRE);
	bool place = __atomic_load_n(&page->place_set, __ATOMIC_ACQUIRE);
	char msg[PATH_MAX + 400];
	int rc, done = 0;

	if (!reaped) {
		if (tmp)
			cli_err("%s: warning: its temporary %s is left (its writer, pid %d, is stuck in the kernel): "
				"the next flatten or checkpoint there removes it once its file system answers", who,
				page->tmp, pid);
		return false;
	}
	int64_t waited = 0;
	int helper = helpers_end(limit_ms, &waited);
	if (tmp && place && page->tmp_id &&
	    (done = is_dir_id(page->place, page->tmp_dev, page->tmp_ino, msg, sizeof(msg))) < 0)
		cli_err("%s: warning: cannot tell whether %s is its image (%s)", who, page->place, msg);
	if (done > 0)
		cli_err("%s: its worker (pid %d) was killed after it had put %s in place: %s is the image written "
			"and verified (the rename may not survive a crash)", who, pid, page->place, page->place);
	if (helper) {
		/* stuck in the kernel: it may hold the previous image locked,
		 * or rename yet; nothing the worker left is touched */
		char h[32] = "";
		if (helper > 0)
			snprintf(h, sizeof(h), " (pid %d)", helper);
		cli_err("%s: warning: a helper of its worker%s did not end within %lld ms (a call on a file system that "
			"does not answer): what the worker left next to %s (its temporary, a previous image set "
			"aside) is left as it is; the next flatten or checkpoint there cleans it once its file "
			"system answers", who, h, (long long)waited, place ? page->place : tmp ? page->tmp : "OUT");
		return done > 0;
	}
	/* its own temporary (not what an exchange put under its name) */
	if (tmp && done <= 0 && (!page->tmp_id || is_dir_id(page->tmp, page->tmp_dev, page->tmp_ino, msg,
							       sizeof(msg)) > 0) &&
	    (rc = crac_img_remove_msg(page->tmp, msg, sizeof(msg))) < 0 && rc != -ENOENT)
		cli_err("%s: warning: its temporary %s is left (%s): the next flatten or checkpoint there removes it",
			who, page->tmp, msg);
	/* ours next to the place: one not named yet, an image replaced */
	int stale_rc = place ? crac_img_clean_stale_msg(page->place, NULL, msg, sizeof(msg)) : 0;
	if (stale_rc == -ETIMEDOUT)
		cli_err("%s: warning: %s; a temporary of its may be left there: the next flatten or checkpoint "
			"there removes it", who, msg);
	else if (place && msg[0])   /* a previous image not put back, and why */
		cli_err("%s: warning: %s", who, msg);
	return done > 0;
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
	/* our child seen by waitpid whatever SIGCHLD was (ignored: reaped by
	 * the kernel unseen); the stop signals held until we wait (ppoll) */
	struct sigaction dfl = { .sa_handler = SIG_DFL }, old_chld, old_stop[N_STOP_SIGS];
	sigset_t stops, old_mask;
	sigaction(SIGCHLD, &dfl, &old_chld);
	sigemptyset(&stops);
	for (int i = 0; i < N_STOP_SIGS; i++)
		sigaddset(&stops, stop_sigs[i]);
	sigprocmask(SIG_BLOCK, &stops, &old_mask);
	int parent = (int)getpid();
	/* the helpers of a dead child ours, to wait for (see the top) (the
	 * attribute is not inherited: the child's helpers go to us) */
	int was_subreaper = 0;
	prctl(PR_GET_CHILD_SUBREAPER, &was_subreaper);
	if (!was_subreaper)
		prctl(PR_SET_CHILD_SUBREAPER, 1);
	fflush(NULL);   /* (nothing buffered is written twice) */
	int pid = (int)fork();
	if (pid == 0) {
		/* the child: the signals as the command got them, dies with its
		 * parent, does the work */
		sigaction(SIGCHLD, &old_chld, NULL);
		sigprocmask(SIG_SETMASK, &old_mask, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if ((int)getppid() != parent)
			_exit(1);
		me = page;
		watcher = parent;
		int rc = body(arg);
		fflush(NULL);
		_exit(rc);
	}
	if (pid < 0) {
		cli_err("%s: cannot start its worker: %s", who, strerror(errno));
		if (!was_subreaper)
			prctl(PR_SET_CHILD_SUBREAPER, 0);
		sigprocmask(SIG_SETMASK, &old_mask, NULL);
		sigaction(SIGCHLD, &old_chld, NULL);
		munmap(page, sizeof(*page));
		return 1;
	}
	/* the parent: a stop signal (not ignored) is noted, acted on below */
	stop_sig = 0;
	for (int i = 0; i < N_STOP_SIGS; i++) {
		struct sigaction sa = { .sa_handler = on_stop };
		sigaction(stop_sigs[i], NULL, &old_stop[i]);
		if (old_stop[i].sa_handler != SIG_IGN)
			sigaction(stop_sigs[i], &sa, NULL);
	}
	/* waits for the child, each step of it at most limit_ms */
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int64_t limit_ns = (int64_t)limit_ms * 1000000;
	int ws = 0, rc = 1;
	bool ended = false, reaped = false, waited = false;   /* (waited: ws is its end) */
	for (;;) {
		int r = (int)waitpid(pid, &ws, WNOHANG);
		if (r == pid) {
			ended = reaped = waited = true;
			break;
		}
		if (r < 0 && errno != EINTR) {
			/* (not ours any more: gone) */
			cli_err("%s: its worker (pid %d) is gone, its end unknown (waitpid: %s)", who, pid,
				strerror(errno));
			ended = reaped = true;
			after_child(who, page, pid, true, limit_ms);
			break;
		}
		if (stop_sig)
			break;
		int64_t since = __atomic_load_n(&page->since_ns, __ATOMIC_ACQUIRE), now = crac_bounded_mono_ns();
		if (since && now - since >= limit_ns) {
			reaped = give_up(pid);
			ended = true;
			/* (killed: what it names is what it was at) */
			cli_err("%s: %s did not return after %lld ms (%s): its file system does not answer; given up",
				who, page->what, (long long)((now - since) / 1000000), bound);
			after_child(who, page, pid, reaped, limit_ms);
			break;
		}
		/* until the step's limit, or a second when idle (a step may
		 * begin); a stop signal ends the wait (EINTR) */
		int64_t wait_ms = since ? (since + limit_ns - now) / 1000000 + 1 : limit_ms;
		if (wait_ms > 1000)
			wait_ms = 1000;
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		struct timespec ts = { wait_ms / 1000, (wait_ms % 1000) * 1000000 };
		if (pidfd < 0)
			ts = (struct timespec){ 0, 10000000 };   /* (no pidfd: before Linux 5.3) */
		ppoll(pidfd >= 0 ? &p : NULL, pidfd >= 0 ? 1 : 0, &ts, &old_mask);
	}
	int sig = stop_sig;
	if (sig) {
		/* stopped: the child too (if it has not ended already), then its
		 * temporary (and we die of the signal below) */
		if (!ended)
			reaped = give_up(pid);
		cli_err("%s: stopped by signal %d (%s): its worker (pid %d) stopped", who, sig, strsignal(sig), pid);
		if (!ended || (waited && WIFSIGNALED(ws)))
			after_child(who, page, pid, reaped, limit_ms);
	} else if (waited) {
		/* its own end: a child killed by a signal (mid-write) leaves its
		 * temporary, removed here; one killed once its work was in
		 * place has done it */
		rc = child_status(who, pid, ws);
		if (WIFSIGNALED(ws) && after_child(who, page, pid, true, limit_ms))
			rc = 0;
	}
	if (pidfd >= 0)
		close(pidfd);
	for (int i = 0; i < N_STOP_SIGS; i++)
		if (old_stop[i].sa_handler != SIG_IGN)
			sigaction(stop_sigs[i], &old_stop[i], NULL);
	/* (helpers of its that ended since: reaped; one still stuck in the
	 * kernel goes to init with our end) */
	while (waitpid(-1, NULL, __WALL | WNOHANG) > 0)
		;
	if (!was_subreaper)
		prctl(PR_SET_CHILD_SUBREAPER, 0);
	sigaction(SIGCHLD, &old_chld, NULL);
	munmap(page, sizeof(*page));
	if (sig) {
		signal(sig, SIG_DFL);
		raise(sig);   /* pending until the mask is put back: we die of it */
	}
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	return rc;
}
