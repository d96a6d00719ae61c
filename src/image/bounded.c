/* SPDX-License-Identifier: MIT */
/*
 * bounded.c - system calls that may never return, waited for until a
 * deadline.
 *
 * A file system that stopped answering (an NFS or FUSE server gone) keeps
 * an fsync, an unlink or an rmdir in the kernel for as long as it likes;
 * made by the checkpointing thread, it would keep the program stopped for
 * ever. So such a call is made by a short-lived helper: a
 * clone(CLONE_VM | CLONE_FILES | CLONE_FS) child. It shares our memory and
 * descriptors (crac_bounded_start_own: a copy of the table, all but one or
 * two closed, so that a descriptor its late call opens, or one it had
 * open when it was killed, ends with it instead of staying in ours) but
 * is its own thread group, so it is never one of the
 * program's threads (/proc/self/task) that a checkpoint stops; it sends no
 * signal when it ends (exit signal 0: a wait of the program's sees it only
 * with __WALL or __WCLONE), and dies with the program (PR_SET_PDEATHSIG). It shares our TLS too, hence raw system calls
 * only (no errno), on a stack of its own, with every signal blocked (a
 * handler of the program must never run there). Not used under a seccomp
 * filter (a clone it did not expect may kill the process). Linux AIO fsync
 * would do it without a process, but io_destroy waits two RCU grace
 * periods (23-36 ms here) and a context kept alive is a mapping of the
 * program's.
 *
 * The caller waits for the helper until the deadline (the checkpoint's)
 * and no sooner than the grace (CRAC_BOUNDED_GRACE_MS) after the wait
 * began: the deadline is for the callbacks, and the files are written
 * after it. Then the helper is killed (SIGKILL: whenever its call
 * returns, it runs no instruction of ours again), reaped at once if it can
 * be, else by a later call (crac_bounded_reap), and the caller fails,
 * naming what the helper was at.
 *
 * System calls only (syscall(2), clone(2) and getenv, bound beforehand by
 * crac_bounded_prepare: lazy binding writes the GOT): these functions may
 * be called while the program's other threads are stopped, and a stopped
 * thread may hold malloc's or stdio's locks.
 */
#include "image/bounded.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * What the helper reads and writes: at the top of its stack, never in the
 * caller's struct crac_bounded (often in the caller's frame, or reused for
 * the next helper). The stack stays mapped until the helper is gone (the
 * orphans below), so a write of the helper's always lands in memory that
 * is still its own.
 */
struct crac_bounded_ctl {
	uint32_t done;          /* fn returned (futex word) */
	void (*fn)(void *arg);
	void *arg;
	int parent;             /* the caller's pid: the helper dies with it */
	bool own_files;         /* crac_bounded_start_own: a table of descriptors of its own */
	int keep[2];            /* own_files: the caller's descriptors it keeps (-1: none) */
};
/* (its room, keeping the stack below it 64-byte aligned) */
#define CTL_ROOM ((sizeof(struct crac_bounded_ctl) + 63) & ~(size_t)63)

/*
 * Helpers given up on (their call did not return), reaped later, with the
 * stack each had if it was ours: it stays mapped until then, since the
 * call may still return and write its results there (a stat buffer, a
 * directory listing): unmapped, the address could hold something else by
 * then. One table for every user and every thread: whoever starts a
 * helper next reaps them. It grows by a page of entries at a time (mmap:
 * no malloc here), so that none is ever dropped (dropped, its stack would
 * stay mapped and its end never be reaped: a zombie for the rest of the
 * program's life); only a refused mmap leaves one out.
 *
 * An entry's pid says its state: 0 free, > 0 an orphan, -1 taken by one
 * thread (being filled in, or being reaped). A thread takes an entry by a
 * compare-and-swap, so two threads never record into the same entry nor
 * reap (and unmap the stack of) the same orphan twice: the second unmap
 * could hit another helper's stack, or a thread's, mapped there since.
 */
struct orphan {
	int pid;
	void *stack;   /* CRAC_BOUNDED_STACK bytes to unmap once reaped, or NULL */
};
#define ORPHANS_PER_CHUNK ((4096 - sizeof(void *)) / sizeof(struct orphan))
struct orphan_chunk {
	struct orphan_chunk *next;   /* set once (compare-and-swap), never freed */
	struct orphan e[ORPHANS_PER_CHUNK];
};
static struct orphan_chunk orphans;   /* the first; the others mapped as needed */

/* The chunk after c, mapped and linked if there is none yet; NULL if it
 * cannot be mapped. */
static struct orphan_chunk *orphans_next(struct orphan_chunk *c)
{
	struct orphan_chunk *n = __atomic_load_n(&c->next, __ATOMIC_ACQUIRE), *none = NULL;

	if (n)
		return n;
	n = (struct orphan_chunk *)syscall(SYS_mmap, NULL, sizeof(*n), PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (n == MAP_FAILED)
		return NULL;
	if (!__atomic_compare_exchange_n(&c->next, &none, n, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		syscall(SYS_munmap, n, sizeof(*n));   /* another thread linked one first: that one */
		return none;
	}
	return n;
}

/* Records orphan pid with its stack (NULL: not ours). false if it could
 * not be (no memory for the table: its stack is kept for ever). */
static bool orphan_add(int pid, void *stack)
{
	for (struct orphan_chunk *c = &orphans; c; c = orphans_next(c))
		for (size_t i = 0; i < ORPHANS_PER_CHUNK; i++) {
			int free_ = 0;
			if (__atomic_compare_exchange_n(&c->e[i].pid, &free_, -1, false, __ATOMIC_ACQUIRE,
							__ATOMIC_RELAXED)) {
				c->e[i].stack = stack;
				__atomic_store_n(&c->e[i].pid, pid, __ATOMIC_RELEASE);
				return true;
			}
		}
	return false;
}

void crac_bounded_prepare(void)
{
	(void)getenv("CRAC_BOUNDED_ANY_CPU");
	(void)clone(NULL, NULL, 0, NULL);   /* EINVAL, without a system call */
	(void)getenv("CRAC_TEST_SYNC_GRACE_MS");
	(void)getenv("CRAC_TEST_BOUNDED_UNREAPED");
}

long crac_bounded_grace_ms(void)
{
	const char *g = getenv("CRAC_TEST_SYNC_GRACE_MS");

	return g ? strtol(g, NULL, 10) : CRAC_BOUNDED_GRACE_MS;
}

int64_t crac_bounded_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void crac_bounded_test_sleep(long ms)
{
	if (ms > 0) {
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
		crac_raw_syscall3(SYS_nanosleep, (long)&ts, 0, 0);
	}
}

void crac_bounded_reap(void)
{
	for (struct orphan_chunk *c = &orphans; c; c = __atomic_load_n(&c->next, __ATOMIC_ACQUIRE))
		for (size_t i = 0; i < ORPHANS_PER_CHUNK; i++) {
			struct orphan *o = &c->e[i];
			int pid = __atomic_load_n(&o->pid, __ATOMIC_ACQUIRE);
			/* taken by this thread alone while it looks */
			if (pid <= 0 || !__atomic_compare_exchange_n(&o->pid, &pid, -1, false, __ATOMIC_ACQUIRE,
								      __ATOMIC_RELAXED))
				continue;
			if (syscall(SYS_wait4, pid, NULL, __WCLONE | WNOHANG, NULL) == 0) {
				__atomic_store_n(&o->pid, pid, __ATOMIC_RELEASE);   /* still there */
				continue;
			}
			if (o->stack)
				syscall(SYS_munmap, o->stack, CRAC_BOUNDED_STACK);
			o->stack = NULL;
			__atomic_store_n(&o->pid, 0, __ATOMIC_RELEASE);
		}
}

/* Closes every descriptor of the helper's own table but c->keep's:
 * close_range between them, else (a kernel before 5.9) each one listed in
 * /proc/self/fd (the helper's: it is its own process), until a pass finds
 * none left to close. */
static void close_all_but(const struct crac_bounded_ctl *c)
{
	int k0 = c->keep[0] < c->keep[1] ? c->keep[0] : c->keep[1];
	int k1 = c->keep[0] < c->keep[1] ? c->keep[1] : c->keep[0];
	unsigned lo = 0;
	long r = 0;

	if (k0 >= 0) {
		if (k0 > 0)
			r |= crac_raw_syscall3(SYS_close_range, 0, (unsigned)k0 - 1, 0);
		lo = (unsigned)k0 + 1;
	}
	if (k1 >= 0 && k1 != k0) {
		if ((unsigned)k1 > lo)
			r |= crac_raw_syscall3(SYS_close_range, lo, (unsigned)k1 - 1, 0);
		lo = (unsigned)k1 + 1;
	}
	r |= crac_raw_syscall3(SYS_close_range, lo, ~0u, 0);
	if (r == 0)
		return;
	char dents[1024] __attribute__((aligned(8)));
	for (bool closed = true; closed;) {
		closed = false;
		long dfd = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)"/proc/self/fd", O_RDONLY | O_DIRECTORY);
		if (dfd < 0)
			return;
		long got;
		while ((got = crac_raw_syscall3(SYS_getdents64, dfd, (long)dents, sizeof(dents))) > 0)
			for (long at = 0; at < got;) {
				/* linux_dirent64: ino 8, off 8, reclen 2, type 1, name */
				unsigned short reclen = *(unsigned short *)(dents + at + 16);
				const char *n = dents + at + 19;
				long fd = 0;
				at += reclen;
				if (*n < '0' || *n > '9')
					continue;
				while (*n >= '0' && *n <= '9')
					fd = fd * 10 + (*n++ - '0');
				if (fd != dfd && fd != k0 && fd != k1 && crac_raw_syscall3(SYS_close, fd, 0, 0) == 0)
					closed = true;
			}
		crac_raw_syscall3(SYS_close, dfd, 0, 0);
	}
}

/* The helper (arg: its ctl): fn, then `done` for the waiting caller. It
 * exits when this returns (clone's wrapper makes the exit system call). */
static int bounded_main(void *arg)
{
	struct crac_bounded_ctl *c = arg;

	/* Dies with the program: a program killed (kill -9) while its helper
	 * was at work must not have it go on with the rest of its steps (a
	 * bind, a chmod, a rename...) after its end. (Already gone: the
	 * helper was given to another parent, and goes no further.) */
	crac_raw_syscall3(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0);
	if (crac_raw_syscall3(SYS_getppid, 0, 0, 0) != c->parent)
		return 0;
	if (c->own_files)
		close_all_but(c);
	c->fn(c->arg);
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
	crac_raw_syscall3(SYS_futex, (long)&c->done, FUTEX_WAKE, 1);
	return 0;
}

/* The helper is gone (reaped, or killed and left to crac_bounded_reap):
 * its stack can go, if it is ours. */
static void bounded_release(struct crac_bounded *b)
{
	if (b->own_stack)
		syscall(SYS_munmap, b->stack, CRAC_BOUNDED_STACK);
	b->own_stack = false;
	b->stack = NULL;
	b->ctl = NULL;
	b->pid = 0;
}

/* Starts a helper; files: CLONE_FILES (the caller's table) or 0 (its own,
 * of which it keeps keep0 and keep1). */
/*
 * The helper starts on the caller's CPU: the caller's affinity is narrowed
 * to the CPU it runs on for the clone (the child inherits it) and put back
 * right after. Started anywhere, the helper went to the idle CPU, and on
 * this kind of VM (a PVM guest: shadow paging, a halted vCPU to wake) its
 * first instruction came 0.1-4 ms after the clone, with a 1 GiB process up
 * to 14 ms (the first helper of an incremental checkpoint: 5-14 ms of a
 * 54-70 ms checkpoint); on the caller's CPU it runs as soon as the caller
 * waits (0.11-0.28 ms, /tmp probes of clone + futex wake + wait4 after 1%
 * of a 1 GiB heap was written, 20 runs each way). A helper's work is a
 * system call that waits for the file system, not computation, so sharing
 * the CPU costs nothing. Returns whether the affinity was narrowed (then
 * `old` holds it: crac_bounded_unpin). CRAC_BOUNDED_ANY_CPU=1: not narrowed
 * (for comparisons).
 */
#define PIN_MASK_BYTES (CRAC_PIN_WORDS * 8)
bool crac_bounded_pin(uint64_t old[CRAC_PIN_WORDS])
{
	uint64_t one[CRAC_PIN_WORDS] = { 0 };
	unsigned cpu = 0;

	if (getenv("CRAC_BOUNDED_ANY_CPU"))
		return false;
	for (int i = 0; i < CRAC_PIN_WORDS; i++)
		old[i] = 0;   /* (the kernel fills only its own mask's size) */
	if (syscall(SYS_getcpu, &cpu, NULL, NULL) != 0 || cpu >= PIN_MASK_BYTES * 8 ||
	    syscall(SYS_sched_getaffinity, 0, PIN_MASK_BYTES, old) <= 0 || !(old[cpu / 64] & (1ull << (cpu % 64))))
		return false;
	one[cpu / 64] = 1ull << (cpu % 64);
	return syscall(SYS_sched_setaffinity, 0, PIN_MASK_BYTES, one) == 0;
}

void crac_bounded_unpin(const uint64_t old[CRAC_PIN_WORDS])
{
	syscall(SYS_sched_setaffinity, 0, PIN_MASK_BYTES, old);
}

static int bounded_start(struct crac_bounded *b, void (*fn)(void *), void *arg, char *stack, int files, int keep0,
			 int keep1)
{
	crac_bounded_reap();
	b->pid = 0;
	b->ctl = NULL;
	b->stack = stack;
	b->own_stack = false;
	if (syscall(SYS_prctl, PR_GET_SECCOMP, 0, 0, 0, 0) != 0)
		return -EPERM;
	if (!b->stack) {
		b->stack = (char *)syscall(SYS_mmap, NULL, CRAC_BOUNDED_STACK, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (b->stack == MAP_FAILED) {
			b->stack = NULL;
			return -ENOMEM;
		}
		b->own_stack = true;
	}
	/* its ctl at the top of its stack; the stack proper below it */
	b->ctl = (struct crac_bounded_ctl *)(void *)(b->stack + CRAC_BOUNDED_STACK - CTL_ROOM);
	*b->ctl = (struct crac_bounded_ctl){
		.fn = fn, .arg = arg, .parent = (int)syscall(SYS_getpid), .own_files = !files, .keep = { keep0, keep1 },
	};
	/* Every signal blocked in the helper (it inherits the mask). */
	uint64_t all = ~0ull, old = 0, cpus[CRAC_PIN_WORDS];
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof(all));
	bool pinned = crac_bounded_pin(cpus);
	int pid = clone(bounded_main, b->ctl, CLONE_VM | files | CLONE_FS, b->ctl);
	int e = errno;
	if (pinned)
		crac_bounded_unpin(cpus);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof(old));
	if (pid <= 0) {
		bounded_release(b);
		return pid < 0 ? -e : -ECHILD;
	}
	b->pid = pid;
	return 0;
}

int crac_bounded_start(struct crac_bounded *b, void (*fn)(void *), void *arg, char *stack)
{
	return bounded_start(b, fn, arg, stack, CLONE_FILES, -1, -1);
}

int crac_bounded_start_own(struct crac_bounded *b, void (*fn)(void *), void *arg, char *stack, int keep0,
			   int keep1)
{
	return bounded_start(b, fn, arg, stack, 0, keep0, keep1);
}

bool crac_bounded_done(const struct crac_bounded *b)
{
	return !b->pid || __atomic_load_n(&b->ctl->done, __ATOMIC_ACQUIRE);
}

/*
 * A helper that did not finish in time: killed; it ends at once unless its
 * call still does not return (up to 100 ms are given to see it end).
 *
 * Once this returns, the helper runs no instruction of ours again, in
 * every mode: a task that is not on a CPU is in the kernel, and with
 * SIGKILL pending it never goes back to user mode; one on a CPU in user
 * mode is sent into the kernel at once (the kill interrupts it), long
 * before the first look 10 ms later. So fn writes nothing into the
 * caller's memory after it was given up on (the caller's frame may be gone
 * by then); only a call still in the kernel may have the kernel write its
 * results when it returns, into what the call names: the helper's calls
 * name its own stack (and the ctl there), kept mapped until it is reaped.
 * The tests' modes keep to it too: CRAC_TEST_BOUNDED_UNREAPED=1, as if its
 * call did not return: killed, and seen dead (WNOWAIT), but left unreaped;
 * =2, nor the kill taking effect until the test sends it: stopped
 * (SIGSTOP), and seen stopped, so that it runs nothing meanwhile either.
 */
static void bounded_give_up(struct crac_bounded *b)
{
	const char *t = getenv("CRAC_TEST_BOUNDED_UNREAPED");
	int mode = t && (*t == '1' || *t == '2') ? *t - '0' : 0;
	long r = 0;

	syscall(SYS_kill, b->pid, mode == 2 ? SIGSTOP : SIGKILL);
	for (int k = 0; k < 10; k++) {
		if (mode) {
			/* (tests: seen dead, or stopped, but left as it is) */
			siginfo_t si;
			si.si_pid = 0;
			if (syscall(SYS_waitid, P_PID, b->pid, &si,
				    (mode == 2 ? WSTOPPED : WEXITED) | WNOWAIT | WNOHANG | __WCLONE, NULL) == 0 &&
			    si.si_pid == b->pid)
				break;
		} else if ((r = syscall(SYS_wait4, b->pid, NULL, __WCLONE | WNOHANG, NULL)) != 0) {
			break;
		}
		struct timespec ts = { 0, 10000000 };
		syscall(SYS_nanosleep, &ts, NULL);
	}
	if (r == 0) {
		/* Killed, it runs no instruction of ours again; but its call
		 * may still return into its stack: kept until it is reaped */
		orphan_add(b->pid, b->own_stack ? b->stack : NULL);
		b->own_stack = false;   /* (the table's now, or kept for ever) */
	}
	bounded_release(b);
}

int crac_bounded_wait(struct crac_bounded *b, int64_t deadline_ns, long grace_ms, int64_t *waited_ms)
{
	*waited_ms = -1;
	if (!b->pid)
		return 0;
	int64_t start = crac_bounded_mono_ns(), until = start + grace_ms * 1000000LL;
	if (deadline_ns > until)
		until = deadline_ns;
	while (!__atomic_load_n(&b->ctl->done, __ATOMIC_ACQUIRE)) {
		int64_t now = crac_bounded_mono_ns();
		if (now >= until) {
			bounded_give_up(b);
			*waited_ms = (now - start) / 1000000;
			return -ETIMEDOUT;
		}
		struct timespec ts = { (until - now) / 1000000000LL, (until - now) % 1000000000LL };
		syscall(SYS_futex, &b->ctl->done, FUTEX_WAIT, 0, &ts, NULL, 0);
	}
	/* through: it only exits now */
	while (syscall(SYS_wait4, b->pid, NULL, __WCLONE, NULL) < 0 && errno == EINTR)
		;
	bounded_release(b);
	return 0;
}
