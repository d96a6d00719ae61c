/* SPDX-License-Identifier: MIT */
/*
 * external.h - the external engine's parts (src/engines/external*.c): the
 * engine and its parking (external.c), the systemd-logind path
 * (external_logind.c) and the watcher for unannounced snapshots
 * (external_watch.c). Not installed; every symbol is hidden.
 *
 * The engine follows a platform that snapshots the whole VM or container:
 *  - announced snapshots: the before-callbacks run, the process parks and
 *    tells the platform it is ready (logind delay lock released, the
 *    control requester answered, $CRAC_EXTERNAL_HOOK run), then resumes on
 *    a RESUME message on the control endpoint, on logind's
 *    PrepareForSleep(false), or at the park deadline;
 *  - unannounced snapshots: a watcher thread notices a restore after the
 *    fact and runs the after_restore callbacks with ev->unannounced = 1.
 * With CRAC_ENGINE=external in the environment at load time, all of it
 * starts by itself (crac__external_autostart, called from core/init.c).
 */
#ifndef CRAC_EXTERNAL_H
#define CRAC_EXTERNAL_H

#include "core/internal.h"

#include <stdbool.h>
#include <stdint.h>

/* Why a park ended (what resumed the process). */
enum ext_wake {
	EXT_WAKE_NONE = 0,      /* not yet, or the control endpoint (RESUME) */
	EXT_WAKE_LOGIND,        /* PrepareForSleep(false) */
	EXT_WAKE_DEADLINE,      /* $CRAC_EXTERNAL_PARK_MS passed */
	EXT_WAKE_HOOK_FAILED,   /* $CRAC_EXTERNAL_HOOK could not run or exited non-zero */
};

extern const struct crac_engine crac__engine_external CRAC_HIDDEN;

/* One message "external: MESSAGE" through crac's logger (core/log.c: a
 * line "crac: external: MESSAGE" on stderr by default): a warning, or
 * information (shown with CRAC_LOG=info). */
void crac__ext_say(const char *fmt, ...) __attribute__((format(printf, 1, 2))) CRAC_HIDDEN;
void crac__ext_info(const char *fmt, ...) __attribute__((format(printf, 1, 2))) CRAC_HIDDEN;

/* An integer from the environment, `def` when unset or not a number. */
int64_t crac__ext_env_int(const char *name, int64_t def) CRAC_HIDDEN;

/*
 * Ends the park in progress, if any, for `why` (logind, deadline). Safe to
 * call from any thread at any time; a no-op when nothing is parked.
 */
void crac__ext_wake(enum ext_wake why) CRAC_HIDDEN;

/* Called from core/init.c at load time: starts the logind path and the
 * watcher when CRAC_ENGINE=external. */
void crac__external_autostart(void) CRAC_HIDDEN;

/* ---- logind (external_logind.c) ---------------------------------------- */

/*
 * Starts the logind thread: a delay inhibitor lock ("sleep", "crac") and a
 * match on PrepareForSleep. `required`: report every failure (also "not
 * built"); otherwise stay quiet when there is no system bus at all.
 * Returns 0 or a negative errno (-ENOTSUP: built without libsystemd).
 */
int crac__ext_logind_start(bool required) CRAC_HIDDEN;

/*
 * The round of the calling thread was started by PrepareForSleep(true):
 * releases the delay lock (the platform may go on). Returns whether the
 * calling thread runs such a round, and in *sleeping whether the sleep is
 * still announced (false: PrepareForSleep(false) came already).
 */
bool crac__ext_logind_parking(bool *sleeping) CRAC_HIDDEN;

/* Whether libcrac was built with libsystemd (sd-bus). */
bool crac__ext_logind_built(void) CRAC_HIDDEN;

/* ---- watcher (external_watch.c) ---------------------------------------- */

/* Starts the watcher thread for unannounced snapshots. 0 or -errno. */
int crac__ext_watch_start(void) CRAC_HIDDEN;

#endif /* CRAC_EXTERNAL_H */
