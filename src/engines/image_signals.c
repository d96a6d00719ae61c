/* SPDX-License-Identifier: MIT */
/*
 * image_signals.c - signals pending at the checkpoint (blocked, or not yet
 * taken) survive it: in the original process and in every restored one.
 *
 * Reading. Nothing is taken off a queue where ptrace is allowed: each
 * stopped thread notes in its stop handler whether its own queue holds
 * anything (rt_sigpending, then its SigPnd); the checkpointing thread then
 * has a ptrace helper (image_ptrace.c) seize those threads and itself
 * (waiting with every signal blocked), interrupt each in the system call
 * it waits in, and read its queue, and the process's, with
 * PTRACE_PEEKSIGINFO into a table in libcrac's memory, which the image
 * holds: every instance, in queue order, with its siginfo, nothing
 * dequeued. So the original process (a keep-running checkpoint, a failed
 * one) keeps its queues as they were, and what arrives meanwhile is queued
 * behind, as the kernel queues it. A checkpoint with nothing pending
 * starts no helper. Left alone: SIGKILL and SIGSTOP (never pending in a
 * running thread) and glibc's internal 32 and 33.
 *
 * Taking (where ptrace is refused: img_ptrace_obstacle, a seccomp filter
 * the helper would inherit, a process traced already (strace, gdb), a peek
 * that failed once: image.c then stops the threads once more;
 * CRAC_TEST_SIGNALS_TAKE in tests). With the threads stopped, every pending signal is dequeued
 * with rt_sigtimedwait (zero timeout: async-signal-safe, and it takes
 * blocked signals) together with its siginfo, into the table:
 *   - each stopped thread takes its own thread-directed ones in its stop
 *     handler (image_threads.c), before it counts as stopped; the
 *     checkpointing thread takes its own in img_capture_process;
 *   - then the checkpointing thread takes the process-wide ones.
 * rt_sigtimedwait dequeues from the calling thread's own queue before the
 * process's, so a thread asks for a signal only while its own SigPnd
 * (/proc/self/task/TID/status) has it, and the process-wide ones are taken
 * after every thread emptied its own queue: nothing is taken under the
 * wrong owner. Every queued instance of a real-time signal is taken, in
 * order; a standard signal is pending once at most. rt_sigtimedwait cannot
 * take SIGKILL and SIGSTOP.
 *
 * The engine's stop signal (SIGRTMAX-1) is the program's too when it
 * blocks it and reads it with sigwaitinfo or a signalfd: its instances
 * are carried, the engine's own (SI_TKILL from this process) dropped; the
 * stopped threads take theirs even where the others are only read (the
 * SIG_IGN that discards the engine's after a failed stop, or the
 * program's, would discard them); one of the program's that the
 * ptrace helper's unblocking delivered to the stop handler was queued
 * again there first (image_threads.c). The engine puts the signal's
 * disposition back before it lets the threads go (they give back theirs
 * after), keeping the program's instances pending for the process and the
 * checkpointing thread (a SIG_IGN discards what is pending:
 * img_signals_put_back_stop).
 *
 * Giving back (a restored process: all of the table; the original: what
 * was taken). Each signal is queued again, with the siginfo it had, before
 * the thread it belongs to runs program code with its own mask:
 *   - thread-directed: by that thread, to itself (rt_tgsigqueueinfo: Linux
 *     accepts any si_code, SI_USER or SI_TKILL included, when a thread
 *     sends to itself), still in its stop handler where every signal is
 *     blocked; in a restored process under its new tid;
 *   - process-wide: by the thread-group leader (rt_sigqueueinfo accepts any
 *     si_code from the thread whose tid is the pid), which is the
 *     checkpointing thread or, when that was not the main thread, the main
 *     thread in its stop handler. In a restored process the leader waits
 *     until the signal dispositions are back (img_signals_state_ready), so
 *     that setting one to SIG_IGN does not discard what was queued.
 * In the original process that happens when the threads are let go (a
 * keep-running checkpoint, and one that failed): the checkpoint eats no
 * signal. If the original main thread had exited, no thread may send
 * SI_USER or SI_TKILL to the process: such a signal would go back with
 * kill(2) (its sender then this process) and a report line say so (today
 * the capture refuses such a process earlier: /proc/self/pagemap is the
 * exited leader's).
 *
 * A POSIX timer's expiry (SI_TIMER) goes back as its siginfo (timer id,
 * overrun count, value): the program takes the same siginfo. The timer
 * itself no longer counts it as pending, so an expiry before the program
 * takes it is queued as a second signal where the kernel would have raised
 * the overrun count instead.
 *
 * A signal that cannot be queued again (a real-time one beyond the
 * restoring user's RLIMIT_SIGPENDING) is named in a report line, never
 * dropped silently. More than IMG_SIG_MAX pending signals fail the
 * checkpoint, naming how many and the queue that holds the most (when
 * they were taken: at least how many the table held of it); every one
 * taken is given back, and a real-time signal whose queue the full table
 * cut keeps its order (see drain below), as does one that was queued again
 * while the checkpoint ran. When they were taken, what arrives during the
 * give-back itself (microseconds: one system call a signal) may still land
 * among the table's: no system call queues a whole list atomically.
 */
#include "engines/image_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Part of the image: a restored process gives back its own copy. */
static struct img_pending pend[IMG_SIG_MAX];
static _Atomic int n_pend;          /* slots claimed (more than IMG_SIG_MAX: overflow) */
static _Atomic bool main_in_handler;   /* the main thread was stopped (not the checkpointer) */
/* The table filled up while the checkpointing thread took this real-time
 * signal of its own, or of the process: its later instances are still
 * queued (see cut below). 0: none. */
static _Atomic int self_cut, shared_cut;
static _Atomic uint32_t state_ready;   /* restored: dispositions are back */

/* This checkpoint reads the queues with a ptrace helper instead of taking
 * the signals off them (see "Reading" above); a stopped thread whose own
 * queue holds something to read says so in its record (sig_to_read). */
static bool peek_mode;
static bool peek_refused;   /* the helper failed once: this process takes them from then on */
static bool peek_done;      /* this checkpoint read them (img_signals_read) */
/* A full table: whose queue filled it (a tid, 0: the process; -1: none)
 * and how many it holds (-1: not known, the rest was not taken). */
static _Atomic int full_owner = -1;
static int full_count = -1, full_total = -1;

/* What could not be given back as it was (reported by the checkpointing
 * thread once the threads ran). */
#define IMG_SIG_LOST_MAX 8
static struct { int sig, tid, err; } lost[IMG_SIG_LOST_MAX];
static _Atomic int n_lost;

static bool left_alone(int sig)
{
	return sig == SIGKILL || sig == SIGSTOP || sig == 32 || sig == 33;
}
#define LEFT_ALONE_MASK (1ull << (SIGKILL - 1) | 1ull << (SIGSTOP - 1) | 1ull << 31 | 1ull << 32)

/* The engine's own stop signal (image_threads.c: tgkill from this process,
 * SI_TKILL), left from a stop attempt: not the program's, never carried.
 * The program's own SIGRTMAX-1 (sigqueue, kill, a timer: read through
 * sigwaitinfo or a signalfd while blocked) is carried like any other. */
static bool engine_stop(const siginfo_t *si)
{
	return si->si_signo == IMG_STOP_SIGNAL && si->si_code == SI_TKILL && si->si_pid == getpid();
}

/*
 * The pending mask of thread tid ("SigPnd:") or of the process ("ShdPnd:",
 * tid 0) from /proc: raw system calls and no libc formatting (it runs in a
 * signal handler). 0 when it cannot be read.
 */
static uint64_t pending_mask(int tid, const char *field)
{
	char path[64] = "/proc/self/task/", buf[4096];
	size_t n = strlen(path);

	if (tid > 0) {
		char digits[16];
		int k = 0;
		for (unsigned v = (unsigned)tid; v; v /= 10)
			digits[k++] = (char)('0' + v % 10);
		while (k)
			path[n++] = digits[--k];
		memcpy(path + n, "/status", 8);
	} else {
		memcpy(path, "/proc/self/status", 18);
	}
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	long got = 0, r;
	while (got < (long)sizeof(buf) - 1 && (r = syscall(SYS_read, fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += r;
	syscall(SYS_close, fd);
	buf[got > 0 ? got : 0] = 0;
	const char *p = strstr(buf, field);
	if (!p)
		return 0;
	p += strlen(field);
	while (*p == ' ' || *p == '\t')
		p++;
	uint64_t mask = 0;
	for (; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'); p++)
		mask = mask << 4 | (uint64_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
	return mask;
}

/* A slot of the table, or NULL (full: the checkpoint fails). */
static struct img_pending *claim(int owner)
{
	int i = atomic_fetch_add(&n_pend, 1);

	if (i >= IMG_SIG_MAX) {
		int none = -1;
		atomic_compare_exchange_strong(&full_owner, &none, owner);
		return NULL;
	}
	pend[i].tid = -1;   /* empty until filled */
	pend[i].taken = true;
	return &pend[i];
}

/* Dequeues one pending `sig` of the caller (its own queue first). */
static bool take_one(int sig, siginfo_t *si)
{
	uint64_t set = 1ull << (sig - 1);
	struct timespec zero = { 0, 0 };

	return syscall(SYS_rt_sigtimedwait, &set, si, &zero, 8) == sig;
}

/* Is the process traced (strace, gdb: "TracerPid:" of its status)? Then
 * the helper cannot seize its threads. */
static bool traced(void)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	const char *p = strstr(buf, "TracerPid:");
	return p && atoi(p + 10) != 0;
}

void img_signals_reset(void)
{
	char why[256];

	/* (CRAC_TEST_SIGNALS_TAKE: tests, the way taken where ptrace is
	 * refused) */
	peek_mode = !peek_refused && !getenv("CRAC_TEST_SIGNALS_TAKE") && !img_ptrace_obstacle(why, sizeof(why)) &&
		    !traced() && img_ptrace_allowed_by_seccomp();
	atomic_store(&full_owner, -1);
	full_count = full_total = -1;
	peek_done = false;
	atomic_store(&self_cut, 0);
	atomic_store(&shared_cut, 0);
	atomic_store(&n_pend, 0);
	atomic_store(&n_lost, 0);
	atomic_store(&main_in_handler, false);
	atomic_store(&state_ready, 0);
}

/* Whether anything is pending for the caller or the process, among the
 * signals it blocks (all of them, in the stop handler): one system call,
 * so that a thread with nothing pending, the usual case, reads no /proc
 * file while it stops. */
static bool any_pending(void)
{
	uint64_t set = 0;

	return syscall(SYS_rt_sigpending, &set, 8) < 0 || set != 0;
}

int img_signals_take_own(int tid, bool *to_read)
{
	int cut = 0;

	if (to_read)
		*to_read = false;
	if (!any_pending())
		return 0;
	uint64_t mine = pending_mask(tid, "SigPnd:");
	if (peek_mode) {
		/* read later, by the ptrace helper; only the stop signal is
		 * taken: putting the program's SIG_IGN back, or the one that
		 * discards the engine's after a failed stop, would discard it
		 * (see img_signals_put_back_stop) */
		uint64_t stop = 1ull << (IMG_STOP_SIGNAL - 1);
		if ((mine & ~stop & ~LEFT_ALONE_MASK) && to_read)
			*to_read = true;
		mine &= stop;
	}

	for (int sig = 1; mine && sig <= CRAC_IMG_NSIG; sig++) {
		if (!(mine & (1ull << (sig - 1))) || left_alone(sig))
			continue;
		for (int taken = 0;; taken++) {
			struct img_pending *p = claim(tid);
			if (!p) {
				/* full: this queue cut after `taken` instances */
				if (taken && !cut)
					cut = sig;
				break;
			}
			if (!take_one(sig, &p->info))
				break;
			if (engine_stop(&p->info))
				continue;   /* the slot stays empty */
			p->tid = tid;
			/* a standard signal is pending once; a real-time one
			 * as often as it was queued to this thread */
			if (sig < 32 || !(pending_mask(tid, "SigPnd:") & (1ull << (sig - 1))))
				break;
		}
	}
	return cut;
}

static void take_shared(void);

/*
 * Reading: the ptrace helper reads the queues of the stopped threads that
 * flagged something pending, and the checkpointing thread's own and the
 * process's (it is stopped in turn while it waits for the helper), into
 * the table, in queue order; nothing is dequeued. Returns 0, -EAGAIN when
 * ptrace was refused and only this thread's queues were to be read (the
 * caller takes them instead), or a negative errno (e says why).
 */
static int peek_all(struct img_arena *a, int me, int64_t deadline_ns, struct img_err *e)
{
	uint64_t all = ~0ull, saved = 0, now = 0;
	int nf = 0, k = 0, rc = 0;

	for (const struct img_thread *th = img_threads_list(); th; th = th->next)
		nf += th->sig_to_read;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &saved, 8);
	syscall(SYS_rt_sigpending, &now, 8);
	if (!(now & ~LEFT_ALONE_MASK) && !nf)
		goto out;   /* the usual case: nothing pending, no helper */
	struct img_peek *t = img_arena_alloc(a, sizeof(*t) * (size_t)(nf + 1));
	const int out_max = IMG_SIG_MAX + 64;
	struct img_pending *out = img_arena_alloc(a, sizeof(*out) * out_max);
	void *area = img_arena_alloc(a, img_ptrace_area_size());
	if (!t || !out || !area) {
		rc = img_fail(e, -ENOMEM, "engine arena exhausted");
		goto out;
	}
	for (const struct img_thread *th = img_threads_list(); th && k < nf; th = th->next)
		if (th->sig_to_read)
			t[k++] = (struct img_peek){ .tid = th->tid };
	if ((pending_mask(me, "SigPnd:") | pending_mask(0, "ShdPnd:")) & ~LEFT_ALONE_MASK)
		t[k++] = (struct img_peek){ .tid = me, .shared = true };
	if (!k)
		goto out;
	struct img_err pe = { 0, "" };
	int got = getenv("CRAC_TEST_SIGNALS_PEEK_EPERM")   /* (tests: ptrace refused only now) */
		  ? img_fail(&pe, -EPERM, "PTRACE_SEIZE: refused (CRAC_TEST_SIGNALS_PEEK_EPERM)")
		  : img_ptrace_peek(area, t, k, out, out_max, deadline_ns, &pe);
	if (got < 0) {
		/* From now on taken off the queues: by this thread alone if
		 * no other has any to read, else the threads stop again. */
		peek_refused = true;
		rc = k == 1 && t[0].tid == me ? -EAGAIN : -ECHILD;
		goto out;
	}
	for (int i = 0; i < got && i < out_max; i++) {
		if (left_alone(out[i].info.si_signo) || engine_stop(&out[i].info))
			continue;
		struct img_pending *p = claim(out[i].tid);
		if (!p)
			continue;   /* counted: the checkpoint fails */
		p->info = out[i].info;
		p->taken = false;
		p->tid = out[i].tid;
	}
	if (atomic_load(&n_pend) > IMG_SIG_MAX) {
		/* name the queue that holds the most */
		full_total = atomic_load(&n_pend) + (got > out_max ? got - out_max : 0);
		full_count = 0;
		for (int i = 0; i < k; i++) {
			if (t[i].n_own > full_count) {
				full_count = t[i].n_own;
				atomic_store(&full_owner, t[i].tid);
			}
			if (t[i].shared && t[i].n_shared > full_count) {
				full_count = t[i].n_shared;
				atomic_store(&full_owner, 0);
			}
		}
	}
out:
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &saved, NULL, 8);
	return rc;
}

int img_signals_read(struct img_arena *a, int tid, int64_t deadline_ns, struct img_err *e)
{
	if (!peek_mode || peek_done)
		return 0;
	int rc = peek_all(a, tid, deadline_ns, e);
	if (rc == -EAGAIN) {
		/* ptrace refused, and only this thread's own and the
		 * process's were to be read: it takes them
		 * (img_signals_take_checkpointer) */
		peek_mode = false;
		return 0;
	}
	if (rc == -ECHILD)
		return -EAGAIN;   /* stop again: the threads take theirs */
	peek_done = rc == 0;
	return rc;
}

int img_signals_take_checkpointer(struct img_arena *a, int tid, bool main_stopped, int64_t deadline_ns,
				  struct img_err *e)
{
	atomic_store(&main_in_handler, main_stopped);
	if (peek_mode) {
		/* (read right after the stop, as a rule) */
		int rc = img_signals_read(a, tid, deadline_ns, e);
		if (rc == -EAGAIN)
			return img_fail(e, -EPERM, "cannot read the pending signals of the stopped threads with "
					"ptrace; from the next checkpoint on they are taken off their queues instead");
		if (rc < 0 || peek_mode)
			return rc;
	}
	atomic_store(&self_cut, img_signals_take_own(tid, NULL));
	take_shared();
	return 0;
}

static void take_shared(void)
{
	/* (once a checkpoint, from /proc: the checkpointing thread's mask
	 * may not block what is pending for the others) */
	uint64_t shared = pending_mask(0, "ShdPnd:");

	for (int sig = 1; shared && sig <= CRAC_IMG_NSIG; sig++) {
		if (!(shared & (1ull << (sig - 1))) || left_alone(sig))
			continue;
		for (int taken = 0;; taken++) {
			struct img_pending *p = claim(0);
			if (!p) {
				if (taken && !atomic_load(&shared_cut))
					atomic_store(&shared_cut, sig);
				break;
			}
			if (!take_one(sig, &p->info))
				break;
			if (engine_stop(&p->info))
				continue;
			p->tid = 0;
		}
	}
}

int img_signals_overflow(char *msg, size_t len)
{
	int n = atomic_load(&n_pend), owner = atomic_load(&full_owner);
	char comm[16] = "?", who[64];

	if (n <= IMG_SIG_MAX)
		return 0;
	int least = 0;
	if (full_count < 0) {
		/* taken off the queues until the table was full: the owner
		 * with the most in it (the rest was not counted) */
		for (int i = 0; i < IMG_SIG_MAX; i++) {
			int k = 0;
			if (pend[i].tid < 0)
				continue;
			for (int j = 0; j < IMG_SIG_MAX; j++)
				k += pend[j].tid == pend[i].tid;
			if (k > least) {
				least = k;
				owner = pend[i].tid;
			}
			i += k > IMG_SIG_MAX / 2 ? IMG_SIG_MAX : 0;   /* (a majority: that is it) */
		}
	}
	if (owner > 0) {
		img_thread_comm(owner, comm, sizeof(comm));
		snprintf(who, sizeof(who), "thread %d (%s)", owner, comm);
	} else {
		snprintf(who, sizeof(who), "the process");
	}
	if (full_count >= 0)
		snprintf(msg, len, "%d signals are pending (blocked or not yet taken), %d of them for %s: the image "
			 "engine carries at most %d; they stay pending", full_total, full_count, who, IMG_SIG_MAX);
	else
		snprintf(msg, len, "more than %d signals are pending (blocked or not yet taken), at least %d of "
			 "them for %s: the image engine carries at most %d; they stay pending", IMG_SIG_MAX, least,
			 who, IMG_SIG_MAX);
	return n;
}

static void note_lost(int sig, int tid, int err)
{
	int i = atomic_fetch_add(&n_lost, 1);

	if (i < IMG_SIG_LOST_MAX) {
		lost[i].sig = sig;
		lost[i].tid = tid;
		lost[i].err = err;
	}
}

/* Queues p again: to the calling thread, or to the process. */
static void give_back(const struct img_pending *p, bool to_process)
{
	int sig = p->info.si_signo, pid = getpid(), me = img_gettid();
	long rc;

	if (!to_process) {
		rc = syscall(SYS_rt_tgsigqueueinfo, pid, me, sig, &p->info);
	} else if (me == pid || (p->info.si_code < 0 && p->info.si_code != SI_TKILL)) {
		rc = syscall(SYS_rt_sigqueueinfo, pid, sig, &p->info);
	} else {
		/* no thread may send this si_code to the process: the signal
		 * goes back, its sender becomes this process */
		rc = kill(pid, sig);
		if (rc == 0)
			note_lost(sig, 0, 0);
	}
	if (rc < 0)
		note_lost(sig, p->tid, errno);
}

/*
 * Later arrivals go after. A real-time signal queued WHILE the checkpoint
 * ran (after its instances were taken into the table) is already pending
 * when the table's are given back: queued behind it, they would come out
 * of order (3 1 2). Likewise a queue cut by a full table (a failed
 * checkpoint): its first instances are in the table, its later ones still
 * queued. So, for every real-time signal the table holds for this owner
 * (and the cut one), what is pending now is taken out first (into a
 * scratch mapping: a system call, fine in a signal handler), then the
 * table's are queued, then these, each queue in its order. Only when one
 * of them is pending (rt_sigpending): the usual stop maps nothing.
 * `own`: the caller's thread's queue (taken while its SigPnd shows the
 * signal), else the process's (while it does not: rt_sigtimedwait takes
 * the thread's own first). A standard signal pending again merges with
 * the one given back, as the kernel would have merged them.
 */
struct drained {
	struct img_pending *p;
	int n;
};
#define IMG_DRAIN_MAX 8192

static void drain(uint64_t sigs, bool own, int tid, struct drained *d)
{
	uint64_t now = 0;

	d->n = 0;
	d->p = NULL;
	if (syscall(SYS_rt_sigpending, &now, 8) == 0 && !(sigs & now))
		return;
	long m = syscall(SYS_mmap, NULL, IMG_DRAIN_MAX * sizeof(struct img_pending), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m < 0 && m > -4096)
		return;
	d->p = (struct img_pending *)m;
	/* rt_sigtimedwait takes the thread's own instances before the
	 * process's: where the other queue holds none of sig, every take is
	 * the one wanted, and /proc is not looked at again for each (a look
	 * costs tens of microseconds, and a signal sent while the give-back
	 * runs lands among the given-back ones: the shorter it runs, the
	 * rarer that is) */
	uint64_t other = pending_mask(tid, own ? "ShdPnd:" : "SigPnd:");
	for (int sig = 32; sig <= CRAC_IMG_NSIG; sig++) {
		uint64_t bit = 1ull << (sig - 1);
		if (!(sigs & bit))
			continue;
		while (d->n < IMG_DRAIN_MAX &&
		       (!(other & bit) || ((pending_mask(tid, "SigPnd:") & bit) != 0) == own) &&
		       take_one(sig, &d->p[d->n].info)) {
			d->p[d->n].tid = own ? tid : 0;
			d->n++;
		}
	}
}

static void undrain(struct drained *d, bool to_process)
{
	for (int i = 0; d->p && i < d->n; i++)
		give_back(&d->p[i], to_process);
	if (d->p)
		syscall(SYS_munmap, d->p, IMG_DRAIN_MAX * sizeof(struct img_pending));
}

/*
 * The program's own SIGRTMAX-1 survives the engine putting its disposition
 * back. Setting a disposition to SIG_IGN discards every pending instance
 * of the signal, in every queue (the kernel does so): the program's SIG_IGN
 * (blocked, read with sigwaitinfo), and the SIG_IGN a failed stop sets to
 * discard the engine's stop signals still pending in threads that never
 * took them. So, with every signal blocked, the checkpointing thread takes
 * the instances pending for itself and for the process out first (the
 * engine's own, SI_TKILL from this process, dropped), puts the disposition
 * back, and queues them again, each queue in its order. The threads still
 * stopped give theirs back after this (image_threads.c, image.c: the
 * disposition goes back before they are let go). Not kept: an instance
 * queued to a thread that is not stopped (a failed stop) when SIG_IGN
 * discards it, nor one queued to a stopped thread during the checkpoint
 * when the program's disposition is SIG_IGN.
 */
static void keep_program_instances(struct drained *d)
{
	int k = 0;

	for (int i = 0; d->p && i < d->n; i++)
		if (!engine_stop(&d->p[i].info))
			d->p[k++] = d->p[i];
	d->n = k;
}

void img_signals_put_back_stop(const struct sigaction *old, bool discard_pending)
{
	uint64_t all = ~0ull, saved = 0, bit = 1ull << (IMG_STOP_SIGNAL - 1);
	struct drained own, shared;
	int me = img_gettid();

	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &saved, 8);
	drain(bit, true, me, &own);
	drain(bit, false, me, &shared);
	keep_program_instances(&own);
	keep_program_instances(&shared);
	if (discard_pending) {
		struct sigaction ign;
		memset(&ign, 0, sizeof(ign));
		ign.sa_handler = SIG_IGN;
		sigaction(IMG_STOP_SIGNAL, &ign, NULL);
	}
	sigaction(IMG_STOP_SIGNAL, old, NULL);
	undrain(&shared, true);
	undrain(&own, false);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &saved, NULL, 8);
}

/* The real-time signals the table holds for owner `tid` (0: the process),
 * and `cut`. */
static uint64_t rt_held(int tid, int cut, bool restored)
{
	int n = atomic_load(&n_pend);
	uint64_t sigs = cut ? 1ull << (cut - 1) : 0;

	for (int i = 0; i < n && i < IMG_SIG_MAX; i++)
		if (pend[i].tid == tid && (restored || pend[i].taken) && pend[i].info.si_signo >= 32 &&
		    pend[i].info.si_signo <= CRAC_IMG_NSIG)
			sigs |= 1ull << (pend[i].info.si_signo - 1);
	return sigs;
}

/* In the original process only the signals taken off their queues go
 * back (the ones only read are still queued); a restored one queues all. */
void img_signals_give_back_own(int old_tid, int cut, bool restored)
{
	int n = atomic_load(&n_pend);
	struct drained d = { NULL, 0 };

	if (old_tid <= 0)
		return;
	uint64_t sigs = rt_held(old_tid, cut, restored);
	if (sigs)
		drain(sigs, true, img_gettid(), &d);
	for (int i = 0; i < n && i < IMG_SIG_MAX; i++)
		if (pend[i].tid == old_tid && (restored || pend[i].taken))
			give_back(&pend[i], false);
	undrain(&d, false);
}

static void give_back_shared(bool restored)
{
	int n = atomic_load(&n_pend);
	struct drained d = { NULL, 0 };
	uint64_t sigs = rt_held(0, atomic_load(&shared_cut), restored);

	if (sigs)
		drain(sigs, false, img_gettid(), &d);
	for (int i = 0; i < n && i < IMG_SIG_MAX; i++)
		if (pend[i].tid == 0 && (restored || pend[i].taken))
			give_back(&pend[i], true);
	undrain(&d, true);
}

void img_signals_give_back_main(bool restored)
{
	if (!atomic_load(&main_in_handler))
		return;   /* the checkpointing thread does it */
	if (restored)
		while (!atomic_load(&state_ready))
			syscall(SYS_futex, &state_ready, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	give_back_shared(restored);
}

void img_signals_give_back_checkpointer(int old_tid, bool restored)
{
	/* the process's first: draining a cut queue of the process must
	 * not meet this thread's own, given back (image_threads.c: the same) */
	if (!atomic_load(&main_in_handler))
		give_back_shared(restored);
	img_signals_give_back_own(old_tid, restored ? 0 : atomic_load(&self_cut), restored);
}

void img_signals_state_ready(void)
{
	atomic_store(&state_ready, 1);
	syscall(SYS_futex, &state_ready, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

uint32_t img_signals_count(void)
{
	uint32_t k = 0;
	int n = atomic_load(&n_pend);

	for (int i = 0; i < n && i < IMG_SIG_MAX; i++)
		k += pend[i].tid >= 0;
	return k;
}

void img_signals_fill(struct crac_img_signal *out)
{
	int n = atomic_load(&n_pend);

	for (int i = 0; i < n && i < IMG_SIG_MAX; i++) {
		if (pend[i].tid < 0)
			continue;
		memset(out, 0, sizeof(*out));
		out->tid = pend[i].tid;
		out->signo = (uint32_t)pend[i].info.si_signo;
		out->code = pend[i].info.si_code;
		memcpy(out->info, &pend[i].info, sizeof(out->info));
		out++;
	}
}

/* "SIGUSR1", "SIGRTMIN+2" (glibc's SIGRTMIN), or "signal 40". */
static void sig_name(int sig, char out[24])
{
	const char *abbrev = sig < 32 ? sigabbrev_np(sig) : NULL;

	if (abbrev)
		snprintf(out, 24, "SIG%s", abbrev);
	else if (sig >= SIGRTMIN && sig <= SIGRTMAX)
		snprintf(out, 24, "SIGRTMIN+%d", sig - SIGRTMIN);
	else
		snprintf(out, 24, "signal %d", sig);
}

void img_signals_report(crac_report *rep)
{
	int n = atomic_load(&n_lost);

	for (int i = 0; i < n && i < IMG_SIG_LOST_MAX; i++) {
		char name[24], who[48];
		sig_name(lost[i].sig, name);
		if (lost[i].tid > 0)
			snprintf(who, sizeof(who), "for thread %d", lost[i].tid);
		else
			snprintf(who, sizeof(who), "for the process");
		if (lost[i].err == 0)
			crac__report_add(rep, CRAC_PHASE_ENGINE, "image", -EPERM,
					 "%s, pending %s at the checkpoint, was queued again with kill(2): the "
					 "original main thread had exited, and only it may queue a siginfo of that "
					 "kind to the process; its sender now reads as this process", name, who);
		else
			crac__report_add(rep, CRAC_PHASE_ENGINE, "image", -lost[i].err,
					 "%s, pending %s at the checkpoint, could not be queued again: %s%s", name,
					 who, img_strerror(lost[i].err),
					 lost[i].err == EAGAIN ? " (RLIMIT_SIGPENDING: the user's queued signals)" : "");
	}
	if (n > IMG_SIG_LOST_MAX)
		crac__report_add(rep, CRAC_PHASE_ENGINE, "image", -EIO,
				 "%d more pending signals not queued again as they were", n - IMG_SIG_LOST_MAX);
	atomic_store(&n_lost, 0);
}
