/* SPDX-License-Identifier: MIT */
/*
 * image_engine.h - what the files of the image engine share.
 *
 *   image.c          the engine: configure, checkpoint top to bottom
 *   image_restore.c  the restored side (what runs after the loader jumped)
 *   image_ctx.c      save / resume a thread's callee-saved registers (asm),
 *                    and the clone that resumes a saved thread
 *   image_threads.c  stop every other thread in a signal handler, and
 *                    recreate them in the restored process
 *   image_ptrace.c   the ptrace helper for threads that block that signal
 *   image_capture.c  process state, /proc/self/maps, which pages to store,
 *                    the header
 *   image_write.c    moving page data into the pages file (O_DIRECT,
 *                    vmsplice + splice, or write)
 *   image_lazy.c     the restored process's lazy loader thread (userfaultfd)
 *
 * Rule while other threads are stopped: system calls only. No malloc, no
 * stdio, no locks: a stopped thread may hold them. Memory comes from the
 * engine's arena (mmap'd before the mappings are read, and left out of the
 * image); messages go to a fixed buffer and reach the report only after the
 * threads run again.
 */
#ifndef CRAC_IMAGE_ENGINE_H
#define CRAC_IMAGE_ENGINE_H

#include "core/internal.h"
#include "image/image.h"
#include "runtime/runtime.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/uio.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in ns (core/util.c's clock, for the engine's stats and deadlines) */
static inline int64_t img_mono_ns(void)
{
	return crac__now_ns(CLOCK_MONOTONIC);
}

/* ---- image_ctx.c ---------------------------------------------------------- */

/* Saves the callee-saved registers, stack and return address; returns 0.
 * Returns again, with 1, when some thread resumes the context. */
int crac__img_setctx(struct crac_img_ctx *c) __attribute__((returns_twice)) CRAC_HIDDEN;
/* Resumes a context saved by crac__img_setctx (fs base not touched). */
void crac__img_jumpctx(const struct crac_img_ctx *c, int val) __attribute__((noreturn)) CRAC_HIDDEN;
/* clone(2) whose child resumes `c` (returning 1 from crac__img_setctx) on
 * the saved stack. Returns the child's tid or a negative errno. */
long crac__img_clone(unsigned long flags, void *stack, int *ptid, int *ctid,
		     unsigned long tls, const struct crac_img_ctx *c) CRAC_HIDDEN;
/* Restored process, on the thread-group leader: clone(2) whose child
 * resumes `child` on its saved stack with fs base `tls`, while the leader
 * itself takes fs base `leader_fs` and resumes `leader` (uses no stack
 * after the system call). Returns only on failure (-errno). */
long crac__img_clone_leader(unsigned long flags, void *stack, int *ctid, unsigned long tls,
			    const struct crac_img_ctx *child, unsigned long leader_fs,
			    const struct crac_img_ctx *leader) CRAC_HIDDEN;
/* The same with clone3(2) (for set_tid). */
struct clone_args;
long crac__img_clone3(struct clone_args *args, unsigned long size, const struct crac_img_ctx *c) CRAC_HIDDEN;

/* ---- errors while threads are stopped ------------------------------------- */

struct img_err {
	int code;            /* negative errno; 0: no error yet */
	char msg[768];
};
/* Records the first error (vsnprintf into the fixed buffer: no malloc). */
int img_fail(struct img_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4))) CRAC_HIDDEN;

/* ---- arena ---------------------------------------------------------------- */

struct img_arena {
	char *base;
	size_t size, used;
};
int img_arena_init(struct img_arena *a, size_t size) CRAC_HIDDEN;
void *img_arena_alloc(struct img_arena *a, size_t n) CRAC_HIDDEN;   /* 16-aligned, zeroed */
void img_arena_free(struct img_arena *a) CRAC_HIDDEN;
/* An arena used before (up to `high` bytes) made as new: zeroed, used 0. */
void img_arena_reset(struct img_arena *a, uint64_t high) CRAC_HIDDEN;
/* n bytes from the arena, or, if they do not fit, a mapping of its own of
 * *mapped bytes (then 0 if from the arena) that the caller unmaps. */
void *img_scratch(struct img_arena *a, size_t n, size_t *mapped) CRAC_HIDDEN;

/* ---- a thread's state (image_threads.c) ------------------------------------ */

/*
 * Lives on the stopped thread's own stack (inside its signal handler frame),
 * so it is part of the image: the restored process finds it through the
 * list head, a global of libcrac.
 */
/* Attributes the kernel keeps per thread, given back by the restored side
 * (image_attrs.c). */
struct img_attrs {
	uint32_t personality;
	uint32_t seccomp;               /* PR_GET_SECCOMP: 2 if it runs under filters */
	int32_t subreaper, pdeathsig;
	uint32_t nnp;                   /* PR_GET_NO_NEW_PRIVS */
	uint32_t securebits;
	uint32_t have_caps;             /* capget worked: the sets below are known */
	uint64_t timerslack;            /* ns */
	uint64_t eff, prm, inh, bnd, amb;   /* capability sets, bit = capability */
};
/* Records the calling thread's attributes (async-signal-safe: raw calls). */
void img_attrs_capture(struct img_attrs *a) CRAC_HIDDEN;
/* The same at restore, for img_attrs_restore's `now`: the bounding set is
 * not read (img_attrs_restore asks only for what it may drop). */
void img_attrs_capture_now(struct img_attrs *a) CRAC_HIDDEN;
/* Forgets a parent-death signal that the supervisor gave (image_attrs.c). */
void img_attrs_drop_supervisor(struct img_attrs *a) CRAC_HIDDEN;
/* Gives them back to the calling thread, whose attributes are now's
 * (img_attrs_capture_now; what
 * already is as recorded costs no call); what cannot be given back is one
 * line each in problems[*n .. max-1] (problems NULL: not said). */
void img_attrs_restore(const struct img_attrs *a, const struct img_attrs *now, char (*problems)[256], int *n,
		       int max) CRAC_HIDDEN;
/* The same for a thread other than the checkpointing one (tid: its id in
 * the image, comm its name): its lines, "thread TID (NAME): ...", are
 * kept for img_attrs_thread_problems (threads run this concurrently). */
void img_attrs_restore_thread(const struct img_attrs *a, const struct img_attrs *now, int tid,
			      const char *comm) CRAC_HIDDEN;
/* The lines the threads left (at most IMG_ATTRS_THREAD_LINES; *more: how
 * many did not fit), once every thread did (img_threads_recreate). */
#define IMG_ATTRS_THREAD_LINES 8
int img_attrs_thread_problems(const char (**lines)[256], int *more) CRAC_HIDDEN;
/* The restored process's attributes as the loader left them, recorded
 * before any thread is cloned: every thread starts with them
 * (image_restore.c). */
extern struct img_attrs img_attrs_loader CRAC_HIDDEN;
/* The seccomp filters thread tid runs under (Seccomp_filters of
 * /proc/self/task/TID/status; 1 in filter mode where the kernel does not
 * count them; -1 if the file does not tell). */
int64_t img_attrs_seccomp_filters(int tid) CRAC_HIDDEN;

struct img_thread {
	struct crac_img_ctx ctx;        /* where it resumes: inside the handler */
	struct img_thread *next;
	int tid;                        /* at checkpoint */
	uint32_t gen;                   /* release generation it waits for */
	uint64_t tid_addr;              /* PR_GET_TID_ADDRESS (glibc: &pd->tid) */
	uint64_t robust_head, robust_len;
	uint64_t rseq;                  /* rseq area registered by glibc, 0: none */
	bool rseq_other;                /* an rseq area not glibc's is registered (refused) */
	uint64_t sigmask;               /* mask of the interrupted code */
	uint64_t sp, ip;                /* interrupted stack pointer / instruction */
	bool tid_cache;                 /* its tid was in its registers / top of stack */
	bool tid_cache_wait;            /* ... and it was in a futex wait (else in plain code) */
	bool sig_to_read;               /* its own queue holds signals to read (image_signals.c) */
	stack_t altstack;
	char comm[16];
	struct img_attrs attrs;         /* capabilities, no_new_privs, personality, ... */
};

/* Fills the per-thread kernel state of the calling thread. */
void img_thread_record(struct img_thread *t) CRAC_HIDDEN;
/* In a restored thread (new tid): points the kernel at the thread's tid
 * field, robust list and rseq area again, fixes the owner tid of robust
 * mutexes it holds, sets its name. */
void img_thread_reattach(const struct img_thread *t, bool checkpointer) CRAC_HIDDEN;

/* The signal used to stop threads. */
#define IMG_STOP_SIGNAL (SIGRTMAX - 1)

/* Stops every thread but the caller; returns their number or a negative
 * errno (e filled; every thread already stopped is released again). */
int img_threads_stop(struct img_arena *a, int64_t deadline_ns, struct img_err *e) CRAC_HIDDEN;
/* The stopped threads (valid until released). */
struct img_thread *img_threads_list(void) CRAC_HIDDEN;
/* Whether the main thread is one of the stopped threads (not the caller). */
bool img_threads_main_stopped(void) CRAC_HIDDEN;
/* After a release: waits (at most ns) until every thread left its stop
 * handler, where it gives back its pending signals. */
void img_threads_wait_out(int64_t ns) CRAC_HIDDEN;
/* Lets the stopped (or recreated) threads go on. */
void img_threads_release(void) CRAC_HIDDEN;
/* Restored process: recreates every recorded thread (but the one the
 * leader resumed, see below); they wait in their handler until
 * img_threads_release(). Returns the number or -errno; *cloned_ns: when
 * the last clone was made (before waiting for them, for --stats). */
int img_threads_recreate(struct img_err *e, int64_t *cloned_ns) CRAC_HIDDEN;
/* Restored process, first thing, on the thread-group leader running as the
 * checkpointing thread `self`: if that was not the original main thread, the
 * leader goes back to being the main thread (resumes its record) and a new
 * clone carries on as `self`. Returns 0 in that clone, 1 if nothing had to
 * change, or a negative errno (e filled; nothing changed). */
int img_threads_restore_leader(const struct img_thread *self, struct img_err *e) CRAC_HIDDEN;

/* Describes, one line each, the threads that block IMG_STOP_SIGNAL and how
 * they will be stopped (for `crac check`): "thread 1234 (name) blocks
 * SIGRTMAX-1 ...: it will be stopped with ptrace". Returns their number
 * (0: buf is ""), or a negative errno. Threads run meanwhile. */
int img_threads_stop_plan(char *buf, size_t len) CRAC_HIDDEN;

/* ---- threads that block the stop signal (image_ptrace.c) ------------------- */

struct img_unblock {
	int tid;
	int err;                        /* 0: mask valid; -ESRCH: it exited; else failed */
	const char *step;               /* what failed */
	uint64_t mask;                  /* its signal mask before (kernel layout) */
	_Atomic int done;               /* the helper is through with it */
};
/* Bytes of arena memory img_ptrace_unblock needs (the helper's stack). */
size_t img_ptrace_area_size(void) CRAC_HIDDEN;
/* A ptrace helper process PTRACE_SEIZEs threads u[0..n-1].tid (nothing
 * changes yet). Returns 0, or a negative errno (e filled, naming the thread
 * and why ptrace is refused; the helper is gone, nothing changed). */
int img_ptrace_seize(void *area, struct img_unblock *u, int n, int64_t deadline_ns, struct img_err *e) CRAC_HIDDEN;
/* Then, once they were sent IMG_STOP_SIGNAL: the helper interrupts each,
 * records its mask (u->mask), removes the signal from it and lets it go, so
 * that it takes the signal at once. Returns 0 or a negative errno (e
 * filled: a thread did not stop by the deadline). */
int img_ptrace_unblock(void *area, int64_t deadline_ns, struct img_err *e) CRAC_HIDDEN;
/* Or, instead: kills the helper (the threads are left as they were). */
void img_ptrace_cancel(void *area) CRAC_HIDDEN;
/* Why ptrace would be refused to the helper (buf), or NULL. */
const char *img_ptrace_obstacle(char *buf, size_t len) CRAC_HIDDEN;
/* The name of thread tid of this process ("?" if unknown). */
void img_thread_comm(int tid, char *out, size_t len) CRAC_HIDDEN;

/* ---- the checkpointing thread and process state (image.c / capture) -------- */

/* A POSIX timer of the process (timer_create), as the restore creates it
 * again (image_capture.c records it, image_restore.c creates it). Any
 * number is carried: the first IMG_TIMERS_INLINE in libcrac's own data, the
 * table moved to an anonymous mapping of its own past that (capture_timers). */
#define IMG_TIMERS_INLINE 64
struct img_timer {
	int32_t id;                     /* the kernel's timer id, kept */
	int32_t clock;                  /* its ClockID */
	int32_t signo;                  /* sigev_signo */
	int32_t notify;                 /* SIGEV_SIGNAL or SIGEV_NONE */
	uint64_t value;                 /* sigev_value */
	struct itimerspec spec;         /* time left and interval (timer_gettime) */
};

/*
 * Everything the restored side needs about the checkpointing thread and the
 * process, kept in libcrac's own memory (so it is in the image).
 */
struct img_self {
	struct crac_img_resume resume;  /* its address goes into the header */
	struct img_thread thread;       /* the checkpointing thread */
	uint32_t umask;
	uint32_t xcomp_perm_amx;
	uint64_t rlimit[CRAC_IMG_NRLIMIT][2];
	struct crac_img_sigaction sig[CRAC_IMG_NSIG];
	char cwd[4096];
	uint32_t n_timers;
	struct img_timer *timers;       /* n_timers of them: program memory, in the image */
};
extern struct img_self crac__img_self CRAC_HIDDEN;

/* ---- pending signals (image_signals.c) ------------------------------------- */

/* A signal taken at the checkpoint: tid at the checkpoint of the thread it
 * was sent to, 0 for the process, -1 for an unused slot. */
struct img_pending {
	int tid;
	bool taken;      /* taken off its queue (given back in the original), else only read */
	siginfo_t info;
};

/* A stopped thread whose pending signals a ptrace helper reads
 * (PTRACE_PEEKSIGINFO): its own queue, and the process's if `shared`. */
struct img_peek {
	int tid;
	bool shared;
	int err;                        /* 0, or -errno at `step` (-ESRCH: it exited) */
	const char *step;
	int n_own, n_shared;            /* what its queues hold */
};
/* Appends the queues of t[0..n-1] to out[] (at most out_max stored), in
 * queue order, nothing dequeued; each t must wait in a system call with
 * every signal blocked (the caller too, if among them). Returns how many
 * signals the queues hold, or a negative errno (e names the thread and
 * why). `area`: img_ptrace_area_size() bytes. */
/* False when a seccomp filter of the process refuses ptrace to the helpers
 * (asked once by a helper for each number of filters; true without any). */
bool img_ptrace_allowed_by_seccomp(void) CRAC_HIDDEN;
int img_ptrace_peek(void *area, struct img_peek *t, int n, struct img_pending *out, int out_max, int64_t deadline_ns,
		    struct img_err *e) CRAC_HIDDEN;
#define IMG_SIG_MAX 1024        /* = CRAC_IMG_MAX_SIGNALS */

/* At each stop attempt, before any thread is signalled. */
void img_signals_reset(void) CRAC_HIDDEN;
/* The calling thread (tid: its own) takes its thread-directed pending
 * signals, and returns the real-time signal whose queue a full table cut
 * (0: none), for img_signals_give_back_own; the checkpointing thread
 * takes its own, then the process-wide ones, main_stopped saying whether
 * the main thread is a stopped one. */
int img_signals_take_own(int tid, bool *to_read) CRAC_HIDDEN;
int img_signals_take_checkpointer(struct img_arena *a, int tid, bool main_stopped, int64_t deadline_ns,
				  struct img_err *e) CRAC_HIDDEN;
/* Right after the stop: reads the pending signals with ptrace, where this
 * checkpoint does (0). -EAGAIN: ptrace was refused for a stopped thread
 * with signals of its own; from now on this process takes them (stop the
 * threads again). Else a negative errno, e says why. */
int img_signals_read(struct img_arena *a, int tid, int64_t deadline_ns, struct img_err *e) CRAC_HIDDEN;
/* More signals were pending than the table holds: their number, else 0. */
int img_signals_overflow(char *msg, size_t len) CRAC_HIDDEN;
/* Queue them again: a stopped (or restored) thread its own, under the tid
 * it had at the checkpoint; the main thread in its stop handler the
 * process-wide ones when it was stopped (restored: once the dispositions
 * are back, img_signals_state_ready); the checkpointing thread its own,
 * and the process-wide ones otherwise. */
void img_signals_give_back_own(int old_tid, int cut, bool restored) CRAC_HIDDEN;
void img_signals_give_back_main(bool restored) CRAC_HIDDEN;
void img_signals_give_back_checkpointer(int old_tid, bool restored) CRAC_HIDDEN;
void img_signals_state_ready(void) CRAC_HIDDEN;
/* The checkpointing thread puts SIGRTMAX-1's disposition back to `old`
 * (after SIG_IGN first, when discard_pending: the engine's stop signals
 * still pending go), keeping the program's own instances pending for it
 * and for the process, in order. Before the stopped threads are let go. */
void img_signals_put_back_stop(const struct sigaction *old, bool discard_pending) CRAC_HIDDEN;
/* For the header: how many were taken, and them (in order). */
uint32_t img_signals_count(void) CRAC_HIDDEN;
void img_signals_fill(struct crac_img_signal *out) CRAC_HIDDEN;
/* One report line for each signal that could not be queued again as it was. */
void img_signals_report(crac_report *rep) CRAC_HIDDEN;

/* ---- the restored side (image_restore.c) ---------------------------------- */

/* Runs in the restored process where the checkpoint call resumed; returns
 * CRAC_RESTORED (or exits with a message if the process is unusable). */
int img_restored(struct crac_round *r) CRAC_HIDDEN;

/* ---- incremental checkpoints (image_track.c, image_capture.c) ------------- */

/* PAGEMAP_SCAN page categories (linux/fs.h of Linux 6.7) */
#define IMG_PAGE_IS_WPALLOWED (1ull << 0)
#define IMG_PAGE_IS_WRITTEN (1ull << 1)
#define IMG_PAGE_IS_FILE (1ull << 2)
#define IMG_PAGE_IS_PRESENT (1ull << 3)
#define IMG_PAGE_IS_SWAPPED (1ull << 4)
#define IMG_PAGE_IS_PFNZERO (1ull << 5)

/* What tells an image file unchanged without reading it: its stat identity
 * (a write moves the ctime, a replacement is another inode). */
struct img_file_id {
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
};

/* The images below an incremental image, as checked once (image_track.c):
 * [0] its parent, [1] the parent's parent ... */
struct img_chain_ids {
	uint32_t n;
	struct {
		char path[4096];        /* as a restore opens it (crac_img_chain_open) */
		struct img_file_id dir, header, pages;
	} img[CRAC_IMG_MAX_CHAIN];
};

/* The process's write tracking (libcrac memory: part of every image). */
struct img_track {
	int uffd;                       /* userfaultfd in write-protect async mode, -1: none */
	int pid;                        /* the process that opened it */
	int stale_fd;                   /* restored process: the number it had before */
	bool armed;                     /* mappings registered and protected since `base` */
	char base[4096];                /* absolute path of the image the bits are relative to; "": none */
	uint32_t base_crc, base_depth;  /* its header crc and depth ... */
	uint64_t base_pages_size;       /* ... pages size and creation time */
	int64_t base_created_ns;
	/* The images below `base`, validated by this process when it wrote
	 * base (opened as a restore does, or found unchanged by their stat
	 * identity): the next checkpoint checks their identity only.
	 * chain_known false: open and validate them again. */
	bool chain_known;
	struct img_chain_ids chain;
};
extern struct img_track crac__img_track CRAC_HIDDEN;

/* Opens the tracking userfaultfd if this process has none (threads run).
 * 0, or a negative errno and why. */
int img_track_open(char *why, size_t len) CRAC_HIDDEN;
/* Registers and write-protects every private anonymous mapping but the
 * skipped ranges; buf (len bytes) holds /proc/self/maps meanwhile. System
 * calls only. 0 (armed), or a negative errno and why. */
int img_track_arm(const uint64_t (*skip)[2], int n_skip, char *buf, size_t len, char *why, size_t wlen) CRAC_HIDDEN;
/* Registers [s, e) (one whole mapping) for tracking: 0, or 1 if it cannot be. */
int img_track_register(uint64_t s, uint64_t e) CRAC_HIDDEN;
/* Registers [s, e) (one whole mapping) and protects its written pages:
 * 0, 1 if it cannot be tracked, or a negative errno. */
int img_track_mapping(int pagemap_fd, uint64_t s, uint64_t e) CRAC_HIDDEN;
/* Can mapping m be tracked? (private anonymous, anon/heap/stack, not a reservation) */
static inline bool img_track_eligible(const struct crac_img_map *m)
{
	return (m->kind == CRAC_MAP_ANON || m->kind == CRAC_MAP_HEAP || m->kind == CRAC_MAP_STACK) &&
	       !(m->flags & (CRAC_MAPF_SHARED | CRAC_MAPF_NORESERVE));
}
/* The restored process, before other threads run / once locks are safe. */
void img_track_restored(const struct crac_img_resume *res) CRAC_HIDDEN;
void img_track_restored_late(void) CRAC_HIDDEN;
/* Checkpoint, threads stopped, before the maps are read: a lazy loader
 * that tracked writes and serves on hands its mappings over (image_lazy.c). */
void img_track_lazy_handover(void) CRAC_HIDDEN;

/* An incremental checkpoint's view of its parent: for every address the
 * parent holds, the image and chunk holding its bytes (the parent's own
 * chunks at depth 1, its references one deeper), sorted by address. */
struct img_incr {
	bool on;                        /* references are written */
	/* The parent's view, in its header as read (arena, or a mapping of
	 * hmap_size bytes at hmap): its chunks (depth 1 here) and its
	 * references (one deeper here), each sorted by address, disjoint. */
	const struct crac_img_chunk *pchunks;
	const struct crac_img_ref *prefs;
	uint64_t n_pchunks, n_prefs, n_base;
	void *hmap;
	size_t hmap_size;
	char parent[4096];              /* as recorded in the header */
	uint32_t parent_crc, depth;     /* this image's depth: the parent's + 1 */
	uint64_t parent_pages_size;
	int64_t parent_created_ns;
	struct crac_img_ref *refs;      /* written by capture (an mmap left out of the image) */
	uint64_t n_refs, max_refs;
	size_t refs_area_size;
	uint64_t ref_bytes;
	bool reset;                     /* keep-running with tracking: protect what was captured */
	int64_t t_scan_ns;              /* time in PAGEMAP_SCAN, protecting included (CRAC_IMAGE_STATS) */
	struct img_chain_ids *chain;    /* the images below this one, as checked (arena) */
	const char *why_full;           /* asked for, but a full image: why (static or why_buf) */
	char why_buf[512];
};

/* Incremental checkpoints asked for? ($CRAC_IMAGE_INCREMENTAL=1) */
bool img_incr_wanted(const struct crac_round *r) CRAC_HIDDEN;
/* Threads running, before they stop: decides whether the image is
 * incremental, reads its parent (c->incr). Never fails. */
struct img_capture;
void img_incr_prepare(struct img_capture *c, const struct crac_round *r) CRAC_HIDDEN;
/* Are the images of ids (paths and stat identities) still the ones that
 * were checked? System calls only. */
bool img_chain_unchanged(const struct img_chain_ids *ids) CRAC_HIDDEN;
/* After the checkpoint (ok: the image is in place): the tracking base. */
void img_incr_done(struct img_capture *c, const struct crac_round *r, bool ok) CRAC_HIDDEN;

/* ---- capture (image_capture.c) -------------------------------------------- */

/* One mapping as read from /proc/self/maps, plus what capture decided. */
struct img_map {
	struct crac_img_map m;          /* as written to the header */
	const char *name;               /* the path / [name] column (arena) */
	uint64_t dev, ino;              /* from /proc/self/maps */
	bool whole;                     /* every page stored (no file to come back from) */
};

#include "objects/objects.h"
#define IMG_MAX_SKIP_FDS 64

/* Writeback of the pages file is started every this many bytes. */
#define IMG_WRITEBACK_STEP (32ull << 20)
#define IMG_WRITEBACK_STEP_INCR (1ull << 20)   /* an incremental image's (a few MiB) */

/* How page data reaches the pages file (image_write.c). */
enum img_write_mode {
	IMG_WRITE_DIRECT = 1,   /* O_DIRECT writes straight from the program's pages */
	IMG_WRITE_SPLICE,       /* vmsplice into a pipe, splice into the file */
	IMG_WRITE_WRITE,        /* write(2) from the program's pages */
};
#define IMG_WRITE_IOV 256       /* pending pieces of one batch */
#define IMG_WRITE_BATCH (8ull << 20)   /* bytes queued before they are written */

/* An O_DIRECT write in flight (Linux AIO): its own copy of the iovecs. */
struct img_write_slot {
	bool busy;
	int n_iov;
	uint64_t off, len;
	struct iovec iov[IMG_WRITE_IOV];
};

struct img_writer {
	enum img_write_mode mode;
	unsigned long aio;              /* aio_context_t for O_DIRECT, 0: synchronous */
	bool used_aio;                  /* some batch went through AIO (for CRAC_IMAGE_STATS) */
	int next_slot;
	struct img_write_slot slot[2];  /* two batches in flight: the crc of the next meanwhile */
	struct img_dworker *dw;         /* O_DIRECT writer on the other CPU (arena), or NULL */
	uint32_t dw_posted, dw_taken;   /* batches handed to it, and whose result was taken */
	bool dw_refused;                /* it met O_DIRECT refusing a write (alignment) */
	bool used_dw;                   /* some batch went through it (for CRAC_IMAGE_STATS) */
	int dfd;                        /* the pages file opened O_DIRECT, or -1 */
	int pipe[2];                    /* splice mode, else -1 */
	size_t pipe_cap;
	uint64_t at;                    /* file offset of the first pending byte */
	uint64_t pending;               /* bytes queued in iov */
	int n_iov;
	struct iovec iov[IMG_WRITE_IOV];
	uint64_t crc_from;              /* first chunk whose crc is taken at the flush */
	uint64_t zero_pages;            /* all-zero anonymous pages left out */
	bool keep_zero;                 /* CRAC_IMAGE_KEEP_ZERO: store them (benchmarks) */
	const char *why;                /* why the mode was chosen (static text) */
};

/*
 * `crac checkpoint --compress` (image_write.c): each chunk becomes one zstd
 * frame when that saves at least a page (struct crac_img_chunk.zlen). The
 * context and the buffers are made in the arena before the threads stop.
 */
struct img_zstd {
	int level;                      /* 0: off */
	void *cctx;                     /* ZSTD_initStaticCCtx in the arena */
	char *out;                      /* frames queued for the pages file (arena, page-aligned) */
	uint64_t used, cap;
	char *zbuf;                     /* read-back: one frame ... */
	void *dctx;                     /* ... and a decompression context (arena) */
	uint64_t in_bytes, out_bytes;   /* memory of the compressed chunks, and the bytes written for them */
	uint64_t n_frames;
	const char *why;                /* how it was asked for (static text) */
	void *worker;                   /* the second CPU's compressor (image_write.c), NULL: none */
	bool worker_running;
	uint64_t n_split;               /* chunks compressed in two halves at once */
};

struct img_capture {
	struct img_arena arena;
	struct img_err err;
	const char *dir;                /* final image directory */
	char tmp[4096];                 /* DIR.tmp-PID-START-XXXXXX */
	int dir_fd, pages_fd, pagemap_fd;
	int header_fd;                  /* until its fsync is done (img_capture_synced) */
	/* ranges never written (the arena, the chunk table) */
	uint64_t skip[4][2];
	int n_skip;

	struct img_map *maps;
	uint32_t n_maps;
	struct crac_img_file *files;
	const char **file_paths;
	uint32_t n_files;
	struct crac_img_chunk *chunks;
	uint64_t max_chunks, n_chunks;
	char *chunk_area;
	size_t chunk_area_size;
	uint64_t pages_size;
	uint64_t kicked;                /* pages file bytes whose writeback was started */
	int n_threads;

	struct crac_img_range *secrets; /* crac_secret_region()s: written as zeros */
	uint32_t n_secrets, max_secrets;

	struct crac_img_header hdr;     /* filled progressively */
	bool use_scan;                  /* PAGEMAP_SCAN works here */
	uint64_t noreserve_above;       /* anon mappings larger: MAP_NORESERVE (RAM + swap) */
	char *bounce;                   /* copy of the chunk holding our stack (page-aligned) */
	void *scan_vec;                 /* PAGEMAP_SCAN / pagemap scratch (arena) */
	struct img_writer w;            /* page data on its way to the pages file */
	struct img_zstd z;              /* --compress */
	struct crac_round *round;       /* for img_progress */
	struct img_incr incr;           /* incremental checkpoint: the parent, the references */
	uint32_t img_flags;             /* header img_flags (CRAC_IMGF_TRACK) */
	uint32_t header_crc;            /* of the header written */
	char *header_buf;               /* where it was built (arena), and its size: */
	uint64_t header_len;            /* the read-back reads into it again */
	/* fsync on the other core (image_capture.c): the pages file's data
	 * goes to the disk while the scan goes on */
	struct img_syncer *syncer;      /* arena; NULL: fsync in this thread */
	uint64_t sync_at;               /* pages file bytes covered by the last early fdatasync */
	int sync_err;                   /* first error one returned (-errno) */
	const char *sync_what;          /* and of which file */
	bool sync_data_only;            /* -ETIMEDOUT: an fdatasync (early), else an fsync (final) */
	int64_t sync_waited_ms;         /* -ETIMEDOUT: how long it was waited for */
	int64_t t_stopped, t_pages, t_synced;   /* CLOCK_MONOTONIC, for CRAC_IMAGE_STATS */
	int64_t t_begin, t_released, t_verified, t_fsynced, t_done;   /* the same, outside the stop */
	int64_t t_incr;                 /* ns reading the parent image (img_incr_prepare) */
	int64_t t_write_ns;             /* in the page writer's system calls (img_write_flush) */
	/* descriptors (image_fds.c) */
	struct crac_obj_capture objs;
	int skip_fds[IMG_MAX_SKIP_FDS]; /* the engine's own and crac's internal ones */
};

/* The program's descriptors, as the round's policies decided (image_fds.c):
 * after the pages, before the header. */
int img_capture_fds(struct img_capture *c, const struct crac_round *r) CRAC_HIDDEN;
/* For img_capture_header: bytes of strings the descriptors add; their
 * arrays placed from header offset off (returns the next offset); the
 * arrays and strings written into the header buffer. */
uint64_t img_fds_strings(const struct img_capture *c) CRAC_HIDDEN;
uint64_t img_fds_layout(struct img_capture *c, uint64_t off) CRAC_HIDDEN;
void img_fds_fill(struct img_capture *c, char *buf, char *tab, uint64_t *used) CRAC_HIDDEN;
/* Appends s to a string table; returns its offset. */
uint32_t img_strtab_add(char *tab, uint64_t *used, const char *s) CRAC_HIDDEN;

/* Copies the secret-region registry (before threads stop: it takes a lock). */
int img_capture_secrets(struct img_capture *c) CRAC_HIDDEN;
/* Creates DIR.tmp-PID-START-XXXXXX and the pages file (before threads stop). */
int img_capture_open(struct img_capture *c, const char *dir) CRAC_HIDDEN;
/* Process-wide state: signals, cwd, umask, rlimits, mm fields, auxv, CPU,
 * kernel, the checkpointing thread. */
int img_capture_process(struct img_capture *c) CRAC_HIDDEN;
/* Reads /proc/self/maps, classifies mappings, checks mapped files. */
int img_capture_maps(struct img_capture *c) CRAC_HIDDEN;

/* One line of /proc/self/maps (image_capture.c; also image_track.c). */
struct img_maps_line {
	unsigned long long start, end, off, ino;
	unsigned maj, min;
	char perms[5];
	const char *name;        /* in the line: path, [heap], ..., or "" */
};
/* Cuts the next line off *text in place and returns it; NULL at the end. */
char *img_maps_next(char **text) CRAC_HIDDEN;
/* Fills m from line; false if the line is not one of /proc/self/maps. */
bool img_maps_parse(const char *line, struct img_maps_line *m) CRAC_HIDDEN;
/* Writes the page data of every mapping to the pages file. */
int img_capture_pages(struct img_capture *c) CRAC_HIDDEN;
/* ---- the page writer (image_write.c) ---- */
/* Chooses how page data is written (threads stopped; fds opened here are
 * closed by img_write_end, before the program's descriptors are listed). */
int img_write_begin(struct img_capture *c) CRAC_HIDDEN;
/* Queues len bytes at src for the pages file at offset c->w.at +
 * c->w.pending. The bytes must not change until the queue is flushed: the
 * O_DIRECT and splice modes read them after this returns. */
int img_write_queue(struct img_capture *c, const void *src, uint64_t len) CRAC_HIDDEN;
/* Writes everything queued (an O_DIRECT batch may still be in flight). */
int img_write_flush(struct img_capture *c) CRAC_HIDDEN;
/* The same, and waits until everything is written: after it returns no
 * page of the program is referenced by the kernel for us. */
int img_write_sync(struct img_capture *c) CRAC_HIDDEN;
/* Threads running: whether chunks are compressed, and at which level
 * (CRAC_COMPRESS, $CRAC_IMAGE_COMPRESS, `crac checkpoint --compress[=N]`);
 * makes the context. 0, or a negative errno (c->err says why). */
int img_compress_prepare(struct img_capture *c, const struct crac_round *r) CRAC_HIDDEN;
/* Chunk k, its bytes at src: queued as one zstd frame (k->zlen set), if
 * that saves at least a page, else as it is (img_write_copy). The bytes
 * queued (a page multiple), 0 in a build without zstd, or a negative errno. */
int64_t img_write_compressed(struct img_capture *c, struct crac_img_chunk *k, const void *src) CRAC_HIDDEN;
/* Chunk k of a compressed image stored as it is: its bytes copied into the
 * frame buffer now and queued from there, k->crc set again from the copy.
 * Its crc then matches what the flush writes even if this thread writes to
 * those pages meanwhile (libcrac's own data next to the resume block, say;
 * the flush takes the crc only of chunks queued from the program's pages).
 * The bytes queued (k->len), 0 in a build without zstd, or a negative errno. */
int64_t img_write_copy(struct img_capture *c, struct crac_img_chunk *k, const void *src) CRAC_HIDDEN;
/* memcpy that neither ASan nor the compiler turns into an intercepted call
 * (the program's memory: see image_capture.c) */
CRAC_IMG_NOSAN static inline void img_copy_raw(void *dst, const void *src, size_t len)
{
	__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(len) : : "memory");
}
/* Flushes and closes the writer's descriptors (safe to call twice). */
int img_write_end(struct img_capture *c) CRAC_HIDDEN;
/* After each piece of page data (image.c): progress for the requester. */
void img_progress(struct img_capture *c) CRAC_HIDDEN;
/* Is the page at p all zeros? (not sanitizer-instrumented: program memory) */
bool img_page_is_zero(const void *p) CRAC_HIDDEN;

/* Writes the header; fsyncs both files and the directory, or starts that
 * on the other core (then img_capture_synced waits for it). */
int img_capture_header(struct img_capture *c) CRAC_HIDDEN;
/* Waits for the fsyncs img_capture_header started: 0, or a negative errno
 * (c->err says which file). Threads may run. */
int img_capture_synced(struct img_capture *c) CRAC_HIDDEN;
/* Closes the files; on failure removes the temporary directory. */
void img_capture_close(struct img_capture *c, bool failed) CRAC_HIDDEN;

/* ---- stdio (image_stdio.c) ------------------------------------------------ */

/* With every other thread stopped: writes out every stdio stream's pending
 * output without waiting for any lock. -EAGAIN with *busy_fd set if a
 * stream with pending output is locked (a stopped thread is inside a stdio
 * call on it: release, wait, stop again); *busy is that FILE. */
int img_stdio_flush(struct img_err *e, int *busy_fd, void **busy) CRAC_HIDDEN;
/* fp if it is libc's stdin, stdout or stderr object (never freed), else NULL. */
void *img_stdio_static(void *fp) CRAC_HIDDEN;
/* ftrylockfile / funlockfile. */
int img_stdio_trylock(void *fp) CRAC_HIDDEN;
void img_stdio_unlock(void *fp) CRAC_HIDDEN;
/* " (stdout)" for fd 1 and so on; "" for other fds. */
const char *img_stdio_fd_name(int fd) CRAC_HIDDEN;

/* ---- lazy restore (image_lazy.c) ------------------------------------------ */

/* The lazy loader thread, started by the restore loader (never returns). */
void crac__img_lazy_main(struct crac_img_lazy *a) __attribute__((noreturn)) CRAC_HIDDEN;
/* Restored side, out of the loader: unmaps it, or leaves that to the lazy
 * thread if it is not out yet (no wait). */
void crac__img_loader_leave(void) CRAC_HIDDEN;
/* Restored side, at its end: background loading may start. */
void crac__img_lazy_go(void) CRAC_HIDDEN;
/* The tid of a lazy loader done loading that serves on because it tracks
 * writes (CRAC_LAZY_TRACK), else 0: the thread stopping leaves it alone. */
int crac__img_lazy_serving(void) CRAC_HIDDEN;
bool crac__img_lazy_settle(void) CRAC_HIDDEN;
/* Makes that loader close its userfaultfd and exit; waits for it. */
void crac__img_lazy_leave(void) CRAC_HIDDEN;
/* Before a checkpoint: registers the fork handler that waits for lazy
 * loading (it stays registered in the restored process). */
void crac__img_lazy_prepare(void) CRAC_HIDDEN;

/* strerror without locale (no locks: usable while threads are stopped). */
const char *img_strerror(int e) CRAC_HIDDEN;

/* The application's disposition of IMG_STOP_SIGNAL before the engine took it
 * (kernel layout), and the same for sigaction(). */
struct k_sigaction { uint64_t handler, flags, restorer, mask; };
const struct k_sigaction *img_stop_old_kact(void) CRAC_HIDDEN;
const struct sigaction *img_stop_old_action(void) CRAC_HIDDEN;

/* Raw system call helpers used by several files. */
int img_gettid(void) CRAC_HIDDEN;
uint64_t img_get_fs(void) CRAC_HIDDEN;

#endif
