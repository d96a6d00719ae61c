/* SPDX-License-Identifier: MIT */
/*
 * image_attrs.c - process attributes the kernel keeps per task and that a
 * restore does not get from the loader's exec: recorded at the checkpoint
 * (in libcrac's own memory, so they are in the image), given back by the
 * restored side: every thread its own (they are per thread), the
 * checkpointing thread's last, once it cloned the others (a clone inherits
 * what its creator has, and the clone with the old thread id needs
 * CAP_CHECKPOINT_RESTORE).
 *
 * The restored process is `crac restore` itself, which exec'ed the loader:
 * without this it had the restoring command's attributes, silently. A
 * program that had dropped capabilities, set no_new_privs or a parent-death
 * signal, made itself a child subreaper or changed its personality or its
 * timer slack ran on without them (it had more privilege than it kept for
 * itself, or no longer died with its parent).
 *
 *   personality   personality(2), as it was
 *   timer slack   PR_SET_TIMERSLACK, as it was
 *   subreaper     PR_SET_CHILD_SUBREAPER, as it was
 *   pdeathsig     PR_SET_PDEATHSIG, as it was (the parent is now the
 *                 restoring command's parent); the SIGTERM a supervisor
 *                 gave its child (`crac start`, `crac run` with a trigger: its pid
 *                 in $CRAC_SUPERVISOR_PID, the thread group leader's
 *                 parent) is the supervisor's, not recorded; where the
 *                 image has none, the thread group leader keeps the
 *                 restoring command's, so that a program restored by
 *                 crac start ends with it
 *   capabilities  only ever lowered: the bounding set (PR_CAPBSET_DROP),
 *                 the ambient set, then the effective, permitted and
 *                 inheritable sets (capset) become what they were where the
 *                 restoring process has more; a capability the program had
 *                 and the restoring process lacks cannot be given: each is
 *                 said in the restore report (another thread's lines name
 *                 it: "thread TID (NAME): ..."). Securebits are set again if
 *                 they differ (that needs CAP_SETPCAP: else reported).
 *   no_new_privs  set again (it cannot be cleared: a restore by a process
 *                 that has it gives a program that had not the flag too)
 *
 * Seccomp filters cannot be read back or made again by an unprivileged
 * process: the header records the most filters a thread ran under
 * (crac_img_header.seccomp_filters), and the restore's check refuses an
 * image whose process had more than the restoring process has (image/
 * check.c): its own filters would be gone. A restore under the same
 * filters (the same systemd unit) passes.
 */
#include "engines/image_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_IS_SET 1
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_LOWER 3
#endif

#define CAPS_MAX 64

/* Raw calls: async-signal-safe (the stop handler records with them), and
 * no sanitizer interceptor in between. */
static long prctl_(long op, long a, long b, long c, long d)
{
	return syscall(SYS_prctl, op, a, b, c, d);
}

static int capget_(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	return (int)syscall(SYS_capget, &h, d);
}

static int capset_(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	return (int)syscall(SYS_capset, &h, d);
}

static uint64_t join(uint32_t lo, uint32_t hi)
{
	return (uint64_t)hi << 32 | lo;
}

/* The bounding and ambient sets, one prctl per capability (up to the
 * first the kernel does not know). An ambient capability is permitted and
 * inheritable too: none to ask for without inheritable ones (inh). The
 * capabilities in known_bnd are not asked for and taken as in the bounding
 * set: a restore only ever drops from it, so it needs to know only the
 * capabilities the program's bounding set lacks (a program with the whole
 * set: one call, for the first capability past it). */
static void read_sets(uint64_t inh, uint64_t known_bnd, uint64_t *bnd, uint64_t *amb)
{
	*bnd = *amb = 0;
	for (int cap = 0; cap < CAPS_MAX; cap++) {
		if (known_bnd >> cap & 1)
			*bnd |= 1ull << cap;
		else {
			long b = prctl_(PR_CAPBSET_READ, cap, 0, 0, 0);
			if (b < 0)
				break;
			if (b)
				*bnd |= 1ull << cap;
		}
		if ((inh >> cap & 1) && prctl_(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1)
			*amb |= 1ull << cap;
	}
}

/* The number after "key" at the start of a line of text; *found. */
static uint32_t status_num(const char *text, const char *key, int *found)
{
	size_t kl = strlen(key);

	*found = 0;
	for (const char *line = text; *line;) {
		if (!strncmp(line, key, kl)) {
			*found = 1;
			return (uint32_t)strtoul(line + kl, NULL, 10);
		}
		while (*line && *line != '\n')
			line++;
		if (*line)
			line++;
	}
	return 0;
}

int64_t img_attrs_seccomp_filters(int tid)
{
	char path[64], buf[4096];
	int have_count;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got = 0, n;
	if (fd < 0)
		return -1;
	while (got < (ssize_t)sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	buf[got] = 0;
	uint32_t count = status_num(buf, "Seccomp_filters:", &have_count);
	if (have_count)
		return count;
	/* before Linux 5.9 only the mode is shown: at least one filter */
	uint32_t mode = status_num(buf, "Seccomp:", &have_count);
	return !have_count ? -1 : mode == 2 ? 1 : 0;
}

/* The calling thread's attributes; the bounding set only where known_bnd
 * lacks a capability (read_sets). */
static void capture(struct img_attrs *a, uint64_t known_bnd)
{
	struct __user_cap_data_struct d[2];
	int v = 0;

	memset(a, 0, sizeof(*a));
	a->personality = (uint32_t)syscall(SYS_personality, 0xffffffffUL);
	a->seccomp = (uint32_t)prctl_(PR_GET_SECCOMP, 0, 0, 0, 0);
	a->timerslack = (uint64_t)prctl_(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	if (prctl_(PR_GET_CHILD_SUBREAPER, (long)&v, 0, 0, 0) == 0)
		a->subreaper = v;
	v = 0;
	if (prctl_(PR_GET_PDEATHSIG, (long)&v, 0, 0, 0) == 0)
		a->pdeathsig = v;
	a->nnp = prctl_(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
	long sb = prctl_(PR_GET_SECUREBITS, 0, 0, 0, 0);
	a->securebits = sb > 0 ? (uint32_t)sb : 0;
	if (capget_(d) == 0) {
		a->have_caps = 1;
		a->eff = join(d[0].effective, d[1].effective);
		a->prm = join(d[0].permitted, d[1].permitted);
		a->inh = join(d[0].inheritable, d[1].inheritable);
		read_sets(a->inh, known_bnd, &a->bnd, &a->amb);
	}
}

void img_attrs_capture(struct img_attrs *a)
{
	capture(a, 0);
}

void img_attrs_capture_now(struct img_attrs *a)
{
	capture(a, ~0ull);
}

/*
 * A SIGTERM parent-death signal of the thread group leader whose parent is
 * the supervisor named by $CRAC_SUPERVISOR_PID was set by that supervisor
 * (cli/supervise.c): the supervisor's, not the program's; an image keeps
 * none of it. (A program there that set SIGTERM itself loses it; any
 * other signal it set is its own and kept.) Async-signal-safe: getenv
 * reads, the number is parsed here.
 */
void img_attrs_drop_supervisor(struct img_attrs *a)
{
	const char *v = getenv(CRAC_SUPERVISOR_ENV);
	long pid = 0;

	if (a->pdeathsig != SIGTERM || !v || !*v || syscall(SYS_gettid) != getpid())
		return;
	for (; *v >= '0' && *v <= '9' && pid < (1L << 30); v++)
		pid = pid * 10 + (*v - '0');
	if (!*v && pid == (long)getppid())
		a->pdeathsig = 0;
}

/* One line of the restore report, if asked and there is room. */
static void problem(char (*problems)[256], int *n, int max, const char *what, unsigned long long v, int err)
{
	if (!problems || *n >= max)
		return;
	snprintf(problems[*n], sizeof(problems[0]), "%s %#llx not restored: %s", what, v,
		 err ? img_strerror(err) : "the restoring process lacks them");
	(*n)++;
}

/* Whether the calling thread, whose attributes are now's (bounding set
 * not read: img_attrs_capture_now), has the capabilities a records: the
 * same sets, and no capability in its bounding set that a's lacks. */
static int same_caps(const struct img_attrs *a, const struct img_attrs *now)
{
	uint64_t bnd, amb;

	if (!a->have_caps || !now->have_caps || a->eff != now->eff || a->prm != now->prm || a->inh != now->inh ||
	    a->amb != now->amb || a->securebits != now->securebits)
		return 0;
	read_sets(0, a->bnd, &bnd, &amb);
	return bnd == a->bnd;
}

void img_attrs_restore(const struct img_attrs *a, const struct img_attrs *now, char (*problems)[256], int *n,
		       int max)
{
	struct __user_cap_data_struct d[2];

	if (a->personality != now->personality && syscall(SYS_personality, (unsigned long)a->personality) < 0)
		problem(problems, n, max, "personality", a->personality, errno);
	if (a->timerslack && a->timerslack != now->timerslack &&
	    prctl_(PR_SET_TIMERSLACK, (long)a->timerslack, 0, 0, 0) < 0)
		problem(problems, n, max, "timer slack", a->timerslack, errno);
	if (a->subreaper != now->subreaper && prctl_(PR_SET_CHILD_SUBREAPER, a->subreaper ? 1 : 0, 0, 0, 0) < 0)
		problem(problems, n, max, "child subreaper", (unsigned long long)a->subreaper, errno);
	/* always: a clone starts without one, whatever its creator has; the
	 * thread group leader (the restoring command's own thread, which the
	 * kernel signals when that command's parent ends) keeps the restoring
	 * command's where the program had none: a program that crac start
	 * restores ends with it as a cold one does (cli/supervise.c) */
	int32_t pds = a->pdeathsig;
	if (!pds && syscall(SYS_gettid) == getpid())
		pds = now->pdeathsig;
	if (prctl_(PR_SET_PDEATHSIG, pds, 0, 0, 0) < 0)
		problem(problems, n, max, "parent-death signal", (unsigned long long)pds, errno);

	if (a->have_caps && !same_caps(a, now) && capget_(d) == 0) {
		long sb = prctl_(PR_GET_SECUREBITS, 0, 0, 0, 0);
		if (sb >= 0 && (uint32_t)sb != a->securebits && prctl_(PR_SET_SECUREBITS, a->securebits, 0, 0, 0) < 0)
			problem(problems, n, max, "securebits", a->securebits, errno);
		/* the bounding set first: dropping needs CAP_SETPCAP, which
		 * the capset below may take away */
		uint64_t bnd, amb, undropped = 0;
		int err = 0;
		read_sets(join(d[0].inheritable, d[1].inheritable), a->bnd, &bnd, &amb);
		for (int cap = 0; cap < CAPS_MAX; cap++)
			if ((bnd & ~a->bnd) >> cap & 1 && prctl_(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
				undropped |= 1ull << cap;
				err = errno;
			}
		if (undropped)
			problem(problems, n, max, "the bounding set without capabilities", undropped, err);
		for (int cap = 0; cap < CAPS_MAX; cap++)
			if ((amb & ~a->amb) >> cap & 1)
				prctl_(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, cap, 0, 0);
		/* only ever lowered: what the program had, where the
		 * restoring process has it */
		uint64_t prm_now = join(d[0].permitted, d[1].permitted);
		uint64_t eff = join(d[0].effective, d[1].effective) & a->eff;
		uint64_t prm = prm_now & a->prm;
		uint64_t inh = join(d[0].inheritable, d[1].inheritable) & a->inh;
		d[0].effective = (uint32_t)eff, d[1].effective = (uint32_t)(eff >> 32);
		d[0].permitted = (uint32_t)prm, d[1].permitted = (uint32_t)(prm >> 32);
		d[0].inheritable = (uint32_t)inh, d[1].inheritable = (uint32_t)(inh >> 32);
		if (capset_(d) < 0)
			problem(problems, n, max, "the program's permitted capabilities", a->prm, errno);
		if (a->prm & ~prm_now)
			problem(problems, n, max, "permitted capabilities", a->prm & ~prm_now, 0);
		/* ambient capabilities the program had, where they can be */
		uint64_t unraised = 0;
		for (int cap = 0; cap < CAPS_MAX; cap++)
			if ((a->amb & ~amb) >> cap & 1 && prctl_(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) {
				unraised |= 1ull << cap;
				err = errno;
			}
		if (unraised)
			problem(problems, n, max, "ambient capabilities", unraised, err);
	}
	/* last: it cannot be undone */
	if (a->nnp && !now->nnp && prctl_(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		problem(problems, n, max, "no_new_privs", 1, errno);
}

/* The other threads' lines: a slot taken with one atomic add each. */
static char thread_lines[IMG_ATTRS_THREAD_LINES][256];
static _Atomic int thread_lines_n;

void img_attrs_restore_thread(const struct img_attrs *a, const struct img_attrs *now, int tid, const char *comm)
{
	char mine[4][256];
	int n = 0;

	img_attrs_restore(a, now, mine, &n, 4);
	for (int i = 0; i < n; i++) {
		int slot = atomic_fetch_add(&thread_lines_n, 1);
		if (slot < IMG_ATTRS_THREAD_LINES)
			snprintf(thread_lines[slot], sizeof(thread_lines[slot]), "thread %d (%.16s): %.200s", tid, comm,
				 mine[i]);
	}
}

int img_attrs_thread_problems(const char (**lines)[256], int *more)
{
	int n = atomic_exchange(&thread_lines_n, 0);

	*lines = (const char (*)[256])thread_lines;
	*more = n > IMG_ATTRS_THREAD_LINES ? n - IMG_ATTRS_THREAD_LINES : 0;
	return n > IMG_ATTRS_THREAD_LINES ? IMG_ATTRS_THREAD_LINES : n;
}
