/* SPDX-License-Identifier: MIT */
/*
 * thr_sigblock - helper for tests/cli/image_sigblock.bats: threads that
 * block SIGRTMAX-1, the signal the image engine stops threads with.
 *
 *   thr_sigblock DIR [--keep] [--linger] [--undumpable]
 *
 * Threads: "thr-sleeper" blocks SIGRTMAX-1 and naps 5 ms at a time;
 * "thr-waiter" blocks SIGRTMAX-1 and SIGUSR2 and waits on a condition
 * variable; "thr-plain" blocks nothing and naps; "thr-ppoll" blocks nothing
 * but waits in ppoll() with a mask that blocks SIGRTMAX-1 (only while it
 * waits: its own mask must stay empty); "thr-suspend" blocks SIGUSR1 and
 * takes it in sigsuspend() with a mask that blocks SIGRTMAX-1 (woken by the
 * main thread when it asks); "thr-toggler" blocks and
 * unblocks SIGRTMAX-1 all the time, busy in between, and checks after each
 * busy spell that its mask is what it set (a mismatch is a FAIL). Each reads its own SigBlk
 * (/proc/thread-self/status) when the main thread asks, once before the
 * checkpoint and once after it.
 *
 * The main thread checkpoints itself with the image engine into DIR
 * (--keep: CRAC_KEEP_RUNNING, the original goes on). It prints
 *     checkpoint: rc=R ms=M        (the original, with --keep)
 *     restored pid=P               (a restored instance)
 *     thread NAME: before=X after=Y
 * then "masks ok" if every thread's mask is exactly what it was (also after
 * a failed checkpoint, which exits 1 after "FAIL: ..."), else "FAIL: ...". With --linger a restored instance then waits for
 * SIGTERM (so that its /proc/PID/task/ can be read). --undumpable makes
 * the process not dumpable first (PR_SET_DUMPABLE 0).
 */
#include <crac.h>

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

struct th {
	const char *name;
	int block;               /* 0: nothing, 1: SIGRTMAX-1, 2: that and SIGUSR2 */
	int waits;               /* 1: on the condition variable, 2: in ppoll, else naps */
	pthread_t t;
	char mask[2][40];        /* SigBlk before / after */
	atomic_int done;         /* last round answered */
};

static struct th ths[] = {
	{ .name = "thr-sleeper", .block = 1 },
	{ .name = "thr-waiter", .block = 2, .waits = 1 },
	{ .name = "thr-plain", .block = 0 },
	{ .name = "thr-ppoll", .block = 0, .waits = 2 },
	{ .name = "thr-suspend", .block = 0, .waits = 3 },
};
#define NTH (int)(sizeof(ths) / sizeof(ths[0]))

static atomic_int toggler_bad, toggler_rounds;

static void *toggler(void *arg)
{
	sigset_t set, cur;

	(void)arg;
	prctl(PR_SET_NAME, "thr-toggler", 0, 0, 0);
	sigemptyset(&set);
	sigaddset(&set, SIGRTMAX - 1);
	for (unsigned n = 0;; n++) {
		int block = n & 1;
		pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
		for (volatile int k = 0; k < 20000; k++)
			;
		pthread_sigmask(SIG_BLOCK, NULL, &cur);
		if (sigismember(&cur, SIGRTMAX - 1) != block)
			atomic_fetch_add(&toggler_bad, 1);
		atomic_fetch_add(&toggler_rounds, 1);
	}
	return NULL;
}

static void on_usr1(int sig)
{
	(void)sig;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static atomic_int round_no;

static void nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void read_sigblk(char *out, size_t len)
{
	char line[256];
	FILE *f = fopen("/proc/thread-self/status", "r");

	snprintf(out, len, "?");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "SigBlk:", 7)) {
			char *p = line + 7;
			while (*p == ' ' || *p == '\t')
				p++;
			p[strcspn(p, "\n")] = 0;
			snprintf(out, len, "%.39s", p);
		}
	if (f)
		fclose(f);
}

/* Answers the main thread's request r (1: before, 2: after). */
static void answer(struct th *t)
{
	int r = atomic_load(&round_no);

	if (r > 0 && r <= 2 && atomic_load(&t->done) != r) {
		read_sigblk(t->mask[r - 1], sizeof(t->mask[0]));
		atomic_store(&t->done, r);
	}
}

static void *run(void *arg)
{
	struct th *t = arg;
	sigset_t set;

	prctl(PR_SET_NAME, t->name, 0, 0, 0);
	sigemptyset(&set);
	if (t->block >= 1)
		sigaddset(&set, SIGRTMAX - 1);
	if (t->block >= 2)
		sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (t->waits == 3) {
		/* the classic pattern: SIGUSR1 blocked, taken in sigsuspend() */
		sigset_t usr1, during;
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		pthread_sigmask(SIG_BLOCK, &usr1, NULL);
		sigemptyset(&during);
		sigaddset(&during, SIGRTMAX - 1);
		for (;;) {
			answer(t);
			sigsuspend(&during);
		}
	}
	if (t->waits == 2) {
		sigset_t during;
		sigemptyset(&during);
		sigaddset(&during, SIGRTMAX - 1);
		for (;;) {
			struct timespec ts = { 0, 20 * 1000000L };
			answer(t);
			ppoll(NULL, 0, &ts, &during);
		}
	}
	if (t->waits) {
		pthread_mutex_lock(&mu);
		for (;;) {
			answer(t);
			pthread_cond_wait(&cv, &mu);
		}
	}
	for (;;) {
		answer(t);
		nap(5);
	}
	return NULL;
}

/* Asks every thread for its mask (round r) and waits for the answers. */
static int ask(int r)
{
	atomic_store(&round_no, r);
	for (int k = 0; k < 500; k++) {
		int all = 1;
		pthread_mutex_lock(&mu);
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
		for (int i = 0; i < NTH; i++)
			if (ths[i].waits == 3)
				pthread_kill(ths[i].t, SIGUSR1);
		for (int i = 0; i < NTH; i++)
			all &= atomic_load(&ths[i].done) == r;
		if (all)
			return 0;
		nap(10);
	}
	printf("FAIL: the threads did not answer round %d\n", r);
	return -1;
}

int main(int argc, char **argv)
{
	int keep = 0, linger = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: thr_sigblock DIR [--keep] [--linger] [--undumpable]\n");
		return 2;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--keep"))
			keep = 1;
		else if (!strcmp(argv[i], "--linger"))
			linger = 1;
		else if (!strcmp(argv[i], "--undumpable"))
			prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	}
	pthread_t tog;
	if (pthread_create(&tog, NULL, toggler, NULL) != 0) {
		printf("FAIL: pthread_create\n");
		return 1;
	}
	for (int i = 0; i < NTH; i++)
		if (pthread_create(&ths[i].t, NULL, run, &ths[i]) != 0) {
			printf("FAIL: pthread_create\n");
			return 1;
		}
	if (ask(1) < 0)
		return 1;
	nap(20);   /* everyone back in its wait */

	struct crac_options o;
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = argv[1];
	if (keep)
		o.flags |= CRAC_KEEP_RUNNING;
	crac_report *rep = NULL;
	double t0 = now_ms();
	int rc = crac_checkpoint_restore(&o, &rep);
	double ms = now_ms() - t0;
	if (rc == CRAC_RESTORED)
		printf("restored pid=%d\n", (int)getpid());
	else
		printf("checkpoint: rc=%d ms=%.0f\n", rc, ms);
	if (rep) {
		crac_report_print(rep, stdout);
		crac_report_free(rep);
	}
	int failed = rc != CRAC_RESTORED && rc != CRAC_CONTINUED;
	if (failed)   /* the masks must be as they were all the same */
		printf("FAIL: crac_checkpoint_restore returned %d\n", rc);
	fflush(stdout);

	if (ask(2) < 0)
		return 1;
	int bad = 0;
	for (int i = 0; i < NTH; i++) {
		printf("thread %s: before=%s after=%s\n", ths[i].name, ths[i].mask[0], ths[i].mask[1]);
		if (strcmp(ths[i].mask[0], ths[i].mask[1]) != 0)
			bad = 1;
	}
	/* the toggler goes on after the checkpoint, and sees its own mask */
	int r0 = atomic_load(&toggler_rounds);
	for (int k = 0; k < 200 && atomic_load(&toggler_rounds) < r0 + 20; k++)
		nap(5);
	if (atomic_load(&toggler_rounds) < r0 + 20) {
		printf("FAIL: thr-toggler does not run\n");
		bad = 1;
	}
	if (atomic_load(&toggler_bad)) {
		printf("FAIL: thr-toggler found its mask changed %d times\n", atomic_load(&toggler_bad));
		bad = 1;
	}
	printf(bad ? "FAIL: a thread's signal mask changed\n" : "masks ok\n");
	fflush(stdout);
	if (bad || failed)
		return 1;
	if (linger && rc == CRAC_RESTORED)
		for (;;)
			pause();
	return 0;
}
