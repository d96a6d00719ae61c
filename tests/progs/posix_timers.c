/* SPDX-License-Identifier: MIT */
/*
 * posix_timers - POSIX timers (timer_create) across a checkpoint taken from
 * outside: an unmodified program run by `crac run --checkpoint-on SIGUSR1`.
 *
 *   a: SIGEV_SIGNAL (SIGRTMIN+3, SA_SIGINFO, sival_ptr = &marker), CLOCK_MONOTONIC,
 *      every 2 ms
 *   b: SIGEV_NONE, CLOCK_REALTIME, one shot in 1000 s
 *   c: SIGEV_SIGNAL, CLOCK_BOOTTIME, created and never armed
 *
 * (`posix_timers --probe`: exit 0 if the kernel can create a timer with a
 * given id. `posix_timers --thread-timer`: also d, SIGEV_THREAD_ID to the
 * main thread, whose id it prints. `posix_timers --cpu-timer`: also e,
 * SIGEV_SIGNAL on CLOCK_PROCESS_CPUTIME_ID, one shot in 1000 s of CPU time,
 * and what it has left after the restore. `posix_timers --many N`: also N
 * more, SIGEV_NONE on CLOCK_MONOTONIC, the i-th one shot in 2000 + i s,
 * checked one by one after the restore.) Prints "ready", asks its parent for the checkpoint (SIGUSR1), and once it
 * runs under another pid (the restored copy) prints what it finds: that the
 * same timer_t values name timers with the same settings, that a still ticks
 * with its value, and how many timers the process has.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t ticks;
static void *volatile got_value;
static int marker;

static void on_tick(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	ticks++;
	got_value = si->si_value.sival_ptr;
}

static timer_t make(clockid_t clock, int notify, int sig, void *value)
{
	struct sigevent sev;
	timer_t t;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = notify;
	sev.sigev_signo = sig;
	sev.sigev_value.sival_ptr = value;
	if (timer_create(clock, &sev, &t) < 0) {
		perror("timer_create");
		exit(2);
	}
	return t;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0)
		;
}

int main(int argc, char **argv)
{
	/* --probe: can this kernel create a timer with a given id? */
	if (argc > 1 && !strcmp(argv[1], "--probe"))
		return prctl(77 /* PR_TIMER_CREATE_RESTORE_IDS */, 2 /* _GET */, 0, 0, 0) < 0;

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_tick;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGRTMIN + 3, &sa, NULL);

	timer_t a = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 3, &marker);
	timer_t b = make(CLOCK_REALTIME, SIGEV_NONE, 0, NULL);
	timer_t c = make(CLOCK_BOOTTIME, SIGEV_SIGNAL, SIGRTMIN + 3, NULL);
	/* --many N: N more timers, each with its own time left */
	int many = argc > 2 && !strcmp(argv[1], "--many") ? atoi(argv[2]) : 0;
	timer_t *more = many > 0 ? calloc((size_t)many, sizeof(*more)) : NULL;
	for (int i = 0; i < many; i++) {
		struct itimerspec in = { { 0, 0 }, { 2000 + i, 0 } };
		more[i] = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, NULL);
		if (timer_settime(more[i], 0, &in, NULL) < 0) {
			perror("timer_settime (--many)");
			return 2;
		}
	}
	if (argc > 1 && !strcmp(argv[1], "--thread-timer")) {
		/* d: signals the main thread (not carried: left out under a
		 * `warn` policy) */
		struct sigevent sev;
		timer_t d;
		memset(&sev, 0, sizeof(sev));
		sev.sigev_notify = SIGEV_THREAD_ID;
		sev.sigev_signo = SIGRTMIN + 3;
		sev._sigev_un._tid = getpid();
		if (timer_create(CLOCK_MONOTONIC, &sev, &d) < 0) {
			perror("timer_create (thread)");
			return 2;
		}
		printf("d: %d\n", (int)(intptr_t)d);
	}
	struct itimerspec every = { { 0, 2000000 }, { 0, 2000000 } }, once = { { 0, 0 }, { 1000, 0 } };
	/* e: the process's CPU time (the kernel shows its own clock id for
	 * it in /proc/self/timers, -6) */
	timer_t e = 0;
	int cpu = argc > 1 && !strcmp(argv[1], "--cpu-timer");
	if (cpu) {
		e = make(CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL, SIGRTMIN + 3, NULL);
		if (timer_settime(e, 0, &once, NULL) < 0) {
			perror("timer_settime (cpu)");
			return 2;
		}
	}
	if (timer_settime(a, 0, &every, NULL) < 0 || timer_settime(b, 0, &once, NULL) < 0) {
		perror("timer_settime");
		return 2;
	}
	while (ticks < 5)
		sleep_ms(1);
	/* (in memory: a register holding the main thread's tid across the
	 * checkpoint is taken for glibc's cached tid and given the new one,
	 * image_threads.c: fix_cached_tid) */
	static volatile pid_t orig;
	orig = getpid();
	printf("ready\n");
	fflush(stdout);
	/* $POSIX_TIMERS_WAIT_S: how long to wait for the restore (default 30 s) */
	const char *w = getenv("POSIX_TIMERS_WAIT_S");
	int wait_ticks = (w ? atoi(w) : 30) * 100;
	for (int i = 0; getpid() == orig; i++) {
		if (i >= wait_ticks)
			return 3;   /* not checkpointed (refused?) */
		if (i % 500 == 0)   /* crac run: checkpoint now (again every 5 s) */
			kill(getppid(), SIGUSR1);
		sleep_ms(10);
	}

	/* the restored copy */
	struct itimerspec sa_, sb, sc;
	if (timer_gettime(a, &sa_) < 0 || timer_gettime(b, &sb) < 0 || timer_gettime(c, &sc) < 0) {
		perror("timer_gettime after restore");
		return 4;
	}
	printf("a: interval %ld ns\n", sa_.it_interval.tv_nsec);
	printf("b: %s\n", sb.it_value.tv_sec > 900 && sb.it_value.tv_sec <= 1000 && !sb.it_interval.tv_sec
	       ? "one shot, 900-1000 s left" : "wrong");
	printf("c: %s\n", !sc.it_value.tv_sec && !sc.it_value.tv_nsec ? "disarmed" : "armed");
	if (cpu) {
		struct itimerspec se;
		if (timer_gettime(e, &se) < 0) {
			perror("timer_gettime (cpu) after restore");
			return 4;
		}
		printf("e: %s\n", se.it_value.tv_sec >= 990 && se.it_value.tv_sec < 1000 ? "one shot, 990-1000 s of CPU left"
										    : "wrong");
	}
	got_value = NULL;
	int t0 = ticks;
	sleep_ms(100);
	printf("a ticks: %s, value %s\n", ticks - t0 >= 5 ? "yes" : "no",
	       got_value == &marker ? "kept" : "lost");
	/* each of the --many timers: its own, with 2000 + i s less what passed */
	int many_ok = 0;
	for (int i = 0; i < many; i++) {
		struct itimerspec m;
		if (timer_gettime(more[i], &m) == 0 && m.it_value.tv_sec > 1900 + i && m.it_value.tv_sec < 2000 + i)
			many_ok++;
	}
	if (many)
		printf("many: %d of %d as they were\n", many_ok, many);
	int n = 0;
	char line[256];
	FILE *f = fopen("/proc/self/timers", "r");
	while (f && fgets(line, sizeof(line), f))
		n += !strncmp(line, "ID: ", 4);
	printf("timers: %d\n", n);
	return 0;
}
