/* SPDX-License-Identifier: MIT */
/*
 * pipe.c - pipes whose ends are all inside the process, and named pipes
 * (FIFOs), opened again by path.
 *
 * Pipes (CRAC_OBJ_PIPE): every descriptor of the process that is an end of
 * the pipe is found (same pipefs inode); an end whose other end is held by
 * no descriptor of this process is refused, unless poll(2) proves that the
 * other end is closed everywhere (a read end with POLLHUP: no writer left;
 * a write end with POLLERR: no reader left), which is kept as it is: the
 * restored reader sees the content, then end of file; the restored writer
 * gets EPIPE. A pipe shared with another process (a child holding an end
 * too, besides ours) is not detected: after the restore that process no
 * longer shares it. The unread content is copied at the checkpoint with
 * tee(2) into a private pipe and read from there (the program's pipe keeps
 * every byte), stored in the pages file, and written into the new pipe
 * before any end is placed. Content written in packet mode (O_DIRECT) is
 * refused: its packet boundaries cannot be kept. The pipe size
 * (F_GETPIPE_SZ) is set again. At restore, one pipe2(2) gives the first
 * read end and the first write end; further ends that were separate
 * opens of the pipe (not dups) are opened through /proc/self/fd.
 *
 * FIFOs (CRAC_OBJ_FIFO): opened again by path (the identity of the FIFO,
 * device and inode, is checked before the point of no return as for
 * files, image/check.c), O_NONBLOCK while opening, then the recorded
 * flags; a write-only end that finds no reader opens a temporary reader
 * first (the restored writer then sees what a writer without a reader
 * sees, until one opens the FIFO). Unread content: copied at the
 * checkpoint (tee, as above) when the process holds a read end of the
 * FIFO. It is written back at restore only if the FIFO is empty then: a
 * FIFO is shared with every process that opens its path, and if another
 * process kept it open since the checkpoint, the content is still in the
 * kernel's pipe and is not written twice. Not kept: content of a FIFO the
 * process only writes to (it belongs to the readers), and content another
 * reader took between the checkpoint and the restore is given again.
 *
 * Kind-specific words of struct crac_img_fd:
 *   pipe:  u[0] pipe size (bytes)   u[1] PIPE_F_* flags
 *   fifo:  u[0] dev   u[1] inode (as file.c: checked by crac_obj_file_check)
 *          u[2] pipe size   u[3] PIPE_F_* flags   u[4] birth time (ns), if
 *          PIPE_F_BTIME: a FIFO removed and made again often gets the
 *          inode number of the old one, not its birth time
 *   content (both): data_off, data_len, data_crc in the pages file
 */
#include "objects/objects.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>

#define P CRAC_IMG_PAGE

#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#define F_GETPIPE_SZ 1032
#endif
#define SPLICE_NONBLOCK 0x02      /* SPLICE_F_NONBLOCK */

#define PIPE_F_CONTENT 0x1u       /* this entry carries the pipe's unread content */
#define PIPE_F_BTIME 0x2u         /* a FIFO's birth time is known (u[4]) */

#define STATX_BTIME_ 0x800u
#define sys_statx(dfd, p, fl, mask, buf) SYS(SYS_statx, dfd, p, fl, mask, buf, 0)

#define sys_pipe2(p, fl) SYS(SYS_pipe2, p, fl, 0, 0, 0, 0)
#define sys_tee(in, out, len, fl) SYS(SYS_tee, in, out, len, fl, 0, 0)
#define sys_poll(fds, n, ms) SYS(SYS_poll, fds, n, ms, 0, 0, 0)

/* ---- what the process holds of one pipe ------------------------------------------------ */

struct ends {
	int readers, writers;        /* descriptors of this process, d's own included */
	int read_fd;                 /* one that can be read (for tee), or -1 */
	int packet;                  /* an end is in packet mode (O_DIRECT) */
};

/* Counts descriptor v, an end of the pipe, into x by its access mode; -1
 * if it cannot be asked (closed meanwhile). */
static int count_end(struct ends *x, int v)
{
	long fl = sys_fcntl(v, F_GETFL, 0);

	if (fl < 0)
		return -1;
	if ((fl & O_ACCMODE) != O_WRONLY) {
		x->readers++;
		if (x->read_fd < 0)
			x->read_fd = v;
	}
	if ((fl & O_ACCMODE) != O_RDONLY)
		x->writers++;
	if (fl & O_DIRECT)
		x->packet = 1;
	return 0;
}

/*
 * Which descriptors of the process are ends of the same pipe or FIFO?
 * Scanning /proc/self/fd for each end costs O(descriptors) system calls
 * per end (1000 pipes: seconds), so one scan keeps an index of every
 * pipe/FIFO descriptor (number and inode), used for the ends that follow
 * in the same pass (the table and the checks go through the descriptors
 * in increasing order). The index is only a list of candidates: each is
 * checked again (fstat, fcntl) when used. A negative answer (no other
 * end, no end to read) is final without another scan when the kernel
 * proves it (poll: no writer, or no reader, left anywhere), or when the
 * index was built in the same capture (crac_obj_pipe_pass: every other
 * thread is stopped, so no descriptor is opened meanwhile); else it is
 * taken from a fresh scan (a probe runs beside the program's threads), so
 * a stale index never makes an answer wrong. Either way, each descriptor
 * costs no scan of its own: a check or capture stays linear in the
 * number of descriptors.
 * Probes may come from several threads at once: see find_ends().
 */
#define INDEX_MIN 8192

struct idx_entry {
	uint64_t ino, dev;
	int fd;
};
static struct idx_entry idx_static[INDEX_MIN];
static struct idx_entry *idx = idx_static;   /* or a larger mapping, kept for the next passes */
static int idx_cap = INDEX_MIN;
static uint64_t idx_len;         /* bytes of the mapping, if idx is one */
static int idx_seen;             /* pipe and FIFO descriptors the last scan saw */
static int n_idx = -1;           /* -1: none, or too many to keep (scan each time) */
static const void *idx_pass;     /* the capture (or probe) that built it */
static int idx_last_fd = -1;
static int idx_rebuilds;         /* fresh scans this pass made for a negative answer */
static const void *final_pass;   /* the capture under way (crac_obj_pipe_pass), or NULL */
static int idx_final;            /* the index was built in final_pass: its negatives are final */
unsigned long crac_obj_pipe_scans;

void crac_obj_pipe_pass(const struct crac_obj_capture *c)
{
	final_pass = c;
	n_idx = -1;
	idx_pass = NULL;
	idx_final = 0;
}

static int build_index(void)
{
	static char dents[4096];
	struct crac_obj_fds fds;
	long rc = crac_obj_fds_open(&fds, dents, sizeof(dents));
	int count = 0, v;

	n_idx = -1;
	crac_obj_pipe_scans++;
	if (rc < 0)
		return (int)rc;
	while ((v = crac_obj_fds_next(&fds)) >= 0) {
		struct stat st;
		if (sys_fstat(v, &st) < 0 || !S_ISFIFO(st.st_mode))
			continue;
		if (count < idx_cap) {
			idx[count].ino = st.st_ino;
			idx[count].dev = st.st_dev;
			idx[count].fd = v;
		}
		count++;
	}
	crac_obj_fds_close(&fds);
	if (fds.err < 0)
		return (int)fds.err;
	idx_seen = count;
	n_idx = count <= idx_cap ? count : -1;
	return 0;
}

/* Index order: inode, device, number (an object's ends in number order). */
static int idx_less(const struct idx_entry *a, const struct idx_entry *b)
{
	if (a->ino != b->ino)
		return a->ino < b->ino;
	if (a->dev != b->dev)
		return a->dev < b->dev;
	return a->fd < b->fd;
}

/* Heap sort of the index (no libc here), so that count_ends finds an
 * object's ends by binary search: n log n for a whole pass. */
static void sort_index(void)
{
	struct idx_entry t;

	for (int n = n_idx, k = n / 2 - 1, end = n; end > 1;) {
		int root;
		if (k >= 0) {
			root = k--;   /* building the heap */
		} else {
			t = idx[0];   /* the largest to the end */
			idx[0] = idx[--end];
			idx[end] = t;
			root = 0;
		}
		for (int child; (child = 2 * root + 1) < end; root = child) {
			if (child + 1 < end && idx_less(&idx[child], &idx[child + 1]))
				child++;
			if (!idx_less(&idx[root], &idx[child]))
				break;
			t = idx[root];
			idx[root] = idx[child];
			idx[child] = t;
		}
	}
}

/* build_index, with room made for every pipe and FIFO descriptor when
 * the index is too small (a larger mapping, kept for the next passes, then
 * one more scan); without memory for it, n_idx stays -1 (a scan per end). */
static int build_index_all(void)
{
	int rc = build_index();
	if (rc < 0 || n_idx >= 0)
		return rc;
	uint64_t len = ((uint64_t)idx_seen * 2 * sizeof(*idx) + 4095) & ~(uint64_t)4095;
	long m = sys_mmap(0, len, 3 /* PROT_READ | PROT_WRITE */, 0x22 /* MAP_PRIVATE | MAP_ANONYMOUS */, -1, 0);
	if ((unsigned long)m > -4096ul)
		return 0;
	if (idx != idx_static)
		sys_munmap(idx, idx_len);
	idx = (struct idx_entry *)m;
	idx_len = len;
	idx_cap = (int)(len / sizeof(*idx));
	return build_index();
}

/* build_index_all, sorted. */
static int build_sorted(void)
{
	int rc = build_index_all();
	if (rc >= 0 && n_idx > 1)
		sort_index();
	return rc;
}

/* Counts the ends of d's object among the candidates of the index (each
 * checked again). Returns 1 if d itself was among them (the index knows
 * it), else 0. */
static int count_ends(const struct crac_obj_fd *d, struct ends *x)
{
	int self = 0;

	x->readers = x->writers = x->packet = 0;
	x->read_fd = -1;
	/* the first entry not below (inode, device, -1): binary search */
	struct idx_entry key = { .ino = d->st.st_ino, .dev = d->st.st_dev, .fd = -1 };
	int lo = 0, hi = n_idx;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (idx_less(&idx[mid], &key))
			lo = mid + 1;
		else
			hi = mid;
	}
	for (int k = lo; k < n_idx && idx[k].ino == key.ino && idx[k].dev == key.dev; k++) {
		struct stat st;
		int v = idx[k].fd;
		if (sys_fstat(v, &st) < 0 || st.st_ino != d->st.st_ino || st.st_dev != d->st.st_dev)
			continue;
		if (count_end(x, v) < 0)
			continue;
		self |= v == d->fd;
	}
	return self;
}

/* Only a scan of /proc/self/fd, without keeping an index (too many, or a
 * probe), into dents[size]. */
static int scan_ends(const struct crac_obj_fd *d, struct ends *x, char *dents, long size)
{
	struct crac_obj_fds fds;
	long rc = crac_obj_fds_open(&fds, dents, size);
	int v;

	x->readers = x->writers = x->packet = 0;
	x->read_fd = -1;
	crac_obj_pipe_scans++;
	if (rc < 0)
		return (int)rc;
	while ((v = crac_obj_fds_next(&fds)) >= 0) {
		struct stat st;
		if (sys_fstat(v, &st) < 0)
			continue;
		if (st.st_ino != d->st.st_ino || st.st_dev != d->st.st_dev || !S_ISFIFO(st.st_mode))
			continue;
		count_end(x, v);
	}
	crac_obj_fds_close(&fds);
	return fds.err < 0 ? (int)fds.err : 0;
}

/*
 * Every descriptor of the process that is an end of the object d is
 * (same device and inode), d included. `need`: what the caller must find
 * (NEED_READER, NEED_WRITER, NEED_READ_FD); without it in the index's
 * answer, a fresh scan decides. 0 or -errno.
 */
#define NEED_READER 0x1
#define NEED_WRITER 0x2
#define NEED_READ_FD 0x4

/* Does the kernel prove that what `need` asks for exists nowhere? A read
 * end with POLLHUP: no writer is left (in any process); a write end with
 * POLLERR: no reader is left. (A FIFO's reader that never saw a writer
 * gets no POLLHUP: not proven, the scan decides.) */
static int proven_absent(const struct crac_obj_fd *d, int need)
{
	uint32_t acc = d->flags & O_ACCMODE;
	struct pollfd p = { .fd = d->fd, .events = POLLIN | POLLOUT };

	if (acc == O_RDWR || sys_poll(&p, 1, 0) <= 0)
		return 0;
	if (acc == O_RDONLY)
		return (need & ~NEED_WRITER) == 0 && (p.revents & POLLHUP);
	return (need & ~(NEED_READER | NEED_READ_FD)) == 0 && (p.revents & POLLERR);
}

/*
 * Several threads may probe at once (the safety checks of crac_check, the
 * control endpoint's check): the index and its buffer are one thread's at
 * a time. A probe that finds them taken scans with a buffer of its own
 * (slower: one scan per end). The capture takes no lock: every other
 * thread is stopped then, and one stopped while holding it is not using
 * it; an index left half built is only candidates, each checked again.
 */
static int idx_busy;

static int probe_ends(const struct crac_obj_fd *d, struct ends *x)
{
	char dents[2048] __attribute__((aligned(8)));

	return scan_ends(d, x, dents, sizeof(dents));
}

static int find_ends_indexed(const struct crac_obj_capture *c, const struct crac_obj_fd *d, int need,
			     struct ends *x);

static int find_ends(const struct crac_obj_capture *c, const struct crac_obj_fd *d, int need, struct ends *x)
{
	if (c->pages_fd >= 0)
		return find_ends_indexed(c, d, need, x);
	if (__atomic_exchange_n(&idx_busy, 1, __ATOMIC_ACQUIRE))
		return probe_ends(d, x);
	int rc = find_ends_indexed(c, d, need, x);
	__atomic_store_n(&idx_busy, 0, __ATOMIC_RELEASE);
	return rc;
}

#define PROBE_REBUILDS 4

static int find_ends_indexed(const struct crac_obj_capture *c, const struct crac_obj_fd *d, int need,
			     struct ends *x)
{
	static char dents[4096] __attribute__((aligned(8)));
	int rc;

	/* a new pass (another capture or probe, or numbers starting again): a new index */
	if (c != idx_pass || d->fd <= idx_last_fd) {
		n_idx = -1;
		idx_rebuilds = 0;
	}
	idx_pass = c;
	idx_last_fd = d->fd;
	for (int fresh = 0; fresh < 2; fresh++) {
		if (n_idx < 0 || fresh) {
			if ((rc = build_sorted()) < 0)
				return rc;
			idx_final = c == final_pass;
		}
		if (n_idx < 0)
			return scan_ends(d, x, dents, sizeof(dents));
		if (!count_ends(d, x))
			continue;   /* the index does not know d: newer than it */
		int missing = ((need & NEED_READER) && !x->readers ? NEED_READER : 0) |
			      ((need & NEED_WRITER) && !x->writers ? NEED_WRITER : 0) |
			      ((need & NEED_READ_FD) && x->read_fd < 0 ? NEED_READ_FD : 0);
		/* a negative answer: final only from a fresh scan, of which a
		 * probe makes at most PROBE_REBUILDS; after that the index of
		 * this pass (at most one pass old) answers. Else a probe of N
		 * ends whose other end another process holds (no poll proves
		 * it absent) costs N scans of N descriptors. A probe's answer
		 * is advice: the capture, with the threads stopped, decides. */
		if (missing && !fresh && !idx_final && !proven_absent(d, missing) &&
		    idx_rebuilds < PROBE_REBUILDS) {
			idx_rebuilds++;
			continue;
		}
		return 0;
	}
	return 0;
}

/* Is entry i the first of object e->obj of its kind (it carries the content)? */
static int first_of(const struct crac_obj_capture *c, uint32_t i, const struct crac_img_fd *e)
{
	for (uint32_t k = 0; k < i; k++)
		if (c->fds[k].kind == e->kind && c->fds[k].obj == e->obj)
			return 0;
	return 1;
}

/*
 * Copies the unread content of the pipe that rfd reads into the pages
 * file for e, without taking it out: tee(2) into a private pipe of the
 * same size, then read that. Large content goes in parts the size of the
 * scratch space (page multiples, so that crac_obj_put_data keeps them
 * contiguous). 0 or -errno and why.
 */
static int copy_content(struct crac_obj_capture *c, int rfd, uint64_t size, struct crac_img_fd *e,
			struct crac_img_buf *why)
{
	int unread = 0, priv[2];
	long rc;

	if (sys_ioctl(rfd, FIONREAD, &unread) < 0 || unread <= 0)
		return 0;
	if (c->pages_fd < 0)
		return 0;   /* probe: nothing is copied */
	if ((rc = sys_pipe2(priv, O_NONBLOCK | O_CLOEXEC)) < 0) {
		crac_img_puts(why, "cannot create a pipe to copy its unread content into");
		return (int)rc;
	}
	long cur = sys_fcntl(priv[1], F_GETPIPE_SZ, 0);
	if (cur >= 0 && (uint64_t)cur < size && (rc = sys_fcntl(priv[1], F_SETPIPE_SZ, size)) < 0) {
		crac_img_puts(why, "cannot create a pipe as large as it to copy its unread content into");
		goto out;
	}
	/* one call: a second tee would copy the same bytes again */
	rc = sys_tee(rfd, priv[1], (uint64_t)unread, SPLICE_NONBLOCK);
	if (rc != unread) {
		crac_img_puts(why, "its unread content could not be copied (tee)");
		rc = rc < 0 ? rc : -EIO;
		goto out;
	}
	uint64_t cap = c->scratch_cap & ~(uint64_t)(P - 1), total = 0;
	uint32_t crc = 0;
	struct crac_img_fd part;
	int first = 1;
	for (int eof = 0; !eof;) {
		uint64_t got = 0;
		while (got < cap) {
			long n = sys_read(priv[0], c->scratch + got, cap - got);
			if (n == -EINTR)
				continue;
			if (n <= 0) {
				eof = 1;
				break;
			}
			got += (uint64_t)n;
		}
		if (!got)
			break;
		if ((rc = crac_obj_put_data(c, &part, c->scratch, got)) < 0) {
			crac_img_puts(why, "cannot write its unread content to the image");
			goto out;
		}
		if (first)
			e->data_off = part.data_off;
		first = 0;
		crc = crac_img_crc32c(crc, c->scratch, got);
		total += got;
	}
	if (total != (uint64_t)unread) {
		crac_img_puts(why, "its unread content could not be copied completely");
		rc = -EIO;
		goto out;
	}
	e->data_len = total;
	e->data_crc = crc;
	rc = 0;
out:
	sys_close(priv[0]);
	sys_close(priv[1]);
	return (int)rc;
}

/* One part of the unread content written into the pipe *(int *)arg writes. */
static long write_part(void *arg, const char *part, long n, uint64_t at, struct crac_img_buf *why)
{
	int wfd = *(int *)arg;

	(void)at;
	for (long w = 0; w < n;) {
		long m = sys_write(wfd, part + w, (uint64_t)(n - w));
		if (m == -EINTR)
			continue;
		if (m <= 0) {
			crac_img_puts(why, "its unread content does not fit in it again");
			return m < 0 ? m : -EIO;
		}
		w += m;
	}
	return 0;
}

/* The content of entry e written into the pipe wfd writes (nonblocking).
 * Read from the pages file in parts, checksum checked. 0 or -errno. */
static long write_content(struct crac_obj_restore *r, const struct crac_img_fd *e, int wfd,
			  struct crac_img_buf *why)
{
	static char buf[65536];

	return crac_obj_stream_data(r, e, buf, sizeof(buf), "its unread content", write_part, &wfd, why);
}

static void put_size(struct crac_img_buf *why, const char *what, uint64_t size)
{
	crac_img_puts(why, what);
	crac_img_putu(why, size);
	crac_img_puts(why, " bytes");
}

/* ---- before the point of no return -------------------------------------------------------- */

int crac_obj_pipe_check(const struct crac_img_fd *e, struct crac_img_buf *why)
{
	uint64_t size = e->kind == CRAC_OBJ_FIFO ? e->u[2] : e->u[0];
	int p[2];
	long rc;

	if (size <= 65536)
		return 0;   /* what any pipe gets */
	if ((rc = sys_pipe2(p, O_CLOEXEC)) < 0) {
		crac_img_puts(why, "cannot create a pipe");
		crac_img_put_err(why, rc);
		return (int)rc;
	}
	rc = size > 0x7fffffff ? -EINVAL : sys_fcntl(p[1], F_SETPIPE_SZ, size);
	sys_close(p[0]);
	sys_close(p[1]);
	if (rc >= 0)
		return 0;
	put_size(why, "a pipe of ", size);
	crac_img_puts(why, rc == -EPERM ? " cannot be made here (above fs.pipe-max-size it takes CAP_SYS_RESOURCE, and "
					  "a user's pipes are limited in total: fs.pipe-user-pages-*)"
				    : " cannot be made here");
	crac_img_put_err(why, rc);
	return (int)rc;
}

/* ---- pipes ---------------------------------------------------------------------------- */

static int pipe_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			struct crac_img_fd *e, struct crac_img_buf *why)
{
	struct ends x;
	uint32_t acc = d->flags & O_ACCMODE;
	int rc = find_ends(c, d, (acc == O_RDONLY ? NEED_WRITER : acc == O_WRONLY ? NEED_READER : 0) | NEED_READ_FD, &x);

	if (rc < 0) {
		crac_img_puts(why, "cannot list the descriptors of the process (/proc/self/fd)");
		return rc;
	}
	/* the other end: held here, or closed everywhere (poll says so) */
	int need_writer = acc == O_RDONLY, need_reader = acc == O_WRONLY;
	if ((need_writer && !x.writers) || (need_reader && !x.readers)) {
		struct pollfd p = { .fd = d->fd, .events = need_writer ? POLLIN : POLLOUT };
		long n = sys_poll(&p, 1, 0);
		int closed = n > 0 && (p.revents & (need_writer ? POLLHUP : POLLERR));
		if (!closed) {
			crac_img_puts(why, "its other end is not in this process (a pipe to another process cannot be carried)");
			return -ENOTSUP;
		}
	}
	long size = sys_fcntl(d->fd, F_GETPIPE_SZ, 0);
	e->u[0] = size > 0 ? (uint64_t)size : 0;
	if (!first_of(c, i, e) || x.read_fd < 0)
		return 0;   /* an earlier end carries the content; or no one can read it */
	int unread = 0;
	if (x.packet && sys_ioctl(x.read_fd, FIONREAD, &unread) >= 0 && unread > 0) {
		crac_img_puts(why, "its unread content was written in packet mode (O_DIRECT): "
				   "the packet boundaries cannot be kept");
		return -ENOTSUP;
	}
	e->u[1] |= PIPE_F_CONTENT;
	return copy_content(c, x.read_fd, e->u[0], e, why);
}

/* Makes sure the temporary descriptor *t is not at number n (moves it). */
static long move_off(long *t, int n)
{
	if (*t != n)
		return 0;
	long m = sys_fcntl(*t, F_DUPFD_CLOEXEC, 0);
	if (m < 0)
		return m;
	sys_close(*t);
	*t = m;
	return 0;
}

/* A new open file of the pipe fd is an end of, through /proc/self/fd. */
static long reopen(long fd, uint32_t acc)
{
	char path[40] = "/proc/self/fd/";
	struct crac_img_buf b = { path, 14, sizeof(path) };

	crac_img_putu(&b, (uint64_t)fd);
	return sys_openat(AT_FDCWD, path, (int)acc | O_NONBLOCK | O_CLOEXEC);
}

static long pipe_restore(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	const struct crac_img_view *v = r->v;
	const struct crac_img_fd *e = &v->fds[i];
	int p[2];
	long rc = sys_pipe2(p, O_NONBLOCK | O_CLOEXEC);

	if (rc < 0) {
		crac_img_puts(why, "cannot create a pipe");
		return rc;
	}
	long rd = p[0], wr = p[1];
	int rd_temp = 1, wr_temp = 1;   /* still ours to close (not placed) */
	long cur = sys_fcntl(wr, F_GETPIPE_SZ, 0);
	if (e->u[0] && cur >= 0 && (uint64_t)cur != e->u[0] && (rc = sys_fcntl(wr, F_SETPIPE_SZ, e->u[0])) < 0) {
		put_size(why, "cannot make a pipe of its size again: ", e->u[0]);
		goto out;
	}
	/* the content, then every end of this pipe, in number order */
	for (uint32_t k = i; k < v->h->n_fds; k++) {
		const struct crac_img_fd *f = &v->fds[k];
		if (f->kind != CRAC_OBJ_PIPE || f->obj != e->obj || f->same_as != CRAC_IMG_NO_FD || r->done[k])
			continue;
		if (f->data_len && (rc = write_content(r, f, (int)wr, why)) < 0)
			goto out;
	}
	for (uint32_t k = i; k < v->h->n_fds; k++) {
		const struct crac_img_fd *f = &v->fds[k];
		if (f->kind != CRAC_OBJ_PIPE || f->obj != e->obj || f->same_as != CRAC_IMG_NO_FD || r->done[k])
			continue;
		uint32_t acc = f->flags & O_ACCMODE;
		long nfd;
		if (acc == O_RDONLY && rd_temp) {
			nfd = rd;
		} else if (acc == O_WRONLY && wr_temp) {
			nfd = wr;
		} else if ((nfd = reopen(acc == O_WRONLY ? wr : rd, acc)) < 0) {
			rc = nfd;
			crac_img_puts(why, "cannot open another end of its pipe (/proc/self/fd)");
			goto out;
		}
		/* the temporaries must not sit where this end goes */
		if ((nfd != rd && rd_temp && (rc = move_off(&rd, f->fd)) < 0) ||
		    (nfd != wr && wr_temp && (rc = move_off(&wr, f->fd)) < 0)) {
			if (nfd != rd && nfd != wr)
				sys_close(nfd);
			crac_img_puts(why, "no descriptor free");
			goto out;
		}
		rc = crac_obj_place(r, k, nfd);   /* closes nfd if it moved (or failed) */
		if (rc < 0) {
			rd_temp &= nfd != rd;
			wr_temp &= nfd != wr;
			crac_img_puts(why, "cannot put it at its number");
			goto out;
		}
		/* a placed temporary stays as that end (still usable for reopen) */
		if (nfd == rd) {
			rd = f->fd;
			rd_temp = 0;
		} else if (nfd == wr) {
			wr = f->fd;
			wr_temp = 0;
		}
	}
	rc = 0;
out:
	if (rd_temp)
		sys_close(rd);
	if (wr_temp)
		sys_close(wr);
	return rc;
}

const struct crac_obj_ops crac_obj_pipe_ops = {
	.name = "pipe",
	.capture = pipe_capture,
	.restore = pipe_restore,
};

/* ---- FIFOs ---------------------------------------------------------------------------------- */

/* The birth time of the file fd is open on (statx), in ns; -1 if the
 * file system does not tell. */
static int64_t birth_ns(long fd)
{
	/* struct statx: stx_mask at 0, stx_btime (tv_sec, tv_nsec) at 80 */
	uint64_t buf[32];
	memset(buf, 0, sizeof(buf));
	if (sys_statx(fd, "", AT_EMPTY_PATH, STATX_BTIME_, buf) < 0 || !((uint32_t)buf[0] & STATX_BTIME_))
		return -1;
	return (int64_t)buf[10] * 1000000000LL + (int64_t)(uint32_t)buf[11];
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !memcmp(s + a - b, suffix, b);
}

static int fifo_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			struct crac_img_fd *e, struct crac_img_buf *why)
{
	struct ends x;
	int rc;

	if (d->link[0] != '/') {
		crac_img_puts(why, "it has no path that could be opened again");
		return -ENOTSUP;
	}
	if (ends_with(d->link, " (deleted)")) {
		crac_img_puts(why, "the FIFO is deleted: it cannot be opened again");
		return -ENOENT;
	}
	e->u[0] = d->st.st_dev;
	e->u[1] = d->st.st_ino;
	long size = sys_fcntl(d->fd, F_GETPIPE_SZ, 0);
	e->u[2] = size > 0 ? (uint64_t)size : 0;
	int64_t born = birth_ns(d->fd);
	if (born >= 0) {
		e->u[3] |= PIPE_F_BTIME;
		e->u[4] = (uint64_t)born;
	}
	if ((rc = crac_obj_put_path(c, i, d->link)) < 0) {
		crac_img_puts(why, "no room for its path");
		return rc;
	}
	if (!first_of(c, i, e))
		return 0;
	if ((rc = find_ends(c, d, NEED_READ_FD, &x)) < 0) {
		crac_img_puts(why, "cannot list the descriptors of the process (/proc/self/fd)");
		return rc;
	}
	if (x.read_fd < 0)
		return 0;   /* written only: its content belongs to its readers */
	int unread = 0;
	if (x.packet && sys_ioctl(x.read_fd, FIONREAD, &unread) >= 0 && unread > 0) {
		crac_img_puts(why, "its unread content was written in packet mode (O_DIRECT): "
				   "the packet boundaries cannot be kept");
		return -ENOTSUP;
	}
	e->u[3] |= PIPE_F_CONTENT;
	return copy_content(c, x.read_fd, e->u[2], e, why);
}

static long fifo_restore(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	const struct crac_img_fd *e = &r->v->fds[i];
	const char *path = crac_img_str(r->v, e->path);
	uint32_t acc = e->flags & O_ACCMODE;
	int flags = (int)acc | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;
	long tmp = -1, wtmp = -1, rc;
	struct stat st;

	long fd = sys_openat(AT_FDCWD, path, flags);
	if (fd == -ENXIO) {
		/* a writer without a reader: be the reader while opening it */
		tmp = sys_openat(AT_FDCWD, path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
		if (tmp < 0)
			tmp = sys_openat(AT_FDCWD, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
		if (tmp < 0) {
			crac_img_puts(why, "no process reads the FIFO, and it cannot be opened for reading while "
					   "its writing end is opened");
			return tmp;
		}
		fd = sys_openat(AT_FDCWD, path, flags);
	}
	if (fd < 0) {
		crac_img_puts(why, "cannot open it again");
		rc = fd;
		goto out;
	}
	int64_t born = (e->u[3] & PIPE_F_BTIME) ? birth_ns(fd) : -1;
	if ((rc = sys_fstat(fd, &st)) < 0 || !S_ISFIFO(st.st_mode) || st.st_dev != e->u[0] ||
	    st.st_ino != e->u[1] || (born >= 0 && (uint64_t)born != e->u[4])) {
		crac_img_puts(why, "changed since the checkpoint (it is not the same FIFO)");
		rc = -ESTALE;
		goto fail;
	}
	long cur = sys_fcntl(fd, F_GETPIPE_SZ, 0);
	if (e->u[2] && cur >= 0 && (uint64_t)cur < e->u[2] && (rc = sys_fcntl(fd, F_SETPIPE_SZ, e->u[2])) < 0) {
		put_size(why, "cannot make its pipe as large as it was: ", e->u[2]);
		goto fail;
	}
	int unread = 0;
	if (e->data_len && sys_ioctl(fd, FIONREAD, &unread) >= 0 && unread == 0) {
		/* empty: the pipe the content was in is gone with the
		 * checkpointed process; write it again */
		long w = acc != O_RDONLY ? fd : (wtmp = sys_openat(AT_FDCWD, path, O_WRONLY | O_NONBLOCK | O_CLOEXEC |
											       O_NOFOLLOW));
		if (w < 0) {
			crac_img_puts(why, "cannot open it for writing to give back its unread content");
			rc = w;
			goto fail;
		}
		if ((rc = write_content(r, e, (int)w, why)) < 0)
			goto fail;
	}
	if ((rc = crac_obj_place(r, i, fd)) < 0)
		crac_img_puts(why, "cannot put it at its number");
	goto out;
fail:
	sys_close(fd);
out:
	if (wtmp >= 0)
		sys_close(wtmp);
	if (tmp >= 0)
		sys_close(tmp);
	return rc;
}

const struct crac_obj_ops crac_obj_fifo_ops = {
	.name = "fifo",
	.capture = fifo_capture,
	.restore = fifo_restore,
};
