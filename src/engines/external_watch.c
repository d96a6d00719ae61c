/* SPDX-License-Identifier: MIT */
/*
 * external_watch.c - the external engine notices snapshots nobody announced.
 *
 * A VM can be snapshotted at any moment and restored later, any number of
 * times; the processes in it are not told. A watcher thread samples, every
 * $CRAC_EXTERNAL_POLL_MS (default 250 ms; at once when the VMClock device
 * notifies):
 *   - the VM generation counter of the VMClock device ($CRAC_EXTERNAL_VMCLOCK,
 *     default /dev/vmclock0; struct vmclock_abi of linux/vmclock-abi.h, used
 *     only when its VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT flag is set): the
 *     hypervisor changes it on every restore from a snapshot (not on live
 *     migration, which only moves disruption_marker);
 *   - a generation file, $CRAC_EXTERNAL_GENERATION_FILE: any change of its
 *     first line, of any length (up to GEN_LINE_MAX bytes are compared,
 *     through a hash; a platform may publish a generation there; tests do);
 *     a sample that cannot read a source (missing, empty, not a regular
 *     file) is no change: the source keeps its last value (keep_known());
 *   - the boot id (/proc/sys/kernel/random/boot_id): a restore onto another
 *     boot (a container restored on another machine);
 *   - CLOCK_REALTIME - CLOCK_MONOTONIC and CLOCK_BOOTTIME - CLOCK_MONOTONIC:
 *     a paused VM's monotonic clock stands still while the wall clock (once
 *     corrected) and the boot clock move on; a jump of more than
 *     $CRAC_EXTERNAL_JUMP_MS (default 2000 ms) between two samples counts.
 *     A suspend that logind did not announce to us, or a step of the wall
 *     clock (NTP) past the threshold, counts too: a needless new identity
 *     costs little, a shared one can cost much.
 * On a change, outside any checkpoint round: the after_restore callbacks
 * of every registered resource run with outcome CRAC_RESTORED and
 * ev->unannounced = 1, after a new instance id, generation + 1, the clock
 * rule and the reseeding of crac's generators (as for any restore). No
 * before_checkpoint ran: the snapshot was not announced.
 *
 * Between samples the watcher records the clock state (boot id, wall and
 * monotonic clocks) as a checkpoint would, so that a restore onto another
 * boot keeps crac_clock_monotonic_ns() going forward. The program runs with
 * its old identity for up to one poll interval after a restore.
 *
 * Test hooks: $CRAC_EXTERNAL_TEST_REALTIME_OFFSET_FILE (milliseconds added
 * to CLOCK_REALTIME as the watcher sees it) and
 * $CRAC_EXTERNAL_TEST_BOOT_ID_FILE (read instead of the kernel's boot id).
 */
#include "engines/external.h"
#include "core/core.h"
#include "runtime/checks.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_POLL_MS 250
#define DEFAULT_JUMP_MS 2000
#define DEFAULT_RESTORE_DEADLINE_MS 10000
#define GEN_LINE_MAX (64 * 1024)   /* bytes of the generation file's first line compared */

/*
 * struct vmclock_abi (include/uapi/linux/vmclock-abi.h), the fields we read,
 * by offset (little-endian): magic 0 (u32 "VCLK"), size 4 (u32), version 8
 * (u16), seq_count 12 (u32, odd while the hypervisor updates), flags 24
 * (u64), vm_generation_counter 104 (u64, present if size >= 112).
 */
#define VMCLOCK_MAGIC 0x4b4c4356u
#define VMCLOCK_OFF_SIZE 4
#define VMCLOCK_OFF_SEQ 12
#define VMCLOCK_OFF_FLAGS 24
#define VMCLOCK_OFF_VMGEN 104
#define VMCLOCK_MIN_SIZE 112
#define VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT (1ull << 8)
#define VMCLOCK_FLAG_NOTIFICATION_PRESENT (1ull << 9)

struct sample {
	bool vmgen_ok;
	uint64_t vmgen;
	bool file_ok;
	char file[128];               /* its first line, cut short (for messages) */
	uint64_t file_hash;           /* the whole first line (up to GEN_LINE_MAX): compared */
	bool boot_ok;
	char boot[40];
	int64_t realtime, monotonic;  /* real clocks, for the event */
	int64_t rt_off, bt_off;       /* REALTIME (+ test offset) / BOOTTIME - MONOTONIC */
};

static const char *vmclock_path, *gen_path, *rt_fake_path, *boot_path;
static int vmclock_fd = -1;
static bool vmclock_notifies;
static int64_t jump_ns, poll_ms;
static struct sample base;

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * Reads the VM generation counter: true and *gen when the device has one.
 * The driver's read() copies under the sequence count itself; a plain file
 * (tests) is read twice until seq_count is even and unchanged.
 */
static bool read_vmclock(uint64_t *gen)
{
	unsigned char a[VMCLOCK_MIN_SIZE];

	if (vmclock_fd < 0)
		return false;
	for (int tries = 0; tries < 100; tries++) {
		if (pread(vmclock_fd, a, sizeof(a), 0) != (ssize_t)sizeof(a))
			return false;
		if (le32(a) != VMCLOCK_MAGIC || le32(a + VMCLOCK_OFF_SIZE) < VMCLOCK_MIN_SIZE ||
		    !(le64(a + VMCLOCK_OFF_FLAGS) & VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT))
			return false;
		uint32_t seq = le32(a + VMCLOCK_OFF_SEQ);
		*gen = le64(a + VMCLOCK_OFF_VMGEN);
		if (seq & 1)
			continue;
		unsigned char b[VMCLOCK_OFF_SEQ + 4];
		if (pread(vmclock_fd, b, sizeof(b), 0) == (ssize_t)sizeof(b) &&
		    le32(b + VMCLOCK_OFF_SEQ) == seq)
			return true;
	}
	return false;
}

/* FNV-1a, 64 bits, continued from h over [p, p + n). */
static uint64_t fnv1a(uint64_t h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
	return h;
}

/*
 * The hash of the first line of fd, whose first n bytes (read already) are
 * in buf: read on up to its newline, at most GEN_LINE_MAX bytes in all.
 */
static uint64_t line_hash(int fd, const char *buf, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t total = 0;
	char more[4096];

	for (;;) {
		const char *nl = memchr(buf, '\n', n);
		size_t take = nl ? (size_t)(nl - buf) : n;
		if (take > GEN_LINE_MAX - total)
			take = GEN_LINE_MAX - total;
		h = fnv1a(h, buf, take);
		total += take;
		if (nl || total >= GEN_LINE_MAX)
			return h;
		ssize_t got = read(fd, more, sizeof(more));
		if (got <= 0)
			return h;
		buf = more;
		n = (size_t)got;
	}
}

/*
 * Reads a small text file (first line, trimmed): false if it is missing,
 * unreadable or empty. Only a regular file is read: a FIFO (opening it
 * would let a blocked writer go on, reading it would take its data), a
 * device or a socket is not even opened, and said once (*warned) at info
 * level. /proc files are regular. A symbolic link is followed (a platform
 * may publish its generation through one); the type is checked again on
 * the descriptor, in case the path changed between stat() and open().
 * With hash: *hash is that of the whole first line (up to GEN_LINE_MAX
 * bytes), which may be longer than buf holds.
 */
static bool read_small(const char *path, const char *what, bool *warned, char *buf, size_t len, uint64_t *hash)
{
	struct stat st;
	ssize_t n;
	int fd;

	buf[0] = '\0';
	if (!path || stat(path, &st) < 0)
		return false;
	if (S_ISREG(st.st_mode) && (fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) >= 0) {
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			n = read(fd, buf, len - 1);
			if (n > 0 && hash)
				*hash = line_hash(fd, buf, (size_t)n);
			close(fd);
			if (n <= 0)
				return false;
			buf[n] = '\0';
			buf[strcspn(buf, "\n")] = '\0';
			return buf[0] != '\0';
		}
		close(fd);
	}
	if (!S_ISREG(st.st_mode) && !*warned) {
		*warned = true;
		crac__ext_info("the %s %s is not a regular file (mode %06o): it is not read", what, path,
			       (unsigned)st.st_mode);
	}
	return false;
}

/*
 * A source that could not be read in this sample (the file missing, empty,
 * being rewritten; the VMClock page truncated) says nothing: it keeps the
 * value of the baseline, so that the next readable value is compared with
 * the last one seen. Otherwise a rewrite in place would count twice ("1" to
 * "" to "2") and a change made while the file was missing not at all.
 */
static void keep_known(struct sample *cur, const struct sample *old)
{
	if (!cur->vmgen_ok && old->vmgen_ok) {
		cur->vmgen_ok = true;
		cur->vmgen = old->vmgen;
	}
	if (!cur->file_ok && old->file_ok) {
		cur->file_ok = true;
		memcpy(cur->file, old->file, sizeof(cur->file));
		cur->file_hash = old->file_hash;
	}
	if (!cur->boot_ok && old->boot_ok) {
		cur->boot_ok = true;
		memcpy(cur->boot, old->boot, sizeof(cur->boot));
	}
}

static void take_sample(struct sample *s)
{
	static bool gen_warned, boot_warned, rt_warned;
	char v[64];

	memset(s, 0, sizeof(*s));
	s->vmgen_ok = read_vmclock(&s->vmgen);
	s->file_ok = read_small(gen_path, "generation file", &gen_warned, s->file, sizeof(s->file), &s->file_hash);
	s->boot_ok = read_small(boot_path, "boot id", &boot_warned, s->boot, sizeof(s->boot), NULL);
	/* The three clocks as close together as we can: a read pair that a
	 * preemption stretched (a loaded machine) is taken again, so that it
	 * cannot pass for a jump. */
	int64_t m0, rt, bt, m1;
	for (int tries = 0;; tries++) {
		m0 = crac__now_ns(CLOCK_MONOTONIC);
		rt = crac__now_ns(CLOCK_REALTIME);
		bt = crac__now_ns(CLOCK_BOOTTIME);
		m1 = crac__now_ns(CLOCK_MONOTONIC);
		if (m1 - m0 < 10000000 || tries == 20)
			break;
	}
	int64_t m = m0 + (m1 - m0) / 2;
	s->realtime = rt;
	s->monotonic = m;
	s->rt_off = rt - m;
	s->bt_off = bt - m;
	if (rt_fake_path && read_small(rt_fake_path, "test realtime offset file", &rt_warned, v, sizeof(v), NULL))
		s->rt_off += strtoll(v, NULL, 10) * 1000000LL;
}

static int64_t labs64(int64_t x)
{
	return x < 0 ? -x : x;
}

/* What changed between two samples; false if nothing. */
static bool changed(const struct sample *a, const struct sample *b, char *why, size_t len)
{
	if (a->vmgen_ok && b->vmgen_ok && a->vmgen != b->vmgen) {
		snprintf(why, len, "the VM generation counter of %s went from %" PRIu64 " to %" PRIu64,
			 vmclock_path, a->vmgen, b->vmgen);
		return true;
	}
	if (a->file_ok && b->file_ok && (a->file_hash != b->file_hash || strcmp(a->file, b->file) != 0)) {
		snprintf(why, len, "the generation file %s went from \"%.40s\" to \"%.40s\"%s", gen_path,
			 a->file, b->file,
			 strncmp(a->file, b->file, 40) ? "" : " (its first line changed past what is shown)");
		return true;
	}
	if (a->boot_ok && b->boot_ok && strcmp(a->boot, b->boot) != 0) {
		snprintf(why, len, "the boot id changed from %s to %s", a->boot, b->boot);
		return true;
	}
	if (labs64(b->rt_off - a->rt_off) > jump_ns) {
		snprintf(why, len, "CLOCK_REALTIME moved %+.3f s against CLOCK_MONOTONIC (threshold %.3f s)",
			 (double)(b->rt_off - a->rt_off) / 1e9, (double)jump_ns / 1e9);
		return true;
	}
	if (labs64(b->bt_off - a->bt_off) > jump_ns) {
		snprintf(why, len, "CLOCK_BOOTTIME moved %+.3f s against CLOCK_MONOTONIC (threshold %.3f s)",
			 (double)(b->bt_off - a->bt_off) / 1e9, (double)jump_ns / 1e9);
		return true;
	}
	return false;
}

/*
 * Records the clock state as a checkpoint would, unless a round is on (it
 * records its own). Returns false if a round is on.
 */
static bool record_quiet(void)
{
	bool on;

	pthread_mutex_lock(&crac__lock);
	on = crac__round_state.active;
	if (!on)
		crac__clock_checkpointing();
	pthread_mutex_unlock(&crac__lock);
	return !on;
}

/* The after_restore round of an unannounced restore. False if a round was
 * on (then nothing ran). */
static bool unannounced_restore(const struct sample *before, const char *why)
{
	struct crac_round r = { 0 };
	char *text = NULL, uuid[37];
	int me = crac__gettid();

	crac__enter();
	r.report = crac__report_new();
	if (!r.report) {
		crac__leave();
		crac__ext_say("unannounced restore detected (%s), but no memory to run the after_restore "
			      "callbacks", why);
		return true;
	}
	pthread_mutex_lock(&crac__lock);
	if (crac__round_state.active) {
		pthread_mutex_unlock(&crac__lock);
		crac_report_free(r.report);
		crac__leave();
		return false;
	}
	crac__round_state.active = true;
	crac__round_state.owner_tid = me;
	pthread_mutex_unlock(&crac__lock);

	crac_options_init(&r.opts);
	r.opts.engine = "external";
	r.engine = &crac__engine_external;
	r.event.size = sizeof(r.event);
	r.event.kind = CRAC_EVENT_AFTER_RESTORE;
	r.event.outcome = CRAC_RESTORED;
	r.event.engine = "external";
	r.event.unannounced = 1;
	r.event.checkpoint_realtime = before->realtime;
	r.event.checkpoint_monotonic = before->monotonic;
	r.event.restore_realtime = crac__now_ns(CLOCK_REALTIME);
	r.event.restore_monotonic = crac__now_ns(CLOCK_MONOTONIC);
	crac__new_identity(&r.event);
	crac__runtime_restored(&r);
	r.event.deadline_monotonic = r.event.restore_monotonic + DEFAULT_RESTORE_DEADLINE_MS * 1000000LL;
	crac_instance_uuid(uuid);
	crac__ext_info("unannounced restore detected: %s; generation %" PRIu64 ", instance %s",
		      why, r.event.generation, uuid);
	crac__notify_after_all(&r, r.event.deadline_monotonic);

	crac__report_set_status(r.report, CRAC_RESTORED);
	if (crac_report_count(r.report) && crac_report_format(r.report, &text) == 0) {
		for (char *p = text, *nl; p && *p; p = nl) {
			nl = strchr(p, '\n');
			if (nl)
				*nl++ = '\0';
			crac__ext_say("%s", strncmp(p, "crac: ", 6) == 0 ? p + 6 : p);
		}
		free(text);
	}
	crac_report_free(r.report);

	pthread_mutex_lock(&crac__lock);
	crac__round_state.active = false;
	crac__round_state.owner_tid = 0;
	pthread_cond_broadcast(&crac__cond);
	pthread_mutex_unlock(&crac__lock);
	crac__leave();
	return true;
}

/* crac's generation: how many restores this lineage went through. */
static uint64_t generation_now(void)
{
	uint64_t gen = 0;

	crac__identity(NULL, &gen);
	return gen;
}

/*
 * The loop. A change of a source is an unannounced restore unless a round
 * of crac's own restored meanwhile (crac's generation moved since the last
 * sample: an announced snapshot, `crac checkpoint --engine external` or
 * logind, ended with CRAC_RESTORED and has its new identity): then the
 * change is that round's own. While a round is on, nothing is decided and
 * the baseline stays what it was before it; once it is over, a round that
 * did not restore (aborted, failed, continued: its engine took no snapshot,
 * or it was another engine's) leaves the baseline to compare with, and a
 * change made while it ran (a VM snapshotted and restored meanwhile) is an
 * unannounced restore, run then. What cannot be told apart: a round that
 * restored and another restore during the same round, or between two
 * samples around it, are taken as one (the sources say that they changed,
 * not how many times).
 */
static void *watch_thread(void *arg)
{
	struct sample cur;
	char why[300];
	uint64_t gen_seen = generation_now();

	(void)arg;
	for (;;) {
		struct pollfd pf = { .fd = vmclock_notifies ? vmclock_fd : -1, .events = POLLIN };
		int n = poll(&pf, 1, (int)poll_ms);
		if (n > 0 && (pf.revents & POLLIN)) {
			unsigned char sink[VMCLOCK_MIN_SIZE];
			/* read() re-arms the notification (the driver's contract) */
			if (read(vmclock_fd, sink, sizeof(sink)) < 0)
				vmclock_notifies = false;
		} else if (n > 0 && (pf.revents & (POLLHUP | POLLERR | POLLNVAL))) {
			vmclock_notifies = false;   /* no notifications: sample on the timer */
		}

		take_sample(&cur);
		keep_known(&cur, &base);
		pthread_mutex_lock(&crac__lock);
		bool busy = crac__round_state.active;
		pthread_mutex_unlock(&crac__lock);
		if (busy)
			continue;   /* decided once the round is over, against the
				     * values from before it (base is kept) */
		uint64_t gen = generation_now();
		if (gen != gen_seen) {
			/* a round restored since the last sample: its change */
			gen_seen = gen;
			base = cur;
			record_quiet();
			continue;
		}
		if (changed(&base, &cur, why, sizeof(why))) {
			if (!unannounced_restore(&base, why))
				continue;   /* a round began meanwhile: decided after it */
			gen_seen = generation_now();
			/* the new baseline: the clocks of now, the values that
			 * changed as last seen if they cannot be read now */
			take_sample(&base);
			keep_known(&base, &cur);
			record_quiet();
			continue;
		}
		base = cur;
		record_quiet();
	}
	return NULL;
}

int crac__ext_watch_start(void)
{
	static bool started;
	pthread_attr_t attr;
	pthread_t th;
	sigset_t all, old;
	struct stat st;
	int rc;

	if (started)
		return 0;
	vmclock_path = getenv("CRAC_EXTERNAL_VMCLOCK");
	if (!vmclock_path || !*vmclock_path)
		vmclock_path = "/dev/vmclock0";
	gen_path = getenv("CRAC_EXTERNAL_GENERATION_FILE");
	if (gen_path && !*gen_path)
		gen_path = NULL;
	rt_fake_path = getenv("CRAC_EXTERNAL_TEST_REALTIME_OFFSET_FILE");
	boot_path = getenv("CRAC_EXTERNAL_TEST_BOOT_ID_FILE");
	if (!boot_path || !*boot_path)
		boot_path = "/proc/sys/kernel/random/boot_id";
	poll_ms = crac__ext_env_int("CRAC_EXTERNAL_POLL_MS", DEFAULT_POLL_MS);
	if (poll_ms < 1)
		poll_ms = DEFAULT_POLL_MS;
	if (poll_ms > INT_MAX)
		poll_ms = INT_MAX;     /* poll()'s int: a larger one turned negative, "wait forever" */
	int64_t jump_ms = crac__ext_env_int("CRAC_EXTERNAL_JUMP_MS", DEFAULT_JUMP_MS);
	/* 0 (or less): the clock detector is off; beyond int64_t nanoseconds too */
	jump_ns = jump_ms <= 0 || jump_ms > INT64_MAX / 1000000LL ? INT64_MAX : jump_ms * 1000000LL;

	/* The device, or a regular file holding the page (tests): a FIFO or a
	 * socket there is not opened (see read_small()). */
	if (stat(vmclock_path, &st) == 0 && !S_ISCHR(st.st_mode) && !S_ISREG(st.st_mode))
		crac__ext_info("%s is neither a character device nor a regular file (mode %06o): "
			       "it is not read", vmclock_path, (unsigned)st.st_mode);
	else
		vmclock_fd = open(vmclock_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (vmclock_fd >= 0 && (fstat(vmclock_fd, &st) < 0 || (!S_ISCHR(st.st_mode) && !S_ISREG(st.st_mode)))) {
		close(vmclock_fd);
		vmclock_fd = -1;
	}
	if (vmclock_fd >= 0) {
		uint64_t gen;
		unsigned char h[VMCLOCK_OFF_FLAGS + 8];
		if (!read_vmclock(&gen)) {
			close(vmclock_fd);
			vmclock_fd = -1;   /* no generation counter there */
		} else {
			crac__internal_fd(vmclock_fd, true);
			vmclock_notifies = fstat(vmclock_fd, &st) == 0 && S_ISCHR(st.st_mode) &&
				pread(vmclock_fd, h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
				(le64(h + VMCLOCK_OFF_FLAGS) & VMCLOCK_FLAG_NOTIFICATION_PRESENT);
		}
	}

	/* The baseline is taken now, before the program runs on. */
	take_sample(&base);
	record_quiet();

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&th, &attr, watch_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		crac__ext_say("cannot start the watcher for unannounced restores: %s", strerror(rc));
		return -rc;
	}
	started = true;
	return 0;
}
