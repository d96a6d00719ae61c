/* SPDX-License-Identifier: MIT */
/*
 * table.c - the kinds of carried objects, and the loops that capture and
 * restore every descriptor (see objects.h).
 *
 * Capture: /proc/self/fd in number order; each descriptor is classified
 * (link and mode), a dup of an earlier one (kcmp: the same open file) is
 * recorded as such, and the kind's capture fills its entry. Nothing is
 * changed in the running process.
 *
 * Restore: entries in number order; a dup is dup3'ed from its original,
 * every other entry is recreated by its kind (a pipe or socket pair places
 * both of its ends at once); then the kinds' second pass (epoll).
 */
#include "objects/objects.h"

#include <errno.h>
#include <fcntl.h>

#define P CRAC_IMG_PAGE
#ifndef KCMP_FILE
#define KCMP_FILE 0
#endif

static const struct crac_obj_ops *const kinds[CRAC_OBJ_KINDS] = {
	[CRAC_OBJ_FILE] = &crac_obj_file_ops,
	[CRAC_OBJ_DIR] = &crac_obj_dir_ops,
	[CRAC_OBJ_DEVICE] = &crac_obj_device_ops,
	[CRAC_OBJ_PIPE] = &crac_obj_pipe_ops,
	[CRAC_OBJ_FIFO] = &crac_obj_fifo_ops,
	[CRAC_OBJ_EVENTFD] = &crac_obj_eventfd_ops,
	[CRAC_OBJ_TIMERFD] = &crac_obj_timerfd_ops,
	[CRAC_OBJ_SIGNALFD] = &crac_obj_signalfd_ops,
	[CRAC_OBJ_EPOLL] = &crac_obj_epoll_ops,
	[CRAC_OBJ_MEMFD] = &crac_obj_memfd_ops,
	[CRAC_OBJ_SOCKET] = &crac_obj_socket_ops,
	[CRAC_OBJ_CLOSED] = &crac_obj_closed_ops,
	[CRAC_OBJ_INOTIFY] = &crac_obj_inotify_ops,
};

const char *crac_obj_kind_name(uint32_t kind)
{
	return kind > 0 && kind < CRAC_OBJ_KINDS && kinds[kind] ? kinds[kind]->name : "fd";
}

/* ---- walking /proc/self/fd ------------------------------------------------------ */

long crac_obj_fds_open(struct crac_obj_fds *w, char *buf, long size)
{
	w->buf = buf;
	w->size = size;
	w->n = w->off = w->err = 0;
	w->dfd = sys_openat(AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return w->dfd < 0 ? w->dfd : 0;
}

int crac_obj_fds_next(struct crac_obj_fds *w)
{
	for (;;) {
		if (w->off >= w->n) {
			long n = sys_getdents64(w->dfd, w->buf, w->size);
			w->off = 0;
			w->n = n > 0 ? n : 0;
			if (n <= 0) {
				if (n < 0)
					w->err = n;
				return -1;
			}
		}
		/* struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2),
		 * d_type (1), d_name */
		const char *name = w->buf + w->off + 19;
		unsigned short reclen;
		int v = 0, digits = 0;
		memcpy(&reclen, w->buf + w->off + 16, sizeof(reclen));
		w->off += reclen ? reclen : w->n;
		for (const char *q = name; *q >= '0' && *q <= '9'; q++, digits++)
			v = v * 10 + (*q - '0');
		if (digits && v != w->dfd)   /* not "." nor "..", nor the walk's own */
			return v;
	}
}

void crac_obj_fds_rewind(struct crac_obj_fds *w)
{
	sys_lseek(w->dfd, 0, 0);
	w->n = w->off = w->err = 0;
}

void crac_obj_fds_close(struct crac_obj_fds *w)
{
	if (w->dfd >= 0)
		sys_close(w->dfd);
	w->dfd = -1;
}

/* ---- reading a descriptor ------------------------------------------------------ */

static void fmt_path(char *buf, const char *a, int n, const char *b)
{
	struct crac_img_buf p = { buf, 0, 64 };
	crac_img_puts(&p, a);
	crac_img_putu(&p, (uint64_t)n);
	crac_img_puts(&p, b);
}

uint64_t crac_obj_info_num(const char *info, const char *key, int base, int *found)
{
	size_t kl = strlen(key);
	const char *s = info;

	if (found)
		*found = 0;
	while (*s) {
		if (!memcmp(s, key, kl) && s[kl] == ':') {
			const char *p = s + kl + 1;
			uint64_t v = 0;
			int neg = 0;
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p == '-') {
				neg = 1;
				p++;
			}
			if (base == 16 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
				p += 2;
			for (;; p++) {
				int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 :
					*p >= 'A' && *p <= 'F' ? *p - 'A' + 10 : 99;
				if (d >= base)
					break;
				v = v * (uint64_t)base + (uint64_t)d;
			}
			if (found)
				*found = 1;
			return neg ? (uint64_t)-(int64_t)v : v;
		}
		while (*s && *s != '\n')
			s++;
		if (*s)
			s++;
	}
	return 0;
}

uint64_t crac_obj_line_num(const char *s, const char *end, const char *key, int base, int *found)
{
	size_t kl = strlen(key);
	uint64_t v = 0;

	*found = 0;
	for (; s + kl <= end; s++) {
		if (memcmp(s, key, kl))
			continue;
		const char *p = s + kl;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		for (; p < end; p++) {
			int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 :
				*p >= 'A' && *p <= 'F' ? *p - 'A' + 10 : 99;
			if (d >= base)
				break;
			v = v * (uint64_t)base + (uint64_t)d;
			*found = 1;
		}
		return v;
	}
	return 0;
}

int crac_obj_read_fd(int fd, struct crac_obj_fd *d)
{
	char path[64];
	long n, r;

	d->fd = fd;
	if ((r = sys_fstat(fd, &d->st)) < 0)
		return (int)r;
	fmt_path(path, "/proc/self/fd/", fd, "");
	n = sys_readlinkat(AT_FDCWD, path, d->link, sizeof(d->link) - 1);
	/* a link that fills the buffer may be cut short: a wrong path is
	 * worse than none (the kinds that need one refuse the descriptor) */
	d->link[n > 0 && n < (long)sizeof(d->link) - 1 ? n : 0] = 0;
	fmt_path(path, "/proc/self/fdinfo/", fd, "");
	long ifd = sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	uint64_t got = 0;
	if (ifd >= 0) {
		while (got < sizeof(d->info) - 1 && (n = sys_read(ifd, d->info + got, sizeof(d->info) - 1 - got)) > 0)
			got += (uint64_t)n;
		sys_close(ifd);
	}
	d->info[got] = 0;
	d->flags = (uint32_t)crac_obj_info_num(d->info, "flags", 8, 0);
	d->pos = crac_obj_info_num(d->info, "pos", 10, 0);
	r = sys_fcntl(fd, F_GETFD, 0);
	d->fd_flags = r > 0 ? (uint32_t)(r & FD_CLOEXEC) : 0;
	return 0;
}

static int starts(const char *s, const char *prefix)
{
	return !memcmp(s, prefix, strlen(prefix));
}

uint32_t crac_obj_classify(const struct crac_obj_fd *d)
{
	switch (d->st.st_mode & S_IFMT) {
	case S_IFREG:
		return starts(d->link, "/memfd:") ? CRAC_OBJ_MEMFD : CRAC_OBJ_FILE;
	case S_IFDIR:
		return CRAC_OBJ_DIR;
	case S_IFCHR:
		return CRAC_OBJ_DEVICE;
	case S_IFIFO:
		return starts(d->link, "pipe:") ? CRAC_OBJ_PIPE : CRAC_OBJ_FIFO;
	case S_IFSOCK:
		return CRAC_OBJ_SOCKET;
	}
	if (starts(d->link, "anon_inode:[eventfd]"))
		return CRAC_OBJ_EVENTFD;
	if (starts(d->link, "anon_inode:[timerfd]"))
		return CRAC_OBJ_TIMERFD;
	if (starts(d->link, "anon_inode:[signalfd]"))
		return CRAC_OBJ_SIGNALFD;
	if (starts(d->link, "anon_inode:[eventpoll]"))
		return CRAC_OBJ_EPOLL;
	if (!strcmp(d->link, "anon_inode:inotify"))
		return CRAC_OBJ_INOTIFY;
	return 0;
}

/* ---- capture ------------------------------------------------------------------------ */

int crac_obj_put_data(struct crac_obj_capture *c, struct crac_img_fd *e, const void *buf, uint64_t len)
{
	e->data_off = c->pages_size;
	e->data_len = len;
	e->data_crc = crac_img_crc32c(0, buf, (size_t)len);
	if (c->pages_fd < 0 || !len)
		return 0;
	/* the pages file stays page-aligned: data starts on a page */
	uint64_t at = c->pages_size;
	for (uint64_t done = 0; done < len;) {
		long n = sys_pwrite(c->pages_fd, (const char *)buf + done, len - done, at + done);
		if (n == -EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? (int)n : -EIO;
		done += (uint64_t)n;
	}
	c->pages_size = (at + len + P - 1) & ~(P - 1);
	return 0;
}

int crac_obj_put_blob(struct crac_obj_capture *c, struct crac_img_fd *e, const void *buf, uint32_t len)
{
	uint64_t at = (c->blob_used + 7) & ~7ull;

	if (c->pages_fd >= 0) {
		if (!c->blob || len > c->blob_cap || at > c->blob_cap - len)
			return -ENOMEM;
		memcpy(c->blob + at, buf, len);
	}
	e->blob_off = at;
	e->blob_len = len;
	c->blob_used = at + len;
	return 0;
}

int crac_obj_put_path(struct crac_obj_capture *c, uint32_t i, const char *path)
{
	uint64_t n = strlen(path) + 1;

	if (c->pages_fd < 0)
		return 0;
	if (!c->strings || n > c->strings_cap - c->strings_used)
		return -ENOMEM;
	memcpy(c->strings + c->strings_used, path, n);
	c->paths[i] = c->strings + c->strings_used;
	c->strings_used += n;
	return 0;
}

/* "fd N (LINK): " */
static void put_fd(struct crac_img_buf *b, const struct crac_obj_fd *d)
{
	crac_img_puts(b, "fd ");
	crac_img_putu(b, (uint64_t)d->fd);
	crac_img_puts(b, " (");
	crac_img_put_escaped(b, d->link);
	crac_img_puts(b, "): ");
}

/* Captures descriptor d as entry i (probe mode too). */
static int capture_one(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
		       struct crac_img_fd *e, int decided, struct crac_img_buf *why)
{
	uint32_t kind = (decided & 0xffff) ? (uint32_t)(decided & 0xffff) : crac_obj_classify(d);
	char reason[1024];
	struct crac_img_buf rb = { reason, 0, sizeof(reason) };

	reason[0] = 0;
	memset(e, 0, sizeof(*e));
	e->fd = d->fd;
	e->kind = kind;
	e->flags = d->flags;
	e->fd_flags = d->fd_flags;
	e->same_as = CRAC_IMG_NO_FD;
	e->obj = d->st.st_ino;
	if (!kind || kind >= CRAC_OBJ_KINDS || !kinds[kind]) {
		put_fd(why, d);
		crac_img_puts(why, "this kind of descriptor is not carried across a restore");
		return -ENOTSUP;
	}
	int rc = kinds[kind]->capture(c, d, i, e, &rb);
	if (rc >= 0 && decided > 0 && (decided & CRAC_OBJ_CHANGED_OK))
		e->u[6] |= CRAC_OBJ_F_CHANGED_OK;
	if (rc < 0) {
		put_fd(why, d);
		crac_img_puts(why, reason);
	}
	return rc;
}

static int capture_all(struct crac_obj_capture *c, struct crac_img_buf *why)
{
	static char dents[16384];
	static int list[CRAC_IMG_MAX_FDS];
	static struct crac_obj_fd d;   /* only the checkpointing thread runs */
	struct crac_obj_fds fds;
	long dfd_err = crac_obj_fds_open(&fds, dents, sizeof(dents)), pid = sys_getpid();
	uint32_t count = 0;
	int v;

	if (dfd_err < 0) {
		crac_img_puts(why, "/proc/self/fd");
		crac_img_put_err(why, dfd_err);
		return (int)dfd_err;
	}
	c->n_fds = 0;
	/* one pass over the directory: the program's descriptors from 3 up */
	while ((v = crac_obj_fds_next(&fds)) >= 0) {
		if (v <= 2)
			continue;
		int skip = 0;
		for (int k = 0; k < c->n_skip; k++)
			skip |= c->skip[k] == v;
		if (skip)
			continue;
		if (count >= CRAC_IMG_MAX_FDS || count >= c->max_fds) {
			crac_obj_fds_close(&fds);
			crac_img_puts(why, "more descriptors than an image holds");
			return -E2BIG;
		}
		list[count++] = v;
	}
	crac_obj_fds_close(&fds);
	/* in number order (the kernel lists them so; insertion sort otherwise) */
	for (uint32_t i = 1; i < count; i++)
		for (uint32_t k = i; k > 0 && list[k - 1] > list[k]; k--) {
			int t = list[k];
			list[k] = list[k - 1];
			list[k - 1] = t;
		}

	for (uint32_t li = 0; li < count; li++) {
		int fd = list[li];
		int rc = crac_obj_read_fd(fd, &d);
		if (rc < 0)
			continue;   /* closed meanwhile (only our own thread runs: cannot happen) */
		uint32_t i = c->n_fds;
		struct crac_img_fd *e = &c->fds[i];
		int decided = c->decide ? c->decide(c->decide_arg, &d) : 0;
		if (decided < 0)
			continue;   /* a policy closes it: the restored process does not have it */
		c->paths[i] = 0;
		/* a dup of an earlier descriptor: the same open file (same inode
		 * and status flags; kcmp decides). fdinfo's flags show each
		 * descriptor's close-on-exec flag as O_CLOEXEC: a dup may differ
		 * there (dup(2) clears it) */
		uint32_t same = CRAC_IMG_NO_FD;
		for (uint32_t k = 0; k < i && same == CRAC_IMG_NO_FD; k++)
			if (!c->no_kcmp && c->fds[k].obj == d.st.st_ino &&
			    !((c->fds[k].flags ^ d.flags) & ~(uint32_t)O_CLOEXEC) &&
			    c->fds[k].same_as == CRAC_IMG_NO_FD &&
			    sys_kcmp(pid, pid, KCMP_FILE, c->fds[k].fd, fd) == 0)
				same = k;
		if (same != CRAC_IMG_NO_FD) {
			*e = c->fds[same];
			e->fd = fd;
			e->fd_flags = d.fd_flags;
			e->same_as = same;
			e->data_len = 0;
			e->blob_len = 0;
			c->paths[i] = c->paths[same];
			c->n_fds++;
			continue;
		}
		if ((rc = capture_one(c, &d, i, e, decided, why)) < 0)
			return rc;
		c->n_fds++;
	}
	/* the pages file ends where the header says: at the last data, rounded to a page */
	if (c->pages_fd >= 0) {
		long r = sys_ftruncate(c->pages_fd, c->pages_size);
		if (r < 0) {
			crac_img_puts(why, "cannot extend the pages file");
			crac_img_put_err(why, r);
			return (int)r;
		}
	}
	return 0;
}

int crac_obj_capture_all(struct crac_obj_capture *c, struct crac_img_buf *why)
{
	/* one pass, every other thread stopped: the pipe lookups may trust
	 * what they indexed in it until it ends */
	crac_obj_pipe_pass(c);
	int rc = capture_all(c, why);
	crac_obj_pipe_pass(NULL);
	return rc;
}

int crac_obj_probe(int fd, struct crac_img_buf *why)
{
	/* callers may be several threads (crac_check): nothing static */
	struct crac_obj_fd d;
	const char *paths[1];
	struct crac_img_fd fds[1];
	struct crac_obj_capture c = { .pages_fd = -1, .fds = fds, .paths = paths, .max_fds = 1 };
	int rc = crac_obj_read_fd(fd, &d);

	if (rc < 0) {
		crac_img_puts(why, "fd ");
		crac_img_putu(why, (uint64_t)fd);
		crac_img_put_err(why, rc);
		return rc;
	}
	rc = capture_one(&c, &d, 0, &fds[0], 0, why);
	return rc < 0 ? rc : (int)fds[0].kind;
}

/* ---- restore ---------------------------------------------------------------------------- */

long crac_obj_place(struct crac_obj_restore *r, uint32_t i, long nfd)
{
	const struct crac_img_fd *e = &r->v->fds[i];
	long rc;

	if (nfd < 0)
		return nfd;
	if (nfd != e->fd) {
		rc = sys_dup3(nfd, e->fd, (e->fd_flags & FD_CLOEXEC) ? O_CLOEXEC : 0);
		sys_close(nfd);
		if (rc < 0)
			return rc;
	} else {
		sys_fcntl(e->fd, F_SETFD, (e->fd_flags & FD_CLOEXEC) ? FD_CLOEXEC : 0);
	}
	/* the status flags F_SETFL can change (O_APPEND, O_NONBLOCK, O_ASYNC, O_DIRECT, O_NOATIME) */
	long cur = sys_fcntl(e->fd, F_GETFL, 0);
	const uint32_t settable = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;
	if (cur >= 0 && ((uint32_t)cur & settable) != (e->flags & settable))
		sys_fcntl(e->fd, F_SETFL, ((uint32_t)cur & ~settable) | (e->flags & settable));
	r->done[i] = 1;
	return 0;
}

long crac_obj_read_data(struct crac_obj_restore *r, const struct crac_img_fd *e, void *buf, uint64_t cap)
{
	if (e->data_len > cap)
		return -EFBIG;
	for (uint64_t got = 0; got < e->data_len;) {
		long n = sys_pread(r->pages_fd, (char *)buf + got, e->data_len - got, e->data_off + got);
		if (n == -EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? n : -EIO;
		got += (uint64_t)n;
	}
	if (crac_img_crc32c(0, buf, (size_t)e->data_len) != e->data_crc)
		return -EBADMSG;
	return 0;
}

long crac_obj_stream_data(struct crac_obj_restore *r, const struct crac_img_fd *e, char *buf, uint64_t size,
			  const char *what, crac_obj_put_part put, void *arg, struct crac_img_buf *why)
{
	uint32_t crc = 0;

	for (uint64_t done = 0; done < e->data_len;) {
		uint64_t want = e->data_len - done < size ? e->data_len - done : size;
		long n = sys_pread(r->pages_fd, buf, want, e->data_off + done), rc;
		if (n == -EINTR)
			continue;
		if (n <= 0) {
			crac_img_puts(why, "cannot read ");
			crac_img_puts(why, what);
			crac_img_puts(why, " from the pages file");
			return n < 0 ? n : -EIO;
		}
		crc = crac_img_crc32c(crc, buf, (size_t)n);
		if ((rc = put(arg, buf, n, done, why)) < 0)
			return rc;
		done += (uint64_t)n;
	}
	if (crc != e->data_crc) {
		crac_img_puts(why, what);
		crac_img_puts(why, " in the pages file is damaged (checksum)");
		return -EBADMSG;
	}
	return 0;
}

void crac_obj_put_entry(struct crac_img_buf *b, const struct crac_img_view *v, const struct crac_img_fd *e)
{
	crac_img_puts(b, "fd ");
	crac_img_putu(b, (uint64_t)e->fd);
	crac_img_puts(b, " (");
	crac_img_puts(b, crac_obj_kind_name(e->kind));
	if (e->path) {
		crac_img_puts(b, " ");
		crac_img_put_escaped(b, crac_img_str(v, e->path));
	}
	crac_img_puts(b, "): ");
}

long crac_obj_restore_all(struct crac_obj_restore *r, struct crac_img_buf *why)
{
	const struct crac_img_view *v = r->v;
	char reason[1024];
	long rc;

	for (uint32_t pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < v->h->n_fds; i++) {
			const struct crac_img_fd *e = &v->fds[i];
			const struct crac_obj_ops *ops = e->kind < CRAC_OBJ_KINDS ? kinds[e->kind] : 0;
			struct crac_img_buf rb = { reason, 0, sizeof(reason) };
			reason[0] = 0;
			if (!ops) {
				crac_obj_put_entry(why, v, e);
				crac_img_puts(why, "unknown kind of descriptor in the image");
				return -EINVAL;
			}
			if (pass == 0 && r->done[i])
				continue;
			if (pass == 0 && e->same_as != CRAC_IMG_NO_FD) {
				/* the original is placed (entries are in number order and
				 * same_as points backwards) */
				rc = sys_dup3(v->fds[e->same_as].fd, e->fd, (e->fd_flags & FD_CLOEXEC) ? O_CLOEXEC : 0);
				if (rc >= 0)
					r->done[i] = 1;
				else
					crac_img_puts(&rb, "cannot duplicate the descriptor it shares its file with");
			} else if (pass == 0) {
				rc = ops->restore(r, i, &rb);
				if (rc >= 0 && !r->done[i]) {
					rc = -EIO;
					crac_img_puts(&rb, "internal error: not placed");
				}
			} else if (ops->finish && e->same_as == CRAC_IMG_NO_FD) {
				rc = ops->finish(r, i, &rb);
			} else {
				rc = 0;
			}
			if (rc < 0) {
				crac_obj_put_entry(why, v, e);
				crac_img_puts(why, reason[0] ? reason : "cannot be recreated");
				if (!reason[0] || rc != -ESTALE)
					crac_img_put_err(why, rc);
				return rc;
			}
		}
	return 0;
}
