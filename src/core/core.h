/* SPDX-License-Identifier: MIT */
/*
 * core.h - state private to the API core (src/core): the one lock that
 * guards resources, rounds and inhibitors, and the resource tree.
 */
#ifndef CRAC_CORE_H
#define CRAC_CORE_H

#include "core/internal.h"

/*
 * One lock for the resource tree, the round state and the inhibitors; one
 * condition variable broadcast on every change any waiter may care about
 * (a callback returned, a round ended, an inhibitor was released).
 * Callbacks never run with the lock held.
 */
extern pthread_mutex_t crac__lock CRAC_HIDDEN;
extern pthread_cond_t crac__cond CRAC_HIDDEN;

/* The round in progress (guarded by crac__lock). */
struct crac_round_state {
	bool active;
	int owner_tid;        /* thread running the round */
};
extern struct crac_round_state crac__round_state CRAC_HIDDEN;

/*
 * Notification tree of one round: what was notified before the checkpoint,
 * so that after_restore runs over exactly that set, in reverse order.
 */
struct crac_notified;

/*
 * Runs before_checkpoint over the global context. Every failure goes into
 * round->report. Returns the notified tree (NULL if nothing was notified or
 * memory ran out; the latter is reported).
 */
struct crac_notified *crac__notify_before(struct crac_round *r, int64_t deadline) CRAC_HIDDEN;

/* Runs after_restore over `n` in reverse order and frees it. */
void crac__notify_after(struct crac_round *r, struct crac_notified *n, int64_t deadline) CRAC_HIDDEN;

/*
 * Runs after_restore over every registered resource (a round's set, in the
 * same order) without any before_checkpoint: the external engine's
 * unannounced restores, where nothing was announced beforehand.
 */
void crac__notify_after_all(struct crac_round *r, int64_t deadline) CRAC_HIDDEN;

/*
 * Async-signal context (checkpoint.c). crac__depth counts, per thread, the
 * crac functions the thread is inside that take crac__lock or allocate
 * (registration, inhibitors, reports, identity, the round itself; not the
 * callbacks the round calls, which run at depth 0). A signal handler that
 * interrupted one of them and calls crac_checkpoint_restore() would deadlock
 * on the lock or corrupt the heap: the call is refused with -EDEADLK before
 * anything is locked or allocated. Initial-exec TLS, so that reading it in a
 * signal handler never allocates (a dlopen'ed libcrac takes its 4 bytes from
 * the static TLS surplus). Every crac__enter() is paired with a
 * crac__leave() on every path out.
 */
extern __thread volatile unsigned crac__depth
	__attribute__((tls_model("initial-exec"))) CRAC_HIDDEN;

static inline void crac__enter(void)
{
	crac__depth++;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);  /* counted before the lock is taken */
}

static inline void crac__leave(void)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);  /* lock released before uncounted */
	crac__depth--;
}

/*
 * Reports that need no memory, for refusals decided where allocating is
 * unsafe (report.c): shared and read-only; crac_report_free() and the
 * internal add/set functions leave them alone.
 */
enum crac__fixed_report {
	CRAC__FIXED_SIGNAL_IN_CRAC,   /* -EDEADLK: a handler interrupted crac in this thread */
	CRAC__FIXED_SIGNAL_STACK,     /* -EINVAL: running on the alternate signal stack */
	CRAC__FIXED_NO_MEMORY,        /* -ENOMEM: no memory for the round's own report */
	CRAC__FIXED_COUNT
};
crac_report *crac__report_fixed(enum crac__fixed_report which) CRAC_HIDDEN;

/* Inhibitors (inhibit.c). Called with crac__lock held. */
bool crac__inhibitors_held(void) CRAC_HIDDEN;
void crac__inhibitors_report(crac_report *rep) CRAC_HIDDEN;

#endif
