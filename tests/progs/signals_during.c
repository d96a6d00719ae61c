/* SPDX-License-Identifier: MIT */
/*
 * signals_during - real-time signals queued WHILE keep-running checkpoints
 * run: none lost, none doubled, the queue's order kept, in the original and
 * in the restored process (tests/cli/image_pending_signals.bats).
 *
 *   signals_during DIR N [thread]
 *       blocks SIGRTMIN+4 and SIGUSR2, prints "pid PID tid TID" (TID: the
 *       thread that receives; with "thread", a second thread that sleeps in
 *       nanosleep, else the main thread), then checkpoints itself into DIR
 *       (image engine, keep-running) again and again until SIGUSR2 is
 *       pending; then the receiving thread takes SIGRTMIN+4's queue, which
 *       must be the values 1 to N, each once, in order:
 *       "original: N of N in order" (else "original: FAIL ...", exit 1).
 *       Restored from DIR: its queue must be 1 to K, in order, for some K
 *       (what was pending at the last checkpoint): "restored: in order".
 *   signals_during --send PID TID N [US]
 *       queues SIGRTMIN+4 with values 1 to N to thread TID of PID
 *       (rt_tgsigqueueinfo, SI_QUEUE; TID = PID: to the process, sigqueue),
 *       one every US microseconds (default 200), retrying on EAGAIN, then
 *       SIGUSR2 to PID.
 *
 *   signals_during DIR N flood
 *       as without "thread", the sender at full rate (US 0); the program
 *       takes what is pending between checkpoints: every value must come
 *       once, in order, and no checkpoint fail: "flood: N taken, 0 twice,
 *       0 missing, 0 out of order, 0 failed checkpoints" (before the
 *       engine read the queues instead of taking the signals off them, a
 *       signal queued while a checkpoint gave back its own could land
 *       among them).
 *   signals_during DIR N flood-thread
 *       the same to a second thread, which takes what is pending every
 *       millisecond while the main thread checkpoints.
 *
 * The program holds 32 MiB of written memory, so that a checkpoint takes a
 * while (the image's pages): most signals arrive while one runs.
 */
#include <crac.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static sigset_t blocked;
static atomic_int go_check, checked, receiver_tid;
static int n_want;
static bool restored;
static char result[256];

/* Takes SIGRTMIN+4's queue of the calling thread (and the process's):
 * checks its values are 1, 2, 3, ... with no gap or repeat. */
static void check_queue(void)
{
	sigset_t one;
	struct timespec zero = { 0, 0 };
	siginfo_t si;
	int last = 0, odd = 0, got = 0;

	sigemptyset(&one);
	sigaddset(&one, SIGRTMIN + 4);
	while (sigtimedwait(&one, &si, &zero) == SIGRTMIN + 4) {
		got++;
		if (si.si_value.sival_int != last + 1 && odd++ < 5)
			fprintf(stderr, "value %d after %d\n", si.si_value.sival_int, last);
		last = si.si_value.sival_int;
	}
	if (restored)
		snprintf(result, sizeof(result), odd ? "restored: FAIL %d of %d out of order" : "restored: in order",
			 odd, got);
	else if (odd || got != n_want)
		snprintf(result, sizeof(result), "original: FAIL %d of %d out of order (%d sent)", odd, got, n_want);
	else
		snprintf(result, sizeof(result), "original: %d of %d in order", got, n_want);
}

/* flood: takes what is pending now, checking the values go on from the
 * last one taken */
static int f_last, f_odd, f_got, f_twice;
static unsigned char f_seen[1 << 20];

static void take_some(void)
{
	sigset_t one;
	struct timespec zero = { 0, 0 };
	siginfo_t si;

	sigemptyset(&one);
	sigaddset(&one, SIGRTMIN + 4);
	while (sigtimedwait(&one, &si, &zero) == SIGRTMIN + 4) {
		int v = si.si_value.sival_int;
		f_got++;
		if (v > 0 && v < (int)sizeof(f_seen))
			f_twice += f_seen[v]++ != 0;
		if (v != f_last + 1)
			f_odd++;
		f_last = si.si_value.sival_int;
	}
}

static bool flood_thread;

static void *receiver(void *arg)
{
	(void)arg;
	atomic_store(&receiver_tid, (int)syscall(SYS_gettid));
	while (!atomic_load(&go_check)) {
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
		if (flood_thread && !restored)
			take_some();
	}
	if (flood_thread) {
		if (!restored)
			take_some();
		atomic_store(&checked, 1);
		return NULL;
	}
	check_queue();
	atomic_store(&checked, 1);
	return NULL;
}

static int sender(int pid, int tid, int n, int period_us)
{
	for (int v = 1; v <= n; v++) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		si.si_signo = SIGRTMIN + 4;
		si.si_code = SI_QUEUE;
		si.si_pid = getpid();
		si.si_uid = getuid();
		si.si_value.sival_int = v;
		long rc;
		while ((rc = tid == pid ? syscall(SYS_rt_sigqueueinfo, pid, SIGRTMIN + 4, &si)
					: syscall(SYS_rt_tgsigqueueinfo, pid, tid, SIGRTMIN + 4, &si)) < 0 &&
		       errno == EAGAIN)
			usleep(1000);
		if (rc < 0) {
			perror("signals_during --send");
			return 1;
		}
		usleep((useconds_t)period_us);
	}
	return kill(pid, SIGUSR2) < 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "--send"))
		return sender(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), argc > 5 ? atoi(argv[5]) : 200);
	if (argc < 3)
		return 2;
	n_want = atoi(argv[2]);
	bool thread = argc == 4 && !strcmp(argv[3], "thread");
	flood_thread = argc == 4 && !strcmp(argv[3], "flood-thread");
	bool flood = argc == 4 && (!strcmp(argv[3], "flood") || flood_thread);
	thread |= flood_thread;

	sigemptyset(&blocked);
	sigaddset(&blocked, SIGRTMIN + 4);
	sigaddset(&blocked, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &blocked, NULL);
	static char ballast[32 << 20];
	memset(ballast, 0x5a, sizeof(ballast));
	pthread_t t;
	int tid = getpid();
	if (thread) {
		pthread_create(&t, NULL, receiver, NULL);
		while (!atomic_load(&receiver_tid))
			sched_yield();
		tid = atomic_load(&receiver_tid);
	}
	printf("pid %d tid %d\n", getpid(), tid);
	fflush(stdout);

	struct crac_options o;
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = argv[1];
	o.flags |= CRAC_KEEP_RUNNING;
	int rounds = 0, failed = 0;
	for (;;) {
		sigset_t pend;
		sigpending(&pend);
		if (sigismember(&pend, SIGUSR2))
			break;
		crac_report *rep = NULL;
		int rc = crac_checkpoint_restore(&o, &rep);
		if (rc == CRAC_RESTORED) {
			restored = true;
			crac_report_free(rep);
			break;
		}
		if (flood) {
			/* what came meanwhile is taken, in order, between rounds */
			if (rc != CRAC_CONTINUED && failed++ == 0)
				crac_report_print(rep, stderr);
			crac_report_free(rep);
			rounds++;
			if (!flood_thread)
				take_some();
			continue;
		}
		if (rc != CRAC_CONTINUED) {
			printf("checkpoint: FAIL rc=%d\n", rc);
			crac_report_print(rep, stdout);
			return 1;
		}
		if (crac_report_count(rep) > 0)
			crac_report_print(rep, stdout);
		crac_report_free(rep);
		rounds++;
	}
	if (thread) {
		atomic_store(&go_check, 1);
		pthread_join(t, NULL);
	} else if (flood && !restored) {
		/* below */
	} else {
		check_queue();
	}
	if (!restored)
		fprintf(stderr, "%d checkpoints\n", rounds);
	if (flood && !restored) {
		if (!flood_thread)
			take_some();
		int missing = 0;
		for (int v = 1; v <= n_want && v < (int)sizeof(f_seen); v++)
			missing += !f_seen[v];
		snprintf(result, sizeof(result),
			 "flood: %d taken, %d twice, %d missing, %d out of order, %d failed checkpoints", f_got, f_twice,
			 missing, f_odd, failed);
		if (failed || f_twice || missing || f_odd || f_got != n_want)
			strcat(result, " FAIL");
	}
	puts(result);
	return strstr(result, "FAIL") ? 1 : 0;
}
