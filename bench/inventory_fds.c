/* SPDX-License-Identifier: MIT */
/*
 * inventory_fds.c - how long the safety-check inventory takes as the number
 * of open descriptors grows (issue #4: 10,000 fds must stay fast).
 *
 * Prints "fds median_ms min_ms" rows (median and min of 7 runs of
 * crac_check()) for 10, 100, 1000 and 10000 open descriptors: a mix of
 * regular files, pipes, sockets and eventfds, all refused, so the report
 * building is measured too. With an argument MAX, only the sizes up to
 * MAX. Each row is printed (and flushed) as soon as it is measured.
 */
#include <crac.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int open_some(int kind)
{
	int p[2];
	switch (kind % 4) {
	case 0: return open("/etc/hostname", O_RDONLY);
	case 1:
		if (pipe(p) < 0)
			return -1;
		close(p[1]);
		return p[0];
	case 2: return socket(AF_INET, SOCK_STREAM, 0);
	default: return eventfd(0, 0);
	}
}

int main(int argc, char **argv)
{
	static const int sizes[] = { 10, 100, 1000, 10000 };
	struct rlimit rl;
	int open_now = 0, max = argc > 1 ? atoi(argv[1]) : 10000;

	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 10100) {
		fprintf(stderr, "inventory_fds: RLIMIT_NOFILE hard limit %llu < 10100\n",
			(unsigned long long)rl.rlim_cur);
		return 1;
	}
	printf("# fds median_ms min_ms problems\n");
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]) && sizes[s] <= max; s++) {
		double t[7];
		int n = 0;
		while (open_now < sizes[s]) {
			if (open_some(open_now) < 0) {
				perror("open");
				return 1;
			}
			open_now++;
		}
		for (int i = 0; i < 7; i++) {
			crac_report *rep = NULL;
			double t0 = now_ms();
			n = crac_check(&rep);
			t[i] = now_ms() - t0;
			crac_report_free(rep);
		}
		qsort(t, 7, sizeof(t[0]), cmp);
		printf("%d %.2f %.2f %d\n", sizes[s], t[3], t[0], n);
	}
	return 0;
}
