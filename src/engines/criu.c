/* SPDX-License-Identifier: MIT */
/*
 * criu.c - the criu engine: CRIU (criu.org) takes the snapshot from
 * outside the process; crac coordinates around it.
 *
 * Who does what:
 *   - configure: finds criu ($CRAC_CRIU, else PATH) and runs `criu check`
 *     once per process; a CRIU that fails it is refused with its own words
 *     and the hint that CRIU >= 4.1 is needed on kernels whose memory map
 *     has [vvar_vclock] (criu 3.17 fails there with "Unexpected rt vDSO
 *     area bounds"). The target DIR must be absent or a CRIU image of ours.
 *   - checkpoint (after the before_checkpoint callbacks and the safety
 *     checks): a helper process that is NOT in the dumped tree runs
 *     `criu dump -t PID -D DIR.tmp-... --leave-running` while the
 *     checkpointing thread waits (below). DIR.tmp-... is locked (flock)
 *     from its creation until its rename, by the helper while CRIU dumps
 *     (make_tmp, unstash): a checkpoint into DIR from another pid
 *     namespace leaves it alone (clean_stale). CRIU dumps the tree rooted at PID:
 *     a child of ours would be dumped too, so the helper is a grandchild
 *     whose parent exits at once (it is reparented to init or to the
 *     nearest subreaper above us; if we are a subreaper ourselves the
 *     engine refuses). On success the original writes the marker file
 *     (crac-criu: that CRIU made the directory, the crac metadata:
 *     generation, instance id, checkpoint clocks, boot id, pid, tid, what
 *     stdin/stdout/stderr were), fsyncs, and renames DIR.tmp-... to DIR as
 *     the image engine does; then, as with the image engine, it exits
 *     (status 0) unless CRAC_KEEP_RUNNING.
 *   - restore: `crac restore DIR` (src/cli/cmd_restore_criu.c) runs
 *     `criu restore -D DIR --restore-detached --restore-sibling`, so that
 *     the restored process is the restore command's child, and sends the
 *     restored checkpointing thread the RESTORED signal (criu.h), with the
 *     new arguments and environment in a memfd. The checkpoint call returns
 *     CRAC_RESTORED there and the core runs the after_restore callbacks
 *     with a new generation and instance id, the clock moved and the
 *     random generators reseeded, exactly as for the image engine.
 *
 * How the restored process knows it was restored. During the dump the
 * checkpointing thread waits in sigtimedwait(CRAC_CRIU_SIG) (blocked in
 * that thread only, sent to that thread only), so that is where CRIU saves
 * it and where the restored thread goes on. Two things end the wait:
 *   - the helper's DUMPED / FAILED signal: this is the original;
 *   - a RESTORED signal, honoured only if the process's start time
 *     (/proc/self/stat field 22) differs from the one recorded before the
 *     dump. A process restored by CRIU is a new process with the same pid:
 *     its start time is the restore's. So even with no signal at all (crac
 *     restore killed right after criu restore), the waiting thread notices
 *     it is a restored one within CRIU_POLL_MS and goes on without new
 *     arguments (after CRIU_RESTORED_WAIT_NS).
 * CRAC_CRIU_SIG at its default action (death) is set to be ignored for
 * good: a RESTORED that comes after the wait gave up must not kill the
 * process (blocked while waited for, it is queued all the same).
 *
 * Descriptors. CRIU carries most kernel objects itself, but crac's safety
 * checks stay those of an engine that carries none (stdio only; policies
 * act): this engine does not set CRAC_ENGINE_CARRIES_FDS. A connection of
 * the control endpoint being served (a `crac checkpoint PID` waiting for
 * its answer) has its peer outside the dumped tree, which CRIU refuses: for
 * the dump it is replaced by /dev/null (same number), the helper keeps the
 * real one open, and the original takes it back with pidfd_getfd(2); the
 * restored process closes the placeholder.
 *
 * stdin/stdout/stderr: what they are is recorded; restore passes pipes,
 * sockets and regular files as --inherit-fd, so that the restored process
 * uses the restore command's stdio (as with the image engine); devices
 * such as /dev/null are opened again by CRIU. --shell-job is used when one
 * of them is a terminal or the process is not a session leader (terminals
 * then become the restore command's).
 *
 * The helper takes its own session (a zombie left unreaped would otherwise
 * keep a session leader's pid in use and CRIU could not restore it), resets
 * the program's signal handlers (a SIGCHLD handler would reap criu), and
 * criu dies with it (PR_SET_PDEATHSIG) if the checkpoint gives up after
 * max(deadline, 60 s). CRAC_CRIU_OPTS (split at blanks) is appended to both
 * criu dump and criu restore.
 */
#include "core/internal.h"
#include "engines/criu.h"
#include "image/bounded.h"
#include "image/dir.h"
#include "runtime/checks.h"
#include "runtime/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/*
 * The environment criu runs with: the program's, without CRAC_ENGINE and
 * CRAC_CONTROL. Under `crac run` libcrac is in LD_PRELOAD, so criu loads
 * it too; with those two it would start a control endpoint of its own
 * (its warnings mixed into criu's words). Without them libcrac stays
 * idle. Built before any fork (the helper may not allocate); NULL if out
 * of memory (then environ as it is).
 */
static char **criu_env(void)
{
	static const char *const drop[] = { "CRAC_ENGINE=", "CRAC_CONTROL=" };
	size_t n = 0, o = 0;

	while (environ && environ[n])
		n++;
	char **env = calloc(n + 1, sizeof(char *));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		bool keep = true;
		for (size_t d = 0; d < sizeof(drop) / sizeof(drop[0]); d++)
			keep &= strncmp(environ[i], drop[d], strlen(drop[d])) != 0;
		if (keep)
			env[o++] = environ[i];
	}
	return env;
}

#define CRIU_POLL_MS 100              /* the wait re-checks this often */
#define CRIU_MIN_WAIT_NS (60LL * 1000000000LL) /* a dump may take this long at least */
#define CRIU_RESTORED_WAIT_NS (5LL * 1000000000LL) /* a restored thread waits this long for RESTORED */
#define CRIU_MAX_ARGS 64
#define CRIU_MAX_STASH 16

/* ---- finding and checking criu ------------------------------------------- */

/* The most directories of PATH looked in for criu. */
#define CRIU_FIND_MAX 64

/*
 * CRAC_CRIU, or criu in PATH. The access(2) calls are made by one helper
 * of image/dir.c (crac_img_access_first_msg), bounded by the limit of its
 * waits (the checkpoint's deadline at the setup, crac restore's limit):
 * a directory of PATH on a file system that does not answer is given up
 * on, -ETIMEDOUT with msg naming it.
 */
int crac__criu_find(char *buf, size_t len, char *msg, size_t msglen)
{
	static char store[16384];                 /* the candidates (the helper's reading: static) */
	static const char *list[CRIU_FIND_MAX + 1];
	const char *want = getenv("CRAC_CRIU");
	const char *name = want && *want ? want : "criu";
	char m[PATH_MAX + 300];
	size_t used = 0;
	int n_list = 0, found = -1;

	if (strchr(name, '/')) {
		list[n_list++] = name;
	} else {
		const char *path = getenv("PATH");
		if (!path || !*path)
			path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
		for (const char *p = path; *p && n_list < CRIU_FIND_MAX;) {
			size_t n = strcspn(p, ":");
			int w = n ? snprintf(store + used, sizeof(store) - used, "%.*s/%s", (int)n, p, name) : -1;
			if (w > 0 && (size_t)w < sizeof(store) - used && (size_t)w < len) {
				list[n_list++] = store + used;
				used += (size_t)w + 1;
			}
			p += n;
			if (*p == ':')
				p++;
		}
	}
	list[n_list] = NULL;
	int rc = n_list ? crac_img_access_first_msg(list, X_OK, &found, m, sizeof(m)) : -ENOENT;
	if (rc == -ETIMEDOUT) {
		snprintf(msg, msglen, "the search for CRIU stopped: %s", m);
		return rc;
	}
	if (rc == 0 && found >= 0 && found < n_list) {
		snprintf(buf, len, "%s", list[found]);
		return 0;
	}
	if (strchr(name, '/'))
		snprintf(msg, msglen, "CRAC_CRIU=%s: %s", name, strerror(rc < 0 ? -rc : ENOENT));
	else
		snprintf(msg, msglen, "the criu engine needs CRIU: %s%s not found in PATH (set CRAC_CRIU to its path)",
			 name, want && *want ? " (CRAC_CRIU)" : "");
	return -ENOENT;
}

/* Does this kernel map [vvar_vclock]? (CRIU learned it in 4.1.) */
static int has_vvar_vclock(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int found = 0;

	if (!f)
		return -1;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, "[vvar_vclock]") != NULL;
	fclose(f);
	return found;
}

/* Runs argv with stdout and stderr into out (NUL-terminated, truncated);
 * returns the wait status or -errno. */
static int run_capture(char *const argv[], char *out, size_t len)
{
	int p[2], st = 0;
	size_t used = 0;
	pid_t pid;
	char **env = criu_env();

	out[0] = 0;
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(env);
		return -errno;
	}
	/*
	 * The program's SIGCHLD handler (bash reaps every child) or SIG_IGN
	 * (auto-reaping) must not take criu's status: a raw clone without
	 * exit signal, waited for with __WALL, runs criu as its own child
	 * with SIGCHLD at its default and exits with criu's exit code (128 +
	 * signal if killed; exec turns the exit signal back into SIGCHLD, so
	 * the clone does not exec itself). No atfork handler runs.
	 */
	pid = (pid_t)syscall(SYS_clone, 0, 0, 0, 0, 0);
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		free(env);
		return -e;
	}
	if (pid == 0) {
		int cst = 0;
		signal(SIGCHLD, SIG_DFL);
		pid_t c = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
		if (c == 0) {
			int null = open("/dev/null", O_RDONLY);
			if (null >= 0)
				dup2(null, 0);
			dup2(p[1], 1);
			dup2(p[1], 2);
			execve(argv[0], argv, env ? env : environ);
			_exit(127);
		}
		close(p[1]);
		if (c < 0)
			_exit(127);
		while (waitpid(c, &cst, 0) < 0)
			if (errno != EINTR)
				_exit(127);
		_exit(WIFEXITED(cst) ? WEXITSTATUS(cst) : 128 + WTERMSIG(cst));
	}
	close(p[1]);
	for (;;) {
		char junk[256];
		ssize_t n = used + 1 < len ? read(p[0], out + used, len - 1 - used) : read(p[0], junk, sizeof(junk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (used + 1 < len)
			used += (size_t)n;
	}
	out[used] = 0;
	close(p[0]);
	free(env);
	while (waitpid(pid, &st, __WALL) < 0)
		if (errno != EINTR)
			return -errno;
	return st;
}

/* CRIU's own words from its output: its error lines, else every line
 * (warnings left out), joined with "; " (truncated to len). */
static void criu_words(const char *text, char *out, size_t len)
{
	for (int pass = 0; pass < 2; pass++) {
		size_t used = 0;
		out[0] = 0;
		for (const char *p = text; *p;) {
			size_t n = strcspn(p, "\n");
			while (n && (p[n - 1] == ' ' || p[n - 1] == '\r'))
				n--;
			bool err = memmem(p, n, "Error", 5) || memmem(p, n, "error", 5);
			bool warn = n >= 4 && !memcmp(p, "Warn", 4);
			if (n && (pass ? !warn : err) && used + 3 < len) {
				int w = snprintf(out + used, len - used, "%s%.*s", used ? "; " : "", (int)n, p);
				used += w > 0 ? (size_t)w : 0;
				if (used >= len)
					used = len - 1;
			}
			p += strcspn(p, "\n");
			if (*p)
				p++;
		}
		if (out[0])
			return;
	}
	snprintf(out, len, "(no output)");
}

int crac__criu_check(const char *criu, char *msg, size_t msglen)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static char checked[PATH_MAX];   /* the criu that passed */
	char out[4096], words[1500];
	char *argv[] = { (char *)criu, "check", NULL };
	int st;

	pthread_mutex_lock(&lock);
	if (checked[0] && !strcmp(checked, criu)) {
		pthread_mutex_unlock(&lock);
		return 0;
	}
	st = run_capture(argv, out, sizeof(out));
	if (st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		snprintf(checked, sizeof(checked), "%s", criu);
		pthread_mutex_unlock(&lock);
		return 0;
	}
	pthread_mutex_unlock(&lock);
	if (st < 0)
		snprintf(words, sizeof(words), "could not run it: %s", strerror(-st));
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && !out[0])
		snprintf(words, sizeof(words), "could not execute it");
	else
		criu_words(out, words, sizeof(words));
	int vclock = has_vvar_vclock();
	snprintf(msg, msglen, "`%s check` failed: %s (CRIU needs root or CAP_CHECKPOINT_RESTORE; CRIU >= 4.1 is "
		 "needed on kernels with [vvar_vclock] in the memory map%s)", criu, words,
		 vclock > 0 ? ", as this one has" : vclock == 0 ? ", this one has none" : "");
	return -ENOTSUP;
}

/* The end of a CRIU log read (its error lines are near the end). */
#define LOG_TAIL (256u << 10)

void crac__criu_log_errors(const char *path, char *out, size_t len)
{
	static char text[LOG_TAIL + 1];   /* (one checkpoint or restore at a time) */
	char msg[PATH_MAX + 400];
	/* keep the last few error lines in a small ring */
	char ring[4][400];
	int n = 0;

	out[0] = 0;
	/* bounded (image/dir.c): a log that cannot be read in time says so */
	long got = crac_img_read_part_msg(path, CRAC_IMG_TAIL, "criu-log", text, LOG_TAIL, NULL, msg, sizeof(msg));
	if (got == -ETIMEDOUT) {
		snprintf(out, len, "its log could not be read: %s", msg);
		return;
	}
	if (got <= 0)
		return;
	text[got] = 0;
	char *line = text;
	if (got == (long)LOG_TAIL && (line = strchr(text, '\n')))   /* (cut: its first line is not whole) */
		line++;
	for (char *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (!strstr(line, "Error") && !strstr(line, "error"))
			continue;
		char *s = line;
		if (*s == '(') {   /* "(00.012345) Error ..." */
			char *e = strchr(s, ')');
			if (e)
				s = e + 1;
		}
		while (*s == ' ')
			s++;
		snprintf(ring[n % 4], sizeof(ring[0]), "%.399s", s);
		n++;
	}
	size_t used = 0;
	for (int i = n > 4 ? n - 4 : 0; i < n && used + 3 < len; i++) {
		int w = snprintf(out + used, len - used, "%s%s", used ? "; " : "", ring[i % 4]);
		used += w > 0 ? (size_t)w : 0;
	}
}

/* Does dir hold the marker (a regular file)? 1 or 0; -ETIMEDOUT, msg
 * naming the marker, when its lstat did not return by the limit of
 * image/dir.c's bounded waits (a file system that does not answer). */
static int criu_marker(const char *dir, char *msg, size_t len)
{
	char path[PATH_MAX];
	struct stat st;

	msg[0] = 0;
	if (snprintf(path, sizeof(path), "%s/%s", dir, CRAC_CRIU_MARKER) >= (int)sizeof(path))
		return 0;
	int rc = crac_img_lstat_as_msg(path, &st, "criu-marker", msg, len);
	if (rc == -ETIMEDOUT)
		return rc;
	return rc == 0 && S_ISREG(st.st_mode);
}

int crac__criu_is_image(const char *dir)
{
	char msg[PATH_MAX + 300];

	return criu_marker(dir, msg, sizeof(msg)) == 1;
}

/* ---- the image directory --------------------------------------------------- */

/*
 * The work of a helper on a directory CRIU wrote (remove_tree, fsync_tree,
 * the temporaries of clean_stale): made by a helper of image/dir.c
 * (crac_img_bounded_call) waited for until the limit of its bounded waits
 * (the checkpoint's deadline, and CRAC_BOUNDED_GRACE_MS at least), since on
 * a file system that does not answer (an NFS or FUSE server gone) an open,
 * an fsync or an unlink may never return. Raw system calls only, the
 * buffers given to them on the helper's stack (a call given up on may
 * still return and write them); the records static (the same: nothing on
 * the caller's stack; one checkpoint at a time).
 */

/* One pass over the directory dfd: every entry but . and .. handed to fn
 * (with its d_type) until fn says enough (false); false when the listing
 * failed. */
static bool tree_each(long dfd, char *dents, size_t cap,
		      bool (*fn)(long dfd, const char *name, unsigned char type, void *ctx), void *ctx)
{
	long got;

	crac_raw_syscall3(SYS_lseek, dfd, 0, SEEK_SET);
	while ((got = crac_raw_syscall3(SYS_getdents64, dfd, (long)dents, (long)cap)) > 0)
		for (long at = 0; at < got;) {
			/* linux_dirent64: ino 8, off 8, reclen 2, type 1, name */
			unsigned short reclen = *(unsigned short *)(dents + at + 16);
			unsigned char type = *(unsigned char *)(dents + at + 18);
			const char *n = dents + at + 19;
			at += reclen;
			if ((n[0] == '.' && !n[1]) || (n[0] == '.' && n[1] == '.' && !n[2]))
				continue;
			if (!fn(dfd, n, type, ctx))
				return true;
		}
	return got == 0;
}

/* tree_each: name unlinked; *ctx counts them. */
static bool tree_unlink(long dfd, const char *name, unsigned char type, void *ctx)
{
	(void)type;
	if (crac_raw_syscall3(SYS_unlinkat, dfd, (long)name, 0) == 0)
		++*(int *)ctx;
	return true;   /* (a subdirectory stays: the rmdir says so) */
}

/* Every file in dfd unlinked, then path itself removed: 0 or -errno. A
 * pass over a directory whose entries go meanwhile may skip some: again
 * until one removes nothing. */
static long tree_remove(long dfd, const char *path, char *dents, size_t cap)
{
	for (int pass = 0, n = 1; n && pass < 8; pass++) {
		n = 0;
		tree_each(dfd, dents, cap, tree_unlink, &n);
	}
	return crac_raw_syscall3(SYS_unlinkat, AT_FDCWD, (long)path, AT_REMOVEDIR);
}

struct tree_op {
	char path[PATH_MAX];
	char at[NAME_MAX + 1];   /* fsync_tree: the file it was at ("": the directory) */
	long rc;
};

/* remove_tree's helper. */
static void remove_run(void *arg)
{
	struct tree_op *op = arg;
	char dents[4096] __attribute__((aligned(8)));
	long dfd = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)op->path,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (dfd < 0) {
		op->rc = dfd == -ENOENT ? 0 : dfd;
		return;
	}
	op->rc = tree_remove(dfd, op->path, dents, sizeof(dents));
	crac_raw_syscall3(SYS_close, dfd, 0, 0);
}

/* fn (remove_run, fsync_run) on dir by a helper (crac_img_bounded_call,
 * with a table of descriptors of its own): 0 with *opp the record it
 * filled in (static: one checkpoint at a time), -ENAMETOOLONG, or
 * -ETIMEDOUT with why ("did not return after ..."). */
static int tree_call(const char *slow, void (*fn)(void *), const char *dir, struct tree_op **opp, char *why,
		     size_t wlen)
{
	static struct tree_op op;

	*opp = &op;
	why[0] = 0;
	memset(&op, 0, sizeof(op));
	if (snprintf(op.path, sizeof(op.path), "%s", dir) >= (int)sizeof(op.path))
		return -ENAMETOOLONG;
	return crac_img_bounded_call(slow, fn, &op, true, why, wlen) == -ETIMEDOUT ? -ETIMEDOUT : 0;
}

/* Removes a directory CRIU wrote (regular files only inside), then itself:
 * 0 (nothing there either), -errno (msg "DIR: error"), or -ETIMEDOUT
 * with msg ("the removal of DIR did not return after ..."). */
static int remove_tree(const char *dir, char *msg, size_t len)
{
	struct tree_op *op;
	char why[300];
	int rc = tree_call("criu-remove", remove_run, dir, &op, why, sizeof(why));

	msg[0] = 0;
	if (rc == -ETIMEDOUT)
		snprintf(msg, len, "the removal of %s %s", dir, why);
	else if ((rc = rc < 0 ? rc : (int)op->rc) < 0)
		snprintf(msg, len, "%s: %s", dir, strerror(-rc));
	return rc;
}

/*
 * May a checkpoint write at dir? 0 nothing there, 1 a CRIU image of ours
 * (a directory owned by us holding the marker), else -errno and msg.
 */
static int target_check(const char *dir, char *msg, size_t len)
{
	struct stat st;
	char m[PATH_MAX + 300];

	/* the lstats bounded (image/dir.c: the checkpoint's deadline at the
	 * setup; given up on: -ETIMEDOUT, said naming the path) */
	int rc = crac_img_lstat_msg(dir, &st, m, sizeof(m));
	if (rc == -ENOENT)
		return 0;
	if (rc == -ETIMEDOUT) {
		snprintf(msg, len, "image directory %s: %s", dir, m);
		return rc;
	}
	if (rc < 0) {
		snprintf(msg, len, "image directory %s: %s", dir, strerror(-rc));
		return rc;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(msg, len, "image directory %s exists and is not a crac image (it is not a directory); "
			 "a checkpoint replaces only a crac image of its own", dir);
		return -EEXIST;
	}
	if (st.st_uid != geteuid()) {
		snprintf(msg, len, "image directory %s is owned by uid %u, not by this process (uid %u); "
			 "a checkpoint replaces only a crac image of its own", dir, (unsigned)st.st_uid,
			 (unsigned)geteuid());
		return -EPERM;
	}
	if ((rc = criu_marker(dir, m, sizeof(m))) == 1)
		return 1;
	if (rc == -ETIMEDOUT) {
		snprintf(msg, len, "image directory %s: %s", dir, m);
		return rc;
	}
	/* An image of the image engine may be replaced as well. */
	rc = crac_img_target_check(dir, msg, len);
	if (rc == 1)
		return 1;
	if (rc == -EEXIST)
		snprintf(msg, len, "image directory %s exists and is not a crac image (no %s marker, no image "
			 "header); a checkpoint replaces only a crac image of its own", dir, CRAC_CRIU_MARKER);
	return rc < 0 ? rc : -EEXIST;
}

/* The previous image, after the commit: CRIU's files, or the image
 * engine's (crac_img_commit_with's ops->remove). */
static int remove_previous(const char *dir, char *msg, size_t len)
{
	if (!crac__criu_is_image(dir))
		return crac_img_remove_msg(dir, msg, len);
	return remove_tree(dir, msg, len);
}

/*
 * Puts tmp in place as dir (replacing an image of ours): the commit of
 * image/dir.c with this engine's check and removal, so that a file system
 * without RENAME_EXCHANGE (NFS, FUSE, vfat) takes its fallback (the
 * previous image moved aside as DIR.old-PID-START, removed by clean_stale
 * if we are killed meanwhile). 0, 1 (warning in msg) or -errno (msg;
 * nothing replaced).
 */
static int commit(const char *tmp, const char *dir, char *msg, size_t len)
{
	static const struct crac_img_commit_ops ops = { target_check, remove_previous };

	return crac_img_commit_with(tmp, dir, NULL, &ops, msg, len);
}

/* tree_each: a regular file private (CRIU writes them 0644: memory is in
 * there) and fsync'd; ctx the tree_op, whose `at` names it meanwhile. */
static bool tree_sync(long dfd, const char *name, unsigned char type, void *ctx)
{
	struct tree_op *op = ctx;
	size_t n = 0;

	if (type != DT_REG)
		return true;
	while (name[n] && n < sizeof(op->at) - 1) {
		op->at[n] = name[n];
		n++;
	}
	op->at[n] = 0;
	long fd = crac_raw_syscall3(SYS_openat, dfd, (long)name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0) {
		crac_raw_syscall3(SYS_fchmod, fd, 0600, 0);
		crac_raw_syscall3(SYS_fsync, fd, 0, 0);
		crac_raw_syscall3(SYS_close, fd, 0, 0);
	}
	return true;
}

/* fsync_tree's helper. */
static void fsync_run(void *arg)
{
	struct tree_op *op = arg;
	char dents[4096] __attribute__((aligned(8)));
	long dfd = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)op->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	op->at[0] = 0;
	if ((op->rc = dfd) < 0)
		return;
	tree_each(dfd, dents, sizeof(dents), tree_sync, op);
	op->at[0] = 0;
	op->rc = crac_raw_syscall3(SYS_fsync, dfd, 0, 0);
	crac_raw_syscall3(SYS_close, dfd, 0, 0);
}

/* Every file of the directory private, fsync'd, and the directory too
 * (errors are no reason to drop the image: the commit fsyncs the parent).
 * Given up on: -ETIMEDOUT with msg ("the fsync of DIR/FILE did not return
 * after ..."); else 0. */
static int fsync_tree(const char *dir, char *msg, size_t len)
{
	struct tree_op *op;
	char why[300];

	msg[0] = 0;
	if (tree_call("criu-fsync", fsync_run, dir, &op, why, sizeof(why)) != -ETIMEDOUT)
		return 0;
	snprintf(msg, len, "the fsync of %s%s%s %s", dir, op->at[0] ? "/" : "", op->at, why);
	return -ETIMEDOUT;
}

/* A file CRIU (or this engine) writes into an image directory. */
static bool criu_file(const char *n)
{
	size_t l = strlen(n);

	return (l > 4 && !strcmp(n + l - 4, ".img")) || !strcmp(n, "dump.log") || !strcmp(n, "criu.out") ||
	       !strcmp(n, "stats-dump") || !strcmp(n, CRAC_CRIU_MARKER);
}

/*
 * The look at one temporary of clean_stale, and its removal or its put
 * back, made by a helper of image/dir.c (crac_img_bounded_call) waited for
 * until the limit of the bounded waits: raw system calls only, its buffers
 * on the helper's stack (a call given up on may still return and write
 * them), this record static (the same: nothing of the caller's stack).
 */
enum stale_step { STALE_OPEN, STALE_LOCK, STALE_LOOK, STALE_BACK, STALE_REMOVE };
static const char *const stale_steps[] = { "its open", "its lock", "the look at its files",
					   "putting it back", "its removal" };
enum stale_res { STALE_LEFT, STALE_REMOVED, STALE_PUT_BACK };
struct stale_op {
	char path[PATH_MAX];   /* PARENT/NAME */
	char dir[PATH_MAX];    /* where an image moved aside goes back */
	bool old;              /* DIR.old-PID-START: a previous image moved aside */
	bool foreign;          /* it holds something that is not CRIU's file of ours */
	unsigned uid;          /* ours (geteuid) */
	enum stale_step step;  /* what the helper was at */
	enum stale_res res;
};

/* tree_each: is name one of CRIU's files, a regular file of ours? */
static bool stale_is_ours(long dfd, const char *name, unsigned char type, void *ctx)
{
	struct stale_op *op = ctx;
	struct stat fs;

	(void)type;
	if (criu_file(name) &&
	    crac_raw_syscall5(SYS_newfstatat, dfd, (long)name, (long)&fs, AT_SYMLINK_NOFOLLOW, 0) == 0 &&
	    S_ISREG(fs.st_mode) && fs.st_uid == op->uid)
		return true;
	op->foreign = true;
	return false;   /* (no further look) */
}

/* The helper: the temporary opened (no link followed), locked, looked at;
 * a previous image moved aside goes back to dir when nothing is there,
 * else (and a temporary) it is removed. */
static void stale_run(void *arg)
{
	struct stale_op *op = arg;
	char dents[4096] __attribute__((aligned(8)));
	struct stat st;

	op->res = STALE_LEFT;
	op->foreign = false;
	op->step = STALE_OPEN;
	long dfd = crac_raw_syscall3(SYS_openat, AT_FDCWD, (long)op->path,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return;
	/* Its writer holds a lock on it until its rename (make_tmp): one
	 * in another pid namespace, whose PID and START mean nothing here,
	 * still writes it. Ours while we remove it (the helper's own table
	 * of descriptors: released when it ends, given up on or not). A file
	 * system without flock: the names alone. */
	op->step = STALE_LOCK;
	if (crac_raw_syscall3(SYS_flock, dfd, LOCK_EX | LOCK_NB, 0) == -EWOULDBLOCK)
		goto out;
	op->step = STALE_LOOK;
	if (crac_raw_syscall5(SYS_newfstatat, dfd, (long)"", (long)&st, AT_EMPTY_PATH, 0) < 0 || st.st_uid != op->uid ||
	    !tree_each(dfd, dents, sizeof(dents), stale_is_ours, op) || op->foreign)
		goto out;   /* not ours, or holding something else: left alone */
	if (op->old) {
		/* A previous image moved aside whose writer died before the
		 * new one took its place: with nothing at dir it is the
		 * image, and goes back (never over what appeared at dir
		 * meanwhile). Else it was replaced (or cannot go back), and
		 * is removed. */
		op->step = STALE_BACK;
		long r = crac_raw_syscall5(SYS_newfstatat, AT_FDCWD, (long)op->dir, (long)&st, AT_SYMLINK_NOFOLLOW, 0);
		if (r == -ENOENT) {
			r = crac_raw_syscall5(SYS_renameat2, AT_FDCWD, (long)op->path, AT_FDCWD, (long)op->dir,
					      RENAME_NOREPLACE);
			if (r == -EINVAL || r == -ENOSYS)   /* (a file system that cannot say) */
				r = crac_raw_syscall5(SYS_newfstatat, AT_FDCWD, (long)op->dir, (long)&st,
						      AT_SYMLINK_NOFOLLOW, 0) != -ENOENT
					    ? -EEXIST
					    : crac_raw_syscall3(SYS_rename, (long)op->path, (long)op->dir, 0);
			if (r == 0) {
				op->res = STALE_PUT_BACK;
				goto out;
			}
		}
	}
	op->step = STALE_REMOVE;
	if (tree_remove(dfd, op->path, dents, sizeof(dents)) == 0)
		op->res = STALE_REMOVED;
out:
	crac_raw_syscall3(SYS_close, dfd, 0, 0);
}

/*
 * Removes, next to dir, the temporaries of dir (DIR.tmp-PID-START-XXXXXX,
 * and DIR.old-PID-START: a previous image moved aside by commit() on a file
 * system without RENAME_EXCHANGE) that a criu checkpoint left when it was
 * killed: the writer (PID with that start time) is gone, no writer holds
 * it locked (make_tmp: a writer in another pid namespace), the directory
 * is ours and holds nothing but CRIU's files. A previous image set aside
 * with no image at dir goes back instead. (The image engine's own are
 * removed by crac_img_clean_stale.)
 *
 * The listing of dir's parent, and each temporary's look, lock, put back
 * or removal (stale_run), are made by helpers of image/dir.c, bounded as
 * the checkpoint's other looks at the file system (criu_configure: its
 * deadline): a file system that does not answer is given up on, and
 * -ETIMEDOUT returned with msg naming the path, the step and the limit.
 * 0 otherwise (a parent that cannot be listed: nothing removed, as
 * nothing can be written there either).
 */
static int clean_stale(const char *dir, char *msg, size_t len)
{
	static struct stale_op op;          /* one checkpoint at a time */
	static char names[16384];           /* the same */
	char parent[PATH_MAX], prefix[NAME_MAX + 2], lmsg[PATH_MAX + 300], why[300];
	const char *base;
	size_t nlen = 0;

	msg[0] = 0;
	if (crac_img_split_path(dir, parent, sizeof(parent), &base) < 0 || !*base ||
	    snprintf(prefix, sizeof(prefix), "%s.", base) >= (int)sizeof(prefix))
		return 0;
	int rc = crac_img_list_msg(parent, prefix, names, sizeof(names), &nlen, lmsg, sizeof(lmsg));
	if (rc == -ETIMEDOUT) {
		snprintf(msg, len, "the look for stale temporaries of %.900s: %.900s", dir, lmsg);
		return rc;
	}
	size_t bl = strlen(base);
	for (size_t at = 0; rc == 0 && at < nlen; at += strlen(names + at) + 1) {
		const char *n = names + at;
		int pid = 0;
		unsigned long long start = 0;
		char rest[16];
		int end = 0;
		if (!strncmp(n + bl, ".tmp-", 5)) {
			if (sscanf(n + bl + 5, "%d-%llu-%15s", &pid, &start, rest) != 3 || strlen(rest) != 6 || pid <= 0)
				continue;
		} else if (!strncmp(n + bl, ".old-", 5)) {
			/* a previous image moved aside by a commit without
			 * RENAME_EXCHANGE whose writer was killed */
			if (sscanf(n + bl + 5, "%d-%llu%n", &pid, &start, &end) != 2 || n[bl + 5 + end] || pid <= 0)
				continue;
		} else {
			continue;
		}
		if (!(kill(pid, 0) < 0 && errno == ESRCH) && crac_img_start_time(pid) == start)
			continue;   /* its writer still runs */
		memset(&op, 0, sizeof(op));
		if (snprintf(op.path, sizeof(op.path), "%s/%s", parent, n) >= (int)sizeof(op.path) ||
		    snprintf(op.dir, sizeof(op.dir), "%s", dir) >= (int)sizeof(op.dir))
			continue;
		op.old = n[bl + 1] == 'o';
		op.uid = (unsigned)geteuid();
		if (crac_img_bounded_call("criu-clean", stale_run, &op, true, why, sizeof(why)) == -ETIMEDOUT) {
			snprintf(msg, len, "the stale temporary %.600s of %.600s (%s) %.600s", op.path, dir,
				 stale_steps[op.step], why);
			return -ETIMEDOUT;
		}
		if (op.res == STALE_PUT_BACK)
			crac__log(CRAC_LOG_WARN, "the previous image %s, moved aside by a checkpoint that was killed "
				  "before its new image took its place, is back at %s", op.path, dir);
	}
	return 0;
}

/* ---- engine state ----------------------------------------------------------- */

struct criu_state {
	char criu[PATH_MAX];
	char tmp[PATH_MAX];
	char log[PATH_MAX + 16];
	char stdio[3][PATH_MAX];
	bool shell_job;
	/* criu dump's argument vector, built before the helper starts (the
	 * helper may not allocate) */
	char *argv[CRIU_MAX_ARGS + 1];
	char *opts_copy;              /* $CRAC_CRIU_OPTS split in place */
	char **envp;                  /* criu's environment (criu_env), or NULL */
	char pid_text[16];
	/* crac's internal descriptors set aside for the dump */
	int stash[CRIU_MAX_STASH];
	int stash_fdflags[CRIU_MAX_STASH];
	int n_stash;
	/* the same list as the helper sees it (taken before it starts) */
	int stash_pre[CRIU_MAX_STASH];
	int n_stash_pre;
	/* The temporary's lock (flock on the directory, make_tmp) from its
	 * creation until its rename. The process CRIU dumps may hold no lock
	 * and no descriptor of it, so during the dump only the helper holds
	 * it (its copy of lock_fd, number lock_fd_helper); the original takes
	 * it back after (unstash). -1: none. */
	int lock_fd;
	int lock_fd_helper;
};

/* drop_lock's close, by a helper sharing our table of descriptors
 * (tree_op's rc: the descriptor in, close's result out). */
static void close_run(void *arg)
{
	struct tree_op *op = arg;

	op->rc = crac_raw_syscall3(SYS_close, op->rc, 0, 0);
}

/* The temporary's lock given up (after its rename, or once it is
 * removed). The last close of a locked file releases the lock, which on a
 * file system whose locks are the server's (NFS) may never return: made
 * by a helper, bounded as the other calls (image/dir.c's limit). The
 * descriptor leaves our table at once all the same; given up on, said as
 * a warning naming the temporary (the lock goes when the call returns). */
static void drop_lock(struct criu_state *s)
{
	static struct tree_op op;   /* (the helper's record: static) */
	char why[300];

	if (s->lock_fd >= 0) {
		memset(&op, 0, sizeof(op));
		op.rc = s->lock_fd;
		if (crac_img_bounded_call("criu-unlock", close_run, &op, false, why, sizeof(why)) == -ETIMEDOUT)
			crac__log(CRAC_LOG_WARN, "warning: criu: the release of the lock of %s (its close) %s", s->tmp,
				  why);
	}
	s->lock_fd = -1;
}

/* The temporary removed (nothing committed), then its lock. A removal
 * given up on is said (a warning): the temporary is left, for a later
 * checkpoint into the same directory to remove once this process is gone. */
static void discard_tmp(struct criu_state *s)
{
	char msg[PATH_MAX + 400];

	if (remove_tree(s->tmp, msg, sizeof(msg)) == -ETIMEDOUT)
		crac__log(CRAC_LOG_WARN, "warning: the unfinished image %s was not removed: %s", s->tmp, msg);
	drop_lock(s);
}

/* make_tmp's chmod (0700) or rmdir of the temporary, by a helper
 * (tree_call: raw system calls; rc its result). */
static void chmod_run(void *arg)
{
	struct tree_op *op = arg;

	op->rc = crac_raw_syscall3(SYS_fchmodat, AT_FDCWD, (long)op->path, 0700);
}

static void rmdir_run(void *arg)
{
	struct tree_op *op = arg;

	op->rc = crac_raw_syscall3(SYS_unlinkat, AT_FDCWD, (long)op->path, AT_REMOVEDIR);
}

/*
 * Creates DIR.tmp-PID-START-XXXXXX (mode 0700) and locks it (flock, held
 * in s->lock_fd): a checkpoint into DIR in another pid namespace (a
 * container sharing the volume), to which this PID and START mean
 * nothing, leaves a locked temporary alone (clean_stale, and the image
 * engine's crac_img_clean_stale). A cleaner that took the lock between the
 * mkdtemp and the flock removes it: a new one then. 0 or -errno (reported).
 * Its chmod, and its rmdir when it cannot be opened, are bounded (tree_call:
 * the checkpoint's deadline, and the grace at least): given up on,
 * -ETIMEDOUT, reported naming the temporary (the temporary removed, as far
 * as that returns: discard_tmp).
 */
static int make_tmp(struct crac_round *r, struct criu_state *s, const char *dir)
{
	char msg[PATH_MAX + 300];
	int rc = crac_img_tmp_create_msg(dir, s->tmp, sizeof(s->tmp), &s->lock_fd, msg, sizeof(msg));
	struct tree_op *op;
	char why[300];

	if (rc == -ETIMEDOUT && msg[0]) {
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", rc, "%s; no image was written to %s, the "
				 "process goes on", msg, dir);
		discard_tmp(s);
	} else if (rc == -ENAMETOOLONG)
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", rc, "image directory name too long: %s", dir);
	else if (rc == -EBUSY)
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", rc,
				 "%s was removed as it was created (a checkpoint into %s running elsewhere?)", s->tmp,
				 dir);
	else if (rc < 0 && !s->tmp[0])
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", rc, "cannot create a directory next to %s: %s",
				 dir, strerror(-rc));
	else if (rc < 0) {
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", rc, "%s: %s", s->tmp, strerror(-rc));
		if (tree_call("criu-rmdir", rmdir_run, s->tmp, &op, why, sizeof(why)) == -ETIMEDOUT)
			crac__log(CRAC_LOG_WARN, "warning: the unfinished image %s was not removed: its rmdir %s",
				  s->tmp, why);
	} else if (tree_call("criu-chmod", chmod_run, s->tmp, &op, why, sizeof(why)) == -ETIMEDOUT) {
		rc = -ETIMEDOUT;
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", rc, "the chmod of %s %s; no image was "
				 "written to %s, the process goes on", s->tmp, why, dir);
		discard_tmp(s);
	}
	return rc;
}

static int criu_configure(struct crac_round *r)
{
	struct criu_state *s = calloc(1, sizeof(*s));
	const char *dir = r->opts.image_dir;
	char msg[2048], parent[PATH_MAX];
	const char *base;
	int rc, sub = 0;

	if (!s) {
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	r->engine_state = s;
	s->lock_fd = s->lock_fd_helper = -1;
	if (!dir || !*dir) {
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", -EINVAL,
				 "the criu engine needs an image directory (crac_options.image_dir or CRAC_IMAGE_DIR)");
		return -EINVAL;
	}
	/* the looks at the file systems end at the checkpoint's deadline
	 * (image/dir.c's bounded helpers; as the image engine's): the search
	 * for criu, the target's parent, the target, its stale temporaries */
	int64_t deadline = r->event.deadline_monotonic;
	crac_img_fs_limit(deadline, deadline ? 0 : -1, deadline ? "the checkpoint's deadline" : NULL);
	if ((rc = crac__criu_find(s->criu, sizeof(s->criu), msg, sizeof(msg))) == -ETIMEDOUT) {
		crac_img_fs_deadline(0);
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", rc, "%s", msg);
		return rc;
	}
	if (rc < 0 || (rc = crac__criu_check(s->criu, msg, sizeof(msg))) < 0) {
		crac_img_fs_deadline(0);
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", -ENOTSUP, "%s", msg);
		return -ENOTSUP;
	}
	if (prctl(PR_GET_CHILD_SUBREAPER, &sub) == 0 && sub) {
		crac_img_fs_deadline(0);
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", -ENOTSUP,
				 "this process is a child subreaper (PR_SET_CHILD_SUBREAPER): the helper that runs "
				 "criu dump would be reparented to it and dumped with it");
		return -ENOTSUP;
	}
	if (crac_img_split_path(dir, parent, sizeof(parent), &base) < 0 || !*base) {
		crac_img_fs_deadline(0);
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", -ENAMETOOLONG,
				 "bad image directory name \"%s\"", dir);
		return -ENAMETOOLONG;
	}
	if ((rc = crac_img_dir_access_msg(parent, msg, sizeof(msg))) < 0) {
		crac_img_fs_deadline(0);
		if (rc == -ETIMEDOUT)
			crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", rc, "image directory %s: %s", dir, msg);
		else
			crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", rc, "cannot create the image in %s", msg);
		return rc;
	}
	if ((rc = target_check(dir, msg, sizeof(msg))) >= 0)
		rc = clean_stale(dir, msg, sizeof(msg));
	crac_img_fs_deadline(0);
	if (rc < 0) {
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", rc, "%s", msg);
		return rc;
	}
	return 0;
}

static void criu_release(struct crac_round *r)
{
	struct criu_state *s = r->engine_state;

	if (s) {
		drop_lock(s);
		free(s->opts_copy);
		free(s->envp);
		free(s);
	}
	r->engine_state = NULL;
}

/* ---- checkpoint ---------------------------------------------------------- */

static int tgsigqueue(int pid, int tid, uint64_t value)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	si.si_signo = CRAC_CRIU_SIG;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_ptr = (void *)(uintptr_t)value;
	return (int)syscall(SYS_rt_tgsigqueueinfo, pid, tid, CRAC_CRIU_SIG, &si);
}

static bool value_ok(const siginfo_t *si, enum crac_criu_what *what, uint32_t *arg)
{
	uint64_t v = (uint64_t)(uintptr_t)si->si_value.sival_ptr;

	if (si->si_code != SI_QUEUE || (v >> 32) != CRAC_CRIU_MAGIC)
		return false;
	*what = (enum crac_criu_what)((v >> 24) & 0xff);
	*arg = (uint32_t)(v & 0xffffff);
	return true;
}

/* Builds criu dump's argument vector (before the helper starts). */
static int build_argv(struct crac_round *r, struct criu_state *s)
{
	int n = 0;
	const char *extra = getenv("CRAC_CRIU_OPTS");

	snprintf(s->pid_text, sizeof(s->pid_text), "%d", (int)getpid());
	s->argv[n++] = s->criu;
	s->argv[n++] = "dump";
	s->argv[n++] = "-t";
	s->argv[n++] = s->pid_text;
	s->argv[n++] = "-D";
	s->argv[n++] = s->tmp;
	s->argv[n++] = "-o";
	s->argv[n++] = "dump.log";
	/* the original decides itself whether it goes on (CRAC_KEEP_RUNNING) */
	s->argv[n++] = "--leave-running";
	if (s->shell_job)
		s->argv[n++] = "--shell-job";
	if (extra && *extra) {
		if (!(s->opts_copy = strdup(extra)))
			return -ENOMEM;
		for (char *tok = strtok(s->opts_copy, " \t\n"); tok; tok = strtok(NULL, " \t\n")) {
			if (n >= CRIU_MAX_ARGS) {
				crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", -E2BIG,
						 "CRAC_CRIU_OPTS has too many options (at most %d in all)", CRIU_MAX_ARGS);
				return -E2BIG;
			}
			s->argv[n++] = tok;
		}
	}
	s->argv[n] = NULL;
	free(s->envp);
	s->envp = criu_env();
	return 0;
}

/* What fds 0-2 are, and whether CRIU must treat us as a shell job. */
static void record_stdio(struct criu_state *s)
{
	for (int fd = 0; fd < 3; fd++) {
		char link[32];
		ssize_t n;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, s->stdio[fd], sizeof(s->stdio[fd]) - 1);
		s->stdio[fd][n > 0 ? n : 0] = 0;
		if (memchr(s->stdio[fd], '\n', (size_t)(n > 0 ? n : 0)))
			s->stdio[fd][0] = 0;   /* a name the marker cannot hold: not re-attached */
		if (isatty(fd))
			s->shell_job = true;
	}
	if (getsid(0) != getpid() || getpgrp() != getpid())
		s->shell_job = true;
}

/* crac's internal descriptors (a control connection being served) are
 * replaced by /dev/null for the dump: their peers are not in the tree. */
static int stash_internal(struct crac_round *r, struct criu_state *s)
{
	int null;

	s->n_stash = 0;
	if (s->n_stash_pre <= 0)
		return 0;
	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		int e = errno;
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", -e, "open /dev/null: %s", strerror(e));
		return -e;
	}
	/* The helper has its own copies by now (it was started before). */
	for (int i = 0; i < s->n_stash_pre; i++) {
		int fl = fcntl(s->stash_pre[i], F_GETFD);
		if (fl < 0)
			continue;
		s->stash[s->n_stash] = s->stash_pre[i];
		s->stash_fdflags[s->n_stash++] = fl;
		dup3(null, s->stash_pre[i], O_CLOEXEC);
	}
	close(null);
	return 0;
}

/* take_lock's flock of the temporary opened anew, by a helper sharing our
 * table of descriptors (tree_op's rc: the descriptor in, flock's result
 * out): tried until the killed helper's exit released it, 1 s at most. A
 * flock given up on may still be granted when its call returns: on the
 * open file we close then, which releases it. */
static void relock_run(void *arg)
{
	struct tree_op *op = arg;
	long fd = op->rc;

	for (int i = 0; i < 200; i++) {
		if ((op->rc = crac_raw_syscall3(SYS_flock, fd, LOCK_EX | LOCK_NB, 0)) != -EWOULDBLOCK)
			return;
		struct timespec ts = { 0, 5000000 };
		crac_raw_syscall3(SYS_nanosleep, (long)&ts, 0, 0);
	}
}

/*
 * The temporary's lock, held by the helper during the dump, back in the
 * original (the same open file, so never released meanwhile). Without
 * pidfd_getfd (an old kernel, a ptrace scope that refuses): the helper is
 * killed and the temporary locked anew, which leaves it unlocked for a
 * moment; if even that fails it goes on unlocked (as on a file system
 * without flock). The open and the flock anew are bounded (image/dir.c's
 * helpers: the checkpoint's deadline, and the grace at least): given up
 * on, it goes on unlocked, said as a warning naming the temporary (its
 * next steps, on the same file system, are bounded as well).
 */
static void take_lock(struct criu_state *s, int pfd, int helper)
{
	char m[PATH_MAX + 400] = "", why[300];
	struct stat st;
	int e = EBADF;

	if (s->lock_fd_helper < 0 || s->lock_fd >= 0)
		return;
	/* (tests: CRAC_PRETEND_MISSING=pidfd_getfd takes the fallback) */
	if (pfd >= 0 && crac__pretend_missing("pidfd_getfd"))
		e = ENOSYS;
	else if (pfd >= 0 && (s->lock_fd = (int)syscall(SYS_pidfd_getfd, pfd, s->lock_fd_helper, 0)) < 0)
		e = errno;
	if (s->lock_fd >= 0)
		return;
	kill(helper, SIGKILL);
	int fd = crac_img_open_msg(s->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, &st, m, sizeof(m));
	long lrc = -1;
	if (fd >= 0) {
		static struct tree_op op;   /* (the helper's record: static) */
		memset(&op, 0, sizeof(op));
		op.rc = fd;
		if (crac_img_bounded_call("criu-relock", relock_run, &op, false, why, sizeof(why)) == -ETIMEDOUT) {
			snprintf(m, sizeof(m), "the lock of %s %s", s->tmp, why);
			close(fd);   /* (a flock granted late is released with it) */
			fd = -ETIMEDOUT;
		} else {
			lrc = op.rc;
		}
	}
	if (fd == -ETIMEDOUT) {
		crac__log(CRAC_LOG_WARN, "warning: criu: the lock of %s could not be taken back from the helper %d "
			  "(pidfd_getfd: %s): %s; it goes on unlocked", s->tmp, helper, strerror(e), m);
		return;
	}
	s->lock_fd = fd >= 0 ? fd : -1;
	crac__log(CRAC_LOG_DEBUG, "criu: the lock of %s could not be taken back from the helper %d (pidfd_getfd: "
		  "%s): helper killed, %s", s->tmp, helper, strerror(e),
		  s->lock_fd < 0 ? "the temporary could not be opened again: it goes on unlocked" :
		  lrc < 0 ? "the temporary could not be locked anew: it goes on unlocked" : "the temporary locked anew");
}

/* The original, after the dump: takes the temporary's lock and the real
 * descriptors back from the helper, then ends it. The restored process:
 * closes the placeholders. */
static void unstash(struct crac_round *r, struct criu_state *s, int helper, bool restored)
{
	int pfd = -1;

	if (!s->n_stash && (restored || s->lock_fd_helper < 0))
		return;
	if (!restored && (pfd = (int)syscall(SYS_pidfd_open, helper, 0)) < 0 && s->n_stash)
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", -errno,
				 "the control connection could not be taken back from the helper %d: pidfd_open: %s",
				 helper, strerror(errno));
	if (!restored)
		take_lock(s, pfd, helper);
	for (int i = 0; i < s->n_stash; i++) {
		if (restored || pfd < 0) {
			if (!restored)
				continue;   /* leave the placeholder: the number stays taken */
			close(s->stash[i]);
			continue;
		}
		int got = (int)syscall(SYS_pidfd_getfd, pfd, s->stash[i], 0);
		if (got < 0) {
			crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", -errno,
					 "fd %d (a control connection) could not be taken back from the helper %d: %s",
					 s->stash[i], helper, strerror(errno));
			continue;
		}
		dup3(got, s->stash[i], (s->stash_fdflags[i] & FD_CLOEXEC) ? O_CLOEXEC : 0);
		close(got);
	}
	if (pfd >= 0) {
		syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
		close(pfd);
	}
}

/*
 * The helper (a grandchild: not in the dumped tree). Async-signal-safe
 * calls only: it is a copy of a process whose other threads may have held
 * any lock. Waits for GO, runs criu dump, tells the checkpointing thread,
 * then keeps the stashed descriptors and the temporary's lock open until
 * the original took them (it kills us), at most a minute.
 */
static void helper_main(struct criu_state *s, int pid, int tid, pid_t parent)
{
	sigset_t set;
	siginfo_t si;
	int st = 0;

	/* None of the program's signal handlers (a SIGCHLD handler would
	 * reap criu), SIGCHLD not ignored. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	/* Nothing of the program's but the descriptors set aside for it and
	 * the temporary's lock (any of them may be above 1023). */
	int hi = 1023;
	for (int i = 0; i < s->n_stash_pre; i++)
		hi = s->stash_pre[i] > hi ? s->stash_pre[i] : hi;
	hi = s->lock_fd_helper > hi ? s->lock_fd_helper : hi;
	for (int fd = 0; fd <= hi; fd++) {
		bool keep = fd == s->lock_fd_helper;
		for (int i = 0; i < s->n_stash_pre; i++)
			keep |= s->stash_pre[i] == fd;
		if (!keep)
			close(fd);
	}
	syscall(SYS_close_range, (unsigned)hi + 1, ~0U, 0);
	/* Our parent exits at once: wait until we are reparented, so that we
	 * are out of the tree CRIU will walk. */
	while (getppid() == parent) {
		struct timespec ts = { 0, 100000 };
		nanosleep(&ts, NULL);
	}
	/* Our own session and process group: if we were left unreaped, we
	 * would keep the pid of a session leader in use as a session id, and
	 * CRIU could not restore it with that pid. */
	setsid();
	sigemptyset(&set);
	sigaddset(&set, CRAC_CRIU_SIG);
	struct timespec go_wait = { 30, 0 };
	if (sigtimedwait(&set, &si, &go_wait) != CRAC_CRIU_SIG)
		_exit(3);

	pid_t c = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
	if (c == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		int null = open("/dev/null", O_RDWR);
		char out[PATH_MAX + 16];
		memcpy(out, s->tmp, strlen(s->tmp));
		memcpy(out + strlen(s->tmp), "/criu.out", 10);
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(null, 0);
		dup2(o >= 0 ? o : null, 1);
		dup2(o >= 0 ? o : null, 2);
		syscall(SYS_close_range, 3, ~0U, 0);
		umask(077);
		/* killed with the helper (the checkpoint gave up on it): a
		 * killed criu lets the process go (ptrace detaches) */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execve(s->criu, s->argv, s->envp ? s->envp : environ);
		_exit(127);
	}
	if (c < 0) {
		st = 126 << 8;
	} else {
		while (waitpid(c, &st, 0) < 0)
			if (errno != EINTR) {
				st = 127 << 8;   /* its status is lost: not a success */
				break;
			}
	}
	bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	tgsigqueue(pid, tid, crac_criu_value(ok ? CRAC_CRIU_DUMPED : CRAC_CRIU_FAILED, (uint32_t)st & 0xffff));
	if (s->n_stash_pre > 0 || s->lock_fd_helper >= 0) {
		struct timespec ts = { 60, 0 };
		nanosleep(&ts, NULL);
	}
	_exit(0);
}

/* Starts the helper; returns its pid or -errno. */
static int start_helper(struct criu_state *s, int tid)
{
	int p[2], helper = -1, st;
	pid_t me = getpid();

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	/* A raw clone without exit signal: no SIGCHLD reaches the program,
	 * no atfork handler runs. */
	pid_t c = (pid_t)syscall(SYS_clone, 0, 0, 0, 0, 0);
	if (c < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (c == 0) {
		pid_t self = (pid_t)syscall(SYS_getpid);
		pid_t h = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
		if (h == 0) {
			close(p[0]);
			close(p[1]);
			helper_main(s, (int)me, tid, self);
		}
		ssize_t unused = write(p[1], &h, sizeof(h));
		(void)unused;
		_exit(0);
	}
	close(p[1]);
	pid_t h = -1;
	ssize_t n;
	do
		n = read(p[0], &h, sizeof(h));
	while (n < 0 && errno == EINTR);
	close(p[0]);
	while (waitpid(c, &st, __WALL) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(h) || h <= 0)
		return -ECHILD;
	helper = (int)h;
	return helper;
}

/* CRIU's image magics (its images/magic.h): the inventory starts with its
 * own; the other images with the common one, then theirs. */
#define CRIU_INVENTORY_MAGIC 0x58313116u
#define CRIU_COMMON_MAGIC 0x54564319u
#define CRIU_PSTREE_MAGIC 0x50273030u
#define CRIU_CORE_MAGIC 0x55053847u

/* Is dir/name a regular file that starts with these magics (one or two)?
 * 0, or -errno and why (the file's name first); its read bounded
 * (image/dir.c): -ETIMEDOUT, why "the read of DIR/NAME did not return
 * after ...". */
static int criu_image_ok(const char *dir, const char *name, uint32_t m0, uint32_t m1, char *why, size_t len)
{
	uint32_t head[2] = { 0, 0 };
	char path[PATH_MAX + 64], msg[PATH_MAX + 400];
	size_t want = m1 ? sizeof(head) : sizeof(head[0]);

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	long n = crac_img_read_part_msg(path, CRAC_IMG_HEAD, "criu-verify", (char *)head, want, NULL, msg, sizeof(msg));
	if (n == -ETIMEDOUT) {
		if (len) {   /* (cut to fit, as snprintf would) */
			size_t m = strlen(msg) < len ? strlen(msg) : len - 1;
			memcpy(why, msg, m);
			why[m] = 0;
		}
		return -ETIMEDOUT;
	}
	if (n < 0 && n != -EPERM) {
		snprintf(why, len, "%s: %s", name, strerror((int)-n));
		return (int)n;
	}
	if (n != (long)want || head[0] != m0 || (m1 && head[1] != m1)) {
		snprintf(why, len, "%s is not a CRIU image", name);
		return -EBADMSG;
	}
	return 0;
}

/*
 * A criu dump that exited 0 must have written an image of this process:
 * the inventory, the process tree, and the state of this process and of
 * the checkpointing thread (the one a restore resumes). Success is
 * verified, never assumed: the original exits once its image is there.
 */
static int verify_dump(struct criu_state *s, int tid, char *why, size_t len)
{
	char name[64];
	int rc;

	if ((rc = criu_image_ok(s->tmp, "inventory.img", CRIU_INVENTORY_MAGIC, 0, why, len)) < 0 ||
	    (rc = criu_image_ok(s->tmp, "pstree.img", CRIU_COMMON_MAGIC, CRIU_PSTREE_MAGIC, why, len)) < 0)
		return rc;
	snprintf(name, sizeof(name), "core-%d.img", (int)getpid());
	if ((rc = criu_image_ok(s->tmp, name, CRIU_COMMON_MAGIC, CRIU_CORE_MAGIC, why, len)) < 0)
		return rc;
	snprintf(name, sizeof(name), "core-%d.img", tid);
	return criu_image_ok(s->tmp, name, CRIU_COMMON_MAGIC, CRIU_CORE_MAGIC, why, len);
}

/* The marker: that CRIU made the directory, and crac's metadata. */
static int write_marker(struct crac_round *r, struct criu_state *s, int tid, unsigned long long start, char *msg,
			size_t len)
{
	static char text[5 * PATH_MAX + 1024];   /* (the helper's data: static) */
	char path[PATH_MAX + 32], boot[64] = "";
	char uuid[40];

	snprintf(path, sizeof(path), "%s/%s", s->tmp, CRAC_CRIU_MARKER);
	int bfd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (bfd >= 0) {
		ssize_t n = read(bfd, boot, sizeof(boot) - 1);
		boot[n > 0 ? n : 0] = 0;
		boot[strcspn(boot, "\n")] = 0;
		close(bfd);
	}
	const uint8_t *id = r->event.instance_id;
	snprintf(uuid, sizeof(uuid), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11], id[12],
		 id[13], id[14], id[15]);
	int n = snprintf(text, sizeof(text),
			 "%s\npid=%d\ntid=%d\nstart=%llu\nuid=%u\ngeneration=%llu\ninstance=%s\n"
			 "checkpoint_realtime=%lld\ncheckpoint_monotonic=%lld\nboot_id=%s\nshell_job=%d\n"
			 "stdio0=%s\nstdio1=%s\nstdio2=%s\ncriu=%s\n",
			 CRAC_CRIU_MARKER_MAGIC, (int)getpid(), tid, start, (unsigned)getuid(),
			 (unsigned long long)r->event.generation, uuid, (long long)r->event.checkpoint_realtime,
			 (long long)r->event.checkpoint_monotonic, boot, s->shell_job ? 1 : 0, s->stdio[0], s->stdio[1],
			 s->stdio[2], s->criu);
	if (n < 0 || n >= (int)sizeof(text)) {
		snprintf(msg, len, "%.1900s: %s", path, strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	/* created (O_EXCL, 0600, no link followed), written and fsync'd by
	 * a helper, bounded: msg "PATH: error" or "the write of PATH (STEP)
	 * did not return after ..." */
	return crac_img_write_new_msg(path, text, (size_t)n, msg, len);
}

/* Reads the new args/env the restore command put in a memfd. */
static void take_new_args(struct crac_round *r, int sender, int fd)
{
	int pfd = (int)syscall(SYS_pidfd_open, sender, 0), got = -1;
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (pfd >= 0)
		got = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
	if (got < 0) {
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", -errno,
				 "the new arguments of crac restore (pid %d) could not be read: %s", sender,
				 strerror(errno));
		if (pfd >= 0)
			close(pfd);
		return;
	}
	close(pfd);
	for (;;) {
		if (len + 4096 > cap) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);
			if (!nb)
				break;
			buf = nb;
		}
		ssize_t n = pread(got, buf + len, cap - len, (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(got);
	size_t na = 0, ne = 0;
	for (size_t i = 0; i < len; i += strnlen(buf + i, len - i) + 1) {
		na += buf[i] == 'A';
		ne += buf[i] == 'E';
	}
	char **argv = na ? calloc(na + 1, sizeof(char *)) : NULL;
	char **envp = ne ? calloc(ne + 1, sizeof(char *)) : NULL;
	size_t ia = 0, ie = 0;
	for (size_t i = 0; i < len;) {
		size_t n = strnlen(buf + i, len - i);
		if (i + n < len) {   /* complete record */
			if (buf[i] == 'A' && argv)
				argv[ia++] = strndup(buf + i + 1, n - 1);
			else if (buf[i] == 'E' && envp)
				envp[ie++] = strndup(buf + i + 1, n - 1);
		}
		i += n + 1;
	}
	free(buf);
	r->new_argv = argv;
	r->new_argc = (int)ia;
	r->new_envp = envp;
}

static int checkpoint_run(struct crac_round *r)
{
	struct criu_state *s = r->engine_state;
	const char *dir = r->opts.image_dir;
	char msg[2048], words[1500];
	int tid = crac__gettid(), helper, rc;
	unsigned long long start = crac_img_start_time(getpid());
	sigset_t set, old;
	bool restored = false, dumped = false;
	uint32_t arg = 0;
	int sender = 0;

	/* 1. The temporary directory (locked until its rename), criu's
	 * arguments, stdio. */
	if ((rc = make_tmp(r, s, dir)) < 0)
		return rc;
	snprintf(s->log, sizeof(s->log), "%s/dump.log", s->tmp);
	record_stdio(s);
	if ((rc = build_argv(r, s)) < 0) {
		discard_tmp(s);
		return rc;
	}

	/* 2. The signal waited for: blocked in this thread only. It may also
	 * come when nobody waits for it any more: crac restore's RESTORED
	 * after the restored thread went on without it (CRIU_RESTORED_WAIT_NS),
	 * a helper's answer just after the deadline. Its default action would
	 * kill the process then: ignored instead, unless the program has a
	 * handler of its own for it (a blocked signal is queued all the same,
	 * and sigtimedwait takes it; the restored process inherits it). */
	struct sigaction cur;
	if (sigaction(CRAC_CRIU_SIG, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL) {
		struct sigaction ign = { .sa_handler = SIG_IGN };
		sigemptyset(&ign.sa_mask);
		sigaction(CRAC_CRIU_SIG, &ign, NULL);
	}
	sigemptyset(&set);
	sigaddset(&set, CRAC_CRIU_SIG);
	pthread_sigmask(SIG_BLOCK, &set, &old);

	/* 3. The helper; then our internal descriptors set aside. */
	crac__clock_snapshot_point();
	/* (it only tries the lock: held for a moment by a thread of the
	 * control endpoint, try again) */
	for (int i = 0; i < 1000; i++) {
		s->n_stash_pre = crac__internal_fds_snapshot(s->stash_pre, CRIU_MAX_STASH);
		if (s->n_stash_pre != -EBUSY)
			break;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	if (s->n_stash_pre < 0)
		s->n_stash_pre = 0;
	s->lock_fd_helper = s->lock_fd;   /* the helper's copy, same number */
	if ((helper = start_helper(s, tid)) < 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", helper, "cannot start the helper for criu dump: %s",
				 strerror(-helper));
		discard_tmp(s);
		return helper;
	}
	/* Nothing of the temporary in the process CRIU dumps (it would refuse
	 * the lock, and the path is gone at restore): the helper holds it. */
	drop_lock(s);
	if ((rc = stash_internal(r, s)) < 0) {
		kill(helper, SIGKILL);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		discard_tmp(s);
		return rc;
	}

	/* 4. Dump now; wait here. This is where CRIU saves this thread, and
	 * where the restored thread goes on. */
	tgsigqueue(helper, helper, crac_criu_value(CRAC_CRIU_GO, 0));
	int64_t deadline = r->event.deadline_monotonic;
	if (!deadline || deadline < crac__now_ns(CLOCK_MONOTONIC) + CRIU_MIN_WAIT_NS)
		deadline = crac__now_ns(CLOCK_MONOTONIC) + CRIU_MIN_WAIT_NS;
	int64_t restored_since = 0;
	for (;;) {
		struct timespec ts = { 0, CRIU_POLL_MS * 1000000L };
		siginfo_t si;
		enum crac_criu_what what;
		int sig = sigtimedwait(&set, &si, &ts);
		bool is_new = crac_img_start_time(getpid()) != start, helper_gone = false;
		if (sig < 0 && !is_new && kill(helper, 0) < 0 && errno == ESRCH) {
			/* a last look: its answer may have come just now */
			sig = sigtimedwait(&set, &si, &(struct timespec){ 0, 0 });
			helper_gone = sig < 0;
		}
		if (sig == CRAC_CRIU_SIG && value_ok(&si, &what, &arg)) {
			if ((what == CRAC_CRIU_DUMPED || what == CRAC_CRIU_FAILED) && si.si_pid == helper && !is_new) {
				dumped = what == CRAC_CRIU_DUMPED;
				break;
			}
			if (what == CRAC_CRIU_RESTORED && is_new) {
				restored = true;
				sender = si.si_pid;
				break;
			}
			continue;   /* not for us, or stale */
		}
		if (is_new) {
			/* Restored, but no word from crac restore yet: wait a
			 * little for the new arguments, then go on without. */
			if (!restored_since)
				restored_since = crac__now_ns(CLOCK_MONOTONIC);
			if (crac__now_ns(CLOCK_MONOTONIC) - restored_since > CRIU_RESTORED_WAIT_NS) {
				restored = true;
				arg = 0;
				break;
			}
			continue;
		}
		if (crac__now_ns(CLOCK_MONOTONIC) > deadline || helper_gone) {
			kill(helper, SIGKILL);
			unstash(r, s, helper, false);
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", -ETIMEDOUT,
					 "criu dump gave no answer%s; no image was written to %s, the process goes on",
					 crac__now_ns(CLOCK_MONOTONIC) > deadline ? " before the deadline" : " (its helper is gone)", dir);
			discard_tmp(s);
			return -ETIMEDOUT;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	if (restored) {
		/* 5r. A new process. Nothing of the helper exists here. */
		crac__runtime_restore_early();
		unstash(r, s, helper, true);
		if (arg)
			take_new_args(r, sender, (int)arg);
		return CRAC_RESTORED;
	}

	/* 5. The original. */
	unstash(r, s, helper, false);
	if (!dumped) {
		crac__criu_log_errors(s->log, words, sizeof(words));
		int st = (int)arg;
		if (!words[0]) {
			/* nothing in its log (a bad option): what it printed */
			char text[4096], out[PATH_MAX + 16];
			snprintf(out, sizeof(out), "%s/criu.out", s->tmp);
			/* bounded (image/dir.c): one that does not return is said */
			long n = crac_img_read_part_msg(out, CRAC_IMG_HEAD, "criu-out", text, sizeof(text) - 1, NULL,
							msg, sizeof(msg));
			text[n > 0 ? n : 0] = 0;
			char *nl = n > 0 ? strchr(text, '\n') : NULL;
			if (nl)   /* its first line: the rest is usage text */
				*nl = 0;
			if (n > 0)
				criu_words(text, words, 300);
			else if (n == -ETIMEDOUT)
				snprintf(words, sizeof(words), "its output could not be read: %.1400s", msg);
		}
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", -EIO,
				 "criu dump failed (%s %d): %s; no image was written to %s, the process goes on",
				 WIFSIGNALED(st) ? "signal" : "exit status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
				 words[0] ? words : "see its log", dir);
		discard_tmp(s);
		return -EIO;
	}
	if ((rc = verify_dump(s, tid, words, sizeof(words))) == -ETIMEDOUT) {
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", rc, "%s; no image was written to %s, the "
				 "process goes on", words, dir);
		discard_tmp(s);
		return rc;
	}
	if (rc < 0) {
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", -EIO,
				 "criu dump exited 0 but wrote no image (%s): no image was written to %s, the "
				 "process goes on", words, dir);
		discard_tmp(s);
		return -EIO;
	}
	if ((rc = write_marker(r, s, tid, start, msg, sizeof(msg))) < 0) {
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", rc, "%s%s; no image was written to %s, the "
				 "process goes on", rc == -ETIMEDOUT ? "" : "cannot write the marker ", msg, dir);
		discard_tmp(s);
		return rc;
	}
	if ((rc = fsync_tree(s->tmp, msg, sizeof(msg))) < 0) {
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", rc, "%s; no image was written to %s, the "
				 "process goes on", msg, dir);
		discard_tmp(s);
		return rc;
	}
	if ((rc = commit(s->tmp, dir, msg, sizeof(msg))) < 0) {
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "criu", rc, "%s; the process goes on", msg);
		discard_tmp(s);
		return rc;
	}
	drop_lock(s);   /* renamed: DIR now */
	char text[PATH_MAX + 1200];
	if (rc > 0) {
		fprintf(stderr, "crac: warning: CRIU image written to %s, but %s\n", dir, msg);
		snprintf(text, sizeof(text), "CRIU image written to %s (warning: %s)", dir, msg);
	} else {
		snprintf(text, sizeof(text), "CRIU image written to %s", dir);
	}
	crac__round_snapshot_taken(r, text);
	return CRAC_CONTINUED;
}

/* The checkpoint. Its looks at the file system (the temporary's chmod,
 * the lock taken back, the reads of what CRIU wrote, the marker's write,
 * the fsyncs, the commit and a removal) end at the checkpoint's deadline,
 * and CRAC_BOUNDED_GRACE_MS at least (image/dir.c's bounded helpers: the
 * deadline is the callbacks'), when the file system does not answer. */
static int criu_checkpoint(struct crac_round *r)
{
	crac_img_fs_deadline(r->event.deadline_monotonic);
	int rc = checkpoint_run(r);
	crac_img_fs_deadline(0);
	return rc;
}

const struct crac_engine crac__engine_criu CRAC_HIDDEN = {
	.name = "criu",
	.summary = "CRIU dumps the process into an image directory; `crac restore DIR` runs criu restore",
	.flags = CRAC_ENGINE_WRITES_IMAGE,
	.configure = criu_configure,
	.checkpoint = criu_checkpoint,
	.release = criu_release,
};
