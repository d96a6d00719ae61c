/* SPDX-License-Identifier: MIT */
/*
 * test_control.c - the control endpoint (crac.h "Control endpoint";
 * DESIGN §3 "External trigger"):
 *  - crac_control_path / start / stop: $CRAC_CONTROL_DIR/PID.sock, the
 *    directory created 0700, the socket 0600, start idempotent, stop
 *    removes the socket; a directory with the wrong mode or owner -> -EPERM;
 *    a stale socket file is replaced, a live one -> -EEXIST;
 *  - a checkpoint requested through the endpoint (internal client
 *    crac__control_request, the one the CLI uses) runs the callbacks and
 *    returns the outcome and the report;
 *  - another uid is refused (needs root to have another uid: skipped
 *    otherwise, with the reason printed);
 *  - without CRAC_CONTROL_DIR: $XDG_RUNTIME_DIR/crac when XDG_RUNTIME_DIR
 *    is ours and writable by nobody else, else /run/user/UID/crac, else
 *    /tmp/crac-UID;
 *  - the socket file is removed when the process exits normally;
 *  - crac__put_escaped / crac__escaped, the escaping of peer text.
 */
#include "test_common.h"
#include "core/internal.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

static char base[128];     /* mkdtemp'd; every subtest uses a fresh subdir */
static int dirseq;

/* Points CRAC_CONTROL_DIR at a fresh, not yet existing directory. */
static const char *fresh_dir(char *buf, size_t len)
{
	snprintf(buf, len, "%s/ctl%d", base, ++dirseq);
	setenv("CRAC_CONTROL_DIR", buf, 1);
	return buf;
}

static void sock_path_in(const char *dir, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%d.sock", dir, (int)getpid());
}

/* 0 if a client can connect to `path`, else -errno. */
static int try_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	int rc = connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* The default directory without CRAC_CONTROL_DIR and XDG_RUNTIME_DIR:
 * /run/user/UID/crac if /run/user/UID is ours and private, else
 * /tmp/crac-UID. */
static void default_dir(char *buf, size_t len)
{
	char run[64];
	struct stat st;

	snprintf(run, sizeof(run), "/run/user/%u", (unsigned)geteuid());
	if (lstat(run, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 022))
		snprintf(buf, len, "%s/crac", run);
	else
		snprintf(buf, len, "/tmp/crac-%u", (unsigned)geteuid());
}

/* crac_control_path: "$CRAC_CONTROL_DIR/PID.sock", the length returned,
 * -ENAMETOOLONG for a short buffer; default directory (no XDG_RUNTIME_DIR)
 * /run/user/UID/crac or /tmp/crac-UID. */
static void test_path(void)
{
	char dir[256], want[300], got[300];
	fresh_dir(dir, sizeof(dir));
	sock_path_in(dir, want, sizeof(want));
	int n = crac_control_path(got, sizeof(got));
	CHECK_EQ(n, (int)strlen(want));
	CHECKF(strcmp(got, want) == 0, "path %s, want %s", got, want);
	CHECK_EQ(crac_control_path(got, 5), -ENAMETOOLONG);
	CHECK_EQ(crac_control_path(got, strlen(want)), -ENAMETOOLONG);  /* no room for NUL */

	unsetenv("CRAC_CONTROL_DIR");
	unsetenv("XDG_RUNTIME_DIR");
	default_dir(dir, sizeof(dir));
	snprintf(want, sizeof(want), "%s/%d.sock", dir, (int)getpid());
	n = crac_control_path(got, sizeof(got));
	CHECK_EQ(n, (int)strlen(want));
	CHECKF(strcmp(got, want) == 0, "default path %s, want %s", got, want);
}

/* start creates the directory 0700 and the socket 0600, both ours; start is
 * idempotent; the socket accepts connections; stop removes it; stop is
 * idempotent; start works again after stop. */
static void test_start_stop(void)
{
	char dir[256], path[300];
	struct stat st;
	fresh_dir(dir, sizeof(dir));
	sock_path_in(dir, path, sizeof(path));
	REQUIRE(stat(dir, &st) < 0);

	mode_t old = umask(0);   /* the library must not rely on the umask */
	int rc = crac_control_start();
	umask(old);
	REQUIRE(rc == 0);
	REQUIRE(stat(dir, &st) == 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECKF((st.st_mode & 07777) == 0700, "dir mode %o", st.st_mode & 07777);
	CHECK_EQ(st.st_uid, geteuid());
	REQUIRE(lstat(path, &st) == 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECKF((st.st_mode & 0777) == 0600, "socket mode %o", st.st_mode & 0777);
	CHECK_EQ(st.st_uid, geteuid());
	CHECK_EQ(try_connect(path), 0);

	CHECK_EQ(crac_control_start(), 0);   /* idempotent */
	CHECK_EQ(try_connect(path), 0);

	CHECK_EQ(crac_control_stop(), 0);
	CHECK(lstat(path, &st) < 0 && errno == ENOENT);
	CHECK(try_connect(path) < 0);
	CHECK_EQ(crac_control_stop(), 0);    /* idempotent */

	CHECK_EQ(crac_control_start(), 0);   /* and again */
	CHECK_EQ(try_connect(path), 0);
	CHECK_EQ(crac_control_stop(), 0);
}

/* A directory that is not mode 0700 (0755, 0711, 0777) -> -EPERM, and no
 * socket is created in it. */
static void test_refuses_bad_mode(void)
{
	mode_t modes[] = { 0755, 0711, 0777, 0750 };
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char dir[256], path[300];
		struct stat st;
		fresh_dir(dir, sizeof(dir));
		sock_path_in(dir, path, sizeof(path));
		REQUIRE(mkdir(dir, 0700) == 0);
		REQUIRE(chmod(dir, modes[i]) == 0);
		int rc = crac_control_start();
		CHECKF(rc == -EPERM, "mode %o: start = %d", modes[i], rc);
		CHECKF(lstat(path, &st) < 0, "mode %o: socket created", modes[i]);
		if (rc == 0)
			crac_control_stop();
		/* the library must not have "fixed" the mode either */
		REQUIRE(stat(dir, &st) == 0);
		CHECK_EQ(st.st_mode & 07777, modes[i]);
	}
}

/* A directory owned by another user (even with mode 0700) -> -EPERM.
 * Needs root to create it; otherwise only this part is skipped. */
static void test_refuses_wrong_owner(void)
{
	if (geteuid() != 0) {
		printf("# skip test_refuses_wrong_owner: needs root to chown a directory\n");
		return;
	}
	char dir[256], path[300];
	struct stat st;
	fresh_dir(dir, sizeof(dir));
	sock_path_in(dir, path, sizeof(path));
	REQUIRE(mkdir(dir, 0700) == 0);
	REQUIRE(chown(dir, 65534, 65534) == 0);
	int rc = crac_control_start();
	CHECKF(rc == -EPERM, "start = %d", rc);
	CHECK(lstat(path, &st) < 0);
	if (rc == 0)
		crac_control_stop();
}

/* A stale socket (file left behind, nobody listening) is replaced; a live
 * one (someone listening) is left alone, ours listens beside it. */
static void test_stale_and_live_socket(void)
{
	char dir[256], path[300];
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	fresh_dir(dir, sizeof(dir));
	sock_path_in(dir, path, sizeof(path));
	REQUIRE(mkdir(dir, 0700) == 0);
	REQUIRE(strlen(path) < sizeof(a.sun_path));
	memcpy(a.sun_path, path, strlen(path) + 1);

	/* stale: bound, never listened, closed */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	REQUIRE(fd >= 0);
	REQUIRE(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	close(fd);
	CHECK(try_connect(path) < 0);
	CHECK_EQ(crac_control_start(), 0);
	CHECK_EQ(try_connect(path), 0);
	CHECK_EQ(crac_control_stop(), 0);

	/* live: somebody listens there (as another process of our pid
	 * number would, in a pid namespace sharing the directory): left
	 * alone; ours listens at PID.pidns-INO.sock (INO: our pid namespace) */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	REQUIRE(fd >= 0);
	REQUIRE(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	REQUIRE(listen(fd, 4) == 0);
	struct stat st, before, ns;
	REQUIRE(lstat(path, &before) == 0);
	REQUIRE(stat("/proc/self/ns/pid", &ns) == 0);
	char nspath[400], got[400];
	snprintf(nspath, sizeof(nspath), "%s/%d.pidns-%lu.sock", dir, (int)getpid(), (unsigned long)ns.st_ino);
	int rc = crac_control_start();
	CHECKF(rc == 0, "start beside a live socket = %d", rc);
	CHECK(crac_control_path(got, sizeof(got)) > 0 && strcmp(got, nspath) == 0);
	CHECK(lstat(nspath, &st) == 0 && S_ISSOCK(st.st_mode));
	/* the other listener still has its name */
	CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == before.st_ino);
	CHECK_EQ(try_connect(path), 0);
	if (rc == 0)
		CHECK_EQ(crac_control_stop(), 0);
	/* the stop removed ours only */
	CHECK(lstat(nspath, &st) < 0);
	CHECK(lstat(path, &st) == 0 && st.st_ino == before.st_ino);
	/* no temporary left behind */
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "ls '%s' | grep -q '\\.tmp$'", dir);
	CHECK(system(cmd) != 0);
	close(fd);
	unlink(path);
}

/* ---- requests through the endpoint ---------------------------------- */

/* Sends one request with the CLI's client; returns rc, sets *status and
 * the answer text (static). */
static int request(pid_t pid, const char *const *tokens, int *status, char **text)
{
	static char *buf;
	size_t len = 0;
	char err[512] = "";
	free(buf);
	buf = NULL;
	FILE *f = open_memstream(&buf, &len);
	*status = 0;
	int rc = crac__control_request(pid, tokens, f, status, err, sizeof(err));
	fclose(f);
	if (rc < 0)
		fprintf(stderr, "  request: %d %s\n", rc, err);
	*text = buf;
	return rc;
}

/* A sim checkpoint through the endpoint runs the callbacks in order and
 * answers RESTORED; a failing resource gives ABORTED with the report text
 * naming it. */
static void test_checkpoint_through_endpoint(void)
{
	char dir[256];
	fresh_dir(dir, sizeof(dir));
	REQUIRE(crac_control_start() == 0);
	struct tres a, b;
	tres_init(&a, "a"); tres_init(&b, "b");
	tres_reg(NULL, &a, 0); tres_reg(NULL, &b, 0);

	const char *tok[] = { "CHECKPOINT", "engine=sim", NULL };
	int status;
	char *text;
	tlog_reset();
	CHECK_EQ(request(getpid(), tok, &status, &text), 0);
	CHECK_EQ(status, CRAC_RESTORED);
	CHECK_LOG("B:b B:a A:a A:b");

	b.fail_before = -EBUSY;
	CHECK_EQ(request(getpid(), tok, &status, &text), 0);
	CHECK_EQ(status, CRAC_ABORTED);
	CHECKF(text && strstr(text, "b: before failed on purpose") && strstr(text, "EBUSY"),
	       "answer:\n%s", text ? text : "(null)");

	/* unknown engine through the endpoint */
	const char *tok2[] = { "CHECKPOINT", "engine=no-such-engine", NULL };
	CHECK_EQ(request(getpid(), tok2, &status, &text), 0);
	CHECK_EQ(status, -ENOENT);

	tres_unreg(&a); tres_unreg(&b);
	CHECK_EQ(crac_control_stop(), 0);
}

/* ---- another uid ------------------------------------------------------ */

struct child_result { int rc; int status; int connect_errno; char text[512]; };

/* Forks a child that optionally becomes uid/gid 65534 and either sends a
 * CHECKPOINT request (mode 0) or only tries to connect (mode 1). */
static int run_child(bool drop, int mode, const char *path, struct child_result *res)
{
	int p[2];
	if (pipe(p) < 0)
		return -errno;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		struct child_result r = { 0 };
		close(p[0]);
		if (drop && (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0))
			_exit(3);
		if (mode == 0) {
			const char *tok[] = { "CHECKPOINT", "engine=sim", NULL };
			char err[256] = "";
			FILE *f = fmemopen(r.text, sizeof(r.text) - 1, "w");
			r.rc = crac__control_request(parent, tok, f, &r.status, err, sizeof(err));
			if (f)
				fclose(f);
		} else {
			r.connect_errno = -try_connect(path);
		}
		if (write(p[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(4);
		_exit(0);
	}
	close(p[1]);
	/* never hang: the server must answer or close within 10 s */
	struct pollfd pf = { .fd = p[0], .events = POLLIN };
	int got = 0;
	if (poll(&pf, 1, 10000) == 1)
		got = (int)read(p[0], res, sizeof(*res));
	close(p[0]);
	if (got != (int)sizeof(*res))
		kill(pid, SIGKILL);
	int ws;
	waitpid(pid, &ws, 0);
	if (got != (int)sizeof(*res))
		return -ETIMEDOUT;
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

/* Reads the whole file (static buffer). */
static const char *slurp(const char *file)
{
	static char buf[8192];
	buf[0] = '\0';
	int fd = open(file, O_RDONLY);
	if (fd < 0)
		return buf;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

/* As root: with the directory opened up (0755) and the socket 0666 so that
 * uid 65534 can reach it, its CHECKPOINT request is refused (no callback
 * runs, no successful answer) and the refusal is logged on stderr ("refused").
 * The same request from root in a child succeeds (so the refusal is about
 * the uid, not about the request). With the default 0700 directory the
 * other uid cannot even connect (EACCES). */
static void test_other_uid_refused(void)
{
	if (geteuid() != 0) {
		printf("# skip test_other_uid_refused: needs root to have a second uid\n");
		return;
	}
	char dir[256], path[300], errfile[300];
	fresh_dir(dir, sizeof(dir));
	sock_path_in(dir, path, sizeof(path));
	REQUIRE(crac_control_start() == 0);
	struct tres r;
	tres_init(&r, "guarded");
	tres_reg(NULL, &r, 0);

	/* positive control: root (same uid) in a child may checkpoint us */
	struct child_result res;
	memset(&res, 0, sizeof(res));
	CHECK_EQ(run_child(false, 0, path, &res), 0);
	CHECK_EQ(res.rc, 0);
	CHECK_EQ(res.status, CRAC_RESTORED);
	CHECK_EQ(atomic_load(&r.nbefore), 1);

	/* open up the path so that uid 65534 can reach the socket */
	REQUIRE(chmod(base, 0755) == 0);
	REQUIRE(chmod(dir, 0755) == 0);
	REQUIRE(chmod(path, 0666) == 0);

	/* capture our stderr (the server logs the refusal there) */
	snprintf(errfile, sizeof(errfile), "%s/stderr.txt", base);
	fflush(stderr);
	int saved = dup(2);
	int efd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	REQUIRE(saved >= 0 && efd >= 0);
	dup2(efd, 2);
	close(efd);

	memset(&res, 0, sizeof(res));
	int crc = run_child(true, 0, path, &res);

	/* the log line may come just after the connection closed */
	const char *log = "";
	for (int i = 0; i < 100; i++) {
		log = slurp(errfile);
		if (strstr(log, "refused"))
			break;
		t_sleep_ms(20);
	}
	fflush(stderr);
	dup2(saved, 2);
	close(saved);

	CHECK_EQ(crc, 0);
	CHECKF(res.rc < 0 || res.status < 0, "other uid got rc %d status %d, answer:\n%s",
	       res.rc, res.status, res.text);
	CHECK(res.status != CRAC_RESTORED && res.status != CRAC_CONTINUED);
	CHECKF(atomic_load(&r.nbefore) == 1, "a checkpoint ran for the other uid");
	CHECKF(strstr(log, "refused") != NULL, "stderr has no \"refused\":\n%s", log);

	/* back to the default 0700 dir: the other uid cannot even connect */
	REQUIRE(chmod(dir, 0700) == 0);
	REQUIRE(chmod(path, 0600) == 0);
	memset(&res, 0, sizeof(res));
	CHECK_EQ(run_child(true, 1, path, &res), 0);
	CHECKF(res.connect_errno == EACCES, "connect as 65534: errno %d", res.connect_errno);
	CHECK_EQ(atomic_load(&r.nbefore), 1);
	REQUIRE(chmod(base, 0700) == 0);

	tres_unreg(&r);
	CHECK_EQ(crac_control_stop(), 0);
}

/* XDG_RUNTIME_DIR is used only if it is an absolute path to a real
 * directory of ours that nobody else may write to; CRAC_CONTROL_DIR wins
 * over it. The endpoint then starts in $XDG_RUNTIME_DIR/crac (created 0700)
 * even when /tmp/crac-UID is unusable. */
static void test_xdg_runtime_dir(void)
{
	char xdg[256], ctl[300], want[400], got[400], def[300], link[300];
	struct stat st;

	snprintf(xdg, sizeof(xdg), "%s/xdg%d", base, ++dirseq);
	REQUIRE(mkdir(xdg, 0700) == 0);
	snprintf(ctl, sizeof(ctl), "%s/crac", xdg);
	snprintf(want, sizeof(want), "%s/%d.sock", ctl, (int)getpid());
	unsetenv("CRAC_CONTROL_DIR");
	default_dir(def, sizeof(def));
	setenv("XDG_RUNTIME_DIR", xdg, 1);
	CHECK(crac_control_path(got, sizeof(got)) > 0);
	CHECKF(strcmp(got, want) == 0, "path %s, want %s", got, want);

	/* start creates $XDG_RUNTIME_DIR/crac 0700 and listens there */
	mode_t old = umask(0);
	int rc = crac_control_start();
	umask(old);
	CHECK_EQ(rc, 0);
	CHECK(stat(ctl, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700);
	CHECK_EQ(try_connect(want), 0);
	CHECK_EQ(crac_control_stop(), 0);
	CHECK(lstat(want, &st) < 0 && errno == ENOENT);

	/* not usable: writable by group or others, relative, a symlink, missing */
	char bad[256];
	snprintf(bad, sizeof(bad), "%s/xdg%d", base, ++dirseq);
	REQUIRE(mkdir(bad, 0700) == 0);
	REQUIRE(chmod(bad, 0770) == 0);
	snprintf(link, sizeof(link), "%s/xdglink%d", base, ++dirseq);
	REQUIRE(symlink(xdg, link) == 0);
	const char *unusable[] = { bad, "relative/dir", link, "/nonexistent/xdg" };
	for (size_t i = 0; i < sizeof(unusable) / sizeof(unusable[0]); i++) {
		setenv("XDG_RUNTIME_DIR", unusable[i], 1);
		CHECK(crac_control_path(got, sizeof(got)) > 0);
		CHECKF(strncmp(got, def, strlen(def)) == 0, "XDG_RUNTIME_DIR=%s: path %s, want %s/...",
		       unusable[i], got, def);
	}
	if (geteuid() == 0) {
		/* owned by another uid */
		REQUIRE(chmod(bad, 0700) == 0);
		REQUIRE(chown(bad, 65534, 65534) == 0);
		setenv("XDG_RUNTIME_DIR", bad, 1);
		CHECK(crac_control_path(got, sizeof(got)) > 0);
		CHECKF(strncmp(got, def, strlen(def)) == 0, "XDG_RUNTIME_DIR owned by 65534: path %s", got);
	}

	/* CRAC_CONTROL_DIR wins */
	setenv("XDG_RUNTIME_DIR", xdg, 1);
	fresh_dir(ctl, sizeof(ctl));
	sock_path_in(ctl, want, sizeof(want));
	CHECK(crac_control_path(got, sizeof(got)) > 0);
	CHECKF(strcmp(got, want) == 0, "path %s, want %s", got, want);
	unsetenv("XDG_RUNTIME_DIR");
}

/* crac_control_path before any start: its looks at $XDG_RUNTIME_DIR and
 * /run/user/UID on a file system that does not answer
 * (CRAC_TEST_SLOW_FS=path:MS) are given up on after the bound
 * (CRAC_TEST_SYNC_GRACE_MS): /tmp/crac-UID, in about twice the bound. */
static void test_path_stuck(void)
{
	char xdg[256], want[300], got[400];
	struct timespec t0, t1;

	snprintf(xdg, sizeof(xdg), "%s/xdg%d", base, ++dirseq);
	REQUIRE(mkdir(xdg, 0700) == 0);
	unsetenv("CRAC_CONTROL_DIR");
	setenv("XDG_RUNTIME_DIR", xdg, 1);
	setenv("CRAC_TEST_SLOW_FS", "path:20000", 1);
	setenv("CRAC_TEST_SYNC_GRACE_MS", "200", 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(crac_control_path(got, sizeof(got)) > 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	snprintf(want, sizeof(want), "/tmp/crac-%u/%d.sock", (unsigned)geteuid(), (int)getpid());
	CHECKF(strcmp(got, want) == 0, "path %s, want %s", got, want);
	CHECKF(ms >= 200 && ms < 5000, "%ld ms", ms);
	unsetenv("CRAC_TEST_SLOW_FS");
	unsetenv("CRAC_TEST_SYNC_GRACE_MS");
	/* it answers: $XDG_RUNTIME_DIR/crac again */
	snprintf(want, sizeof(want), "%s/crac/%d.sock", xdg, (int)getpid());
	CHECK(crac_control_path(got, sizeof(got)) > 0);
	CHECKF(strcmp(got, want) == 0, "path %s, want %s", got, want);
	unsetenv("XDG_RUNTIME_DIR");
}

/* A process that exits normally (exit() or return from main) leaves no
 * socket file behind; one that replaced ours (same name, another inode)
 * is left alone. */
static void test_removed_at_exit(void)
{
	char dir[256], path[300];
	struct stat st;
	int ws;

	fresh_dir(dir, sizeof(dir));
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		char p[300];
		snprintf(p, sizeof(p), "%s/%d.sock", dir, (int)getpid());
		if (crac_control_start() < 0 || lstat(p, &st) < 0)
			_exit(3);
		exit(0);   /* no crac_control_stop() */
	}
	REQUIRE(waitpid(pid, &ws, 0) == pid);
	CHECKF(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child status %#x", ws);
	snprintf(path, sizeof(path), "%s/%d.sock", dir, (int)pid);
	CHECKF(lstat(path, &st) < 0 && errno == ENOENT, "%s left behind", path);

	/* a file that replaced ours under the same name stays */
	int p[2];
	REQUIRE(pipe(p) == 0);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		char sp[300], c;
		close(p[1]);
		snprintf(sp, sizeof(sp), "%s/%d.sock", dir, (int)getpid());
		if (crac_control_start() < 0)
			_exit(3);
		if (read(p[0], &c, 1) != 1)   /* the parent replaced the file */
			_exit(4);
		exit(0);
	}
	close(p[0]);
	snprintf(path, sizeof(path), "%s/%d.sock", dir, (int)pid);
	for (int i = 0; i < 250 && lstat(path, &st) < 0; i++)
		t_sleep_ms(10);
	REQUIRE(unlink(path) == 0);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	REQUIRE(fd >= 0);
	close(fd);
	REQUIRE(write(p[1], "x", 1) == 1);
	close(p[1]);
	REQUIRE(waitpid(pid, &ws, 0) == pid);
	CHECKF(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child status %#x", ws);
	CHECKF(lstat(path, &st) == 0 && S_ISREG(st.st_mode), "the replacement %s was removed", path);
	unlink(path);
}

/* Escaping of text from a peer: C0 controls (tab and newline too), DEL, C1
 * controls (also UTF-8 encoded) and invalid UTF-8 as \xNN; printable ASCII,
 * backslash and valid UTF-8 as is. */
static void test_escape(void)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "plain text", "plain text" },
		{ "\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m" },
		{ "\x1b[2J", "\\x1b[2J" },
		{ "a\tb\nc\rd", "a\\x09b\\x0ac\\x0dd" },
		{ "bell\a del\x7f", "bell\\x07 del\\x7f" },
		{ "back\\slash", "back\\slash" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
		{ "csi\x9b" "1m", "csi\\x9b1m" },                  /* raw C1 */
		{ "c1\xc2\x9b" "1m", "c1\\xc2\\x9b1m" },          /* UTF-8 encoded C1 */
		{ "nbsp\xc2\xa0", "nbsp\xc2\xa0" },
		{ "bad\xff\xfe", "bad\\xff\\xfe" },
		{ "overlong\xc0\xaf", "overlong\\xc0\\xaf" },
		{ "surrogate\xed\xa0\x80", "surrogate\\xed\\xa0\\x80" },
		{ "cut\xe2\x82", "cut\\xe2\\x82" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *buf = NULL, small[600];
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		REQUIRE(f);
		crac__put_escaped(f, cases[i].in);
		fclose(f);
		CHECKF(strcmp(buf, cases[i].out) == 0, "case %zu: got \"%s\", want \"%s\"", i, buf, cases[i].out);
		free(buf);
		crac__escaped(cases[i].in, small, sizeof(small));
		CHECKF(strcmp(small, cases[i].out) == 0, "case %zu (buffer): got \"%s\"", i, small);
	}
	/* the buffer version truncates at a character boundary, NUL-terminated */
	char b[6];
	CHECK(strcmp(crac__escaped("ab\x1b", b, sizeof(b)), "ab") == 0);
	CHECK(strcmp(crac__escaped("abcdefgh", b, sizeof(b)), "abcde") == 0);
	CHECK(strcmp(crac__escaped("abc\xc3\xa9", b, sizeof(b)), "abc\xc3\xa9") == 0);
	CHECK(strcmp(crac__escaped("abcd\xc3\xa9", b, sizeof(b)), "abcd") == 0);
}

int main(void)
{
	unsetenv("CRAC_ENGINE");
	alarm(90);  /* a deadlock fails the test instead of hanging it */
	unsetenv("CRAC_CONTROL");
	unsetenv("XDG_RUNTIME_DIR");
	snprintf(base, sizeof(base), "/tmp/crac-test-control-XXXXXX");
	if (!mkdtemp(base))
		t_skip_all("cannot create a temporary directory");
	RUN(test_path);
	RUN(test_start_stop);
	RUN(test_refuses_bad_mode);
	RUN(test_refuses_wrong_owner);
	RUN(test_stale_and_live_socket);
	RUN(test_checkpoint_through_endpoint);
	RUN(test_other_uid_refused);
	RUN(test_xdg_runtime_dir);
	RUN(test_path_stuck);
	RUN(test_removed_at_exit);
	RUN(test_escape);
	crac_control_stop();
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", base);
	return t_done();
}
