/* SPDX-License-Identifier: MIT */
/*
 * dir.c - the image directory on disk (library side, uses libc).
 *
 * The target: a checkpoint writes DIR only if nothing is there or DIR is
 * a crac image of the caller (crac_img_target_check: a real directory, not
 * a symbolic link, owned by the caller, holding only `header` (starting
 * with the image magic) and `pages`). Anything else is refused before
 * anything is written, and checked again just before the rename.
 *
 * Writing: the engine writes into DIR.tmp-PID-START-XXXXXX (0700, files
 * 0600; PID and START, the writer's pid and start time, say whether the
 * writer still runs), fsyncs every file and the directory, then
 * crac_img_commit() puts it in place with one atomic rename
 * (RENAME_EXCHANGE when DIR already exists, so that at every instant DIR is
 * either the complete old image or the complete new one), fsyncs the parent
 * and removes the old image.
 *
 * Temporaries whose writer is gone (killed during a checkpoint) are removed
 * by the next checkpoint to the same DIR (crac_img_clean_stale); a writer
 * holds a lock (flock) on its temporary until the rename, and a locked
 * temporary is never removed, whatever its name says (a writer in another
 * pid namespace);
 * crac_img_tmp_describe() explains one to `crac inspect`.
 *
 * Reading (`crac inspect`, tests): crac_img_load() reads and validates the
 * header and checks the pages file size.
 *
 * Functions used while other threads are stopped (everything but
 * crac_img_load/crac_img_unload) make system calls only: no malloc, no
 * stdio, because a stopped thread may hold their locks.
 */

#include "image/dir.h"
#include "image/bounded.h"
#include "image/check.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* renameat2 flags (glibc 2.36 has the wrapper; keep the constants local). */
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

int crac_img_split_path(const char *dir, char *parent, size_t plen, const char **base)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;             /* "img/" -> "img" */
	if (n == 0 || n >= plen)
		return -ENAMETOOLONG;
	memcpy(parent, dir, n);
	parent[n] = 0;
	char *slash = strrchr(parent, '/');
	if (!slash) {
		*base = dir;
		strcpy(parent, ".");
		return 0;
	}
	*base = dir + (slash - parent) + 1;
	if (slash == parent)
		slash[1] = 0;    /* "/img": parent "/" */
	else
		*slash = 0;
	return 0;
}

/* ---- operations bounded by the deadline ---------------------------------------- */

/*
 * A file system that stopped answering (an NFS or FUSE server gone) keeps
 * an fsync, an unlink, a stat, a directory listing or a rename in the
 * kernel for as long as it likes. Each of these calls here (the target
 * check: is the parent an image, what is at DIR and in it; the commit's
 * renames and its look at what a rename took out of place; the fsync of
 * the parent in the commit step; the listing of the parent for stale
 * temporaries and their removal; the removal of an image directory: the
 * unfinished one of a failed checkpoint, the previous one after the
 * commit; the image engine's fsyncs when it has no helper of its own) is
 * made by a helper of image/bounded.c, as the image engine's fsyncs on the
 * other core are (src/engines/image_capture.c), and waited for until the
 * deadline (crac_img_fs_deadline), no sooner than the grace; then the call
 * fails with -ETIMEDOUT naming the directory and the step it was at.
 * Without a helper (under a seccomp filter, clone refused) the call is
 * made in the caller's thread, unbounded.
 *
 * The helper writes what it learns only from its own stack into the
 * caller's memory (a call given up on may return later and have the kernel
 * write its result: into the helper's stack, which stays mapped until the
 * helper is gone, or a mapping of its own (FSOP_READ, FSOP_HEADER), left
 * mapped then, never into the caller's frame or buffer, reused or freed by
 * then; the helper itself runs nothing once it was given up on: bounded.c).
 *
 * Where the caller has a limit of its own (the checkpoint's deadline before
 * the callbacks, a command's --timeout), crac_img_fs_limit sets it without
 * the grace, and the messages name it.
 *
 * CRAC_TEST_SLOW_FS=OP:MS (tests only; OP `fsync`, `remove`, `check`,
 * `rename`, `clean`, `access`, `list`, `open`, `lstat`, `realpath`,
 * `read` (crac_img_read_part_msg: its caller's name, the criu engine's
 * `criu-log`, `criu-out`, `criu-verify`), `write`, `header`, `du`,
 * `stat`, `put`, `lock`, `putback` (a cleaner's put-back of a previous
 * image moved aside), `loader` (the search for the restore loader),
 * `librealpath` (the resolution of the libcrac.so found), or `move`:
 * crac_img_rename_msg's renames): the operation first sleeps MS ms; `aside`: the commit sleeps MS
 * ms once it moved the previous image aside (no RENAME_EXCHANGE);
 * `opened`: crac_img_open_msg's helper sleeps MS ms once the file is open
 * (given up on, it holds a descriptor: one of its own table, see
 * fsop_bounded); `locked`: crac_img_ofd_lock_msg's helper sleeps MS ms
 * once its lock is granted (a lock granted after it was given up on),
 * a file system that does not answer; `renamed`: the helper of a rename
 * (fs_rename_as) sleeps MS ms once its rename is made, and no longer dies
 * with its caller meanwhile (a helper that ends after its caller was
 * killed: a busy machine, where the kernel gets to the helper's end late,
 * or a call that returns late; see cli/watch.c).
 *
 * System calls only: crac_img_fsync_fd may be called while the program's
 * other threads are stopped (crac_img_fs_prepare binds beforehand what
 * needs binding).
 */
enum fsop_kind { FSOP_FSYNC, FSOP_FSYNC_FD, FSOP_REMOVE, FSOP_RENAME, FSOP_SAME, FSOP_TARGET, FSOP_LIST,
		 FSOP_ACCESS, FSOP_OPEN, FSOP_LSTAT, FSOP_REALPATH, FSOP_READ, FSOP_WRITE, FSOP_HEADER, FSOP_DU, FSOP_PUT,
		 FSOP_LOCK, FSOP_PUTBACK, FSOP_MKDIR };

/* What the target check needs to know (FSOP_TARGET; see crac_img_target_check). */
struct target_facts {
	const char *dir;
	const char *parent;     /* NULL: DIR has no parent to look at */
	unsigned me;            /* geteuid() */
	const char *const *also; /* more names of ours in DIR (NULL-terminated), or NULL */
	bool parent_image;      /* the parent is a crac image */
	int lstat_res;          /* lstat of DIR: 0 or -errno */
	unsigned mode, uid;     /* DIR's */
	char link[256];         /* DIR is a symbolic link: to what (cut) */
	int open_res;           /* open and listing of DIR: 0 or -errno */
	int n_others;           /* entries other than header and pages of ours */
	char others[200];       /* the first three of them, ", " between */
	bool have_header;
	char magic[8];          /* the header's first bytes */
};

/* Names of the temporaries of one image in its parent (FSOP_LIST), or,
 * with prefix set, every name that starts with it (crac_img_list_msg). */
struct stale_list {
	const char *parent, *base;
	const char *prefix;
	char names[16384];      /* NUL after each; more wait for the next checkpoint */
	size_t len;
};

/* What the helper of crac_img_header_msg learns (FSOP_HEADER). */
struct header_read {
	const char *dir;
	char msg[1024];         /* why it failed (crac_img_open's or crac_img_read_header's line) */
	void *map;              /* the header, in an anonymous mapping of map_len bytes (the helper's mmap) */
	size_t map_len;
	struct crac_img_view v; /* its view (pointers into map) */
};

struct fsop {
	enum fsop_kind kind;
	const char *path;
	const char *to;         /* FSOP_RENAME: the new name; FSOP_PUTBACK: BASE */
	unsigned flags;         /* FSOP_RENAME: renameat2's */
	const struct stat *expect; /* FSOP_SAME: the directory expected at path */
	int fd;                 /* FSOP_FSYNC_FD; FSOP_ACCESS: the mode */
	bool data_only;         /* FSOP_FSYNC_FD: fdatasync */
	bool own_only;          /* FSOP_REMOVE: only a directory of this user's */
	const char *const *more; /* FSOP_REMOVE: more names to unlink (NULL-terminated), or NULL */
	const char *const *cands; /* FSOP_ACCESS: paths tried in turn (NULL-terminated) instead of path */
	long slow_ms;           /* CRAC_TEST_SLOW_FS */
	long slow_after_ms;     /* FSOP_OPEN: CRAC_TEST_SLOW_FS=opened:MS, a sleep once the file is open;
				 * FSOP_RENAME: renamed:MS, once the rename is made */
	int res;                /* 0 or -errno (FSOP_SAME: 1 the expected one, 0 another) */
	int step;               /* FSOP_REMOVE: 0 header, 1 pages, 2 + k more[k], then the directory
				 * (-1: a kept image, -2: locked, own_only);
				 * FSOP_TARGET: 0 the parent, 1 DIR, 2 its entries, 3 its header */
	struct target_facts *tf;   /* FSOP_TARGET */
	struct stale_list *sl;     /* FSOP_LIST */
	bool lock_ex;              /* FSOP_OPEN: then flock(LOCK_EX | LOCK_NB) it (-EWOULDBLOCK: held) */
	int xfer;                  /* FSOP_OPEN by a helper: the socket the descriptor is sent over; -1: none
				    * (set by fsop_bounded) */
	struct stat st;            /* FSOP_OPEN (fstat of the file opened), FSOP_LSTAT: copied by the helper */
	char *real;                /* FSOP_REALPATH: the path resolved, real_len bytes with its NUL;
				    * FSOP_READ: the contents read, real_len bytes at most */
	size_t real_len;
	enum crac_img_part part;   /* FSOP_READ: which bytes of the file */
	const char *data;          /* FSOP_WRITE, FSOP_PUT: what the new file holds, data_len bytes
				    * (FSOP_PUT: NULL, the file `to` in path is removed) */
	const char *tmpname;       /* FSOP_PUT: the temporary written first, in path */
	size_t data_len;
	struct header_read *hr;    /* FSOP_HEADER */
	long long bytes;           /* FSOP_DU: bytes of the regular files in path */
	long lock_byte;            /* FSOP_LOCK: the byte of fd locked (flags: the lock's type) */
};

/* The limit of the waits (crac_img_fs_limit). */
static int64_t fs_deadline_ns;     /* CLOCK_MONOTONIC; 0: none */
static long fs_grace_ms = -1;      /* -1: crac_bounded_grace_ms() */
static const char *fs_bound;       /* what the limit is, for messages; NULL: the checkpoint's default */

void crac_img_fs_deadline(int64_t mono_ns)
{
	crac_img_fs_limit(mono_ns, -1, NULL);
}

void crac_img_fs_limit(int64_t mono_ns, long grace_ms, const char *bound)
{
	fs_deadline_ns = mono_ns;
	fs_grace_ms = grace_ms;
	fs_bound = bound;
}

void crac_img_fs_prepare(void)
{
	crac_bounded_prepare();
	(void)getenv("CRAC_TEST_SLOW_FS");
}

/* The working set of an image (CRAC_IMG_WS_FILE), or the temporary name a
 * restore writes it under (engines/image_lazy.c ws_write). */
static bool ws_name(const char *n)
{
	return !strcmp(n, CRAC_IMG_WS_FILE) || !strncmp(n, "." CRAC_IMG_WS_FILE ".tmp-", sizeof(CRAC_IMG_WS_FILE) + 5);
}

/* Is the directory open as dfd a crac image (a regular file `header` with
 * the image magic in it)? Follows no symbolic link inside it. Raw system
 * calls. */
static bool raw_is_image_at(long dfd)
{
	char magic[8];
	struct stat st;
	bool yes = false;

	if (crac_raw_syscall5(SYS_newfstatat, dfd, (long)CRAC_IMG_HEADER_FILE, (long)&st, AT_SYMLINK_NOFOLLOW, 0) == 0 &&
	    S_ISREG(st.st_mode)) {
		long hfd = crac_raw_syscall3(SYS_openat, dfd, (long)CRAC_IMG_HEADER_FILE,
					     O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		yes = hfd >= 0 && crac_raw_syscall5(SYS_pread64, hfd, (long)magic, sizeof(magic), 0, 0) ==
					  (long)sizeof(magic) &&
		      !memcmp(magic, CRAC_IMG_MAGIC, sizeof(magic));
		if (hfd >= 0)
			crac_raw_syscall3(SYS_close, hfd, 0, 0);
	}
	return yes;
}

/* Is directory `path` a crac image (raw_is_image_at)? */
static bool raw_is_image_dir(const char *path)
{
	long dfd = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
	bool yes;

	if (dfd < 0)
		return false;
	yes = raw_is_image_at(dfd);
	crac_raw_syscall3(SYS_close, dfd, 0, 0);
	return yes;
}

/* getdents64's record. */
struct dent64 {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

/* Appends s to out (cap bytes), cut if it does not fit. */
static void append(char *out, size_t cap, const char *s)
{
	size_t n = strlen(out);

	while (*s && n + 1 < cap)
		out[n++] = *s++;
	out[n] = 0;
}

/* FSOP_TARGET: what is at DIR, in it, and whether its parent is an image. */
static void target_gather(struct fsop *op)
{
	struct target_facts *tf = op->tf;
	struct stat st;
	char dents[4096] __attribute__((aligned(8)));
	char magic[8] = { 0 };

	op->step = 0;
	tf->parent_image = tf->parent && raw_is_image_dir(tf->parent);
	if (tf->parent_image)
		return;
	op->step = 1;
	tf->lstat_res = (int)crac_raw_syscall5(SYS_newfstatat, AT_FDCWD, (long)tf->dir, (long)&st,
					       AT_SYMLINK_NOFOLLOW, 0);
	if (tf->lstat_res < 0)
		return;
	tf->mode = st.st_mode;
	tf->uid = st.st_uid;
	if (S_ISLNK(st.st_mode)) {
		char to[sizeof(tf->link)];
		long n = crac_raw_syscall5(SYS_readlinkat, AT_FDCWD, (long)tf->dir, (long)to, sizeof(to) - 1, 0);
		to[n > 0 ? n : 0] = 0;
		memcpy(tf->link, to, sizeof(to));
		return;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != tf->me)
		return;
	/* What is inside: only `header`, `pages` and the working set (and a
	 * temporary of it a killed restore left), regular files of ours. */
	op->step = 2;
	long dfd = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)tf->dir,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		tf->open_res = (int)dfd;
		return;
	}
	long got;
	while ((got = crac_raw_syscall3(SYS_getdents64, dfd, (long)dents, sizeof(dents))) > 0) {
		for (long at = 0; at < got;) {
			const struct dent64 *d = (const struct dent64 *)(dents + at);
			const char *n = d->name;
			at += d->reclen;
			if (!strcmp(n, ".") || !strcmp(n, ".."))
				continue;
			bool named = !strcmp(n, CRAC_IMG_HEADER_FILE) || !strcmp(n, CRAC_IMG_PAGES_FILE) || ws_name(n);
			for (size_t k = 0; !named && tf->also && tf->also[k]; k++)
				named = !strcmp(n, tf->also[k]);
			if (named &&
			    crac_raw_syscall5(SYS_newfstatat, dfd, (long)n, (long)&st, AT_SYMLINK_NOFOLLOW, 0) == 0 &&
			    S_ISREG(st.st_mode) && st.st_uid == tf->me) {
				tf->have_header |= !strcmp(n, CRAC_IMG_HEADER_FILE);
				continue;
			}
			if (tf->n_others++ < 3) {
				if (tf->others[0])
					append(tf->others, sizeof(tf->others), ", ");
				append(tf->others, sizeof(tf->others), n);
			}
		}
	}
	if (got < 0)
		tf->open_res = (int)got;
	if (tf->have_header) {
		op->step = 3;
		long hfd = crac_raw_syscall3(SYS_openat, dfd, (long)CRAC_IMG_HEADER_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (hfd < 0 || crac_raw_syscall5(SYS_pread64, hfd, (long)magic, sizeof(magic), 0, 0) != (long)sizeof(magic))
			memset(magic, 0, sizeof(magic));
		if (hfd >= 0)
			crac_raw_syscall3(SYS_close, hfd, 0, 0);
		memcpy(tf->magic, magic, sizeof(magic));
	}
	crac_raw_syscall3(SYS_close, dfd, 0, 0);
}

/* FSOP_LIST: the names in sl->parent that start with BASE.tmp- or BASE.old-. */
static void stale_list(struct fsop *op)
{
	struct stale_list *sl = op->sl;
	char dents[4096] __attribute__((aligned(8)));
	size_t bl = strlen(sl->prefix ? sl->prefix : sl->base);
	long dfd = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)sl->parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long got;

	if (dfd < 0) {
		op->res = (int)dfd;
		return;
	}
	op->res = 0;
	while ((got = crac_raw_syscall3(SYS_getdents64, dfd, (long)dents, sizeof(dents))) > 0) {
		for (long at = 0; at < got;) {
			const struct dent64 *d = (const struct dent64 *)(dents + at);
			size_t nl = strlen(d->name);
			at += d->reclen;
			if (sl->prefix ? strncmp(d->name, sl->prefix, bl) != 0
				       : strncmp(d->name, sl->base, bl) ||
						 (strncmp(d->name + bl, ".tmp-", 5) && strncmp(d->name + bl, ".old-", 5)))
				continue;
			if (sl->len + nl + 1 > sizeof(sl->names))
				continue;
			memcpy(sl->names + sl->len, d->name, nl + 1);
			sl->len += nl + 1;
		}
	}
	if (got < 0)
		op->res = (int)got;
	crac_raw_syscall3(SYS_close, dfd, 0, 0);
}

/* FSOP_HEADER: DIR, its header and pages files opened as the loader opens
 * them (crac_img_open: no link followed, never blocking, regular files
 * only), the header read into a mapping of the helper's (anonymous: the
 * caller unmaps it; one given up on is left mapped, as a late read may
 * still fill it) and validated (crac_img_read_header). Step 0 the opens,
 * 1 the read. */
static void header_read(struct fsop *op)
{
	struct header_read *hr = op->hr;
	struct crac_img_opened o;

	op->step = 0;
	long r = crac_img_open(hr->dir, &o, hr->msg, sizeof(hr->msg));
	if (r < 0) {
		op->res = (int)r;
		return;
	}
	op->step = 1;
	if (o.header_size > CRAC_IMG_MAX_HEADER) {
		r = -EFBIG;
	} else {
		size_t len = (size_t)((o.header_size + 8 + 4095) & ~4095ull);
		r = crac_raw_syscall6(SYS_mmap, 0, (long)len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				      -1, 0);
		if (r < 0 && r > -4096) {
			hr->msg[0] = 0;
		} else {
			hr->map = (void *)r;
			hr->map_len = len;
			r = crac_img_read_header(&o, hr->map, o.header_size, &hr->v, hr->msg, sizeof(hr->msg));
		}
	}
	crac_img_close(&o);
	op->res = (int)r;
}

/* FSOP_DU: the bytes (st_blocks) of the regular files in op->path, one
 * level (an image directory); no link followed. */
static void dir_usage(struct fsop *op)
{
	char dents[4096] __attribute__((aligned(8)));
	struct stat st;
	long dfd = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)op->path,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	long got;

	op->bytes = 0;
	if (dfd < 0) {
		op->res = (int)dfd;
		return;
	}
	while ((got = crac_raw_syscall3(SYS_getdents64, dfd, (long)dents, sizeof(dents))) > 0)
		for (long at = 0; at < got;) {
			const struct dent64 *d = (const struct dent64 *)(dents + at);
			at += d->reclen;
			if (crac_raw_syscall5(SYS_newfstatat, dfd, (long)d->name, (long)&st, AT_SYMLINK_NOFOLLOW, 0) == 0 &&
			    S_ISREG(st.st_mode))
				op->bytes += (long long)st.st_blocks * 512;
		}
	crac_raw_syscall3(SYS_close, dfd, 0, 0);
	op->res = got < 0 ? (int)got : 0;
}

/* op's data written whole to fd (op->step = step meanwhile), fsync'd
 * (step + 1), and fd closed: 0 or a negative errno. Raw system calls. */
static long write_sync(struct fsop *op, long fd, int step)
{
	long r = 0;

	op->step = step;
	for (size_t at = 0; at < op->data_len; at += (size_t)r)
		if ((r = crac_raw_syscall3(SYS_write, fd, (long)(op->data + at), (long)(op->data_len - at))) <= 0) {
			r = r < 0 ? r : -EIO;
			break;
		}
	if (r >= 0) {
		op->step = step + 1;
		r = crac_raw_syscall3(SYS_fsync, fd, 0, 0);
	}
	crac_raw_syscall3(SYS_close, fd, 0, 0);
	return r < 0 ? r : 0;
}

/* FSOP_PUT: in directory op->path (opened O_NOFOLLOW: never through a
 * symbolic link put in its place), the file op->to replaced whole by
 * op->data (written to op->tmpname first, fsync'd, renamed over it; the
 * temporary removed if anything fails), or, with no data, removed. Steps:
 * 0 the open of the directory, 1 the creation of the temporary, 2 its
 * write, 3 its fsync, 4 the rename (or the unlink). */
static void put_file(struct fsop *op)
{
	op->step = 0;
	long r = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)op->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (r < 0) {
		op->res = (int)r;
		return;
	}
	long dfd = r, fd = -1;
	if (!op->data) {
		op->step = 4;
		r = crac_raw_syscall3(SYS_unlinkat, dfd, (long)op->to, 0);
		goto out;
	}
	op->step = 1;
	crac_raw_syscall3(SYS_unlinkat, dfd, (long)op->tmpname, 0);   /* (one a killed writer left) */
	if ((r = fd = crac_raw_syscall5(SYS_openat, dfd, (long)op->tmpname,
					O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600, 0)) < 0)
		goto out;
	r = write_sync(op, fd, 2);
	if (r >= 0) {
		op->step = 4;
		r = crac_raw_syscall5(SYS_renameat, dfd, (long)op->tmpname, dfd, (long)op->to, 0);
	}
	if (r < 0)
		crac_raw_syscall3(SYS_unlinkat, dfd, (long)op->tmpname, 0);
out:
	crac_raw_syscall3(SYS_close, dfd, 0, 0);
	op->res = r < 0 ? (int)r : 0;
}

/*
 * FSOP_PUTBACK: the previous image a writer moved aside (op->path,
 * BASE.old-PID-START, its writer gone) put back at op->to (BASE, found
 * missing) by a cleaner; only what a writer of the cleaner's moved aside,
 * and that no one uses, goes there. Each check that fails leaves it where
 * it is (op->step says which, op->res why):
 *   0  the look at it (lstat) and its open (O_NOFOLLOW | O_DIRECTORY): a
 *      symbolic link (-ELOOP) or anything but a directory (-ENOTDIR) was
 *      no writer's: a writer moves aside only a real directory (the target
 *      rule refuses a link at BASE);
 *   1  its owner: the cleaner's effective uid, root's too (-EPERM): a
 *      writer moves aside only its own image, so another user's was put
 *      there by that user, not by a writer of ours (the removal's own_only
 *      rule);
 *   2  its lock: its writer holds aside_lock from before the move until it
 *      removes it or puts it back (-EBUSY): a writer alive, in another pid
 *      namespace where its PID means nothing here, or another cleaner
 *      putting it back; taken here (LOCK_EX) and held through the rename.
 *      (A file system without flock: the names alone.)
 *   3  an image: `header` with the image magic (-EMEDIUMTYPE);
 *   4  the rename, RENAME_NOREPLACE (a plain one where the file system
 *      cannot say): an image that appeared at BASE meanwhile stays
 *      (-EEXIST, -ENOTEMPTY).
 * The rename is by name: another directory put at BASE.old between the
 * checks and the rename would go to BASE instead. Only one who may rename
 * in the parent can do that (in a sticky directory, not with the
 * cleaner's own entry), and he could as well put it at BASE himself; what
 * comes from BASE is checked when it is used (the target rule, the
 * loader). No look afterwards (moving back what is at BASE then could
 * move a new image that a writer exchanged in meanwhile).
 * Raw system calls; the helper's own table of descriptors (given up on, it
 * is killed: it renames nothing afterwards, and the lock ends with it).
 */
static void put_back(struct fsop *op)
{
	struct stat st;
	uid_t me = (uid_t)crac_raw_syscall3(SYS_geteuid, 0, 0, 0);

	/* (first a look by name: what it is, and whose, said even where the
	 * open would just fail, another user's directory 0700) */
	op->step = 0;
	long r = crac_raw_syscall5(SYS_newfstatat, AT_FDCWD, (long)op->path, (long)&st, AT_SYMLINK_NOFOLLOW, 0);
	if (r == 0 && !S_ISDIR(st.st_mode))
		r = S_ISLNK(st.st_mode) ? -ELOOP : -ENOTDIR;
	if (r == 0 && st.st_uid != me) {
		op->step = 1;
		r = -EPERM;
	}
	if (r == 0)
		r = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)op->path,
				      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (r < 0) {
		op->res = (int)r;
		return;
	}
	long dfd = r;
	/* the directory opened (what the checks below are about) */
	op->step = 1;
	if ((r = crac_raw_syscall5(SYS_fstat, dfd, (long)&st, 0, 0, 0)) == 0 && st.st_uid != me)
		r = -EPERM;
	if (r == 0) {
		op->step = 2;
		if (crac_raw_syscall3(SYS_flock, dfd, LOCK_EX | LOCK_NB, 0) == -EWOULDBLOCK)
			r = -EBUSY;
	}
	if (r == 0) {
		op->step = 3;
		if (!raw_is_image_at(dfd))
			r = -EMEDIUMTYPE;
	}
	if (r == 0) {
		op->step = 4;
		r = crac_raw_syscall5(SYS_renameat2, AT_FDCWD, (long)op->path, AT_FDCWD, (long)op->to, RENAME_NOREPLACE);
		if (r == -EINVAL || r == -ENOSYS)
			r = crac_raw_syscall5(SYS_renameat, AT_FDCWD, (long)op->path, AT_FDCWD, (long)op->to, 0);
	}
	crac_raw_syscall3(SYS_close, dfd, 0, 0);   /* (our lock with it) */
	op->res = (int)r;
}

/*
 * Images of others that a commit took out of place and could not put back
 * (keep_foreign, below): their directories (device and inode, where they
 * could be looked at), which no removal by this process touches
 * (FSOP_REMOVE refuses them with EBUSY: the callers' cleanup of a
 * temporary, crac_img_clean_stale), whatever name they have; and the
 * temporary's name each is left under, if it is (remove_msg and
 * crac_img_clean_stale skip it). Written before any helper looks (one
 * commit at a time), read by helpers with system calls only.
 */
#define KEPT_MAX 8
static struct kept_img {
	dev_t dev;
	ino_t ino;
	bool known;             /* dev and ino are its (else: its names alone) */
	char tmp[PATH_MAX];     /* the temporary's name it was left under ("": moved to a kept name) */
	char kept[PATH_MAX];    /* the name it is to be moved to (DIR.kept-PID-START-N) */
} kept_imgs[KEPT_MAX];
static volatile int n_kept;

static int kept_move(int k);

/* Is the directory open as dfd one of kept_imgs? (system calls only) */
static bool kept_here(long dfd)
{
	struct stat st;

	if (!n_kept || crac_raw_syscall5(SYS_fstat, dfd, (long)&st, 0, 0, 0) < 0)
		return false;
	for (int i = 0; i < n_kept && i < KEPT_MAX; i++)
		if (kept_imgs[i].known && kept_imgs[i].ino == st.st_ino && kept_imgs[i].dev == st.st_dev)
			return true;
	return false;
}

/* Is `name` (the last component of a path) the temporary's name a kept
 * image is still under? */
static bool kept_name(const char *name)
{
	for (int i = 0; i < n_kept && i < KEPT_MAX; i++) {
		const char *t = kept_imgs[i].tmp, *slash = strrchr(t, '/');
		if (t[0] && !strcmp(slash ? slash + 1 : t, name))
			return true;
	}
	return false;
}

/* The operation itself: raw system calls only (run by the helper, or by
 * the caller when there is none). */
static void fsop_run(void *arg)
{
	static const char *const names[] = { CRAC_IMG_HEADER_FILE, CRAC_IMG_PAGES_FILE };
	struct fsop *op = arg;
	long r;

	crac_bounded_test_sleep(op->slow_ms);
	switch (op->kind) {
	case FSOP_FSYNC:
		r = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)op->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (r >= 0) {
			long fd = r;
			r = crac_raw_syscall3(SYS_fsync, fd, 0, 0);
			crac_raw_syscall3(SYS_close, fd, 0, 0);
		}
		op->res = r < 0 ? (int)r : 0;
		break;
	case FSOP_FSYNC_FD:
		op->res = (int)crac_raw_syscall3(op->data_only ? SYS_fdatasync : SYS_fsync, op->fd, 0, 0);
		break;
	case FSOP_MKDIR:   /* mkdir(path, mode: op->fd) */
		op->res = (int)crac_raw_syscall3(SYS_mkdirat, AT_FDCWD, (long)op->path, op->fd);
		break;
	case FSOP_REMOVE:
		r = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)op->path,
				      O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (r < 0) {
			op->res = r == -ENOENT ? 0 : (int)r;
			break;
		}
		long dfd = r;
		if (kept_here(dfd)) {
			/* another writer's image that a commit could not put
			 * back (keep_foreign): never ours to remove */
			crac_raw_syscall3(SYS_close, dfd, 0, 0);
			op->step = -1;
			op->res = -EBUSY;
			break;
		}
		if (op->own_only) {
			struct stat st;
			r = crac_raw_syscall5(SYS_fstat, dfd, (long)&st, 0, 0, 0);
			if (r == 0 && st.st_uid != (uid_t)crac_raw_syscall3(SYS_geteuid, 0, 0, 0))
				r = -EPERM;
			/* A temporary's writer holds a lock on it until its
			 * rename (image_capture.c): one in another pid
			 * namespace, whose PID and START mean nothing here,
			 * still writes it. (A file system without flock: the
			 * names alone, as before.) Ours while we remove it. */
			if (r == 0 && crac_raw_syscall3(SYS_flock, dfd, LOCK_EX | LOCK_NB, 0) == -EWOULDBLOCK) {
				r = -EBUSY;
				op->step = -2;   /* locked (crac_img_clean_stale: dead_lock_wait) */
			}
			if (r < 0) {
				crac_raw_syscall3(SYS_close, dfd, 0, 0);
				op->res = (int)r;
				break;
			}
		}
		for (op->step = 0, r = 0; op->step < 2 || (op->more && op->more[op->step - 2]); op->step++) {
			r = crac_raw_syscall3(SYS_unlinkat, dfd,
					      (long)(op->step < 2 ? names[op->step] : op->more[op->step - 2]), 0);
			if (r < 0 && r != -ENOENT)
				break;
			r = 0;
		}
		/* the working set and its temporaries (regular files only) */
		char dents[2048] __attribute__((aligned(8)));
		long got;
		while (r == 0 && (got = crac_raw_syscall3(SYS_getdents64, dfd, (long)dents, sizeof(dents))) > 0)
			for (long at = 0; at < got;) {
				const struct dent64 *d = (const struct dent64 *)(dents + at);
				at += d->reclen;
				if (ws_name(d->name) && d->type == DT_REG)
					crac_raw_syscall3(SYS_unlinkat, dfd, (long)d->name, 0);
			}
		crac_raw_syscall3(SYS_close, dfd, 0, 0);
		/* Anything else in there is not ours: rmdir fails and we say so. */
		if (r == 0)
			r = crac_raw_syscall3(SYS_unlinkat, AT_FDCWD, (long)op->path, AT_REMOVEDIR);
		op->res = (int)r;
		break;
	case FSOP_RENAME:
		op->res = (int)(op->flags ? crac_raw_syscall5(SYS_renameat2, AT_FDCWD, (long)op->path, AT_FDCWD,
							     (long)op->to, op->flags)
					  : crac_raw_syscall5(SYS_renameat, AT_FDCWD, (long)op->path, AT_FDCWD,
							     (long)op->to, 0));
		if (op->slow_after_ms) {
			/* (tests, CRAC_TEST_SLOW_FS=renamed:MS: a helper
			 * whose end comes late, after its caller's) */
			crac_raw_syscall3(SYS_prctl, PR_SET_PDEATHSIG, 0, 0);
			crac_bounded_test_sleep(op->slow_after_ms);
		}
		break;
	case FSOP_SAME: {
		struct stat st;
		r = crac_raw_syscall5(SYS_newfstatat, AT_FDCWD, (long)op->path, (long)&st, AT_SYMLINK_NOFOLLOW, 0);
		op->res = r < 0 ? (int)r : st.st_dev == op->expect->st_dev && st.st_ino == op->expect->st_ino;
		break;
	}
	case FSOP_OPEN: {   /* openat(flags, mode: op->fd) and fstat; res the fd */
		struct stat st;
		r = crac_raw_syscall5(SYS_openat, AT_FDCWD, (long)op->path, op->flags | O_CLOEXEC, op->fd, 0);
		if (r < 0) {
			op->res = (int)r;
			break;
		}
		/* (by a helper, in its own table of descriptors: one whose
		 * open returns after it was given up on ends with it) */
		long fd = r;
		crac_bounded_test_sleep(op->slow_after_ms);
		if ((r = crac_raw_syscall5(SYS_fstat, fd, (long)&st, 0, 0, 0)) < 0 ||
		    (op->lock_ex && (r = crac_raw_syscall3(SYS_flock, fd, LOCK_EX | LOCK_NB, 0)) < 0 &&
		     r == -EWOULDBLOCK)) {
			crac_raw_syscall3(SYS_close, fd, 0, 0);
			op->res = (int)r;
			break;
		}
		op->st = st;
		op->res = (int)fd;
		if (op->xfer >= 0) {   /* to the caller: SCM_RIGHTS (the same open file, its flock with it) */
			union {
				struct cmsghdr h;
				char space[CMSG_SPACE(sizeof(int))];
			} u;
			char one = 1;
			struct iovec iov = { &one, 1 };
			struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.space,
					     .msg_controllen = sizeof(u.space) };
			u.h.cmsg_len = CMSG_LEN(sizeof(int));
			u.h.cmsg_level = SOL_SOCKET;
			u.h.cmsg_type = SCM_RIGHTS;
			*(int *)(void *)CMSG_DATA(&u.h) = (int)fd;
			r = crac_raw_syscall3(SYS_sendmsg, op->xfer, (long)&mh, MSG_NOSIGNAL);
			crac_raw_syscall3(SYS_close, fd, 0, 0);
			op->res = r < 0 ? (int)r : 0;
		}
		break;
	}
	case FSOP_LSTAT: {   /* flags: AT_SYMLINK_NOFOLLOW (lstat) or 0 (stat) */
		struct stat st;
		r = crac_raw_syscall5(SYS_newfstatat, AT_FDCWD, (long)op->path, (long)&st, op->flags, 0);
		if (r == 0)
			op->st = st;
		op->res = (int)r;
		break;
	}
	case FSOP_REALPATH: {   /* every link followed: the name of the file opened (O_PATH) */
		char link[32] = "/proc/self/fd/", digits[12], buf[PATH_MAX];
		r = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)op->path, O_PATH | O_CLOEXEC);
		if (r < 0) {
			op->res = (int)r;
			break;
		}
		long fd = r;
		int nd = 0, at = 14;
		for (long v = fd; v || !nd; v /= 10)
			digits[nd++] = (char)('0' + v % 10);
		while (nd)
			link[at++] = digits[--nd];
		link[at] = 0;
		r = crac_raw_syscall5(SYS_readlinkat, AT_FDCWD, (long)link, (long)buf, sizeof(buf), 0);
		crac_raw_syscall3(SYS_close, fd, 0, 0);
		if (r < 0 || (size_t)r >= op->real_len || buf[0] != '/') {
			op->res = r < 0 ? (int)r : -ENAMETOOLONG;
			break;
		}
		for (long k = 0; k < r; k++)
			op->real[k] = buf[k];
		op->real[r] = 0;
		op->res = 0;
		break;
	}
	case FSOP_READ: {   /* open, fstat (into op->st), and of a regular file the part wanted: read */
		struct stat st;
		r = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)op->path,
				      O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (r < 0) {
			op->res = (int)r;
			break;
		}
		long fd = r, have = 0, want = 0, off = 0;
		r = crac_raw_syscall5(SYS_fstat, fd, (long)&st, 0, 0, 0);
		if (r == 0 && !S_ISREG(st.st_mode))
			r = -EPERM;
		else if (r == 0 && op->part == CRAC_IMG_WHOLE && (unsigned long long)st.st_size > op->real_len)
			r = -EFBIG;
		/* want bytes from off: the file's size as fstat saw it, cut to
		 * real_len at its start (whole, head) or its end (tail) */
		if (r == 0) {
			want = (unsigned long long)st.st_size < op->real_len ? (long)st.st_size : (long)op->real_len;
			off = op->part == CRAC_IMG_TAIL ? (long)st.st_size - want : 0;
		}
		/* read into a mapping of the helper's, then copied into the
		 * caller's buffer: a read given up on that returns later has
		 * the kernel write there, never into the caller's buffer
		 * (freed by then); that mapping is then left (the helper is
		 * killed before it unmaps it) */
		size_t map_len = ((size_t)want + 4095) & ~(size_t)4095;
		char *buf = NULL;
		if (r == 0 && map_len) {
			r = crac_raw_syscall6(SYS_mmap, 0, (long)map_len, PROT_READ | PROT_WRITE,
					      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (r < 0 && r > -4096)
				map_len = 0;
			else
				buf = (char *)r, r = 0;
		}
		/* (every signal blocked in the helper: no EINTR; a short
		 * read, the file cut meanwhile: what there is) */
		while (r == 0 && have < want) {
			long n = crac_raw_syscall5(SYS_pread64, fd, (long)(buf + have), want - have, off + have, 0);
			if (n <= 0) {
				r = n;
				break;
			}
			have += n;
		}
		crac_raw_syscall3(SYS_close, fd, 0, 0);
		if (buf) {
			memcpy(op->real, buf, (size_t)have);
			crac_raw_syscall3(SYS_munmap, (long)buf, (long)map_len, 0);
		}
		op->st = st;
		op->res = r < 0 ? (int)r : (int)have;
		break;
	}
	case FSOP_WRITE: {   /* a new file (no link followed), its data, fsync; step 0, 1, 2 */
		op->step = 0;
		r = crac_raw_syscall5(SYS_openat, AT_FDCWD, (long)op->path,
				      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600, 0);
		if (r < 0) {
			op->res = (int)r;
			break;
		}
		r = write_sync(op, r, 1);
		op->res = r < 0 ? (int)r : 0;
		break;
	}
	case FSOP_PUT:
		put_file(op);
		break;
	case FSOP_PUTBACK:
		put_back(op);
		break;
	case FSOP_LOCK: {   /* an open file description lock, never waited for (a lock server may not answer) */
		struct flock l = { .l_type = (short)op->flags, .l_whence = SEEK_SET, .l_start = op->lock_byte, .l_len = 1 };
		r = crac_raw_syscall3(SYS_fcntl, op->fd, F_OFD_SETLK, (long)&l);
		/* (tests, CRAC_TEST_SLOW_FS=locked:MS: granted, but the call
		 * returns late: a grant after it was given up on) */
		crac_bounded_test_sleep(op->slow_after_ms);
		op->res = (int)r;
		break;
	}
	case FSOP_HEADER:
		header_read(op);
		break;
	case FSOP_DU:
		dir_usage(op);
		break;
	case FSOP_TARGET:
		target_gather(op);
		op->res = 0;
		break;
	case FSOP_LIST:
		stale_list(op);
		break;
	case FSOP_ACCESS:   /* access(2): the real ids; the first of cands that passes (step) */
		if (!op->cands) {
			op->res = (int)crac_raw_syscall3(SYS_faccessat, AT_FDCWD, (long)op->path, op->fd);
			break;
		}
		op->res = -ENOENT;
		for (op->step = 0; op->res < 0 && op->cands[op->step]; op->step++)
			if ((op->res = (int)crac_raw_syscall3(SYS_faccessat, AT_FDCWD, (long)op->cands[op->step],
							      op->fd)) == 0)
				break;
		break;
	}
}

/* CRAC_TEST_SLOW_FS=OP:MS for operation `name`: MS, else 0. */
static long fs_slow(const char *name)
{
	const char *e = getenv("CRAC_TEST_SLOW_FS");
	size_t n = strlen(name);

	return e && !strncmp(e, name, n) && e[n] == ':' ? strtol(e + n + 1, NULL, 10) : 0;
}

void crac_img_test_pause(const char *op)
{
	crac_bounded_test_sleep(fs_slow(op));
}

/* Closes the two ends of an FSOP_OPEN's socket (-1: none). */
static void fsop_close_pair(const int sv[2])
{
	for (int i = 0; i < 2; i++)
		if (sv[i] >= 0)
			syscall(SYS_close, sv[i]);
}

/* The descriptor an FSOP_OPEN's helper sent over sv0 (close-on-exec), or
 * -errno. */
static int fsop_receive(int sv0)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int))];
	} u;
	char one;
	struct iovec iov = { &one, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.space,
			     .msg_controllen = sizeof(u.space) };
	long r = crac_raw_syscall3(SYS_recvmsg, sv0, (long)&mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	struct cmsghdr *c = r < 0 ? NULL : CMSG_FIRSTHDR(&mh);

	if (r < 0)
		return (int)r;
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EPROTO;
	return *(int *)(void *)CMSG_DATA(c);
}

/*
 * Runs op by a helper and waits for it (bounded, see above). Returns op's
 * result, or -ETIMEDOUT with *waited_ms set when it was given up on
 * (op->step says where it was; else *waited_ms is -1).
 */
static int fsop_bounded(struct fsop *op, int64_t *waited_ms)
{
	struct crac_bounded helper;
	int sv[2] = { -1, -1 };

	op->res = -EINPROGRESS;
	op->step = 0;
	op->xfer = -1;
	*waited_ms = -1;
	/* A helper whose call opens a descriptor has a table of its own (a
	 * late one ends with it); the one FSOP_OPEN opens comes back over a
	 * socket. */
	if (op->kind == FSOP_OPEN && syscall(SYS_socketpair, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
		sv[0] = sv[1] = -1;
	op->xfer = sv[1];
	/* (a call that opens nothing shares ours: a table of its own cost a
	 * helper 13-38 us more with a few descriptors open, 135-215 us with
	 * 1000; medians of 2001 interleaved calls, 3 runs, 2 busy cores) */
	bool opens = op->kind != FSOP_LSTAT && op->kind != FSOP_SAME && op->kind != FSOP_RENAME &&
		     op->kind != FSOP_ACCESS && op->kind != FSOP_FSYNC_FD && op->kind != FSOP_LOCK &&
		     op->kind != FSOP_MKDIR;
	if (op->kind == FSOP_OPEN && sv[0] < 0)
		opens = false;   /* no socket (out of descriptors?): in our table, still bounded */
	if ((opens ? crac_bounded_start_own(&helper, fsop_run, op, NULL, sv[1], -1)
		   : crac_bounded_start(&helper, fsop_run, op, NULL)) < 0) {
		op->xfer = -1;
		fsop_close_pair(sv);
		fsop_run(op);   /* no helper: in this thread, unbounded */
		return op->res;
	}
	long grace = fs_grace_ms < 0 ? crac_bounded_grace_ms() : fs_grace_ms;
	/* no deadline and no grace: no limit (crac_img_fs_limit(0, 0, ...)) */
	int64_t deadline = !fs_deadline_ns && !grace ? INT64_MAX : fs_deadline_ns;
	int rc = crac_bounded_wait(&helper, deadline, grace, waited_ms);
	if (rc == 0 && op->xfer >= 0 && op->res >= 0)
		op->res = fsop_receive(sv[0]);
	/* (given up: a descriptor still in the socket is closed with it) */
	fsop_close_pair(sv);
	return rc < 0 ? rc : op->res;
}

/* Was the call given up on (fsop_bounded's -ETIMEDOUT, not the call's
 * own)? Then out says why: "did not return after N ms (...)". */
static bool given_up(int rc, int64_t waited_ms, char *out, size_t len)
{
	long grace_ms = fs_grace_ms < 0 ? crac_bounded_grace_ms() : fs_grace_ms;

	if (rc != -ETIMEDOUT || waited_ms < 0)
		return false;
	if (fs_bound)
		snprintf(out, len, "did not return after %lld ms (%s): its file system does not answer; given up",
			 (long long)waited_ms, fs_bound);
	else
		snprintf(out, len, "did not return after %lld ms (the checkpoint's deadline, and %ld s at least): "
			 "its file system does not answer; given up", (long long)waited_ms, grace_ms / 1000);
	return true;
}

/*
 * Runs op by a helper (fsop_bounded) and says in msg what went wrong: "the
 * WHAT of PATH did not return after ..." when it was given up on, "PATH:
 * error" when the call failed (empty on success). Returns op's result.
 */
static int fsop_msg(struct fsop *op, const char *what, const char *path, char *msg, size_t msglen)
{
	int64_t waited;
	char why[200];
	int rc = fsop_bounded(op, &waited);

	msg[0] = 0;
	if (given_up(rc, waited, why, sizeof(why))) {
		/* "WHAT PATH WHY", cut short at msglen if need be */
		int n = snprintf(msg, msglen, "%s %s ", what, path);
		size_t k = n < 0 ? 0 : (size_t)n, w = strlen(why);
		if (k + 1 < msglen) {
			if (w > msglen - k - 1)
				w = msglen - k - 1;
			memcpy(msg + k, why, w);
			msg[k + w] = 0;
		}
	}
	else if (rc < 0)
		snprintf(msg, msglen, "%s: %s", path, strerror(-rc));
	return rc;
}

int crac_img_access_msg(const char *path, int mode, char *msg, size_t msglen)
{
	struct fsop op = { .kind = FSOP_ACCESS, .path = path, .fd = mode, .slow_ms = fs_slow("access") };

	return fsop_msg(&op, "access to", path, msg, msglen);
}

int crac_img_dir_access_msg(const char *path, char *msg, size_t msglen)
{
	int rc = crac_img_access_msg(path, W_OK | X_OK, msg, msglen);
	struct stat st;
	char smsg[512];   /* (its message unused: only the stat matters) */

	/* (refused search permission on a file that is no directory: say so,
	 * not "Permission denied", as root gets for a file without x bits) */
	if (rc == -EACCES && crac_img_stat_msg(path, &st, smsg, sizeof(smsg)) == 0 && !S_ISDIR(st.st_mode)) {
		snprintf(msg, msglen, "%s: not a directory (%s)", path,
			 S_ISREG(st.st_mode) ? "a regular file" : "a file that is not a directory");
		rc = -ENOTDIR;
	}
	return rc;
}

int crac_img_open_msg(const char *path, int flags, unsigned mode, struct stat *st, char *msg, size_t msglen)
{
	struct fsop op = { .kind = FSOP_OPEN, .path = path, .flags = (unsigned)flags, .fd = (int)mode,
			   .slow_ms = fs_slow("open"), .slow_after_ms = fs_slow("opened") };
	int rc = fsop_msg(&op, "the open of", path, msg, msglen);

	if (rc >= 0)
		*st = op.st;
	return rc;
}

int crac_img_read_part_msg(const char *path, enum crac_img_part part, const char *slow, char *buf, size_t cap,
			   struct stat *st, char *msg, size_t msglen)
{
	struct fsop op = { .kind = FSOP_READ, .path = path, .part = part, .real = buf, .real_len = cap,
			   .slow_ms = slow ? fs_slow(slow) : 0 };
	int rc = fsop_msg(&op, "the read of", path, msg, msglen);

	if (st && rc != -ETIMEDOUT && rc != -EINPROGRESS)
		*st = op.st;
	return rc;
}

int crac_img_read_msg(const char *path, char *buf, size_t cap, struct stat *st, char *msg, size_t msglen)
{
	return crac_img_read_part_msg(path, CRAC_IMG_WHOLE, "read", buf, cap, st, msg, msglen);
}

int crac_img_own_dir_msg(const char *dir, const char *const *also, struct stat *st, char *others,
			 size_t olen, char *msg, size_t msglen)
{
	/* (step 0, its parent, is not looked at: no parent given) */
	static const char *const steps[] = { "the lstat of it", "the lstat of it", "listing it",
					     "reading its header" };
	struct target_facts tf;

	memset(&tf, 0, sizeof(tf));
	tf.dir = dir;
	tf.me = geteuid();
	tf.also = also;
	struct fsop op = { .kind = FSOP_TARGET, .tf = &tf, .slow_ms = fs_slow("check") };
	int64_t waited;
	char why[200];
	int rc = fsop_bounded(&op, &waited);

	msg[0] = others[0] = 0;
	memset(st, 0, sizeof(*st));
	if (given_up(rc, waited, why, sizeof(why))) {
		snprintf(msg, msglen, "the check of %s (%s) %s", dir, steps[op.step >= 0 && op.step < 4 ? op.step : 1],
			 why);
		return -ETIMEDOUT;
	}
	if (tf.lstat_res < 0)
		return tf.lstat_res;
	st->st_mode = tf.mode;
	st->st_uid = tf.uid;
	if (tf.open_res < 0)
		return tf.open_res;
	snprintf(others, olen, "%s", tf.others);
	return tf.n_others;
}

int crac_img_lstat_as_msg(const char *path, struct stat *st, const char *slow, char *msg, size_t msglen)
{
	struct fsop op = { .kind = FSOP_LSTAT, .path = path, .flags = AT_SYMLINK_NOFOLLOW, .slow_ms = fs_slow(slow) };
	int rc = fsop_msg(&op, "the lstat of", path, msg, msglen);

	if (rc >= 0)
		*st = op.st;
	return rc;
}

int crac_img_lstat_msg(const char *path, struct stat *st, char *msg, size_t msglen)
{
	return crac_img_lstat_as_msg(path, st, "lstat", msg, msglen);
}

/* crac_img_bounded_call's helper: the test's sleep, then the caller's fn. */
struct call {
	void (*fn)(void *);
	void *arg;
	long slow_ms;
};

static void call_run(void *arg)
{
	struct call *c = arg;

	crac_bounded_test_sleep(c->slow_ms);
	c->fn(c->arg);
}

int crac_img_bounded_call(const char *slow, void (*fn)(void *), void *arg, bool own_files, char *why, size_t wlen)
{
	struct call c = { fn, arg, slow ? fs_slow(slow) : 0 };
	struct crac_bounded helper;
	int64_t waited;

	why[0] = 0;
	if ((own_files ? crac_bounded_start_own(&helper, call_run, &c, NULL, -1, -1)
		       : crac_bounded_start(&helper, call_run, &c, NULL)) < 0) {
		call_run(&c);   /* no helper: in this thread, unbounded */
		return 0;
	}
	long grace = fs_grace_ms < 0 ? crac_bounded_grace_ms() : fs_grace_ms;
	int64_t deadline = !fs_deadline_ns && !grace ? INT64_MAX : fs_deadline_ns;
	int rc = crac_bounded_wait(&helper, deadline, grace, &waited);
	given_up(rc, waited, why, wlen);
	return rc;
}

int crac_img_stat_msg(const char *path, struct stat *st, char *msg, size_t msglen)
{
	struct fsop op = { .kind = FSOP_LSTAT, .path = path, .flags = 0, .slow_ms = fs_slow("stat") };
	int rc = fsop_msg(&op, "the stat of", path, msg, msglen);

	if (rc >= 0)
		*st = op.st;
	return rc;
}

int crac_img_write_new_msg(const char *path, const char *data, size_t len, char *msg, size_t msglen)
{
	static const char *const steps[] = { "its creation", "the write of its data", "its fsync" };
	struct fsop op = { .kind = FSOP_WRITE, .path = path, .data = data, .data_len = len,
			   .slow_ms = fs_slow("write") };
	int64_t waited;
	char why[200];
	int rc = fsop_bounded(&op, &waited);

	msg[0] = 0;
	if (given_up(rc, waited, why, sizeof(why)))
		snprintf(msg, msglen, "the write of %s (%s) %s", path, steps[op.step >= 0 && op.step < 3 ? op.step : 0],
			 why);
	else if (rc < 0)
		snprintf(msg, msglen, "%s: %s", path, strerror(-rc));
	return rc;
}

/* FSOP_PUT of dir/name (data NULL: its removal), bounded; msg names the
 * step given up on, or the error. */
static int put_msg(const char *dir, const char *name, const char *tmpname, const char *data, size_t len,
		   char *msg, size_t msglen)
{
	struct fsop op = { .kind = FSOP_PUT, .path = dir, .to = name, .tmpname = tmpname, .data = data,
			   .data_len = len, .slow_ms = fs_slow("put") };
	int64_t waited;
	char why[200], step[PATH_MAX + 64];
	int rc = fsop_bounded(&op, &waited);

	msg[0] = 0;
	if (given_up(rc, waited, why, sizeof(why))) {
		if (op.step == 0)
			snprintf(step, sizeof(step), "the open of %s", dir);
		else if (op.step == 1)
			snprintf(step, sizeof(step), "the creation of %s/%s", dir, tmpname);
		else
			snprintf(step, sizeof(step), "%s", op.step == 2 ? "the write" : op.step == 3 ? "the fsync" :
				 data ? "the rename into place" : "the unlink");
		snprintf(msg, msglen, "the %s of %s/%s (%s) %s", data ? "write" : "removal", dir, name, step, why);
	} else if (rc < 0) {
		snprintf(msg, msglen, "%s/%s: %s", dir, op.step == 0 ? "" : op.step < 4 ? tmpname : name, strerror(-rc));
	}
	return rc;
}

int crac_img_ofd_lock_msg(int fd, const char *path, short type, long byte, char *msg, size_t msglen)
{
	struct fsop op = { .kind = FSOP_LOCK, .fd = fd, .flags = (unsigned)type, .lock_byte = byte,
			   .slow_ms = fs_slow("lock"), .slow_after_ms = type == F_UNLCK ? 0 : fs_slow("locked") };
	int64_t waited;
	char why[200];
	int rc = fsop_bounded(&op, &waited);

	msg[0] = 0;
	if (given_up(rc, waited, why, sizeof(why)))
		snprintf(msg, msglen, "the %s of %s (byte %ld) %s", type == F_UNLCK ? "unlock" : "lock", path, byte, why);
	return rc;
}

int crac_img_put_file_msg(const char *dir, const char *name, const char *tmpname, const char *data, size_t len,
			  char *msg, size_t msglen)
{
	return put_msg(dir, name, tmpname, data, len, msg, msglen);
}

int crac_img_unlink_in_msg(const char *dir, const char *name, char *msg, size_t msglen)
{
	return put_msg(dir, name, NULL, NULL, 0, msg, msglen);
}

int crac_img_header_msg(const char *dir, struct crac_img_header_map *out, char *msg, size_t msglen)
{
	struct header_read hr = { .dir = dir };
	struct fsop op = { .kind = FSOP_HEADER, .hr = &hr, .slow_ms = fs_slow("header") };
	int64_t waited;
	char why[200];
	int rc = fsop_bounded(&op, &waited);

	memset(out, 0, sizeof(*out));
	msg[0] = 0;
	if (given_up(rc, waited, why, sizeof(why))) {
		/* (its mapping, if made, stays: a late read may still fill it) */
		if (op.step == 1)
			snprintf(msg, msglen, "the read of %s/%s %s", dir, CRAC_IMG_HEADER_FILE, why);
		else
			snprintf(msg, msglen, "the open of the image %s (its directory, header and pages files) %s",
				 dir, why);
		return rc;
	}
	if (rc < 0) {
		if (hr.msg[0])
			snprintf(msg, msglen, "%s", hr.msg);
		else
			snprintf(msg, msglen, "%s/%s: %s", dir, CRAC_IMG_HEADER_FILE, strerror(-rc));
		if (hr.map)
			munmap(hr.map, hr.map_len);
		return rc;
	}
	out->map = hr.map;
	out->map_len = hr.map_len;
	out->v = hr.v;
	return 0;
}

void crac_img_header_unmap(struct crac_img_header_map *h)
{
	if (h->map)
		munmap(h->map, h->map_len);
	memset(h, 0, sizeof(*h));
}

int crac_img_dir_bytes_msg(const char *dir, long long *bytes, char *msg, size_t msglen)
{
	struct fsop op = { .kind = FSOP_DU, .path = dir, .slow_ms = fs_slow("du") };
	int rc = fsop_msg(&op, "the look at the files of", dir, msg, msglen);

	*bytes = rc == 0 ? op.bytes : 0;
	return rc;
}

int crac_img_realpath_as_msg(const char *path, char *out, size_t len, const char *slow, char *msg, size_t msglen)
{
	struct fsop op = { .kind = FSOP_REALPATH, .path = path, .real = out, .real_len = len,
			   .slow_ms = fs_slow(slow) };

	return fsop_msg(&op, "the resolution of", path, msg, msglen);
}

int crac_img_realpath_msg(const char *path, char *out, size_t len, char *msg, size_t msglen)
{
	return crac_img_realpath_as_msg(path, out, len, "realpath", msg, msglen);
}

/* crac_img_access_first_msg, slowed in tests by CRAC_TEST_SLOW_FS=SLOW:MS */
static int access_first_as(const char *const *paths, int mode, int *found, const char *slow, char *msg,
			   size_t msglen)
{
	struct fsop op = { .kind = FSOP_ACCESS, .cands = paths, .fd = mode, .slow_ms = fs_slow(slow) };
	int64_t waited;
	char why[200];
	int rc = fsop_bounded(&op, &waited);

	*found = rc == 0 ? op.step : -1;
	msg[0] = 0;
	if (given_up(rc, waited, why, sizeof(why)))
		snprintf(msg, msglen, "access to %s %s", paths[op.step] ? paths[op.step] : "", why);
	return rc;
}

int crac_img_access_first_msg(const char *const *paths, int mode, int *found, char *msg, size_t msglen)
{
	return access_first_as(paths, mode, found, "access", msg, msglen);
}

int crac_img_list_msg(const char *dir, const char *prefix, char *names, size_t cap, size_t *len, char *msg,
		      size_t msglen)
{
	static struct stale_list sl;   /* 16 KiB: one listing at a time */
	struct fsop op = { .kind = FSOP_LIST, .sl = &sl, .slow_ms = fs_slow("list") };
	int64_t waited;
	char why[200];

	memset(&sl, 0, sizeof(sl));
	sl.parent = dir;
	sl.prefix = prefix;
	*len = 0;
	msg[0] = 0;
	int rc = fsop_bounded(&op, &waited);
	if (given_up(rc, waited, why, sizeof(why))) {
		snprintf(msg, msglen, "the listing of %s %s", dir, why);
		return rc;
	}
	if (rc < 0) {
		snprintf(msg, msglen, "the listing of %s: %s", dir, strerror(-rc));
		return rc;
	}
	/* whole names only */
	for (size_t at = 0; at < sl.len;) {
		size_t nl = strlen(sl.names + at) + 1;
		if (*len + nl > cap)
			break;
		memcpy(names + *len, sl.names + at, nl);
		*len += nl;
		at += nl;
	}
	return 0;
}

int crac_img_fsync_path_msg(const char *path, char *msg, size_t msglen)
{
	struct fsop op = { .kind = FSOP_FSYNC, .path = path, .slow_ms = fs_slow("fsync") };
	int64_t waited;
	char why[200];
	int rc = fsop_bounded(&op, &waited);

	if (given_up(rc, waited, why, sizeof(why))) {
		snprintf(msg, msglen, "fsync of %s %s", path, why);
	} else if (rc < 0) {
		snprintf(msg, msglen, "fsync of %s: %s", path, strerror(-rc));
	}
	return rc;
}

int crac_img_fsync_fd(int fd, bool data_only, int64_t *waited_ms)
{
	struct fsop op = { .kind = FSOP_FSYNC_FD, .fd = fd, .data_only = data_only, .slow_ms = fs_slow("fsync") };

	return fsop_bounded(&op, waited_ms);
}

int crac_img_fsync_path(const char *path)
{
	char msg[PATH_MAX + 300];

	return crac_img_fsync_path_msg(path, msg, sizeof(msg));
}

/* FSOP_REMOVE of dir (and the names in more), bounded; msg names the
 * step given up on (the file, or the rmdir) or the error. */
static int remove_msg(const char *dir, const char *const *more, bool own_only, char *msg, size_t msglen)
{
	static const char *const names[] = { CRAC_IMG_HEADER_FILE, CRAC_IMG_PAGES_FILE };
	struct fsop op = { .kind = FSOP_REMOVE, .path = dir, .more = more, .own_only = own_only,
			   .slow_ms = fs_slow("remove") };
	int64_t waited;
	char why[200];

	/* another's image left under this temporary's name (keep_foreign):
	 * moved to its kept name now if it can be; never removed */
	for (int k = 0; k < n_kept && k < KEPT_MAX; k++) {
		if (!kept_imgs[k].tmp[0] || strcmp(kept_imgs[k].tmp, dir))
			continue;
		if (kept_move(k) == 0)
			return 0;
		snprintf(msg, msglen, "%s is not removed: it holds another writer's image, which a commit took out "
			 "of place and could not put back", dir);
		return -EBUSY;
	}
	int rc = fsop_bounded(&op, &waited);
	int n_more = 0;

	while (more && more[n_more])
		n_more++;
	if (given_up(rc, waited, why, sizeof(why))) {
		bool file = op.step < 2 + n_more;
		snprintf(msg, msglen, "%s %s%s%s %s", file ? "unlink" : "rmdir", dir, file ? "/" : "",
			 !file ? "" : op.step < 2 ? names[op.step] : more[op.step - 2], why);
	} else if (rc == -EBUSY && op.step == -1) {
		snprintf(msg, msglen, "%s is not removed: it holds another writer's image, which a commit took out "
			 "of place and could not put back", dir);
	} else if (rc < 0) {
		snprintf(msg, msglen, "remove %s: %s", dir, strerror(-rc));
	}
	return rc;
}

int crac_img_remove_msg(const char *dir, char *msg, size_t msglen)
{
	return remove_msg(dir, NULL, false, msg, msglen);
}

int crac_img_remove_own_msg(const char *dir, const char *const *more, char *msg, size_t msglen)
{
	return remove_msg(dir, more, true, msg, msglen);
}

int crac_img_remove(const char *dir)
{
	char msg[PATH_MAX + 300], line[PATH_MAX + 400];
	int rc = crac_img_remove_msg(dir, msg, sizeof(msg));

	/* Callers that ignore the result (a failed checkpoint's cleanup):
	 * a removal given up on is said, once, on stderr. */
	if (rc == -ETIMEDOUT) {
		int n = snprintf(line, sizeof(line), "crac: warning: image directory %s left in place: %s\n",
				 dir, msg);
		if (n > 0 && write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0)
			(void)0;
	}
	return rc;
}

/* ---- the target ------------------------------------------------------------ */

/*
 * DIR without trailing slashes ("img/" -> "img"): with one, lstat and
 * rename would follow a symbolic link, and DIR.tmp-... would be made inside
 * DIR. Returns `dir` itself when there is nothing to strip, else buf; NULL
 * if too long.
 */
static const char *strip_slashes(const char *dir, char *buf, size_t len)
{
	size_t n = strlen(dir);

	if (n < 2 || dir[n - 1] != '/')
		return dir;
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n >= len)
		return NULL;
	memcpy(buf, dir, n);
	buf[n] = 0;
	return buf;
}

static const char *file_kind(mode_t m)
{
	return S_ISREG(m) ? "a regular file" : S_ISDIR(m) ? "a directory" : S_ISLNK(m) ? "a symbolic link" :
	       S_ISFIFO(m) ? "a named pipe" : S_ISSOCK(m) ? "a socket" : S_ISCHR(m) ? "a character device" :
	       S_ISBLK(m) ? "a block device" : "a special file";
}

int crac_img_target_check(const char *dir_arg, char *msg, size_t msglen)
{
	static const char *const steps[] = { "looking at its parent directory", "looking at it",
					     "listing it", "reading its header" };
	char dbuf[PATH_MAX];
	const char *dir = strip_slashes(dir_arg, dbuf, sizeof(dbuf));
	struct target_facts tf;

	if (!dir) {
		snprintf(msg, msglen, "image directory name too long");
		return -ENAMETOOLONG;
	}
	/* Never inside another image: an image directory holds only its
	 * header and pages, and anything else in it makes it no image to
	 * replace (below). */
	char parent[PATH_MAX];
	const char *base;
	memset(&tf, 0, sizeof(tf));
	tf.dir = dir;
	tf.parent = crac_img_split_path(dir, parent, sizeof(parent), &base) == 0 ? parent : NULL;
	tf.me = geteuid();
	/* every look at the file system by a helper, waited for until the
	 * deadline (the commit checks again after the threads are released) */
	struct fsop op = { .kind = FSOP_TARGET, .tf = &tf, .slow_ms = fs_slow("check") };
	int64_t waited;
	int rc = fsop_bounded(&op, &waited);
	char why[200];
	if (given_up(rc, waited, why, sizeof(why))) {
		snprintf(msg, msglen, "image directory %s: the check of the target (%s) %s", dir,
			 steps[op.step >= 0 && op.step < 4 ? op.step : 1], why);
		return -ETIMEDOUT;
	}
	if (tf.parent_image) {
		snprintf(msg, msglen, "image directory %s would be inside the crac image %s: an image directory "
			 "holds only its header and pages; choose another directory", dir, parent);
		return -EEXIST;
	}
	if (tf.lstat_res < 0) {
		if (tf.lstat_res == -ENOENT)
			return 0;
		snprintf(msg, msglen, "image directory %s: %s", dir, strerror(-tf.lstat_res));
		return tf.lstat_res;
	}
	if (S_ISLNK(tf.mode)) {
		snprintf(msg, msglen, "image directory %s exists and is not a crac image (it is a symbolic link%s%s); "
			 "a checkpoint replaces only a crac image of its own", dir, tf.link[0] ? " to " : "", tf.link);
		return -EEXIST;
	}
	if (!S_ISDIR(tf.mode)) {
		snprintf(msg, msglen, "image directory %s exists and is not a crac image (it is %s); "
			 "a checkpoint replaces only a crac image of its own", dir, file_kind(tf.mode));
		return -EEXIST;
	}
	if (tf.uid != tf.me) {
		snprintf(msg, msglen, "image directory %s is owned by uid %u, not by this process (uid %u); "
			 "a checkpoint replaces only a crac image of its own", dir, tf.uid, tf.me);
		return -EPERM;
	}
	if (tf.open_res < 0) {
		snprintf(msg, msglen, "image directory %s: %s", dir, strerror(-tf.open_res));
		return tf.open_res;
	}
	if (tf.n_others) {
		snprintf(msg, msglen, "image directory %s exists and is not a crac image (a directory holding other "
			 "files: %s%s); a checkpoint replaces only a crac image of its own", dir, tf.others,
			 tf.n_others > 3 ? " ..." : "");
		return -EEXIST;
	}
	if (!tf.have_header) {
		snprintf(msg, msglen, "image directory %s exists and is not a crac image (%s); "
			 "a checkpoint replaces only a crac image of its own", dir,
			 "a directory without an image header");
		return -EEXIST;
	}
	if (memcmp(tf.magic, CRAC_IMG_MAGIC, sizeof(tf.magic))) {
		snprintf(msg, msglen, "image directory %s exists and is not a crac image (its %s file does not "
			 "start with the image magic); a checkpoint replaces only a crac image of its own",
			 dir, CRAC_IMG_HEADER_FILE);
		return -EEXIST;
	}
	return 1;
}

int crac_img_commit(const char *tmp, const char *dir_arg, char *msg, size_t msglen)
{
	return crac_img_commit_expect(tmp, dir_arg, NULL, msg, msglen);
}

/*
 * rename (flags 0) or renameat2 of from to to, by a helper (bounded, see
 * above): 0 or -errno; -ETIMEDOUT with why naming both when it was given up
 * on (it may still happen when the file system answers again).
 */
static int fs_rename_as(const char *from, const char *to, unsigned flags, const char *slow, char *why, size_t wlen)
{
	struct fsop op = { .kind = FSOP_RENAME, .path = from, .to = to, .flags = flags, .slow_ms = fs_slow(slow),
			   .slow_after_ms = fs_slow("renamed") };
	int64_t waited;
	int rc = fsop_bounded(&op, &waited);

	char t[200];
	if (given_up(rc, waited, t, sizeof(t))) {
		snprintf(why, wlen, "rename %s to %s %s (it may still happen when the file system answers again)",
			 from, to, t);
	} else {
		why[0] = 0;
	}
	return rc;
}

static int fs_rename(const char *from, const char *to, unsigned flags, char *why, size_t wlen)
{
	return fs_rename_as(from, to, flags, "rename", why, wlen);
}

/* from to to where nothing is at to: RENAME_NOREPLACE, or a plain rename
 * where the file system cannot say (EINVAL, ENOSYS: some NFS, FUSE) */
static int fs_rename_noreplace(const char *from, const char *to, char *why, size_t wlen)
{
	int rc = fs_rename(from, to, RENAME_NOREPLACE, why, wlen);

	return rc == -EINVAL || rc == -ENOSYS ? fs_rename(from, to, 0, why, wlen) : rc;
}

/* (CRAC_TEST_SLOW_FS=move: these renames only, not the commit's, which the
 * program's image engine makes) */
int crac_img_rename_msg(const char *from, const char *to, unsigned flags, char *msg, size_t msglen)
{
	int rc = fs_rename_as(from, to, flags, "move", msg, msglen);

	if (rc < 0 && !msg[0])
		snprintf(msg, msglen, "rename %s to %s: %s", from, to, strerror(-rc));
	return rc;
}

/*
 * renameat2(RENAME_EXCHANGE) of tmp and dir. CRAC_TEST_NO_EXCHANGE=1
 * (tests only): fails with EINVAL, as on NFS, FUSE or vfat, so that the
 * fallback below is tested on any file system.
 */
static int rename_exchange(const char *tmp, const char *dir, char *why, size_t wlen)
{
	const char *t = getenv("CRAC_TEST_NO_EXCHANGE");

	if (t && !strcmp(t, "1")) {
		why[0] = 0;
		return -EINVAL;
	}
	return fs_rename(tmp, dir, RENAME_EXCHANGE, why, wlen);
}

/* Is what lies at `path` now the directory `expect` identifies (NULL:
 * anything is)? 1 yes, 0 no (or it cannot be looked at), -ETIMEDOUT with
 * why when the look was given up on. */
static int fs_is_expected(const char *path, const struct stat *expect, char *why, size_t wlen)
{
	if (!expect)
		return 1;
	struct fsop op = { .kind = FSOP_SAME, .path = path, .expect = expect };
	int64_t waited;
	int rc = fsop_bounded(&op, &waited);
	char t[200];
	if (given_up(rc, waited, t, sizeof(t))) {
		snprintf(why, wlen, "lstat %s %s", path, t);
		return rc;
	}
	return rc > 0;
}

bool crac_img_is_mount_point(const char *dir)
{
	char parent[PATH_MAX];
	const char *base;
	struct stat d, p;

	if (crac_img_split_path(dir, parent, sizeof(parent), &base) < 0 ||
	    crac_raw_syscall5(SYS_newfstatat, AT_FDCWD, (long)dir, (long)&d, AT_SYMLINK_NOFOLLOW, 0) < 0 ||
	    crac_raw_syscall5(SYS_newfstatat, AT_FDCWD, (long)parent, (long)&p, 0, 0) < 0)
		return false;
	return S_ISDIR(d.st_mode) && (d.st_dev != p.st_dev || d.st_ino == p.st_ino);
}

/* msg for a rename that failed: its own text when it was given up on; a
 * target that is a mount point, which no rename replaces, said as such. */
static int rename_failed(int rc, const char *why, const char *from, const char *to, char *msg, size_t msglen)
{
	if (why[0])
		snprintf(msg, msglen, "%s", why);
	else if ((rc == -EBUSY || rc == -EXDEV) && crac_img_is_mount_point(to))
		snprintf(msg, msglen, "%s is a mount point, which an image cannot be renamed onto (rename %s: %s); "
			 "give a directory inside the mounted file system", to, from, strerror(-rc));
	else
		snprintf(msg, msglen, "rename %s to %s: %s", from, to, strerror(-rc));
	return rc;
}

int crac_img_commit_expect(const char *tmp, const char *dir_arg, const struct stat *expect, char *msg,
			   size_t msglen)
{
	return crac_img_commit_with(tmp, dir_arg, expect, NULL, msg, msglen);
}

/*
 * The lock of an image about to be moved aside (DIR.old-PID-START): flock
 * on the directory, taken before the rename (the lock is the inode's: it
 * goes with it) and held until it is removed or put back. The descriptor,
 * or -1 where there is none to take (a file system without flock: the
 * names alone, as for the temporaries); -EBUSY (another holds it: a writer
 * doing the same, or a cleaner) or -ETIMEDOUT with msg: nothing is moved.
 * Bounded as the other looks (an NFS flock goes to the server).
 */
static int aside_lock(const char *dir, char *msg, size_t msglen)
{
	struct fsop op = { .kind = FSOP_OPEN, .path = dir, .flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
			   .lock_ex = true };
	int64_t waited;
	char why[200];
	int rc = fsop_bounded(&op, &waited);

	if (given_up(rc, waited, why, sizeof(why))) {
		snprintf(msg, msglen, "the lock of the previous image %s (before it is moved aside) %s; nothing was "
			 "replaced", dir, why);
		return rc;
	}
	if (rc == -EWOULDBLOCK) {
		snprintf(msg, msglen, "the previous image %s is locked by another process (a writer replacing it, "
			 "or a cleaner removing it); nothing was replaced", dir);
		return -EBUSY;
	}
	return rc < 0 ? -1 : rc;
}

static void aside_unlock(int lk)
{
	if (lk >= 0)
		close(lk);
}

/*
 * The exchange back of keep_foreign's case: tmp (another writer's image)
 * and dir (ours) swapped again. CRAC_TEST_NO_EXCHANGE=back (tests only):
 * it fails with EIO; =back-keep: the move to a kept name fails too.
 */
static int exchange_back(const char *tmp, const char *dir, char *why, size_t wlen)
{
	const char *t = getenv("CRAC_TEST_NO_EXCHANGE");

	if (t && !strncmp(t, "back", 4)) {
		why[0] = 0;
		return -EIO;
	}
	return fs_rename(tmp, dir, RENAME_EXCHANGE, why, wlen);
}

/* A kept image (kept_imgs[k]) moved from its temporary's name to its kept
 * name: 0 (or it was already), -errno. */
static int kept_move(int k)
{
	struct kept_img *e = &kept_imgs[k];
	const char *t = getenv("CRAC_TEST_NO_EXCHANGE");
	char why[2 * PATH_MAX + 300];
	int rc;

	if (!e->tmp[0])
		return 0;
	if (t && !strcmp(t, "back-keep"))
		return -EIO;
	if ((rc = fs_rename_noreplace(e->tmp, e->kept, why, sizeof(why))) == 0)
		e->tmp[0] = 0;
	return rc;
}

/*
 * tmp holds an image that is not ours (the commit's exchange took it out
 * of dir, and it was not the one expected, or could not be looked at) and
 * stays out of place: it must survive. It is recorded (kept_imgs: no
 * removal by this process touches it, the callers' cleanup of tmp
 * included), and moved to DIR.kept-PID-START-N, a name no cleaner takes
 * for a temporary; where that rename fails it stays at tmp, locked (flock,
 * for as long as this process runs: cleaners elsewhere leave it alone),
 * and the removal of tmp tries the move again. stuck: the file system
 * just did not answer (a call given up on): only the move is tried (one
 * bounded wait more, not three). `where` gets the name it is under now;
 * note (for the caller's message) what was done. 0 moved, 1 left at tmp.
 */
static int keep_foreign(const char *tmp, const char *dir, bool stuck, char *where, size_t wlen, char *note,
			size_t nlen)
{
	char m[PATH_MAX + 300];
	struct stat st;
	int rc;

	snprintf(where, wlen, "%s", tmp);
	note[0] = 0;
	if (n_kept >= KEPT_MAX) {
		snprintf(note, nlen, "; it is not removed by this process");
		return 1;
	}
	struct kept_img *e = &kept_imgs[n_kept];
	/* its identity, if it can be looked at; else it is guarded by its
	 * names alone (remove_msg, crac_img_clean_stale) */
	int lrc = stuck ? -ETIMEDOUT : crac_img_lstat_msg(tmp, &st, m, sizeof(m));
	if (stuck)
		snprintf(m, sizeof(m), "not tried, the file system did not answer");
	e->known = lrc == 0;
	e->dev = e->known ? st.st_dev : 0;
	e->ino = e->known ? st.st_ino : 0;
	snprintf(e->tmp, sizeof(e->tmp), "%s", tmp);
	e->kept[0] = 0;
	n_kept++;   /* guarded from here on */
	for (int n = 0; n < 100; n++) {
		if (snprintf(e->kept, sizeof(e->kept), "%s.kept-%d-%llu-%d", dir, (int)getpid(),
			     crac_img_start_time(getpid()), n) >= (int)sizeof(e->kept))
			break;
		if ((rc = kept_move(n_kept - 1)) == 0) {
			snprintf(where, wlen, "%s", e->kept);
			snprintf(note, nlen, " (moved there from %s, a name of our temporaries)", tmp);
			return 0;
		}
		if (rc != -EEXIST && rc != -ENOTEMPTY)
			break;
	}
	/* Left at tmp: locked against cleaners elsewhere while we run (the
	 * descriptor is never closed); ours skip it (kept_here, kept_name). */
	if (!stuck) {
		char lm[PATH_MAX + 300];
		int lk = aside_lock(tmp, lm, sizeof(lm));
		(void)lk;
	}
	snprintf(note, nlen, "; it is not removed by this process, which moves it to %s when it can; move it "
		 "back by hand before this process exits (a later checkpoint into %s takes that name for a "
		 "stale temporary then)%s%s", e->kept, dir, e->known ? "" : "; its lstat: ",
		 e->known ? "" : m[0] ? m : strerror(-lrc));
	return 1;
}

int crac_img_commit_with(const char *tmp, const char *dir_arg, const struct stat *expect,
			 const struct crac_img_commit_ops *ops, char *msg, size_t msglen)
{
	int (*check)(const char *, char *, size_t) = ops && ops->check ? ops->check : crac_img_target_check;
	int (*remove_old)(const char *, char *, size_t) = ops && ops->remove ? ops->remove : crac_img_remove_msg;

	char parent[PATH_MAX], old[PATH_MAX], dbuf[PATH_MAX], why[2 * PATH_MAX + 300];
	const char *dir = strip_slashes(dir_arg, dbuf, sizeof(dbuf));
	const char *base;
	int rc, warn = 0;

	msg[0] = 0;
	if (!dir) {
		snprintf(msg, msglen, "image directory name too long");
		return -ENAMETOOLONG;
	}
	if ((rc = crac_img_split_path(dir, parent, sizeof(parent), &base)) < 0) {
		snprintf(msg, msglen, "image directory name %s is too long", dir);
		return rc;
	}
	/* Whatever was checked at configure time may have changed since. */
	int there = check(dir, msg, msglen);
	if (there < 0)
		return there;
	msg[0] = 0;

	if (expect && (there > 0) != (expect->st_ino != 0)) {
		snprintf(msg, msglen, "image directory %s %s since it was checked; nothing was replaced", dir,
			 there > 0 ? "appeared" : "went away");
		return -EEXIST;
	}
	if (!there) {
		/* Nothing at DIR: never replace what may appear meanwhile. */
		rc = fs_rename_noreplace(tmp, dir, why, sizeof(why));
		if (rc == -EEXIST || rc == -ENOTEMPTY) {
			snprintf(msg, msglen, "image directory %s appeared while the image was written; "
				 "nothing was replaced", dir);
			return -EEXIST;
		}
		if (rc < 0)
			return rename_failed(rc, why, tmp, dir, msg, msglen);
	} else if ((rc = rename_exchange(tmp, dir, why, sizeof(why))) == 0) {
		/* tmp now holds the previous image: the one expected? */
		int same = fs_is_expected(tmp, expect, why, sizeof(why));
		char where[PATH_MAX], note[2 * PATH_MAX + 200];
		if (same < 0) {
			/* ours is in place; the previous one, perhaps
			 * another's, is kept (not under our temporary's name,
			 * which a cleaner would take for stale) */
			keep_foreign(tmp, dir, true, where, sizeof(where), note, sizeof(note));
			snprintf(msg, msglen, "the previous image (now %s%s) was not looked at, and is left there: %s",
				 where, note, why);
			return 1;
		}
		if (!same) {
			/* another image came into place after the check:
			 * it goes back, ours stays a temporary */
			if ((rc = exchange_back(tmp, dir, why, sizeof(why))) < 0) {
				/* ours stays at dir; the other one must not
				 * be lost with our temporary (the caller
				 * removes tmp on failure) */
				keep_foreign(tmp, dir, rc == -ETIMEDOUT && why[0], where, sizeof(where), note,
					     sizeof(note));
				snprintf(msg, msglen, "image directory %s was replaced by another image while ours was "
					 "written, and putting that one back failed (%s): ours is at %s, the other "
					 "one is now %s%s", dir, why[0] ? why : strerror(-rc), dir, where, note);
				return rc;
			}
			snprintf(msg, msglen, "image directory %s was replaced while the image was written; "
				 "nothing was replaced", dir);
			return -EEXIST;
		}
		/* Committed. */
		if (remove_old(tmp, why, sizeof(why)) < 0) {
			snprintf(msg, msglen, "the previous image (now %s) could not be removed: %s", tmp, why);
			warn = 1;
		}
	} else if (rc == -EINVAL || rc == -ENOSYS) {
		/* The file system cannot exchange: move the old image aside
		 * first, under a name that crac_img_clean_stale recognises,
		 * locked as the temporaries are (crac_img_tmp_create): a
		 * cleaner in another pid namespace, to which our PID and START
		 * mean nothing, leaves it alone while it is ours. */
		if (snprintf(old, sizeof(old), "%s.old-%d-%llu", dir, (int)getpid(),
			     crac_img_start_time(getpid())) >= (int)sizeof(old)) {
			snprintf(msg, msglen, "image directory name %s is too long", dir);
			return -ENAMETOOLONG;
		}
		int lk = aside_lock(dir, msg, msglen);
		if (lk == -EBUSY || lk == -ETIMEDOUT)
			return lk;
		if ((rc = fs_rename(dir, old, 0, why, sizeof(why))) < 0) {
			if (why[0])
				snprintf(msg, msglen, "move the previous image aside: %s", why);
			else
				snprintf(msg, msglen, "move the previous image %s aside: %s", dir, strerror(-rc));
			aside_unlock(lk);
			return rc;
		}
		crac_bounded_test_sleep(fs_slow("aside"));   /* tests: the old image aside, in use */
		if ((rc = fs_is_expected(old, expect, why, sizeof(why))) <= 0) {
			char back[sizeof(why)];
			fs_rename(old, dir, 0, back, sizeof(back));   /* not ours to replace: back */
			aside_unlock(lk);
			if (rc < 0) {
				snprintf(msg, msglen, "%s; nothing was replaced", why);
				return rc;
			}
			snprintf(msg, msglen, "image directory %s was replaced while the image was written; "
				 "nothing was replaced", dir);
			return -EEXIST;
		}
		if ((rc = fs_rename(tmp, dir, 0, why, sizeof(why))) < 0) {
			rename_failed(rc, why, tmp, dir, msg, msglen);
			fs_rename(old, dir, 0, why, sizeof(why));   /* put the previous image back */
			aside_unlock(lk);
			return rc;
		}
		if (remove_old(old, why, sizeof(why)) < 0) {
			snprintf(msg, msglen, "the previous image (now %s) could not be removed: %s", old, why);
			warn = 1;
		}
		aside_unlock(lk);
	} else {
		return rename_failed(rc, why, tmp, dir, msg, msglen);
	}
	/* From here on the image is in place: failures are warnings. */
	if (crac_img_fsync_path_msg(parent, why, sizeof(why)) < 0) {
		size_t at = strlen(msg);
		snprintf(msg + at, msglen - at, "%s%s (the rename may not survive a crash)", at ? "; " : "", why);
		warn = 1;
	}
	return warn;
}

/* ---- temporaries ------------------------------------------------------------- */

const char *crac_img_proc_stat(int pid, char *buf, size_t len)
{
	char path[64];

	if (len < 2)
		return NULL;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	/* the command name (field 2) may hold anything, ')' too: it ends at
	 * the last ')' */
	char *p = strrchr(buf, ')');
	return p ? p + 1 : NULL;
}

/* The start time (field 22, proc(5)) in the fields crac_img_proc_stat
 * returns, or 0. */
static unsigned long long stat_start_time(const char *p)
{
	for (int field = 2; p && *p && field < 22; p++)
		if (*p == ' ')
			field++;
	return p && *p ? strtoull(p, NULL, 10) : 0;
}

unsigned long long crac_img_start_time(int pid)
{
	char buf[1024];

	return stat_start_time(crac_img_proc_stat(pid, buf, sizeof(buf)));
}

/* The writer temporaries are named after (crac_img_tmp_writer); 0: the caller. */
static int tmp_writer;

void crac_img_tmp_writer(int pid)
{
	tmp_writer = pid;
}

int crac_img_tmp_name(const char *dir_arg, char *out, size_t len)
{
	char dbuf[PATH_MAX];
	const char *dir = strip_slashes(dir_arg, dbuf, sizeof(dbuf));
	int pid = tmp_writer ? tmp_writer : (int)getpid();

	if (!dir)
		return -ENAMETOOLONG;
	if (snprintf(out, len, "%s.tmp-%d-%llu-XXXXXX", dir, pid, crac_img_start_time(pid)) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

/* XXXXXX at the end of tmp: six random letters and digits (from libcrac's
 * own generator, crac_random_u64, which never fails). */
static void tmp_suffix(char *tmp)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	size_t n = strlen(tmp);
	uint64_t r = crac_random_u64();

	if (n < 6)
		return;
	for (int i = 0; i < 6; i++, r /= sizeof(abc) - 1)
		tmp[n - 6 + i] = abc[r % (sizeof(abc) - 1)];
}

/*
 * Each step by a bounded helper (a file system that stopped answering
 * keeps a mkdir, an open or a flock for as long as it likes): the
 * directory made (mkdir of a random name, as mkdtemp does), opened and
 * locked, each given up on at the deadline (crac_img_fs_deadline) with
 * -ETIMEDOUT and msg naming the temporary and the step.
 */
int crac_img_tmp_create_msg(const char *dir, char *tmp, size_t len, int *fd, char *msg, size_t msglen)
{
	int64_t waited;
	char why[200];
	int rc;

	*fd = -1;
	msg[0] = 0;
	for (int tries = 0, clashes = 0;;) {
		if (crac_img_tmp_name(dir, tmp, len) < 0)
			return -ENAMETOOLONG;
		tmp_suffix(tmp);
		struct fsop mk = { .kind = FSOP_MKDIR, .path = tmp, .fd = 0700, .slow_ms = fs_slow("mkdtemp") };
		rc = fsop_bounded(&mk, &waited);
		if (given_up(rc, waited, why, sizeof(why))) {
			snprintf(msg, msglen, "the creation of the temporary image %s %s", tmp, why);
			return -ETIMEDOUT;   /* (tmp kept: it may be made yet, the caller removes it) */
		}
		if (rc == -EEXIST && ++clashes < 100)
			continue;
		if (rc < 0) {
			tmp[0] = 0;
			return rc;
		}
		struct fsop op = { .kind = FSOP_OPEN, .path = tmp, .flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
				   .lock_ex = true, .slow_ms = fs_slow("tmplock") };
		rc = fsop_bounded(&op, &waited);
		if (given_up(rc, waited, why, sizeof(why))) {
			snprintf(msg, msglen, "the open and lock of the temporary image %s %s", tmp, why);
			return -ETIMEDOUT;
		}
		if (rc >= 0 && op.st.st_nlink > 0) {
			*fd = rc;
			return 0;   /* ours (or no flock on this file system) */
		}
		if (rc >= 0)
			close(rc);   /* removed under us already */
		else if (rc != -EWOULDBLOCK)
			return rc;   /* the open's error (tmp made, *fd -1) */
		/* A cleaner took it between the mkdir and the flock (another
		 * pid namespace: our name means nothing there): it removes it
		 * (if still there: ours to remove otherwise), a new one then. */
		if (++tries == 3)
			return -EBUSY;
		struct fsop rm = { .kind = FSOP_REMOVE, .path = tmp, .own_only = true, .slow_ms = fs_slow("clean") };
		if (given_up(fsop_bounded(&rm, &waited), waited, why, sizeof(why))) {
			snprintf(msg, msglen, "the removal of the temporary image %s (a cleaner took it as it was made) %s",
				 tmp, why);
			return -ETIMEDOUT;
		}
	}
}

int crac_img_tmp_create(const char *dir, char *tmp, size_t len, int *fd)
{
	char msg[PATH_MAX + 300];

	return crac_img_tmp_create_msg(dir, tmp, len, fd, msg, sizeof(msg));
}

/*
 * Splits a temporary's name: BASE.tmp-PID-START-XXXXXX (kind 't'),
 * BASE.old-PID-START (kind 'o'), or BASE.tmp-XXXXXX from crac before
 * writers were recorded (kind 'l', pid 0). Returns the kind, or 0 if `name`
 * is no temporary of an image called `base`.
 */
static int tmp_parse(const char *name, const char *base, int *pid, unsigned long long *start)
{
	size_t bl = strlen(base);
	int kind;

	*pid = 0;
	*start = 0;
	if (strncmp(name, base, bl))
		return 0;
	name += bl;
	if (!strncmp(name, ".tmp-", 5))
		kind = 't';
	else if (!strncmp(name, ".old-", 5))
		kind = 'o';
	else
		return 0;
	name += 5;
	char *end;
	long p = strtol(name, &end, 10);
	if (end != name && *end == '-' && p > 0 && p < INT_MAX) {
		char *e2;
		unsigned long long st = strtoull(end + 1, &e2, 10);
		if (e2 != end + 1 && ((kind == 't' && *e2 == '-' && strlen(e2 + 1) == 6) || (kind == 'o' && !*e2))) {
			*pid = (int)p;
			*start = st;
			return kind;
		}
	}
	if (kind == 't' && strlen(name) == 6 && !strchr(name, '-'))
		return 'l';
	return 0;
}

/* A zombie (p: its /proc/PID/stat fields): exited, not reaped yet (state
 * Z or X), and no thread of it left (a leader that exited alone shows Z
 * while its other threads run: then /proc/PID/task lists them too). */
static bool zombie(int pid, const char *p)
{
	char path[64];

	if (!p || (p[0] != ' ') || (p[1] != 'Z' && p[1] != 'X'))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	int n = 0;
	if (!d)
		return true;   /* (its tasks gone already) */
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n <= 1;
}

/* Does the writer pid (with that start time) still run? A zombie does not:
 * it writes nothing more, and its parent may never reap it. */
static bool writer_alive(int pid, unsigned long long start)
{
	char buf[1024];

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return false;
	const char *p = crac_img_proc_stat(pid, buf, sizeof(buf));   /* (its state and start time) */
	unsigned long long now = stat_start_time(p);
	/* Unreadable /proc (another pid namespace, hidepid): assume it runs. */
	if (now != 0 && now != start)
		return false;
	return now == 0 || !zombie(pid, p);
}

/*
 * A temporary whose writer is gone but whose lock is still held. The
 * writer's helpers (image/bounded.c: clone children sharing its file
 * table, so its open temporary and the lock with it) die with it, but only
 * when the system call they are in returns: an fsync or an O_DIRECT write
 * of its pages, in the kernel for as long as the disk takes (seen here:
 * tens of milliseconds after the writer was reaped). The cleaner waits
 * for them, polling, up to DEAD_LOCK_WAIT_MS and never past the deadline;
 * a lock still held then (a writer in another pid namespace, whose PID
 * means nothing here, or a disk slower than that) leaves the temporary to
 * a later checkpoint, as before.
 */
#define DEAD_LOCK_WAIT_MS 3000   /* op: FSOP_REMOVE (own_only) or FSOP_PUTBACK */
#define DEAD_LOCK_POLL_MS 10

static int dead_lock_wait(struct fsop *op, int rc, int locked_step, int64_t *waited)
{
	int64_t until = crac_bounded_mono_ns() + (int64_t)DEAD_LOCK_WAIT_MS * 1000000;

	if (fs_deadline_ns && fs_deadline_ns < until)
		until = fs_deadline_ns;
	while (rc == -EBUSY && op->step == locked_step && crac_bounded_mono_ns() < until) {
		struct timespec ts = { 0, DEAD_LOCK_POLL_MS * 1000000L };
		nanosleep(&ts, NULL);
		rc = fsop_bounded(op, waited);   /* (its step starts at 0 again) */
	}
	return rc;
}

/* What put_back was doing at step (for a message). */
static const char *put_back_step(int step)
{
	static const char *const what[] = { "the look at it", "the look at its owner", "its lock",
					    "the look at its header", "the rename" };

	return step >= 0 && step < (int)(sizeof(what) / sizeof(what[0])) ? what[step] : "?";
}

/* msg: why the previous image at path (put_back's rc, at step) was not put
 * back at img, and that it is left where it is. */
static void put_back_left(const char *path, const char *img, int rc, int step, char *msg, size_t msglen)
{
	char why[200];

	switch (step) {
	case 0:
		if (rc == -ELOOP)
			snprintf(why, sizeof(why), "it is a symbolic link, not an image a writer moved aside");
		else if (rc == -ENOTDIR)
			snprintf(why, sizeof(why), "it is not a directory");
		else if (rc == -ENOENT)
			return;   /* another cleaner put it back first: nothing to say */
		else
			snprintf(why, sizeof(why), "it cannot be opened: %s", strerror(-rc));
		break;
	case 1:
		if (rc == -EPERM)
			snprintf(why, sizeof(why), "it belongs to another user (uid %u is not its owner): a writer "
				 "moves aside only its own image", (unsigned)geteuid());
		else
			snprintf(why, sizeof(why), "it cannot be looked at: %s", strerror(-rc));
		break;
	case 2:
		snprintf(why, sizeof(why), "a process holds it locked (its writer, alive in another pid namespace, "
			 "or another cleaner putting it back)");
		break;
	case 3:
		snprintf(why, sizeof(why), "it is not a crac image (no header with the image magic)");
		break;
	default:
		if (rc == -EEXIST || rc == -ENOTEMPTY)
			snprintf(why, sizeof(why), "an image appeared there meanwhile");
		else if (rc == -ENOENT)
			return;   /* another cleaner put it back first */
		else
			snprintf(why, sizeof(why), "the rename failed: %s", strerror(-rc));
		break;
	}
	snprintf(msg, msglen, "the previous image %s was not put back at %s: %s; it is left where it is", path, img,
		 why);
}

int crac_img_clean_stale_msg(const char *dir, int *removed, char *msg, size_t msglen)
{
	char parent[PATH_MAX];
	const char *base;
	int n = 0;

	if (removed)
		*removed = 0;
	msg[0] = 0;
	if (crac_img_split_path(dir, parent, sizeof(parent), &base) < 0)
		return -ENAMETOOLONG;
	char bname[NAME_MAX + 1];
	size_t bl = strcspn(base, "/");
	if (bl > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(bname, base, bl);
	bname[bl] = 0;

	/* the listing and each removal by a helper, bounded (see above) */
	static struct stale_list sl;   /* 16 KiB: one checkpoint at a time */
	memset(&sl, 0, sizeof(sl));
	sl.parent = parent;
	sl.base = bname;
	struct fsop op = { .kind = FSOP_LIST, .sl = &sl, .slow_ms = fs_slow("clean") };
	int64_t waited;
	int rc = fsop_bounded(&op, &waited);
	char why[200];
	if (given_up(rc, waited, why, sizeof(why))) {
		snprintf(msg, msglen, "the listing of %s for stale temporaries of %s %s", parent, bname, why);
		return rc;
	}
	if (rc < 0)
		return rc;
	for (size_t at = 0; at < sl.len; at += strlen(sl.names + at) + 1) {
		const char *name = sl.names + at;
		int pid;
		unsigned long long start;
		int kind = tmp_parse(name, bname, &pid, &start);
		if (kind != 't' && kind != 'o')
			continue;    /* legacy names record no writer: left alone */
		if (kept_name(name))
			continue;    /* another writer's image (keep_foreign) */
		if (writer_alive(pid, start) &&
		    !(pid == (int)getpid() && start == crac_img_start_time(pid)))
			continue;
		/* Gone (or us: one checkpoint at a time, and ours has not
		 * created its temporary yet). A directory of ours, holding
		 * nothing else than header and pages (rmdir fails otherwise,
		 * and it stays). */
		char path[PATH_MAX];
		if (snprintf(path, sizeof(path), "%s/%s", parent, name) >= (int)sizeof(path))
			continue;
		if (kind == 'o') {
			/* A previous image its writer moved aside (no
			 * RENAME_EXCHANGE here) and then died before the new
			 * one took its place: with no image at DIR, it is the
			 * image, and goes back; else it was replaced. */
			char img[PATH_MAX], m[PATH_MAX + 300];
			struct stat st;
			if (snprintf(img, sizeof(img), "%s/%s", parent, bname) >= (int)sizeof(img))
				continue;
			rc = crac_img_lstat_msg(img, &st, m, sizeof(m));
			if (rc == -ENOENT) {
				/* only what a writer of ours moved aside and no
				 * one holds (put_back); else left as it is */
				struct fsop pb = { .kind = FSOP_PUTBACK, .path = path, .to = img,
						   .slow_ms = fs_slow("putback") };
				rc = fsop_bounded(&pb, &waited);
				rc = dead_lock_wait(&pb, rc, 2, &waited);
				if (given_up(rc, waited, why, sizeof(why))) {
					snprintf(msg, msglen, "putting the previous image %s back at %s (%s) %s", path,
						 img, put_back_step(pb.step), why);
					if (removed)
						*removed = n;
					return rc;
				}
				if (rc < 0)
					put_back_left(path, img, rc, pb.step, msg, msglen);
				continue;   /* back (or left as it is: never removed) */
			}
			if (rc < 0)
				continue;   /* cannot tell: left alone */
		}
		struct fsop rm = { .kind = FSOP_REMOVE, .path = path, .own_only = true, .slow_ms = fs_slow("clean") };
		rc = fsop_bounded(&rm, &waited);
		rc = dead_lock_wait(&rm, rc, -2, &waited);
		if (given_up(rc, waited, why, sizeof(why))) {
			snprintf(msg, msglen, "the removal of the stale temporary %s %s", path, why);
			if (removed)
				*removed = n;
			return rc;
		}
		if (rc == 0)
			n++;
	}
	if (removed)
		*removed = n;
	return 0;
}

int crac_img_clean_stale(const char *dir, int *removed)
{
	char msg[PATH_MAX + 400];

	return crac_img_clean_stale_msg(dir, removed, msg, sizeof(msg));
}

/* Does a writer hold the temporary at path locked (it does until its
 * rename; image_capture.c, the criu engine)? Only tried (a shared lock, let
 * go at once): a writer or a cleaner at that moment just sees it taken. */
static bool tmp_locked(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	bool locked = fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;

	if (fd >= 0)
		close(fd);
	return locked;
}

int crac_img_tmp_describe(const char *path, char *msg, size_t msglen)
{
	char parent[PATH_MAX], bname[NAME_MAX + 1];
	const char *base;
	int pid;
	unsigned long long start;

	if (crac_img_split_path(path, parent, sizeof(parent), &base) < 0)
		return -ENAMETOOLONG;
	size_t bl = strcspn(base, "/");
	if (bl > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(bname, base, bl);
	bname[bl] = 0;
	/* The image name is what precedes the last ".tmp-" or ".old-". */
	char *t = NULL;
	for (char *p = bname; *p; p++)
		if (!strncmp(p, ".tmp-", 5) || !strncmp(p, ".old-", 5))
			t = p;
	if (!t || t == bname)
		return -EINVAL;
	char img[NAME_MAX + 1];
	memcpy(img, bname, (size_t)(t - bname));
	img[t - bname] = 0;
	int kind = tmp_parse(bname, img, &pid, &start);
	char target[PATH_MAX + NAME_MAX + 2];
	if (!strcmp(parent, "."))
		snprintf(target, sizeof(target), "%s", img);
	else
		snprintf(target, sizeof(target), "%s%s%s", parent, parent[strlen(parent) - 1] == '/' ? "" : "/", img);

	switch (kind) {
	case 't':
		if (writer_alive(pid, start))
			snprintf(msg, msglen, "an unfinished image of %s being written by pid %d (running)",
				 target, pid);
		else if (tmp_locked(path))
			snprintf(msg, msglen, "an unfinished image of %s being written by a process that holds it "
				 "locked, not pid %d of this pid namespace (a checkpoint in another one, such as a "
				 "container sharing the directory?): no checkpoint removes it while it is", target, pid);
		else
			snprintf(msg, msglen, "an unfinished image of %s left by pid %d, which is gone: "
				 "the next checkpoint to %s removes it", target, pid, target);
		return 0;
	case 'o':
		if (writer_alive(pid, start))
			snprintf(msg, msglen, "the previous image of %s, set aside by pid %d (running) "
				 "while it puts the new one in place", target, pid);
		else if (tmp_locked(path))
			snprintf(msg, msglen, "the previous image of %s, set aside by a process that holds it "
				 "locked, not pid %d of this pid namespace (a checkpoint in another one, such as a "
				 "container sharing the directory?): no checkpoint puts it back or removes it while "
				 "it is", target, pid);
		else if (access(target, F_OK) < 0 && errno == ENOENT)
			snprintf(msg, msglen, "the previous image of %s, set aside by pid %d, which is gone before "
				 "a new image took its place: the next checkpoint to %s puts it back first (or "
				 "`mv %s %s`)", target, pid, target, path, target);
		else
			snprintf(msg, msglen, "the previous image of %s, set aside by pid %d, which is gone: "
				 "the next checkpoint to %s removes it", target, pid, target);
		return 0;
	case 'l':
		snprintf(msg, msglen, "an unfinished image of %s written by an older crac, which did not "
			 "record its writer: remove it by hand if no checkpoint to %s is running", target, target);
		return 0;
	}
	return -EINVAL;
}

int crac_img_load(const char *dir, struct crac_img_loaded *out, char *msg, size_t msglen)
{
	char path[PATH_MAX];
	struct stat st;
	int fd = -1, rc;

	memset(out, 0, sizeof(*out));
	msg[0] = 0;
	if (snprintf(path, sizeof(path), "%s/%s", dir, CRAC_IMG_HEADER_FILE) >= (int)sizeof(path)) {
		snprintf(msg, msglen, "path too long");
		return -ENAMETOOLONG;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if ((uint64_t)st.st_size > CRAC_IMG_MAX_HEADER) {
		rc = -EFBIG;
		snprintf(msg, msglen, "%s: header too large (%lld bytes)", path, (long long)st.st_size);
		goto fail;
	}
	out->len = (uint64_t)st.st_size;
	/* 8-byte aligned for the struct views; +1 so that an empty file works. */
	out->buf = aligned_alloc(8, (out->len + 8) & ~7ull);
	if (!out->buf) {
		rc = -ENOMEM;
		snprintf(msg, msglen, "out of memory");
		goto fail;
	}
	for (uint64_t got = 0; got < out->len;) {
		ssize_t n = pread(fd, (char *)out->buf + got, out->len - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EBADMSG;
			snprintf(msg, msglen, "%s: read: %s", path, n < 0 ? strerror(errno) : "file shrank");
			goto fail;
		}
		got += (uint64_t)n;
	}
	close(fd);
	fd = -1;

	char why[256];
	if ((rc = crac_img_parse(out->buf, out->len, &out->v, why, sizeof(why))) < 0) {
		snprintf(msg, msglen, "%s: %s", path, why);
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, CRAC_IMG_PAGES_FILE);
	if (stat(path, &st) < 0) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if ((uint64_t)st.st_size != out->v.h->pages_size) {
		rc = -EBADMSG;
		snprintf(msg, msglen, "%s: page data is truncated or damaged (%lld bytes, header says %llu)",
			 path, (long long)st.st_size, (unsigned long long)out->v.h->pages_size);
		goto fail;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	crac_img_unload(out);
	return rc;
}

void crac_img_unload(struct crac_img_loaded *l)
{
	free(l->buf);
	memset(l, 0, sizeof(*l));
}

int crac_img_reader_init(struct crac_img_reader *r)
{
	uint64_t ds = crac_img_zstd_dctx_size();

	memset(r, 0, sizeof(*r));
	crac_img_crc32c_prepare(&r->crc);
	r->zbuf = malloc(CRAC_IMG_CHUNK_MAX);
	r->dmem = ds ? aligned_alloc(64, ds) : NULL;
	if (!r->zbuf || (ds && !r->dmem)) {
		crac_img_reader_free(r);
		return -ENOMEM;
	}
	r->dctx = crac_img_zstd_dctx(r->dmem, ds);
	return 0;
}

void crac_img_reader_free(struct crac_img_reader *r)
{
	free(r->zbuf);
	free(r->dmem);
	memset(r, 0, sizeof(*r));
}

long crac_img_reader_read(struct crac_img_reader *r, int fd, const struct crac_img_chunk *k, void *dst)
{
	return crac_img_chunk_read(fd, k, dst, r->zbuf, CRAC_IMG_CHUNK_MAX, r->dctx, &r->crc);
}

int crac_img_verify_pages(const char *dir, const struct crac_img_view *v, char *msg, size_t msglen)
{
	return crac_img_verify_pages_steps(dir, v, NULL, NULL, msg, msglen);
}

int crac_img_verify_pages_steps(const char *dir, const struct crac_img_view *v,
				void (*step)(void *ctx, const char *path, long i), void *ctx, char *msg,
				size_t msglen)
{
	char path[PATH_MAX];
	struct crac_img_reader rd;
	char *buf = NULL;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, CRAC_IMG_PAGES_FILE);
	if (step)
		step(ctx, path, -1);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (!(buf = malloc(CRAC_IMG_CHUNK_MAX)) || crac_img_reader_init(&rd) < 0) {
		free(buf);
		close(fd);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < v->h->n_chunks && !rc; i++) {
		const struct crac_img_chunk *c = &v->chunks[i];
		/* read, decompressed if it is, its crc checked (image/chunk.c) */
		if (step)
			step(ctx, path, i);
		long r = crac_img_reader_read(&rd, fd, c, buf);
		if (r < 0) {
			rc = (int)r;
			snprintf(msg, msglen, "%s: read at %llu: %s", path, (unsigned long long)c->offset,
				 strerror((int)-r));
		} else if (r == CRAC_CHUNK_SHORT) {
			rc = -EBADMSG;
			snprintf(msg, msglen, "%s: read at %llu: end of file", path, (unsigned long long)c->offset);
		} else if (r == CRAC_CHUNK_CRC) {
			rc = -EBADMSG;
			snprintf(msg, msglen, "%s: checksum mismatch in page chunk #%u (%llu bytes at %#llx of %s)",
				 path, i, (unsigned long long)c->len, (unsigned long long)c->addr,
				 crac_img_kind_name(v->maps[c->map].kind));
		} else if (r > 0) {
			rc = r == CRAC_CHUNK_NO_ZSTD ? -ENOTSUP : -EBADMSG;
			snprintf(msg, msglen, "%s: page chunk #%u (%llu bytes at %#llx of %s): %s", path, i,
				 (unsigned long long)c->len, (unsigned long long)c->addr,
				 crac_img_kind_name(v->maps[c->map].kind), crac_img_chunk_why(r));
		}
	}
	/* The descriptors' content (pipes, memfds) after the chunks: a crc32c
	 * of its own, which a restore checks only once the program's objects
	 * are made; inspect and flatten's read-back check it here. */
	for (uint32_t i = 0; i < v->h->n_fds && !rc; i++) {
		const struct crac_img_fd *e = &v->fds[i];
		uint32_t crc = 0;
		if (step)
			step(ctx, path, (long)v->h->n_chunks + i);
		for (uint64_t done = 0; done < e->data_len && !rc;) {
			uint64_t n = e->data_len - done < CRAC_IMG_CHUNK_MAX ? e->data_len - done : CRAC_IMG_CHUNK_MAX;
			ssize_t got = pread(fd, buf, n, (off_t)(e->data_off + done));
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				rc = got < 0 ? -errno : -EBADMSG;
				snprintf(msg, msglen, "%s: read at %llu: %s", path,
					 (unsigned long long)(e->data_off + done), got < 0 ? strerror(errno) : "end of file");
				break;
			}
			crc = crac_img_crc32c(crc, buf, (size_t)got);
			done += (uint64_t)got;
		}
		if (!rc && crc != e->data_crc) {
			rc = -EBADMSG;
			snprintf(msg, msglen, "%s: checksum mismatch in the content of fd %d (%llu bytes at %llu)", path,
				 (int)e->fd, (unsigned long long)e->data_len, (unsigned long long)e->data_off);
		}
	}
	crac_img_reader_free(&rd);
	free(buf);
	close(fd);
	return rc;
}

int crac_img_loader_path(char *buf, size_t len, char *msg, size_t msglen)
{
	const char *env = getenv("CRAC_LOADER");
	char self[PATH_MAX], next[PATH_MAX + 16];
	const char *cands[3] = { NULL, NULL, NULL };
	int nc = 0, found = -1, rc;
	ssize_t n = -1;

	/* Each access(2) by a helper, bounded as the others (a command's
	 * limit: crac start's --timeout): a directory on a file system that
	 * does not answer is given up on, -ETIMEDOUT with msg naming it.
	 * CRAC_TEST_SLOW_FS=loader:MS slows these alone (tests). */
	if (env && *env) {
		cands[0] = env;
		if ((rc = access_first_as(cands, X_OK, &found, "loader", msg, msglen)) == -ETIMEDOUT)
			return rc;
		if (rc == 0 && snprintf(buf, len, "%s", env) < (int)len)
			return 0;
		snprintf(msg, msglen, "CRAC_LOADER=%s is not an executable file", env);
		return -ENOENT;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			if (snprintf(next, sizeof(next), "%s/crac-loader", self) < (int)len)
				cands[nc++] = next;
		}
	}
#ifdef CRAC_INSTALL_LIBEXECDIR
	if (strlen(CRAC_INSTALL_LIBEXECDIR "/crac-loader") < len)
		cands[nc++] = CRAC_INSTALL_LIBEXECDIR "/crac-loader";
#endif
	if ((rc = access_first_as(cands, X_OK, &found, "loader", msg, msglen)) == -ETIMEDOUT)
		return rc;
	if (rc == 0) {
		snprintf(buf, len, "%s", cands[found]);
		return 0;
	}
#ifdef CRAC_INSTALL_LIBEXECDIR
	snprintf(msg, msglen, "restore loader crac-loader not found next to %s nor in %s (set CRAC_LOADER)",
		 n > 0 ? self : "this program", CRAC_INSTALL_LIBEXECDIR);
#else
	snprintf(msg, msglen, "restore loader crac-loader not found next to this program (set CRAC_LOADER)");
#endif
	return -ENOENT;
}
