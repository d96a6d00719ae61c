/* SPDX-License-Identifier: MIT */
/*
 * checks.h - the process inventory, the policies and the safety checks
 * built from them (runtime/inventory.c, policy.c, checks.c).
 */
#ifndef CRAC_CHECKS_H
#define CRAC_CHECKS_H

#include "core/internal.h"

#include <limits.h>
#include <sys/stat.h>
#include <sys/types.h>

/* What an inventory item is. */
enum inv_class { INV_FD, INV_MAPPING, INV_CHILD, INV_TIMER };

/* One thing the process holds that an image might not restore. */
struct inv_item {
	enum inv_class cls;
	const char *kind;        /* policy kind: "file", "tcp", "mapping", ... */
	int fd;                  /* INV_FD: the descriptor; else -1 */
	char name[PATH_MAX + 64];/* path, address, or description matched by globs */
	char detail[256];        /* flags, offset, peer... for the report */
	/* INV_FD details used by close/reopen */
	int flags;               /* F_GETFL */
	int fd_flags;            /* F_GETFD (FD_CLOEXEC) */
	off_t offset;            /* -1 if not seekable */
	struct stat st;
	bool deleted;            /* the file is gone: cannot be reopened */
	bool listening;          /* a listening socket */
	int family, socktype;    /* sockets */
	bool reopenable;         /* reopen is possible for this kind */
	bool jvm_perfdata;       /* INV_MAPPING: the JVM's own hsperfdata file (crac__jvm_perfdata) */
	const char *timer_refusal;/* INV_TIMER, POSIX: why the image engine cannot carry it
				  * (crac__posix_timer_refusal); NULL: it can */
};

struct inventory {
	struct inv_item *items;
	size_t count, cap;
};

/* Fills `inv` with the items of this process (stdio and crac's own fds
 * excluded). Failures to read /proc are added to rep. */
int crac__inventory_take(struct inventory *inv, crac_report *rep) CRAC_HIDDEN;
void crac__inventory_free(struct inventory *inv) CRAC_HIDDEN;

enum policy_action { POL_ERROR, POL_WARN, POL_CLOSE, POL_REOPEN };

struct policy_match {
	enum policy_action action;
	bool changed_ok;         /* reopen: accept a changed file */
	char rule[256];          /* the rule's text, "" for the default */
};

/* First-wins policy lookup for an item (default: error). */
void crac__policy_match(const struct inv_item *it, struct policy_match *m) CRAC_HIDDEN;
/* Loads $CRAC_POLICIES once; the error (if any) stays to refuse checkpoints. */
void crac__policy_init_env(void) CRAC_HIDDEN;
/* Non-empty if $CRAC_POLICIES could not be loaded. */
const char *crac__policy_env_error(void) CRAC_HIDDEN;

/*
 * The checks in a round (called by the core): after the before_checkpoint
 * callbacks, inventory and policies; if anything refuses, or `dry` (a
 * callback already failed), only report; else carry out close/reopen.
 * Returns the number of refusing items. crac__checks_after reopens what
 * was closed for reopening, first thing after the engine returned.
 */
int crac__checks_before(struct crac_round *r, bool dry) CRAC_HIDDEN;
void crac__checks_after(struct crac_round *r) CRAC_HIDDEN;
/*
 * For an engine that carries descriptors (CRAC_ENGINE_CARRIES_FDS): what
 * the policies decided for fd in this round: 0 (carry as it is),
 * CRAC_OBJ_OMIT, CRAC_OBJ_CLOSED, or-ed with CRAC_OBJ_CHANGED_OK
 * (objects/objects.h). Safe while threads are stopped (no lock, no malloc).
 */
int crac__checks_fd_decision(const struct crac_round *r, int fd) CRAC_HIDDEN;
/*
 * How many child processes and POSIX timers the round's safety checks saw
 * (a policy accepted them, or there were none): an engine that stops the
 * threads later looks again, since a thread may fork or create a timer in
 * between. 0, or -1 if the checks did not run.
 */
int crac__checks_saw(const struct crac_round *r, int *children, int *posix_timers) CRAC_HIDDEN;

/*
 * Why the image engine cannot checkpoint a process that is not dumpable:
 * it reads its own memory map (/proc/self/pagemap), which is root's then.
 * Said by the safety checks (`crac check`, and a refusal before anything
 * is stopped or closed) and by the engine itself (image_capture.c).
 */
#define CRAC_NOT_DUMPABLE_WHY                                                                          \
	"the process is not dumpable (it changed its user or group IDs, or called "                    \
	"prctl(PR_SET_DUMPABLE, 0)), so it cannot read its own memory map; the image engine "         \
	"checkpoints only dumpable processes (call prctl(PR_SET_DUMPABLE, 1) after dropping "         \
	"privileges, if that is safe for it)"

/* crac's own descriptors (control endpoint...), never refused. core/util.c */
void crac__internal_fd(int fd, bool add) CRAC_HIDDEN;
bool crac__is_internal_fd(int fd) CRAC_HIDDEN;
/* Copies up to max of them into out, without waiting for the lock: the
 * count, or -EBUSY if another thread holds it. */
int crac__internal_fds_snapshot(int *out, int max) CRAC_HIDDEN;

#endif
