/* SPDX-License-Identifier: MIT */
/*
 * pending_misc - pending signals of unusual kinds across an image-engine
 * checkpoint (tests/cli/image_pending_signals.bats).
 *
 *   pending_misc child DIR
 *       a child that exited (SIGCHLD blocked, pending, CLD_EXITED): the
 *       image engine refuses a process with children, so the checkpoint
 *       fails; SIGCHLD must still be pending, once, with its siginfo:
 *       "child: refused, SIGCHLD back once (CLD_EXITED, the child's pid)"
 *   pending_misc misc DIR
 *       blocked and pending: SIGPIPE (a write to a pipe whose reader is
 *       gone: thread-directed), SIGUSR1 whose disposition is SIG_IGN, and
 *       SIGUSR2 whose handler has SA_RESETHAND. Checkpointed keep-running;
 *       in the original and in the restored process each must come once:
 *       "LABEL: PIPE once, USR1 (ignored, blocked) once, USR2 handled once,
 *       then SIG_DFL" (LABEL original or restored; else "LABEL: FAIL ...").
 *   pending_misc rtmax1 DIR
 *       SIGRTMAX-1 (the image engine's stop signal) blocked in every thread
 *       and pending: one to the process (value 5), one to the second
 *       thread (value 6, queued before the engine's stop signal, which the
 *       ptrace helper's unblocking delivers): each must come once, to its
 *       owner, original and restored: "LABEL: SIGRTMAX-1 once for the
 *       process (5), once for the thread (6)"
 *   pending_misc rtmax1-ign DIR
 *       the same with SIGRTMAX-1's disposition SIG_IGN (setting SIG_IGN
 *       discards what is pending: the engine puts it back after its own
 *       handler).
 *   pending_misc rtmax1-stopfail DIR
 *       the same (SIG_IGN or, with a third argument "dfl", SIG_DFL) where
 *       the stop fails: a third thread waits in vfork (not interruptible)
 *       for longer than the checkpoint's deadline. LABEL "stop failed".
 *   pending_misc seccomp DIR
 *       a seccomp filter fails ptrace (EPERM) for the process and the
 *       helpers it creates; SIGUSR1 (value 7) pending for the process,
 *       SIGRTMIN (values 8, 9) for the second thread, checkpointed twice
 *       (keep-running): the engine must see that its helper may not use
 *       ptrace, take the signals off the queues and give them back; after
 *       each, every one must come once, in order: "seccomp: two
 *       checkpoints; USR1/7 RTMIN/8 RTMIN/9 once each after each".
 *       seccomp-kill: the same where the filter kills whoever calls ptrace.
 *   pending_misc misc-fail DIR
 *       the same, where the checkpoint must fail (DIR on a full file
 *       system, ...): LABEL "failed", the report on stderr.
 */
#include <crac.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t usr2_runs;

static void on_usr2(int sig)
{
	(void)sig;
	usr2_runs++;
}

static int checkpoint(const char *dir, crac_report **rep)
{
	struct crac_options o;
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = dir;
	o.flags |= CRAC_KEEP_RUNNING;
	return crac_checkpoint_restore(&o, rep);
}

/* How many of sig are pending for the caller (taken out). */
static int take_count(int sig, siginfo_t *first)
{
	sigset_t one;
	siginfo_t si;
	struct timespec zero = { 0, 0 };
	int n = 0;

	sigemptyset(&one);
	sigaddset(&one, sig);
	while (sigtimedwait(&one, &si, &zero) == sig)
		if (n++ == 0 && first)
			*first = si;
	return n;
}

static int child_case(const char *dir)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	pid_t kid = fork();
	if (kid == 0)
		_exit(0);
	for (int i = 0; i < 5000; i++) {
		sigset_t p;
		sigpending(&p);
		if (sigismember(&p, SIGCHLD))
			break;
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
	}
	crac_report *rep = NULL;
	int rc = checkpoint(dir, &rep);
	crac_report_free(rep);
	if (rc == CRAC_CONTINUED || rc == CRAC_RESTORED) {
		printf("child: FAIL checkpointed with a child (rc %d)\n", rc);
		return 1;
	}
	siginfo_t si;
	int n = take_count(SIGCHLD, &si);
	waitpid(kid, NULL, 0);
	if (n != 1 || si.si_code != CLD_EXITED || si.si_pid != kid) {
		printf("child: FAIL SIGCHLD %d times (code %d pid %d, child %d)\n", n, n ? si.si_code : 0,
		       n ? si.si_pid : 0, kid);
		return 1;
	}
	printf("child: refused, SIGCHLD back once (CLD_EXITED, the child's pid)\n");
	return 0;
}

static int misc_case(const char *dir, bool must_fail)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGUSR1, SIG_IGN);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGUSR2, &sa, NULL);

	int p[2];
	if (pipe(p) < 0)
		return 2;
	close(p[0]);
	if (write(p[1], "x", 1) != -1 || errno != EPIPE)
		return 2;
	close(p[1]);
	kill(getpid(), SIGUSR1);
	kill(getpid(), SIGUSR2);

	crac_report *rep = NULL;
	int rc = checkpoint(dir, &rep);
	bool ok = rc == CRAC_CONTINUED || rc == CRAC_RESTORED;
	if (ok == must_fail) {
		printf("checkpoint: FAIL rc=%d\n", rc);
		crac_report_print(rep, stdout);
		return 1;
	}
	if (must_fail)
		crac_report_print(rep, stderr);
	crac_report_free(rep);
	const char *label = must_fail ? "failed" : rc == CRAC_RESTORED ? "restored" : "original";

	/* SIGUSR2 first: unblocked, its handler runs once and resets */
	sigset_t u2;
	sigemptyset(&u2);
	sigaddset(&u2, SIGUSR2);
	sigprocmask(SIG_UNBLOCK, &u2, NULL);
	sigprocmask(SIG_BLOCK, &u2, NULL);
	struct sigaction now;
	sigaction(SIGUSR2, NULL, &now);
	int n_pipe = take_count(SIGPIPE, NULL), n_usr1 = take_count(SIGUSR1, NULL), n_usr2 = take_count(SIGUSR2, NULL);
	if (n_pipe != 1 || n_usr1 != 1 || usr2_runs != 1 || n_usr2 != 0 || now.sa_handler != SIG_DFL) {
		printf("%s: FAIL PIPE %d, USR1 %d, USR2 handled %d and pending %d, USR2 now %s\n", label, n_pipe,
		       n_usr1, (int)usr2_runs, n_usr2, now.sa_handler == SIG_DFL ? "SIG_DFL" : "not SIG_DFL");
		return 1;
	}
	printf("%s: PIPE once, USR1 (ignored, blocked) once, USR2 handled once, then SIG_DFL\n", label);
	return 0;
}

/* rtmax1: the second thread, which blocks SIGRTMAX-1 (inherited) and
 * sleeps until told to take its own */
static atomic_int second_go, second_n, second_v;

static void *second_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&second_go)) {
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
	}
	siginfo_t si;
	atomic_store(&second_n, take_count(SIGRTMAX - 1, &si));
	atomic_store(&second_v, si.si_value.sival_int);
	return NULL;
}

/* rtmax1-stopfail: a thread in vfork for 3 s, which the stop signal cannot
 * interrupt (the child shares our memory: raw sleep and _exit only) */
static atomic_int in_vfork;

static void *vfork_main(void *arg)
{
	(void)arg;
	/* (SIGRTMAX-1 blocked, as in every thread: else the process's would
	 * be delivered here) */
	atomic_store(&in_vfork, 1);
	pid_t p = vfork();
	if (p == 0) {
		struct timespec s3 = { 3, 0 };
		nanosleep(&s3, NULL);
		_exit(0);
	}
	if (p > 0)
		waitpid(p, NULL, 0);
	return NULL;
}

static int rtmax1_case(const char *dir, const char *mode)
{
	sigset_t set;
	bool stopfail = !strncmp(mode, "stopfail", 8);
	pthread_t vt;

	if (!strcmp(mode, "ign") || !strcmp(mode, "stopfail"))
		signal(SIGRTMAX - 1, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGRTMAX - 1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	pthread_t t;
	if (pthread_create(&t, NULL, second_main, NULL) != 0)
		return 2;
	sigqueue(getpid(), SIGRTMAX - 1, (union sigval){ .sival_int = 5 });
	pthread_sigqueue(t, SIGRTMAX - 1, (union sigval){ .sival_int = 6 });

	if (stopfail) {
		if (pthread_create(&vt, NULL, vfork_main, NULL) != 0)
			return 2;
		while (!atomic_load(&in_vfork))
			sched_yield();
		struct timespec ms = { 0, 100000000 };
		nanosleep(&ms, NULL);   /* in vfork by now */
	}

	crac_report *rep = NULL;
	int rc;
	const char *label;
	if (stopfail) {
		struct crac_options o;
		crac_options_init(&o);
		o.engine = "image";
		o.image_dir = dir;
		o.flags |= CRAC_KEEP_RUNNING;
		o.deadline_ms = 1200;
		rc = crac_checkpoint_restore(&o, &rep);
		if (rc == CRAC_CONTINUED || rc == CRAC_RESTORED) {
			printf("checkpoint: FAIL it did not fail (rc=%d)\n", rc);
			return 1;
		}
		crac_report_print(rep, stderr);
		crac_report_free(rep);
		pthread_join(vt, NULL);
		label = "stop failed";
	} else {
		rc = checkpoint(dir, &rep);
		if (rc != CRAC_CONTINUED && rc != CRAC_RESTORED) {
			printf("checkpoint: FAIL rc=%d\n", rc);
			crac_report_print(rep, stdout);
			return 1;
		}
		if (crac_report_count(rep) > 0)
			crac_report_print(rep, stdout);
		crac_report_free(rep);
		label = rc == CRAC_RESTORED ? "restored" : "original";
	}
	struct sigaction now;
	sigaction(SIGRTMAX - 1, NULL, &now);
	if (now.sa_handler != (strcmp(mode, "ign") && strcmp(mode, "stopfail") ? SIG_DFL : SIG_IGN)) {
		printf("%s: FAIL SIGRTMAX-1's disposition not put back\n", label);
		return 1;
	}
	/* the process's first (by this thread: its own queue is empty), then
	 * the thread's own */
	siginfo_t si;
	int n = take_count(SIGRTMAX - 1, &si);
	atomic_store(&second_go, 1);
	pthread_join(t, NULL);
	if (n != 1 || si.si_value.sival_int != 5 || second_n != 1 || second_v != 6) {
		printf("%s: FAIL SIGRTMAX-1: the process's %d times (value %d), the thread's %d times (value %d)\n",
		       label, n, n ? si.si_value.sival_int : 0, (int)second_n, second_n ? (int)second_v : 0);
		return 1;
	}
	printf("%s: SIGRTMAX-1 once for the process (5), once for the thread (6)\n", label);
	return 0;
}

/* seccomp: the second thread takes its SIGRTMIN when asked */
static atomic_int sc_ask, sc_done;
static char sc_line[64];

static atomic_int sc_started;

static void *sc_thread(void *arg)
{
	(void)arg;
	atomic_store(&sc_started, 1);
	for (int seen = 0; seen < 2; seen++) {
		while (atomic_load(&sc_ask) == seen) {
			struct timespec ms = { 0, 1000000 };
			nanosleep(&ms, NULL);
		}
		sigset_t one;
		siginfo_t si;
		struct timespec zero = { 0, 0 };
		sigemptyset(&one);
		sigaddset(&one, SIGRTMIN);
		sc_line[0] = 0;
		while (sigtimedwait(&one, &si, &zero) == SIGRTMIN)
			snprintf(sc_line + strlen(sc_line), sizeof(sc_line) - strlen(sc_line), " RTMIN/%d",
				 si.si_value.sival_int);
		atomic_store(&sc_done, seen + 1);
	}
	return NULL;
}

static int seccomp_case(const char *dir, bool kill_it)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ptrace, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, kill_it ? SECCOMP_RET_KILL_PROCESS : SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGRTMIN);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		perror("seccomp");
		return 2;
	}
	pthread_t t;
	if (pthread_create(&t, NULL, sc_thread, NULL) != 0)
		return 2;
	/* (running with its own mask: a thread that has not started yet
	 * blocks every signal, and would have to be stopped with ptrace) */
	while (!atomic_load(&sc_started))
		sched_yield();
	char round[2][128];
	for (int r = 0; r < 2; r++) {
		sigqueue(getpid(), SIGUSR1, (union sigval){ .sival_int = 7 });
		pthread_sigqueue(t, SIGRTMIN, (union sigval){ .sival_int = 8 });
		pthread_sigqueue(t, SIGRTMIN, (union sigval){ .sival_int = 9 });
		crac_report *rep = NULL;
		int rc = checkpoint(dir, &rep);
		if (rc != CRAC_CONTINUED) {
			printf("seccomp: FAIL checkpoint %d rc=%d\n", r + 1, rc);
			crac_report_print(rep, stdout);
			return 1;
		}
		crac_report_free(rep);
		siginfo_t si;
		int n = take_count(SIGUSR1, &si);
		atomic_store(&sc_ask, r + 1);
		while (atomic_load(&sc_done) != r + 1)
			sched_yield();
		snprintf(round[r], sizeof(round[r]), "%s%s", n == 1 && si.si_value.sival_int == 7 ? "USR1/7" : "USR1?",
			 sc_line);
	}
	pthread_join(t, NULL);
	if (strcmp(round[0], "USR1/7 RTMIN/8 RTMIN/9") || strcmp(round[1], round[0])) {
		printf("seccomp: FAIL after the first: %s, after the second: %s\n", round[0], round[1]);
		return 1;
	}
	printf("seccomp: two checkpoints; USR1/7 RTMIN/8 RTMIN/9 once each after each\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "child"))
		return child_case(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "rtmax1"))
		return rtmax1_case(argv[2], "");
	if (argc == 3 && !strcmp(argv[1], "rtmax1-ign"))
		return rtmax1_case(argv[2], "ign");
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "rtmax1-stopfail"))
		return rtmax1_case(argv[2], argc == 4 ? "stopfail-dfl" : "stopfail");
	if (argc == 3 && !strcmp(argv[1], "seccomp"))
		return seccomp_case(argv[2], false);
	if (argc == 3 && !strcmp(argv[1], "seccomp-kill"))
		return seccomp_case(argv[2], true);
	if (argc == 3 && !strcmp(argv[1], "misc"))
		return misc_case(argv[2], false);
	if (argc == 3 && !strcmp(argv[1], "misc-fail"))
		return misc_case(argv[2], true);
	fprintf(stderr, "usage: pending_misc child|misc DIR\n");
	return 2;
}
