/* SPDX-License-Identifier: MIT */
/*
 * test_image_read_part.c - crac_img_read_part_msg (src/image/dir.c): the
 * one bounded read of a file, whole (crac_img_read_msg), its head or its
 * tail (the criu engine's reads of criu.out, of its images' first bytes
 * and of the end of dump.log): exactly the bytes asked for, a file shorter
 * than the part all of it, the same rules in each mode (no symbolic link
 * followed, regular files only, never blocking on a FIFO) and the same
 * message when it is given up on.
 */
#include "harness.h"
#include "image/bounded.h"
#include "image/dir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];

/* The byte at offset i of the test files: no period a wrong offset could
 * hide behind (251 is prime, 4096 and 16 KiB are not its multiples). */
static unsigned char byte_at(long i)
{
	return (unsigned char)(i * 7 + i / 251);
}

/* root/name, size bytes of byte_at. */
static void make_file(char *path, size_t len, const char *name, long size)
{
	static unsigned char chunk[65536];
	snprintf(path, len, "%s/%s", root, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror(path);
		return;
	}
	for (long at = 0; at < size;) {
		long n = size - at < (long)sizeof(chunk) ? size - at : (long)sizeof(chunk);
		for (long k = 0; k < n; k++)
			chunk[k] = byte_at(at + k);
		if (write(fd, chunk, (size_t)n) != n) {
			perror(path);
			break;
		}
		at += n;
	}
	close(fd);
}

/* Are the n bytes of buf those of the file from offset off? */
static bool same_as_file(const unsigned char *buf, long off, long n)
{
	for (long k = 0; k < n; k++)
		if (buf[k] != byte_at(off + k))
			return false;
	return true;
}

static long long now_ms(void)
{
	return crac_bounded_mono_ns() / 1000000;
}

/* The buffer the reads go into, with a guard after the part asked for:
 * nothing is written past cap. */
#define BIG (1L << 20)
static unsigned char buf[BIG + 64];

/* Nothing written at or past cap? */
static bool guard_ok(size_t cap)
{
	for (size_t k = cap; k < cap + 64; k++)
		if (buf[k] != 0xA5)
			return false;
	return true;
}

static void fill_guard(void)
{
	memset(buf, 0xA5, sizeof(buf));
}

/* The tail: the last cap bytes of a larger file, exactly; all of a shorter
 * one; an empty one: none. */
static void test_tail(void)
{
	char big[PATH_MAX], small[PATH_MAX], empty[PATH_MAX], msg[PATH_MAX + 400];
	struct stat st;
	const long size = 100000;   /* not a multiple of a page, nor of any cap below */
	static const size_t caps[] = { 1, 8, 4095, 4096, 5000, 16384, 16385, 99999 };

	make_file(big, sizeof(big), "big", size);
	make_file(small, sizeof(small), "small", 10);
	make_file(empty, sizeof(empty), "empty", 0);
	crac_img_fs_deadline(0);
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		size_t cap = caps[i];
		fill_guard();
		int n = crac_img_read_part_msg(big, CRAC_IMG_TAIL, "criu-log", (char *)buf, cap, &st, msg, sizeof(msg));
		CHECKF(n == (int)cap, "cap %zu: %d, %s", cap, n, msg);
		CHECKF(same_as_file(buf, size - (long)cap, (long)cap), "cap %zu: not the last bytes of %s", cap, big);
		CHECKF(guard_ok(cap), "cap %zu: written past it", cap);
		CHECK_EQ(st.st_size, size);
		CHECK_EQ(msg[0], 0);
	}
	/* exactly the file's size, and more: all of it */
	for (long cap = size; cap <= size + 1; cap++) {
		fill_guard();
		CHECK_EQ(crac_img_read_part_msg(big, CRAC_IMG_TAIL, NULL, (char *)buf, (size_t)cap, NULL, msg,
						sizeof(msg)),
			 size);
		CHECK(same_as_file(buf, 0, size));
		CHECK(buf[size] == 0xA5);
	}
	/* shorter than the tail: all of it */
	fill_guard();
	CHECK_EQ(crac_img_read_part_msg(small, CRAC_IMG_TAIL, "criu-log", (char *)buf, 4096, &st, msg, sizeof(msg)), 10);
	CHECK(same_as_file(buf, 0, 10));
	CHECK(buf[10] == 0xA5);
	CHECK_EQ(st.st_size, 10);
	fill_guard();
	CHECK_EQ(crac_img_read_part_msg(empty, CRAC_IMG_TAIL, "criu-log", (char *)buf, 4096, &st, msg, sizeof(msg)), 0);
	CHECK(buf[0] == 0xA5);

	/* a large tail (the criu engine's 256 KiB of dump.log) of a larger file */
	char huge[PATH_MAX];
	make_file(huge, sizeof(huge), "huge", 3 * BIG / 2 + 17);
	fill_guard();
	CHECK_EQ(crac_img_read_part_msg(huge, CRAC_IMG_TAIL, "criu-log", (char *)buf, 256u << 10, NULL, msg,
					sizeof(msg)),
		 256 << 10);
	CHECK(same_as_file(buf, 3 * BIG / 2 + 17 - (256 << 10), 256 << 10));
	CHECK(guard_ok(256u << 10));
	fill_guard();
	CHECK_EQ(crac_img_read_part_msg(huge, CRAC_IMG_TAIL, NULL, (char *)buf, BIG, NULL, msg, sizeof(msg)), BIG);
	CHECK(same_as_file(buf, BIG / 2 + 17, BIG));
	CHECK(guard_ok(BIG));
	unlink(huge);

	/* the helper's mappings are let go (none left behind) */
	int before = t_mappings();
	for (int i = 0; i < 100; i++)
		CHECK_EQ(crac_img_read_part_msg(big, CRAC_IMG_TAIL, NULL, (char *)buf, 5000, NULL, msg, sizeof(msg)),
			 5000);
	CHECKF(t_mappings() <= before + 1, "%d mappings before 100 reads, %d after", before, t_mappings());
}

/* The head: the first cap bytes of a larger file (no -EFBIG), all of a
 * shorter one; the whole file (crac_img_read_msg) still refuses a larger
 * one. */
static void test_head_whole(void)
{
	char big[PATH_MAX], small[PATH_MAX], msg[PATH_MAX + 400];
	struct stat st;
	const long size = 100000;

	make_file(big, sizeof(big), "big", size);
	make_file(small, sizeof(small), "small", 10);
	crac_img_fs_deadline(0);
	fill_guard();
	CHECK_EQ(crac_img_read_part_msg(big, CRAC_IMG_HEAD, "criu-out", (char *)buf, 5000, &st, msg, sizeof(msg)), 5000);
	CHECK(same_as_file(buf, 0, 5000));
	CHECK(guard_ok(5000));
	CHECK_EQ(st.st_size, size);
	fill_guard();
	CHECK_EQ(crac_img_read_part_msg(small, CRAC_IMG_HEAD, "criu-verify", (char *)buf, 8, NULL, msg, sizeof(msg)), 8);
	CHECK(same_as_file(buf, 0, 8));
	CHECK(guard_ok(8));
	fill_guard();
	CHECK_EQ(crac_img_read_part_msg(small, CRAC_IMG_HEAD, "criu-verify", (char *)buf, 4096, NULL, msg, sizeof(msg)),
		 10);
	CHECK(same_as_file(buf, 0, 10));
	CHECK(buf[10] == 0xA5);

	/* whole: within cap all of it, larger -EFBIG (with st), said so */
	fill_guard();
	CHECK_EQ(crac_img_read_msg(big, (char *)buf, (size_t)size, &st, msg, sizeof(msg)), size);
	CHECK(same_as_file(buf, 0, size));
	CHECK(guard_ok((size_t)size));
	memset(&st, 0, sizeof(st));
	CHECK_EQ(crac_img_read_msg(big, (char *)buf, (size_t)size - 1, &st, msg, sizeof(msg)), -EFBIG);
	CHECK_EQ(st.st_size, size);
	char want[PATH_MAX + 64];
	snprintf(want, sizeof(want), "%s: %s", big, strerror(EFBIG));
	CHECKF(!strcmp(msg, want), "%s", msg);
	CHECK_EQ(crac_img_read_part_msg(big, CRAC_IMG_WHOLE, NULL, (char *)buf, (size_t)size - 1, NULL, msg,
					sizeof(msg)),
		 -EFBIG);
}

/* The same rules in every mode: a symbolic link is not followed (-ELOOP),
 * only a regular file is read (a directory, a FIFO: -EPERM, the FIFO
 * without blocking), a missing one -ENOENT; each said as "PATH: error". */
static void test_rules(void)
{
	static const enum crac_img_part parts[] = { CRAC_IMG_WHOLE, CRAC_IMG_HEAD, CRAC_IMG_TAIL };
	char big[PATH_MAX], link[PATH_MAX], fifo[PATH_MAX], missing[PATH_MAX], msg[PATH_MAX + 400];
	char want[PATH_MAX + 64];
	struct stat st;

	make_file(big, sizeof(big), "big", 100000);
	snprintf(link, sizeof(link), "%s/link", root);
	snprintf(fifo, sizeof(fifo), "%s/fifo", root);
	snprintf(missing, sizeof(missing), "%s/missing", root);
	unlink(link);
	unlink(fifo);
	REQUIRE(symlink(big, link) == 0);
	REQUIRE(mkfifo(fifo, 0600) == 0);
	crac_img_fs_deadline(0);
	for (size_t i = 0; i < 3; i++) {
		enum crac_img_part p = parts[i];
		CHECK_EQ(crac_img_read_part_msg(link, p, NULL, (char *)buf, 4096, &st, msg, sizeof(msg)), -ELOOP);
		snprintf(want, sizeof(want), "%s: %s", link, strerror(ELOOP));
		CHECKF(!strcmp(msg, want), "part %d: %s", (int)p, msg);
		long long t0 = now_ms();
		CHECK_EQ(crac_img_read_part_msg(fifo, p, NULL, (char *)buf, 4096, &st, msg, sizeof(msg)), -EPERM);
		CHECK(now_ms() - t0 < 5000);
		CHECK(S_ISFIFO(st.st_mode));
		CHECK_EQ(crac_img_read_part_msg(root, p, NULL, (char *)buf, 4096, &st, msg, sizeof(msg)), -EPERM);
		CHECK(S_ISDIR(st.st_mode));
		snprintf(want, sizeof(want), "%s: %s", root, strerror(EPERM));
		CHECKF(!strcmp(msg, want), "part %d: %s", (int)p, msg);
		CHECK_EQ(crac_img_read_part_msg(missing, p, NULL, (char *)buf, 4096, NULL, msg, sizeof(msg)), -ENOENT);
		snprintf(want, sizeof(want), "%s: %s", missing, strerror(ENOENT));
		CHECKF(!strcmp(msg, want), "part %d: %s", (int)p, msg);
	}
	unlink(link);
	unlink(fifo);
}

/* Given up on at the limit, in each mode, with the message the criu
 * engine prints ("the read of PATH did not return after N ms (LIMIT): its
 * file system does not answer; given up"), the caller's buffer untouched
 * even once the held call would have gone on; only the caller's own test
 * name slows it. */
static void test_given_up(void)
{
	static const enum crac_img_part parts[] = { CRAC_IMG_WHOLE, CRAC_IMG_HEAD, CRAC_IMG_TAIL };
	char big[PATH_MAX], msg[PATH_MAX + 400], head[PATH_MAX + 64];
	static const char tail[] = " ms (the test's limit): its file system does not answer; given up";

	make_file(big, sizeof(big), "big", 100000);
	crac_img_fs_limit(0, 300, "the test's limit");
	setenv("CRAC_TEST_SLOW_FS", "criu-log:1000", 1);
	snprintf(head, sizeof(head), "the read of %s did not return after ", big);
	for (size_t i = 0; i < 3; i++) {
		fill_guard();
		long long t0 = now_ms();
		CHECK_EQ(crac_img_read_part_msg(big, parts[i], "criu-log", (char *)buf, 4096, NULL, msg, sizeof(msg)),
			 -ETIMEDOUT);
		CHECKF(now_ms() - t0 >= 300 && now_ms() - t0 < 900, "gave up after %lld ms", now_ms() - t0);
		CHECKF(!strncmp(msg, head, strlen(head)) && strlen(msg) > strlen(tail) &&
			       !strcmp(msg + strlen(msg) - strlen(tail), tail),
		       "%s", msg);
		usleep(900 * 1000);   /* (the held helper's sleep over: killed, it read nothing into buf) */
		CHECK(guard_ok(0));
	}
	/* another name's slowness is not this read's */
	CHECK_EQ(crac_img_read_part_msg(big, CRAC_IMG_TAIL, "criu-out", (char *)buf, 4096, NULL, msg, sizeof(msg)),
		 4096);
	CHECK(same_as_file(buf, 100000 - 4096, 4096));
	setenv("CRAC_TEST_SLOW_FS", "read:1000", 1);
	CHECK_EQ(crac_img_read_part_msg(big, CRAC_IMG_HEAD, "criu-verify", (char *)buf, 8, NULL, msg, sizeof(msg)), 8);
	/* crac_img_read_msg keeps its own name, `read` */
	CHECK_EQ(crac_img_read_msg(big, (char *)buf, 100000, NULL, msg, sizeof(msg)), -ETIMEDOUT);
	unsetenv("CRAC_TEST_SLOW_FS");
	crac_img_fs_limit(0, -1, NULL);
}

int main(void)
{
	snprintf(root, sizeof(root), "/tmp/crac-test-read-part.XXXXXX");
	if (!mkdtemp(root))
		t_skip_all("cannot create a temporary directory");
	RUN(test_tail);
	RUN(test_head_whole);
	RUN(test_rules);
	RUN(test_given_up);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	return t_done();
}
