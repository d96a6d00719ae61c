/* SPDX-License-Identifier: MIT */
/*
 * obj_events - eventfd, timerfd, signalfd and memfd carried across an
 * image restore.
 *
 *   obj_events DIR [mapped | huge]
 *
 * Builds the objects, checkpoints into DIR (the original exits 0 there)
 * and, in every restored instance, checks each and prints "ok NAME" or
 * "FAIL: ..." lines (exit 0 or 1):
 *   eventfd      counter 42, EFD_NONBLOCK; a counter above 32 bits;
 *                EFD_SEMAPHORE with FD_CLOEXEC
 *   timer        a relative one-shot timer: its time left counts from the
 *                restore; a periodic timer keeps its interval and fires;
 *                an expired unread one-shot timer still has 1 expiration;
 *                a periodic timer's unread expirations are kept; absolute
 *                CLOCK_REALTIME and CLOCK_MONOTONIC timers keep their time;
 *                a disarmed timer stays disarmed
 *   signalfd     its mask; a signal raised after the restore is read
 *   memfd        name, 5 MiB of content, offset, seals, FD_CLOEXEC; a
 *                second open file of it (its own offset and access mode,
 *                the same memory); a memfd without sealing, sparse (holes
 *                kept)
 * Refusals: "mapped" maps a memfd shared and keeps its descriptor; "huge"
 * makes a 100 MiB memfd. The checkpoint then fails: the report is printed
 * and the program exits 3.
 */
#include <crac.h>
#include "image_ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "obj_check.h"

#define BIG (5u << 20)

static unsigned char pattern(size_t i)
{
	return (unsigned char)((i >> 12) * 31 + i * 7 + 1);
}

static double secs(const struct timespec *t)
{
	return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

/* The number after "key:" in /proc/self/fdinfo/FD (-1 if absent). */
static long long fdinfo(int fd, const char *key, int base)
{
	char path[64], line[256];
	long long v = -1;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':') {
			v = strtoll(line + strlen(key) + 1, NULL, base);
			break;
		}
	fclose(f);
	return v;
}

static void arm(int fd, int flags, double value, double interval)
{
	struct itimerspec its = {
		{ (time_t)interval, (long)((interval - (double)(time_t)interval) * 1e9) },
		{ (time_t)value, (long)((value - (double)(time_t)value) * 1e9) },
	};
	if (timerfd_settime(fd, flags, &its, NULL) < 0)
		perror("timerfd_settime");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: obj_events DIR [mapped | huge]\n");
		return 2;
	}
	const char *mode = argc > 2 ? argv[2] : "";

	/* eventfd */
	int e1 = eventfd(0, EFD_NONBLOCK);
	int e2 = eventfd(0, 0);
	int e3 = eventfd(3, EFD_SEMAPHORE | EFD_CLOEXEC);
	uint64_t v = 42;
	if (e1 < 0 || e2 < 0 || e3 < 0 || write(e1, &v, 8) != 8)
		return 1;
	v = 0x123456789ull;
	if (write(e2, &v, 8) != 8)
		return 1;

	/* timerfd */
	int t_rel = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	int t_per = timerfd_create(CLOCK_MONOTONIC, 0);
	int t_exp = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
	int t_many = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	int t_rt = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	int t_mono = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	int t_off = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	if (t_rel < 0 || t_per < 0 || t_exp < 0 || t_many < 0 || t_rt < 0 || t_mono < 0 || t_off < 0)
		return 1;
	struct timespec rt0, mono0;
	clock_gettime(CLOCK_REALTIME, &rt0);
	clock_gettime(CLOCK_MONOTONIC, &mono0);
	arm(t_rel, 0, 3.0, 0);
	arm(t_per, 0, 0.1, 0.1);
	arm(t_exp, 0, 0.001, 0);
	arm(t_many, 0, 0.001, 0.001);
	arm(t_rt, TFD_TIMER_ABSTIME, secs(&rt0) + 3600, 0);
	arm(t_mono, TFD_TIMER_ABSTIME, secs(&mono0) + 3600, 0);
	usleep(50000);   /* t_exp expired once, t_many about 50 times: unread */

	/* signalfd */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_NONBLOCK);
	if (sfd < 0)
		return 1;

	/* memfd */
	int m1 = memfd_create("crac test", MFD_ALLOW_SEALING | MFD_CLOEXEC);
	static unsigned char buf[BIG];
	for (size_t i = 0; i < BIG; i++)
		buf[i] = pattern(i);
	if (m1 < 0 || write(m1, buf, BIG) != BIG || lseek(m1, 1234, SEEK_SET) != 1234 ||
	    fcntl(m1, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		return 1;
	char m1path[64];
	snprintf(m1path, sizeof(m1path), "/proc/self/fd/%d", m1);
	int m1r = open(m1path, O_RDONLY);   /* another open file of the same memfd */
	if (m1r < 0 || lseek(m1r, 100, SEEK_SET) != 100)
		return 1;
	int m2 = memfd_create("plain", 0);
	if (m2 < 0 || ftruncate(m2, 8 << 20) < 0 || pwrite(m2, "x", 1, 4 << 20) != 1)
		return 1;

	if (!strcmp(mode, "mapped")) {
		int m = memfd_create("shared-map", 0);
		if (m < 0 || ftruncate(m, 4096) < 0 ||
		    mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0) == MAP_FAILED)
			return 1;
	} else if (!strcmp(mode, "huge")) {
		int m = memfd_create("huge", 0);
		if (m < 0 || ftruncate(m, 100 << 20) < 0)
			return 1;
	}

	crac_report *rep = NULL;
	int rc = image_try(argv[1], 0, &rep);
	if (rc != CRAC_RESTORED) {
		printf("checkpoint refused: %d\n", rc);
		if (rep)
			crac_report_print(rep, stdout);
		return 3;
	}
	crac_report_free(rep);

	/* eventfd */
	v = 0;
	ssize_t n = read(e1, &v, 8);
	CHECK("eventfd counter", n == 8 && v == 42, "read %zd: %llu", n, (unsigned long long)v);
	n = read(e1, &v, 8);
	CHECK("eventfd nonblock", n < 0 && errno == EAGAIN && (fcntl(e1, F_GETFL) & O_NONBLOCK), "read %zd", n);
	n = read(e2, &v, 8);
	CHECK("eventfd wide counter", n == 8 && v == 0x123456789ull, "read %zd: %#llx", n, (unsigned long long)v);
	CHECK("eventfd blocking", !(fcntl(e2, F_GETFL) & O_NONBLOCK), "flags %#x", fcntl(e2, F_GETFL));
	int sem = 1;
	for (int k = 0; k < 3; k++)
		sem &= read(e3, &v, 8) == 8 && v == 1;
	CHECK("eventfd semaphore", sem && fdinfo(e3, "eventfd-count", 16) == 0 && fcntl(e3, F_GETFD) == FD_CLOEXEC,
	      "reads of 1: %d, count now %lld", sem, fdinfo(e3, "eventfd-count", 16));

	/* timerfd */
	struct itimerspec cur;
	timerfd_gettime(t_rel, &cur);
	CHECK("timer relative", secs(&cur.it_value) > 2.0 && secs(&cur.it_value) <= 3.0 &&
		      fdinfo(t_rel, "clockid", 10) == CLOCK_MONOTONIC,
	      "%.3f s left (armed for 3 s: counts from the restore)", secs(&cur.it_value));
	timerfd_gettime(t_per, &cur);
	CHECK("timer interval", cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == 100000000, "%.3f s",
	      secs(&cur.it_interval));
	v = 0;
	n = read(t_per, &v, 8);   /* blocking: fires within 0.1 s */
	CHECK("timer periodic fires", n == 8 && v >= 1, "read %zd: %llu", n, (unsigned long long)v);
	v = 0;
	n = read(t_exp, &v, 8);
	CHECK("timer pending expiration", n == 8 && v == 1 && fdinfo(t_exp, "clockid", 10) == CLOCK_BOOTTIME,
	      "read %zd: %llu", n, (unsigned long long)v);
	v = 0;
	n = read(t_many, &v, 8);
	CHECK("timer pending expirations", n == 8 && v >= 20, "read %zd: %llu", n, (unsigned long long)v);
	struct timespec rt1, mono1;
	clock_gettime(CLOCK_REALTIME, &rt1);
	clock_gettime(CLOCK_MONOTONIC, &mono1);
	timerfd_gettime(t_rt, &cur);
	double want = secs(&rt0) + 3600 - secs(&rt1);
	CHECK("timer absolute realtime", fdinfo(t_rt, "settime flags", 8) == TFD_TIMER_ABSTIME &&
		      secs(&cur.it_value) > want - 1 && secs(&cur.it_value) < want + 1,
	      "%.3f s left, want %.3f, flags %llo", secs(&cur.it_value), want, fdinfo(t_rt, "settime flags", 8));
	timerfd_gettime(t_mono, &cur);
	want = secs(&mono0) + 3600 - secs(&mono1);
	CHECK("timer absolute monotonic", fdinfo(t_mono, "settime flags", 8) == TFD_TIMER_ABSTIME &&
		      secs(&cur.it_value) > want - 1 && secs(&cur.it_value) < want + 1,
	      "%.3f s left, want %.3f (same boot: same absolute time)", secs(&cur.it_value), want);
	timerfd_gettime(t_off, &cur);
	n = read(t_off, &v, 8);
	CHECK("timer disarmed", !cur.it_value.tv_sec && !cur.it_value.tv_nsec && n < 0 && errno == EAGAIN,
	      "%.3f s left, read %zd", secs(&cur.it_value), n);

	/* signalfd */
	CHECK("signalfd mask", fdinfo(sfd, "sigmask", 16) == ((1ll << (SIGUSR1 - 1)) | (1ll << (SIGUSR2 - 1))),
	      "%llx", fdinfo(sfd, "sigmask", 16));
	raise(SIGUSR2);
	struct signalfd_siginfo si;
	n = read(sfd, &si, sizeof(si));
	CHECK("signalfd reads", n == sizeof(si) && si.ssi_signo == SIGUSR2, "read %zd", n);

	/* memfd */
	char link[256] = { 0 }, self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", m1);
	readlink(self, link, sizeof(link) - 1);
	CHECK("memfd name", !strcmp(link, "/memfd:crac test (deleted)"), "%s", link);
	struct stat st;
	fstat(m1, &st);
	static unsigned char back[BIG];
	n = pread(m1, back, BIG, 0);
	CHECK("memfd content", st.st_size == BIG && n == BIG && !memcmp(back, buf, BIG), "size %lld, read %zd",
	      (long long)st.st_size, n);
	CHECK("memfd offset", lseek(m1, 0, SEEK_CUR) == 1234, "%lld", (long long)lseek(m1, 0, SEEK_CUR));
	CHECK("memfd seals", fcntl(m1, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW) && ftruncate(m1, 10) < 0 &&
		      errno == EPERM && fcntl(m1, F_GETFD) == FD_CLOEXEC,
	      "seals %#x", fcntl(m1, F_GET_SEALS));
	struct stat st1;
	fstat(m1, &st);
	fstat(m1r, &st1);
	char c1 = 0;
	n = pwrite(m1, "Z", 1, 7) == 1 ? pread(m1r, &c1, 1, 7) : -1;
	CHECK("memfd opened again", st.st_ino == st1.st_ino && n == 1 && c1 == 'Z' && lseek(m1r, 0, SEEK_CUR) == 100 &&
		      (fcntl(m1r, F_GETFL) & O_ACCMODE) == O_RDONLY,
	      "inodes %lu %lu, read %zd '%c', offset %lld", (unsigned long)st.st_ino, (unsigned long)st1.st_ino, n, c1,
	      (long long)lseek(m1r, 0, SEEK_CUR));
	fstat(m2, &st);
	char x = 0;
	n = pread(m2, &x, 1, 4 << 20);
	CHECK("memfd sparse", st.st_size == (8 << 20) && n == 1 && x == 'x' && st.st_blocks * 512 < (1 << 20) &&
		      fcntl(m2, F_GET_SEALS) == F_SEAL_SEAL && fcntl(m2, F_GETFD) == 0,
	      "size %lld, %lld blocks, seals %#x", (long long)st.st_size, (long long)st.st_blocks,
	      fcntl(m2, F_GET_SEALS));

	printf("%s\n", fails ? "restored with failures" : "restored ok");
	return fails ? 1 : 0;
}
