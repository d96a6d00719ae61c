/* SPDX-License-Identifier: MIT */
/*
 * test_image_dir.c - the image directory target rule and temporaries
 * (src/image/dir.c): what a checkpoint may replace (only a crac image of
 * the caller), what crac_img_commit does with anything else, which
 * temporaries crac_img_clean_stale removes, and what
 * crac_img_tmp_describe says about them.
 */
#include "harness.h"
#include "image/dir.h"
#include "image/image.h"

#include <errno.h>
#include <stdint.h>
#include <sys/wait.h>
#include <pthread.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char root[256];

static void put(const char *dir, const char *name, const char *content)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		if (write(fd, content, strlen(content) + 1) < 0)
			perror(p);
		close(fd);
	}
}

/* A directory that looks like an image: header starting with the magic. */
static void fake_image(const char *dir)
{
	mkdir(dir, 0700);
	put(dir, "header", CRAC_IMG_MAGIC "rest");   /* the magic's own NUL ends the string */
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/header", dir);
	int fd = open(p, O_WRONLY | O_TRUNC);
	if (fd >= 0) {
		if (write(fd, CRAC_IMG_MAGIC "rest", 12) < 0)
			perror(p);
		close(fd);
	}
	put(dir, "pages", "");
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static void path(char *out, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", root, name);
}

static void test_target_absent_or_image(void)
{
	char d[PATH_MAX], msg[512];

	path(d, "none");
	CHECK_EQ(crac_img_target_check(d, msg, sizeof(msg)), 0);
	path(d, "img");
	fake_image(d);
	CHECKF(crac_img_target_check(d, msg, sizeof(msg)) == 1, "%s", msg);
}

static void test_target_refused(void)
{
	char d[PATH_MAX], msg[512];

	path(d, "user");
	mkdir(d, 0755);
	put(d, "notes.txt", "mine");
	put(d, "header", "not an image");
	CHECK_EQ(crac_img_target_check(d, msg, sizeof(msg)), -EEXIST);
	CHECKF(strstr(msg, d) && strstr(msg, "notes.txt"), "%s", msg);

	path(d, "badmagic");
	mkdir(d, 0700);
	put(d, "header", "XXXXXXXXXXXX");
	CHECK_EQ(crac_img_target_check(d, msg, sizeof(msg)), -EEXIST);
	CHECKF(strstr(msg, "magic"), "%s", msg);

	path(d, "empty");
	mkdir(d, 0700);
	CHECK_EQ(crac_img_target_check(d, msg, sizeof(msg)), -EEXIST);

	path(d, "file");
	put(root, "file", "data");
	CHECK_EQ(crac_img_target_check(d, msg, sizeof(msg)), -EEXIST);
	CHECKF(strstr(msg, "regular file"), "%s", msg);

	char img[PATH_MAX];
	path(img, "img2");
	fake_image(img);
	path(d, "link");
	CHECK(symlink(img, d) == 0);
	CHECK_EQ(crac_img_target_check(d, msg, sizeof(msg)), -EEXIST);
	CHECKF(strstr(msg, "symbolic link"), "%s", msg);
	/* "link/": a trailing slash must not make it follow the link */
	char ds[PATH_MAX + 2];
	snprintf(ds, sizeof(ds), "%s//", d);
	CHECK_EQ(crac_img_target_check(ds, msg, sizeof(msg)), -EEXIST);
	CHECKF(strstr(msg, "symbolic link"), "%s", msg);

	/* A header that is a symbolic link to an image header is no image. */
	path(d, "hdrlink");
	mkdir(d, 0700);
	char h[PATH_MAX + 16], l[PATH_MAX + 16];
	snprintf(h, sizeof(h), "%s/header", img);
	snprintf(l, sizeof(l), "%s/header", d);
	CHECK(symlink(h, l) == 0);
	CHECK(crac_img_target_check(d, msg, sizeof(msg)) < 0);

	if (geteuid() == 0) {
		path(d, "other");
		fake_image(d);
		CHECK(chown(d, 65534, 65534) == 0);
		CHECK_EQ(crac_img_target_check(d, msg, sizeof(msg)), -EPERM);
		CHECKF(strstr(msg, "uid 65534"), "%s", msg);
	}
}

/* commit refuses a non-image target and leaves both sides untouched. */
static void test_commit_refuses(void)
{
	char d[PATH_MAX], tmp[PATH_MAX], msg[512], p[PATH_MAX + 16];

	path(d, "victim");
	mkdir(d, 0755);
	put(d, "header", "user data");
	put(d, "pages", "user data");
	path(tmp, "victim.tmp-1-2-abcdef");
	fake_image(tmp);
	CHECK(crac_img_commit(tmp, d, msg, sizeof(msg)) < 0);
	snprintf(p, sizeof(p), "%s/header", d);
	CHECK(exists(p));
	CHECK(exists(tmp));

	/* ... and replaces an image, removing the old one. */
	path(d, "good");
	fake_image(d);
	path(tmp, "good.tmp-1-2-abcdef");
	fake_image(tmp);
	CHECKF(crac_img_commit(tmp, d, msg, sizeof(msg)) == 0, "%s", msg);
	CHECK(!exists(tmp));
	CHECK(exists(d));
}

/* The name in root of the directory with inode ino, or "" (out: PATH_MAX). */
static void find_ino(ino_t ino, char *out)
{
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "find '%s' -maxdepth 1 -inum %llu", root, (unsigned long long)ino);
	out[0] = 0;
	FILE *f = popen(cmd, "r");
	if (!f)
		return;
	if (fgets(out, PATH_MAX, f))
		out[strcspn(out, "\n")] = 0;
	pclose(f);
}

/*
 * A commit expecting one image at DIR finds another one there (a commit
 * into DIR meanwhile), which its exchange took out of place: when putting
 * that one back fails, it must survive what the caller then does with the
 * temporary (crac_img_remove, as cmd_flatten.c does on failure) and
 * crac_img_clean_stale, under the name the message gives: moved to a kept
 * name, or (that move failing too) left at the temporary's name.
 */
static void test_commit_keeps_foreign(void)
{
	/* the third: the move fails and the image cannot even be looked at
	 * (its lstat given up on): guarded by its name alone */
	static const char *const modes[] = { "back", "back-keep", "back-keep" };

	for (int i = 0; i < 3; i++) {
		char d[PATH_MAX], gone[PATH_MAX], tmp[PATH_MAX], at[PATH_MAX], msg[8192];
		struct stat foreign, expect, ours, now;

		path(d, i == 0 ? "keep1" : i == 1 ? "keep2" : "keep3");
		fake_image(d);   /* the other writer's image */
		CHECK(lstat(d, &foreign) == 0);
		path(gone, i == 0 ? "keep1-expected" : i == 1 ? "keep2-expected" : "keep3-expected");
		mkdir(gone, 0700);   /* the image that was there when it was checked */
		CHECK(lstat(gone, &expect) == 0);
		CHECK(crac_img_tmp_name(d, tmp, sizeof(tmp)) == 0);
		CHECK(mkdtemp(tmp) != NULL);
		fake_image(tmp);   /* ours */
		CHECK(lstat(tmp, &ours) == 0);

		setenv("CRAC_TEST_NO_EXCHANGE", modes[i], 1);
		if (i == 2) {
			setenv("CRAC_TEST_SYNC_GRACE_MS", "300", 1);
			setenv("CRAC_TEST_SLOW_FS", "lstat:20000", 1);
		}
		int rc = crac_img_commit_expect(tmp, d, &expect, msg, sizeof(msg));
		unsetenv("CRAC_TEST_SLOW_FS");
		unsetenv("CRAC_TEST_SYNC_GRACE_MS");
		CHECKF(rc < 0, "%s: rc %d: %s", modes[i], rc, msg);
		if (i == 2)
			CHECKF(strstr(msg, "move it back by hand") && strstr(msg, "; its lstat: the lstat of "),
			       "%s", msg);
		/* what the caller does after a failed commit, then the next
		 * checkpoint's cleanup (ours: it takes our temporaries) */
		crac_img_remove(tmp);
		int removed = -1;
		CHECK_EQ(crac_img_clean_stale(d, &removed), 0);
		CHECK_EQ(removed, 0);
		if (i > 0) {
			/* a removal of it, refused, says why */
			char rmsg[PATH_MAX + 300];
			CHECK_EQ(crac_img_remove_msg(tmp, rmsg, sizeof(rmsg)), -EBUSY);
			CHECKF(strstr(rmsg, "another writer's image"), "%s", rmsg);
		}
		unsetenv("CRAC_TEST_NO_EXCHANGE");

		find_ino(foreign.st_ino, at);
		CHECKF(at[0], "%s: the other writer's image is lost: %s", modes[i], msg);
		CHECKF(at[0] && strstr(msg, at), "%s: it is at %s, the message says: %s", modes[i], at, msg);
		if (i == 0) {
			CHECKF(strstr(at, ".kept-") != NULL, "%s: at %s", modes[i], at);
		} else {
			CHECKF(!strcmp(at, tmp), "%s: at %s", modes[i], at);
		}
		/* ours is at DIR, and the message says so */
		CHECK(lstat(d, &now) == 0 && now.st_ino == ours.st_ino);
		CHECKF(strstr(msg, "ours is at") != NULL, "%s", msg);
		char p[PATH_MAX + 16];
		snprintf(p, sizeof(p), "%s/header", at);
		CHECK(exists(p));
		if (i > 0) {
			/* the rename answering again: the next removal of
			 * the temporary moves it to the kept name said */
			CHECK_EQ(crac_img_remove(tmp), 0);
			find_ino(foreign.st_ino, at);
			CHECKF(strstr(at, ".kept-") && strstr(msg, at), "%s: at %s: %s", modes[i], at, msg);
		}
	}
}

/* test_stale_zombie's thread: waits for a byte on the pipe, then exits the process */
static void *wait_pipe(void *arg)
{
	char c;
	_exit(read((int)(intptr_t)arg, &c, 1) == 1 ? 0 : 1);
}

/* A writer that exited and was never reaped (a zombie) writes nothing
 * more: its temporary is stale, as if it were gone. A writer whose leader
 * exited alone (pthread_exit) while another thread runs is alive. */
static void test_stale_zombie(void)
{
	char img[PATH_MAX], t[PATH_MAX], t2[PATH_MAX], msg[512], st[1024];
	int go[2], n;

	path(img, "zb");
	CHECK(pipe(go) == 0);
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		char c;
		close(go[1]);
		_exit(read(go[0], &c, 1) == 1 ? 0 : 1);
	}
	close(go[0]);
	snprintf(t, sizeof(t), "%s/zb.tmp-%d-%llu-zombie", root, (int)child, crac_img_start_time((int)child));
	fake_image(t);
	CHECK_EQ(crac_img_clean_stale(img, &n), 0);
	CHECK_EQ(n, 0);
	CHECK(exists(t));   /* running */
	CHECK(write(go[1], "x", 1) == 1);
	close(go[1]);
	/* a zombie now: not waited for */
	for (int i = 0; i < 2000; i++) {
		const char *p = crac_img_proc_stat((int)child, st, sizeof(st));
		if (p && p[1] == 'Z')
			break;
		usleep(1000);
	}
	CHECK_EQ(crac_img_tmp_describe(t, msg, sizeof(msg)), 0);
	CHECKF(strstr(msg, "which is gone"), "%s", msg);
	CHECK_EQ(crac_img_clean_stale(img, &n), 0);
	CHECK_EQ(n, 1);
	CHECK(!exists(t));
	CHECK(waitpid(child, NULL, 0) == child);

	/* a leader gone alone: Z in /proc/PID/stat, a thread still at work */
	CHECK(pipe(go) == 0);
	child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		close(go[1]);
		pthread_t th;
		if (pthread_create(&th, NULL, wait_pipe, (void *)(intptr_t)go[0]) != 0)
			_exit(1);
		pthread_exit(NULL);
	}
	close(go[0]);
	snprintf(t2, sizeof(t2), "%s/zb.tmp-%d-%llu-leader", root, (int)child, crac_img_start_time((int)child));
	fake_image(t2);
	for (int i = 0; i < 2000; i++) {
		const char *p = crac_img_proc_stat((int)child, st, sizeof(st));
		if (p && p[1] == 'Z')
			break;
		usleep(1000);
	}
	CHECK_EQ(crac_img_clean_stale(img, &n), 0);
	CHECK_EQ(n, 0);
	CHECK(exists(t2));
	CHECK(write(go[1], "x", 1) == 1);
	close(go[1]);
	CHECK(waitpid(child, NULL, 0) == child);
	CHECK_EQ(crac_img_clean_stale(img, &n), 0);
	CHECK(!exists(t2));
}

/* A previous image moved aside (BASE.old-PID-START, file systems without
 * RENAME_EXCHANGE) by a writer that died before the new image took its
 * place: it is the image, and the next clean puts it back, never removes it. */
static void test_stale_put_back(void)
{
	char img[PATH_MAX], old[PATH_MAX], tmp[PATH_MAX], p[PATH_MAX + 16], msg[PATH_MAX * 3];
	int n;

	path(img, "pb");
	snprintf(old, sizeof(old), "%s/pb.old-%d-7", root, INT_MAX - 1);
	fake_image(old);
	/* and its new image, complete but never put in place */
	snprintf(tmp, sizeof(tmp), "%s/pb.tmp-%d-7-abcdef", root, INT_MAX - 1);
	fake_image(tmp);
	CHECK_EQ(crac_img_tmp_describe(old, msg, sizeof(msg)), 0);
	CHECKF(strstr(msg, "puts it back first"), "%s", msg);
	CHECK_EQ(crac_img_clean_stale(img, &n), 0);
	CHECK_EQ(n, 1);   /* the temporary removed; the previous image back */
	CHECK(!exists(old));
	CHECK(!exists(tmp));
	snprintf(p, sizeof(p), "%s/header", img);
	CHECK(exists(p));
	/* again, with an image in place now: the one aside goes */
	fake_image(old);
	CHECK_EQ(crac_img_tmp_describe(old, msg, sizeof(msg)), 0);
	CHECKF(strstr(msg, "removes it"), "%s", msg);
	CHECK_EQ(crac_img_clean_stale(img, &n), 0);
	CHECK_EQ(n, 1);
	CHECK(!exists(old));
	CHECK(exists(p));
}

static void test_stale(void)
{
	char img[PATH_MAX], t[PATH_MAX], msg[512];
	char live[PATH_MAX], gone[PATH_MAX], old[PATH_MAX], legacy[PATH_MAX], extra[PATH_MAX], other[PATH_MAX];
	int n;

	path(img, "st");
	/* a writer that runs (this process's parent: not us) */
	snprintf(live, sizeof(live), "%s/st.tmp-%d-%llu-abcdef", root, (int)getppid(),
		 crac_img_start_time((int)getppid()));
	fake_image(live);
	/* gone: a pid that does not exist, and a live pid with another start time */
	snprintf(gone, sizeof(gone), "%s/st.tmp-%d-1-abcdef", root, INT_MAX - 1);
	fake_image(gone);
	snprintf(t, sizeof(t), "%s/st.tmp-%d-%llu-zzzzzz", root, (int)getppid(),
		 crac_img_start_time((int)getppid()) + 1);
	fake_image(t);
	snprintf(old, sizeof(old), "%s/st.old-%d-7", root, INT_MAX - 1);
	fake_image(old);
	fake_image(img);   /* (a new image took its place: the one aside is garbage) */
	/* legacy name: no writer recorded, left alone */
	snprintf(legacy, sizeof(legacy), "%s/st.tmp-Qw3rty", root);
	fake_image(legacy);
	/* a stale name holding a file that is not ours: left alone */
	snprintf(extra, sizeof(extra), "%s/st.tmp-%d-1-extra1", root, INT_MAX - 1);
	fake_image(extra);
	put(extra, "notes.txt", "x");
	/* another image's temporary */
	snprintf(other, sizeof(other), "%s/stx.tmp-%d-1-abcdef", root, INT_MAX - 1);
	fake_image(other);

	CHECK_EQ(crac_img_clean_stale(img, &n), 0);
	CHECK_EQ(n, 3);
	CHECK(exists(live));
	CHECK(!exists(gone));
	CHECK(!exists(t));
	CHECK(!exists(old));
	CHECK(exists(legacy));
	CHECK(exists(extra));
	CHECK(exists(other));

	/* what inspect says */
	CHECK_EQ(crac_img_tmp_describe(live, msg, sizeof(msg)), 0);
	CHECKF(strstr(msg, "being written by pid") && strstr(msg, "(running)") && strstr(msg, img), "%s", msg);
	CHECK_EQ(crac_img_tmp_describe(gone, msg, sizeof(msg)), 0);
	CHECKF(strstr(msg, "which is gone: the next checkpoint to") && strstr(msg, img), "%s", msg);
	/* no such writer here, but one holds it locked (another pid
	 * namespace): being written, not gone */
	fake_image(gone);
	int lk = open(gone, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(lk >= 0 && flock(lk, LOCK_EX | LOCK_NB) == 0);
	CHECK_EQ(crac_img_tmp_describe(gone, msg, sizeof(msg)), 0);
	CHECKF(strstr(msg, "being written by a process that holds it locked") && strstr(msg, img) &&
	       !strstr(msg, "gone"), "%s", msg);
	CHECK_EQ(crac_img_clean_stale(img, &n), 0);
	CHECK(exists(gone));
	close(lk);
	CHECK_EQ(crac_img_tmp_describe(gone, msg, sizeof(msg)), 0);
	CHECKF(strstr(msg, "which is gone: the next checkpoint to"), "%s", msg);
	CHECK_EQ(crac_img_clean_stale(img, &n), 0);
	CHECK(!exists(gone));
	CHECK_EQ(crac_img_tmp_describe(old, msg, sizeof(msg)), 0);
	CHECKF(strstr(msg, "previous image"), "%s", msg);
	CHECK_EQ(crac_img_tmp_describe(legacy, msg, sizeof(msg)), 0);
	CHECKF(strstr(msg, "older crac"), "%s", msg);
	CHECK_EQ(crac_img_tmp_describe(img, msg, sizeof(msg)), -EINVAL);

	/* the name this process gets */
	CHECK_EQ(crac_img_tmp_name(img, t, sizeof(t)), 0);
	char want[PATH_MAX + 64];
	snprintf(want, sizeof(want), "%s.tmp-%d-%llu-XXXXXX", img, (int)getpid(), crac_img_start_time(getpid()));
	CHECKF(!strcmp(t, want), "%s", t);
	CHECK(crac_img_start_time(getpid()) > 0);
	/* "st/": the temporary is next to st, not inside it */
	char slash[PATH_MAX + 2];
	snprintf(slash, sizeof(slash), "%s/", img);
	CHECK_EQ(crac_img_tmp_name(slash, t, sizeof(t)), 0);
	CHECKF(!strcmp(t, want), "%s", t);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* The bounded waits: a file system that does not answer (the test double
 * CRAC_TEST_SLOW_FS) is given up on after the grace when the deadline is
 * sooner, and the helper is gone; one that answers is waited for. */
static void test_bounded(void)
{
	char d[PATH_MAX], msg[PATH_MAX + 300];
	int64_t waited;

	snprintf(d, sizeof(d), "%s/bounded", root);
	fake_image(d);
	int fd = open(d, O_RDONLY | O_DIRECTORY);
	REQUIRE(fd >= 0);
	setenv("CRAC_TEST_SYNC_GRACE_MS", "300", 1);
	crac_img_fs_deadline(0);

	setenv("CRAC_TEST_SLOW_FS", "fsync:20000", 1);
	int64_t t0 = now_ms();
	CHECK_EQ(crac_img_fsync_fd(fd, false, &waited), -ETIMEDOUT);
	CHECKF(waited >= 300 && now_ms() - t0 < 5000, "waited %lld ms", (long long)waited);
	CHECK_EQ(crac_img_fsync_path_msg(d, msg, sizeof(msg)), -ETIMEDOUT);
	CHECKF(strstr(msg, "fsync of ") && strstr(msg, d) && strstr(msg, "did not return after"), "%s", msg);
	/* a deadline later than the grace is waited for */
	crac_img_fs_deadline(now_ms() * 1000000LL + 1200 * 1000000LL);
	t0 = now_ms();
	CHECK_EQ(crac_img_fsync_fd(fd, true, &waited), -ETIMEDOUT);
	CHECKF(now_ms() - t0 >= 1000, "gave up after %lld ms", (long long)(now_ms() - t0));
	crac_img_fs_deadline(0);

	setenv("CRAC_TEST_SLOW_FS", "remove:20000", 1);
	CHECK_EQ(crac_img_remove_msg(d, msg, sizeof(msg)), -ETIMEDOUT);
	CHECKF(strstr(msg, "unlink ") && strstr(msg, "/header did not return after"), "%s", msg);
	struct stat st;
	CHECK(stat(d, &st) == 0);   /* given up on before it did anything */

	/* an answering file system: done, and no helper is left */
	setenv("CRAC_TEST_SLOW_FS", "fsync:50", 1);
	CHECK_EQ(crac_img_fsync_fd(fd, false, &waited), 0);
	CHECK_EQ(waited, -1);
	unsetenv("CRAC_TEST_SLOW_FS");
	CHECK_EQ(crac_img_remove_msg(d, msg, sizeof(msg)), 0);
	CHECK(stat(d, &st) < 0 && errno == ENOENT);
	CHECK_EQ(crac_img_fsync_path_msg(d, msg, sizeof(msg)), -ENOENT);
	unsetenv("CRAC_TEST_SYNC_GRACE_MS");
	close(fd);
}

/* The bounded looks of crac run and crac start (cli/cmd_run.c,
 * cli/cmd_start.c): the first of several paths that passes access(2), a
 * listing by prefix, the removal of a directory of ours with more names;
 * each given up on when the file system does not answer, naming the path. */
static void test_bounded_looks(void)
{
	char d[PATH_MAX], a[PATH_MAX + 16], b[PATH_MAX + 16], msg[PATH_MAX + 400], names[256];
	size_t len = 0;
	int found = -1;

	snprintf(d, sizeof(d), "%s/looks", root);
	REQUIRE(mkdir(d, 0700) == 0);
	snprintf(a, sizeof(a), "%s/absent", d);
	snprintf(b, sizeof(b), "%s/present", d);
	put(d, "present", "x");
	crac_img_fs_deadline(0);
	setenv("CRAC_TEST_SYNC_GRACE_MS", "300", 1);

	const char *both[] = { a, b, NULL }, *none[] = { a, NULL };
	CHECK_EQ(crac_img_access_first_msg(both, R_OK, &found, msg, sizeof(msg)), 0);
	CHECK_EQ(found, 1);
	CHECK_EQ(crac_img_access_first_msg(none, R_OK, &found, msg, sizeof(msg)), -ENOENT);
	CHECK_EQ(found, -1);

	/* a listing by prefix: whole names only, within cap */
	put(d, "img.new-1", "x");
	put(d, "img.new-22", "x");
	put(d, "other", "x");
	CHECK_EQ(crac_img_list_msg(d, "img.new-", names, sizeof(names), &len, msg, sizeof(msg)), 0);
	CHECK_EQ(len, strlen("img.new-1") + 1 + strlen("img.new-22") + 1);
	CHECK(memmem(names, len, "img.new-1\0", 10) && memmem(names, len, "img.new-22\0", 11));
	CHECK(!memmem(names, len, "other", 5));
	CHECK_EQ(crac_img_list_msg(d, "img.new-", names, 12, &len, msg, sizeof(msg)), 0);
	CHECK(len == 10 || len == 11);   /* one whole name fits, not two */

	/* the removal of a directory of ours, with more names */
	char img[PATH_MAX + 16];
	snprintf(img, sizeof(img), "%s/img.new-3", d);
	fake_image(img);
	put(img, "start-key", "k");
	static const char *const more[] = { "start-key", NULL };
	struct stat st;
	setenv("CRAC_TEST_SLOW_FS", "remove:20000", 1);
	CHECK_EQ(crac_img_remove_own_msg(img, more, msg, sizeof(msg)), -ETIMEDOUT);
	CHECKF(strstr(msg, "unlink ") && strstr(msg, "/header did not return after"), "%s", msg);
	CHECK(stat(img, &st) == 0);
	unsetenv("CRAC_TEST_SLOW_FS");
	CHECK_EQ(crac_img_remove_own_msg(img, more, msg, sizeof(msg)), 0);
	CHECK(stat(img, &st) < 0 && errno == ENOENT);

	/* given up on: the path it was at, and the time */
	setenv("CRAC_TEST_SLOW_FS", "access:20000", 1);
	int64_t t0 = now_ms();
	CHECK_EQ(crac_img_access_first_msg(both, R_OK, &found, msg, sizeof(msg)), -ETIMEDOUT);
	CHECKF(strstr(msg, "access to ") && strstr(msg, a) && strstr(msg, "did not return after"), "%s", msg);
	CHECK(now_ms() - t0 < 5000);
	setenv("CRAC_TEST_SLOW_FS", "list:20000", 1);
	CHECK_EQ(crac_img_list_msg(d, "img.new-", names, sizeof(names), &len, msg, sizeof(msg)), -ETIMEDOUT);
	CHECKF(strstr(msg, "the listing of ") && strstr(msg, d) && strstr(msg, "did not return after"), "%s", msg);
	CHECK_EQ(len, 0);
	unsetenv("CRAC_TEST_SLOW_FS");
	unsetenv("CRAC_TEST_SYNC_GRACE_MS");
}

/* The bounded open (its helper has a table of its own, the descriptor
 * comes back by SCM_RIGHTS) and read: the same file, close-on-exec;
 * without room for the socket (out of
 * descriptors), the open still works (the helper shares our table). */
static void test_bounded_open_read(void)
{
	char d[PATH_MAX], f[PATH_MAX + 16], msg[PATH_MAX + 400], buf[16];
	struct stat st, mine;
	struct rlimit old, low;

	snprintf(d, sizeof(d), "%s/openread", root);
	REQUIRE(mkdir(d, 0700) == 0);
	put(d, "file", "hello");
	snprintf(f, sizeof(f), "%s/file", d);
	REQUIRE(stat(f, &mine) == 0);
	crac_img_fs_deadline(0);

	int fd = crac_img_open_msg(f, O_RDONLY, 0, &st, msg, sizeof(msg));
	CHECKF(fd >= 0, "%s", msg);
	CHECK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
	CHECK_EQ(st.st_ino, mine.st_ino);
	struct stat fst;
	CHECK(fd >= 0 && fstat(fd, &fst) == 0 && fst.st_ino == mine.st_ino);
	/* the same open file: its offset is ours to move */
	CHECK(fd >= 0 && read(fd, buf, 5) == 5 && !memcmp(buf, "hello", 5));
	if (fd >= 0)
		close(fd);

	/* the read: the whole file within cap, else -EFBIG; a directory -EPERM */
	REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0);
	int other = open(f, O_RDONLY | O_CLOEXEC);
	REQUIRE(other >= 0);
	CHECK_EQ(crac_img_read_msg(f, buf, sizeof(buf), &st, msg, sizeof(msg)), (int)mine.st_size);
	CHECK(!memcmp(buf, "hello", 5) && st.st_ino == mine.st_ino);
	CHECK_EQ(crac_img_read_msg(f, buf, (size_t)mine.st_size - 1, &st, msg, sizeof(msg)), -EFBIG);
	CHECK_EQ(crac_img_read_msg(d, buf, sizeof(buf), &st, msg, sizeof(msg)), -EPERM);
	/* (read into a mapping of the helper's, copied, and let go: an empty
	 * file too; none is left behind) */
	char empty[PATH_MAX + 8];
	snprintf(empty, sizeof(empty), "%s/empty", d);
	int efd = open(empty, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	REQUIRE(efd >= 0);
	close(efd);
	int maps_before = t_mappings();
	for (int i = 0; i < 100; i++) {
		CHECK_EQ(crac_img_read_msg(f, buf, sizeof(buf), &st, msg, sizeof(msg)), (int)mine.st_size);
		CHECK_EQ(crac_img_read_msg(empty, buf, sizeof(buf), &st, msg, sizeof(msg)), 0);
	}
	CHECK(!memcmp(buf, "hello", 5));
	CHECKF(t_mappings() <= maps_before + 1, "%d mappings before 200 reads, %d after", maps_before, t_mappings());
	unlink(empty);

	/* one descriptor free: no socketpair, the open still works */
	close(other);
	int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
	REQUIRE(probe >= 0);
	close(probe);
	low = old;
	low.rlim_cur = (rlim_t)probe + 1;   /* (assumes none free below probe) */
	REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
	fd = crac_img_open_msg(f, O_RDONLY, 0, &st, msg, sizeof(msg));
	setrlimit(RLIMIT_NOFILE, &old);
	CHECKF(fd == probe, "fd %d, %s", fd, msg);
	if (fd >= 0)
		close(fd);
}

/* crac_img_bounded_call's fn: counts its runs (its own instructions write
 * here; nothing a late call returns does). */
static void count_call(void *arg)
{
	__atomic_add_fetch((int *)arg, 1, __ATOMIC_RELEASE);
}

/* crac_img_bounded_call (crac restore's owner check, the NOTIFY_SOCKET
 * setup) and crac_img_tmp_writer (flatten's temporaries named after the
 * command): fn runs by a helper, or is given up on at the limit with the
 * reason, and never runs after; a temporary's name carries the pid set. */
static void test_bounded_call(void)
{
	char why[256], tmp[PATH_MAX];
	int runs = 0;

	crac_img_fs_limit(0, 300, "the test's limit");
	unsetenv("CRAC_TEST_SLOW_FS");
	CHECK_EQ(crac_img_bounded_call("call", count_call, &runs, false, why, sizeof(why)), 0);
	CHECK_EQ(runs, 1);
	CHECK_EQ(why[0], 0);
	CHECK_EQ(crac_img_bounded_call("call", count_call, &runs, true, why, sizeof(why)), 0);
	CHECK_EQ(runs, 2);
	setenv("CRAC_TEST_SLOW_FS", "call:1000", 1);
	int64_t t0 = now_ms();
	CHECK_EQ(crac_img_bounded_call("call", count_call, &runs, false, why, sizeof(why)), -ETIMEDOUT);
	CHECKF(now_ms() - t0 >= 300 && now_ms() - t0 < 900, "gave up after %lld ms", (long long)(now_ms() - t0));
	CHECKF(strstr(why, "did not return after ") && strstr(why, "(the test's limit)"), "%s", why);
	/* killed in its sleep: fn never runs, even once the sleep is over */
	usleep(1200 * 1000);
	CHECK_EQ(__atomic_load_n(&runs, __ATOMIC_ACQUIRE), 2);
	/* another slow operation's name does not slow this one */
	CHECK_EQ(crac_img_bounded_call("other", count_call, &runs, false, why, sizeof(why)), 0);
	CHECK_EQ(runs, 3);
	unsetenv("CRAC_TEST_SLOW_FS");
	crac_img_fs_limit(0, -1, NULL);

	char d[PATH_MAX];
	snprintf(d, sizeof(d), "%s/named", root);
	crac_img_tmp_writer(4242);
	CHECK_EQ(crac_img_tmp_name(d, tmp, sizeof(tmp)), 0);
	crac_img_tmp_writer(0);
	char want[PATH_MAX + 16];
	snprintf(want, sizeof(want), "%s.tmp-4242-", d);
	CHECKF(!strncmp(tmp, want, strlen(want)), "%s", tmp);
	CHECK_EQ(crac_img_tmp_name(d, tmp, sizeof(tmp)), 0);
	snprintf(want, sizeof(want), "%s.tmp-%d-", d, (int)getpid());
	CHECKF(!strncmp(tmp, want, strlen(want)), "%s", tmp);
}

/* /proc/PID/stat of a process whose command name holds ')', spaces and a
 * newline (field 2 may hold anything): the fields after it are found, for
 * a live process, a zombie and one that is gone. */
static void test_proc_stat_odd_comm(void)
{
	static const char *const names[] = { "a) b\n) 9 9 9", ")))))))))))))))", " ", "x)\n" };
	char buf[1024];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int up[2], down[2];   /* child to parent, parent to child */
		REQUIRE(pipe(up) == 0 && pipe(down) == 0);
		pid_t c = fork();
		REQUIRE(c >= 0);
		if (c == 0) {
			char x;
			prctl(PR_SET_NAME, names[i]);
			(void)!write(up[1], "r", 1);
			(void)!read(down[0], &x, 1);   /* until the parent lets it end */
			_exit(0);
		}
		char x;
		REQUIRE(read(up[0], &x, 1) == 1);
		const char *f = crac_img_proc_stat(c, buf, sizeof(buf));
		char state = 0;
		int ppid = 0;
		CHECKF(f && sscanf(f, " %c %d", &state, &ppid) == 2 && state != 0 && ppid == getpid(),
		       "name \"%s\": after the name: \"%.40s\"", names[i], f ? f : "(null)");
		unsigned long long t = crac_img_start_time(c);
		CHECKF(t > 0 && t == crac_img_start_time(c), "name \"%s\": start time %llu", names[i], t);
		/* a zombie: state Z, the same start time */
		(void)!write(down[1], "e", 1);
		for (int k = 0; k < 500; k++) {
			f = crac_img_proc_stat(c, buf, sizeof(buf));
			if (f && f[0] == ' ' && f[1] == 'Z')
				break;
			usleep(2000);
		}
		CHECKF(f && f[0] == ' ' && f[1] == 'Z', "name \"%s\": not seen as a zombie", names[i]);
		CHECK_EQ(crac_img_start_time(c), t);
		waitpid(c, NULL, 0);
		/* gone */
		CHECK(crac_img_proc_stat(c, buf, sizeof(buf)) == NULL);
		CHECK_EQ(crac_img_start_time(c), 0);
		close(up[0]);
		close(up[1]);
		close(down[0]);
		close(down[1]);
	}
	/* a buffer too small for the fields after the name: no overrun, NULL
	 * or what fits */
	CHECK(crac_img_proc_stat(getpid(), buf, 1) == NULL);
	const char *f = crac_img_proc_stat(getpid(), buf, 8);
	CHECK(!f || (f >= buf && f < buf + 8));
}

int main(void)
{
	snprintf(root, sizeof(root), "/tmp/crac-test-image-dir.XXXXXX");
	if (!mkdtemp(root))
		t_skip_all("cannot create a temporary directory");
	RUN(test_target_absent_or_image);
	RUN(test_target_refused);
	RUN(test_commit_refuses);
	RUN(test_commit_keeps_foreign);
	RUN(test_stale);
	RUN(test_stale_zombie);
	RUN(test_stale_put_back);
	RUN(test_bounded);
	RUN(test_bounded_looks);
	RUN(test_bounded_open_read);
	RUN(test_bounded_call);
	RUN(test_proc_stat_odd_comm);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	return t_done();
}
