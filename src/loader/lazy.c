/* SPDX-License-Identifier: MIT */
/*
 * lazy.c - the loader's half of lazy restore (see struct crac_img_lazy in
 * image/image.h for the whole picture, and engines/image_lazy.c for the
 * thread that does the loading).
 *
 *   lazy_open       before the point of no return: a userfaultfd that
 *                   also handles faults taken inside system calls, with the
 *                   events that keep anonymous semantics (remove = DONTNEED
 *                   and MADV_FREE, unmap, remap, fork); or why there is none
 *   (which mappings are left to it: crac_img_lazy_candidate, image/format.c)
 *                   (and, for an image that asks for incremental checkpoints,
 *                   asynchronous write-protect: CRAC_LAZY_TRACK)
 *   lazy_register   one mapping, whole (registering part of a mapping would
 *                   split it, and mremap of the original range would fail)
 *   lazy_start      the area (struct, segments, chunk table, chunk buffer,
 *                   stack, thread pointer page), and the thread, cloned into
 *                   the restored libcrac's crac__img_lazy_main with a file
 *                   table of its own that holds the userfaultfd and the
 *                   pages file (read with pread: a mapping of it would let
 *                   a change after verification through, and a truncation
 *                   would be a SIGBUS); for an incremental image also the
 *                   pages files of the images below it, whose chunks the
 *                   lazy mappings' references name
 *
 * Why only with a userfaultfd that handles kernel faults: unprivileged, the
 * kernel here grants UFFD_USER_MODE_ONLY alone (vm.unprivileged_userfaultfd
 * is 0), and then read(fd, buf) into a page not loaded yet fails with
 * EFAULT instead of waiting for it. Such a restore would be wrong, so it is
 * eager instead, and `--stats` / `--lazy` say why.
 */
#include "loader/lazy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#define P CRAC_IMG_PAGE
#define LAZY_STACK (256u << 10)

#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

/* The lazy mappings are write-protect registered too (CRAC_LAZY_TRACK). */
static bool lazy_track;
/* The userfaultfd moves pages in (CRAC_LAZY_MOVE). */
static bool lazy_move;

/* clone(flags, sp, ptid, ctid, tls): see sys.h */
SYS_CLONE_TRAMPOLINE(lazy_clone, "");

int lazy_open(int *mode, bool track, bool move)
{
	const uint64_t want = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
			      UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP;
	/* Asked for, not required: without it the lazy mappings are simply
	 * stored whole by the next checkpoint, as before. */
	const uint64_t wp = track ? UFFD_FEATURE_WP_ASYNC : 0;
	/* Asked for, not required either: without it every page is copied.
	 * Not with tracking: a moved page cannot go in write-protected. */
	const uint64_t mv = move && !track ? CRAC_UFFD_FEATURE_MOVE : 0;
	long fd = SYS(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0);

	if (fd == -EPERM || fd == -EACCES) {
		/* /dev/userfaultfd: its permissions are the administrator's grant */
		long dev = sys_openat(AT_FDCWD, "/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		fd = dev;
		if (dev >= 0) {
			fd = SYS(SYS_ioctl, dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK, 0, 0, 0);
			sys_close(dev);
		}
		if (fd < 0) {
			*mode = CRAC_LAZY_OFF_PRIVILEGE;
			return -1;
		}
	}
	if (fd < 0) {
		*mode = CRAC_LAZY_OFF_KERNEL;
		return -1;
	}
	struct uffdio_api api = { .api = UFFD_API, .features = want | wp | mv };
	long rc = SYS(SYS_ioctl, fd, UFFDIO_API, &api, 0, 0, 0);
	if (rc < 0 && (wp || mv)) {
		/* a kernel without WP_ASYNC or MOVE refuses the whole call
		 * (EINVAL), and UFFDIO_API is once per descriptor: a new one
		 * without them */
		sys_close(fd);
		return lazy_open(mode, false, false);
	}
	if (rc < 0 || (api.features & want) != want || !(api.ioctls & (1ull << _UFFDIO_REGISTER))) {
		sys_close(fd);
		*mode = CRAC_LAZY_OFF_KERNEL;
		return -1;
	}
	lazy_track = wp && (api.features & wp);
	lazy_move = mv && (api.features & mv);
	return (int)fd;
}

long lazy_register(int uffd, uint64_t start, uint64_t len)
{
	struct uffdio_register r = {
		.range = { .start = start, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING | (lazy_track ? UFFDIO_REGISTER_MODE_WP : 0),
	};
	return SYS(SYS_ioctl, uffd, UFFDIO_REGISTER, &r, 0, 0, 0);
}

/*
 * The pages every restored thread touches first, installed before the jump
 * (lazy_warm): its stack around the saved stack pointer (the stop
 * handler's frame and the signal frame above it, which rt_sigreturn reads)
 * and its thread block around the thread pointer (TLS, glibc's struct
 * pthread: the tid field, robust list and rseq area the restore writes),
 * and small anonymous mappings whole (a library's .bss: libc's malloc
 * state, which the first malloc after the restore touches). Left to the
 * lazy thread, each is a fault the restore path waits for, one after the
 * other (python3: about 12 before its threads are back, each a round trip
 * to the lazy thread: wake it, its read of the fault, pread, crc32c, copy,
 * wake). Only own, uncompressed chunks of WARM_CHUNK_MAX at most, up to
 * WARM_MAX in all; a chunk that cannot be read or does not verify here is
 * simply left lazy (the lazy thread reports it if the program touches it).
 */
#define WARM_CHUNK_MAX (64u << 10)
#define WARM_MAX (512u << 10)
#define WARM_CHUNKS 64u
#define WARM_SMALL_MAP (64u << 10)
static char warm_buf[WARM_CHUNK_MAX] __attribute__((aligned(4096)));
static uint32_t warm_done[WARM_CHUNKS];   /* chunks installed */
static uint32_t n_warm;

/* Does [lo, hi) meet [x - below, x + above)? (x 0: no address) */
static bool near(uint64_t lo, uint64_t hi, uint64_t x, uint64_t below, uint64_t above)
{
	return x && lo < x + above && hi + below > x;
}

/* Is chunk c one the restore path touches first (see above)? */
static bool warm_wanted(const struct crac_img_view *v, const struct crac_img_chunk *k)
{
	const struct crac_img_map *m = &v->maps[k->map];

	if (k->zlen || k->len > WARM_CHUNK_MAX)
		return false;
	if (m->end - m->start <= WARM_SMALL_MAP)
		return true;
	for (uint32_t t = 0; t < v->h->n_threads; t++) {
		const struct crac_img_thread *th = &v->threads[t];
		if (near(k->addr, k->addr + k->len, th->sp, 4u << 10, 16u << 10) ||
		    near(k->addr, k->addr + k->len, th->fs_base, 8u << 10, 4u << 10))
			return true;
	}
	return false;
}

static bool warm_has(uint32_t c)
{
	for (uint32_t i = 0; i < n_warm; i++)
		if (warm_done[i] == c)
			return true;
	return false;
}

/* Installs the wanted chunks of the lazy mappings (verified first):
 * their segments are then left out of the lazy thread's table. Returns the
 * bytes installed. */
static uint64_t lazy_warm(int uffd, const struct crac_img_view *v, const bool *is_lazy, int pages_fd)
{
	struct crac_img_crc crc;
	uint64_t total = 0, warm_ready = 0;

	crac_img_crc32c_prepare(&crc);
	n_warm = 0;
	for (uint32_t c = 0; c < v->h->n_chunks && n_warm < WARM_CHUNKS; c++) {
		const struct crac_img_chunk *k = &v->chunks[c];
		if (!is_lazy[k->map] || !warm_wanted(v, k) || total + k->len > WARM_MAX)
			continue;
		/* warm_buf's pages faulted in by one call, not one fault each
		 * inside the pread (a first touch is dear here; Linux 5.14:
		 * where it fails, the pread faults them in as before) */
		if (k->len > warm_ready) {
			uint64_t want = (k->len + 4095) & ~4095ull;
			sys_madvise(warm_buf + warm_ready, want - warm_ready, 23 /* MADV_POPULATE_WRITE */);
			warm_ready = want;
		}
		if (crac_img_chunk_read(pages_fd, k, warm_buf, 0, 0, 0, &crc) != 0)
			continue;   /* the lazy thread reads it again, and says why */
		/* (no waiter yet: nobody to wake) */
		struct uffdio_copy cp = { .dst = k->addr, .src = (uint64_t)(uintptr_t)warm_buf, .len = k->len,
					  .mode = UFFDIO_COPY_MODE_DONTWAKE | (lazy_track ? UFFDIO_COPY_MODE_WP : 0) };
		if (SYS(SYS_ioctl, uffd, UFFDIO_COPY, &cp, 0, 0, 0) < 0)
			continue;   /* (not expected) the thread's copy finds what is in: EEXIST */
		warm_done[n_warm++] = c;
		total += k->len;
	}
	return total;
}

/*
 * The working set (CRAC_IMG_WS_FILE in image/image.h). Recorded only for
 * an image of the restoring user in a directory it may write (then the
 * file is the user's, like the image), never for a compressed image (a
 * page of it cannot be read alone).
 *
 * Recording where allowed: the flags for the area, and the end of the
 * note (found: an unusable file of that name is there, replaced).
 */
static uint32_t ws_record(const struct lazy_plan *pl, struct crac_img_buf *why, bool found)
{
	if (!pl->may_write) {
		if (!found)
			crac_img_puts(why, "none, and not recorded (the image is not yours, or its directory is not "
					   "writable)");
		return 0;
	}
	if (pl->ws_mode == LAZY_WS_RECORD) {
		crac_img_puts(why, "recording it anew (CRAC_WORKING_SET=record)");
		return CRAC_LAZY_WS_RECORD | CRAC_LAZY_WS_REPLACE;
	}
	crac_img_puts(why, found ? "; recording it anew" : "recording it");
	return CRAC_LAZY_WS_RECORD | (found ? CRAC_LAZY_WS_REPLACE : 0);
}

/* Is there one to load first (the file opened: *fd, *size), or is one to
 * be recorded? The flags for the area; note says what was found, for
 * --stats. */
static uint32_t ws_plan(const struct lazy_plan *pl, bool compressed, int *fd, uint64_t *size, char *note,
			size_t cap)
{
	struct crac_img_buf why = { note, 0, cap };
	int rc = -ENOENT;

	note[0] = 0;
	if (pl->ws_mode == LAZY_WS_OFF || compressed || pl->dir_fd < 0) {
		crac_img_puts(&why, pl->ws_mode == LAZY_WS_OFF ? "not used (CRAC_WORKING_SET=off)"
				    : "none (a compressed image: its pages cannot be read one by one)");
		return 0;
	}
	if (pl->ws_mode != LAZY_WS_RECORD) {
		struct crac_img_buf err = why;
		crac_img_puts(&err, CRAC_IMG_WS_FILE " ");
		rc = crac_img_ws_open(pl->dir_fd, pl->owner, fd, size, &err);
		if (rc == 0)
			return CRAC_LAZY_WS_LOAD;
		if (rc != -ENOENT) {
			why = err;
			crac_img_puts(&why, ": not used");
		}
	}
	return ws_record(pl, &why, rc != -ENOENT);
}

/* The file opened by ws_plan, read into the area and checked; the flags
 * left (a file found unusable is recorded anew where allowed). */
static uint32_t ws_read(const struct lazy_plan *pl, struct crac_img_lazy *a, uint32_t flags, int fd, uint64_t off,
			uint64_t size, uint32_t image_crc, char *note, size_t cap)
{
	a->ws_record_ms = pl->ws_record_ms ? pl->ws_record_ms : CRAC_IMG_WS_RECORD_MS;
	a->ws_image_crc = image_crc;
	if (fd >= 0) {
		struct crac_img_buf why = { note, 0, cap };
		char *buf = (char *)a + off;
		long n = sys_pread(fd, buf, size, 0);
		int got = -EIO;
		/* a partial one that a restore still records is locked by it
		 * (engines/image_lazy.c, ws_store; asked of partial ones only) */
		bool busy = n == (long)size && size >= sizeof(struct crac_img_ws_head) &&
			    (((const struct crac_img_ws_head *)buf)->flags & CRAC_IMG_WS_PARTIAL) &&
			    SYS(SYS_flock, fd, 1 /* LOCK_SH */ | 4 /* LOCK_NB */, 0, 0, 0, 0) == -EWOULDBLOCK;
		sys_close(fd);
		crac_img_puts(&why, CRAC_IMG_WS_FILE " ");
		if (n == (long)size)
			got = crac_img_ws_check(buf, size, image_crc, &why);
		else
			crac_img_puts(&why, "could not be read whole");
		if (got >= 0) {
			a->ws_off = off + sizeof(struct crac_img_ws_head);
			a->ws_n = (uint32_t)got;
			why.len = 0;
			bool part = ((const struct crac_img_ws_head *)buf)->flags & CRAC_IMG_WS_PARTIAL;
			crac_img_puts(&why, !part  ? "loaded first"
					    : busy ? "recorded in part (another restore is recording it now), loaded first"
						   : "recorded in part (the restore that recorded it ended early), loaded first");
		} else {
			crac_img_puts(&why, ": not used");
			flags = ws_record(pl, &why, true);
		}
	}
	/* the thread's copy of the file table keeps it */
	a->ws_dir_fd = (flags & CRAC_LAZY_WS_RECORD) ? pl->dir_fd : -1;
	return flags;
}

/*
 * Mappings the program walks (lazy_walked): a lazy restore copies each
 * page alone (UFFDIO_COPY: a first touch of a 4 KiB page), and a program
 * that goes through most of a mapping before its first answer (tclsh
 * hashing its 100000-entry array: 22 MiB of its 25 MiB heap, in ~300
 * faults, each one a round trip to the lazy thread) waits for every page
 * of it, where the eager path fills it in one pass (two threads, huge
 * pages where THP allows: 2.5 times faster per MiB here). The working set
 * says which mappings these are: the recording restore notes each page
 * touched in the first CRAC_IMG_WS_RECORD_MS, and a mapping of which at
 * least WALK_MIN_BLOCKS blocks of WALK_BLOCK had half their pages touched
 * then, together at least a sixteenth of what it stores, is loaded eagerly
 * by the next restores. Only a mapping of WALK_MIN_STORED or more: the
 * working set itself (at most CRAC_IMG_WS_MAX pages, loaded first while
 * the restore path runs) covers a smaller one, and better than an eager
 * fill before the jump (python3, whose arenas and heap of 1 to 5 MiB it
 * shows half touched: 11.1 ms to its first answer with them eager, 9.4 ms
 * lazy, medians of 20 interleaved). A program that touches pages here and
 * there (python3 in another recording: 194 pages over 22 blocks, none half
 * touched) keeps them lazy in any case.
 */
#define WALK_BLOCK (1u << 20)
#define WALK_DENSE (WALK_BLOCK / P / 2)   /* pages of a block touched: half */
#define WALK_MIN_BLOCKS 2u
#define WALK_SHARE 16u   /* those blocks at least 1/16 of what it stores */
#define WALK_MIN_STORED (16ull << 20)   /* CRAC_IMG_WS_MAX pages */
static uint64_t ws_addr[CRAC_IMG_WS_MAX];
static char ws_peek[sizeof(struct crac_img_ws_head) + CRAC_IMG_WS_MAX * sizeof(struct crac_img_ws_page)]
	__attribute__((aligned(8)));
static uint32_t walk_maps;   /* for --stats (lazy_start's note) */
static uint64_t walk_bytes;

/* Sorts a[0..n) (heapsort: no allocation, n log n). */
static void sort_u64(uint64_t *a, uint32_t n)
{
	for (uint32_t end = n, start = n / 2;;) {
		uint32_t root;
		if (start > 0) {
			root = --start;
		} else {
			if (end <= 1)
				return;
			uint64_t t = a[--end];
			a[end] = a[0];
			a[0] = t;
			root = 0;
		}
		for (uint32_t child; (child = 2 * root + 1) < end; root = child) {
			if (child + 1 < end && a[child + 1] > a[child])
				child++;
			if (a[root] >= a[child])
				break;
			uint64_t t = a[root];
			a[root] = a[child];
			a[child] = t;
		}
	}
}

/* The mapping holding addr (maps sorted by address), or -1. */
static long map_of(const struct crac_img_view *v, uint64_t addr)
{
	long lo = 0, hi = (long)v->h->n_maps - 1;

	while (lo <= hi) {
		long mid = (lo + hi) / 2;
		if (addr < v->maps[mid].start)
			hi = mid - 1;
		else if (addr >= v->maps[mid].end)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

uint32_t lazy_walked(const struct lazy_plan *pl, const struct crac_img_view *v, bool *is_lazy)
{
	int fd = -1;
	uint64_t size = 0;
	char note[8];
	struct crac_img_buf why = { note, 0, sizeof(note) };
	uint32_t blocks[64] = { 0 };   /* dense blocks by mapping, for the first 64 lazy ones hit */
	uint32_t map_ix[64], n_ix = 0, out = 0;

	walk_maps = 0;
	walk_bytes = 0;
	if (pl->ws_mode != LAZY_WS_AUTO || pl->ws_no_walk || pl->dir_fd < 0 || (v->h->img_flags & CRAC_IMGF_COMPRESSED))
		return 0;   /* (the working set is neither loaded nor used for a compressed image) */
	if (crac_img_ws_open(pl->dir_fd, pl->owner, &fd, &size, &why) != 0)
		return 0;
	long n = sys_pread(fd, ws_peek, size, 0);
	sys_close(fd);
	int got = n == (long)size ? crac_img_ws_check(ws_peek, size, v->h->crc, &why) : -EIO;
	if (got <= 0)
		return 0;   /* (lazy_start looks at it again and says what is wrong) */
	const struct crac_img_ws_page *e = (const struct crac_img_ws_page *)(ws_peek + sizeof(struct crac_img_ws_head));
	for (int i = 0; i < got; i++)
		ws_addr[i] = e[i].addr;
	sort_u64(ws_addr, (uint32_t)got);
	/* runs of one block: pages counted once (a page recorded twice is
	 * not expected, but a damaged hint must not make a block dense) */
	for (uint32_t i = 0; i < (uint32_t)got;) {
		uint64_t blk = ws_addr[i] / WALK_BLOCK;
		uint32_t pages = 0, j = i;
		for (; j < (uint32_t)got && ws_addr[j] / WALK_BLOCK == blk; j++)
			pages += j == i || ws_addr[j] != ws_addr[j - 1];
		long m = map_of(v, ws_addr[i]);
		i = j;
		if (pages < WALK_DENSE || m < 0 || !is_lazy[m])
			continue;
		uint32_t k = 0;
		while (k < n_ix && map_ix[k] != (uint32_t)m)
			k++;
		if (k == n_ix) {
			if (n_ix == 64)
				continue;
			map_ix[n_ix++] = (uint32_t)m;
		}
		blocks[k]++;
	}
	for (uint32_t k = 0; k < n_ix; k++) {
		const struct crac_img_map *m = &v->maps[map_ix[k]];
		if (blocks[k] < WALK_MIN_BLOCKS || (uint64_t)blocks[k] * WALK_BLOCK * WALK_SHARE < m->stored ||
		    m->stored < WALK_MIN_STORED)
			continue;
		is_lazy[map_ix[k]] = false;
		walk_maps++;
		walk_bytes += m->stored;
		out++;
	}
	return out;
}

/*
 * Too little to be worth loading lazily (lazy_too_little): a lazy restore
 * has costs that do not shrink with the memory it leaves to the thread
 * (the userfaultfd and its registrations, the thread and its start, its
 * tables and chunk buffer, a fault round trip for each first touch while
 * the program's threads start, a CPU shared with them), about 2 ms here,
 * which the eager fill of a few MiB does not cost (redis-server, 1.4 MiB
 * lazy: 7.1 ms to its first answer lazily, 4.7 ms eagerly, medians of 12
 * interleaved). Under CRAC_IMG_LAZY_TOTAL_MIN (image.h) in all, the restore
 * is eager.
 */
bool lazy_too_little(const struct crac_img_view *v, const bool *is_lazy)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < v->h->n_maps; i++)
		if (is_lazy[i])
			total += v->maps[i].stored;
	for (uint32_t i = 0; i < v->h->n_refs; i++)
		if (is_lazy[v->refs[i].map])
			total += v->refs[i].len;   /* (taken from the images below) */
	return total < CRAC_IMG_LAZY_TOTAL_MIN;
}

/*
 * The lazy area's tables. An incremental image takes pages from the images
 * below it (struct crac_img_ref): their pages files are handed over too,
 * and the thread sees one chunk table and one range of offsets for all of
 * them (struct crac_img_lazy.files): file f's chunks follow those of the
 * files before it, its offsets start at a page-aligned base. A reference
 * of a lazy mapping becomes a segment of the chunk it names, exactly as an
 * own chunk does, so the thread reads and verifies it the same way.
 */
long lazy_start(struct lazy_plan *pl, const struct crac_img_view *v, const bool *is_lazy,
		struct crac_img_resume *res, int pages_fd, const char *dir, const struct crac_img_chain *chain,
		uint64_t now_ns)
{
	const struct crac_img_header *h = v->h;
	const struct crac_img_view *fv[1 + CRAC_IMG_MAX_CHAIN];
	uint64_t base[1 + CRAC_IMG_MAX_CHAIN], cbase[1 + CRAC_IMG_MAX_CHAIN], vsize[1 + CRAC_IMG_MAX_CHAIN];
	uint32_t n_files = 1 + (h->depth && chain ? chain->n : 0);
	uint64_t n_segs = 0, buf_size = 0, zbuf_size = 0;
	bool compressed = false;   /* an image of the chain is */

	if (!res->lazy_entry)
		return -ENOEXEC;   /* the restored libcrac has no lazy loader */

	/* A compressed image's chunks get the offsets they would have
	 * uncompressed (vsize: their sum), by which the thread counts pages;
	 * the real ones go in a table of their own (real_off). */
	for (uint32_t f = 0; f < n_files; f++) {
		fv[f] = f ? &chain->v[f - 1] : v;
		vsize[f] = fv[f]->h->pages_size;
		if (fv[f]->h->img_flags & CRAC_IMGF_COMPRESSED) {
			compressed = true;
			vsize[f] = 0;
			for (uint32_t c = 0; c < fv[f]->h->n_chunks; c++)
				vsize[f] += fv[f]->chunks[c].len;
		}
	}
	base[0] = cbase[0] = 0;
	for (uint32_t f = 1; f < n_files; f++) {
		base[f] = (base[f - 1] + vsize[f - 1] + P - 1) & ~(P - 1);
		cbase[f] = cbase[f - 1] + fv[f - 1]->h->n_chunks;
	}
	uint64_t all_size = (base[n_files - 1] + vsize[n_files - 1] + P - 1) & ~(P - 1);
	uint64_t all_chunks = cbase[n_files - 1] + fv[n_files - 1]->h->n_chunks;

	/* What the restore path touches first: in before the jump. */
	res->stored += lazy_warm(pl->uffd, v, is_lazy, pages_fd);

	for (uint32_t i = 0; i < h->n_maps; i++) {
		const struct crac_img_map *m = &v->maps[i];
		if (!is_lazy[i])
			continue;
		for (uint32_t c = m->first_chunk; c < m->first_chunk + m->n_chunks; c++) {
			if (warm_has(c))
				continue;
			n_segs++;
			if (v->chunks[c].len > buf_size)
				buf_size = v->chunks[c].len;   /* CRAC_IMG_CHUNK_MAX from our writer */
			if (v->chunks[c].zlen > zbuf_size)
				zbuf_size = v->chunks[c].zlen;
		}
	}
	for (uint32_t i = 0; i < h->n_refs && n_files > 1; i++) {
		const struct crac_img_ref *r = &v->refs[i];
		if (!is_lazy[r->map])
			continue;
		n_segs++;
		const struct crac_img_chunk *k = &fv[r->depth]->chunks[r->chunk];
		if (k->len > buf_size)
			buf_size = k->len;
		if (k->zlen > zbuf_size)
			zbuf_size = k->zlen;
	}
	/* Compressed chunks: the thread reads each through
	 * crac_img_chunk_read, with a frame buffer and a zstd context here. */
	uint64_t dctx_size = zbuf_size ? crac_img_zstd_dctx_size() : 0;
	if (zbuf_size && !dctx_size)
		return -ENOTSUP;   /* not reached: the eager path says "no zstd" */
	zbuf_size = (zbuf_size + P - 1) & ~(P - 1);
	uint64_t segs_off = (sizeof(struct crac_img_lazy) + 63) & ~63ull;
	uint64_t chunks_off = segs_off + n_segs * sizeof(struct crac_img_lazy_seg);
	uint64_t real_off = chunks_off + all_chunks * sizeof(struct crac_img_chunk);
	uint64_t dctx_off = (real_off + (compressed ? all_chunks * 8ull : 0) + 63) & ~63ull;
	uint64_t buf_off = (dctx_off + dctx_size + P - 1) & ~(P - 1);
	uint64_t zbuf_off = buf_off + buf_size * CRAC_LAZY_SLOTS;   /* chunk lengths are whole pages */
	uint64_t stack_off = zbuf_off + zbuf_size;
	uint64_t tls_off = stack_off + LAZY_STACK;
	uint64_t ws_off = tls_off + P;
	char note[160];
	int ws_fd = -1;
	uint64_t ws_size = 0;
	uint32_t ws_flags = ws_plan(pl, compressed, &ws_fd, &ws_size, note, sizeof(note));
	uint64_t size = ws_off + ((ws_size + P - 1) & ~(P - 1));

	long area = sys_mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area < 0) {
		if (ws_fd >= 0)
			sys_close(ws_fd);
		return area;
	}
	struct crac_img_lazy *a = (struct crac_img_lazy *)area;
	ws_flags = ws_read(pl, a, ws_flags, ws_fd, ws_off, ws_size, h->crc, note, sizeof(note));
	a->magic = CRAC_LAZY_MAGIC;
	a->area_size = size;
	a->uffd = pl->uffd;
	a->err_fd = 2;
	a->flags = pl->flags | (lazy_track ? CRAC_LAZY_TRACK : 0) | (lazy_move ? CRAC_LAZY_MOVE : 0) | ws_flags;
	a->n_segs = (uint32_t)n_segs;
	a->segs_off = segs_off;
	a->n_chunks = all_chunks;
	a->chunks_off = chunks_off;
	a->pages_fd = pages_fd;   /* the thread's copy of the file table keeps it */
	a->pages_size = all_size;
	a->buf_off = buf_off;
	a->buf_size = buf_size;
	a->buf_slots = CRAC_LAZY_SLOTS;
	a->resume = (uint64_t)(uintptr_t)res;
	a->jump_ns = now_ns;
	a->stack_off = stack_off;
	a->stack_size = LAZY_STACK;
	a->tls_off = tls_off;
	a->file_size = h->pages_size;
	if (walk_maps) {
		/* (the loader made them eager: lazy_walked) */
		struct crac_img_buf w = { note, strlen(note), sizeof(note) };
		crac_img_puts(&w, "; ");
		crac_img_putu(&w, walk_maps);
		crac_img_puts(&w, walk_maps == 1 ? " mapping" : " mappings");
		crac_img_puts(&w, " it shows walked loaded eagerly (");
		crac_img_putu(&w, walk_bytes >> 20);
		crac_img_puts(&w, " MiB)");
	}
	for (size_t i = 0; i < sizeof(a->ws_note) - 1 && note[i]; i++)
		a->ws_note[i] = note[i];
	if (compressed) {
		a->real_off = real_off;
		a->zbuf_off = zbuf_off;
		a->zbuf_size = zbuf_size;
		a->dctx_off = dctx_off;
		a->dctx_size = dctx_size;
	}
	size_t dl = strlen(dir);
	if (dl >= sizeof(a->dir))
		dl = sizeof(a->dir) - 1;
	memcpy(a->dir, dir, dl);
	a->n_files = n_files;
	for (uint32_t f = 0; f < n_files; f++) {
		struct crac_img_lazy_file *lf = &a->files[f];
		const char *path = f ? chain->path[f - 1] : dir;
		lf->fd = f ? chain->o[f - 1].pages_fd : pages_fd;
		lf->first_chunk = (uint32_t)cbase[f];
		lf->base = base[f];
		lf->size = fv[f]->h->pages_size;
		dl = strlen(path);
		if (dl >= sizeof(lf->path))
			dl = sizeof(lf->path) - 1;
		memcpy(lf->path, path, dl);
	}

	/* Segments in map order: maps, their chunks and the references are
	 * sorted by address; a mapping's own chunks and its references
	 * merged. */
	struct crac_img_lazy_seg *seg = (struct crac_img_lazy_seg *)(area + segs_off);
	struct crac_img_chunk *ck = (struct crac_img_chunk *)(area + chunks_off);
	for (uint32_t f = 0; f < n_files; f++) {
		bool z = (fv[f]->h->img_flags & CRAC_IMGF_COMPRESSED) != 0;
		uint64_t voff = 0;
		for (uint32_t c = 0; c < fv[f]->h->n_chunks; c++) {
			struct crac_img_chunk *x = &ck[cbase[f] + c];
			*x = fv[f]->chunks[c];
			x->map = fv[f]->maps[x->map].kind;   /* the thread only needs the kind */
			if (compressed)
				((uint64_t *)(area + real_off))[cbase[f] + c] = x->offset;   /* in its own file */
			if (z) {
				x->offset = voff;
				voff += x->len;
			}
			x->offset += base[f];
		}
	}
	uint32_t ri = 0;
	for (uint32_t i = 0; i < h->n_maps; i++) {
		const struct crac_img_map *m = &v->maps[i];
		if (!is_lazy[i])
			continue;
		while (n_files > 1 && ri < h->n_refs && v->refs[ri].map < i)
			ri++;
		uint32_t c = m->first_chunk, ce = m->first_chunk + m->n_chunks;
		for (;;) {
			bool ref = n_files > 1 && ri < h->n_refs && v->refs[ri].map == i;
			if (ref && c < ce && v->chunks[c].addr < v->refs[ri].addr)
				ref = false;
			if (ref) {
				const struct crac_img_ref *r = &v->refs[ri++];
				const struct crac_img_chunk *k = &fv[r->depth]->chunks[r->chunk];
				seg->addr = r->addr;
				seg->len = r->len;
				seg->off = ck[cbase[r->depth] + r->chunk].offset + (r->addr - k->addr);
				seg->chunk = (uint32_t)(cbase[r->depth] + r->chunk);
			} else if (c < ce && warm_has(c)) {
				c++;   /* installed already (lazy_warm) */
				continue;
			} else if (c < ce) {
				seg->addr = v->chunks[c].addr;
				seg->len = v->chunks[c].len;
				seg->off = ck[c].offset;
				seg->chunk = c++;
			} else {
				break;
			}
			res->lazy_bytes += seg->len;
			seg++;
		}
	}

	/* The thread: in the process's thread group, sharing its memory and
	 * signal handlers, with all signals blocked (the loader's mask), its
	 * own file table (a copy holding 0-2, the userfaultfd and the pages
	 * file; it closes all else) and a thread
	 * pointer page of its own (any %fs access stays inside the area). */
	uint64_t *tls = (uint64_t *)(area + tls_off);
	tls[0] = (uint64_t)(uintptr_t)tls;
	uint64_t *sp = (uint64_t *)(area + stack_off + LAZY_STACK);
	*--sp = (uint64_t)area;              /* arg */
	*--sp = res->lazy_entry;             /* fn */
	res->lazy_pid = (uint32_t)SYS(SYS_getpid, 0, 0, 0, 0, 0, 0);
	unsigned long flags = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS |
			      CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
	long tid = lazy_clone(flags, sp, &res->lazy_tid, &res->lazy_tid, (unsigned long)(uintptr_t)tls);
	if (tid < 0)
		return tid;
	res->lazy_mode = CRAC_LAZY_ON;
	return 0;
}

/*
 * The address space a lazy restore takes besides the image's mappings, at
 * most: lazy_start's area (laid out as there, with every chunk of a lazy
 * mapping a segment, the largest chunk's buffer and a whole working set),
 * and what the thread maps at its start in the restored libcrac
 * (engines/image_lazy.c: a view with its done bitmap, the verified bitmap,
 * its copy of the segments, the read-ahead helper's stack, the working
 * set's recording table and index, the block buffer for moves with the
 * room to align it). Not counted: the chunk buffer in huge
 * pages the thread may map besides, which it does without when refused.
 * The loader refuses before its point of no return when this, the image
 * and its own range exceed RLIMIT_AS (loader.c, check_address_space).
 */
uint64_t lazy_as_need(const struct crac_img_view *v, const bool *is_lazy, const struct crac_img_chain *chain)
{
	const struct crac_img_header *h = v->h;
	uint32_t n_files = 1 + (h->depth && chain ? chain->n : 0);
	uint64_t all_chunks = 0, all_pages = 0, n_segs = h->n_refs, buf = 0, zbuf = 0;
	bool compressed = false;

	for (uint32_t f = 0; f < n_files; f++) {
		const struct crac_img_view *fv = f ? &chain->v[f - 1] : v;
		uint64_t vsize = 0;
		all_chunks += fv->h->n_chunks;
		compressed |= (fv->h->img_flags & CRAC_IMGF_COMPRESSED) != 0;
		for (uint32_t c = 0; c < fv->h->n_chunks; c++) {
			const struct crac_img_chunk *k = &fv->chunks[c];
			vsize += k->len;
			/* the buffer: the largest chunk a lazy mapping reads (its
			 * own, or one of an image below: any, at most) */
			if (f || is_lazy[k->map]) {
				buf = k->len > buf ? k->len : buf;
				zbuf = k->zlen > zbuf ? k->zlen : zbuf;
			}
		}
		if (fv->h->pages_size > vsize)
			vsize = fv->h->pages_size;
		all_pages += (vsize + P - 1) / P;
	}
	for (uint32_t i = 0; i < h->n_maps; i++)
		if (is_lazy[i])
			n_segs += v->maps[i].n_chunks;
	zbuf = (zbuf + P - 1) & ~(P - 1);
	uint64_t ws = sizeof(struct crac_img_ws_head) + (uint64_t)CRAC_IMG_WS_MAX * sizeof(struct crac_img_ws_page);
	uint64_t area = ((sizeof(struct crac_img_lazy) + 63) & ~63ull) + n_segs * sizeof(struct crac_img_lazy_seg) +
			all_chunks * (sizeof(struct crac_img_chunk) + (compressed ? 8 : 0)) + 64 +
			(zbuf ? crac_img_zstd_dctx_size() : 0) + P + buf * CRAC_LAZY_SLOTS + zbuf + LAZY_STACK + P +
			((ws + P - 1) & ~(P - 1));
	/* the thread's own, each a mapping of whole pages (one page for a
	 * struct view and what rounds up) */
	uint64_t thread = P + (((all_pages + 63) / 64 * 8 + P - 1) & ~(P - 1)) +
			  (((all_chunks + 63) / 64 * 8 + P - 1) & ~(P - 1)) +
			  ((n_segs * sizeof(struct crac_img_lazy_seg) + P - 1) & ~(P - 1)) + CRAC_LAZY_AHEAD_STACK +
			  (((uint64_t)CRAC_IMG_WS_MAX * sizeof(struct crac_img_ws_page) + P - 1) & ~(P - 1)) +
			  ((2u * CRAC_IMG_WS_MAX * 4 + P - 1) & ~(P - 1)) + CRAC_LAZY_MOVE_ROOM;
	return area + thread;
}
