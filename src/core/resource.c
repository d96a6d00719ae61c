/* SPDX-License-Identifier: MIT */
/*
 * resource.c - contexts, resources and the order they are notified in.
 *
 * The tree: the global context holds resources and contexts; a context is a
 * resource whose callbacks notify its own children. Within a context, the
 * before-order is: priority ascending, then registration order descending
 * (newest first). after_restore walks exactly the notified set in reverse.
 *
 * Lifetime: a resource is reference-counted. The parent's list holds one
 * reference; a round that is about to notify it holds another. Unregistering
 * removes it from the list and marks it dead, so a round that has not reached
 * it yet skips it and one that notified it does not call after_restore; the
 * memory goes when the last reference is dropped. A callback in flight on
 * another thread is waited for (running_tid).
 */
#include "core/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pthread_mutex_t crac__lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t crac__cond = PTHREAD_COND_INITIALIZER;

struct crac_resource {
	char *name;
	crac_callback before, after;
	void *arg;
	int priority;
	uint64_t seq;               /* registration order */
	struct crac_context *parent;
	struct crac_context *ctx;   /* this resource is a context */
	struct crac_resource *prev, *next;
	unsigned refs;
	bool dead;
	int running_tid;            /* a callback of it is running on this thread */
};

struct crac_context {
	struct crac_resource res;   /* must be first: a context is a resource */
	struct crac_resource *head, *tail;
	size_t count;
};

struct crac_notified {
	struct crac_resource *res;
	struct crac_notified *children; /* array, for contexts */
	size_t nchildren;
	char *path;
};

static struct crac_context global_ctx = { .res = { .name = "", .refs = 1 } };
static uint64_t next_seq = 1;
/* Resources registered from this number on joined during the running
 * round: they are notified from the next round on, in whatever context. */
static uint64_t round_seq_limit = UINT64_MAX;

/* Set by crac__notify_after_all(): build the notified tree without calling
 * any before_checkpoint (this thread only). */
static __thread bool tree_only;

/* Per-thread message set by crac_fail() for the callback being run. */
static __thread char fail_msg[512];
static __thread bool fail_msg_set;

crac_context *crac_global_context(void)
{
	global_ctx.res.ctx = &global_ctx;
	return &global_ctx;
}

int crac_fail(int code, const char *fmt, ...)
{
	va_list ap;

	if (code >= 0)
		code = -EIO;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(fail_msg, sizeof(fail_msg), fmt, ap);
		va_end(ap);
		fail_msg_set = true;
	}
	return code;
}

/* ---- lifetime --------------------------------------------------------- */

static void put_locked(struct crac_resource *r)
{
	if (--r->refs)
		return;
	free(r->name);
	free(r);   /* a context's struct starts with its resource */
}

static void link_locked(struct crac_context *parent, struct crac_resource *r)
{
	r->parent = parent;
	r->seq = next_seq++;
	r->prev = parent->tail;
	r->next = NULL;
	if (parent->tail)
		parent->tail->next = r;
	else
		parent->head = r;
	parent->tail = r;
	parent->count++;
}

static void unlink_locked(struct crac_resource *r)
{
	struct crac_context *p = r->parent;

	if (r->prev)
		r->prev->next = r->next;
	else
		p->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		p->tail = r->prev;
	p->count--;
	r->prev = r->next = NULL;
}

/*
 * Unregisters `r` (and, for a context, everything in it first). Waits for a
 * callback of `r` running on another thread. Called with the lock held.
 */
static void unregister_locked(struct crac_resource *r)
{
	int me = crac__gettid();

	if (r->ctx) {
		while (r->ctx->head)
			unregister_locked(r->ctx->head);
	}
	r->dead = true;
	while (r->running_tid && r->running_tid != me)
		pthread_cond_wait(&crac__cond, &crac__lock);
	if (r->parent) {
		unlink_locked(r);
		r->parent = NULL;
		put_locked(r);   /* the list's reference */
	}
}

static int check_name(const char *name)
{
	return name && *name && !strchr(name, '/') ? 0 : -EINVAL;
}

int crac_register(crac_context *ctx, const struct crac_resource_def *def,
		  crac_resource **out)
{
	struct crac_resource *r;

	if (!def || check_name(def->name) || (!def->before_checkpoint && !def->after_restore))
		return -EINVAL;
	/* a size that does not even cover the fields up to itself is garbage */
	if (def->size && def->size < offsetof(struct crac_resource_def, size) + sizeof(def->size))
		return -EINVAL;
	if (!ctx)
		ctx = crac_global_context();
	crac__enter();
	r = calloc(1, sizeof(*r));
	if (!r || !(r->name = strdup(def->name))) {
		free(r);
		crac__leave();
		return -ENOMEM;
	}
	r->before = def->before_checkpoint;
	r->after = def->after_restore;
	r->arg = def->arg;
	r->priority = def->priority;
	r->refs = 1;
	pthread_mutex_lock(&crac__lock);
	link_locked(ctx, r);
	pthread_mutex_unlock(&crac__lock);
	crac__leave();
	if (out)
		*out = r;
	return 0;
}

int crac_unregister(crac_resource *res)
{
	if (!res || res->ctx)
		return -EINVAL;
	crac__enter();
	pthread_mutex_lock(&crac__lock);
	if (res->parent)
		unregister_locked(res);
	pthread_mutex_unlock(&crac__lock);
	crac__leave();
	return 0;
}

int crac_context_create(crac_context *parent, const char *name, int priority,
			crac_context **out)
{
	struct crac_context *c;

	if (check_name(name) || !out)
		return -EINVAL;
	if (!parent)
		parent = crac_global_context();
	crac__enter();
	c = calloc(1, sizeof(*c));
	if (!c || !(c->res.name = strdup(name))) {
		free(c);
		crac__leave();
		return -ENOMEM;
	}
	c->res.ctx = c;
	c->res.priority = priority;
	c->res.refs = 1;
	pthread_mutex_lock(&crac__lock);
	link_locked(parent, &c->res);
	pthread_mutex_unlock(&crac__lock);
	crac__leave();
	*out = c;
	return 0;
}

int crac_context_destroy(crac_context *ctx)
{
	if (!ctx || ctx == &global_ctx)
		return -EINVAL;
	crac__enter();
	pthread_mutex_lock(&crac__lock);
	unregister_locked(&ctx->res);
	pthread_mutex_unlock(&crac__lock);
	crac__leave();
	return 0;
}

/* ---- notification ------------------------------------------------------ */

/* before-order: lower priority first; among equals, newest first. */
static int before_cmp(const void *a, const void *b)
{
	const struct crac_resource *x = *(struct crac_resource *const *)a;
	const struct crac_resource *y = *(struct crac_resource *const *)b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	return x->seq > y->seq ? -1 : (x->seq < y->seq);
}

static char *join_path(const char *parent, const char *name)
{
	char *p = NULL;

	if (!parent || !*parent)
		return strdup(name);
	if (asprintf(&p, "%s/%s", parent, name) < 0)
		return NULL;
	return p;
}

/*
 * Marks `r` as running on this thread unless it is dead. Returns false if it
 * must be skipped.
 */
static bool enter(struct crac_resource *r)
{
	bool ok;

	pthread_mutex_lock(&crac__lock);
	ok = !r->dead;
	if (ok)
		r->running_tid = crac__gettid();
	pthread_mutex_unlock(&crac__lock);
	return ok;
}

static void leave(struct crac_resource *r)
{
	pthread_mutex_lock(&crac__lock);
	r->running_tid = 0;
	pthread_cond_broadcast(&crac__cond);
	pthread_mutex_unlock(&crac__lock);
}

/*
 * Calls one callback and records its failure, and a timeout if it returned
 * after the deadline (reported once per round phase via *late).
 */
static void call(struct crac_round *r, crac_callback cb, const char *path,
		 void *arg, enum crac_phase phase, int64_t deadline, bool *late)
{
	int64_t t0 = crac__now_ns(CLOCK_MONOTONIC), t1;
	unsigned depth = crac__depth;
	int rc;

	fail_msg_set = false;
	/* The callback is the program's code, not crac's: no lock is held, and
	 * a checkpoint requested from it (or from a handler that interrupted
	 * it) is refused as recursive, with its own message. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	crac__depth = 0;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	rc = cb(&r->event, arg);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	crac__depth = depth;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	t1 = crac__now_ns(CLOCK_MONOTONIC);
	if (rc != 0) {
		if (rc > 0)
			crac__report_add(r->report, phase, path, -EIO,
					 "callback returned %d (callbacks return 0 or a negative errno)%s%s",
					 rc, fail_msg_set ? ": " : "", fail_msg_set ? fail_msg : "");
		else
			crac__report_add(r->report, phase, path, rc, "%s",
					 fail_msg_set ? fail_msg : "callback failed without a message");
	}
	fail_msg_set = false;
	if (deadline && t1 > deadline && !*late) {
		*late = true;
		crac__report_add(r->report, phase, path, -ETIMEDOUT,
				 "%s took %.1f ms and ran past the %s deadline",
				 phase == CRAC_PHASE_RESTORE ? "after_restore" : "before_checkpoint",
				 (t1 - t0) / 1e6, phase == CRAC_PHASE_RESTORE ? "restore" : "checkpoint");
	}
}

/* Snapshots a context's children, sorted in before-order, with references. */
static struct crac_resource **snapshot(struct crac_context *c, size_t *n)
{
	struct crac_resource **v;
	size_t i = 0;

	pthread_mutex_lock(&crac__lock);
	v = calloc(c->count ? c->count : 1, sizeof(*v));
	if (v) {
		for (struct crac_resource *x = c->head; x; x = x->next) {
			if (x->seq >= round_seq_limit)
				continue;
			x->refs++;
			v[i++] = x;
		}
	}
	*n = i;
	pthread_mutex_unlock(&crac__lock);
	if (v)
		qsort(v, *n, sizeof(*v), before_cmp);
	return v;
}

static void notify_ctx_before(struct crac_round *r, struct crac_context *c, const char *path,
			      struct crac_notified *out, int64_t deadline, bool *late)
{
	size_t n = 0;
	struct crac_resource **v = snapshot(c, &n);

	out->children = v ? calloc(n ? n : 1, sizeof(*out->children)) : NULL;
	if (!out->children) {
		crac__report_add(r->report, CRAC_PHASE_CHECKPOINT, path && *path ? path : "crac",
				 -ENOMEM, "out of memory listing resources");
		if (v) {
			pthread_mutex_lock(&crac__lock);
			for (size_t i = 0; i < n; i++)
				put_locked(v[i]);
			pthread_mutex_unlock(&crac__lock);
		}
		free(v);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct crac_resource *x = v[i];
		struct crac_notified *nd;

		if (!enter(x)) {
			pthread_mutex_lock(&crac__lock);
			put_locked(x);
			pthread_mutex_unlock(&crac__lock);
			continue;
		}
		nd = &out->children[out->nchildren++];
		nd->res = x;   /* keeps the snapshot's reference */
		nd->path = join_path(path, x->name);
		if (x->ctx) {
			leave(x);
			notify_ctx_before(r, x->ctx, nd->path ? nd->path : x->name, nd, deadline, late);
		} else {
			if (x->before && !tree_only)
				call(r, x->before, nd->path ? nd->path : x->name, x->arg,
				     x->priority >= CRAC_PRIO_CHECKS ? CRAC_PHASE_CHECK
								     : CRAC_PHASE_CHECKPOINT,
				     deadline, late);
			leave(x);
		}
	}
	free(v);
}

struct crac_notified *crac__notify_before(struct crac_round *r, int64_t deadline)
{
	struct crac_notified *root = calloc(1, sizeof(*root));
	bool late = false;

	if (!root) {
		crac__report_add(r->report, CRAC_PHASE_CHECKPOINT, "crac", -ENOMEM,
				 "out of memory starting the checkpoint");
		return NULL;
	}
	pthread_mutex_lock(&crac__lock);
	round_seq_limit = next_seq;
	pthread_mutex_unlock(&crac__lock);
	notify_ctx_before(r, crac_global_context(), "", root, deadline, &late);
	pthread_mutex_lock(&crac__lock);
	round_seq_limit = UINT64_MAX;
	pthread_mutex_unlock(&crac__lock);
	return root;
}

static void notify_after(struct crac_round *r, struct crac_notified *nd, int64_t deadline, bool *late)
{
	for (size_t i = nd->nchildren; i-- > 0;) {
		struct crac_notified *c = &nd->children[i];
		struct crac_resource *x = c->res;

		if (x->ctx) {
			notify_after(r, c, deadline, late);
		} else if (x->after && enter(x)) {
			call(r, x->after, c->path ? c->path : x->name, x->arg,
			     CRAC_PHASE_RESTORE, deadline, late);
			leave(x);
		}
		pthread_mutex_lock(&crac__lock);
		put_locked(x);
		pthread_mutex_unlock(&crac__lock);
		free(c->path);
	}
	free(nd->children);
}

void crac__notify_after(struct crac_round *r, struct crac_notified *n, int64_t deadline)
{
	bool late = false;

	if (!n)
		return;
	notify_after(r, n, deadline, &late);
	free(n);
}

void crac__notify_after_all(struct crac_round *r, int64_t deadline)
{
	struct crac_notified *n;

	tree_only = true;
	n = crac__notify_before(r, deadline);
	tree_only = false;
	crac__notify_after(r, n, deadline);
}
