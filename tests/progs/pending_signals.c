/* SPDX-License-Identifier: MIT */
/*
 * pending_signals - signals pending at a checkpoint are neither lost nor
 * doubled, in the original process and in the restored one
 * (tests/cli/image_pending_signals.bats).
 *
 *   pending_signals DIR     checkpoints itself into DIR with the image
 *                           engine, keep-running
 *   pending_signals --overflow DIR
 *                           also 1100 SIGRTMIN+2 to the process (values 0
 *                           to 1099): more than the image engine carries,
 *                           so the checkpoint must fail; then every signal
 *                           must still come, each once and in order
 *                           ("aborted: ...")
 *                           (PENDING_OVERFLOW_N=N: N of them; if the
 *                           checkpoint takes them all, the original and
 *                           the restored process check them: "LABEL
 *                           carried: ..." then the usual lines)
 *   pending_signals --overflow-thread DIR
 *                           the same, to the second thread ("aborted
 *                           thread: ..." after its check)
 *   pending_signals --timer DIR
 *                           also a POSIX timer (SIGEV_SIGNAL SIGRTMIN+3,
 *                           value 301) expired once before the checkpoint:
 *                           its expiry comes back as its siginfo
 *                           ("LABEL timer: SI_TIMER/301 id ok overrun 0")
 *   pending_signals --again DIR DIR2
 *                           as with DIR; the restored process then queues
 *                           the same signals and checkpoints into DIR2
 *                           (keep-running): "restored, checkpointed
 *                           again" lines, and "restored again" from DIR2
 *   pending_signals --cli [DIR]
 *                           unmodified: asks its parent (`crac run
 *                           --checkpoint-on SIGUSR1`) for the checkpoint,
 *                           and checks once it runs under another pid;
 *                           with DIR (`crac run --keep-running
 *                           --checkpoint-to DIR`), the original checks too,
 *                           once DIR/header exists
 *
 * Every thread blocks SIGUSR1, SIGUSR2, SIGRTMIN and SIGRTMIN+1. Before the
 * checkpoint the main thread queues, to the process: SIGUSR1 (kill: SI_USER)
 * and SIGRTMIN twice (sigqueue, values 101 then 102); to the second thread
 * ("pend-thread"): SIGUSR2 (pthread_kill: SI_TKILL) and SIGRTMIN+1 twice
 * (pthread_sigqueue, 201 then 202). After it, each thread takes what is
 * pending for it (sigtimedwait, no wait) and prints it in the order taken:
 *
 *     LABEL main: USR1/user RTMIN/101 RTMIN/102
 *     LABEL thread: USR2/user RTMIN+1/201 RTMIN+1/202
 *     LABEL: ok
 *
 * (LABEL: original or restored; glibc's sigtimedwait reports pthread_kill's
 * SI_TKILL as SI_USER). "ok" needs exactly these lines, and: the thread's signals not
 * pending for the main thread (they stayed thread-directed), the senders'
 * pid the original pid, and nothing left pending afterwards. Else
 * "LABEL: FAIL ..." and exit 1.
 */
#include <crac.h>

#define OVERFLOW_MAX 4096
/* (PENDING_OVERFLOW_N: another count, at most OVERFLOW_MAX) */
static int OVERFLOW_N = 1100;

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int orig_pid;
static pthread_t second;
static timer_t the_timer;
static atomic_int ask, answered;
static atomic_int named;   /* the second thread has its name: messages name it */
static char thread_line[256];
static int thread_bad;

/* Takes every pending signal of `set` for the calling thread, in order,
 * into out ("USR1/user RTMIN/101 ..."); counts what looks wrong. */
static int take_all(const sigset_t *set, char *out, size_t len)
{
	struct timespec zero = { 0, 0 };
	siginfo_t si;
	size_t used = 0;
	int bad = 0, sig;

	out[0] = 0;
	while ((sig = sigtimedwait(set, &si, &zero)) > 0) {
		char one[48];
		if (sig == SIGRTMIN || sig == SIGRTMIN + 1) {
			snprintf(one, sizeof(one), "%s/%d", sig == SIGRTMIN ? "RTMIN" : "RTMIN+1", si.si_value.sival_int);
			bad += si.si_code != SI_QUEUE;
		} else {
			snprintf(one, sizeof(one), "%s/%s", sig == SIGUSR1 ? "USR1" : sig == SIGUSR2 ? "USR2" : "?",
				 si.si_code == SI_USER ? "user" : si.si_code == SI_TKILL ? "tkill" : "other");
		}
		bad += si.si_pid != orig_pid;
		used += (size_t)snprintf(out + used, len - used, "%s%s", used ? " " : "", one);
		if (used >= len)
			break;
	}
	if (errno != EAGAIN)
		bad++;
	return bad;
}

/* Takes every pending SIGRTMIN+2 of the caller (values 0..OVERFLOW_N-1)
 * into "N of M SIGRTMIN+2 back, T twice, O odd (in order|not in order)";
 * returns nonzero unless each came once, in order. */
static int take_rt2(char *out, size_t len)
{
	static unsigned char seen[OVERFLOW_MAX];
	struct timespec zero = { 0, 0 };
	sigset_t rt2;
	siginfo_t si;
	int n = 0, twice = 0, odd = 0, in_order = 1, last = -1;

	memset(seen, 0, sizeof(seen));
	sigemptyset(&rt2);
	sigaddset(&rt2, SIGRTMIN + 2);
	while (sigtimedwait(&rt2, &si, &zero) == SIGRTMIN + 2) {
		int k = si.si_value.sival_int;
		n++;
		if (k < 0 || k >= OVERFLOW_N || si.si_code != SI_QUEUE) {
			odd++;
			continue;
		}
		twice += seen[k]++ != 0;
		in_order &= k > last;
		last = k;
	}
	snprintf(out, len, "%d of %d SIGRTMIN+2 back, %d twice, %d odd (%s)", n, OVERFLOW_N, twice, odd,
		 in_order ? "in order" : "not in order");
	return n != OVERFLOW_N || twice || odd || !in_order;
}

/* Until the second thread has named itself (a checkpoint's message names
 * it: under load it may not have run yet when the signals are queued). */
static void wait_named(void)
{
	while (!atomic_load(&named)) {
		struct timespec ts = { 0, 100000 };
		nanosleep(&ts, NULL);
	}
}

static bool overflow_thread;
static char thread_rt2[128];
static int thread_rt2_bad;

static void *second_main(void *arg)
{
	sigset_t set;

	(void)arg;
	pthread_setname_np(pthread_self(), "pend-thread");
	atomic_store(&named, 1);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGRTMIN + 1);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGRTMIN);
	for (int seen = 0;;) {
		while (atomic_load(&ask) == seen) {
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
		seen = atomic_load(&ask);
		/* its own only: the process's SIGUSR1 and SIGRTMIN are the
		 * main thread's to take (this one asks for them too, and must
		 * not find them: the main thread took them first) */
		thread_bad = take_all(&set, thread_line, sizeof(thread_line));
		if (overflow_thread)
			thread_rt2_bad = take_rt2(thread_rt2, sizeof(thread_rt2));
		atomic_store(&answered, seen);
	}
	return NULL;
}

/* The timer's expiry: once, as SI_TIMER with its value and id. */
static int check_timer(const char *label)
{
	struct timespec zero = { 0, 0 };
	sigset_t set;
	siginfo_t si;
	int n = 0, bad = 0;
	char line[128] = "";

	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 3);
	while (sigtimedwait(&set, &si, &zero) == SIGRTMIN + 3) {
		if (n++)
			continue;
		snprintf(line, sizeof(line), "%s/%d id %s overrun %d", si.si_code == SI_TIMER ? "SI_TIMER" : "other",
			 si.si_value.sival_int, si.si_timerid == (int)(intptr_t)the_timer ? "ok" : "other",
			 si.si_overrun);
		bad += si.si_code != SI_TIMER || si.si_value.sival_int != 301 ||
		       si.si_timerid != (int)(intptr_t)the_timer;
	}
	printf("%s timer: %s (%d)\n", label, line, n);
	return bad || n != 1;
}

static int check(const char *label)
{
	sigset_t set, pending;
	char line[256];
	int bad = 0;

	/* the second thread's signals are its own, not the main thread's */
	sigpending(&pending);
	if (sigismember(&pending, SIGUSR2) || sigismember(&pending, SIGRTMIN + 1)) {
		printf("%s: FAIL the second thread's signals are pending for the main thread\n", label);
		bad++;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGRTMIN);
	bad += take_all(&set, line, sizeof(line));
	printf("%s main: %s\n", label, line);
	bad += strcmp(line, "USR1/user RTMIN/101 RTMIN/102") != 0;

	int n = atomic_load(&ask) + 1;
	atomic_store(&ask, n);
	for (int i = 0; atomic_load(&answered) != n && i < 5000; i++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	if (atomic_load(&answered) != n) {
		printf("%s: FAIL the second thread did not answer\n", label);
		return 1;
	}
	printf("%s thread: %s\n", label, thread_line);
	bad += thread_bad + (strcmp(thread_line, "USR2/user RTMIN+1/201 RTMIN+1/202") != 0);

	/* nothing left */
	sigpending(&pending);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGRTMAX - 1 && sigismember(&pending, sig)) {
			printf("%s: FAIL signal %d still pending\n", label, sig);
			bad++;
		}
	printf(bad ? "%s: FAIL (%d)\n" : "%s: ok\n", label, bad);
	fflush(stdout);
	return bad != 0;
}

/* The signals of every round, sent by this process (orig_pid). */
static void queue_all(void)
{
	union sigval v;

	memset(&v, 0, sizeof(v));   /* sival_int fills half of it: the rest reads 0 */
	kill(getpid(), SIGUSR1);
	v.sival_int = 101;
	sigqueue(getpid(), SIGRTMIN, v);
	v.sival_int = 102;
	sigqueue(getpid(), SIGRTMIN, v);
	pthread_kill(second, SIGUSR2);
	v.sival_int = 201;
	pthread_sigqueue(second, SIGRTMIN + 1, v);
	v.sival_int = 202;
	pthread_sigqueue(second, SIGRTMIN + 1, v);
}

/* A keep-running checkpoint into dir: CRAC_CONTINUED or CRAC_RESTORED
 * (a failure prints the report and exits 1). */
static int checkpoint_into(const char *dir)
{
	struct crac_options o;
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = dir;
	o.flags |= CRAC_KEEP_RUNNING;
	crac_report *rep = NULL;
	int rc = crac_checkpoint_restore(&o, &rep);
	if (rc != CRAC_CONTINUED && rc != CRAC_RESTORED) {
		printf("checkpoint: FAIL rc=%d\n", rc);
		if (rep)
			crac_report_print(rep, stdout);
		exit(1);
	}
	if (crac_report_count(rep) > 0)
		crac_report_print(rep, stdout);
	crac_report_free(rep);
	return rc;
}

int main(int argc, char **argv)
{
	sigset_t set;
	bool cli = argc >= 2 && !strcmp(argv[1], "--cli");
	overflow_thread = argc == 3 && !strcmp(argv[1], "--overflow-thread");
	bool overflow = argc == 3 && (!strcmp(argv[1], "--overflow") || overflow_thread);
	bool timer = argc == 3 && !strcmp(argv[1], "--timer");
	bool again = argc == 4 && !strcmp(argv[1], "--again");
	const char *keep_dir = cli && argc == 3 ? argv[2] : NULL;

	if (argc != 2 && !(cli && argc == 3) && !overflow && !timer && !again) {
		fprintf(stderr, "usage: pending_signals DIR | --overflow DIR | --timer DIR | --again DIR DIR2 | "
			"--cli [DIR]\n");
		return 2;
	}
	if (again) {
		/* a restored process, checkpointed again with signals pending */
		setvbuf(stdout, NULL, _IOLBF, 0);
		orig_pid = getpid();
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigaddset(&set, SIGUSR2);
		sigaddset(&set, SIGRTMIN);
		sigaddset(&set, SIGRTMIN + 1);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		if (pthread_create(&second, NULL, second_main, NULL) != 0)
			return 2;
		wait_named();
		queue_all();
		if (checkpoint_into(argv[2]) == CRAC_CONTINUED)
			return check("original");
		if (check("restored"))
			return 1;
		orig_pid = getpid();   /* the sender this time */
		queue_all();
		return check(checkpoint_into(argv[3]) == CRAC_CONTINUED ? "restored, checkpointed again"
									 : "restored again");
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	orig_pid = getpid();
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGRTMIN);
	sigaddset(&set, SIGRTMIN + 1);
	sigaddset(&set, SIGRTMIN + 2);
	sigaddset(&set, SIGRTMIN + 3);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&second, NULL, second_main, NULL) != 0)
		return 2;
	wait_named();

	queue_all();
	union sigval v;
	memset(&v, 0, sizeof(v));

	const char *n_env = getenv("PENDING_OVERFLOW_N");
	if (n_env && atoi(n_env) > 0 && atoi(n_env) <= OVERFLOW_MAX)
		OVERFLOW_N = atoi(n_env);
	for (int i = 0; overflow && i < OVERFLOW_N; i++) {
		v.sival_int = i;
		if ((overflow_thread ? pthread_sigqueue(second, SIGRTMIN + 2, v) : sigqueue(getpid(), SIGRTMIN + 2, v)) != 0) {
			perror("sigqueue");
			return 2;
		}
	}

	if (timer) {
		/* one expiry, 1 ms from now, pending once it happened */
		struct sigevent sev;
		memset(&sev, 0, sizeof(sev));
		sev.sigev_notify = SIGEV_SIGNAL;
		sev.sigev_signo = SIGRTMIN + 3;
		sev.sigev_value.sival_int = 301;
		struct itimerspec its = { { 0, 0 }, { 0, 1000000 } };
		if (timer_create(CLOCK_MONOTONIC, &sev, &the_timer) < 0 || timer_settime(the_timer, 0, &its, NULL) < 0) {
			perror("timer");
			return 2;
		}
		sigset_t p;
		for (int i = 0; i < 5000; i++) {
			sigpending(&p);
			if (sigismember(&p, SIGRTMIN + 3))
				break;
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
	}

	if (cli) {
		/* the checkpoint is asked with SIGUSR1 to the parent; the
		 * original is ended by it, the restored copy runs on */
		char header[4096];
		snprintf(header, sizeof(header), "%s/header", keep_dir ? keep_dir : "");
		printf("ready\n");
		kill(getppid(), SIGUSR1);
		for (int i = 0; getpid() == orig_pid && !(keep_dir && access(header, F_OK) == 0) && i < 30000; i++) {
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
		if (getpid() == orig_pid && !keep_dir) {
			printf("original: FAIL not checkpointed\n");
			return 1;
		}
		int rc = check(getpid() == orig_pid ? "original" : "restored");
		/* the original: the round that wrote DIR still answers `crac
		 * run`; ending before it did would make that a failure */
		if (getpid() == orig_pid) {
			struct timespec ts = { 2, 0 };
			nanosleep(&ts, NULL);
		}
		return rc;
	}

	struct crac_options o;
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = argv[argc - 1];
	o.flags |= CRAC_KEEP_RUNNING;
	crac_report *rep = NULL;
	int rc = crac_checkpoint_restore(&o, &rep);
	if (overflow) {
		/* refused, and nothing lost: every instance back, once */
		if ((rc == CRAC_CONTINUED || rc == CRAC_RESTORED) && !n_env) {
			printf("aborted: FAIL the checkpoint took %d signals\n", OVERFLOW_N);
			return 1;
		}
		if (rc == CRAC_CONTINUED || rc == CRAC_RESTORED) {
			/* all carried: each once, in order, here and restored */
			const char *label = rc == CRAC_RESTORED ? "restored" : "original";
			crac_report_free(rep);
			char line[128];
			int bad = 0;
			if (overflow_thread) {
				bad = check(label);
				printf("%s carried thread: %s\n", label, thread_rt2);
				return bad || thread_rt2_bad;
			}
			bad = take_rt2(line, sizeof(line));
			printf("%s carried: %s\n", label, line);
			return check(label) || bad;
		}
		crac_report_print(rep, stdout);
		crac_report_free(rep);
		if (overflow_thread) {
			/* the second thread takes its own, when check() asks */
			int bad = check("aborted");
			printf("aborted thread: %s\n", thread_rt2);
			return bad || thread_rt2_bad;
		}
		char line[128];
		int bad = take_rt2(line, sizeof(line));
		printf("aborted: %s\n", line);
		if (bad)
			return 1;
		return check("aborted");
	}
	if (rc != CRAC_CONTINUED && rc != CRAC_RESTORED) {
		printf("checkpoint: FAIL rc=%d\n", rc);
		if (rep)
			crac_report_print(rep, stdout);
		return 1;
	}
	if (crac_report_count(rep) > 0)
		crac_report_print(rep, stdout);
	crac_report_free(rep);
	const char *label = rc == CRAC_RESTORED ? "restored" : "original";
	if (timer && check_timer(label))
		return 1;
	return check(label);
}
