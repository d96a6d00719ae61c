/* SPDX-License-Identifier: MIT */
/*
 * image_lazy.c - lazy restore: the thread that fills the restored process's
 * large anonymous mappings (the loader registered them with userfaultfd and
 * started this thread: src/loader/lazy.c; the hand-over is struct
 * crac_img_lazy in image/image.h).
 *
 * The thread serves three kinds of work, in one loop, in this order:
 *   - faults: a thread of the program touched a page not loaded yet; the
 *     pages around it (the FAULT_WINDOW-aligned block, as far as they are
 *     not loaded; right after a loaded page, the rest of its chunk:
 *     streaming) are copied in (UFFDIO_COPY), which wakes it, or a zero
 *     page where the image holds nothing;
 *   - the rest of the chunk of each fault served (tails): read and
 *     verified already, likely touched next (not with
 *     CRAC_LAZY_PREFETCH=off: then faults alone load pages);
 *   - prefetch: everything else, 1 MiB per step, starting where the program
 *     last faulted (it tends to go on in the same direction), until every
 *     page is in.
 * Where the kernel lets it (UFFDIO_MOVE), prefetch and a fault right after
 * a loaded page move whole 2 MiB blocks in as huge pages instead of
 * copying them (move_block). It starts once the restored side is through (lazy_go).
 *     Then the userfaultfd is closed, which unregisters every range, and
 *     the thread unmaps its area and exits.
 * With two CPUs, a helper thread reads and verifies the next chunk while
 * this one copies (read-ahead, ahead_*: it never touches the program's
 * memory). The working set a first restore records is written by another
 * (the writer, ws_job: a file system that does not answer must not stop
 * this thread).
 *
 * Tracking writes (CRAC_LAZY_TRACK: the image asks for incremental
 * checkpoints). A mapping belongs to one userfaultfd only, so the loader
 * registered the lazy mappings in missing and write-protect mode on ours,
 * with UFFD_FEATURE_WP_ASYNC, and every page goes in write-protected
 * (UFFDIO_COPY_MODE_WP): a write of the program clears the protection
 * (image_track.c), exactly as on the mappings image_track.c registers.
 * A page is protected only at the address the image stored it at: what
 * mremap moved is unprotected at once (REMAP), and copied unprotected
 * later, since a page that is not written is taken from the image below
 * by its address. Once every page is in, the userfaultfd cannot be closed
 * (that drops every protection, and the program's writes meanwhile would
 * go unseen) nor left without a reader (faults in holes, DONTNEED'd pages
 * and the events would wait forever): the thread goes on serving faults
 * (zero pages) and events, resume.lazy_state CRAC_LAZY_STATE_LOADED, until
 * a checkpoint stops the program's threads and takes the tracking over
 * (img_track_lazy_handover: CRAC_LAZY_STATE_LEAVE), or the process ends.
 * The last two copy PIECE bytes at a time and look for a waiting fault in
 * between: a fault waits for at most one piece (first touches of fresh
 * pages are slow on a VM with shadow paging: a 1 MiB copy takes ms).
 * Pages are copied only from bytes that were verified: a chunk is read whole
 * (pread) into a slot of the thread's chunk buffer, its crc32c checked there,
 * and its pages copied from that slot; the slots keep the chunks used last
 * (a few threads faulting in different chunks do not read them again and
 * again). The pages
 * file is never mapped: a change to it after a chunk was verified cannot
 * reach the program (a chunk read again is verified again), and a
 * truncation is a short read, not a SIGBUS. A damaged, changed or truncated
 * pages file stops the process, with a message naming it, before it can
 * read a page that was not verified.
 *
 * Anonymous semantics are kept through the userfaultfd events:
 *   REMOVE  MADV_DONTNEED / MADV_FREE: the range must read as zeros, so its
 *           pages are never loaded (a later fault gets a zero page)
 *   UNMAP   the range is gone: forget it
 *   REMAP   mremap moved it: follow it
 *   FORK    a child was forked (by a raw system call: glibc's fork() waits
 *           for the loading to finish, see crac__img_lazy_finish): the
 *           child's memory is registered with a new userfaultfd; it is
 *           served like ours, as a view of its own
 *
 * This thread runs beside the program it restores, in its address space,
 * and must never touch a page that is not loaded yet: it would wait for
 * itself. So it uses no libc at all (raw system calls; no errno, no TLS: its
 * thread pointer is a page of its own), and no data of libcrac: everything
 * lives on its stack, in its area, or in memory it maps itself. The one
 * exception: a compressed chunk (image/chunk.c) is decompressed by libzstd,
 * linked into libcrac, which calls libc's memcpy, memmove and memset: pure
 * functions that touch no TLS, bound in libcrac's GOT before the
 * checkpoint (img_compress_prepare compresses and decompresses once). In a
 * sanitizer build those would be ASan's interceptors, which read the
 * shadow of this thread's buffers: shadow this thread loads itself, so it
 * would wait for itself; libzstd calls uninstrumented copies there instead
 * (image/nosan_mem.c).
 */
#include "engines/image_engine.h"
#include "image/bounded.h"   /* crac_bounded_grace_ms: crac__img_lazy_leave's limit */
#include "loader/sys.h"   /* raw system calls: this thread has no libc */

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/prctl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define P CRAC_IMG_PAGE
#define FAULT_WINDOW (64u << 10) /* loaded around a fault before it is woken */
#define STREAM_WINDOW (1u << 20) /* ... after one that caught up with the loading (streaming) */
#define PIECE (64u << 10)        /* background copies between looks for faults */
#define BATCH (1u << 20)         /* loaded per prefetch step */
#define MAX_TAIL 16              /* chunks whose rest is to load after a fault */
#define MAX_PEND 4096            /* faults read, not served yet (beyond: woken, they fault again) */
#define MAX_UNPROT 256           /* moved ranges whose write protection is still to clear (tracking) */
#define STUCK_NS (5ull * 1000000000ull)   /* see prefetch() */
#define MAX_POLL 64
#define MOVE_GIVE_UP 8           /* blocks refused in a row before moves are given up */
#define MOVE_SLOW_NS 3000000ull  /* a block's read slower than this (a fresh huge page the host ... */
#define MOVE_SLOW_MAX 3          /* ... reclaimed) this many times in a row: moves given up */
#define MOVE_PROBE_NS 2000000ull /* the first block buffer's huge page slower than this: no moves */

/* ---- state ------------------------------------------------------------------ */

/* DIR/working-set as the recording's stores left it (ws_store). */
struct ws_file {
	bool claimed;                    /* the name holds our file: ... */
	uint64_t dev, ino;               /* ... this inode, ... */
	int held;                        /* ... open here and flock'ed: its descriptor + 1, 0: none */
	uint32_t kept;                   /* entries in it */
};
struct ws_job;

/* The chunks that make up a block moved in whole (move_plan): each chunk
 * and where it goes, from the block's start. */
#define HUGE (2ull << 20)        /* a huge page: a block moved in whole (move_block) */
_Static_assert(CRAC_LAZY_MOVE_ROOM == 3 * HUGE, "the loader counts the room of the moves' buffers");
struct blk_plan {
	uint32_t n;
	struct {
		uint32_t chunk, at;
	} c[HUGE / CRAC_IMG_PAGE];
};

/* One address space being filled: ours, or a forked child's. */
struct view {
	int uffd;
	bool child;
	struct crac_img_lazy_seg *seg;   /* sorted by addr */
	uint32_t n, cap;
	uint64_t *done;                  /* bit per page of the pages file: loaded, or must stay zero */
	uint64_t left;                   /* pages of seg[] not done */
	uint32_t cur;                    /* prefetch cursor: seg index ... */
	uint64_t cur_off;                /* ... and offset in it */
	uint64_t pend[MAX_PEND];         /* faults read, to serve (after the events read with them) */
	uint32_t n_pend;
	struct { uint64_t lo, hi; } tail[MAX_TAIL];   /* address ranges left of faults' chunks */
	uint32_t n_tail;
	uint64_t stuck_ns;               /* since when prefetch finds no mapping (ENOENT), 0: not */
	uint64_t wait_ns;                /* since when faults wait for an unreported change, 0: not */
	uint64_t unprot[MAX_UNPROT][2];  /* tracking: moved ranges [lo, hi) still write-protected */
	uint32_t n_unprot;
	size_t mem_size;                 /* this struct + done bitmap (one mmap) */
	struct view *next;
};

struct lazy {
	struct crac_img_lazy *a;
	struct crac_img_resume *res;
	const struct crac_img_chunk *chunk;
	/* the pages files (an incremental image: its own, then those of
	 * the images below it), by chunk index and offset */
	const struct crac_img_lazy_file *file;
	uint32_t n_files;
	struct crac_img_lazy_file one;   /* n_files 0 in the area: pages_fd alone */
	uint64_t n_pages;                /* of the pages file */
	uint64_t *verified;              /* bit per chunk: read and verified once (for messages) */
	struct slot {                    /* the chunk buffer (in the area) */
		char *bytes;             /* buf_size bytes ... */
		uint32_t chunk;          /* ... holding this chunk, verified ... */
		bool valid;              /* ... if set */
		uint64_t used;           /* when last used (uses counter) */
		bool ahead;              /* being read ahead (the helper's until collected) */
	} slot[CRAC_LAZY_SLOTS];
	struct ahead {                   /* the read-ahead helper (ahead_*) */
		uint32_t state;          /* AHEAD_IDLE, _WORK, _DONE, _QUIT (a futex word) */
		uint32_t tid;            /* its thread id, cleared by the kernel when it is gone */
		uint32_t chunk;          /* the job: this chunk ... */
		struct slot *slot;       /* ... read and verified into this slot */
		long rc;                 /* crac_img_chunk_read's answer */
		void *stack;             /* its stack (AHEAD_STACK bytes), 0: not started */
		bool off;                /* not to be used (no second CPU, too few slots, clone refused) */
		uint64_t hits;           /* chunks read ahead and verified (statistics) */
		/* or a block's chunks, read and verified into a block buffer
		 * (move_ahead): its address and plan; kept, done, until
		 * move_block takes it or lets it go */
		char *into;
		uint64_t blk;
		struct blk_plan job;
		uint64_t job_ns;         /* the time its reads took */
		/* or the probe of the block buffers' huge pages (move_ready):
		 * done here, so that a slow one never holds up a fault */
		char *probe;
		bool probe_huge;
		uint64_t probe_ns;
	} ahead;
	uint32_t n_slots;
	uint64_t uses;
	struct crac_img_crc crc;
	const uint64_t *real_off;        /* compressed image: each chunk's offset in the pages file */
	void *dctx;                      /* ... and the zstd context (in the area) */
	struct view *views;
	bool prefetch;
	struct {                         /* the working set (CRAC_IMG_WS_FILE) */
		bool rec;                /* recording: until end_ns, at most CRAC_IMG_WS_MAX pages */
		uint64_t end_ns;
		struct crac_img_ws_page *pg;   /* recorded (mapped), or 0 */
		uint32_t n;
		long err;                /* writing it failed: -errno */
		bool written;
		struct ws_file file;     /* the file as the stores collected left it */
		bool empty;              /* the recording ended with nothing: its claim removed (ws_unclaim) */
		uint8_t left;            /* after a failure: what stays of it (WS_LEFT_*) */
		struct ws_job *job;      /* the store the writer has in hand, or 0 */
		bool final_due;          /* recording over: the whole to store once the writer is free */
		bool over;               /* nothing more to store (written, or given up) */
		bool released;           /* ... and its directory and entries given back (ws_release) */
		bool abandoned;          /* the last store took longer than WS_WAIT_NS: not waited for */
		uint32_t writer_tid;     /* the last writer started */
		uint32_t stored_n;       /* entries in it */
		uint64_t last_ns;        /* the last fault recorded */
		uint32_t next;           /* loading it: the next entry ... */
		uint32_t upto;           /* ... and how far to go now */
		uint32_t *index;         /* entry + 1 by page address (open addressing), or 0 */
		uint32_t index_mask;
		uint32_t loaded, skipped; /* loaded first / left to the normal path */
		uint64_t load_ns;        /* the time that took */
	} ws;
	bool track;                      /* CRAC_LAZY_TRACK: pages go in write-protected */
	bool loaded;                     /* ... and all are in: resume.lazy_state said so */
	void *door;                      /* then a page of ours registered in missing mode: a
					  * MADV_DONTNEED of it (REMOVE) wakes us at once ... */
	bool door_on;                    /* ... if registered (resume.lazy_entry names it) */
	void *buf_map;                   /* the chunk buffer in huge pages (huge_slots), or 0 */
	uint64_t buf_map_size;
	char *mv[2];                     /* block buffers: bytes moved from here (move_block), or 0 */
	bool mv_want;                    /* ... to be mapped when first needed (move_ready) */
	bool mv_no_huge;                 /* ... but the kernel gave no huge page: no moves */
	char *mv_probe;                  /* ... mapped, their huge pages being probed (move_ready) */
	char *mv_map;                    /* both, unmapped at the end (0: never mapped) */
	uint32_t mv_fails;               /* blocks refused in a row */
	uint32_t mv_slow;                /* blocks read slowly in a row (MOVE_SLOW_NS) */
	uint64_t mv_slow_ns;             /* moves given up as slow: the last block's read, for --stats */
	/* statistics */
	uint64_t faults, zero, copied, moved, events, forks, dropped;
};

/* ---- tiny helpers --------------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts = { 0, 0 };
	sys_clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *map_mem(size_t size)
{
	long a = sys_mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return a < 0 ? 0 : (void *)a;
}

static void copy_words(void *d, const void *s, size_t n)
{
	uint64_t *dp = d;
	const uint64_t *sp = s;

	for (size_t i = 0; i < n / 8; i++)
		dp[i] = sp[i];
}

static void put_ms(struct crac_img_buf *b, uint64_t ns)
{
	crac_img_putu(b, ns / 1000000);
	crac_img_puts(b, ".");
	uint64_t frac = ns / 1000 % 1000;
	char d[4] = { (char)('0' + frac / 100), (char)('0' + frac / 10 % 10), (char)('0' + frac % 10), 0 };
	crac_img_puts(b, d);
	crac_img_puts(b, " ms");
}

/* n bytes at p to fd, whole: 0 or -errno. */
static long write_all(int fd, const char *p, uint64_t n)
{
	while (n) {
		long w = sys_write(fd, p, n);
		if (w <= 0)
			return w < 0 ? w : -EIO;
		p += w;
		n -= (uint64_t)w;
	}
	return 0;
}

static void say(struct lazy *L, const char *line)
{
	size_t n = 0;
	while (line[n])
		n++;
	write_all(L->a->err_fd, line, n);
}

/* The program cannot go on correctly: say why and stop the whole process. */
static __attribute__((noreturn)) void fatal(struct lazy *L, const char *why, long err)
{
	char line[2048];
	struct crac_img_buf b = { line, 0, sizeof(line) };

	crac_img_puts(&b, "crac: restore ");
	crac_img_puts(&b, L->a->dir);
	crac_img_puts(&b, ": ");
	crac_img_puts(&b, why);
	if (err) {
		crac_img_puts(&b, " (errno ");
		crac_img_putu(&b, (uint64_t)-err);
		crac_img_puts(&b, ")");
	}
	crac_img_puts(&b, "; the restored process is stopped\n");
	say(L, line);
	sys_exit_group(1);
	__builtin_unreachable();
}

static bool is_done(const struct view *v, uint64_t off)
{
	uint64_t pg = off / P;
	return v->done[pg >> 6] >> (pg & 63) & 1;
}

/* Marks pages file bytes [off, off + len) done. */
static void mark_done(struct view *v, uint64_t off, uint64_t len)
{
	for (uint64_t pg = off / P; pg < (off + len) / P; pg++)
		if (!(v->done[pg >> 6] >> (pg & 63) & 1)) {
			v->done[pg >> 6] |= 1ull << (pg & 63);
			v->left--;
		}
}

/* ---- segments ---------------------------------------------------------------- */

/* Index of the segment holding addr, or -1. */
static long seg_find(const struct view *v, uint64_t addr)
{
	long lo = 0, hi = (long)v->n - 1;

	while (lo <= hi) {
		long mid = (lo + hi) / 2;
		const struct crac_img_lazy_seg *s = &v->seg[mid];
		if (addr < s->addr)
			hi = mid - 1;
		else if (addr >= s->addr + s->len)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

/* Index of the first segment that starts above addr (v->n: none). */
static uint32_t seg_above(const struct view *v, uint64_t addr)
{
	uint32_t lo = 0, hi = v->n;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (v->seg[mid].addr > addr)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static void seg_grow(struct lazy *L, struct view *v)
{
	if (v->n < v->cap)
		return;
	uint32_t cap = v->cap ? v->cap * 2 : 64;
	struct crac_img_lazy_seg *s = map_mem(cap * sizeof(*s));
	if (!s)
		fatal(L, "out of memory for the lazy loader's segment table", 0);
	copy_words(s, v->seg, v->n * sizeof(*s));
	if (v->seg)
		sys_munmap(v->seg, v->cap * sizeof(*s));
	v->seg = s;
	v->cap = cap;
}

/* Splits the segment holding x so that a segment starts at x. */
static void seg_split(struct lazy *L, struct view *v, uint64_t x)
{
	long i = seg_find(v, x);

	if (i < 0 || v->seg[i].addr == x)
		return;
	seg_grow(L, v);
	for (long k = (long)v->n; k > i + 1; k--)
		v->seg[k] = v->seg[k - 1];
	v->n++;
	struct crac_img_lazy_seg *s = &v->seg[i], *t = &v->seg[i + 1];
	uint64_t head = x - s->addr;
	*t = *s;
	t->addr = x;
	t->off += head;
	t->len -= head;
	s->len = head;
	if (v->cur > (uint32_t)i)
		v->cur++;
}

static void seg_sort(struct view *v)
{
	for (uint32_t i = 1; i < v->n; i++) {
		struct crac_img_lazy_seg s = v->seg[i];
		uint32_t k = i;
		while (k > 0 && v->seg[k - 1].addr > s.addr) {
			v->seg[k] = v->seg[k - 1];
			k--;
		}
		v->seg[k] = s;
	}
}

/* [start, end) will read as zeros (REMOVE) or is gone (UNMAP, cut = true). */
static void range_dropped(struct lazy *L, struct view *v, uint64_t start, uint64_t end, bool cut)
{
	seg_split(L, v, start);
	seg_split(L, v, end);
	uint32_t w = 0;
	for (uint32_t i = 0; i < v->n; i++) {
		struct crac_img_lazy_seg *s = &v->seg[i];
		bool inside = s->addr >= start && s->addr + s->len <= end;
		if (inside)
			mark_done(v, s->off, s->len);
		if (inside && cut)
			continue;
		v->seg[w++] = *s;
	}
	v->n = w;
	if (v->cur >= v->n)
		v->cur = 0, v->cur_off = 0;
}

static void range_moved(struct lazy *L, struct view *v, uint64_t from, uint64_t to, uint64_t len)
{
	seg_split(L, v, from);
	seg_split(L, v, from + len);
	for (uint32_t i = 0; i < v->n; i++) {
		struct crac_img_lazy_seg *s = &v->seg[i];
		if (s->addr >= from && s->addr + s->len <= from + len)
			s->addr = s->addr - from + to;
	}
	seg_sort(v);
	v->cur = 0;
	v->cur_off = 0;
}

/* ---- views ---------------------------------------------------------------------- */

static struct view *view_new(struct lazy *L, int uffd, const struct view *from)
{
	size_t words = (L->n_pages + 63) / 64;
	size_t size = (sizeof(struct view) + words * 8 + P - 1) & ~(P - 1);
	struct view *v = map_mem(size);

	if (!v)
		return 0;
	v->uffd = uffd;
	v->mem_size = size;
	v->done = (uint64_t *)((char *)v + ((sizeof(struct view) + 7) & ~7ul));
	if (from) {
		v->child = true;
		copy_words(v->done, from->done, words * 8);
		v->left = from->left;
		v->cap = from->n ? from->n : 1;
		v->seg = map_mem(v->cap * sizeof(*v->seg));
		if (!v->seg) {
			sys_munmap(v, size);
			return 0;
		}
		copy_words(v->seg, from->seg, from->n * sizeof(*v->seg));
		v->n = from->n;
	}
	v->next = L->views;
	L->views = v;
	return v;
}

static void view_free(struct lazy *L, struct view *v)
{
	struct view **pp = &L->views;

	while (*pp != v)
		pp = &(*pp)->next;
	*pp = v->next;
	sys_close(v->uffd);   /* the last reference: every range is unregistered */
	if (v->seg)
		sys_munmap(v->seg, v->cap * sizeof(*v->seg));
	sys_munmap(v, v->mem_size);
}

/* ---- loading ------------------------------------------------------------------ */

/* The pages file chunk c comes from. */
static const struct crac_img_lazy_file *file_of(const struct lazy *L, uint32_t c)
{
	uint32_t f = L->n_files - 1;

	while (f > 0 && c < L->file[f].first_chunk)
		f--;
	return &L->file[f];
}

/* "chunk #N (LEN bytes at ADDR, KIND)": N counted in its own image */
static void put_chunk(struct crac_img_buf *b, uint32_t c, const struct crac_img_chunk *k)
{
	crac_img_put_chunk_head(b, c, k);
	crac_img_puts(b, ", ");
	crac_img_puts(b, crac_img_kind_name(k->map));
	crac_img_puts(b, ")");
}

static void put_pages_path(const struct crac_img_lazy_file *f, struct crac_img_buf *b)
{
	crac_img_puts(b, f->path);
	crac_img_puts(b, "/" CRAC_IMG_PAGES_FILE);
}

/* What the program has seen of chunk c so far, at the end of a message. */
static void put_seen(struct lazy *L, struct crac_img_buf *b, uint32_t c)
{
	if (L->verified[c >> 6] >> (c & 63) & 1)
		crac_img_puts(b, "; the pages of it loaded before came from the bytes verified then");
	else
		crac_img_puts(b, ", before any of these pages was visible");
}

/*
 * Read-ahead: while this thread copies a chunk's pages in (UFFDIO_COPY:
 * most of its time, the first write to every new page), a helper thread
 * reads and verifies the next chunk prefetch will want into a slot of the
 * chunk buffer (pread and crc32c: about a sixth of the time a chunk takes
 * here), so that its bytes are ready when the copies reach it. Two threads
 * copying at once were slower here (a VM with shadow paging: new page
 * table entries are made one at a time), so the helper never touches the
 * program's memory: only the pages file, the slot it was given and its
 * own stack. It has no say over what gets copied: the slot becomes usable
 * only when this thread collects the job and the chunk verified; a job
 * that failed is forgotten, and this thread reads the chunk itself when
 * it needs it (which says what is wrong, as without the helper).
 * Only for uncompressed chunks (the zstd context and buffer are this
 * thread's), with at least three slots and two CPUs. The helper lives
 * while prefetch runs and is gone (ahead_stop) before the thread reports
 * everything loaded or leaves: a checkpoint must not meet it.
 */
enum { AHEAD_IDLE, AHEAD_WORK, AHEAD_DONE, AHEAD_QUIT };
static bool huge_backed(char *b);
#define AHEAD_STACK CRAC_LAZY_AHEAD_STACK

/* clone(flags, sp, ptid, ctid, tls): see loader/sys.h */
SYS_CLONE_TRAMPOLINE(crac__lazy_clone, ".hidden crac__lazy_clone\n");

static void futex_wait(uint32_t *w, uint32_t was)
{
	SYS(SYS_futex, w, FUTEX_WAIT, was, 0, 0, 0);
}

/* Waits for the helper's job for at most ns (< 1 s): done (or none)? */
static bool ahead_wait_ns(struct lazy *L, uint64_t ns)
{
	uint64_t end = now_ns() + ns;
	uint32_t st;

	while ((st = __atomic_load_n(&L->ahead.state, __ATOMIC_ACQUIRE)) == AHEAD_WORK) {
		uint64_t t = now_ns();
		if (t >= end)
			return false;
		struct timespec ts = { 0, (long)(end - t) };
		SYS(SYS_futex, &L->ahead.state, FUTEX_WAIT, st, &ts, 0, 0);
	}
	return true;
}

static void futex_wake(uint32_t *w)
{
	SYS(SYS_futex, w, FUTEX_WAKE, 1, 0, 0, 0);
}

/* Chunk c whole, verified (0), into dst: crac_img_chunk_read's answer. */
static long chunk_read(struct lazy *L, uint32_t c, char *dst)
{
	const struct crac_img_chunk *k = &L->chunk[c];
	const struct crac_img_lazy_file *f = file_of(L, c);
	struct crac_img_chunk real = *k;

	real.offset = L->real_off ? L->real_off[c] : k->offset - f->base;   /* in its own file */
	return crac_img_chunk_read(f->fd, &real, dst, (char *)L->a + L->a->zbuf_off, L->a->zbuf_size, L->dctx,
				   &L->crc);
}

/* The helper thread: one job at a time, until told to quit. */
static __attribute__((noreturn)) void ahead_main(struct lazy *L)
{
	struct ahead *h = &L->ahead;

	for (;;) {
		uint32_t st = __atomic_load_n(&h->state, __ATOMIC_ACQUIRE);
		if (st == AHEAD_QUIT)
			SYS(SYS_exit, 0, 0, 0, 0, 0, 0);
		if (st != AHEAD_WORK) {
			futex_wait(&h->state, st);
			continue;
		}
		if (h->probe) {
			uint64_t t0 = now_ns();
			h->probe_huge = huge_backed(h->probe) && huge_backed(h->probe + HUGE);
			h->probe_ns = now_ns() - t0;
		} else if (h->into) {
			long rc = 0;
			uint64_t t0 = now_ns();
			for (uint32_t i = 0; i < h->job.n && rc == 0; i++)
				rc = chunk_read(L, h->job.c[i].chunk, h->into + h->job.c[i].at);
			h->job_ns = now_ns() - t0;
			h->rc = rc;
		} else {
			h->rc = chunk_read(L, h->chunk, h->slot->bytes);
		}
		__atomic_store_n(&h->state, AHEAD_DONE, __ATOMIC_RELEASE);
		futex_wake(&h->state);
	}
}

/* Starts the helper; false (and never again) if it cannot be. */
static bool ahead_start(struct lazy *L)
{
	struct ahead *h = &L->ahead;

	if (h->off)
		return false;
	if (h->stack)
		return true;
	h->off = true;
	if (L->n_slots < 3 || L->real_off || sys_cpus_allowed() < 2)
		return false;
	if (!(h->stack = map_mem(AHEAD_STACK)))
		return false;
	uint64_t *sp = (uint64_t *)((char *)h->stack + AHEAD_STACK);
	*--sp = (uint64_t)(uintptr_t)L;                  /* arg */
	*--sp = (uint64_t)(uintptr_t)ahead_main;        /* fn */
	h->state = AHEAD_IDLE;
	/* our file table (the pages files), signals blocked as ours are */
	unsigned long flags = CLONE_VM | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
			      CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
	if (crac__lazy_clone(flags, sp, &h->tid, &h->tid, 0) <= 0) {
		sys_munmap(h->stack, AHEAD_STACK);
		h->stack = 0;
		h->tid = 0;
		return false;
	}
	h->off = false;
	return true;
}

/* Waits for the job in hand and takes its slot back: verified, or empty. */
static void ahead_collect(struct lazy *L)
{
	struct ahead *h = &L->ahead;
	uint32_t st;

	if (!h->slot && !h->into && !h->probe)
		return;
	while ((st = __atomic_load_n(&h->state, __ATOMIC_ACQUIRE)) == AHEAD_WORK)
		futex_wait(&h->state, st);
	if (h->into || h->probe) {
		h->state = AHEAD_IDLE;   /* (the block stays h->into's: move_block; the probe's move_ready's) */
		return;
	}
	struct slot *sl = h->slot;
	sl->ahead = false;
	if (h->rc == 0) {
		uint32_t c = h->chunk;
		L->verified[c >> 6] |= 1ull << (c & 63);
		sl->chunk = c;
		sl->valid = true;
		sl->used = ++L->uses;
		h->hits++;
	}
	h->slot = 0;
	h->state = AHEAD_IDLE;
}

/* Has the helper read chunk c ahead (or is it reading it)? Collects it. */
static bool ahead_take(struct lazy *L, uint32_t c)
{
	struct ahead *h = &L->ahead;

	if (!h->slot || h->chunk != c)
		return false;
	ahead_collect(L);
	return true;
}

/* Chunk c to be read ahead, if no slot holds it, none is being read and
 * a slot but the one holding chunk now is free to take. */
static void ahead_kick(struct lazy *L, uint32_t c, uint32_t now)
{
	struct ahead *h = &L->ahead;
	struct slot *sl = 0;

	if (h->slot || h->into || h->probe || L->chunk[c].zlen || L->chunk[c].len > L->a->buf_size || !ahead_start(L))
		return;
	for (uint32_t i = 0; i < L->n_slots; i++) {
		struct slot *x = &L->slot[i];
		if (x->valid && x->chunk == c)
			return;
		if (x->valid && x->chunk == now)
			continue;
		if (!sl || x->used < sl->used)
			sl = x;   /* the least recently used (or never) */
	}
	if (!sl)
		return;
	sl->valid = false;
	sl->ahead = true;
	h->slot = sl;
	h->chunk = c;
	__atomic_store_n(&h->state, AHEAD_WORK, __ATOMIC_RELEASE);
	futex_wake(&h->state);
}

/* While segment i of v loads: the chunk of the next segment after it
 * that is not loaded yet (prefetch and the program go on upwards) read
 * ahead meanwhile. A job done for another chunk (its pages loaded
 * otherwise, or dropped: nothing would ever collect it) is collected
 * first: its slot is an ordinary one again. */
static void ahead_next(struct lazy *L, const struct view *v, uint32_t i)
{
	struct ahead *h = &L->ahead;

	if (h->into && !L->mv[0] && __atomic_load_n(&h->state, __ATOMIC_ACQUIRE) != AHEAD_WORK) {
		/* a block read ahead before moves were given up: let go */
		ahead_collect(L);
		h->into = 0;
	}
	if (h->off || h->into || h->probe)
		return;   /* (a block: move_block takes it; the probe: move_ready) */
	for (uint32_t j = i + 1; j < v->n && j <= i + 8; j++) {   /* (not far: cheap, called a piece) */
		uint32_t c = v->seg[j].chunk;
		if (c == v->seg[i].chunk || is_done(v, v->seg[j].off))
			continue;
		if (h->slot) {
			if (h->chunk == c || __atomic_load_n(&h->state, __ATOMIC_ACQUIRE) != AHEAD_DONE)
				return;   /* the one wanted, or still at work */
			ahead_collect(L);
		}
		ahead_kick(L, c, v->seg[i].chunk);
		return;
	}
}

/* The helper gone (its job collected, its stack unmapped). */
static void ahead_stop(struct lazy *L)
{
	struct ahead *h = &L->ahead;
	uint32_t tid;

	if (!h->stack)
		return;
	ahead_collect(L);
	__atomic_store_n(&h->state, AHEAD_QUIT, __ATOMIC_RELEASE);
	futex_wake(&h->state);
	while ((tid = __atomic_load_n(&h->tid, __ATOMIC_ACQUIRE)) != 0)
		futex_wait(&h->tid, tid);
	sys_munmap(h->stack, AHEAD_STACK);
	h->stack = 0;
	h->off = true;   /* not again */
}

/*
 * The verified bytes of chunk c: read whole into the chunk buffer and
 * checked there, unless the buffer holds it already. Only these bytes are
 * ever copied into the program's memory.
 */
static const char *chunk_bytes(struct lazy *L, uint32_t c)
{
	const struct crac_img_chunk *k = &L->chunk[c];
	const struct crac_img_lazy_file *f = file_of(L, c);
	uint32_t own = c - f->first_chunk;   /* its index in its image */
	char why[1536];
	struct crac_img_buf b = { why, 0, sizeof(why) };
	struct slot *sl = 0;   /* (one slot at least is not the helper's: ahead_start) */

	ahead_take(L, c);   /* read ahead: its slot valid now, unless that failed */
	for (uint32_t i = 0; i < L->n_slots; i++) {
		if (L->slot[i].valid && L->slot[i].chunk == c) {
			L->slot[i].used = ++L->uses;
			return L->slot[i].bytes;
		}
		if (L->slot[i].ahead)
			continue;   /* the helper's */
		if (!sl || L->slot[i].used < sl->used)
			sl = &L->slot[i];   /* the least recently used (or never) */
	}
	sl->valid = false;
	if (k->len > L->a->buf_size)
		fatal(L, "lazy loading: a chunk is larger than the chunk buffer", 0);
	/* read, decompressed if it is, its crc checked: image/chunk.c */
	struct crac_img_chunk real = *k;
	real.offset = L->real_off ? L->real_off[c] : k->offset - f->base;   /* in its own file */
	long rc = chunk_read(L, c, sl->bytes);
	if (rc < 0) {
		crac_img_puts(&b, "cannot read the pages file ");
		put_pages_path(f, &b);
		crac_img_puts(&b, " while loading lazily: ");
		put_chunk(&b, own, &real);
		fatal(L, why, rc);
	}
	if (rc == CRAC_CHUNK_SHORT) {
		struct stat st;
		crac_img_puts(&b, "the pages file ");
		put_pages_path(f, &b);
		crac_img_puts(&b, " was truncated while loading lazily (");
		if (sys_fstat(f->fd, &st) == 0) {
			crac_img_puts(&b, "now ");
			crac_img_putu(&b, (uint64_t)st.st_size);
			crac_img_puts(&b, " bytes, ");
		}
		crac_img_puts(&b, "the image needs ");
		crac_img_putu(&b, f->size);
		crac_img_puts(&b, "): found reading ");
		put_chunk(&b, own, &real);
		put_seen(L, &b, c);
		fatal(L, why, 0);
	}
	if (rc != 0) {
		if (rc == CRAC_CHUNK_CRC) {
			crac_img_put_damaged_chunk(&b, own, &real, crac_img_kind_name(k->map));
		} else {
			put_chunk(&b, own, &real);
			crac_img_puts(&b, ": ");
			crac_img_puts(&b, crac_img_chunk_why(rc));
		}
		if (L->verified[c >> 6] >> (c & 63) & 1) {
			crac_img_puts(&b, "; ");
			put_pages_path(f, &b);
			crac_img_puts(&b, " changed while loading lazily");
		} else {
			crac_img_puts(&b, "; found in ");
			put_pages_path(f, &b);
			crac_img_puts(&b, " while loading lazily (damaged before the restore, or changed since)");
		}
		put_seen(L, &b, c);
		fatal(L, why, 0);
	}
	L->verified[c >> 6] |= 1ull << (c & 63);
	sl->chunk = c;
	sl->valid = true;
	sl->used = ++L->uses;
	return sl->bytes;
}

/*
 * Copies pages file bytes [off, off + len) of segment s (all in its chunk)
 * to dst in view v, from the chunk's verified bytes. Returns 0 once
 * all is in (pages found present count as done), or -EAGAIN (an event must
 * be read first), -ENOENT (no registered mapping at a page: an event about
 * it is on its way), -ESRCH (the address space is gone).
 */
static long copy_from(struct lazy *L, struct view *v, const struct crac_img_chunk *k, const char *src, uint64_t dst,
		      uint64_t off, uint64_t len);

static long copy_in(struct lazy *L, struct view *v, const struct crac_img_lazy_seg *s, uint64_t dst, uint64_t off,
		    uint64_t len)
{
	const struct crac_img_chunk *k = &L->chunk[s->chunk];
	const char *src = chunk_bytes(L, s->chunk) - k->offset;   /* + off: in the buffer */

	return copy_from(L, v, k, src, dst, off, len);
}

/* copy_in's copying: pages file bytes [off, off + len) of chunk k, verified,
 * at src + off, to dst. */
static long copy_from(struct lazy *L, struct view *v, const struct crac_img_chunk *k, const char *src, uint64_t dst,
		      uint64_t off, uint64_t len)
{
	uint64_t step = len;
	/* Write-protected only where the image stored it (not moved since):
	 * a protected page is one taken from the image by its address. */
	uint64_t mode = L->track && dst == k->addr + (off - k->offset) ? UFFDIO_COPY_MODE_WP : 0;

	while (len) {
		uint64_t n = step < len ? step : len;
		struct uffdio_copy c = { .dst = dst, .src = (uint64_t)(uintptr_t)(src + off), .len = n, .mode = mode };
		long rc = SYS(SYS_ioctl, v->uffd, UFFDIO_COPY, &c, 0, 0, 0);
		uint64_t got = rc == 0 ? n : (c.copy > 0 ? (uint64_t)c.copy : 0);
		if (got) {
			mark_done(v, off, got);
			L->copied += got;
			dst += got, off += got, len -= got;
			continue;
		}
		long e = c.copy < 0 ? c.copy : rc;
		if (e == -EEXIST) {          /* already there: it is done */
			mark_done(v, off, P);
			dst += P, off += P, len -= P;
			continue;
		}
		if (e == -ENOENT && n > P) {
			/* One copy must stay inside one VMA, and the program may
			 * have split ours (mprotect, mlock, madvise): page by page. */
			step = P;
			continue;
		}
		if (e == -EAGAIN || e == -ENOENT || e == -ESRCH)
			return e;
		fatal(L, "lazy loading: UFFDIO_COPY failed", e);
	}
	return 0;
}

static void wake(struct view *v, uint64_t addr)
{
	struct uffdio_range r = { .start = addr, .len = P };
	SYS(SYS_ioctl, v->uffd, UFFDIO_WAKE, &r, 0, 0, 0);
}

/* ---- whole blocks moved in --------------------------------------------------- */

/*
 * UFFDIO_COPY installs 4 KiB pages only: a page allocated, its bytes
 * copied and mapped for each, and on a VM with shadow paging each first
 * touch is dear. Moving is cheaper where the kernel has it (UFFDIO_MOVE,
 * Linux 6.8; not across address spaces, so never into a forked child's):
 * a block of HUGE bytes is read and verified into a buffer of ours that
 * holds one huge page (its pread is where the page is faulted in, once),
 * and that page is moved into the program's mapping whole, with no copy
 * (1 GiB here: 0.26 s against 0.70 s copied in 2 MiB pieces, and the
 * program then reads it with one TLB entry per 2 MiB).
 *
 * Only a block that is nothing but whole chunks of segments (gaps between
 * them are pages the image does not store, which must read as zero: the
 * fresh huge page's zeros are right there) and none of whose pages is
 * loaded. A block whose pages the kernel will not take whole (a page
 * already there, the mapping split or ending inside it, mlock, a mapping
 * moved or unmapped meanwhile) is moved page by page as far as it goes,
 * and the rest is left to the copying path. After MOVE_GIVE_UP blocks in
 * a row with nothing moved, moving is given up.
 */

static bool move_ready(struct lazy *L);

/* Buffer b emptied (what was not moved is let go: a later block must find
 * zeros where it reads nothing). */
static void move_reset(char *b)
{
	sys_madvise(b, HUGE, MADV_DONTNEED);
}

/* Marks the pages of segments [first, last) of v that lie in [lo, hi)
 * done; returns their bytes (the rest of [lo, hi) is gaps: zeros). */
static uint64_t move_mark(struct view *v, uint32_t first, uint32_t last, uint64_t lo, uint64_t hi)
{
	uint64_t n = 0;

	for (uint32_t j = first; j < last; j++) {
		const struct crac_img_lazy_seg *s = &v->seg[j];
		uint64_t a = s->addr > lo ? s->addr : lo, b = s->addr + s->len < hi ? s->addr + s->len : hi;
		if (a < b) {
			mark_done(v, s->off + (a - s->addr), b - a);
			n += b - a;
		}
	}
	return n;
}

/* Is [blk, blk + HUGE) of v one to move in whole? Then pl says which
 * chunks fill it, and *first, *last which segments. */
static bool move_plan(struct lazy *L, const struct view *v, uint64_t blk, struct blk_plan *pl, uint32_t *first,
		      uint32_t *last)
{
	const uint64_t end = blk + HUGE;

	if (!L->mv[0] || v->child || (blk & (HUGE - 1)))
		return false;
	long f = seg_find(v, blk);
	uint32_t j = f >= 0 ? (uint32_t)f : v->n;
	if (j >= v->n || v->seg[j].addr != blk)
		return false;
	uint64_t at = blk;
	*first = j;
	pl->n = 0;
	for (; j < v->n && v->seg[j].addr < end; j++) {
		const struct crac_img_lazy_seg *s = &v->seg[j];
		const struct crac_img_chunk *k = &L->chunk[s->chunk];
		if (s->addr + s->len > end || s->len != k->len || s->off != k->offset)
			return false;
		for (uint64_t o = 0; o < s->len; o += P)
			if (is_done(v, s->off + o))
				return false;
		pl->c[pl->n].chunk = s->chunk;
		pl->c[pl->n].at = (uint32_t)(s->addr - blk);
		pl->n++;
		at = s->addr + s->len;
	}
	*last = j;
	return at == end;
}

static bool same_plan(const struct blk_plan *a, const struct blk_plan *b)
{
	if (a->n != b->n)
		return false;
	for (uint32_t i = 0; i < a->n; i++)
		if (a->c[i].chunk != b->c[i].chunk || a->c[i].at != b->c[i].at)
			return false;
	return true;
}

/* Block blk of v (the one after the block being moved) read and verified
 * into buffer b by the read-ahead helper meanwhile, if it is one to move
 * and the helper is free. Not a block of compressed chunks: the zstd
 * context and buffer are this thread's (chunk_read), which may read a
 * chunk for a fault meanwhile. */
static void move_ahead(struct lazy *L, const struct view *v, uint64_t blk, char *b)
{
	struct ahead *h = &L->ahead;
	uint32_t first, last;

	if (h->off || h->into || h->probe || L->real_off || !ahead_start(L))
		return;
	if (h->slot) {
		/* a chunk read ahead for copying, done: collected (its slot an
		 * ordinary one again); still at work: not now */
		if (__atomic_load_n(&h->state, __ATOMIC_ACQUIRE) != AHEAD_DONE)
			return;
		ahead_collect(L);
	}
	if (!move_plan(L, v, blk, &h->job, &first, &last))
		return;
	for (uint32_t i = 0; i < h->job.n; i++)
		if (L->chunk[h->job.c[i].chunk].zlen)
			return;
	h->into = b;
	h->blk = blk;
	__atomic_store_n(&h->state, AHEAD_WORK, __ATOMIC_RELEASE);
	futex_wake(&h->state);
}

/* Moves given up: the block buffers go (the helper's block, if any, is
 * let go first). */
static void move_stop(struct lazy *L)
{
	L->mv[0] = L->mv[1] = 0;   /* (mapped until the end: the helper may be reading into one) */
}

/* A block read in read_ns (the helper's, or ours): three slow ones in a
 * row and moves are given up. */
static void move_judge(struct lazy *L, uint64_t read_ns)
{
	/* Slow reads: the huge pages the buffers get come from memory the
	 * host took back (free page reporting on a VM: its first touch is
	 * ~12 ms a 2 MiB page here, 30 times a warm one's, and twice what
	 * copying 2 MiB into small pages costs, which come from memory freed
	 * lately): copies from now on. */
	if (L->a->flags & CRAC_LAZY_TEST_MOVE_FORCE)
		read_ns = 0;
	else if (L->a->flags & CRAC_LAZY_TEST_MOVE_SLOW)
		read_ns += MOVE_SLOW_NS;
	L->mv_slow = read_ns > MOVE_SLOW_NS ? L->mv_slow + 1 : 0;
	if (L->mv_slow >= MOVE_SLOW_MAX) {
		L->mv_slow_ns = read_ns;
		move_stop(L);
	}
}

/*
 * Block [blk, blk + HUGE) of v moved in. Returns 1 when all of it is in,
 * 0 when it is not one to move or only part went in (the caller loads the
 * rest the usual way: its pages are not done), -EAGAIN (an event must be
 * read first) or -ESRCH (the address space is gone).
 */
static long move_block(struct lazy *L, struct view *v, uint64_t blk)
{
	const uint64_t end = blk + HUGE;
	struct ahead *h = &L->ahead;
	struct blk_plan pl;
	uint32_t first, last;
	char *b = 0;
	uint64_t read_ns = 0;

	if (!move_plan(L, v, blk, &pl, &first, &last)) {
		if (h->into && h->blk == blk) {
			/* read ahead for it, but it changed since (an event):
			 * let go, so that chunks are read ahead again */
			ahead_collect(L);
			move_reset(h->into);
			h->into = 0;
		}
		return 0;
	}
	if (h->into) {
		/* the helper's block: this one, read and verified as planned
		 * now (an event since may have changed the plan), or let go;
		 * waited for MOVE_SLOW_NS at most (else it is slow: this one
		 * is copied, and the helper's let go once it is done) */
		if (!ahead_wait_ns(L, MOVE_SLOW_NS)) {
			move_judge(L, MOVE_SLOW_NS + 1);
			return 0;
		}
		ahead_collect(L);
		if (h->blk == blk && h->rc == 0 && same_plan(&h->job, &pl)) {
			b = h->into;
			read_ns = h->job_ns;
			h->hits += pl.n;
		} else {
			move_reset(h->into);
		}
		h->into = 0;
	}
	if (!b) {
		uint64_t t0 = now_ns();
		b = L->mv[0];
		for (uint32_t i = 0; i < pl.n; i++)
			if (chunk_read(L, pl.c[i].chunk, b + pl.c[i].at) != 0) {
				/* the usual path reads it again and says what is wrong */
				move_reset(b);
				return 0;
			}
		read_ns = now_ns() - t0;
	}
	for (uint32_t i = 0; i < pl.n; i++)
		L->verified[pl.c[i].chunk >> 6] |= 1ull << (pl.c[i].chunk & 63);
	/* the next block read meanwhile (the program and prefetch go on upwards) */
	if (L->mv[1])
		move_ahead(L, v, end, b == L->mv[0] ? L->mv[1] : L->mv[0]);

	uint64_t to = blk;   /* in (or there already) below this */
	long e = 0;
	while (to < end) {
		struct crac_uffdio_move m = { .dst = to, .src = (uint64_t)(uintptr_t)b + (to - blk), .len = end - to,
					      .mode = CRAC_UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES };
		long rc = SYS(SYS_ioctl, v->uffd, CRAC_UFFDIO_MOVE, &m, 0, 0, 0);
		uint64_t got = rc == 0 ? end - to : (m.move > 0 ? (uint64_t)m.move : 0);
		uint64_t stored = move_mark(v, first, last, to, to + got);
		L->moved += stored;
		L->zero += (got - stored) / P;   /* gaps: zero pages */
		to += got;
		if (rc == 0)
			break;
		e = m.move < 0 ? m.move : rc;
		if (e != -EEXIST)
			break;
		/* a page there already (one the image does not store, which the
		 * program touched: a zero page): it stays */
		move_mark(v, first, last, to, to + P);
		to += P;
	}
	move_reset(b);
	move_judge(L, read_ns);
	if (to == end)
		L->mv_fails = 0;
	if (to == blk && ++L->mv_fails >= MOVE_GIVE_UP)
		move_stop(L);
	if (to == end)
		return 1;
	if (e == -EAGAIN || e == -ESRCH)
		return e;
	return 0;
}

/* The rest of a fault's chunk ([lo, hi): its segment) is loaded next. */
static void tail_add(struct view *v, uint64_t lo, uint64_t hi)
{
	for (uint32_t k = 0; k < v->n_tail; k++)
		if (v->tail[k].lo <= lo && v->tail[k].hi >= hi)
			return;
	if (v->n_tail == MAX_TAIL) {
		/* the oldest goes: prefetch gets to it anyway */
		for (uint32_t k = 1; k < MAX_TAIL; k++)
			v->tail[k - 1] = v->tail[k];
		v->n_tail--;
	}
	v->tail[v->n_tail].lo = lo;
	v->tail[v->n_tail].hi = hi;
	v->n_tail++;
}

/* Is a fault (or an event) of v waiting to be read? */
static bool fault_waiting(const struct view *v)
{
	struct pollfd p = { .fd = v->uffd, .events = POLLIN };

	return SYS(SYS_poll, &p, 1, 0, 0, 0, 0) > 0;
}

/*
 * Loads what is left of the fault's chunks (v->tail), PIECE bytes at a
 * time, stopping when a fault waits. Returns the bytes loaded, or -1 when
 * it has to wait for an event first (a range left as it is: prefetch or a
 * fault gets to it).
 */
static long tails(struct lazy *L, struct view *v)
{
	long loaded = 0;

	while (v->n_tail) {
		uint64_t at = v->tail[0].lo, hi = v->tail[0].hi;
		long i = at < hi ? seg_find(v, at) : -1;
		if (i < 0) {
			/* done, or no longer ours (an event moved or dropped it) */
			for (uint32_t k = 1; k < v->n_tail; k++)
				v->tail[k - 1] = v->tail[k];
			v->n_tail--;
			continue;
		}
		const struct crac_img_lazy_seg *s = &v->seg[i];
		uint64_t end = s->addr + s->len < hi ? s->addr + s->len : hi;
		uint64_t off = s->off + (at - s->addr);
		if (is_done(v, off)) {
			v->tail[0].lo = at + P;
			continue;
		}
		ahead_next(L, v, (uint32_t)i);
		uint64_t len = P;
		while (len < PIECE && at + len < end && !is_done(v, off + len))
			len += P;
		long rc = copy_in(L, v, s, at, off, len);
		if (rc == -EAGAIN || rc == -ENOENT) {
			v->n_tail = 0;   /* an event first; then faults and prefetch */
			return loaded ? loaded : -1;
		}
		if (rc == -ESRCH) {
			v->n_tail = 0;
			v->left = 0;
			return loaded;
		}
		v->tail[0].lo = at + len;
		loaded += (long)len;
		if (fault_waiting(v))
			break;
	}
	return loaded;
}

/*
 * Is a fault at addr (in segment i) one of a thread that reads on where
 * the loading got to? The page before it is loaded: it went through what
 * was loaded and caught up. Each such fault made it wait a fault window
 * (a round trip: its fault read, the copy, its wake) only to fault again
 * right after it (1 GiB read at once: thousands of faults); it gets
 * STREAM_WINDOW at once instead (the chunk is read and verified whole
 * anyway), and the loader's time goes to copying. The price: a fault of
 * another thread meanwhile waits for that copy (1 MiB: ~0.3 ms here,
 * against ~20 us for a window).
 */
static bool streaming(const struct view *v, uint32_t i, uint64_t addr)
{
	const struct crac_img_lazy_seg *s = &v->seg[i];

	if (addr > s->addr)
		return is_done(v, s->off + (addr - P - s->addr));
	if (i == 0)
		return false;
	s = &v->seg[i - 1];
	return s->addr + s->len == addr && is_done(v, s->off + s->len - P);
}

/* ---- the working set ------------------------------------------------------------ */

static void drain(struct lazy *L, struct view *v);

/*
 * Recording (CRAC_LAZY_WS_RECORD): for the first ws_record_ms after the
 * jump, each fault loads the page touched alone, nothing else is loaded
 * (no rest of chunk, no prefetch), and each page loaded is noted with the
 * crc32c of its verified bytes; then the list is written into the image
 * directory (ws_store, ws_end) and loading goes on as always. Loading it (ws_load):
 * before anything else, the pages in the order they were touched, each read
 * alone (runs of neighbours in one read) and compared with its crc.
 */
static void ws_note(struct lazy *L, const struct crac_img_lazy_seg *s, uint64_t addr, uint64_t off)
{
	const struct crac_img_chunk *k = &L->chunk[s->chunk];

	if (!L->ws.pg || L->ws.n >= CRAC_IMG_WS_MAX)
		return;
	/* the bytes just copied: the chunk's verified copy in its slot */
	const char *src = chunk_bytes(L, s->chunk) - k->offset + off;
	struct crac_img_ws_page *e = &L->ws.pg[L->ws.n++];
	e->addr = addr;
	e->crc = crac_img_crc32c_with(&L->crc, 0, src, P);
	e->chunk_crc = k->crc;
	L->ws.last_ns = now_ns();
}

/* A quiet moment while recording (no fault for this long): what was
 * recorded so far is stored (ws_store). */
#define WS_QUIET_NS 1000000ull

/*
 * "DIR/working-set", written through the directory under a temporary
 * name, then renamed. The first store claims the name (unless the loader
 * found an unusable file there: REPLACE): an empty file marked partial, so
 * that a restore meanwhile neither records too nor, should this process
 * end within its first moments (a program killed right after its first
 * answer), records again and again, each time paying for the recording.
 * Each quiet moment then stores what was recorded so far (still partial),
 * and the end the whole of it. Each file stored stays open here, flock'ed
 * (ws.file.held), until the next one is in its place: a restore that finds
 * it partial tells by the lock whether we still record it (loader/lazy.c,
 * ws_read). A store that fails once the name is ours removes our file
 * (ws_unclaim), so that a later restore records it: left partial, it
 * would be used as it is for good.
 *
 * The stores are the writer's (a thread of its own, one store at a time:
 * struct ws_job), never this thread's: this one serves the program's page
 * faults, and a file system that does not answer (a hung NFS server) must
 * not stop it. It hands a store over and waits WS_SYNC_NS at most for the
 * answer (a file system that answers takes far less), then looks for it as
 * it goes (ws_poll); a quiet moment while the writer is busy stores
 * nothing (the next one does). Before it says everything is loaded, and before it
 * leaves, it waits WS_WAIT_NS at most for the last store; past that it
 * abandons the writer (ws_abandon), which finishes alone: a partial file
 * it then places is removed, a whole one kept. The writer uses only its
 * own mappings (the job, its stack and thread pointer): it may outlive
 * this thread, whose area is gone then.
 */
#define WS_WAIT_NS 2000000000ull
#define WS_SYNC_NS 250000000ull
#define WS_WRITER_STACK (64u << 10)

/* What a failed recording left in the directory (ws.left, for --stats). */
enum { WS_LEFT_NOTHING, WS_LEFT_REMOVED, WS_LEFT_KEPT, WS_LEFT_OTHERS };
enum { WS_JOB_WORK, WS_JOB_DONE, WS_JOB_ABANDONED };

/* One store: a mapping of its own (this, then the entries), handed over
 * whole to the writer until it says DONE. */
struct ws_job {
	uint32_t state;             /* WS_JOB_* */
	int dir_fd;                 /* the writer's own descriptor of the directory */
	uint32_t flags;             /* the area's (CRAC_LAZY_WS_*) */
	bool replace;               /* the loader found an unusable file there */
	bool final;                 /* the whole working set, not partial */
	bool drop;                  /* final, and nothing recorded: our claim removed, nothing stored */
	struct ws_file file;        /* in: as the stores before left it; out: as this one does */
	int held;                   /* out: the file placed, open and flock'ed: descriptor + 1, 0 */
	long rc;                    /* out: 0 or -errno (EEXIST: another restore claimed it first) */
	uint8_t left;               /* out, on failure: WS_LEFT_* */
	uint64_t size;              /* of this mapping */
	void *stack;                /* the writer's (WS_WRITER_STACK bytes, its thread pointer at the bottom) */
	uint32_t want;              /* the crc32c of the file's bytes */
	struct crac_img_crc crc;
	struct crac_img_ws_head h;
	struct crac_img_ws_page pg[];
};

/*
 * A store failed (or the recording holds nothing): our file is removed, if
 * the name still holds it, so that a later restore records it. Never by
 * its name alone: between a look at the name (its dev and inode ours) and
 * the unlink, another restore may have put its own file there (one told
 * to replace it, CRAC_WORKING_SET=record; or one that claimed the name
 * once ours was gone), and the unlink would remove that. So what holds
 * the name is first renamed aside, to a temporary name of ours (a rename
 * moves exactly one inode, at once), and only then looked at: ours, it is
 * unlinked; another's, it is renamed back (RENAME_NOREPLACE, or a hard
 * link where the file system lacks it) unless a third file took the name
 * meanwhile, which supersedes it. The name is empty for that moment: a
 * restore that looks then records too, and its claim is the one kept.
 */
static void ws_unclaim(struct ws_job *j)
{
	char aside[80];
	struct crac_img_buf b = { aside, 0, sizeof(aside) };
	struct stat st;
	int d = j->dir_fd;

	j->left = WS_LEFT_NOTHING;
	if (!j->file.claimed)
		return;
	j->file.claimed = false;
	if (j->flags & CRAC_LAZY_WS_TEST_UNCLAIM) {
		struct timespec t = { 1, 0 };   /* tests: another file takes the name meanwhile */
		SYS(SYS_nanosleep, &t, 0, 0, 0, 0, 0);
	}
	/* (named like the temporaries: removed with the image, and not taken
	 * for another restore's claim) */
	crac_img_puts(&b, "." CRAC_IMG_WS_FILE ".tmp-");
	crac_img_putu(&b, (uint64_t)SYS(SYS_gettid, 0, 0, 0, 0, 0, 0));
	crac_img_puts(&b, "-");
	crac_img_putu(&b, now_ns());
	crac_img_puts(&b, "-gone");
	long rc = SYS(SYS_renameat, d, CRAC_IMG_WS_FILE, d, aside, 0, 0);
	if (rc == -ENOENT) {
		j->left = WS_LEFT_REMOVED;   /* (gone already: a later restore records it) */
		return;
	}
	if (rc < 0) {
		j->left = WS_LEFT_KEPT;
		return;
	}
	if (sys_fstatat(d, aside, &st, AT_SYMLINK_NOFOLLOW) == 0 && (uint64_t)st.st_dev == j->file.dev &&
	    (uint64_t)st.st_ino == j->file.ino) {
		SYS(SYS_unlinkat, d, aside, 0, 0, 0, 0);
		j->left = WS_LEFT_REMOVED;
		return;
	}
	/* another's: back under the name, unless a newer one is there */
	j->left = WS_LEFT_OTHERS;
	bool linked = false;
	rc = (j->flags & CRAC_LAZY_WS_NO_NOREPLACE)
		     ? -EINVAL
		     : SYS(SYS_renameat2, d, aside, d, CRAC_IMG_WS_FILE, 1 /* RENAME_NOREPLACE */, 0);
	if (rc == -EINVAL || rc == -ENOSYS) {
		rc = SYS(SYS_linkat, d, aside, d, CRAC_IMG_WS_FILE, 0, 0);
		linked = rc == 0;
	}
	/* superseded, or linked back (another failure leaves it aside, a
	 * temporary that a checkpoint of the image removes) */
	if (rc == -EEXIST || linked)
		SYS(SYS_unlinkat, d, aside, 0, 0, 0, 0);
}

/*
 * The temporary tmp becomes DIR/working-set: replacing what is there
 * (ours, or a file the loader found unusable), or claiming the name, which
 * fails with EEXIST when another restore claimed it first. The claim is
 * renameat2's RENAME_NOREPLACE, or where the file system lacks it (EINVAL:
 * NFS, some FUSE; ENOSYS: no renameat2) a hard link of the temporary,
 * which fails the same way, and the temporary's name removed.
 */
static long ws_place(const struct ws_job *j, const char *tmp, bool replace)
{
	int d = j->dir_fd;

	if (replace)
		return SYS(SYS_renameat, d, tmp, d, CRAC_IMG_WS_FILE, 0, 0);
	long rc = (j->flags & CRAC_LAZY_WS_NO_NOREPLACE)
			  ? -EINVAL   /* tests: CRAC_PRETEND_MISSING=rename_noreplace */
			  : SYS(SYS_renameat2, d, tmp, d, CRAC_IMG_WS_FILE, 1 /* RENAME_NOREPLACE */, 0);
	if (rc != -EINVAL && rc != -ENOSYS)
		return rc;
	rc = SYS(SYS_linkat, d, tmp, d, CRAC_IMG_WS_FILE, 0, 0);
	/* (should this fail, the temporary is left like one of a restore
	 * killed before its rename: a checkpoint removes it) */
	SYS(SYS_unlinkat, d, tmp, 0, 0, 0, 0);
	return rc;
}

/*
 * The file just stored, read back through its name: the inode we wrote
 * (the job's file), of the size written, its bytes those written (their
 * crc32c). 0, or -errno (ESTALE: another file has the name now; EIO: it
 * differs).
 */
static long ws_verify(struct ws_job *j, uint64_t size)
{
	char buf[4096];
	struct stat st;
	uint32_t crc = 0;
	long fd = SYS(SYS_openat, j->dir_fd, CRAC_IMG_WS_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0, 0, 0);

	if (fd < 0)
		return fd;
	long rc = sys_fstat((int)fd, &st);
	if (rc == 0 && ((uint64_t)st.st_dev != j->file.dev || (uint64_t)st.st_ino != j->file.ino))
		rc = -ESTALE;
	else if (rc == 0 && (uint64_t)st.st_size != size)
		rc = -EIO;
	for (uint64_t off = 0; rc == 0 && off < size;) {
		long n = sys_pread((int)fd, buf, size - off < sizeof(buf) ? size - off : sizeof(buf), off);
		if (n <= 0)
			rc = n < 0 ? n : -EIO;
		else
			crc = crac_img_crc32c_with(&j->crc, crc, buf, (uint64_t)n);
		off += n > 0 ? (uint64_t)n : 0;
	}
	sys_close((int)fd);
	return rc == 0 && crc != j->want ? -EIO : rc;
}

/* The store itself (the writer's): the job's answer in rc, file, held,
 * left. */
static void ws_job_run(struct ws_job *j)
{
	const struct crac_img_ws_head *h = &j->h;
	uint64_t size = sizeof(*h) + (uint64_t)h->n * sizeof(j->pg[0]);
	char tmp[64];
	struct crac_img_buf b = { tmp, 0, sizeof(tmp) };

	if (j->flags & CRAC_LAZY_WS_TEST_STUCK) {
		struct timespec d = { 10, 0 };   /* tests: a file system that does not answer */
		SYS(SYS_nanosleep, &d, 0, 0, 0, 0, 0);
	}
	if (j->drop) {
		/* An empty working set stored whole would never be recorded
		 * again (a program that touched nothing in its first moments
		 * this time, a server waiting for its first client): the claim
		 * goes, and a later restore records it. */
		ws_unclaim(j);
		j->file.kept = 0;
		j->rc = 0;
		return;
	}
	/* The temporary's name: our thread id and the time. The id alone
	 * recurs (the restores of each new pid namespace get the same ones),
	 * and a temporary a restore killed before its rename left under it
	 * (kept until a checkpoint replaces the image) must not be taken
	 * for another restore's claim, nor stop this one from storing. */
	long fd = -EEXIST;
	for (uint64_t k = 0; k < 4 && fd == -EEXIST; k++) {
		b.len = 0;
		crac_img_puts(&b, "." CRAC_IMG_WS_FILE ".tmp-");
		crac_img_putu(&b, (uint64_t)SYS(SYS_gettid, 0, 0, 0, 0, 0, 0));
		crac_img_puts(&b, "-");
		crac_img_putu(&b, h->recorded_ns + k);
		fd = SYS(SYS_openat, j->dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600, 0, 0);
	}
	if (fd < 0) {
		ws_unclaim(j);
		j->rc = fd == -EEXIST ? -EIO : fd;   /* (EEXIST says another restore's file is there) */
		return;
	}
	/* held (a second descriptor of it): locked, so that a restore that
	 * finds it partial knows we record it; the file system may not lock
	 * (ENOLCK): then it is taken for one whose recording ended early */
	long held = SYS(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 0, 0, 0, 0);
	if (held >= 0)
		SYS(SYS_flock, held, 2 /* LOCK_EX */ | 4 /* LOCK_NB */, 0, 0, 0, 0);
	struct stat st;
	long rc = write_all((int)fd, (const char *)h, sizeof(*h));
	if (rc == 0)
		rc = write_all((int)fd, (const char *)j->pg, (uint64_t)h->n * sizeof(j->pg[0]));
	if (rc == 0 && (j->flags & CRAC_LAZY_WS_TEST_DAMAGE)) {
		/* tests: a byte of the head changed (inverted: a fixed value
		 * would be no change where the head holds it already) */
		char x = (char)~((const char *)h)[16];
		SYS(SYS_pwrite64, fd, &x, 1, 16, 0, 0);
	}
	if (rc == 0)
		rc = sys_fstat((int)fd, &st);
	/* (a network file system may say only here that the data did not
	 * get through: NFS flushes on close) */
	long closed = sys_close((int)fd);
	if (rc == 0 && closed < 0 && closed != -EINTR)
		rc = closed;
	bool placed = false;
	if (rc == 0) {
		rc = ws_place(j, tmp, j->file.claimed || j->replace);
		placed = rc == 0;
		if (placed) {
			/* the name is ours now, whatever the check finds */
			j->held = held >= 0 ? (int)held + 1 : 0;
			held = -1;
			j->file.claimed = true;
			j->file.dev = (uint64_t)st.st_dev;
			j->file.ino = (uint64_t)st.st_ino;
			rc = ws_verify(j, size);
		}
	}
	if (!placed)
		SYS(SYS_unlinkat, j->dir_fd, tmp, 0, 0, 0, 0);
	if (held >= 0)
		sys_close((int)held);
	if (rc == 0)
		j->file.kept = h->n;
	else if (rc != -EEXIST)
		ws_unclaim(j);
	j->rc = rc;
}

static __attribute__((noreturn)) void leave(void *area, uint64_t size);

/* The writer: one store, then gone (its stack unmapped as it exits). */
static __attribute__((noreturn)) void ws_writer(struct ws_job *j)
{
	void *stack = j->stack;
	int dir_fd = j->dir_fd;

	/* its own name (ps -L, top -H, /proc/PID/task/TID/comm): a writer
	 * given up on, hung in the file system, stays a thread of the
	 * program until the file system answers, and says what it is */
	sys_prctl(PR_SET_NAME, "crac-ws-writer", 0, 0, 0);
	ws_job_run(j);
	int held = j->held;
	bool partial = !j->final, claimed = j->file.claimed;
	uint64_t size = j->size;
	/* once DONE the job is the lazy thread's: not touched after */
	if (__atomic_exchange_n(&j->state, WS_JOB_DONE, __ATOMIC_ACQ_REL) == WS_JOB_ABANDONED) {
		/* nobody will store after us: a partial file of ours would be
		 * used as it is for good (a whole one, verified, stays) */
		if (partial && claimed)
			ws_unclaim(j);
		if (held)
			sys_close(held - 1);
		sys_munmap(j, size);
	}
	sys_close(dir_fd);
	leave(stack, WS_WRITER_STACK);
}

/* Starts the writer on j; false if it cannot be (then the store is done
 * here: as before there was a writer). */
static bool ws_writer_start(struct ws_job *j, uint32_t *tid)
{
	char *s = map_mem(WS_WRITER_STACK);

	if (!s)
		return false;
	/* its thread pointer: a word of its own at the bottom of its stack
	 * (ours is in the area, which may be gone before the writer is) */
	uint64_t *tls = (uint64_t *)s;
	tls[0] = (uint64_t)(uintptr_t)tls;
	uint64_t *sp = (uint64_t *)(s + WS_WRITER_STACK);
	*--sp = (uint64_t)(uintptr_t)j;          /* arg */
	*--sp = (uint64_t)(uintptr_t)ws_writer;  /* fn */
	j->stack = s;
	/* our file table (the directory), signals blocked as ours are; no
	 * tid cleared at its exit: the word would be in a mapping gone */
	unsigned long flags = CLONE_VM | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS |
			      CLONE_PARENT_SETTID;
	/* (the read-ahead helper's trampoline) */
	if (crac__lazy_clone(flags, sp, tid, 0, (unsigned long)(uintptr_t)tls) <= 0) {
		sys_munmap(s, WS_WRITER_STACK);
		return false;
	}
	return true;
}

/* The job's answer taken (it is DONE) and the job unmapped. */
static void ws_collect(struct lazy *L)
{
	struct ws_job *j = L->ws.job;
	long rc = j->rc;

	L->ws.job = 0;
	if (j->held) {
		if (L->ws.file.held)
			sys_close(L->ws.file.held - 1);
		L->ws.file.held = j->held;
	}
	L->ws.file.claimed = j->file.claimed;
	L->ws.file.dev = j->file.dev;
	L->ws.file.ino = j->file.ino;
	L->ws.file.kept = j->file.kept;
	if (!j->file.claimed && L->ws.file.held) {
		sys_close(L->ws.file.held - 1);
		L->ws.file.held = 0;
	}
	bool final = j->final;
	if (rc < 0 || j->drop)
		L->ws.left = j->left;
	L->ws.empty = j->drop && rc == 0;
	sys_munmap(j, j->size);
	if (rc < 0) {
		/* the recording is over: given up */
		L->ws.rec = false;
		L->ws.final_due = false;
		L->ws.err = rc == -EEXIST ? 0 : rc;   /* EEXIST: another restore's is there */
		L->ws.over = true;
	} else if (final) {
		L->ws.written = !L->ws.empty;
		L->ws.over = true;
	}
}

/* What was recorded (final: all of it, else marked partial) handed to
 * the writer; 0, or -errno (no memory: nothing stored). While it is busy
 * with a store before, nothing: the next quiet moment (or the end) stores. */
static long ws_store(struct lazy *L, bool final)
{
	const struct crac_img_lazy *a = L->a;
	struct timespec ts = { 0, 0 };

	if (L->ws.job)
		return 0;
	uint64_t size = (sizeof(struct ws_job) + (uint64_t)L->ws.n * sizeof(*L->ws.pg) + P - 1) & ~(P - 1);
	struct ws_job *j = map_mem(size);
	if (!j)
		return -ENOMEM;
	long dfd = SYS(SYS_fcntl, a->ws_dir_fd, F_DUPFD_CLOEXEC, 0, 0, 0, 0);
	if (dfd < 0) {
		sys_munmap(j, size);
		return dfd;
	}
	struct crac_img_ws_head *h = &j->h;
	sys_clock_gettime(CLOCK_REALTIME, &ts);
	h->magic = CRAC_IMG_WS_MAGIC;   /* (the mapping is zeroed) */
	h->version = CRAC_IMG_WS_VERSION;
	h->n = L->ws.n;
	h->image_crc = a->ws_image_crc;
	h->recorded_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	h->record_ms = a->ws_record_ms;
	h->flags = final ? 0 : CRAC_IMG_WS_PARTIAL;
	copy_words(j->pg, L->ws.pg, (uint64_t)h->n * sizeof(*L->ws.pg));
	h->crc = crac_img_crc32c_with(&L->crc, crac_img_crc32c_with(&L->crc, 0, h, sizeof(*h)), j->pg,
				      (size_t)h->n * sizeof(*j->pg));
	/* the file's bytes, as ws_verify reads them back */
	j->want = crac_img_crc32c_with(&L->crc, crac_img_crc32c_with(&L->crc, 0, h, sizeof(*h)), j->pg,
				       (size_t)h->n * sizeof(*j->pg));
	copy_words(&j->crc, &L->crc, sizeof(L->crc));
	j->state = WS_JOB_WORK;
	j->dir_fd = (int)dfd;
	j->flags = a->flags;
	j->replace = (a->flags & CRAC_LAZY_WS_REPLACE) != 0;
	j->final = final;
	j->drop = final && h->n == 0;
	j->file = L->ws.file;
	j->size = size;
	L->ws.stored_n = L->ws.n;
	L->ws.job = j;
	if (!ws_writer_start(j, &L->ws.writer_tid)) {
		/* no writer: stored here, however long it takes */
		ws_job_run(j);
		sys_close(j->dir_fd);
		j->state = WS_JOB_DONE;
		ws_collect(L);
		return 0;
	}
	/* Its answer waited for WS_SYNC_NS at most: as fast as storing here
	 * on a file system that answers (the program, which may end as soon
	 * as its pages are in, would otherwise leave a temporary, or its
	 * claim partial: the loading goes on only after the store) */
	uint64_t until = now_ns() + WS_SYNC_NS;
	while (__atomic_load_n(&j->state, __ATOMIC_ACQUIRE) == WS_JOB_WORK && now_ns() < until) {
		struct timespec d = { 0, 20000 };
		SYS(SYS_nanosleep, &d, 0, 0, 0, 0, 0);
	}
	if (__atomic_load_n(&j->state, __ATOMIC_ACQUIRE) == WS_JOB_DONE)
		ws_collect(L);
	return 0;
}

/* Everything the recording holds given back, once over and no store is
 * left to make. */
static void ws_release(struct lazy *L)
{
	if (!L->ws.over || L->ws.job || L->ws.final_due || L->ws.released)
		return;
	L->ws.released = true;
	if (L->ws.file.held)
		sys_close(L->ws.file.held - 1);   /* (whole now, or given up: nobody looks at the lock) */
	L->ws.file.held = 0;
	sys_close(L->a->ws_dir_fd);
	if (L->ws.pg)
		sys_munmap(L->ws.pg, ((uint64_t)CRAC_IMG_WS_MAX * sizeof(*L->ws.pg) + P - 1) & ~(P - 1));
	L->ws.pg = 0;
}

/* The writer's answer, if it has one; the last store handed over once it
 * is free. Each turn of the loop, and while waiting for it (ws_wait). */
static void ws_poll(struct lazy *L)
{
	if (L->ws.job && __atomic_load_n(&L->ws.job->state, __ATOMIC_ACQUIRE) == WS_JOB_DONE)
		ws_collect(L);
	if (L->ws.final_due && !L->ws.job) {
		L->ws.final_due = false;
		long rc = ws_store(L, true);
		if (rc < 0) {
			L->ws.err = rc;
			L->ws.over = true;
		}
	}
	ws_release(L);
}

/* Recording over: stored whole (rc 0: by the writer, as soon as it is
 * free), or given up (rc: -errno, EEXIST: another restore claimed it, no
 * memory to record), and the normal loading goes on. */
static void ws_end(struct lazy *L, long rc)
{
	L->ws.rec = false;
	if (rc == 0) {
		L->ws.final_due = true;
	} else {
		L->ws.err = rc == -EEXIST ? 0 : rc;
		L->ws.over = true;
	}
	ws_poll(L);
}

/* The writer gone on without us: its answer will not be collected. */
static void ws_abandon(struct lazy *L)
{
	uint32_t work = WS_JOB_WORK;

	if (!__atomic_compare_exchange_n(&L->ws.job->state, &work, WS_JOB_ABANDONED, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		ws_collect(L);   /* (it has just finished) */
		return;
	}
	L->ws.job = 0;
	L->ws.final_due = false;
	L->ws.err = -ETIMEDOUT;
	L->ws.abandoned = true;
	L->ws.over = true;
	ws_release(L);
}

/* Before everything is said loaded, and before leaving: the recording
 * ended (all pages are in) and its last store made, WS_WAIT_NS at most. */
static void ws_wait(struct lazy *L)
{
	uint64_t until = now_ns() + WS_WAIT_NS;

	if (!(L->a->flags & CRAC_LAZY_WS_RECORD) || L->ws.released)
		return;
	if (L->ws.rec)
		ws_end(L, 0);
	for (ws_poll(L); L->ws.job; ws_poll(L)) {
		if (now_ns() >= until) {
			ws_abandon(L);
			break;
		}
		struct timespec d = { 0, 1000000 };   /* (no wake from the writer: see ws_writer) */
		SYS(SYS_nanosleep, &d, 0, 0, 0, 0, 0);
	}
	/* its last steps after DONE (closing, unmapping its stack): gone
	 * before a checkpoint may stop the threads */
	long pid = SYS(SYS_getpid, 0, 0, 0, 0, 0, 0);
	while (!L->ws.abandoned && L->ws.writer_tid && now_ns() < until &&
	       SYS(SYS_tgkill, pid, L->ws.writer_tid, 0, 0, 0, 0) == 0) {
		struct timespec d = { 0, 100000 };
		SYS(SYS_nanosleep, &d, 0, 0, 0, 0, 0);
	}
}

#define WS_RUN 16u   /* pages read at once: neighbours in the working set */

/* Working-set entries e[0..] from a run of neighbours: read, verified page
 * by page, copied. Returns how many entries it took (at least one). */
#define WS_EAGAIN_TRIES 50u

/* How many of the first `ok` pages from addr, pages file bytes from off,
 * are still to copy: in a segment at that place of the file (not moved,
 * not unmapped) and not done (not dropped, not loaded meanwhile). */
static uint32_t ws_still(const struct view *v, uint64_t addr, uint64_t off, uint32_t ok)
{
	for (uint32_t j = 0; j < ok; j++) {
		uint64_t a = addr + (uint64_t)j * P, o = off + (uint64_t)j * P;
		long i = seg_find(v, a);
		if (i < 0 || v->seg[i].off + (a - v->seg[i].addr) != o || is_done(v, o))
			return j;
	}
	return ok;
}

static uint32_t ws_run(struct lazy *L, struct view *v, const struct crac_img_ws_page *e, uint32_t left, char *buf)
{
	long i = seg_find(v, e[0].addr);
	if (i < 0)
		return 1;   /* not a lazy page (any more): nothing to do */
	const struct crac_img_lazy_seg *s = &v->seg[i];
	const struct crac_img_chunk *k = &L->chunk[s->chunk];
	uint64_t off = s->off + (e[0].addr - s->addr);
	if (is_done(v, off) || k->zlen || L->real_off || k->crc != e[0].chunk_crc) {
		L->ws.skipped += !is_done(v, off);
		return 1;   /* loaded; or compressed, or another chunk: the normal path */
	}
	uint32_t n = 1;
	while (n < left && n < WS_RUN && e[n].addr == e[0].addr + n * P && e[n].addr < s->addr + s->len &&
	       e[n].chunk_crc == e[0].chunk_crc && !is_done(v, off + n * P))
		n++;
	const struct crac_img_lazy_file *f = file_of(L, s->chunk);
	long got = sys_pread(f->fd, buf, (uint64_t)n * P, off - f->base);
	uint32_t ok = got > 0 ? (uint32_t)((uint64_t)got / P) : 0;
	for (uint32_t j = 0; j < ok; j++)
		if (crac_img_crc32c_with(&L->crc, 0, buf + (uint64_t)j * P, P) != e[j].crc) {
			ok = j;   /* the pages from here on: the normal path, whose messages say what is wrong */
			break;
		}
	L->ws.skipped += n - ok;
	/* EAGAIN: a change to the memory map (a munmap, madvise or mremap of a
	 * registered range, a fork) is under way and its event not read yet:
	 * the kernel refuses every copy until it is. Read the events and copy
	 * again (the restore path and the program's first moments make such
	 * changes while the working set loads; taken as gone through, the
	 * pages were left to faults). A change still unreported after
	 * WS_EAGAIN_TRIES: the pages are left to the normal path. */
	/* Tests (CRAC_TEST_WS_SLOW): 2 ms between the runs, spent between a
	 * run's checks and its copy, and after each read of the events (the
	 * program whose change was read goes on first: its madvise zaps), so
	 * that the program's changes meet runs under way. */
	bool slow = (L->a->flags & CRAC_LAZY_WS_TEST_SLOW) != 0;
	struct timespec slow_d = { 0, 2000000 };
	if (slow)
		SYS(SYS_nanosleep, &slow_d, 0, 0, 0, 0, 0);
	long rc = 0;
	for (uint32_t t = 0; ok && t < WS_EAGAIN_TRIES; t++) {
		if (t) {
			drain(L, v);
			/* The events just read may have dropped (REMOVE,
			 * UNMAP) or moved (REMAP) pages of the run, and reading
			 * them let the program go on: its madvise zaps now. A
			 * page copied after that zap would hold its old bytes
			 * where zeros must be (and, tracked, be write-protected:
			 * taken from the parent image by the next incremental
			 * one). Only the pages still ours, in place and not
			 * done are copied; from the first that is not, the rest
			 * is left to the normal path. */
			ok = ws_still(v, e[0].addr, off, ok);
			if (!ok)
				break;
			if (slow) {
				SYS(SYS_nanosleep, &slow_d, 0, 0, 0, 0, 0);
			} else if (t > 1) {
				struct timespec d = { 0, 20 * 1000 };
				SYS(SYS_nanosleep, &d, 0, 0, 0, 0, 0);
			}
		}
		if ((rc = copy_from(L, v, k, buf - off, e[0].addr, off, (uint64_t)ok * P)) != -EAGAIN)
			break;
	}
	if (ok && rc == 0)
		L->ws.loaded += ok;
	return n;
}

/*
 * Loading the working set: the first WS_EARLY pages at once, while the
 * restore path runs (the program touches them first); then more only as
 * the program shows it needs them: a fault on a page of the working set
 * not loaded yet sends the loading WS_STEP entries past it. Loaded at once,
 * all of it took the CPU the restore path and the program's threads wanted
 * (python3, 2 CPUs, medians of 25 interleaved: first answer 8.4 ms with the
 * first 256 at once and the rest after the restore path, 7.0 ms with the
 * first 256 alone, 8.0 ms with 512, 10.3 ms with 128; 10.9 ms without a
 * working set); the rest is left to prefetch.
 */
#define WS_EARLY 256u
#define WS_STEP 64u

/* The working set the loader put in the area (CRAC_LAZY_WS_LOAD). */
static const struct crac_img_ws_page *ws_entries(const struct lazy *L)
{
	return (const struct crac_img_ws_page *)((const char *)L->a + L->a->ws_off);
}

static uint32_t ws_hash(uint64_t addr, uint32_t mask)
{
	return (uint32_t)(((addr >> 12) * 0x9e3779b97f4a7c15ull) >> 40) & mask;
}

/* The index from page address to entry (no index: no extension by faults). */
static void ws_index(struct lazy *L)
{
	const struct crac_img_ws_page *e = ws_entries(L);
	uint32_t n = L->a->ws_n, size = 64;

	while (size < 2 * n)
		size *= 2;
	if (!(L->ws.index = map_mem(((uint64_t)size * 4 + P - 1) & ~(P - 1))))
		return;
	L->ws.index_mask = size - 1;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t h = ws_hash(e[i].addr, L->ws.index_mask);
		while (L->ws.index[h])
			h = (h + 1) & L->ws.index_mask;
		L->ws.index[h] = i + 1;
	}
}

/* A fault at addr: past what the working set loaded so far? Load on. */
static void ws_fault(struct lazy *L, uint64_t addr)
{
	const struct crac_img_ws_page *e = ws_entries(L);

	if (!L->ws.index || L->ws.next >= L->a->ws_n)
		return;
	for (uint32_t h = ws_hash(addr, L->ws.index_mask); L->ws.index[h]; h = (h + 1) & L->ws.index_mask) {
		uint32_t i = L->ws.index[h] - 1;
		if (e[i].addr == addr) {
			if (i >= L->ws.next && i + WS_STEP > L->ws.upto)
				L->ws.upto = i + WS_STEP < L->a->ws_n ? i + WS_STEP : L->a->ws_n;
			return;
		}
	}
}

/* The working set's entries up to ws.upto, from where it got to: faults
 * that come meanwhile are served first. */
static void ws_load(struct lazy *L, struct view *v)
{
	const struct crac_img_ws_page *e = ws_entries(L);
	char buf[WS_RUN * P] __attribute__((aligned(64)));
	uint64_t t0 = now_ns();

	while (L->ws.next < L->ws.upto && v->left) {
		if (fault_waiting(v))
			drain(L, v);
		L->ws.next += ws_run(L, v, e + L->ws.next, L->a->ws_n - L->ws.next, buf);
	}
	L->ws.load_ns += now_ns() - t0;
}

/* A thread waits at addr. Returns false if it must be retried later. */
static bool serve(struct lazy *L, struct view *v, uint64_t addr)
{
	long i = seg_find(v, addr);
	long rc;

	if (!v->child)
		ws_fault(L, addr);

	if (i >= 0) {
		struct crac_img_lazy_seg *s = &v->seg[i];
		uint64_t off = s->off + (addr - s->addr);
		if (!is_done(v, off)) {
			/* [lo, hi): the pages not loaded around addr in its
			 * FAULT_WINDOW block and segment (a page done but not
			 * present must stay zero: never copied over) */
			uint64_t blo = addr & ~(uint64_t)(FAULT_WINDOW - 1), bhi = blo + FAULT_WINDOW;
			uint64_t lo = addr, hi = addr + P;
			bool stream = !(L->ws.rec && !v->child) && L->prefetch && streaming(v, (uint32_t)i, addr);
			if (stream && move_ready(L)) {
				/* reading on: its whole block moved in, where it can be */
				uint64_t blk = addr & ~(HUGE - 1);
				rc = move_block(L, v, blk);
				/* (else what is left is copied: -EAGAIN too, the
				 * copy says whether an event is due) */
				if (rc == 1) {
					v->cur = seg_above(v, blk + HUGE - 1);   /* prefetch goes on from here */
					v->cur_off = 0;
				}
				if (rc == 1 || rc == -ESRCH) {
					wake(v, addr);
					return true;
				}
			}
			if (L->ws.rec && !v->child)
				blo = addr, bhi = addr + P;   /* recording: the page touched alone */
			else if (stream)
				blo = addr, bhi = addr + STREAM_WINDOW;
			if (blo < s->addr)
				blo = s->addr;
			if (bhi > s->addr + s->len)
				bhi = s->addr + s->len;
			while (lo > blo && !is_done(v, s->off + (lo - P - s->addr)))
				lo -= P;
			while (hi < bhi && !is_done(v, s->off + (hi - s->addr)))
				hi += P;
			rc = copy_in(L, v, s, lo, s->off + (lo - s->addr), hi - lo);
			if (rc == -EAGAIN)
				return false;
			if (rc == 0 && L->ws.rec && !v->child) {
				ws_note(L, s, addr, off);
			} else if (rc == 0) {
				if (L->prefetch)   /* CRAC_LAZY_PREFETCH=off: faults only */
					tail_add(v, s->addr, s->addr + s->len);
				if (!v->child) {
					/* prefetch goes on from here */
					v->cur = (uint32_t)i;
					v->cur_off = hi - s->addr;
				}
			}
			/* The copy woke it, unless its page was there already
			 * (EEXIST) or is no longer ours (ENOENT: let it fault
			 * again; the event that explains it comes first). */
			wake(v, addr);
			return true;
		}
	}
	/*
	 * Nothing stored here (a hole, or a page that must read as zero). A
	 * hole: all of it in addr's FAULT_WINDOW block at once (a server's
	 * untouched stacks and arenas, a few pages apart: redis-server took
	 * 36 faults on them before its first answer, each a round trip),
	 * unless a page of it is there already or it crosses the end of the
	 * mapping (EEXIST, ENOENT): then the page alone, as before.
	 */
	if (i < 0) {
		uint32_t j = seg_above(v, addr);
		uint64_t lo = addr & ~(uint64_t)(FAULT_WINDOW - 1), hi = lo + FAULT_WINDOW;
		if (j > 0 && v->seg[j - 1].addr + v->seg[j - 1].len > lo)
			lo = v->seg[j - 1].addr + v->seg[j - 1].len;
		if (j < v->n && v->seg[j].addr < hi)
			hi = v->seg[j].addr;
		struct uffdio_zeropage zw = { .range = { .start = lo, .len = hi - lo } };
		if (hi - lo > P && lo <= addr && addr < hi && SYS(SYS_ioctl, v->uffd, UFFDIO_ZEROPAGE, &zw, 0, 0, 0) == 0) {
			L->zero += (hi - lo) / P;
			return true;
		}
	}
	struct uffdio_zeropage z = { .range = { .start = addr, .len = P } };
	rc = SYS(SYS_ioctl, v->uffd, UFFDIO_ZEROPAGE, &z, 0, 0, 0);
	if (rc == 0) {
		L->zero++;
		return true;
	}
	if (rc == -EAGAIN)
		return false;
	wake(v, addr);
	return true;
}

/* One prefetch step of up to BATCH bytes. Returns the bytes loaded, or -1
 * when it has to wait for an event first. */
static long prefetch(struct lazy *L, struct view *v)
{
	uint64_t budget = BATCH, loaded = 0;
	uint32_t laps = 0;
	bool stuck = false;

	while (budget && v->left && v->n) {
		if (v->cur >= v->n) {
			v->cur = 0;
			v->cur_off = 0;
			if (++laps > 2)
				break;
		}
		struct crac_img_lazy_seg *s = &v->seg[v->cur];
		if (v->cur_off >= s->len) {
			v->cur++;
			v->cur_off = 0;
			continue;
		}
		uint64_t off = s->off + v->cur_off;
		if (is_done(v, off)) {
			v->cur_off += P;
			continue;
		}
		uint64_t dst = s->addr + v->cur_off;
		if (!(dst & (HUGE - 1)) && move_ready(L)) {
			/* a whole block moved in, where it can be; else (the
			 * rest of) it is copied as below (-EAGAIN: the copy says
			 * whether an event is due) */
			long mv = move_block(L, v, dst);
			if (mv == -ESRCH) {
				v->left = 0;
				return (long)loaded;
			}
			if (mv == 1) {
				v->cur = seg_above(v, dst + HUGE - 1);
				v->cur_off = 0;
				v->stuck_ns = 0;
				budget -= budget < HUGE ? budget : HUGE;
				loaded += HUGE;
				if (fault_waiting(v))
					break;
				continue;
			}
			if (is_done(v, off)) {   /* (moved before it stopped) */
				v->cur_off += P;
				continue;
			}
		}
		ahead_next(L, v, v->cur);
		uint64_t len = P;
		while (len < budget && len < PIECE && v->cur_off + len < s->len && !is_done(v, off + len))
			len += P;
		long rc = copy_in(L, v, s, dst, off, len);
		if (rc == -EAGAIN)
			return -1;
		if (rc == -ESRCH) {
			v->left = 0;
			return (long)loaded;
		}
		if (rc == -ENOENT) {
			/* The mapping moved or went away, and the event saying so
			 * is not read yet (mremap queues it after unlocking): go
			 * on elsewhere and come back. Never mark such pages done.
			 * Only if nothing explains it for STUCK_NS (no such case is
			 * known) is the segment given up, so loading can end. */
			uint64_t now = now_ns();
			if (!v->stuck_ns)
				v->stuck_ns = now;
			else if (now - v->stuck_ns > STUCK_NS) {
				uint64_t was = v->left;
				mark_done(v, s->off, s->len);
				L->dropped += (was - v->left) * P;
				v->stuck_ns = 0;
			}
			v->cur++;
			v->cur_off = 0;
			stuck = true;
			continue;
		}
		v->stuck_ns = 0;
		v->cur_off += len;
		budget -= len;
		loaded += len;
		if (fault_waiting(v))
			break;   /* the fault first */
	}
	return loaded ? (long)loaded : (stuck ? -1 : 0);
}

/* ---- events ------------------------------------------------------------------- */

static void pend(struct view *v, uint64_t addr)
{
	for (uint32_t k = 0; k < v->n_pend; k++)
		if (v->pend[k] == addr)
			return;               /* the same thread again (a signal woke it) */
	if (v->n_pend == MAX_PEND) {
		wake(v, addr);            /* it faults again, and is read again */
		return;
	}
	v->pend[v->n_pend++] = addr;
}

/*
 * Tracking (CRAC_LAZY_TRACK): pages mremap moved keep their write
 * protection, so the kernel reports them not written, and the next
 * incremental image would take them from the image below by their new
 * address: their protection must be cleared. But UFFDIO_WRITEPROTECT
 * fails with EAGAIN while a change to the memory map is unreported or not
 * complete, and the mremap itself is not complete until its thread runs
 * again after we read its event: an attempt right after reading it failed
 * every time (4 of 4 moves of tests/progs/incr_remap). The moved ranges
 * are therefore kept here and tried again after each read of the events
 * (unprot_retry), adjusted by the moves and unmaps read meanwhile; every
 * page is not said loaded while one is left (crac__img_lazy_finish waits).
 */

/* Takes [lo, hi) out of the ranges still to unprotect. */
static void unprot_cut(struct view *v, uint64_t lo, uint64_t hi)
{
	uint64_t keep[MAX_UNPROT][2];
	uint32_t n = 0;

	for (uint32_t k = 0; k < v->n_unprot; k++) {
		uint64_t s = v->unprot[k][0], e = v->unprot[k][1];
		if (e <= lo || s >= hi) {
			keep[n][0] = s, keep[n++][1] = e;
			continue;
		}
		if (s < lo && n < MAX_UNPROT)
			keep[n][0] = s, keep[n++][1] = lo;
		if (e > hi && n < MAX_UNPROT)
			keep[n][0] = hi, keep[n++][1] = e;
	}
	copy_words(v->unprot, keep, n * sizeof(keep[0]));
	v->n_unprot = n;
}

/* Clears the protection of the ranges left; those refused for now (EAGAIN)
 * stay. Another error: the range is no longer registered with us (nothing
 * there is protected by us any more). */
static void unprot_retry(struct view *v)
{
	uint32_t n = 0;

	for (uint32_t k = 0; k < v->n_unprot; k++) {
		struct uffdio_writeprotect w = {
			.range = { .start = v->unprot[k][0], .len = v->unprot[k][1] - v->unprot[k][0] },
			.mode = 0,
		};
		if (SYS(SYS_ioctl, v->uffd, UFFDIO_WRITEPROTECT, &w, 0, 0, 0) == -EAGAIN) {
			v->unprot[n][0] = v->unprot[k][0];
			v->unprot[n++][1] = v->unprot[k][1];
		}
	}
	v->n_unprot = n;
}

static void handle(struct lazy *L, struct view *v, const struct uffd_msg *m)
{
	if (m->event == UFFD_EVENT_PAGEFAULT) {
		/* Served after the events read with it: reading an event lets
		 * the thread that caused it go on (its madvise zaps, its mremap
		 * completes), so a copy must already know about it. */
		L->faults++;
		pend(v, m->arg.pagefault.address & ~(P - 1));
		return;
	}
	L->events++;
	v->stuck_ns = 0;
	v->wait_ns = 0;
	switch (m->event) {
	case UFFD_EVENT_REMOVE:
		range_dropped(L, v, m->arg.remove.start, m->arg.remove.end, false);
		break;
	case UFFD_EVENT_UNMAP:
		range_dropped(L, v, m->arg.remove.start, m->arg.remove.end, true);
		unprot_cut(v, m->arg.remove.start, m->arg.remove.end);
		break;
	case UFFD_EVENT_REMAP:
		range_moved(L, v, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
		if (L->track) {
			/* moved pages keep their protection (the mapping kept
			 * our registration): they no longer hold what the image
			 * holds at their address, so they count as written
			 * (cleared by unprot_retry, see above) */
			unprot_cut(v, m->arg.remap.from, m->arg.remap.from + m->arg.remap.len);
			unprot_cut(v, m->arg.remap.to, m->arg.remap.to + m->arg.remap.len);
			if (v->n_unprot == MAX_UNPROT)
				fatal(L, "lazy loading: too many moved ranges wait to have their write protection "
					 "cleared", 0);
			v->unprot[v->n_unprot][0] = m->arg.remap.to;
			v->unprot[v->n_unprot++][1] = m->arg.remap.to + m->arg.remap.len;
		}
		break;
	case UFFD_EVENT_FORK:
		L->events--;
		L->forks++;
		if (!view_new(L, (int)m->arg.fork.ufd, v))
			fatal(L, "out of memory for a forked child's lazy loading", 0);
		break;
	}
}

/* Reads every queued message of v, applies the events, then serves the
 * faults (those that must wait for an event stay pending). */
static void drain(struct lazy *L, struct view *v)
{
	struct uffd_msg msg[16];
	long n;

	while ((n = sys_read(v->uffd, msg, sizeof(msg))) > 0)
		for (long i = 0; i < n / (long)sizeof(msg[0]); i++)
			handle(L, v, &msg[i]);
	if (n < 0 && n != -EAGAIN && n != -EINTR)
		fatal(L, "lazy loading: reading the userfaultfd failed", n);
	if (v->n_unprot)
		unprot_retry(v);
	uint32_t k = 0, np = v->n_pend;
	v->n_pend = 0;
	for (; k < np; k++)
		if (!serve(L, v, v->pend[k]))
			v->pend[v->n_pend++] = v->pend[k];
	/*
	 * Faults wait (EAGAIN) while a change to the memory map is under way
	 * and not reported yet. One case never ends: mremap that moves and
	 * grows a locked mapping populates the new part, faulting to us,
	 * before it reports the move. A hang would hide it: say so and stop.
	 */
	if (!v->n_pend) {
		v->wait_ns = 0;
	} else {
		uint64_t now = now_ns();
		if (!v->wait_ns)
			v->wait_ns = now;
		else if (now - v->wait_ns > STUCK_NS)
			fatal(L, "lazy loading is stuck: for 5 s a thread has waited for a page the kernel does not let "
				 "us fill while a memory-map change stays unreported (mremap growing a locked "
				 "mapping during loading does this); restore with --populate", 0);
	}
}

/* ---- the thread --------------------------------------------------------------- */

/*
 * The chunk buffer in huge pages where the kernel gives them (THP "always",
 * or "madvise" and MADV_HUGEPAGE): the first pread into a fresh slot of the
 * area (4 KiB pages) takes a page fault per page, 256 per MiB slot, 1024 for
 * the four: on a VM with shadow paging, where the first touch of a page is
 * the dear step, that was most of the page faults of a restored python3
 * before its first answer, taken while the program waited for its first
 * lazy pages. A 2 MiB page is one fault (and 2 MiB zeroed: about what 15
 * faults cost there), so only for slots of HUGE_SLOTS_MIN in all (python3's
 * are 4 x 1 MiB); smaller ones, and no memory for the mapping, keep the
 * area's own slots.
 */
#define HUGE_SLOTS_MIN (512u << 10)
static void huge_slots(struct lazy *L, uint64_t buf_size)
{
	uint64_t need = ((uint64_t)L->n_slots * buf_size + HUGE - 1) & ~(HUGE - 1);
	uint64_t size = need + HUGE;   /* room to align it */

	if ((uint64_t)L->n_slots * buf_size < HUGE_SLOTS_MIN)
		return;
	char *m = map_mem(size);
	if (!m)
		return;
	char *b = (char *)(((uintptr_t)m + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
	/* unmapped where it was only the room: the mapping is `need` bytes */
	if (b > m)
		sys_munmap(m, (uint64_t)(b - m));
	if (b + need < m + size)
		sys_munmap(b + need, (uint64_t)(m + size - (b + need)));
	sys_madvise(b, need, MADV_HUGEPAGE);   /* THP "never": 4 KiB pages, as before */
	L->buf_map = b;
	L->buf_map_size = need;
	/* (faults served before this, the working set's, used the area's
	 * slots: what they hold is not in the new ones) */
	for (uint32_t i = 0; i < L->n_slots; i++) {
		L->slot[i].bytes = b + i * buf_size;
		L->slot[i].valid = false;
	}
}

/*
 * The chunk buffer faulted in before the program's first fault would pay
 * for it (the thread waits for that fault anyway): when the kernel gave a
 * huge page for its first byte (its second page is then present too:
 * /proc/self/pagemap), the rest of it the same way; with 4 KiB pages (512
 * first touches per 2 MiB) only what the chunks read need, as they come.
 */
#define MADV_POPULATE_WRITE_ 23   /* Linux 5.14 */

/* Did the first write to b (HUGE-aligned) bring a huge page? Then its
 * second page is present too (/proc/self/pagemap). */
static bool huge_backed(char *b)
{
	uint64_t entry = 0;

	*(volatile char *)b = 0;
	long fd = sys_openat(AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	long n = sys_pread((int)fd, &entry, sizeof(entry), ((uint64_t)(uintptr_t)b / P + 1) * sizeof(entry));
	sys_close((int)fd);
	return n == (long)sizeof(entry) && (entry >> 63 & 1);
}

static void warm_slots(struct lazy *L)
{
	if (L->buf_map && huge_backed(L->buf_map))
		sys_madvise(L->buf_map, L->buf_map_size, MADV_POPULATE_WRITE_);
}

/*
 * The block buffers for move_block: HUGE bytes each, HUGE-aligned, each
 * in a huge page, mapped when a block is first to be moved (not before
 * the program's first faults are served: a fresh huge page can cost ms).
 * Only where the loader got UFFD_FEATURE_MOVE (CRAC_LAZY_MOVE: not for a
 * tracked image: mv_want) and the kernel gives huge pages here (THP
 * "always", or "madvise" and MADV_HUGEPAGE): moved 4 KiB at a time, a
 * block would cost a first touch per page in the buffer, as a copy does.
 * False: no moves.
 */
static bool move_ready(struct lazy *L)
{
	struct ahead *h = &L->ahead;
	bool huge;
	uint64_t t;

	if (L->mv[0] || (!L->mv_want && !L->mv_probe))
		return L->mv[0] != 0;
	if (L->mv_want) {
		L->mv_want = false;   /* (once) */
		char *m = map_mem(CRAC_LAZY_MOVE_ROOM);   /* (3 * HUGE) */
		if (!m)
			return false;
		char *b = (char *)(((uintptr_t)m + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
		if (b > m)
			sys_munmap(m, (uint64_t)(b - m));
		sys_munmap(b + 2 * HUGE, (uint64_t)(m + CRAC_LAZY_MOVE_ROOM - (b + 2 * HUGE)));
		sys_madvise(b, 2 * HUGE, MADV_HUGEPAGE);
		L->mv_probe = b;
	}
	if (!h->off && !h->probe && ahead_start(L)) {
		/* the helper faults them in and times it (not now if it is
		 * reading a chunk ahead: next time) */
		if (h->slot && __atomic_load_n(&h->state, __ATOMIC_ACQUIRE) != AHEAD_DONE)
			return false;
		ahead_collect(L);   /* (a chunk read ahead: its slot an ordinary one again) */
		h->probe = L->mv_probe;
		__atomic_store_n(&h->state, AHEAD_WORK, __ATOMIC_RELEASE);
		futex_wake(&h->state);
		return false;
	}
	if (h->probe) {
		if (__atomic_load_n(&h->state, __ATOMIC_ACQUIRE) == AHEAD_WORK)
			return false;   /* still at it */
		ahead_collect(L);
		huge = h->probe_huge;
		t = h->probe_ns;
		h->probe = 0;
	} else {
		/* no helper (one CPU): here */
		uint64_t t0 = now_ns();
		huge = huge_backed(L->mv_probe) && huge_backed(L->mv_probe + HUGE);
		t = now_ns() - t0;
	}
	char *b = L->mv_probe;
	L->mv_probe = 0;
	if (L->a->flags & (CRAC_LAZY_TEST_MOVE_FORCE | CRAC_LAZY_TEST_MOVE_SLOW))
		t = 0;   /* (tests: the slow reads come later) */
	if (!huge || t > MOVE_PROBE_NS) {
		/* no huge pages, or slow ones (see move_block): copies */
		if (huge)
			L->mv_slow_ns = t;
		else
			L->mv_no_huge = true;
		sys_munmap(b, 2 * HUGE);
		return false;
	}
	L->mv[0] = b;
	L->mv[1] = b + HUGE;   /* for the read-ahead helper's block (move_ahead) */
	L->mv_map = b;
	return true;
}

/* Sets `me` (CRAC_LOADER_OUT_*) in resume.lazy_started; the second of the
 * two to get there unmaps the loader. System calls only. */
static void loader_out(struct crac_img_resume *res, uint32_t me)
{
	uint32_t other = me ^ (CRAC_LOADER_OUT_LAZY | CRAC_LOADER_OUT_MAIN);
	uint32_t was = __atomic_fetch_or(&res->lazy_started, me, __ATOMIC_ACQ_REL);

	if ((was & other) && res->loader_hi > res->loader_lo)
		SYS(SYS_munmap, res->loader_lo, res->loader_hi - res->loader_lo, 0, 0, 0, 0);
}

static __attribute__((noreturn)) void leave(void *area, uint64_t size)
{
	/* unmaps our own stack: no memory access between the two calls */
	__asm__ volatile("syscall\n\t"
			 "movl $60, %%eax\n\t"     /* SYS_exit */
			 "xorl %%edi, %%edi\n\t"
			 "syscall\n\t"
			 "hlt"
			 :
			 : "a"((long)SYS_munmap), "D"(area), "S"(size)
			 : "rcx", "r11", "memory");
	__builtin_unreachable();
}

static void report(struct lazy *L)
{
	char line[512];
	struct crac_img_buf b = { line, 0, sizeof(line) };

	crac_img_puts(&b, "crac: lazy restore: ");
	crac_img_putu(&b, (L->copied + L->moved) >> 20);
	crac_img_puts(&b, " MiB loaded in ");
	put_ms(&b, now_ns() - L->a->jump_ns);
	crac_img_puts(&b, " after the jump (");
	crac_img_putu(&b, L->faults);
	crac_img_puts(&b, " faults, ");
	crac_img_putu(&b, L->zero);
	crac_img_puts(&b, " zero pages, ");
	crac_img_putu(&b, L->events);
	crac_img_puts(&b, " remove/unmap/remap events, ");
	crac_img_putu(&b, L->forks);
	crac_img_puts(&b, " forks");
	if (L->dropped) {
		crac_img_puts(&b, ", ");
		crac_img_putu(&b, L->dropped >> 10);
		crac_img_puts(&b, " KiB no longer mapped");
	}
	crac_img_puts(&b, ")");
	if (L->moved) {
		crac_img_puts(&b, "; ");
		crac_img_putu(&b, L->moved >> 20);
		crac_img_puts(&b, " MiB of it moved in, in 2 MiB blocks");
	}
	if (L->mv_slow_ns && L->moved) {
		crac_img_puts(&b, "; moving blocks in given up after ");
		crac_img_putu(&b, MOVE_SLOW_MAX);
		crac_img_puts(&b, " slow reads in a row (the last ");
		put_ms(&b, L->mv_slow_ns);
		crac_img_puts(&b, ": fresh huge pages are slow here, as on a VM whose host took free memory back)");
	} else if (L->mv_slow_ns) {
		crac_img_puts(&b, "; no blocks moved in: a fresh huge page took ");
		put_ms(&b, L->mv_slow_ns);
		crac_img_puts(&b, " (slow here, as on a VM whose host took free memory back)");
	} else if (L->mv_no_huge) {
		crac_img_puts(&b, "; no blocks moved in: no huge page for the block buffer (transparent huge pages "
				  "off, or none free)");
	}
	if (L->ahead.hits) {
		crac_img_puts(&b, "; ");
		crac_img_putu(&b, L->ahead.hits);
		crac_img_puts(&b, " chunks read ahead");
	}
	crac_img_puts(&b, "\n");
	say(L, line);
	/* the working set, on a line of its own */
	struct crac_img_buf w = { line, 0, sizeof(line) };
	if (L->a->ws_note[0]) {
		crac_img_puts(&w, "crac: working set: ");
		crac_img_puts(&w, L->a->ws_note);
	}
	if (L->a->flags & CRAC_LAZY_WS_LOAD) {
		crac_img_puts(&w, ": ");
		crac_img_putu(&w, L->ws.loaded);
		crac_img_puts(&w, " of ");
		crac_img_putu(&w, L->a->ws_n);
		crac_img_puts(&w, " pages in ");
		put_ms(&w, L->ws.load_ns);
		crac_img_puts(&w, " (");
		crac_img_putu(&w, L->ws.next);
		crac_img_puts(&w, " gone through)");
		if (L->ws.skipped) {
			crac_img_puts(&w, ", ");
			crac_img_putu(&w, L->ws.skipped);
			crac_img_puts(&w, " left to the normal path");
		}
	}
	if (L->a->flags & CRAC_LAZY_WS_RECORD) {
		if (L->ws.written) {
			crac_img_puts(&w, ": ");
			crac_img_putu(&w, L->ws.n);
			crac_img_puts(&w, " pages written");
		} else if (L->ws.empty) {
			crac_img_puts(&w, ": no page touched in its first ");
			crac_img_putu(&w, L->a->ws_record_ms);
			crac_img_puts(&w, L->ws.left == WS_LEFT_OTHERS
					      ? " ms: none written; " CRAC_IMG_WS_FILE " is another restore's now"
				      : L->ws.left == WS_LEFT_KEPT
					      ? " ms: none written; its claim (an empty file, marked partial) could not be "
						"removed: remove it to have it recorded again"
					      : " ms: none written, its claim removed: a later restore records it");
		} else if (L->ws.abandoned) {
			crac_img_puts(&w, ": not written: the file system did not answer within ");
			crac_img_putu(&w, WS_WAIT_NS / 1000000000ull);
			crac_img_puts(&w, " s (the store goes on without this restore, in thread ");
			crac_img_putu(&w, L->ws.writer_tid);
			crac_img_puts(&w, ", crac-ws-writer, which stays until the file system answers: a partial file "
					  "it leaves is removed)");
		} else if (L->ws.err) {
			crac_img_puts(&w, ": not written");
			crac_img_put_err(&w, L->ws.err);
			if (L->ws.left == WS_LEFT_REMOVED) {
				crac_img_puts(&w, "; the file it had claimed removed: a later restore records it");
			} else if (L->ws.left == WS_LEFT_KEPT) {
				crac_img_puts(&w, "; " CRAC_IMG_WS_FILE " keeps the ");
				crac_img_putu(&w, L->ws.file.kept);
				crac_img_puts(&w, " pages stored before, marked partial (could not be removed; remove it "
						  "to have it recorded again)");
			} else if (L->ws.left == WS_LEFT_OTHERS) {
				crac_img_puts(&w, "; " CRAC_IMG_WS_FILE " is another restore's now");
			}
		} else if (!L->ws.rec) {
			crac_img_puts(&w, ": another restore wrote it first");
		}
	}
	if (w.len) {
		crac_img_puts(&w, "\n");
		say(L, line);
	}
}

__attribute__((noreturn, used)) void crac__img_lazy_main(struct crac_img_lazy *a)
{
	struct lazy lz, *L = &lz;
	struct view *v;

	/* no "= {0}": the compiler could call libc's memset for it */
	for (size_t i = 0; i < sizeof(lz) / sizeof(uint64_t); i++)
		((volatile uint64_t *)&lz)[i] = 0;
	L->a = a;
	L->res = (struct crac_img_resume *)(uintptr_t)a->resume;
	/* We came through the loader's code: out of it now (the last of us and
	 * the program's thread to leave it unmaps it). */
	if (a->flags & CRAC_LAZY_TEST_LATE) {
		struct timespec late = { 0, 100 * 1000 * 1000 };
		SYS(SYS_nanosleep, &late, 0, 0, 0, 0, 0);
	}
	loader_out(L->res, CRAC_LOADER_OUT_LAZY);
	L->chunk = (const struct crac_img_chunk *)((char *)a + a->chunks_off);
	L->n_slots = a->buf_slots < CRAC_LAZY_SLOTS ? a->buf_slots : CRAC_LAZY_SLOTS;
	if (!L->n_slots)
		L->n_slots = 1;
	for (uint32_t i = 0; i < L->n_slots; i++)
		L->slot[i].bytes = (char *)a + a->buf_off + i * a->buf_size;
	L->n_pages = a->pages_size / P;
	L->prefetch = !(a->flags & CRAC_LAZY_NO_PREFETCH);
	L->track = (a->flags & CRAC_LAZY_TRACK) != 0;
	if (a->n_files >= 1 && a->n_files <= 1 + CRAC_IMG_MAX_CHAIN) {
		L->file = a->files;
		L->n_files = a->n_files;
	} else {
		L->one.fd = a->pages_fd;
		L->one.size = a->pages_size;
		copy_words(L->one.path, a->dir, sizeof(a->dir));
		L->file = &L->one;
		L->n_files = 1;
	}
	crac_img_crc32c_prepare(&L->crc);
	if (a->real_off) {
		L->real_off = (const uint64_t *)((char *)a + a->real_off);
		L->dctx = crac_img_zstd_dctx((char *)a + a->dctx_off, a->dctx_size);
	}
	sys_prctl(PR_SET_NAME, "crac-lazy", 0, 0, 0);   /* not "crac-loader" */
	/* Our file table is a copy of the loader's: keep the userfaultfd,
	 * stderr and the pages files, close the rest (the program's pipes must
	 * not stay open because of us, nor the image's other files). */
	unsigned keep[4 + 1 + CRAC_IMG_MAX_CHAIN], n_keep = 0, lo = 0;
	keep[n_keep++] = (unsigned)a->uffd;
	keep[n_keep++] = (unsigned)a->err_fd;
	keep[n_keep++] = (unsigned)a->pages_fd;
	if (a->flags & CRAC_LAZY_WS_RECORD)
		keep[n_keep++] = (unsigned)a->ws_dir_fd;
	for (uint32_t f = 0; f < L->n_files; f++)
		keep[n_keep++] = (unsigned)L->file[f].fd;
	for (unsigned i = 1; i < n_keep; i++)
		for (unsigned k = i; k > 0 && keep[k - 1] > keep[k]; k--) {
			unsigned t = keep[k];
			keep[k] = keep[k - 1];
			keep[k - 1] = t;
		}
	for (unsigned k = 0; k < n_keep; k++) {
		if (keep[k] > lo)
			SYS(SYS_close_range, lo, keep[k] - 1, 0, 0, 0, 0);
		if (keep[k] + 1 > lo)
			lo = keep[k] + 1;
	}
	SYS(SYS_close_range, lo, ~0u, 0, 0, 0, 0);
	L->verified = map_mem(((a->n_chunks + 63) / 64 * 8 + P - 1) & ~(P - 1));
	if (!L->verified || !(v = view_new(L, a->uffd, 0)))
		fatal(L, "out of memory for the lazy loader", 0);
	v->cap = a->n_segs ? a->n_segs : 1;
	if (!(v->seg = map_mem(v->cap * sizeof(*v->seg))))
		fatal(L, "out of memory for the lazy loader", 0);
	copy_words(v->seg, (char *)a + a->segs_off, a->n_segs * sizeof(*v->seg));
	v->n = a->n_segs;
	for (uint32_t i = 0; i < v->n; i++)
		v->left += v->seg[i].len / P;
	/* The working set first (the program is about to touch it), then
	 * what only the rest needs. */
	if (a->flags & CRAC_LAZY_WS_LOAD) {
		L->ws.upto = a->ws_n < WS_EARLY ? a->ws_n : WS_EARLY;
		ws_load(L, v);
		if (L->ws.next < a->ws_n)
			ws_index(L);
	}
	if ((a->flags & CRAC_LAZY_WS_RECORD) && a->ws_dir_fd >= 0) {
		L->ws.pg = map_mem(((uint64_t)CRAC_IMG_WS_MAX * sizeof(*L->ws.pg) + P - 1) & ~(P - 1));
		L->ws.rec = true;
		L->ws.end_ns = a->jump_ns + (uint64_t)a->ws_record_ms * 1000000ull;
		long rc = L->ws.pg ? ws_store(L, false) : -ENOMEM;   /* the claim */
		if (rc < 0)
			ws_end(L, rc);
	}
	huge_slots(L, a->buf_size);
	warm_slots(L);
	L->mv_want = (a->flags & CRAC_LAZY_MOVE) && !L->track;
	for (uint32_t f = 0; f < L->n_files; f++)
		SYS(SYS_fadvise64, L->file[f].fd, 0, L->file[f].size, POSIX_FADV_WILLNEED, 0, 0);

	bool stall = (a->flags & CRAC_LAZY_TEST_STALL) != 0;
	while (L->views) {
		bool busy = false, waiting = false;
		/* Prefetch waits until the restore path is through: it would
		 * compete for the address-space lock with its mmap/munmap calls. */
		bool hurry = __atomic_load_n(&L->res->lazy_hurry, __ATOMIC_ACQUIRE);
		if (hurry && stall) {
			/* tests: a pages file that reads slowly, once */
			struct timespec d = { 2, 0 };
			stall = false;
			SYS(SYS_nanosleep, &d, 0, 0, 0, 0, 0);
		}
		/* Recording the working set: until its time is up (or the
		 * program needs everything now: a checkpoint, a fork), faults
		 * alone load pages. */
		uint64_t rec_left = 0;
		long ws_rc;
		ws_poll(L);   /* the writer's answer; the last store once it is free */
		if (L->ws.rec) {
			uint64_t t = now_ns();
			if (t >= L->ws.end_ns || L->ws.n >= CRAC_IMG_WS_MAX || hurry)
				ws_end(L, 0);
			else if (L->ws.n > L->ws.stored_n && t - L->ws.last_ns >= WS_QUIET_NS && (ws_rc = ws_store(L, false)) < 0)
				ws_end(L, ws_rc);
			else
				rec_left = L->ws.end_ns - t;
		}
		bool go = !L->ws.rec && ((L->prefetch && __atomic_load_n(&L->res->lazy_go, __ATOMIC_ACQUIRE)) || hurry);
		bool children = false;   /* raw-fork children first: they depend on us */
		for (v = L->views; v; v = v->next) {
			drain(L, v);
			children |= v->child && v->left;
		}
		for (v = L->views; v; v = v->next) {
			if (v->left && v->n_tail) {
				long n = tails(L, v);
				busy |= n > 0;
				waiting |= n < 0;
				if (v->n_tail)
					continue;   /* a fault waits: drain first */
			}
			if (!v->child && L->ws.next < L->ws.upto) {
				/* more of the working set: the program got past
				 * what was loaded of it (ws_fault) */
				ws_load(L, v);
				busy = true;
			}
			if (v->left && (v->child || (go && !children))) {
				long n = prefetch(L, v);
				busy |= n > 0;
				waiting |= n < 0;
			}
			waiting |= v->n_pend > 0 || v->n_unprot > 0;
		}
		/* Tracking: our own view stays once loaded (see the top), until
		 * a checkpoint takes the tracking over. */
		bool leave = L->track && __atomic_load_n(&L->res->lazy_state, __ATOMIC_ACQUIRE) == CRAC_LAZY_STATE_LEAVE;
		for (v = L->views; v;) {
			struct view *next = v->next;
			if (L->track && !v->child && !v->left && !v->n_pend && !v->n_unprot && !L->loaded) {
				/* the helper gone first: once loaded is said, a
				 * checkpoint may stop the threads (it knows ours) */
				ahead_stop(L);
				ws_wait(L);   /* (the writer too: bounded) */
				L->loaded = true;
				/* the doorbell crac__img_lazy_leave rings (never
				 * touched: a fault there would be ours to serve) */
				L->res->lazy_entry = 0;   /* (the capture sets it again) */
				if ((L->door = map_mem(P))) {
					struct uffdio_register rg = {
						.range = { .start = (uint64_t)(uintptr_t)L->door, .len = P },
						.mode = UFFDIO_REGISTER_MODE_MISSING,
					};
					L->door_on = SYS(SYS_ioctl, v->uffd, UFFDIO_REGISTER, &rg, 0, 0, 0) == 0;
					if (L->door_on)
						L->res->lazy_entry = (uint64_t)(uintptr_t)L->door;
				}
				/* the report before loaded is said: a program that
				 * waited for it (crac__img_lazy_finish) and exits
				 * right after must not end us before it is out */
				if (a->flags & CRAC_LOADER_STATS)
					report(L);
				__atomic_store_n(&L->res->lazy_state, CRAC_LAZY_STATE_LOADED, __ATOMIC_RELEASE);
				/* crac__img_lazy_finish waits on lazy_tid */
				SYS(SYS_futex, &L->res->lazy_tid, FUTEX_WAKE, 0x7fffffff, 0, 0, 0);
				/* no page is read again: the chunk buffer goes */
				if (L->buf_map)
					sys_munmap(L->buf_map, L->buf_map_size);
				L->buf_map = 0;
			} else if (L->track && L->loaded && !v->child && !leave) {
				/* Loaded, then mremap moved pages whose protection is
				 * still to clear (unprot_retry): not loaded until it is,
				 * so that neither a checkpoint (crac__img_lazy_settle)
				 * nor a fork takes the tracking over meanwhile. (A
				 * compare-and-swap: LEAVE, once asked, stays.) */
				uint32_t was = v->n_unprot ? CRAC_LAZY_STATE_LOADED : CRAC_LAZY_STATE_LOADING;
				uint32_t now = v->n_unprot ? CRAC_LAZY_STATE_LOADING : CRAC_LAZY_STATE_LOADED;
				if (__atomic_compare_exchange_n(&L->res->lazy_state, &was, now, false, __ATOMIC_ACQ_REL,
								__ATOMIC_ACQUIRE) &&
				    now == CRAC_LAZY_STATE_LOADED)
					SYS(SYS_futex, &L->res->lazy_tid, FUTEX_WAKE, 0x7fffffff, 0, 0, 0);
			}
			if (!v->left && !v->n_pend && (leave || !L->track || v->child))
				view_free(L, v);
			v = next;
		}
		if (busy || !L->views)
			continue;
		/* Nothing to load now: wait for a fault or an event. */
		struct pollfd pfd[MAX_POLL];
		int n = 0;
		for (v = L->views; v && n < MAX_POLL; v = v->next)
			pfd[n++] = (struct pollfd){ .fd = v->uffd, .events = POLLIN };
		bool more = v != 0;   /* views beyond MAX_POLL: look again soon */
		/* once loaded: only faults, events and the doorbell wake us (the
		 * process still ends with its last thread: glibc counts its own
		 * threads, not us, and calls exit when it is gone) */
		int timeout = waiting || more ? 1 : (L->loaded ? (L->door_on ? -1 : 20) : (go ? 0 : 10));
		if (L->ws.rec && (timeout < 0 || (uint64_t)timeout > rec_left / 1000000 + 1))
			timeout = (int)(rec_left / 1000000) + 1;
		if ((L->ws.rec && L->ws.n > L->ws.stored_n) || L->ws.job || L->ws.final_due)
			timeout = 1;   /* the next quiet moment stores it; the writer's answer */
		SYS(SYS_poll, pfd, n, timeout, 0, 0, 0);
	}

	ahead_stop(L);
	ws_wait(L);
	if ((a->flags & CRAC_LOADER_STATS) && !L->loaded)
		report(L);
	if (L->buf_map)
		sys_munmap(L->buf_map, L->buf_map_size);
	if (L->mv_map)
		sys_munmap(L->mv_map, 2 * HUGE);
	if (L->mv_probe)
		sys_munmap(L->mv_probe, 2 * HUGE);   /* (the helper is gone: ahead_stop) */
	if (L->door)
		sys_munmap(L->door, P);   /* (our userfaultfd is closed: no UNMAP event) */
	if (L->ws.index)
		sys_munmap(L->ws.index, ((uint64_t)(L->ws.index_mask + 1) * 4 + P - 1) & ~(P - 1));
	sys_munmap(L->verified, ((a->n_chunks + 63) / 64 * 8 + P - 1) & ~(P - 1));
	for (uint32_t f = 0; f < L->n_files; f++)
		if (L->file[f].fd != a->pages_fd)
			sys_close(L->file[f].fd);
	sys_close(a->pages_fd);
	sys_close(a->err_fd);
	leave(a, a->area_size);
}

/* ---- the program's side ---------------------------------------------------------- */

/* The restore path is through: background loading may start. */
void crac__img_lazy_go(void)
{
	__atomic_store_n(&crac__img_self.resume.lazy_go, 1, __ATOMIC_RELEASE);
}

/* The restored program's thread is out of the loader's code (and took what
 * it needed from the loader's memory): the loader is unmapped now, or by the
 * lazy thread once that is out of it too. Neither waits for the other: a
 * wait here put the restore path behind the lazy thread's start whenever
 * the scheduler ran both on one CPU (up to a scheduler slice, ~1 ms). */
void crac__img_loader_leave(void)
{
	struct crac_img_resume *res = &crac__img_self.resume;

	if (res->lazy_mode != CRAC_LAZY_ON) {
		if (res->loader_hi > res->loader_lo)
			munmap((void *)(uintptr_t)res->loader_lo, res->loader_hi - res->loader_lo);
		return;
	}
	loader_out(res, CRAC_LOADER_OUT_MAIN);
}

/* The lazy loader given up on (its thread id): it was asked to leave and
 * did not within the grace (crac__img_lazy_leave, crac__img_lazy_settle,
 * crac__img_lazy_finish_by), its way out in a call that does not return
 * (the close of the image's files on a file system that does not
 * answer). Nothing waits for it again: once its call returns it ends (the
 * kernel clears lazy_tid), and a new thread never has this id while it
 * lives. 0: none. */
static uint32_t lazy_given_up;

/* The warning of a wait for the leaving loader given up on, one write(2)
 * to stderr (the sink of crac_log_set_sink may take locks a stopped
 * thread holds): the loader (thread tid) did not leave in waited_ms
 * (limit_ms at most, during: what waited). It is marked given up on. */
static void leave_given_up(uint32_t tid, int64_t waited_ms, long limit_ms, const char *during)
{
	char line[600];
	struct crac_img_buf b = { line, 0, sizeof(line) };

	__atomic_store_n(&lazy_given_up, tid, __ATOMIC_RELEASE);
	crac_img_puts(&b, "crac: warning: the lazy loader (thread ");
	crac_img_putu(&b, tid);
	crac_img_puts(&b, ") did not leave after ");
	crac_img_putu(&b, (uint64_t)waited_ms);
	crac_img_puts(&b, " ms (");
	crac_img_putu(&b, (uint64_t)limit_ms);
	crac_img_puts(&b, " ms at most, ");
	crac_img_puts(&b, during);
	crac_img_puts(&b, "): its way out closes the image's files, whose file system may not answer; given up: "
		      "it ends when its call returns, and the mappings it still tracks are stored whole\n");
	sys_write(2, line, b.len);
}

/* ms since t0 (CLOCK_MONOTONIC). */
static int64_t ms_since(const struct timespec *t0)
{
	struct timespec t;

	sys_clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000ll + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/*
 * Waits until the lazy loader is done: before a checkpoint (the image must
 * hold every page, and the stop signal must not meet a thread that blocks
 * it) and before fork() (a forked child's memory would otherwise depend on
 * this process's loader). Tells the loader to hurry if prefetch was off.
 * Done is "exited", or, when it tracks writes (CRAC_LAZY_TRACK), "every
 * page in": it then serves on (its pages hold nothing to load, and the
 * thread stopping skips it: crac__img_lazy_serving) until the checkpoint
 * takes the tracking over with the threads stopped (image_track.c).
 *
 * A loader asked to leave (every page is in; its way out closes the
 * image's files) is waited for until the deadline and the grace of the
 * bounded waits (crac_bounded_grace_ms), whichever comes first: given up
 * on then, said on stderr, and -EBUSY with its thread id; one given up on
 * before is not waited for again (-EBUSY at once): it ends whenever its
 * call returns.
 */
int crac__img_lazy_finish_by(int64_t deadline_ns, int *tid_out)
{
	struct crac_img_resume *res = &crac__img_self.resume;
	uint32_t tid = __atomic_load_n(&res->lazy_tid, __ATOMIC_ACQUIRE);
	struct timespec t0;
	long grace_ms = -1;   /* a leaving loader's limit (-1: not leaving yet) */

	if (!tid || res->lazy_pid != (uint32_t)getpid())
		return 0;
	__atomic_store_n(&res->lazy_hurry, 1, __ATOMIC_RELEASE);
	/* The kernel clears lazy_tid when the thread exits and wakes one
	 * waiter (the thread wakes all once loaded): others (fork and
	 * checkpoint at once) look again every 10 ms. */
	while ((tid = __atomic_load_n(&res->lazy_tid, __ATOMIC_ACQUIRE)) != 0 &&
	       __atomic_load_n(&res->lazy_state, __ATOMIC_ACQUIRE) != CRAC_LAZY_STATE_LOADED) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		if (__atomic_load_n(&res->lazy_state, __ATOMIC_ACQUIRE) == CRAC_LAZY_STATE_LEAVE) {
			/* on its way out: bounded by the grace as well */
			if (__atomic_load_n(&lazy_given_up, __ATOMIC_ACQUIRE) == tid) {
				if (tid_out)
					*tid_out = (int)tid;
				return -EBUSY;
			}
			if (grace_ms < 0) {
				grace_ms = crac_bounded_grace_ms();
				sys_clock_gettime(CLOCK_MONOTONIC, &t0);
			}
			int64_t waited = ms_since(&t0);
			if (waited >= grace_ms) {
				leave_given_up(tid, waited, grace_ms, "waited for before a fork or a checkpoint");
				if (tid_out)
					*tid_out = (int)tid;
				return -EBUSY;
			}
			if ((grace_ms - waited) * 1000000 < ts.tv_nsec)
				ts.tv_nsec = (grace_ms - waited) * 1000000;
		}
		if (deadline_ns > 0) {
			struct timespec now;
			sys_clock_gettime(CLOCK_MONOTONIC, &now);
			int64_t left = deadline_ns - (now.tv_sec * 1000000000ll + now.tv_nsec);
			if (left <= 0) {
				/* still loading: its pages file is slow to read (a
				 * slow or hung file system), or it is stuck */
				if (tid_out)
					*tid_out = (int)tid;
				return -ETIMEDOUT;
			}
			if (left < ts.tv_nsec)
				ts.tv_nsec = left;
		}
		SYS(SYS_futex, &res->lazy_tid, FUTEX_WAIT, tid, &ts, 0, 0);
	}
	return 0;
}

void crac__img_lazy_finish(void)
{
	crac__img_lazy_finish_by(0, NULL);
}

/* A loader asked to leave (lazy_state LEAVE), waited for until it has
 * exited, crac_bounded_grace_ms() at most: given up on then (said,
 * during naming what waited: leave_given_up). System calls only. */
static void leave_wait(struct crac_img_resume *res, const char *during)
{
	long limit_ms = crac_bounded_grace_ms();
	struct timespec t0;
	uint32_t tid;

	sys_clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((tid = __atomic_load_n(&res->lazy_tid, __ATOMIC_ACQUIRE)) != 0) {
		int64_t waited_ms = ms_since(&t0);
		if (waited_ms >= limit_ms) {
			leave_given_up(tid, waited_ms, limit_ms, during);
			return;
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		if (limit_ms - waited_ms < 10)
			ts.tv_nsec = (limit_ms - waited_ms) * 1000000;
		SYS(SYS_futex, &res->lazy_tid, FUTEX_WAIT, tid, &ts, 0, 0);
	}
}

/* Threads stopped, before a tracking loader is asked for its written pages
 * (img_track_lazy_handover): one that had loaded everything and went back
 * to LOADING for pages mremap moved (their protection still to clear: it
 * can be only once the move is complete, which in a stopped process it
 * is) is waited for, 1 s at most. Not settled by then: asked to leave all
 * the same, its registrations and protections with it, and false (the
 * handover then tracks nothing of its mappings: they are stored whole,
 * never referenced); its leaving is waited for as crac__img_lazy_leave
 * waits (leave_wait: the grace at most, then given up on, said). System
 * calls only. */
bool crac__img_lazy_settle(void)
{
	struct crac_img_resume *res = &crac__img_self.resume;
	uint32_t tid = __atomic_load_n(&res->lazy_tid, __ATOMIC_ACQUIRE);
	struct timespec t0, t;

	if (!tid || res->lazy_pid != (uint32_t)getpid())
		return true;
	sys_clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((tid = __atomic_load_n(&res->lazy_tid, __ATOMIC_ACQUIRE)) != 0 &&
	       __atomic_load_n(&res->lazy_state, __ATOMIC_ACQUIRE) == CRAC_LAZY_STATE_LOADING) {
		sys_clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000000000ll + (t.tv_nsec - t0.tv_nsec) >= 1000000000ll) {
			uint32_t was = CRAC_LAZY_STATE_LOADING;
			if (!__atomic_compare_exchange_n(&res->lazy_state, &was, CRAC_LAZY_STATE_LEAVE, false,
							 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				continue;   /* (it said loaded meanwhile) */
			if (res->lazy_entry)
				SYS(SYS_madvise, res->lazy_entry, CRAC_IMG_PAGE, MADV_DONTNEED, 0, 0, 0);
			leave_wait(res, "the program's threads stopped");
			return false;
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		SYS(SYS_futex, &res->lazy_tid, FUTEX_WAIT, tid, &ts, 0, 0);
	}
	return true;
}

/* The thread id of a lazy loader that has loaded everything and serves on
 * while it tracks writes (see crac__img_lazy_finish), or 0. */
int crac__img_lazy_serving(void)
{
	struct crac_img_resume *res = &crac__img_self.resume;
	uint32_t tid = __atomic_load_n(&res->lazy_tid, __ATOMIC_ACQUIRE);

	if (!tid || res->lazy_pid != (uint32_t)getpid() ||
	    __atomic_load_n(&res->lazy_state, __ATOMIC_ACQUIRE) != CRAC_LAZY_STATE_LOADED)
		return 0;
	return (int)tid;
}

/*
 * Asks that serving lazy loader to close its userfaultfd (which drops its
 * registrations and their write protection) and exit; waits until it has,
 * crac_bounded_grace_ms() at most (the least any wait of the checkpoint's
 * lasts with the threads stopped, image/bounded.h: 30 s, or
 * CRAC_TEST_SYNC_GRACE_MS in tests). Its way out closes the image's pages
 * files: on a file system that does not answer (an NFS or FUSE server
 * gone: FUSE flushes on close) such a close may never return, and the
 * program's threads would stay stopped for ever. Given up on: said on
 * stderr, naming the thread (the sink of crac_log_set_sink may take
 * locks a stopped thread holds), and the checkpoint goes on; the loader
 * ends whenever its call returns. A registration of its still in place
 * makes ours of that mapping fail (image_track.c: not trackable, stored
 * whole): nothing is lost. System calls only: the program's threads may
 * be stopped (crac_bounded_grace_ms's getenv is bound beforehand:
 * crac_img_fs_prepare).
 */
void crac__img_lazy_leave(void)
{
	struct crac_img_resume *res = &crac__img_self.resume;

	if (!crac__img_lazy_serving())
		return;
	__atomic_store_n(&res->lazy_state, CRAC_LAZY_STATE_LEAVE, __ATOMIC_RELEASE);
	/* its doorbell: the REMOVE event ends its wait for faults at once
	 * (else it looks again within 20 ms) */
	if (res->lazy_entry)
		SYS(SYS_madvise, res->lazy_entry, CRAC_IMG_PAGE, MADV_DONTNEED, 0, 0, 0);
	leave_wait(res, "the program's threads stopped");
}

/* Before fork(): the loading done (crac__img_lazy_finish_by with no
 * deadline); a loader given up on (its way out does not return) is not
 * waited for: said once per loader, the fork goes on (every page is in,
 * and its userfaultfd was closed before the image's files). */
static void finish_before_fork(void)
{
	static uint32_t said;
	int tid = 0;

	if (crac__img_lazy_finish_by(0, &tid) == -EBUSY &&
	    __atomic_exchange_n(&said, (uint32_t)tid, __ATOMIC_ACQ_REL) != (uint32_t)tid) {
		char line[300];
		struct crac_img_buf b = { line, 0, sizeof(line) };
		crac_img_puts(&b, "crac: warning: fork: the lazy loader (thread ");
		crac_img_putu(&b, (uint64_t)tid);
		crac_img_puts(&b, ") was given up on, its way out does not return: not waited for\n");
		sys_write(2, line, b.len);
	}
}

static void register_atfork(void)
{
	pthread_atfork(finish_before_fork, NULL, NULL);
}

void crac__img_lazy_prepare(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, register_atfork);
}
