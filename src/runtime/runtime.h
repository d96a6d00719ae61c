/* SPDX-License-Identifier: MIT */
/*
 * runtime.h - the restore-time environment (clock, randomness, identity,
 * new args/env, secrets): what its files share with each other, with the
 * engines and with the unit tests. Not installed; every symbol is hidden.
 *
 * The core only calls the two hooks declared in core/internal.h:
 * crac__runtime_checkpointing() and crac__runtime_restored()
 * (runtime/restore.c). The functions below split that work by topic and
 * give the image engine the few extra entry points it needs; see the
 * comments for when it must call them.
 */
#ifndef CRAC_RUNTIME_H
#define CRAC_RUNTIME_H

#include "core/internal.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

/* ---- clock (runtime/clock.c) -------------------------------------------- */

/*
 * Records what the restore side compares against: the boot id, the wall
 * clock and the crac monotonic clock. Called at the start of every round
 * (before the before_checkpoint callbacks), so that a record always exists.
 */
void crac__clock_checkpointing(void) CRAC_HIDDEN;

/*
 * Refreshes the record of the round in progress, so that it is as late as
 * possible (see clock.c). Called by the built-in "crac-clock" resource,
 * the last before_checkpoint of every round; image engines should call it
 * again once the other threads are stopped, right before memory is written.
 * Without that, a thread that kept running between the last before_checkpoint
 * and the snapshot may, after a restore onto a boot whose wall clock is
 * behind, see the clock stand still for that long (never go backwards by
 * more than that).
 */
void crac__clock_snapshot_point(void) CRAC_HIDDEN;

/*
 * Moves the offset of crac_clock_monotonic_ns() for a restored process
 * (the CRaC rule, see clock.c) and, if `ev` is not NULL, fills
 * ev->realtime_jump, ev->monotonic_offset and ev->boot_changed. The offset
 * is computed once per checkpoint record: calling it again before the next
 * checkpoint only fills the event (so an engine may call it early, see
 * crac__runtime_restore_early, and the core's hook later).
 */
void crac__clock_restored(crac_event *ev) CRAC_HIDDEN;

/*
 * Sends `signo` to every thread of the process except the caller
 * (tgkill over /proc/self/task). An image engine calls it after restore,
 * with a signal whose handler it installed WITHOUT SA_RESTART, so that
 * threads that were sleeping or in timed waits at checkpoint return EINTR
 * (or wake spuriously) and re-check their deadlines against the new clock.
 * Returns the number of threads signalled or a negative errno.
 */
int crac__wake_threads(int signo) CRAC_HIDDEN;

/*
 * Test hook: simulates the machine the process will find itself on at the
 * NEXT restore (the next crac__clock_restored that computes an offset):
 * boot id `boot_id` (NULL: the real one), CLOCK_REALTIME shifted by
 * `realtime_shift_ns` and CLOCK_MONOTONIC shifted by `monotonic_shift_ns`
 * against the real clocks (a new boot usually has a much smaller monotonic
 * clock: pass a large negative shift). From that restore on, the clock
 * module reads the simulated clocks everywhere (so that further rounds see
 * a consistent world) until crac__clock_test_reset(). Shifts are absolute
 * (against the real clocks), not cumulative.
 */
void crac__clock_test_next_restore(const char *boot_id, int64_t realtime_shift_ns,
				   int64_t monotonic_shift_ns) CRAC_HIDDEN;
/* Test hook: back to the real clocks and offset 0, no checkpoint record. */
void crac__clock_test_reset(void) CRAC_HIDDEN;

/* ---- random (runtime/random.c) ------------------------------------------ */

/*
 * Marks every thread's crac_random_u64 generator stale: each reseeds from
 * getrandom on its next call. Cheap (one atomic increment); may be called
 * more than once per restore.
 */
void crac__random_restored(void) CRAC_HIDDEN;

/* Test hook: how many times the calling thread's generator was seeded. */
uint64_t crac__random_thread_seedings(void) CRAC_HIDDEN;

/* ---- new args/env (runtime/restore.c) ----------------------------------- */

/*
 * Keeps a copy of the round's new args/env for crac_restore_args() (frees
 * the previous one) and exports each KEY=VALUE of the new environment with
 * setenv(); problems go to r->report. Called from crac__runtime_restored().
 */
void crac__args_restored(struct crac_round *r) CRAC_HIDDEN;

/* ---- for image engines -------------------------------------------------- */

/*
 * For image engines, in the restored process, as early as possible: after
 * memory and the current thread are back and BEFORE the other threads are
 * recreated/released. Moves the monotonic clock offset (so that no thread
 * ever reads the new boot's CLOCK_MONOTONIC with the old offset) and marks
 * the random generators stale (so that no thread draws from the image's
 * generator state), and gives the instance its new identity (so that no
 * thread reads the image's instance id: crac__identity_restored_early).
 * The core's crac__runtime_restored() later fills the event without moving
 * the offset again, and crac__new_identity() reports the identity without
 * renewing it again. Does not allocate; takes the clock module's mutex
 * (not held by anyone while a thread is stopped inside crac code, since
 * nothing else takes it outside a round) and tries crac__lock.
 */
void crac__runtime_restore_early(void) CRAC_HIDDEN;
/* identity.c: renews the instance id and generation now, unless a thread
 * stopped in the image holds crac__lock (then crac__new_identity does). */
void crac__identity_restored_early(void) CRAC_HIDDEN;

/* ---- the kernel (runtime/kernel.c) -------------------------------------- */

/* Is feature named in $CRAC_PRETEND_MISSING (tests of the fallbacks)? */
bool crac__pretend_missing(const char *feature) CRAC_HIDDEN;
/* `crac check` with no PID: one line per kernel feature the image engine
 * uses; returns how many missing ones make a restore impossible. */
int crac__kernel_report(FILE *f) CRAC_HIDDEN;

/* ---- what the process holds (runtime/inventory.c) ----------------------- */

/*
 * Is `path` (as /proc/self/maps names a mapping) the performance-data file
 * of a JVM whose pid is `pid`: /tmp/hsperfdata_USER/PID? HotSpot creates it
 * at start (unless -XX:-UsePerfData or -XX:+PerfDisableSharedMem), maps it
 * shared and writable, closes it and writes its counters there (jstat and
 * jcmd read them); it is the JVM's own file, written by it alone, named by
 * its pid, removed at its exit. The image engine stores its content and
 * restores it as private memory (image_capture.c); the checks accept it
 * for an engine that does so (checks.c). Pure string work: safe while the
 * other threads are stopped.
 */
bool crac__jvm_perfdata(const char *path, long pid) CRAC_HIDDEN;

/*
 * POSIX timers (timer_create(2)) that the image engine carries: created
 * again at restore with the same id (PR_TIMER_CREATE_RESTORE_IDS, Linux
 * 6.14), clock, signal and value, armed with the time they had left
 * (image_capture.c, image_restore.c). `notify` is what /proc/self/timers
 * says after "notify: " ("signal/pid.123"), `clock` its ClockID. NULL if
 * carried, else why not (a constant string). Safe while the other threads
 * are stopped.
 */
const char *crac__posix_timer_refusal(const char *notify, long clock) CRAC_HIDDEN;

#endif /* CRAC_RUNTIME_H */
