/* SPDX-License-Identifier: MIT */
/*
 * report.c - the list of failures a checkpoint collects.
 *
 * Like CRaC's CheckpointException with its suppressed exceptions: every
 * failure of a round is kept (resource path, phase, errno, message), so one
 * report tells the user everything that stands in the way.
 */
#include "core/core.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct crac_report {
	struct crac_failure *items;
	size_t count, cap;
	int status;
};

/* Used when memory runs out while reporting: the report still says so. */
static const struct crac_failure oom_failure = {
	.phase = CRAC_PHASE_CHECKPOINT, .resource = "crac", .code = -ENOMEM,
	.message = "out of memory while recording a failure",
};

/* The reports of crac__report_fixed(): static, never changed or freed. */
static struct crac_failure fixed_items[CRAC__FIXED_COUNT] = {
	[CRAC__FIXED_SIGNAL_IN_CRAC] = {
		.phase = CRAC_PHASE_CHECKPOINT, .resource = "crac", .code = -EDEADLK,
		.message = "called from a signal handler that interrupted crac in this thread "
			   "(crac_checkpoint_restore() is not async-signal-safe)",
	},
	[CRAC__FIXED_SIGNAL_STACK] = {
		.phase = CRAC_PHASE_CHECKPOINT, .resource = "crac", .code = -EINVAL,
		.message = "called on the alternate signal stack, from a signal handler "
			   "(crac_checkpoint_restore() is not async-signal-safe)",
	},
	[CRAC__FIXED_NO_MEMORY] = {
		.phase = CRAC_PHASE_CHECKPOINT, .resource = "crac", .code = -ENOMEM,
		.message = "out of memory starting the checkpoint: nothing was notified",
	},
};
static struct crac_report fixed_reports[CRAC__FIXED_COUNT] = {
	[CRAC__FIXED_SIGNAL_IN_CRAC] = {
		.items = &fixed_items[CRAC__FIXED_SIGNAL_IN_CRAC], .count = 1, .cap = 1, .status = -EDEADLK,
	},
	[CRAC__FIXED_SIGNAL_STACK] = {
		.items = &fixed_items[CRAC__FIXED_SIGNAL_STACK], .count = 1, .cap = 1, .status = -EINVAL,
	},
	[CRAC__FIXED_NO_MEMORY] = {
		.items = &fixed_items[CRAC__FIXED_NO_MEMORY], .count = 1, .cap = 1, .status = -ENOMEM,
	},
};

static bool is_fixed(const crac_report *rep)
{
	for (size_t i = 0; i < CRAC__FIXED_COUNT; i++)
		if (rep == &fixed_reports[i])
			return true;
	return false;
}

crac_report *crac__report_fixed(enum crac__fixed_report which)
{
	return which < CRAC__FIXED_COUNT ? &fixed_reports[which] : NULL;
}

crac_report *crac__report_new(void)
{
	crac_report *rep;

	crac__enter();
	rep = calloc(1, sizeof(*rep));
	if (rep)
		rep->status = CRAC_ABORTED;
	crac__leave();
	return rep;
}

static void push(crac_report *rep, enum crac_phase phase, const char *resource,
		 int code, char *message)
{
	char *res = strdup(resource ? resource : "crac");

	if (rep->count == rep->cap) {
		size_t cap = rep->cap ? rep->cap * 2 : 8;
		struct crac_failure *n = realloc(rep->items, cap * sizeof(*n));
		if (!n)
			goto oom;
		rep->items = n;
		rep->cap = cap;
	}
	if (!res || !message)
		goto oom;
	if (code >= 0)
		code = -EIO;
	rep->items[rep->count++] = (struct crac_failure){
		.phase = phase, .resource = res, .code = code, .message = message,
	};
	return;
oom:
	free(res);
	free(message);
	if (rep->count < rep->cap) {
		/* static strings: mark so that free() skips them */
		rep->items[rep->count++] = oom_failure;
	}
}

void crac__report_vadd(crac_report *rep, enum crac_phase phase, const char *resource,
		       int code, const char *fmt, va_list ap)
{
	char *msg = NULL;

	if (!rep || is_fixed(rep))
		return;
	crac__enter();
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	push(rep, phase, resource, code, msg);
	crac__leave();
}

void crac__report_add(crac_report *rep, enum crac_phase phase, const char *resource,
		      int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	crac__report_vadd(rep, phase, resource, code, fmt, ap);
	va_end(ap);
}

void crac__report_set_status(crac_report *rep, int status)
{
	if (rep && !is_fixed(rep))
		rep->status = status;
}

size_t crac_report_count(const crac_report *rep)
{
	return rep ? rep->count : 0;
}

const struct crac_failure *crac_report_get(const crac_report *rep, size_t i)
{
	if (!rep || i >= rep->count)
		return NULL;
	return &rep->items[i];
}

int crac_report_status(const crac_report *rep)
{
	return rep ? rep->status : -EINVAL;
}

static const char *phase_word(enum crac_phase p)
{
	switch (p) {
	case CRAC_PHASE_CHECKPOINT: return "before_checkpoint";
	case CRAC_PHASE_CHECK: return "check";
	case CRAC_PHASE_ENGINE: return "engine";
	case CRAC_PHASE_RESTORE: return "after_restore";
	}
	return "?";
}

static const char *status_words(int status)
{
	switch (status) {
	case CRAC_CONTINUED: return "checkpoint taken";
	case CRAC_RESTORED: return "restored";
	case CRAC_ABORTED: return "checkpoint aborted";
	default: return "checkpoint failed";
	}
}

/* Writes the report through a FILE (a real one or a memstream). */
static int print_to(const crac_report *rep, FILE *f)
{
	size_t n = crac_report_count(rep);
	int status = crac_report_status(rep);

	if (status < 0)
		fprintf(f, "crac: %s (%s): %zu problem%s\n", status_words(status),
			crac__errno_name(status), n, n == 1 ? "" : "s");
	else
		fprintf(f, "crac: %s: %zu problem%s\n", status_words(status), n,
			n == 1 ? "" : "s");
	for (size_t i = 0; i < n; i++) {
		const struct crac_failure *x = &rep->items[i];
		fprintf(f, "  %s %s: %s (%s): %s\n", phase_word(x->phase), x->resource,
			strerror(-x->code), crac__errno_name(x->code), x->message);
	}
	return ferror(f) ? -EIO : 0;
}

int crac_report_print(const crac_report *rep, FILE *f)
{
	int rc = 0;

	if (!rep || !f)
		return -EINVAL;
	crac__enter();   /* stdio locks and may allocate */
	if (print_to(rep, f) < 0 || fflush(f) != 0)
		rc = -EIO;
	crac__leave();
	return rc;
}

int crac_report_format(const crac_report *rep, char **out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (!rep || !out)
		return -EINVAL;
	crac__enter();
	f = open_memstream(&buf, &len);
	if (!f) {
		crac__leave();
		return -ENOMEM;
	}
	print_to(rep, f);
	if (fclose(f) != 0) {
		free(buf);
		crac__leave();
		return -ENOMEM;
	}
	crac__leave();
	*out = buf;
	return 0;
}

void crac_report_free(crac_report *rep)
{
	if (!rep || is_fixed(rep))
		return;
	crac__enter();
	for (size_t i = 0; i < rep->count; i++) {
		if (rep->items[i].message == oom_failure.message)
			continue;
		free((char *)rep->items[i].resource);
		free((char *)rep->items[i].message);
	}
	free(rep->items);
	free(rep);
	crac__leave();
}
