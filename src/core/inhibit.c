/* SPDX-License-Identifier: MIT */
/*
 * inhibit.c - critical sections a checkpoint must not cut through.
 *
 * crac_inhibit() registers a holder; a checkpoint waits (up to its deadline)
 * until there is none; while a round runs, new holders wait for it to end.
 */
#include "core/core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct crac_inhibitor {
	char *why;
	int tid;
	int64_t since;
	struct crac_inhibitor *prev, *next;
};

static struct crac_inhibitor *holders;

int crac_inhibit(const char *why, crac_inhibitor **out)
{
	struct crac_inhibitor *h;
	int me = crac__gettid();

	if (!out)
		return -EINVAL;
	crac__enter();
	h = calloc(1, sizeof(*h));
	if (!h || !(h->why = strdup(why && *why ? why : "(no reason given)"))) {
		free(h);
		crac__leave();
		return -ENOMEM;
	}
	h->tid = me;
	pthread_mutex_lock(&crac__lock);
	if (crac__round_state.active && crac__round_state.owner_tid == me) {
		pthread_mutex_unlock(&crac__lock);
		free(h->why);
		free(h);
		crac__leave();
		return -EDEADLK;
	}
	while (crac__round_state.active)
		pthread_cond_wait(&crac__cond, &crac__lock);
	h->since = crac__now_ns(CLOCK_MONOTONIC);
	h->next = holders;
	if (holders)
		holders->prev = h;
	holders = h;
	pthread_mutex_unlock(&crac__lock);
	crac__leave();
	*out = h;
	return 0;
}

int crac_release(crac_inhibitor *h)
{
	if (!h)
		return -EINVAL;
	crac__enter();
	pthread_mutex_lock(&crac__lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		holders = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_cond_broadcast(&crac__cond);
	pthread_mutex_unlock(&crac__lock);
	free(h->why);
	free(h);
	crac__leave();
	return 0;
}

bool crac__inhibitors_held(void)
{
	return holders != NULL;
}

void crac__inhibitors_report(crac_report *rep)
{
	int64_t now = crac__now_ns(CLOCK_MONOTONIC);

	for (struct crac_inhibitor *h = holders; h; h = h->next)
		crac__report_add(rep, CRAC_PHASE_CHECKPOINT, "crac", -ETIMEDOUT,
				 "inhibitor \"%s\" held by thread %d for %.1f ms was not released before the deadline",
				 h->why, h->tid, (now - h->since) / 1e6);
}
