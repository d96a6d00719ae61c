/* SPDX-License-Identifier: MIT */
/*
 * image_write.c - moving page data into the pages file.
 *
 * Runs while every other thread is stopped (image_engine.h): system calls
 * only. image_capture.c decides which bytes go where (chunks, crc, zero
 * pages left out) and queues them here; this file only moves them.
 *
 * Why not just write(2)? The first checkpoint of a process is where the
 * time goes: write() copies from the program's pages through their user
 * addresses, and on this kind of VM (a PVM guest with shadow paging) the
 * first kernel access to each user page is expensive: 1 GiB from a fresh
 * heap took 4.5-12 s here, against 0.5-1.8 s with vmsplice + splice (to
 * /dev/shm or the disk) and 1.5-2.4 s with O_DIRECT (bench/ckpt_write.c,
 * bench/checkpoint.sh, numbers in docs/bench-checkpoint.md). Three modes:
 *
 *   splice   the default: vmsplice(2) the pages into a pipe (1 MiB, the
 *            unprivileged maximum), splice(2) the pipe into the file.
 *            This is CRIU's way; the copy into the page cache is made by
 *            the kernel from its own mapping of each page, and the image
 *            stays in the page cache for a restore that follows.
 *   direct   CRAC_IMAGE_WRITER=direct: O_DIRECT pwritev from the program's
 *            pages (a second descriptor of the pages file); with
 *            CRAC_IMAGE_AIO=1 through Linux AIO with two batches in
 *            flight, the crc of the next batch taken while the device
 *            reads this one (no better than splice here). No page
 *            cache is filled and the data is on the disk when the write
 *            completes. For a full image it measured faster than splice
 *            while the guest's CPUs were saturated by other work (the host
 *            moves the data), slower on a less loaded guest, and a restore
 *            right after has to read the disk: not the default there. It
 *            is the default for an incremental image (see
 *            img_write_begin), CRAC_IMAGE_WRITER=splice keeps the page
 *            cache.
 *   write    pwritev(2) from the pages: CRAC_IMAGE_WRITER=write, or when
 *            no pipe can be made.
 *
 * The pages must not change between being queued and written out:
 *   - O_DIRECT: the device has read the bytes when the write completes;
 *     with AIO, img_write_sync waits for every write in flight, and it is
 *     called before the bounce buffer is reused, before a mapping made
 *     readable for us gets its protection back, and at the end.
 *   - vmsplice WITHOUT SPLICE_F_GIFT only takes references to the pages;
 *     their bytes are copied when the pipe is drained into the file (the
 *     page cache gets a copy: splice never moves a page into a file). So
 *     the pipe is drained completely in img_write_flush, and every queue is
 *     flushed before the other threads are released (img_capture_pages ends
 *     with img_write_end): in keep-running mode the program goes on only
 *     once no page of it is referenced by the pipe. SPLICE_F_GIFT would
 *     promise the kernel that we never touch the pages again, which a
 *     program that keeps running cannot promise.
 *   - The checkpointing thread's own stack and TLS change while we write:
 *     image_capture.c copies such chunks into a bounce buffer first and
 *     flushes right after queueing it (the buffer is reused).
 * Other threads are stopped, so the rest of the program's memory is still,
 * but for what this thread itself writes while the queue fills: the GOT and
 * the dynamic linker's data when a function is called for the first time
 * (lazy binding; seen in restored processes). Hence the crc of a chunk is
 * taken in img_write_flush, right before its bytes go to the kernel (as
 * write() did it), and every function the writer calls is bound in
 * img_write_begin, before image_capture.c looks at any page (a page found
 * all zero and left out must not be written afterwards). The engine's own
 * scratch is in its arena, which is not part of the image.
 *
 * --compress (CRAC_IMAGE_COMPRESS, CRAC_COMPRESS): each chunk is
 * compressed by this thread into one zstd frame (a context made in the
 * arena before the threads stopped), the frame queued from an arena buffer
 * and padded to a page; a chunk is stored as it is when its frame would not
 * save a page, and the one holding the resume block always is (restore
 * checks it straight from the file). Its crc is taken when it is
 * compressed, of the bytes compressed.
 *
 * CRAC_IMAGE_WRITER=direct|splice|write chooses the mode;
 * CRAC_IMAGE_KEEP_ZERO=1 stores all-zero pages too (benchmarks).
 */
#include "engines/image_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "image/bounded.h"
#include "loader/sys.h"   /* raw system calls: the workers set no errno */

#define P CRAC_IMG_PAGE

long crac__img_helper_clone(unsigned long flags, void *sp) CRAC_HIDDEN;

static void futex_set(uint32_t *w, uint32_t v)
{
	__atomic_store_n(w, v, __ATOMIC_RELEASE);
	SYS(SYS_futex, w, FUTEX_WAKE, 1, 0, 0, 0);
}

/*
 * Waits while *word is old for a worker of ours (pid: the O_DIRECT writer,
 * the compression worker): true once it changed; false if the worker ended
 * (killed by someone) without changing it, looked at every 50 ms, or the
 * wait reached `until` (CLOCK_MONOTONIC ns; the worker is then killed):
 * *gone, and *word never changes. A worker that died is a zombie until its
 * stop reaps it.
 */
static bool helper_wait_ne(long pid, uint32_t *word, uint32_t old, int64_t until, bool *gone)
{
	while (!*gone && __atomic_load_n(word, __ATOMIC_ACQUIRE) == old) {
		int64_t now = crac_bounded_mono_ns();
		if (now >= until) {
			SYS(SYS_kill, pid, SIGKILL, 0, 0, 0, 0);
			*gone = true;
			break;
		}
		int64_t step = until - now < 50000000LL ? until - now : 50000000LL;
		const struct timespec ts = { 0, (long)step };
		if (SYS(SYS_futex, word, FUTEX_WAIT, old, &ts, 0, 0) != -ETIMEDOUT)
			continue;
		siginfo_t si;
		si.si_pid = 0;
		/* dead and not reaped yet, or reaped already (a wait of the
		 * program's for any child, __WALL, may take it) */
		bool dead = (SYS(SYS_waitid, P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT | __WALL, 0, 0) == 0 &&
			     si.si_pid == pid) ||
			    SYS(SYS_kill, pid, 0, 0, 0, 0, 0) == -ESRCH;
		if (dead && __atomic_load_n(word, __ATOMIC_ACQUIRE) == old)
			*gone = true;
	}
	return __atomic_load_n(word, __ATOMIC_ACQUIRE) != old;
}

/* The end of the waits for a worker: the checkpoint's deadline, and
 * CRAC_BOUNDED_GRACE_MS from now at the earliest (the callbacks have the
 * deadline; the pages are written after it). */
static int64_t worker_until(const struct img_capture *c)
{
	int64_t now = crac_bounded_mono_ns(), dl = c->round ? c->round->event.deadline_monotonic : 0;
	int64_t until = now + crac_bounded_grace_ms() * 1000000LL;

	return dl > until ? dl : until;
}

/* Reaps a worker of ours (no zombie for the program to see); one killed in
 * a call that does not return is given 100 ms to end, then left (it runs
 * none of our code again: its arena stack may go). */
static void helper_reap(long pid, bool gone)
{
	for (int k = 0; k < 10; k++) {
		long r = SYS(SYS_wait4, pid, 0, __WALL | (gone ? WNOHANG : 0), 0, 0, 0);
		if (r == -EINTR)
			continue;
		if (r != 0)
			break;
		const struct timespec ts = { 0, 10000000L };
		SYS(SYS_nanosleep, &ts, 0, 0, 0, 0, 0);
	}
}

/*
 * All zeros? Most pages that are not zero differ in their first word, so the
 * common case costs one load; a zero page is read once, 64 bytes per step.
 * Program memory: not sanitizer-instrumented (see image_capture.c).
 */
CRAC_IMG_NOSAN bool img_page_is_zero(const void *p)
{
	const uint64_t *w = p;

	if (w[0])
		return false;
	for (size_t k = 0; k < P / 8; k += 8) {
		uint64_t x = w[k] | w[k + 1] | w[k + 2] | w[k + 3] | w[k + 4] | w[k + 5] | w[k + 6] | w[k + 7];
		if (x)
			return false;
	}
	return true;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The splice mode's pipe; falls back to write mode if there is none. */
static void setup_pipe(struct img_writer *w)
{
	if (pipe2(w->pipe, O_CLOEXEC) < 0) {
		w->pipe[0] = w->pipe[1] = -1;
		w->mode = IMG_WRITE_WRITE;
		w->why = "no pipe for vmsplice";
		return;
	}
	/* 1 MiB is what an unprivileged process may ask for
	 * (/proc/sys/fs/pipe-max-size); less is fine, only slower. */
	int cap = fcntl(w->pipe[1], F_SETPIPE_SZ, (int)CRAC_IMG_CHUNK_MAX);
	if (cap < 0)
		cap = fcntl(w->pipe[1], F_GETPIPE_SZ);
	w->pipe_cap = cap > 0 ? (size_t)cap : 65536;
	w->mode = IMG_WRITE_SPLICE;
}

static void dworker_start(struct img_capture *c);

int img_write_begin(struct img_capture *c)
{
	struct img_writer *w = &c->w;
	const char *force = getenv("CRAC_IMAGE_WRITER");   /* no lock in glibc's getenv */

	w->dfd = w->pipe[0] = w->pipe[1] = -1;
	w->aio = 0;
	w->used_aio = false;
	w->dw = NULL;
	w->used_dw = false;
	w->next_slot = 0;
	w->slot[0].busy = w->slot[1].busy = false;
	w->at = c->pages_size;
	w->pending = 0;
	w->n_iov = 0;
	w->crc_from = c->n_chunks;
	w->zero_pages = 0;
	w->keep_zero = getenv("CRAC_IMAGE_KEEP_ZERO") != NULL;
	/* Functions first called from here on are bound by the dynamic
	 * linker, which writes the GOT and its own data: let that happen now,
	 * before any page is looked at (a page found all zero must stay so
	 * until its neighbours are written, see image_capture.c). */
	(void)syscall(SYS_getpid);
	sync_file_range(c->pages_fd, 0, 0, 0);
	mprotect(NULL, 0, PROT_NONE);

	if (force && !strcmp(force, "write")) {
		w->mode = IMG_WRITE_WRITE;
		w->why = "CRAC_IMAGE_WRITER=write";
		return 0;
	}
	/* An incremental image (a few MiB, written while the threads are
	 * stopped) goes out with O_DIRECT unless asked otherwise: through the
	 * page cache, each of its pages takes a fresh page of the guest, and
	 * one the VM host has not backed yet costs many microseconds on first
	 * touch. bench/ckpt_incr.c, 1 GiB heap, 1% written, one image after
	 * another on a quiet machine: writing 4-7 ms with warm free memory but
	 * 21-45 ms once it ran out, where O_DIRECT wrote in 10-14 ms every time
	 * (whole checkpoints 17-50 ms against 22-27 ms). A restore that follows
	 * reads those few MiB from the disk. */
	bool incr_direct = !force && c->incr.on && !c->z.level;
	if ((force && !strcmp(force, "direct")) || incr_direct) {
		w->dfd = openat(c->dir_fd, CRAC_IMG_PAGES_FILE, O_WRONLY | O_DIRECT | O_CLOEXEC);
		if (w->dfd >= 0) {
			/* The pipe is made now, in case O_DIRECT refuses a write
			 * later (no new function gets called then). */
			setup_pipe(w);
			w->mode = IMG_WRITE_DIRECT;
			/* CRAC_IMAGE_AIO=1: Linux AIO, the crc of the next batch
			 * taken while the device reads this one. Against
			 * synchronous O_DIRECT it measured 0.82x in one run and
			 * 1.22x in another, never better than the default
			 * splice writer (docs/bench-checkpoint.md): off unless
			 * asked. */
			aio_context_t ctx = 0;
			if (getenv("CRAC_IMAGE_AIO") && syscall(SYS_io_setup, 4, &ctx) == 0)
				w->aio = ctx;
			dworker_start(c);
			w->why = incr_direct ? "the default for an incremental image" : "CRAC_IMAGE_WRITER=direct";
			return 0;
		}
		w->why = incr_direct ? "the default, the file system refuses O_DIRECT"
				     : "CRAC_IMAGE_WRITER=direct, but the file system refuses O_DIRECT";
	} else {
		w->why = force && !strcmp(force, "splice") ? "CRAC_IMAGE_WRITER=splice" : "the default";
	}
	setup_pipe(w);
	return 0;
}

int img_write_queue(struct img_capture *c, const void *src, uint64_t len)
{
	struct img_writer *w = &c->w;
	int rc;

	if (w->n_iov && (w->n_iov == IMG_WRITE_IOV || w->pending + len > IMG_WRITE_BATCH) &&
	    (rc = img_write_flush(c)) < 0)
		return rc;
	struct iovec *last = w->n_iov ? &w->iov[w->n_iov - 1] : NULL;
	if (last && (const char *)last->iov_base + last->iov_len == src)
		last->iov_len += len;   /* the next pages of the same range */
	else
		w->iov[w->n_iov++] = (struct iovec){ (void *)src, len };
	w->pending += len;
	return 0;
}

/* Drops the first n bytes of iov[*i..n_iov). */
static void advance(struct img_writer *w, int *i, uint64_t n)
{
	while (n) {
		struct iovec *v = &w->iov[*i];
		if (n < v->iov_len) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= n;
			return;
		}
		n -= v->iov_len;
		(*i)++;
	}
}

/* The raw system calls: no sanitizer interceptor reads program memory. */
static long pwritev_raw(int fd, const struct iovec *iov, int n, uint64_t off)
{
	return syscall(SYS_pwritev, fd, iov, n, (long)off, 0L);
}

/* Moves the queue through the pipe: vmsplice as much as the (empty) pipe
 * holds, splice all of it into the file, again. */
static int flush_splice(struct img_capture *c, int *i, uint64_t *off)
{
	struct img_writer *w = &c->w;

	while (*i < w->n_iov) {
		int n = w->n_iov - *i;
		long got = syscall(SYS_vmsplice, w->pipe[1], &w->iov[*i], (unsigned long)n, 0u);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		/* Drained before anything else: the pipe references the pages. */
		for (long left = got; left;) {
			loff_t o = (loff_t)*off;
			long m = syscall(SYS_splice, w->pipe[0], NULL, c->pages_fd, &o, (size_t)left, 0u);
			if (m < 0 && errno == EINTR)
				continue;
			if (m <= 0) {
				int e = m < 0 ? errno : EIO;
				/* Empty the pipe so that it references nothing. */
				close_fd(&w->pipe[0]);
				close_fd(&w->pipe[1]);
				return -e;
			}
			left -= m;
			*off += (uint64_t)m;
		}
		advance(w, i, (uint64_t)got);
	}
	return 0;
}

static int write_fail(struct img_capture *c, int rc, uint64_t off)
{
	struct img_writer *w = &c->w;

	return img_fail(&c->err, rc, "writing page data to %s/%s at offset %llu (%s): %s", c->tmp,
			CRAC_IMG_PAGES_FILE, (unsigned long long)off,
			w->mode == IMG_WRITE_DIRECT ? (w->aio ? "O_DIRECT, AIO" : "O_DIRECT") :
			w->mode == IMG_WRITE_SPLICE ? "splice" : "write", img_strerror(-rc));
}

/*
 * Writes iov[0..n) at off on fd, to the end or to the first error: 0 or
 * -errno; *done counts the bytes written, *left is the first iovec not
 * written whole (n when all were). Used for the rest of a short AIO write,
 * a batch O_DIRECT refused (buffered), and by the O_DIRECT writer, a helper
 * that shares this thread's TLS: raw system calls (no errno), no sanitizer.
 */
CRAC_IMG_NOSAN static int write_sync(int fd, struct iovec *iov, int n, uint64_t off, uint64_t *done, int *left)
{
	int i = 0;
	long got = 0;

	while (i < n) {
		got = SYS(SYS_pwritev, fd, &iov[i], n - i, off, 0, 0);
		if (got == -EINTR)
			continue;
		if (got <= 0)
			break;
		off += (uint64_t)got;
		*done += (uint64_t)got;
		while (got) {
			if ((size_t)got < iov[i].iov_len) {
				iov[i].iov_base = (char *)iov[i].iov_base + got;
				iov[i].iov_len -= (size_t)got;
				break;
			}
			got -= (long)iov[i].iov_len;
			i++;
		}
	}
	if (left)
		*left = i;
	return i < n ? (got < 0 ? (int)got : -EIO) : 0;
}

/*
 * The O_DIRECT writer (direct mode without AIO: an incremental image by
 * default). An O_DIRECT write returns once the device has the bytes, and
 * on ext4 a write that extends the file is made synchronously even
 * through AIO; so batches are handed to a helper (on this CPU, below), which
 * writes them in order while this thread goes on scanning (and
 * write-protecting) the next mappings and queueing the next batch. At
 * most two batches are with it, in w->slot: the program's pages they
 * point at do not change (its threads are stopped; ours are copied to the
 * bounce buffer, which is reused only after img_write_sync), and every
 * batch is written before img_write_end returns.
 *
 * The helper is made like the compression worker (a raw clone sharing our
 * memory and descriptors, its own process: none of the program's threads,
 * no signal of the program reaches it), raw system calls only, on an arena
 * stack, and dies with the thread that made it (PR_SET_PDEATHSIG). Not
 * under a seccomp filter, nor with one CPU, nor with
 * CRAC_IMAGE_DIRECT_HELPER=0: then this thread writes, as before.
 *
 * It runs on this thread's CPU (crac_bounded_pin), not the other one: its
 * work is mostly waiting for the device, and our address space active on
 * the other CPU made every TLB flush of the write-protecting scan reach it
 * there (bench/wp_probe.c "busy"): 1 GiB heap, 1% written, three
 * alternating rounds at a load of 1.5-1.9, scans 25-37 ms with it on the
 * other CPU against 18-24 on ours, whole checkpoints 48-64 against 44-53.
 *
 * Every wait for it looks every 50 ms whether it still lives (killed, it
 * fails the checkpoint at once) and ends at the checkpoint's deadline, 30 s
 * (CRAC_BOUNDED_GRACE_MS) at least: a write that does not return (a file
 * system that stopped answering, a helper stopped) is given up on, the
 * helper killed, and the checkpoint fails naming the file and the offset.
 */
struct img_dworker {
	uint32_t posted;                /* batches handed over (futex) */
	uint32_t completed;             /* batches written (futex) */
	uint32_t quit, exited;
	int fd;                         /* the O_DIRECT descriptor */
	int parent;                     /* our pid: the helper checks it is still its parent */
	long pid;
	struct img_write_slot *slot;    /* the writer's two slots */
	long res[2];                    /* per slot: 0 or -errno */
	uint64_t done[2];               /* bytes of the slot written */
	int left[2];                    /* the first iovec of the slot not written (all: n_iov) */
	uint32_t refuse;                /* tests: batch number + 1 "refused" (EINVAL), 0: none */
	bool gone;                      /* ended (killed) or given up on: nothing more from it */
	int64_t until;                  /* CLOCK_MONOTONIC ns: no wait for it beyond */
	char *stack;
};
#define IMG_DWORKER_STACK (64u << 10)

CRAC_IMG_NOSAN static void dworker_main(void *arg)
{
	struct img_dworker *d = arg;
	uint32_t k = 0;

	SYS(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0, 0);
	if (SYS(SYS_getppid, 0, 0, 0, 0, 0, 0) != d->parent)
		__atomic_store_n(&d->quit, 1, __ATOMIC_RELEASE);   /* orphaned already: nothing more */
	for (;;) {
		while (__atomic_load_n(&d->posted, __ATOMIC_ACQUIRE) == k && !__atomic_load_n(&d->quit, __ATOMIC_ACQUIRE))
			SYS(SYS_futex, &d->posted, FUTEX_WAIT, k, 0, 0, 0);
		if (__atomic_load_n(&d->posted, __ATOMIC_ACQUIRE) == k)
			break;   /* told to quit, nothing left */
		struct img_write_slot *sl = &d->slot[k & 1];
		uint64_t off = sl->off, done = 0;
		long res = k + 1 == d->refuse ? -EINVAL : 0;
		int i = 0;
		if (!res)
			res = write_sync(d->fd, sl->iov, sl->n_iov, off, &done, &i);
		d->res[k & 1] = res;
		d->done[k & 1] = done;
		d->left[k & 1] = i;
		k++;
		futex_set(&d->completed, k);
	}
	futex_set(&d->exited, 1);
	for (;;)
		SYS(SYS_exit, 0, 0, 0, 0, 0, 0);
}

/* Starts the writer for w->dfd (threads stopped); w->dw stays NULL if
 * there is none. */
static void dworker_start(struct img_capture *c)
{
	struct img_writer *w = &c->w;
	const char *e = getenv("CRAC_IMAGE_DIRECT_HELPER");
	cpu_set_t cpus;

	w->dw = NULL;
	w->dw_posted = w->dw_taken = 0;
	w->dw_refused = false;
	if ((e && !strcmp(e, "0")) || w->aio || prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 0 ||
	    sched_getaffinity(0, sizeof(cpus), &cpus) != 0 || CPU_COUNT(&cpus) < 2)
		return;
	struct img_dworker *d = img_arena_alloc(&c->arena, sizeof(*d));
	char *stack = img_arena_alloc(&c->arena, IMG_DWORKER_STACK);
	if (!d || !stack)
		return;
	memset(d, 0, sizeof(*d));
	d->until = worker_until(c);
	/* tests: CRAC_TEST_DIRECT_REFUSE=N, the Nth batch (from 1) refused as
	 * O_DIRECT refuses a misaligned write */
	const char *t = getenv("CRAC_TEST_DIRECT_REFUSE");
	d->refuse = t ? (uint32_t)strtoul(t, NULL, 10) : 0;
	d->fd = w->dfd;
	d->slot = w->slot;
	d->stack = stack;
	d->parent = (int)syscall(SYS_getpid);
	uint64_t *sp = (uint64_t *)(((uintptr_t)stack + IMG_DWORKER_STACK) & ~(uintptr_t)15);
	*--sp = (uint64_t)(uintptr_t)d;
	*--sp = (uint64_t)(uintptr_t)dworker_main;
	/* every signal blocked in the helper (it inherits the mask) */
	uint64_t all = ~0ull, old = 0;
	SYS(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof(all), 0, 0);
	uint64_t cpumask[CRAC_PIN_WORDS];
	bool pinned = crac_bounded_pin(cpumask);   /* (CRAC_BOUNDED_ANY_CPU: not narrowed) */
	long pid = crac__img_helper_clone(CLONE_VM | CLONE_FILES | 0x00800000 /* CLONE_UNTRACED */, sp);
	if (pinned)
		crac_bounded_unpin(cpumask);
	SYS(SYS_rt_sigprocmask, SIG_SETMASK, &old, 0, sizeof(old), 0, 0);
	if (pid <= 0)
		return;
	d->pid = pid;
	w->dw = d;
}

static bool dworker_wait_ne(struct img_dworker *d, uint32_t *word, uint32_t old)
{
	return helper_wait_ne(d->pid, word, old, d->until, &d->gone);
}

/* Waits until at most `left` batches are still with the writer, and takes
 * the results of those it finished: an error fails the checkpoint; a batch
 * O_DIRECT refused (alignment) is written buffered here, and the writer
 * takes no more (w->dw_refused). */
static int dworker_wait(struct img_capture *c, uint32_t left)
{
	struct img_writer *w = &c->w;
	struct img_dworker *d = w->dw;
	int rc = 0;

	for (;;) {
		uint32_t done = __atomic_load_n(&d->completed, __ATOMIC_ACQUIRE);
		while (w->dw_taken != done) {
			int si = (int)(w->dw_taken++ & 1);
			struct img_write_slot *sl = &w->slot[si];
			long res = d->res[si];
			uint64_t at = sl->off + d->done[si];
			sl->busy = false;
			if (res == -EINVAL) {
				w->dw_refused = true;
				uint64_t more = 0;
				int r = write_sync(c->pages_fd, &sl->iov[d->left[si]], sl->n_iov - d->left[si], at, &more, NULL);
				if (r < 0 && rc == 0)
					rc = write_fail(c, r, at + more);
			} else if (res < 0 && rc == 0) {
				rc = write_fail(c, (int)res, at);
			}
		}
		if (w->dw_posted - done <= left)
			return rc;
		if (!dworker_wait_ne(d, &d->completed, done)) {
			bool late = crac_bounded_mono_ns() >= d->until;
			return rc ? rc : img_fail(&c->err, late ? -ETIMEDOUT : -ECHILD,
						  "writing page data to %s/%s at offset %llu (O_DIRECT): the writer "
						  "(pid %ld) %s", c->tmp, CRAC_IMG_PAGES_FILE,
						  (unsigned long long)w->slot[w->dw_taken & 1].off, d->pid,
						  late ? "did not finish by the checkpoint's deadline (the file "
							 "system does not answer?): given up, killed"
						       : "ended before it was done (killed)");
		}
	}
}

/* Every batch written, then the writer ends and is reaped (before the
 * program's threads run again). */
static int dworker_stop(struct img_capture *c)
{
	struct img_writer *w = &c->w;
	struct img_dworker *d = w->dw;

	if (!d)
		return 0;
	int rc = dworker_wait(c, 0);
	futex_set(&d->quit, 1);
	SYS(SYS_futex, &d->posted, FUTEX_WAKE, 1, 0, 0, 0);
	dworker_wait_ne(d, &d->exited, 0);
	helper_reap(d->pid, d->gone);
	w->dw = NULL;
	return rc;
}

/* O_DIRECT refused a batch of the writer's: the rest goes buffered, by this
 * thread. */
static int dworker_refused(struct img_capture *c)
{
	struct img_writer *w = &c->w;
	int rc = dworker_stop(c);

	close_fd(&w->dfd);
	w->why = "O_DIRECT refused a write (alignment)";
	w->mode = w->pipe[0] >= 0 ? IMG_WRITE_SPLICE : IMG_WRITE_WRITE;
	return rc;
}

/* Hands the queue to the writer (room made for it first). */
static int dworker_post(struct img_capture *c)
{
	struct img_writer *w = &c->w;
	int rc = dworker_wait(c, 1);

	if (rc < 0)
		return rc;
	if (w->dw_refused)
		return dworker_refused(c);
	struct img_write_slot *sl = &w->slot[w->dw_posted & 1];
	memcpy(sl->iov, w->iov, (size_t)w->n_iov * sizeof(w->iov[0]));
	sl->n_iov = w->n_iov;
	sl->off = w->at;
	sl->len = w->pending;
	sl->busy = true;
	w->used_dw = true;
	futex_set(&w->dw->posted, ++w->dw_posted);
	return 0;
}

/* Waits for one AIO write to complete and finishes it (a short write is
 * completed synchronously; O_DIRECT refused goes on buffered). */
static int aio_wait_one(struct img_capture *c)
{
	struct img_writer *w = &c->w;
	struct io_event ev;
	long n;

	do
		n = syscall(SYS_io_getevents, w->aio, 1L, 1L, &ev, NULL);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		return write_fail(c, n < 0 ? -errno : -EIO, w->at);
	struct img_write_slot *sl = &w->slot[ev.data & 1];
	sl->busy = false;
	long res = (long)ev.res;
	uint64_t done = 0;
	if (res == -EINVAL && w->dfd >= 0) {
		/* Alignment this file system does not take: nothing was
		 * written; this and everything after goes buffered. */
		close_fd(&w->dfd);
		w->why = "O_DIRECT refused a write (alignment)";
		w->mode = w->pipe[0] >= 0 ? IMG_WRITE_SPLICE : IMG_WRITE_WRITE;
		res = 0;
	}
	if (res < 0)
		return write_fail(c, (int)res, sl->off);
	if ((uint64_t)res < sl->len) {
		/* The rest, synchronously. */
		uint64_t skip = (uint64_t)res;
		int i = 0;
		while (skip && skip >= sl->iov[i].iov_len)
			skip -= sl->iov[i++].iov_len;
		if (skip) {
			sl->iov[i].iov_base = (char *)sl->iov[i].iov_base + skip;
			sl->iov[i].iov_len -= skip;
		}
		int rc = write_sync(w->dfd >= 0 ? w->dfd : c->pages_fd, &sl->iov[i], sl->n_iov - i,
				    sl->off + (uint64_t)res, &done, NULL);
		if (rc < 0)
			return write_fail(c, rc, sl->off + (uint64_t)res + done);
	}
	return 0;
}

/* Waits for every AIO write in flight. */
static int aio_drain(struct img_capture *c)
{
	struct img_writer *w = &c->w;
	int rc = 0;

	while (w->aio && (w->slot[0].busy || w->slot[1].busy)) {
		int r = aio_wait_one(c);
		if (r < 0 && rc == 0)
			rc = r;
	}
	return rc;
}

/* Submits the queue as one AIO write (O_DIRECT); 1 if it was taken, 0 if
 * it must be written synchronously, or a negative errno. */
static int aio_submit(struct img_capture *c)
{
	struct img_writer *w = &c->w;
	struct img_write_slot *sl = &w->slot[w->next_slot];
	int rc;

	while (sl->busy)   /* its previous batch: wait for it */
		if ((rc = aio_wait_one(c)) < 0)
			return rc;
	if (w->mode != IMG_WRITE_DIRECT)   /* a wait may have fallen back */
		return 0;
	memcpy(sl->iov, w->iov, (size_t)w->n_iov * sizeof(w->iov[0]));
	sl->n_iov = w->n_iov;
	sl->off = w->at;
	sl->len = w->pending;
	struct iocb cb;
	memset(&cb, 0, sizeof(cb));
	cb.aio_lio_opcode = IOCB_CMD_PWRITEV;
	cb.aio_fildes = (uint32_t)w->dfd;
	cb.aio_buf = (uint64_t)(uintptr_t)sl->iov;
	cb.aio_nbytes = (uint64_t)sl->n_iov;
	cb.aio_offset = (int64_t)sl->off;
	cb.aio_data = (uint64_t)w->next_slot;
	struct iocb *cbp = &cb;
	long n;
	do
		n = syscall(SYS_io_submit, w->aio, 1L, &cbp);
	while (n < 0 && errno == EINTR);
	if (n != 1) {
		/* No AIO after all (e.g. EAGAIN): synchronous from now on. */
		rc = aio_drain(c);
		syscall(SYS_io_destroy, w->aio);
		w->aio = 0;
		return rc < 0 ? rc : 0;
	}
	sl->busy = true;
	w->used_aio = true;
	w->next_slot ^= 1;
	return 1;
}

int img_write_flush(struct img_capture *c)
{
	struct img_writer *w = &c->w;
	uint64_t off = w->at;
	int i = 0, rc = 0;

	/* The crc of every queued chunk, taken now: nothing runs between it
	 * and the system calls below but this loop (the other threads are
	 * stopped), so it matches the bytes the kernel reads. */
	for (uint64_t k = w->crc_from; k < c->n_chunks; k++)
		c->chunks[k].crc = crac_img_crc32c(0, (const void *)(uintptr_t)c->chunks[k].addr, c->chunks[k].len);
	w->crc_from = c->n_chunks;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);

	if (w->dw && w->mode == IMG_WRITE_DIRECT && w->n_iov) {
		rc = dworker_post(c);
		if (rc < 0) {
			w->n_iov = 0;
			w->pending = 0;
			return rc;
		}
		if (w->dw)
			i = w->n_iov;   /* with the writer (else refused: below, buffered) */
	}
	if (w->aio && w->mode == IMG_WRITE_DIRECT && w->n_iov) {
		rc = aio_submit(c);
		if (rc < 0) {
			w->n_iov = 0;
			w->pending = 0;
			return rc;
		}
		if (rc == 1)
			i = w->n_iov;   /* in flight */
		rc = 0;
	}
	while (i < w->n_iov) {
		if (w->mode == IMG_WRITE_SPLICE) {
			rc = flush_splice(c, &i, &off);
			break;
		}
		int fd = w->mode == IMG_WRITE_DIRECT ? w->dfd : c->pages_fd;
		int n = w->n_iov - i;
		long got = pwritev_raw(fd, &w->iov[i], n, off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno == EINVAL && w->mode == IMG_WRITE_DIRECT) {
			/* Alignment this file system does not take: nothing of
			 * this call was written; go on buffered. */
			close_fd(&w->dfd);
			w->why = "O_DIRECT refused a write (alignment)";
			w->mode = w->pipe[0] >= 0 ? IMG_WRITE_SPLICE : IMG_WRITE_WRITE;
			continue;
		}
		if (got <= 0) {
			rc = got < 0 ? -errno : -EIO;
			break;
		}
		off += (uint64_t)got;
		advance(w, &i, (uint64_t)got);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	c->t_write_ns += (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
	if (rc < 0) {
		write_fail(c, rc, off);
		w->n_iov = 0;
		w->pending = 0;
		return rc;
	}
	w->at += w->pending;
	w->pending = 0;
	w->n_iov = 0;
	/* Buffered modes: start writing back what is written so far, so the
	 * disk works while we copy the rest and the final fsync waits for
	 * less. (O_DIRECT data is on the disk already.) */
	/* (every MiB for an incremental image: its few MiB would otherwise
	 * reach the disk only with the final fsync, after the threads run
	 * again; bench/ckpt_incr.c, 4 alternating runs at a load of 8.8:
	 * waiting for that fsync 17.8/18.6 ms against 22.0/23.1) */
	uint64_t step = c->incr.on ? IMG_WRITEBACK_STEP_INCR : IMG_WRITEBACK_STEP;
	if (w->mode != IMG_WRITE_DIRECT && w->at - c->kicked >= step) {
		sync_file_range(c->pages_fd, (off_t)c->kicked, (off_t)(w->at - c->kicked), SYNC_FILE_RANGE_WRITE);
		c->kicked = w->at;
	}
	return 0;
}

int img_write_sync(struct img_capture *c)
{
	int rc = c->w.n_iov ? img_write_flush(c) : 0;
	int r = aio_drain(c);

	if (c->w.dw) {
		int d = dworker_wait(c, 0);
		if (d == 0 && c->w.dw_refused)
			d = dworker_refused(c);
		if (r == 0)
			r = d;
	}
	return rc < 0 ? rc : r;
}

#if CRAC_HAVE_ZSTD
static void zworker_stop(struct img_zstd *z);
#endif

int img_write_end(struct img_capture *c)
{
	struct img_writer *w = &c->w;
	int rc = img_write_sync(c);
	int d = dworker_stop(c);   /* (a failure above may have left batches with it) */

	if (rc == 0)
		rc = d;
	/* the rest of the page data goes to the disk while the header is made */
	if (rc == 0 && w->mode != IMG_WRITE_DIRECT && w->at > c->kicked) {
		sync_file_range(c->pages_fd, (off_t)c->kicked, (off_t)(w->at - c->kicked), SYNC_FILE_RANGE_WRITE);
		c->kicked = w->at;
	}

#if CRAC_HAVE_ZSTD
	zworker_stop(&c->z);   /* before the program's threads run again */
#endif
	if (w->aio) {
		syscall(SYS_io_destroy, w->aio);   /* waits for anything still in flight */
		w->aio = 0;
	}
	close_fd(&w->dfd);
	close_fd(&w->pipe[0]);
	close_fd(&w->pipe[1]);
	return rc;
}

/* ---- --compress ------------------------------------------------------------ */

#if CRAC_HAVE_ZSTD
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

/*
 * With CRAC_IMAGE_COMPRESS_THREADS=2 and two CPUs, a chunk of 32 KiB and
 * more is compressed in two halves at once, as two frames (the readers take a chunk's frames one after the
 * other): the first by the checkpointing thread, the second by a worker
 * made with a raw clone (CLONE_VM, a process of its own: the program's
 * signals never reach it, nothing counts it among the program's threads)
 * once the threads are stopped, ended before they run again. It runs
 * libzstd only, on the arena (its context, its output, its stack), and
 * raw futex calls; it shares our thread pointer (libzstd's stack
 * protector reads the canary there, nothing writes it).
 */
struct img_zworker {
	uint32_t seq;                   /* job posted (futex) */
	uint32_t done;                  /* job finished (futex) */
	uint32_t quit, exited;
	void *cctx;
	const void *src;
	size_t len, cap, result;
	char *out;
	int level;
	char *stack;
	size_t stack_size;
	long pid;
	bool gone;                      /* killed by someone: no more jobs */
	int64_t until;                  /* CLOCK_MONOTONIC ns: no wait for it beyond (killed then) */
};

#define IMG_ZSTD_SPLIT_MIN (32u << 10)
#define IMG_ZWORKER_STACK (256u << 10)

CRAC_IMG_NOSAN static void zworker_main(void *arg)
{
	struct img_zworker *w = arg;
	uint32_t seen = 0;

	for (;;) {
		while (__atomic_load_n(&w->seq, __ATOMIC_ACQUIRE) == seen && !__atomic_load_n(&w->quit, __ATOMIC_ACQUIRE))
			SYS(SYS_futex, &w->seq, FUTEX_WAIT, seen, 0, 0, 0);
		if (__atomic_load_n(&w->quit, __ATOMIC_ACQUIRE))
			break;
		seen = __atomic_load_n(&w->seq, __ATOMIC_ACQUIRE);
		w->result = ZSTD_compressCCtx(w->cctx, w->out, w->cap, w->src, w->len, w->level);
		futex_set(&w->done, seen);
	}
	futex_set(&w->exited, 1);
	for (;;)
		SYS(SYS_exit, 0, 0, 0, 0, 0, 0);
}

/* Starts the worker (threads stopped): false if there is none. */
static bool zworker_start(struct img_zstd *z, int64_t until)
{
	struct img_zworker *w = z->worker;

	if (!w || z->worker_running)
		return z->worker_running && !w->gone;   /* (killed: one thread from then on) */
	w->seq = w->done = w->quit = w->exited = 0;
	w->gone = false;
	w->until = until;
	uint64_t *sp = (uint64_t *)(((uintptr_t)w->stack + w->stack_size) & ~(uintptr_t)15);
	*--sp = (uint64_t)(uintptr_t)w;
	*--sp = (uint64_t)(uintptr_t)zworker_main;
	long pid = crac__img_helper_clone(CLONE_VM | CLONE_FILES | 0x00800000 /* CLONE_UNTRACED */, sp);
	w->pid = pid;
	z->worker_running = pid > 0;
	return z->worker_running;
}

static void zworker_stop(struct img_zstd *z)
{
	struct img_zworker *w = z->worker;

	if (!z->worker_running)
		return;
	futex_set(&w->quit, 1);
	SYS(SYS_futex, &w->seq, FUTEX_WAKE, 1, 0, 0, 0);
	helper_wait_ne(w->pid, &w->exited, 0, w->until, &w->gone);
	helper_reap(w->pid, w->gone);
	z->worker_running = false;
}
#endif

#define IMG_ZSTD_LEVEL CRAC_IMG_ZSTD_LEVEL
#define IMG_ZSTD_MAX_LEVEL CRAC_IMG_ZSTD_MAX_LEVEL
#define IMG_ZSTD_OUT (16ull << 20)   /* frames queued before they are written */

/* "1".."19" -> that level; "yes"/"on" -> the default; else 0 */
static int level_of(const char *v)
{
	if (!v || !*v)
		return 0;
	if (!strcmp(v, "yes") || !strcmp(v, "on"))
		return IMG_ZSTD_LEVEL;
	char *end;
	long l = strtol(v, &end, 10);
	return *end || l < 1 || l > IMG_ZSTD_MAX_LEVEL ? -1 : (int)l;
}

int img_compress_prepare(struct img_capture *c, const struct crac_round *r)
{
	struct img_zstd *z = &c->z;
	const char *env = getenv("CRAC_IMAGE_COMPRESS");
	int level = 0;

	if (r->requester && r->requester->compress) {
		level = r->requester->compress;
		z->why = "--compress";
	} else if (env && *env && strcmp(env, "0")) {
		level = level_of(env);
		z->why = "CRAC_IMAGE_COMPRESS";
		if (level < 0)
			return img_fail(&c->err, -EINVAL, "CRAC_IMAGE_COMPRESS=%s: not a zstd level (1-%d, or yes)",
					env, IMG_ZSTD_MAX_LEVEL);
	} else if (r->opts.flags & CRAC_COMPRESS) {
		level = IMG_ZSTD_LEVEL;
		z->why = "CRAC_COMPRESS";
	}
	if (!level)
		return 0;
#if CRAC_HAVE_ZSTD
	/* A context sized for chunks (at most CRAC_IMG_CHUNK_MAX), in the
	 * arena: while the threads are stopped nothing may be allocated
	 * (image/compress.c). */
	uint64_t csize = crac_img_zstd_cctx_size(level);
	void *mem = img_arena_alloc(&c->arena, csize);
	uint64_t dsize = crac_img_zstd_dctx_size();
	void *dmem = img_arena_alloc(&c->arena, dsize + 64);
	char *out = img_arena_alloc(&c->arena, IMG_ZSTD_OUT + P);
	char *zbuf = img_arena_alloc(&c->arena, CRAC_IMG_CHUNK_MAX);
	if (!mem || !dmem || !out || !zbuf)
		return img_fail(&c->err, -ENOMEM, "engine arena exhausted (zstd level %d)", level);
	z->cctx = crac_img_zstd_cctx(mem, csize, level);
	z->dctx = crac_img_zstd_dctx((void *)(((uintptr_t)dmem + 63) & ~(uintptr_t)63), dsize);
	if (!z->cctx || !z->dctx)
		return img_fail(&c->err, -ENOMEM, "cannot make a zstd context (level %d)", level);
	z->out = (char *)(((uintptr_t)out + P - 1) & ~(uintptr_t)(P - 1));
	z->cap = IMG_ZSTD_OUT;
	/* CRAC_IMAGE_COMPRESS_THREADS=2: the second CPU's worker, with a
	 * context, an output and a stack of its own. Not the default: on this
	 * (loaded, 2-CPU) VM the hand-over per chunk cost more than the second
	 * CPU gave (256 MiB half-zero text heap: 1.26-1.46 s with it, 0.73-1.60 s
	 * without; bench/checkpoint.sh measures both). */
	const char *th = getenv("CRAC_IMAGE_COMPRESS_THREADS");
	cpu_set_t cpus;
	if (th && !strcmp(th, "2") && sched_getaffinity(0, sizeof(cpus), &cpus) == 0 && CPU_COUNT(&cpus) > 1) {
		struct img_zworker *w = img_arena_alloc(&c->arena, sizeof(*w));
		void *wmem = img_arena_alloc(&c->arena, csize);
		size_t wcap = ZSTD_COMPRESSBOUND(CRAC_IMG_CHUNK_MAX / 2) + P;
		char *wout = img_arena_alloc(&c->arena, wcap);
		char *stack = img_arena_alloc(&c->arena, IMG_ZWORKER_STACK);
		if (w && wmem && wout && stack &&
		    (w->cctx = crac_img_zstd_cctx(wmem, csize, level))) {
			w->out = wout;
			w->cap = wcap;
			w->level = level;
			w->stack = stack;
			w->stack_size = IMG_ZWORKER_STACK;
			z->worker = w;
		}
	}
	z->zbuf = zbuf;
	z->level = level;
	/* One frame now, threads running: whatever the compressor touches
	 * first (its tables, the dynamic linker binding memcpy/memset for
	 * it) is done before any page is looked at (see img_write_begin). */
	size_t n = ZSTD_compressCCtx(z->cctx, z->out, z->cap, zbuf, 65536, level);
	if (ZSTD_isError(n))
		return img_fail(&c->err, -EIO, "zstd (level %d): %s", level, ZSTD_getErrorName(n));
	(void)ZSTD_decompressDCtx(z->dctx, zbuf, 65536, z->out, n);
	return 0;
#else
	return img_fail(&c->err, -ENOTSUP, "%s: this build of crac has no zstd (built without libzstd-dev): "
			"images cannot be compressed", z->why);
#endif
}

#if CRAC_HAVE_ZSTD
/* Room for `bound` bytes in the frame buffer (the queue may still read
 * earlier frames: then they are written first), or a negative errno. */
static int64_t frame_room(struct img_capture *c, uint64_t bound)
{
	struct img_zstd *z = &c->z;
	int rc;

	if (z->cap - z->used < bound) {
		if ((rc = img_write_sync(c)) < 0)
			return rc;
		z->used = 0;
	}
	return 0;
}
#endif

int64_t img_write_copy(struct img_capture *c, struct crac_img_chunk *k, const void *src)
{
#if CRAC_HAVE_ZSTD
	struct img_zstd *z = &c->z;
	int64_t rc = frame_room(c, crac_img_zstd_bound(k->len));
	if (rc < 0)
		return rc;
	char *out = z->out + z->used;
	img_copy_raw(out, src, k->len);
	/* the crc of the copy, the bytes written: frame_room may have written
	 * the queue (system calls, our own data) since the caller took it */
	k->crc = crac_img_crc32c(0, out, k->len);
	if ((rc = img_write_queue(c, out, k->len)) < 0)
		return rc;
	z->used += k->len;
	z->in_bytes += k->len;
	z->out_bytes += k->len;
	return (int64_t)k->len;
#else
	(void)c, (void)k, (void)src;
	return 0;
#endif
}

int64_t img_write_compressed(struct img_capture *c, struct crac_img_chunk *k, const void *src)
{
#if CRAC_HAVE_ZSTD
	struct img_zstd *z = &c->z;
	uint64_t bound = crac_img_zstd_bound(k->len);   /* room for two frames */
	int64_t rc = frame_room(c, bound);

	if (rc < 0)
		return rc;
	char *out = z->out + z->used;
	/* raw system calls and our own code only: the compressor reads the
	 * program's pages (not sanitizer-instrumented: libzstd) */
	size_t n;
	if (k->len >= IMG_ZSTD_SPLIT_MIN && zworker_start(z, worker_until(c))) {
		/* two frames at once: the second half by the worker */
		struct img_zworker *w = z->worker;
		size_t half = (k->len / 2) & ~(size_t)(P - 1);
		w->src = (const char *)src + half;
		w->len = k->len - half;
		uint32_t job = w->seq + 1;
		futex_set(&w->seq, job);
		n = crac_img_zstd_frame(z->cctx, z->level, out, bound, src, half);
		if (!helper_wait_ne(w->pid, &w->done, job - 1, w->until, &w->gone))
			return img_write_copy(c, k, src);   /* the worker was killed: stored as it is */
		if (!n || ZSTD_isError(w->result) || n + w->result > bound)
			return img_write_copy(c, k, src);   /* not 0: the flush would read src */
		memcpy(out + n, w->out, w->result);
		n += w->result;
		z->n_split++;
	} else {
		n = crac_img_zstd_frame(z->cctx, z->level, out, bound, src, k->len);
	}
	/* padded, zlen set; 0: not a page saved, stored as it is */
	uint64_t padded = crac_img_chunk_pack(k, out, n);
	if (!padded)
		return img_write_copy(c, k, src);
	if ((rc = img_write_queue(c, out, padded)) < 0)
		return rc;
	z->used += padded;
	z->in_bytes += k->len;
	z->out_bytes += padded;
	z->n_frames++;
	return (int64_t)padded;
#else
	(void)c, (void)k, (void)src;
	return 0;
#endif
}
