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

/* Inhibitors (inhibit.c). Called with crac__lock held. */
bool crac__inhibitors_held(void) CRAC_HIDDEN;
void crac__inhibitors_report(crac_report *rep) CRAC_HIDDEN;

#endif
