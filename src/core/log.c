/* SPDX-License-Identifier: MIT */
/*
 * log.c - crac's one logger: every message the library prints on its own
 * goes through crac__log(), filtered by level ($CRAC_LOG, or
 * crac_log_set_level) and delivered to the program's sink
 * (crac_log_set_handler) or to stderr.
 *
 * The default sink formats into a buffer on the stack and writes the line
 * with one write(2): no stdio stream, no lock, no allocation, so it can be
 * used while the image engine holds the program's other threads stopped
 * (they may hold stdio or malloc locks). A program's sink may take locks,
 * so while threads are stopped (crac__log_stopped_begin/end) messages go
 * to the default sink instead.
 *
 * The sink (function and argument) is one immutable pair behind an atomic
 * pointer, so a message never pairs a new function with an old argument.
 * Replaced pairs are not freed (a message may be in flight with one; a
 * program sets its sink a handful of times at most): they stay on a list,
 * so that they remain reachable, not leaked.
 */
#include "core/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct sink {
	crac_log_fn fn;
	void *arg;
	struct sink *retired_next;   /* on the retired list once replaced */
};

static _Atomic(struct sink *) sink;
static struct sink *retired;        /* guarded by retired_lock */
static pthread_mutex_t retired_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int level = CRAC_LOG_WARN;
static atomic_int stopped;   /* > 0: the program's threads are stopped */
static const char *bad_env;  /* an unknown $CRAC_LOG, said once */

/* "error" | "warn" | "info" | "debug" (or the digit) -> level; -1 if none. */
int crac__log_parse_level(const char *s)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	if (!s || !*s)
		return -1;
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, names[i]) == 0 || (s[0] == '0' + i && !s[1]))
			return i;
	if (strcasecmp(s, "warning") == 0)
		return CRAC_LOG_WARN;
	return -1;
}

/*
 * $CRAC_LOG, read once, before the first message is filtered: other
 * constructors of the library (init.c) may log before a constructor of
 * ours would run. An unknown value says so and keeps the default.
 */
static void read_env_level(void)
{
	const char *v = getenv("CRAC_LOG");
	int l = crac__log_parse_level(v);

	if (l >= 0)
		atomic_store(&level, l);
	else if (v && *v)
		bad_env = v;
}

static void env_once(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, read_env_level);
	const char *v = bad_env;
	if (v && __atomic_exchange_n(&bad_env, NULL, __ATOMIC_ACQ_REL))
		crac__log(CRAC_LOG_WARN, "CRAC_LOG=%s is not one of error, warn, info, debug: "
			  "using warn", v);
}

/* Load time too, so that a program that never logs still sees the warning. */
__attribute__((constructor)) static void log_init(void)
{
	env_once();
}

int crac_log_set_handler(crac_log_fn fn, void *arg)
{
	struct sink *s = NULL;

	if (fn) {
		s = malloc(sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->fn = fn;
		s->arg = arg;
		s->retired_next = NULL;
	}
	struct sink *old = atomic_exchange(&sink, s);
	if (old) {
		pthread_mutex_lock(&retired_lock);
		old->retired_next = retired;
		retired = old;
		pthread_mutex_unlock(&retired_lock);
	}
	return 0;
}

int crac_log_set_level(enum crac_log_level l)
{
	if ((int)l < CRAC_LOG_ERROR || l > CRAC_LOG_DEBUG)
		return -EINVAL;
	env_once();   /* the environment never overrides a level set here */
	return atomic_exchange(&level, (int)l);
}

bool crac__log_enabled(enum crac_log_level l)
{
	env_once();
	return (int)l <= atomic_load(&level);
}

void crac__log_stopped_begin(void)
{
	atomic_fetch_add(&stopped, 1);
}

void crac__log_stopped_end(void)
{
	atomic_fetch_sub(&stopped, 1);
}

/* The default sink: "crac: MESSAGE\n" in one write(2), cut (with "...")
 * rather than split when it is longer than the buffer. */
static void write_line(const char *msg)
{
	char line[2048];
	size_t n = strlen(msg), room = sizeof(line) - 8;

	memcpy(line, "crac: ", 6);
	if (n > room - 6) {
		memcpy(line + 6, msg, room - 9);
		memcpy(line + 6 + room - 9, "...", 3);
		n = room - 6;
	} else {
		memcpy(line + 6, msg, n);
	}
	line[6 + n] = '\n';
	for (size_t off = 0, len = 7 + n; off < len;) {
		ssize_t w = write(STDERR_FILENO, line + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;   /* stderr is gone: nowhere left to say it */
		off += (size_t)w;
	}
}

void crac__vlog(enum crac_log_level l, const char *fmt, va_list ap)
{
	char msg[2048];
	int saved = errno;

	if (!crac__log_enabled(l))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	struct sink *s = atomic_load(&sink);
	if (s && atomic_load(&stopped) == 0)
		s->fn(l, msg, s->arg);
	else
		write_line(msg);
	errno = saved;
}

void crac__log(enum crac_log_level l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	crac__vlog(l, fmt, ap);
	va_end(ap);
}
