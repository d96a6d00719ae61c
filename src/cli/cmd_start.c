/* SPDX-License-Identifier: MIT */
/*
 * cmd_start.c - `crac start --image DIR [--key K] [triggers] -- PROG ARGS`:
 * restore-or-start.
 *
 *   1. The key of PROG: --key K, else the executable's identity (its real
 *      path, device, inode, size, mtime) and every argument.
 *   2. DIR is usable when it holds DIR/start-key with that key and the
 *      sockets systemd passes now (LISTEN_FDS) match those DIR/activation
 *      records (the header is read for that check only; every other check
 *      of the image is the loader's). Then crac restores it in a
 *      child (`crac-loader --env ... DIR -- PROG ARGS`, the loader `crac
 *      restore` would exec: the restored program sees the new environment
 *      and arguments) and supervises it (supervise.c): READY=1 goes to
 *      $NOTIFY_SOCKET once it answers.
 *   3. Otherwise the reason is printed once and PROG starts cold as under
 *      `crac run`, with the triggers. The first trigger that fires writes
 *      DIR: the checkpoint (keep-running) goes to DIR.new-PID, crac adds
 *      start-key (and activation), then swaps it with DIR in one
 *      renameat2(RENAME_EXCHANGE) (or renames it into place): at every
 *      instant DIR is the complete old image or the complete new one.
 *      (A file system without the exchange, NFS: the old image is moved
 *      aside to DIR.new-PID.old first; DIR is absent between the two
 *      renames, and put back by the next start if we were killed
 *      there: put_back_aside.)
 *      The process keeps running: the service is never down. A restore
 *      the loader refuses (its restore checks, image/check.c, as `crac
 *      inspect` runs them: kernel, CPU, a file the image maps changed...;
 *      its reason printed) ends in a cold start too, in the same
 *      supervisor.
 *
 * Concurrent starts on one DIR, through open file description locks on
 * DIR.lock: byte 0 is held shared while an image is checked and restored
 * (until the restored process answers) and exclusively for the swap, so a
 * restore never reads a half-replaced DIR and the swap never removes an
 * image being restored; byte 1 is the writer's: the one cold start that
 * takes it writes DIR, the others start cold and write nothing; byte 2 is
 * held exclusively by one restore at a time, until the restored process
 * answers: its listening sockets are bound by then, so the loader of the
 * next restore sees their ports taken before its point of no return and
 * that start goes cold, instead of two loaders binding one port after it.
 *
 * Exit status: the program's (restored or cold; killed by a signal: the
 * same signal, raised on crac, without a core of crac's); a restored
 * program that ends before it answers is not run again: its status is
 * crac's (only a refusal of the loader before its point of no return
 * starts PROG cold); a stop signal (TERM, INT, HUP, QUIT) during a restore
 * or a lock wait ends crac by that signal; 2 usage error; 125 crac could
 * not start anything (fork, pipe); 126/127 PROG not executable / not found.
 * DIR and DIR.lock that are not crac start's own (image/dir.c's rule):
 * one line, a cold start that writes nothing.
 */
#include "cli.h"
#include "core/internal.h"
#include "image/check.h"
#include "image/dir.h"
#include "loader/activation.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define KEY_FILE "start-key"
#define ACT_FILE CLI_ACTIVATION_FILE
#define OLD_SUFFIX ".old"      /* DIR.new-PID.old: the previous image moved aside (install) */
#define KEY_LONG (16 * 1024)   /* longer keys are hashed (make_key) */
#define KEY_HEAD 4096

extern char **environ;

struct start {
	char dir[PATH_MAX];          /* DIR, absolute */
	char newdir[PATH_MAX + 32];  /* DIR.new-PID */
	char *key;                   /* the key text */
	int lock_fd;                 /* DIR.lock */
	bool image_lock;             /* byte 0 held shared */
	bool restore_lock;           /* byte 2 held: this start's restore runs */
	bool fs_stuck;               /* a look at DIR was given up on (--timeout): no image written */
	const char *prog;
};

/* ---- the key ---------------------------------------------------------------- */

static void put_escaped(FILE *f, const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c <= ' ' || *c == '%' || *c >= 0x7f)
			fprintf(f, "%%%02X", *c);
		else
			fputc(*c, f);
	fputc('\n', f);
}

/* PROG as execvp would find it: a warm start needs it as much as a cold
 * one, since the key of an image made without --key names this executable
 * (usable() compares it), and a PROG put earlier in PATH since the
 * checkpoint is another program (tests/cli/start_review.bats). The access(2) of each directory's
 * candidate in turn by one helper of image/dir.c, bounded by --timeout: a
 * directory of PATH on a file system that does not answer ends the search,
 * said with the path and the time waited; the key then says "exe not
 * found" (no restore: it differs from the image's). */
static int find_prog(const char *prog, char *out, size_t len)
{
	const char *path = getenv("PATH");

	char msg[PATH_MAX + 400];
	int rc = -ENOMEM;

	if (strchr(prog, '/')) {
		/* bounded by --timeout as the search of PATH */
		if ((rc = crac_img_realpath_msg(prog, out, len, msg, sizeof(msg))) == -ETIMEDOUT)
			cli_err("start: warning: %s", msg);
		return rc;
	}
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	size_t n_dirs = 1;
	for (const char *p = path; *p; p++)
		n_dirs += *p == ':';
	/* each candidate DIR/PROG in one block, NULL after the last */
	size_t room = n_dirs * (strlen(prog) + 3) + strlen(path) + 1;
	char *text = malloc(room);
	const char **cands = calloc(n_dirs + 1, sizeof(*cands));
	size_t nc = 0, at = 0;
	int found = -1;
	if (!text || !cands)
		goto out;
	for (const char *p = path;;) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		int w = snprintf(text + at, room - at, "%.*s/%s", (int)n, n ? p : ".", prog);
		if (w > 0 && (size_t)w < PATH_MAX && (size_t)w < room - at) {   /* (too long: not this one) */
			cands[nc++] = text + at;
			at += (size_t)w + 1;
		}
		if (!end)
			break;
		p = end + 1;
	}
	cands[nc] = NULL;
	rc = crac_img_access_first_msg(cands, X_OK, &found, msg, sizeof(msg));
	if (rc == -ETIMEDOUT)
		cli_err("start: warning: the search for %s in PATH stopped: %s", prog, msg);
	/* (the first that passes: execvp would take it, or fail); its
	 * resolution bounded the same way */
	else if (rc == 0 && (rc = crac_img_realpath_msg(cands[found], out, len, msg, sizeof(msg))) == -ETIMEDOUT)
		cli_err("start: warning: %s", msg);
	else if (rc < 0)
		rc = -ENOENT;
out:
	free(text);
	free(cands);
	return rc;
}

static char *make_key(const char *key, char **args)
{
	char *text = NULL, exe[PATH_MAX];
	size_t len = 0;
	struct stat st;
	FILE *f = open_memstream(&text, &len);
	int argc = 0;

	if (!f)
		return NULL;
	fprintf(f, "crac-start-key 1\n");
	if (key) {
		fprintf(f, "key ");
		put_escaped(f, key);
	} else {
		char smsg[PATH_MAX + 300];
		/* (exe resolved: no link left to follow; bounded by --timeout) */
		if (find_prog(args[0], exe, sizeof(exe)) == 0 && crac_img_lstat_msg(exe, &st, smsg, sizeof(smsg)) == 0) {
			fprintf(f, "exe dev %llu inode %llu size %lld mtime %lld.%09ld path ",
				(unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
				(long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
			put_escaped(f, exe);
		} else {
			fprintf(f, "exe not found ");
			put_escaped(f, args[0]);
		}
		while (args[argc])
			argc++;
		fprintf(f, "argc %d\n", argc);
		for (int i = 0; i < argc; i++) {
			fprintf(f, "arg ");
			put_escaped(f, args[i]);
		}
	}
	fclose(f);
	/*
	 * A long key (arguments of many kilobytes) is kept short: its length,
	 * a 64-bit FNV-1a hash of all of it and its first 4 KiB (which the
	 * message names when keys differ). Not a cryptographic hash: the key
	 * tells a program's images apart, it guards against no one (DIR is
	 * the caller's own).
	 */
	if (text && len > KEY_LONG) {
		uint64_t h = 0xcbf29ce484222325ull;
		for (size_t i = 0; i < len; i++)
			h = (h ^ (unsigned char)text[i]) * 0x100000001b3ull;
		char *short_key = NULL;
		if (asprintf(&short_key, "crac-start-key 1\nlong key: %zu bytes, fnv1a-64 %016llx, first %d:\n%.*s\n",
			     len, (unsigned long long)h, KEY_HEAD, KEY_HEAD, text) < 0)
			short_key = NULL;
		free(text);
		text = short_key;
	}
	return text;
}

/* The first line where two keys differ, for the message. */
static void key_diff(const char *a, const char *b, char *out, size_t len)
{
	while (*a && *b) {
		const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
		size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
		if (la != lb || memcmp(a, b, la)) {
			snprintf(out, len, "recorded \"%.*s\", now \"%.*s\"", (int)(la > 200 ? 200 : la), a,
				 (int)(lb > 200 ? 200 : lb), b);
			return;
		}
		a += la + (ea ? 1 : 0);
		b += lb + (eb ? 1 : 0);
	}
	snprintf(out, len, "a different number of arguments");
}

/* ---- locks -------------------------------------------------------------------- */

#define LOCK_WAIT_MS 10000
/* ofd_lock_stop's result when a lock call itself did not return in time
 * (a lock server that does not answer: NFS), lock_msg saying so */
#define LOCK_GIVEN_UP (-ETIME)

static char lock_path[PATH_MAX + 8];            /* DIR.lock, for the messages */
static _Thread_local char lock_msg[PATH_MAX + 400];   /* the last LOCK_GIVEN_UP, said */
static struct start *lock_owner;                 /* whose lock_fd lock_drop closes */

/*
 * A lock call given up on may still be granted when the lock server
 * answers again, on our open file description of DIR.lock, and would then
 * be held until crac start ends (its supervisor lives as long as the
 * program): another crac start could never swap or write DIR meanwhile.
 * So the descriptor is closed at once: the description goes, with every
 * lock on it (a late one too), as soon as that call returns (the helper's
 * reference is the last). No lock is taken from then on (lock_fd -1): a
 * start that writes no image, as its caller says.
 */
static void lock_drop(int fd)
{
	size_t at = strlen(lock_msg);

	snprintf(lock_msg + at, sizeof(lock_msg) - at, " (%s closed: a late grant is released at once; "
		 "this crac start takes no lock from now on)", lock_path);
	if (lock_owner && lock_owner->lock_fd == fd) {
		lock_owner->lock_fd = -1;
		lock_owner->image_lock = lock_owner->restore_lock = false;
		lock_owner->fs_stuck = true;
	}
	close(fd);
}

/*
 * wait: up to LOCK_WAIT_MS (then -ETIMEDOUT), in steps of 10 ms; never an
 * unbounded F_OFD_SETLKW. With stop != NULL (the main thread, the stop
 * signals blocked) a TERM, INT, HUP or QUIT that comes meanwhile ends the
 * wait: -EINTR, the signal in *stop. Each F_OFD_SETLK by a helper of
 * image/dir.c, bounded by --timeout: one that does not return (an NFS
 * lock server gone) is given up on, LOCK_GIVEN_UP with lock_msg naming
 * DIR.lock and the byte; the lock may still be granted later: the
 * descriptor is closed (lock_drop).
 */
static int ofd_lock_stop(int fd, short type, off_t byte, bool wait, int *stop)
{
	struct timespec step = { 0, 10 * 1000000 };
	sigset_t set;
	int rc;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	for (int ms = 0;; ms += 10) {
		if ((rc = crac_img_ofd_lock_msg(fd, lock_path, type, (long)byte, lock_msg, sizeof(lock_msg))) == 0)
			return 0;
		if (rc == -ETIMEDOUT) {
			lock_drop(fd);
			return LOCK_GIVEN_UP;
		}
		if (rc != -EINTR && rc != -EAGAIN && rc != -EACCES)
			return rc;
		if (!wait)
			return rc;
		if (ms >= LOCK_WAIT_MS)
			return -ETIMEDOUT;
		if (stop) {
			int sig = sigtimedwait(&set, NULL, &step);
			if (sig > 0) {
				*stop = sig;
				return -EINTR;
			}
		} else {
			nanosleep(&step, NULL);
		}
	}
}

static int ofd_lock(int fd, short type, off_t byte, bool wait)
{
	return ofd_lock_stop(fd, type, byte, wait, NULL);
}

/*
 * May crac start write DIR? The image engine's rule (image/dir.c
 * crac_img_target_check), with crac start's two files: DIR is absent, or a
 * directory (not a symbolic link) of the effective uid holding nothing but
 * header, pages, start-key, activation and the working set, regular files
 * of ours. Else 1 line in msg and -1: nothing of it is replaced or removed.
 */
static int target_ok(const char *dir, char *msg, size_t len)
{
	static const char *const also[] = { KEY_FILE, ACT_FILE, NULL };
	struct stat sb;
	char others[200];

	/* its lstat and listing by a helper bounded by --timeout (a file
	 * system that does not answer: given up, said naming DIR) */
	int n = crac_img_own_dir_msg(dir, also, &sb, others, sizeof(others), msg, len);
	if (n == -ETIMEDOUT)
		return -1;   /* (said in msg) */
	if (n == -ENOENT)
		return 0;
	if (n < 0 && !sb.st_mode)   /* its lstat failed */
		return snprintf(msg, len, "%s: %s", dir, strerror(-n)), -1;
	if (!S_ISDIR(sb.st_mode) || sb.st_uid != geteuid()) {
		snprintf(msg, len, "%s is not a crac image of this user (it is %s%s); crac start replaces only its own",
			 dir, S_ISLNK(sb.st_mode) ? "a symbolic link" : S_ISDIR(sb.st_mode) ? "a directory" :
			 S_ISREG(sb.st_mode) ? "a regular file" : S_ISFIFO(sb.st_mode) ? "a named pipe" :
			 "a special file", S_ISDIR(sb.st_mode) ? " of another user" : "");
		return -1;
	}
	if (n < 0)
		return snprintf(msg, len, "%s: %s", dir, strerror(-n)), -1;
	if (n > 0) {
		snprintf(msg, len, "%s is not a crac image of this user (it holds %s); crac start replaces only its "
			 "own", dir, others);
		return -1;
	}
	return 0;
}

/* ---- is DIR usable? --------------------------------------------------------------- */

/*
 * 0: restore DIR (act: the CRAC_ACTIVATION_FDS= entry, or empty);
 * 1: start cold, the reason in why.
 */
static int usable(struct start *st, int listen_fds, char *act, size_t actlen, char *why, size_t len)
{
	struct crac_img_header_map h;
	struct stat sb;
	char msg[2048], diff[512], path[PATH_MAX + 32];
	int err = 0, rc = 1;

	act[0] = 0;
	/* bounded by --timeout (a file system that does not answer: a cold
	 * start, said) */
	if ((err = crac_img_lstat_msg(st->dir, &sb, msg, sizeof(msg))) < 0) {
		if (err == -ETIMEDOUT)
			snprintf(why, len, "%s", msg), st->fs_stuck = true;
		else
			snprintf(why, len, "no image at %s yet", st->dir);
		return 1;
	}
	err = 0;
	/* bounded by --timeout: given up, said naming the file */
	char *key = cli_read_small_msg(st->dir, KEY_FILE, &err, msg, sizeof(msg));
	if (!key && err == -ETIMEDOUT) {
		snprintf(why, len, "%s", msg);
		st->fs_stuck = true;
		return 1;
	}
	if (!key) {
		snprintf(why, len, "%s/%s: %s (an image crac start did not write)", st->dir, KEY_FILE,
			 err == -EPERM ? "not a regular file of ours that only we may write" :
			 err == -EFBIG ? "larger than 64 KiB" : strerror(-err));
		return 1;
	}
	if (strcmp(key, st->key)) {
		key_diff(key, st->key, diff, sizeof(diff));
		snprintf(why, len, "the image at %s is of another program or other arguments (%s)", st->dir, diff);
		free(key);
		return 1;
	}
	free(key);
	/*
	 * The header is read only for socket activation: to check the record
	 * of the program's sockets (DIR/activation) against its descriptors.
	 * With no record and no sockets passed now there is nothing of crac
	 * start's to check in it, and the loader reads it, and refuses a bad
	 * one before its point of no return (its reason printed, then a cold
	 * start below), anyway: not read twice on every warm start. DIR is
	 * held shared (byte 0 of DIR.lock): no image is swapped in meanwhile.
	 */
	snprintf(path, sizeof(path), "%s/%s", st->dir, ACT_FILE);
	if (listen_fds <= 0 && (err = crac_img_lstat_msg(path, &sb, msg, sizeof(msg))) == -ENOENT)
		return 0;
	if (err == -ETIMEDOUT) {
		snprintf(why, len, "%s", msg);
		st->fs_stuck = true;
		return 1;
	}
	/* opened and read as the loader does, by a helper bounded by
	 * --timeout (given up: said naming the step and DIR, a cold start) */
	if ((err = crac_img_header_msg(st->dir, &h, msg, sizeof(msg))) < 0) {
		snprintf(why, len, "%s", msg);
		st->fs_stuck = err == -ETIMEDOUT;
		return 1;
	}
	/*
	 * The restore checks (image/check.c: kernel, CPU, the files the image
	 * maps...) are the loader's, before its point of no return: it runs
	 * them anyway, and a refusal there prints its reason and ends in the
	 * cold start below (CLI_SUPER_RESTORE_FAILED). Running them here as
	 * well cost every warm start the same work twice, before the loader
	 * was even started.
	 */
	/* socket activation: what the program got then, what systemd passes now */
	if ((err = cli_activation_env(st->dir, &h.v, listen_fds, act, actlen, why, len)) == 0)
		rc = 0;
	st->fs_stuck = err == -ETIMEDOUT;
	crac_img_header_unmap(&h);
	return rc;
}

/* ---- writing DIR ------------------------------------------------------------------ */

/*
 * Every look at DIR's file system from here on (the files crac start adds,
 * the fsyncs, the lstat, the renames, the removals) is made by a helper of
 * image/dir.c and waited for --timeout at most: a file system that does
 * not answer (an NFS or FUSE server gone) is given up on, said naming the
 * step and the path, and DIR is not replaced (the program runs on; the
 * next trigger tries again). A rename given up on may still happen when
 * the file system answers again: DIR is then the old image or the new one,
 * each whole, and what is left of the other is the next writer's to
 * remove (clean_stale_new) or put back (put_back_aside).
 */

/* dir/name, a new file holding text, fsync'd; bounded. 0, or -errno with
 * msg ("DIR/NAME: error", or the step given up on). */
static int write_file(const char *dir, const char *name, const char *text, char *msg, size_t len)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return crac_img_write_new_msg(path, text, strlen(text), msg, len);
}

/* Removes an image directory of ours: no symbolic link followed (DIR
 * itself is opened O_NOFOLLOW, its files unlinked through that fd), nothing
 * of another user's; anything else in it stays (rmdir fails). By a helper
 * of image/dir.c, bounded by --timeout: a file system that does not answer
 * leaves the directory, with a warning naming the file or the rmdir and
 * the time waited (the next crac start's cleanup removes it). 0 removed
 * (or not there), else -errno. */
static int remove_image(const char *dir)
{
	static const char *const more[] = { KEY_FILE, ACT_FILE, NULL };
	char msg[PATH_MAX + 400];
	int rc = crac_img_remove_own_msg(dir, more, msg, sizeof(msg));

	if (rc == -ETIMEDOUT)
		cli_err("start: warning: image directory %s left in place: %s", dir, msg);
	return rc;
}

/* fsync of directory path, bounded: 0, -errno, -ETIMEDOUT with msg. */
static int fsync_dir(const char *path, char *msg, size_t len)
{
	return crac_img_fsync_path_msg(path, msg, len);
}

/* Is dir a mount point, which no image can be renamed onto (the look of
 * crac_img_is_mount_point: another file system than its parent's, or the
 * root)? 1 or 0; its lstat and its parent's stat bounded by --timeout as
 * the rest: -ETIMEDOUT when one was given up on, msg naming the path. */
static int mount_point(const char *dir, char *msg, size_t len)
{
	char parent[PATH_MAX];
	const char *base;
	struct stat d, p;
	int rc;

	msg[0] = 0;
	if (crac_img_split_path(dir, parent, sizeof(parent), &base) < 0)
		return 0;
	if ((rc = crac_img_lstat_as_msg(dir, &d, "mountpoint", msg, len)) < 0 ||
	    (rc = crac_img_stat_msg(parent, &p, msg, len)) < 0)
		return rc == -ETIMEDOUT ? rc : 0;
	return S_ISDIR(d.st_mode) && (d.st_dev != p.st_dev || d.st_ino == p.st_ino);
}

/* The new image cannot go in place: why (msg), and it is removed. */
static int not_replaced(const struct start *st, char *msg, size_t len, const char *why)
{
	snprintf(msg, len, "%s; %s not replaced", why, st->dir);
	remove_image(st->newdir);
	return -1;
}

/* On the request thread, after the checkpoint wrote DIR.new-PID. */
static int install(struct cli_super *s, int pid, char *msg, size_t len)
{
	struct start *st = s->priv;
	char parent[PATH_MAX], fmsg[2 * PATH_MAX + 400], why[2 * PATH_MAX + 600];
	int rc;

	if ((rc = write_file(st->newdir, KEY_FILE, st->key, fmsg, sizeof(fmsg))) < 0) {
		snprintf(why, sizeof(why), "%s%s", rc == -ETIMEDOUT ? "" : "cannot write ", fmsg);
		return not_replaced(st, msg, len, why);
	}
	/* which of its descriptors are systemd's sockets: recorded by the
	 * request thread before the checkpoint (supervise.c) */
	if (s->listen_fds > 0 && !s->activation) {
		snprintf(why, sizeof(why), "cannot write %s/%s: no record of the activation sockets", st->newdir,
			 ACT_FILE);
		return not_replaced(st, msg, len, why);
	}
	if (s->listen_fds > 0 && (rc = write_file(st->newdir, ACT_FILE, s->activation, fmsg, sizeof(fmsg))) < 0) {
		snprintf(why, sizeof(why), "%s%s", rc == -ETIMEDOUT ? "" : "cannot write ", fmsg);
		return not_replaced(st, msg, len, why);
	}
	/* (an fsync that fails otherwise is no reason to keep the old image:
	 * the files themselves were fsync'd) */
	if (fsync_dir(st->newdir, fmsg, sizeof(fmsg)) == -ETIMEDOUT)
		return not_replaced(st, msg, len, fmsg);
	/* exclusive on byte 0: no restore is reading DIR while it is swapped */
	if ((rc = ofd_lock(st->lock_fd, F_WRLCK, 0, true)) < 0) {
		snprintf(why, sizeof(why), "cannot lock %s.lock: %s", st->dir, rc == LOCK_GIVEN_UP ? lock_msg :
			 strerror(-rc));
		return not_replaced(st, msg, len, why);
	}
	struct stat sb;
	char twhy[1024];
	if (target_ok(st->dir, twhy, sizeof(twhy)) < 0) {
		ofd_lock(st->lock_fd, F_UNLCK, 0, false);
		snprintf(msg, len, "%s; not replaced", twhy);
		remove_image(st->newdir);
		return -1;
	}
	if ((rc = crac_img_lstat_msg(st->dir, &sb, fmsg, sizeof(fmsg))) == -ETIMEDOUT) {
		ofd_lock(st->lock_fd, F_UNLCK, 0, false);
		return not_replaced(st, msg, len, fmsg);
	}
	bool exists = rc == 0;
	char aside[PATH_MAX + 40] = "";   /* the previous image, when it cannot be swapped */
	rc = crac_img_rename_msg(st->newdir, st->dir, exists ? RENAME_EXCHANGE : RENAME_NOREPLACE, fmsg,
				 sizeof(fmsg));
	if ((rc == -EINVAL || rc == -ENOSYS) && !exists) {
		rc = crac_img_rename_msg(st->newdir, st->dir, 0, fmsg, sizeof(fmsg));
	} else if (rc == -EINVAL || rc == -ENOSYS) {
		/* A file system without RENAME_EXCHANGE (NFS, FUSE, vfat):
		 * the previous image is moved aside first, as DIR.new-PID.old
		 * (removed by the next writer if we are killed before we do);
		 * put back if the new one cannot take its place. Between the
		 * two renames there is no DIR (a restore meanwhile is held off
		 * by the lock; a `crac restore DIR` would find nothing). */
		snprintf(aside, sizeof(aside), "%s%s", st->newdir, OLD_SUFFIX);
		bool moved = (rc = crac_img_rename_msg(st->dir, aside, 0, fmsg, sizeof(fmsg))) == 0;
		if (moved) {
			crac_img_test_pause("aside");   /* tests: killed between the renames */
			rc = crac_img_rename_msg(st->newdir, st->dir, 0, fmsg, sizeof(fmsg));
		}
		if (moved && rc == -ETIMEDOUT) {
			/* DIR is away: put back by the next crac start if
			 * the new one never comes (put_back_aside) */
			size_t at = strlen(fmsg);
			snprintf(fmsg + at, sizeof(fmsg) - at, "; the previous image is at %s until then", aside);
		} else if (moved && rc < 0) {
			char bmsg[2 * PATH_MAX + 400];
			if (crac_img_rename_msg(aside, st->dir, 0, bmsg, sizeof(bmsg)) < 0)
				cli_err("start: warning: the previous image, moved aside, was not put back: %s (the "
					"next crac start puts it back)", bmsg);
		}
	}
	bool stuck = rc == -ETIMEDOUT;   /* a rename given up on */
	int e = -rc;
	ofd_lock(st->lock_fd, F_UNLCK, 0, false);
	if (stuck) {
		/* nothing removed: which directory is which is the late
		 * rename's to say */
		snprintf(msg, len, "cannot put the image %s in place: %s", st->newdir, fmsg);
		return -1;
	}
	if (rc < 0) {
		char mmsg[PATH_MAX + 300];
		int mp = e == EBUSY || e == EXDEV ? mount_point(st->dir, mmsg, sizeof(mmsg)) : 0;
		if (mp == 1)
			snprintf(msg, len, "cannot put the image %s in place: %s is a mount point, which an image "
				 "cannot be renamed onto (%s); give a directory inside the mounted file system as "
				 "--image", st->newdir, st->dir, strerror(e));
		else if (mp == -ETIMEDOUT)
			snprintf(msg, len, "cannot put the image %s in place at %s: %s; whether it is a mount point "
				 "is not known: %s", st->newdir, st->dir, strerror(e), mmsg);
		else
			snprintf(msg, len, "cannot put the image %s in place at %s: %s", st->newdir, st->dir,
				 strerror(e));
		remove_image(st->newdir);
		return -1;
	}
	if (aside[0])
		remove_image(aside);        /* the previous image, moved aside */
	else if (exists)
		remove_image(st->newdir);   /* the previous image, swapped out */
	snprintf(parent, sizeof(parent), "%s", st->dir);
	char *slash = strrchr(parent, '/');
	fmsg[0] = 0;
	if (slash && slash != parent) {
		*slash = 0;
		if (fsync_dir(parent, fmsg, sizeof(fmsg)) != -ETIMEDOUT)
			fmsg[0] = 0;
	}
	snprintf(msg, len, "image of %s written to %s; process %d keeps running%s%s%s", st->prog, st->dir, pid,
		 fmsg[0] ? " (warning: " : "", fmsg, fmsg[0] ? "; the rename may not survive a crash)" : "");
	return 0;
}

/*
 * The writer's cleanup: DIR.new-PID (an image a crac start of pid PID made
 * but never put in place) and DIR.new-PID.old (the image it replaced,
 * moved aside, where the file system cannot swap) when PID is gone or is
 * us, and, by the image
 * engine's rule (crac_img_clean_stale: the writer's pid and start time in
 * the name; only ours), the unfinished DIR.new-PID.tmp-... of writers that
 * are gone. Nothing followed through a symbolic link, nothing of others.
 */
static void clean_stale_new(const struct start *st)
{
	char parent[PATH_MAX], nd[PATH_MAX + 32], prefix[NAME_MAX + 8];
	const char *slash = strrchr(st->dir, '/');
	int removed = 0, n;

	snprintf(parent, sizeof(parent), "%.*s", slash == st->dir ? 1 : (int)(slash - st->dir), st->dir);
	snprintf(prefix, sizeof(prefix), "%s.new-", slash + 1);
	/* the listing bounded by --timeout, as the removals */
	static char names[16384];
	char lmsg[PATH_MAX + 300];
	size_t nlen, pl = strlen(prefix);
	int lrc = crac_img_list_msg(parent, prefix, names, sizeof(names), &nlen, lmsg, sizeof(lmsg));
	if (lrc == -ETIMEDOUT)
		cli_err("start: warning: the cleanup of unfinished images of %s stopped: %s", st->dir, lmsg);
	if (lrc < 0)
		return;
	for (size_t at = 0; at < nlen; at += strlen(names + at) + 1) {
		const char *name = names + at;
		char *end;
		long pid = strtol(name + pl, &end, 10);
		if (end == name + pl || pid <= 0 || pid > INT_MAX)
			continue;
		snprintf(nd, sizeof(nd), "%s.new-%ld", st->dir, pid);
		bool gone = pid == getpid() || (kill((pid_t)pid, 0) < 0 && errno == ESRCH);
		if ((!*end || !strcmp(end, OLD_SUFFIX)) && gone) {
			if (*end)
				strcat(nd, OLD_SUFFIX);   /* (nd has room: PATH_MAX + 32) */
			int rc = remove_image(nd);   /* (bounded: given up, said) */
			removed += rc == 0;
			if (rc == -ETIMEDOUT)
				break;   /* no further look at a file system that does not answer */
		} else if (!strncmp(end, ".tmp-", 5)) {
			/* bounded by --timeout (image/dir.c's helpers): a file
			 * system that does not answer ends the cleanup, said */
			char msg[PATH_MAX + 400];
			int rc = crac_img_clean_stale_msg(nd, &n, msg, sizeof(msg));
			if (rc == 0 || rc == -ETIMEDOUT)
				removed += n;
			if (rc == -ETIMEDOUT) {
				cli_err("start: warning: the cleanup of unfinished images of %s stopped: %s", st->dir, msg);
				break;
			}
			if (rc == 0 && msg[0])   /* a previous image not put back, and why */
				cli_err("start: warning: %s", msg);
		}
	}
	if (removed)
		cli_err("start: removed %d unfinished image%s of %s left by writers that are gone", removed,
			removed == 1 ? "" : "s", st->dir);
}

/*
 * install() on a file system without RENAME_EXCHANGE moves the previous
 * image aside (DIR.new-PID.old) and then renames the new one into place: a
 * crac start killed between the two left no DIR at all, and the next
 * writer's clean_stale_new removed both images (the next start cold, the
 * one after it too, until an image was written again). So, while DIR is
 * absent, the image a crac start that is gone moved aside is put back
 * first (it was DIR: complete, its start-key written), under the writer's
 * lock (byte 1: no install runs meanwhile; held by another crac start,
 * nothing is done). Only a directory of ours, never through a link.
 */
static void put_back_aside(struct start *st)
{
	char parent[PATH_MAX], aside[PATH_MAX + 32], prefix[NAME_MAX + 8];
	const char *slash = strrchr(st->dir, '/');
	struct stat sb;
	char smsg[2 * PATH_MAX + 400];
	int src;

	/* the lstats bounded by --timeout as the listing */
	if ((src = crac_img_lstat_msg(st->dir, &sb, smsg, sizeof(smsg))) == -ETIMEDOUT)
		cli_err("start: warning: %s", smsg);   /* (usable() looks again, and says it) */
	if (src != -ENOENT || !slash)
		return;
	if ((src = ofd_lock(st->lock_fd, F_WRLCK, 1, false)) < 0) {
		if (src == LOCK_GIVEN_UP) {
			cli_err("start: warning: %s is missing, and the search for an image moved aside stopped: %s",
				st->dir, lock_msg);
			st->fs_stuck = true;
		}
		return;   /* a writer at work: its own business */
	}
	snprintf(parent, sizeof(parent), "%.*s", slash == st->dir ? 1 : (int)(slash - st->dir), st->dir);
	snprintf(prefix, sizeof(prefix), "%s.new-", slash + 1);
	/* the listing bounded by --timeout (a file system that does not
	 * answer: nothing put back, said) */
	static char names[16384];
	char lmsg[PATH_MAX + 300];
	size_t nlen = 0, pl = strlen(prefix);
	if (crac_img_list_msg(parent, prefix, names, sizeof(names), &nlen, lmsg, sizeof(lmsg)) == -ETIMEDOUT)
		cli_err("start: warning: %s is missing, and the search for an image moved aside stopped: %s",
			st->dir, lmsg);
	for (size_t at = 0; at < nlen; at += strlen(names + at) + 1) {
		const char *name = names + at;
		char *end;
		long pid = strtol(name + pl, &end, 10);
		if (end == name + pl || pid <= 0 || pid > INT_MAX || strcmp(end, OLD_SUFFIX))
			continue;
		if (pid != getpid() && !(kill((pid_t)pid, 0) < 0 && errno == ESRCH))
			continue;   /* its writer still runs (and puts it back itself if it must) */
		snprintf(aside, sizeof(aside), "%s.new-%ld%s", st->dir, pid, OLD_SUFFIX);
		if ((src = crac_img_lstat_msg(aside, &sb, smsg, sizeof(smsg))) == -ETIMEDOUT)
			cli_err("start: warning: %s", smsg);
		if (src < 0 || !S_ISDIR(sb.st_mode) || sb.st_uid != geteuid())
			continue;
		/* the rename and the fsync bounded by --timeout as well */
		if ((src = crac_img_rename_msg(aside, st->dir, 0, smsg, sizeof(smsg))) == 0) {
			if (fsync_dir(parent, smsg, sizeof(smsg)) == -ETIMEDOUT)
				cli_err("start: warning: %s (the rename may not survive a crash)", smsg);
			cli_err("start: %s was missing: put back the image a crac start that is gone had moved "
				"aside to %s (it was killed while it replaced the image)", st->dir, aside);
			break;
		}
		if (src == -ETIMEDOUT) {
			cli_err("start: warning: %s is missing, and putting back the image moved aside to %s "
				"stopped: %s", st->dir, aside, smsg);
			st->fs_stuck = true;
			break;
		}
	}
	ofd_lock(st->lock_fd, F_UNLCK, 1, false);
}

/* The CHECKPOINT request of a warm or cold start: the image engine,
 * writing into newdir (DIR.new-PID, renamed to DIR once written), the
 * program kept running. Static: the supervisor keeps the pointer. */
static const char *const *checkpoint_tokens(const char *newdir)
{
	static const char *tokens[5];
	static char image_tok[PATH_MAX + 32 + 8];   /* "image=" DIR.new-PID */

	snprintf(image_tok, sizeof(image_tok), "image=%s", newdir);
	tokens[0] = "CHECKPOINT";
	tokens[1] = "engine=image";
	tokens[2] = image_tok;
	tokens[3] = "keep=1";
	tokens[4] = NULL;
	return tokens;
}

/* The restored process answers: its image may be replaced now. */
static void restored(struct cli_super *s)
{
	struct start *st = s->priv;

	if (st->image_lock) {
		ofd_lock(st->lock_fd, F_UNLCK, 0, false);
		st->image_lock = false;
	}
	if (st->restore_lock) {
		ofd_lock(st->lock_fd, F_UNLCK, 2, false);
		st->restore_lock = false;
	}
}

/* ---- the command ------------------------------------------------------------------- */

static void start_usage(FILE *f)
{
	fprintf(f,
		"usage: crac start --image DIR [--key K] [--quiet] [triggers] -- PROG [ARGS...]\n"
		"Restores DIR if it holds an image of PROG (same executable and arguments, or the same\n"
		"--key) that restores here; else says why once, starts PROG cold as `crac run` does and,\n"
		"when a trigger fires, writes a fresh DIR while the program keeps running.\n"
		"  --image DIR            the image directory (made absolute); DIR.lock next to it\n"
		"  --key K                the image is PROG's if it was made with the same K (the\n"
		"                         arguments and executable may differ)\n"
		"  --quiet, -q            no line for a restore or an image written (reasons stay)\n"
		"  --timeout DURATION     how long one look at DIR's file system by crac start itself\n"
		"                         (the reads of DIR's files, the install of a new image, the\n"
		"                         removal of unfinished images left by writers that are gone)\n"
		"                         may take before it is given up on, naming the step and the\n"
		"                         path (500ms, 10s, 2m; default 10s; 0: no limit); given up\n"
		"                         before the start: a cold start that writes no image\n"
		"%s"
		"  --help                 this text\n"
		"A restored program gets the current environment and PROG ARGS as its new environment and\n"
		"arguments. With $NOTIFY_SOCKET, READY=1 is sent once the restored process answers (a cold\n"
		"program's own notifications are relayed). Sockets of socket activation (LISTEN_FDS) are\n"
		"handed to the restored program at the numbers it had them at its checkpoint.\n"
		"exit status: the program's (killed by a signal: the same signal); 2 usage error;\n"
		"125 crac could not start anything; 126/127 PROG not executable / not found\n",
		cli_triggers_help);
}

int crac_cmd_start(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "image", required_argument, 0, 'i' },
		{ "key", required_argument, 0, 'K' },
		{ "quiet", no_argument, 0, 'q' },
		{ "timeout", required_argument, 0, 'T' },
		{ "help", no_argument, 0, 'h' },
		CLI_TRIGGER_LONGOPTS,
		{ 0, 0, 0, 0 },
	};
	static struct start st = { .lock_fd = -1 };
	lock_owner = &st;
	static struct cli_super s;
	const char *key = NULL;
	bool quiet = false, have_dir = false;
	long long timeout_ms = 10000;   /* --timeout */
	static char bound[64];
	/* act: the CRAC_ACTIVATION_FDS= entry for the loader, as long as the
	 * loader takes (loader/activation.h: 4096 sockets) */
	static char act[CRAC_ACTIVATION_ENV_MAX];
	char why[16384], lock[PATH_MAX + 8];
	int c, t;

	cli_super_init(&s, "start");
	optind = 0;
	while ((c = cli_getopt(argc, argv, "+:i:K:qh", opts, "usage: crac start --image DIR [options] -- PROG [ARGS...]; crac start --help")) != -1 && c != CLI_OPERAND) {
		if ((t = cli_trigger_opt(&s.trig, c, optarg)) < 0)
			return 2;
		if (t)
			continue;
		switch (c) {
		case 'i':
			/* DIR.new-PID.tmp-PID-START-XXXXXX must fit as well */
			if (cli_path_arg("start --image", optarg, CLI_IMAGE_DIR_MAX - 20, true, st.dir,
					 sizeof(st.dir)) < 0)
				return 2;
			for (size_t n = strlen(st.dir); n > 1 && st.dir[n - 1] == '/'; n--)
				st.dir[n - 1] = 0;
			have_dir = true;
			break;
		case 'K':
			key = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'T':
			if ((timeout_ms = cli_parse_duration(optarg)) < 0) {
				cli_err("--timeout wants a duration (500ms, 10s, 2m; 0: no limit), got \"%s\"", optarg);
				return 2;
			}
			break;
		case 'h':
			start_usage(stdout);
			return 0;
		default:
			return 2;   /* said by cli_getopt */
		}
	}
	if (!have_dir || optind >= argc) {
		cli_err("usage: crac start --image DIR [options] -- PROG [ARGS...] (crac start --help)");
		return 2;
	}
	if (!cli_triggers_any(&s.trig)) {
		cli_err("start: say when PROG is warm enough to checkpoint: --checkpoint-after, "
			"--checkpoint-when-listening, --checkpoint-on-ready or --checkpoint-on (crac start --help)");
		return 2;
	}
	/* each bounded step of image/dir.c waits at most --timeout */
	snprintf(bound, sizeof(bound), "crac start --timeout, %lld ms", timeout_ms);
	crac_img_fs_limit(0, (long)timeout_ms, timeout_ms ? bound : NULL);
	char **args = argv + optind;
	st.prog = args[0];
	s.quiet = quiet;
	s.priv = &st;
	s.installed = install;
	s.restored = restored;
	if (cli_listen_fds() > 0)
		s.listen_fds = cli_listen_fds();
	if (!(st.key = make_key(key, args))) {
		cli_err("start: out of memory");
		return 125;
	}
	/* Full images only: the image crac start writes replaces DIR, so an
	 * incremental one would name as its parent the image it replaces
	 * (removed) or DIR itself. Neither the cold program nor the restored
	 * one (its environment is this one) gets the variable. */
	if (getenv("CRAC_IMAGE_INCREMENTAL")) {
		crac__log(CRAC_LOG_INFO, "start: CRAC_IMAGE_INCREMENTAL is not passed on: crac start writes full "
			  "images (each replaces %s, which an incremental image would reference)", st.dir);
		unsetenv("CRAC_IMAGE_INCREMENTAL");
	}
	/* DIR.lock: a regular file of ours only we may write, no link
	 * followed; else no restore, and a cold start that writes nothing */
	snprintf(lock, sizeof(lock), "%s.lock", st.dir);
	snprintf(lock_path, sizeof(lock_path), "%s", lock);
	/* its open and fstat bounded by --timeout (image/dir.c's helper): a
	 * file system that does not answer makes a cold start, said */
	struct stat lb;
	char omsg[PATH_MAX + 300];
	int rc = 0, stop = 0;
	st.lock_fd = crac_img_open_msg(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0600, &lb, omsg,
				       sizeof(omsg));
	if (st.lock_fd < 0) {
		snprintf(why, sizeof(why), "cannot open the lock file %s: %s", lock,
			 st.lock_fd == -ETIMEDOUT && omsg[0] ? omsg : strerror(-st.lock_fd));
		st.lock_fd = -1;
	} else if (!S_ISREG(lb.st_mode) || lb.st_uid != geteuid() || (lb.st_mode & 022)) {
		snprintf(why, sizeof(why), "the lock file %s is not a regular file of this user that only it may "
			 "write", lock);
		close(st.lock_fd);
		st.lock_fd = -1;
	}
	if (st.lock_fd >= 0) {
		put_back_aside(&st);   /* DIR moved aside by a writer killed while replacing it */
		if (st.lock_fd < 0)   /* its lock given up on: DIR.lock closed (lock_drop) */
			snprintf(why, sizeof(why), "cannot lock %s: %s", lock, lock_msg);
	}
	if (st.lock_fd < 0) {
		/* (why says it) */
	} else if ((rc = ofd_lock_stop(st.lock_fd, F_RDLCK, 0, true, &stop)) < 0) {
		/* 2. restore? (shared on byte 0: DIR is not swapped meanwhile) */
		if (rc == -EINTR)
			return cli_super_end(&s, stop);   /* a stop signal: ended by it */
		snprintf(why, sizeof(why), "cannot lock %s: %s", lock, rc == LOCK_GIVEN_UP ? lock_msg :
			 rc == -ETIMEDOUT ? "held by another process for 10 s" : strerror(-rc));
		st.fs_stuck |= rc == LOCK_GIVEN_UP;
	} else if ((rc = ofd_lock_stop(st.lock_fd, F_WRLCK, 2, true, &stop)) < 0) {
		/* 2'. one restore at a time (byte 2) */
		ofd_lock(st.lock_fd, F_UNLCK, 0, false);
		if (rc == -EINTR)
			return cli_super_end(&s, stop);
		snprintf(why, sizeof(why), "cannot lock %s: %s", lock, rc == LOCK_GIVEN_UP ? lock_msg :
			 rc == -ETIMEDOUT ? "another crac start has been restoring the image for 10 s" : strerror(-rc));
		st.fs_stuck |= rc == LOCK_GIVEN_UP;
	} else {
		st.image_lock = st.restore_lock = true;
	}
	if (st.image_lock && usable(&st, s.listen_fds, act, sizeof(act), why, sizeof(why)) == 0) {
		char self[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		size_t ne = 0, na = 0;
		while (environ[ne])
			ne++;
		while (args[na])
			na++;
		/* The environment goes to `crac restore` twice (as its own
		 * and as --env): too large for one exec is a reason, said,
		 * not a restore that fails every time. */
		size_t bytes = 0, longest = 0;
		for (size_t i = 0; i < ne; i++) {
			size_t l = strlen(environ[i]) + 1;
			bytes += 2 * (l + sizeof(char *)) + 6 + sizeof(char *);
			longest = l > longest ? l : longest;
		}
		for (size_t i = 0; i < na; i++) {
			size_t l = strlen(args[i]) + 1;
			bytes += l + sizeof(char *);
			longest = l > longest ? l : longest;
		}
		long arg_max = sysconf(_SC_ARG_MAX);
		if ((arg_max > 0 && bytes + 65536 > (size_t)arg_max) || longest > 32 * 4096) {
			snprintf(why, sizeof(why), "the environment and arguments (%zu bytes) are too large to pass to "
				 "the restore (the environment goes twice: ARG_MAX %ld, 128 KiB a string)", bytes, arg_max);
			goto cold;
		}
		/*
		 * The child execs the loader itself, as `crac restore DIR`
		 * would after its own start: one exec of a dynamically linked
		 * crac fewer before the program runs. What `crac restore` does
		 * first is done here already (DIR checked and absolute; the
		 * activation sockets in act) or not wanted (--timens and the
		 * other options are not crac start's). Without a loader, the
		 * restore goes through `crac restore`, which says why.
		 */
		char **rargv = calloc(2 * ne + na + 12, sizeof(char *));
		if (n <= 0 || !rargv) {
			cli_err("start: cannot find crac itself (/proc/self/exe)");
			return 125;
		}
		self[n] = 0;
		int k = 0;
		static char loader[PATH_MAX];
		char lmsg[PATH_MAX + 400];
		int lrc = crac_img_loader_path(loader, sizeof(loader), lmsg, sizeof(lmsg));
		if (lrc == 0) {
			rargv[k++] = loader;
		} else if (lrc == -ETIMEDOUT) {
			/* bounded by --timeout: `crac restore` would search again */
			snprintf(why, sizeof(why), "the search for the restore loader stopped: %s", lmsg);
			free(rargv);
			goto cold;
		} else {
			rargv[k++] = self;
			rargv[k++] = "restore";
		}
		/* the new environment: ours, with the NOTIFY_SOCKET of the supervisor */
		for (size_t i = 0; i < ne; i++) {
			if (!strncmp(environ[i], "NOTIFY_SOCKET=", 14) || !strncmp(environ[i], "LISTEN_PID=", 11) ||
			    !strncmp(environ[i], "CRAC_ACTIVATION_FDS=", 20) || !strchr(environ[i], '=') ||
			    environ[i][0] == '=')
				continue;
			rargv[k++] = "--env";
			rargv[k++] = environ[i];
		}
		char notify_kv[200];
		s.warm = true;   /* before its NOTIFY_SOCKET is made, or not (cli_super_prepare) */
		if (cli_super_prepare(&s) < 0)
			return 125;
		if (s.notify_dir[0]) {
			snprintf(notify_kv, sizeof(notify_kv), "NOTIFY_SOCKET=%s", s.notify_path);
			rargv[k++] = "--env";
			rargv[k++] = notify_kv;
		} else {
			/* none: the restored environment must not keep the socket
			 * of the run that made the image, which is gone (the
			 * restore sets variables, it removes none: empty is
			 * what sd_notify and its kin take for "not under a
			 * service manager") */
			rargv[k++] = "--env";
			rargv[k++] = "NOTIFY_SOCKET=";
		}
		rargv[k++] = st.dir;
		rargv[k++] = "--";
		for (size_t i = 0; i < na; i++)
			rargv[k++] = args[i];
		rargv[k] = NULL;
		/*
		 * The loader writes a byte to this pipe at its point of no
		 * return: a child that ends without it was refused (nothing of
		 * the program ran: start it cold); one that ends after it is
		 * the restored program, whose end is ours (never run twice).
		 */
		int ponr[2];
		static char ponr_kv[40];
		if (pipe2(ponr, O_CLOEXEC) < 0 || fcntl(ponr[1], F_SETFD, 0) < 0 ||
		    fcntl(ponr[0], F_SETFL, O_NONBLOCK) < 0) {
			cli_err("start: pipe: %s", strerror(errno));
			return 125;
		}
		snprintf(ponr_kv, sizeof(ponr_kv), "CRAC_LOADER_PONR_FD=%d", ponr[1]);
		s.ponr_fd = ponr[0];
		char *extra[3] = { ponr_kv, act[0] ? act : NULL, NULL };
		s.armed = false;   /* warm already: only --checkpoint-on refreshes the image */
		st.newdir[0] = 0;
		snprintf(st.newdir, sizeof(st.newdir), "%s.new-%d", st.dir, (int)getpid());
		s.tokens = checkpoint_tokens(st.newdir);
		/* a writer lock for --checkpoint-on refreshes */
		if (s.trig.on_signal && ofd_lock(st.lock_fd, F_WRLCK, 1, false) < 0)
			s.no_write_why = "another crac start is writing the image (this one is not the writer)";
		pid_t child = cli_super_spawn(&s, rargv, extra);
		close(ponr[1]);
		if (child < 0)
			return 125;
		int ws = cli_super_wait(&s, true);
		close(ponr[0]);
		s.ponr_fd = 0;
		s.no_write_why = NULL;
		free(rargv);
		if (!(ws & CLI_SUPER_RESTORE_FAILED))
			return ws;
		ws &= 0xffff;
		if (WIFEXITED(ws))
			snprintf(why, sizeof(why), "the restore of %s failed (exit status %d, its reason above)",
				 st.dir, WEXITSTATUS(ws));
		else
			snprintf(why, sizeof(why), "the restore of %s failed (killed by signal %d)", st.dir,
				 WTERMSIG(ws));
		restored(&s);
		s.child = 0;
		s.warm = false;   /* cold: its NOTIFY_SOCKET is made now, if it needs one */
	}
cold:
	if (st.image_lock) {
		ofd_lock(st.lock_fd, F_UNLCK, 0, false);
		st.image_lock = false;
	}
	if (st.restore_lock) {
		ofd_lock(st.lock_fd, F_UNLCK, 2, false);
		st.restore_lock = false;
	}

	/* 3. cold: the writer is the one holding byte 1, if DIR may be written */
	char twhy[PATH_MAX + 1024] = "";
	bool writer = false;
	if (st.lock_fd < 0 && !st.fs_stuck)
		snprintf(twhy, sizeof(twhy), "without a lock file it writes no image");
	else if (st.fs_stuck)
		snprintf(twhy, sizeof(twhy), "the file system of %s does not answer", st.dir);
	else if (target_ok(st.dir, twhy, sizeof(twhy)) == 0 && (rc = ofd_lock(st.lock_fd, F_WRLCK, 1, false)) == 0)
		writer = true;
	else if (!twhy[0] && rc == LOCK_GIVEN_UP)
		snprintf(twhy, sizeof(twhy), "%s", lock_msg);
	cli_err("start: %s: starting %s cold%s%s%s", why, st.prog,
		writer || twhy[0] ? "" : " (another crac start is writing the image: this one writes none)",
		twhy[0] ? "; it writes no image: " : "", twhy);
	if (twhy[0])
		s.no_write_why = "this crac start writes no image (said at its start)";
	if (cli_preload_env() < 0)
		return 2;
	setenv("CRAC_ENGINE", "image", 1);
	snprintf(st.newdir, sizeof(st.newdir), "%s.new-%d", st.dir, (int)getpid());
	if (writer)
		clean_stale_new(&st);   /* DIR.new-* of writers that are gone (and ours) */
	s.tokens = checkpoint_tokens(st.newdir);
	s.armed = writer;
	if (!writer && !s.no_write_why)
		s.no_write_why = "another crac start is writing the image (this one is not the writer)";
	if (cli_super_spawn(&s, args, NULL) < 0)
		return 125;
	return cli_super_wait(&s, false);
}
