/* SPDX-License-Identifier: MIT */
/*
 * image_track.c - which pages a process wrote since its last image, for
 * incremental checkpoints (struct crac_img_ref in image/image.h).
 *
 * There is no soft-dirty tracking on the kernels this runs on (FACTS.md),
 * so the write-protect mode of userfaultfd does it, in its asynchronous
 * form (UFFD_FEATURE_WP_ASYNC, Linux 6.7): a write to a protected page is
 * resolved by the kernel itself, without a handler thread, and only clears
 * the page's protection; PAGEMAP_SCAN then reports PAGE_IS_WRITTEN for it.
 * "Arming" registers the private anonymous mappings (anon, heap, stack)
 * in write-protect mode and protects every page present or swapped out
 * (PM_SCAN_WP_MATCHING); the next checkpoint reads the written bit.
 *
 * What was probed on Linux 6.18, as root and as an unprivileged user with
 * UFFD_USER_MODE_ONLY (the only userfaultfd such a user gets here):
 *   - a write by the kernel (read(2) into a protected page, present or
 *     not yet populated) is seen as a write, like a write of the program;
 *   - an unpopulated page (pte none) is reported written and not present:
 *     it reads as zero. MADV_DONTNEED of a page, written or not, makes it
 *     exactly that on anonymous memory: so a dropped page is never taken
 *     from the parent image. (On a private FILE mapping the kernel leaves
 *     a uffd-wp marker instead, reported as swapped and not written, and
 *     the page reads the file again: file mappings are therefore never
 *     tracked; their few written pages are stored whole every time.)
 *   - protecting a hole (no page) with PM_SCAN_WP_MATCHING installs such
 *     markers on anonymous memory too: arming only protects pages present
 *     or swapped (category_anyof_mask), holes stay holes;
 *   - mremap moving a range drops its registration (no EVENT_REMAP): the
 *     moved pages report written and no PAGE_IS_WPALLOWED; new mappings
 *     are not registered either. Such memory is stored whole.
 *   - fork: the child's mappings are not registered (no EVENT_FORK) and
 *     its writes do not touch the parent's bits; the parent's writes
 *     after the fork (copy-on-write faults) are seen. The child inherits
 *     the descriptor, whose context is the parent's address space: a child
 *     never uses it (pid check), it opens its own.
 *   - lazy restore (CRAC_LAZY_TRACK, image_lazy.c), as root (the lazy
 *     loader's userfaultfd handles kernel faults, which needs privilege):
 *     one userfaultfd with UFFD_FEATURE_WP_ASYNC and the FORK, REMAP,
 *     REMOVE and UNMAP events registers a range in MISSING|WP mode;
 *     UFFDIO_COPY with UFFDIO_COPY_MODE_WP installs a page reported
 *     WPALLOWED, present and not WRITTEN; a write makes it WRITTEN with no
 *     message to read (async). A hole never fetched is not present (the
 *     scans here and the capture's never take it: a page the loader has
 *     not loaded yet would be lost, hence crac__img_lazy_finish first).
 *     UFFDIO_ZEROPAGE installs the zero page unprotected (WRITTEN, PFNZERO).
 *     Registering the same range again in WP mode alone keeps MISSING
 *     (a fault in a hole still waits for a reader); another userfaultfd
 *     gets EBUSY; closing the lazy one drops its registration and every
 *     protection (all WRITTEN, no WPALLOWED), after which ours registers.
 *     So the hand-over must happen with the threads stopped
 *     (img_track_lazy_handover). Unprivileged, UFFDIO_API refuses the
 *     FORK event (EPERM): there is no lazy restore to track there.
 *   - cost: registering is free; protecting 1 GiB of present pages takes
 *     50-130 ms here (once, when tracking starts); a scan of 1 GiB ~5 ms;
 *     the first write to each protected page takes a minor fault.
 */
#include "engines/image_engine.h"
#include "image/check.h"
#include "image/dir.h"
#include "runtime/checks.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

/* In libcrac's memory, hence in every image: a restored process and a
 * forked child correct it (img_track_restored, the pid check). */
struct img_track crac__img_track = { .uffd = -1, .stale_fd = -1 };

int img_track_open(char *why, size_t len)
{
	struct img_track *t = &crac__img_track;

	if (t->uffd >= 0 && t->pid == getpid())
		return 0;
	t->uffd = -1;   /* a forked child's copy: its context is the parent's memory */
	t->armed = false;
	t->base[0] = 0;
	t->chain_known = false;
	long fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0) {
		snprintf(why, len, "userfaultfd: %s", img_strerror(errno));
		return -errno;
	}
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
	if (ioctl((int)fd, UFFDIO_API, &api) < 0 || !(api.features & UFFD_FEATURE_WP_ASYNC)) {
		snprintf(why, len, "this kernel's userfaultfd has no asynchronous write-protect mode (Linux 6.7)");
		close((int)fd);
		return -ENOTSUP;
	}
	t->uffd = (int)fd;
	t->pid = getpid();
	crac__internal_fd(t->uffd, true);
	return 0;
}

/* PAGEMAP_SCAN (local definitions: the installed headers are too old) */
struct trk_region { uint64_t start, end, categories; };
struct trk_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define TRK_PAGEMAP_SCAN _IOWR('f', 16, struct trk_scan_arg)
#define TRK_PM_SCAN_WP_MATCHING 0x1ull
#define TRK_PM_SCAN_CHECK_WPASYNC 0x2ull

/* Write-protects the pages present or swapped of [s, e) whose categories
 * match (PM_SCAN_WP_MATCHING: category_inverted / category_mask; `ret`,
 * what the kernel reports, only shapes its regions). */
static int protect_matching(int pagemap_fd, uint64_t s, uint64_t e, uint64_t inverted, uint64_t mask, uint64_t ret)
{
	struct trk_region vec[64];

	while (s < e) {
		struct trk_scan_arg a = {
			.size = sizeof(a), .flags = TRK_PM_SCAN_WP_MATCHING | TRK_PM_SCAN_CHECK_WPASYNC,
			.start = s, .end = e, .vec = (uint64_t)(uintptr_t)vec, .vec_len = 64,
			.category_inverted = inverted, .category_mask = mask,
			.category_anyof_mask = IMG_PAGE_IS_PRESENT | IMG_PAGE_IS_SWAPPED,
			.return_mask = ret,
		};
		long n = syscall(SYS_ioctl, pagemap_fd, TRK_PAGEMAP_SCAN, &a);
		if (n < 0)
			return -errno;
		if (a.walk_end <= s)
			return -EIO;
		s = a.walk_end;
	}
	return 0;
}

/* Protects the written pages (present or swapped) of [s, e). */
static int protect(int pagemap_fd, uint64_t s, uint64_t e)
{
	return protect_matching(pagemap_fd, s, e, 0, IMG_PAGE_IS_WRITTEN, IMG_PAGE_IS_WRITTEN);
}

/* Protects every page present or swapped of [s, e), written or not, but
 * the zero page: one the lazy loader may still have installed for a fault
 * read before the threads stopped (a page dropped with MADV_DONTNEED, which
 * must not become a reference to the parent's bytes). Unprotected, it
 * counts as written, and a zero page is stored as nothing. */
static int protect_all(int pagemap_fd, uint64_t s, uint64_t e)
{
	return protect_matching(pagemap_fd, s, e, IMG_PAGE_IS_PFNZERO, IMG_PAGE_IS_PFNZERO, IMG_PAGE_IS_PRESENT);
}

int img_track_register(uint64_t s, uint64_t e)
{
	struct uffdio_register r = { .range = { .start = s, .len = e - s }, .mode = UFFDIO_REGISTER_MODE_WP };

	/* registered already: a no-op */
	if (crac__img_track.uffd < 0 || ioctl(crac__img_track.uffd, UFFDIO_REGISTER, &r) < 0)
		return 1;   /* EBUSY: the lazy loader's; else not trackable: stored whole */
	return 0;
}

int img_track_mapping(int pagemap_fd, uint64_t s, uint64_t e)
{
	if (img_track_register(s, e))
		return 1;
	return protect(pagemap_fd, s, e);
}

/* /proc/self/maps into buf (len bytes, NUL-terminated): 0 or -errno. */
static int read_maps(char *buf, size_t len)
{
	int fd, rc = 0;
	size_t got = 0;

	if ((fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	for (ssize_t n; got + 1 < len && (n = read(fd, buf + got, len - 1 - got)) != 0;) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	if (rc == 0 && got + 1 >= len)
		rc = -E2BIG;
	buf[rc < 0 ? 0 : got] = 0;
	return rc;
}

/* The next mapping of the maps text that tracking takes (private anonymous,
 * not a reservation, not in a skipped range): [*s, *e), or false at the end. */
static bool next_trackable(char **rest, const uint64_t (*skip)[2], int n_skip, uint64_t *s, uint64_t *e)
{
	for (char *line; (line = img_maps_next(rest));) {
		struct img_maps_line m;
		if (!img_maps_parse(line, &m))
			continue;
		const char *name = m.name;
		bool anon = m.ino == 0 && (!*name || !strcmp(name, "[heap]") || !strcmp(name, "[stack]") ||
					   !strncmp(name, "[anon:", 6));
		if (!anon || m.perms[3] != 'p' || (m.perms[0] == '-' && m.perms[1] == '-'))
			continue;   /* shared, file, or a reservation */
		bool skipped = false;
		for (int k = 0; k < n_skip; k++)
			skipped |= m.start < skip[k][1] && m.end > skip[k][0];
		if (skipped)
			continue;
		*s = m.start;
		*e = m.end;
		return true;
	}
	return false;
}

/*
 * Registers and protects every private anonymous mapping of the process
 * but the skipped ranges. System calls only (threads may be stopped): the
 * maps are read into `buf` (len bytes, from the caller's arena or stack).
 */
int img_track_arm(const uint64_t (*skip)[2], int n_skip, char *buf, size_t len, char *why, size_t wlen)
{
	struct img_track *t = &crac__img_track;
	int pm = -1, rc = 0;

	t->armed = false;
	if (t->uffd < 0)
		return -EBADF;
	if ((pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(why, wlen, "/proc/self/pagemap: %s", img_strerror(errno));
		return -errno;
	}
	if ((rc = read_maps(buf, len)) < 0) {
		snprintf(why, wlen, "/proc/self/maps: %s", img_strerror(-rc));
		close(pm);
		return rc;
	}
	uint64_t s64, e64;
	for (char *rest = buf; next_trackable(&rest, skip, n_skip, &s64, &e64);) {
		unsigned long long s = s64, e = e64;
		if ((rc = img_track_mapping(pm, s, e)) < 0) {
			snprintf(why, wlen, "PAGEMAP_SCAN write-protect of %#llx-%#llx: %s", s, e, img_strerror(-rc));
			close(pm);
			return rc;
		}
	}
	close(pm);
	t->armed = true;
	return 0;
}

/*
 * The restored process, before its other threads run: if the image was
 * made with incremental checkpoints asked for, tracking starts now, with
 * that image as the base. System calls only (no lock is safe yet); the
 * descriptor is declared internal later (img_track_restored_late).
 */
void img_track_restored(const struct crac_img_resume *res)
{
	struct img_track *t = &crac__img_track;
	char why[256];

	t->stale_fd = t->uffd;   /* a number of the checkpointed process */
	t->uffd = -1;
	t->armed = false;
	t->base[0] = 0;
	t->chain_known = false;   /* checked by the checkpointed process: again here */
	t->pid = 0;
	if (!(res->image_flags & CRAC_IMGF_TRACK) || !res->image_dir)
		return;
	const char *dir = (const char *)(uintptr_t)res->image_dir;
	if (strlen(dir) >= sizeof(t->base))
		return;
	long fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
	if (fd < 0)
		return;
	if (ioctl((int)fd, UFFDIO_API, &api) < 0 || !(api.features & UFFD_FEATURE_WP_ASYNC)) {
		close((int)fd);
		return;
	}
	t->uffd = (int)fd;
	t->pid = getpid();
	/* the maps text: a temporary mapping of our own, not the program's */
	size_t len = 8u << 20;
	char *buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (buf == MAP_FAILED)
		return;
	uint64_t skip[2][2] = {
		{ res->loader_lo, res->loader_hi },
		{ (uint64_t)(uintptr_t)buf, (uint64_t)(uintptr_t)buf + len },
	};
	if (img_track_arm(skip, 2, buf, len, why, sizeof(why)) == 0) {
		memcpy(t->base, dir, strlen(dir) + 1);
		t->base_crc = res->image_crc;
		t->base_depth = res->image_depth;
		t->base_pages_size = res->image_pages_size;
		t->base_created_ns = res->image_created_ns;
	}
	munmap(buf, len);
}

/* Then, once locks may be taken: the new descriptor is crac's own. */
void img_track_restored_late(void)
{
	struct img_track *t = &crac__img_track;

	if (t->stale_fd >= 0)
		crac__internal_fd(t->stale_fd, false);
	t->stale_fd = -1;
	if (t->uffd >= 0)
		crac__internal_fd(t->uffd, true);
}

/*
 * Threads stopped, before the capture reads the maps: a lazy loader that
 * tracked the writes to its mappings (CRAC_LAZY_TRACK) and serves on
 * (crac__img_lazy_serving) hands them over to our descriptor. Its
 * registration cannot be changed in place (see the probe above), and
 * closing its descriptor drops every protection: so the written pages of
 * every trackable mapping are noted first (present or swapped and
 * WRITTEN), the loader exits, and every trackable mapping is registered
 * with ours and protected but for the noted pages. Nothing runs meanwhile
 * but this thread, whose own writes (its stack, the resume block) the
 * capture stores anyway (add_refs). Without our descriptor, or when the
 * noted pages do not fit, the loader exits alone and its mappings are
 * stored whole, as with no tracking. System calls only.
 */
void img_track_lazy_handover(void)
{
	struct img_track *t = &crac__img_track;
	struct trk_region vec[256];
	const size_t mlen = 8u << 20, wcap = 1u << 20;   /* maps text; written ranges */
	uint64_t (*w)[2] = MAP_FAILED;
	char *buf = MAP_FAILED;
	size_t nw = 0;
	int pm = -1;
	bool ok = false;
	uint64_t s, e, skip[2][2] = { { 0, 0 }, { 0, 0 } };   /* our two buffers */

	/* pages mremap moved: their protection cleared first (not settled:
	 * the loader is gone, nothing of its mappings tracked) */
	if (!crac__img_lazy_settle() || !crac__img_lazy_serving())
		return;
	if (t->uffd < 0 || t->pid != getpid() || !t->armed)
		goto leave;
	buf = mmap(NULL, mlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	w = mmap(NULL, wcap * sizeof(*w), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (buf == MAP_FAILED || w == MAP_FAILED || (pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) < 0 ||
	    read_maps(buf, mlen) < 0)
		goto leave;
	skip[0][0] = (uint64_t)(uintptr_t)buf;
	skip[0][1] = skip[0][0] + mlen;
	skip[1][0] = (uint64_t)(uintptr_t)w;
	skip[1][1] = skip[1][0] + wcap * sizeof(*w);
	/* 1. the written pages, in address order */
	ok = true;
	for (char *rest = buf; ok && next_trackable(&rest, skip, 2, &s, &e);) {
		for (uint64_t at = s; ok && at < e;) {
			struct trk_scan_arg a = {
				.size = sizeof(a), .start = at, .end = e, .vec = (uint64_t)(uintptr_t)vec, .vec_len = 256,
				.category_mask = IMG_PAGE_IS_WRITTEN,
				.category_anyof_mask = IMG_PAGE_IS_PRESENT | IMG_PAGE_IS_SWAPPED,
				.return_mask = IMG_PAGE_IS_WRITTEN,
			};
			long n = syscall(SYS_ioctl, pm, TRK_PAGEMAP_SCAN, &a);
			if (n < 0 || a.walk_end <= at) {
				ok = false;
				break;
			}
			for (long i = 0; i < n && ok; i++) {
				if (nw && w[nw - 1][1] >= vec[i].start) {   /* adjoining (or returned again) */
					if (vec[i].end > w[nw - 1][1])
						w[nw - 1][1] = vec[i].end;
				} else if (nw < wcap) {
					w[nw][0] = vec[i].start;
					w[nw++][1] = vec[i].end;
				} else {
					ok = false;
				}
			}
			at = a.walk_end;
		}
	}
leave:
	/* 2. the loader goes, and its registrations and protections with it */
	crac__img_lazy_leave();
	/* 3. ours: the maps again (the loader's own area is gone, mappings
	 * may have merged), every page protected but the written ones */
	if (ok && read_maps(buf, mlen) == 0) {
		size_t k = 0;
		for (char *rest = buf; next_trackable(&rest, skip, 2, &s, &e);) {
			if (img_track_register(s, e))
				continue;   /* not trackable: stored whole */
			while (k > 0 && w[k - 1][1] > s)
				k--;
			while (k < nw && w[k][1] <= s)
				k++;
			/* the gaps between written ranges inside [s, e) */
			for (uint64_t at = s; at < e;) {
				uint64_t ge = k < nw && w[k][0] < e ? (w[k][0] > at ? w[k][0] : at) : e;
				if (ge > at && protect_all(pm, at, ge) < 0) {
					/* not expected; what is left unprotected
					 * counts as written: stored, never lost */
					break;
				}
				if (ge >= e)
					break;
				at = w[k][1];
				k++;
			}
		}
	}
	if (pm >= 0)
		close(pm);
	if (buf != MAP_FAILED)
		munmap(buf, mlen);
	if (w != MAP_FAILED)
		munmap(w, wcap * sizeof(*w));
}

/* ---- the checkpoint's side ------------------------------------------------------ */

/* Were incremental checkpoints asked for? ($CRAC_IMAGE_INCREMENTAL=1, or
 * the option flag once include/crac.h has one: `crac checkpoint
 * --incremental` sets it through the control endpoint.) */
bool img_incr_wanted(const struct crac_round *r)
{
	const char *e = getenv("CRAC_IMAGE_INCREMENTAL");

	if (r->opts.flags & CRAC_INCREMENTAL)
		return true;
	return e && (!strcmp(e, "1") || !strcmp(e, "yes") || !strcmp(e, "on"));
}

/* dir made absolute: the real path of its parent directory, then its name. */
static int abs_image_path(const char *dir, char *out, size_t len)
{
	char parent[PATH_MAX], real[PATH_MAX];
	const char *base;

	if (crac_img_split_path(dir, parent, sizeof(parent), &base) < 0 || !realpath(parent, real))
		return -1;
	size_t bl = strlen(base);
	while (bl > 1 && base[bl - 1] == '/')
		bl--;
	if ((size_t)snprintf(out, len, "%s%s%.*s", real, strcmp(real, "/") ? "/" : "", (int)bl, base) >= len)
		return -1;
	return 0;
}

/* Same directory (device and inode)? */
static bool same_dir(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* ---- the images below: checked once, then known by their stat identity ---------- */

static void file_id(const struct stat *st, struct img_file_id *id)
{
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = (uint64_t)st->st_size;
	id->mtime_ns = st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	id->ctime_ns = st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
}

static bool same_id(const struct img_file_id *a, const struct img_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns &&
	       a->ctime_ns == b->ctime_ns;
}

/* Records image i of ids: its path and the identity of the files that
 * were opened and validated (o). False if a path is too long or an fstat
 * fails (then nothing is known: the images are opened next time). */
static bool record(struct img_chain_ids *ids, uint32_t i, const char *path, const struct crac_img_opened *o)
{
	struct stat st[3];
	size_t n = strlen(path);

	if (n >= sizeof(ids->img[i].path) || fstat(o->dir_fd, &st[0]) < 0 || fstat(o->header_fd, &st[1]) < 0 ||
	    fstat(o->pages_fd, &st[2]) < 0)
		return false;
	memcpy(ids->img[i].path, path, n + 1);
	file_id(&st[0], &ids->img[i].dir);
	file_id(&st[1], &ids->img[i].header);
	file_id(&st[2], &ids->img[i].pages);
	return true;
}

/*
 * The images of ids are still the files that were checked: same directory,
 * header and pages file (device, inode, size, mtime, ctime; a file made
 * anew, rewritten, truncated, chmod'ed or chown'ed differs), by the same
 * paths. About 3 stat calls an image, against reading and validating every
 * header of the chain (bench/ckpt_incr.c: 7 images below, 2.5 MiB of
 * headers).
 */
bool img_chain_unchanged(const struct img_chain_ids *ids)
{
	char path[4096 + 16];
	struct stat st;
	struct img_file_id id;

	for (uint32_t i = 0; i < ids->n; i++) {
		const char *dir = ids->img[i].path;
		if (stat(dir, &st) < 0)
			return false;
		file_id(&st, &id);
		if (id.dev != ids->img[i].dir.dev || id.ino != ids->img[i].dir.ino)
			return false;
		snprintf(path, sizeof(path), "%s/%s", dir, CRAC_IMG_HEADER_FILE);
		if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return false;
		file_id(&st, &id);
		if (!same_id(&id, &ids->img[i].header))
			return false;
		snprintf(path, sizeof(path), "%s/%s", dir, CRAC_IMG_PAGES_FILE);
		if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return false;
		file_id(&st, &id);
		if (!same_id(&id, &ids->img[i].pages))
			return false;
	}
	return true;
}

static void full_because(struct img_capture *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void full_because(struct img_capture *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->incr.why_buf, sizeof(c->incr.why_buf), fmt, ap);
	va_end(ap);
	c->incr.why_full = c->incr.why_buf;
}

/*
 * Before the threads stop: decides whether this checkpoint is incremental
 * and, if so, builds the parent's view (c->incr). Never fails the
 * checkpoint: without a usable parent the image is full, and why is said
 * at info level (img_incr_done). The whole chain below the parent is
 * checked here as a restore would (a parent that cannot be restored is no
 * parent), and the target must not be an image of that chain.
 */
void img_incr_prepare(struct img_capture *c, const struct crac_round *r)
{
	struct img_track *t = &crac__img_track;
	struct img_incr *in = &c->incr;
	char why[512], target[PATH_MAX];
	struct crac_img_opened o = { .dir_fd = -1, .header_fd = -1, .pages_fd = -1 };
	struct crac_img_chain *ch = NULL;
	void *hbuf = NULL, *abuf = NULL;
	size_t hmapped = 0;

	if (!img_incr_wanted(r))
		return;
	c->img_flags |= CRAC_IMGF_TRACK;
	/* Keep-running: tracking goes on from this image. */
	if ((r->opts.flags & CRAC_KEEP_RUNNING) && c->use_scan) {
		if (img_track_open(why, sizeof(why)) == 0)
			in->reset = true;
		else
			crac__log(CRAC_LOG_INFO, "incremental checkpoints: cannot track the pages this process writes: %s",
				  why);
	}
	bool tracking = t->uffd >= 0 && t->pid == getpid() && t->armed && t->base[0];
	if (!c->use_scan) {
		in->why_full = "PAGEMAP_SCAN is missing (Linux 6.7)";
		return;
	}
	if (!tracking) {
		in->why_full = "this process has no image to be incremental to: it was neither restored from an image "
			       "made with incremental checkpoints asked for, nor checkpointed with keep-running since";
		return;
	}
	if (abs_image_path(r->opts.image_dir, target, sizeof(target)) < 0) {
		full_because(c, "cannot resolve the path of %s", r->opts.image_dir);
		return;
	}
	if (!strcmp(target, t->base) || same_dir(target, t->base)) {
		full_because(c, "%s is its own parent image %s: an image cannot replace the image below it", target,
			     t->base);
		return;
	}
	int rc = crac_img_open(t->base, &o, why, sizeof(why));
	/* From the arena, not malloc's: once malloc's threshold had grown and
	 * the buffer came from the brk heap, its free() took ~9 ms (strace,
	 * every incremental checkpoint of bench/ckpt_incr.c; the heap is
	 * write-protected by the tracking). Nor a fresh mapping: the arena is
	 * kept between the checkpoints of a process (image.c), its pages are
	 * touched already. */
	if (rc == 0 && !(hbuf = img_scratch(&c->arena, o.header_size + 8, &hmapped)))
		rc = -ENOMEM;
	struct crac_img_view pv;
	if (rc == 0)
		rc = crac_img_read_header(&o, hbuf, o.header_size, &pv, why, sizeof(why));
	if (rc < 0) {
		full_because(c, "parent image %s: %s", t->base, rc == -ENOMEM && !hbuf ? "out of memory" : why);
		goto out;
	}
	if (pv.h->crc != t->base_crc || pv.h->created_ns != t->base_created_ns ||
	    pv.h->pages_size != t->base_pages_size) {
		full_because(c, "parent image %s was replaced or changed since this process was restored from it or "
			     "wrote it", t->base);
		goto out;
	}
	/* A parent another user owns (this process was restored from it with
	 * --trust-owner): a child of it would restore only with --trust-owner
	 * too, for every later image of the chain; a full image needs no
	 * one's trust. */
	for (int i = 0; i < 3; i++)
		if (o.uid[i] != (uint32_t)geteuid()) {
			full_because(c, "parent image %s%s is owned by uid %u, not by this process's user (uid %u; it "
				     "was restored with --trust-owner?): an image above it would restore only with "
				     "--trust-owner too", t->base, i == 0 ? "" : i == 1 ? "/" CRAC_IMG_HEADER_FILE :
				     "/" CRAC_IMG_PAGES_FILE, o.uid[i], (unsigned)geteuid());
			goto out;
		}
	if (pv.h->depth + 1 > CRAC_IMG_MAX_CHAIN) {
		full_because(c, "%u images below would be too many (at most %u): a full image starts a new chain",
			     pv.h->depth + 1, CRAC_IMG_MAX_CHAIN);
		goto out;
	}
	/* The images below the new one: the parent, then the chain below it
	 * as a restore will see it. That chain was validated when this
	 * process wrote the parent: if its files are still the ones checked
	 * then (stat identity), they are not read again. */
	struct img_chain_ids *ids = img_arena_alloc(&c->arena, sizeof(*ids));
	if (!ids || !record(ids, 0, t->base, &o)) {
		full_because(c, "%s", ids ? "cannot fstat the parent image's files" :
					    "the images below do not fit the engine arena");
		goto out;
	}
	ids->n = 1;
	if (pv.h->depth && t->chain_known && t->chain.n == pv.h->depth && img_chain_unchanged(&t->chain)) {
		memcpy(&ids->img[1], &t->chain.img[0], t->chain.n * sizeof(ids->img[0]));
		ids->n += t->chain.n;
	} else if (pv.h->depth) {
		const uint64_t acap = 64ull << 20;
		if (!(ch = malloc(sizeof(*ch))) || !(abuf = malloc(acap))) {
			full_because(c, "out of memory reading the images below %s", t->base);
			goto out;
		}
		if (crac_img_chain_open(&pv, t->base, 0, ch, abuf, acap, why, sizeof(why)) < 0) {
			full_because(c, "%s", why);
			goto out;
		}
		for (uint32_t i = 0; i < ch->n; i++)
			if (!record(ids, ids->n++, ch->path[i], &ch->o[i])) {
				full_because(c, "cannot fstat the files of image %s below %s", ch->path[i], t->base);
				goto out;
			}
	}
	struct stat tst;
	if (stat(target, &tst) == 0)
		for (uint32_t i = 1; i < ids->n; i++)
			if (tst.st_dev == ids->img[i].dir.dev && tst.st_ino == ids->img[i].dir.ino) {
				full_because(c, "%s is an image below its parent %s: it cannot be replaced", target,
					     t->base);
				goto out;
			}
	/* The parent's view: its own chunks at depth 1, its references one
	 * deeper, where they are in the header read (add_refs walks both in
	 * address order; no merged copy, whose fresh pages cost a page fault
	 * each). The header stays until the capture is closed. */
	in->pchunks = pv.chunks;
	in->n_pchunks = pv.h->n_chunks;
	in->prefs = pv.refs;
	in->n_prefs = pv.h->n_refs;
	in->n_base = in->n_pchunks + in->n_prefs;
	in->hmap = hmapped ? hbuf : NULL;
	in->hmap_size = hmapped;
	hmapped = 0;
	/* Named relative to the new image when both are in one directory
	 * (the two can move together), else by its absolute path. */
	char tp[PATH_MAX], bp[PATH_MAX];
	const char *tb, *bb;
	if (crac_img_split_path(target, tp, sizeof(tp), &tb) == 0 &&
	    crac_img_split_path(t->base, bp, sizeof(bp), &bb) == 0 && !strcmp(tp, bp) &&
	    strlen(bb) + 4 <= sizeof(in->parent)) {
		memcpy(in->parent, "../", 3);
		memcpy(in->parent + 3, bb, strlen(bb) + 1);
	} else {
		memcpy(in->parent, t->base, sizeof(in->parent));   /* NUL-terminated within */
	}
	in->parent_crc = pv.h->crc;
	in->parent_created_ns = pv.h->created_ns;
	in->parent_pages_size = pv.h->pages_size;
	in->depth = pv.h->depth + 1;
	in->chain = ids;
	in->on = true;
out:
	if (ch)
		crac_img_chain_close(ch);
	free(ch);
	free(abuf);
	if (hmapped)
		munmap(hbuf, hmapped);
	crac_img_close(&o);
}

/*
 * After the checkpoint: on success with keep-running, the new image is
 * the base of the next one; on failure after pages were protected again,
 * there is no base any more (the bits no longer say what changed since
 * the old one). Says at info level why an image asked to be incremental
 * is full.
 */
void img_incr_done(struct img_capture *c, const struct crac_round *r, bool ok)
{
	struct img_track *t = &crac__img_track;
	struct img_incr *in = &c->incr;

	if (!(c->img_flags & CRAC_IMGF_TRACK))
		return;
	if (ok && in->why_full)
		crac__log(CRAC_LOG_INFO, "incremental checkpoint: a full image was written to %s: %s",
			  r->opts.image_dir, in->why_full);
	if (!in->reset)
		return;
	t->chain_known = false;
	if (!ok || abs_image_path(r->opts.image_dir, t->base, sizeof(t->base)) < 0) {
		t->base[0] = 0;
		return;
	}
	/* What is below the new base, as checked by this checkpoint (none
	 * below a full image); needs c's arena, hence called before it is
	 * freed. */
	if (in->on && in->chain) {
		memcpy(&t->chain, in->chain, sizeof(t->chain));
		t->chain_known = true;
	} else if (!in->on) {
		t->chain.n = 0;
		t->chain_known = true;
	}
	t->armed = true;
	t->base_crc = c->header_crc;
	t->base_depth = c->hdr.depth;
	t->base_pages_size = c->hdr.pages_size;
	t->base_created_ns = c->hdr.created_ns;
}
