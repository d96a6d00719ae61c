/* SPDX-License-Identifier: MIT */
/*
 * file.c - regular files, directories and stateless character devices:
 * opened again by path, with the same access mode and status flags, at the
 * same offset.
 *
 * A regular file must be the file the image saw, as mapped files must
 * (image/check.c, "fds"): same device and inode, size, modification and
 * status change times; else the restore is refused, unless a policy said
 * `changed=ok` at the checkpoint. A deleted file cannot be opened again:
 * the checkpoint refuses it. Devices: only /dev/null, zero, full, random
 * and urandom, which keep no state.
 *
 * A file of the process's own /proc directory (/proc/PID/stat, which redis
 * opens, reads and closes every 100 ms: a checkpoint may find it open) is
 * kept as /proc/self/... (CRAC_OBJ_F_PROC_SELF): opened again, it is the
 * restored process's own, which has another pid and inode numbers, so no
 * identity is compared; only a name right in /proc/self/ is taken so (not
 * ../anything, not root/..., which would name any file).
 *
 * Kind-specific words of struct crac_img_fd:
 *   u[0] dev   u[1] inode   u[2] size   u[3] mtime (ns)   u[4] ctime (ns)
 *   u[5] offset   u[6] CRAC_OBJ_F_* flags   (devices: u[7] rdev)
 */
#include "objects/objects.h"

#include <errno.h>
#include <fcntl.h>

/* flags that open(2) takes again (never O_CREAT, O_EXCL, O_TRUNC) */
#define REOPEN_FLAGS (O_ACCMODE | O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME | O_SYNC | O_DSYNC | \
		      O_PATH | O_LARGEFILE | O_DIRECTORY)

static int64_t ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static bool starts_with(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return false;
	return true;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !memcmp(s + a - b, suffix, b);
}

/* The path of a descriptor that can be opened again, or why not. */
static int usable_path(const struct crac_obj_fd *d, struct crac_img_buf *why)
{
	if (d->link[0] != '/') {
		crac_img_puts(why, "it has no path that could be opened again");
		return -ENOTSUP;
	}
	if (ends_with(d->link, " (deleted)")) {
		crac_img_puts(why, "the file is deleted: it can be neither kept nor opened again");
		return -ENOENT;
	}
	return 0;
}

/* One name, no slash, not "." nor "..": a file right in /proc/PID (its
 * links root, cwd and exe are never followed: O_NOFOLLOW). */
static bool one_name(const char *s)
{
	if (!*s || (s[0] == '.' && (!s[1] || (s[1] == '.' && !s[2]))))
		return false;
	for (; *s; s++)
		if (*s == '/')
			return false;
	return true;
}

/* "/proc/PID/NAME" of this process: the length of its "/proc/PID/", else 0
 * (never a file of another process, nor one deeper down, like
 * /proc/PID/task/TID/..., whose tid the restored process does not have). */
static size_t proc_self_prefix(const char *path)
{
	char num[24];
	int n = 0;

	for (unsigned long v = (unsigned long)sys_getpid(); v || !n; v /= 10)
		num[n++] = (char)('0' + v % 10);
	if (!starts_with(path, "/proc/"))
		return 0;
	size_t at = 6;
	while (n)
		if (path[at++] != num[--n])
			return 0;
	if (path[at] != '/' || !one_name(path + at + 1))
		return 0;
	return at + 1;
}

static int file_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			struct crac_img_fd *e, struct crac_img_buf *why)
{
	int rc = usable_path(d, why);

	if (rc < 0)
		return rc;
	size_t self = proc_self_prefix(d->link);
	if (self && strlen(d->link) - self + 11 < sizeof(d->link)) {
		char path[sizeof(d->link)];
		memcpy(path, "/proc/self/", 11);
		memcpy(path + 11, d->link + self, strlen(d->link) - self + 1);
		e->u[5] = d->pos;   /* the only word it needs: no identity (see above) */
		e->u[6] |= CRAC_OBJ_F_PROC_SELF;
		if ((rc = crac_obj_put_path(c, i, path)) < 0) {
			crac_img_puts(why, "no room for its path");
			return rc;
		}
		return 0;
	}
	e->u[0] = d->st.st_dev;
	e->u[1] = d->st.st_ino;
	e->u[2] = (uint64_t)d->st.st_size;
	e->u[3] = (uint64_t)ns(&d->st.st_mtim);
	e->u[4] = (uint64_t)ns(&d->st.st_ctim);
	e->u[5] = d->pos;
	e->u[7] = d->st.st_rdev;
	if ((rc = crac_obj_put_path(c, i, d->link)) < 0) {
		crac_img_puts(why, "no room for its path");
		return rc;
	}
	return 0;
}

static int device_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			  struct crac_img_fd *e, struct crac_img_buf *why)
{
	static const struct { const char *path; unsigned minor; } ok[] = {
		{ "/dev/null", 3 }, { "/dev/zero", 5 }, { "/dev/full", 7 }, { "/dev/random", 8 }, { "/dev/urandom", 9 },
	};

	for (size_t k = 0; k < sizeof(ok) / sizeof(ok[0]); k++)
		if (!strcmp(d->link, ok[k].path) && CRAC_DEV_MAJOR(d->st.st_rdev) == 1 && CRAC_DEV_MINOR(d->st.st_rdev) == ok[k].minor)
			return file_capture(c, d, i, e, why);
	crac_img_puts(why, "only stateless devices (/dev/null, zero, full, random, urandom) are carried: "
			   "a device keeps state the image does not hold");
	return -ENOTSUP;
}

static const char *type_name(unsigned mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "a regular file";
	case S_IFDIR:
		return "a directory";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFIFO:
		return "a fifo";
	case S_IFSOCK:
		return "a socket";
	case S_IFLNK:
		return "a symbolic link";
	}
	return "an unknown kind of file";
}

/*
 * Is st of the type entry e's kind names? 0 if so; else -ESTALE, with
 * "it is a character device now, not a regular file" appended to why (if
 * given). The kind is what the image says the object is; its other words
 * are compared only with an object of that type (a device's numbers are
 * no identity for a file: a hostile image could name any device as a
 * "file" with them).
 */
static int type_differs(const struct crac_img_fd *e, const struct stat *st, struct crac_img_buf *why)
{
	unsigned want = e->kind == CRAC_OBJ_FILE ? S_IFREG : e->kind == CRAC_OBJ_DIR ? S_IFDIR :
			e->kind == CRAC_OBJ_DEVICE ? S_IFCHR : e->kind == CRAC_OBJ_FIFO ? S_IFIFO : 0;

	if (!want || (st->st_mode & S_IFMT) == want)
		return 0;
	if (why) {
		crac_img_puts(why, "it is ");
		crac_img_puts(why, type_name(st->st_mode));
		crac_img_puts(why, " now, not ");
		crac_img_puts(why, type_name(want));
	}
	return -ESTALE;
}

/* Is the object at path (opened as fd) still the one of entry e? (Its
 * type is checked first: type_differs.) */
/* Is this entry a file of the restored process's own /proc (and named so)? */
static bool proc_self(const struct crac_img_view *v, const struct crac_img_fd *e)
{
	const char *path = crac_img_str(v, e->path);

	return (e->u[6] & CRAC_OBJ_F_PROC_SELF) && e->kind == CRAC_OBJ_FILE && starts_with(path, "/proc/self/") &&
	       one_name(path + 11);
}

static const char *changed(const struct crac_img_fd *e, const struct stat *st)
{
	if ((st->st_mode & S_IFMT) == S_IFCHR)
		return st->st_rdev == e->u[7] ? 0 : "its device numbers";
	if (st->st_dev != e->u[0] || st->st_ino != e->u[1])
		return "its inode (the file was replaced)";
	if ((st->st_mode & S_IFMT) == S_IFDIR || (st->st_mode & S_IFMT) == S_IFIFO)
		return 0;   /* a directory's content, a FIFO's times change: it is the same object */
	if (e->u[6] & CRAC_OBJ_F_CHANGED_OK)
		return 0;
	if ((uint64_t)st->st_size != e->u[2])
		return "its size";
	if ((uint64_t)ns(&st->st_mtim) != e->u[3])
		return "its modification time";
	if ((uint64_t)ns(&st->st_ctim) != e->u[4])
		return "its status change time (ctime)";
	return 0;
}

/* Only the stateless devices are ever opened again (an image is code:
 * never open what it names just because it says so). 0, or -EPERM and why. */
static int stateless_device(const struct crac_img_fd *e, struct crac_img_buf *why)
{
	unsigned maj = CRAC_DEV_MAJOR(e->u[7]), min = CRAC_DEV_MINOR(e->u[7]);

	if (maj == 1 && (min == 3 || min == 5 || min == 7 || min == 8 || min == 9))
		return 0;
	crac_img_puts(why, "not a stateless device (");
	crac_img_putu(why, maj);
	crac_img_puts(why, ":");
	crac_img_putu(why, min);
	crac_img_puts(why, "): refused");
	return -EPERM;
}

int crac_obj_file_check(const struct crac_img_view *v, const struct crac_img_fd *e, struct crac_img_buf *why)
{
	const char *path = crac_img_str(v, e->path);
	struct stat st;
	long rc;
	const char *what;

	/* before the path is looked at */
	if (e->kind == CRAC_OBJ_DEVICE && (rc = stateless_device(e, why)) < 0)
		return (int)rc;
	rc = sys_fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW);

	if (rc < 0) {
		crac_img_put_escaped(why, path);
		crac_img_put_err(why, rc);
		return (int)rc;
	}
	if (type_differs(e, &st, 0)) {
		crac_img_put_escaped(why, path);
		crac_img_puts(why, " changed since the checkpoint (");
		type_differs(e, &st, why);
		crac_img_puts(why, ")");
		return -ESTALE;
	}
	if (e->u[6] & CRAC_OBJ_F_PROC_SELF) {
		if (proc_self(v, e))
			return 0;   /* the restored process's own: nothing to compare */
		crac_img_put_escaped(why, path);
		crac_img_puts(why, ": marked as a file of the process's own /proc, which it is not");
		return -EINVAL;
	}
	what = changed(e, &st);
	/* a FIFO removed and made again often gets the old inode number back,
	 * not its birth time (pipe.c records it: u[3] & 2, u[4]) */
	if (!what && e->kind == CRAC_OBJ_FIFO && (e->u[3] & 0x2u)) {
		uint64_t sx[32];   /* struct statx: stx_mask at 0, stx_btime at 80 */
		if (SYS(SYS_statx, AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, 0x800 /* STATX_BTIME */, sx, 0) < 0 ||
		    !((uint32_t)sx[0] & 0x800) ||
		    (int64_t)sx[10] * 1000000000LL + (int64_t)(uint32_t)sx[11] != (int64_t)e->u[4])
			what = "its birth time (it was made again)";
	}
	if (what) {
		crac_img_put_escaped(why, path);
		crac_img_puts(why, " changed since the checkpoint (");
		crac_img_puts(why, what);
		crac_img_puts(why, " differs)");
		/* content that changed in place: a policy may accept it; another
		 * file or device under that path never */
		if (e->kind == CRAC_OBJ_FILE && (st.st_mode & S_IFMT) == S_IFREG &&
		    st.st_dev == e->u[0] && st.st_ino == e->u[1]) {
			/* the path as a rule's glob (glob.c), shown with its
			 * control characters escaped: it comes from the image */
			char glob[4200];
			struct crac_img_buf g = { glob, 0, sizeof(glob) };
			glob[0] = 0;
			crac_obj_put_name_glob(&g, path);
			crac_img_puts(why, "; a policy `file ");
			crac_img_put_escaped(why, glob);
			crac_img_puts(why, " reopen changed=ok` accepts it");
		}
		return -ESTALE;
	}
	return 0;
}

static long file_restore(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	const struct crac_img_fd *e = &r->v->fds[i];
	const char *path = crac_img_str(r->v, e->path);
	int flags = (int)(e->flags & REOPEN_FLAGS) | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;
	struct stat st;

	/* checked before the point of no return too (crac_obj_file_check) */
	if (e->kind == CRAC_OBJ_DEVICE && stateless_device(e, why) < 0)
		return -EPERM;
	if (e->kind == CRAC_OBJ_DIR && !(flags & O_PATH))
		flags = (flags & ~O_ACCMODE) | O_RDONLY | O_DIRECTORY;
	/* look before opening (as image/check.c does): what is there now
	 * must be of the entry's kind, or it is not opened at all (a device
	 * whose open acts, where a file was) */
	long rc = sys_fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW);
	if (rc == 0 && type_differs(e, &st, 0)) {
		crac_img_puts(why, "changed since the checkpoint (");
		type_differs(e, &st, why);
		crac_img_puts(why, ")");
		return -ESTALE;
	}
	long fd = sys_openat(AT_FDCWD, path, flags | (e->kind == CRAC_OBJ_DEVICE ? 0 : O_NONBLOCK));
	if (fd < 0) {
		crac_img_puts(why, "cannot open it again");
		return fd;
	}
	rc = sys_fstat(fd, &st);
	const char *what = rc < 0 ? "its status" : type_differs(e, &st, 0) ? "its type" :
			   (e->u[6] & CRAC_OBJ_F_PROC_SELF) ? (proc_self(r->v, e) ? 0 : "its path") : changed(e, &st);
	if (what) {
		sys_close(fd);
		crac_img_puts(why, "changed since the checkpoint (");
		crac_img_puts(why, what);
		crac_img_puts(why, " differs)");
		return -ESTALE;
	}
	if (e->kind != CRAC_OBJ_DEVICE && e->u[5] && !(e->flags & O_PATH) &&
	    (rc = sys_lseek(fd, (long)e->u[5], 0)) < 0) {
		sys_close(fd);
		crac_img_puts(why, "cannot seek to its offset");
		return rc;
	}
	return crac_obj_place(r, i, fd);   /* sets the status flags as recorded (O_NONBLOCK too) */
}

const struct crac_obj_ops crac_obj_file_ops = {
	.name = "file", .capture = file_capture, .restore = file_restore,
};
const struct crac_obj_ops crac_obj_dir_ops = {
	.name = "dir", .capture = file_capture, .restore = file_restore,
};
const struct crac_obj_ops crac_obj_device_ops = {
	.name = "device", .capture = device_capture, .restore = file_restore,
};
