/* SPDX-License-Identifier: MIT */
/*
 * cmd_restore_criu.c - `crac restore DIR` for an image the criu engine
 * wrote (DIR holds the crac-criu marker, src/engines/criu.c):
 *
 *   crac restore DIR [--trust-owner] [--env K=V]... [-- ARGS...]
 *
 *   1. the image must be the restoring user's (every file, not writable by
 *      group or others), unless --trust-owner: an image is code, and CRIU
 *      restores the credentials it finds in it; that look and the read of
 *      the marker are made by helpers bounded by crac restore's limit
 *      (image/dir.c): a file system that does not answer is given up on;
 *   2. (`criu check` only if criu restore fails: then a CRIU that fails it
 *      is refused with the same text as the engine's);
 *   3. the new arguments and environment go into a memfd;
 *   4. `criu restore -D DIR -W WORK -o restore.log --restore-detached
 *      --restore-sibling [--shell-job] [--inherit-fd fd[N]:ID]...
 *      $CRAC_CRIU_OPTS`: the restored process becomes our child (sibling of
 *      criu), same pid as at checkpoint; stdin/stdout/stderr of the
 *      checkpointed process (pipes, sockets, files) are re-attached to ours;
 *   5. the RESTORED signal to the restored checkpointing thread (criu.h),
 *      carrying the memfd's number; its checkpoint call returns
 *      CRAC_RESTORED and the after_restore callbacks run;
 *   6. we wait for it, forward SIGTERM/SIGHUP (and SIGINT/SIGQUIT sent by
 *      a process, not by the terminal, which reaches it anyway) and exit
 *      with its status (128 + signal if it was killed), so that a
 *      supervisor of `crac restore` sees the program's end.
 * criu and the restored process are waited for even when our caller left
 * SIGCHLD ignored (SIG_DFL here).
 * criu's log is kept in WORK (a private directory under $TMPDIR or /tmp)
 * only when the restore failed, and the message names it.
 */
#include "cli.h"
#include "core/internal.h"
#include "engines/criu.h"
#include "image/bounded.h"
#include "image/dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_ARGS 96
#define INHERIT_BASE 200   /* criu gets our fd N as fd INHERIT_BASE + N */

struct marker {
	int pid, tid, shell_job;
	unsigned uid;
	char stdio[3][PATH_MAX];
};

/* The marker's size at most: its lines, three paths among them. */
#define MARKER_MAX (4 * (PATH_MAX + 64))

static int read_marker(const char *dir, struct marker *m)
{
	char path[PATH_MAX + 32], line[PATH_MAX + 64], msg[PATH_MAX + 400];
	struct stat st;
	bool magic = false;

	memset(m, 0, sizeof(*m));
	snprintf(path, sizeof(path), "%s/%s", dir, CRAC_CRIU_MARKER);
	/* read whole by a bounded helper (no link followed: a regular file) */
	char *text = malloc(MARKER_MAX + 1);
	int n = text ? crac_img_read_msg(path, text, MARKER_MAX, &st, msg, sizeof(msg)) : -ENOMEM;
	if (n < 0) {
		if (n == -ENOMEM)
			snprintf(msg, sizeof(msg), "%s: %s", path, strerror(ENOMEM));
		if (n == -ETIMEDOUT)
			cli_err("restore %s: %s", dir, msg);
		else
			cli_err("%s", msg);
		free(text);
		return -1;
	}
	text[n] = 0;
	for (char *at = text, *end; *at; at = *end ? end + 1 : end) {
		end = at + strcspn(at, "\n");
		snprintf(line, sizeof(line), "%.*s", (int)(end - at), at);
		if (!strcmp(line, CRAC_CRIU_MARKER_MAGIC))
			magic = true;
		else if (!strncmp(line, "pid=", 4))
			m->pid = atoi(line + 4);
		else if (!strncmp(line, "tid=", 4))
			m->tid = atoi(line + 4);
		else if (!strncmp(line, "uid=", 4))
			m->uid = (unsigned)strtoul(line + 4, NULL, 10);
		else if (!strncmp(line, "shell_job=", 10))
			m->shell_job = atoi(line + 10);
		else if (!strncmp(line, "stdio", 5) && line[5] >= '0' && line[5] <= '2' && line[6] == '=')
			snprintf(m->stdio[line[5] - '0'], sizeof(m->stdio[0]), "%.4095s", line + 7);
	}
	free(text);
	if (!magic || m->pid <= 0 || m->tid <= 0) {
		cli_err("%s is not a marker of the criu engine (first line \"%s\", a pid and a tid expected)",
			path, CRAC_CRIU_MARKER_MAGIC);
		return -1;
	}
	return 0;
}

/* What check_owner's helper found: the first of DIR and its entries that
 * is not the user's or is writable by others. Written by the helper's own
 * instructions only (its system calls write into its stack): a helper
 * given up on writes nothing here. */
struct owner_look {
	const char *dir;
	unsigned me;
	int res;              /* 0, or -errno of DIR's open or fstat */
	bool bad;             /* one found: */
	unsigned uid, mode;   /* its owner (-1: its lstat failed) and mode */
	char name[256];       /* its name in DIR; "": DIR itself */
};

/* Is st not the user's, or writable by group or others? */
static bool not_ours(const struct stat *st, unsigned me)
{
	return st->st_uid != me || (st->st_mode & (S_IWGRP | S_IWOTH));
}

/* check_owner's helper: raw system calls only (image/bounded.h). */
static void owner_look(void *arg)
{
	struct owner_look *ol = arg;
	struct stat st;
	char dents[4096] __attribute__((aligned(8)));
	long dfd = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)ol->dir,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	long r = dfd < 0 ? dfd : crac_raw_syscall5(SYS_fstat, dfd, (long)&st, 0, 0, 0);

	if (r < 0) {
		if (dfd >= 0)
			crac_raw_syscall3(SYS_close, dfd, 0, 0);
		ol->res = (int)r;
		return;
	}
	ol->res = 0;
	if (not_ours(&st, ol->me)) {
		ol->bad = true;
		ol->uid = st.st_uid;
		ol->mode = st.st_mode;
		ol->name[0] = 0;
	}
	long got;
	while (!ol->bad && (got = crac_raw_syscall3(SYS_getdents64, dfd, (long)dents, sizeof(dents))) > 0)
		for (long at = 0; at < got && !ol->bad;) {
			/* linux_dirent64: ino 8, off 8, reclen 2, type 1, name */
			unsigned short reclen = *(unsigned short *)(void *)(dents + at + 16);
			const char *n = dents + at + 19;
			at += reclen;
			if (!strcmp(n, ".") || !strcmp(n, ".."))
				continue;
			if (crac_raw_syscall5(SYS_newfstatat, dfd, (long)n, (long)&st, AT_SYMLINK_NOFOLLOW, 0) < 0)
				st.st_uid = (uid_t)-1;
			if (not_ours(&st, ol->me)) {
				size_t k = 0;
				for (; n[k] && k + 1 < sizeof(ol->name); k++)
					ol->name[k] = n[k];
				ol->name[k] = 0;
				ol->uid = st.st_uid;
				ol->mode = st.st_mode;
				ol->bad = true;
			}
		}
	crac_raw_syscall3(SYS_close, dfd, 0, 0);
}

/* Step 1: the directory and every file in it are ours and not writable by
 * others; looked at by a helper bounded by crac restore's limit. */
static int check_owner(const char *dir, bool trust)
{
	struct owner_look ol = { .dir = dir, .me = (unsigned)geteuid(), .res = -EINPROGRESS };
	char show[CLI_PATH_SHOW_LEN], why[200];

	if (trust)
		return 0;
	if (crac_img_bounded_call("owner", owner_look, &ol, true, why, sizeof(why)) < 0) {
		const char *d = cli_path_show(dir, show, sizeof(show));
		cli_err("restore %s: the check of the owner of %s and its files %s", d, d, why);
		return -1;
	}
	if (ol.res < 0) {
		cli_err("%s: %s", cli_path_show(dir, show, sizeof(show)), strerror(-ol.res));
		return -1;
	}
	if (!ol.bad)
		return 0;
	const char *name = ol.name;
	if (ol.uid != ol.me)
		cli_err("%s%s%s is owned by uid %u, not by the restoring user (uid %u): an image is code, "
			"and CRIU restores the credentials it records; `crac restore --trust-owner` accepts it",
			cli_path_show(dir, show, sizeof(show)), *name ? "/" : "", name, ol.uid, ol.me);
	else
		cli_err("%s%s%s can be written by other users (mode %o): they could change the program "
			"it restores; `crac restore --trust-owner` accepts it",
			cli_path_show(dir, show, sizeof(show)), *name ? "/" : "", name, ol.mode & 07777);
	return -1;
}

/*
 * The criu id of what stdio fd N was at checkpoint, if it is re-attached
 * to our fd N: pipes and sockets by inode, regular files by path (relative
 * to /, as CRIU names them). Terminals go with --shell-job. Devices
 * (/dev/null...) are not: CRIU names a file by its path only, so with
 * /dev/null at fds 0 and 1 both would be restored from our fd 0; CRIU
 * opens the device again instead.
 */
static const char *inherit_id(const char *what)
{
	if (!strncmp(what, "pipe:[", 6) || !strncmp(what, "socket:[", 8))
		return what;
	if (what[0] == '/' && what[1] && strncmp(what, "/dev/", 5))
		return what + 1;
	return NULL;
}

static pid_t child_pid;

static void forward(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	/* the terminal's SIGINT/SIGQUIT reach the restored process itself
	 * (same process group with --shell-job); a kill(1) does not */
	if ((sig == SIGINT || sig == SIGQUIT) && si->si_code > 0)
		return;
	if (child_pid > 0)
		kill(child_pid, sig);
}

/* The new arguments and environment, as "A<arg>\0" and "E<K=V>\0". */
static int args_memfd(const struct cli_restore *r)
{
	int fd = -1;

	for (int i = 0; i < r->n_env + r->n_args; i++) {
		const char *rec = i < r->n_env ? r->env[i] : r->args[i - r->n_env];
		char tag = i < r->n_env ? 'E' : 'A';
		if (fd < 0 && (fd = (int)syscall(SYS_memfd_create, "crac-restore-args", MFD_CLOEXEC)) < 0) {
			cli_err("memfd_create: %s", strerror(errno));
			return -1;
		}
		if (write(fd, &tag, 1) != 1 || write(fd, rec, strlen(rec) + 1) != (ssize_t)strlen(rec) + 1) {
			cli_err("writing the new arguments: %s", strerror(errno));
			close(fd);
			return -1;
		}
	}
	return fd < 0 ? 0 : fd;
}

/* Options parsed by cmd_restore.c (those of the image engine refused there). */
int crac_cmd_restore_criu(const struct cli_restore *r)
{
	char dir[PATH_MAX], criu[PATH_MAX], msg[2048], work[PATH_MAX], log[PATH_MAX + 32], words[1500];
	const char *args[MAX_ARGS + 1];
	char inherit[3][PATH_MAX + 16];
	const char *ids[3] = { NULL, NULL, NULL };
	const char *shown = r->dir;   /* DIR as given, for messages */
	struct marker m;
	bool trust = r->trust;
	int n = 0, st;

	if (cli_path_arg("restore", r->dir, CLI_PATH_MAX, true, dir, sizeof(dir)) < 0)
		return 2;
	/* criu, `criu check` and the restored process are waited for: with
	 * SIGCHLD ignored (a SIG_IGN our caller handed on across exec) the
	 * kernel would reap them unseen, a criu restore that succeeded would
	 * be taken for a failed one and the restored process never told. The
	 * restored process gets its own dispositions from the image. */
	struct sigaction chld;
	if (sigaction(SIGCHLD, NULL, &chld) == 0 &&
	    (chld.sa_handler == SIG_IGN || (chld.sa_flags & SA_NOCLDWAIT))) {
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		sigemptyset(&dfl.sa_mask);
		sigaction(SIGCHLD, &dfl, NULL);
	}
	if (check_owner(dir, trust) < 0 || read_marker(dir, &m) < 0)
		return 1;
	if (crac__criu_find(criu, sizeof(criu), msg, sizeof(msg)) < 0) {
		cli_err("cannot restore the CRIU image %s: %s", shown, msg);
		return 2;
	}
	/* CRIU restores the process with its pid: say so before criu does
	 * ("Can't fork for PID: File exists"). */
	if (kill(m.pid, 0) == 0 || errno == EPERM) {
		char comm[64] = "?", p[64];
		snprintf(p, sizeof(p), "/proc/%d/comm", m.pid);
		FILE *f = fopen(p, "re");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = 0;
			fclose(f);
		}
		cli_err("cannot restore the CRIU image %s: pid %d is in use (by %s; the checkpointed process itself if "
			"it kept running): CRIU restores the process with the pid it had", shown, m.pid, comm);
		return 1;
	}
	int memfd = args_memfd(r);
	if (memfd < 0)
		return 1;

	/* 4. criu restore */
	const char *tmpdir = getenv("TMPDIR");
	snprintf(work, sizeof(work), "%s/crac-criu-restore.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!mkdtemp(work)) {
		cli_err("cannot create a work directory %s: %s", work, strerror(errno));
		return 1;
	}
	snprintf(log, sizeof(log), "%s/restore.log", work);
	args[n++] = criu;
	args[n++] = "restore";
	args[n++] = "-D";
	args[n++] = dir;
	args[n++] = "-W";
	args[n++] = work;
	args[n++] = "-o";
	args[n++] = "restore.log";
	args[n++] = "--restore-detached";
	args[n++] = "--restore-sibling";
	if (m.shell_job)
		args[n++] = "--shell-job";
	for (int fd = 0; fd < 3; fd++) {
		const char *id = inherit_id(m.stdio[fd]);
		struct stat st_fd;
		bool dup = false;
		for (int k = 0; k < fd; k++)
			dup |= ids[k] && id && !strcmp(ids[k], id);
		if (!id || dup || fstat(fd, &st_fd) < 0)
			continue;
		ids[fd] = id;
		/* a copy above stdio: criu closes what it inherits, and
		 * --shell-job needs its own stdin */
		snprintf(inherit[fd], sizeof(inherit[fd]), "fd[%d]:%s", INHERIT_BASE + fd, id);
		args[n++] = "--inherit-fd";
		args[n++] = inherit[fd];
	}
	char *extra = getenv("CRAC_CRIU_OPTS") ? strdup(getenv("CRAC_CRIU_OPTS")) : NULL;
	for (char *tok = extra ? strtok(extra, " \t\n") : NULL; tok; tok = strtok(NULL, " \t\n")) {
		if (n >= MAX_ARGS) {
			cli_err("CRAC_CRIU_OPTS has too many options");
			return 2;
		}
		args[n++] = tok;
	}
	args[n] = NULL;

	/* --restore-sibling makes the restored process a child of criu's
	 * parent: ours, or a wrapper's (CRAC_CRIU may be a script, sudo,
	 * criu-ns). A subreaper inherits it when the wrapper ends, so that
	 * its real exit status is ours to wait for and pass on. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		cli_err("warning: PR_SET_CHILD_SUBREAPER: %s: through a wrapper of criu, the restored process's "
			"exit status cannot be known", strerror(errno));
	fflush(NULL);
	pid_t criu_pid = fork();
	if (criu_pid < 0) {
		cli_err("fork: %s", strerror(errno));
		return 1;
	}
	if (criu_pid == 0) {
		for (int fd = 0; fd < 3; fd++)
			if (ids[fd])
				dup2(fd, INHERIT_BASE + fd);
		execve(criu, (char *const *)args, environ);
		fprintf(stderr, "crac: cannot execute %s: %s\n", criu, strerror(errno));
		_exit(127);
	}
	while (waitpid(criu_pid, &st, 0) < 0)
		if (errno != EINTR) {
			st = 127 << 8;
			break;
		}
	free(extra);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		/* `criu check` costs half a second here: only when criu
		 * failed, to tell a CRIU that cannot work on this kernel. */
		if (crac__criu_check(criu, msg, sizeof(msg)) < 0) {
			cli_err("cannot restore the CRIU image %s: %s", shown, msg);
			unlink(log);
			rmdir(work);
			return 2;
		}
		crac__criu_log_errors(log, words, sizeof(words));
		cli_err("criu restore of %s failed (%s %d): %s; its log: %s", shown,
			WIFSIGNALED(st) ? "signal" : "exit status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
			words[0] ? words : "no error line", log);
		if (memfd > 0)
			close(memfd);
		return 1;
	}
	unlink(log);
	rmdir(work);   /* anything else criu left there stays */

	/* 5. Tell the restored thread. */
	child_pid = m.pid;
	struct sigaction sa = { .sa_sigaction = forward, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigemptyset(&sa.sa_mask);
	for (int sig = 1; sig < 32; sig++)
		if (sig == SIGTERM || sig == SIGHUP || sig == SIGINT || sig == SIGQUIT || sig == SIGUSR1 ||
		    sig == SIGUSR2)
			sigaction(sig, &sa, NULL);
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	si.si_signo = CRAC_CRIU_SIG;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_ptr = (void *)(uintptr_t)crac_criu_value(CRAC_CRIU_RESTORED, (uint32_t)(memfd > 0 ? memfd : 0));
	if (syscall(SYS_rt_tgsigqueueinfo, m.pid, m.tid, CRAC_CRIU_SIG, &si) < 0)
		cli_err("warning: the restored process %d (thread %d) could not be told it was restored: %s; "
			"it notices by itself, without new arguments", m.pid, m.tid, strerror(errno));

	/* 6. Wait for it: it is our child (--restore-sibling). */
	for (;;) {
		pid_t w = waitpid(m.pid, &st, 0);
		if (w == m.pid)
			break;
		if (w < 0 && errno == EINTR)
			continue;
		/* not our child after all (no subreaper): wait until it is
		 * gone, and say that its status is unknown */
		cli_err("the restored process %d is not crac restore's child: its exit status cannot be known", m.pid);
		while (kill(m.pid, 0) == 0 || errno != ESRCH)
			usleep(20000);
		return 0;
	}
	if (memfd > 0)
		close(memfd);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}
