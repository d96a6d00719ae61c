/* SPDX-License-Identifier: MIT */
/*
 * page_write.c - the disk's cost of writing N pages durably into a fresh
 * file: the write part of the bound under an incremental re-checkpoint
 * (issue 12, item 3). No libcrac. Driven by bench/incremental.sh.
 *
 *   page_write DIR NPAGES [REPS [STRIDE]]   (REPS default 5)
 *
 * Maps NPAGES pages of private anonymous memory and writes every page
 * first (the kernel has touched them, as it has the pages a re-checkpoint
 * stores), then REPS times for each way below creates a fresh file in DIR
 * and times, from the open to the close, putting the NPAGES pages into it
 * and making them durable:
 *   write        one write(2) of all the pages, then fdatasync
 *   write-pages  one pwrite(2) per page (a one-page chunk each), then
 *                fdatasync
 *   writev       pwritev(2) of the pages, one iovec per page (IOV_MAX a
 *                call), then fdatasync
 *   splice       vmsplice(2) of the pages, one iovec per page, into a
 *                pipe of 1 MiB, then splice(2) into the file (as
 *                src/engines/image_write.c does), then fdatasync
 *   create       the open, fdatasync and close of an empty fresh file:
 *                what any new image file costs, pages or not
 * With STRIDE above 1, write-pages, writev and splice again ("-spread")
 * from one page in every STRIDE of a larger mapping (only those pages
 * written), as a re-checkpoint finds the pages a program wrote: each in
 * a page table of its own when STRIDE is 512 or more.
 * "splice-kick" is splice-spread starting the writeback of every MiB
 * spliced (sync_file_range), as src/engines/image_write.c does.
 * "splice-wp" and "writev-wp" are splice-spread and writev-spread with
 * the pages write-protected before each run (an asynchronous write-protect
 * userfaultfd, as a re-checkpoint leaves them; outside the timing).
 * The file is removed after each run, outside the timing. Prints
 * "WAY median MS min MS max MS" lines.
 */
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define PIPE_BYTES (1 << 20)

static char *buf;          /* n_pages pages, one after the other */
static char *spread;       /* n_pages * stride pages, one in stride written */
static size_t n_pages, stride = 1;
static char *base;         /* where the ways below take page p from */
static size_t step = 1;

static char *page_at(size_t p)
{
	return base + p * step * PAGE;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "page_write: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void put_write(int fd, const char *path)
{
	size_t len = n_pages * PAGE, off = 0;
	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);
		if (n <= 0)
			die("write", path);
		off += (size_t)n;
	}
}

static void put_pages(int fd, const char *path)
{
	for (size_t p = 0; p < n_pages; p++)
		if (pwrite(fd, page_at(p), PAGE, (off_t)(p * PAGE)) != PAGE)
			die("pwrite", path);
}

static void put_writev(int fd, const char *path)
{
	struct iovec iov[IOV_MAX];
	for (size_t p = 0; p < n_pages;) {
		size_t n = n_pages - p < IOV_MAX ? n_pages - p : IOV_MAX;
		for (size_t i = 0; i < n; i++)
			iov[i] = (struct iovec){ page_at(p + i), PAGE };
		ssize_t got = pwritev(fd, iov, (int)n, (off_t)(p * PAGE));
		if (got <= 0 || got % PAGE)
			die("pwritev", path);
		p += (size_t)got / PAGE;
	}
}

static int kick;   /* put_splice starts the writeback of every MiB */

static void put_splice(int fd, const char *path)
{
	int pp[2];
	if (pipe2(pp, O_CLOEXEC) < 0)
		die("pipe2 for", path);
	/* as big as allowed; the default 64 KiB pipe otherwise */
	long cap = fcntl(pp[1], F_SETPIPE_SZ, PIPE_BYTES);
	if (cap < PAGE)
		cap = 16 * PAGE;
	size_t per = (size_t)cap / PAGE;
	if (per > IOV_MAX)
		per = IOV_MAX;
	struct iovec *iov = calloc(per, sizeof(*iov));
	if (!iov)
		die("calloc for", path);
	loff_t off = 0;
	for (size_t p = 0; p < n_pages; p += per) {
		size_t n = n_pages - p < per ? n_pages - p : per;
		for (size_t i = 0; i < n; i++)
			iov[i] = (struct iovec){ page_at(p + i), PAGE };
		size_t want = n * PAGE, in = 0;
		struct iovec *v = iov;
		size_t nv = n;
		while (in < want) {
			ssize_t got = vmsplice(pp[1], v, nv, 0);
			if (got <= 0)
				die("vmsplice for", path);
			in += (size_t)got;
			/* skip what went in (whole pages, or part of one) */
			while (nv && (size_t)got >= v->iov_len) {
				got -= (ssize_t)v->iov_len;
				v++, nv--;
			}
			if (nv && got) {
				v->iov_base = (char *)v->iov_base + got;
				v->iov_len -= (size_t)got;
			}
		}
		while (want) {
			ssize_t got = splice(pp[0], NULL, fd, &off, want, SPLICE_F_MOVE);
			if (got <= 0)
				die("splice into", path);
			want -= (size_t)got;
		}
		if (kick)
			sync_file_range(fd, (off_t)off - (off_t)(n * PAGE), (off_t)(n * PAGE), SYNC_FILE_RANGE_WRITE);
	}
	free(iov);
	close(pp[0]);
	close(pp[1]);
}

/* splice, with writeback started after every MiB (sync_file_range), as
 * image_write.c does for an incremental image */
static void put_splice_kick(int fd, const char *path)
{
	kick = 1;
	put_splice(fd, path);
	kick = 0;
}

static void put_none(int fd, const char *path)
{
	(void)fd, (void)path;
}

/* splice-wp: the spread pages write-protected again before each run, as a
 * re-checkpoint leaves them (an asynchronous write-protect userfaultfd, as
 * src/engines/image_track.c registers; UFFDIO_WRITEPROTECT of each page) */
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
static int uffd = -1;
static void (*prep)(void);

static void protect_spread(void)
{
	for (size_t p = 0; p < n_pages; p++) {
		struct uffdio_writeprotect w = { .range = { .start = (uint64_t)(uintptr_t)page_at(p), .len = PAGE },
						 .mode = UFFDIO_WRITEPROTECT_MODE_WP };
		if (ioctl(uffd, UFFDIO_WRITEPROTECT, &w) < 0)
			die("UFFDIO_WRITEPROTECT of a page of", "the spread mapping");
	}
}

static int wp_setup(size_t len)
{
	long fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return -1;
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
	struct uffdio_register r = { .range = { .start = (uint64_t)(uintptr_t)spread, .len = len },
				     .mode = UFFDIO_REGISTER_MODE_WP };
	if (ioctl((int)fd, UFFDIO_API, &api) < 0 || ioctl((int)fd, UFFDIO_REGISTER, &r) < 0) {
		close((int)fd);
		return -1;
	}
	uffd = (int)fd;
	return 0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void way(const char *name, const char *dir, int reps, void (*put)(int, const char *))
{
	double t[64];
	char path[4096];
	snprintf(path, sizeof(path), "%s/page_write.%d", dir, (int)getpid());
	for (int r = 0; r < reps; r++) {
		unlink(path);
		if (prep)
			prep();
		sync();   /* nothing of the last run's left to write back */
		double t0 = now_ms();
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			die("open", path);
		put(fd, path);
		if (fdatasync(fd) < 0)
			die("fdatasync", path);
		close(fd);
		t[r] = now_ms() - t0;
		unlink(path);
	}
	qsort(t, (size_t)reps, sizeof(t[0]), cmp);
	printf("%-13s median %7.2f ms  min %7.2f  max %7.2f   (%zu pages, %d reps)\n", name, t[(reps - 1) / 2], t[0],
	       t[reps - 1], put == put_none ? (size_t)0 : n_pages, reps);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: page_write DIR NPAGES [REPS]\n");
		return 2;
	}
	n_pages = strtoull(argv[2], NULL, 10);
	int reps = argc > 3 ? atoi(argv[3]) : 5;
	if (argc > 4 && strtoull(argv[4], NULL, 10) > 1)
		stride = strtoull(argv[4], NULL, 10);
	if (reps < 1)
		reps = 1;
	if (reps > 64)
		reps = 64;
	if (!n_pages)
		n_pages = 1;
	buf = mmap(NULL, n_pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		die("mmap of", argv[2]);
	for (size_t i = 0; i < n_pages * PAGE; i += 8)
		*(unsigned long long *)(buf + i) = i * 0x9e3779b97f4a7c15ull + 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	base = buf;
	way("write", argv[1], reps, put_write);
	way("write-pages", argv[1], reps, put_pages);
	way("writev", argv[1], reps, put_writev);
	way("splice", argv[1], reps, put_splice);
	way("create", argv[1], reps, put_none);
	if (stride > 1) {
		spread = mmap(NULL, n_pages * stride * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			      -1, 0);
		if (spread == MAP_FAILED)
			die("mmap of the spread pages for", argv[1]);
		for (size_t p = 0; p < n_pages; p++)
			for (size_t i = 0; i < PAGE; i += 8)
				*(unsigned long long *)(spread + p * stride * PAGE + i) = i * 0x9e3779b97f4a7c15ull + p;
		base = spread;
		step = stride;
		way("pages-spread", argv[1], reps, put_pages);
		way("writev-spread", argv[1], reps, put_writev);
		way("splice-spread", argv[1], reps, put_splice);
		way("splice-kick", argv[1], reps, put_splice_kick);
		if (wp_setup(n_pages * stride * PAGE) == 0) {
			prep = protect_spread;
			way("splice-wp", argv[1], reps, put_splice);
			way("writev-wp", argv[1], reps, put_writev);
			prep = NULL;
		} else {
			printf("# splice-wp, writev-wp: no write-protect userfaultfd here (%s)\n", strerror(errno));
		}
	}
	return 0;
}
