/* SPDX-License-Identifier: MIT */
/*
 * checks.c - the safety checks: refuse an image that could not restore
 * correctly, and say exactly why.
 *
 * Runs after every before_checkpoint callback (so it sees what they left
 * open) and, through policies, closes or records-and-closes descriptors;
 * after the engine returns it reopens, before any after_restore callback.
 *
 * If any item is refused, or a callback already failed (`dry`), or how to
 * reopen a descriptor cannot be recorded, nothing is closed: the round is
 * aborted anyway, and the report lists every item.
 */
#include "runtime/checks.h"
#include "objects/objects.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A descriptor closed before the checkpoint, to be reopened after it. */
struct reopen {
	int fd;
	const char *kind;
	char path[PATH_MAX];
	int flags, fd_flags;
	off_t offset;
	off_t size;
	struct timespec mtime;
	bool changed_ok;
	/* listening sockets */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int family, socktype, v6only, reuseaddr;
	mode_t sock_mode;
};

/* What a policy decided for a descriptor an engine carries (objects/). */
struct fd_decision {
	int fd;
	int decision;            /* 0, CRAC_OBJ_OMIT, CRAC_OBJ_CLOSED, | CRAC_OBJ_CHANGED_OK */
};

struct checks_state {
	struct reopen *items;
	size_t count;
	struct fd_decision *fds;
	size_t n_fds;
	int children, posix_timers;   /* what the checks saw (crac__checks_saw) */
};

int crac__checks_saw(const struct crac_round *r, int *children, int *posix_timers)
{
	const struct checks_state *cs = r->checks_state;

	if (!cs)
		return -1;
	*children = cs->children;
	*posix_timers = cs->posix_timers;
	return 0;
}

int crac__checks_fd_decision(const struct crac_round *r, int fd)
{
	const struct checks_state *cs = r->checks_state;

	for (size_t i = 0; cs && i < cs->n_fds; i++)
		if (cs->fds[i].fd == fd)
			return cs->fds[i].decision;
	return 0;
}

static void refuse(crac_report *rep, const struct inv_item *it, const char *why);
static int item_resource(const struct inv_item *it, char *buf, size_t n);
static void suggest(const struct inv_item *it, const char *action, char *buf, size_t n);

/* Does the engine carry descriptors itself? */
static bool carries(const struct crac_round *r)
{
	return r->engine && (r->engine->flags & CRAC_ENGINE_CARRIES_FDS);
}

/* Would the engine carry this descriptor? 0, or -errno and why. */
static int probe(const struct inv_item *it, char *why, size_t n)
{
	struct crac_img_buf b = { why, 0, n };
	char full[1024];
	struct crac_img_buf fb = { full, 0, sizeof(full) };
	int rc;

	why[0] = full[0] = 0;
	rc = crac_obj_probe(it->fd, &fb);
	if (rc >= 0)
		return 0;
	/* the probe says "fd N (LINK): REASON": keep the reason */
	const char *reason = strstr(full, "): ");
	crac_img_puts(&b, reason ? reason + 3 : full);
	return rc;
}

static bool is_connection(const struct inv_item *it)
{
	return (it->st.st_mode & S_IFMT) == S_IFSOCK && !it->listening;
}

/*
 * A descriptor under an engine that carries descriptors: nothing is done
 * to the running process; the decision goes to the engine, which applies
 * it to the image while every thread is stopped. Returns 1 if refused.
 */
static int decide_fd(struct crac_round *r, const struct inv_item *it, const struct policy_match *m,
		     struct checks_state *cs)
{
	char why[1024], line[1400];
	int decision = 0;
	/* tests: the program closes this descriptor while the checks run */
	const char *t = getenv("CRAC_TEST_CHECKS_CLOSE_FD");
	if (t && atoi(t) == it->fd)
		close(it->fd);
	/* What a close policy does depends not on whether the engine could
	 * carry the descriptor: no probe then (a connection's asks the kernel
	 * for the listeners of the namespace, to suggest a rule, for each of
	 * what may be thousands of connections the policy closes). */
	bool carried = m->action != POL_CLOSE && probe(it, why, sizeof(why)) == 0;
	/* Closed since the inventory listed it: the program's threads run
	 * during the checks (one that sends READY=1 and closes its socket as
	 * the trigger fires, say). Nothing to decide: the capture, with every
	 * thread stopped, takes the descriptor table as it is then and looks
	 * again at whatever it carries. */
	if (!carried && fcntl(it->fd, F_GETFD) < 0 && errno == EBADF) {
		crac__log(CRAC_LOG_DEBUG, "fd %d (%s %s) was closed by the program during the checks", it->fd,
			  it->kind, it->name);
		return 0;
	}

	switch (m->action) {
	case POL_ERROR:
		if (!m->rule[0] && carried)
			return 0;   /* carried by default */
		if (m->rule[0]) {
			refuse(r->report, it, "refused by policy");
		} else {
			char res[64], pol[PATH_MAX + 80];
			item_resource(it, res, sizeof(res));
			if (strstr(why, "a policy `")) {
				/* the kind said which policy helps */
				crac__report_add(r->report, CRAC_PHASE_CHECK, res, -EBUSY, "%s %s (%s): %s",
						 it->kind, it->name, it->detail, why);
			} else {
				suggest(it, "close", pol, sizeof(pol));
				crac__report_add(r->report, CRAC_PHASE_CHECK, res, -EBUSY,
						 "%s %s (%s): %s; close it in a before_checkpoint callback, or a "
						 "policy `%s` checkpoints without it (the restored program will not "
						 "have fd %d)", it->kind, it->name, it->detail, why, pol, it->fd);
			}
		}
		return 1;
	case POL_REOPEN:
		if (!carried) {
			snprintf(line, sizeof(line), "policy \"%s\" says reopen, but %s", m->rule, why);
			refuse(r->report, it, line);
			return 1;
		}
		decision = m->changed_ok ? CRAC_OBJ_CHANGED_OK : 0;
		break;
	case POL_CLOSE:
		decision = is_connection(it) ? CRAC_OBJ_CLOSED : CRAC_OBJ_OMIT;
		break;
	case POL_WARN:
		if (carried)
			return 0;
		decision = CRAC_OBJ_OMIT;
		crac__log(CRAC_LOG_WARN, "warning: fd %d: %s %s (%s) is not carried (%s); policy \"%s\" lets the "
			  "checkpoint go on without it", it->fd, it->kind, it->name, it->detail, why, m->rule);
		break;
	}
	if (decision)
		cs->fds[cs->n_fds++] = (struct fd_decision){ it->fd, decision };
	return 0;
}

/* Does this round's engine lose what the process holds? */
static bool enforcing(const struct crac_round *r)
{
	return (r->engine && (r->engine->flags & CRAC_ENGINE_WRITES_IMAGE)) ||
	       (r->opts.flags & CRAC_FORCE_CHECKS);
}

/* The resource's short label, cut to n bytes (a long mapping name is cut:
 * the report's text names it whole). Returns what snprintf does. */
static int item_resource(const struct inv_item *it, char *buf, size_t n)
{
	switch (it->cls) {
	case INV_FD: return snprintf(buf, n, "fd %d", it->fd);
	case INV_MAPPING: return snprintf(buf, n, "%s %s", it->kind, it->name);
	case INV_CHILD: return snprintf(buf, n, "child %d", it->fd);
	case INV_TIMER: return snprintf(buf, n, "timer %s", it->name);
	}
	return 0;
}

/*
 * A rule suggestion for the item, one that matches it in the next run too
 * (objects/glob.c, which the image engine's socket probe uses as well).
 * Items without a stable name (pipes, anonymous inodes) get "*"; an
 * established connection keeps its service's end, its ephemeral port is
 * '*'; a deleted temporary's random name part is '*'; other names are
 * written literally (glob characters escaped, quoted when need be).
 */
static void suggest(const struct inv_item *it, const char *action, char *buf, size_t n)
{
	struct crac_img_buf b = { buf, 0, n };

	buf[0] = 0;
	crac_img_puts(&b, it->kind);
	crac_img_puts(&b, " ");
	if (it->cls == INV_FD && is_connection(it) && strstr(it->name, "->")) {
		struct sockaddr_storage l, p;
		socklen_t ll = sizeof(l), pl = sizeof(p);
		if (getsockname(it->fd, (struct sockaddr *)&l, &ll) == 0 &&
		    getpeername(it->fd, (struct sockaddr *)&p, &pl) == 0) {
			crac_obj_put_connection_glob(&b, it->family, &l, ll, &p, pl);
			goto action;
		}
	}
	if (!*it->name || !strncmp(it->name, "pipe:", 5) || !strncmp(it->name, "anon_inode:", 11) ||
	    !strncmp(it->name, "socket:", 7) || strstr(it->name, "(unnamed)"))
		crac_img_puts(&b, "*");
	else
		crac_obj_put_name_glob(&b, it->name);
action:
	crac_img_puts(&b, " ");
	crac_img_puts(&b, action);
}

/*
 * A mapping the image engine cannot hold whatever a policy says: its
 * capture refuses a deleted file's mapping and SysV shared memory
 * (image_capture.c), so a `warn` rule would only move the refusal from the
 * checks (and `crac check`) into the engine. NULL, or what to do instead.
 */
static const char *image_cannot_hold(const struct crac_round *r, const struct inv_item *it)
{
	if (!carries(r) || it->cls != INV_MAPPING)
		return NULL;
	if (it->deleted)
		return "the image engine cannot hold it, whatever a policy says: start the program again "
		       "(the file it maps was replaced or removed since it mapped it: an upgrade)";
	if (!strcmp(it->kind, "shm"))
		return "the image engine cannot hold it, whatever a policy says";
	return NULL;
}

/* Why an item cannot be kept as it is, and which policy would allow it. */
static void refuse(crac_report *rep, const struct inv_item *it, const char *why)
{
	char res[PATH_MAX + 80], a[PATH_MAX + 80], b[PATH_MAX + 80];

	item_resource(it, res, sizeof(res));
	if (it->cls == INV_FD) {
		if (it->reopenable) {
			suggest(it, "reopen", a, sizeof(a));
			suggest(it, "close", b, sizeof(b));
			crac__report_add(rep, CRAC_PHASE_CHECK, res, -EBUSY,
					 "%s %s (%s): %s; a policy can allow it: `%s` or `%s`",
					 it->kind, it->name, it->detail, why, a, b);
		} else {
			suggest(it, "close", a, sizeof(a));
			crac__report_add(rep, CRAC_PHASE_CHECK, res, -EBUSY,
					 "%s %s (%s): %s; close it in a before_checkpoint callback, or a policy: `%s`",
					 it->kind, it->name, it->detail, why, a);
		}
	} else if (it->jvm_perfdata) {
		/* no policy: `warn` would let the checkpoint go on, and the
		 * JVM's next write to its counters changes the file the image
		 * maps again, which every restore then refuses */
		crac__report_add(rep, CRAC_PHASE_CHECK, res, -EBUSY, "%s: %s", it->detail, why);
	} else {
		suggest(it, "warn", a, sizeof(a));
		crac__report_add(rep, CRAC_PHASE_CHECK, res, -EBUSY,
				 "%s: %s; policy `%s` accepts it anyway", it->detail, why, a);
	}
}

/* A POSIX timer (timer_create), not an interval timer (setitimer)? */
static bool posix_timer(const struct inv_item *it)
{
	return it->cls == INV_TIMER && !strncmp(it->name, "posix:", 6);
}

static const char *why_not(const struct inv_item *it)
{
	switch (it->cls) {
	case INV_FD:
		if (it->deleted)
			return "the file is deleted, it can be neither kept nor reopened";
		return "open descriptors are not saved in an image";
	case INV_MAPPING:
		if (!strcmp(it->kind, "shm"))
			return "SysV shared memory is not saved in an image";
		if (it->deleted)
			return "the mapped file is deleted and cannot be mapped again at restore";
		if (it->jvm_perfdata)
			return "the JVM's performance-data file (jstat's counters), which it writes all the "
			       "time: this engine maps the file again at restore, changed by then; start the "
			       "JVM with -XX:+PerfDisableSharedMem (counters in private memory) or "
			       "-XX:-UsePerfData (no counters), or use the image engine, which carries it "
			       "as memory";
		if (!strncmp(it->detail, "shared anonymous", 16) || !strncmp(it->detail, "shared memfd", 11))
			return "shared memory is restored as a private copy: whoever shared it no longer does";
		return "the file is mapped again at restore, but whoever else writes to it is no longer in sync";
	case INV_CHILD:
		return "child processes are not part of the image: the restored process runs without it, and a "
		       "process that hands its work to its children (a master and its workers) serves nothing "
		       "then; run it as one process (nginx: master_process off; others: one worker, no fork)";
	case INV_TIMER:
		return "timers are not re-armed at restore (re-arm it in after_restore)";
	}
	return "not restorable";
}

/* Records what reopening needs, from the live descriptor. */
static int record(const struct inv_item *it, const struct policy_match *m, struct reopen *o)
{
	memset(o, 0, sizeof(*o));
	o->fd = it->fd;
	o->kind = it->kind;
	o->flags = it->flags;
	o->fd_flags = it->fd_flags;
	o->offset = it->offset;
	o->size = it->st.st_size;
	o->mtime = it->st.st_mtim;
	o->changed_ok = m->changed_ok;
	if (!strcmp(it->kind, "file") || !strcmp(it->kind, "dir")) {
		char proc[64];
		ssize_t n;
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", it->fd);
		n = readlink(proc, o->path, sizeof(o->path) - 1);
		if (n <= 0)
			return -errno;
		o->path[n] = 0;
		return 0;
	}
	/* a listening socket */
	o->addrlen = sizeof(o->addr);
	if (getsockname(it->fd, (struct sockaddr *)&o->addr, &o->addrlen) < 0)
		return -errno;
	o->family = it->family;
	o->socktype = it->socktype;
	socklen_t rl = sizeof(o->reuseaddr);
	getsockopt(it->fd, SOL_SOCKET, SO_REUSEADDR, &o->reuseaddr, &rl);
	if (o->family == AF_INET6) {
		socklen_t l = sizeof(o->v6only);
		getsockopt(it->fd, IPPROTO_IPV6, IPV6_V6ONLY, &o->v6only, &l);
	}
	if (o->family == AF_UNIX) {
		struct sockaddr_un *u = (struct sockaddr_un *)&o->addr;
		struct stat st;
		if (u->sun_path[0] && stat(u->sun_path, &st) == 0)
			o->sock_mode = st.st_mode & 07777;
	}
	return 0;
}

/*
 * Closes an item's descriptor. A socket is shut down first: a thread blocked
 * in accept() or recv() on it holds the file open, so close() alone would
 * neither wake it nor free the address for the reopened listener, and the
 * peer of a connection would not see it end.
 */
static void close_now(const struct inv_item *it, bool keep_number)
{
	int ph;

	if ((it->st.st_mode & S_IFMT) == S_IFSOCK)
		shutdown(it->fd, SHUT_RDWR);
	/*
	 * For reopening, the number must stay ours: another thread of a running
	 * process (sim, pause) allocates the lowest free number, and a thread
	 * blocked in accept() has already reserved one. So the descriptor is
	 * atomically replaced by /dev/null until it is reopened.
	 */
	if (keep_number && (ph = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) {
		if (ph != it->fd) {
			if (dup3(ph, it->fd, O_CLOEXEC) < 0)
				close(it->fd);
			close(ph);
		}
		return;
	}
	close(it->fd);
}

/*
 * The image engine reads the process's own memory map. A process that is
 * not dumpable and not root (a service that dropped root: memcached -u
 * nobody) finds /proc/self/ root's and cannot: refused here, so that `crac
 * check` says it and a checkpoint stops before the control endpoint, the
 * threads or any descriptor are touched (the endpoint made as root could
 * not be made again as nobody). 1 if refused.
 */
static int not_dumpable(crac_report *rep)
{
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
		return 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno != EACCES)
		return 0;   /* anything else: the engine says it */
	crac__report_add(rep, CRAC_PHASE_CHECK, "process", -EACCES, "/proc/self/pagemap: %s: " CRAC_NOT_DUMPABLE_WHY,
			 strerror(EACCES));
	return 1;
}

int crac__checks_before(struct crac_round *r, bool dry)
{
	struct inventory inv;
	struct checks_state *cs;
	struct policy_match *m;
	int refused = 0;

	if (!enforcing(r))
		return 0;
	if (*crac__policy_env_error()) {
		crac__report_add(r->report, CRAC_PHASE_CHECK, "policies", -EINVAL,
				 "CRAC_POLICIES: %s", crac__policy_env_error());
		refused++;
	}
	if (carries(r))
		refused += not_dumpable(r->report);
	if (crac__inventory_take(&inv, r->report) < 0) {
		crac__inventory_free(&inv);
		return refused + 1;
	}
	m = calloc(inv.count ? inv.count : 1, sizeof(*m));
	cs = calloc(1, sizeof(*cs));
	if (cs) {
		cs->items = calloc(inv.count ? inv.count : 1, sizeof(*cs->items));
		cs->fds = calloc(inv.count ? inv.count : 1, sizeof(*cs->fds));
	}
	if (!m || !cs || !cs->items || !cs->fds) {
		crac__report_add(r->report, CRAC_PHASE_CHECK, "inventory", -ENOMEM, "out of memory");
		free(m);
		if (cs) {
			free(cs->items);
			free(cs->fds);
		}
		free(cs);
		crac__inventory_free(&inv);
		return refused + 1;
	}

	/* 1. decide for every item; report every refusal */
	for (size_t i = 0; i < inv.count; i++) {
		struct inv_item *it = &inv.items[i];
		cs->children += it->cls == INV_CHILD;
		cs->posix_timers += it->cls == INV_TIMER && !strncmp(it->name, "posix:", 6);
		crac__policy_match(it, &m[i]);
		/* The JVM's perf-data file: the image engine stores its
		 * content and restores it as private memory (image_capture.c);
		 * nobody but this JVM writes it. Unless a policy says more. */
		if (carries(r) && it->cls == INV_MAPPING && it->jvm_perfdata && !m[i].rule[0])
			continue;
		/* A POSIX timer the image engine creates again (same id,
		 * clock, signal, value; armed with the time it had left). */
		if (carries(r) && posix_timer(it) && !it->timer_refusal && !m[i].rule[0])
			continue;
		if (carries(r) && it->cls == INV_FD) {
			refused += decide_fd(r, it, &m[i], cs);
			continue;
		}
		const char *no_policy = image_cannot_hold(r, it);
		if (no_policy && (m[i].action == POL_ERROR || m[i].action == POL_WARN)) {
			char res[PATH_MAX + 80];
			item_resource(it, res, sizeof(res));
			if (m[i].action == POL_WARN)
				crac__report_add(r->report, CRAC_PHASE_CHECK, res, -EBUSY,
						 "%s: policy \"%s\" says warn, but %s", it->detail, m[i].rule,
						 no_policy);
			else
				crac__report_add(r->report, CRAC_PHASE_CHECK, res, -EBUSY, "%s: %s; %s",
						 it->detail, why_not(it), no_policy);
			refused++;
			continue;
		}
		switch (m[i].action) {
		case POL_ERROR:
			if (carries(r) && posix_timer(it) && it->timer_refusal) {
				char why[512];
				snprintf(why, sizeof(why), "the image engine cannot create it again: %s; re-arm it "
					 "in after_restore", it->timer_refusal);
				refuse(r->report, it, why);
			} else {
				refuse(r->report, it, why_not(it));
			}
			refused++;
			break;
		case POL_REOPEN:
			if (it->cls != INV_FD || !it->reopenable) {
				char why[512];
				snprintf(why, sizeof(why), "policy \"%s\" says reopen, but %s", m[i].rule,
					 it->deleted ? "the file is deleted"
					 : (!strcmp(it->kind, "tcp") || !strcmp(it->kind, "unix"))
					 ? "only listening sockets can be reopened"
					 : "only regular files, directories and listening sockets can be reopened");
				refuse(r->report, it, why);
				refused++;
			}
			break;
		case POL_CLOSE:
			if (it->cls != INV_FD) {
				refuse(r->report, it, "a close policy applies to descriptors only");
				refused++;
			}
			break;
		case POL_WARN:
			break;
		}
	}

	/*
	 * 2. act, unless the round is aborted anyway. First record how to
	 * reopen every descriptor a reopen policy applies to, closing
	 * nothing yet: if one cannot be recorded (its path is too long for
	 * /proc/self/fd to show it, say), the round is aborted with every
	 * descriptor left as it was, and nothing is to be reopened. Only then
	 * close.
	 */
	bool act = !refused && !dry;
	for (size_t i = 0; act && i < inv.count; i++) {
		struct inv_item *it = &inv.items[i];
		if ((carries(r) && it->cls == INV_FD) || m[i].action != POL_REOPEN)
			continue;   /* carried: decided above; the engine applies it to the image */
		int rc = record(it, &m[i], &cs->items[cs->count]);
		if (rc == 0) {
			cs->count++;
			continue;
		}
		char res[PATH_MAX + 80];
		item_resource(it, res, sizeof(res));
		crac__report_add(r->report, CRAC_PHASE_CHECK, res, rc,
				 "cannot record %s %s for reopening: %s; nothing was closed", it->kind,
				 *it->name ? it->name : "(its path cannot be read)", strerror(-rc));
		refused++;   /* and the others are recorded, to report every one */
	}
	if (refused) {
		cs->count = 0;   /* nothing closed: nothing to reopen */
		act = false;
	}
	for (size_t i = 0; act && i < inv.count; i++) {
		struct inv_item *it = &inv.items[i];
		char res[PATH_MAX + 80];
		if (carries(r) && it->cls == INV_FD)
			continue;
		item_resource(it, res, sizeof(res));
		if (m[i].action == POL_WARN)
			crac__log(CRAC_LOG_WARN, "warning: %s: %s %s (%s) kept by policy \"%s\": %s",
				  res, it->kind, it->name, it->detail, m[i].rule, why_not(it));
		else if (m[i].action == POL_CLOSE)
			close_now(it, false);
		else if (m[i].action == POL_REOPEN)
			close_now(it, true);   /* recorded above, in the same order */
	}
	r->checks_state = cs;
	free(m);
	crac__inventory_free(&inv);
	return refused;
}

/* ---- reopening --------------------------------------------------------- */

/* Puts `nfd` at number `fd` with the recorded close-on-exec flag. */
static int place(int nfd, const struct reopen *o)
{
	if (nfd == o->fd)
		return 0;
	int rc = dup3(nfd, o->fd, (o->fd_flags & FD_CLOEXEC) ? O_CLOEXEC : 0);
	/* EBUSY: another thread is between reserving and installing that
	 * number (only possible if the placeholder was lost) */
	for (int i = 0; rc < 0 && errno == EBUSY && i < 100; i++) {
		struct timespec ts = { .tv_nsec = 1000000 };
		nanosleep(&ts, NULL);
		rc = dup3(nfd, o->fd, (o->fd_flags & FD_CLOEXEC) ? O_CLOEXEC : 0);
	}
	if (rc < 0) {
		int e = -errno;
		close(nfd);
		return e;
	}
	close(nfd);
	return 0;
}

static int reopen_file(const struct reopen *o, char *why, size_t n)
{
	struct stat st;
	int fd, rc;

	if (stat(o->path, &st) < 0) {
		rc = -errno;
		snprintf(why, n, "cannot reopen %s: %s", o->path, strerror(-rc));
		return rc;
	}
	if (!strcmp(o->kind, "file") && !o->changed_ok &&
	    (st.st_size != o->size || st.st_mtim.tv_sec != o->mtime.tv_sec ||
	     st.st_mtim.tv_nsec != o->mtime.tv_nsec)) {
		snprintf(why, n, "%s changed since the checkpoint (size %lld -> %lld%s); "
			 "the policy option changed=ok accepts that", o->path, (long long)o->size,
			 (long long)st.st_size,
			 st.st_mtim.tv_sec != o->mtime.tv_sec || st.st_mtim.tv_nsec != o->mtime.tv_nsec
			 ? ", modification time differs" : "");
		return -ESTALE;
	}
	int flags = o->flags & ~(O_CREAT | O_EXCL | O_TRUNC);
	if (!strcmp(o->kind, "dir"))
		flags = O_RDONLY | O_DIRECTORY;
	fd = open(o->path, flags | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(why, n, "cannot reopen %s: %s", o->path, strerror(-rc));
		return rc;
	}
	if (o->offset > 0 && !(o->flags & O_APPEND) && lseek(fd, o->offset, SEEK_SET) < 0) {
		rc = -errno;
		close(fd);
		snprintf(why, n, "cannot seek %s to offset %lld: %s", o->path, (long long)o->offset,
			 strerror(-rc));
		return rc;
	}
	if ((rc = place(fd, o)) < 0)
		snprintf(why, n, "cannot move the reopened %s to fd %d: %s", o->path, o->fd, strerror(-rc));
	return rc;
}

static int reopen_listener(const struct reopen *o, char *why, size_t n)
{
	struct sockaddr_un *u = (struct sockaddr_un *)&o->addr;
	int one = 1, fd, rc;

	fd = socket(o->family, o->socktype | SOCK_CLOEXEC |
		    ((o->flags & O_NONBLOCK) ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(why, n, "cannot create a socket: %s", strerror(-rc));
		return rc;
	}
	if (o->family == AF_INET || o->family == AF_INET6)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (o->family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &o->v6only, sizeof(o->v6only));
	if (o->family == AF_UNIX && u->sun_path[0]) {
		/* the closed listener left its socket file: remove it if nobody
		 * else listens there, never another kind of file */
		struct stat st;
		if (lstat(u->sun_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
			int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (probe >= 0 && connect(probe, (struct sockaddr *)u, o->addrlen) < 0 &&
			    errno == ECONNREFUSED)
				unlink(u->sun_path);
			if (probe >= 0)
				close(probe);
		}
	}
	/* A thread that was blocked in accept() on the old listener holds it
	 * until it is scheduled again after the shutdown: give it up to 2 s to
	 * let go of the address. */
	rc = bind(fd, (const struct sockaddr *)&o->addr, o->addrlen);
	for (int i = 0; rc < 0 && errno == EADDRINUSE && i < 1000; i++) {
		struct timespec ts = { .tv_nsec = 2000000 };
		nanosleep(&ts, NULL);
		rc = bind(fd, (const struct sockaddr *)&o->addr, o->addrlen);
	}
	if (rc < 0 || listen(fd, SOMAXCONN) < 0) {
		rc = -errno;
		close(fd);
		snprintf(why, n, "cannot listen again on %s: %s%s",
			 o->family == AF_UNIX ? (u->sun_path[0] ? u->sun_path : "abstract socket")
			 : "its address", strerror(-rc),
			 rc == -EADDRINUSE && o->family != AF_UNIX && !o->reuseaddr
			 ? " (connections accepted before the checkpoint linger in TIME_WAIT and hold "
			   "the port because the listener did not set SO_REUSEADDR; set it, as servers "
			   "that restart usually do)" : "");
		return rc;
	}
	if (o->family == AF_UNIX && u->sun_path[0] && o->sock_mode)
		chmod(u->sun_path, o->sock_mode);
	if ((rc = place(fd, o)) < 0)
		snprintf(why, n, "cannot move the new listener to fd %d: %s", o->fd, strerror(-rc));
	return rc;
}

void crac__checks_after(struct crac_round *r)
{
	struct checks_state *cs = r->checks_state;

	if (!cs)
		return;
	for (size_t i = 0; i < cs->count; i++) {
		struct reopen *o = &cs->items[i];
		char why[PATH_MAX + 200], res[32];
		int rc;

		if (!strcmp(o->kind, "file") || !strcmp(o->kind, "dir"))
			rc = reopen_file(o, why, sizeof(why));
		else
			rc = reopen_listener(o, why, sizeof(why));
		if (rc < 0) {
			snprintf(res, sizeof(res), "fd %d", o->fd);
			crac__report_add(r->report, CRAC_PHASE_RESTORE, res, rc, "%s", why);
		}
	}
	free(cs->items);
	free(cs->fds);
	free(cs);
	r->checks_state = NULL;
}

/* ---- crac_check -------------------------------------------------------- */

int crac_check(crac_report **report)
{
	struct crac_round r = { 0 };
	int n;

	if (report)
		*report = NULL;
	r.report = crac__report_new();
	if (!r.report)
		return -ENOMEM;
	r.opts.flags = CRAC_FORCE_CHECKS;
	/* as a checkpoint with the engine of $CRAC_ENGINE would see it (the
	 * image engine when unset): what that engine carries is not refused */
	const char *engine = getenv("CRAC_ENGINE");
	r.engine = crac__engine_find(engine && *engine ? engine : "image");
	n = crac__checks_before(&r, true);
	if (r.checks_state) {
		struct checks_state *cs = r.checks_state;
		free(cs->items);
		free(cs->fds);
		free(cs);
	}
	crac__report_set_status(r.report, n ? CRAC_ABORTED : CRAC_CONTINUED);
	if (report && crac_report_count(r.report))
		*report = r.report;
	else
		crac_report_free(r.report);
	return n;
}
