/* SPDX-License-Identifier: MIT */
/*
 * ctl_dir.h - the control endpoint's directory reached once, component by
 * component, and held by a descriptor (see ctl_dir.c): every later step of
 * the setup (control.c) acts relative to that descriptor, never by the path
 * again.
 */
#ifndef CRAC_CORE_CTL_DIR_H
#define CRAC_CORE_CTL_DIR_H

#include "core/internal.h"

#include <stdbool.h>
#include <stdint.h>

/* Where crac_ctl_dir_open stopped. */
enum crac_ctl_walk_step {
	CTL_WALK_OK,
	CTL_WALK_OPEN,     /* the open of a directory above (at) failed: err */
	CTL_WALK_LINK,     /* at is a symbolic link others may replace: refused (-ELOOP) */
	CTL_WALK_MKDIR,    /* the mkdir of the directory failed: err */
	CTL_WALK_DIR,      /* the directory itself: err from its open, or -EPERM (refused: mode, uid) */
};

/* The answer of crac_ctl_dir_open (filled in by a helper: fixed buffers). */
struct crac_ctl_walk {
	int dfd;                    /* the directory (O_PATH, close-on-exec); -1: none */
	int err;                    /* 0 or -errno */
	enum crac_ctl_walk_step step;
	/* Every directory on the way, the directory itself included, was
	 * reached through an entry no other uid can replace (its directory is
	 * owned by uid or root and writable by nobody else, or sticky with the
	 * entry owned by uid or root): the path names the same directory for
	 * as long as only uid and root act. Else untrusted names the first
	 * such entry. */
	bool trusted;
	char at[256];               /* the path at fault (CTL_WALK_OPEN, CTL_WALK_LINK), truncated */
	char untrusted[256];        /* !trusted: the first entry others may replace, truncated */
	unsigned mode, uid;         /* CTL_WALK_DIR, CTL_WALK_OK: what is at the directory's name */
	unsigned long dev, ino;     /* CTL_WALK_OK: the directory's identity */
};

/*
 * Opens the directory dir (absolute, or relative to the working directory:
 * then never trusted) for a process of effective uid uid, without a path
 * lookup that another uid could redirect: from "/", one component at a
 * time with openat(O_PATH | O_NOFOLLOW). A symbolic link on the way is
 * followed only where no other uid can replace it (see trusted); one that
 * could be is refused (CTL_WALK_LINK), for it could be swapped between
 * this look and any later one. The last component (the directory itself)
 * is never followed: create: made first (mkdirat, mode 0700); then it must
 * be a real directory owned by uid with mode 0700 (else -EPERM,
 * CTL_WALK_DIR, with its mode and uid in w).
 *
 * Raw system calls only, no lock taken, no memory allocated: for the
 * helpers of image/bounded.c (control.c runs it in one). Returns w->err;
 * on success w->dfd is the directory, to be closed by the caller.
 */
int crac_ctl_dir_open(const char *dir, unsigned uid, bool create, struct crac_ctl_walk *w) CRAC_HIDDEN;

/*
 * Writes "/proc/self/fd/FD/NAME" (NAME NULL or empty: "/proc/self/fd/FD")
 * into out (len bytes): a path that reaches the file through descriptor fd
 * of the calling process's table, whatever became of the directory's path.
 * Returns the length, or -ENAMETOOLONG. No libc.
 */
int crac_ctl_via_fd(char *out, unsigned len, long fd, const char *name) CRAC_HIDDEN;

/*
 * Writes "PID-RANDOM" and suffix into out (48 bytes are enough: 10 digits,
 * '-', 16 hex digits, a suffix of up to 20): 64 random bits (getrandom;
 * where that fails, the clock mixed with attempt). A name no other process
 * picks, whatever its pid namespace. No libc.
 */
void crac_ctl_unique_name(char *out, int pid, const char *suffix, unsigned attempt) CRAC_HIDDEN;

/* What crac_ctl_sweep found and did. */
struct crac_ctl_swept {
	unsigned removed;     /* stale temporaries removed */
	unsigned kept;        /* temporaries (or look-alikes) of a dead pid left alone: see why */
	int err;              /* 0, or the -errno of reading the directory (the sweep stopped) */
};

/*
 * Removes the stale temporaries of the control directory dfd (O_PATH, as
 * crac_ctl_dir_open left it): PID-RANDOM.tmp (a socket bound by a setup
 * that never renamed it: killed between bind and rename) and
 * PID-RANDOM.stale (a stale socket set aside by clear_stale, its remover
 * killed before the unlink), 16 hex digits of RANDOM. One is removed only
 * when all of these hold, checked in this order:
 *  - PID is not self_pid and no process of that pid exists in our pid
 *    namespace (kill(PID, 0): ESRCH);
 *  - it is a socket (not followed: a symbolic link, a FIFO, a directory,
 *    a regular file are never touched) owned by uid;
 *  - its last change (ctime, mtime) is min_age_ns old or more: a process
 *    of another pid namespace sharing the directory, whose pid is not one
 *    of ours, may be between its bind and its listen right now; its setup
 *    is given up long before that age;
 *  - nothing listens on it (a connect, through via/NAME, is refused): a
 *    process of another pid namespace may be listening on it, not yet
 *    renamed;
 *  - it is still the file looked at when it is removed: renamed aside
 *    (RENAME_NOREPLACE) to a name of our own, self_pid-RANDOM.stale, and
 *    removed there only if its dev and inode are the ones looked at (else
 *    renamed back).
 * via: how connect() reaches the directory ("/proc/self/fd/DFD", or its
 * path where that cannot be used). At most max_scan entries are looked at
 * and max_remove removed: the sweep runs within the setup's bound.
 * Raw system calls only, no lock, no allocation (as crac_ctl_dir_open).
 * Returns the number removed, or out->err.
 */
int crac_ctl_sweep(int dfd, const char *via, unsigned uid, int self_pid, int64_t min_age_ns, unsigned max_scan,
		   unsigned max_remove, struct crac_ctl_swept *out) CRAC_HIDDEN;

#endif
