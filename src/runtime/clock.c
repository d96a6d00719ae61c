/* SPDX-License-Identifier: MIT */
/*
 * clock.c - a monotonic clock that never goes backwards across restores.
 *
 * crac_clock_monotonic_ns() = CLOCK_MONOTONIC + offset. The offset lives in
 * process memory (so an image carries it, together with the checkpoint
 * record below) and changes only when a restore is processed
 * (crac__clock_restored, called from crac__runtime_restored or earlier by an
 * image engine). Readers do one vDSO clock_gettime and one relaxed atomic
 * load: no lock, no system call.
 *
 * The rule (OpenJDK CRaC's): at checkpoint we record the boot id
 * (/proc/sys/kernel/random/boot_id), CLOCK_REALTIME (R0) and the crac
 * monotonic value (C). At restore, with R1 = CLOCK_REALTIME now and
 * M = CLOCK_MONOTONIC now:
 *   - boot id changed: the clock continues from C, advanced by the
 *     wall-clock gap, a negative gap counting as 0:
 *         offset = C + max(0, R1 - R0) - M
 *     (The offset may come out negative, or smaller than before: it is an
 *     offset against another boot's CLOCK_MONOTONIC.)
 *   - same boot: CLOCK_MONOTONIC itself has not gone backwards, so the
 *     offset is kept, unless the process now runs with a clock that is
 *     behind the record (another time namespace): then it grows just enough:
 *         offset = max(offset, C - M)
 *   - boot id unreadable (no /proc): both rules, whichever gives the larger
 *     offset (a forward jump is harmless; a backward one is not).
 * The event of the restore gets realtime_jump = R1 - R0, monotonic_offset =
 * what crac_clock_monotonic_ns() now adds to CLOCK_MONOTONIC, and
 * boot_changed = 1 if both boot ids were read and differ.
 *
 * Readers on other threads during the update see either the old or the new
 * offset. On the same boot the new one is never smaller, so no reader sees
 * time go backwards. After a boot change the old offset is meaningless with
 * the new CLOCK_MONOTONIC, so the offset must be moved before any other
 * thread runs: image engines call crac__runtime_restore_early() before they
 * release the restored threads (runtime.h).
 *
 * When the record is taken. C must not be smaller than any value a thread
 * read before the snapshot, or the clock would seem to step back by the
 * difference when the wall-clock gap is negative (after a boot change). So:
 *   - the round records once when it starts (crac__runtime_checkpointing),
 *     so that a record always exists;
 *   - a built-in resource "crac-clock" with the highest possible priority
 *     (INT_MAX: the last before_checkpoint of all, after user callbacks and
 *     the safety checks) records again, so values read by any callback are
 *     <= C; with the in-process engines (sim, pause) that is the moment of
 *     the snapshot;
 *   - an image engine calls crac__clock_snapshot_point() once the other
 *     threads are stopped, just before it writes memory.
 * Threads that keep running between the last record and the snapshot (an
 * engine that does not stop them) can still read values above C; after a
 * restore onto a boot whose wall clock is behind, they can see the clock
 * step back by at most the length of that window.
 *
 * Sleepers and timed waits (DESIGN.md section 6: "woken after restore so
 * they re-check their deadlines"). A thread that was in nanosleep,
 * clock_nanosleep, poll/epoll_wait/select with a timeout, or a futex wait
 * (pthread_cond_timedwait, sem_timedwait) at checkpoint has a deadline
 * computed against the old clocks. The library cannot interrupt those calls
 * by itself without owning a signal, so this is the image engine's part:
 *   - a thread stopped inside such a call is recreated returning EINTR from
 *     it (never restarted with the old timeout or via restart_syscall), and
 *   - once the restore is complete the engine calls crac__wake_threads(signo)
 *     with the signal it quiesces threads with, its handler installed
 *     without SA_RESTART, so that threads that went back to sleep before
 *     the restore finished are interrupted once more.
 * Code that recomputes its deadline from crac_clock_monotonic_ns() after
 * EINTR or a spurious wake-up then waits for the right time. Waits whose
 * absolute deadline lives in a kernel clock and is retried unchanged by
 * libc (pthread_cond_timedwait on CLOCK_MONOTONIC, clock_nanosleep with
 * TIMER_ABSTIME) still see the new boot's CLOCK_MONOTONIC; only a time
 * namespace whose monotonic offset the engine sets (privileged, FACTS.md)
 * makes those exact. The pause engine needs nothing: the process stays on
 * the same kernel, whose clocks its sleepers already use.
 */
#include "runtime/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"
#define BOOT_ID_LEN 40   /* 36 characters of a UUID, NUL, slack */

/* What crac_clock_monotonic_ns() adds to the real CLOCK_MONOTONIC. The only
 * thing readers touch. */
static _Atomic int64_t published_offset;

/* Everything below is guarded by `lock`. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Offset against the (possibly simulated) CLOCK_MONOTONIC. */
static int64_t offset;

/* The checkpoint record and what the last restore computed from it. */
static struct {
	bool have;              /* a record exists */
	bool restored;          /* the offset was already moved for it */
	char boot_id[BOOT_ID_LEN]; /* "" if unreadable */
	int64_t realtime;       /* R0 */
	int64_t crac_mono;      /* C */
	int64_t jump;           /* R1 - R0 of the restore */
	int boot_changed;
} ck;

/*
 * Test simulation (crac__clock_test_next_restore): the world the process
 * runs in now (`sim_now`) and the one it will find at the next restore.
 */
struct sim_world {
	bool boot_set;
	char boot_id[BOOT_ID_LEN];
	int64_t realtime_shift;
	int64_t monotonic_shift;
};
static struct sim_world sim_now, sim_next;
static bool sim_next_armed;

static int64_t real_now(clockid_t clk)
{
	struct timespec ts;

	if (clock_gettime(clk, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* CLOCK_MONOTONIC / CLOCK_REALTIME as this module sees them (simulated in
 * tests). Lock held. */
static int64_t raw_monotonic(void)
{
	return real_now(CLOCK_MONOTONIC) + sim_now.monotonic_shift;
}

static int64_t raw_realtime(void)
{
	return real_now(CLOCK_REALTIME) + sim_now.realtime_shift;
}

/* Reads the boot id into buf ("" if unreadable). No allocation, no stdio:
 * safe early in a restored process. Lock held. */
static void read_boot_id(char buf[BOOT_ID_LEN])
{
	ssize_t n;
	int fd;

	buf[0] = '\0';
	if (sim_now.boot_set) {
		memcpy(buf, sim_now.boot_id, BOOT_ID_LEN);
		return;
	}
	fd = open(BOOT_ID_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	do
		n = read(fd, buf, BOOT_ID_LEN - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0) {
		buf[0] = '\0';
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* Makes `offset` visible to readers. Lock held. */
static void publish(void)
{
	atomic_store_explicit(&published_offset, offset + sim_now.monotonic_shift,
			      memory_order_release);
}

int64_t crac_clock_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec +
		atomic_load_explicit(&published_offset, memory_order_relaxed);
}

int crac_clock_monotonic(struct timespec *ts)
{
	int64_t ns;

	if (!ts)
		return -EINVAL;
	ns = crac_clock_monotonic_ns();
	/* Normalised so that 0 <= tv_nsec < 1e9 even if ns were negative
	 * (it cannot be in practice: it starts at the boot's CLOCK_MONOTONIC
	 * and never goes backwards). */
	ts->tv_sec = (time_t)(ns / 1000000000LL);
	ts->tv_nsec = (long)(ns % 1000000000LL);
	if (ts->tv_nsec < 0) {
		ts->tv_nsec += 1000000000L;
		ts->tv_sec--;
	}
	return 0;
}

static void record_locked(void)
{
	ck.have = true;
	ck.restored = false;
	read_boot_id(ck.boot_id);
	ck.realtime = raw_realtime();
	ck.crac_mono = raw_monotonic() + offset;
	ck.jump = 0;
	ck.boot_changed = 0;
}

void crac__clock_checkpointing(void)
{
	pthread_mutex_lock(&lock);
	record_locked();
	pthread_mutex_unlock(&lock);
}

void crac__clock_snapshot_point(void)
{
	pthread_mutex_lock(&lock);
	/* Only refresh a record of the round in progress, never one a restore
	 * already used. */
	if (ck.have && !ck.restored)
		record_locked();
	pthread_mutex_unlock(&lock);
}

/* Applies the rule above to the record. Lock held. */
static void move_offset_locked(void)
{
	char boot_now[BOOT_ID_LEN];
	int64_t realtime_now, mono_now, jump, changed_rule, same_rule;
	bool known, changed;

	if (sim_next_armed) {
		/* The simulated machine the test prepared for this restore. */
		sim_now = sim_next;
		sim_next_armed = false;
	}
	read_boot_id(boot_now);
	realtime_now = raw_realtime();
	mono_now = raw_monotonic();

	known = ck.boot_id[0] && boot_now[0];
	changed = known && strcmp(ck.boot_id, boot_now) != 0;
	jump = realtime_now - ck.realtime;

	/* Continue from C, plus the wall-clock gap if it is positive. */
	changed_rule = ck.crac_mono + (jump > 0 ? jump : 0) - mono_now;
	/* Keep the offset, but never let the clock fall behind C. */
	same_rule = ck.crac_mono - mono_now > offset ? ck.crac_mono - mono_now : offset;

	if (changed)
		offset = changed_rule;
	else if (known)
		offset = same_rule;
	else
		offset = changed_rule > same_rule ? changed_rule : same_rule;

	publish();
	ck.restored = true;
	ck.jump = jump;
	ck.boot_changed = changed ? 1 : 0;
}

void crac__clock_restored(crac_event *ev)
{
	pthread_mutex_lock(&lock);
	if (ck.have && !ck.restored)
		move_offset_locked();
	if (ev) {
		ev->realtime_jump = ck.have ? ck.jump : 0;
		ev->monotonic_offset = atomic_load_explicit(&published_offset, memory_order_relaxed);
		ev->boot_changed = ck.have ? ck.boot_changed : 0;
	}
	pthread_mutex_unlock(&lock);
}

/* The "crac-clock" resource: the last before_checkpoint of every round. */
static int clock_before_checkpoint(const crac_event *ev, void *arg)
{
	(void)ev;
	(void)arg;
	crac__clock_snapshot_point();
	return 0;
}

__attribute__((constructor)) static void register_clock_resource(void)
{
	struct crac_resource_def def = {
		.name = "crac-clock",
		.before_checkpoint = clock_before_checkpoint,
		.priority = INT_MAX,
	};

	/* On ENOMEM at start-up the round's first record is used instead. */
	(void)crac_register(NULL, &def, NULL);
}

int crac__wake_threads(int signo)
{
	pid_t pid = getpid();
	long self = syscall(SYS_gettid);
	struct dirent *de;
	DIR *d;
	int count = 0;

	d = opendir("/proc/self/task");
	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long tid = strtol(de->d_name, &end, 10);
		if (*end || tid <= 0 || tid == self)
			continue;
		/* A thread may have exited since readdir: ESRCH is fine. */
		if (syscall(SYS_tgkill, pid, tid, signo) == 0)
			count++;
	}
	closedir(d);
	return count;
}

void crac__clock_test_next_restore(const char *boot_id, int64_t realtime_shift_ns,
				   int64_t monotonic_shift_ns)
{
	pthread_mutex_lock(&lock);
	memset(&sim_next, 0, sizeof(sim_next));
	if (boot_id) {   /* NULL: boot_set stays false, the real id is read */
		sim_next.boot_set = true;
		strncpy(sim_next.boot_id, boot_id, BOOT_ID_LEN - 1);
	}
	sim_next.realtime_shift = realtime_shift_ns;
	sim_next.monotonic_shift = monotonic_shift_ns;
	sim_next_armed = true;
	pthread_mutex_unlock(&lock);
}

void crac__clock_test_reset(void)
{
	pthread_mutex_lock(&lock);
	memset(&sim_now, 0, sizeof(sim_now));
	memset(&sim_next, 0, sizeof(sim_next));
	sim_next_armed = false;
	memset(&ck, 0, sizeof(ck));
	offset = 0;
	publish();
	pthread_mutex_unlock(&lock);
}
