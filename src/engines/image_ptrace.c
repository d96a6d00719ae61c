/* SPDX-License-Identifier: MIT */
/*
 * image_ptrace.c - stopping threads that block the stop signal.
 *
 * A thread that blocks IMG_STOP_SIGNAL never runs the stop handler (redis's
 * allocator thread and one of node's threads do so). The checkpointing
 * thread cannot ptrace a thread of its own thread group, so a helper does
 * it, as CRIU does: a process created with a raw clone(CLONE_VM) (no
 * pthread_atfork handlers, no copy of the address space; it shares our
 * memory, so the results need no channel) that uses raw system calls only
 * (it shares the checkpointing thread's TLS, errno included).
 *
 *   1. the helper PTRACE_SEIZEs every such thread (that changes nothing and
 *      does not stop it; ptrace is refused here if at all, and then the
 *      checkpoint fails before any thread was signalled);
 *   2. the checkpointing thread sends them the stop signal: it stays pending;
 *   3. the helper PTRACE_INTERRUPTs each, waits for the stop, reads its mask
 *      (PTRACE_GETSIGMASK), sets it without the stop signal
 *      (PTRACE_SETSIGMASK) and detaches: the pending signal is delivered at
 *      once, before the thread runs any code of its own, and the handler
 *      blocks the signal again in the frame it returns through
 *      (image_threads.c). An interrupted system call restarts.
 *
 * With Yama ptrace_scope 1 the helper (our child, not our ancestor) is
 * allowed with PR_SET_PTRACER for the time it runs. ptrace needs the same
 * uid and a dumpable process (or CAP_SYS_PTRACE). The helper is killed at
 * the deadline (a tracer's death detaches its tracees).
 */
#include "engines/image_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_PTRACER
#define PR_SET_PTRACER 0x59616d61
#endif
#ifndef CLONE_UNTRACED
#define CLONE_UNTRACED 0x00800000
#endif
#define CAP_SYS_PTRACE_BIT 19

/* A raw system call: no errno (the helper shares our TLS), -errno on error. */
static long rsys(long n, long a, long b, long c, long d, long e)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
			 : "rcx", "r11", "memory");
	return ret;
}

/*
 * long crac__img_helper_clone(unsigned long flags, void *sp)
 * clone(flags, sp, 0, 0, 0); the child pops a function and its argument
 * from sp and calls it (it must not return).
 */
long crac__img_helper_clone(unsigned long flags, void *sp) CRAC_HIDDEN;
__asm__(
	".text\n"
	".globl crac__img_helper_clone\n"
	".hidden crac__img_helper_clone\n"
	".type crac__img_helper_clone,@function\n"
	"crac__img_helper_clone:\n"
	"	xorl %edx, %edx\n"
	"	xorl %r10d, %r10d\n"
	"	xorl %r8d, %r8d\n"
	"	movl $56, %eax\n"              /* SYS_clone */
	"	syscall\n"
	"	testq %rax, %rax\n"
	"	jz 1f\n"
	"	ret\n"
	"1:	xorl %ebp, %ebp\n"
	"	popq %rax\n"
	"	popq %rdi\n"
	"	andq $-16, %rsp\n"
	"	call *%rax\n"
	"	ud2\n"
	".size crac__img_helper_clone, .-crac__img_helper_clone\n");

/* Shared between the checkpointing thread and the helper (arena memory). */
struct ptrace_job {
	_Atomic uint32_t go;     /* 1: seize, 2: interrupt and unblock */
	_Atomic uint32_t state;  /* 1: all seized (or failed), 2: finished */
	int n;
	bool failed;             /* a seize failed: the helper has left */
	struct img_unblock *u;
	long pid;                /* 0: no helper running */
	int scope;               /* Yama ptrace_scope, -1: none */
};

/* The other job: reading the pending signals of stopped threads. */
struct peek_job {
	_Atomic uint32_t go;     /* 1: peek */
	_Atomic uint32_t state;  /* 2: finished */
	struct img_peek *t;
	int n;
	struct img_pending *out; /* the queues, in order, each entry's owner in tid (0: the process) */
	int out_max;
	int out_n;               /* may exceed out_max: counted, not stored */
	long pid;
	int scope;
};

#define HELPER_STACK (64u << 10)
size_t img_ptrace_area_size(void)
{
	size_t job = sizeof(struct ptrace_job) > sizeof(struct peek_job) ? sizeof(struct ptrace_job)
									 : sizeof(struct peek_job);
	return job + HELPER_STACK + 64;
}

/* In the helper. False if ptrace is refused (then nothing was changed). */
static bool seize(struct img_unblock *u)
{
	long r = rsys(SYS_ptrace, PTRACE_SEIZE, u->tid, 0, 0, 0);

	if (r < 0) {
		u->err = (int)r;
		u->step = "PTRACE_SEIZE";
		atomic_store(&u->done, 1);
		return r == -ESRCH;   /* it exited meanwhile: not a failure */
	}
	return true;
}

/*
 * In the helper: a seized thread, after PTRACE_INTERRUPT. u->err stays 0
 * only if u->mask is valid; u->done is set before the thread can run again.
 */
static void unblock_one(struct img_unblock *u)
{
	int st = 0;
	long r, sig = 0;

	for (;;) {
		r = rsys(SYS_wait4, u->tid, (long)&st, __WALL, 0, 0);
		if (r < 0 || WIFEXITED(st) || WIFSIGNALED(st)) {
			u->err = r < 0 ? (int)r : -ESRCH;
			u->step = "waiting for the ptrace stop";
			return;
		}
		if (WIFSTOPPED(st))
			break;
	}
	/* A signal-delivery stop (a signal came before our trap, maybe the
	 * stop signal itself): the signal goes back in when we detach. */
	if ((st >> 16) == 0)
		sig = WSTOPSIG(st);
	uint64_t mask = 0;
	if ((r = rsys(SYS_ptrace, PTRACE_GETSIGMASK, u->tid, sizeof(mask), (long)&mask, 0)) < 0) {
		u->err = (int)r;
		u->step = "PTRACE_GETSIGMASK";
	} else {
		uint64_t unblocked = mask & ~(1ull << (IMG_STOP_SIGNAL - 1));
		if ((r = rsys(SYS_ptrace, PTRACE_SETSIGMASK, u->tid, sizeof(unblocked), (long)&unblocked, 0)) < 0) {
			u->err = (int)r;
			u->step = "PTRACE_SETSIGMASK";
		} else {
			u->mask = mask;
		}
	}
	atomic_store(&u->done, 1);   /* before it can run the handler */
	rsys(SYS_ptrace, PTRACE_DETACH, u->tid, 0, sig, 0);
}

static void wait_word(_Atomic uint32_t *w, uint32_t below)
{
	uint32_t v;

	while ((v = atomic_load(w)) < below)
		rsys(SYS_futex, (long)w, FUTEX_WAIT_PRIVATE, v, 0, 0);
}

static void set_word(_Atomic uint32_t *w, uint32_t v)
{
	atomic_store(w, v);
	rsys(SYS_futex, (long)w, FUTEX_WAKE_PRIVATE, 1, 0, 0);
}

/* The helper process: raw system calls only. */
static __attribute__((noreturn, used)) void helper_main(struct ptrace_job *j)
{
	uint64_t all = ~0ull;
	bool ok = true;

	rsys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, 0, 8, 0);
	wait_word(&j->go, 1);
	for (int i = 0; i < j->n && ok; i++)
		ok = seize(&j->u[i]);
	j->failed = !ok;
	set_word(&j->state, 1);
	if (ok) {
		wait_word(&j->go, 2);
		for (int i = 0; i < j->n; i++)
			if (!atomic_load(&j->u[i].done) &&
			    rsys(SYS_ptrace, PTRACE_INTERRUPT, j->u[i].tid, 0, 0, 0) < 0) {
				j->u[i].err = -ESRCH;   /* it exited meanwhile */
				atomic_store(&j->u[i].done, 1);
			}
		for (int i = 0; i < j->n; i++)
			if (!atomic_load(&j->u[i].done))
				unblock_one(&j->u[i]);
		set_word(&j->state, 2);
	}
	for (;;)
		rsys(SYS_exit, 0, 0, 0, 0, 0);
}

/* ---- peeking at pending signals (image_signals.c) --------------------------- */

#ifndef PTRACE_PEEKSIGINFO
#define PTRACE_PEEKSIGINFO 0x4209
#endif
#ifndef PTRACE_PEEKSIGINFO_SHARED
#define PTRACE_PEEKSIGINFO_SHARED 1
#endif
struct peeksiginfo_args {
	uint64_t off;
	uint32_t flags;
	int32_t nr;
};

/* In the helper: appends t's own queue (or the process's) to j->out. */
static void peek_queue(struct peek_job *j, struct img_peek *t, bool shared)
{
	siginfo_t chunk[16];
	struct peeksiginfo_args a = { 0, shared ? PTRACE_PEEKSIGINFO_SHARED : 0, 16 };

	for (;;) {
		long r = rsys(SYS_ptrace, PTRACE_PEEKSIGINFO, t->tid, (long)&a, (long)chunk, 0);
		if (r < 0) {
			t->err = (int)r;
			t->step = "PTRACE_PEEKSIGINFO";
			return;
		}
		if (r == 0)
			return;
		for (long i = 0; i < r; i++, j->out_n++) {
			if (j->out_n < j->out_max) {
				j->out[j->out_n].tid = shared ? 0 : t->tid;
				j->out[j->out_n].info = chunk[i];
			}
			if (shared)
				t->n_shared++;
			else
				t->n_own++;
		}
		a.off += (uint64_t)r;
	}
}

/* In the helper: seizes t, stops it (PTRACE_INTERRUPT: it waits in a
 * system call, every signal blocked; the call restarts), reads its queue
 * and, if asked, the process's, and lets it go. Nothing is dequeued. */
static void peek_one(struct peek_job *j, struct img_peek *t)
{
	int st = 0;
	long r, sig = 0;

	if ((r = rsys(SYS_ptrace, PTRACE_SEIZE, t->tid, 0, 0, 0)) < 0) {
		t->err = (int)r;
		t->step = "PTRACE_SEIZE";
		return;
	}
	if ((r = rsys(SYS_ptrace, PTRACE_INTERRUPT, t->tid, 0, 0, 0)) < 0) {
		t->err = (int)r;
		t->step = "PTRACE_INTERRUPT";
		rsys(SYS_ptrace, PTRACE_DETACH, t->tid, 0, 0, 0);
		return;
	}
	for (;;) {
		r = rsys(SYS_wait4, t->tid, (long)&st, __WALL, 0, 0);
		if (r < 0 || WIFEXITED(st) || WIFSIGNALED(st)) {
			t->err = r < 0 ? (int)r : -ESRCH;
			t->step = "waiting for the ptrace stop";
			return;
		}
		if (WIFSTOPPED(st))
			break;
	}
	/* (a signal-delivery stop, which every signal blocked rules out but
	 * for SIGKILL: the signal goes back in at the detach) */
	if ((st >> 16) == 0)
		sig = WSTOPSIG(st);
	peek_queue(j, t, false);
	if (t->shared && !t->err)
		peek_queue(j, t, true);
	rsys(SYS_ptrace, PTRACE_DETACH, t->tid, 0, sig, 0);
}

static __attribute__((noreturn, used)) void peek_main(struct peek_job *j)
{
	uint64_t all = ~0ull;

	rsys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, 0, 8, 0);
	wait_word(&j->go, 1);
	for (int i = 0; i < j->n; i++) {
		peek_one(j, &j->t[i]);
		if (j->t[i].err && j->t[i].err != -ESRCH)
			break;
	}
	set_word(&j->state, 2);
	for (;;)
		rsys(SYS_exit, 0, 0, 0, 0, 0);
}

/* ---- why ptrace would be refused ------------------------------------------ */

/* Reads a small /proc file into buf; returns its length or -1. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return n;
}

/* Yama's ptrace_scope, -1 without Yama. */
static int yama_scope(void)
{
	char buf[16];

	if (read_small("/proc/sys/kernel/yama/ptrace_scope", buf, sizeof(buf)) <= 0)
		return -1;
	return atoi(buf);
}

static bool has_cap_sys_ptrace(void)
{
	char buf[2048];
	char *p;

	if (read_small("/proc/self/status", buf, sizeof(buf)) <= 0 || !(p = strstr(buf, "CapEff:")))
		return false;
	return strtoull(p + 7, NULL, 16) & (1ull << CAP_SYS_PTRACE_BIT);
}

const char *img_ptrace_obstacle(char *buf, size_t len)
{
	int scope = yama_scope();
	bool cap = has_cap_sys_ptrace();

	if (scope >= 3)
		snprintf(buf, len, "ptrace is disabled on this system (Yama ptrace_scope %d)", scope);
	else if (scope == 2 && !cap)
		snprintf(buf, len, "Yama ptrace_scope 2 allows ptrace only with CAP_SYS_PTRACE");
	else if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1 && !cap)
		snprintf(buf, len, "the process is not dumpable (PR_SET_DUMPABLE 0, or it changed its "
			 "credentials) and ptrace then needs CAP_SYS_PTRACE");
	else
		return NULL;
	return buf;
}

/* ---- the checkpointing thread's side ------------------------------------------ */

void img_thread_comm(int tid, char *out, size_t len)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", tid);
	if (read_small(path, out, len) <= 0)
		snprintf(out, len, "?");
	out[strcspn(out, "\n")] = 0;
}

/* Waits until the helper's state reaches `want` or the deadline passes. */
static bool wait_state(struct ptrace_job *j, uint32_t want, int64_t deadline_ns)
{
	uint32_t v;

	while ((v = atomic_load(&j->state)) < want) {
		int64_t left = deadline_ns - img_mono_ns();
		if (left <= 0)
			return false;
		struct timespec ts = { 0, left < 20000000 ? (long)left : 20000000L };
		syscall(SYS_futex, &j->state, FUTEX_WAIT_PRIVATE, v, &ts, NULL, 0);
	}
	return true;
}

/* Ends the helper (killed if it is not done) and reaps it. */
static void end_helper(struct ptrace_job *j, bool kill_it)
{
	int st;

	if (j->pid <= 0)
		return;
	if (kill_it)
		syscall(SYS_kill, j->pid, SIGKILL);   /* a tracer's death detaches its tracees */
	while (syscall(SYS_wait4, j->pid, &st, __WALL, NULL) < 0 && errno == EINTR)
		;
	j->pid = 0;
	if (j->scope == 1)
		prctl(PR_SET_PTRACER, 0, 0, 0, 0);
}

/* The first failure among u[], as an error naming the thread. */
static int report(struct ptrace_job *j, bool timed_out, struct img_err *e)
{
	char why[256], comm[16];

	for (int i = 0; i < j->n; i++) {
		struct img_unblock *u = &j->u[i];
		bool done = atomic_load(&u->done);
		if (done && (u->err == 0 || u->err == -ESRCH))
			continue;
		if (!done && !timed_out)
			continue;   /* not tried: an earlier thread failed */
		img_thread_comm(u->tid, comm, sizeof(comm));
		if (!done)
			return img_fail(e, -ETIMEDOUT, "thread %d (%s) blocks signal SIGRTMAX-1, which the image engine "
					"uses to stop threads, and did not stop for ptrace in time either "
					"(stuck in an uninterruptible wait?)", u->tid, comm);
		const char *obstacle = u->err == -EPERM ? img_ptrace_obstacle(why, sizeof(why)) : NULL;
		return img_fail(e, u->err, "thread %d (%s) blocks signal SIGRTMAX-1, which the image engine uses "
				"to stop threads, and cannot be stopped with ptrace either: %s: %s%s%s", u->tid, comm,
				u->step ? u->step : "ptrace", img_strerror(-u->err), obstacle ? ": " : "",
				obstacle ? obstacle : "");
	}
	return 0;
}

int img_ptrace_seize(void *area, struct img_unblock *u, int n, int64_t deadline_ns, struct img_err *e)
{
	struct ptrace_job *j = area;

	memset(j, 0, sizeof(*j));
	j->n = n;
	j->u = u;
	j->scope = yama_scope();
	for (int i = 0; i < n; i++) {
		u[i].err = 0;
		u[i].step = NULL;
		u[i].mask = 0;
		atomic_store(&u[i].done, 0);
	}
	/* The helper's stack: the top of the area, with the function and its
	 * argument for crac__img_helper_clone to pop. */
	uintptr_t top = ((uintptr_t)area + img_ptrace_area_size()) & ~(uintptr_t)15;
	uint64_t *sp = (uint64_t *)top;
	*--sp = (uint64_t)(uintptr_t)j;
	*--sp = (uint64_t)(uintptr_t)helper_main;
	long pid = crac__img_helper_clone(CLONE_VM | CLONE_UNTRACED, sp);   /* exit signal 0: no SIGCHLD */
	if (pid < 0)
		return img_fail(e, (int)pid, "cannot start the ptrace helper for the threads that block "
				"SIGRTMAX-1: %s", img_strerror((int)-pid));
	j->pid = pid;
	if (j->scope == 1)
		prctl(PR_SET_PTRACER, (unsigned long)j->pid, 0, 0, 0);
	set_word(&j->go, 1);
	if (!wait_state(j, 1, deadline_ns)) {
		end_helper(j, true);
		return img_fail(e, -ETIMEDOUT, "the ptrace helper for the threads that block SIGRTMAX-1 did not "
				"answer in time");
	}
	if (j->failed) {
		end_helper(j, false);
		return report(j, false, e);
	}
	return 0;
}

int img_ptrace_unblock(void *area, int64_t deadline_ns, struct img_err *e)
{
	struct ptrace_job *j = area;

	set_word(&j->go, 2);
	bool finished = wait_state(j, 2, deadline_ns);
	end_helper(j, !finished);
	return report(j, !finished, e);
}

void img_ptrace_cancel(void *area)
{
	end_helper(area, true);
}

/* Ends the peek helper (killed if it is not done: its tracees are let go). */
static void end_peek_helper(struct peek_job *j, bool kill_it)
{
	int st;

	if (j->pid <= 0)
		return;
	if (kill_it)
		syscall(SYS_kill, j->pid, SIGKILL);
	while (syscall(SYS_wait4, j->pid, &st, __WALL, NULL) < 0 && errno == EINTR)
		;
	j->pid = 0;
	if (j->scope == 1)
		prctl(PR_SET_PTRACER, 0, 0, 0, 0);
}

int img_ptrace_peek(void *area, struct img_peek *t, int n, struct img_pending *out, int out_max, int64_t deadline_ns,
		    struct img_err *e)
{
	struct peek_job *j = area;

	memset(j, 0, sizeof(*j));
	j->t = t;
	j->n = n;
	j->out = out;
	j->out_max = out_max;
	j->scope = yama_scope();
	for (int i = 0; i < n; i++) {
		t[i].err = 0;
		t[i].step = NULL;
		t[i].n_own = t[i].n_shared = 0;
	}
	uintptr_t top = ((uintptr_t)area + img_ptrace_area_size()) & ~(uintptr_t)15;
	uint64_t *sp = (uint64_t *)top;
	*--sp = (uint64_t)(uintptr_t)j;
	*--sp = (uint64_t)(uintptr_t)peek_main;
	long pid = crac__img_helper_clone(CLONE_VM | CLONE_UNTRACED, sp);
	if (pid < 0)
		return img_fail(e, (int)pid, "cannot start the ptrace helper that reads the pending signals: %s",
				img_strerror((int)-pid));
	j->pid = pid;
	if (j->scope == 1)
		prctl(PR_SET_PTRACER, (unsigned long)j->pid, 0, 0, 0);
	set_word(&j->go, 1);
	/* (the caller blocks every signal: a ptrace stop of this thread,
	 * waiting here, is then never a signal-delivery stop) */
	uint32_t v;
	bool finished = true, died = false;
	while ((v = atomic_load(&j->state)) < 2) {
		int64_t left = deadline_ns - img_mono_ns();
		if (left <= 0) {
			finished = false;
			break;
		}
		struct timespec ts = { 0, left < 2000000 ? (long)left : 2000000L };
		syscall(SYS_futex, &j->state, FUTEX_WAIT_PRIVATE, v, &ts, NULL, 0);
		/* killed (a seccomp filter the helper inherited?): no need to
		 * wait for the deadline */
		int st;
		if (atomic_load(&j->state) < 2 && syscall(SYS_wait4, j->pid, &st, WNOHANG | __WALL, NULL) == j->pid) {
			j->pid = 0;
			if (j->scope == 1)
				prctl(PR_SET_PTRACER, 0, 0, 0, 0);
			finished = false;
			died = true;
			break;
		}
	}
	end_peek_helper(j, !finished);
	if (died)
		return img_fail(e, -ECHILD, "the ptrace helper that reads the pending signals ended before it "
				"finished (killed by a seccomp filter of the program's?)");
	if (!finished)
		return img_fail(e, -ETIMEDOUT, "the ptrace helper that reads the pending signals did not finish "
				"in time");
	for (int i = 0; i < n; i++) {
		char why[256], comm[16];
		if (!t[i].err || t[i].err == -ESRCH)
			continue;
		img_thread_comm(t[i].tid, comm, sizeof(comm));
		const char *obstacle = t[i].err == -EPERM ? img_ptrace_obstacle(why, sizeof(why)) : NULL;
		return img_fail(e, t[i].err, "cannot read the pending signals of thread %d (%s) with ptrace: %s: %s%s%s",
				t[i].tid, comm, t[i].step ? t[i].step : "ptrace", img_strerror(-t[i].err),
				obstacle ? ": " : "", obstacle ? obstacle : "");
	}
	return j->out_n;
}

/* ---- may the helpers call ptrace at all? (a seccomp filter) ----------------- */

/*
 * A seccomp filter, which the helpers inherit, may refuse ptrace (or kill
 * whoever calls it): that is asked once, by a helper process of its own,
 * for each number of filters the process runs under. The helper calls
 * ptrace on pid 0: ESRCH when ptrace is allowed.
 */
static struct {
	_Atomic uint32_t state;
	long rc;
	char stack[4096] __attribute__((aligned(16)));   /* (a few raw system calls) */
} probe;

static __attribute__((noreturn, used)) void probe_main(void *arg)
{
	uint64_t all = ~0ull;

	(void)arg;
	rsys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, 0, 8, 0);
	probe.rc = rsys(SYS_ptrace, PTRACE_PEEKSIGINFO, 0, 0, 0, 0);
	set_word(&probe.state, 1);
	for (;;)
		rsys(SYS_exit, 0, 0, 0, 0, 0);
}

/* "Seccomp_filters:" of this process's status, -1 when unknown. */
static int seccomp_filters(void)
{
	char buf[4096];
	const char *p;

	if (read_small("/proc/self/status", buf, sizeof(buf)) <= 0 || !(p = strstr(buf, "Seccomp_filters:")))
		return prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2 ? -1 : 0;
	return atoi(p + 16);
}

bool img_ptrace_allowed_by_seccomp(void)
{
	static int asked_for = 0;     /* the number of filters the answer is for */
	static bool answer = true;
	int n = prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2 ? seccomp_filters() : 0;

	if (n == 0)
		return true;
	if (n == asked_for && n > 0)
		return answer;
	atomic_store(&probe.state, 0);
	probe.rc = 0;
	uint64_t *sp = (uint64_t *)(((uintptr_t)probe.stack + sizeof(probe.stack)) & ~(uintptr_t)15);
	*--sp = 0;
	*--sp = (uint64_t)(uintptr_t)probe_main;
	long pid = crac__img_helper_clone(CLONE_VM | CLONE_UNTRACED, sp);
	if (pid < 0)
		return false;
	int st;
	while (syscall(SYS_wait4, pid, &st, __WALL, NULL) < 0 && errno == EINTR)
		;
	answer = atomic_load(&probe.state) == 1 && probe.rc == -ESRCH;
	asked_for = n;
	return answer;
}
