/* SPDX-License-Identifier: MIT */
/*
 * ctl_dir.c - the control endpoint's directory, reached without a path
 * lookup another uid could redirect (see ctl_dir.h).
 *
 * The danger: a control directory below one that another uid may write to
 * (CRAC_CONTROL_DIR=/tmp/x/ctl, /tmp/x theirs). Checked by its path, then
 * used by its path (mkdir, bind, rename, unlink), it can be swapped in
 * between: a component renamed away and a symbolic link put in its place,
 * and a root service binds, renames or removes where that uid says. Here
 * the directory is opened once, one component at a time, and checked by
 * fstat on the descriptor; the setup then acts relative to it (mkdirat,
 * unlinkat, renameat2, and bind/connect through /proc/self/fd/N/NAME).
 *
 * Raw system calls only (image/bounded.h), no libc string functions (a
 * lazily bound symbol's first call enters the dynamic linker), no lock, no
 * allocation: it runs in a helper while the program's threads may be
 * stopped holding any of them.
 */
#include "core/ctl_dir.h"
#include "image/bounded.h"
#include "image/image.h"   /* crac_img_buf: freestanding */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>

/* Symbolic links followed on the way at most (as the kernel's 40). */
#define CTL_MAX_LINKS 40

static unsigned str_len(const char *s)
{
	unsigned n = 0;

	while (s[n])
		n++;
	return n;
}

/* Appends n bytes of s to buf (len bytes, *used of them in use),
 * truncating; buf stays NUL-terminated. */
static void put(char *buf, unsigned len, unsigned *used, const char *s, unsigned n)
{
	while (n-- && *used + 1 < len)
		buf[(*used)++] = *s++;
	buf[*used] = 0;
}

static void copy(char *buf, unsigned len, const char *s)
{
	unsigned used = 0;

	put(buf, len, &used, s, str_len(s));
}

static long raw_close(long fd)
{
	return crac_raw_syscall3(SYS_close, fd, 0, 0);
}

static long raw_fstat(long fd, struct stat *st)
{
	return crac_raw_syscall5(SYS_fstat, fd, (long)st, 0, 0, 0);
}

/*
 * Can no uid but uid and root replace an entry owned by owner in the
 * directory d? Its owner is uid or root and nobody else may write to it;
 * or it is sticky (/tmp), so that only the entry's owner, the directory's
 * and root may rename or remove the entry, and both are uid or root.
 */
static bool entry_safe(const struct stat *d, unsigned owner, unsigned uid)
{
	if (d->st_uid != uid && d->st_uid != 0)
		return false;
	if (!(d->st_mode & 022))
		return true;
	return (d->st_mode & S_ISVTX) && (owner == uid || owner == 0);
}

/* The entry at w->at (owned by owner, in the directory d) joins the way:
 * w->trusted stays only if no other uid can replace it. */
static void note_trust(struct crac_ctl_walk *w, const struct stat *d, unsigned owner, unsigned uid)
{
	if (w->trusted && !entry_safe(d, owner, uid)) {
		w->trusted = false;
		copy(w->untrusted, sizeof(w->untrusted), w->at);
	}
}

int crac_ctl_via_fd(char *out, unsigned len, long fd, const char *name)
{
	static const char pre[] = "/proc/self/fd/";
	char num[24];
	struct crac_img_buf d = { num, 0, sizeof(num) };

	if (fd < 0)
		return -EBADF;
	crac_img_putu(&d, (uint64_t)fd);
	if (sizeof(pre) - 1 + d.len + (name && name[0] ? 1 + str_len(name) : 0) >= len)
		return -ENAMETOOLONG;
	struct crac_img_buf b = { out, 0, len };
	crac_img_puts(&b, pre);
	crac_img_puts(&b, num);
	if (name && name[0]) {
		crac_img_puts(&b, "/");
		crac_img_puts(&b, name);
	}
	return (int)b.len;
}

/* Opens "/" or the working directory ("."): the start of the walk. */
static long open_start(bool absolute, struct stat *st)
{
	long fd = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)(absolute ? "/" : "."),
				    O_PATH | O_DIRECTORY | O_CLOEXEC);
	long r;

	if (fd >= 0 && (r = raw_fstat(fd, st)) < 0) {
		raw_close(fd);
		return r;
	}
	return fd;
}

/* The last step: fd (the directory, its stat st) is what the walk ends
 * on; it must be a real directory of uid's with mode 0700. */
static int finish(struct crac_ctl_walk *w, long fd, const struct stat *st, unsigned uid)
{
	w->mode = st->st_mode;
	w->uid = st->st_uid;
	w->dev = st->st_dev;
	w->ino = st->st_ino;
	if (!S_ISDIR(st->st_mode) || st->st_uid != uid || (st->st_mode & 07777) != 0700) {
		raw_close(fd);
		w->step = CTL_WALK_DIR;
		return w->err = -EPERM;
	}
	w->dfd = (int)fd;
	w->step = CTL_WALK_OK;
	return w->err = 0;
}

int crac_ctl_dir_open(const char *dir, unsigned uid, bool create, struct crac_ctl_walk *w)
{
	char rest[PATH_MAX], next[PATH_MAX], comp[NAME_MAX + 1];
	struct stat cst, st;   /* the directory we are in; the entry just looked at */
	unsigned at_used = 0, links = 0, pos = 0, n = str_len(dir);
	bool absolute = dir[0] == '/';
	long cur, r;

	w->dfd = -1;
	w->err = 0;
	w->step = CTL_WALK_OPEN;
	w->trusted = absolute;   /* (the working directory's way is not known) */
	w->at[0] = w->untrusted[0] = 0;
	w->mode = w->uid = 0;
	w->dev = w->ino = 0;
	if (!absolute)
		copy(w->untrusted, sizeof(w->untrusted), "the working directory");
	if (n == 0 || n >= sizeof(rest)) {
		copy(w->at, sizeof(w->at), dir);
		w->step = CTL_WALK_DIR;
		return w->err = n ? -ENAMETOOLONG : -ENOENT;
	}
	put(rest, sizeof(rest), &(unsigned){ 0 }, dir, n);
	copy(w->at, sizeof(w->at), absolute ? "/" : ".");
	if ((cur = open_start(absolute, &cst)) < 0)
		return w->err = (int)cur;
	w->at[0] = 0;

	for (;;) {
		/* the next component of rest, from pos */
		while (rest[pos] == '/')
			pos++;
		if (!rest[pos])   /* none (dir is "/"): the walk ends where it is */
			return finish(w, cur, &cst, uid);
		unsigned b = pos, q;
		while (rest[pos] && rest[pos] != '/')
			pos++;
		for (q = pos; rest[q] == '/'; q++)
			;
		bool last = !rest[q];
		unsigned cn = pos - b, at_before = at_used;
		if (at_used == 0 ? absolute : w->at[at_used - 1] != '/')
			put(w->at, sizeof(w->at), &at_used, "/", 1);
		put(w->at, sizeof(w->at), &at_used, rest + b, cn);
		if (cn > NAME_MAX) {
			w->err = -ENAMETOOLONG;
			if (last)
				w->step = CTL_WALK_DIR;
			goto fail;
		}
		for (unsigned i = 0; i < cn; i++)
			comp[i] = rest[b + i];
		comp[cn] = 0;

		if (last) {
			/* the directory itself: made, then never followed (w->step
			 * set before each call: a walk given up on says where) */
			w->step = CTL_WALK_MKDIR;
			if (create && (r = crac_raw_syscall3(SYS_mkdirat, cur, (long)comp, 0700)) < 0 && r != -EEXIST) {
				w->err = (int)r;
				goto fail;
			}
			w->step = CTL_WALK_DIR;
			r = crac_raw_syscall3(SYS_openat, cur, (long)comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (r < 0) {
				w->step = CTL_WALK_DIR;
				w->err = (int)r;
				if ((r == -ELOOP || r == -ENOTDIR) &&
				    crac_raw_syscall5(SYS_newfstatat, cur, (long)comp, (long)&st, AT_SYMLINK_NOFOLLOW, 0) == 0) {
					/* something else at its name: refused, saying what */
					w->mode = st.st_mode;
					w->uid = st.st_uid;
					w->err = -EPERM;
				}
				goto fail;
			}
			if ((w->err = (int)raw_fstat(r, &st)) < 0) {
				raw_close(r);
				w->step = CTL_WALK_DIR;
				goto fail;
			}
			note_trust(w, &cst, st.st_uid, uid);
			raw_close(cur);
			return finish(w, r, &st, uid);
		}

		/* a directory on the way: not followed if it is a link */
		r = crac_raw_syscall3(SYS_openat, cur, (long)comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (r >= 0) {
			if ((w->err = (int)raw_fstat(r, &st)) < 0) {
				raw_close(r);
				goto fail;
			}
			note_trust(w, &cst, st.st_uid, uid);
			raw_close(cur);
			cur = r;
			cst = st;
			continue;
		}
		w->err = (int)r;
		if ((r != -ELOOP && r != -ENOTDIR) ||
		    crac_raw_syscall5(SYS_newfstatat, cur, (long)comp, (long)&st, AT_SYMLINK_NOFOLLOW, 0) < 0 ||
		    !S_ISLNK(st.st_mode))
			goto fail;
		/* A symbolic link (/var/run -> /run): followed only where no other
		 * uid can replace it; else it could lead one look here and the
		 * next one elsewhere. */
		if (!entry_safe(&cst, st.st_uid, uid)) {
			w->step = CTL_WALK_LINK;
			w->err = -ELOOP;
			goto fail;
		}
		if (++links > CTL_MAX_LINKS) {
			w->err = -ELOOP;
			goto fail;
		}
		if ((r = crac_raw_syscall5(SYS_readlinkat, cur, (long)comp, (long)next, sizeof(next) - 1, 0)) <= 0) {
			w->err = r < 0 ? (int)r : -ENOENT;
			goto fail;
		}
		/* rest becomes the link's target, then what was left after it */
		unsigned used = (unsigned)r, left = str_len(rest + pos);
		if (used + left + 1 >= sizeof(next)) {
			w->err = -ENAMETOOLONG;
			goto fail;
		}
		next[used] = 0;
		put(next, sizeof(next), &used, rest + pos, left);
		unsigned m = 0;
		put(rest, sizeof(rest), &m, next, used);
		pos = 0;
		at_used = at_before;   /* the message names the way through the link's target */
		w->at[at_used] = 0;
		if (rest[0] == '/') {
			raw_close(cur);
			if ((cur = open_start(true, &cst)) < 0) {
				copy(w->at, sizeof(w->at), "/");
				return w->err = (int)cur;
			}
			absolute = true;
			at_used = 0;
			w->at[0] = 0;
		}
	}
fail:
	raw_close(cur);
	return w->err;
}

void crac_ctl_unique_name(char *out, int pid, const char *suffix, unsigned attempt)
{
	static const char hex[] = "0123456789abcdef";
	unsigned long long r = 0;
	struct crac_img_buf b = { out, 0, 48 };

	if (crac_raw_syscall3(SYS_getrandom, (long)&r, sizeof(r), 1 /* GRND_NONBLOCK */) != (long)sizeof(r))
		r = (unsigned long long)crac_bounded_mono_ns() * 0x9e3779b97f4a7c15ULL + attempt;
	crac_img_putu(&b, (uint64_t)(unsigned)pid);
	crac_img_puts(&b, "-");
	for (int i = 15; i >= 0; i--) {
		char c[2] = { hex[(r >> (4 * i)) & 15], 0 };
		crac_img_puts(&b, c);
	}
	crac_img_puts(&b, suffix);
}

/*
 * Is name a temporary of the control directory, PID-RANDOM.tmp or
 * PID-RANDOM.stale (PID decimal without a leading zero, RANDOM 16
 * lower-case hex digits)? Its PID in *pid.
 */
static bool tmp_name_pid(const char *name, int *pid)
{
	unsigned long v = 0;
	unsigned i = 0, h;

	if (name[0] < '1' || name[0] > '9')
		return false;
	for (; name[i] >= '0' && name[i] <= '9'; i++) {
		v = v * 10 + (unsigned long)(name[i] - '0');
		if (i >= 9 || v > INT_MAX)
			return false;
	}
	if (name[i++] != '-')
		return false;
	for (h = 0; h < 16; h++, i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return false;
	const char *sfx = name + i;
	static const char tmp[] = ".tmp", stale[] = ".stale";
	bool is_tmp = true, is_stale = true;
	for (unsigned k = 0; k < sizeof(tmp); k++)
		is_tmp = is_tmp && sfx[k] == tmp[k];
	for (unsigned k = 0; k < sizeof(stale); k++)
		is_stale = is_stale && sfx[k] == stale[k];
	*pid = (int)v;
	return is_tmp || is_stale;
}

/* Does a socket listen at via/name (a connect that is not refused)? A
 * non-blocking connect: a full backlog (EAGAIN) counts as listening, and
 * so does any answer but "refused" or "gone" (nothing is removed on a
 * doubt). */
static bool listens(const char *via, const char *name)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct crac_img_buf b = { a.sun_path, 0, sizeof(a.sun_path) };
	long fd, r;

	if (str_len(via) + 1 + str_len(name) >= sizeof(a.sun_path))
		return true;
	crac_img_puts(&b, via);
	crac_img_puts(&b, "/");
	crac_img_puts(&b, name);
	if ((fd = crac_raw_syscall3(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return true;
	r = crac_raw_syscall3(SYS_connect, fd, (long)&a, sizeof(a));
	raw_close(fd);
	return r != -ECONNREFUSED && r != -ENOENT;
}

/* The file at name in dfd removed if it is still the one looked at (st):
 * renamed aside to a name of self_pid's, removed there only if the same
 * (dev, inode), else put back. True if removed. */
static bool remove_same(int dfd, const char *name, const struct stat *st, int self_pid)
{
	char aside[48];
	struct stat now;
	long r;

	crac_ctl_unique_name(aside, self_pid, ".stale", 0);
	r = crac_raw_syscall5(SYS_renameat2, dfd, (long)name, dfd, (long)aside, 1 /* RENAME_NOREPLACE */);
	if (r < 0)
		return false;   /* gone meanwhile, or no RENAME_NOREPLACE here: left (a sweep is no must) */
	if (crac_raw_syscall5(SYS_newfstatat, dfd, (long)aside, (long)&now, AT_SYMLINK_NOFOLLOW, 0) == 0 &&
	    now.st_dev == st->st_dev && now.st_ino == st->st_ino)
		return crac_raw_syscall3(SYS_unlinkat, dfd, (long)aside, 0) == 0;
	/* another file came to the name since the look: back (if the name
	 * is taken again meanwhile, it stays aside: a name of ours, which a
	 * later sweep looks at as any other) */
	crac_raw_syscall5(SYS_renameat2, dfd, (long)aside, dfd, (long)name, 1 /* RENAME_NOREPLACE */);
	return false;
}

/* The kernel's record of a directory entry (getdents64). */
struct ctl_dirent64 {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

int crac_ctl_sweep(int dfd, const char *via, unsigned uid, int self_pid, int64_t min_age_ns, unsigned max_scan,
		   unsigned max_remove, struct crac_ctl_swept *out)
{
	char buf[4096] __attribute__((aligned(8)));
	struct timespec now_ts;
	unsigned scanned = 0;
	long rfd, n = 0;

	out->removed = out->kept = 0;
	out->err = 0;
	if (crac_raw_syscall3(SYS_clock_gettime, CLOCK_REALTIME, (long)&now_ts, 0) < 0)
		return out->err = -EIO;
	int64_t now = (int64_t)now_ts.tv_sec * 1000000000LL + now_ts.tv_nsec;
	/* (dfd is O_PATH: the entries are read through a descriptor of its own) */
	if ((rfd = crac_raw_syscall3(SYS_openat, dfd, (long)".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return out->err = (int)rfd;
	while (scanned < max_scan && out->removed < max_remove &&
	       (n = crac_raw_syscall3(SYS_getdents64, rfd, (long)buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n && scanned < max_scan && out->removed < max_remove;) {
			struct ctl_dirent64 *d = (struct ctl_dirent64 *)(buf + off);
			struct stat st;
			int pid;

			off += d->reclen;
			scanned++;
			if (!tmp_name_pid(d->name, &pid) || pid == self_pid)
				continue;
			/* the pid of a live process (ours, or one we may not signal) */
			if (crac_raw_syscall3(SYS_kill, pid, 0, 0) != -ESRCH)
				continue;
			if (crac_raw_syscall5(SYS_newfstatat, dfd, (long)d->name, (long)&st, AT_SYMLINK_NOFOLLOW,
					      0) < 0)
				continue;   /* gone meanwhile */
			int64_t changed = (int64_t)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
			int64_t modified = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
			if (modified > changed)
				changed = modified;
			if (!S_ISSOCK(st.st_mode) || st.st_uid != uid || now - changed < min_age_ns ||
			    listens(via, d->name) || !remove_same(dfd, d->name, &st, self_pid)) {
				out->kept++;
				continue;
			}
			out->removed++;
		}
	}
	if (n < 0 && scanned < max_scan && out->removed < max_remove)
		out->err = (int)n;
	raw_close(rfd);
	return out->err < 0 ? out->err : (int)out->removed;
}
