/* SPDX-License-Identifier: MIT */
/*
 * image_probe - what a process restored by the image engine can rely on.
 *
 *   image_probe DIR CWD [--map FILE] [--dlopen LIB]
 *
 * Sets up process state (cwd CWD, umask 027, RLIMIT_NOFILE soft 123, an
 * alternate signal stack, handlers for SIGUSR1 (on the altstack), SIGUSR2
 * (SA_SIGINFO) and SIGALRM, SIGPIPE ignored, SIGUSR2 blocked, heap and
 * static memory with a known checksum; optionally a read-only private
 * mapping of FILE and a library LIB loaded with dlopen), prints
 *
 *   checkpoint generation=0
 *
 * and checkpoints itself with the image engine into DIR: the original
 * process exits 0 there. Arguments given at restore
 * (`crac restore DIR -- ARGS`):
 *
 *   pid=N       the pid the restored process must have (required)
 *   wait-usr2   wait (up to 30 s) for a SIGUSR2 sent by another process
 *               after printing "waiting for SIGUSR2"
 *   chain=DIR2  after the checks, checkpoint again into DIR2 (prints
 *               "checkpoint generation=N"; this restored process then exits
 *               0); restoring DIR2 runs the checks again, one generation on
 *
 * Every restored generation prints "restored generation=N", then one
 * "ok NAME" line per check (or "FAIL: NAME: why"), then either the chain
 * line or "done generation=N". Exit status 0 if every check passed, else 1.
 * Details that vary between runs go to stderr ("info: ..."), so that stdout
 * can be compared exactly.
 */
#include <crac.h>

#include "fnv.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define NOFILE_SOFT 123
#define UMASK 027

/* ---- state that must survive ------------------------------------------------ */

static int counter;                     /* incremented in every restored generation */
static uint64_t state[8192];            /* static memory with a pattern */
static char *heap_blocks[128];          /* heap memory with a pattern */
static uint64_t state_sum;
static pthread_t main_thread;
static int *errno_addr;
static char alt_stack[64 * 1024] __attribute__((aligned(16)));
static sigset_t mask_before;
static rlim_t nofile_max;
static char cwd_want[PATH_MAX];
static int64_t checkpoint_realtime;
static uint8_t prev_id[16];
static int pid_before;

static const char *map_path;
static const unsigned char *map_addr;
static size_t map_len;
static uint64_t map_sum;
static void *dl_handle;
static int (*dl_fn)(void);

/* ---- signal handlers ----------------------------------------------------------- */

static volatile sig_atomic_t usr1_count, usr1_onstack, alrm_count, usr2_count;
static volatile pid_t usr2_from;
static volatile int usr2_code;

static void on_usr1(int sig)
{
	char here;

	(void)sig;
	usr1_count++;
	usr1_onstack = &here >= alt_stack && &here < alt_stack + sizeof(alt_stack);
}

static void on_usr2(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	usr2_count++;
	usr2_from = si->si_pid;
	usr2_code = si->si_code;
}

static void on_alrm(int sig)
{
	(void)sig;
	alrm_count++;
}

/* ---- restore arguments (after_restore callback) ---------------------------------- */

static int want_pid;
static bool wait_usr2;
static char chain_dir[PATH_MAX];
static uint64_t ev_generation;
static int ev_outcome;
static int64_t ev_checkpoint_realtime;
static char bad_arg[256];

static int after_restore(const crac_event *ev, void *arg)
{
	(void)arg;
	want_pid = 0;
	wait_usr2 = false;
	chain_dir[0] = 0;
	bad_arg[0] = 0;
	ev_generation = ev->generation;
	ev_outcome = ev->outcome;
	ev_checkpoint_realtime = ev->checkpoint_realtime;
	for (int i = 0; i < ev->argc; i++) {
		const char *a = ev->argv[i];
		if (!strncmp(a, "pid=", 4))
			want_pid = atoi(a + 4);
		else if (!strcmp(a, "wait-usr2"))
			wait_usr2 = true;
		else if (!strncmp(a, "chain=", 6))
			snprintf(chain_dir, sizeof(chain_dir), "%s", a + 6);
		else
			snprintf(bad_arg, sizeof(bad_arg), "%s", a);
	}
	return 0;
}

/* ---- helpers ------------------------------------------------------------------- */

static int failures;

static void fail(const char *check, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(const char *check, const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: %s: ", check);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	failures++;
}

#define CHECK(name, cond, ...)                      \
	do {                                        \
		if (!(cond)) {                      \
			fail(name, __VA_ARGS__);    \
			return;                     \
		}                                   \
	} while (0)

static void ok(const char *name)
{
	printf("ok %s\n", name);
}

static int64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	if (clock_gettime(clk, &ts) < 0)
		return -1;
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}


static uint64_t memory_sum(void)
{
	uint64_t h = FNV_START;

	h = fnv(h, state, sizeof(state));
	for (int i = 0; i < 128; i++)
		h = fnv(h, heap_blocks[i], (size_t)(i + 1) * 64);
	return h;
}

/* Waits up to `ms` for *flag to become non-zero, in nanosleep (which a
 * handled signal interrupts). */
static void wait_flag(volatile sig_atomic_t *flag, int ms)
{
	for (int i = 0; i < ms / 5 && !*flag; i++) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* ---- the checks ------------------------------------------------------------------ */

static void check_pid(void)
{
	CHECK("pid", want_pid > 0, "no pid=N argument given at restore");
	CHECK("pid", getpid() == want_pid, "getpid() is %d, the restore command had %d", getpid(), want_pid);
	CHECK("pid", syscall(SYS_getpid) == want_pid, "the getpid system call says %ld", syscall(SYS_getpid));
	CHECK("pid", syscall(SYS_gettid) == want_pid, "the restored main thread has tid %ld, not the pid %d",
	      syscall(SYS_gettid), want_pid);
	CHECK("pid", counter > 1 || getpid() != pid_before, "pid %d did not change", getpid());
	ok("pid");
}

static void check_pthread_self(void)
{
	pthread_t self = pthread_self();

	CHECK("pthread_self", self == main_thread, "pthread_self() %#lx, before the checkpoint %#lx",
	      (unsigned long)self, (unsigned long)main_thread);
	CHECK("pthread_self", pthread_equal(self, main_thread), "pthread_equal says the threads differ");
	/* pthread_kill uses glibc's cached tid of the thread: it must be the new one. */
	int rc = pthread_kill(self, 0);
	CHECK("pthread_self", rc == 0, "pthread_kill(self, 0): %s", strerror(rc));
	ok("pthread_self");
}

static void check_errno(void)
{
	CHECK("errno", &errno == errno_addr, "&errno moved from %p to %p", (void *)errno_addr, (void *)&errno);
	errno = 0;
	CHECK("errno", close(-1) < 0 && errno == EBADF, "close(-1) set errno to %d, not EBADF", errno);
	errno = 0;
	CHECK("errno", open("/nonexistent/crac-probe", O_RDONLY) < 0 && errno == ENOENT,
	      "open of a missing file set errno to %d, not ENOENT", errno);
	ok("errno");
}

static void check_cpu(void)
{
	cpu_set_t orig, one;
	int cpu = sched_getcpu();
	int tried = 0;

	CHECK("sched_getcpu", cpu >= 0 && cpu < CPU_SETSIZE, "sched_getcpu() returned %d (%s)", cpu, strerror(errno));
	CHECK("sched_getcpu", sched_getaffinity(0, sizeof(orig), &orig) == 0, "sched_getaffinity: %s", strerror(errno));
	CHECK("sched_getcpu", CPU_ISSET(cpu, &orig), "sched_getcpu() returned %d, not an allowed CPU", cpu);
	/* Pinned to each allowed CPU in turn, sched_getcpu (rseq cpu_id, kept
	 * up to date by the kernel only if rseq was re-registered) must follow. */
	for (int c = 0; c < CPU_SETSIZE && tried < 8; c++) {
		if (!CPU_ISSET(c, &orig))
			continue;
		tried++;
		CPU_ZERO(&one);
		CPU_SET(c, &one);
		if (sched_setaffinity(0, sizeof(one), &one) < 0) {
			fail("sched_getcpu", "sched_setaffinity(cpu %d): %s", c, strerror(errno));
			sched_setaffinity(0, sizeof(orig), &orig);
			return;
		}
		int got = sched_getcpu();
		unsigned sys_cpu = ~0u;
		syscall(SYS_getcpu, &sys_cpu, NULL, NULL);
		if (got != c || (int)sys_cpu != c) {
			fail("sched_getcpu", "pinned to cpu %d: sched_getcpu() says %d, getcpu system call %d", c, got,
			     (int)sys_cpu);
			sched_setaffinity(0, sizeof(orig), &orig);
			return;
		}
	}
	sched_setaffinity(0, sizeof(orig), &orig);
	fprintf(stderr, "info: sched_getcpu followed %d allowed cpu(s)\n", tried);
	ok("sched_getcpu");
}

static void check_clock(void)
{
	int64_t m1 = now_ns(CLOCK_MONOTONIC), r = now_ns(CLOCK_REALTIME), m2 = now_ns(CLOCK_MONOTONIC);
	struct timeval tv;

	CHECK("clock", m1 > 0 && m2 >= m1, "CLOCK_MONOTONIC read %lld then %lld", (long long)m1, (long long)m2);
	CHECK("clock", r >= checkpoint_realtime, "CLOCK_REALTIME %lld is before the checkpoint's %lld",
	      (long long)r, (long long)checkpoint_realtime);
	CHECK("clock", ev_checkpoint_realtime > 0 && ev_checkpoint_realtime >= checkpoint_realtime &&
	      ev_checkpoint_realtime <= r, "event checkpoint_realtime %lld out of [%lld, %lld]",
	      (long long)ev_checkpoint_realtime, (long long)checkpoint_realtime, (long long)r);
	CHECK("clock", gettimeofday(&tv, NULL) == 0 && tv.tv_sec >= checkpoint_realtime / 1000000000LL,
	      "gettimeofday went back");
	CHECK("clock", now_ns(CLOCK_BOOTTIME) > 0 && now_ns(CLOCK_MONOTONIC_COARSE) > 0,
	      "CLOCK_BOOTTIME / CLOCK_MONOTONIC_COARSE failed");
	ok("clock");
}

static void check_memory(void)
{
	uint64_t now = memory_sum();

	CHECK("memory", now == state_sum, "checksum %016llx, before the checkpoint %016llx",
	      (unsigned long long)now, (unsigned long long)state_sum);
	ok("memory");
}

static void check_malloc(void)
{
	enum { N = 4000 };
	static char *small[N];

	for (int i = 0; i < N; i++) {
		size_t n = (size_t)(i % 500) + 1;
		small[i] = malloc(n);
		CHECK("malloc", small[i], "small malloc(%zu) failed", n);
		memset(small[i], i & 0xff, n);
	}
	for (int i = 0; i < N; i++) {
		size_t n = (size_t)(i % 500) + 1;
		CHECK("malloc", (unsigned char)small[i][0] == (i & 0xff) &&
		      (unsigned char)small[i][n - 1] == (i & 0xff), "small block %d was overwritten", i);
	}
	for (int i = 0; i < N; i++)
		free(small[i]);

	size_t big = 64u << 20;   /* above the mmap threshold: an mmap'd chunk */
	unsigned char *p = malloc(big);
	CHECK("malloc", p, "malloc(64 MiB) failed");
	for (size_t off = 0; off < big; off += 4096)
		p[off] = (unsigned char)(off >> 12);
	for (size_t off = 0; off < big; off += 4096)
		CHECK("malloc", p[off] == (unsigned char)(off >> 12), "64 MiB block: page at +%zu lost its byte", off);
	free(p);

	char *z = calloc(1, 1u << 20);
	CHECK("malloc", z, "calloc(1 MiB) failed");
	for (size_t i = 0; i < (1u << 20); i += 512)
		CHECK("malloc", z[i] == 0, "calloc memory not zero at +%zu", i);
	free(z);

	/* A block allocated before the checkpoint grows and keeps its content. */
	char *g = malloc(1000);
	CHECK("malloc", g, "malloc(1000) failed");
	memset(g, 'g', 1000);
	char *r = realloc(g, 1u << 21);
	CHECK("malloc", r && r[0] == 'g' && r[999] == 'g', "realloc lost the content");
	free(r);
	ok("malloc");
}

/* SIGHUP and SIGTERM are never set by the probe: what they were at the
 * checkpoint (the default, or ignored by whoever started it) must be what
 * the restored process has, whatever the restoring shell ignores. */
static struct sigaction hup_was, term_was;

static bool same_disposition(int sig, const struct sigaction *was)
{
	struct sigaction sa;

	if (sigaction(sig, NULL, &sa) < 0 || sa.sa_handler != was->sa_handler || sa.sa_flags != was->sa_flags)
		return false;
	for (int s = 1; s < SIGRTMAX; s++)   /* (the kernel's 64 bits: the rest of sigset_t is not filled) */
		if (sigismember(&sa.sa_mask, s) != sigismember(&was->sa_mask, s))
			return false;
	return true;
}

static void check_sigaction(void)
{
	struct sigaction sa;

	CHECK("sigaction", same_disposition(SIGHUP, &hup_was), "SIGHUP (never set) not as at the checkpoint");
	CHECK("sigaction", same_disposition(SIGTERM, &term_was), "SIGTERM (never set) not as at the checkpoint");

	CHECK("sigaction", sigaction(SIGUSR1, NULL, &sa) == 0 && sa.sa_handler == on_usr1,
	      "SIGUSR1 handler is %p, not %p", (void *)sa.sa_handler, (void *)on_usr1);
	CHECK("sigaction", (sa.sa_flags & (SA_ONSTACK | SA_RESTART)) == (SA_ONSTACK | SA_RESTART) &&
	      !(sa.sa_flags & SA_SIGINFO), "SIGUSR1 flags %#x", (unsigned)sa.sa_flags);
	CHECK("sigaction", sigismember(&sa.sa_mask, SIGTERM) == 1 && sigismember(&sa.sa_mask, SIGHUP) == 0,
	      "SIGUSR1 handler mask not as installed");
	CHECK("sigaction", sigaction(SIGUSR2, NULL, &sa) == 0 && (sa.sa_flags & SA_SIGINFO) &&
	      sa.sa_sigaction == on_usr2, "SIGUSR2 SA_SIGINFO handler lost");
	CHECK("sigaction", sigaction(SIGALRM, NULL, &sa) == 0 && sa.sa_handler == on_alrm, "SIGALRM handler lost");
	CHECK("sigaction", sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN, "SIGPIPE no longer ignored");
	CHECK("sigaction", sigaction(SIGWINCH, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL,
	      "SIGWINCH not at its default");
	ok("sigaction");
}

static void check_sigmask(void)
{
	sigset_t now, pending;

	CHECK("sigmask", pthread_sigmask(SIG_BLOCK, NULL, &now) == 0, "pthread_sigmask: %s", strerror(errno));
	CHECK("sigmask", sigismember(&now, SIGUSR2) == 1, "SIGUSR2 no longer blocked");
	for (int s = 1; s < SIGRTMIN; s++)
		CHECK("sigmask", sigismember(&now, s) == sigismember(&mask_before, s),
		      "signal %d (%s) is %s now", s, strsignal(s), sigismember(&now, s) ? "blocked" : "unblocked");
	/* The kernel applies it: a SIGUSR2 to ourselves stays pending. */
	usr2_count = 0;
	kill(getpid(), SIGUSR2);
	CHECK("sigmask", usr2_count == 0, "blocked SIGUSR2 was delivered");
	CHECK("sigmask", sigpending(&pending) == 0 && sigismember(&pending, SIGUSR2) == 1, "SIGUSR2 not pending");
	sigset_t just;
	siginfo_t si;
	struct timespec zero = { 0, 0 };
	sigemptyset(&just);
	sigaddset(&just, SIGUSR2);
	CHECK("sigmask", sigtimedwait(&just, &si, &zero) == SIGUSR2 && si.si_pid == getpid(),
	      "sigtimedwait did not take the pending SIGUSR2");
	ok("sigmask");
}

static void check_sigaltstack(void)
{
	stack_t ss;

	CHECK("sigaltstack", sigaltstack(NULL, &ss) == 0, "sigaltstack: %s", strerror(errno));
	CHECK("sigaltstack", ss.ss_sp == alt_stack && ss.ss_size == sizeof(alt_stack) && ss.ss_flags == 0,
	      "alternate stack is %p+%zu flags %#x, installed %p+%zu", ss.ss_sp, ss.ss_size, (unsigned)ss.ss_flags,
	      (void *)alt_stack, sizeof(alt_stack));
	ok("sigaltstack");
}

static void check_raise(void)
{
	usr1_count = usr1_onstack = 0;
	CHECK("raise", raise(SIGUSR1) == 0, "raise: %s", strerror(errno));
	CHECK("raise", usr1_count == 1, "SIGUSR1 handler ran %d times", (int)usr1_count);
	CHECK("raise", usr1_onstack, "SIGUSR1 handler (SA_ONSTACK) did not run on the alternate stack");
	ok("raise");
}

static void check_alarm(void)
{
	struct itimerval it = { { 0, 0 }, { 0, 50 * 1000 } };

	alrm_count = 0;
	CHECK("setitimer", setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer: %s", strerror(errno));
	wait_flag(&alrm_count, 5000);
	CHECK("setitimer", alrm_count == 1, "SIGALRM from a 50 ms ITIMER_REAL: handler ran %d times in 5 s",
	      (int)alrm_count);

	alrm_count = 0;
	alarm(1);
	wait_flag(&alrm_count, 5000);
	CHECK("setitimer", alrm_count == 1, "SIGALRM from alarm(1): handler ran %d times in 5 s", (int)alrm_count);
	ok("setitimer");
}

static void check_kill(void)
{
	sigset_t m;

	usr2_count = 0;
	alrm_count = 0;
	printf("waiting for SIGUSR2\n");
	fflush(stdout);
	alarm(30);   /* watchdog */
	pthread_sigmask(SIG_BLOCK, NULL, &m);
	sigdelset(&m, SIGUSR2);
	sigdelset(&m, SIGALRM);
	while (!usr2_count && !alrm_count)
		sigsuspend(&m);
	alarm(0);
	CHECK("kill", usr2_count == 1, "no SIGUSR2 from another process within 30 s");
	CHECK("kill", usr2_code == SI_USER && usr2_from > 0 && usr2_from != getpid(),
	      "SIGUSR2 came with si_code %d from pid %d", usr2_code, (int)usr2_from);
	fprintf(stderr, "info: SIGUSR2 from pid %d\n", (int)usr2_from);
	ok("kill");
}

static void check_cwd_umask(void)
{
	char cwd[PATH_MAX];
	struct stat st;

	CHECK("cwd", getcwd(cwd, sizeof(cwd)), "getcwd: %s", strerror(errno));
	CHECK("cwd", !strcmp(cwd, cwd_want), "cwd is %s, not %s", cwd, cwd_want);
	ok("cwd");

	mode_t old = umask(0);
	umask(old);
	CHECK("umask", old == UMASK, "umask is %03o, not %03o", (unsigned)old, UMASK);
	int fd = open("umask-probe", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	CHECK("umask", fd >= 0, "creating a file in the cwd: %s", strerror(errno));
	CHECK("umask", fstat(fd, &st) == 0 && (st.st_mode & 0777) == (0666 & ~UMASK),
	      "a file created 0666 has mode %03o", (unsigned)(st.st_mode & 0777));
	close(fd);
	unlink("umask-probe");
	ok("umask");
}

static void check_rlimit(void)
{
	struct rlimit rl;

	CHECK("rlimit", getrlimit(RLIMIT_NOFILE, &rl) == 0, "getrlimit: %s", strerror(errno));
	CHECK("rlimit", rl.rlim_cur == NOFILE_SOFT && rl.rlim_max == nofile_max,
	      "RLIMIT_NOFILE is %llu/%llu, set %d/%llu before the checkpoint", (unsigned long long)rl.rlim_cur,
	      (unsigned long long)rl.rlim_max, NOFILE_SOFT, (unsigned long long)nofile_max);
	ok("rlimit");
}

static void *thread_body(void *arg)
{
	int *out = arg;

	errno = 0;
	close(-1);
	out[0] = errno;
	out[1] = sched_getcpu();
	out[2] = (int)syscall(SYS_gettid);
	char *p = malloc(100000);
	out[3] = p != NULL;
	free(p);
	return arg;
}

static void check_thread(void)
{
	int res[4] = { 0, -2, 0, 0 };
	pthread_t t;
	void *ret = NULL;

	errno = 1234;
	int rc = pthread_create(&t, NULL, thread_body, res);
	CHECK("pthread_create", rc == 0, "pthread_create: %s", strerror(rc));
	rc = pthread_join(t, &ret);
	CHECK("pthread_create", rc == 0 && ret == res, "pthread_join: %s", strerror(rc));
	CHECK("pthread_create", errno == 1234, "a thread's errno changed the main thread's");
	CHECK("pthread_create", res[0] == EBADF && res[1] >= 0 && res[2] > 0 && res[2] != getpid() && res[3],
	      "new thread: errno %d, cpu %d, tid %d, malloc %d", res[0], res[1], res[2], res[3]);
	ok("pthread_create");
}

static void check_generation(void)
{
	uint8_t id[16];
	uint64_t gen = ~0ull;

	CHECK("generation", ev_outcome == CRAC_RESTORED, "after_restore saw outcome %d", ev_outcome);
	CHECK("generation", crac_instance_id(id, &gen) == 0, "crac_instance_id failed");
	CHECK("generation", gen == (uint64_t)counter && ev_generation == (uint64_t)counter,
	      "crac_instance_id generation %llu, event generation %llu, counter %d", (unsigned long long)gen,
	      (unsigned long long)ev_generation, counter);
	CHECK("generation", memcmp(id, prev_id, 16) != 0, "instance id did not change");
	memcpy(prev_id, id, 16);
	ok("generation");
}

static void check_map(void)
{
	CHECK("mapped file", fnv(FNV_START, map_addr, map_len) == map_sum,
	      "the mapping of %s reads differently", map_path);
	ok("mapped file");
}

static void check_dlopen(void)
{
	CHECK("dlopen", dl_fn() == 42, "the dlopen'ed function returned something else");
	int (*again)(void) = (int (*)(void))dlsym(dl_handle, "probe_answer");
	CHECK("dlopen", again == dl_fn, "dlsym after restore: %s", again ? "another address" : dlerror());
	ok("dlopen");
}

static void run_checks(void)
{
	printf("restored generation=%d\n", counter);
	if (bad_arg[0])
		fail("arguments", "unknown restore argument \"%s\"", bad_arg);
	check_pid();
	check_pthread_self();
	check_errno();
	check_memory();
	check_cpu();
	check_clock();
	check_malloc();
	check_sigaction();
	check_sigmask();
	check_sigaltstack();
	check_raise();
	check_alarm();
	if (wait_usr2)
		check_kill();
	check_cwd_umask();
	check_rlimit();
	check_thread();
	check_generation();
	if (map_addr)
		check_map();
	if (dl_handle)
		check_dlopen();
}

/* ---- setup ------------------------------------------------------------------------ */

static int setup(const char *cwd)
{
	struct sigaction sa;
	stack_t ss = { .ss_sp = alt_stack, .ss_size = sizeof(alt_stack), .ss_flags = 0 };
	struct rlimit rl;
	sigset_t block;

	if (chdir(cwd) < 0 || !getcwd(cwd_want, sizeof(cwd_want))) {
		fprintf(stderr, "chdir %s: %s\n", cwd, strerror(errno));
		return -1;
	}
	umask(UMASK);
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	nofile_max = rl.rlim_max;
	rl.rlim_cur = NOFILE_SOFT;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		perror("setrlimit");
		return -1;
	}
	sigaction(SIGHUP, NULL, &hup_was);
	sigaction(SIGTERM, NULL, &term_was);
	if (sigaltstack(&ss, NULL) < 0) {
		perror("sigaltstack");
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaction(SIGUSR1, &sa, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_usr2;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alrm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGWINCH, SIG_DFL);

	/* The handler works here, before the checkpoint. */
	raise(SIGUSR1);
	if (usr1_count != 1 || !usr1_onstack) {
		fprintf(stderr, "SIGUSR1 handler did not run on the altstack before the checkpoint\n");
		return -1;
	}

	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	pthread_sigmask(SIG_BLOCK, NULL, &mask_before);

	for (size_t i = 0; i < sizeof(state) / sizeof(state[0]); i++)
		state[i] = i * 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 128; i++) {
		heap_blocks[i] = malloc((size_t)(i + 1) * 64);
		if (!heap_blocks[i])
			return -1;
		memset(heap_blocks[i], 'A' + i % 26, (size_t)(i + 1) * 64);
	}
	state_sum = memory_sum();
	main_thread = pthread_self();
	errno_addr = &errno;
	pid_before = getpid();
	crac_instance_id(prev_id, NULL);

	struct crac_resource_def def = { .name = "probe", .after_restore = after_restore };
	if (crac_register(NULL, &def, NULL) < 0)
		return -1;
	return 0;
}

static int map_file(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0) {
		fprintf(stderr, "%s: %s\n", path, fd < 0 ? strerror(errno) : "empty or unreadable");
		return -1;
	}
	map_len = (size_t)st.st_size;
	void *p = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);   /* the image keeps no descriptors: only the mapping stays */
	if (p == MAP_FAILED) {
		perror("mmap");
		return -1;
	}
	map_addr = p;
	map_path = path;
	map_sum = fnv(FNV_START, map_addr, map_len);
	return 0;
}

static int load_lib(const char *path)
{
	dl_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl_handle) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return -1;
	}
	dl_fn = (int (*)(void))dlsym(dl_handle, "probe_answer");
	if (!dl_fn || dl_fn() != 42) {
		fprintf(stderr, "%s: no probe_answer() returning 42\n", path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char next_dir[PATH_MAX];
	const char *dir;

	if (argc < 3) {
		fprintf(stderr, "usage: image_probe DIR CWD [--map FILE] [--dlopen LIB]\n");
		return 2;
	}
	dir = argv[1];
	if (setup(argv[2]) < 0)
		return 1;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--map") && i + 1 < argc) {
			if (map_file(argv[++i]) < 0)
				return 1;
		} else if (!strcmp(argv[i], "--dlopen") && i + 1 < argc) {
			if (load_lib(argv[++i]) < 0)
				return 1;
		} else {
			fprintf(stderr, "image_probe: unexpected \"%s\"\n", argv[i]);
			return 2;
		}
	}

	for (;;) {
		struct crac_options o;
		crac_report *rep = NULL;

		crac_options_init(&o);
		o.engine = "image";
		o.image_dir = dir;
		printf("checkpoint generation=%d\n", counter);
		checkpoint_realtime = now_ns(CLOCK_REALTIME);
		int rc = crac_checkpoint_restore(&o, &rep);
		if (rc != CRAC_RESTORED) {
			printf("FAIL: crac_checkpoint_restore returned %d\n", rc);
			if (rep)
				crac_report_print(rep, stdout);
			return 1;
		}
		if (rep) {
			/* after_restore problems (e.g. a limit not restored) are failures here */
			crac_report_print(rep, stdout);
			crac_report_free(rep);
			failures++;
		}
		counter++;
		run_checks();
		if (failures) {
			printf("failed generation=%d: %d check(s)\n", counter, failures);
			return 1;
		}
		if (!chain_dir[0])
			break;
		snprintf(next_dir, sizeof(next_dir), "%s", chain_dir);
		dir = next_dir;
	}
	printf("done generation=%d\n", counter);
	return 0;
}
