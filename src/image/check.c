/* SPDX-License-Identifier: MIT */
/*
 * check.c - can this image be restored here, by this user?
 *
 * Shared by the restore loader (before its point of no return), `crac
 * inspect` and the image engine (on the image it just wrote): see check.h.
 * Freestanding: raw system calls (loader/sys.h), no libc, no allocation,
 * small stack buffers only.
 *
 * What an image is trusted with is decided here, so each rule is written
 * once:
 *   owner    an image is code: the restoring user must own it, and nobody
 *            else may be able to write it (unless --trust-owner)
 *   layout   every address the loader will use is possible: nothing in the
 *            loader's reserved range, above user space or below
 *            vm.mmap_min_addr; the vDSO block is where its mappings say;
 *            file mappings start inside their file and store no page past
 *            its end (PROT_NONE ones neither), and none ends past the
 *            largest offset of a file (2^63 - 1); every mapping record is
 *            one the image engine writes (only a file mapping names a
 *            file, and by its path; anonymous memory, heap and stack
 *            private, one [stack] and one heap; a shared file mapping
 *            stores no page); the brk/arg/env fields are ordered as the
 *            kernel requires; the resume block lies in stored, writable
 *            memory
 *   pages    the pages file has the recorded size, and the resume block
 *            read from it is a resume block whose code and stack exist
 *   cpu      recorded CPU features present; AMX permission granted
 *   vdso     this kernel's [vvar]/[vvar_vclock]/[vdso] have the recorded
 *            layout and code (glibc cached its entry points)
 *   process  PR_SET_MM_MAP works here and RLIMIT_DATA admits the brk area;
 *            RLIMIT_AS the mappings, and the overcommit heuristic each one;
 *            the restoring process runs under at least the seccomp filters
 *            the checkpointed one did (they cannot be made again)
 *   files    every mapped file is the one the image saw: same device,
 *            inode, size, mtime and ctime (no write can keep the ctime, and
 *            setting the mtime back moves it); with CRAC_IMG_VERIFY_FILES,
 *            also the checksums of its first and last page; a file mapped
 *            executable is not on a file system mounted noexec
 *   fds      every file, directory, device and FIFO a carried descriptor
 *            names is the one the image saw (objects/file.c)
 */
#include "image/check.h"
#include "loader/sys.h"
#include "objects/objects.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/prctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>

#define P CRAC_IMG_PAGE
#define USER_TOP (1ull << 47)

#ifndef ARCH_REQ_XCOMP_PERM
#define ARCH_REQ_XCOMP_PERM 0x1023
#endif
#define XFEATURE_XTILEDATA 18
#define RLIMIT_DATA_ 2
#define RLIMIT_AS_ 9
#define ST_NOEXEC_ 8   /* statfs f_flags: mounted noexec (the kernel's ST_NOEXEC) */

/* ---- messages ------------------------------------------------------------- */

static const char *errname(long e)
{
	switch (e < 0 ? -e : e) {
	case EPERM: return "Operation not permitted";
	case ENOENT: return "No such file or directory";
	case EACCES: return "Permission denied";
	case EEXIST: return "File exists (address already in use)";
	case EINVAL: return "Invalid argument";
	case ENOMEM: return "Cannot allocate memory";
	case EFAULT: return "Bad address";
	case EMFILE: return "Too many open files";
	case EBUSY: return "Device or resource busy";
	case EIO: return "Input/output error";
	case ENOTDIR: return "Not a directory";
	case EISDIR: return "Is a directory";
	case ELOOP: return "Too many levels of symbolic links (a symbolic link where a file belongs)";
	case ENAMETOOLONG: return "File name too long";
	case ENFILE: return "Too many open files in system";
	case EOVERFLOW: return "Value too large for defined data type";
	case ENOSPC: return "No space left on device";
	case EAGAIN: return "Resource temporarily unavailable";
	case ESRCH: return "No such process";
	case ENOSYS: return "Function not implemented";
	case ENODEV: return "No such device";
	case ENXIO: return "No such device or address";
	case EBADF: return "Bad file descriptor";
	case ETXTBSY: return "Text file busy";
	case EROFS: return "Read-only file system";
	case EFBIG: return "File too large";
	case EADDRINUSE: return "Address already in use";
	case EADDRNOTAVAIL: return "Cannot assign requested address";
	case ECONNREFUSED: return "Connection refused";
	case EPIPE: return "Broken pipe";
	case ENOTSUP: return "Operation not supported";
	case EBADMSG: return "Bad message (damaged data)";
	case E2BIG: return "Argument list too long";
	case ESTALE: return "Stale file handle (changed since the checkpoint)";
	case ENOEXEC: return "Exec format error";
	case EMSGSIZE: return "Message too long";
	case EAFNOSUPPORT: return "Address family not supported by protocol";
	case EPROTO: return "Protocol error";
	}
	return "error";
}

/* ": Text (errno N)" */
void crac_img_put_err(struct crac_img_buf *b, long e)
{
	crac_img_puts(b, ": ");
	crac_img_puts(b, errname(e));
	crac_img_puts(b, " (errno ");
	crac_img_putu(b, (uint64_t)(e < 0 ? -e : e));
	crac_img_puts(b, ")");
}

static struct crac_img_buf mbuf(char *msg, size_t len)
{
	struct crac_img_buf b = { msg, 0, len };
	if (len)
		msg[0] = 0;
	return b;
}

static void put_range(struct crac_img_buf *b, uint64_t s, uint64_t e)
{
	crac_img_putx(b, s);
	crac_img_puts(b, "-");
	crac_img_putx(b, e);
}

/* "START-END (name)" of mapping m */
static void put_map(struct crac_img_buf *b, const struct crac_img_view *v, const struct crac_img_map *m)
{
	put_range(b, m->start, m->end);
	crac_img_puts(b, " (");
	crac_img_put_escaped(b, m->name ? crac_img_str(v, m->name) : crac_img_kind_name(m->kind));
	crac_img_puts(b, ")");
}

static void put_octal(struct crac_img_buf *b, uint32_t mode)
{
	char t[5] = { (char)('0' + ((mode >> 9) & 7)), (char)('0' + ((mode >> 6) & 7)),
		      (char)('0' + ((mode >> 3) & 7)), (char)('0' + (mode & 7)), 0 };
	crac_img_puts(b, t);
}

/* ---- opening ------------------------------------------------------------------ */

/*
 * After EACCES on name (relative to dfd): if it is another user's, says
 * whose, so that a restore as the wrong user is told apart from a damaged
 * image (nobody restoring root's 0700 image).
 */
static void say_owner(struct crac_img_buf *b, int dfd, const char *name)
{
	struct stat st;
	uint32_t me = (uint32_t)sys_geteuid();

	if (sys_fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_uid == me)
		return;
	crac_img_puts(b, "; it is owned by uid ");
	crac_img_putu(b, st.st_uid);
	crac_img_puts(b, " (mode ");
	put_octal(b, st.st_mode & 07777);
	crac_img_puts(b, "), not by uid ");
	crac_img_putu(b, me);
	crac_img_puts(b, " who runs this: an image restores as the user who wrote it");
}

static const char *type_name(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR: return "a directory";
	case S_IFIFO: return "a FIFO";
	case S_IFSOCK: return "a socket";
	case S_IFCHR: return "a character device";
	case S_IFBLK: return "a block device";
	case S_IFLNK: return "a symbolic link";
	}
	return "not a regular file";
}

int crac_img_open_regular(int dfd, const char *name, int *fd, struct stat *st)
{
	struct stat pre;
	long r = sys_fstatat(dfd, name, &pre, AT_SYMLINK_NOFOLLOW);

	*fd = -1;
	if (r < 0)
		return (int)r;
	if (S_ISLNK(pre.st_mode))
		return -ELOOP;   /* what O_NOFOLLOW would say */
	/* look before opening: a device or FIFO planted there is never opened */
	if (!S_ISREG(pre.st_mode)) {
		*st = pre;
		return CRAC_IMG_NOT_REGULAR;
	}
	if ((r = sys_openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)) < 0)
		return (int)r;
	long f = r;
	if ((r = sys_fstat(f, st)) < 0 || st->st_dev != pre.st_dev || st->st_ino != pre.st_ino ||
	    !S_ISREG(st->st_mode)) {
		sys_close(f);
		return r < 0 ? (int)r : CRAC_IMG_SWAPPED;
	}
	*fd = (int)f;
	return 0;
}

/* Opens DIR/name (crac_img_open_regular), saying in b what is wrong. */
static int open_member(const char *dir, int dfd, const char *name, int *fd, uint64_t *size,
		       uint32_t *uid, uint32_t *mode, struct crac_img_buf *b)
{
	struct stat st;
	int r = crac_img_open_regular(dfd, name, fd, &st);

	if (r == 0) {
		*size = (uint64_t)st.st_size;
		*uid = st.st_uid;
		*mode = st.st_mode;
		return 0;
	}
	crac_img_put_escaped(b, dir);
	crac_img_puts(b, "/");
	crac_img_puts(b, name);
	if (r == -ELOOP) {
		crac_img_puts(b, " is a symbolic link: refused (an image's files are never followed)");
	} else if (r < 0) {
		crac_img_put_err(b, r);
		if (r == -EACCES)
			say_owner(b, dfd, name);
	} else {
		/* (swapped between the look and the open: taken for a link) */
		crac_img_puts(b, " is ");
		crac_img_puts(b, type_name(r == CRAC_IMG_SWAPPED ? S_IFLNK : st.st_mode));
		crac_img_puts(b, ", not a regular file: refused");
		r = -EINVAL;
	}
	return r;
}

int crac_img_open(const char *dir, struct crac_img_opened *o, char *msg, size_t msglen)
{
	struct crac_img_buf b = mbuf(msg, msglen);
	struct stat st;
	long r;

	o->dir_fd = o->header_fd = o->pages_fd = -1;
	o->header_size = o->pages_size = 0;
	r = sys_openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
	if (r < 0) {
		crac_img_puts(&b, "cannot open the image directory");
		crac_img_put_err(&b, r);
		if (r == -EACCES)
			say_owner(&b, AT_FDCWD, dir);
		return (int)r;
	}
	o->dir_fd = (int)r;
	if ((r = sys_fstat(o->dir_fd, &st)) < 0) {
		crac_img_puts(&b, "cannot stat the image directory");
		crac_img_put_err(&b, r);
		crac_img_close(o);
		return (int)r;
	}
	o->uid[0] = st.st_uid;
	o->mode[0] = st.st_mode;
	int fd = -1;
	if ((r = open_member(dir, o->dir_fd, CRAC_IMG_HEADER_FILE, &fd, &o->header_size, &o->uid[1],
			     &o->mode[1], &b)) < 0)
		goto fail;
	o->header_fd = fd;
	if ((r = open_member(dir, o->dir_fd, CRAC_IMG_PAGES_FILE, &fd, &o->pages_size, &o->uid[2],
			     &o->mode[2], &b)) < 0)
		goto fail;
	o->pages_fd = fd;
	return 0;
fail:
	crac_img_close(o);
	return (int)r;
}

void crac_img_close(struct crac_img_opened *o)
{
	if (o->pages_fd >= 0)
		sys_close(o->pages_fd);
	if (o->header_fd >= 0)
		sys_close(o->header_fd);
	if (o->dir_fd >= 0)
		sys_close(o->dir_fd);
	o->dir_fd = o->header_fd = o->pages_fd = -1;
}

static long pread_full(int fd, void *buf, uint64_t len, uint64_t off)
{
	char *p = buf;
	uint64_t got = 0;

	while (got < len) {
		long n = sys_pread(fd, p + got, len - got, off + got);
		if (n == -EINTR)
			continue;
		if (n < 0)
			return n;
		if (n == 0)
			return -EIO;   /* file ended early */
		got += (uint64_t)n;
	}
	return 0;
}

int crac_img_read_header(const struct crac_img_opened *o, void *buf, uint64_t cap,
			 struct crac_img_view *v, char *msg, size_t msglen)
{
	struct crac_img_buf b = mbuf(msg, msglen);
	long r;

	if (o->header_size > cap || o->header_size > CRAC_IMG_MAX_HEADER) {
		crac_img_puts(&b, "header too large (");
		crac_img_putu(&b, o->header_size);
		crac_img_puts(&b, " bytes; at most ");
		crac_img_putu(&b, cap < CRAC_IMG_MAX_HEADER ? cap : CRAC_IMG_MAX_HEADER);
		crac_img_puts(&b, ")");
		return -EFBIG;
	}
	if ((r = pread_full(o->header_fd, buf, o->header_size, 0)) < 0) {
		crac_img_puts(&b, "cannot read the header file");
		crac_img_put_err(&b, r);
		return (int)r;
	}
	return crac_img_parse(buf, o->header_size, v, msg, msglen);
}

/* ---- small helpers -------------------------------------------------------------- */

/* The mapping holding [a, a + len), or NULL. */
static const struct crac_img_map *map_of(const struct crac_img_view *v, uint64_t a, uint64_t len)
{
	for (uint32_t i = 0; i < v->h->n_maps; i++) {
		const struct crac_img_map *m = &v->maps[i];
		if (a >= m->start && len <= m->end - a && a < m->end)
			return m;
	}
	return 0;
}

/* Reads a small decimal number from a /proc or /sys file (def if unreadable). */
static uint64_t read_number(const char *path, uint64_t def)
{
	char buf[32];
	long fd = sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC), n;
	uint64_t v = 0;

	if (fd < 0)
		return def;
	n = sys_read(fd, buf, sizeof(buf) - 1);
	sys_close(fd);
	if (n <= 0)
		return def;
	for (long i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
		v = v * 10 + (uint64_t)(buf[i] - '0');
	return v;
}

/* ---- owner -------------------------------------------------------------------------- */

static int check_owner(const struct crac_img_checker *k, struct crac_img_buf *b)
{
	static const char *const what[3] = { "", "/" CRAC_IMG_HEADER_FILE, "/" CRAC_IMG_PAGES_FILE };
	uint32_t me = (uint32_t)sys_geteuid();

	if (k->flags & CRAC_IMG_TRUST_OWNER) {
		crac_img_puts(b, "not checked (--trust-owner)");
		return 0;
	}
	for (int i = 0; i < 3; i++) {
		if (k->o->uid[i] != me) {
			crac_img_put_escaped(b, k->dir);
			crac_img_puts(b, what[i]);
			crac_img_puts(b, " is owned by uid ");
			crac_img_putu(b, k->o->uid[i]);
			crac_img_puts(b, ", not by the restoring user (uid ");
			crac_img_putu(b, me);
			crac_img_puts(b, "): an image is code, restoring it runs that user's program as you; "
					 "`crac restore --trust-owner` accepts it");
			return -EPERM;
		}
		if (k->o->mode[i] & (S_IWGRP | S_IWOTH)) {
			crac_img_put_escaped(b, k->dir);
			crac_img_puts(b, what[i]);
			crac_img_puts(b, " can be written by other users (mode ");
			put_octal(b, k->o->mode[i] & 07777);
			crac_img_puts(b, "): they could change the program it restores; "
					 "`crac restore --trust-owner` accepts it");
			return -EPERM;
		}
	}
	crac_img_puts(b, "owned by uid ");
	crac_img_putu(b, me);
	crac_img_puts(b, ", writable by nobody else");
	return 0;
}

/* ---- layout ------------------------------------------------------------------------- */

static int layout_fail(struct crac_img_buf *b, const struct crac_img_view *v, const struct crac_img_map *m,
		       const char *why)
{
	if (m) {
		crac_img_puts(b, "mapping ");
		put_map(b, v, m);
		crac_img_puts(b, " ");
	}
	crac_img_puts(b, why);
	return -EINVAL;
}

/* One past the largest offset in a file (MAX_LFS_FILESIZE + 1). */
#define FILE_OFFSET_TOP (1ull << 63)

/* "mapping RANGE (NAME)", " of file PATH" where its name is not the path
 * of its file, ": ", then what (file mapping m). */
static void file_map_fail(struct crac_img_buf *b, const struct crac_img_view *v, const struct crac_img_map *m,
			  const char *what)
{
	const char *path = crac_img_str(v, v->files[m->file].path);

	crac_img_puts(b, "mapping ");
	put_map(b, v, m);
	if (!m->name || strcmp(crac_img_str(v, m->name), path)) {
		crac_img_puts(b, " of file ");
		crac_img_put_escaped(b, path);
	}
	crac_img_puts(b, ": ");
	crac_img_puts(b, what);
}

/* The name of a mapping of kind STACK, and only of it (image_capture.c:
 * the kernel names the one holding the process's start_stack so). */
#define STACK_NAME "[stack]"

/*
 * What every mapping record the image engine writes holds, so that a
 * record changed in one field (a damaged or forged image, its checksum
 * made valid again) is refused here, naming the mapping and the field,
 * instead of being restored into a process that then dies or, worse,
 * into files on disk:
 *   - only a file mapping names a file, and its name is its file's path
 *     (the two are the same string: another file's index would map the
 *     wrong file under the right name; a file kind dropped, zeros)
 *   - anonymous memory, the [heap] and the [stack] are private (the
 *     kernel maps no shared stack, MAP_GROWSDOWN; a shared anonymous
 *     mapping is recorded as shmem), and only the mapping named [stack]
 *     is the stack (mapped to grow down)
 *   - a shared file mapping stores no page: its pages are the file's, and
 *     the loader would write stored ones into the file itself
 */
static int check_map_record(const struct crac_img_view *v, const struct crac_img_map *m, struct crac_img_buf *b)
{
	const char *name = crac_img_str(v, m->name);

	if (m->kind != CRAC_MAP_FILE && m->file != UINT32_MAX) {
		layout_fail(b, v, m, "is not a file mapping (field kind: ");
		crac_img_puts(b, crac_img_kind_name(m->kind));
		crac_img_puts(b, ") but names mapped file #");
		crac_img_putu(b, m->file);
		crac_img_puts(b, " (field file): damaged image");
		return -EINVAL;
	}
	if (m->kind == CRAC_MAP_FILE && strcmp(name, crac_img_str(v, v->files[m->file].path))) {
		file_map_fail(b, v, m, "its name (field name) is not the path of its file (field file: #");
		crac_img_putu(b, m->file);
		crac_img_puts(b, "): damaged image");
		return -EINVAL;
	}
	if ((m->flags & CRAC_MAPF_SHARED) &&
	    (m->kind == CRAC_MAP_ANON || m->kind == CRAC_MAP_HEAP || m->kind == CRAC_MAP_STACK)) {
		layout_fail(b, v, m, "is shared (field flags: ");
		crac_img_putx(b, m->flags);
		crac_img_puts(b, "), but ");
		crac_img_puts(b, m->kind == CRAC_MAP_STACK ? "the kernel maps no shared stack"
							   : "memory of this kind (field kind: ");
		if (m->kind != CRAC_MAP_STACK) {
			crac_img_puts(b, crac_img_kind_name(m->kind));
			crac_img_puts(b, ") is private");
		}
		crac_img_puts(b, ": damaged image");
		return -EINVAL;
	}
	if ((m->kind == CRAC_MAP_STACK) != !strcmp(name, STACK_NAME)) {
		layout_fail(b, v, m, m->kind == CRAC_MAP_STACK ? "is the stack (field kind: stack) but not named "
								: "is named ");
		crac_img_puts(b, STACK_NAME);
		if (m->kind != CRAC_MAP_STACK) {
			crac_img_puts(b, " but is not the stack (field kind: ");
			crac_img_puts(b, crac_img_kind_name(m->kind));
			crac_img_puts(b, "): it would not grow down");
		}
		crac_img_puts(b, ": damaged image");
		return -EINVAL;
	}
	if (m->kind == CRAC_MAP_FILE && (m->flags & CRAC_MAPF_SHARED) && m->n_chunks) {
		file_map_fail(b, v, m, "it is shared (field flags: ");
		crac_img_putx(b, m->flags);
		crac_img_puts(b, ") and stores ");
		crac_img_putu(b, m->stored);
		crac_img_puts(b, " bytes of pages (field n_chunks: ");
		crac_img_putu(b, m->n_chunks);
		crac_img_puts(b, "): a shared file mapping's pages are its file's, and the restore would write "
				 "these into the file: damaged image");
		return -EINVAL;
	}
	return 0;
}

static int check_layout(const struct crac_img_checker *k, struct crac_img_buf *b)
{
	const struct crac_img_view *v = k->v;
	const struct crac_img_header *h = v->h;
	uint64_t min_addr = read_number("/proc/sys/vm/mmap_min_addr", 65536);
	uint64_t block = h->vdso_block, block_size = h->vvar_size + h->vvar_vclock_size + h->vdso_size;
	const struct crac_img_map *stack = 0, *heap = 0;   /* the first of each */

	if (min_addr < P)
		min_addr = P;
	if (!block || !h->vvar_size || !h->vdso_size)
		return layout_fail(b, v, 0, "the image records no [vvar]/[vdso] block");
	if (block < min_addr || block_size > USER_TOP - block)
		return layout_fail(b, v, 0, "the recorded [vvar]/[vdso] block lies outside user space");
	if (block < CRAC_IMG_LOADER_HI && block + block_size > CRAC_IMG_LOADER_LO)
		return layout_fail(b, v, 0, "the recorded [vvar]/[vdso] block lies in the restore loader's reserved range");

	for (uint32_t i = 0; i < h->n_maps; i++) {
		const struct crac_img_map *m = &v->maps[i];
		if (m->start < min_addr)
			return layout_fail(b, v, m, "lies below vm.mmap_min_addr: the kernel cannot map it");
		if (m->start < CRAC_IMG_LOADER_HI && m->end > CRAC_IMG_LOADER_LO) {
			layout_fail(b, v, m, "lies in the restore loader's reserved range ");
			put_range(b, CRAC_IMG_LOADER_LO, CRAC_IMG_LOADER_HI);
			crac_img_puts(b, ": the loader could not run while it is restored");
			return -EINVAL;
		}
		if (m->flags & ~(CRAC_MAPF_SHARED | CRAC_MAPF_NORESERVE | CRAC_MAPF_REFS))
			return layout_fail(b, v, m, "has unknown flags");
		bool in_block = m->start < block + block_size && m->end > block;
		bool special = m->kind >= CRAC_MAP_VVAR;
		if (special) {
			uint64_t at = block, size = h->vvar_size;
			if (m->kind == CRAC_MAP_VVAR_VCLOCK) {
				at = block + h->vvar_size;
				size = h->vvar_vclock_size;
			} else if (m->kind == CRAC_MAP_VDSO) {
				at = block + h->vvar_size + h->vvar_vclock_size;
				size = h->vdso_size;
			}
			if (m->start != at || m->end - m->start != size || m->n_chunks)
				return layout_fail(b, v, m, "does not match the recorded [vvar]/[vdso] block");
		} else if (in_block) {
			return layout_fail(b, v, m, "overlaps the recorded [vvar]/[vdso] block");
		}
		int rc = check_map_record(v, m, b);
		if (rc < 0)
			return rc;
		if (m->kind == CRAC_MAP_STACK || m->kind == CRAC_MAP_HEAP) {
			/* the loader grows one stack down, PR_SET_MM_MAP knows one brk area */
			const struct crac_img_map **first = m->kind == CRAC_MAP_STACK ? &stack : &heap;
			if (*first) {
				crac_img_puts(b, "mappings ");
				put_map(b, v, *first);
				crac_img_puts(b, " and ");
				put_map(b, v, m);
				crac_img_puts(b, " are both the ");
				crac_img_puts(b, crac_img_kind_name(m->kind));
				crac_img_puts(b, " (field kind), which a process has one of: damaged image");
				return -EINVAL;
			}
			*first = m;
		}
		/* The largest offset in a file is 2^63 - 1 (MAX_LFS_FILESIZE):
		 * mmap refuses (EOVERFLOW) a mapping that ends past the last
		 * page below it, whatever its protection (a PROT_NONE one too,
		 * which the loader maps after its point of no return). */
		if (m->kind == CRAC_MAP_FILE && m->offset > FILE_OFFSET_TOP - P - (m->end - m->start)) {
			file_map_fail(b, v, m, "its file offset (field offset) ");
			crac_img_putx(b, m->offset);
			crac_img_puts(b, " with its length ");
			crac_img_putx(b, m->end - m->start);
			crac_img_puts(b, " ends past the largest offset of a file (2^63 - 1): the kernel cannot map it");
			return -EINVAL;
		}
		if (m->kind == CRAC_MAP_FILE) {
			uint64_t fsize = (v->files[m->file].size + P - 1) & ~(P - 1);
			/* (a PROT_NONE one may start past the end: a reservation
			 * nothing touches; its stored pages are checked below) */
			if (m->prot && m->offset >= fsize) {
				layout_fail(b, v, m, "starts past the end of its file: its file offset (field offset) ");
				crac_img_putx(b, m->offset);
				crac_img_puts(b, " is past the end of ");
				crac_img_put_escaped(b, crac_img_str(v, v->files[m->file].path));
				crac_img_puts(b, " (");
				crac_img_putu(b, v->files[m->file].size);
				crac_img_puts(b, " bytes): touching it would raise SIGBUS");
				return -EINVAL;
			}
			/* A stored page is a private copy of a page of the file,
			 * which cannot lie past its end (a truncation drops such
			 * copies): the loader, writing it in, would die of
			 * SIGBUS after its point of no return, whatever the
			 * mapping's protection (a PROT_NONE one too). */
			for (uint32_t c = m->first_chunk; c < m->first_chunk + m->n_chunks; c++) {
				const struct crac_img_chunk *ch = &v->chunks[c];
				uint64_t foff = m->offset + (ch->addr - m->start);
				if (foff + ch->len > fsize || foff + ch->len < foff) {
					file_map_fail(b, v, m, "its file offset (field offset) ");
					crac_img_putx(b, m->offset);
					crac_img_puts(b, " puts its stored ");
					crac_img_put_chunk_head(b, c, ch);
					crac_img_puts(b, ") past the end of its file (");
					crac_img_putu(b, v->files[m->file].size);
					crac_img_puts(b, " bytes): the restore would die of SIGBUS writing it in");
					return -EINVAL;
				}
			}
		}
	}
	/* brk/arg/env as PR_SET_MM_MAP will check them (kernel/sys.c) */
	const uint64_t *f = &h->mm.start_code;
	for (int i = 0; i < 11; i++)
		if (f[i] < min_addr || f[i] >= USER_TOP)
			return layout_fail(b, v, 0, "the recorded code/data/brk/stack/arg/env addresses lie "
					   "outside user space");
	if (!(h->mm.start_code < h->mm.end_code) || h->mm.start_data > h->mm.end_data ||
	    h->mm.start_brk > h->mm.brk || h->mm.arg_start > h->mm.arg_end || h->mm.env_start > h->mm.env_end)
		return layout_fail(b, v, 0, "the recorded code/data/brk/arg/env bounds are out of order");

	/* The resume block: in private read-write memory the loader writes. */
	uint64_t r = h->resume, rlen = sizeof(struct crac_img_resume);
	const struct crac_img_map *rm = map_of(v, r, rlen);
	if (!rm || r % 8 || rm->kind >= CRAC_MAP_VVAR || (rm->flags & CRAC_MAPF_SHARED) ||
	    (rm->prot & (PROT_READ | PROT_WRITE)) != (PROT_READ | PROT_WRITE))
		return layout_fail(b, v, 0, "the resume block address lies in no private read-write mapping");
	uint64_t covered = 0;
	for (uint32_t c = rm->first_chunk; c < rm->first_chunk + rm->n_chunks; c++) {
		const struct crac_img_chunk *ch = &v->chunks[c];
		uint64_t s = ch->addr > r ? ch->addr : r, e = ch->addr + ch->len < r + rlen ? ch->addr + ch->len : r + rlen;
		if (s < e)
			covered += e - s;
	}
	if (covered != rlen)
		return layout_fail(b, v, 0, "the resume block is not stored in the image");

	crac_img_putu(b, h->n_maps);
	crac_img_puts(b, " mappings, none in the loader's range ");
	put_range(b, CRAC_IMG_LOADER_LO, CRAC_IMG_LOADER_HI);
	return 0;
}

/* ---- pages ----------------------------------------------------------------------------- */

/* Reads [addr, addr + len) of restored memory from the pages file. */
static long read_stored(const struct crac_img_checker *k, const struct crac_img_map *m, uint64_t addr,
			void *out, uint64_t len)
{
	const struct crac_img_view *v = k->v;
	char *p = out;

	for (uint32_t c = m->first_chunk; c < m->first_chunk + m->n_chunks; c++) {
		const struct crac_img_chunk *ch = &v->chunks[c];
		uint64_t s = ch->addr > addr ? ch->addr : addr;
		uint64_t e = ch->addr + ch->len < addr + len ? ch->addr + ch->len : addr + len;
		if (s >= e)
			continue;
		if (ch->zlen)   /* never made so: the writer stores this chunk as it is */
			return -EBADMSG;
		long rc = pread_full(k->o->pages_fd, p + (s - addr), e - s, ch->offset + (s - ch->addr));
		if (rc < 0)
			return rc;
	}
	return 0;
}

static bool executable_at(const struct crac_img_view *v, uint64_t a)
{
	const struct crac_img_map *m = map_of(v, a, 1);
	return m && (m->prot & PROT_EXEC) && m->kind < CRAC_MAP_VVAR;
}

static bool writable_at(const struct crac_img_view *v, uint64_t a)
{
	const struct crac_img_map *m = map_of(v, a, 1);
	return m && (m->prot & (PROT_READ | PROT_WRITE)) == (PROT_READ | PROT_WRITE) && m->kind < CRAC_MAP_VVAR;
}

static int check_pages(const struct crac_img_checker *k, struct crac_img_buf *b)
{
	const struct crac_img_view *v = k->v;
	const struct crac_img_header *h = v->h;
	struct crac_img_resume res;

	if (k->o->pages_size != h->pages_size) {
		crac_img_put_escaped(b, k->dir);
		crac_img_puts(b, "/" CRAC_IMG_PAGES_FILE " is truncated or damaged (");
		crac_img_putu(b, k->o->pages_size);
		crac_img_puts(b, " bytes, the header says ");
		crac_img_putu(b, h->pages_size);
		crac_img_puts(b, ")");
		return -EBADMSG;
	}
	if ((h->img_flags & CRAC_IMGF_COMPRESSED) && !crac_img_have_zstd()) {
		crac_img_puts(b, "the image is compressed (zstd) and this build of crac has no zstd");
		return -ENOTSUP;
	}
	const struct crac_img_map *rm = map_of(v, h->resume, sizeof(res));
	if (!rm) {
		crac_img_puts(b, "the resume block address lies in no mapping");
		return -EBADMSG;
	}
	memset(&res, 0, sizeof(res));
	long rc = read_stored(k, rm, h->resume, &res, sizeof(res));
	if (rc < 0) {
		crac_img_puts(b, "cannot read the resume block from the pages file");
		crac_img_put_err(b, rc);
		return (int)rc;
	}
	const char *why = 0;
	uint32_t abi = CRAC_RESUME_ABI_OF(res.magic);
	if (!CRAC_RESUME_IS_MAGIC(res.magic)) {
		why = "the restored memory holds no libcrac resume block";
	} else if (abi != CRAC_RESUME_ABI) {
		/* The libcrac in the image (the program's) and this loader do
		 * not share the hand-over (image.h, CRAC_RESUME_ABI): jumping
		 * into it would leave the restored process with fields it
		 * misreads, a lazy loader thread that misreads its area. */
		crac_img_puts(b, "the program's libcrac is ");
		crac_img_puts(b, abi < CRAC_RESUME_ABI ? "older" : "newer");
		crac_img_puts(b, " than this restore loader (their hand-over: ");
		if (abi) {
			crac_img_puts(b, "version ");
			crac_img_putu(b, abi);
		} else {
			crac_img_puts(b, "unnumbered");
		}
		crac_img_puts(b, " in the image, version ");
		crac_img_putu(b, CRAC_RESUME_ABI);
		crac_img_puts(b, " here): restore with the crac release of the program's libcrac, or checkpoint "
				 "the program again with a libcrac of this release");
		return -EPROTO;
	} else if (!executable_at(v, res.ctx.rip))
		why = "the resume point is not in executable memory";
	else if (!writable_at(v, res.ctx.rsp - 8) || res.ctx.rsp % 8)
		why = "the resume stack is not in writable memory";
	else if (!map_of(v, res.ctx.fs_base, 1))
		why = "the resume thread pointer is not in restored memory";
	else if (res.lazy_entry && !executable_at(v, res.lazy_entry))
		why = "the lazy loader's entry point is not in executable memory";
	if (why) {
		crac_img_puts(b, why);
		crac_img_puts(b, " (image damaged or not made by crac)");
		return -EBADMSG;
	}
	crac_img_putu(b, h->pages_size);
	crac_img_puts(b, " bytes of page data; resume block intact");
	return 0;
}

/* ---- cpu ---------------------------------------------------------------------------------- */

static int check_cpu(const struct crac_img_checker *k, struct crac_img_buf *b)
{
	const struct crac_img_header *h = k->v->h;
	struct crac_img_cpu have;
	char why[256];

	crac_img_cpu_probe(&have);
	if (crac_img_cpu_compare(&h->cpu, &have, why, sizeof(why)) < 0) {
		crac_img_puts(b, why);
		return -ENOEXEC;
	}
	if (h->cpu.xcomp_perm & (1ull << XFEATURE_XTILEDATA)) {
		long rc = sys_arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA);
		if (rc < 0) {
			crac_img_puts(b, "the image uses AMX but arch_prctl(ARCH_REQ_XCOMP_PERM) was refused");
			crac_img_put_err(b, rc);
			return (int)rc;
		}
	}
	crac_img_puts(b, "every recorded feature present, XSAVE ");
	crac_img_putu(b, have.xsave_size);
	crac_img_puts(b, " bytes");
	return 0;
}

/* ---- vdso ----------------------------------------------------------------------------------- */

/* Start and end of this process's [vvar], [vvar_vclock] and [vdso]. */
static long own_vdso(uint64_t r[3][2])
{
	static const char *const names[3] = { "[vvar]", "[vvar_vclock]", "[vdso]" };
	char buf[4096], line[512];
	size_t ll = 0;
	long fd = sys_openat(AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC), n;

	for (int i = 0; i < 3; i++)
		r[i][0] = r[i][1] = 0;
	if (fd < 0)
		return fd;
	while ((n = sys_read(fd, buf, sizeof(buf))) > 0) {
		for (long i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (ll + 1 < sizeof(line))
					line[ll++] = buf[i];
				continue;
			}
			line[ll] = 0;
			ll = 0;
			/* "start-end perms offset dev inode   name" */
			const char *s = line, *name = line;
			for (int f = 0; f < 5 && *name; f++) {
				while (*name && *name != ' ')
					name++;
				while (*name == ' ')
					name++;
			}
			for (int k = 0; k < 3; k++) {
				if (strcmp(name, names[k]))
					continue;
				uint64_t a = 0, e = 0;
				for (; *s && *s != '-'; s++)
					a = a * 16 + (uint64_t)(*s <= '9' ? *s - '0' : *s - 'a' + 10);
				for (s++; *s && *s != ' '; s++)
					e = e * 16 + (uint64_t)(*s <= '9' ? *s - '0' : *s - 'a' + 10);
				r[k][0] = a;
				r[k][1] = e;
			}
		}
	}
	sys_close(fd);
	return n < 0 ? n : 0;
}

static int check_vdso(const struct crac_img_checker *k, struct crac_img_buf *b)
{
	const struct crac_img_header *h = k->v->h;
	uint64_t r[3][2];
	long rc = 0;

	if (k->vdso)
		for (int i = 0; i < 3; i++)
			r[i][0] = k->vdso[i][0], r[i][1] = k->vdso[i][1];
	else
		rc = own_vdso(r);

	if (rc < 0) {
		crac_img_puts(b, "cannot read /proc/self/maps");
		crac_img_put_err(b, rc);
		return (int)rc;
	}
	uint64_t size[3] = { r[0][1] - r[0][0], r[1][1] - r[1][0], r[2][1] - r[2][0] };
	bool contiguous = r[1][0] ? (r[1][0] == r[0][1] && r[2][0] == r[1][1]) : r[2][0] == r[0][1];
	if (!r[0][0] || !r[2][0] || size[0] != h->vvar_size || size[1] != h->vvar_vclock_size ||
	    size[2] != h->vdso_size || !contiguous) {
		crac_img_puts(b, "vDSO layout differs: [vvar]/[vvar_vclock]/[vdso] are ");
		for (int i = 0; i < 3; i++) {
			crac_img_putx(b, size[i]);
			crac_img_puts(b, i < 2 ? "/" : " bytes here, ");
		}
		crac_img_putx(b, h->vvar_size);
		crac_img_puts(b, "/");
		crac_img_putx(b, h->vvar_vclock_size);
		crac_img_puts(b, "/");
		crac_img_putx(b, h->vdso_size);
		crac_img_puts(b, " in the image (kernel ");
		crac_img_put_escaped(b, h->kernel);
		crac_img_puts(b, ")");
		return -ENOEXEC;
	}
	if (crac_img_crc32c(0, (const void *)(uintptr_t)r[2][0], size[2]) != h->vdso_crc) {
		crac_img_puts(b, "vDSO code differs from the image's (image taken on kernel ");
		crac_img_put_escaped(b, h->kernel);
		crac_img_puts(b, "): glibc's cached vDSO entry points would be wrong");
		return -ENOEXEC;
	}
	crac_img_puts(b, "same layout and code");
	return 0;
}

/* ---- process ------------------------------------------------------------------------------------ */

/* Does s start with prefix? (stops at s's end) */
static int prefixed(const char *s, const char *prefix)
{
	for (; *prefix; s++, prefix++)
		if (*s != *prefix)
			return 0;
	return 1;
}

/* The seccomp filters this process runs under: Seccomp_filters of
 * /proc/self/status (Linux 5.9), or 1 if only the mode says there are
 * some; 0 if /proc cannot tell. */
static uint32_t seccomp_filters(void)
{
	static char buf[4096];   /* the loader's stack is small; one checker at a time */
	long fd = sys_openat(AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC), n = 0, r;
	uint32_t mode = 0, count = 0;
	int have_count = 0;

	if (fd < 0)
		return 0;
	while (n < (long)sizeof(buf) - 1 && (r = sys_read(fd, buf + n, sizeof(buf) - 1 - (uint64_t)n)) > 0)
		n += r;
	sys_close(fd);
	buf[n] = 0;
	for (const char *line = buf; *line;) {
		const char *p = 0;
		if (prefixed(line, "Seccomp:"))
			p = line + 8;
		else if (prefixed(line, "Seccomp_filters:"))
			p = line + 16, have_count = 1;
		if (p) {
			uint32_t v = 0;
			while (*p == ' ' || *p == '\t')
				p++;
			for (; *p >= '0' && *p <= '9'; p++)
				v = v * 10 + (uint32_t)(*p - '0');
			if (line[7] == ':')
				mode = v;
			else
				count = v;
		}
		while (*line && *line != '\n')
			line++;
		if (*line)
			line++;
	}
	return have_count ? count : mode == 2 ? 1 : 0;
}

/*
 * The memory the kernel charges a mapping the loader makes, in bytes (0:
 * none): a private writable one (also one made writable only while its
 * stored pages are written in: map_all), and shared anonymous memory,
 * unless it is mapped MAP_NORESERVE.
 */
static uint64_t commit_of(const struct crac_img_map *m)
{
	bool writable = (m->prot & PROT_WRITE) || m->stored || (m->flags & CRAC_MAPF_REFS);

	if (m->kind >= CRAC_MAP_VVAR || (m->flags & CRAC_MAPF_NORESERVE))
		return 0;
	if (m->flags & CRAC_MAPF_SHARED)
		return m->kind == CRAC_MAP_FILE ? 0 : m->end - m->start;
	return writable ? m->end - m->start : 0;
}

/* Below this, no mapping is looked at against the machine's memory (every
 * machine crac runs on has more memory and swap). */
#define COMMIT_LOOK_MIN (64ull << 20)

/*
 * Under the kernel's default overcommit heuristic (vm.overcommit_memory
 * 0) one mapping that the kernel charges for more than all of the
 * machine's memory and swap is refused (ENOMEM): the loader would meet
 * that only after its point of no return (a length damaged, or an image
 * of a larger machine). The mapping is named. (Mode 1 charges nothing;
 * mode 2's limit counts every process's commitments, which are not this
 * check's to predict.)
 */
static int check_commit(const struct crac_img_checker *k, struct crac_img_buf *b)
{
	const struct crac_img_view *v = k->v;
	const struct crac_img_map *big = 0;
	uint64_t most = COMMIT_LOOK_MIN;   /* big's charge */

	for (uint32_t i = 0; i < v->h->n_maps; i++) {
		uint64_t c = commit_of(&v->maps[i]);
		if (c > most) {
			big = &v->maps[i];
			most = c;
		}
	}
	if (!big || read_number("/proc/sys/vm/overcommit_memory", 0) != 0)
		return 0;
	struct sysinfo si;
	if (SYS(SYS_sysinfo, &si, 0, 0, 0, 0, 0) < 0)
		return 0;
	uint64_t unit = si.mem_unit ? si.mem_unit : 1;
	uint64_t have = ((uint64_t)si.totalram + (uint64_t)si.totalswap) * unit;
	if (most <= have)
		return 0;
	crac_img_puts(b, "mapping ");
	put_map(b, v, big);
	crac_img_puts(b, ": its ");
	crac_img_putu(b, most);
	crac_img_puts(b, " bytes (fields start and end), private and writable or written in by the restore (fields "
			 "flags, prot, stored), are more than this machine's memory and swap together (");
	crac_img_putu(b, have);
	crac_img_puts(b, " bytes): the kernel would refuse to map it (vm.overcommit_memory 0)");
	return -ENOMEM;
}

static int check_process(const struct crac_img_checker *k, struct crac_img_buf *b)
{
	const struct crac_img_header *h = k->v->h;
	unsigned int size = 0;
	long rc = (k->flags & CRAC_IMG_PRETEND_NO_MM_MAP) ? -EINVAL
		  : sys_prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0);

	if (rc < 0 || size != sizeof(struct prctl_mm_map)) {
		crac_img_puts(b, "this kernel cannot set a process's memory layout (prctl PR_SET_MM_MAP");
		if (rc < 0)
			crac_img_put_err(b, rc);
		crac_img_puts(b, "); it needs CONFIG_CHECKPOINT_RESTORE (Linux 3.18)");
		return rc < 0 ? (int)rc : -ENOSYS;
	}
	uint64_t lim[2] = { ~0ull, ~0ull };
	if (sys_prlimit(0, RLIMIT_DATA_, 0, lim) == 0 && lim[0] != ~0ull) {
		uint64_t need = (h->mm.brk - h->mm.start_brk) + (h->mm.end_data - h->mm.start_data);
		if (need > lim[0]) {
			crac_img_puts(b, "the image's data segment and brk area (");
			crac_img_putu(b, need);
			crac_img_puts(b, " bytes) exceed this process's RLIMIT_DATA (");
			crac_img_putu(b, lim[0]);
			crac_img_puts(b, " bytes)");
			return -ENOSPC;
		}
	}
	/* The loader maps every mapping of the image (the kernel's vdso and
	 * vvar are this process's): more than RLIMIT_AS lets it map failed
	 * after the point of no return. (The loader's own ~10 MiB and its
	 * lazy thread's are not counted: a refusal here is always right, and
	 * the loader checks the whole need itself before its point of no
	 * return: loader.c, check_address_space.) */
	if (sys_prlimit(0, RLIMIT_AS_, 0, lim) == 0 && lim[0] != ~0ull) {
		uint64_t need = 0;
		for (uint32_t i = 0; i < h->n_maps; i++) {
			const struct crac_img_map *m = &k->v->maps[i];
			if (m->kind != CRAC_MAP_VVAR && m->kind != CRAC_MAP_VVAR_VCLOCK && m->kind != CRAC_MAP_VDSO &&
			    m->end > m->start)
				need += m->end - m->start;
		}
		if (need > lim[0]) {
			crac_img_puts(b, "the image's mappings (");
			crac_img_putu(b, need);
			crac_img_puts(b, " bytes) exceed this process's RLIMIT_AS (");
			crac_img_putu(b, lim[0]);
			crac_img_puts(b, " bytes; ulimit -v)");
			return -ENOMEM;
		}
	}
	if ((rc = check_commit(k, b)) < 0)
		return (int)rc;
	/* (an image taken without filters: nothing to compare, /proc not read) */
	uint32_t filters = h->seccomp_filters ? seccomp_filters() : 0;
	if (h->seccomp_filters > filters) {
		crac_img_puts(b, "the process ran under ");
		crac_img_putu(b, h->seccomp_filters);
		crac_img_puts(b, " seccomp filter");
		crac_img_puts(b, h->seccomp_filters == 1 ? "" : "s");
		crac_img_puts(b, ", this restore under ");
		crac_img_putu(b, filters);
		crac_img_puts(b, ": a filter cannot be made again, and the restored program would run without it "
				 "(restore under the same filters, e.g. in the same systemd unit, or checkpoint the "
				 "program before it installs its own)");
		return -EPERM;
	}
	crac_img_puts(b, "PR_SET_MM_MAP available, brk area within RLIMIT_DATA");
	if (h->seccomp_filters) {
		crac_img_puts(b, ", ");
		crac_img_putu(b, filters);
		crac_img_puts(b, " seccomp filters here, the process had ");
		crac_img_putu(b, h->seccomp_filters);
	}
	return 0;
}

/* ---- files ---------------------------------------------------------------------------------------- */

static int check_files(const struct crac_img_checker *k, struct crac_img_buf *b)
{
	const struct crac_img_view *v = k->v;
	const struct crac_img_header *h = v->h;
	static char page[P];   /* the loader's stack is small; only one checker runs at a time */

	if (k->file_fds)
		for (uint32_t i = 0; i < h->n_files; i++)
			k->file_fds[i] = -1;
	for (uint32_t i = 0; i < h->n_files; i++) {
		const struct crac_img_file *f = &v->files[i];
		const char *path = crac_img_str(v, f->path);
		/* its first shared writable mapping (the file is then opened
		 * for writing) and its first executable one */
		const struct crac_img_map *writable = 0, *exec = 0;
		for (uint32_t m = 0; m < h->n_maps; m++) {
			const struct crac_img_map *mm = &v->maps[m];
			if (mm->kind != CRAC_MAP_FILE || mm->file != i)
				continue;
			if (!writable && (mm->flags & CRAC_MAPF_SHARED) && (mm->prot & PROT_WRITE))
				writable = mm;
			if (!exec && (mm->prot & PROT_EXEC))
				exec = mm;
		}
		/* Look before opening: a crafted image could name a device whose
		 * open acts (a pty, a watchdog); only a regular file is opened,
		 * and it must be the very file that was looked at. */
		struct stat pre;
		long fd = sys_fstatat(AT_FDCWD, path, &pre, AT_SYMLINK_NOFOLLOW);
		if (fd == 0 && !S_ISREG(pre.st_mode)) {
			crac_img_puts(b, "mapped file ");
			crac_img_put_escaped(b, path);
			crac_img_puts(b, " is ");
			crac_img_puts(b, type_name(pre.st_mode));
			crac_img_puts(b, " now, not a regular file");
			return -ESTALE;
		}
		if (fd == 0)
			fd = sys_openat(AT_FDCWD, path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW |
					O_NONBLOCK | O_NOCTTY);
		if (fd < 0) {
			crac_img_puts(b, "mapped file ");
			crac_img_put_escaped(b, path);
			crac_img_put_err(b, fd);
			if (writable && (fd == -EACCES || fd == -EPERM || fd == -EROFS || fd == -ETXTBSY)) {
				crac_img_puts(b, ": opened for writing, for its shared writable mapping ");
				put_map(b, v, writable);
			}
			if (fd == -EMFILE) {
				/* each mapped file stays open until it is mapped */
				struct { uint64_t cur, max; } rl = { 0, 0 };
				SYS(SYS_prlimit64, 0, 7 /* RLIMIT_NOFILE */, 0, &rl, 0, 0);
				crac_img_puts(b, ": the image maps ");
				crac_img_putu(b, h->n_files);
				crac_img_puts(b, " files, each held open until it is mapped, and RLIMIT_NOFILE is ");
				crac_img_putu(b, rl.cur);
				crac_img_puts(b, " (raise it: ulimit -n)");
			}
			return (int)fd;
		}
		struct stat st;
		const char *what = 0, *ctime_only = 0;
		long rc = sys_fstat(fd, &st);
		if (rc == 0 && (st.st_dev != pre.st_dev || st.st_ino != pre.st_ino))
			st.st_mode = S_IFLNK;   /* swapped between the look and the open */
		if (rc < 0 || !S_ISREG(st.st_mode)) {
			sys_close(fd);
			crac_img_puts(b, "mapped file ");
			crac_img_put_escaped(b, path);
			if (rc < 0) {
				crac_img_put_err(b, rc);
				return (int)rc;
			}
			crac_img_puts(b, " is ");
			crac_img_puts(b, type_name(st.st_mode));
			crac_img_puts(b, " now, not a regular file");
			return -ESTALE;
		}
		int64_t mtime = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
		if ((uint64_t)st.st_size != f->size)
			what = "its size";
		else if (mtime != f->mtime_ns)
			what = "its modification time";
		else if ((uint64_t)st.st_ino != f->ino || (uint64_t)st.st_dev != f->dev)
			what = "its inode (the file was replaced)";
		else if (st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec != f->ctime_ns)
			what = ctime_only = "its status change time (ctime)";
		/*
		 * The stat identity proves the file unchanged: a write moves
		 * the ctime, and so does setting the mtime back (utimensat), a
		 * rename over it gives another inode. Reading its pages adds
		 * nothing but cost (45 files for python3), unless asked for:
		 * a file system that does not keep ctime honest, a clock set
		 * back.
		 */
		if (!what && (k->flags & CRAC_IMG_VERIFY_FILES)) {
			long n = sys_pread(fd, page, P, 0);
			if (crac_img_crc32c(0, page, n > 0 ? (size_t)n : 0) != f->crc_head)
				what = "the content of its first page";
			uint64_t tail = f->size ? (f->size - 1) / P * P : 0;
			n = sys_pread(fd, page, P, tail);
			if (!what && crac_img_crc32c(0, page, n > 0 ? (size_t)n : 0) != f->crc_tail)
				what = "the content of its last page";
		}
		if (what) {
			sys_close(fd);
			crac_img_puts(b, "file ");
			crac_img_put_escaped(b, path);
			crac_img_puts(b, " changed since the checkpoint (");
			crac_img_puts(b, what);
			crac_img_puts(b, " differs)");
			if (what == ctime_only)   /* the ctime alone */
				crac_img_puts(b, ": a write whose modification time was put back, or only a chmod, "
						 "chown or new hard link (a backup, perf's build-id cache) that crac cannot "
						 "tell apart from one; checkpoint again if its content is the same");
			return -ESTALE;
		}
		/* The kernel maps nothing executable from a file system
		 * mounted noexec (EPERM): the loader would find that out
		 * only after its point of no return. (A mount made noexec
		 * since the checkpoint, or a damaged protection.) */
		struct statfs sf;
		if (exec && SYS(SYS_fstatfs, fd, &sf, 0, 0, 0, 0) == 0 && (sf.f_flags & ST_NOEXEC_)) {
			sys_close(fd);
			file_map_fail(b, v, exec, "it is executable (field prot: ");
			crac_img_putx(b, exec->prot);
			crac_img_puts(b, "), and its file lies on a file system mounted noexec: the kernel would not map "
					 "it so");
			return -EPERM;
		}
		if (k->file_fds)
			k->file_fds[i] = (int)fd;
		else
			sys_close(fd);
	}
	crac_img_putu(b, h->n_files);
	crac_img_puts(b, (k->flags & CRAC_IMG_VERIFY_FILES) ? " mapped files unchanged (stat identity and first/last page)"
							     : " mapped files unchanged (device, inode, size, mtime, ctime)");
	return 0;
}

/* ---- descriptors ---------------------------------------------------------------------------------- */

/* "fd N (KIND): ", the head of a descriptor's reason */
static void put_fd_head(struct crac_img_buf *b, const struct crac_img_fd *e)
{
	crac_img_puts(b, "fd ");
	crac_img_putu(b, (uint64_t)e->fd);
	crac_img_puts(b, " (");
	crac_img_puts(b, crac_obj_kind_name(e->kind));
	crac_img_puts(b, "): ");
}

/* A passed check's words dropped again. */
static void buf_clear(struct crac_img_buf *b)
{
	b->len = 0;
	if (b->cap)
		b->p[0] = 0;
}

static int check_fds(const struct crac_img_checker *k, struct crac_img_buf *b)
{
	const struct crac_img_view *v = k->v;

	for (uint32_t i = 0; i < v->h->n_fds; i++) {
		const struct crac_img_fd *e = &v->fds[i];
		/* what the loader would find only after its point of no return:
		 * a kind it has no code for, a kind opened by path without one */
		int by_path = e->kind == CRAC_OBJ_FILE || e->kind == CRAC_OBJ_DIR || e->kind == CRAC_OBJ_DEVICE ||
			      e->kind == CRAC_OBJ_FIFO;
		if (e->kind >= CRAC_OBJ_KINDS) {
			crac_img_puts(b, "fd ");
			crac_img_putu(b, (uint64_t)e->fd);
			crac_img_puts(b, ": a kind of descriptor this crac does not know (kind ");
			crac_img_putu(b, e->kind);
			crac_img_puts(b, "; an image of a newer crac?)");
			return -ENOTSUP;
		}
		if (by_path && e->same_as == CRAC_IMG_NO_FD && !e->path) {
			put_fd_head(b, e);
			crac_img_puts(b, "no path in the image (damaged image)");
			return -EBADMSG;
		}
		if (e->same_as != CRAC_IMG_NO_FD)
			continue;   /* a duplicate: its original is checked */
		/* the kinds whose record is checked here, then those opened by
		 * path (a FIFO is both); "fd N (KIND): " before the reason */
		int rc = 0;
		put_fd_head(b, e);
		switch (e->kind) {
		case CRAC_OBJ_PIPE:
		case CRAC_OBJ_FIFO:
			rc = crac_obj_pipe_check(e, b);
			break;
		case CRAC_OBJ_TIMERFD:
			rc = crac_obj_timerfd_check(e, b);
			break;
		case CRAC_OBJ_MEMFD:
			rc = crac_obj_memfd_check(e, b);
			break;
		case CRAC_OBJ_EPOLL:
			rc = crac_obj_epoll_check(v, e, b);
			break;
		case CRAC_OBJ_INOTIFY:
			/* every watched path there and the same file, as the
			 * loader will need them after its point of no return */
			rc = crac_obj_inotify_check(v, e, b);
			if (rc < 0 && rc != -ESTALE && rc != -EBADMSG)
				crac_img_put_err(b, rc);
			break;
		}
		if (rc < 0)
			return rc;
		buf_clear(b);
		if (!by_path)
			continue;
		put_fd_head(b, e);
		if ((rc = crac_obj_file_check(v, e, b)) < 0)
			return rc;
		buf_clear(b);
	}
	crac_img_putu(b, v->h->n_fds);
	crac_img_puts(b, " descriptors carried; the files they name unchanged");
	return 0;
}

/* ---- the table ---------------------------------------------------------------------------------------- */

static const struct {
	const char *name;
	int (*run)(const struct crac_img_checker *k, struct crac_img_buf *b);
} checks[CRAC_CHECK_COUNT] = {
	[CRAC_CHECK_OWNER] = { "owner", check_owner },
	[CRAC_CHECK_LAYOUT] = { "layout", check_layout },
	[CRAC_CHECK_PAGES] = { "pages", check_pages },
	[CRAC_CHECK_CPU] = { "cpu", check_cpu },
	[CRAC_CHECK_VDSO] = { "vdso", check_vdso },
	[CRAC_CHECK_PROCESS] = { "process", check_process },
	[CRAC_CHECK_FILES] = { "files", check_files },
	[CRAC_CHECK_FDS] = { "fds", check_fds },
};

const char *crac_img_check_name(int id)
{
	return id >= 0 && id < CRAC_CHECK_COUNT ? checks[id].name : "?";
}

int crac_img_check(int id, const struct crac_img_checker *k, char *msg, size_t msglen)
{
	struct crac_img_buf b = mbuf(msg, msglen);

	if (id < 0 || id >= CRAC_CHECK_COUNT)
		return -EINVAL;
	return checks[id].run(k, &b);
}

int crac_img_check_all(const struct crac_img_checker *k, int *failed, char *msg, size_t msglen)
{
	for (int id = 0; id < CRAC_CHECK_COUNT; id++) {
		int rc = crac_img_check(id, k, msg, msglen);
		if (rc < 0) {
			if (failed)
				*failed = id;
			return rc;
		}
	}
	return 0;
}

/* ---- the chain below an incremental image ---------------------------------------------- */

int crac_img_parent_path(const struct crac_img_view *v, const char *dir, char *out, size_t cap)
{
	const char *p = crac_img_str(v, v->h->parent);
	size_t dl = strlen(dir), pl = strlen(p);

	if (p[0] == '/') {
		if (pl + 1 > cap)
			return -ENAMETOOLONG;
		memcpy(out, p, pl + 1);
		return 0;
	}
	if (dl + 1 + pl + 1 > cap)
		return -ENAMETOOLONG;
	memcpy(out, dir, dl);
	out[dl] = '/';
	memcpy(out + dl + 1, p, pl + 1);
	return 0;
}

/* The real path of directory fd (/proc/self/fd) into out: its length, or
 * -ENAMETOOLONG (also without /proc). */
static long fd_path(long fd, char *out, size_t cap)
{
	char link[40];
	struct crac_img_buf b = mbuf(link, sizeof(link));

	crac_img_puts(&b, "/proc/self/fd/");
	crac_img_putu(&b, (uint64_t)fd);
	long n = sys_readlinkat(AT_FDCWD, link, out, cap);
	if (n <= 0 || out[0] != '/' || (size_t)n >= cap)
		return -ENAMETOOLONG;
	out[n] = 0;
	return n;
}

/*
 * The path of v's parent, for a relative parent name whose path composed
 * from its child's ("DIR/../c7/../c6/...") does not fit: that grows by a
 * name at each level, and under a long directory went over
 * CRAC_IMG_PATH_MAX at the deeper levels, where the image engine had
 * written the chain by absolute paths (a checkpoint that succeeded, a
 * restore that refused). The parent is looked up from the directory v was
 * opened as (dir_fd; or dir, opened here) and named by its real path
 * (/proc/self/fd); one that cannot be looked up (missing, not a
 * directory) gets the child's real path and its name, for
 * crac_img_open to say why (if that does not fit either: the lookup's
 * error). The parent's identity is checked after, as for any path.
 * -ENAMETOOLONG if it still does not fit, or without /proc.
 */
static int parent_path_by_fd(const struct crac_img_view *v, int dir_fd, const char *dir, char *out, size_t cap)
{
	const char *p = crac_img_str(v, v->h->parent);
	size_t pl = strlen(p);
	long opened = -1, pfd, n = -ENAMETOOLONG;

	if (p[0] == '/')
		return -ENAMETOOLONG;   /* an absolute one was taken as it is */
	if (dir_fd < 0 && dir && (opened = sys_openat(AT_FDCWD, dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) >= 0)
		dir_fd = (int)opened;
	if (dir_fd < 0)
		return -ENAMETOOLONG;
	if ((pfd = sys_openat(dir_fd, p, O_PATH | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		n = fd_path(pfd, out, cap);
		sys_close((int)pfd);
	} else if ((n = fd_path(dir_fd, out, cap)) >= 0) {
		if ((size_t)n + 1 + pl + 1 > cap) {
			n = pfd;   /* why the lookup failed: said instead */
		} else {
			out[n] = '/';
			memcpy(out + n + 1, p, pl + 1);
		}
	}
	if (opened >= 0)
		sys_close((int)opened);
	return n < 0 ? (int)n : 0;
}

void crac_img_chain_close(struct crac_img_chain *ch)
{
	for (uint32_t i = 0; i < ch->n; i++)
		crac_img_close(&ch->o[i]);
	ch->n = 0;
}

/* What is left in b for a message (for the first of two paths: half). */
static size_t left(const struct crac_img_buf *b)
{
	return b->len + 1 < b->cap ? b->cap - 1 - b->len : 0;
}

/* "parent image PATH of DIR" (i = 0) or "image PATH, N levels below DIR":
 * the first path takes at most half of what is left, so that both show. */
static void put_ancestor(struct crac_img_buf *b, const struct crac_img_chain *ch, uint32_t i, const char *dir)
{
	crac_img_puts(b, i == 0 ? "parent image " : "image ");
	crac_img_put_escaped_keep(b, ch->path[i], left(b) / 2);
	if (i == 0) {
		crac_img_puts(b, " of ");
	} else {
		crac_img_puts(b, ", ");
		crac_img_putu(b, i + 1);
		crac_img_puts(b, " levels below ");
	}
	crac_img_put_escaped(b, dir);
}

int crac_img_chain_open(const struct crac_img_view *v, const char *dir, unsigned flags, struct crac_img_chain *ch,
			void *buf, uint64_t cap, char *msg, size_t msglen)
{
	struct crac_img_buf b = mbuf(msg, msglen);
	const struct crac_img_view *child = v;
	const char *child_dir = dir;
	char *at = buf;
	static char why[CRAC_IMG_MSG_MAX];   /* the loader's stack is small; one checker at a time */
	int rc;

	ch->n = 0;
	for (uint32_t i = 0; i < v->h->depth; i++) {
		const struct crac_img_header *ch_h = child->h;
		struct crac_img_opened *o = &ch->o[i];
		struct crac_img_view *pv = &ch->v[i];
		if (crac_img_parent_path(child, child_dir, ch->path[i], sizeof(ch->path[i])) < 0 &&
		    (rc = parent_path_by_fd(child, i ? ch->o[i - 1].dir_fd : -1, i ? NULL : dir, ch->path[i],
					    sizeof(ch->path[i]))) < 0) {
			if (rc == -ENAMETOOLONG) {
				crac_img_puts(&b, "the path of the image below ");
				crac_img_put_escaped(&b, child_dir);
				crac_img_puts(&b, " is too long");
			} else {
				/* not there: named by its name in its child */
				crac_img_puts(&b, i == 0 ? "parent image " : "image ");
				crac_img_put_escaped_keep(&b, crac_img_str(child, ch_h->parent), left(&b) / 2);
				crac_img_puts(&b, " of ");
				crac_img_put_escaped(&b, child_dir);
				crac_img_puts(&b, rc == -ENOENT ? " is missing" : " cannot be opened");
				crac_img_put_err(&b, rc);
				crac_img_puts(&b, " (an incremental image needs every image below it)");
			}
			goto fail;
		}
		if ((rc = crac_img_open(ch->path[i], o, why, sizeof(why))) < 0) {
			put_ancestor(&b, ch, i, dir);
			crac_img_puts(&b, rc == -ENOENT ? " is missing: " : " cannot be opened: ");
			crac_img_put_escaped_keep(&b, why, 64);   /* its end (the reason) stays */
			crac_img_puts(&b, " (an incremental image needs every image below it)");
			goto fail;
		}
		ch->n = i + 1;
		uint64_t used = (uint64_t)(at - (char *)buf);
		if ((rc = crac_img_read_header(o, at, cap - used, pv, why, sizeof(why))) < 0) {
			put_ancestor(&b, ch, i, dir);
			crac_img_puts(&b, ": ");
			crac_img_put_escaped_keep(&b, why, 0);
			goto fail;
		}
		at += (o->header_size + 7) & ~7ull;
		if (pv->h->crc != ch_h->parent_crc || pv->h->created_ns != ch_h->parent_created_ns ||
		    pv->h->pages_size != ch_h->parent_pages_size) {
			put_ancestor(&b, ch, i, dir);
			crac_img_puts(&b, " was replaced or changed since the image above it was written (header crc32c ");
			crac_img_putx(&b, pv->h->crc);
			crac_img_puts(&b, ", recorded ");
			crac_img_putx(&b, ch_h->parent_crc);
			crac_img_puts(&b, ")");
			rc = -ESTALE;
			goto fail;
		}
		if (pv->h->depth + 1 != ch_h->depth) {
			put_ancestor(&b, ch, i, dir);
			crac_img_puts(&b, " does not continue the chain (damaged image)");
			rc = -EBADMSG;
			goto fail;
		}
		struct crac_img_checker k = { .v = pv, .o = o, .dir = ch->path[i], .flags = flags };
		struct crac_img_buf wb = mbuf(why, sizeof(why));
		if ((rc = check_owner(&k, &wb)) < 0) {
			crac_img_put_escaped_keep(&b, why, 0);
			goto fail;
		}
		if (o->pages_size != pv->h->pages_size) {
			put_ancestor(&b, ch, i, dir);
			crac_img_puts(&b, ": its pages file is truncated or damaged (");
			crac_img_putu(&b, o->pages_size);
			crac_img_puts(&b, " bytes, its header says ");
			crac_img_putu(&b, pv->h->pages_size);
			crac_img_puts(&b, ")");
			rc = -EBADMSG;
			goto fail;
		}
		child = pv;
		child_dir = ch->path[i];
	}
	for (uint32_t i = 0; i < v->h->n_refs; i++) {
		const struct crac_img_ref *r = &v->refs[i];
		const struct crac_img_view *av = &ch->v[r->depth - 1];
		const struct crac_img_chunk *k = r->chunk < av->h->n_chunks ? &av->chunks[r->chunk] : NULL;
		if (!k || r->addr < k->addr || r->addr - k->addr + r->len > k->len) {
			crac_img_puts(&b, "page reference #");
			crac_img_putu(&b, i);
			crac_img_puts(&b, " of ");
			crac_img_put_escaped_keep(&b, dir, left(&b) / 2);
			crac_img_puts(&b, " names no stored pages of ");
			crac_img_put_escaped(&b, ch->path[r->depth - 1]);
			crac_img_puts(&b, " (damaged image, or an image below it was rewritten)");
			rc = -EBADMSG;
			goto fail;
		}
	}
	return 0;
fail:
	crac_img_chain_close(ch);
	return rc;
}
