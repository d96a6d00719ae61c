/* SPDX-License-Identifier: MIT */
/*
 * inotify.c - inotify(7) instances: every watch made again on its path,
 * with its mask, under the same watch descriptor number (wd).
 *
 * Capture. fdinfo tells each watch's inode, not its path (one line each,
 * wd in hex, newest first):
 *   "inotify wd:3 ino:a74002 sdev:fe00000 mask:4000002 ignored_mask:0
 *    fhandle-bytes:8 fhandle-type:1 f_handle:0240a700f6b87638"
 * The path comes from the file handle: open_by_handle_at(2) on a mount of
 * that device (/proc/self/mountinfo, the mount of the whole file system if
 * there is one; sdev is the kernel's dev_t, major << 20 | minor), opened
 * O_PATH (nothing read; no event on this kernel: kernels that still report
 * O_PATH opens would show IN_OPEN to watchers of that file, and an instance
 * captured after it would then be refused for its unread events), and the
 * name the kernel gives that open file (/proc/self/fd/N). That name is
 * looked up again and must lead to
 * the watched inode (same st_dev and st_ino; a watched inode cannot be
 * freed, so its number is not reused meanwhile). The descriptor on the
 * mount that open_by_handle_at needs is one of the process's own when it
 * has one there; else the mount point is opened, which is an event for
 * whoever watches that directory: not done when an inotify watch of this
 * process does (refused instead).
 * open_by_handle_at needs CAP_DAC_READ_SEARCH; the kernel offers no other
 * sound way to learn a watch's path (searching the file system would be
 * unbounded, and listing a watched directory queues events to the
 * program), so without that capability the descriptor is refused, naming
 * the wd. So is a watch whose file has no path any more (deleted), or whose
 * file system cannot open files by handle (/proc, /sys).
 * Unread events are not carried: an instance with any (FIONREAD > 0) is
 * refused, so that nothing is lost silently; the program reads them first.
 *
 * Restore. inotify_init1, then the watches in increasing wd order, each
 * with its mask (IN_ONESHOT, IN_EXCL_UNLINK kept) and IN_DONT_FOLLOW (the
 * path is the watched inode's own). The kernel numbers watches with
 * idr_alloc_cyclic() from 1: each new watch gets the number after the
 * last one handed out. Where the original numbers have gaps (watches
 * removed before the checkpoint), a throwaway watch on a file no watch
 * names ("/", else /proc, /dev, /tmp) is added and removed for each
 * missing number: 18 to 30 us each here, so at most 65536 of them (the
 * checkpoint refuses more). Each removal queues an IN_IGNORED event: they
 * are read back before the program runs (every 4096, and at the end); any
 * other event found there (a watched file changed during those
 * milliseconds) fails the restore rather than lose it. Every watch must
 * get its own number back, else the restore is refused: "wd 3:
 * /etc/app.conf: No such file or directory". Every watched path must still
 * be the file the image saw (same device and inode: a watch follows an
 * inode, and a file replaced since, by an editor's save for example, is
 * not the watched one); u[6] CRAC_OBJ_F_CHANGED_OK would accept another.
 * Not kept: where the kernel would number the next new watch. It counts on
 * from the last number it handed out, which fdinfo does not tell; the
 * restored instance counts on from the highest live watch.
 *
 * Kind-specific words of struct crac_img_fd:
 *   u[0] number of watches   u[1] highest wd   u[6] CRAC_OBJ_F_* flags
 * Blob: struct ino_watch[u[0]] by increasing wd, then their paths
 * (NUL-terminated; path_off counts from the start of the blob).
 */
#include "objects/objects.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/inotify.h>

#ifndef IN_MASK_CREATE
#define IN_MASK_CREATE 0x10000000   /* 4.18: fail with EEXIST if the inode is already watched */
#endif
#define FIONREAD_ 0x541B
#define MAX_HANDLE 128               /* MAX_HANDLE_SZ */
#define MAX_WATCHES 8192u            /* records kept in capture's scratch space */
#define MAX_FILL 65536u              /* throwaway watches a restore may make (~18 us each) */
#define DRAIN_EVERY 4096u            /* the queue holds 16384 events by default */

/* the bits of a watch that fdinfo shows and inotify_add_watch takes again */
#define WATCH_BITS (IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK)

struct ino_watch {
	int32_t wd;
	uint32_t mask;
	uint64_t dev, ino;           /* st_dev, st_ino of the watched file */
	uint32_t path_off;           /* from the start of the blob */
	uint32_t path_len;           /* without the NUL */
};

/* ---- reading /proc text line by line ---------------------------------------------- */

/* The number after key (e.g. " ino:") anywhere in [s, end); *found. */

/* Where key's value starts in [s, end), or 0. */
static const char *line_at(const char *s, const char *end, const char *key)
{
	size_t kl = strlen(key);

	for (; s + kl <= end; s++)
		if (!memcmp(s, key, kl))
			return s + kl;
	return 0;
}

/*
 * Calls fn for every line of the file at path (without its '\n'); stops
 * at the first negative return. 0, or -errno (-EPROTO: a line longer than
 * the buffer). buf: 4096 bytes of the caller's.
 */
static int each_line(const char *path, char *buf, int (*fn)(void *arg, const char *s, const char *end), void *arg)
{
	long fd = sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	uint64_t have = 0;
	long n;
	int rc = 0;

	if (fd < 0)
		return (int)fd;
	for (;;) {
		n = sys_read(fd, buf + have, 4095 - have);
		if (n == -EINTR)
			continue;
		if (n < 0) {
			rc = (int)n;
			break;
		}
		have += (uint64_t)n;
		uint64_t start = 0;
		for (uint64_t k = 0; k < have && rc >= 0; k++)
			if (buf[k] == '\n' || (n == 0 && k == have - 1)) {
				rc = fn(arg, buf + start, buf + k + (buf[k] != '\n'));
				start = k + 1;
			}
		if (rc < 0 || n == 0)
			break;
		memmove(buf, buf + start, have - start);
		have -= start;
		if (have >= 4095) {
			rc = -EPROTO;
			break;
		}
	}
	sys_close(fd);
	return rc;
}

/* ---- capture ---------------------------------------------------------------------- */

static void put_dev(struct crac_img_buf *why, uint64_t sdev)
{
	crac_img_putu(why, sdev >> 20);
	crac_img_puts(why, ":");
	crac_img_putu(why, sdev & 0xfffff);
}

/* "wd N (inode I on device M:m)" */
static void put_watch(struct crac_img_buf *why, int32_t wd, uint64_t ino, uint64_t sdev)
{
	crac_img_puts(why, "wd ");
	crac_img_putu(why, (uint64_t)wd);
	crac_img_puts(why, " (inode ");
	crac_img_putu(why, ino);
	crac_img_puts(why, " on device ");
	put_dev(why, sdev);
	crac_img_puts(why, ")");
}

/* One mount of a device, from /proc/self/mountinfo: the first whose root
 * is the file system's root, else the first at all. */
struct mount_find {
	uint64_t sdev;
	int found, whole;
	uint64_t id;                 /* mount ID (fdinfo's mnt_id) */
	char path[4096];
};

/* Copies a mountinfo field (octal escapes \040 undone) into out; 0 or -1. */
static int unescape(const char *s, const char *end, char *out, size_t cap)
{
	size_t n = 0;

	while (s < end && *s != ' ') {
		char ch = *s++;
		if (ch == '\\' && end - s >= 3 && s[0] >= '0' && s[0] <= '3' && s[1] >= '0' && s[1] <= '7' &&
		    s[2] >= '0' && s[2] <= '7') {
			ch = (char)(((s[0] - '0') << 6) | ((s[1] - '0') << 3) | (s[2] - '0'));
			s += 3;
		}
		if (n + 1 >= cap)
			return -1;
		out[n++] = ch;
	}
	out[n] = 0;
	return 0;
}

static int mount_line(void *arg, const char *s, const char *end)
{
	struct mount_find *m = arg;
	const char *f[5];
	int nf = 0;

	/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... */
	for (const char *p = s; p < end && nf < 5; nf++) {
		f[nf] = p;
		while (p < end && *p != ' ')
			p++;
		while (p < end && *p == ' ')
			p++;
	}
	if (nf < 5)
		return 0;
	int fi, fm, fn = 0;
	uint64_t id = crac_obj_line_num(f[0], f[1], "", 10, &fi);
	uint64_t maj = crac_obj_line_num(f[2], f[3], "", 10, &fm);
	const char *colon = line_at(f[2], f[3], ":");
	uint64_t min = colon ? crac_obj_line_num(colon, f[3], "", 10, &fn) : 0;
	if (!fi || !fm || !fn || ((maj << 20) | min) != m->sdev)
		return 0;
	int whole = f[3][0] == '/' && f[3][1] == ' ';
	if (m->found && (m->whole || !whole))
		return 0;
	if (unescape(f[4], end, m->path, sizeof(m->path)) < 0)
		return 0;
	m->found = 1;
	m->whole = whole;
	m->id = id;
	return 0;
}

/* Does an inotify watch of this process see an open of inode (sdev, ino)? */
struct seen {
	uint64_t sdev, ino;
	int yes;
};

static int seen_line(void *arg, const char *s, const char *end)
{
	struct seen *w = arg;
	int f1, f2, f3;

	if (end - s < 8 || memcmp(s, "inotify ", 8))
		return 0;
	if (crac_obj_line_num(s, end, " ino:", 16, &f1) == w->ino && crac_obj_line_num(s, end, " sdev:", 16, &f2) == w->sdev &&
	    (crac_obj_line_num(s, end, " mask:", 16, &f3) & (IN_OPEN | IN_CLOSE_NOWRITE)) && f1 && f2 && f3)
		w->yes = 1;
	return 0;
}

/*
 * A descriptor on the mount of device sdev that open_by_handle_at takes
 * (not O_PATH): one of the process's own on that mount if there is one
 * (nothing is opened: *own = 1), else its mount point opened for reading.
 * Opening a directory is an event (IN_OPEN, IN_CLOSE_NOWRITE) for whoever
 * watches it: not done when an inotify instance of this process does.
 * -errno and why otherwise.
 */
static long mount_fd(uint64_t sdev, char *buf, char *buf2, int *own, struct crac_img_buf *why)
{
	struct mount_find m = { .sdev = sdev };
	struct stat st;
	char path[64], info[512];
	struct crac_obj_fds fds;
	long fd = -1;
	int v;

	*own = 0;
	int rc = each_line("/proc/self/mountinfo", buf, mount_line, &m);
	if (rc < 0 || !m.found) {
		crac_img_puts(why, ": no mount of its file system is reachable from this process, so its path "
			      "cannot be found");
		return rc < 0 ? rc : -ENODEV;
	}
	/* the process's descriptors: one on that mount, and its inotify instances */
	long rc_fds = crac_obj_fds_open(&fds, buf, 4096);
	if (rc_fds < 0)
		return rc_fds;
	struct seen w = { .sdev = sdev };
	while (fd < 0 && (v = crac_obj_fds_next(&fds)) >= 0) {
		if (sys_fstat(v, &st) < 0 || crac_obj_kdev(st.st_dev) != sdev)
			continue;
		struct crac_img_buf pb = { path, 0, sizeof(path) };
		crac_img_puts(&pb, "/proc/self/fdinfo/");
		crac_img_putu(&pb, (uint64_t)v);
		long ifd = sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
		long got = ifd >= 0 ? sys_read(ifd, info, sizeof(info) - 1) : -1;
		if (ifd >= 0)
			sys_close(ifd);
		info[got > 0 ? got : 0] = 0;
		int fm;
		if (crac_obj_info_num(info, "mnt_id", 10, &fm) == m.id && fm &&
		    !(crac_obj_info_num(info, "flags", 8, 0) & O_PATH))
			fd = v;
	}
	if (fd >= 0) {
		crac_obj_fds_close(&fds);
		*own = 1;
		return fd;
	}
	fd = sys_openat(AT_FDCWD, m.path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || sys_fstat(fd, &st) < 0 || crac_obj_kdev(st.st_dev) != sdev) {
		/* covered by another mount since: not this file system */
		crac_obj_fds_close(&fds);
		if (fd >= 0)
			sys_close(fd);
		crac_img_puts(why, ": the mount point of its file system (");
		crac_img_put_escaped(why, m.path);
		crac_img_puts(why, ") cannot be reached, so its path cannot be found");
		return -ENODEV;
	}
	sys_close(fd);
	w.ino = st.st_ino;
	crac_obj_fds_rewind(&fds);
	while (!w.yes && (v = crac_obj_fds_next(&fds)) >= 0) {
		struct crac_img_buf pb = { path, 0, sizeof(path) };
		crac_img_puts(&pb, "/proc/self/fd/");
		crac_img_putu(&pb, (uint64_t)v);
		long ln = sys_readlinkat(AT_FDCWD, path, info, sizeof(info) - 1);
		info[ln > 0 ? ln : 0] = 0;
		if (strcmp(info, "anon_inode:inotify"))
			continue;
		pb.len = 0;
		crac_img_puts(&pb, "/proc/self/fdinfo/");
		crac_img_putu(&pb, (uint64_t)v);
		each_line(path, buf2, seen_line, &w);
	}
	crac_obj_fds_close(&fds);
	if (w.yes) {
		crac_img_puts(why, ": finding its path needs a descriptor on its file system, and opening its mount "
			      "point (");
		crac_img_put_escaped(why, m.path);
		crac_img_puts(why, ") would be an event for an inotify watch of this process on that directory; "
			      "keep a descriptor open on that file system");
		return -EBUSY;
	}
	fd = sys_openat(AT_FDCWD, m.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || sys_fstat(fd, &st) < 0 || crac_obj_kdev(st.st_dev) != sdev || st.st_ino != w.ino) {
		if (fd >= 0)
			sys_close(fd);
		crac_img_puts(why, ": the mount point of its file system (");
		crac_img_put_escaped(why, m.path);
		crac_img_puts(why, ") cannot be opened, so its path cannot be found");
		return fd < 0 ? fd : -ENODEV;
	}
	return fd;
}

/* What capture gathers, watch by watch. */
struct cap {
	struct crac_obj_capture *c;
	struct crac_img_buf *why;
	struct ino_watch *recs;      /* NULL in probe mode: only counted */
	char *strs;
	uint64_t strs_cap, strs_used;
	uint64_t n;
	int32_t max_wd;
	long mfd;                    /* the last mount_fd() (-1: none), for device mfd_sdev */
	uint64_t mfd_sdev;
	int mfd_own;                 /* it is the process's own: not closed */
	char ibuf[4096];             /* fdinfo lines */
	char mbuf[4096];             /* mountinfo lines */
	char path[4096];
	char link[64];
};

static int bad_watch(struct cap *x, int32_t wd, uint64_t ino, uint64_t sdev, const char *what, int rc)
{
	put_watch(x->why, wd, ino, sdev);
	crac_img_puts(x->why, what);
	return rc;
}

/* The path of the watched inode, verified, into x->path (and its st). */
static int resolve(struct cap *x, int32_t wd, uint64_t ino, uint64_t sdev, const void *fh, struct stat *st)
{
	char reason[512];
	struct crac_img_buf rb = { reason, 0, sizeof(reason) };
	reason[0] = 0;
	/* watches are mostly on one or two file systems: one lookup each */
	if (x->mfd < 0 || x->mfd_sdev != sdev) {
		if (x->mfd >= 0 && !x->mfd_own)
			sys_close(x->mfd);
		x->mfd = mount_fd(sdev, x->mbuf, x->path, &x->mfd_own, &rb);
		x->mfd_sdev = sdev;
		if (x->mfd < 0) {
			long rc = x->mfd;
			x->mfd = -1;
			return bad_watch(x, wd, ino, sdev, reason, (int)rc);
		}
	}
	long hfd = SYS(SYS_open_by_handle_at, x->mfd, fh, O_PATH | O_CLOEXEC, 0, 0, 0);
	if (hfd == -EPERM)
		return bad_watch(x, wd, ino, sdev, ": the kernel tells which inode a watch is on, not its path; "
				 "finding the path needs CAP_DAC_READ_SEARCH (open_by_handle_at), which this process "
				 "lacks: give it that capability (setcap cap_dac_read_search=ep, or an ambient "
				 "capability) for its inotify descriptors to be carried", -EPERM);
	if (hfd == -ESTALE || hfd == -EOPNOTSUPP)
		return bad_watch(x, wd, ino, sdev, ": its file system does not open files by handle (/proc, /sys "
				 "and other pseudo file systems do not), so its path cannot be found", (int)hfd);
	if (hfd < 0) {
		bad_watch(x, wd, ino, sdev, ": the watched file cannot be opened by its handle, so its path cannot "
			  "be found (open_by_handle_at", 0);
		crac_img_put_err(x->why, hfd);
		crac_img_puts(x->why, ")");
		return (int)hfd;
	}
	struct crac_img_buf lb = { x->link, 0, sizeof(x->link) };
	crac_img_puts(&lb, "/proc/self/fd/");
	crac_img_putu(&lb, (uint64_t)hfd);
	long n = sys_readlinkat(AT_FDCWD, x->link, x->path, sizeof(x->path) - 1);
	sys_close(hfd);
	x->path[n > 0 ? n : 0] = 0;
	/* the name must lead to the watched inode: not deleted, not a name
	 * relative to some other root, not a file renamed meanwhile */
	if (n <= 0 || n >= (long)sizeof(x->path) - 1 || x->path[0] != '/' ||
	    sys_fstatat(AT_FDCWD, x->path, st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    st->st_ino != ino || crac_obj_kdev(st->st_dev) != sdev) {
		bad_watch(x, wd, ino, sdev, ": the watched file has no path that leads to it (the kernel names it \"", 0);
		crac_img_put_escaped(x->why, x->path);
		crac_img_puts(x->why, "\"; deleted, or renamed away)");
		return -ENOENT;
	}
	return 0;
}

static int hexval(char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 :
	       ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* One line of the instance's fdinfo. */
static int watch_line(void *arg, const char *s, const char *end)
{
	struct cap *x = arg;
	int f_wd, f_ino, f_dev, f_mask, f_bytes, f_type;
	struct {
		uint32_t handle_bytes;
		int32_t handle_type;
		unsigned char f_handle[MAX_HANDLE];
	} fh;

	if (end - s < 8 || memcmp(s, "inotify ", 8))
		return 0;
	int32_t wd = (int32_t)crac_obj_line_num(s, end, "wd:", 16, &f_wd);
	uint64_t ino = crac_obj_line_num(s, end, " ino:", 16, &f_ino);
	uint64_t sdev = crac_obj_line_num(s, end, " sdev:", 16, &f_dev);
	uint32_t mask = (uint32_t)crac_obj_line_num(s, end, " mask:", 16, &f_mask);
	fh.handle_bytes = (uint32_t)crac_obj_line_num(s, end, " fhandle-bytes:", 16, &f_bytes);
	fh.handle_type = (int32_t)crac_obj_line_num(s, end, " fhandle-type:", 16, &f_type);
	const char *hex = line_at(s, end, " f_handle:");
	if (!f_wd || !f_ino || !f_dev || !f_mask || wd <= 0) {
		crac_img_puts(x->why, "a watch in fdinfo that cannot be read");
		return -EPROTO;
	}
	if (!f_bytes || !f_type || !hex || !fh.handle_bytes || fh.handle_bytes > MAX_HANDLE)
		return bad_watch(x, wd, ino, sdev, ": the kernel gives no file handle for it (its file system "
				 "does not make them), so its path cannot be found", -ENOTSUP);
	for (uint32_t k = 0; k < fh.handle_bytes; k++) {
		int hi = hex + 2 * k + 1 < end ? hexval(hex[2 * k]) : -1;
		int lo = hex + 2 * k + 1 < end ? hexval(hex[2 * k + 1]) : -1;
		if (hi < 0 || lo < 0) {
			crac_img_puts(x->why, "a watch's file handle in fdinfo that cannot be read");
			return -EPROTO;
		}
		fh.f_handle[k] = (unsigned char)(hi << 4 | lo);
	}
	struct stat st;
	int rc = resolve(x, wd, ino, sdev, &fh, &st);
	if (rc < 0)
		return rc;
	uint64_t len = strlen(x->path);
	if (x->n >= MAX_WATCHES || len + 1 > x->strs_cap - x->strs_used) {
		crac_img_puts(x->why, x->n >= MAX_WATCHES ? "more watches than crac keeps (8192)" :
			      "its watched paths take more room than crac keeps");
		return -E2BIG;
	}
	if (x->recs) {
		x->recs[x->n] = (struct ino_watch){ wd, mask & WATCH_BITS, st.st_dev, st.st_ino,
						    (uint32_t)x->strs_used, (uint32_t)len };
		memcpy(x->strs + x->strs_used, x->path, len + 1);
	}
	x->strs_used += len + 1;
	x->n++;
	if (wd > x->max_wd)
		x->max_wd = wd;
	return 0;
}

static int inotify_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			   struct crac_img_fd *e, struct crac_img_buf *why)
{
	static struct cap full;      /* full capture: only the checkpointing thread runs */
	struct cap probe;            /* the safety checks: several threads may probe */
	struct cap *x = c->pages_fd >= 0 ? &full : &probe;
	char path[64];
	struct crac_img_buf pb = { path, 0, sizeof(path) };
	int pending = 0;

	(void)i;
	if (sys_ioctl(d->fd, FIONREAD_, &pending) == 0 && pending > 0) {
		crac_img_puts(why, "it holds ");
		crac_img_putu(why, (uint64_t)pending);
		crac_img_puts(why, " bytes of unread events: pending events are not carried (the restored "
			      "program would miss them); read them before the checkpoint (an image written into "
			      "a watched directory makes some)");
		return -EBUSY;
	}
	memset(x, 0, offsetof(struct cap, ibuf));
	x->mfd = -1;
	x->c = c;
	x->why = why;
	if (c->pages_fd >= 0) {
		/* records first, their paths after them (moved up to follow the
		 * last record at the end) */
		uint64_t rbytes = MAX_WATCHES * sizeof(struct ino_watch);
		if (!c->scratch || c->scratch_cap <= rbytes) {
			crac_img_puts(why, "no room to read its watches");
			return -ENOMEM;
		}
		x->recs = (struct ino_watch *)(void *)c->scratch;
		x->strs = c->scratch + rbytes;
		x->strs_cap = c->scratch_cap - rbytes;
	} else {
		x->strs_cap = (1u << 20) - MAX_WATCHES * sizeof(struct ino_watch);   /* as in a capture */
	}
	crac_img_puts(&pb, "/proc/self/fdinfo/");
	crac_img_putu(&pb, (uint64_t)d->fd);
	int rc = each_line(path, x->ibuf, watch_line, x);
	if (x->mfd >= 0 && !x->mfd_own)
		sys_close(x->mfd);
	if (rc < 0) {
		if (!why->len) {
			crac_img_puts(why, "cannot read its watches (fdinfo)");
			crac_img_put_err(why, rc);
		}
		return rc;
	}
	if ((uint64_t)x->max_wd - x->n > MAX_FILL) {
		crac_img_puts(why, "its watch numbers go up to ");
		crac_img_putu(why, (uint64_t)x->max_wd);
		crac_img_puts(why, ", with ");
		crac_img_putu(why, x->n);
		crac_img_puts(why, x->n == 1 ? " watch left" : " watches left");
		crac_img_puts(why, ": making those numbers again would take ");
		crac_img_putu(why, (uint64_t)x->max_wd - x->n);
		crac_img_puts(why, " throwaway watches at restore, more than crac makes (65536, a second or two)");
		return -E2BIG;
	}
	e->u[0] = x->n;
	e->u[1] = (uint64_t)x->max_wd;
	if (!x->recs)
		return 0;
	/* by increasing wd: the kernel lists them newest first, so reverse,
	 * then sort what is left out of order */
	for (uint64_t a = 0, b = x->n ? x->n - 1 : 0; a < b; a++, b--) {
		struct ino_watch t = x->recs[a];
		x->recs[a] = x->recs[b];
		x->recs[b] = t;
	}
	for (uint64_t k = 1; k < x->n; k++)
		for (uint64_t j = k; j > 0 && x->recs[j - 1].wd > x->recs[j].wd; j--) {
			struct ino_watch t = x->recs[j];
			x->recs[j] = x->recs[j - 1];
			x->recs[j - 1] = t;
		}
	uint64_t rbytes = x->n * sizeof(struct ino_watch);
	for (uint64_t k = 0; k < x->n; k++)
		x->recs[k].path_off += (uint32_t)rbytes;
	memmove(c->scratch + rbytes, x->strs, x->strs_used);
	if ((rc = crac_obj_put_blob(c, e, c->scratch, (uint32_t)(rbytes + x->strs_used))) < 0) {
		crac_img_puts(why, "no room for its watches");
		return rc;
	}
	return 0;
}

/* ---- restore ---------------------------------------------------------------------- */

/* Watch k of entry e (the blob need not be aligned: copied). */
static struct ino_watch rec(const struct crac_img_view *v, const struct crac_img_fd *e, uint64_t k)
{
	struct ino_watch w;

	memcpy(&w, v->blobs + e->blob_off + k * sizeof(w), sizeof(w));
	return w;
}

static const char *rec_path(const struct crac_img_view *v, const struct crac_img_fd *e, const struct ino_watch *w)
{
	return (const char *)v->blobs + e->blob_off + w->path_off;
}

/* Do the watches of entry e add up? (an image is checked, not trusted) */
static int valid(const struct crac_img_view *v, const struct crac_img_fd *e, struct crac_img_buf *why)
{
	const unsigned char *b = v->blobs + e->blob_off;
	uint64_t n = e->u[0];
	int32_t last = 0;

	if (n > MAX_WATCHES || n * sizeof(struct ino_watch) > e->blob_len || e->u[1] > 0x7fffffff ||
	    e->u[1] < n || e->u[1] - n > MAX_FILL)
		goto bad;
	for (uint64_t k = 0; k < n; k++) {
		struct ino_watch w = rec(v, e, k);
		if (w.wd <= last || (uint64_t)w.wd > e->u[1] || w.path_off < n * sizeof(w) ||
		    w.path_off >= e->blob_len || w.path_len >= e->blob_len - w.path_off ||
		    b[w.path_off + w.path_len] || strlen((const char *)b + w.path_off) != w.path_len ||
		    b[w.path_off] != '/')
			goto bad;
		last = w.wd;
	}
	return 0;
bad:
	crac_img_puts(why, "its watches in the image do not add up");
	return -EBADMSG;
}

/* "wd N: PATH" */
static void put_wd(struct crac_img_buf *why, const struct crac_img_view *v, const struct crac_img_fd *e,
		   const struct ino_watch *w)
{
	crac_img_puts(why, "wd ");
	crac_img_putu(why, (uint64_t)w->wd);
	crac_img_puts(why, ": ");
	crac_img_put_escaped(why, rec_path(v, e, w));
}

int crac_obj_inotify_check(const struct crac_img_view *v, const struct crac_img_fd *e, struct crac_img_buf *why)
{
	struct stat st;
	int rc = valid(v, e, why);

	if (rc < 0)
		return rc;
	for (uint64_t k = 0; k < e->u[0]; k++) {
		struct ino_watch w = rec(v, e, k);
		long r = sys_fstatat(AT_FDCWD, rec_path(v, e, &w), &st, AT_SYMLINK_NOFOLLOW);
		if (r < 0) {
			put_wd(why, v, e, &w);
			return (int)r;   /* the caller adds ": No such file or directory" */
		}
		if ((st.st_dev != w.dev || st.st_ino != w.ino) && !(e->u[6] & CRAC_OBJ_F_CHANGED_OK)) {
			put_wd(why, v, e, &w);
			crac_img_puts(why, " is another file now (its inode differs from the watched one's: replaced "
				      "since the checkpoint)");
			return -ESTALE;
		}
	}
	return 0;
}

/* Is wd one of the watches of e (not a throwaway one)? */
static int is_watch(const struct crac_img_view *v, const struct crac_img_fd *e, int32_t wd)
{
	uint64_t lo = 0, hi = e->u[0];

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		int32_t m = rec(v, e, mid).wd;
		if (m == wd)
			return 1;
		if (m < wd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Reads back the IN_IGNORED events of the throwaway watches; anything
 * else would be lost: refused. */
static long drain(long fd, const struct crac_img_view *v, const struct crac_img_fd *e, struct crac_img_buf *why)
{
	static char buf[4096] __attribute__((aligned(8)));

	for (;;) {
		long got = sys_read(fd, buf, sizeof(buf));
		if (got == -EINTR)
			continue;
		if (got == -EAGAIN)
			return 0;
		if (got <= 0) {
			crac_img_puts(why, "cannot read back the events of its throwaway watches");
			return got < 0 ? got : -EIO;
		}
		for (long off = 0; off + (long)sizeof(struct inotify_event) <= got;) {
			struct inotify_event ev;
			memcpy(&ev, buf + off, sizeof(ev));
			off += (long)sizeof(ev) + (long)ev.len;
			if (ev.mask == IN_IGNORED && !ev.len && ev.wd > 0 && !is_watch(v, e, ev.wd))
				continue;
			crac_img_puts(why, "an event (mask ");
			crac_img_putx(why, ev.mask);
			crac_img_puts(why, ", wd ");
			if (ev.wd < 0)
				crac_img_puts(why, "-");
			crac_img_putu(why, (uint64_t)(ev.wd < 0 ? -(int64_t)ev.wd : ev.wd));
			crac_img_puts(why, ") arrived while its watches were made again (a watched file changed during "
				      "the restore): it would be lost; try the restore again");
			return -EAGAIN;
		}
	}
}

/* A file no watch is on (neither the one the image saw nor the one at its
 * path now), for the throwaway watches. */
static const char *filler(const struct crac_img_view *v, const struct crac_img_fd *e)
{
	static const char *const cand[] = { "/", "/proc", "/dev", "/tmp" };
	struct stat st, cur;

	for (size_t c = 0; c < sizeof(cand) / sizeof(cand[0]); c++) {
		int taken = sys_fstatat(AT_FDCWD, cand[c], &st, 0) < 0;
		for (uint64_t k = 0; k < e->u[0] && !taken; k++) {
			struct ino_watch w = rec(v, e, k);
			taken = (st.st_dev == w.dev && st.st_ino == w.ino) ||
				(sys_fstatat(AT_FDCWD, rec_path(v, e, &w), &cur, AT_SYMLINK_NOFOLLOW) == 0 &&
				 cur.st_dev == st.st_dev && cur.st_ino == st.st_ino);
		}
		if (!taken)
			return cand[c];
	}
	return 0;
}

static long inotify_restore(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	const struct crac_img_view *v = r->v;
	const struct crac_img_fd *e = &v->fds[i];
	long rc = crac_obj_inotify_check(v, e, why);   /* every path there, the same files */

	if (rc < 0)
		return rc;
	uint64_t n = e->u[0];
	const char *fill = e->u[1] > n ? filler(v, e) : 0;
	if (e->u[1] > n && !fill) {
		crac_img_puts(why, "every file it could use for throwaway watches (/, /proc, /dev, /tmp) is watched");
		return -EBUSY;
	}
	long fd = SYS(SYS_inotify_init1, IN_CLOEXEC | IN_NONBLOCK, 0, 0, 0, 0, 0);
	if (fd < 0) {
		crac_img_puts(why, fd == -EMFILE ? "cannot create an inotify instance (fs.inotify.max_user_instances "
			      "reached?)" : "cannot create an inotify instance");
		return fd;
	}
	int32_t next = 1;        /* the number the kernel hands out next */
	uint32_t since = 0;      /* throwaway watches since the queue was read */
	for (uint64_t k = 0; k < n; k++) {
		struct ino_watch w = rec(v, e, k);
		/* the numbers of watches removed before the checkpoint */
		while (next < w.wd) {
			long t = SYS(SYS_inotify_add_watch, fd, fill, IN_DELETE_SELF | IN_MASK_CREATE, 0, 0, 0);
			if (t != next) {
				sys_close(fd);
				crac_img_puts(why, "wd ");
				crac_img_putu(why, (uint64_t)w.wd);
				crac_img_puts(why, ": cannot skip number ");
				crac_img_putu(why, (uint64_t)next);
				if (t >= 0) {
					crac_img_puts(why, " (the kernel did not number watches in order)");
					return -EPROTO;
				}
				crac_img_puts(why, " (a throwaway watch on ");
				crac_img_puts(why, fill);
				crac_img_puts(why, ")");
				return t;
			}
			SYS(SYS_inotify_rm_watch, fd, t, 0, 0, 0, 0);
			next++;
			if (++since >= DRAIN_EVERY) {
				since = 0;
				if ((rc = drain(fd, v, e, why)) < 0) {
					sys_close(fd);
					return rc;
				}
			}
		}
		long got = SYS(SYS_inotify_add_watch, fd, rec_path(v, e, &w), w.mask | IN_DONT_FOLLOW | IN_MASK_CREATE,
			       0, 0, 0);
		if (got != w.wd) {
			sys_close(fd);
			put_wd(why, v, e, &w);
			if (got == -EEXIST) {
				crac_img_puts(why, " is the same file as another watch's now");
				return -ESTALE;
			}
			if (got == -ENOSPC)
				crac_img_puts(why, ": the user's watch limit is reached (fs.inotify.max_user_watches)");
			if (got >= 0) {
				crac_img_puts(why, ": the kernel gave it wd ");
				crac_img_putu(why, (uint64_t)got);
				return -EPROTO;
			}
			return got;
		}
		next = w.wd + 1;
	}
	if (since && (rc = drain(fd, v, e, why)) < 0) {
		sys_close(fd);
		return rc;
	}
	if ((rc = crac_obj_place(r, i, fd)) < 0)
		crac_img_puts(why, "cannot put it at its number");
	return rc;
}

const struct crac_obj_ops crac_obj_inotify_ops = {
	.name = "inotify",
	.capture = inotify_capture,
	.restore = inotify_restore,
};
