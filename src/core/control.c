/* SPDX-License-Identifier: MIT */
/*
 * control.c - the control endpoint: lets an operator trigger a checkpoint
 * from outside (`crac checkpoint PID`) and resume a paused process
 * (`crac restore --pid PID`).
 *
 * Security: the socket lives in a directory that must be ours and mode
 * 0700, the socket itself is 0600, and every connection's peer credentials
 * are checked (SO_PEERCRED): same uid or root, anything else is refused and
 * logged on stderr. The directory is opened once, component by component,
 * checked on its descriptor and used only through it (ctl_dir.c; setup_run):
 * below a directory another uid may write to, a component swapped between
 * the check and the use leads nothing elsewhere.
 *
 * Wire format: one request line, tokens separated by single spaces, each
 * token percent-escaped ("%20" space, "%25" percent, "%0A" newline):
 *     CHECKPOINT engine=pause keep=1 deadline=500 image=/path dry=0 force=0
 *     RESUME arg=first arg=second env=KEY=VALUE
 *     CHECK
 *     PING
 * The answer: any number of text lines, then "STATUS <int>" (enum
 * crac_outcome or a negative errno), then the server closes.
 *
 * Progress (CHECKPOINT with the token progress=1; a server that predates
 * it ignores the token, and without it the answer is as above): while the
 * round runs, lines
 *     PROGRESS phase=P elapsed_us=N phase_us=N done=N total=N written=N
 * (P as in crac__ckpt_phase_name; done/total: bytes of memory stored or
 * skipped so far, of about total; written: bytes of page data), one at
 * each phase change and at most 10 a second within a phase, sent without
 * waiting: a record that does not fit in the socket is dropped. Then, right
 * before the report and STATUS, one line with the whole round's figures:
 *     STATS elapsed_us=N scanned=N stored=N zero=N written=N threads=N
 *           maps=N P_us=N...   (one P_us per phase the round went through)
 */
#include "core/internal.h"
#include "core/ctl_dir.h"
#include "runtime/checks.h"
#include "engines/image_engine.h"
#include "image/bounded.h"
#include "image/dir.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/openat2.h>
#include <unistd.h>

#define MAX_REQUEST 65536
#define MAX_TOKENS 1024

/* ---- state ------------------------------------------------------------- */

static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static int listen_fd = -1;
static int wake_pipe[2] = { -1, -1 };
static pthread_t listener;
static char sock_path[256];
/* The socket file we bound, to remove only that one (not a successor's). */
static dev_t sock_dev;
static ino_t sock_ino;
static pid_t sock_pid;
/* Its name in the directory: PID.sock or PID.pidns-INO.sock (setup_steps). */
static char sock_file[48];
/* Its directory, as the setup checked it (ctl_dir.c): its path, identity
 * and owner, for remove_socket to reach it again and to know it. */
static char sock_dir[200];
static unsigned long sock_dir_dev, sock_dir_ino;
static unsigned sock_dir_uid;
/* The socket path the last failed start tried (crac_control_path). */
static char last_path[256];
static pid_t last_pid;
/* The effective uid the endpoint was made with (its directory's owner). */
static unsigned listen_uid;
/* The listening socket kept open, its thread stopped, while an image is
 * written by a process that could not make it again (crac__control_suspend);
 * -1: none. */
static int parked_fd = -1;
/* The supervisor's pidfd (sup_watch_open), watched by the listener; -1: none. */
static int sup_pidfd = -1;
static pid_t sup_pid;
/* Our credentials when the library was loaded (crac__control_note_creds). */
static struct {
	bool known;
	unsigned euid, egid, fsuid, fsgid;
} start_creds;

/* ---- paths ------------------------------------------------------------- */

/* How long crac_control_path's look at a candidate directory may take
 * (CRAC_TEST_SYNC_GRACE_MS in tests): as the setup's (CONTROL_SETUP_MS). */
#define PATH_LOOK_MS 10000

/* The lstat private_dir() makes, by a helper (raw system calls). */
struct private_look {
	const char *dir;
	long slow_ms;                /* CRAC_TEST_SLOW_FS=path:MS (tests): a sleep first */
	int res;
	unsigned mode, uid;
};

static void private_look_run(void *arg)
{
	struct private_look *p = arg;
	struct stat st;   /* (the helper's stack) */

	crac_bounded_test_sleep(p->slow_ms);
	long r = crac_raw_syscall5(SYS_newfstatat, AT_FDCWD, (long)p->dir, (long)&st, AT_SYMLINK_NOFOLLOW, 0);
	if (r == 0) {
		p->mode = st.st_mode;
		p->uid = st.st_uid;
	}
	p->res = (int)r;
}

/*
 * Is `dir` an absolute path to a real directory (not a symlink) owned by
 * `uid` that nobody else may write to? Its lstat by a helper of
 * image/bounded.c (crac_control_path, when the endpoint was never started,
 * may be the first look at $XDG_RUNTIME_DIR, which may sit on a file system
 * that does not answer), waited for PATH_LOOK_MS at most: given up, it is
 * not (said at debug level; the next candidate is taken).
 */
static bool private_dir(const char *dir, unsigned uid)
{
	const char *g = getenv("CRAC_TEST_SYNC_GRACE_MS"), *e = getenv("CRAC_TEST_SLOW_FS");
	long bound_ms = g ? strtol(g, NULL, 10) : PATH_LOOK_MS;
	struct private_look p = { .dir = dir, .res = -EINPROGRESS };
	struct crac_bounded helper;
	int64_t waited;

	if (!dir || dir[0] != '/')
		return false;
	p.slow_ms = e && !strncmp(e, "path:", 5) ? strtol(e + 5, NULL, 10) : 0;
	if (crac_bounded_start(&helper, private_look_run, &p, NULL) < 0) {
		private_look_run(&p);   /* no helper (a seccomp filter): in this thread */
	} else if (crac_bounded_wait(&helper, crac_bounded_mono_ns() + bound_ms * 1000000LL, 0, &waited) < 0) {
		crac__log(CRAC_LOG_DEBUG, "control: the lstat of %s did not return after %lld ms: its file system "
			  "does not answer; given up (not used for the control socket)", dir, (long long)waited);
		return false;
	}
	return p.res == 0 && S_ISDIR(p.mode) && p.uid == uid && !(p.mode & 022);
}

/*
 * The directory of this process's control socket:
 *   $CRAC_CONTROL_DIR               when set (tests, special set-ups);
 *   $XDG_RUNTIME_DIR/crac           when XDG_RUNTIME_DIR is a directory of
 *                                   ours that nobody else may write to;
 *   /run/user/UID/crac              when /run/user/UID is such a directory;
 *   /tmp/crac-UID                   otherwise (anybody may create that name
 *                                   first: check_dir() then refuses it).
 * UID is our effective uid. Returns the length or -ENAMETOOLONG.
 */
static int own_dir(char *buf, size_t len)
{
	const char *d = getenv("CRAC_CONTROL_DIR");
	const char *x = getenv("XDG_RUNTIME_DIR");
	unsigned uid = (unsigned)geteuid();
	char run[64];
	int n;

	snprintf(run, sizeof(run), "/run/user/%u", uid);
	if (d && *d)
		n = snprintf(buf, len, "%s", d);
	else if (private_dir(x, uid))
		n = snprintf(buf, len, "%s/crac", x);
	else if (private_dir(run, uid))
		n = snprintf(buf, len, "%s/crac", run);
	else
		n = snprintf(buf, len, "/tmp/crac-%u", uid);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}

static int path_in(const char *dir, int pid, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%d.sock", dir, pid);
	return n < 0 || (size_t)n >= len || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path)
		? -ENAMETOOLONG : n;
}

int crac_control_path(char *buf, size_t len)
{
	char dir[200];
	int rc;

	if (!buf)
		return -EINVAL;
	/* running, or tried by the last start: that path, without looking at
	 * the file system again (it may not answer) */
	pthread_mutex_lock(&ctl_lock);
	const char *known = sock_path[0] ? sock_path : last_path[0] && last_pid == getpid() ? last_path : NULL;
	if (known) {
		int n = snprintf(buf, len, "%s", known);
		pthread_mutex_unlock(&ctl_lock);
		return (size_t)n >= len ? -ENAMETOOLONG : n;
	}
	pthread_mutex_unlock(&ctl_lock);
	rc = own_dir(dir, sizeof(dir));
	return rc < 0 ? rc : path_in(dir, getpid(), buf, len);
}

/* ---- escaping ---------------------------------------------------------- */

static int escape(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		if (o + 4 > len)
			return -E2BIG;
		if (*p <= ' ' || *p == '%' || *p >= 0x7f)
			o += (size_t)snprintf(out + o, len - o, "%%%02X", *p);
		else
			out[o++] = (char)*p;
	}
	if (o >= len)
		return -E2BIG;
	out[o] = 0;
	return (int)o;
}

static void unescape(char *s)
{
	char *o = s;

	for (char *p = s; *p; p++) {
		unsigned v;
		if (*p == '%' && p[1] && p[2] && sscanf(p + 1, "%2x", &v) == 1) {
			*o++ = (char)v;
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = 0;
}

/* ---- server ------------------------------------------------------------ */


struct conn {
	struct crac_requester rq;
	int fd;
	bool done;
	char **tokens;     /* request, unescaped, NULL-terminated */
	/* A progress record the socket took only part of: the rest goes
	 * first (the next record is dropped until it went). */
	char pend[512];
	size_t pend_off, pend_len;
};

static void conn_write(int fd, const char *s)
{
	size_t len = strlen(s);

	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;   /* the requester went away: nothing to tell */
		s += n;
		len -= (size_t)n;
	}
}

/* Sends what is left of the pending progress record without waiting;
 * true when nothing is left. */
static bool conn_try_pending(struct conn *c)
{
	while (c->pend_off < c->pend_len) {
		ssize_t n = send(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		c->pend_off += (size_t)n;
	}
	c->pend_off = c->pend_len = 0;
	return true;
}

/* Before any other line: the rest of a partly sent record, waiting for it
 * (the program's threads run whenever the answer is written). */
static void conn_finish_pending(struct conn *c)
{
	if (c->pend_off < c->pend_len) {
		c->pend[c->pend_len] = 0;
		conn_write(c->fd, c->pend + c->pend_off);
	}
	c->pend_off = c->pend_len = 0;
}

/*
 * The requester's progress callback (token progress=1). A record during the
 * round may be formatted and sent while the program's threads are stopped:
 * snprintf of integers into a buffer (no lock, no allocation, as img_fail)
 * and a send that never waits (a record that does not fit is dropped). The
 * final one (threads running) is sent in full.
 */
static void rq_progress(struct crac_requester *rq, const struct crac_ckpt_stats *s, bool final)
{
	struct conn *c = rq->priv;
	int64_t now = crac__now_ns(CLOCK_MONOTONIC);
	size_t cap = sizeof(c->pend) - 1;
	int n;

	if (c->done || c->fd < 0)
		return;
	if (final) {
		conn_finish_pending(c);
		n = snprintf(c->pend, cap, "STATS elapsed_us=%lld scanned=%llu stored=%llu zero=%llu written=%llu "
			     "threads=%u maps=%u", (long long)(now - s->start_ns) / 1000,
			     (unsigned long long)s->scanned_pages, (unsigned long long)s->stored_pages,
			     (unsigned long long)s->zero_pages, (unsigned long long)s->written_bytes,
			     s->threads, s->maps);
		for (int p = 0; p < CRAC_CKPT_NPHASES && n > 0 && (size_t)n < cap; p++)
			if (s->entered & (1u << p))
				n += snprintf(c->pend + n, cap - (size_t)n, " %s_us=%lld", crac__ckpt_phase_name[p],
					      (long long)s->phase_ns[p] / 1000);
		if (n > 0 && (size_t)n < cap) {
			c->pend[n] = '\n';
			c->pend[n + 1] = 0;
			conn_write(c->fd, c->pend);
		}
		c->pend_len = 0;
		return;
	}
	/*
	 * The record is made on this thread's stack, not in c: the program's
	 * heap (where c is) may be in the pages being written, which must not
	 * change under the page writer (image_write.c); this thread's stack is
	 * copied first. A record this small goes into an AF_UNIX stream socket
	 * whole or not at all; a part sent (never seen) leaves the rest in c.
	 */
	char rec[sizeof(c->pend)];
	ssize_t sent;

	if (c->pend_len && !conn_try_pending(c))
		return;   /* the client is slow: drop this one */
	n = snprintf(rec, sizeof(rec), "PROGRESS phase=%s elapsed_us=%lld phase_us=%lld done=%llu total=%llu "
		     "written=%llu\n", crac__ckpt_phase_name[s->phase], (long long)(now - s->start_ns) / 1000,
		     (long long)(now - s->phase_start_ns) / 1000, (unsigned long long)s->done_bytes,
		     (unsigned long long)s->total_bytes, (unsigned long long)s->written_bytes);
	if (n <= 0 || (size_t)n >= sizeof(rec))
		return;
	do
		sent = send(c->fd, rec, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (sent < 0 && errno == EINTR);
	if (sent > 0 && sent < n) {
		memcpy(c->pend, rec + sent, (size_t)(n - sent));
		c->pend_off = 0;
		c->pend_len = (size_t)(n - sent);
	}
}

static void conn_free(struct conn *c)
{
	if (c->fd >= 0) {
		crac__internal_fd(c->fd, false);
		close(c->fd);
	}
	if (c->tokens) {
		for (char **t = c->tokens; *t; t++)
			free(*t);
		free(c->tokens);
	}
	free(c);
}

static void rq_reply(struct crac_requester *rq, int status, const char *text)
{
	struct conn *c = rq->priv;
	char line[512];

	(void)status;
	conn_finish_pending(c);
	snprintf(line, sizeof(line), "crac: %s\n", text);
	conn_write(c->fd, line);
}

static void rq_forget(struct crac_requester *rq)
{
	struct conn *c = rq->priv;

	crac__internal_fd(c->fd, false);
	c->fd = -1;      /* not ours in this process: never write or close it */
	c->done = true;
}

static void rq_finish(struct crac_requester *rq, int status, const crac_report *rep)
{
	struct conn *c = rq->priv;
	char *text = NULL, line[64];

	if (c->done || c->fd < 0)
		return;
	conn_finish_pending(c);
	c->done = true;
	if (rep && (crac_report_count(rep) || status < 0 || status == CRAC_ABORTED) &&
	    crac_report_format(rep, &text) == 0) {
		conn_write(c->fd, text);
		free(text);
	}
	snprintf(line, sizeof(line), "STATUS %d\n", status);
	conn_write(c->fd, line);
	shutdown(c->fd, SHUT_RDWR);
}

static const char *token_value(char **tokens, const char *key)
{
	size_t k = strlen(key);

	for (char **t = tokens + 1; *t; t++)
		if (strncmp(*t, key, k) == 0 && (*t)[k] == '=')
			return *t + k + 1;
	return NULL;
}

/* Runs a CHECKPOINT request on its own thread: the listener stays free to
 * accept the RESUME that a pause engine waits for. */
static void *checkpoint_thread(void *p)
{
	struct conn *c = p;
	struct crac_options o;
	const char *v;

	crac_options_init(&o);
	o.engine = token_value(c->tokens, "engine");
	o.image_dir = token_value(c->tokens, "image");
	if ((v = token_value(c->tokens, "deadline")))
		o.deadline_ms = strtoll(v, NULL, 10);
	if ((v = token_value(c->tokens, "keep")) && strcmp(v, "1") == 0)
		o.flags |= CRAC_KEEP_RUNNING;
	if ((v = token_value(c->tokens, "dry")) && strcmp(v, "1") == 0)
		o.flags |= CRAC_DRY_RUN;
	if ((v = token_value(c->tokens, "force")) && strcmp(v, "1") == 0)
		o.flags |= CRAC_FORCE_CHECKS;
	if ((v = token_value(c->tokens, "incr")) && strcmp(v, "1") == 0)
		o.flags |= CRAC_INCREMENTAL;
	/* compress=LEVEL (zstd, 1-19): the image engine compresses at it */
	if ((v = token_value(c->tokens, "compress"))) {
		long lv = strtol(v, NULL, 10);
		o.flags |= CRAC_COMPRESS;
		c->rq.compress = lv >= 1 && lv <= 19 ? (int)lv : 1;
	}
	crac__checkpoint(&o, &c->rq, NULL);
	if (!c->done)
		rq_finish(&c->rq, -EIO, NULL);
	conn_free(c);
	return NULL;
}

static void handle_resume(struct conn *c)
{
	char **argv = calloc(MAX_TOKENS, sizeof(char *));
	char **envp = calloc(MAX_TOKENS, sizeof(char *));
	size_t na = 0, ne = 0;
	int rc;

	if (!argv || !envp) {
		rc = -ENOMEM;
	} else {
		for (char **t = c->tokens + 1; *t; t++) {
			if (strncmp(*t, "arg=", 4) == 0)
				argv[na++] = *t + 4;
			else if (strncmp(*t, "env=", 4) == 0)
				envp[ne++] = *t + 4;
		}
		rc = crac__pause_resume(argv, envp, &c->rq);
	}
	free(argv);
	free(envp);
	if (rc == 0)
		return;   /* the resumed round answers and frees c (see below) */
	char line[160];
	snprintf(line, sizeof(line), "crac: process %d is not paused by the pause engine: nothing to resume\n",
		 (int)getpid());
	conn_write(c->fd, line);
	rq_finish(&c->rq, rc, NULL);
	conn_free(c);
}

/* The resumer's requester outlives the listener call: free it when done. */
static void resumer_finish(struct crac_requester *rq, int status, const crac_report *rep)
{
	rq_finish(rq, status, rep);
	conn_free(rq->priv);
}

/* Reads one request line (bounded, with a timeout) and splits it. */
static int read_request(struct conn *c)
{
	char *buf = malloc(MAX_REQUEST);
	size_t len = 0, n = 0;
	struct timeval tv = { .tv_sec = 5 };

	if (!buf)
		return -ENOMEM;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (len < MAX_REQUEST - 1) {
		ssize_t r = recv(c->fd, buf + len, MAX_REQUEST - 1 - len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		if (memchr(buf, '\n', len))
			break;
	}
	buf[len] = 0;
	char *nl = strchr(buf, '\n');
	if (!nl) {
		free(buf);
		return -EPROTO;
	}
	*nl = 0;
	c->tokens = calloc(MAX_TOKENS + 1, sizeof(char *));
	if (!c->tokens) {
		free(buf);
		return -ENOMEM;
	}
	for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && n < MAX_TOKENS;
	     t = strtok_r(NULL, " ", &save)) {
		unescape(t);
		if (!(c->tokens[n++] = strdup(t))) {
			free(buf);
			return -ENOMEM;
		}
	}
	free(buf);
	return n ? 0 : -EPROTO;
}

/*
 * CHECK: the inventory's findings under a headline of their own. (The
 * report's own headline would say "checkpoint aborted": nothing was.) The
 * status is CRAC_ABORTED when something would refuse a checkpoint, so that
 * `crac check` exits 1.
 */
static void answer_check(struct conn *c)
{
	crac_report *rep = NULL;
	char *text = NULL, line[200];
	int n = crac_check(&rep);
	size_t count = crac_report_count(rep);

	if (n > 0 && !count)
		count = (size_t)n;
	if (n < 0)
		snprintf(line, sizeof(line), "crac: check: process %d could not take its inventory (%s): "
			 "%zu problem%s\n", (int)getpid(), crac__errno_name(n), count, count == 1 ? "" : "s");
	else if (count)
		snprintf(line, sizeof(line), "crac: check: %zu problem%s would refuse a checkpoint of process %d\n",
			 count, count == 1 ? "" : "s", (int)getpid());
	else
		snprintf(line, sizeof(line), "crac: check: nothing stands in the way of a checkpoint of "
			 "process %d\n", (int)getpid());
	conn_write(c->fd, line);
	/* the entries: the formatted report without its first line */
	if (count && crac_report_format(rep, &text) == 0) {
		const char *body = strchr(text, '\n');
		if (body)
			conn_write(c->fd, body + 1);
		free(text);
	}
	/* how the image engine would stop the threads (not a problem: a note) */
	char plan[4096];
	if (img_threads_stop_plan(plan, sizeof(plan)) > 0) {
		for (char *p = plan, *nl; *p; p = nl) {
			nl = strchr(p, '\n');
			nl = nl ? nl + 1 : p + strlen(p);
			conn_write(c->fd, "  note: ");
			char one[1200];
			snprintf(one, sizeof(one), "%.*s%s", (int)(nl - p), p, nl[-1] == '\n' ? "" : "\n");
			conn_write(c->fd, one);
		}
	}
	c->done = true;
	snprintf(line, sizeof(line), "STATUS %d\n", n < 0 ? n : count ? CRAC_ABORTED : CRAC_CONTINUED);
	conn_write(c->fd, line);
	shutdown(c->fd, SHUT_RDWR);
	crac_report_free(rep);
}

static void serve(int fd)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct conn *c;
	pthread_t th;
	pthread_attr_t attr;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		close(fd);
		return;
	}
	if (cred.uid != geteuid() && cred.uid != 0) {
		crac__log(CRAC_LOG_WARN, "control: refused connection from pid %d uid %d: "
			"only uid %d or root may control process %d",
			(int)cred.pid, (int)cred.uid, (int)geteuid(), (int)getpid());
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	crac__internal_fd(fd, true);
	c->rq.priv = c;
	c->rq.reply = rq_reply;
	c->rq.finish = rq_finish;
	c->rq.forget = rq_forget;
	if (read_request(c) < 0) {
		conn_write(fd, "crac: malformed request\n");
		rq_finish(&c->rq, -EPROTO, NULL);
		conn_free(c);
		return;
	}
	const char *verb = c->tokens[0];
	if (strcmp(verb, "PING") == 0) {
		rq_finish(&c->rq, 0, NULL);
		conn_free(c);
	} else if (strcmp(verb, "CHECKPOINT") == 0) {
		const char *v = token_value(c->tokens, "progress");
		if (v && strcmp(v, "1") == 0) {
			c->rq.progress = rq_progress;
			/* CRAC_TEST_CONTROL_SNDBUF=N, for tests only
			 * (tests/cli/checkpoint_progress.bats): a send buffer of
			 * about N bytes, so that a client that does not read
			 * fills it after a few records (which are then dropped). */
			const char *sb = getenv("CRAC_TEST_CONTROL_SNDBUF");
			int n = sb ? atoi(sb) : 0;
			if (n > 0)
				setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof(n));
		}
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&th, &attr, checkpoint_thread, c) != 0) {
			conn_write(fd, "crac: cannot start the checkpoint thread\n");
			rq_finish(&c->rq, -EAGAIN, NULL);
			conn_free(c);
		}
		pthread_attr_destroy(&attr);
	} else if (strcmp(verb, "CHECK") == 0) {
		answer_check(c);
		conn_free(c);
	} else if (strcmp(verb, "RESUME") == 0) {
		c->rq.finish = resumer_finish;
		handle_resume(c);
	} else {
		char line[200];
		snprintf(line, sizeof(line), "crac: unknown request \"%.100s\"\n", verb);
		conn_write(fd, line);
		rq_finish(&c->rq, -ENOSYS, NULL);
		conn_free(c);
	}
}

/* ---- the supervisor's end ------------------------------------------------------- */

/*
 * A program that `crac run` or `crac start` supervises gets the parent-death
 * signal SIGTERM from it (cli/supervise.c): killed, even by SIGKILL, the
 * supervisor leaves no program running on unsupervised. The kernel clears
 * that signal when the program changes its credentials (its effective or
 * file-system uid or gid: a server started as root that drops to nobody),
 * and a kill -9 of the supervisor then left it orphaned. So the listener
 * also watches the supervisor itself, through a pidfd (no permission
 * needed, whatever uid either runs as): when it ends, and our credentials
 * are no longer those we were loaded with (the kernel cleared the signal),
 * we send ourselves SIGTERM, as the kernel would have. The supervisor is
 * $CRAC_SUPERVISOR_PID when it is our parent (not a child of the program,
 * which inherited the variable). Gone before the watch began (between the
 * exec and the start of the endpoint, or while an image was written with
 * the endpoint closed): the same at once.
 */

void crac__control_note_creds(void)
{
	uid_t r, e, sv;
	gid_t gr, ge, gs;

	if (getresuid(&r, &e, &sv) < 0 || getresgid(&gr, &ge, &gs) < 0)
		return;
	start_creds.euid = e;
	start_creds.egid = ge;
	/* setfsuid/setfsgid with an invalid id change nothing and return the current one */
	start_creds.fsuid = (unsigned)syscall(SYS_setfsuid, -1);
	start_creds.fsgid = (unsigned)syscall(SYS_setfsgid, -1);
	start_creds.known = true;
}

/* Did our credentials change since we were loaded (the kernel then cleared
 * the parent-death signal)? Writes what changed into what. */
static bool creds_changed(char *what, size_t len)
{
	uid_t r, e, sv;
	gid_t gr, ge, gs;

	what[0] = 0;
	if (!start_creds.known || getresuid(&r, &e, &sv) < 0 || getresgid(&gr, &ge, &gs) < 0)
		return false;
	unsigned fsu = (unsigned)syscall(SYS_setfsuid, -1), fsg = (unsigned)syscall(SYS_setfsgid, -1);
	if (e != start_creds.euid)
		snprintf(what, len, "uid %u -> %u", start_creds.euid, (unsigned)e);
	else if (ge != start_creds.egid)
		snprintf(what, len, "gid %u -> %u", start_creds.egid, (unsigned)ge);
	else if (fsu != start_creds.fsuid)
		snprintf(what, len, "fsuid %u -> %u", start_creds.fsuid, fsu);
	else if (fsg != start_creds.fsgid)
		snprintf(what, len, "fsgid %u -> %u", start_creds.fsgid, fsg);
	return what[0] != 0;
}

/* The supervisor has ended (or was gone already): SIGTERM, if the kernel's
 * parent-death signal was cleared. */
static void supervisor_gone(pid_t pid)
{
	char what[64];

	if (!creds_changed(what, sizeof(what)))
		return;   /* the kernel's parent-death signal did it */
	crac__log(CRAC_LOG_WARN, "control: the supervisor (crac, pid %d) has ended; this process changed its "
		  "credentials since it started (%s), which cleared its parent-death signal: SIGTERM sent to "
		  "itself", (int)pid, what);
	kill(getpid(), SIGTERM);
}

/* Called with ctl_lock held, the endpoint starting: sup_pidfd for the
 * supervisor named by $CRAC_SUPERVISOR_PID if it is our parent. */
static void sup_watch_open(void)
{
	const char *v = getenv(CRAC_SUPERVISOR_ENV);
	char *end;
	long pid;

	if (sup_pidfd >= 0 || !v || !*v || (pid = strtol(v, &end, 10)) <= 0 || *end || pid > INT_MAX)
		return;
	if (pid != (long)getppid()) {
		/* not our parent: the one we watched before (the endpoint
		 * was closed while an image was written) ended meanwhile; else
		 * the variable was inherited by a child of the program, which
		 * the supervisor never gave a parent-death signal */
		if (sup_pid == (pid_t)pid)
			supervisor_gone((pid_t)pid);
		return;
	}
	int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (fd < 0)
		return;
	/* still our parent once the pidfd is held: it is that process */
	if (getppid() != (pid_t)pid) {
		close(fd);
		supervisor_gone((pid_t)pid);
		return;
	}
	sup_pidfd = fd;
	sup_pid = (pid_t)pid;
	crac__internal_fd(sup_pidfd, true);
}

static void sup_watch_close(void)
{
	if (sup_pidfd < 0)
		return;
	crac__internal_fd(sup_pidfd, false);
	close(sup_pidfd);
	sup_pidfd = -1;
}

static void *listen_thread(void *p)
{
	int lfd = listen_fd, wfd = wake_pipe[0];

	(void)p;
	int sfd = sup_pidfd;   /* -1: none (poll ignores it) */

	for (;;) {
		struct pollfd pf[3] = { { .fd = lfd, .events = POLLIN }, { .fd = wfd, .events = POLLIN },
					{ .fd = sfd, .events = POLLIN } };
		if (poll(pf, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents)
			break;
		if (pf[2].revents) {
			/* the supervisor ended: once (the pidfd stays readable) */
			supervisor_gone(sup_pid);
			sfd = -1;
		}
		if (pf[0].revents & POLLIN) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				serve(fd);
		}
	}
	return NULL;
}

/* ---- the setup: bounded ---------------------------------------------------- */

/*
 * Every look at the file system the endpoint's setup makes (choosing the
 * directory, creating and checking it, removing a stale socket, the bind
 * that makes the socket file, its chmod) and the removal of the socket
 * file later may never return on a file system that does not answer (an
 * NFS or FUSE server gone). So they are made by a helper of image/bounded.c
 * (raw system calls, on its own stack) and waited for until a bound: the
 * checkpoint's deadline when a checkpoint starts the endpoint (the pause
 * and external engines), else CONTROL_SETUP_MS (CRAC_TEST_SYNC_GRACE_MS in
 * tests). Given up, the setup fails naming the step and the path.
 *
 * CRAC_TEST_SLOW_FS=control:MS (tests only): the helper sleeps MS ms before
 * the mkdir of the directory (and before the lstat of the socket file it
 * removes), a file system that does not answer; CRAC_TEST_SLOW_FS=bound:MS:
 * it sleeps MS ms once the socket is bound under its temporary name, before
 * the caller listens (the socket file must not be at its own name then);
 * CRAC_TEST_SLOW_FS=chmod:MS: between its look at the bound socket file
 * and its chmod (a path swapped meanwhile must not be followed);
 * CRAC_TEST_SLOW_FS=stale:MS: between the try of a stale socket file at
 * PID.sock and its removal (a live one put there meanwhile must stay).
 * CRAC_TEST_CONTROL_SWAP=PATH with CRAC_TEST_CONTROL_SWAP_TO=TARGET: once
 * the directory is checked, PATH renamed to PATH.swapped and a link to
 * TARGET put in its place; CRAC_TEST_CONTROL_NOPROC=1: as if /proc were
 * not mounted (see struct ctl_setup; tests/cli/control_dir.bats).
 */
#define CONTROL_SETUP_MS 10000
/* A temporary of a dead pid is stale once this old (crac_ctl_sweep): far
 * beyond any setup's bind-to-listen (a few system calls), and beyond the
 * bound of the setups of a process of another pid namespace whose pid is
 * not one of ours, which may be between its bind and its listen. */
#define CONTROL_TMP_AGE_MS 60000

/* The directories own_dir() may choose, in its order. */
enum { CAND_ENV, CAND_XDG, CAND_RUN, CAND_TMP, N_CANDS };

/* Where the helper was (for the message). */
enum setup_step { ST_CHOOSE, ST_WALK, ST_MKDIR, ST_LSTAT_DIR, ST_NOPROC, ST_STALE, ST_STALE_NS, ST_BIND,
		  ST_LSTAT_SOCK, ST_CHMOD, ST_RENAME, ST_RENAME_NS, ST_UNLINK, ST_REOPEN, ST_MOVED };

/* The names in the control directory: PID.sock, the socket's own; PID.pidns-INO.sock, its own when another
 * process of our pid number (another pid namespace sharing the directory) listens at PID.sock; the
 * temporary, PID-RANDOM.tmp (16 hex digits), unique to this setup. */
#define CTL_NAME_MAX 48

struct ctl_setup {
	/* in */
	bool remove;                      /* remove the socket file (dev, ino) instead */
	bool place;                       /* rename tmp_name to sock_name or ns_name instead (step 5) */
	const char *dirs[N_CANDS];        /* NULL: not a candidate */
	const char *private_of[N_CANDS];  /* the candidate only if this is a private directory of ours */
	struct sockaddr_un addrs[N_CANDS];
	unsigned uid;
	int fd;                           /* the socket to bind */
	int pid;                          /* ours (getpid), for the temporary's name */
	long slow_ms;
	long bound_ms;                    /* CRAC_TEST_SLOW_FS=bound:MS, a sleep once bound (step 4) */
	long chmod_ms;                    /* CRAC_TEST_SLOW_FS=chmod:MS, before the chmod (step 4) */
	long stale_ms;                    /* CRAC_TEST_SLOW_FS=stale:MS, a stale file tried, not yet removed */
	char sock_name[CTL_NAME_MAX];     /* PID.sock (remove: the name of the file to remove) */
	char ns_name[CTL_NAME_MAX];       /* PID.pidns-INO.sock; "": our pid namespace is not known (no /proc) */
	char tmp_name[CTL_NAME_MAX];      /* place: the temporary; else out: the one chosen (step 4) */
	unsigned long dir_dev, dir_ino;   /* remove, place: the directory (dirs[0]) the setup checked */
	bool no_proc;                     /* CRAC_TEST_CONTROL_NOPROC=1 (tests): as if /proc were not mounted */
	/* CRAC_TEST_CONTROL_SWAP=PATH and CRAC_TEST_CONTROL_SWAP_TO=TARGET
	 * (tests): once the directory is checked, before its first use, PATH
	 * is renamed to swap_aside (PATH.swapped) and a symbolic link to
	 * TARGET put in its place (a component swapped by another uid). */
	const char *swap, *swap_to;
	char swap_aside[256];
	int64_t tmp_age_ns;               /* the age of a stale temporary (crac_ctl_sweep) */
	/* out */
	struct crac_ctl_swept swept;      /* step 3: the directory's stale temporaries removed */
	struct crac_ctl_walk walk;        /* the directory's walk (ctl_dir.c) */
	int cand;                         /* the directory chosen */
	enum setup_step step;
	int res;                          /* 0 or -errno (ST_LSTAT_DIR: -EPERM, refused: see walk) */
	bool ours;                        /* the socket file bind made is a socket */
	bool taken;                       /* in (place) and out: a live socket answers at sock_name (step 3) */
	bool at_ns;                       /* place: the socket went to ns_name */
	unsigned long dev, ino;           /* its identity (remove: the one to remove) */
};

/* lstat with a raw system call into st (the helper's stack). */
static long raw_lstat(const char *path, struct stat *st)
{
	return crac_raw_syscall5(SYS_newfstatat, AT_FDCWD, (long)path, (long)st, AT_SYMLINK_NOFOLLOW, 0);
}

/*
 * Does /proc/self/fd/DFD lead to the directory the walk checked (s->walk)?
 * Not where /proc is not mounted (a chroot, a container without it) or
 * is another pid namespace's. Then bind() and connect(), which take a
 * path, cannot go through the descriptor.
 */
static bool via_proc_works(const struct ctl_setup *s)
{
	char via[40];
	struct stat st;

	if (s->no_proc || crac_ctl_via_fd(via, sizeof(via), s->walk.dfd, NULL) < 0)
		return false;
	return crac_raw_syscall5(SYS_newfstatat, AT_FDCWD, (long)via, (long)&st, 0, 0) == 0 &&
	       st.st_dev == s->walk.dev && st.st_ino == s->walk.ino;
}

/* remove, place: the directory dirs[0] opened again (s->walk.dfd), and the
 * one the setup checked (dir_dev, dir_ino); else s->res < 0 (ST_REOPEN:
 * the walk failed, see s->walk; ST_MOVED: another directory is there now). */
static bool reopen_dir(struct ctl_setup *s)
{
	s->step = ST_REOPEN;
	if ((s->res = crac_ctl_dir_open(s->dirs[0], s->uid, false, &s->walk)) < 0)
		return false;
	if (s->walk.dev != s->dir_dev || s->walk.ino != s->dir_ino) {
		crac_raw_syscall3(SYS_close, s->walk.dfd, 0, 0);
		s->walk.dfd = -1;
		s->step = ST_MOVED;
		s->res = -ESTALE;
		return false;
	}
	return true;
}

/*
 * A fresh temporary name for this setup in s->tmp_name: PID-RANDOM.tmp
 * (crac_ctl_unique_name: 64 random bits). No other process picks it,
 * whatever its pid namespace: nobody else binds, renames or removes our
 * temporary, and we never remove one of theirs while it may be in use (a
 * stale one: crac_ctl_sweep).
 */
static void new_tmp_name(struct ctl_setup *s, unsigned attempt)
{
	crac_ctl_unique_name(s->tmp_name, s->pid, ".tmp", attempt);
}

/* The address of NAME in the directory checked: through its descriptor
 * (proc: /proc/self/fd/DFD/NAME), else DIR/NAME by its path (only where
 * the walk found it trusted). 0 or -ENAMETOOLONG. */
static long name_addr(const struct ctl_setup *s, bool proc, const char *name, struct sockaddr_un *a)
{
	const char *dir = s->dirs[s->cand >= 0 ? s->cand : 0];
	size_t dl = strlen(dir), nl = strlen(name);

	a->sun_family = AF_UNIX;
	if (proc)
		return crac_ctl_via_fd(a->sun_path, sizeof(a->sun_path), s->walk.dfd, name) < 0 ? -ENAMETOOLONG : 0;
	if (dl + 1 + nl >= sizeof(a->sun_path))
		return -ENAMETOOLONG;
	memcpy(a->sun_path, dir, dl);
	a->sun_path[dl] = '/';
	memcpy(a->sun_path + dl + 1, name, nl + 1);
	return 0;
}

/*
 * Step 3 for NAME in the directory: a file there is stale unless a live
 * socket answers on it (tried with a socket of the helper's own, closed
 * after); a stale one is removed. 0: nothing there (any more); -EEXIST:
 * a live socket answers; else -errno (its removal failed: a directory).
 *
 * The removal never takes a file that came to the name after the try
 * (another process of our pid number that removed the stale file too and
 * put its live socket there meanwhile): the file is renamed aside to a
 * name unique to us (PID-RANDOM.stale, RENAME_NOREPLACE) and removed there
 * only if it is the file tried (dev, ino); another is renamed back and
 * tried again. Where the file system lacks RENAME_NOREPLACE, removed by
 * its name (the window stays open there).
 */
static long clear_stale(const struct ctl_setup *s, bool proc, const char *name)
{
	int dfd = s->walk.dfd;
	char aside[CTL_NAME_MAX];
	struct sockaddr_un a;
	struct stat st, now;
	long r, pfd;

	for (unsigned attempt = 0;; attempt++) {
		if (crac_raw_syscall5(SYS_newfstatat, dfd, (long)name, (long)&st, AT_SYMLINK_NOFOLLOW, 0) < 0)
			return 0;
		if ((r = name_addr(s, proc, name, &a)) < 0)
			return r;
		if ((pfd = crac_raw_syscall3(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
			return pfd;
		r = crac_raw_syscall3(SYS_connect, pfd, (long)&a, sizeof(a));
		crac_raw_syscall3(SYS_close, pfd, 0, 0);
		if (r == 0)
			return -EEXIST;
		crac_bounded_test_sleep(s->stale_ms);   /* tests: tried, not yet removed */
		if (S_ISDIR(st.st_mode))
			return -EISDIR;   /* (as unlink says; nothing renamed) */
		crac_ctl_unique_name(aside, s->pid, ".stale", attempt);
		r = crac_raw_syscall5(SYS_renameat2, dfd, (long)name, dfd, (long)aside, 1 /* RENAME_NOREPLACE */);
		if (r == -EINVAL || r == -ENOSYS) {
			r = crac_raw_syscall3(SYS_unlinkat, dfd, (long)name, 0);
			return r == -ENOENT ? 0 : r;
		}
		if (r == -ENOENT)
			return 0;   /* gone meanwhile */
		if (r < 0)
			return r;
		if (crac_raw_syscall5(SYS_newfstatat, dfd, (long)aside, (long)&now, AT_SYMLINK_NOFOLLOW, 0) == 0 &&
		    now.st_dev == st.st_dev && now.st_ino == st.st_ino) {
			r = crac_raw_syscall3(SYS_unlinkat, dfd, (long)aside, 0);
			return r == -ENOENT ? 0 : r;
		}
		/* another's, come since the try: back to its name, and tried
		 * again (live, it answers; if yet another came to the name
		 * meanwhile, the one aside stays there rather than replace it) */
		r = crac_raw_syscall5(SYS_renameat2, dfd, (long)aside, dfd, (long)name, 1 /* RENAME_NOREPLACE */);
		if (r < 0 || attempt == 3)
			return r < 0 ? r : -EEXIST;
	}
}

/* Removes NAME from the directory only while it is the socket file we
 * bound (s->dev, s->ino, looked at through the directory's descriptor):
 * never a file another process put at that name. */
static void unlink_if_ours(const struct ctl_setup *s, const char *name)
{
	struct stat st;

	if (s->ours &&
	    crac_raw_syscall5(SYS_newfstatat, s->walk.dfd, (long)name, (long)&st, AT_SYMLINK_NOFOLLOW, 0) == 0 &&
	    st.st_dev == s->dev && st.st_ino == s->ino)
		crac_raw_syscall3(SYS_unlinkat, s->walk.dfd, (long)name, 0);
}

/*
 * The temporary renamed to NAME, never over a file there: RENAME_NOREPLACE;
 * where the file system lacks it (EINVAL), a hard link, which fails on an
 * existing name as well, then the temporary's removal (a plain rename
 * could replace the socket another process of our pid number listens
 * on). 0 or -errno.
 */
static long put_in_place(const struct ctl_setup *s, const char *name)
{
	int dfd = s->walk.dfd;
	long r = crac_raw_syscall5(SYS_renameat2, dfd, (long)s->tmp_name, dfd, (long)name, 1 /* RENAME_NOREPLACE */);

	if (r != -EINVAL && r != -ENOSYS)
		return r;
	if ((r = crac_raw_syscall5(SYS_linkat, dfd, (long)s->tmp_name, dfd, (long)name, 0)) < 0)
		return r;
	unlink_if_ours(s, s->tmp_name);
	return 0;
}

/* The helper's work (setup_run), with the directory's descriptor
 * s->walk.dfd left for setup_run to close. */
static void setup_steps(struct ctl_setup *s)
{
	struct stat st;
	long r;

	if (s->place) {
		/* 5. listening now: put in place (removed if it cannot be).
		 * Never over a file at the name (put_in_place). PID.sock
		 * taken by a live socket (at step 3, or since: another
		 * process of our pid number, in a pid namespace sharing the
		 * directory): our own name is PID.pidns-INO.sock, with the
		 * inode of our pid namespace, which a client in it computes
		 * the same way. Both names in the directory checked, by its
		 * descriptor: a swapped component above leads nowhere. */
		if (!reopen_dir(s))
			return;   /* (the temporary is not reachable: left where it is) */
		bool proc = via_proc_works(s);
		s->step = ST_RENAME;
		if (!s->taken) {
			if ((s->res = (int)put_in_place(s, s->sock_name)) == 0)
				return;
			s->taken = s->res == -EEXIST && s->ns_name[0];
		}
		if (s->taken) {
			s->step = ST_STALE_NS;
			if ((s->res = (int)clear_stale(s, proc, s->ns_name)) == 0) {
				s->step = ST_RENAME_NS;
				s->res = (int)put_in_place(s, s->ns_name);
				s->at_ns = s->res == 0;
			}
		}
		if (s->res < 0)
			unlink_if_ours(s, s->tmp_name);
		return;
	}
	if (s->remove) {
		s->step = ST_LSTAT_SOCK;
		crac_bounded_test_sleep(s->slow_ms);
		if (!reopen_dir(s)) {
			if (s->step == ST_MOVED)
				s->res = 0;   /* not ours any more (as a socket replaced) */
			return;
		}
		s->step = ST_LSTAT_SOCK;
		r = crac_raw_syscall5(SYS_newfstatat, s->walk.dfd, (long)s->sock_name, (long)&st,
				      AT_SYMLINK_NOFOLLOW, 0);
		if (r < 0) {
			s->res = (int)r;
			return;
		}
		s->res = 0;
		if (st.st_dev != s->dev || st.st_ino != s->ino)
			return;   /* not ours any more */
		s->step = ST_UNLINK;
		s->res = (int)crac_raw_syscall3(SYS_unlinkat, s->walk.dfd, (long)s->sock_name, 0);
		return;
	}
	/* 1. the directory (own_dir) */
	s->step = ST_CHOOSE;
	for (int i = 0; i < N_CANDS; i++) {
		if (!s->dirs[i])
			continue;
		s->cand = i;   /* the one looked at (the last one, CAND_TMP, is always taken) */
		if (s->private_of[i] && (raw_lstat(s->private_of[i], &st) < 0 || !S_ISDIR(st.st_mode) ||
					 st.st_uid != s->uid || (st.st_mode & 022)))
			continue;
		break;
	}
	const char *dir = s->dirs[s->cand];
	/*
	 * 2. created, a real directory of ours with mode 0700 (check_dir):
	 * opened once, component by component, and checked on its descriptor
	 * (ctl_dir.c); every later step acts relative to that descriptor.
	 */
	s->step = ST_MKDIR;
	crac_bounded_test_sleep(s->slow_ms);   /* tests: the directory does not answer */
	s->step = ST_WALK;
	r = crac_ctl_dir_open(dir, s->uid, true, &s->walk);
	if (r < 0) {
		s->step = s->walk.step == CTL_WALK_MKDIR ? ST_MKDIR : s->walk.step == CTL_WALK_DIR ? ST_LSTAT_DIR
			: ST_WALK;
		s->res = (int)r;
		return;
	}
	s->dir_dev = s->walk.dev;
	s->dir_ino = s->walk.ino;
	int dfd = s->walk.dfd;
	if (s->swap) {
		/* tests: another uid swaps a component now */
		crac_raw_syscall3(SYS_rename, (long)s->swap, (long)s->swap_aside, 0);
		crac_raw_syscall3(SYS_symlink, (long)s->swap_to, (long)s->swap, 0);
	}
	/*
	 * bind() and connect() take a path: /proc/self/fd/DFD/NAME, which
	 * reaches NAME through the descriptor (the helper's own table), the
	 * path's components are not looked up again. Without /proc, the path
	 * (DIR/NAME) only when no other uid can replace any entry on its way
	 * (s->walk.trusted: then it still leads to the directory checked);
	 * else refused, saying why, rather than bound where a swapped path
	 * leads (ST_NOPROC).
	 */
	struct sockaddr_un t;
	bool proc = via_proc_works(s);
	s->step = ST_NOPROC;
	if (!proc && !s->walk.trusted) {
		s->res = -EPERM;   /* refused (control_start says why) */
		return;
	}
	/* 3. a socket file at our name: stale unless something live
	 * answers on it (clear_stale). A live one that is not ours (another
	 * process of our pid number: a pid namespace sharing the directory)
	 * keeps it: ours goes to PID.pidns-INO.sock (step 5). Without /proc
	 * our pid namespace is not known: refused. */
	s->step = ST_STALE;
	r = clear_stale(s, proc, s->sock_name);
	if (r == -EEXIST && s->ns_name[0]) {
		s->taken = true;
	} else if (r < 0) {
		s->res = (int)r;
		return;
	}
	/* The temporaries of setups killed between their bind and their
	 * rename (PID-RANDOM.tmp; PID-RANDOM.stale of a clear_stale killed
	 * between its rename aside and its unlink), which nobody else ever
	 * removes: those of a pid dead here, not touched for tmp_age_ns, on
	 * which nothing listens (crac_ctl_sweep says why each such check is
	 * there). A sweep that cannot read the directory costs nothing else
	 * (control_start says so). */
	char sweep_via[40];
	const char *via_dir = s->dirs[s->cand];
	if (proc && crac_ctl_via_fd(sweep_via, sizeof(sweep_via), dfd, NULL) > 0)
		via_dir = sweep_via;
	crac_ctl_sweep(dfd, via_dir, s->uid, s->pid, s->tmp_age_ns, 4096, 64, &s->swept);
	/*
	 * 4. the socket file, under a temporary name: the caller listens
	 * (listen records the credentials a client's SO_PEERCRED gets: ours,
	 * not the helper's), then step 5 renames it to its own. A client that
	 * finds DIR/PID.sock connects to a listening socket: bound at its
	 * name and not yet listening, it refused connections ("nothing
	 * listens there"), and a client that waited for the file to appear
	 * (crac run, then crac checkpoint) could try in between. The
	 * temporary's name is unique to this setup (new_tmp_name): nothing at
	 * it is removed first; a name in use (EADDRINUSE) is replaced by
	 * another.
	 */
	s->step = ST_BIND;
	for (unsigned i = 0;; i++) {
		new_tmp_name(s, i);
		if ((r = name_addr(s, proc, s->tmp_name, &t)) < 0)
			break;
		r = crac_raw_syscall3(SYS_bind, s->fd, (long)&t, sizeof(t));
		if (r != -EADDRINUSE || i == 7)
			break;
	}
	if (r < 0) {
		s->res = (int)r;
		return;
	}
	/* The identity of the file bind made, for remove_socket: only a
	 * socket counts. Something else there already (our directory's owner
	 * replaced it between the bind and this look) is not ours: it is
	 * never removed, chmod'ed (chmod would follow a symbolic link) nor
	 * renamed. */
	s->step = ST_LSTAT_SOCK;
	long pfd = crac_raw_syscall3(SYS_openat, dfd, (long)s->tmp_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	s->ours = pfd >= 0 && crac_raw_syscall5(SYS_newfstatat, pfd, (long)"", (long)&st, AT_EMPTY_PATH, 0) == 0 &&
		  S_ISSOCK(st.st_mode);
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	crac_bounded_test_sleep(s->chmod_ms);   /* tests: looked at, not yet made private */
	/* The chmod acts on the file just looked at, through its descriptor
	 * (/proc/self/fd/N: the helper's table), never on a name again: chmod
	 * follows links. Without /proc, by its name in the directory checked
	 * (which only we and root may write to). */
	s->step = ST_CHMOD;
	s->res = 0;
	if (s->ours) {
		char via[40];
		s->res = proc && crac_ctl_via_fd(via, sizeof(via), pfd, NULL) > 0
			? (int)crac_raw_syscall3(SYS_fchmodat, AT_FDCWD, (long)via, 0600)
			: (int)crac_raw_syscall3(SYS_fchmodat, dfd, (long)s->tmp_name, 0600);
	}
	if (pfd >= 0)
		crac_raw_syscall3(SYS_close, pfd, 0, 0);
	if (s->res < 0)
		unlink_if_ours(s, s->tmp_name);   /* bound, not made private: not left behind */
	crac_bounded_test_sleep(s->bound_ms);   /* tests: bound, not listening yet */
}

/* The helper: raw system calls only (see bounded.h); what it learns goes
 * from its own stack into s field by field. Its descriptors (the
 * directory's) are closed before it returns: without a helper of its own
 * (a seccomp filter) it runs in the caller's thread and table. */
static void setup_run(void *arg)
{
	struct ctl_setup *s = arg;

	s->walk.dfd = -1;
	setup_steps(s);
	if (s->walk.dfd >= 0)
		crac_raw_syscall3(SYS_close, s->walk.dfd, 0, 0);
	s->walk.dfd = -1;
}

/* What step s was at, naming the path: "the bind of /run/user/0/crac/7-0123456789abcdef.tmp". */
static void setup_what(const struct ctl_setup *s, char *out, size_t len)
{
	const char *dir = s->cand >= 0 ? s->dirs[s->cand] : "";
	const char *sock = s->sock_name, *tmp = s->tmp_name, *ns = s->ns_name;

	if (s->cand < 0 && s->dirs[0])
		dir = s->dirs[0];   /* (remove, place) */
	switch (s->step) {
	case ST_WALK:
	case ST_REOPEN:
		/* (a walk given up on: where it was) */
		if (s->walk.step == CTL_WALK_MKDIR)
			snprintf(out, len, "the mkdir of %s", dir);
		else if (s->walk.step == CTL_WALK_DIR || !s->walk.at[0])
			snprintf(out, len, "the open of %s", dir);
		else
			snprintf(out, len, "the open of %s (on the way to %s)", s->walk.at, dir);
		break;
	case ST_NOPROC:
		snprintf(out, len, "the bind of a temporary socket in %s through the directory checked", dir);
		break;
	case ST_MOVED:
		snprintf(out, len, "the look at %s", dir);
		break;
	case ST_CHOOSE:
		snprintf(out, len, "the lstat of %s (choosing the control directory)",
			 s->cand >= 0 && s->private_of[s->cand] ? s->private_of[s->cand] : "$XDG_RUNTIME_DIR or /run/user/UID");
		break;
	case ST_MKDIR:
		snprintf(out, len, "the mkdir of %s", dir);
		break;
	case ST_LSTAT_DIR:
		snprintf(out, len, "the lstat of %s", dir);
		break;
	case ST_STALE:
	case ST_STALE_NS:
		snprintf(out, len, s->res < 0 && s->res != -EINPROGRESS && s->res != -EEXIST ?
			 "the removal of a stale %s/%s" : "the look for a stale socket at %s/%s", dir,
			 s->step == ST_STALE ? sock : ns);
		break;
	case ST_BIND:
		if (tmp[0])
			snprintf(out, len, "the bind of %s/%s", dir, tmp);
		else
			snprintf(out, len, "the bind of a temporary socket in %s", dir);
		break;
	case ST_LSTAT_SOCK:
		/* (remove_socket's look at the socket file: sock_name) */
		snprintf(out, len, "the lstat of %s/%s", dir, s->remove ? sock : tmp);
		break;
	case ST_CHMOD:
		snprintf(out, len, "the chmod of %s/%s", dir, tmp);
		break;
	case ST_RENAME:
	case ST_RENAME_NS:
		snprintf(out, len, "the rename of %s/%s to %s/%s", dir, tmp, dir, s->step == ST_RENAME ? sock : ns);
		break;
	case ST_UNLINK:
		snprintf(out, len, "the unlink of %s/%s", dir, sock);
		break;
	}
}

/*
 * Why the walk w to the control directory dir (for uid) failed, naming the
 * path at fault: "cannot create DIR: ...", "refusing DIR: ...", "the open
 * of /a (on the way to /a/b/ctl): ...".
 */
static void walk_why(const struct crac_ctl_walk *w, const char *dir, unsigned uid, char *out, size_t len)
{
	switch (w->step) {
	case CTL_WALK_MKDIR:
		snprintf(out, len, "cannot create %s: %s", dir, strerror(-w->err));
		break;
	case CTL_WALK_LINK:
		snprintf(out, len, "refusing %s: %s on its way is a symbolic link in a directory another uid may "
			 "write to (it could be swapped between the check of the directory and its use)", dir, w->at);
		break;
	case CTL_WALK_DIR:
		if (w->err == -EPERM)
			snprintf(out, len, "refusing %s: it must be a directory owned by uid %u with mode 0700 (it is "
				 "%s, uid %u, mode %04o)", dir, uid, S_ISDIR(w->mode) ? "a directory" :
				 S_ISLNK(w->mode) ? "a symlink" : "not a directory", w->uid, w->mode & 07777);
		else
			snprintf(out, len, "the open of %s: %s", dir, strerror(-w->err));
		break;
	default:
		snprintf(out, len, "the open of %s (on the way to %s): %s", w->at[0] ? w->at : dir, dir,
			 strerror(-w->err));
		break;
	}
}

/*
 * Runs s by a helper, waited for until deadline_ns (CLOCK_MONOTONIC; 0:
 * CONTROL_SETUP_MS from now). Returns s->res, or -ETIMEDOUT with msg
 * saying what was given up on. Without a helper (a seccomp filter) in
 * this thread, unbounded.
 */
static int setup_bounded(struct ctl_setup *s, int64_t deadline_ns, char *msg, size_t msglen)
{
	struct crac_bounded helper;
	const char *g = getenv("CRAC_TEST_SYNC_GRACE_MS");
	long bound_ms = g ? strtol(g, NULL, 10) : CONTROL_SETUP_MS;
	int64_t waited;
	char what[PATH_MAX + 100];

	s->res = -EINPROGRESS;
	s->cand = -1;
	s->step = ST_CHOOSE;
	/* A table of descriptors of its own, with the sockets it binds and
	 * probes with: what it opens (step 4) ends with it if it is given up */
	int keep0 = s->remove || s->place ? -1 : s->fd, keep1 = -1;
	if (crac_bounded_start_own(&helper, setup_run, s, NULL, keep0, keep1) < 0) {
		setup_run(s);
		return s->res;
	}
	if (crac_bounded_wait(&helper, deadline_ns ? deadline_ns : crac_bounded_mono_ns() + bound_ms * 1000000LL,
			      0, &waited) == 0)
		return s->res;
	setup_what(s, what, sizeof(what));
	if (deadline_ns)
		snprintf(msg, msglen, "%s did not return after %lld ms (the checkpoint's deadline): its file system "
			 "does not answer; given up", what, (long long)waited);
	else
		snprintf(msg, msglen, "%s did not return after %lld ms (the control endpoint's setup, %ld ms at most): "
			 "its file system does not answer; given up", what, (long long)waited, bound_ms);
	return -ETIMEDOUT;
}

static void after_fork_child(void)
{
	/* The child has no listener thread; its pid differs. */
	if (listen_fd >= 0)
		close(listen_fd);
	if (wake_pipe[0] >= 0) {
		close(wake_pipe[0]);
		close(wake_pipe[1]);
	}
	if (parked_fd >= 0)
		close(parked_fd);
	listen_fd = wake_pipe[0] = wake_pipe[1] = parked_fd = -1;
	sock_path[0] = 0;
	/* the supervisor is the parent's, not ours */
	if (sup_pidfd >= 0)
		close(sup_pidfd);
	sup_pidfd = -1;
	sup_pid = 0;
	pthread_mutex_init(&ctl_lock, NULL);
}

/* CRAC_TEST_SLOW_FS=OP:MS for OP `control` (the default) or `bound`: MS,
 * else 0 (tests). */
static long test_slow_ms_of(const char *op)
{
	const char *e = getenv("CRAC_TEST_SLOW_FS");
	size_t n = strlen(op);

	return e && !strncmp(e, op, n) && e[n] == ':' ? strtol(e + n + 1, NULL, 10) : 0;
}

static long test_slow_ms(void)
{
	return test_slow_ms_of("control");
}

/* Removes our socket file if it is still the one we bound (a process that
 * reuses our pid may have replaced it since); bounded (setup_bounded). */
static void remove_socket(void)
{
	if (sock_path[0] && sock_pid == getpid()) {
		struct ctl_setup s = { .remove = true, .dev = (unsigned long)sock_dev, .ino = (unsigned long)sock_ino,
				       .slow_ms = test_slow_ms(), .uid = sock_dir_uid, .dir_dev = sock_dir_dev,
				       .dir_ino = sock_dir_ino };
		char msg[PATH_MAX + 300];
		s.addrs[0].sun_family = AF_UNIX;
		strcpy(s.addrs[0].sun_path, sock_path);
		s.dirs[0] = sock_dir;
		memcpy(s.sock_name, sock_file, sizeof(s.sock_name));
		if (setup_bounded(&s, 0, msg, sizeof(msg)) == -ETIMEDOUT)
			crac__log(CRAC_LOG_WARN, "control: socket %s left in place: %s", sock_path, msg);
	}
	sock_path[0] = 0;
}

/* The temporary socket file of setup s (bound, listen failed), removed if
 * it is still the one bound (bounded). */
static void remove_tmp(const struct ctl_setup *s)
{
	struct ctl_setup r = { .remove = true, .dev = s->dev, .ino = s->ino, .slow_ms = test_slow_ms(), .uid = s->uid,
			       .dir_dev = s->dir_dev, .dir_ino = s->dir_ino };
	char msg[PATH_MAX + 300];

	r.dirs[0] = s->dirs[s->cand];
	memcpy(r.sock_name, s->tmp_name, sizeof(r.sock_name));
	if (setup_bounded(&r, 0, msg, sizeof(msg)) == -ETIMEDOUT)
		crac__log(CRAC_LOG_WARN, "control: socket %s/%s left in place: %s", r.dirs[0], r.sock_name, msg);
}

/* Step 5 of setup s: its socket, listening, renamed from its temporary
 * name to its own (bounded: until deadline_ns as the setup). 0 or -errno
 * (-ETIMEDOUT with msg); *at_ns: its name is s->ns_name. */
static int place_socket(const struct ctl_setup *s, int64_t deadline_ns, char *msg, size_t msglen, bool *at_ns)
{
	struct ctl_setup p = { .place = true, .slow_ms = 0, .uid = s->uid, .dir_dev = s->dir_dev, .dir_ino = s->dir_ino,
			       .taken = s->taken, .ours = s->ours, .dev = s->dev, .ino = s->ino };

	p.addrs[0] = s->addrs[s->cand];
	p.dirs[0] = s->dirs[s->cand];
	memcpy(p.sock_name, s->sock_name, sizeof(p.sock_name));
	memcpy(p.ns_name, s->ns_name, sizeof(p.ns_name));
	memcpy(p.tmp_name, s->tmp_name, sizeof(p.tmp_name));
	int rc = setup_bounded(&p, deadline_ns, msg, msglen);
	*at_ns = p.at_ns;
	if (rc < 0 && rc != -ETIMEDOUT) {
		char what[PATH_MAX + 100], why[PATH_MAX + 300];
		enum setup_step at = p.step;
		p.cand = 0;
		if (at == ST_MOVED || at == ST_REOPEN)
			p.step = ST_RENAME;   /* named as the rename it stopped */
		setup_what(&p, what, sizeof(what));
		if (at == ST_MOVED)
			snprintf(msg, msglen, "%s: refused: %s is not the directory the setup checked any more (a "
				 "component of its path was moved or replaced since; the socket is left at its "
				 "temporary name in the one checked)", what, p.dirs[0]);
		else if (at == ST_REOPEN) {
			walk_why(&p.walk, p.dirs[0], p.uid, why, sizeof(why));
			snprintf(msg, msglen, "%s: refused: %s (the socket is left at its temporary name)", what, why);
		} else
			snprintf(msg, msglen, "%s: %s%s", what, strerror(-rc),
				 at == ST_STALE_NS && rc == -EEXIST ? " (a live socket answers there)" : "");
	}
	return rc;
}

/* A normal exit (exit(), return from main) leaves no socket file behind.
 * The listener may still run: it only stops being reachable. */
__attribute__((destructor)) static void control_at_exit(void)
{
	remove_socket();
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, after_fork_child);
}

/*
 * Called with ctl_lock held: serves the listening socket fd (listen_fd)
 * with a new listener thread, its wake pipe and the supervisor's watch.
 * mark: fd is not yet one of crac's own descriptors (a parked one still
 * is). On failure everything but fd is undone (the caller closes it).
 */
static int listener_go(int fd, bool mark)
{
	sigset_t all, old;
	int rc;

	if (pipe2(wake_pipe, O_CLOEXEC) < 0) {
		wake_pipe[0] = wake_pipe[1] = -1;
		return -errno;
	}
	listen_fd = fd;
	if (mark)
		crac__internal_fd(listen_fd, true);
	crac__internal_fd(wake_pipe[0], true);
	crac__internal_fd(wake_pipe[1], true);
	sup_watch_open();   /* the supervisor's end, watched by the listener too */
	/* The listener must not take the application's signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&listener, NULL, listen_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		crac__internal_fd(listen_fd, false);
		crac__internal_fd(wake_pipe[0], false);
		crac__internal_fd(wake_pipe[1], false);
		close(wake_pipe[0]);
		close(wake_pipe[1]);
		wake_pipe[0] = wake_pipe[1] = -1;
		listen_fd = -1;
		sup_watch_close();
	}
	return rc;
}

/* crac__control_start_msg, and *said: msg is worth saying (more than the
 * error's name: a step given up on, a refused directory). */
static int control_start(int64_t deadline_ns, char *msg, size_t msglen, bool *said)
{
	static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
	struct ctl_setup s = { .uid = (unsigned)geteuid(), .fd = -1, .pid = (int)getpid(), .slow_ms = test_slow_ms(),
			       .bound_ms = test_slow_ms_of("bound"), .chmod_ms = test_slow_ms_of("chmod"),
			       .stale_ms = test_slow_ms_of("stale") };
	char dirs[N_CANDS][200];
	const char *d = getenv("CRAC_CONTROL_DIR"), *x = getenv("XDG_RUNTIME_DIR"), *e;
	char run[64];
	int rc, fd = -1;

	msg[0] = 0;
	*said = false;
	pthread_mutex_lock(&ctl_lock);
	if (listen_fd >= 0 || parked_fd >= 0) {
		/* running, or parked while an image is written (resumed after) */
		pthread_mutex_unlock(&ctl_lock);
		return 0;
	}
	pthread_once(&atfork_once, register_atfork);
	/* the candidates of own_dir(), each with its socket's name */
	snprintf(run, sizeof(run), "/run/user/%u", s.uid);
	int n[N_CANDS] = { 0 };
	if (d && *d) {
		n[CAND_ENV] = snprintf(dirs[CAND_ENV], sizeof(dirs[0]), "%s", d);
	} else {
		if (x && x[0] == '/') {
			n[CAND_XDG] = snprintf(dirs[CAND_XDG], sizeof(dirs[0]), "%s/crac", x);
			s.private_of[CAND_XDG] = x;
		}
		n[CAND_RUN] = snprintf(dirs[CAND_RUN], sizeof(dirs[0]), "%s/crac", run);
		s.private_of[CAND_RUN] = run;
		n[CAND_TMP] = snprintf(dirs[CAND_TMP], sizeof(dirs[0]), "/tmp/crac-%u", s.uid);
	}
	for (int i = 0; i < N_CANDS; i++) {
		if (!n[i])
			continue;
		s.addrs[i].sun_family = AF_UNIX;
		if (n[i] < 0 || (size_t)n[i] >= sizeof(dirs[0]) ||
		    path_in(dirs[i], getpid(), s.addrs[i].sun_path, sizeof(s.addrs[i].sun_path)) < 0) {
			if (i == CAND_ENV || i == CAND_TMP) {
				rc = -ENAMETOOLONG;
				goto fail;
			}
			continue;   /* own_dir() would refuse it too: the next one */
		}
		s.dirs[i] = dirs[i];
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	s.fd = fd;
	snprintf(s.sock_name, sizeof(s.sock_name), "%d.sock", (int)getpid());
	s.no_proc = (e = getenv("CRAC_TEST_CONTROL_NOPROC")) && !strcmp(e, "1");
	/* Our pid namespace (the inode of /proc/self/ns/pid): the name our
	 * socket takes where PID.sock is another's (step 5); unknown without
	 * /proc: then none. */
	struct stat nst;
	if (!s.no_proc && stat("/proc/self/ns/pid", &nst) == 0)
		snprintf(s.ns_name, sizeof(s.ns_name), "%d.pidns-%lu.sock", (int)getpid(), (unsigned long)nst.st_ino);
	/* CRAC_TEST_CONTROL_TMP_AGE_MS (tests): the age of a stale temporary */
	s.tmp_age_ns = (int64_t)((e = getenv("CRAC_TEST_CONTROL_TMP_AGE_MS")) && *e ? strtol(e, NULL, 10)
				 : CONTROL_TMP_AGE_MS) * 1000000LL;
	if ((e = getenv("CRAC_TEST_CONTROL_SWAP")) && *e && getenv("CRAC_TEST_CONTROL_SWAP_TO") &&
	    snprintf(s.swap_aside, sizeof(s.swap_aside), "%s.swapped", e) < (int)sizeof(s.swap_aside)) {
		s.swap = e;
		s.swap_to = getenv("CRAC_TEST_CONTROL_SWAP_TO");
	}
	rc = setup_bounded(&s, deadline_ns, msg, msglen);
	if (rc != -ETIMEDOUT && s.swept.removed)
		crac__log(CRAC_LOG_INFO, "control: %u stale temporar%s removed from %s (PID-RANDOM.tmp or .stale of "
			  "a process killed during its setup: its pid dead, nothing listening)", s.swept.removed,
			  s.swept.removed == 1 ? "y" : "ies", dirs[s.cand]);
	if (rc != -ETIMEDOUT && s.swept.err < 0)
		crac__log(CRAC_LOG_WARN, "control: stale temporaries of %s not looked for: reading it: %s",
			  dirs[s.cand], strerror(-s.swept.err));
	if (s.cand >= 0)
		snprintf(sock_path, sizeof(sock_path), "%s", s.addrs[s.cand].sun_path);
	if (rc == -ETIMEDOUT && msg[0]) {
		*said = true;
		goto fail;
	}
	if (rc < 0 && (s.step == ST_WALK || s.step == ST_MKDIR || s.step == ST_LSTAT_DIR)) {
		/* the directory: not made, refused, or a component on its way */
		walk_why(&s.walk, dirs[s.cand], s.uid, msg, msglen);
		*said = true;
	} else if (rc < 0 && s.step == ST_NOPROC) {
		snprintf(msg, msglen, "refusing %s: /proc is not mounted here (or /proc/self/fd does not lead to the "
			 "directory checked), so the socket cannot be bound through the directory's descriptor, and "
			 "%s on its way may be replaced by another uid (bound by its path, the socket could land "
			 "where that uid says)", dirs[s.cand], s.walk.untrusted);
		*said = true;
	} else if (rc < 0 && s.step >= ST_STALE) {
		/* what stood in the way, by its path: PID.sock, the temporary */
		char what[PATH_MAX + 100];
		setup_what(&s, what, sizeof(what));
		snprintf(msg, msglen, "%s: %s%s", what, strerror(-rc),
			 rc == -EEXIST ? " (a live socket answers there)" : "");
		*said = true;
	}
	sock_pid = 0;   /* an earlier start's identity must not name it */
	if (rc < 0)
		goto fail;
	/* listening, then in place under its own name (step 5) */
	if (listen(fd, 16) < 0) {
		rc = -errno;
		if (s.ours)
			remove_tmp(&s);
		goto fail;
	}
	bool at_ns = false;
	if (s.ours && (rc = place_socket(&s, deadline_ns, msg, msglen, &at_ns)) < 0) {
		*said = true;
		goto fail;
	}
	snprintf(sock_file, sizeof(sock_file), "%s", at_ns ? s.ns_name : s.sock_name);
	if (at_ns) {
		snprintf(sock_path, sizeof(sock_path), "%s/%s", dirs[s.cand], s.ns_name);
		crac__log(CRAC_LOG_INFO, "control: a live socket of another process answers at %s/%s (one of pid "
			  "%d in another pid namespace sharing the directory): listening at %s", dirs[s.cand],
			  s.sock_name, (int)getpid(), sock_path);
	}
	if (s.ours) {
		sock_dev = (dev_t)s.dev;
		sock_ino = (ino_t)s.ino;
		sock_pid = getpid();
		snprintf(sock_dir, sizeof(sock_dir), "%s", dirs[s.cand]);
		sock_dir_dev = s.dir_dev;
		sock_dir_ino = s.dir_ino;
		sock_dir_uid = s.uid;
	}
	if ((rc = listener_go(fd, true)) < 0) {
		remove_socket();
		goto fail;
	}
	listen_uid = s.uid;
	last_path[0] = 0;
	pthread_mutex_unlock(&ctl_lock);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	/* the path tried, for crac_control_path (no second look at a file
	 * system that did not answer) */
	snprintf(last_path, sizeof(last_path), "%s", sock_path);
	last_pid = getpid();
	sock_path[0] = 0;
	if (!msg[0])
		snprintf(msg, msglen, "%s", strerror(-rc));
	pthread_mutex_unlock(&ctl_lock);
	return rc;
}

int crac__control_start_msg(int64_t deadline_ns, char *msg, size_t msglen)
{
	bool said;

	return control_start(deadline_ns, msg, msglen, &said);
}

int crac_control_start(void)
{
	char msg[PATH_MAX + 300];
	bool said;
	int rc = control_start(0, msg, sizeof(msg), &said);

	if (rc < 0 && said)
		crac__log(CRAC_LOG_ERROR, "control: %s", msg);
	return rc;
}

/*
 * Called with ctl_lock held, the endpoint running: stops its listener
 * thread and closes the wake pipe and the supervisor's watch. park: the
 * listening socket stays open and bound (still one of crac's own
 * descriptors, kept out of an image), in parked_fd; else it is closed and
 * its file removed.
 */
static void listener_halt(bool park)
{
	if (write(wake_pipe[1], "x", 1) < 0) {
		/* a full pipe still wakes the listener */
	}
	pthread_join(listener, NULL);
	crac__internal_fd(wake_pipe[0], false);
	crac__internal_fd(wake_pipe[1], false);
	close(wake_pipe[0]);
	close(wake_pipe[1]);
	wake_pipe[0] = wake_pipe[1] = -1;
	sup_watch_close();
	if (park) {
		parked_fd = listen_fd;
	} else {
		crac__internal_fd(listen_fd, false);
		close(listen_fd);
		remove_socket();
	}
	listen_fd = -1;
}

int crac_control_stop(void)
{
	pthread_mutex_lock(&ctl_lock);
	if (listen_fd >= 0) {
		listener_halt(false);
	} else if (parked_fd >= 0) {
		crac__internal_fd(parked_fd, false);
		close(parked_fd);
		parked_fd = -1;
		remove_socket();
	}
	pthread_mutex_unlock(&ctl_lock);
	return 0;
}

/* ---- client ------------------------------------------------------------ */

/*
 * The client trusts nothing it finds in a directory: anybody may have
 * created /tmp/crac-UID first, a program may have put a symlink at the
 * socket's name, and whatever listens there may not be process PID. So:
 *  - the owner of process PID is its effective uid (/proc/PID/status);
 *  - the candidate directories are those the target could have chosen
 *    (own_dir() in the target): $CRAC_CONTROL_DIR (ours, then the target's
 *    from /proc/PID/environ), the target's $XDG_RUNTIME_DIR/crac,
 *    /run/user/UID/crac, /tmp/crac-UID;
 *  - a directory is used only if it is a real directory (opened with
 *    O_NOFOLLOW) owned by that uid or root and writable by nobody else;
 *  - PID.sock in it must be a socket (not a symlink) owned by that uid,
 *    or by root: a program started as root that dropped its privileges
 *    afterwards (a service's worker) keeps the endpoint it made as root,
 *    and only root can make a socket owned by root;
 *  - it is reached through the opened directory (/proc/self/fd/N/PID.sock),
 *    so no path component can be swapped in between;
 *  - the listener must be process PID with that uid, or root as above
 *    (SO_PEERCRED: the credentials it had when it listened, its pid as
 *    our namespace sees it), and, where pidfds live on pidfs, the very
 *    process PID named when the lookup began (its pidfd and the peer's,
 *    SO_PEERPIDFD: peer_is_target), checked before the request is sent;
 *  - a target in a pid namespace below ours named its socket with the
 *    pid it knows itself by (NSpid), and one in a mount namespace not
 *    ours made its directory in its own tree: looked for there first
 *    (its root, RESOLVE_IN_ROOT), then in ours (look_up).
 * A candidate that fails is skipped: nothing is sent to it. If none is
 * usable, the most telling reason is reported.
 */

#define MAX_CANDIDATES 7
#define ANSWER_CHUNK 16384

/* How telling a reason is: the higher, the more it explains the failure. */
enum why_rank { WHY_NONE, WHY_ABSENT, WHY_STALE, WHY_ACCESS, WHY_REFUSED, WHY_STUCK };

struct lookup {
	int pid;
	int inner;                /* its pid in its own pid namespace (proc_status) */
	bool nested;              /* that namespace is below ours: inner is not pid */
	int pidfd;                /* process pid, taken before the lookup; -1: none */
	int root;                 /* its root (/proc/PID/root, O_PATH) where its mount namespace is not
				   * ours (a container's): its directories are looked for there first; -1 */
	unsigned uid;             /* effective uid of process pid */
	enum why_rank rank;       /* of the reason kept in why / rc */
	int rc;
	char why[400];
	char looked[600];         /* the directories looked in, for the message */
};

/* Keeps the reason if it explains more than the one kept so far. */
static void note(struct lookup *l, enum why_rank rank, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void note(struct lookup *l, enum why_rank rank, int rc, const char *fmt, ...)
{
	va_list ap;

	if (rank <= l->rank)
		return;
	l->rank = rank;
	l->rc = rc;
	va_start(ap, fmt);
	vsnprintf(l->why, sizeof(l->why), fmt, ap);
	va_end(ap);
}

/* What /proc/PID/status tells of process pid: its effective uid (the
 * second field of "Uid:"; the owner of /proc/PID is root for a
 * non-dumpable process) and its pid in its own pid namespace (the last
 * field of "NSpid:", *inner; *nested: the line has more than one field, the
 * process is in a pid namespace below ours and knows itself by *inner).
 * Without an NSpid line (a kernel before 4.1): *inner = pid, not nested. */
static int proc_status(int pid, unsigned *uid, int *inner, bool *nested)
{
	char path[64], line[512];
	unsigned r, e;
	FILE *f;
	int rc = -EPROTO;

	*inner = pid;
	*nested = false;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (!(f = fopen(path, "re")))
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Uid: %u %u", &r, &e) == 2) {
			*uid = e;
			rc = 0;
		} else if (strncmp(line, "NSpid:", 6) == 0) {
			/* "NSpid:\tOUTER\t...\tINNER" (ours first) */
			char *p = line + 6, *end;
			long v, first = 0, last = 0;
			int n = 0;
			while ((v = strtol(p, &end, 10)), end != p) {
				if (n++ == 0)
					first = v;
				last = v;
				p = end;
			}
			/* (the first is pid, unless this /proc is another pid
			 * namespace's: then nothing is known of it) */
			if (n > 1 && first == pid && last > 0 && last <= INT_MAX) {
				*inner = (int)last;
				*nested = true;
			}
		}
	}
	fclose(f);
	return rc;
}

/*
 * A target in a user namespace not ours (a rootless container: unshare -U)
 * sees our uid as its namespace maps it (/proc/PID/uid_map, world-readable;
 * its second column in our namespace's terms when read from another), and
 * an unmapped uid as the overflow uid, which its owner check refuses (only
 * its own uid or root). So a uid of ours it does not map (root, for a
 * container its user made) is refused here, in one line, before anything
 * is sent, unless it is the target's own (unmapped too, its uid there is
 * the overflow uid as well: taken for itself): 0 if our euid is mapped
 * there, is the target's, or the namespace is ours, else -EPERM with err.
 */
static int userns_check(const struct lookup *l, char *err, size_t errlen)
{
	char path[64], line[128];
	struct stat them, us;
	unsigned long in, out, count;
	unsigned me = (unsigned)geteuid();
	bool mapped = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/ns/user", l->pid);
	if (stat(path, &them) < 0 || stat("/proc/self/ns/user", &us) < 0 ||
	    (them.st_dev == us.st_dev && them.st_ino == us.st_ino) || me == l->uid)
		return 0;   /* ours, not to be known, or our uid: the target's own check decides */
	snprintf(path, sizeof(path), "/proc/%d/uid_map", l->pid);
	if (!(f = fopen(path, "re")))
		return 0;
	while (!mapped && fgets(line, sizeof(line), f))
		mapped = sscanf(line, "%lu %lu %lu", &in, &out, &count) == 3 && me >= out && me - out < count;
	fclose(f);
	if (mapped)
		return 0;
	snprintf(err, errlen, "process %d is in a user namespace not ours (/proc/%d/ns/user) that does not map "
		 "uid %u (/proc/%d/uid_map): it would take us for its overflow uid and refuse; control it as "
		 "uid %u, its owner", l->pid, l->pid, me, l->pid, l->uid);
	return -EPERM;
}

/* The value of `key` in the initial environment of process pid (readable by
 * its owner and root only); false if absent or unreadable. */
static bool proc_env(int pid, const char *key, char *buf, size_t len)
{
	char path[64], *env = NULL;
	size_t cap = 0, klen = strlen(key);
	ssize_t n;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	if (!(f = fopen(path, "re")))
		return false;
	while (!found && (n = getdelim(&env, &cap, 0, f)) > 0) {
		if ((size_t)n > klen && strncmp(env, key, klen) == 0 && env[klen] == '=') {
			found = (size_t)n - klen - 1 < len;
			if (found)
				snprintf(buf, len, "%s", env + klen + 1);
		}
	}
	free(env);
	fclose(f);
	return found && buf[0];
}

/*
 * The client's looks at a candidate directory (its open, fstat, the lstat
 * of PID.sock, the connect through it) may never return on a file system
 * that does not answer (an NFS or FUSE server gone): `crac checkpoint PID`
 * would wait for ever. So they are made by a helper of image/bounded.c
 * (raw system calls) and waited for CONTROL_SETUP_MS at most
 * (CRAC_TEST_SYNC_GRACE_MS in tests); given up, the lookup ends naming
 * the path. A descriptor the helper's late call leaves in our table is
 * close-on-exec, and the client (crac checkpoint) exits soon after. The
 * calls write their results into the helper's own stack (bounded.h: it
 * stays mapped until the helper is reaped), copied into the caller's
 * struct only when the call returned: one given up on (a stat answered
 * late by its server) would otherwise write into the caller's frame,
 * long gone and reused by then.
 *
 * CRAC_TEST_SLOW_FS=lookup:MS (tests only): the helper sleeps MS ms
 * before the open of the directory.
 */
struct client_look {
	/* in */
	int connect;                 /* 0: open, fstat, lstat of the socket; 1: connect fd to addr */
	const char *dir, *name;
	int root;                    /* -1, or dir is looked up in this root (RESOLVE_IN_ROOT) */
	int fd;
	struct sockaddr_un addr;
	long slow_ms;
	/* out */
	int res;                     /* 0 or -errno of the step that failed */
	int dfd;                     /* the directory, O_PATH */
	int step;                    /* 0 open, 1 fstat, 2 lstat of the socket, 3 connect */
	struct stat dst, sst;
};

static void client_look_run(void *arg)
{
	struct client_look *c = arg;
	long r;

	if (c->connect) {
		c->step = 3;
		c->res = (int)crac_raw_syscall3(SYS_connect, c->fd, (long)&c->addr, sizeof(c->addr));
		return;
	}
	crac_bounded_test_sleep(c->slow_ms);
	c->step = 0;
	if (c->root >= 0) {
		/* in the target's root: every "/", "..", and symbolic link on
		 * the way resolved within it (never out into ours), no
		 * /proc magic link followed */
		struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
					.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
		r = crac_raw_syscall5(SYS_openat2, c->root, (long)c->dir, (long)&how, sizeof(how), 0);
	} else
		r = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)c->dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (r < 0) {
		c->res = (int)r;
		return;
	}
	c->dfd = (int)r;
	c->step = 1;
	struct stat st;   /* (the helper's stack: see above) */
	if ((r = crac_raw_syscall5(SYS_fstat, c->dfd, (long)&st, 0, 0, 0)) == 0) {
		c->dst = st;
		c->step = 2;
		r = crac_raw_syscall5(SYS_newfstatat, c->dfd, (long)c->name, (long)&st, AT_SYMLINK_NOFOLLOW, 0);
		if (r == 0)
			c->sst = st;
	}
	c->res = (int)r;
}

/* Runs c's step by a helper, waited for CONTROL_SETUP_MS at most: c->res,
 * or -ETIMEDOUT with the reason noted in l (naming the path). Without a
 * helper (a seccomp filter) in this thread, unbounded. */
static int client_look(struct lookup *l, struct client_look *c, const char *edir)
{
	static const char *const what[] = { "the open of", "the fstat of", "the lstat of", "the connect to" };
	struct crac_bounded helper;
	const char *g = getenv("CRAC_TEST_SYNC_GRACE_MS"), *e = getenv("CRAC_TEST_SLOW_FS");
	long bound_ms = g ? strtol(g, NULL, 10) : CONTROL_SETUP_MS;
	int64_t waited;

	c->slow_ms = e && !strncmp(e, "lookup:", 7) ? strtol(e + 7, NULL, 10) : 0;
	c->res = -EINPROGRESS;
	c->step = c->connect ? 3 : 0;   /* (before the helper runs: what a message names) */
	if (!c->connect)
		c->dfd = -1;
	if (crac_bounded_start(&helper, client_look_run, c, NULL) < 0) {
		client_look_run(c);
		return c->res;
	}
	if (crac_bounded_wait(&helper, crac_bounded_mono_ns() + bound_ms * 1000000LL, 0, &waited) == 0)
		return c->res;
	note(l, WHY_STUCK, -ETIMEDOUT, "%s %s%s%s did not return after %lld ms (the lookup of the control socket "
	     "of process %d, %ld ms at most): its file system does not answer; given up", what[c->step], edir,
	     c->step >= 2 ? "/" : "", c->step >= 2 ? c->name : "", (long long)waited, l->pid, bound_ms);
	return -ETIMEDOUT;
}

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77   /* Linux 6.5 */
#endif
#define PIDFS_MAGIC_NR 0x50494446   /* "PIDF": pidfds of Linux 6.9 on, one inode per process */

/*
 * The listener behind fd (SO_PEERCRED said pid l->pid) is the very process
 * l->pidfd was taken of before the lookup, not another one given its number
 * since (it exited meanwhile): the pidfd of the peer (SO_PEERPIDFD) and
 * ours are the same inode of pidfs. Where the kernel cannot tell (no
 * SO_PEERPIDFD, pidfds without pidfs, no pidfd taken), the pid alone
 * counts, as before. False with the reason noted in l.
 */
static bool peer_is_target(struct lookup *l, int fd, const char *edir, const char *name)
{
	struct statfs sf;
	struct stat a, b;
	socklen_t len = sizeof(int);
	int pfd = -1;

	if (l->pidfd < 0)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pfd, &len) < 0) {
		if (errno == ENOPROTOOPT || errno == EOPNOTSUPP)
			return true;
		if (errno == ESRCH || errno == EINVAL)
			note(l, WHY_REFUSED, -EPERM, "control socket %s/%s: the process that listened there (pid %d) "
			     "is gone, its socket kept open by another: refused", edir, name, l->pid);
		else
			note(l, WHY_REFUSED, -errno, "control socket %s/%s: SO_PEERPIDFD: %s", edir, name,
			     strerror(errno));
		return false;
	}
	bool told = fstatfs(pfd, &sf) == 0 && (unsigned long)sf.f_type == PIDFS_MAGIC_NR && fstat(pfd, &a) == 0 &&
		    fstat(l->pidfd, &b) == 0;
	close(pfd);
	if (!told || (a.st_dev == b.st_dev && a.st_ino == b.st_ino))
		return true;
	note(l, WHY_REFUSED, -EPERM, "control socket %s/%s was answered by a process of pid %d that is not process "
	     "%d as the lookup began (that one exited, its number was given to another): refused", edir, name,
	     l->pid, l->pid);
	return false;
}

/*
 * Tries one candidate directory. Returns a connected socket whose peer is
 * verified, or -1 with the reason noted in l (-ETIMEDOUT: a look given up
 * on, the lookup ends).
 */
static int try_dir(struct lookup *l, const char *dir, const char *name, bool in_root)
{
	char edir[240], via[80];
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct stat dst, sst;
	int dfd, fd = -1;

	/* it may come from the target's environment; in the target's root:
	 * named by the path that leads there */
	int ro = in_root ? snprintf(edir, sizeof(edir), "/proc/%d/root", l->pid) : 0;
	crac__escaped(dir, edir + ro, sizeof(edir) - (size_t)ro);
	if (strstr(name, ".pidns-") == NULL && strlen(l->looked) + strlen(edir) + 3 < sizeof(l->looked))
		snprintf(l->looked + strlen(l->looked), sizeof(l->looked) - strlen(l->looked),
			 "%s%s", l->looked[0] ? ", " : "", edir);

	/* O_PATH: no read permission needed, and the owner/mode checks are
	 * ours; then is there anything at PID.sock? (Not following a symlink
	 * there.) Bounded (client_look). */
	struct client_look c = { .dir = dir, .name = name, .root = in_root ? l->root : -1 };
	int rc = client_look(l, &c, edir);
	if (rc == -ETIMEDOUT)
		return -ETIMEDOUT;   /* (a late descriptor: see client_look) */
	dfd = c.dfd;
	dst = c.dst;
	sst = c.sst;
	if (rc < 0 && c.step == 0) {
		if (rc == -ELOOP || rc == -ENOTDIR)
			note(l, WHY_ABSENT, -ENOENT, "control directory %s is %s: not used", edir,
			     rc == -ELOOP ? "a symlink" : "not a directory");
		else if (rc == -EACCES)
			note(l, WHY_ACCESS, -EACCES, "permission denied reaching %s: only the owner of "
			     "process %d or root may control it", edir, l->pid);
		else if (rc != -ENOENT)
			note(l, WHY_ABSENT, rc, "control directory %s: %s", edir, strerror(-rc));
		return -1;
	}
	if (rc < 0 && c.step == 1)
		goto out;
	if (rc < 0) {
		if (rc == -EACCES)
			note(l, WHY_ACCESS, -EACCES, "permission denied reaching %s/%s: only the owner of "
			     "process %d or root may control it", edir, name, l->pid);
		goto out;
	}
	if ((dst.st_uid != l->uid && dst.st_uid != 0) || (dst.st_mode & 022)) {
		note(l, WHY_REFUSED, -EPERM, "control directory %s is owned by uid %u with mode %04o "
		     "(it must belong to uid %u, the owner of process %d, or root, and be writable "
		     "by nobody else): refused", edir, (unsigned)dst.st_uid,
		     (unsigned)(dst.st_mode & 07777), l->uid, l->pid);
		goto out;
	}
	if (S_ISLNK(sst.st_mode) || !S_ISSOCK(sst.st_mode)) {
		note(l, WHY_REFUSED, -EPERM, "control socket %s/%s is %s: refused", edir, name,
		     S_ISLNK(sst.st_mode) ? "a symlink" : "not a socket");
		goto out;
	}
	if (sst.st_uid != l->uid && sst.st_uid != 0) {
		note(l, WHY_REFUSED, -EPERM, "control socket %s/%s is owned by uid %u, not uid %u "
		     "(the owner of process %d) or root: refused", edir, name, (unsigned)sst.st_uid, l->uid, l->pid);
		goto out;
	}

	/* Through the directory we checked: no path component is looked up again. */
	snprintf(via, sizeof(via), "/proc/self/fd/%d/%s", dfd, name);
	strcpy(a.sun_path, via);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		note(l, WHY_REFUSED, -errno, "socket: %s", strerror(errno));
		goto out;
	}
	c.connect = 1;
	c.fd = fd;
	c.addr = a;
	if ((rc = client_look(l, &c, edir)) < 0) {
		int e = -rc;
		if (rc == -ETIMEDOUT) {   /* given up: said; the late connect holds its own reference */
			close(fd);
			close(dfd);
			return -ETIMEDOUT;
		}
		if (e == ECONNREFUSED || e == ENOENT)
			note(l, WHY_STALE, -ECONNREFUSED, "process %d has no control endpoint: nothing "
			     "listens at %s/%s (enable it with crac_control_start() or CRAC_CONTROL=1, "
			     "or start the program with `crac run`)", l->pid, edir, name);
		else if (e == EACCES || e == EPERM)
			note(l, WHY_ACCESS, -e, "permission denied connecting to %s/%s: only the owner of "
			     "process %d or root may control it", edir, name, l->pid);
		else
			note(l, WHY_STALE, -e, "cannot connect to %s/%s: %s", edir, name, strerror(e));
		goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		note(l, WHY_REFUSED, -errno, "control socket %s/%s: SO_PEERCRED: %s", edir, name,
		     strerror(errno));
		goto fail;
	}
	if (cred.pid != l->pid) {
		char as[64] = "";
		if (l->nested)
			snprintf(as, sizeof(as), " (pid %d in its pid namespace)", l->inner);
		note(l, WHY_REFUSED, -EPERM, "control socket %s/%s was answered by pid %d, not %d%s%s: refused",
		     edir, name, (int)cred.pid, l->pid, as,
		     cred.pid == 0 ? " (a process of another pid namespace, not below ours)" : "");
		goto fail;
	}
	if (cred.uid != l->uid && cred.uid != 0) {
		note(l, WHY_REFUSED, -EPERM, "control socket %s/%s was answered by uid %u, not uid %u "
		     "(the owner of process %d) or root: refused", edir, name, (unsigned)cred.uid, l->uid, l->pid);
		goto fail;
	}
	if (!peer_is_target(l, fd, edir, name))
		goto fail;
	close(dfd);
	return fd;
fail:
	close(fd);
	fd = -1;
out:
	close(dfd);
	return fd;
}

/* connect_to's lookup, with l (pid, pidfd) filled in as it goes. */
static int look_up(struct lookup *l, char *err, size_t errlen)
{
	int pid = l->pid;
	char cand[MAX_CANDIDATES][256], v[200], name[32], ns_name[48] = "";
	const char *d;
	int n = 0, rc, fd;
	struct stat nst;

	if ((rc = proc_status(pid, &l->uid, &l->inner, &l->nested)) < 0) {
		if (rc == -ENOENT)
			snprintf(err, errlen, "no process %d", pid);
		else
			snprintf(err, errlen, "cannot read /proc/%d/status: %s", pid, strerror(-rc));
		return rc;
	}
	if ((rc = userns_check(l, err, errlen)) < 0)
		return rc;
	/* the names it may listen at: N.sock, else N.pidns-INO.sock with the
	 * inode of its pid namespace (setup_steps, step 5), N the number it
	 * knows itself by (getpid() there). In a pid namespace below ours
	 * (a container seen from its host) that is its last NSpid, not pid,
	 * and INO its namespace's, where we may look at it (/proc/PID/ns/pid:
	 * its owner and root); in ours, pid itself, and INO the target's,
	 * else ours (the same). Whatever answers at either name is taken only
	 * if it is process pid itself (SO_PEERCRED, translated into our
	 * namespace by the kernel, and its pidfd: try_dir): in a directory
	 * shared by several pid namespaces, N.sock may be another's. */
	bool ns_known = false;
	snprintf(name, sizeof(name), "%d.sock", l->inner);
	char nspath[40];
	snprintf(nspath, sizeof(nspath), "/proc/%d/ns/pid", pid);
	if (stat(nspath, &nst) == 0 || (!l->nested && stat("/proc/self/ns/pid", &nst) == 0)) {
		snprintf(ns_name, sizeof(ns_name), "%d.pidns-%lu.sock", l->inner, (unsigned long)nst.st_ino);
		ns_known = true;
	}
#define ADD(...) do { if (n < MAX_CANDIDATES) snprintf(cand[n++], sizeof(cand[0]), __VA_ARGS__); } while (0)
	if ((d = getenv("CRAC_CONTROL_DIR")) && *d)
		ADD("%s", d);
	if (proc_env(pid, "CRAC_CONTROL_DIR", v, sizeof(v)))
		ADD("%s", v);
	if (proc_env(pid, "XDG_RUNTIME_DIR", v, sizeof(v)) && v[0] == '/')
		ADD("%s/crac", v);
	ADD("/run/user/%u/crac", l->uid);
	ADD("/tmp/crac-%u", l->uid);
	if (l->uid != 0) {
		/* where it listens if it started as root and dropped to uid */
		ADD("/run/user/0/crac");
		ADD("/tmp/crac-0");
	}
#undef ADD
	/* A target whose mount namespace is not ours (a container with a
	 * root or mounts of its own) made its directory in its own view of
	 * the file system: each candidate is looked for in its root first
	 * (/proc/PID/root, readable by its owner and root only), then in
	 * ours (a directory shared with the host). */
	char mnt[40];
	struct stat mst, ours;
	snprintf(mnt, sizeof(mnt), "/proc/%d/ns/mnt", pid);
	if (stat(mnt, &mst) == 0 && stat("/proc/self/ns/mnt", &ours) == 0 &&
	    (mst.st_dev != ours.st_dev || mst.st_ino != ours.st_ino)) {
		char rp[40];
		snprintf(rp, sizeof(rp), "/proc/%d/root", pid);
		l->root = open(rp, O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	fd = -1;
	for (int i = 0; i < n && fd != -ETIMEDOUT; i++) {
		bool seen = false;
		for (int j = 0; j < i && !seen; j++)
			seen = strcmp(cand[i], cand[j]) == 0;
		if (seen)
			continue;
		for (int in_root = l->root >= 0; in_root >= 0 && fd != -ETIMEDOUT; in_root--) {
			if ((fd = try_dir(l, cand[i], name, in_root)) >= 0)
				return fd;
			/* PID.sock another's (a process of that pid number
			 * in another pid namespace sharing the directory):
			 * the target's own is PID.pidns-INO.sock */
			if (fd != -ETIMEDOUT && ns_name[0] && (fd = try_dir(l, cand[i], ns_name, in_root)) >= 0)
				return fd;
		}
		/* (-ETIMEDOUT: given up, said; no further look after one
		 * that did not return) */
	}
	if (l->rank > WHY_ABSENT) {
		snprintf(err, errlen, "%s", l->why);
		return l->rc;
	}
	/* An image checkpoint closes the endpoint while it writes the image
	 * (take_snapshot: the socket is not carried): a process in the middle
	 * of one looks exactly like one without an endpoint, so both are said. */
	char as[300] = "";
	if (l->nested && ns_known)
		snprintf(as, sizeof(as), " for %s and %s (it is pid %d in its pid namespace)", name, ns_name,
			 l->inner);
	else if (l->nested)
		snprintf(as, sizeof(as), " for %s (it is pid %d in its pid namespace; %s: its pid namespace, "
			 "and so its other name, cannot be looked at here)", name, l->inner, nspath);
	snprintf(err, errlen, "process %d has no control endpoint (looked%s in %s%s%s; enable it with "
		 "crac_control_start() or CRAC_CONTROL=1, or start the program with `crac run`), or it is "
		 "writing an image right now (its endpoint is closed until the image is written: try again then)",
		 pid, as, l->looked, l->rank ? "; " : "", l->rank ? l->why : "");
	return -ENOENT;
}

/* Connects to the verified control socket of process pid (pidfd: taken
 * before, or -1), or returns a negative errno with one line in err. */
static int connect_to(int pid, int pidfd, char *err, size_t errlen)
{
	struct lookup l = { .pid = pid, .pidfd = pidfd, .root = -1 };
	int fd = look_up(&l, err, errlen);

	if (l.root >= 0)
		close(l.root);
	return fd;
}

/* How long a connection closed without its STATUS waits for the end of a
 * target that is exiting (see exiting()): the socket closes as the process
 * exits, its exit is seen a moment later. */
#define CLOSED_EXIT_WAIT_MS 500
#define PF_EXITING_FLAG 0x00000004u   /* include/linux/sched.h PF_EXITING */

/*
 * Is process pid on its way out, as far as /proc/PID/stat tells (or can it
 * not tell)? Its socket closes only once every thread of it has passed
 * exit_files in do_exit, and each thread sets PF_EXITING before that: at
 * the end of a connection closed because the process exits, its leader
 * shows PF_EXITING (field 9, flags) or is a zombie (state Z or X) already.
 * A process that closed the connection and lives on (a refusal) shows
 * neither: no wait for its end then.
 */
static bool exiting(int pid)
{
	char buf[1024];
	unsigned long flags = 0;
	char state = 0;
	/* state ppid pgrp session tty_nr tpgid flags (gone, or hidden: its
	 * pidfd says which) */
	const char *f = crac_img_proc_stat(pid, buf, sizeof(buf));
	if (!f || sscanf(f, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) != 2)
		return true;
	return state == 'Z' || state == 'X' || (flags & PF_EXITING_FLAG);
}

/*
 * The connection to process pid closed without an answer: why, into err.
 * The process exited (its pidfd, taken before the request, readable at
 * once, or within CLOSED_EXIT_WAIT_MS when it is exiting): said, with its
 * exit status or signal when it is our child (waitid WNOWAIT: left for
 * our own wait to reap); else it refused (its stderr says why), said at
 * once (it used to wait CLOSED_EXIT_WAIT_MS for every refusal).
 */
static void closed_why(int pid, int pidfd, char *err, size_t errlen)
{
	struct pollfd pf = { .fd = pidfd, .events = POLLIN };
	siginfo_t si;
	int n = 0;

	while (pidfd >= 0 && (n = poll(&pf, 1, 0)) < 0 && errno == EINTR)
		;
	while (pidfd >= 0 && n == 0 && exiting(pid) && (n = poll(&pf, 1, CLOSED_EXIT_WAIT_MS)) < 0 && errno == EINTR)
		n = 0;
	if (pidfd < 0 || n <= 0) {
		snprintf(err, errlen, "process %d closed the connection without an answer "
			 "(refused? its stderr says why)", pid);
		return;
	}
	memset(&si, 0, sizeof(si));
	if (syscall(SYS_waitid, P_PIDFD, pidfd, &si, WEXITED | WNOHANG | WNOWAIT, NULL) == 0 && si.si_pid == pid) {
		if (si.si_code == CLD_EXITED)
			snprintf(err, errlen, "process %d exited with status %d during the checkpoint, before it "
				 "answered", pid, si.si_status);
		else {
			const char *abbrev = si.si_status > 0 && si.si_status < 32 ? sigabbrev_np(si.si_status) : NULL;
			char name[24];
			if (abbrev)
				snprintf(name, sizeof(name), "SIG%s", abbrev);
			else
				snprintf(name, sizeof(name), "SIGRTMIN+%d", si.si_status - SIGRTMIN);
			snprintf(err, errlen, "process %d was killed by signal %d (%s) during the checkpoint, "
				 "before it answered", pid, si.si_status, name);
		}
		return;
	}
	snprintf(err, errlen, "process %d exited during the checkpoint, before it answered", pid);
}

int crac__control_request(int pid, const char *const *tokens, FILE *out, int *status,
			  char *err, size_t errlen)
{
	return crac__control_request_cb(pid, tokens, out, status, err, errlen, NULL, NULL);
}

/* Is this whole line a progress record ("PROGRESS ..." or "STATS ...")? */
static bool is_record(const char *line)
{
	return strncmp(line, "PROGRESS ", 9) == 0 || strncmp(line, "STATS ", 6) == 0;
}

int crac__control_request_cb(int pid, const char *const *tokens, FILE *out, int *status,
			     char *err, size_t errlen, void (*record)(void *arg, const char *line),
			     void *arg)
{
	char *line;
	size_t used = 0;
	bool got_status = false, bol = true;
	int fd, rc;
	FILE *in;

	/* the request line */
	char *req = malloc(MAX_REQUEST);
	if (!req)
		return -ENOMEM;
	for (size_t i = 0; tokens[i]; i++) {
		if (i)
			req[used++] = ' ';
		int n = escape(tokens[i], req + used, MAX_REQUEST - used - 2);
		if (n < 0) {
			free(req);
			snprintf(err, errlen, "request too long");
			return -E2BIG;
		}
		used += (size_t)n;
	}
	req[used++] = '\n';

	/* the target's pidfd, taken before the request: a connection closed
	 * without an answer is then told from a process that exited (see
	 * closed_why) */
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if ((fd = connect_to(pid, pidfd, err, errlen)) < 0) {
		free(req);
		if (pidfd >= 0)
			close(pidfd);
		return fd;
	}
	size_t off = 0;
	while (off < used) {
		ssize_t n = send(fd, req + off, used - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EPIPE;
			close(fd);
			free(req);
			if (pidfd >= 0)
				close(pidfd);
			snprintf(err, errlen, "sending the request to process %d: %s", pid, strerror(-rc));
			return rc;
		}
		off += (size_t)n;
	}
	free(req);
	in = fdopen(fd, "r");
	line = malloc(ANSWER_CHUNK);
	if (!in || !line) {
		if (in)
			fclose(in);
		else
			close(fd);
		free(line);
		if (pidfd >= 0)
			close(pidfd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/*
	 * Every line of the answer is the target's text: printed escaped. Read
	 * in bounded pieces (a line of any length costs no memory); "STATUS n"
	 * counts only at the start of a line.
	 */
	while (fgets(line, ANSWER_CHUNK, in)) {
		size_t len = strlen(line);
		bool eol = len && line[len - 1] == '\n';
		int st;

		if (eol)
			line[--len] = 0;
		if (bol && sscanf(line, "STATUS %d", &st) == 1) {
			*status = st;
			got_status = true;
			break;
		}
		if (record && bol && eol && is_record(line)) {
			record(arg, line);
			continue;
		}
		if (out) {
			crac__put_escaped(out, line);
			if (eol)
				fputc('\n', out);
		}
		bol = eol;
	}
	if (!bol && out)
		fputc('\n', out);
	free(line);
	fclose(in);
	if (!got_status) {
		closed_why(pid, pidfd, err, errlen);
		if (pidfd >= 0)
			close(pidfd);
		return -ECONNRESET;
	}
	if (pidfd >= 0)
		close(pidfd);
	return 0;
}

/*
 * Around an image snapshot the listener thread and its descriptors must not
 * be in the image: the endpoint is closed, and made again after (with the
 * new pid's socket in a restored process). A process whose effective uid is
 * no longer the one it made the endpoint with (a service that dropped root
 * after `crac run` started it) could not make it again in that directory:
 * its endpoint is parked instead, the listening socket kept open and bound
 * (requests wait in its backlog) and served again after. In a restored
 * process the parked socket is not there (the loader gave it no such
 * descriptor): a new endpoint is made, as for any other.
 */
bool crac__control_suspend(void)
{
	bool running;

	pthread_mutex_lock(&ctl_lock);
	running = listen_fd >= 0;
	if (running)
		listener_halt((unsigned)geteuid() != listen_uid);
	pthread_mutex_unlock(&ctl_lock);
	return running;
}

void crac__control_resume(bool was_running, bool restored)
{
	int rc = 0, fd;

	if (!was_running)
		return;
	pthread_mutex_lock(&ctl_lock);
	fd = parked_fd;
	parked_fd = -1;
	if (fd >= 0 && restored) {
		/* a new process: that number is not our socket (if it is
		 * anything), and the socket file is the old pid's */
		crac__internal_fd(fd, false);
		sock_path[0] = 0;
		fd = -1;
	}
	if (fd >= 0 && (rc = listener_go(fd, false)) < 0) {
		crac__internal_fd(fd, false);
		close(fd);
		remove_socket();
	}
	pthread_mutex_unlock(&ctl_lock);
	if (fd < 0)
		rc = crac_control_start();
	if (rc < 0)
		crac__log(CRAC_LOG_ERROR, "control: could not restart the control endpoint after the "
			  "checkpoint: %s", strerror(-rc));
}
