/* SPDX-License-Identifier: MIT */
/*
 * test_control_dir.c - the control directory's walk (src/core/ctl_dir.c):
 *  - made (mode 0700) and opened; the descriptor is the directory at the
 *    path; trusted when no other uid can replace an entry on the way;
 *  - refused: a wrong mode, a symbolic link at the directory's own name,
 *    a symbolic link on the way in a directory others may write to (named,
 *    nothing made where it leads); a regular file on the way (named);
 *  - followed: a link (relative, absolute, a chain) only we may replace;
 *    a loop of links ends with -ELOOP;
 *  - not trusted below a directory others may write to (the entry named),
 *    nor relative to the working directory;
 *  - crac_ctl_via_fd: "/proc/self/fd/N/NAME", and too long;
 *  - crac_ctl_sweep: a stale temporary (a socket of ours, its pid dead,
 *    old enough, nothing listening) removed, PID-RANDOM.tmp and .stale;
 *    everything else kept: our own pid's, a live pid's, a listening one,
 *    a young one, a FIFO, a symbolic link (nor its target), a regular
 *    file, a directory, another uid's socket, a name not of the form;
 *    the bounds on entries looked at and removals.
 */
#include "test_common.h"
#include "core/ctl_dir.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <dirent.h>

static char base[128];

static void path_of(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/%s", base, rel);
}

/* The walk's descriptor is the directory at path. */
static bool same_dir(const struct crac_ctl_walk *w, const char *path)
{
	struct stat a, b;

	return w->dfd >= 0 && fstat(w->dfd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino && w->dev == (unsigned long)b.st_dev && w->ino == (unsigned long)b.st_ino;
}

static void done(struct crac_ctl_walk *w)
{
	if (w->dfd >= 0)
		close(w->dfd);
	w->dfd = -1;
}

static void test_made_and_opened(void)
{
	struct crac_ctl_walk w;
	char d[256];
	struct stat st;

	path_of(d, sizeof(d), "made");
	CHECK_EQ(crac_ctl_dir_open(d, (unsigned)geteuid(), true, &w), 0);
	CHECK_EQ(w.step, CTL_WALK_OK);
	REQUIRE(stat(d, &st) == 0);
	CHECK_EQ(st.st_mode & 07777, 0700);
	CHECK(same_dir(&w, d));
	CHECK(fcntl(w.dfd, F_GETFD) & FD_CLOEXEC);
	/* base: mkdtemp'd in /tmp (sticky, root's), ours, 0700 */
	CHECKF(w.trusted, "untrusted: %s", w.untrusted);
	done(&w);
	/* again, existing; and without create */
	CHECK_EQ(crac_ctl_dir_open(d, (unsigned)geteuid(), true, &w), 0);
	done(&w);
	CHECK_EQ(crac_ctl_dir_open(d, (unsigned)geteuid(), false, &w), 0);
	done(&w);
	/* trailing slashes and "." on the way */
	path_of(d, sizeof(d), "./made//");
	CHECK_EQ(crac_ctl_dir_open(d, (unsigned)geteuid(), false, &w), 0);
	done(&w);
	path_of(d, sizeof(d), "absent");
	CHECK_EQ(crac_ctl_dir_open(d, (unsigned)geteuid(), false, &w), -ENOENT);
	CHECK_EQ(w.step, CTL_WALK_DIR);
	CHECK_EQ(w.dfd, -1);
}

static void test_refused(void)
{
	struct crac_ctl_walk w;
	char d[256], t[256];

	/* the wrong mode: refused with what it is */
	path_of(d, sizeof(d), "wide");
	REQUIRE(mkdir(d, 0755) == 0 && chmod(d, 0755) == 0);
	CHECK_EQ(crac_ctl_dir_open(d, (unsigned)geteuid(), true, &w), -EPERM);
	CHECK_EQ(w.step, CTL_WALK_DIR);
	CHECK(S_ISDIR(w.mode) && (w.mode & 07777) == 0755);
	CHECK_EQ(w.dfd, -1);
	/* another uid's */
	CHECK_EQ(crac_ctl_dir_open(d, (unsigned)geteuid() + 1, true, &w), -EPERM);
	/* a link at its own name, even to a good directory: never followed */
	path_of(t, sizeof(t), "made");
	path_of(d, sizeof(d), "link-to-made");
	REQUIRE(symlink(t, d) == 0);
	CHECK_EQ(crac_ctl_dir_open(d, (unsigned)geteuid(), true, &w), -EPERM);
	CHECK_EQ(w.step, CTL_WALK_DIR);
	CHECK(S_ISLNK(w.mode));
	/* a regular file on the way: named */
	path_of(d, sizeof(d), "file");
	REQUIRE(close(open(d, O_CREAT | O_WRONLY, 0600)) == 0);
	path_of(d, sizeof(d), "file/ctl");
	CHECK_EQ(crac_ctl_dir_open(d, (unsigned)geteuid(), true, &w), -ENOTDIR);
	CHECK_EQ(w.step, CTL_WALK_OPEN);
	path_of(t, sizeof(t), "file");
	CHECKF(strcmp(w.at, t) == 0, "at %s", w.at);
	/* a name longer than NAME_MAX */
	char longname[NAME_MAX + 10];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	snprintf(d, sizeof(d), "%s/", base);
	char *big = malloc(strlen(d) + sizeof(longname));
	REQUIRE(big);
	sprintf(big, "%s%s", d, longname);
	CHECK_EQ(crac_ctl_dir_open(big, (unsigned)geteuid(), true, &w), -ENAMETOOLONG);
	free(big);
}

/* A link on the way in a directory others may write to: refused, named,
 * nothing made where it leads. The same link where only we may replace
 * it: followed. */
static void test_links_on_the_way(void)
{
	struct crac_ctl_walk w;
	char d[256], t[256], real[256];

	path_of(real, sizeof(real), "real");
	REQUIRE(mkdir(real, 0755) == 0);
	path_of(d, sizeof(d), "pub");
	REQUIRE(mkdir(d, 0777) == 0 && chmod(d, 0777) == 0);
	path_of(d, sizeof(d), "pub/link");
	REQUIRE(symlink(real, d) == 0);
	path_of(d, sizeof(d), "pub/link/ctl");
	CHECK_EQ(crac_ctl_dir_open(d, (unsigned)geteuid(), true, &w), -ELOOP);
	CHECK_EQ(w.step, CTL_WALK_LINK);
	path_of(t, sizeof(t), "pub/link");
	CHECKF(strcmp(w.at, t) == 0, "at %s", w.at);
	path_of(t, sizeof(t), "real/ctl");
	CHECK(access(t, F_OK) < 0 && errno == ENOENT);

	/* relative, in base (ours, 0700) */
	path_of(d, sizeof(d), "rel");
	REQUIRE(symlink("./pub/../real", d) == 0);
	path_of(d, sizeof(d), "rel/ctl");
	CHECK_EQ(crac_ctl_dir_open(d, (unsigned)geteuid(), true, &w), 0);
	path_of(t, sizeof(t), "real/ctl");
	CHECK(same_dir(&w, t));
	/* (through pub: others may write to it, though no link is in it) */
	CHECK(!w.trusted);
	done(&w);
	/* absolute, then a chain of two */
	path_of(d, sizeof(d), "abs");
	REQUIRE(symlink(real, d) == 0);
	path_of(d, sizeof(d), "abs/ctl");
	CHECK_EQ(crac_ctl_dir_open(d, (unsigned)geteuid(), false, &w), 0);
	CHECK(same_dir(&w, t));
	CHECKF(w.trusted, "untrusted: %s", w.untrusted);
	done(&w);
	path_of(d, sizeof(d), "chain");
	REQUIRE(symlink("abs", d) == 0);
	path_of(d, sizeof(d), "chain/ctl");
	CHECK_EQ(crac_ctl_dir_open(d, (unsigned)geteuid(), false, &w), 0);
	CHECK(same_dir(&w, t));
	done(&w);
	/* a loop: -ELOOP, not for ever */
	path_of(d, sizeof(d), "loop1");
	path_of(t, sizeof(t), "loop2");
	REQUIRE(symlink(t, d) == 0 && symlink(d, t) == 0);
	path_of(d, sizeof(d), "loop1/ctl");
	CHECK_EQ(crac_ctl_dir_open(d, (unsigned)geteuid(), true, &w), -ELOOP);
	CHECK_EQ(w.step, CTL_WALK_OPEN);
}

/* Below a directory others may write to: made and opened (no link on the
 * way), not trusted, the entry named. Relative: never trusted. */
static void test_trust(void)
{
	struct crac_ctl_walk w;
	char d[256], t[256];

	path_of(d, sizeof(d), "open");
	REQUIRE(mkdir(d, 0777) == 0 && chmod(d, 0777) == 0);
	path_of(d, sizeof(d), "open/ctl");
	CHECK_EQ(crac_ctl_dir_open(d, (unsigned)geteuid(), true, &w), 0);
	CHECK(same_dir(&w, d));
	CHECK(!w.trusted);
	CHECKF(strcmp(w.untrusted, d) == 0, "untrusted %s", w.untrusted);
	done(&w);

	char cwd[PATH_MAX];
	REQUIRE(getcwd(cwd, sizeof(cwd)));
	REQUIRE(chdir(base) == 0);
	CHECK_EQ(crac_ctl_dir_open("made", (unsigned)geteuid(), false, &w), 0);
	path_of(t, sizeof(t), "made");
	CHECK(same_dir(&w, t));
	CHECK(!w.trusted);
	done(&w);
	REQUIRE(chdir(cwd) == 0);
}

static void test_via_fd(void)
{
	char b[108];

	CHECK_EQ(crac_ctl_via_fd(b, sizeof(b), 7, "12.sock"), (int)strlen("/proc/self/fd/7/12.sock"));
	CHECK(strcmp(b, "/proc/self/fd/7/12.sock") == 0);
	CHECK_EQ(crac_ctl_via_fd(b, sizeof(b), 1234, NULL), (int)strlen("/proc/self/fd/1234"));
	CHECK(strcmp(b, "/proc/self/fd/1234") == 0);
	CHECK_EQ(crac_ctl_via_fd(b, sizeof(b), 0, ""), (int)strlen("/proc/self/fd/0"));
	CHECK_EQ(crac_ctl_via_fd(b, 16, 1234, NULL), -ENAMETOOLONG);
	CHECK_EQ(crac_ctl_via_fd(b, 19, 1234, NULL), 18);
	CHECK_EQ(crac_ctl_via_fd(b, 18, 1234, NULL), -ENAMETOOLONG);
	CHECK_EQ(crac_ctl_via_fd(b, sizeof(b), -1, "x"), -EBADF);
}

/* A socket bound at dir/name (listening: kept open and listening, its
 * descriptor returned; else closed, -1 returned: a dead one's file). */
static int bound_at(const char *dir, const char *name, bool listening)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", dir, name);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || (listening && listen(fd, 4) < 0)) {
		fprintf(stderr, "bind %s: %s\n", a.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -2;
	}
	if (listening)
		return fd;
	close(fd);
	return -1;
}

static bool there(const char *dir, const char *name)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

/* A pid no process has: a child's, reaped. */
static int dead_pid(void)
{
	pid_t p = fork();

	if (p == 0)
		_exit(0);
	if (p < 0 || waitpid(p, NULL, 0) != p)
		return -1;
	return kill(p, 0) < 0 && errno == ESRCH ? (int)p : -1;
}

static void test_sweep(void)
{
	struct crac_ctl_walk w;
	struct crac_ctl_swept sw;
	char d[256], via[64], n[40][64], p[PATH_MAX + 64];
	int dead = dead_pid(), self = (int)getpid(), lfd, k = 0;
	unsigned uid = (unsigned)geteuid();

	REQUIRE(dead > 0);
	path_of(d, sizeof(d), "sweep");
	REQUIRE(crac_ctl_dir_open(d, uid, true, &w) == 0);
	REQUIRE(crac_ctl_via_fd(via, sizeof(via), w.dfd, NULL) > 0);
	/* removed: stale */
	int stale_tmp = k++, stale_aside = k++;
	snprintf(n[stale_tmp], 64, "%d-0123456789abcdef.tmp", dead);
	snprintf(n[stale_aside], 64, "%d-fedcba9876543210.stale", dead);
	REQUIRE(bound_at(d, n[stale_tmp], false) == -1);
	REQUIRE(bound_at(d, n[stale_aside], false) == -1);
	/* kept */
	int first_kept = k;
	snprintf(n[k], 64, "%d-0123456789abcdef.tmp", self);                    /* ours: alive */
	REQUIRE(bound_at(d, n[k++], false) == -1);
	snprintf(n[k], 64, "1-0123456789abcdef.tmp");                             /* pid 1: alive */
	REQUIRE(bound_at(d, n[k++], false) == -1);
	int listening = k;
	snprintf(n[k], 64, "%d-1111111111111111.tmp", dead);                    /* another pid namespace's, listening */
	REQUIRE((lfd = bound_at(d, n[k++], true)) >= 0);
	int fifo = k;
	snprintf(n[k], 64, "%d-2222222222222222.tmp", dead);                    /* a FIFO */
	snprintf(p, sizeof(p), "%s/%s", d, n[k++]);
	REQUIRE(mkfifo(p, 0600) == 0);
	int link = k, target = k + 1;
	snprintf(n[k], 64, "%d-3333333333333333.tmp", dead);                    /* a symbolic link to a stale one */
	snprintf(n[k + 1], 64, "target-%d.sock", dead);
	REQUIRE(bound_at(d, n[target], false) == -1);
	snprintf(p, sizeof(p), "%s/%s", d, n[link]);
	REQUIRE(symlink(n[target], p) == 0);
	k += 2;
	snprintf(n[k], 64, "%d-4444444444444444.tmp", dead);                    /* a regular file */
	snprintf(p, sizeof(p), "%s/%s", d, n[k++]);
	int f = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	REQUIRE(f >= 0);
	close(f);
	snprintf(n[k], 64, "%d-5555555555555555.tmp", dead);                    /* a directory */
	snprintf(p, sizeof(p), "%s/%s", d, n[k++]);
	REQUIRE(mkdir(p, 0700) == 0);
	int other = -1;
	if (uid == 0) {
		other = k;
		snprintf(n[k], 64, "%d-6666666666666666.tmp", dead);            /* another uid's socket */
		REQUIRE(bound_at(d, n[k], false) == -1);
		snprintf(p, sizeof(p), "%s/%s", d, n[k++]);
		REQUIRE(lchown(p, 65534, 65534) == 0);
	}
	/* names not of the form */
	const char *odd[] = { "%d-0123456789abcdeF.tmp", "%d-0123456789abcde.tmp", "%d-0123456789abcdef0.tmp",
			      "%d-0123456789abcdef.tmpx", "%d.sock", "0%d-0123456789abcdef.tmp",
			      "%d-0123456789abcdef.sock", "%d0123456789abcdef.tmp" };
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		snprintf(n[k], 64, odd[i], dead);
		REQUIRE(bound_at(d, n[k++], false) == -1);
	}

	/* young: nothing removed */
	CHECK_EQ(crac_ctl_sweep(w.dfd, via, uid, self, 3600LL * 1000000000LL, 4096, 64, &sw), 0);
	CHECK_EQ(sw.err, 0);
	for (int i = 0; i < k; i++)
		CHECKF(there(d, n[i]), "%s removed while young", n[i]);
	/* bounded: one removal at most */
	CHECK_EQ(crac_ctl_sweep(w.dfd, via, uid, self, 0, 4096, 1, &sw), 1);
	CHECK(there(d, n[stale_tmp]) != there(d, n[stale_aside]));
	/* old enough: the other stale one, nothing else */
	CHECK_EQ(crac_ctl_sweep(w.dfd, via, uid, self, 0, 4096, 64, &sw), 1);
	CHECK_EQ(sw.err, 0);
	CHECK(!there(d, n[stale_tmp]));
	CHECK(!there(d, n[stale_aside]));
	for (int i = first_kept; i < k; i++)
		CHECKF(there(d, n[i]), "%s removed", n[i]);
	/* kept and counted: listening, FIFO, link, file, directory, another uid's */
	CHECK_EQ(sw.kept, 5 + (other >= 0));
	(void)fifo;
	/* nothing of ours set aside is left */
	DIR *dir = opendir(d);
	REQUIRE(dir != NULL);
	struct dirent *e;
	char mine[24];
	snprintf(mine, sizeof(mine), "%d-", self);
	while ((e = readdir(dir)))
		CHECKF(!(strncmp(e->d_name, mine, strlen(mine)) == 0 && strstr(e->d_name, ".stale")),
		       "left aside: %s", e->d_name);
	closedir(dir);
	/* the listening one closed: stale now */
	close(lfd);
	CHECK_EQ(crac_ctl_sweep(w.dfd, via, uid, self, 0, 4096, 64, &sw), 1);
	CHECK(!there(d, n[listening]));
	/* looked at no further than max_scan entries: none of them removed */
	REQUIRE(bound_at(d, n[stale_tmp], false) == -1);
	CHECK_EQ(crac_ctl_sweep(w.dfd, via, uid, self, 0, 0, 64, &sw), 0);
	CHECK(there(d, n[stale_tmp]));
	done(&w);
}

int main(void)
{
	alarm(60);
	snprintf(base, sizeof(base), "/tmp/crac-test-ctldir-XXXXXX");
	if (!mkdtemp(base))
		t_skip_all("cannot create a temporary directory");
	RUN(test_made_and_opened);
	RUN(test_refused);
	RUN(test_links_on_the_way);
	RUN(test_trust);
	RUN(test_via_fd);
	RUN(test_sweep);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", base);
	return t_done();
}
