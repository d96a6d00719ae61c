/* SPDX-License-Identifier: MIT */
/*
 * memfd.c - memfd_create(2) files: name, size, content, file mode, seals,
 * offset.
 *
 * Capture: the name from the link ("/memfd:NAME (deleted)"), the content
 * read with pread(2) (the offset of the program's open file is not moved)
 * into the pages file, up to MEMFD_MAX bytes (64 MiB): a larger memfd is
 * refused with its size, the image is no place for it. The seals
 * (F_GET_SEALS; a memfd made without MFD_ALLOW_SEALING reads as F_SEAL_SEAL).
 * A hugetlb memfd (MFD_HUGETLB) is refused.
 *
 * A memfd the process also has mapped is refused: the image engine
 * restores a shared mapping of a memfd as shared memory of its own
 * (CRAC_MAP_SHMEM, content copied, sharing lost), so after a restore the
 * mapping and the descriptor would be two different memories, and what
 * the program writes through one would no longer be seen through the
 * other. Closing the descriptor before the checkpoint (once mapped it is
 * not needed) makes such a program restorable; mappings of a memfd without
 * its descriptor are restored by the engine as before.
 *
 * Restore: memfd_create(NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING, and
 * MFD_NOEXEC_SEAL if it was sealed against exec, else MFD_EXEC if its mode
 * let anyone execute it: as it was, whatever vm.memfd_noexec says), the
 * file mode (fchmod), the size (ftruncate), the content written where it is not
 * zero (zero pages stay holes), the offset, then the seals (F_ADD_SEALS:
 * last, since they may forbid writing and resizing).
 *
 * A second open file of the same memfd (opened again through
 * /proc/self/fd, not a dup: its own offset and access mode) carries no
 * content: at restore it is opened through /proc/self/fd of the first one,
 * which is in place by then (entries go in number order).
 *
 * Kind-specific words of struct crac_img_fd:
 *   u[0] size   u[1] seals   u[2] offset   u[3] file mode (07777 bits)
 *   u[4] MEMFD_F_* flags
 *   path: the name (without "/memfd:" and " (deleted)")
 *   content: data_off, data_len (= size), data_crc in the pages file
 */
#include "objects/objects.h"

#include <errno.h>
#include <fcntl.h>

#define P CRAC_IMG_PAGE
#define MEMFD_MAX (64ull << 20)
#define MEMFD_F_AGAIN 0x1u        /* another open file of an earlier entry's memfd */

#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#endif
#define MFD_CLOEXEC_ 0x1u
#define MFD_ALLOW_SEALING_ 0x2u
#define MFD_NOEXEC_SEAL_ 0x8u      /* Linux 6.3: not executable, F_SEAL_EXEC set */
#define MFD_EXEC_ 0x10u            /* Linux 6.3: executable, whatever vm.memfd_noexec asks for */
#define F_SEAL_EXEC_ 0x20u
#define HUGETLBFS_MAGIC_ 0x958458f6

#define sys_memfd_create(name, fl) SYS(SYS_memfd_create, name, fl, 0, 0, 0, 0)
#define sys_fchmod(fd, mode) SYS(SYS_fchmod, fd, mode, 0, 0, 0, 0)
#define sys_fstatfs(fd, buf) SYS(SYS_fstatfs, fd, buf, 0, 0, 0, 0)

static const char prefix[] = "/memfd:", suffix[] = " (deleted)";

static char *memchr_(char *s, char ch, long n)
{
	for (long k = 0; k < n; k++)
		if (s[k] == ch)
			return s + k;
	return 0;
}

/* Is the memfd (dev, ino) mapped by the process? Returns the address of
 * the first mapping, 0 if none (or /proc/self/maps unreadable: the engine
 * reads it too and says so). */
static uint64_t mapped_at(const struct stat *st, char *buf, uint64_t size)
{
	long fd = sys_openat(AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
	uint64_t have = 0, found = 0;

	if (fd < 0)
		return 0;
	for (;;) {
		long n = sys_read(fd, buf + have, size - 1 - have);
		if (n <= 0)
			break;
		have += (uint64_t)n;
		buf[have] = 0;
		char *line = buf, *nl;
		while (!found && (nl = memchr_(line, '\n', buf + have - line))) {
			/* start-end perms offset dev inode   path */
			uint64_t start = 0, ino = 0;
			char *q = line;
			for (; (*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f'); q++)
				start = start * 16 + (uint64_t)(*q <= '9' ? *q - '0' : *q - 'a' + 10);
			for (int field = 0; field < 4 && q < nl; field++) {
				while (q < nl && *q != ' ')
					q++;
				while (q < nl && *q == ' ')
					q++;
			}
			for (; q < nl && *q >= '0' && *q <= '9'; q++)
				ino = ino * 10 + (uint64_t)(*q - '0');
			while (q < nl && *q == ' ')
				q++;
			if (ino == st->st_ino && (uint64_t)(nl - q) >= sizeof(prefix) - 1 &&
			    !memcmp(q, prefix, sizeof(prefix) - 1))
				found = start ? start : 1;
			line = nl + 1;
		}
		if (found)
			break;
		/* keep the unfinished line */
		have = (uint64_t)(buf + have - line);
		memmove(buf, line, have);
		if (have >= size - 1)
			have = 0;   /* a line longer than the buffer: its path is not a memfd's we need */
	}
	sys_close(fd);
	return found;
}

/* A probe's look: several threads may probe at once (the safety checks of
 * crac_check): a buffer of its own. */
static uint64_t probe_mapped_at(const struct stat *st)
{
	char buf[4096];

	return mapped_at(st, buf, sizeof(buf));
}

static int memfd_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			 struct crac_img_fd *e, struct crac_img_buf *why)
{
	static char maps[8192];      /* full capture: only the checkpointing thread runs */
	char name[256];              /* a memfd's name has 249 bytes at most */
	uint64_t statfs[16];
	long rc;

	/* the name: between "/memfd:" and the last " (deleted)" */
	size_t len = strlen(d->link);
	if (memcmp(d->link, prefix, sizeof(prefix) - 1) || len < sizeof(prefix) - 1 + sizeof(suffix) - 1 ||
	    memcmp(d->link + len - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1)) {
		crac_img_puts(why, "its name cannot be read from its link");
		return -ENOTSUP;
	}
	len -= sizeof(prefix) - 1 + sizeof(suffix) - 1;
	if (len >= sizeof(name)) {   /* not a memfd's name */
		crac_img_puts(why, "its name cannot be read from its link");
		return -ENOTSUP;
	}
	memcpy(name, d->link + sizeof(prefix) - 1, len);
	name[len] = 0;
	if (sys_fstatfs(d->fd, statfs) == 0 && (uint32_t)statfs[0] == HUGETLBFS_MAGIC_) {
		crac_img_puts(why, "a hugetlb memfd (MFD_HUGETLB) is not carried");
		return -ENOTSUP;
	}
	uint64_t at = c->pages_fd < 0 ? probe_mapped_at(&d->st) : mapped_at(&d->st, maps, sizeof(maps));
	if (at) {
		crac_img_puts(why, "it is also mapped by the process (at ");
		crac_img_putx(why, at);
		crac_img_puts(why, "): a restored mapping is a copy of its own, no longer the memfd's memory; "
				   "close the descriptor before the checkpoint, or unmap it");
		return -ENOTSUP;
	}
	uint64_t size = (uint64_t)d->st.st_size;
	if (size > MEMFD_MAX) {
		crac_img_puts(why, "it is too large to be carried (");
		crac_img_putu(why, size);
		crac_img_puts(why, " bytes; at most ");
		crac_img_putu(why, MEMFD_MAX);
		crac_img_puts(why, " are stored in an image)");
		return -EFBIG;
	}
	rc = sys_fcntl(d->fd, F_GET_SEALS, 0);
	e->u[0] = size;
	e->u[1] = rc > 0 ? (uint64_t)rc : 0;
	e->u[2] = d->pos;
	e->u[3] = d->st.st_mode & 07777;
	if ((rc = crac_obj_put_path(c, i, name)) < 0) {
		crac_img_puts(why, "no room for its name");
		return (int)rc;
	}
	for (uint32_t k = 0; k < i; k++)
		if (c->fds[k].kind == CRAC_OBJ_MEMFD && c->fds[k].obj == e->obj && c->fds[k].same_as == CRAC_IMG_NO_FD) {
			e->u[4] |= MEMFD_F_AGAIN;   /* the content is the earlier one's */
			return 0;
		}
	if (c->pages_fd < 0 || !size)
		return 0;   /* probe: nothing is read */
	/* the content, in parts of the scratch space (page multiples, so
	 * that crac_obj_put_data keeps them contiguous) */
	uint64_t cap = c->scratch_cap & ~(uint64_t)(P - 1);
	uint32_t crc = 0;
	struct crac_img_fd part;
	for (uint64_t done = 0; done < size;) {
		uint64_t want = size - done < cap ? size - done : cap, got = 0;
		while (got < want) {
			long n = sys_pread(d->fd, c->scratch + got, want - got, done + got);
			if (n == -EINTR)
				continue;
			if (n <= 0) {
				crac_img_puts(why, "cannot read its content");
				return n < 0 ? (int)n : -EIO;
			}
			got += (uint64_t)n;
		}
		if ((rc = crac_obj_put_data(c, &part, c->scratch, got)) < 0) {
			crac_img_puts(why, "cannot write its content to the image");
			return (int)rc;
		}
		if (!done)
			e->data_off = part.data_off;
		crc = crac_img_crc32c(crc, c->scratch, got);
		done += got;
	}
	e->data_len = size;
	e->data_crc = crc;
	return 0;
}

static int all_zero(const char *p, uint64_t n)
{
	for (uint64_t k = 0; k < n; k++)
		if (p[k])
			return 0;
	return 1;
}

/* Entry i is another open file of an earlier entry's memfd: opened again
 * through /proc/self/fd of that one, with its own access mode and offset. */
static long memfd_again(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	const struct crac_img_fd *e = &r->v->fds[i];
	char path[40] = "/proc/self/fd/";
	struct crac_img_buf b = { path, 14, sizeof(path) };
	uint32_t k;
	long rc;

	for (k = 0; k < i; k++) {
		const struct crac_img_fd *f = &r->v->fds[k];
		if (f->kind == CRAC_OBJ_MEMFD && f->obj == e->obj && f->same_as == CRAC_IMG_NO_FD &&
		    !(f->u[4] & MEMFD_F_AGAIN) && r->done[k])
			break;
	}
	if (k == i) {
		crac_img_puts(why, "the memfd it is another open file of is not in the image");
		return -EINVAL;
	}
	crac_img_putu(&b, (uint64_t)r->v->fds[k].fd);
	long fd = sys_openat(AT_FDCWD, path, (int)(e->flags & O_ACCMODE) | O_CLOEXEC);
	if (fd < 0) {
		crac_img_puts(why, "cannot open its memfd again (/proc/self/fd)");
		return fd;
	}
	if (e->u[2] && (rc = sys_lseek(fd, (long)e->u[2], 0)) < 0) {
		sys_close(fd);
		crac_img_puts(why, "cannot seek to its offset");
		return rc;
	}
	if ((rc = crac_obj_place(r, i, fd)) < 0)
		crac_img_puts(why, "cannot put it at its number");
	return rc;
}

/* One part of the content, at `at`, written into the memfd *(long *)arg
 * page by page: zero pages stay holes. */
static long write_part(void *arg, const char *part, long n, uint64_t at, struct crac_img_buf *why)
{
	long fd = *(long *)arg;

	for (long off = 0; off < n; off += (long)P) {
		long len = n - off < (long)P ? n - off : (long)P;
		if (all_zero(part + off, (uint64_t)len))
			continue;
		for (long w = 0; w < len;) {
			long m = sys_pwrite(fd, part + off + w, (uint64_t)(len - w), at + (uint64_t)(off + w));
			if (m == -EINTR)
				continue;
			if (m <= 0) {
				crac_img_puts(why, "cannot write its content");
				return m < 0 ? m : -EIO;
			}
			w += m;
		}
	}
	return 0;
}

/* executable or not as it was: without either flag, vm.memfd_noexec=1
 * (a setting of the pid namespace) makes it sealed against exec, and the
 * mode of one made executable could not be set again */
static uint32_t exec_flag(const struct crac_img_fd *e)
{
	return (e->u[1] & F_SEAL_EXEC_) ? MFD_NOEXEC_SEAL_ : (e->u[3] & 0111) ? MFD_EXEC_ : 0;
}

/* A memfd as entry e needs, made (before Linux 6.3, which has neither
 * flag, every memfd is executable); or -errno and why. */
static long memfd_make(const struct crac_img_fd *e, const char *name, struct crac_img_buf *why)
{
	uint32_t exec = exec_flag(e);
	long fd = sys_memfd_create(name, MFD_CLOEXEC_ | MFD_ALLOW_SEALING_ | exec);

	if (fd == -EINVAL && exec)
		fd = sys_memfd_create(name, MFD_CLOEXEC_ | MFD_ALLOW_SEALING_);
	if (fd < 0)
		crac_img_puts(why, fd == -EACCES && exec == MFD_EXEC_
				   ? "cannot create an executable memfd (vm.memfd_noexec=2 forbids them here)"
				   : "cannot create a memfd");
	return fd;
}

int crac_obj_memfd_check(const struct crac_img_fd *e, struct crac_img_buf *why)
{
	if (e->u[4] & MEMFD_F_AGAIN)
		return 0;   /* the earlier entry's memfd, checked there */
	long fd = memfd_make(e, "crac-check", why);
	if (fd < 0) {
		crac_img_put_err(why, fd);
		return (int)fd;
	}
	sys_close(fd);
	return 0;
}

static long memfd_restore(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	static char buf[65536];
	const struct crac_img_fd *e = &r->v->fds[i];
	const char *name = e->path ? crac_img_str(r->v, e->path) : "";
	long rc, fd;

	if (e->u[4] & MEMFD_F_AGAIN)
		return memfd_again(r, i, why);
	fd = memfd_make(e, name, why);
	if (fd < 0)
		return fd;
	if ((rc = sys_fchmod(fd, e->u[3])) < 0) {
		crac_img_puts(why, "cannot set its file mode");
		goto fail;
	}
	if ((rc = sys_ftruncate(fd, e->u[0])) < 0) {
		crac_img_puts(why, "cannot make it as large as it was");
		goto fail;
	}
	if (e->data_len != e->u[0]) {
		crac_img_puts(why, "its content in the image is not as large as it is");
		rc = -EINVAL;
		goto fail;
	}
	if ((rc = crac_obj_stream_data(r, e, buf, sizeof(buf), "its content", write_part, &fd, why)) < 0)
		goto fail;
	if (e->u[2] && (rc = sys_lseek(fd, (long)e->u[2], 0)) < 0) {
		crac_img_puts(why, "cannot seek to its offset");
		goto fail;
	}
	if (e->u[1] && (rc = sys_fcntl(fd, F_ADD_SEALS, e->u[1])) < 0) {
		crac_img_puts(why, "cannot seal it again");
		goto fail;
	}
	if ((rc = crac_obj_place(r, i, fd)) < 0)
		crac_img_puts(why, "cannot put it at its number");
	return rc;
fail:
	sys_close(fd);
	return rc;
}

const struct crac_obj_ops crac_obj_memfd_ops = {
	.name = "memfd",
	.capture = memfd_capture,
	.restore = memfd_restore,
};
