/* SPDX-License-Identifier: MIT */
/*
 * image.c - the image engine: checkpoint a process into an image
 * directory; `crac restore DIR` (the static loader, src/loader) brings it
 * back in a new process, where this very call returns CRAC_RESTORED.
 *
 * Checkpoint, top to bottom (image_checkpoint):
 *   1. (nothing: stdio is flushed in 3, see image_stdio.c)
 *   2. arena, stale temporaries of DIR removed,
 *      DIR.tmp-PID-START-XXXXXX, pages file           (threads still run)
 *   3. stop every other thread                        (image_threads.c),
 *      flush stdio without taking a lock a thread holds (image_stdio.c)
 *   4. process state and mappings                     (image_capture.c)
 *   5. save our own registers into the resume block: the restored process
 *      continues from here with crac__img_setctx returning 1
 *   6. page data, header, fsync                        (image_capture.c)
 *   7. let the threads go; read the image back and validate it; rename it
 *      into place (image/dir.c). Success means: an image is at DIR.
 * For a requester's progress records and `crac checkpoint --stats`, these
 * are the round's phases prepare (1-2), freeze (3), capture (4), pages (6,
 * the page data), fsync (6, descriptors + header) and verify (7); see
 * crac__round_phase and img_progress.
 *
 * The target DIR must be absent or a crac image of the caller
 * (crac_img_target_check, at configure time and again at the rename).
 *
 * Restore (img_restored, image_restore.c), after the loader mapped the image and jumped
 * into step 5 on our saved stack with our saved TLS:
 *   1. this thread: tid field, robust list, rseq, altstack, name
 *   2. signal dispositions, cwd, umask, rlimits
 *   3. recreate the other threads (they wait in their handler)
 *   4. let them go; copy the new arguments; unmap the loader
 *   5. this thread's signal mask; return CRAC_RESTORED
 *
 * Open file descriptors are not part of the image: the restored process
 * has the loader's fds 0, 1 and 2 (the stdio of `crac restore`). Other fds
 * are the business of the fd inventory (safety checks), not of this engine.
 */
#include "engines/image_engine.h"
#include "image/check.h"
#include "image/dir.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ARENA_SIZE (256u << 20)   /* virtual; only what is used is touched */

/* In libcrac's memory, hence in the image: see image_engine.h. */
struct img_self crac__img_self;

/* ---- the engine arena, kept between checkpoints ------------------------------ */

/*
 * A process that keeps running after a checkpoint (keep-running) keeps
 * its engine arena for the next checkpoint. On this kind of VM (a PVM guest
 * with shadow paging) the first touch of a fresh anonymous page is a page
 * fault costing 10-20 us, and an incremental checkpoint of bench/ckpt_incr.c
 * touched 400-800 fresh arena and table pages (getrusage ru_minflt: 436 at
 * one image below, 778 at four; the parent's header, its table, the new
 * header and its read-back each take their size again): 5-15 ms of a ~70 ms
 * checkpoint. Kept after every keep-running checkpoint, full or
 * incremental. Reused pages are zeroed first (img_arena_alloc hands out zeroed
 * memory; img_arena_reset). The mapping is left out of every image (it
 * is c->skip[0]) and of a child's memory (MADV_DONTFORK); a restored process
 * and a forked child forget it (pid check; image_checkpoint's restored branch).
 */
#define ARENA_KEEP_MAX (128u << 20)   /* more used than this: not kept */

static struct {
	struct img_arena a;
	uint64_t high;   /* bytes of it used last time: what may not be zero */
	int pid;
} kept_arena;

/* The arena for this checkpoint: the kept one if this process kept one. */
static int arena_get(struct img_arena *a, size_t size)
{
	struct img_arena k = kept_arena.a;
	uint64_t high = kept_arena.high;
	bool ours = kept_arena.pid == getpid();

	kept_arena.a.base = NULL;   /* one checkpoint at a time has it */
	if (k.base && ours && k.size == size) {
		img_arena_reset(&k, high);
		*a = k;
		return 0;
	}
	if (k.base && ours)
		img_arena_free(&k);
	return img_arena_init(a, size);
}

/* After the checkpoint: kept for the next one (keep), else unmapped. */
static void arena_put(struct img_arena *a, bool keep)
{
	if (!a->base)
		return;
	if (!keep || a->used > ARENA_KEEP_MAX || kept_arena.a.base ||
	    madvise(a->base, a->size, MADV_DONTFORK) < 0) {
		img_arena_free(a);
		return;
	}
	kept_arena.a = *a;
	kept_arena.high = a->used;
	kept_arena.pid = getpid();
	a->base = NULL;
}

/* ---- configure ------------------------------------------------------------- */

static int image_configure(struct crac_round *r)
{
	const char *dir = r->opts.image_dir;
	char parent[PATH_MAX];
	const char *base;

#if !defined(__x86_64__)
	crac__report_add(r->report, CRAC_PHASE_ENGINE, "image", -ENOTSUP,
			 "the image engine supports x86-64 only");
	return -ENOTSUP;
#endif
	if (!dir || !*dir) {
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "image", -EINVAL,
				 "the image engine needs an image directory (crac_options.image_dir or CRAC_IMAGE_DIR)");
		return -EINVAL;
	}
	if (crac_img_split_path(dir, parent, sizeof(parent), &base) < 0 || !*base) {
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "image", -ENAMETOOLONG,
				 "bad image directory name \"%s\"", dir);
		return -ENAMETOOLONG;
	}
	crac__img_lazy_prepare();
	/* The looks at the target's file system (which may not answer: NFS,
	 * FUSE) end at the checkpoint's deadline, without the grace the
	 * writes get (no deadline: that grace) */
	int64_t deadline = r->event.deadline_monotonic;
	crac_img_fs_limit(deadline, deadline ? 0 : -1, deadline ? "the checkpoint's deadline" : NULL);
	char msg[1024];
	int rc = crac_img_dir_access_msg(parent, msg, sizeof(msg));
	if (rc < 0) {
		if (rc == -ETIMEDOUT)   /* given up on: msg names the step, the path and the limit */
			crac__report_add(r->report, CRAC_PHASE_ENGINE, "image", rc, "image directory %s: %s", dir, msg);
		else
			crac__report_add(r->report, CRAC_PHASE_ENGINE, "image", rc, "cannot create the image in %s", msg);
		crac_img_fs_deadline(0);
		return rc;
	}
	/* A checkpoint never destroys what is at its target (DESIGN.md §8):
	 * refuse before anything is written. */
	rc = crac_img_target_check(dir, msg, sizeof(msg));
	crac_img_fs_deadline(0);
	if (rc < 0) {
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "image", rc, "%s", msg);
		return rc;
	}
	return 0;
}

/* ---- checkpoint ------------------------------------------------------------ */

/*
 * Reads the finished temporary image back from disk and validates it as
 * restore will (crac_img_load: header magic, version, crc, every table,
 * chunk order; pages file size), and checks that it says what was written.
 * Runs after the threads were released (it allocates).
 */
static int verify_written(struct img_capture *c, char *msg, size_t len)
{
	struct crac_img_opened o;
	struct crac_img_view v;
	char why[1024];
	void *buf = NULL;
	size_t mapped = 0;
	int rc = crac_img_open(c->tmp, &o, why, sizeof(why)), failed = -1;

	/* Into the buffer the header was built in (its bytes are in the file
	 * now): no second buffer of that size, whose fresh pages would each
	 * cost a page fault; else into the arena (kept between the checkpoints
	 * of a process), not malloc's (the brk heap may be write-protected). */
	if (rc == 0 && c->header_buf && o.header_size <= c->header_len)
		buf = c->header_buf;
	else if (rc == 0 && !(buf = img_scratch(&c->arena, o.header_size + 8, &mapped)))
		rc = -ENOMEM;
	if (rc == 0)
		rc = crac_img_read_header(&o, buf, o.header_size, &v, why, sizeof(why));
	if (rc < 0) {
		snprintf(msg, len, "the image read back from %.400s is not valid: %.500s", c->tmp,
			 rc == -ENOMEM && !buf ? "out of memory" : why);
		goto out;
	}
	if (v.h->n_chunks != c->n_chunks || v.h->pages_size != c->pages_size || v.h->n_maps != c->n_maps ||
	    v.h->n_fds != c->objs.n_fds) {
		snprintf(msg, len, "the image read back from %.400s differs from what was written "
			 "(%u chunks, %llu bytes of pages, %u descriptors; written %llu chunks, %llu bytes, %u descriptors)",
			 c->tmp, v.h->n_chunks, (unsigned long long)v.h->pages_size, v.h->n_fds,
			 (unsigned long long)c->n_chunks, (unsigned long long)c->pages_size, c->objs.n_fds);
		rc = -EBADMSG;
		goto out;
	}
	/* Everything `crac restore` will check, on this machine: a checkpoint
	 * that succeeds is restorable here (memory in the loader's range, a
	 * mapping past its file's end... are refused now, while the original
	 * still runs). */
	struct crac_img_checker k = { .v = &v, .o = &o, .dir = c->tmp, .flags = 0, .file_fds = NULL };
	if ((rc = crac_img_check_all(&k, &failed, why, sizeof(why))) < 0) {
		snprintf(msg, len, "the image could not be restored here (check \"%s\" fails): %.700s",
			 crac_img_check_name(failed), why);
		goto out;
	}
	/* An incremental image: the images below it, as a restore opens them;
	 * not read again if their files are those img_incr_prepare checked
	 * (stat identity, image_track.c): the references were made from
	 * what it read. */
	if (v.h->depth && !(c->incr.chain && c->incr.chain->n == v.h->depth && img_chain_unchanged(c->incr.chain))) {
		struct crac_img_chain *ch = malloc(sizeof(*ch));
		void *abuf = malloc(64u << 20);
		rc = !ch || !abuf ? -ENOMEM : crac_img_chain_open(&v, c->tmp, 0, ch, abuf, 64u << 20, why, sizeof(why));
		if (rc == 0)
			crac_img_chain_close(ch);
		else
			snprintf(msg, len, "the image could not be restored here: %.800s",
				 !ch || !abuf ? "out of memory" : why);
		free(abuf);
		free(ch);
	}
out:
	if (mapped)
		munmap(buf, mapped);
	crac_img_close(&o);
	return rc;
}

/* A line to stderr without stdio (a thread of the program may hold its lock). */
static void write_stderr(const char *s)
{
	crac__write_all(2, s, strlen(s));
}

/* ---- progress (core/checkpoint.c, crac_ckpt_stats) --------------------------- */

/*
 * CRAC_TEST_SLOW_PAGES_US=N, for tests only (tests/cli/checkpoint_progress.bats):
 * the page writer sleeps N microseconds after each piece of at most 1 MiB,
 * so that a small heap takes long enough to show progress. Read before the
 * threads stop.
 */
static long test_slow_pages_us;

/*
 * Called by the page writer after each piece (image_capture.c, store_range):
 * how much of the memory was stored or skipped, for the requester's
 * progress records (throttled by crac__round_progress). Threads stopped:
 * stores and a clock read only.
 */
void img_progress(struct img_capture *c)
{
	struct crac_round *r = c->round;

	if (!r)
		return;
	if (test_slow_pages_us > 0) {
		struct timespec ts = { test_slow_pages_us / 1000000, (test_slow_pages_us % 1000000) * 1000 };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	if (!r->requester || !r->requester->progress)
		return;
	/* (r is on this thread's stack, which the page writer copies first) */
	r->stats.written_bytes = c->pages_size;
	r->stats.done_bytes = c->pages_size + c->w.zero_pages * CRAC_IMG_PAGE;
	crac__round_progress(r);
}

/*
 * About how many bytes the page writer will look at: the process's resident
 * anonymous memory (/proc/self/statm: resident less shared, i.e. RssAnon,
 * which the kernel keeps as counters: no page table walk, unlike
 * smaps_rollup's "Anonymous:", 45 ms for 1 GiB here) less the engine's
 * arena, plus whole shared anonymous mappings (stored page by page). For
 * the progress records' "of about" only. Threads stopped: system calls
 * into a buffer on the stack.
 */
static uint64_t estimate_total(const struct img_capture *c)
{
	char buf[256];
	uint64_t f[3] = { 0, 0, 0 }, total = 0;
	ssize_t n = -1;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		do
			n = read(fd, buf, sizeof(buf) - 1);
		while (n < 0 && errno == EINTR);
		close(fd);
	}
	buf[n > 0 ? n : 0] = 0;
	/* "size resident shared text lib data dt", in pages */
	const char *p = buf;
	for (int i = 0; i < 3 && *p; i++) {
		for (; *p >= '0' && *p <= '9'; p++)
			f[i] = f[i] * 10 + (uint64_t)(*p - '0');
		while (*p == ' ')
			p++;
	}
	if (f[1] > f[2]) {
		total = (f[1] - f[2]) * (uint64_t)sysconf(_SC_PAGESIZE);
		/* the arena's pages touched so far (most of what it handed
		 * out is never touched): mincore, 2 MiB at a time */
		unsigned char vec[512];
		uint64_t arena = 0, used = (c->arena.used + CRAC_IMG_PAGE - 1) & ~(uint64_t)(CRAC_IMG_PAGE - 1);
		for (uint64_t at = 0; at < used; at += sizeof(vec) * CRAC_IMG_PAGE) {
			uint64_t len = used - at < sizeof(vec) * CRAC_IMG_PAGE ? used - at : sizeof(vec) * CRAC_IMG_PAGE;
			if (mincore(c->arena.base + at, len, vec) < 0)
				break;
			for (uint64_t i = 0; i < len / CRAC_IMG_PAGE; i++)
				arena += (vec[i] & 1) * CRAC_IMG_PAGE;
		}
		total = total > arena ? total - arena : 0;
	}
	for (uint32_t i = 0; i < c->n_maps; i++)
		if (c->maps[i].m.kind == CRAC_MAP_SHMEM || c->maps[i].whole)
			total += c->maps[i].m.end - c->maps[i].m.start;
	return total;
}

/* The figures of the pages, once written (threads running again). */
static void note_stats(struct crac_round *r, const struct img_capture *c)
{
	struct crac_ckpt_stats *s = &r->stats;
	char path[PATH_MAX + 32];
	struct stat st;

	s->scanned_pages = 0;
	for (uint32_t i = 0; i < c->n_maps; i++) {
		const struct crac_img_map *m = &c->maps[i].m;
		/* the mappings img_capture_pages looks into */
		if (m->kind > CRAC_MAP_SHMEM || (m->kind == CRAC_MAP_FILE && (m->flags & CRAC_MAPF_SHARED)))
			continue;
		s->scanned_pages += (m->end - m->start) / CRAC_IMG_PAGE;
	}
	s->stored_pages = c->pages_size / CRAC_IMG_PAGE;
	s->zero_pages = c->w.zero_pages;
	s->done_bytes = c->pages_size + c->w.zero_pages * CRAC_IMG_PAGE;
	s->written_bytes = c->pages_size;
	if (snprintf(path, sizeof(path), "%s/%s", c->tmp, CRAC_IMG_HEADER_FILE) < (int)sizeof(path) &&
	    stat(path, &st) == 0)
		s->written_bytes += (uint64_t)st.st_size;
	s->threads = (uint32_t)c->n_threads + 1;
	s->maps = c->n_maps;
}

/* CRAC_IMAGE_STATS: one line on stderr about how the pages were written. */
static void print_stats(const struct img_capture *c)
{
	static const char *const mode[] = { "?", "O_DIRECT", "vmsplice+splice", "write" };
	const char *aio = c->w.mode == IMG_WRITE_DIRECT && c->w.used_aio ? " + AIO" :
			  c->w.mode == IMG_WRITE_DIRECT && c->w.used_dw ? " by a helper on the other CPU" : "";
	char line[1024];

	char incr[224] = "";
	if (c->incr.on || c->incr.reset)
		snprintf(incr, sizeof(incr), ", %.1f MiB referenced from %u image%s below (scans %.1f ms%s)",
			 c->incr.ref_bytes / 1048576.0, c->incr.depth, c->incr.depth == 1 ? "" : "s",
			 c->incr.t_scan_ns / 1e6, c->incr.reset ? ", write-protecting again included" : "");
	char zs[160] = "";
	if (c->z.level)
		snprintf(zs, sizeof(zs), ", zstd level %d (%s): %llu chunks (%llu in two halves at once), "
			 "%.1f MiB of memory in %.1f MiB", c->z.level, c->z.why, (unsigned long long)c->z.n_frames,
			 (unsigned long long)c->z.n_split, c->z.in_bytes / 1048576.0, c->z.out_bytes / 1048576.0);
	snprintf(line, sizeof(line), "crac: checkpoint stats: %.1f MiB of pages in %llu chunks written with %s%s "
		 "(%s), %.1f MiB of zero pages left out%s%s; threads stopped %.1f ms (pages %.1f ms, of which "
		 "writing %.1f ms; descriptors + header%s %.1f ms); before the stop %.1f ms (parent image "
		 "%.1f ms), after it %.1f ms (read back %.1f ms, then waiting for fsync %.1f ms, rename %.1f ms); "
		 "before the engine %.1f ms (the engine's choice and target, callbacks, safety checks)\n",
		 c->pages_size / 1048576.0, (unsigned long long)c->n_chunks,
		 mode[c->w.mode <= IMG_WRITE_WRITE ? c->w.mode : 0], aio, c->w.why ? c->w.why : "",
		 c->w.zero_pages * (double)CRAC_IMG_PAGE / 1048576.0, zs, incr, (c->t_synced - c->t_stopped) / 1e6,
		 (c->t_pages - c->t_stopped) / 1e6, c->t_write_ns / 1e6, c->syncer ? "" : " + fsync",
		 (c->t_synced - c->t_pages) / 1e6, (c->t_stopped - c->t_begin) / 1e6, c->t_incr / 1e6,
		 (c->t_done - c->t_released) / 1e6, (c->t_verified - c->t_released) / 1e6,
		 (c->t_fsynced - c->t_verified) / 1e6, (c->t_done - c->t_fsynced) / 1e6,
		 (c->t_begin - c->round->stats.start_ns) / 1e6);
	write_stderr(line);
}

/*
 * The threads were let go: the signals pending at the checkpoint go back
 * to the checkpointing thread and, unless the main thread does it in its
 * stop handler, to the process; each stopped thread gives back its own
 * (image_signals.c). One report line for any that did not go back as it
 * was, once every thread left its handler (at most 1 s).
 */
static void give_back_signals(struct crac_round *r)
{
	img_signals_give_back_checkpointer(crac__img_self.thread.tid, false);
	img_threads_wait_out(1000000000LL);
	img_signals_report(r->report);
}

/* Before the threads are let go: they give back the program's own
 * SIGRTMAX-1 after the disposition is back (image_signals.c). */
static void put_back_stop_signal(void)
{
	img_signals_put_back_stop(img_stop_old_action(), false);
}

/*
 * Stops every other thread with every stdio stream's output written out
 * (image_stdio.c). A stream with pending output that a stopped thread is
 * writing to (inside printf) cannot be flushed: let the threads go and stop
 * them again, until the deadline. For stdin/stdout/stderr, first take the
 * stream's lock while the threads run (trying, never waiting in it) and
 * stop them while holding it. Returns the number of stopped threads or a
 * negative errno (c->err says why; no thread stopped).
 */
static int stop_flushed(struct img_capture *c, int64_t deadline)
{
	void *held[3] = { NULL, NULL, NULL };
	int n_held = 0, rc, busy_fd = -1;
	long wait_us = 1000;

	for (;;) {
		void *busy;
		int n = img_threads_stop(&c->arena, deadline, &c->err);
		if (n < 0) {
			rc = n;
			break;
		}
		rc = img_stdio_flush(&c->err, &busy_fd, &busy);
		if (rc == 0) {
			rc = n;
			break;
		}
		put_back_stop_signal();
		img_threads_release();
		if (rc != -EAGAIN)
			break;
		void *s = img_stdio_static(busy);
		bool have = false;
		for (int i = 0; i < n_held; i++)
			have |= held[i] == s;
		while (s && !have && n_held < 3 && img_mono_ns() < deadline) {
			if (img_stdio_trylock(s) == 0) {
				held[n_held++] = s;
				break;
			}
			struct timespec ts = { 0, 20000 };   /* 20 us: the holder is between two calls soon */
			nanosleep(&ts, NULL);
		}
		if (img_mono_ns() + wait_us * 1000 > deadline) {
			rc = img_fail(&c->err, -ETIMEDOUT, "the stdio stream of fd %d%s holds output not yet written and "
				      "stayed locked by a thread of the program (inside a stdio call on it) until the "
				      "deadline; flushing it would wait for that thread, and unflushed output would be "
				      "written again by every restored process", busy_fd, img_stdio_fd_name(busy_fd));
			break;
		}
		if (!s) {
			struct timespec ts = { 0, wait_us * 1000 };
			nanosleep(&ts, NULL);
			wait_us = wait_us * 2 < 50000 ? wait_us * 2 : 50000;
		}
	}
	/* Flushed (or failed): a thread waiting for them is stopped in the
	 * lock, or runs again and takes it. */
	for (int i = 0; i < n_held; i++)
		img_stdio_unlock(held[i]);
	return rc;
}

static int image_checkpoint(struct crac_round *r)
{
	struct img_capture cap;
	struct img_capture *c = &cap;
	int64_t deadline = r->event.deadline_monotonic;
	char msg[1024];
	int rc;

	memset(c, 0, sizeof(*c));
	c->round = r;
	c->dir_fd = c->pages_fd = c->pagemap_fd = c->header_fd = -1;
	c->w.dfd = c->w.pipe[0] = c->w.pipe[1] = -1;
	c->t_begin = img_mono_ns();
	/* The process goes on and may checkpoint again: its arena is kept,
	 * after a full image too. (A full image between two incremental ones
	 * of bench/ckpt_incr.c left the next one a fresh arena: its parent
	 * image step 1.2-2.3 ms against 0.5-0.8 kept, the whole checkpoint
	 * several ms more; the arena's resident pages after a full image of
	 * 1 GiB: 0.7-1.9 MiB.) */
	const bool keep_arena = (r->opts.flags & CRAC_KEEP_RUNNING) != 0;
	if (!deadline || deadline < img_mono_ns() + 1000000000LL)
		deadline = img_mono_ns() + 10LL * 1000000000LL;

	/* 1-2. While every thread still runs. (stdio is flushed in 3, with
	 * the threads stopped: fflush(NULL) would wait for the lock of a
	 * stream that a thread reads with fgets, forever.) */
	crac__round_phase(r, CRAC_CKPT_PREPARE);
	const char *slow = getenv("CRAC_TEST_SLOW_PAGES_US");
	test_slow_pages_us = slow ? strtol(slow, NULL, 10) : 0;
	if ((rc = arena_get(&c->arena, ARENA_SIZE)) < 0) {
		img_fail(&c->err, rc, "engine arena: %s", strerror(-rc));
		goto fail_running;
	}
	c->skip[0][0] = (uint64_t)(uintptr_t)c->arena.base;
	c->skip[0][1] = c->skip[0][0] + c->arena.size;
	c->n_skip = 1;
	/* Temporaries of this image left by checkpoints that were killed.
	 * The image directory's operations (this listing, the commit's
	 * check, renames and fsync, a removal) end at this checkpoint's
	 * deadline when the file system does not answer (image/dir.c): a
	 * parent that cannot be listed cannot take the image either. */
	crac_img_fs_deadline(r->event.deadline_monotonic);
	if ((rc = crac_img_clean_stale_msg(r->opts.image_dir, NULL, msg, sizeof(msg))) == -ETIMEDOUT && msg[0]) {
		img_fail(&c->err, rc, "%s", msg);
		goto fail_running;
	}
	if (rc == 0 && msg[0])   /* a previous image not put back, and why */
		crac__log(CRAC_LOG_WARN, "%s", msg);
	if (img_capture_secrets(c) < 0 || img_capture_open(c, r->opts.image_dir) < 0 ||
	    img_compress_prepare(c, r) < 0)
		goto fail_running;
	int64_t t_parent = img_mono_ns();
	img_incr_prepare(c, r);   /* incremental: the parent image (image_track.c) */
	c->t_incr = img_mono_ns() - t_parent;

	/* tests: the program's threads run on this long after the safety
	 * checks (a fork or a timer made then: image_capture.c rechecks) */
	const char *freeze_delay = getenv("CRAC_TEST_FREEZE_DELAY_MS");
	if (freeze_delay && atoi(freeze_delay) > 0)
		usleep((useconds_t)atoi(freeze_delay) * 1000);

	/* 3. Stop the world. From here to the release: system calls only
	 * (crac__round_phase and crac__round_progress are such). */
	crac__round_phase(r, CRAC_CKPT_FREEZE);
	if ((rc = stop_flushed(c, deadline)) < 0)
		goto fail_running;
	/* The pending signals, read with ptrace (image_signals.c). Where
	 * ptrace turns out refused for a thread with signals of its own to
	 * read, the threads stop once more and take them instead. */
	int sr = img_signals_read(&c->arena, img_gettid(), deadline, &c->err);
	if (sr == -EAGAIN) {
		put_back_stop_signal();
		img_threads_release();
		img_threads_wait_out(1000000000LL);
		if ((rc = stop_flushed(c, deadline)) < 0)
			goto fail_running;
		sr = img_signals_read(&c->arena, img_gettid(), deadline, &c->err);
	}
	if (sr < 0) {
		c->n_threads = rc;
		goto fail_stopped;
	}
	c->n_threads = rc;
	c->t_stopped = img_mono_ns();
	img_track_lazy_handover();   /* a lazy loader that tracks writes: ours now (image_track.c) */
	crac__clock_snapshot_point();   /* as late as possible: see runtime.h */

	/* 4. */
	crac__round_phase(r, CRAC_CKPT_CAPTURE);
	if (img_capture_process(c) < 0 || img_capture_maps(c) < 0)
		goto fail_stopped;
	if (r->requester && r->requester->progress)
		r->stats.total_bytes = estimate_total(c);

	/* 5. The restored process continues here. */
	memset(&crac__img_self.resume, 0, sizeof(crac__img_self.resume));
	/* the loader restores it only if it speaks the same hand-over (image.h) */
	crac__img_self.resume.magic = CRAC_RESUME_MAGIC_ABI(CRAC_RESUME_ABI);
	crac__img_self.resume.ctx.fs_base = img_get_fs();
	crac__img_self.resume.lazy_entry = (uint64_t)(uintptr_t)crac__img_lazy_main;
	if (crac__img_setctx(&crac__img_self.resume.ctx) != 0) {
		/* a restored process: the arena was not part of the image */
		kept_arena.a.base = NULL;
		return img_restored(r);
	}

	/* 6. */
	crac__round_phase(r, CRAC_CKPT_PAGES);
	if (img_capture_pages(c) < 0)
		goto fail_stopped;
	c->t_pages = img_mono_ns();
	crac__round_phase(r, CRAC_CKPT_SYNC);
	if (img_capture_fds(c, r) < 0 || img_capture_header(c) < 0)
		goto fail_stopped;
	c->t_synced = img_mono_ns();

	/* 7. The fsyncs may still run (on the other core): the image is read
	 * back meanwhile, and renamed into place once they are done. */
	put_back_stop_signal();
	img_threads_release();
	give_back_signals(r);
	c->t_released = img_mono_ns();
	crac__round_phase(r, CRAC_CKPT_VERIFY);
	note_stats(r, c);
	rc = verify_written(c, msg, sizeof(msg));
	c->t_verified = img_mono_ns();
	if (rc == 0 && img_capture_synced(c) < 0) {
		rc = c->err.code;
		snprintf(msg, sizeof(msg), "%.1000s", c->err.msg);
	}
	c->t_fsynced = img_mono_ns();
	/* the temporary's lock (img_capture_open) held until it is renamed:
	 * another descriptor of that open directory */
	int hold = c->dir_fd >= 0 ? fcntl(c->dir_fd, F_DUPFD_CLOEXEC, 3) : -1;
	img_capture_close(c, false);
	if (rc < 0) {
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "image", rc,
				 "%s; no image was written to %s, the process goes on", msg, r->opts.image_dir);
		img_incr_done(c, r, false);
		crac_img_remove(c->tmp);
		if (hold >= 0)
			close(hold);
		arena_put(&c->arena, keep_arena);
		return rc;
	}
	rc = crac_img_commit(c->tmp, r->opts.image_dir, msg, sizeof(msg));
	if (rc < 0)
		crac_img_remove(c->tmp);   /* nothing committed: ours, still a temporary */
	if (hold >= 0)
		close(hold);
	if (rc < 0) {
		/* Nothing was committed: whatever is at the target is untouched. */
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "image", rc, "%s; the process goes on", msg);
		img_incr_done(c, r, false);
		arena_put(&c->arena, keep_arena);
		return rc;
	}
	img_incr_done(c, r, true);   /* before the arena goes: it reads c->incr.chain */
	arena_put(&c->arena, keep_arena);
	c->t_done = img_mono_ns();
	if (getenv("CRAC_IMAGE_STATS"))
		print_stats(c);
	/* The image is in place: that is success, whatever else went wrong
	 * (said as a warning, on stderr and to a requester). */
	char text[1200];
	if (rc > 0) {
		snprintf(text, sizeof(text), "crac: warning: image written to %.300s, but %.800s\n",
			 r->opts.image_dir, msg);
		write_stderr(text);
		snprintf(text, sizeof(text), "image written to %.300s (warning: %.800s)", r->opts.image_dir, msg);
	} else {
		snprintf(text, sizeof(text), "image written to %.300s", r->opts.image_dir);
	}
	crac__round_snapshot_taken(r, text);
	return CRAC_CONTINUED;

fail_stopped:
	put_back_stop_signal();
	img_threads_release();
	give_back_signals(r);
fail_running:
	img_incr_done(c, r, false);
	img_capture_close(c, true);
	arena_put(&c->arena, keep_arena);
	crac__report_add(r->report, CRAC_PHASE_ENGINE, "image", c->err.code ? c->err.code : -EIO, "%s",
			 c->err.msg[0] ? c->err.msg : "image checkpoint failed");
	return c->err.code ? c->err.code : -EIO;
}

const struct crac_engine crac__engine_image CRAC_HIDDEN = {
	.name = "image",
	.summary = "writes the process to an image directory; `crac restore DIR` restores it",
	.flags = CRAC_ENGINE_WRITES_IMAGE | CRAC_ENGINE_CARRIES_FDS,
	.configure = image_configure,
	.checkpoint = image_checkpoint,
};
