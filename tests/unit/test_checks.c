/* SPDX-License-Identifier: MIT */
/*
 * test_checks.c - the safety checks and policies (issue #4).
 *
 * For each kind of descriptor and mapping: crac_check() refuses it with one
 * report line naming the fd, the kind, the path or address and a policy
 * that would allow it. Then each policy action, applied in a real round
 * (sim engine with CRAC_FORCE_CHECKS): close closes, reopen reopens (files
 * at the same offset, listening sockets that keep accepting), warn keeps,
 * error refuses; malformed policies are rejected with line and column.
 */
#include "harness.h"

#include <crac.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <pty.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/crac-test-checks-XXXXXX";

/* Closes every fd above 2 that the test runner may have left us. */
static void close_inherited(void)
{
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
}

/* The report line about fd `fd` from crac_check(), or NULL. */
static char *line_for(const char *resource)
{
	crac_report *rep = NULL;
	char *found = NULL;

	crac_check(&rep);
	for (size_t i = 0; i < crac_report_count(rep); i++) {
		const struct crac_failure *f = crac_report_get(rep, i);
		if (!strcmp(f->resource, resource)) {
			CHECK_EQ(f->phase, CRAC_PHASE_CHECK);
			CHECK_EQ(f->code, -EBUSY);
			found = strdup(f->message);
			break;
		}
	}
	crac_report_free(rep);
	return found;
}

/* Expects a refusal for fd `fd` whose message contains every needle. */
static void expect_fd(int fd, const char *kind_word, const char *needle, const char *policy)
{
	char res[32];
	snprintf(res, sizeof(res), "fd %d", fd);
	char *msg = line_for(res);
	CHECKF(msg != NULL, "no report line for %s (%s)", res, kind_word);
	if (!msg)
		return;
	CHECKF(strncmp(msg, kind_word, strlen(kind_word)) == 0 && msg[strlen(kind_word)] == ' ',
	       "%s: kind should be \"%s\": %s", res, kind_word, msg);
	if (needle)
		CHECKF(strstr(msg, needle) != NULL, "%s: \"%s\" missing in: %s", res, needle, msg);
	if (policy)
		CHECKF(strstr(msg, policy) != NULL, "%s: policy \"%s\" missing in: %s", res, policy, msg);
	free(msg);
}

static void test_clean_process_passes(void)
{
	crac_report *rep = NULL;
	int n = crac_check(&rep);
	if (n)
		crac_report_print(rep, stderr);
	CHECK_EQ(n, 0);
	CHECK(rep == NULL);
	crac_report_free(rep);
}

static void test_regular_file(void)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/data.txt", tmpdir);
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	REQUIRE(fd >= 0);
	CHECK_EQ(write(fd, "hello", 5), 5);
	expect_fd(fd, "file", path, "reopen`");
	expect_fd(fd, "file", "O_RDWR, offset 5", NULL);
	close(fd);
}

static void test_directory(void)
{
	int fd = open(tmpdir, O_RDONLY | O_DIRECTORY);
	REQUIRE(fd >= 0);
	expect_fd(fd, "dir", tmpdir, "reopen`");
	close(fd);
}

static void test_deleted_file(void)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/gone.txt", tmpdir);
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	REQUIRE(fd >= 0);
	unlink(path);
	expect_fd(fd, "file", "deleted", "close`");
	close(fd);
}

static void test_pipe_and_fifo(void)
{
	int p[2];
	char path[256];
	REQUIRE(pipe(p) == 0);
	expect_fd(p[0], "pipe", "read end", "`pipe * close`");
	expect_fd(p[1], "pipe", "write end", NULL);
	close(p[0]);
	close(p[1]);
	snprintf(path, sizeof(path), "%s/fifo", tmpdir);
	REQUIRE(mkfifo(path, 0600) == 0);
	int fd = open(path, O_RDWR);
	REQUIRE(fd >= 0);
	expect_fd(fd, "fifo", path, NULL);
	close(fd);
}

static void test_sockets(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	char addr[64];

	int l = socket(AF_INET, SOCK_STREAM, 0);
	REQUIRE(l >= 0);
	REQUIRE(bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 4) == 0);
	getsockname(l, (struct sockaddr *)&a, &al);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(a.sin_port));
	expect_fd(l, "tcp", addr, "reopen`");
	expect_fd(l, "tcp", "listening", NULL);

	int c = socket(AF_INET, SOCK_STREAM, 0);
	REQUIRE(connect(c, (struct sockaddr *)&a, sizeof(a)) == 0);
	expect_fd(c, "tcp", addr, "connected");   /* peer address named */
	int s = accept(l, NULL, NULL);
	close(s);
	close(c);
	close(l);

	int u = socket(AF_INET, SOCK_DGRAM, 0);
	REQUIRE(u >= 0);
	expect_fd(u, "udp", "datagram", NULL);
	close(u);

	char path[200];
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	snprintf(path, sizeof(path), "%s/sock", tmpdir);
	strcpy(un.sun_path, path);
	int x = socket(AF_UNIX, SOCK_STREAM, 0);
	REQUIRE(bind(x, (struct sockaddr *)&un, sizeof(un)) == 0 && listen(x, 4) == 0);
	expect_fd(x, "unix", path, "reopen`");
	close(x);
	unlink(path);

	int sp[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
	expect_fd(sp[0], "unix", "(unnamed)", "`unix (unnamed)->(unnamed) close`");
	close(sp[0]);
	close(sp[1]);
}

static void test_anon_inodes(void)
{
	int e = eventfd(0, 0);
	expect_fd(e, "eventfd", NULL, "`eventfd * close`");
	close(e);
	int ep = epoll_create1(0);
	expect_fd(ep, "epoll", NULL, NULL);
	close(ep);
	int t = timerfd_create(CLOCK_MONOTONIC, 0);
	expect_fd(t, "timerfd", NULL, NULL);
	close(t);
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR2);
	int s = signalfd(-1, &m, 0);
	expect_fd(s, "signalfd", NULL, NULL);
	close(s);
	int in = inotify_init1(0);
	expect_fd(in, "inotify", NULL, NULL);
	close(in);
	int mf = memfd_create("crac-test", 0);
	expect_fd(mf, "memfd", "/memfd:crac-test", NULL);
	close(mf);
	struct io_uring_params p = { 0 };
	int ring = (int)syscall(__NR_io_uring_setup, 4, &p);
	if (ring >= 0) {
		expect_fd(ring, "io_uring", NULL, NULL);
		close(ring);
	} else {
		printf("# io_uring_setup: %s: io_uring case not exercised\n", strerror(errno));
	}
}

static void test_devices(void)
{
	int fd = open("/dev/null", O_RDONLY);
	expect_fd(fd, "device", "/dev/null", "`device /dev/null close`");
	close(fd);
	int master, slave;
	if (openpty(&master, &slave, NULL, NULL, NULL) == 0) {
		expect_fd(slave, "tty", "/dev/pts/", NULL);
		close(master);
		close(slave);
	} else {
		printf("# openpty: %s: tty case not exercised\n", strerror(errno));
	}
}

/* The report line for a non-fd item whose resource starts with prefix. */
static char *line_starting(const char *prefix)
{
	crac_report *rep = NULL;
	char *found = NULL;

	crac_check(&rep);
	for (size_t i = 0; i < crac_report_count(rep); i++) {
		const struct crac_failure *f = crac_report_get(rep, i);
		if (!strncmp(f->resource, prefix, strlen(prefix)) && !found)
			found = strdup(f->message);
	}
	crac_report_free(rep);
	return found;
}

static void test_mappings(void)
{
	void *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	REQUIRE(m != MAP_FAILED);
	char *msg = line_starting("mapping ");
	CHECKF(msg && strstr(msg, "shared anonymous mapping") && strstr(msg, "warn`"), "%s", msg);
	free(msg);
	munmap(m, 8192);

	char path[256];
	snprintf(path, sizeof(path), "%s/mapped", tmpdir);
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	REQUIRE(ftruncate(fd, 4096) == 0);
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	REQUIRE(m != MAP_FAILED);
	msg = line_starting("mapping ");
	CHECKF(msg && strstr(msg, "writable shared file mapping"), "%s", msg);
	free(msg);
	munmap(m, 4096);

	/* read-only shared file mappings are mapped again from the file */
	fd = open(path, O_RDONLY);
	m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	REQUIRE(m != MAP_FAILED);
	msg = line_starting("mapping ");
	CHECKF(msg == NULL, "read-only shared file mapping refused: %s", msg);
	free(msg);
	munmap(m, 4096);

	int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	if (id >= 0) {
		void *s = shmat(id, NULL, 0);
		shmctl(id, IPC_RMID, NULL);
		REQUIRE(s != (void *)-1);
		msg = line_starting("shm ");
		CHECKF(msg && strstr(msg, "SysV shared memory"), "%s", msg);
		free(msg);
		shmdt(s);
	} else {
		printf("# shmget: %s: SysV shm case not exercised\n", strerror(errno));
	}
}

static void test_children_and_timers(void)
{
	int p[2];
	REQUIRE(pipe(p) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		close(p[1]);
		(void)!read(p[0], &c, 1);
		_exit(0);
	}
	close(p[0]);
	char *msg = line_starting("child ");
	CHECKF(msg && strstr(msg, "child process") && strstr(msg, "`child "), "%s", msg);
	free(msg);
	close(p[1]);
	waitpid(pid, NULL, 0);

	timer_t t;
	struct sigevent sev = { .sigev_notify = SIGEV_NONE };
	REQUIRE(timer_create(CLOCK_MONOTONIC, &sev, &t) == 0);
	msg = line_starting("timer posix:");
	CHECKF(msg && strstr(msg, "POSIX timer"), "%s", msg);
	free(msg);
	timer_delete(t);

	struct itimerval it = { .it_value = { .tv_sec = 100 } }, off = { 0 };
	setitimer(ITIMER_REAL, &it, NULL);
	msg = line_starting("timer ITIMER_REAL");
	CHECKF(msg && strstr(msg, "interval timer"), "%s", msg);
	free(msg);
	setitimer(ITIMER_REAL, &off, NULL);
}

static void test_every_item_listed(void)
{
	int p[2], e = eventfd(0, 0);
	REQUIRE(pipe(p) == 0);
	crac_report *rep = NULL;
	CHECK_EQ(crac_check(&rep), 3);
	CHECK_EQ(crac_report_count(rep), 3);
	crac_report_free(rep);
	close(p[0]);
	close(p[1]);
	close(e);
}

/* ---- policies ---------------------------------------------------------- */

static struct crac_options forced(void)
{
	struct crac_options o;
	crac_options_init(&o);
	o.engine = "sim";
	o.flags = CRAC_FORCE_CHECKS;
	return o;
}

static void test_policy_syntax_errors(void)
{
	char err[256], path[256];

	CHECK_EQ(crac_policy_add("file /x reopn", err, sizeof(err)), -EINVAL);
	CHECKF(strstr(err, "1:9:") && strstr(err, "reopn"), "%s", err);
	CHECK_EQ(crac_policy_add("files /x close", err, sizeof(err)), -EINVAL);
	CHECKF(strstr(err, "1:1:") && strstr(err, "unknown kind"), "%s", err);
	CHECK_EQ(crac_policy_add("pipe * reopen", err, sizeof(err)), -EINVAL);
	CHECKF(strstr(err, "1:8:"), "%s", err);
	CHECK_EQ(crac_policy_add("file /x close changed=ok", err, sizeof(err)), -EINVAL);
	CHECKF(strstr(err, "1:15:"), "%s", err);
	CHECK_EQ(crac_policy_add("file \"/x y", err, sizeof(err)), -EINVAL);
	CHECKF(strstr(err, "unterminated"), "%s", err);

	snprintf(path, sizeof(path), "%s/bad.policy", tmpdir);
	FILE *f = fopen(path, "w");
	fputs("# rules\nfile /tmp/* reopen\n\n  tcp *:80   listen\n", f);
	fclose(f);
	CHECK_EQ(crac_policy_load(path, err, sizeof(err)), -EINVAL);
	char want[300];
	snprintf(want, sizeof(want), "%s:4:14:", path);
	CHECKF(strstr(err, want) != NULL, "want \"%s\" in \"%s\"", want, err);

	/* nothing of a bad file is added: a pipe is still refused */
	int p[2];
	REQUIRE(pipe(p) == 0);
	CHECK_EQ(crac_check(NULL), 2);
	CHECK_EQ(crac_policy_load("/nonexistent/crac.policy", err, sizeof(err)), -ENOENT);
	CHECKF(strstr(err, "/nonexistent/crac.policy"), "%s", err);
	close(p[0]);
	close(p[1]);
	crac_policy_clear();
}

static void test_policy_close_warn_error(void)
{
	int p[2], e = eventfd(0, 0);
	char err[256];
	crac_report *rep = NULL;
	REQUIRE(pipe(p) == 0);

	/* first-wins: the specific eventfd rule before the "fd * error" catch-all */
	CHECK_EQ(crac_policy_add("pipe * close", err, sizeof(err)), 0);
	CHECK_EQ(crac_policy_add("eventfd * warn  # keep it", err, sizeof(err)), 0);
	CHECK_EQ(crac_policy_add("fd * error", err, sizeof(err)), 0);
	CHECK_EQ(crac_check(&rep), 0);
	crac_report_free(rep);

	struct crac_options o = forced();
	int rc = crac_checkpoint_restore(&o, &rep);
	if (rep)
		crac_report_print(rep, stderr);
	CHECK_EQ(rc, CRAC_RESTORED);
	crac_report_free(rep);
	CHECK(fcntl(p[0], F_GETFD) < 0 && errno == EBADF);   /* closed */
	CHECK(fcntl(p[1], F_GETFD) < 0 && errno == EBADF);
	CHECK(fcntl(e, F_GETFD) >= 0);                        /* warn: kept */

	/* without CRAC_FORCE_CHECKS the sim engine loses nothing: no checks */
	crac_policy_clear();
	crac_options_init(&o);
	o.engine = "sim";
	CHECK_EQ(crac_checkpoint_restore(&o, NULL), CRAC_RESTORED);

	/* error (the default) refuses: aborted, nothing closed */
	REQUIRE(pipe(p) == 0);
	o = forced();
	rc = crac_checkpoint_restore(&o, &rep);
	CHECK_EQ(rc, CRAC_ABORTED);
	CHECK_EQ(crac_report_count(rep), 3);
	crac_report_free(rep);
	CHECK(fcntl(p[0], F_GETFD) >= 0);
	close(p[0]);
	close(p[1]);
	close(e);
}

static int fails(const crac_event *ev, void *a)
{
	return crac_fail(-EBUSY, "busy");
}

static void test_failed_callback_means_dry_checks(void)
{
	struct crac_resource_def d = { .name = "failing", .before_checkpoint = fails };
	crac_resource *res;
	char err[128];
	int p[2];

	REQUIRE(pipe(p) == 0);
	crac_policy_add("pipe * close", err, sizeof(err));
	int e = eventfd(0, 0);
	crac_register(NULL, &d, &res);
	struct crac_options o = forced();
	crac_report *rep = NULL;
	CHECK_EQ(crac_checkpoint_restore(&o, &rep), CRAC_ABORTED);
	/* both the callback and the eventfd are in the one report */
	CHECK_EQ(crac_report_count(rep), 2);
	crac_report_free(rep);
	CHECK(fcntl(p[0], F_GETFD) >= 0);   /* dry: the close policy did not act */
	crac_unregister(res);
	crac_policy_clear();
	close(p[0]);
	close(p[1]);
	close(e);
}

static void test_reopen_appended_file(void)
{
	char path[256], err[256], rule[300], buf[64] = "";
	snprintf(path, sizeof(path), "%s/app.log", tmpdir);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	REQUIRE(fd >= 0);
	CHECK_EQ(write(fd, "one\n", 4), 4);

	int rd = open(path, O_RDONLY);   /* a reader in the middle of the file */
	CHECK_EQ(read(rd, buf, 2), 2);
	snprintf(rule, sizeof(rule), "file %s/* reopen", tmpdir);
	CHECK_EQ(crac_policy_add(rule, err, sizeof(err)), 0);

	struct crac_options o = forced();
	crac_report *rep = NULL;
	int rc = crac_checkpoint_restore(&o, &rep);
	if (rep)
		crac_report_print(rep, stderr);
	CHECK_EQ(rc, CRAC_RESTORED);
	crac_report_free(rep);

	CHECK_EQ(fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND), O_WRONLY | O_APPEND);
	CHECK_EQ(write(fd, "two\n", 4), 4);
	CHECK_EQ(lseek(rd, 0, SEEK_CUR), 2);   /* same offset after reopen */
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(read(rd, buf, sizeof(buf) - 1), 6);
	CHECKF(!strcmp(buf, "e\ntwo\n"), "read \"%s\"", buf);
	close(fd);
	close(rd);
	crac_policy_clear();
}

/* A file that changed under a reopen policy: refused at restore unless
 * changed=ok; a deleted one: refused, naming the path. */
static void test_reopen_changed_or_gone(void)
{
	char path[256], err[256], rule[300];
	snprintf(path, sizeof(path), "%s/changing.txt", tmpdir);
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	REQUIRE(fd >= 0);
	snprintf(rule, sizeof(rule), "file %s reopen", path);
	CHECK_EQ(crac_policy_add(rule, err, sizeof(err)), 0);

	/* The pause engine lets us change the file while the process is
	 * "checkpointed": resume it from another thread after the change. */
	struct crac_options o = forced();
	o.engine = "pause";
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/ctl", tmpdir);
	setenv("CRAC_CONTROL_DIR", dir, 1);

	pid_t child = fork();
	if (child == 0) {
		/* child: the checkpointing process */
		crac_report *rep = NULL;
		int rc = crac_checkpoint_restore(&o, &rep);
		int ok = rc == CRAC_RESTORED && crac_report_count(rep) == 1 &&
			 crac_report_get(rep, 0)->phase == CRAC_PHASE_RESTORE &&
			 crac_report_get(rep, 0)->code == -ESTALE &&
			 strstr(crac_report_get(rep, 0)->message, "changed=ok") &&
			 strstr(crac_report_get(rep, 0)->message, path);
		if (!ok)
			crac_report_print(rep, stderr);
		_exit(ok ? 0 : 1);
	}
	/* wait for the child's socket, change the file, resume */
	char sock[400], cmd[600];
	snprintf(sock, sizeof(sock), "%s/%d.sock", dir, child);
	for (int i = 0; i < 200 && access(sock, F_OK) < 0; i++)
		usleep(10000);
	usleep(100000);   /* let the child reach the pause */
	int w = open(path, O_WRONLY | O_APPEND);
	CHECK_EQ(write(w, "changed\n", 8), 8);
	close(w);
	const char *build = getenv("CRAC_BUILD_DIR");
	REQUIRE(build != NULL);   /* set by CTest */
	snprintf(cmd, sizeof(cmd), "%s/crac restore --pid %d >/dev/null 2>&1", build, child);
	int st = -1;
	for (int i = 0; i < 50; i++) {
		if (system(cmd) == 0)
			break;
		usleep(20000);
	}
	waitpid(child, &st, 0);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
	close(fd);
	crac_policy_clear();
}

/*
 * A reopen policy for a descriptor whose reopening cannot be recorded (a
 * file whose path is longer than /proc/self/fd can show): the round is
 * aborted naming it, and every descriptor is left as it was: the pipe a
 * close policy applies to is not closed, the other reopened file is the
 * same open file at the same offset.
 */
static void test_reopen_unrecordable(void)
{
	char name[251], path[256], err[256], rule[300];
	int p[2], dfd, deep;

	memset(name, 'd', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	/* 17 levels of 250 bytes: more than the 4096 bytes of a path */
	dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(dfd >= 0);
	for (int k = 0; k < 17 && dfd >= 0; k++) {
		if (mkdirat(dfd, name, 0700) < 0 && errno != EEXIST)
			break;
		int nd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(dfd);
		dfd = nd;
	}
	REQUIRE(dfd >= 0);
	deep = openat(dfd, "f", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	close(dfd);
	REQUIRE(deep >= 0);
	char probe[64], link[PATH_MAX];
	snprintf(probe, sizeof(probe), "/proc/self/fd/%d", deep);
	if (readlink(probe, link, sizeof(link)) >= 0) {
		close(deep);
		printf("# skip: /proc/self/fd shows a path longer than PATH_MAX here\n");
		return;
	}

	snprintf(path, sizeof(path), "%s/kept.txt", tmpdir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	REQUIRE(fd >= 0);
	CHECK_EQ(write(fd, "kept", 4), 4);
	CHECK_EQ(lseek(fd, 2, SEEK_SET), 2);
	struct stat before;
	REQUIRE(fstat(fd, &before) == 0);
	REQUIRE(pipe(p) == 0);
	CHECK_EQ(crac_policy_add("pipe * close", err, sizeof(err)), 0);
	snprintf(rule, sizeof(rule), "file * reopen");
	CHECK_EQ(crac_policy_add(rule, err, sizeof(err)), 0);

	struct crac_options o = forced();
	crac_report *rep = NULL;
	CHECK_EQ(crac_checkpoint_restore(&o, &rep), CRAC_ABORTED);
	char res[32];
	snprintf(res, sizeof(res), "fd %d", deep);
	CHECK_EQ(crac_report_count(rep), 1);
	const struct crac_failure *f = crac_report_count(rep) ? crac_report_get(rep, 0) : NULL;
	CHECKF(f && !strcmp(f->resource, res) && f->phase == CRAC_PHASE_CHECK && f->code == -ENAMETOOLONG &&
	       strstr(f->message, "cannot record file") && strstr(f->message, "nothing was closed"),
	       "%s: %s", f ? f->resource : "-", f ? f->message : "no report line");
	crac_report_free(rep);

	/* everything as it was */
	CHECK(fcntl(p[0], F_GETFD) >= 0);
	CHECK(fcntl(p[1], F_GETFD) >= 0);
	CHECK_EQ(write(p[1], "x", 1), 1);    /* still the pipe, not a placeholder */
	char c = 0;
	CHECK_EQ(read(p[0], &c, 1), 1);
	CHECK_EQ(c, 'x');
	struct stat after;
	CHECK(fstat(fd, &after) == 0 && after.st_ino == before.st_ino && after.st_dev == before.st_dev);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 2);
	CHECK_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
	CHECK(fcntl(deep, F_GETFD) >= 0);

	crac_policy_clear();
	close(p[0]);
	close(p[1]);
	close(fd);
	close(deep);
}

static void test_tcp_server_keeps_serving(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	char err[256];

	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	REQUIRE(bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 8) == 0);
	getsockname(l, (struct sockaddr *)&a, &al);
	CHECK_EQ(crac_policy_add("tcp 127.0.0.1:* reopen", err, sizeof(err)), 0);

	struct crac_options o = forced();
	crac_report *rep = NULL;
	int rc = crac_checkpoint_restore(&o, &rep);
	if (rep)
		crac_report_print(rep, stderr);
	CHECK_EQ(rc, CRAC_RESTORED);
	crac_report_free(rep);

	/* same fd number, still listening on the same port, same flags */
	int acc = 0;
	socklen_t ol = sizeof(acc);
	CHECK(getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &acc, &ol) == 0 && acc);
	CHECK(fcntl(l, F_GETFL) & O_NONBLOCK);
	struct sockaddr_in b;
	socklen_t bl = sizeof(b);
	getsockname(l, (struct sockaddr *)&b, &bl);
	CHECK_EQ(ntohs(b.sin_port), ntohs(a.sin_port));

	int c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_EQ(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_EQ(write(c, "ping", 4), 4);
	int s = -1;
	for (int i = 0; i < 100 && s < 0; i++) {
		s = accept(l, NULL, NULL);
		if (s < 0)
			usleep(1000);
	}
	char buf[8] = "";
	CHECK(s >= 0 && read(s, buf, 4) == 4 && !memcmp(buf, "ping", 4));
	close(s);
	close(c);
	close(l);
	crac_policy_clear();
}


/* The image engine's view (crac_check with CRAC_ENGINE unset): what it
 * carries is not reported; a pipe to another process still is. */
static void test_carried(void)
{
	char path[256];
	int p[2], q[2];

	unsetenv("CRAC_ENGINE");
	snprintf(path, sizeof(path), "%s/carried.txt", tmpdir);
	int f = open(path, O_RDWR | O_CREAT, 0600);
	int e = eventfd(3, 0);
	REQUIRE(f >= 0 && e >= 0 && pipe(p) == 0 && pipe(q) == 0);
	pid_t child = fork();
	if (child == 0) {
		char c;
		close(q[1]);
		ssize_t unused = read(q[0], &c, 1);   /* until the parent is done */
		(void)unused;
		_exit(0);
	}
	close(q[0]);   /* q[1]: a pipe whose read end is in the child only */
	char res[32];
	for (int fd = 3; fd <= 6; fd++) {
		snprintf(res, sizeof(res), "fd %d", fd);
		char *msg = line_for(res);
		CHECKF(msg == NULL, "%s is carried, yet reported: %s", res, msg ? msg : "");
		free(msg);
	}
	snprintf(res, sizeof(res), "fd %d", q[1]);
	char *msg = line_for(res);
	CHECKF(msg && strstr(msg, "its other end is not in this process"), "%s: %s", res, msg ? msg : "(none)");
	free(msg);
	close(q[1]);
	waitpid(child, NULL, 0);
	close(f);
	close(e);
	close(p[0]);
	close(p[1]);
	unlink(path);
	setenv("CRAC_ENGINE", "sim", 1);
}

/* A descriptor the program closes while the checks run (its threads are
 * not stopped yet): no refusal naming it ("Bad file descriptor" failed a
 * crac start whose program closed its sd_notify socket as READY=1 fired
 * the checkpoint); the capture takes the table as it is once every thread
 * is stopped. The same descriptor left open is refused as before. */
static void test_closed_during_checks(void)
{
	int q[2];
	char res[32], num[16];

	unsetenv("CRAC_ENGINE");
	REQUIRE(pipe(q) == 0);
	pid_t child = fork();
	if (child == 0) {
		char c;
		close(q[1]);
		ssize_t unused = read(q[0], &c, 1);
		(void)unused;
		_exit(0);
	}
	close(q[0]);   /* q[1]: its read end is in the child only: not carried */
	snprintf(res, sizeof(res), "fd %d", q[1]);
	char *msg = line_for(res);
	CHECKF(msg && strstr(msg, "its other end is not in this process"), "open: %s", msg ? msg : "(none)");
	free(msg);
	snprintf(num, sizeof(num), "%d", q[1]);
	setenv("CRAC_TEST_CHECKS_CLOSE_FD", num, 1);
	msg = line_for(res);
	CHECKF(msg == NULL, "closed during the checks, yet reported: %s", msg ? msg : "");
	free(msg);
	unsetenv("CRAC_TEST_CHECKS_CLOSE_FD");
	CHECK(fcntl(q[1], F_GETFD) < 0 && errno == EBADF);
	waitpid(child, NULL, 0);
	setenv("CRAC_ENGINE", "sim", 1);
}

/* A JVM's perf-data file, /tmp/hsperfdata_USER/PID of its own pid, mapped
 * shared and writable: the image engine stores it as memory, so its view
 * reports nothing; an engine that maps files again is told which JVM flag
 * avoids the file (and no `warn` policy, which would fail later). The same
 * mapping under another name or another pid is refused as before. */
static void test_jvm_perfdata(void)
{
	char dir[128], own[192], other[192], elsewhere[300], sub[256];
	struct passwd *pw = getpwuid(geteuid());
	bool made_dir = false;

	REQUIRE(pw != NULL);
	snprintf(dir, sizeof(dir), "/tmp/hsperfdata_%s", pw->pw_name);
	if (mkdir(dir, 0755) == 0)
		made_dir = true;
	else
		REQUIRE(errno == EEXIST);
	snprintf(own, sizeof(own), "%s/%d", dir, (int)getpid());
	snprintf(other, sizeof(other), "%s/%d0", dir, (int)getpid());   /* not our pid */
	snprintf(sub, sizeof(sub), "%s/hsperfdata_%s", tmpdir, pw->pw_name);
	REQUIRE(mkdir(sub, 0700) == 0);
	snprintf(elsewhere, sizeof(elsewhere), "%s/%d", sub, (int)getpid());
	const char *paths[3] = { own, other, elsewhere };
	void *m[3];
	for (int i = 0; i < 3; i++) {
		int fd = open(paths[i], O_RDWR | O_CREAT | O_EXCL, 0600);
		REQUIRE(fd >= 0);
		REQUIRE(ftruncate(fd, 32768) == 0);
		m[i] = mmap(NULL, 32768, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		REQUIRE(m[i] != MAP_FAILED);
		((char *)m[i])[100] = 1;
	}
	char res[3][512];
	for (int i = 0; i < 3; i++)
		snprintf(res[i], sizeof(res[i]), "mapping %s", paths[i]);

	/* an engine that maps files again (sim, as the rest of this file) */
	char *msg = line_for(res[0]);
	CHECKF(msg && strstr(msg, "performance-data file") && strstr(msg, "-XX:+PerfDisableSharedMem") &&
	       strstr(msg, "-XX:-UsePerfData") && !strstr(msg, "warn`"), "%s", msg ? msg : "(none)");
	free(msg);

	/* the image engine's view */
	unsetenv("CRAC_ENGINE");
	msg = line_for(res[0]);
	CHECKF(msg == NULL, "the JVM's own perf-data file is refused: %s", msg);
	free(msg);
	for (int i = 1; i < 3; i++) {
		msg = line_for(res[i]);
		CHECKF(msg && strstr(msg, "writable shared file mapping") && strstr(msg, "warn`"), "%s: %s",
		       paths[i], msg ? msg : "(none)");
		free(msg);
	}
	setenv("CRAC_ENGINE", "sim", 1);

	for (int i = 0; i < 3; i++) {
		munmap(m[i], 32768);
		unlink(paths[i]);
	}
	rmdir(sub);
	if (made_dir)
		rmdir(dir);
}

/* POSIX timers in the image engine's view: one that signals the process
 * (or nobody) is carried and not reported; one that signals a thread is
 * refused with the reason; an armed interval timer is still refused. */
static void test_posix_timers_carried(void)
{
	struct sigevent to_process = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN + 2 };
	struct sigevent to_nobody = { .sigev_notify = SIGEV_NONE };
	struct sigevent to_thread = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGRTMIN + 2 };
	timer_t a, b, c, d;
	char res[4][32];

	if (prctl(77 /* PR_TIMER_CREATE_RESTORE_IDS */, 2 /* _GET */, 0, 0, 0) < 0) {
		printf("# no PR_TIMER_CREATE_RESTORE_IDS (Linux 6.14): POSIX timers are refused, not exercised\n");
		return;
	}
	to_thread._sigev_un._tid = (int)syscall(SYS_gettid);
	REQUIRE(timer_create(CLOCK_MONOTONIC, &to_process, &a) == 0);
	REQUIRE(timer_create(CLOCK_REALTIME, &to_nobody, &b) == 0);
	REQUIRE(timer_create(CLOCK_MONOTONIC, &to_thread, &c) == 0);
	/* the process's CPU time: /proc/self/timers shows the kernel's
	 * clock id for it (-6), not CLOCK_PROCESS_CPUTIME_ID */
	REQUIRE(timer_create(CLOCK_PROCESS_CPUTIME_ID, &to_process, &d) == 0);
	snprintf(res[0], sizeof(res[0]), "timer posix:%d", (int)(intptr_t)a);
	snprintf(res[1], sizeof(res[1]), "timer posix:%d", (int)(intptr_t)b);
	snprintf(res[2], sizeof(res[2]), "timer posix:%d", (int)(intptr_t)c);
	snprintf(res[3], sizeof(res[3]), "timer posix:%d", (int)(intptr_t)d);
	unsetenv("CRAC_ENGINE");
	for (int i = 0; i < 4; i += 1 + (i == 1)) {
		char *msg = line_for(res[i]);
		CHECKF(msg == NULL, "%s is carried, yet reported: %s", res[i], msg);
		free(msg);
	}
	char *msg = line_for(res[2]);
	CHECKF(msg && strstr(msg, "signals one thread"), "%s: %s", res[2], msg ? msg : "(none)");
	free(msg);
	struct itimerval it = { .it_value = { .tv_sec = 100 } }, off = { 0 };
	setitimer(ITIMER_REAL, &it, NULL);
	msg = line_starting("timer ITIMER_REAL");
	CHECKF(msg && strstr(msg, "interval timer"), "%s", msg ? msg : "(none)");
	free(msg);
	setitimer(ITIMER_REAL, &off, NULL);
	setenv("CRAC_ENGINE", "sim", 1);
	timer_delete(a);
	timer_delete(b);
	timer_delete(c);
	timer_delete(d);
}

int main(void)
{
	close_inherited();
	/* the inventory as an engine that carries nothing sees it: every
	 * kind is reported (test_carried covers the image engine's view) */
	setenv("CRAC_ENGINE", "sim", 1);
	if (!mkdtemp(tmpdir))
		t_skip_all("cannot create a temporary directory");
	RUN(test_clean_process_passes);
	RUN(test_carried);
	RUN(test_regular_file);
	RUN(test_directory);
	RUN(test_deleted_file);
	RUN(test_pipe_and_fifo);
	RUN(test_sockets);
	RUN(test_anon_inodes);
	RUN(test_devices);
	RUN(test_mappings);
	RUN(test_jvm_perfdata);
	RUN(test_closed_during_checks);
	RUN(test_posix_timers_carried);
	RUN(test_children_and_timers);
	RUN(test_every_item_listed);
	RUN(test_policy_syntax_errors);
	RUN(test_policy_close_warn_error);
	RUN(test_failed_callback_means_dry_checks);
	RUN(test_reopen_appended_file);
	RUN(test_reopen_changed_or_gone);
	RUN(test_reopen_unrecordable);
	RUN(test_tcp_server_keeps_serving);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	(void)!system(cmd);
	return t_done();
}
