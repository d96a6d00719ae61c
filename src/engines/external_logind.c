/* SPDX-License-Identifier: MIT */
/*
 * external_logind.c - the external engine follows systemd-logind's sleep
 * announcements, which is how a VM orchestrator can snapshot a guest whose
 * processes coordinate through systemd (suspend the guest, snapshot it).
 *
 * Protocol (org.freedesktop.login1.Manager, system bus, sd-bus):
 *   1. at start: Inhibit("sleep", "crac", WHY, "delay") -> a file
 *      descriptor; while we hold it, logind delays a sleep for us (up to
 *      its InhibitDelayMaxSec, 5 s by default);
 *   2. PrepareForSleep(true): a round with the external engine runs on a
 *      thread of its own; once the before-callbacks are done the engine
 *      closes the lock (crac__ext_logind_parking) and parks;
 *   3. PrepareForSleep(false): the parked round resumes (CRAC_RESTORED),
 *      its after-callbacks run, and a new lock is taken for the next sleep.
 * A round that did not park (a before-callback failed) releases the lock
 * when it ends. The bus is $DBUS_SYSTEM_BUS_ADDRESS or the system bus.
 *
 * Without libsystemd's headers at build time the path is not built; without
 * libsystemd.so.0 at run time it cannot start. Either way starting it says
 * so (always with CRAC_EXTERNAL_LOGIND=1) and returns -ENOTSUP.
 */
#include "engines/external.h"
#include "runtime/checks.h"

#include <errno.h>
#include <string.h>

#ifndef CRAC_HAVE_LIBSYSTEMD

bool crac__ext_logind_built(void)
{
	return false;
}

int crac__ext_logind_start(bool required)
{
	if (required)
		crac__ext_say("logind: CRAC_EXTERNAL_LOGIND=1 but this libcrac was built without libsystemd "
			      "(sd-bus): the logind path is not built (install libsystemd-dev and rebuild)");
	return -ENOTSUP;
}

bool crac__ext_logind_parking(bool *sleeping)
{
	(void)sleeping;
	return false;
}

#else

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <dlfcn.h>
#include <systemd/sd-bus.h>

/*
 * sd-bus is loaded with dlopen when the logind path starts, not linked:
 * linking libcrac (and the crac command) with libsystemd would load it and
 * the seven libraries it needs into every program and every `crac
 * restore`, which costs tens of milliseconds before main() here. Only the
 * functions below are used; each call site keeps sd-bus's own name.
 */
#define SDBUS_FUNCS(X) \
	X(sd_bus_open_system) X(sd_bus_call_method) X(sd_bus_error_free) \
	X(sd_bus_flush_close_unref) X(sd_bus_get_fd) X(sd_bus_match_signal) \
	X(sd_bus_message_read) X(sd_bus_message_unref) X(sd_bus_process) \
	X(sd_bus_wait)

static struct {
#define X(f) __typeof__(f) *f;
	SDBUS_FUNCS(X)
#undef X
} sdb;

/* 0, or -ENOTSUP with `why` set when libsystemd.so.0 or a function is missing. */
static int load_sdbus(const char **why)
{
	static void *lib;

	if (lib)
		return 0;
	void *h = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		*why = dlerror();
		return -ENOTSUP;
	}
#define X(f) if (!(sdb.f = (__typeof__(f) *)dlsym(h, #f))) { *why = "libsystemd.so.0 lacks " #f; dlclose(h); return -ENOTSUP; }
	SDBUS_FUNCS(X)
#undef X
	lib = h;
	return 0;
}

#define sd_bus_open_system sdb.sd_bus_open_system
#define sd_bus_call_method sdb.sd_bus_call_method
#define sd_bus_error_free sdb.sd_bus_error_free
#define sd_bus_flush_close_unref sdb.sd_bus_flush_close_unref
#define sd_bus_get_fd sdb.sd_bus_get_fd
#define sd_bus_match_signal sdb.sd_bus_match_signal
#define sd_bus_message_read sdb.sd_bus_message_read
#define sd_bus_message_unref sdb.sd_bus_message_unref
#define sd_bus_process sdb.sd_bus_process
#define sd_bus_wait sdb.sd_bus_wait

#define LOGIND_NAME "org.freedesktop.login1"
#define LOGIND_PATH "/org/freedesktop/login1"
#define LOGIND_IFACE "org.freedesktop.login1.Manager"

static pthread_mutex_t lg_lock = PTHREAD_MUTEX_INITIALIZER;
static sd_bus *bus;             /* the logind thread's only */
static int inhibit_fd = -1;     /* the delay lock we hold, -1 if none */
static bool sleeping;           /* between PrepareForSleep(true) and (false) */
static bool round_running;      /* a round started by logind is on */
static int round_tid;           /* its thread */
static bool relock;             /* take a new lock (logind thread) */
static bool started;

bool crac__ext_logind_built(void)
{
	return true;
}

static void release_lock_locked(void)
{
	if (inhibit_fd >= 0) {
		crac__internal_fd(inhibit_fd, false);
		close(inhibit_fd);
		inhibit_fd = -1;
	}
}

/* A child of fork() must not keep the parent's lock: logind would wait for
 * it too. */
static void atfork_child(void)
{
	if (inhibit_fd >= 0)
		close(inhibit_fd);
	inhibit_fd = -1;
	started = false;
	round_running = false;
	pthread_mutex_init(&lg_lock, NULL);
}

/* Takes the delay lock (logind thread). 0 or a negative errno (said). */
static int take_lock(void)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	char why[160];
	int fd = -1, rc;

	snprintf(why, sizeof(why), "crac: process %d (%s) runs its before_checkpoint callbacks first",
		 (int)getpid(), program_invocation_short_name);
	rc = sd_bus_call_method(bus, LOGIND_NAME, LOGIND_PATH, LOGIND_IFACE, "Inhibit", &err, &reply,
				"ssss", "sleep", "crac", why, "delay");
	if (rc < 0) {
		crac__ext_say("logind: Inhibit(\"sleep\", \"crac\", ..., \"delay\") failed: %s%s%s",
			      err.name ? err.name : strerror(-rc), err.message ? ": " : "",
			      err.message ? err.message : "");
		sd_bus_error_free(&err);
		return rc;
	}
	rc = sd_bus_message_read(reply, "h", &fd);
	if (rc >= 0)
		fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);   /* the message owns its fd */
	sd_bus_message_unref(reply);
	if (rc < 0 || fd < 0) {
		rc = rc < 0 ? rc : -errno;
		crac__ext_say("logind: Inhibit answered without a usable lock descriptor: %s", strerror(-rc));
		return rc;
	}
	pthread_mutex_lock(&lg_lock);
	release_lock_locked();
	inhibit_fd = fd;
	crac__internal_fd(fd, true);
	pthread_mutex_unlock(&lg_lock);
	return 0;
}

bool crac__ext_logind_parking(bool *sleeping_now)
{
	bool ours;

	pthread_mutex_lock(&lg_lock);
	ours = round_running && round_tid == crac__gettid();
	if (ours) {
		*sleeping_now = sleeping;
		release_lock_locked();
	}
	pthread_mutex_unlock(&lg_lock);
	return ours;
}

/* The round announced by PrepareForSleep(true). */
static void *round_thread(void *arg)
{
	struct crac_options o;
	crac_report *rep = NULL;
	char *text = NULL;
	int rc;

	(void)arg;
	pthread_mutex_lock(&lg_lock);
	round_tid = crac__gettid();
	pthread_mutex_unlock(&lg_lock);

	crac_options_init(&o);
	o.engine = "external";
	rc = crac__checkpoint(&o, NULL, &rep);
	if (rep && crac_report_format(rep, &text) == 0) {
		/* one line each, so that the report reads as crac's */
		for (char *p = text, *nl; p && *p; p = nl) {
			nl = strchr(p, '\n');
			if (nl)
				*nl++ = '\0';
			crac__ext_say("logind: %s", p[0] == 'c' && strncmp(p, "crac: ", 6) == 0 ? p + 6 : p);
		}
		free(text);
	} else if (rc < 0) {
		crac__ext_say("logind: the round announced by PrepareForSleep(true) failed: %s", strerror(-rc));
	}
	crac_report_free(rep);

	pthread_mutex_lock(&lg_lock);
	/* Aborted before parking while the sleep is still announced: it must
	 * not wait for us any longer. (After PrepareForSleep(false) the lock
	 * held is the new one, for the next sleep: kept.) */
	if (sleeping)
		release_lock_locked();
	round_running = false;
	round_tid = 0;
	pthread_mutex_unlock(&lg_lock);
	return NULL;
}

static int on_prepare_for_sleep(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	int start = 0;
	pthread_attr_t attr;
	pthread_t th;
	sigset_t all, old;
	int rc;

	(void)userdata;
	(void)ret_error;
	if (sd_bus_message_read(m, "b", &start) < 0)
		return 0;
	if (!start) {
		pthread_mutex_lock(&lg_lock);
		sleeping = false;
		relock = true;
		pthread_mutex_unlock(&lg_lock);
		crac__ext_wake(EXT_WAKE_LOGIND);
		return 0;
	}
	pthread_mutex_lock(&lg_lock);
	sleeping = true;
	if (round_running) {
		/* the previous round is still on: nothing new to coordinate */
		release_lock_locked();
		pthread_mutex_unlock(&lg_lock);
		crac__ext_say("logind: PrepareForSleep(true) while the previous round still runs: lock released");
		return 0;
	}
	round_running = true;
	round_tid = -1;
	pthread_mutex_unlock(&lg_lock);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&th, &attr, round_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		pthread_mutex_lock(&lg_lock);
		round_running = false;
		release_lock_locked();
		pthread_mutex_unlock(&lg_lock);
		crac__ext_say("logind: cannot start the round for PrepareForSleep(true): %s: lock released",
			      strerror(rc));
	}
	return 0;
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
}

static void *logind_thread(void *arg)
{
	(void)arg;
	for (;;) {
		int rc = sd_bus_process(bus, NULL);
		if (rc < 0) {
			crac__ext_say("logind: lost the system bus (%s): no longer following sleeps",
				      strerror(-rc));
			break;
		}
		if (rc > 0)
			continue;
		pthread_mutex_lock(&lg_lock);
		bool again = relock;
		relock = false;
		pthread_mutex_unlock(&lg_lock);
		if (again) {
			take_lock();
			continue;
		}
		rc = sd_bus_wait(bus, UINT64_MAX);
		if (rc < 0 && rc != -EINTR) {
			crac__ext_say("logind: waiting on the system bus: %s: no longer following sleeps",
				      strerror(-rc));
			break;
		}
	}
	pthread_mutex_lock(&lg_lock);
	release_lock_locked();
	pthread_mutex_unlock(&lg_lock);
	return NULL;
}

int crac__ext_logind_start(bool required)
{
	static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
	const char *addr = getenv("DBUS_SYSTEM_BUS_ADDRESS");
	pthread_attr_t attr;
	pthread_t th;
	sigset_t all, old;
	int rc;

	if (started)
		return 0;
	const char *why = NULL;
	if ((rc = load_sdbus(&why)) < 0) {
		/* no libsystemd on this system: quiet unless asked for, as without a bus */
		if (required)
			crac__ext_say("logind: CRAC_EXTERNAL_LOGIND=1 but sd-bus cannot be loaded: %s "
				      "(Debian package libsystemd0)", why ? why : "?");
		return rc;
	}
	pthread_once(&atfork_once, register_atfork);
	rc = sd_bus_open_system(&bus);
	if (rc < 0) {
		/* no bus at all (a container, a minimal system): quiet unless asked for */
		if (required || (rc != -ENOENT && rc != -ECONNREFUSED))
			crac__ext_say("logind: cannot connect to the system bus at %s: %s",
				      addr && *addr ? addr : "unix:path=/run/dbus/system_bus_socket",
				      strerror(-rc));
		return rc;
	}
	rc = sd_bus_match_signal(bus, NULL, LOGIND_NAME, LOGIND_PATH, LOGIND_IFACE, "PrepareForSleep",
				 on_prepare_for_sleep, NULL);
	if (rc < 0) {
		crac__ext_say("logind: cannot subscribe to PrepareForSleep: %s", strerror(-rc));
		goto fail;
	}
	if ((rc = take_lock()) < 0)
		goto fail;   /* said by take_lock */
	crac__internal_fd(sd_bus_get_fd(bus), true);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&th, &attr, logind_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc < 0) {
		crac__ext_say("logind: cannot start its thread: %s", strerror(-rc));
		goto fail;
	}
	started = true;
	return 0;
fail:
	pthread_mutex_lock(&lg_lock);
	release_lock_locked();
	pthread_mutex_unlock(&lg_lock);
	sd_bus_flush_close_unref(bus);
	bus = NULL;
	return rc;
}

#endif /* CRAC_HAVE_LIBSYSTEMD */
