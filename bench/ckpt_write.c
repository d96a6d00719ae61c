/* SPDX-License-Identifier: MIT */
/*
 * ckpt_write.c - how to move a fresh process's heap into a file fastest
 * (the first checkpoint of a process). Driven by bench/checkpoint.sh.
 *
 *   ckpt_write MODE FILE MIB
 *       Allocates MIB mebibytes (one anonymous mapping), writes every 8-byte
 *       word with a non-zero value (every page dirty, touched only by this
 *       process in user mode, as a program's heap is), then moves it to FILE
 *       (created) in 1 MiB steps with MODE, then fsyncs:
 *         write     write(2) straight from the heap
 *         bounce    copy 1 MiB into a reused buffer in user mode, write(2) that
 *         vmsplice  vmsplice(2) into a 1 MiB pipe (no SPLICE_F_GIFT), splice(2)
 *                   the pipe into the file, drained before the next step
 *         direct    O_DIRECT write(2) from the heap (not on tmpfs)
 *       Prints "mode=M mib=N copy_ms=C fsync_ms=F total_ms=T".
 *
 * Each run is a fresh process: after one pass the kernel has touched the
 * pages, and a second pass of any mode is fast (what hides the first
 * checkpoint's cost in repeated measurements).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define STEP (1u << 20)

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "ckpt_write: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Like the engine: start writeback every 32 MiB so that the disk works
 * while the rest is copied (buffered modes). */
static void kick(int fd, size_t done)
{
	static size_t kicked;
	if (done - kicked >= (32u << 20)) {
		sync_file_range(fd, (off_t)kicked, (off_t)(done - kicked), SYNC_FILE_RANGE_WRITE);
		kicked = done;
	}
}

static void write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write");
		p += n;
		len -= (size_t)n;
	}
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: ckpt_write write|bounce|vmsplice|direct FILE MIB\n");
		return 2;
	}
	const char *mode = argv[1];
	size_t len = (size_t)strtoull(argv[3], NULL, 10) << 20;
	uint64_t *heap = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (heap == MAP_FAILED)
		die("mmap");
	for (size_t i = 0; i < len / 8; i++)
		heap[i] = (i * 0x9e3779b97f4a7c15ull) | 1;

	int direct = !strcmp(mode, "direct");
	int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (direct ? O_DIRECT : 0), 0600);
	if (fd < 0)
		die(argv[2]);
	const char *src = (const char *)heap;
	double t0 = now_ms();
	if (!strcmp(mode, "write") || direct) {
		for (size_t at = 0; at < len; at += STEP) {
			write_all(fd, src + at, STEP);
			if (!direct)
				kick(fd, at + STEP);
		}
	} else if (!strcmp(mode, "bounce")) {
		char *buf = aligned_alloc(4096, STEP);
		for (size_t at = 0; at < len; at += STEP) {
			memcpy(buf, src + at, STEP);
			write_all(fd, buf, STEP);
			kick(fd, at + STEP);
		}
	} else if (!strcmp(mode, "vmsplice")) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			die("pipe");
		int cap = fcntl(p[1], F_SETPIPE_SZ, STEP);
		if (cap < 0)
			die("F_SETPIPE_SZ");
		for (size_t at = 0; at < len;) {
			struct iovec iov = { (void *)(src + at), len - at < (size_t)cap ? len - at : (size_t)cap };
			ssize_t n = vmsplice(p[1], &iov, 1, 0);
			if (n <= 0)
				die("vmsplice");
			for (ssize_t left = n; left;) {
				ssize_t m = splice(p[0], NULL, fd, NULL, (size_t)left, SPLICE_F_MOVE);
				if (m <= 0)
					die("splice");
				left -= m;
			}
			at += (size_t)n;
			kick(fd, at);
		}
	} else {
		fprintf(stderr, "ckpt_write: unknown mode %s\n", mode);
		return 2;
	}
	double t1 = now_ms();
	if (fsync(fd) < 0)
		die("fsync");
	double t2 = now_ms();
	close(fd);
	printf("mode=%s mib=%zu copy_ms=%.1f fsync_ms=%.1f total_ms=%.1f\n", mode, len >> 20, t1 - t0, t2 - t1,
	       t2 - t0);
	return 0;
}
