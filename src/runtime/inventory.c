/* SPDX-License-Identifier: MIT */
/*
 * inventory.c - what the process holds, read from /proc/self and the
 * descriptors themselves: every fd with its kind, path or address, flags
 * and offset; shared mappings and SysV shm; children; POSIX timers and
 * itimers. The checks (checks.c) decide what of it an image can restore.
 */
#include "runtime/checks.h"
#include "runtime/runtime.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static struct inv_item *add(struct inventory *inv, enum inv_class cls, const char *kind)
{
	if (inv->count == inv->cap) {
		size_t cap = inv->cap ? inv->cap * 2 : 64;
		struct inv_item *n = realloc(inv->items, cap * sizeof(*n));
		if (!n)
			return NULL;
		inv->items = n;
		inv->cap = cap;
	}
	struct inv_item *it = &inv->items[inv->count++];
	memset(it, 0, sizeof(*it));
	it->cls = cls;
	it->kind = kind;
	it->fd = -1;
	it->offset = -1;
	return it;
}

void crac__inventory_free(struct inventory *inv)
{
	free(inv->items);
	inv->items = NULL;
	inv->count = inv->cap = 0;
}

/* ---- sockets ----------------------------------------------------------- */

static void format_addr(const struct sockaddr_storage *ss, socklen_t len, char *out, size_t n)
{
	char host[INET6_ADDRSTRLEN];

	switch (ss->ss_family) {
	case AF_INET: {
		const struct sockaddr_in *a = (const void *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(out, n, "%s:%u", host, ntohs(a->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *a = (const void *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(out, n, "[%s]:%u", host, ntohs(a->sin6_port));
		break;
	}
	case AF_UNIX: {
		const struct sockaddr_un *a = (const void *)ss;
		size_t plen = len > offsetof(struct sockaddr_un, sun_path)
			? len - offsetof(struct sockaddr_un, sun_path) : 0;
		if (plen == 0)
			snprintf(out, n, "(unnamed)");
		else if (a->sun_path[0] == 0)
			snprintf(out, n, "@%.*s", (int)(plen - 1), a->sun_path + 1);
		else
			snprintf(out, n, "%.*s", (int)strnlen(a->sun_path, plen), a->sun_path);
		break;
	}
	default:
		snprintf(out, n, "(family %d)", ss->ss_family);
	}
}

static void describe_socket(int fd, struct inv_item *it)
{
	struct sockaddr_storage local, peer;
	socklen_t llen = sizeof(local), plen = sizeof(peer), ol = sizeof(int);
	int domain = 0, type = 0, proto = 0, acc = 0;
	char l[300] = "?", p[300] = "";

	getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &ol);
	ol = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ol);
	ol = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &ol);
	ol = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &ol);
	it->family = domain;
	it->socktype = type;
	it->listening = acc != 0;
	if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
		format_addr(&local, llen, l, sizeof(l));
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
		format_addr(&peer, plen, p, sizeof(p));

	if (domain == AF_INET || domain == AF_INET6)
		it->kind = type == SOCK_STREAM ? "tcp" : type == SOCK_DGRAM ? "udp" : "socket";
	else if (domain == AF_UNIX)
		it->kind = "unix";
	else
		it->kind = "socket";

	if (it->listening)
		snprintf(it->name, sizeof(it->name), "%s", l);
	else if (*p)
		snprintf(it->name, sizeof(it->name), "%s->%s", l, p);
	else
		snprintf(it->name, sizeof(it->name), "%s", l);
	const char *tn = type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ? "datagram"
			 : type == SOCK_SEQPACKET ? "seqpacket" : type == SOCK_RAW ? "raw" : "?";
	snprintf(it->detail, sizeof(it->detail), "%s %s socket%s%s",
		 domain == AF_INET ? "IPv4" : domain == AF_INET6 ? "IPv6" : domain == AF_UNIX ? "Unix"
		 : domain == AF_NETLINK ? "netlink" : "other", tn,
		 it->listening ? ", listening" : *p ? ", connected" : "",
		 domain == AF_NETLINK ? "" : "");
	it->reopenable = it->listening && (type == SOCK_STREAM || type == SOCK_SEQPACKET) &&
		(domain == AF_INET || domain == AF_INET6 ||
					   (domain == AF_UNIX && l[0] != '(' ));
}

/* ---- descriptors ------------------------------------------------------- */

static const char *anon_kind(const char *link)
{
	static const struct { const char *tag, *kind; } map[] = {
		{ "[eventfd]", "eventfd" }, { "[eventpoll]", "epoll" }, { "[timerfd]", "timerfd" },
		{ "[signalfd]", "signalfd" }, { "inotify", "inotify" }, { "[io_uring]", "io_uring" },
		{ "[userfaultfd]", "userfaultfd" }, { "[pidfd]", "pidfd" }, { "[fanotify]", "fanotify" },
		{ "[perf_event]", "perf_event" }, { "bpf", "bpf" },
	};
	const char *t = link + strlen("anon_inode:");

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strstr(t, map[i].tag))
			return map[i].kind;
	return "anon_inode";
}

static void flags_text(int fl, char *out, size_t n)
{
	const char *acc = (fl & O_ACCMODE) == O_RDONLY ? "O_RDONLY"
		: (fl & O_ACCMODE) == O_WRONLY ? "O_WRONLY" : "O_RDWR";
	snprintf(out, n, "%s%s%s%s", acc, fl & O_APPEND ? "|O_APPEND" : "",
		 fl & O_NONBLOCK ? "|O_NONBLOCK" : "", fl & O_SYNC ? "|O_SYNC" : "");
}

static void describe_fd(int fd, struct inv_item *it)
{
	char proc[64], link[PATH_MAX] = "", fl[64];
	ssize_t n;

	it->fd = fd;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, link, sizeof(link) - 1);
	if (n > 0)
		link[n] = 0;
	fstat(fd, &it->st);
	it->flags = fcntl(fd, F_GETFL);
	it->fd_flags = fcntl(fd, F_GETFD);
	flags_text(it->flags, fl, sizeof(fl));
	snprintf(it->name, sizeof(it->name), "%s", link);

	size_t ll = strlen(link);
	it->deleted = ll > 10 && strcmp(link + ll - 10, " (deleted)") == 0;

	switch (it->st.st_mode & S_IFMT) {
	case S_IFREG:
		if (strncmp(link, "/memfd:", 7) == 0) {
			it->kind = "memfd";
			snprintf(it->detail, sizeof(it->detail), "memfd, %lld bytes",
				 (long long)it->st.st_size);
			return;
		}
		it->kind = "file";
		it->offset = lseek(fd, 0, SEEK_CUR);
		it->reopenable = !it->deleted;
		snprintf(it->detail, sizeof(it->detail), "regular file, %s, offset %lld, %lld bytes%s",
			 fl, (long long)it->offset, (long long)it->st.st_size,
			 it->deleted ? ", deleted" : "");
		return;
	case S_IFDIR:
		it->kind = "dir";
		it->reopenable = !it->deleted;
		snprintf(it->detail, sizeof(it->detail), "directory%s", it->deleted ? ", deleted" : "");
		return;
	case S_IFIFO:
		if (strncmp(link, "pipe:", 5) == 0) {
			it->kind = "pipe";
			snprintf(it->detail, sizeof(it->detail), "pipe, %s end",
				 (it->flags & O_ACCMODE) == O_WRONLY ? "write" : "read");
		} else {
			it->kind = "fifo";
			snprintf(it->detail, sizeof(it->detail), "named pipe, %s", fl);
		}
		return;
	case S_IFSOCK:
		describe_socket(fd, it);
		return;
	case S_IFCHR:
		it->kind = isatty(fd) ? "tty" : "device";
		snprintf(it->detail, sizeof(it->detail), "%s %u:%u, %s",
			 isatty(fd) ? "terminal" : "character device",
			 major(it->st.st_rdev), minor(it->st.st_rdev), fl);
		return;
	case S_IFBLK:
		it->kind = "device";
		snprintf(it->detail, sizeof(it->detail), "block device %u:%u, %s",
			 major(it->st.st_rdev), minor(it->st.st_rdev), fl);
		return;
	default:
		break;
	}
	if (strncmp(link, "anon_inode:", 11) == 0) {
		it->kind = anon_kind(link);
		snprintf(it->detail, sizeof(it->detail), "%s", it->kind);
	} else {
		it->kind = "fd";
		snprintf(it->detail, sizeof(it->detail), "mode 0%o", it->st.st_mode);
	}
}

static int take_fds(struct inventory *inv, crac_report *rep)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int self;

	if (!d) {
		int rc = -errno;
		crac__report_add(rep, CRAC_PHASE_CHECK, "inventory", rc, "cannot list /proc/self/fd: %s",
				 strerror(-rc));
		return rc;
	}
	self = dirfd(d);
	while ((e = readdir(d))) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		struct inv_item *it;

		if (*end || e->d_name[0] == '.' || fd == self || fd <= 2 || crac__is_internal_fd((int)fd))
			continue;
		if (!(it = add(inv, INV_FD, "fd"))) {
			closedir(d);
			return -ENOMEM;
		}
		describe_fd((int)fd, it);
	}
	closedir(d);
	return 0;
}

/* ---- mappings ---------------------------------------------------------- */

bool crac__jvm_perfdata(const char *path, long pid)
{
	static const char dir[] = "/tmp/hsperfdata_";
	const char *user, *slash, *p;
	long n = 0;

	if (pid <= 0 || strncmp(path, dir, sizeof(dir) - 1) != 0)
		return false;
	user = path + sizeof(dir) - 1;
	slash = strchr(user, '/');
	if (!slash || slash == user || !slash[1])
		return false;
	/* the last component: the pid in decimal, nothing after it (a deleted
	 * file's " (deleted)" included: that one cannot be mapped again) */
	for (p = slash + 1; *p; p++) {
		if (*p < '0' || *p > '9' || n > pid)
			return false;
		n = n * 10 + (*p - '0');
	}
	return slash[1] != '0' && n == pid;
}

static int take_mappings(struct inventory *inv, crac_report *rep)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[PATH_MAX + 128];

	if (!f) {
		int rc = -errno;
		crac__report_add(rep, CRAC_PHASE_CHECK, "inventory", rc, "cannot read /proc/self/maps: %s",
				 strerror(-rc));
		return rc;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, ino;
		char perms[8], path[PATH_MAX] = "";
		int off = 0;

		if (sscanf(line, "%lx-%lx %7s %*x %*x:%*x %lu %n", &lo, &hi, perms, &ino, &off) < 4)
			continue;
		if (off > 0) {
			snprintf(path, sizeof(path), "%s", line + off);
			path[strcspn(path, "\n")] = 0;
		}
		size_t pl = strlen(path);
		bool deleted = pl > 10 && strcmp(path + pl - 10, " (deleted)") == 0;
		const char *kind = NULL;
		char what[64];

		if (perms[3] == 's') {
			if (strncmp(path, "/SYSV", 5) == 0) {
				kind = "shm";
				snprintf(what, sizeof(what), "SysV shared memory");
			} else if (strncmp(path, "/memfd:", 7) == 0) {
				kind = "mapping";
				snprintf(what, sizeof(what), "shared memfd mapping");
			} else if (!*path || strncmp(path, "/dev/zero", 9) == 0) {
				kind = "mapping";
				snprintf(what, sizeof(what), "shared anonymous mapping");
			} else if (perms[1] == 'w' || deleted) {
				kind = "mapping";
				snprintf(what, sizeof(what), deleted ? "shared mapping of a deleted file"
					 : "writable shared file mapping");
			}
			/* A read-only shared mapping of a file that still exists is
			 * mapped again from the file at restore (e.g. glibc's
			 * gconv-modules.cache): nothing to refuse. */
		} else if (deleted && path[0] == '/' && strncmp(path, "/memfd:", 7) != 0) {
			kind = "mapping";
			snprintf(what, sizeof(what), "private mapping of a deleted file");
		}
		if (!kind)
			continue;
		struct inv_item *it = add(inv, INV_MAPPING, kind);
		if (!it) {
			fclose(f);
			return -ENOMEM;
		}
		snprintf(it->name, sizeof(it->name), "%s", *path ? path : "(anonymous)");
		snprintf(it->detail, sizeof(it->detail), "%s %lx-%lx %s, %lu KiB", what, lo, hi, perms,
			 (hi - lo) >> 10);
		/* shared anonymous memory and SysV shm show as deleted files */
		it->deleted = deleted && strstr(what, "deleted file") != NULL;
		it->jvm_perfdata = perms[3] == 's' && perms[1] == 'w' && !deleted &&
				   crac__jvm_perfdata(path, (long)getpid());
	}
	fclose(f);
	return 0;
}

/* ---- children ---------------------------------------------------------- */

static int take_children(struct inventory *inv)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char path[300];
		FILE *f;
		int pid;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/children", e->d_name);
		if (!(f = fopen(path, "re")))
			continue;
		while (fscanf(f, "%d", &pid) == 1) {
			char comm[64] = "?", cpath[64];
			struct inv_item *it = add(inv, INV_CHILD, "child");
			if (!it) {
				fclose(f);
				closedir(d);
				return -ENOMEM;
			}
			snprintf(cpath, sizeof(cpath), "/proc/%d/comm", pid);
			FILE *c = fopen(cpath, "re");
			if (c) {
				if (fgets(comm, sizeof(comm), c))
					comm[strcspn(comm, "\n")] = 0;
				fclose(c);
			}
			snprintf(it->name, sizeof(it->name), "%s", comm);
			snprintf(it->detail, sizeof(it->detail), "child process %d (%s)", pid, comm);
			it->fd = pid;
		}
		fclose(f);
	}
	closedir(d);
	return 0;
}

/* ---- timers ------------------------------------------------------------ */

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_TIMER_CREATE_RESTORE_IDS_GET 2
#endif

/*
 * The clock id the kernel gives a timer created on CLOCK_PROCESS_CPUTIME_ID
 * (its own encoding of "this process's CPU time": pid 0, the scheduler's
 * clock), which /proc/self/timers shows; timer_create takes it back as the
 * same clock of the process that calls it.
 */
#define PROCESS_CPUCLOCK_SELF (-6)

const char *crac__posix_timer_refusal(const char *notify, long clock)
{
	if (!strncmp(notify, "signal/tid.", 11) || !strncmp(notify, "none/tid.", 9) ||
	    !strncmp(notify, "thread/", 7))
		return "it signals one thread (SIGEV_THREAD_ID, as glibc's SIGEV_THREAD timers do), and a "
		       "restored thread may get another tid";
	if (strncmp(notify, "signal/pid.", 11) != 0 && strncmp(notify, "none/pid.", 9) != 0)
		return "its notification cannot be set up again";
	if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC && clock != CLOCK_BOOTTIME &&
	    clock != CLOCK_PROCESS_CPUTIME_ID && clock != PROCESS_CPUCLOCK_SELF)
		return "its clock (a thread's CPU time, another process's, or an alarm clock) cannot be set "
		       "up again";
	if (prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_GET, 0, 0, 0) < 0 ||
	    crac__pretend_missing("timer_restore_ids"))
		return "this kernel cannot create a timer with a given id (PR_TIMER_CREATE_RESTORE_IDS, "
		       "Linux 6.14)";
	return NULL;
}

static int take_timers(struct inventory *inv)
{
	static const struct { int which; const char *name; } its[] = {
		{ ITIMER_REAL, "ITIMER_REAL" }, { ITIMER_VIRTUAL, "ITIMER_VIRTUAL" },
		{ ITIMER_PROF, "ITIMER_PROF" },
	};
	FILE *f = fopen("/proc/self/timers", "re");
	char line[256];

	if (f) {
		struct inv_item *it = NULL;
		char notify[64] = "";
		while (fgets(line, sizeof(line), f)) {
			int id;
			long clock;
			line[strcspn(line, "\n")] = 0;
			if (sscanf(line, "ID: %d", &id) == 1) {
				if (!(it = add(inv, INV_TIMER, "timer"))) {
					fclose(f);
					return -ENOMEM;
				}
				snprintf(it->name, sizeof(it->name), "posix:%d", id);
				snprintf(it->detail, sizeof(it->detail), "POSIX timer %d", id);
				it->timer_refusal = "its entry in /proc/self/timers was not understood";
				notify[0] = 0;
			} else if (it && (!strncmp(line, "ClockID:", 8) || !strncmp(line, "notify:", 7))) {
				size_t l = strlen(it->detail);
				snprintf(it->detail + l, sizeof(it->detail) - l, ", %s", line);
				if (!strncmp(line, "notify: ", 8))
					snprintf(notify, sizeof(notify), "%.60s", line + 8);
				/* the last line of a timer (ClockID follows notify) */
				if (sscanf(line, "ClockID: %ld", &clock) == 1)
					it->timer_refusal = crac__posix_timer_refusal(notify, clock);
			}
		}
		fclose(f);
	}
	for (size_t i = 0; i < sizeof(its) / sizeof(its[0]); i++) {
		struct itimerval v;
		if (getitimer(its[i].which, &v) == 0 &&
		    (v.it_value.tv_sec || v.it_value.tv_usec)) {
			struct inv_item *it = add(inv, INV_TIMER, "timer");
			if (!it)
				return -ENOMEM;
			snprintf(it->name, sizeof(it->name), "%s", its[i].name);
			snprintf(it->detail, sizeof(it->detail), "interval timer %s armed (%ld.%06ld s left)",
				 its[i].name, (long)v.it_value.tv_sec, (long)v.it_value.tv_usec);
		}
	}
	return 0;
}

int crac__inventory_take(struct inventory *inv, crac_report *rep)
{
	int rc;

	memset(inv, 0, sizeof(*inv));
	if ((rc = take_fds(inv, rep)) < 0 || (rc = take_mappings(inv, rep)) < 0 ||
	    (rc = take_children(inv)) < 0 || (rc = take_timers(inv)) < 0) {
		if (rc == -ENOMEM)
			crac__report_add(rep, CRAC_PHASE_CHECK, "inventory", rc, "out of memory");
		return rc;
	}
	return 0;
}
