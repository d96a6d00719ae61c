/* SPDX-License-Identifier: MIT */
/*
 * supervise.c - warm-up triggers and the small supervisor behind them
 * (`crac run` with a --checkpoint-* option, `crac start`).
 *
 * Without a trigger `crac run` execs the program: same pid. With one, crac
 * forks the program and stays as its parent, a supervisor that:
 *   - forwards HUP, INT, QUIT, TERM, USR1, USR2, WINCH, ALRM, CONT and TSTP
 *     to the program (but the --checkpoint-on signal, which it keeps), and
 *     ends as the program ended (same exit status; killed by a signal: the
 *     same signal, raised on itself);
 *   - fires the triggers: --checkpoint-after (time since the start),
 *     --checkpoint-when-listening (the first time the program has a TCP
 *     socket listening on that port: /proc/PID/net/tcp{,6} and its fds,
 *     every 10 ms), --checkpoint-on-ready (the program sent READY=1) and
 *     --checkpoint-on SIGNAL (sent to the supervisor; any number of times).
 *     The first three fire once in all: the first that happens. The
 *     checkpoint is an ordinary control request (`crac checkpoint PID`) on
 *     a thread of its own; its answer goes to our stderr. One that fails
 *     prints the report and the program keeps running cold;
 *   - relays sd_notify: when $NOTIFY_SOCKET is set (systemd Type=notify)
 *     or with --checkpoint-on-ready, the program gets a NOTIFY_SOCKET of
 *     ours (root's: a datagram socket any user may reach, the program may
 *     drop its privileges first; another user's: that user's only; only messages of the program and the processes it
 *     started are taken, by their sender's credentials: notify_open) and
 *     every message it sends there goes on to the outer NOTIFY_SOCKET, without
 *     MAINPID= lines: the supervisor is the service's main PID (MAINPID),
 *     since systemd accepts notifications from the main PID only
 *     (NotifyAccess=main) and the program is not it;
 *   - after a restore (`crac start`), sends READY=1 itself once the
 *     restored process answers on its control endpoint: the program said
 *     READY before its checkpoint and will not say it again.
 */
#include "cli.h"
#include "core/internal.h"
#include "image/bounded.h"
#include "image/dir.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sched.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76     /* Linux 6.5; glibc 2.36 lacks it */
#endif
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

/* ---- options ---------------------------------------------------------------- */

const char cli_triggers_help[] =
	"  --checkpoint-after DURATION    checkpoint DURATION after the start (500ms, 30s, 2m, 1h;\n"
	"                                 a bare number is seconds)\n"
	"  --checkpoint-when-listening [ADDR:]PORT\n"
	"                                 checkpoint the first time the program listens on TCP PORT\n"
	"                                 (on ADDR, or on any address covering it: 0.0.0.0, ::)\n"
	"  --checkpoint-on-ready          checkpoint when the program sends READY=1 (sd_notify): it\n"
	"                                 gets a NOTIFY_SOCKET of crac's, relayed to $NOTIFY_SOCKET\n"
	"  --checkpoint-on SIGNAL         checkpoint each time crac (the supervisor) receives SIGNAL\n"
	"                                 (USR1, SIGUSR2, 10...); not forwarded to the program\n"
	"  --stats                        after each checkpoint a trigger started, one line on stderr:\n"
	"                                 pages scanned, stored and zero, MiB written, time per phase\n"
	"                                 (as crac checkpoint --stats)\n"
	"  With a trigger, crac stays as the program's parent (a supervisor; MAINPID for systemd),\n"
	"  forwards signals to it and exits as it exits. The first of after/listening/ready fires,\n"
	"  once; a checkpoint that fails prints its report and the program keeps running cold.\n";

void cli_triggers_init(struct cli_triggers *t)
{
	memset(t, 0, sizeof(*t));
	t->after_ms = -1;
}

bool cli_triggers_any(const struct cli_triggers *t)
{
	return t->after_ms >= 0 || t->on_signal || t->listen_port || t->on_ready;
}

/* "500ms", "30s", "1.5s", "2m", "1h", "30" (seconds) -> milliseconds, -1 if bad. */
long long cli_parse_duration(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || v < 0 || v > 1e9)
		return -1;
	if (!*end || !strcmp(end, "s"))
		v *= 1000;
	else if (!strcmp(end, "ms"))
		;
	else if (!strcmp(end, "m") || !strcmp(end, "min"))
		v *= 60000;
	else if (!strcmp(end, "h"))
		v *= 3600000;
	else
		return -1;
	return (long long)v;
}

static const struct { const char *name; int sig; } signals[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "USR1", SIGUSR1 },
	{ "USR2", SIGUSR2 }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "WINCH", SIGWINCH },
	{ "PWR", SIGPWR }, { "URG", SIGURG },
};

/* "USR1", "SIGUSR1", "usr1", "10", "RTMIN+3" -> the number, 0 if bad. */
int cli_parse_signal(const char *s)
{
	char *end;
	long v;

	if (isdigit((unsigned char)s[0])) {
		v = strtol(s, &end, 10);
		return !*end && v > 0 && v < NSIG ? (int)v : 0;
	}
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (!strcasecmp(s, signals[i].name))
			return signals[i].sig;
	if (!strncasecmp(s, "RTMIN+", 6)) {
		v = strtol(s + 6, &end, 10);
		return !*end && v >= 0 && SIGRTMIN + v <= SIGRTMAX ? (int)(SIGRTMIN + v) : 0;
	}
	return 0;
}

int cli_trigger_opt(struct cli_triggers *t, int c, const char *arg)
{
	switch (c) {
	case CLI_OPT_AFTER:
		if ((t->after_ms = cli_parse_duration(arg)) < 0) {
			cli_err("--checkpoint-after wants a duration (500ms, 30s, 2m, 1h), got \"%s\"", arg);
			return -1;
		}
		return 1;
	case CLI_OPT_ON:
		t->on_signal = cli_parse_signal(arg);
		if (!t->on_signal || t->on_signal == SIGKILL || t->on_signal == SIGSTOP ||
		    t->on_signal == SIGCHLD) {
			cli_err("--checkpoint-on wants a signal crac can catch (USR1, SIGUSR2, HUP, 12...), got \"%s\"", arg);
			return -1;
		}
		return 1;
	case CLI_OPT_LISTENING: {
		const char *colon = strrchr(arg, ':');
		char *end;
		long port = strtol(colon ? colon + 1 : arg, &end, 10);
		if (*end || port <= 0 || port > 65535 || end == (colon ? colon + 1 : arg)) {
			cli_err("--checkpoint-when-listening wants [ADDR:]PORT (8080, 127.0.0.1:8080, [::1]:8080), got \"%s\"", arg);
			return -1;
		}
		t->listen_port = (int)port;
		t->listen_family = 0;
		if (colon) {
			char a[INET6_ADDRSTRLEN + 2];
			size_t n = (size_t)(colon - arg);
			if (n >= sizeof(a)) {
				cli_err("--checkpoint-when-listening: address \"%.*s\" too long", (int)n, arg);
				return -1;
			}
			memcpy(a, arg, n);
			a[n] = 0;
			char *p = a;
			if (p[0] == '[' && n > 2 && p[n - 1] == ']') {
				p[n - 1] = 0;
				p++;
			}
			if (inet_pton(AF_INET, p, t->listen_addr) == 1)
				t->listen_family = AF_INET;
			else if (inet_pton(AF_INET6, p, t->listen_addr) == 1)
				t->listen_family = AF_INET6;
			else {
				cli_err("--checkpoint-when-listening: \"%s\" is no IPv4 or IPv6 address", p);
				return -1;
			}
		}
		return 1;
	}
	case CLI_OPT_READY:
		t->on_ready = true;
		return 1;
	case CLI_OPT_STATS:
		t->stats = true;
		return 1;
	}
	return 0;
}

/* ---- listening -------------------------------------------------------------- */

/* Does /proc/PID/net/FILE list a socket in LISTEN state on the trigger's
 * port and address? Adds their inodes to ino[] (at most max). */
static int listeners(int pid, const char *file, int family, const struct cli_triggers *t,
		     unsigned long *ino, int n, int max)
{
	char path[64], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/net/%s", pid, file);
	if (!(f = fopen(path, "re")))
		return n;
	while (fgets(line, sizeof(line), f) && n < max) {
		char local[64];
		unsigned port, st;
		unsigned long inode;
		if (sscanf(line, " %*d: %63[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %*s %*s %lu",
			   local, &port, &st, &inode) != 4 || st != 0x0A || (int)port != t->listen_port)
			continue;
		unsigned char addr[16] = { 0 };
		size_t words = family == AF_INET ? 1 : 4;
		for (size_t w = 0; w < words && strlen(local) >= (w + 1) * 8; w++) {
			char hex[9];
			memcpy(hex, local + w * 8, 8);
			hex[8] = 0;
			uint32_t v = (uint32_t)strtoul(hex, NULL, 16);
			memcpy(addr + w * 4, &v, 4);   /* the kernel prints its words in host order */
		}
		static const unsigned char any[16], mapped[12] = { [10] = 0xff, [11] = 0xff };
		bool ok;
		if (!t->listen_family)
			ok = true;
		else if (family == AF_INET)
			ok = !memcmp(addr, any, 4) ||
			     (t->listen_family == AF_INET && !memcmp(addr, t->listen_addr, 4));
		else
			ok = !memcmp(addr, any, 16) ||
			     (t->listen_family == AF_INET6 && !memcmp(addr, t->listen_addr, 16)) ||
			     (t->listen_family == AF_INET && !memcmp(addr, mapped, 12) &&
			      !memcmp(addr + 12, t->listen_addr, 4));
		if (ok)
			ino[n++] = inode;
	}
	fclose(f);
	return n;
}

/* Does process pid hold a socket listening where the trigger says? */
static bool is_listening(int pid, const struct cli_triggers *t)
{
	unsigned long ino[64];
	int n = listeners(pid, "tcp", AF_INET, t, ino, 0, 64);
	char path[64], link[64], name[400];
	struct dirent *d;
	bool found = false;
	DIR *dir;

	n = listeners(pid, "tcp6", AF_INET6, t, ino, n, 64);
	if (!n)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if (!(dir = opendir(path)))
		return false;
	while (!found && (d = readdir(dir))) {
		unsigned long i;
		snprintf(name, sizeof(name), "%s/%s", path, d->d_name);
		ssize_t len = readlink(name, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = 0;
		if (sscanf(link, "socket:[%lu]", &i) == 1)
			for (int k = 0; k < n && !found; k++)
				found = ino[k] == i;
	}
	closedir(dir);
	return found;
}

/* ---- sd_notify ------------------------------------------------------------------ */

/* Sends msg to the socket $NOTIFY_SOCKET names ("/path" or "@abstract"). */
/*
 * Sends msg to the sd_notify socket sockname, with the n descriptors fds
 * (FDSTORE=1: systemd keeps them for the service's next start) as
 * SCM_RIGHTS. They stay ours: the caller closes them. Never waits: a
 * socket whose queue is full (a reader that stopped reading; systemd busy)
 * gives -EAGAIN, and the supervisor that sends goes on with its signals and
 * its child (READY=1 is sent again later: ready_send).
 */
int cli_notify_send_fds(const char *sockname, const char *msg, const int *fds, int n_fds)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t n = sockname ? strlen(sockname) : 0;
	socklen_t len;
	int fd, rc = 0;

	if (!n || n >= sizeof(a.sun_path) || (sockname[0] != '/' && sockname[0] != '@') ||
	    n_fds < 0 || n_fds > CLI_NOTIFY_MAX_FDS)
		return -EINVAL;
	memcpy(a.sun_path, sockname, n);
	if (a.sun_path[0] == '@')
		a.sun_path[0] = 0;
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(CLI_NOTIFY_MAX_FDS * sizeof(int))];
	} ctl;
	struct iovec io = { (void *)msg, strlen(msg) };
	struct msghdr m = { .msg_name = &a, .msg_namelen = len, .msg_iov = &io, .msg_iovlen = 1 };
	if (n_fds > 0) {
		memset(&ctl, 0, sizeof(ctl));
		m.msg_control = ctl.b;
		m.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, n_fds * sizeof(int));
	}
	if (sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int cli_notify_send(const char *sockname, const char *msg)
{
	return cli_notify_send_fds(sockname, msg, NULL, 0);
}

/*
 * Our NOTIFY_SOCKET for the program: DIR/notify in a new directory
 * (crac-notify-XXXXXX in $XDG_RUNTIME_DIR, or /tmp; for root /run, or
 * /tmp). Returns the bound socket or -1.
 *
 * Who may send: the program may drop its privileges before it says READY=1
 * (a root service that setuid()s to a service user, as nginx and redis
 * workers do), so root's socket is reachable by every user: the directory
 * is 0711 (searchable, not writable: /run and /tmp list its name, so the
 * name is no secret) and the socket 0666. Another user's crac keeps both
 * to itself (0700, 0600): its program cannot become anybody else. Root's
 * socket is named notify-<32 random hex digits>, since any user could
 * otherwise flood it by its well-known name (each datagram costs the
 * supervisor the walk of from_program(), and a full queue delays the
 * program's own READY=1): the directory cannot be listed, so only the
 * program (and what it starts: $NOTIFY_SOCKET) knows it. Every
 * datagram is then checked
 * against its sender's credentials, which the kernel attaches
 * (SO_PASSCRED: SCM_CREDENTIALS, which another user cannot forge without
 * CAP_SYS_ADMIN/CAP_SETUID) -- see from_program().
 */
/*
 * What notify_open does on the file system, by a helper bounded by the
 * command's limit (image/dir.c: /run, /tmp or $XDG_RUNTIME_DIR may sit on a
 * file system that does not answer): the choice of BASE (its stat), the
 * directory (mkdir of BASE/crac-notify-XXXXXX, XXXXXX from the caller's
 * random letters, a few tries), the bind of the caller's socket and the
 * chmods; on failure the socket file and the directory removed. Raw system
 * calls only (image/bounded.h); the helper writes here by its own
 * instructions only (stat buffers on its stack).
 */
struct notify_setup {
	const char *xdg;          /* $XDG_RUNTIME_DIR or NULL */
	unsigned me;              /* geteuid() */
	bool all;                 /* root's: every user may send */
	int fd;                   /* the socket, ours */
	const char *name;         /* the socket's name in the directory */
	char letters[4][6];       /* XXXXXX of each try */
	int step;                 /* 0 BASE's stat, 1 the mkdir, 2 the bind, 3 the chmods */
	int res;                  /* 0, or -errno of step */
	char base[108];           /* BASE chosen */
	char dir[128];            /* BASE/crac-notify-XXXXXX made */
	char path[128 + 1 + 40];  /* dir/name */
};

/* Is path a directory of uid's not writable by group or others? */
static bool notify_base_ok(const char *path, unsigned uid)
{
	struct stat st;

	return crac_raw_syscall5(SYS_newfstatat, AT_FDCWD, (long)path, (long)&st, 0, 0) == 0 &&
	       S_ISDIR(st.st_mode) && st.st_uid == uid && !(st.st_mode & 022);
}

/* Copies s into out (cap bytes, cut). */
static void notify_copy(char *out, size_t cap, const char *s)
{
	size_t k = 0;

	for (; s[k] && k + 1 < cap; k++)
		out[k] = s[k];
	out[k] = 0;
}

static void notify_setup_run(void *arg)
{
	struct notify_setup *ns = arg;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char dir[sizeof(ns->dir)], path[sizeof(ns->path)];
	const char *base;
	long r = -EEXIST;

	/* $XDG_RUNTIME_DIR/... is 0700: no other user reaches into it. An
	 * unprivileged program cannot become another user; root's can. */
	ns->step = 0;
	if (ns->me == 0)
		base = notify_base_ok("/run", 0) ? "/run" : "/tmp";
	else
		base = ns->xdg && ns->xdg[0] == '/' && notify_base_ok(ns->xdg, ns->me) ? ns->xdg : "/tmp";
	/* BASE/crac-notify-XXXXXX/notify must fit a socket address: a
	 * $XDG_RUNTIME_DIR too long for it is no reason to refuse the program */
	if (strlen(base) + strlen("/crac-notify-XXXXXX/notify-") + 32 >= sizeof(a.sun_path))
		base = "/tmp";
	notify_copy(ns->base, sizeof(ns->base), base);
	ns->step = 1;
	for (int t = 0; t < 4 && r == -EEXIST; t++) {
		size_t n = strlen(base);
		memcpy(dir, base, n);
		memcpy(dir + n, "/crac-notify-", 13);
		memcpy(dir + n + 13, ns->letters[t], 6);
		dir[n + 19] = 0;
		r = crac_raw_syscall3(SYS_mkdirat, AT_FDCWD, (long)dir, 0700);
	}
	if (r < 0) {
		ns->res = (int)r;
		return;
	}
	notify_copy(ns->dir, sizeof(ns->dir), dir);
	size_t n = strlen(dir);
	memcpy(path, dir, n);
	path[n] = '/';
	notify_copy(path + n + 1, sizeof(path) - n - 1, ns->name);
	notify_copy(ns->path, sizeof(ns->path), path);
	notify_copy(a.sun_path, sizeof(a.sun_path), path);   /* fits: checked above */
	ns->step = 2;
	r = crac_raw_syscall3(SYS_bind, ns->fd, (long)&a, sizeof(a));
	if (r == 0) {
		ns->step = 3;
		r = crac_raw_syscall5(SYS_fchmodat, AT_FDCWD, (long)path, ns->all ? 0666 : 0600, 0, 0);
		if (r == 0 && ns->all)
			r = crac_raw_syscall5(SYS_fchmodat, AT_FDCWD, (long)dir, 0711, 0, 0);
	}
	if (r < 0) {   /* as it was: no socket, no directory left behind */
		crac_raw_syscall3(SYS_unlinkat, AT_FDCWD, (long)path, 0);
		crac_raw_syscall3(SYS_unlinkat, AT_FDCWD, (long)dir, AT_REMOVEDIR);
	}
	ns->res = (int)r;
}

static int notify_open(struct cli_super *s)
{
	/* every user only when the program may become one (root's): a
	 * program of another user cannot (no CAP_SETUID), and other users
	 * have nothing to send there (a flood, lines in our log) */
	bool all = geteuid() == 0;
	char name[40] = "notify";
	unsigned char r[16 + 4 * 6];
	int fd, one = 1;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		cli_err("%s: cannot name the program's NOTIFY_SOCKET: getrandom: %s", s->who, strerror(errno));
		return -1;
	}
	if (all) {
		for (size_t i = 0; i < 16; i++)
			snprintf(name + 7 + 2 * i, 3, "%02x", r[i]);
		name[6] = '-';
	}
	struct notify_setup ns = { .xdg = getenv("XDG_RUNTIME_DIR"), .me = (unsigned)geteuid(), .all = all,
				   .name = name, .res = -EINPROGRESS };
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	for (int t = 0; t < 4; t++)
		for (int k = 0; k < 6; k++)
			ns.letters[t][k] = abc[r[16 + 6 * t + k] % (sizeof(abc) - 1)];
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
		cli_err("%s: cannot set up the program's NOTIFY_SOCKET: its socket: %s", s->who, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ns.fd = fd;
	char why[200];
	if (crac_img_bounded_call("notify", notify_setup_run, &ns, false, why, sizeof(why)) < 0) {
		static const char *const steps[] = { "the look at", "the creation of a directory in", "the bind of a socket in",
						     "the chmod of a socket in" };
		int st = ns.step >= 0 && ns.step < 4 ? ns.step : 0;
		cli_err("%s: cannot set up the program's NOTIFY_SOCKET: %s %s %s", s->who, steps[st],
			st == 0 ? (all ? "/run" : ns.xdg && ns.xdg[0] == '/' ? ns.xdg : "/tmp") :
			st == 1 ? ns.base : ns.dir, why);
		close(fd);   /* (a directory made late is left: crac-notify-XXXXXX, empty) */
		return -1;
	}
	if (ns.res < 0) {
		if (ns.step == 1)
			cli_err("%s: cannot make a directory for the program's NOTIFY_SOCKET in %s: %s", s->who, ns.base,
				strerror(-ns.res));
		else
			cli_err("%s: cannot set up the program's NOTIFY_SOCKET %s: %s", s->who, ns.path,
				strerror(-ns.res));
		close(fd);
		return -1;
	}
	snprintf(s->notify_dir, sizeof(s->notify_dir), "%s", ns.dir);
	snprintf(s->notify_path, sizeof(s->notify_path), "%s", ns.path);
	/* a pidfd of the sender too (Linux 6.5): see from_program() */
	s->notify_pidfd = setsockopt(fd, SOL_SOCKET, SO_PASSPIDFD, &one, sizeof(one)) == 0;
	return fd;
}

/* The parent of process pid and pid's start time (/proc/PID/stat), 0 if
 * unknown. */
static pid_t parent_of(pid_t pid, unsigned long long *start)
{
	char buf[1024];
	int ppid = 0;
	/* "STATE PPID ... STARTTIME (22nd)" */
	const char *f = crac_img_proc_stat((int)pid, buf, sizeof(buf));
	if (!f || sscanf(f, " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
			   "%*d %llu", &ppid, start) != 2)
		return 0;
	return (pid_t)ppid;
}

/* The pid a pidfd refers to now (/proc/self/fdinfo: -1 once it exited). */
static pid_t pidfd_pid(int pidfd)
{
	char path[64], line[128];
	int pid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	if (!(f = fopen(path, "re")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Pid: %d", &pid) == 1)
			break;
	fclose(f);
	return (pid_t)pid;
}

/*
 * Is the sender of a notification the program? Accepted: the program's
 * own pid (our child, not reaped before we read this: its pid cannot have
 * been reused), or a process it started (its descendant, by the parent
 * links in /proc: a forked worker that says READY=1, as systemd's
 * NotifyAccess=all accepts the service's other processes). Never its
 * process group: that is crac's own, shared with whatever runs next to
 * crac in a shell pipeline, and a group says nothing about who started a
 * process. A descendant must still be alive when the walk is over, seen
 * through the pidfd the kernel passed with the message (SCM_PIDFD): then
 * the pid walked was the sender's and not one reused meanwhile; on a
 * kernel that passes pidfds, a message without one is refused. On kernels
 * before 6.5 (no SCM_PIDFD) the walk alone decides. The senders that
 * are refused: other users' processes (which can now reach the socket),
 * and unrelated processes of ours.
 */
static bool from_program(const struct cli_super *s, pid_t pid, int pidfd)
{
	unsigned long long start = 0, up = 0;
	pid_t next;

	if (pid <= 0)
		return false;
	if (pid == s->child)
		return true;
	/* a kernel that passes pidfds passes one with every message that
	 * has room for it: none means the sender filled the room (with
	 * descriptors, which come first), and its pid may be reused by now */
	if (s->notify_pidfd && pidfd < 0)
		return false;
	if (!(next = parent_of(pid, &start)))
		return false;
	for (int depth = 0; next > 1 && depth < 256; depth++) {
		/* a parent starts before its child: one that started later is
		 * a process that got the pid of an ancestor gone meanwhile
		 * (during this walk), no ancestor of the sender */
		pid_t pp = parent_of(next, &up);
		if (!pp || up > start)
			return false;
		if (next == s->child)
			return pidfd < 0 || pidfd_pid(pidfd) == pid;
		next = pp;
		start = up;
	}
	return false;
}

static void notify_close(struct cli_super *s)
{
	if (s->notify_fd >= 0)
		close(s->notify_fd);
	s->notify_fd = -1;
	if (s->notify_dir[0]) {
		unlink(s->notify_path);
		rmdir(s->notify_dir);
		s->notify_dir[0] = 0;
	}
}

/* ---- the checkpoint request --------------------------------------------------------- */

struct request {
	struct cli_super *s;
	int pid;
	char why[128];
	int rc, status;
	char err[1024];
	char *answer;
	size_t answer_len;
	char install_msg[4096];
	int install_rc;
	char stats[1024];               /* --stats: the STATS record, or "" */
};

/*
 * DIR/activation of `crac run` (s->activation_dir): the image engine
 * replaces only a directory holding its own two files, so the record of
 * the image in place is taken out before the checkpoint (*old) and put
 * back if the checkpoint fails; after a success the new image gets the new
 * record. Written whole or not at all (a temporary, renamed); a failure
 * is said, and a restore under socket activation then refuses the image
 * (sockets passed, none recorded) rather than bind the address again.
 */
static int put_record(const char *dir, const char *text, char *msg, size_t len)
{
	char tmp[64];

	/* through DIR itself, never a symbolic link put in its place (DIR may
	 * belong to the program's user, who is not always ours); by a helper
	 * of image/dir.c bounded by crac run's limit (a file system that does
	 * not answer: given up, msg names the step) */
	snprintf(tmp, sizeof(tmp), ".%s.%d", CLI_ACTIVATION_FILE, (int)getpid());
	return crac_img_put_file_msg(dir, CLI_ACTIVATION_FILE, tmp, text, strlen(text), msg, len);
}

/* Takes DIR/activation out (its text, or NULL when there is none); its
 * read and its removal bounded the same way, a look given up on said. */
static char *take_record(const char *who, const char *dir)
{
	char msg[2 * PATH_MAX + 400];
	int err = 0;
	char *old = cli_read_small_msg(dir, CLI_ACTIVATION_FILE, &err, msg, sizeof(msg));

	if (!old && err == -ETIMEDOUT)
		cli_err("%s: warning: %s", who, msg);
	if (old && crac_img_unlink_in_msg(dir, CLI_ACTIVATION_FILE, msg, sizeof(msg)) == -ETIMEDOUT)
		cli_err("%s: warning: %s", who, msg);
	return old;
}

static bool answers(int pid);

/* A trigger may fire before the program's libcrac has its control endpoint
 * up (--checkpoint-after 1s of an interpreter slow to start on a loaded
 * machine): wait until it answers, while it lives, 5 s at most. */
static void wait_for_endpoint(int pid)
{
	for (int i = 0; i < 250 && !answers(pid) && kill(pid, 0) == 0; i++)
		usleep(20000);
}

/* On the request's thread: a progress record; STATS is kept (--stats). */
static void keep_stats(void *arg, const char *line)
{
	struct request *q = arg;

	if (!strncmp(line, "STATS ", 6))
		snprintf(q->stats, sizeof(q->stats), "%s", line);
}

static void *request_thread(void *p)
{
	struct request *q = p;
	struct cli_super *s = q->s;
	char *old = NULL;

	/* while the program runs: which of its descriptors are systemd's */
	if (s->listen_fds > 0) {
		free(s->activation);
		s->activation = cli_activation_record(q->pid, s->listen_fds);
		if (s->activation_dir)
			old = take_record(s->who, s->activation_dir);
	}
	wait_for_endpoint(q->pid);
	FILE *out = open_memstream(&q->answer, &q->answer_len);
	/* --stats: the request asks for progress records (progress=1); of
	 * them, the last, STATS, is kept */
	const char *tokens[16];
	size_t nt = 0;
	for (; s->tokens[nt] && nt < 14; nt++)
		tokens[nt] = s->tokens[nt];
	if (s->trig.stats)
		tokens[nt++] = "progress=1";
	tokens[nt] = NULL;
	q->rc = crac__control_request_cb(q->pid, tokens, out, &q->status, q->err, sizeof(q->err),
					 s->trig.stats ? keep_stats : NULL, q);
	if (out)
		fclose(out);
	q->install_rc = 0;
	bool ok = q->rc == 0 && (q->status == CRAC_CONTINUED || q->status == CRAC_RESTORED);
	if (s->listen_fds > 0 && s->activation_dir && (ok || old)) {
		/* the new image's record, or the old one back in the old image */
		const char *text = ok ? s->activation : old;
		char pmsg[2048];
		int rc = text ? put_record(s->activation_dir, text, pmsg, sizeof(pmsg)) : -ENOMEM;
		if (rc < 0) {
			q->install_rc = -1;
			snprintf(q->install_msg, sizeof(q->install_msg), "cannot write %s/%s (which of the "
				 "program's descriptors are the sockets of socket activation): %s; a restore "
				 "under socket activation refuses the image", s->activation_dir,
				 CLI_ACTIVATION_FILE, rc == -ETIMEDOUT ? pmsg : strerror(-rc));
		}
	}
	free(old);
	if (ok && s->installed && q->install_rc == 0)
		q->install_rc = s->installed(s, q->pid, q->install_msg, sizeof(q->install_msg));
	if (write(s->done_pipe[1], "x", 1) < 0) {
		/* the main loop then never hears: it cannot happen with a fresh pipe */
	}
	return NULL;
}

static void fire(struct cli_super *s, const char *why)
{
	struct request *q;
	pthread_attr_t attr;
	pthread_t th;

	if (s->busy) {
		cli_err("%s: %s: a checkpoint is in progress already; not started again", s->who, why);
		return;
	}
	if (!(q = calloc(1, sizeof(*q))))
		return;
	q->s = s;
	q->pid = s->child;
	snprintf(q->why, sizeof(q->why), "%s", why);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, request_thread, q) != 0) {
		cli_err("%s: %s: cannot start the checkpoint request thread", s->who, why);
		free(q);
	} else {
		s->busy = q;
	}
	pthread_attr_destroy(&attr);
}

/*
 * Has process pid (our child) ended? Its descriptors, the control
 * connection among them, are closed on its way out before it is a zombie:
 * waits up to ms for that, without reaping it (cli_super_wait does). One
 * reaped already (gone) has.
 */
static bool child_ended(pid_t pid, bool gone, int ms)
{
	for (int waited = 0; !gone; waited++) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
			return errno == ECHILD;
		if (si.si_pid == pid)
			return true;
		if (waited >= ms)
			return false;
		usleep(1000);
	}
	return true;
}

/*
 * Has process pid (our child) ended, and how? ws: its wait status when it
 * was reaped already (NULL: not yet; then it is looked at without reaping
 * it, as a zombie). Writes "exited with status N" or "was killed by signal
 * NAME" into out; false while it runs.
 */
static bool child_end_text(pid_t pid, const int *ws, char *out, size_t len)
{
	int code = 0, sig = 0;

	if (ws) {
		if (WIFEXITED(*ws))
			code = WEXITSTATUS(*ws);
		else if (WIFSIGNALED(*ws))
			sig = WTERMSIG(*ws);
		else
			return false;
	} else {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid != pid)
			return false;
		if (si.si_code == CLD_EXITED)
			code = si.si_status;
		else
			sig = si.si_status;
	}
	if (sig)
		snprintf(out, len, "was killed by signal %d (%s)", sig, strsignal(sig));
	else
		snprintf(out, len, "exited with status %d", code);
	return true;
}

/* How long a connection closed without its STATUS waits for the program's
 * end (is it ending, or did it refuse?). */
#define CUT_SHORT_WAIT_MS 200

/* The request's answer, on our stderr. reaped: the program's wait status
 * when it has ended and was reaped, else NULL. */
static void request_done(struct cli_super *s, const int *reaped)
{
	bool gone = reaped != NULL;
	struct request *q = s->busy;
	char c;

	if (read(s->done_pipe[0], &c, 1) != 1 || !q)
		return;
	s->busy = NULL;
	bool ok = q->rc == 0 && (q->status == CRAC_CONTINUED || q->status == CRAC_RESTORED);
	/*
	 * The connection closed before the STATUS line and the program has
	 * ended: it ended while it answered (an after_restore callback told its
	 * main thread it was restored, which then _exit()ed or was killed;
	 * exit() waits for the report: src/core/checkpoint.c). What it sent is
	 * printed; that the rest is missing is said, never that it keeps
	 * running.
	 */
	bool cut = q->rc == -ECONNRESET && child_ended(q->pid, gone, CUT_SHORT_WAIT_MS);
	/* a success crac start describes itself (the image's temporary name is no news) */
	if (q->answer && q->answer_len && (!ok || (!s->quiet && !s->installed)))
		fputs(q->answer, stderr);
	/* crac start: the process may be a restored one; no image was put in place */
	const char *goes_on = s->installed ? "keeps running; no image written" : "keeps running cold";
	/*
	 * A failed request to a program that has ended: no connection, or it
	 * closed with nothing of an answer (`crac run --checkpoint-after 0 --
	 * true`: the program ended before the trigger's request reached it).
	 * That is said with its end, never that it keeps running (the error
	 * would be "no process N", or no endpoint: the exited process's). A
	 * connection cut short by its end (cut) is said as such: an image may
	 * have been written before.
	 * One whose complete answer said it failed and that ended since says
	 * that it ended.
	 */
	char ended[96];
	bool has_ended = !ok && child_end_text(q->pid, reaped, ended, sizeof(ended));
	bool ended_first = has_ended && q->rc < 0 && !q->answer_len && !cut;
	if (has_ended && !ended_first) {
		size_t l = strlen(ended);
		snprintf(ended + l, sizeof(ended) - l, " since%s", s->installed ? "; no image written" : "");
		goes_on = ended;
	}
	if (ended_first)
		cli_err("%s: process %d %s before the checkpoint that %s started could take it: no "
			"image was written", s->who, q->pid, ended, q->why);
	else if (cut && q->answer_len)
		cli_err("%s: process %d ended before its answer to the checkpoint that %s started was "
			"complete: the report above was cut short (its last lines, the status, are missing)",
			s->who, q->pid, q->why);
	else if (cut)
		cli_err("%s: process %d ended before it answered the checkpoint that %s started: its "
			"report was cut short (nothing of it came)", s->who, q->pid, q->why);
	else if (q->rc < 0)
		cli_err("%s: the checkpoint that %s started failed: %s; process %d %s",
			s->who, q->why, q->err, q->pid, goes_on);
	else if (!ok)
		cli_err("%s: the checkpoint that %s started failed (%s); process %d %s",
			s->who, q->why, q->status == CRAC_ABORTED ? "aborted" : q->status < 0 ?
			crac__errno_name(q->status) : "unexpected status", q->pid, goes_on);
	else if (q->install_rc < 0)
		cli_err("%s: %s", s->who, q->install_msg);
	else {
		if (q->install_msg[0] && !s->quiet)
			cli_err("%s: %s", s->who, q->install_msg);
		s->checkpoints++;
	}
	if (s->trig.stats && ok)
		cli_print_stats(q->pid, q->stats[0] ? q->stats : NULL);
	free(q->answer);
	free(q);
}

/* ---- the program ---------------------------------------------------------------- */

static const int forwarded[] = {
	SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM, SIGCONT, SIGTSTP,
	SIGPWR, SIGURG,
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int cli_super_init(struct cli_super *s, const char *who)
{
	sigset_t set;

	memset(s, 0, sizeof(*s));
	s->who = who;
	s->notify_fd = s->sig_fd = -1;
	s->done_pipe[0] = s->done_pipe[1] = -1;
	cli_triggers_init(&s->trig);
	s->outer_notify = getenv("NOTIFY_SOCKET");
	if (s->outer_notify && !*s->outer_notify)
		s->outer_notify = NULL;
	/* SIGCHLD ignored by our caller (a SIG_IGN survives exec): the
	 * kernel would reap the program as it ends, no SIGCHLD, no status,
	 * and we would wait for it forever (a stop signal only forwarded to
	 * a pid that is gone). Ours is the default; the program gets it
	 * ignored, as it would have run without us (spawn_child). */
	struct sigaction chld;
	if (sigaction(SIGCHLD, NULL, &chld) == 0 &&
	    (chld.sa_handler == SIG_IGN || (chld.sa_flags & SA_NOCLDWAIT))) {
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		s->chld_ignored = sigaction(SIGCHLD, &dfl, NULL) == 0;
	}
	/* From here on the signals we handle are read from a signalfd; the
	 * program gets the mask of our caller back (cli_super_spawn). */
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&set, forwarded[i]);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &s->old_mask);
	/* for the program (cold, or restored: crac start passes its own
	 * environment): the parent-death signal it gets from us is ours */
	char me[24];
	snprintf(me, sizeof(me), "%d", (int)getpid());
	setenv(CRAC_SUPERVISOR_ENV, me, 1);
	return 0;
}

/*
 * The program's NOTIFY_SOCKET, ours (notify_open): to relay what it sends
 * to $NOTIFY_SOCKET, and for the READY=1 of --checkpoint-on-ready. A warm
 * start (s->warm: crac start restoring an image) has that trigger disarmed
 * (only --checkpoint-on refreshes its image), so without $NOTIFY_SOCKET
 * nothing the restored program could send there would be used: it gets no
 * socket (a directory, a socket, a bind and two chmods fewer before its
 * loader runs), as a program started without NOTIFY_SOCKET has none. A
 * cold start after a refused restore makes it then (s->warm cleared).
 */
static int cli_super_prepare_notify(struct cli_super *s)
{
	if (s->notify_fd >= 0 || !(s->outer_notify || (s->trig.on_ready && !s->warm)))
		return 0;
	return (s->notify_fd = notify_open(s)) < 0 ? -1 : 0;
}

/* Called once the options are known: the trigger signal, the pipes. */
int cli_super_prepare(struct cli_super *s)
{
	sigset_t set;

	if (s->sig_fd >= 0)
		return cli_super_prepare_notify(s);
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&set, forwarded[i]);
	sigaddset(&set, SIGCHLD);
	if (s->trig.on_signal)
		sigaddset(&set, s->trig.on_signal);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if ((s->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    pipe2(s->done_pipe, O_CLOEXEC) < 0) {
		cli_err("%s: signalfd/pipe: %s", s->who, strerror(errno));
		return -1;
	}
	return cli_super_prepare_notify(s);
}

/*
 * The child is started with clone3 (or clone) (CLONE_VM | CLONE_VFORK) on a stack of its
 * own, as posix_spawn does, not with fork(): a fork of the tool copies its
 * page tables and makes every page it writes afterwards, in the child
 * (until the exec) and in the supervisor, a copy-on-write fault; on a VM
 * where the first touch of a page is dear, that was 1-2 ms (some 45 faults
 * in the child alone) before the loader of `crac start` even ran. The
 * child shares our memory until its exec: it writes nothing of ours but
 * spawn_env's LISTEN_PID buffer and spawn_errno, calls no stdio and no
 * malloc, and the environment is built here beforehand.
 */
#define SPAWN_STACK (64 * 1024)   /* and the argument vector: see cli_super_spawn */

struct spawn {
	char *const *argv;
	char **envp;
	char *listen_pid;                /* "LISTEN_PID=" + room for the child's pid, or NULL */
	const sigset_t *mask;            /* the program's signal mask */
	bool handlers_cleared;           /* by clone3's CLONE_CLEAR_SIGHAND */
	bool chld_ignored;               /* SIGCHLD to be ignored again (cli_super_init) */
	pid_t parent;                    /* the supervisor: the program ends with it */
	int err;                         /* the exec's errno, when it failed */
};

/*
 * clone3(2) with CLONE_CLEAR_SIGHAND (Linux 5.5) gives the child default
 * handlers where we have ours (ignored signals stay ignored), which the
 * child otherwise sets itself: one sigaction per signal, some 64 system
 * calls (about 40 us here) in the path of every `crac start` before its
 * loader runs. glibc has no clone3 wrapper that runs a function:
 *
 *   long cli_clone3_run(struct cli_clone_args *ca, size_t size,
 *                       int (*fn)(void *), void *arg)
 *     rdi ca, rsi size, rdx fn, rcx arg
 *
 * The child starts on ca->stack + ca->stack_size with the parent's
 * registers: fn and arg are kept in r8 and r9, which the system call
 * leaves alone (it clobbers rcx and r11), and fn's return value is the
 * child's exit status (spawn_child never returns: it execs or _exits).
 * The parent gets the child's pid or -errno.
 */
struct cli_clone_args {   /* struct clone_args up to tls: CLONE_ARGS_SIZE_VER0 */
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
long cli_clone3_run(struct cli_clone_args *ca, size_t size, int (*fn)(void *), void *arg);
__asm__(
	".text\n"
	".globl cli_clone3_run\n"
	".hidden cli_clone3_run\n"
	".type cli_clone3_run,@function\n"
	"cli_clone3_run:\n"
	"	movq %rdx, %r8\n"
	"	movq %rcx, %r9\n"
	"	movl $435, %eax\n"             /* SYS_clone3 */
	"	syscall\n"
	"	testq %rax, %rax\n"
	"	jz 1f\n"
	"	ret\n"
	"1:	xorl %ebp, %ebp\n"             /* child: the outermost frame */
	"	andq $-16, %rsp\n"
	"	movq %r9, %rdi\n"
	"	call *%r8\n"
	"	movl %eax, %edi\n"
	"	movl $60, %eax\n"              /* SYS_exit */
	"	syscall\n"
	"	hlt\n"
	".size cli_clone3_run, .-cli_clone3_run\n");

static int spawn_child(void *arg)
{
	struct spawn *sp = arg;
	struct sigaction dfl = { .sa_handler = SIG_DFL };

	/* the handlers are ours (a copy: no CLONE_SIGHAND); one that ran
	 * here, on our memory, before the exec could do harm: default
	 * (clone3 did it already where it could) */
	for (int sig = 1; sig < NSIG && !sp->handlers_cleared; sig++) {
		struct sigaction sa;
		if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) < 0)
			continue;
		if (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN)
			sigaction(sig, &dfl, NULL);
	}
	if (sp->chld_ignored) {
		/* as our caller had it (a copy of the handlers: ours stay) */
		struct sigaction ign = { .sa_handler = SIG_IGN };
		sigaction(SIGCHLD, &ign, NULL);
	}
	if (sp->listen_pid) {
		/* the activation sockets are the program's now: its pid */
		char *p = sp->listen_pid + strlen("LISTEN_PID="), d[16];
		int n = 0;
		for (unsigned v = (unsigned)getpid(); v || !n; v /= 10)
			d[n++] = (char)('0' + v % 10);
		while (n)
			*p++ = d[--n];
		*p = 0;
	}
	/* The program ends with its supervisor: killed (SIGKILL, a crash),
	 * crac leaves no program running on unsupervised, holding its port,
	 * so that the next `crac start` could neither restore nor start cold.
	 * SIGTERM, what a stop forwards. Kept across the exec, and by a
	 * restore where the image has none (image_attrs.c; the checkpoint
	 * does not record it: $CRAC_SUPERVISOR_PID). A supervisor gone
	 * before this: nothing to run for. */
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (getppid() != sp->parent)
		_exit(125);
	sigprocmask(SIG_SETMASK, sp->mask, NULL);
	execvpe(sp->argv[0], sp->argv, sp->envp);
	sp->err = errno;
	_exit(sp->err == ENOENT ? 127 : 126);
}

/* Is environment entry e (NAME=...) named as one of over (NAME=...)? */
static bool env_overridden(const char *e, char *const *over, size_t n)
{
	size_t l = strcspn(e, "=");

	for (size_t i = 0; i < n; i++)
		if (over[i] && !strncmp(over[i], e, l) && over[i][l] == '=')
			return true;
	return false;
}

pid_t cli_super_spawn(struct cli_super *s, char *const argv[], char *const extra_env[])
{
	static char notify_kv[sizeof(s->notify_path) + 16], listen_kv[32];
	struct spawn sp = { .argv = argv, .mask = &s->old_mask, .chld_ignored = s->chld_ignored,
			    .parent = getpid() };
	char *over[8];
	size_t no = 0, ne = 0, k = 0;
	sigset_t all, was;
	pid_t pid;

	if (cli_super_prepare(s) < 0)
		return -1;
	/* the environment: ours, extra_env and these set over it */
	for (char *const *e = extra_env; e && *e && no < 4; e++)
		over[no++] = *e;
	if (s->notify_dir[0]) {
		snprintf(notify_kv, sizeof(notify_kv), "NOTIFY_SOCKET=%s", s->notify_path);
		over[no++] = notify_kv;
	}
	if (s->listen_fds > 0) {
		snprintf(listen_kv, sizeof(listen_kv), "LISTEN_PID=");
		over[no++] = sp.listen_pid = listen_kv;
	}
	while (environ[ne])
		ne++;
	/* glibc's execvpe runs a script without "#!" as /bin/sh SCRIPT ARGS,
	 * its argument vector on the stack: room for it, as posix_spawn makes */
	size_t argc = 0;
	while (argv[argc])
		argc++;
	size_t stack_len = (SPAWN_STACK + (argc + 2) * sizeof(char *) + 4095) & ~(size_t)4095;
	char *stack = mmap(NULL, stack_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED || !(sp.envp = malloc((ne + no + 1) * sizeof(char *)))) {
		cli_err("%s: out of memory", s->who);
		if (stack != MAP_FAILED)
			munmap(stack, stack_len);
		return -1;
	}
	for (size_t i = 0; i < ne; i++)
		if (!env_overridden(environ[i], over, no))
			sp.envp[k++] = environ[i];
	for (size_t i = 0; i < no; i++)
		sp.envp[k++] = over[i];
	sp.envp[k] = NULL;
	fflush(NULL);
	/* no signal handler of ours runs in the child before it resets them */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &was);
	/* clone3 where the kernel has CLONE_CLEAR_SIGHAND and no seccomp
	 * filter refuses clone3 (ENOSYS, EINVAL, EPERM: glibc's clone then) */
	static bool no_clone3;
	long r = -ENOSYS;
	if (!no_clone3) {
		struct cli_clone_args ca = {
			.flags = CLONE_VM | CLONE_VFORK | CLONE_CLEAR_SIGHAND,
			.exit_signal = SIGCHLD,
			.stack = (uintptr_t)stack,
			.stack_size = stack_len,
		};
		sp.handlers_cleared = true;
		r = cli_clone3_run(&ca, sizeof(ca), spawn_child, &sp);
		no_clone3 = r == -ENOSYS || r == -EINVAL || r == -EPERM;
	}
	int e;
	if (!no_clone3) {
		pid = r < 0 ? -1 : (pid_t)r;
		e = r < 0 ? (int)-r : 0;
	} else {
		sp.handlers_cleared = false;
		pid = clone(spawn_child, stack + stack_len, CLONE_VM | CLONE_VFORK | SIGCHLD, &sp);
		e = errno;
	}
	sigprocmask(SIG_SETMASK, &was, NULL);
	/* the child has exec'd or ended: our memory is ours alone again */
	munmap(stack, stack_len);
	free(sp.envp);
	if (pid < 0) {
		cli_err("%s: cannot start a process (clone): %s", s->who, strerror(e));
		return -1;
	}
	s->child = pid;
	s->started_ms = now_ms();
	s->ready_sent = false;
	if (sp.err) {
		/* it ended (127/126): its status is ours (cli_super_wait) */
		char show[CLI_PATH_SHOW_LEN];
		cli_err("cannot run %s: %s", cli_path_show(argv[0], show, sizeof(show)), strerror(sp.err));
	}
	return pid;
}

/* A message from the program on our NOTIFY_SOCKET: relayed (with the
 * descriptors of FDSTORE=1), READY noticed; one from anybody else ignored
 * (from_program), said at info level (the first NOTIFY_IGNORED_SAID of
 * them). */
#define NOTIFY_IGNORED_SAID 10
#define NOTIFY_BATCH 64
#define NOTIFY_MAX 4096
#define NOTIFY_MAX_TEXT "4096"

/* How often READY=1 is tried again while $NOTIFY_SOCKET is full. */
#define READY_RETRY_MS 50

/*
 * Says why a notification of the program was not relayed (line: one line,
 * without "crac: WHO: "): the first NOTIFY_IGNORED_SAID, then that no more
 * are said. A program that floods bad notifications, or a $NOTIFY_SOCKET
 * that stays full, must not flood our stderr, which may itself be a pipe
 * that blocks (the journal).
 */
static void notify_unrelayed(struct cli_super *s, const char *line)
{
	if (s->unrelayed < NOTIFY_IGNORED_SAID)
		cli_err("%s: %s", s->who, line);
	else if (s->unrelayed == NOTIFY_IGNORED_SAID)
		cli_err("%s: more notifications that cannot be relayed are not said", s->who);
	if (s->unrelayed < UINT_MAX)
		s->unrelayed++;
}

/* READY=1 to $NOTIFY_SOCKET: sent, or sent again later (cli_super_wait) while
 * its queue is full; said when it cannot be sent. */
static void ready_send(struct cli_super *s, const char *msg)
{
	int rc = cli_notify_send(s->outer_notify, msg);
	char line[512];

	s->ready_pending = rc == -EAGAIN;
	if (s->ready_pending) {
		s->ready_retry_ms = now_ms() + READY_RETRY_MS;
	} else if (rc < 0) {
		snprintf(line, sizeof(line), "cannot send READY=1 to NOTIFY_SOCKET %s: %s", s->outer_notify,
			 strerror(-rc));
		notify_unrelayed(s, line);
	}
	s->ready_sent = true;
}

/* A datagram that did not come from the program. */
static void notify_ignored(struct cli_super *s, struct ucred cred)
{
	/* the first few said; a flood (anybody may send to root's socket)
	 * does not go on into our log */
	if (s->ignored < NOTIFY_IGNORED_SAID)
		crac__log(CRAC_LOG_INFO, "%s: ignored a notification on the program's NOTIFY_SOCKET "
			  "%s from process %d (uid %d): it is neither the program (process %d) nor a "
			  "process it started", s->who, s->notify_path, (int)cred.pid, (int)cred.uid,
			  (int)s->child);
	else if (s->ignored == NOTIFY_IGNORED_SAID)
		crac__log(CRAC_LOG_INFO, "%s: more ignored notifications are not said (this one: "
			  "process %d, uid %d)", s->who, (int)cred.pid, (int)cred.uid);
	if (s->ignored < UINT_MAX)
		s->ignored++;
}

/* The program's datagram buf (n bytes, NUL-terminated, truncated when
 * trunc) with its n_fds descriptors: relayed to systemd, READY noticed. */
static void notify_relay(struct cli_super *s, char *buf, size_t n, bool trunc, struct ucred cred,
			 const int *fds, int n_fds)
{
	char out[NOTIFY_MAX + 2];   /* the lines again, one '\n' more at most */
	char line[512];
	size_t o = 0;
	bool ready = false;

	/* what systemd would ignore is not relayed cut: too long, or a NUL
	 * byte in it (the lines after it would be lost) */
	if (trunc || memchr(buf, 0, n)) {
		snprintf(line, sizeof(line), "a notification of process %d on its NOTIFY_SOCKET %s: not relayed",
			 (int)cred.pid, trunc ? "is longer than " NOTIFY_MAX_TEXT " bytes" : "holds a NUL byte");
		notify_unrelayed(s, line);
		return;
	}
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, "MAINPID=", 8))
			continue;   /* the supervisor is the main PID */
		if (!strcmp(l, "READY=1"))
			ready = true;
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%s\n", l);
		if (o >= sizeof(out))
			o = sizeof(out) - 1;
	}
	if (o && s->outer_notify) {
		int rc = cli_notify_send_fds(s->outer_notify, out, fds, n_fds);
		if (rc < 0) {
			snprintf(line, sizeof(line), "cannot relay the program's notification%s to NOTIFY_SOCKET "
				 "%s: %s%s", n_fds ? " and its descriptors" : "", s->outer_notify, strerror(-rc),
				 rc == -EAGAIN && ready ? " (its READY=1 is sent again until it gets there)" : "");
			notify_unrelayed(s, line);
		}
		/* a full queue (systemd busy, a reader that stopped): the
		 * READY=1 of it is sent again, never waited for here */
		if (ready && rc == -EAGAIN)
			ready_send(s, "READY=1\n");
		else if (ready)
			s->ready_sent = true;
	} else if (n_fds && !s->outer_notify) {
		crac__log(CRAC_LOG_INFO, "%s: the program sent %d descriptor(s) on its NOTIFY_SOCKET and "
			  "crac has no NOTIFY_SOCKET to pass them to: closed", s->who, n_fds);
	}
	if (ready && s->armed && s->trig.on_ready) {
		s->armed = false;
		fire(s, "--checkpoint-on-ready (the program sent READY=1)");
	}
}

static void notify_read(struct cli_super *s)
{
	/* systemd's own limit (NOTIFY_BUFFER_MAX): a longer datagram reads
	 * as MSG_TRUNC */
	char buf[NOTIFY_MAX + 1];
	union {
		struct cmsghdr align;
		/* room for the credentials, the most descriptors one message
		 * carries (SCM_MAX_FD, CLI_NOTIFY_MAX_FDS: the kernel puts
		 * them before the pidfd) and the pidfd */
		char b[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(CLI_NOTIFY_MAX_FDS * sizeof(int)) +
		       CMSG_SPACE(sizeof(int)) + 64];
	} ctl;
	int fds[CLI_NOTIFY_MAX_FDS];

	/* a batch at a time: a sender that never stops (anybody may reach
	 * root's socket) must not keep the supervisor from its signals, its
	 * triggers and its child; poll() brings us back for the rest */
	for (int batch = 0; batch < NOTIFY_BATCH; batch++) {
		struct iovec io = { buf, NOTIFY_MAX };
		struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl.b,
				    .msg_controllen = sizeof(ctl.b) };
		ssize_t n = recvmsg(s->notify_fd, &m, MSG_CMSG_CLOEXEC);
		if (n < 0)
			return;
		buf[n] = 0;
		struct ucred cred = { .pid = 0, .uid = (uid_t)-1 };
		int pidfd = -1, n_fds = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
			if (c->cmsg_level != SOL_SOCKET)
				continue;
			if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(cred)))
				memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			else if (c->cmsg_type == SCM_PIDFD && c->cmsg_len >= CMSG_LEN(sizeof(int)))
				memcpy(&pidfd, CMSG_DATA(c), sizeof(int));
			else if (c->cmsg_type == SCM_RIGHTS)   /* descriptors sent along (FDSTORE=1) */
				for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
					int fd;
					memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
					if (n_fds < CLI_NOTIFY_MAX_FDS)
						fds[n_fds++] = fd;
					else
						close(fd);
				}
		}
		if (m.msg_flags & MSG_CTRUNC) {
			char line[256];
			snprintf(line, sizeof(line), "a notification of process %d on its NOTIFY_SOCKET carried "
				 "more than %d descriptors: the rest were lost", (int)cred.pid, CLI_NOTIFY_MAX_FDS);
			notify_unrelayed(s, line);
		}
		if (from_program(s, cred.pid, pidfd))
			notify_relay(s, buf, (size_t)n, m.msg_flags & MSG_TRUNC, cred, fds, n_fds);
		else
			notify_ignored(s, cred);
		if (pidfd >= 0)
			close(pidfd);
		for (int k = 0; k < n_fds; k++)
			close(fds[k]);
	}
}

/* The first PING after the loader's jump into the program ("j"): the
 * restored libcrac puts the threads back before its control endpoint is up. */
#define PING_AFTER_JUMP_MS 1

/* Has the restored process its control endpoint up? */
static bool answers(int pid)
{
	const char *ping[] = { "PING", NULL };
	char err[512];
	int st = -1;

	return crac__control_request(pid, ping, NULL, &st, err, sizeof(err)) == 0 && st == 0;
}

/* The child ended with wait status ws: the same end for us. */
static int end_like(struct cli_super *s, int ws)
{
	notify_close(s);
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	if (WIFSIGNALED(ws)) {
		int sig = WTERMSIG(ws);
		sigset_t set;
		fflush(NULL);
		/* the child dumped its core: no second (and wrong) core of ours */
		if (WCOREDUMP(ws)) {
			struct rlimit no = { 0, 0 };
			setrlimit(RLIMIT_CORE, &no);
		}
		signal(sig, SIG_DFL);
		sigemptyset(&set);
		sigaddset(&set, sig);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		if (sig == SIGKILL)
			kill(getpid(), SIGKILL);
		else if (sig != SIGSTOP)
			raise(sig);
		return 128 + sig;
	}
	return 1;
}

/*
 * Restoring with the loader's point-of-no-return pipe: what has come?
 * "p" at its point of no return (before it changes anything), "j" right
 * before it jumps into the program (then it closes the pipe). A child that
 * ends without "j" never ran any code of the program: a refusal, or a
 * restore that failed after the point of no return (a damaged chunk found
 * while loading, the loader crashing), which the child's exit then says;
 * it may be started cold. Read what is there (non-blocking).
 */
static void ponr_read(struct cli_super *s)
{
	char c[8];
	ssize_t n;

	while ((n = read(s->ponr_fd, c, sizeof(c))) > 0)
		for (ssize_t i = 0; i < n; i++) {
			if (c[i] == 'p')
				s->ponr_seen = true;
			else if (c[i] == 'j')
				s->ponr_jumped = true;
		}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		s->ponr_eof = true;
}

int cli_super_wait(struct cli_super *s, bool restoring)
{
	bool restored_up = !restoring;
	int delay = 1;
	long long next_ping = 0, next_listen = 0;

	/*
	 * Restoring through the loader: the restored process cannot answer
	 * before the loader jumped into it, so no PING before its "j" on the
	 * pipe, or the pipe's end (a PING reads /proc/PID/status and environ
	 * of the loader while it checks, maps and fills the image: CPU and the
	 * loader's mmap lock taken from a restore that is all about time);
	 * then the first after PING_AFTER_JUMP_MS, the rest backing off as
	 * before.
	 */
	bool wait_ponr = restoring && s->ponr_fd > 0;
	s->ponr_seen = s->ponr_jumped = s->ponr_eof = false;
	for (;;) {
		long long now = now_ms(), wake = -1;
		bool ponr_poll = wait_ponr && !s->ponr_jumped && !s->ponr_eof;
		if (s->armed && s->trig.after_ms >= 0)
			wake = s->started_ms + s->trig.after_ms;
		if (s->armed && s->trig.listen_port && (wake < 0 || next_listen < wake))
			wake = next_listen;
		if (!restored_up && !ponr_poll && (wake < 0 || next_ping < wake))
			wake = next_ping;
		if (s->ready_pending && (wake < 0 || s->ready_retry_ms < wake))
			wake = s->ready_retry_ms;
		int timeout = wake < 0 ? -1 : wake <= now ? 0 : (int)(wake - now);
		struct pollfd pf[4] = {
			{ .fd = s->sig_fd, .events = POLLIN },
			{ .fd = s->done_pipe[0], .events = POLLIN },
			{ .fd = ponr_poll ? s->ponr_fd : -1, .events = POLLIN },
			{ .fd = s->notify_fd, .events = POLLIN },
		};
		if (poll(pf, s->notify_fd >= 0 ? 4 : 3, timeout) < 0 && errno != EINTR) {
			cli_err("%s: poll: %s", s->who, strerror(errno));
			return 125;
		}
		if (pf[1].revents)
			request_done(s, NULL);
		if (ponr_poll && pf[2].revents) {
			ponr_read(s);
			if (s->ponr_jumped || s->ponr_eof)
				next_ping = now_ms() + PING_AFTER_JUMP_MS;
		}
		if (s->notify_fd >= 0 && pf[3].revents)
			notify_read(s);
		if (pf[0].revents) {
			struct signalfd_siginfo si;
			while (read(s->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				int sig = (int)si.ssi_signo;
				if (sig == SIGCHLD)
					continue;   /* below */
				if (sig == s->trig.on_signal) {
					/* ours, never the program's: it would die of it */
					char why[64];
					snprintf(why, sizeof(why), "--checkpoint-on %s", strsignal(sig));
					if (s->no_write_why)
						cli_err("%s: %s: %s; no checkpoint taken", s->who, why,
							s->no_write_why);
					else
						fire(s, why);
				} else {
					/* a stop signal during a restore: its end, never a cold start */
					if (!restored_up && (sig == SIGTERM || sig == SIGINT || sig == SIGHUP ||
							     sig == SIGQUIT))
						s->stop_sig = sig;
					kill(s->child, sig);
				}
			}
		}
		int ws;
		pid_t w = waitpid(s->child, &ws, WNOHANG);
		if (w == s->child) {
			if (s->busy) {
				/* its answer is on the way (the original exits after its
				 * image is written): take it first */
				struct pollfd d = { .fd = s->done_pipe[0], .events = POLLIN };
				if (poll(&d, 1, 5000) > 0)
					request_done(s, &ws);
			}
			if (!restored_up) {
				/* Did the loader jump into the program? Then the
				 * program ran: its end is ours, it never runs twice.
				 * Without a pipe (none given), its point of no return
				 * is as far as we know. */
				if (s->ponr_fd > 0 && !s->ponr_eof)
					ponr_read(s);
				bool ran = s->ponr_fd > 0 ? s->ponr_jumped : s->ponr_seen;
				if (!ran && s->stop_sig)
					return end_like(s, s->stop_sig);   /* as if killed by it */
				if (!ran && !s->stop_sig)
					return CLI_SUPER_RESTORE_FAILED | ws;
			}
			return end_like(s, ws);
		}
		now = now_ms();
		if (!restored_up && !(wait_ponr && !s->ponr_jumped && !s->ponr_eof) && now >= next_ping) {
			if (answers(s->child)) {
				restored_up = true;
				if (s->restored)
					s->restored(s);
				if (s->outer_notify && !s->ready_sent)
					ready_send(s, "READY=1\n");
			} else {
				next_ping = now + delay;
				if (delay < 20)
					delay *= 2;
			}
		}
		if (s->ready_pending && now >= s->ready_retry_ms)
			ready_send(s, "READY=1\n");
		if (s->armed && s->trig.after_ms >= 0 && now >= s->started_ms + s->trig.after_ms) {
			s->armed = false;
			char why[80];
			snprintf(why, sizeof(why), "--checkpoint-after %lld ms", s->trig.after_ms);
			fire(s, why);
		}
		if (s->armed && s->trig.listen_port && now >= next_listen) {
			next_listen = now + 10;
			if (is_listening(s->child, &s->trig)) {
				s->armed = false;
				char why[80];
				snprintf(why, sizeof(why), "--checkpoint-when-listening (port %d)", s->trig.listen_port);
				fire(s, why);
			}
		}
	}
}

int cli_super_end(struct cli_super *s, int ws)
{
	return end_like(s, ws);
}
