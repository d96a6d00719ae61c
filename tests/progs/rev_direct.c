/* SPDX-License-Identifier: MIT */
/*
 * rev_direct - review of the O_DIRECT helper of the image writer
 * (image_write.c dworker_*) and of the fsync helpers left running after
 * the threads are released (image_capture.c): what the program sees.
 *
 *   rev_direct DIR MIB [ok|fail]
 *       MIB MiB of anonymous memory, every page written with its own
 *       pattern; a second thread loops on waitpid(-1, __WALL | WNOHANG)
 *       from before the checkpoint until after it (the program has no
 *       child: anything it reaps is one of crac's helpers), and SIGCHLD is
 *       counted. One keep-running checkpoint into DIR: "ok" expects it to
 *       succeed, "fail" to fail (prints its report). Then, in the process
 *       that goes on: every byte verified, the children of every thread
 *       listed (/proc/self/task/T/children: none may be left, zombie or
 *       not), "sigchld N", "reaped N" (pids the waiting thread got) and
 *       "continued". Prints "ready PID" before the checkpoint, on stdout,
 *       unbuffered, and waits for a line on stdin first if
 *       REV_WAIT_STDIN=1.
 *   crac restore DIR: verifies every byte: "restored ok".
 * Prints "FAIL: ..." and exits 1 on any difference.
 */
#include <crac.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096ul

static uint64_t *mem;
static size_t pages;
static volatile sig_atomic_t sigchld;
static volatile int stop_waiter;
static int reaped, reaped_pid[16];

static uint64_t word(size_t p, size_t i)
{
	return (p * 0x9e3779b97f4a7c15ull) ^ (i + 1);
}

static int verify(void)
{
	for (size_t p = 0; p < pages; p++)
		for (size_t i = 0; i < PG / 8; i += 61)
			if (mem[p * PG / 8 + i] != word(p, i)) {
				printf("FAIL: page %zu word %zu is %#llx\n", p, i,
				       (unsigned long long)mem[p * PG / 8 + i]);
				return 1;
			}
	return 0;
}

static void on_sigchld(int sig)
{
	(void)sig;
	sigchld++;
}

/* waitpid(-1, __WALL) all along: the program has no child of its own */
static void *waiter(void *arg)
{
	(void)arg;
	while (!stop_waiter) {
		int st;
		pid_t p = waitpid(-1, &st, __WALL | WNOHANG);
		if (p > 0 && reaped < 16)
			reaped_pid[reaped++] = p;
		usleep(200);
	}
	return NULL;
}

/* the children of every thread of ours: none may be left */
static int children_left(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], buf[256];
		snprintf(path, sizeof(path), "/proc/self/task/%s/children", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t got = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[got] = 0;
		if (got && strspn(buf, " \n") != got) {
			printf("children of task %s: %s\n", e->d_name, buf);
			n++;
		}
	}
	closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: rev_direct DIR MIB [ok|fail]\n");
		return 2;
	}
	const char *expect = argc > 3 ? argv[3] : "ok";
	setvbuf(stdout, NULL, _IONBF, 0);
	pages = strtoul(argv[2], NULL, 10) * 256;
	mem = mmap(NULL, pages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 1;
	for (size_t p = 0; p < pages; p++)
		for (size_t i = 0; i < PG / 8; i++)
			mem[p * PG / 8 + i] = word(p, i);
	struct sigaction sa = { .sa_handler = on_sigchld };
	sigaction(SIGCHLD, &sa, NULL);
	pthread_t t;
	if (pthread_create(&t, NULL, waiter, NULL) != 0)
		return 1;
	printf("ready %d\n", (int)getpid());
	if (getenv("REV_WAIT_STDIN") && !strcmp(getenv("REV_WAIT_STDIN"), "1")) {
		char line[16];
		if (!fgets(line, sizeof(line), stdin))
			return 1;
	}

	struct crac_options o;
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = argv[1];
	o.flags |= CRAC_KEEP_RUNNING;
	crac_report *rep = NULL;
	int rc = crac_checkpoint_restore(&o, &rep);
	if (rc == CRAC_RESTORED) {
		int bad = verify();
		if (!bad)
			printf("restored ok\n");
		return bad;
	}
	if ((rc == CRAC_CONTINUED) != !strcmp(expect, "ok")) {
		printf("FAIL: checkpoint returned %d, expected %s\n", rc, expect);
		if (rep)
			crac_report_print(rep, stdout);
		return 1;
	}
	if (rc != CRAC_CONTINUED) {
		printf("failed as expected:\n");
		if (rep)
			crac_report_print(rep, stdout);
	}
	crac_report_free(rep);
	/* the fsync helpers may still run a little after the release:
	 * give them 300 ms, as a program would run on meanwhile */
	usleep(300 * 1000);
	stop_waiter = 1;
	pthread_join(t, NULL);
	if (verify())
		return 1;
	int left = children_left();
	printf("children %d\n", left);
	printf("sigchld %d\n", (int)sigchld);
	printf("reaped %d", reaped);
	for (int i = 0; i < reaped; i++)
		printf(" %d", reaped_pid[i]);
	printf("\ncontinued\n");
	return 0;
}
