/*
 * control.c - the control endpoint: lets an operator trigger a checkpoint
 * from outside (`crac checkpoint PID`) and resume a paused process
 * (`crac restore --pid PID`).
 *
 * Security: the socket lives in a directory that must be ours and mode
 * 0700, the socket itself is 0600, and every connection's peer credentials
 * are checked (SO_PEERCRED): same uid or root, anything else is refused and
 * logged on stderr.
 *
 * Wire format: one request line, tokens separated by single spaces, each
 * token percent-escaped ("%20" space, "%25" percent, "%0A" newline):
 *     CHECKPOINT engine=pause keep=1 deadline=500 image=/path dry=0 force=0
 *     RESUME arg=first arg=second env=KEY=VALUE
 *     CHECK
 *     PING
 * The answer: any number of text lines, then "STATUS <int>" (enum
 * crac_outcome or a negative errno), then the server closes.
 */
#include "core/internal.h"
#include "runtime/checks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_REQUEST 65536
#define MAX_TOKENS 1024

/* ---- paths ------------------------------------------------------------- */

int crac__control_dir(unsigned uid, char *buf, size_t len)
{
	const char *d = getenv("CRAC_CONTROL_DIR");
	int n;

	if (d && *d)
		n = snprintf(buf, len, "%s", d);
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
	int rc = crac__control_dir(geteuid(), dir, sizeof(dir));

	if (!buf)
		return -EINVAL;
	return rc < 0 ? rc : path_in(dir, getpid(), buf, len);
}

int crac__control_path_of(int pid, char *buf, size_t len)
{
	char proc[64], dir[200];
	struct stat st;
	int rc;

	snprintf(proc, sizeof(proc), "/proc/%d", pid);
	if (stat(proc, &st) < 0)
		return -errno;
	if ((rc = crac__control_dir(st.st_uid, dir, sizeof(dir))) < 0)
		return rc;
	return path_in(dir, pid, buf, len);
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

static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static int listen_fd = -1;
static int wake_pipe[2] = { -1, -1 };
static pthread_t listener;
static char sock_path[256];

struct conn {
	struct crac_requester rq;
	int fd;
	bool done;
	char **tokens;     /* request, unescaped, NULL-terminated */
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
		fprintf(stderr, "crac: control: refused connection from pid %d uid %d: "
			"only uid %d or root may control process %d\n",
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
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&th, &attr, checkpoint_thread, c) != 0) {
			conn_write(fd, "crac: cannot start the checkpoint thread\n");
			rq_finish(&c->rq, -EAGAIN, NULL);
			conn_free(c);
		}
		pthread_attr_destroy(&attr);
	} else if (strcmp(verb, "CHECK") == 0) {
		crac_report *rep = NULL;
		int n = crac_check(&rep);
		if (n == 0)
			conn_write(fd, "crac: nothing stands in the way of a checkpoint\n");
		rq_finish(&c->rq, n < 0 ? n : n ? CRAC_ABORTED : CRAC_CONTINUED, rep);
		crac_report_free(rep);
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

static void *listen_thread(void *p)
{
	int lfd = listen_fd, wfd = wake_pipe[0];

	(void)p;
	for (;;) {
		struct pollfd pf[2] = { { .fd = lfd, .events = POLLIN }, { .fd = wfd, .events = POLLIN } };
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents)
			break;
		if (pf[0].revents & POLLIN) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				serve(fd);
		}
	}
	return NULL;
}

/* The directory must be a real directory of ours with mode 0700. */
static int check_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int e = -errno;
		fprintf(stderr, "crac: control: cannot create %s: %s\n", dir, strerror(-e));
		return e;
	}
	if (lstat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 07777) != 0700) {
		fprintf(stderr, "crac: control: refusing %s: it must be a directory owned by uid %d "
			"with mode 0700 (it is %s, uid %d, mode %04o)\n", dir, (int)geteuid(),
			S_ISDIR(st.st_mode) ? "a directory" : S_ISLNK(st.st_mode) ? "a symlink" : "not a directory",
			(int)st.st_uid, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* A socket file with our name: stale unless something live answers on it. */
static int clear_stale(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd, rc;

	if (access(path, F_OK) < 0)
		return 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strcpy(a.sun_path, path);
	rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	close(fd);
	if (rc == 0)
		return -EEXIST;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
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
	listen_fd = wake_pipe[0] = wake_pipe[1] = -1;
	sock_path[0] = 0;
	pthread_mutex_init(&ctl_lock, NULL);
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, after_fork_child);
}

int crac_control_start(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
	char dir[200];
	int rc, fd = -1;
	sigset_t all, old;

	pthread_mutex_lock(&ctl_lock);
	if (listen_fd >= 0) {
		pthread_mutex_unlock(&ctl_lock);
		return 0;
	}
	pthread_once(&atfork_once, register_atfork);
	if ((rc = crac__control_dir(geteuid(), dir, sizeof(dir))) < 0 ||
	    (rc = check_dir(dir)) < 0 ||
	    (rc = path_in(dir, getpid(), sock_path, sizeof(sock_path))) < 0 ||
	    (rc = clear_stale(sock_path)) < 0)
		goto fail;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	strcpy(a.sun_path, sock_path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    chmod(sock_path, 0600) < 0 || listen(fd, 16) < 0 ||
	    pipe2(wake_pipe, O_CLOEXEC) < 0) {
		rc = -errno;
		unlink(sock_path);
		goto fail;
	}
	listen_fd = fd;
	crac__internal_fd(listen_fd, true);
	crac__internal_fd(wake_pipe[0], true);
	crac__internal_fd(wake_pipe[1], true);
	/* The listener must not take the application's signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&listener, NULL, listen_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		close(wake_pipe[0]);
		close(wake_pipe[1]);
		wake_pipe[0] = wake_pipe[1] = -1;
		listen_fd = -1;
		unlink(sock_path);
		goto fail;
	}
	pthread_mutex_unlock(&ctl_lock);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	sock_path[0] = 0;
	pthread_mutex_unlock(&ctl_lock);
	return rc;
}

int crac_control_stop(void)
{
	pthread_mutex_lock(&ctl_lock);
	if (listen_fd < 0) {
		pthread_mutex_unlock(&ctl_lock);
		return 0;
	}
	if (write(wake_pipe[1], "x", 1) < 0) {
		/* a full pipe still wakes the listener */
	}
	pthread_join(listener, NULL);
	crac__internal_fd(listen_fd, false);
	crac__internal_fd(wake_pipe[0], false);
	crac__internal_fd(wake_pipe[1], false);
	close(listen_fd);
	close(wake_pipe[0]);
	close(wake_pipe[1]);
	listen_fd = wake_pipe[0] = wake_pipe[1] = -1;
	unlink(sock_path);
	sock_path[0] = 0;
	pthread_mutex_unlock(&ctl_lock);
	return 0;
}

/* ---- client ------------------------------------------------------------ */

int crac__control_request(int pid, const char *const *tokens, FILE *out, int *status,
			  char *err, size_t errlen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char path[256], *line = NULL;
	size_t cap = 0, used = 0;
	bool got_status = false;
	int fd, rc;
	FILE *in;

	rc = crac__control_path_of(pid, path, sizeof(path));
	if (rc == -ENOENT) {
		snprintf(err, errlen, "no process %d", pid);
		return rc;
	} else if (rc < 0) {
		snprintf(err, errlen, "cannot find the control socket of process %d: %s", pid, strerror(-rc));
		return rc;
	}
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

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		free(req);
		snprintf(err, errlen, "socket: %s", strerror(-rc));
		return rc;
	}
	strcpy(a.sun_path, path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		rc = -errno;
		if (rc == -ENOENT || rc == -ECONNREFUSED)
			snprintf(err, errlen, "process %d has no control endpoint at %s (enable it with "
				 "crac_control_start() or CRAC_CONTROL=1, or start the program with `crac run`)",
				 pid, path);
		else if (rc == -EACCES || rc == -EPERM)
			snprintf(err, errlen, "permission denied connecting to %s: only the owner of process %d "
				 "or root may control it", path, pid);
		else
			snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(-rc));
		close(fd);
		free(req);
		return rc;
	}
	size_t off = 0;
	while (off < used) {
		ssize_t n = send(fd, req + off, used - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = -errno;
			close(fd);
			free(req);
			snprintf(err, errlen, "sending the request to %s: %s", path, strerror(-rc));
			return rc;
		}
		off += (size_t)n;
	}
	free(req);
	in = fdopen(fd, "r");
	if (!in) {
		close(fd);
		return -ENOMEM;
	}
	while (getline(&line, &cap, in) > 0) {
		int st;
		if (sscanf(line, "STATUS %d", &st) == 1) {
			*status = st;
			got_status = true;
			break;
		}
		if (out)
			fputs(line, out);
	}
	free(line);
	fclose(in);
	if (!got_status) {
		snprintf(err, errlen, "process %d closed the connection without an answer "
			 "(refused? its stderr says why)", pid);
		return -ECONNRESET;
	}
	return 0;
}

bool crac__control_suspend(void)
{
	bool running;

	pthread_mutex_lock(&ctl_lock);
	running = listen_fd >= 0;
	pthread_mutex_unlock(&ctl_lock);
	if (running)
		crac_control_stop();
	return running;
}

void crac__control_resume(bool was_running)
{
	int rc;

	if (was_running && (rc = crac_control_start()) < 0)
		fprintf(stderr, "crac: control: could not restart the control endpoint after the "
			"checkpoint: %s\n", strerror(-rc));
}
