/* SPDX-License-Identifier: MIT */
/*
 * bounded.h - system calls that may never return (an fsync, an unlink on a
 * file system whose server stopped answering), made by a short-lived
 * helper and waited for until a deadline (see bounded.c).
 *
 * Used by the image directory's operations (image/dir.c: the commit's
 * fsync, the removal of an image directory, the image engine's fsyncs
 * without a helper of its own) and by the image engine's fsync helpers
 * (engines/image_capture.c), which run on the other core while the
 * checkpoint goes on.
 */
#ifndef CRAC_IMAGE_BOUNDED_H
#define CRAC_IMAGE_BOUNDED_H

#include "core/internal.h"

#include <stdbool.h>
#include <stdint.h>

/* A wait lasts at least this long (CRAC_TEST_SYNC_GRACE_MS for tests),
 * however near the deadline. */
#define CRAC_BOUNDED_GRACE_MS 30000
/* The helper's stack. */
#define CRAC_BOUNDED_STACK (64u << 10)

/* What a helper reads and writes of its own (bounded.c): at the top of its
 * stack, which stays mapped until the helper is gone. */
struct crac_bounded_ctl;

/*
 * One helper. The helper runs fn(arg) with raw system calls only (it
 * shares the caller's memory, descriptors and TLS: errno, locks and
 * signal handlers are not its own), on a stack of its own, every signal
 * blocked. It never touches this structure: what it is to do and its
 * `done` are in its ctl, at the top of its stack (a helper given up on
 * may outlive the caller's frame that holds this).
 */
struct crac_bounded {
	int pid;                /* 0: not running */
	struct crac_bounded_ctl *ctl;   /* at the top of stack */
	char *stack;            /* CRAC_BOUNDED_STACK bytes (the ctl's included) */
	bool own_stack;         /* mapped by crac_bounded_start: unmapped when the helper is gone */
};

/* A system call without libc (no errno): -errno or the result. For the
 * helper's fn. */
static inline long crac_raw_syscall3(long nr, long a, long b, long c)
{
	long r;

	__asm__ volatile("syscall" : "=a"(r) : "0"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return r;
}

/* The same with five arguments (renameat2, newfstatat, pread64). */
static inline long crac_raw_syscall5(long nr, long a, long b, long c, long d, long e)
{
	long r;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;

	__asm__ volatile("syscall" : "=a"(r) : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
			 : "rcx", "r11", "memory");
	return r;
}

/* The same with six (mmap). */
static inline long crac_raw_syscall6(long nr, long a, long b, long c, long d, long e, long f)
{
	long r;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;

	__asm__ volatile("syscall" : "=a"(r) : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return r;
}

/* Binds what the helpers need (clone: lazy binding writes the GOT), before
 * the program's threads are stopped. */
void crac_bounded_prepare(void) CRAC_HIDDEN;

/* Narrows the calling thread's CPU affinity to the CPU it runs on (a clone
 * made now inherits it: a helper of ours that starts there at once, see
 * bounded.c) and saves the old mask; true if it did. crac_bounded_unpin
 * puts the old mask back. Raw system calls. */
#define CRAC_PIN_WORDS 16   /* 1024 CPUs; a larger machine: not narrowed */
bool crac_bounded_pin(uint64_t old[CRAC_PIN_WORDS]) CRAC_HIDDEN;
void crac_bounded_unpin(const uint64_t old[CRAC_PIN_WORDS]) CRAC_HIDDEN;

/* CRAC_BOUNDED_GRACE_MS, or CRAC_TEST_SYNC_GRACE_MS when set (tests). */
long crac_bounded_grace_ms(void) CRAC_HIDDEN;

/* CLOCK_MONOTONIC in ns. */
int64_t crac_bounded_mono_ns(void) CRAC_HIDDEN;

/* Sleeps ms ms with a raw system call (the test doubles of a file system
 * that does not answer; for the helper's fn). */
void crac_bounded_test_sleep(long ms) CRAC_HIDDEN;

/* Reaps the helpers given up on earlier whose call has returned since. */
void crac_bounded_reap(void) CRAC_HIDDEN;

/*
 * Starts a helper running fn(arg) on `stack` (CRAC_BOUNDED_STACK bytes;
 * NULL: mapped here). 0, or -errno when there is none (under a seccomp
 * filter, which may kill the process for a clone it did not expect:
 * -EPERM; clone or mmap refused): nothing was run then, the caller does
 * it itself. b must stay in place until the helper is waited for; a stack
 * given must stay until the helper is gone (reaped: crac_bounded_reap for
 * one given up on), as the one mapped here does. fn's writes to arg
 * happen only while the caller waits: once crac_bounded_wait has given up
 * on the helper, it runs no instruction of ours again (bounded.c); a call
 * of its that returns later may still have the kernel write its results,
 * which is why the helper's calls write into its own stack only.
 */
int crac_bounded_start(struct crac_bounded *b, void (*fn)(void *), void *arg, char *stack) CRAC_HIDDEN;

/*
 * The same, but the helper has a table of descriptors of its own (a copy
 * of the caller's, of which it closes all but keep0 and keep1 (-1: none)
 * before fn runs). A descriptor it opens is not in the caller's table, so
 * one whose call returns after the helper was given up on (killed), or
 * that a killed helper had open, ends with it: nothing leaks into the
 * caller. (To hand a descriptor back: SCM_RIGHTS over a socket kept.)
 */
int crac_bounded_start_own(struct crac_bounded *b, void (*fn)(void *), void *arg, char *stack, int keep0,
			   int keep1) CRAC_HIDDEN;
/* Has the helper's fn returned (or is there none)? Does not wait. */
bool crac_bounded_done(const struct crac_bounded *b) CRAC_HIDDEN;

/*
 * Waits for the helper: until deadline_ns (CLOCK_MONOTONIC; 0: none), and
 * no sooner than grace_ms after the wait began (0 with no deadline: only
 * if it is already through). 0 when it is through (and reaped; *waited_ms
 * is -1), or -ETIMEDOUT when it was given up on: killed (SIGKILL: whenever
 * its call returns, it runs nothing of ours again), reaped at once if it
 * can be, else by a later crac_bounded_reap; *waited_ms says how long it
 * was waited for. Either way b->pid is 0 afterwards.
 */
int crac_bounded_wait(struct crac_bounded *b, int64_t deadline_ns, long grace_ms, int64_t *waited_ms) CRAC_HIDDEN;

#endif
