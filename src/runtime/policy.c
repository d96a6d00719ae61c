/* SPDX-License-Identifier: MIT */
/*
 * policy.c - what to do with each inventory item, as the user declared it.
 *
 *     KIND  GLOB  ACTION  [OPTION=VALUE]...      # comment
 *
 * Rules are matched first-wins: the first rule whose kind covers the item
 * and whose glob (fnmatch, '*' crosses '/') matches its path or address
 * decides. Without a match the action is `error`. A glob with spaces is
 * written in double quotes. Syntax errors name the line and column.
 */
#include "runtime/checks.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rule {
	char *kind, *glob, *text;
	enum policy_action action;
	bool changed_ok;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct rule *rules;
static size_t nrules;
static char env_error[512];

static const char *const fd_kinds[] = {
	"file", "dir", "pipe", "fifo", "socket", "tcp", "udp", "unix", "eventfd", "epoll",
	"timerfd", "signalfd", "inotify", "memfd", "io_uring", "device", "tty", "fd",
	/* rarer descriptor kinds the inventory names too */
	"userfaultfd", "pidfd", "fanotify", "perf_event", "bpf", "anon_inode", NULL,
};
static const char *const other_kinds[] = { "mapping", "shm", "child", "timer", "any", NULL };

static bool in(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

/* ---- parsing ----------------------------------------------------------- */

struct token {
	char text[PATH_MAX];
	int col;      /* 1-based */
};

/*
 * Splits a line into tokens (whitespace separated, "double quoted" allowed,
 * '#' starts a comment). Returns the count or -1 with a message.
 */
static int tokenize(const char *line, struct token *tok, int max, char *err, size_t errlen,
		    int *errcol)
{
	int n = 0;
	const char *p = line;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#' || *p == '\n' || *p == '\r')
			return n;
		if (n == max) {
			*errcol = (int)(p - line) + 1;
			snprintf(err, errlen, "too many words on the line");
			return -1;
		}
		struct token *t = &tok[n++];
		size_t len = 0;
		t->col = (int)(p - line) + 1;
		if (*p == '"') {
			p++;
			while (*p && *p != '"' && *p != '\n') {
				if (len + 1 < sizeof(t->text))
					t->text[len++] = *p;
				p++;
			}
			if (*p != '"') {
				*errcol = t->col;
				snprintf(err, errlen, "unterminated quote");
				return -1;
			}
			p++;
		} else {
			while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '#') {
				if (len + 1 < sizeof(t->text))
					t->text[len++] = *p;
				p++;
			}
		}
		t->text[len] = 0;
	}
}

/* Parses one line into `r` (nothing to add if the line is blank: returns 0
 * with r->kind NULL). On error returns -EINVAL with *col and err set. */
static int parse_line(const char *line, struct rule *r, char *err, size_t errlen, int *col)
{
	static struct token tok[8];   /* guarded by the caller's lock */
	int n = tokenize(line, tok, 8, err, errlen, col);

	memset(r, 0, sizeof(*r));
	if (n < 0)
		return -EINVAL;
	if (n == 0)
		return 0;
	*col = tok[0].col;
	if (!in(tok[0].text, fd_kinds) && !in(tok[0].text, other_kinds)) {
		snprintf(err, errlen, "unknown kind \"%.60s\" (expected one of: file dir pipe fifo socket tcp "
			 "udp unix eventfd epoll timerfd signalfd inotify memfd io_uring device tty "
			 "userfaultfd pidfd fanotify perf_event bpf anon_inode fd mapping shm child timer "
			 "any)", tok[0].text);
		return -EINVAL;
	}
	if (n < 3) {
		*col = (int)strlen(line) + 1;
		while (*col > 1 && (line[*col - 2] == '\n' || line[*col - 2] == '\r'))
			(*col)--;
		snprintf(err, errlen, "expected \"KIND GLOB ACTION\", the %s is missing",
			 n == 1 ? "glob" : "action");
		return -EINVAL;
	}
	*col = tok[2].col;
	if (!strcmp(tok[2].text, "error"))
		r->action = POL_ERROR;
	else if (!strcmp(tok[2].text, "warn"))
		r->action = POL_WARN;
	else if (!strcmp(tok[2].text, "close"))
		r->action = POL_CLOSE;
	else if (!strcmp(tok[2].text, "reopen"))
		r->action = POL_REOPEN;
	else {
		snprintf(err, errlen, "unknown action \"%.60s\" (expected error, warn, close or reopen)",
			 tok[2].text);
		return -EINVAL;
	}
	const char *k = tok[0].text;
	if (r->action == POL_CLOSE && !in(k, fd_kinds) && strcmp(k, "any")) {
		snprintf(err, errlen, "close applies to file descriptors, not to kind \"%.40s\"", k);
		return -EINVAL;
	}
	if (r->action == POL_REOPEN && strcmp(k, "file") && strcmp(k, "dir") && strcmp(k, "tcp") &&
	    strcmp(k, "unix") && strcmp(k, "socket") && strcmp(k, "fd") && strcmp(k, "any")) {
		snprintf(err, errlen, "reopen applies to regular files, directories and listening TCP/Unix "
			 "sockets, not to kind \"%.40s\"", k);
		return -EINVAL;
	}
	for (int i = 3; i < n; i++) {
		*col = tok[i].col;
		if (!strcmp(tok[i].text, "changed=ok") || !strcmp(tok[i].text, "changed=error")) {
			if (r->action != POL_REOPEN) {
				snprintf(err, errlen, "option \"%.60s\" only applies to reopen", tok[i].text);
				return -EINVAL;
			}
			r->changed_ok = !strcmp(tok[i].text, "changed=ok");
		} else {
			snprintf(err, errlen, "unknown option \"%.60s\" (expected changed=ok or changed=error)",
				 tok[i].text);
			return -EINVAL;
		}
	}
	r->kind = strdup(k);
	r->glob = strdup(tok[1].text);
	r->text = strdup(line);
	if (!r->kind || !r->glob || !r->text) {
		free(r->kind);
		free(r->glob);
		free(r->text);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* keep the rule as written, without its comment and trailing blanks */
	char *hash = NULL;
	for (char *q = r->text, quoted = 0; *q; q++) {
		if (*q == '"')
			quoted = !quoted;
		else if (*q == '#' && !quoted) {
			hash = q;
			break;
		}
	}
	if (hash)
		*hash = 0;
	r->text[strcspn(r->text, "\r\n")] = 0;
	for (size_t l = strlen(r->text); l && (r->text[l - 1] == ' ' || r->text[l - 1] == '\t');)
		r->text[--l] = 0;
	return 0;
}

static void free_rule(struct rule *r)
{
	free(r->kind);
	free(r->glob);
	free(r->text);
}

/* Appends parsed rules atomically. */
static int append(struct rule *add, size_t n)
{
	struct rule *nr = realloc(rules, (nrules + n + 1) * sizeof(*nr));

	if (!nr)
		return -ENOMEM;
	rules = nr;
	memcpy(rules + nrules, add, n * sizeof(*add));
	nrules += n;
	return 0;
}

/* Parses a whole text; `name` prefixes error messages ("FILE:" or ""). */
static int parse_text(const char *name, const char *text, char *err, size_t errlen)
{
	struct rule *parsed = NULL;
	size_t np = 0, cap = 0;
	int lineno = 0, rc = 0;
	const char *p = text;
	char msg[400];

	pthread_mutex_lock(&lock);
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char *line = strndup(p, len);
		struct rule r;
		int col = 1;

		lineno++;
		if (!line) {
			rc = -ENOMEM;
			snprintf(err, errlen, "%s%d:1: out of memory", name, lineno);
			break;
		}
		rc = parse_line(line, &r, msg, sizeof(msg), &col);
		free(line);
		if (rc < 0) {
			snprintf(err, errlen, "%s%d:%d: %s", name, lineno, col, msg);
			break;
		}
		if (r.kind) {
			if (np == cap) {
				cap = cap ? cap * 2 : 16;
				struct rule *n = realloc(parsed, cap * sizeof(*n));
				if (!n) {
					free_rule(&r);
					rc = -ENOMEM;
					snprintf(err, errlen, "%s%d:1: out of memory", name, lineno);
					break;
				}
				parsed = n;
			}
			parsed[np++] = r;
		}
		p += len + (nl ? 1 : 0);
	}
	if (rc == 0 && np && (rc = append(parsed, np)) < 0)
		snprintf(err, errlen, "%sout of memory", name);
	if (rc < 0)
		for (size_t i = 0; i < np; i++)
			free_rule(&parsed[i]);
	free(parsed);
	pthread_mutex_unlock(&lock);
	return rc;
}

int crac_policy_add(const char *rule, char *err, size_t errlen)
{
	char dummy[8];

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	if (!rule || strchr(rule, '\n')) {
		snprintf(err, errlen, "1:1: one rule, without a newline, expected");
		return -EINVAL;
	}
	/* a blank or comment-only rule adds nothing, which is fine */
	return parse_text("", rule, err, errlen);
}

int crac_policy_load(const char *path, char *err, size_t errlen)
{
	char dummy[8], *text = NULL, prefix[PATH_MAX + 2];
	size_t len = 0;
	FILE *f, *m;
	int c, rc;

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	if (!path)
		return -EINVAL;
	if (!(f = fopen(path, "re"))) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (!(m = open_memstream(&text, &len))) {
		fclose(f);
		return -ENOMEM;
	}
	while ((c = getc(f)) != EOF)
		putc(c, m);
	rc = ferror(f) ? -EIO : 0;
	fclose(f);
	fclose(m);
	if (rc < 0) {
		snprintf(err, errlen, "%s: read error", path);
		free(text);
		return rc;
	}
	snprintf(prefix, sizeof(prefix), "%s:", path);
	rc = parse_text(prefix, text ? text : "", err, errlen);
	free(text);
	return rc;
}

int crac_policy_clear(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nrules; i++)
		free_rule(&rules[i]);
	free(rules);
	rules = NULL;
	nrules = 0;
	pthread_mutex_unlock(&lock);
	return 0;
}

/* ---- matching ---------------------------------------------------------- */

static bool kind_covers(const char *k, const struct inv_item *it)
{
	if (!strcmp(k, "any"))
		return true;
	if (!strcmp(k, "fd"))
		return it->cls == INV_FD;
	if (!strcmp(k, "socket"))
		return it->cls == INV_FD && (!strcmp(it->kind, "tcp") || !strcmp(it->kind, "udp") ||
					     !strcmp(it->kind, "unix") || !strcmp(it->kind, "socket"));
	return !strcmp(k, it->kind);
}

void crac__policy_match(const struct inv_item *it, struct policy_match *m)
{
	memset(m, 0, sizeof(*m));
	m->action = POL_ERROR;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nrules; i++) {
		struct rule *r = &rules[i];
		if (kind_covers(r->kind, it) && fnmatch(r->glob, it->name, 0) == 0) {
			m->action = r->action;
			m->changed_ok = r->changed_ok;
			snprintf(m->rule, sizeof(m->rule), "%s", r->text);
			break;
		}
	}
	pthread_mutex_unlock(&lock);
}

void crac__policy_init_env(void)
{
	const char *p = getenv("CRAC_POLICIES");

	if (!p || !*p)
		return;
	if (crac_policy_load(p, env_error, sizeof(env_error)) < 0)
		crac__log(CRAC_LOG_ERROR, "CRAC_POLICIES: %s (every checkpoint will be refused until "
			  "the file is fixed)", env_error);
}

const char *crac__policy_env_error(void)
{
	return env_error;
}
