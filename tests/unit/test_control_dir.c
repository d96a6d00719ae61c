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
 *  - crac_ctl_via_fd: "/proc/self/fd/N/NAME", and too long.
 */
#include "test_common.h"
#include "core/ctl_dir.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

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
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", base);
	return t_done();
}
