/* SPDX-License-Identifier: MIT */
/*
 * external.c - the external engine: the snapshot is taken from outside (a
 * VM snapshot, a container checkpoint, a suspend), crac only coordinates.
 *
 * Announced snapshots. A round with this engine (the program's own call,
 * `crac checkpoint --engine external PID`, or logind's PrepareForSleep(true)
 * through external_logind.c) runs the before-callbacks, then parks the
 * calling thread and tells the platform it is ready:
 *   - the control requester gets its answer (as with the pause engine);
 *   - in a round started by logind, the delay inhibitor lock is released;
 *   - $CRAC_EXTERNAL_HOOK, if set, is run by /bin/sh with CRAC_PID,
 *     CRAC_CONTROL_SOCKET, CRAC_GENERATION, CRAC_INSTANCE_ID and
 *     CRAC_PARK_MS in its environment (and without CRAC_ENGINE and
 *     CRAC_CONTROL: it is no crac program). Exit 0: the platform was told, the
 *     process stays parked until resumed; anything else: no snapshot, the
 *     process resumes at once (outcome CRAC_ABORTED). It runs in its own
 *     session; when the park ends without a snapshot, its process group is
 *     killed and the hook reaped before the after-callbacks (stop_hook()).
 * It resumes on the first of:
 *   - a RESUME on the control endpoint (`crac restore --pid PID [-- ARGS]`,
 *     possibly sent by the hook itself)       -> CRAC_RESTORED
 *   - logind's PrepareForSleep(false)           -> CRAC_RESTORED
 *   - the park deadline, $CRAC_EXTERNAL_PARK_MS (default 600000 ms, 0: none),
 *     time parked on CLOCK_MONOTONIC, which stands still while a VM is
 *     paused or the machine sleeps, and whose jump in a restored container
 *     counts for at most a second              -> CRAC_ABORTED, one report
 *                                                  line: no snapshot happened
 * Parking reuses the pause engine (its wait and the control endpoint's
 * RESUME); the other wake-ups resume it through crac__pause_resume().
 *
 * Unannounced snapshots: external_watch.c.
 */
#include "engines/external.h"
#include "core/core.h"
#include "runtime/checks.h"

#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_PARK_MS 600000

static void ext_vlog(enum crac_log_level level, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	crac__log(level, "external: %s", msg);
}

void crac__ext_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ext_vlog(CRAC_LOG_WARN, fmt, ap);
	va_end(ap);
}

void crac__ext_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ext_vlog(CRAC_LOG_INFO, fmt, ap);
	va_end(ap);
}

int64_t crac__ext_env_int(const char *name, int64_t def)
{
	const char *v = getenv(name);
	char *end;
	long long x;

	if (!v || !*v)
		return def;
	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || *end) {
		crac__ext_say("%s=\"%s\" is not a number: using %" PRId64, name, v, def);
		return def;
	}
	return x;
}

/* ---- the park ------------------------------------------------------------ */

static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cond;          /* CLOCK_MONOTONIC */
static bool parked;                       /* a park is in progress */
static bool park_over;                    /* the pause engine returned */
static enum ext_wake pending;             /* asked for, not yet delivered */
static enum ext_wake woke;                /* what ended the park */
static unsigned park_seq;                 /* which park the hook belongs to */
static char hook_failure[300];            /* why the hook failed */
/* The hook of the current park (park_seq): its process (the leader of its
 * own session and process group), 0 until spawned; hook_reaped once it was
 * waited for or could not start; hook_cancel: the park ended without a
 * snapshot, do not start it any more. */
static pid_t hook_pid;
static bool hook_reaped, hook_cancel;

static void park_cond_init(void)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&park_cond, &a);
	pthread_condattr_destroy(&a);
}

static void init_once(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, park_cond_init);
}

void crac__ext_wake(enum ext_wake why)
{
	init_once();
	pthread_mutex_lock(&park_lock);
	if (parked && !park_over && pending == EXT_WAKE_NONE) {
		pending = why;
		pthread_cond_broadcast(&park_cond);
	}
	pthread_mutex_unlock(&park_lock);
}

/*
 * The waker of one park: waits for a wake-up (or the deadline) and hands it
 * to the pause engine. crac__pause_resume() fails with -EAGAIN before the
 * pause engine is waiting and after another resume (the control endpoint)
 * got there first; the first case is retried, the second ends with
 * park_over.
 *
 * The park's length is counted in slices of at most a second, each
 * counting for no more than it should have lasted: a process restored from
 * a container checkpoint may find CLOCK_MONOTONIC far ahead (another host,
 * another boot), and that jump must not use up its deadline at once.
 */
#define SLICE_NS 1000000000LL

static void *waker_thread(void *arg)
{
	int64_t budget = *(int64_t *)arg;   /* ns parked before the deadline, 0: none */
	int64_t used = 0;

	pthread_mutex_lock(&park_lock);
	for (;;) {
		while (!park_over && pending == EXT_WAKE_NONE) {
			if (!budget) {
				pthread_cond_wait(&park_cond, &park_lock);
				continue;
			}
			if (used >= budget) {
				pending = EXT_WAKE_DEADLINE;
				break;
			}
			int64_t slice = budget - used < SLICE_NS ? budget - used : SLICE_NS;
			int64_t t0 = crac__now_ns(CLOCK_MONOTONIC), end = t0 + slice;
			struct timespec ts = { .tv_sec = end / 1000000000LL, .tv_nsec = end % 1000000000LL };
			pthread_cond_timedwait(&park_cond, &park_lock, &ts);
			int64_t took = crac__now_ns(CLOCK_MONOTONIC) - t0;
			used += took < 0 ? 0 : took > slice ? slice : took;
		}
		if (park_over)
			break;
		if (crac__pause_resume(NULL, NULL, NULL) == 0) {
			woke = pending;
			break;
		}
		/* not waiting yet, or resumed by the control endpoint: look again soon */
		pthread_mutex_unlock(&park_lock);
		struct timespec nap = { .tv_nsec = 2000000 };
		nanosleep(&nap, NULL);
		pthread_mutex_lock(&park_lock);
	}
	pthread_mutex_unlock(&park_lock);
	return NULL;
}

/* ---- the hook ------------------------------------------------------------- */

struct hook_job {
	unsigned seq;        /* the park it belongs to */
	char **envp;         /* environ + our variables */
	char *extra[6];      /* our variables (freed with the job) */
	const char *cmd;
};

static void hook_job_free(struct hook_job *j)
{
	for (size_t i = 0; i < sizeof(j->extra) / sizeof(j->extra[0]); i++)
		free(j->extra[i]);
	free(j->envp);
	free(j);
}

static void hook_failed(unsigned seq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hook_failed(unsigned seq, const char *fmt, ...)
{
	va_list ap;
	bool current;

	pthread_mutex_lock(&park_lock);
	current = parked && seq == park_seq;
	if (current) {
		va_start(ap, fmt);
		vsnprintf(hook_failure, sizeof(hook_failure), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&park_lock);
	if (current)
		crac__ext_wake(EXT_WAKE_HOOK_FAILED);
}

/* Marks the hook of park `seq` as waited for (or never started). */
static void hook_gone(unsigned seq)
{
	pthread_mutex_lock(&park_lock);
	if (seq == park_seq) {
		hook_reaped = true;
		pthread_cond_broadcast(&park_cond);
	}
	pthread_mutex_unlock(&park_lock);
}

/*
 * How the hook ended, told by its minder (below) through a page shared
 * with it: the program's own SIGCHLD disposition cannot take it away.
 */
struct hook_share {
	volatile int sh_pid;       /* the shell's pid, once it runs */
	volatile int exec_errno;   /* execve of /bin/sh failed with this */
	volatile int status;       /* the shell's wait status, once done */
	volatile int done;
};
static struct hook_share *hook_share;     /* of the current park's hook (park_lock) */
static pid_t hook_shell;                  /* its shell's pid, kept once the share is gone */

/*
 * The minder: a copy of the program (a raw clone without exit signal, no
 * atfork handler), so async-signal-safe calls only. It takes a session and
 * process group of its own, starts /bin/sh -c CMD with an empty signal
 * mask and every signal at its default action, waits for it and writes its
 * wait status into the shared page. A program that ignores SIGCHLD has its
 * children reaped by the kernel, and one that reaps every child in a
 * SIGCHLD handler takes their status: neither applies to a child without
 * exit signal (waited for with __WALL) nor to the minder's own child. Every
 * signal but SIGKILL stays blocked in the minder, so that it outlives its
 * shell when the process group gets SIGTERM (stop_hook()) and reaps it.
 */
/* Closes every descriptor from lo up (async-signal-safe: raw syscalls;
 * without close_range(2), before Linux 5.9, each number up to the limit of
 * open files). */
static void close_from(unsigned lo)
{
	struct rlimit rl;

	if (syscall(SYS_close_range, lo, ~0U, 0) == 0)
		return;
	unsigned long hi = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
			   rl.rlim_max < (1UL << 20) ? (unsigned long)rl.rlim_max : 1UL << 20;
	for (unsigned long fd = lo; fd < hi; fd++)
		close((int)fd);
}

static void hook_minder(struct hook_share *sh, const char *cmd, char **envp)
{
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	sigset_t all, none;
	int st = 0;

	sigfillset(&all);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &all, NULL);
	setsid();
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	/* The hook gets the program's stdin, stdout and stderr, nothing else:
	 * the minder holds a copy of every descriptor of the program, those
	 * without close-on-exec too, which the shell would inherit (a
	 * listening socket, a lock, a pipe's end the program's peer waits to
	 * see closed, kept open for as long as the hook and whatever it
	 * starts run). */
	close_from(3);
	pid_t c = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
	if (c == 0) {
		sh->sh_pid = (int)syscall(SYS_getpid);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve("/bin/sh", argv, envp);
		sh->exec_errno = errno;
		_exit(127);
	}
	if (c < 0) {
		sh->exec_errno = errno;
		_exit(127);
	}
	sh->sh_pid = (int)c;
	/* Its copies of the program's stdio too (the minder does not exec):
	 * none is kept open by it while the hook runs. */
	close_from(0);
	while (waitpid(c, &st, 0) < 0)
		if (errno != EINTR)
			_exit(127);   /* no status: the hook thread says the minder failed */
	sh->status = st;
	__atomic_store_n(&sh->done, 1, __ATOMIC_RELEASE);
	_exit(0);
}

/*
 * Runs the hook and waits for it. It runs in a session (and process group)
 * of its own, so that all it started can be killed when the park ends
 * without a snapshot (stop_hook()), with the signal mask emptied and every
 * signal at its default action (this thread blocks them all; the program
 * may ignore SIGTERM). After a snapshot it may outlive its park (a hook
 * that resumed the process itself and goes on with something else).
 */
static void *hook_thread(void *arg)
{
	struct hook_job *j = arg;
	struct hook_share *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pid = 0;
	int st, rc = 0;

	if (sh == MAP_FAILED) {
		rc = errno;
		sh = NULL;
	}
	/* under park_lock: a park that ended meanwhile (hook_cancel) starts
	 * nothing, and stop_hook() sees the pid once it is there */
	pthread_mutex_lock(&park_lock);
	if (j->seq != park_seq || hook_cancel) {
		rc = ECANCELED;
	} else if (sh) {
		pid = (pid_t)syscall(SYS_clone, 0, 0, 0, 0, 0);
		if (pid == 0)
			hook_minder(sh, j->cmd, j->envp);
		if (pid < 0) {
			rc = errno;
		} else {
			hook_pid = pid;
			hook_share = sh;
		}
	}
	pthread_mutex_unlock(&park_lock);
	if (rc != 0) {
		if (rc != ECANCELED)
			hook_failed(j->seq, "CRAC_EXTERNAL_HOOK could not be started (/bin/sh: %s): no snapshot",
				    strerror(rc));
		goto out;
	}
	while ((rc = (int)waitpid(pid, &st, __WALL)) < 0 && errno == EINTR)
		;
	int shell = sh->sh_pid > 0 ? sh->sh_pid : (int)pid;
	if (rc < 0)
		hook_failed(j->seq, "CRAC_EXTERNAL_HOOK (pid %d): its status is lost (waitpid: %s): no snapshot",
			    shell, strerror(errno));
	else if (!__atomic_load_n(&sh->done, __ATOMIC_ACQUIRE) && sh->exec_errno)
		hook_failed(j->seq, "CRAC_EXTERNAL_HOOK could not be started (/bin/sh: %s): no snapshot",
			    strerror(sh->exec_errno));
	else if (!__atomic_load_n(&sh->done, __ATOMIC_ACQUIRE))
		/* the minder itself was killed (SIGKILL to the process group) */
		hook_failed(j->seq, "CRAC_EXTERNAL_HOOK (pid %d) was killed by signal %d: no snapshot", shell,
			    WIFSIGNALED(st) ? WTERMSIG(st) : SIGKILL);
	else if (WIFEXITED(sh->status) && WEXITSTATUS(sh->status) != 0)
		hook_failed(j->seq, "CRAC_EXTERNAL_HOOK (pid %d) exited with status %d: no snapshot", shell,
			    WEXITSTATUS(sh->status));
	else if (WIFSIGNALED(sh->status))
		hook_failed(j->seq, "CRAC_EXTERNAL_HOOK (pid %d) was killed by signal %d: no snapshot", shell,
			    WTERMSIG(sh->status));
out:
	pthread_mutex_lock(&park_lock);
	if (sh && hook_share == sh) {
		hook_shell = sh->sh_pid;
		hook_share = NULL;
	}
	pthread_mutex_unlock(&park_lock);
	if (sh)
		munmap(sh, sizeof(*sh));
	hook_gone(j->seq);
	hook_job_free(j);
	return NULL;
}

#define HOOK_GRACE_MS 500       /* between SIGTERM and SIGKILL */
#define HOOK_KILL_WAIT_MS 5000  /* for SIGKILL to be done */

/*
 * Waits up to `ms` for the hook of park `seq` to be reaped and its process
 * group `pgid` to be empty; true if both.
 */
static bool hook_wait_gone(unsigned seq, pid_t pgid, int64_t ms)
{
	int64_t end = crac__now_ns(CLOCK_MONOTONIC) + ms * 1000000LL;

	for (;;) {
		pthread_mutex_lock(&park_lock);
		bool reaped = hook_reaped || seq != park_seq;
		pthread_mutex_unlock(&park_lock);
		if (reaped && kill(-pgid, 0) < 0 && errno == ESRCH)
			return true;
		if (crac__now_ns(CLOCK_MONOTONIC) >= end)
			return false;
		struct timespec nap = { .tv_nsec = 5000000 };
		nanosleep(&nap, NULL);
	}
}

/*
 * The park of `seq` ended without a snapshot: the hook must not take one
 * now (the program was told none happened). Its whole process group (the
 * hook's own session: what it started in the background too) gets SIGTERM,
 * then SIGKILL after HOOK_GRACE_MS, and the hook is reaped before the
 * after-callbacks run. A process of the group that left it (setsid, a
 * daemon) is beyond reach.
 */
static void stop_hook(unsigned seq)
{
	pid_t pgid, shell;

	pthread_mutex_lock(&park_lock);
	hook_cancel = true;
	pgid = hook_pid;
	pthread_mutex_unlock(&park_lock);
	if (pgid <= 0)
		return;   /* not started, and now it never will be */
	if (hook_wait_gone(seq, pgid, 0))
		return;
	pthread_mutex_lock(&park_lock);
	bool running = !hook_reaped;
	/* the process group is the minder's; messages name the shell */
	shell = hook_share && hook_share->sh_pid > 0 ? hook_share->sh_pid : hook_shell > 0 ? hook_shell : pgid;
	pthread_mutex_unlock(&park_lock);
	if (running)
		crac__ext_say("CRAC_EXTERNAL_HOOK (pid %d) was still running when the park ended without a "
			      "snapshot: its process group is killed", (int)shell);
	else
		crac__ext_say("CRAC_EXTERNAL_HOOK (pid %d) left processes running in its process group when "
			      "the park ended without a snapshot: they are killed", (int)shell);
	kill(-pgid, SIGTERM);
	if (hook_wait_gone(seq, pgid, HOOK_GRACE_MS))
		return;
	kill(-pgid, SIGKILL);
	if (!hook_wait_gone(seq, pgid, HOOK_KILL_WAIT_MS))
		crac__ext_say("CRAC_EXTERNAL_HOOK (pid %d): its process group outlived SIGKILL for %d ms",
			      (int)shell, HOOK_KILL_WAIT_MS);
}

/* Starts the hook of park `seq` on a detached thread; false if it could not. */
static bool start_hook(struct crac_round *r, const char *cmd, unsigned seq, int64_t park_ms)
{
	struct hook_job *j = calloc(1, sizeof(*j));
	char sock[256] = "", uuid[37] = "";
	size_t n = 0, k = 0;
	pthread_attr_t attr;
	pthread_t th;
	sigset_t all, old;
	int rc;

	if (!j)
		return false;
	j->seq = seq;
	j->cmd = cmd;
	crac_control_path(sock, sizeof(sock));
	crac_instance_uuid(uuid);
	if (asprintf(&j->extra[k++], "CRAC_PID=%d", (int)getpid()) < 0 ||
	    asprintf(&j->extra[k++], "CRAC_CONTROL_SOCKET=%s", sock) < 0 ||
	    asprintf(&j->extra[k++], "CRAC_GENERATION=%" PRIu64, r->event.generation) < 0 ||
	    asprintf(&j->extra[k++], "CRAC_INSTANCE_ID=%s", uuid) < 0 ||
	    asprintf(&j->extra[k++], "CRAC_PARK_MS=%" PRId64, park_ms) < 0) {
		j->extra[k - 1] = NULL;
		hook_job_free(j);
		return false;
	}
	while (environ && environ[n])
		n++;
	j->envp = calloc(n + k + 1, sizeof(char *));
	if (!j->envp) {
		hook_job_free(j);
		return false;
	}
	/* The hook is the platform's, not a crac program: under `crac run`
	 * its processes inherit libcrac in LD_PRELOAD, and with CRAC_ENGINE
	 * and CRAC_CONTROL each would start an endpoint, a watcher and a
	 * logind delay lock of its own. Without them libcrac stays idle. */
	static const char *const drop[] = { "CRAC_ENGINE=", "CRAC_CONTROL=" };
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		bool ours = false;
		for (size_t e = 0; e < k && !ours; e++) {
			size_t len = (size_t)(strchr(j->extra[e], '=') - j->extra[e]) + 1;
			ours = strncmp(environ[i], j->extra[e], len) == 0;
		}
		for (size_t e = 0; e < sizeof(drop) / sizeof(drop[0]) && !ours; e++)
			ours = strncmp(environ[i], drop[e], strlen(drop[e])) == 0;
		if (!ours)
			j->envp[o++] = environ[i];
	}
	for (size_t e = 0; e < k; e++)
		j->envp[o++] = j->extra[e];

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&th, &attr, hook_thread, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		hook_job_free(j);
		return false;
	}
	return true;
}

/* ---- the engine ------------------------------------------------------------ */

static int ext_configure(struct crac_round *r)
{
	char path[256] = "", msg[PATH_MAX + 300];
	/* bounded by the checkpoint's deadline */
	int rc = crac__control_start_msg(r->event.deadline_monotonic, msg, sizeof(msg));

	if (rc < 0) {
		crac_control_path(path, sizeof(path));
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "external", rc,
				 "the external engine is resumed through the control endpoint, which could not start at %s: %s",
				 path, msg);
	}
	return rc;
}

static int ext_checkpoint(struct crac_round *r)
{
	int64_t park_ms = crac__ext_env_int("CRAC_EXTERNAL_PARK_MS", DEFAULT_PARK_MS);
	/* 0: no deadline; also for one beyond what int64_t nanoseconds hold
	 * (park_ms * 10^6 overflowed into a budget used up at once) */
	int64_t budget = park_ms > 0 && park_ms <= INT64_MAX / 1000000LL ? park_ms * 1000000LL : 0;
	const char *hook = getenv("CRAC_EXTERNAL_HOOK");
	bool logind_round, sleeping = true;
	enum ext_wake why;
	char failure[sizeof(hook_failure)];
	pthread_t waker;
	sigset_t all, old;
	unsigned seq;
	int rc;

	init_once();
	/* Parked before the platform is told: a wake-up that comes at once
	 * (logind's PrepareForSleep(false) right after the lock is released)
	 * is kept for the waker, never dropped (it waited for the deadline). */
	pthread_mutex_lock(&park_lock);
	parked = true;
	park_over = false;
	pending = woke = EXT_WAKE_NONE;
	hook_failure[0] = '\0';
	seq = ++park_seq;
	hook_pid = hook_shell = 0;
	hook_reaped = hook_cancel = false;
	pthread_mutex_unlock(&park_lock);

	/* Ready: a round announced by logind lets the sleep go on now. */
	logind_round = crac__ext_logind_parking(&sleeping);
	if (logind_round && !sleeping) {
		pthread_mutex_lock(&park_lock);
		parked = false;
		pthread_mutex_unlock(&park_lock);
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "external", -ECANCELED,
				 "logind ended the sleep (PrepareForSleep(false)) before the before_checkpoint "
				 "callbacks were done: no snapshot");
		return CRAC_ABORTED;
	}
	/* Tests: time between telling logind and starting the waker
	 * (engine_external_logind.bats). */
	int64_t test_delay = crac__ext_env_int("CRAC_EXTERNAL_TEST_PARK_DELAY_MS", 0);
	if (test_delay > 0) {
		struct timespec d = { test_delay / 1000, test_delay % 1000 * 1000000L };
		nanosleep(&d, NULL);
	}

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&waker, NULL, waker_thread, &budget);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_mutex_lock(&park_lock);
		parked = false;
		pthread_mutex_unlock(&park_lock);
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "external", -rc,
				 "cannot start the thread that resumes a parked process");
		return -rc;
	}
	bool with_hook = hook && *hook;
	if (with_hook && !start_hook(r, hook, seq, park_ms)) {
		hook_failed(seq, "CRAC_EXTERNAL_HOOK could not be started (out of memory or threads): no snapshot");
		hook_gone(seq);
	}

	/* Park: the pause engine answers the requester and waits. */
	crac__engine_pause.checkpoint(r);

	pthread_mutex_lock(&park_lock);
	park_over = true;
	parked = false;
	why = woke;
	snprintf(failure, sizeof(failure), "%s", hook_failure);
	pthread_cond_broadcast(&park_cond);
	pthread_mutex_unlock(&park_lock);
	pthread_join(waker, NULL);

	/* No snapshot: what the hook started must not take one now. */
	if (with_hook && (why == EXT_WAKE_DEADLINE || why == EXT_WAKE_HOOK_FAILED))
		stop_hook(seq);

	switch (why) {
	case EXT_WAKE_DEADLINE:
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "external", -ETIMEDOUT,
				 "nothing resumed process %d within CRAC_EXTERNAL_PARK_MS=%" PRId64
				 " ms (no RESUME on the control endpoint%s): resumed without a snapshot",
				 (int)getpid(), park_ms, logind_round ? ", no PrepareForSleep(false)" : "");
		return CRAC_ABORTED;
	case EXT_WAKE_HOOK_FAILED:
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "external", -ECANCELED, "%s", failure);
		return CRAC_ABORTED;
	default:
		return CRAC_RESTORED;
	}
}

const struct crac_engine crac__engine_external = {
	.name = "external",
	.summary = "external: coordinates with a VM/container snapshot taken from outside "
		   "(control endpoint, systemd-logind, hook, unannounced restores)",
	.configure = ext_configure,
	.checkpoint = ext_checkpoint,
};

/* ---- start at load time ------------------------------------------------------ */

void crac__external_autostart(void)
{
	const char *e = getenv("CRAC_ENGINE"), *l = getenv("CRAC_EXTERNAL_LOGIND"),
		   *w = getenv("CRAC_EXTERNAL_WATCH");
	char path[256] = "";
	int rc;

	if (!e || strcmp(e, "external") != 0)
		return;
	/* The crac command links libcrac too; it is no program to follow. */
	if (strcmp(program_invocation_short_name, "crac") == 0)
		return;
	init_once();
	char msg[PATH_MAX + 300];
	if ((rc = crac__control_start_msg(0, msg, sizeof(msg))) < 0) {
		crac_control_path(path, sizeof(path));
		crac__ext_say("the control endpoint could not start at %s (%s): `crac restore --pid` "
			      "cannot resume this process", path, msg);
	}
	if (!l || strcmp(l, "0") != 0)
		crac__ext_logind_start(l && strcmp(l, "1") == 0);
	if (!w || strcmp(w, "0") != 0)
		crac__ext_watch_start();
}
