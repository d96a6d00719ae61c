/* SPDX-License-Identifier: MIT */
/*
 * test_pipe_scans.c - the pipe lookups of the safety checks and of the
 * capture scan /proc/self/fd O(1) times per pass, not once per pipe end
 * (crac_check with 2000 pipe read ends whose writer is closed took 23 s),
 * and still see an other end that appears between two passes.
 *
 * crac_obj_pipe_scans (objects/pipe.c) counts the scans.
 */
#include "harness.h"
#include "objects/objects.h"

#include <crac.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_PIPES 2000

static int n_problems(void)
{
	crac_report *rep = NULL;
	int n = crac_check(&rep);
	crac_report_free(rep);
	return n;
}

/* Does the report of crac_check name fd? */
static int names_fd(int fd)
{
	crac_report *rep = NULL;
	char *text = NULL, want[32];
	int hit;

	crac_check(&rep);
	if (!rep)
		return 0;
	crac_report_format(rep, &text);
	snprintf(want, sizeof(want), "fd %d: ", fd);
	hit = text && strstr(text, want);
	free(text);
	crac_report_free(rep);
	return hit;
}

static void raise_nofile(int want)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_max < (rlim_t)want)
		t_skip_all("RLIMIT_NOFILE hard limit too low for the test");
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* 2000 read ends whose writer is closed: carried (the reader sees end of
 * file), decided with a constant number of scans. */
static void test_check_scans_once(void)
{
	int first = -1, last = -1, before = n_problems();
	for (int i = 0; i < N_PIPES; i++) {
		int p[2];
		REQUIRE(pipe(p) == 0);
		close(p[1]);
		if (first < 0)
			first = p[0];
		last = p[0];
	}
	crac_obj_pipe_scans = 0;
	CHECK_EQ(n_problems(), before);
	CHECKF(crac_obj_pipe_scans <= 4, "%lu scans of /proc/self/fd for %d pipes", crac_obj_pipe_scans, N_PIPES);
	for (int fd = first; fd <= last; fd++)
		close(fd);
}

/* 2000 read ends whose writers a child holds (poll cannot prove a writer
 * absent): each is refused, with a bounded number of scans, not one scan
 * of every descriptor per end (quadratic: minutes for 10000). */
static void test_check_other_process_scans(void)
{
	int go[2], first = -1, last = -1;
	REQUIRE(pipe(go) == 0);
	int before = n_problems();
	static int w[N_PIPES];
	for (int i = 0; i < N_PIPES; i++) {
		int p[2];
		REQUIRE(pipe(p) == 0);
		w[i] = p[1];
		if (first < 0)
			first = p[0];
		last = p[0];
	}
	pid_t child = fork();
	REQUIRE(child >= 0);
	if (child == 0) {
		char c;
		close(go[1]);
		read(go[0], &c, 1);   /* holds every writer until the parent is done */
		_exit(0);
	}
	close(go[0]);
	for (int i = 0; i < N_PIPES; i++)
		close(w[i]);
	crac_obj_pipe_scans = 0;
	int n = n_problems();
	CHECKF(n >= before + N_PIPES, "%d problems, want %d more than %d", n, N_PIPES, before);
	CHECKF(crac_obj_pipe_scans <= 8, "%lu scans of /proc/self/fd for %d pipes", crac_obj_pipe_scans, N_PIPES);
	CHECKF(names_fd(last), "fd %d (writer in a child) not refused", last);
	close(go[1]);
	waitpid(child, NULL, 0);
	for (int fd = first; fd <= last; fd++)
		close(fd);
}

/* A read end whose writer is in a child is refused; once the process
 * opens a write end of it too (between two checks), it is carried. */
static void test_other_end_between_passes(void)
{
	int p[2], go[2];
	REQUIRE(pipe(p) == 0 && pipe(go) == 0);
	pid_t child = fork();
	REQUIRE(child >= 0);
	if (child == 0) {
		char c;
		close(p[0]);
		close(go[1]);
		read(go[0], &c, 1);   /* holds p[1] until the parent is done */
		_exit(0);
	}
	close(p[1]);
	close(go[0]);
	CHECKF(names_fd(p[0]), "fd %d (writer in a child) not refused", p[0]);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", p[0]);
	int w = open(path, O_WRONLY);
	REQUIRE(w >= 0);
	CHECKF(!names_fd(p[0]), "fd %d refused although fd %d writes to it", p[0], w);
	close(w);
	CHECKF(names_fd(p[0]), "fd %d refused no longer after its writer fd %d was closed", p[0], w);
	close(go[1]);
	close(p[0]);
	waitpid(child, NULL, 0);
}

/* Only the test's FIFOs are captured (not what the test runner left open). */
static int only_dir(void *arg, const struct crac_obj_fd *d)
{
	return strncmp(d->link, arg, strlen(arg)) ? CRAC_OBJ_OMIT : 0;
}

/* The capture: FIFOs this process only writes to (their reader is a
 * child) have no end to read here; each such negative answer comes from
 * the index of the pass, not from a scan of its own. */
static void test_capture_scans_once(void)
{
	enum { N = 300 };
	char dir[] = "/tmp/crac-pipe-scans-XXXXXX", path[N][64];
	int w[N];
	REQUIRE(mkdtemp(dir));
	for (int i = 0; i < N; i++) {
		snprintf(path[i], sizeof(path[i]), "%s/f%d", dir, i);
		REQUIRE(mkfifo(path[i], 0600) == 0);
	}
	pid_t child = fork();
	REQUIRE(child >= 0);
	if (child == 0) {
		for (int i = 0; i < N; i++)
			if (open(path[i], O_RDONLY | O_NONBLOCK) < 0)
				_exit(1);
		for (;;)
			pause();   /* holds the readers until killed */
	}
	int opened = 0;
	for (int i = 0; i < N; i++) {
		/* the child opens the readers: try until it has */
		for (int k = 0; k < 5000 && (w[i] = open(path[i], O_WRONLY | O_NONBLOCK)) < 0 && errno == ENXIO; k++)
			usleep(1000);
		opened += w[i] >= 0;
	}
	CHECK_EQ(opened, N);

	static struct crac_img_fd fds[CRAC_IMG_MAX_FDS];
	static const char *paths[CRAC_IMG_MAX_FDS];
	static char strings[1 << 20], scratch[1 << 20];
	static unsigned char blob[1 << 16];
	struct crac_obj_capture c = {
		.pages_fd = -1, .fds = fds, .paths = paths, .max_fds = CRAC_IMG_MAX_FDS,
		.strings = strings, .strings_cap = sizeof(strings), .blob = blob, .blob_cap = sizeof(blob),
		.scratch = scratch, .scratch_cap = sizeof(scratch), .decide = only_dir, .decide_arg = dir,
	};
	char why[1024];
	struct crac_img_buf b = { why, 0, sizeof(why) };
	crac_obj_pipe_scans = 0;
	int rc = crac_obj_capture_all(&c, &b);
	why[b.len < sizeof(why) ? b.len : sizeof(why) - 1] = 0;
	CHECKF(rc == 0, "capture: %d %s", rc, why);
	int fifos = 0;
	for (uint32_t i = 0; i < c.n_fds; i++)
		fifos += fds[i].kind == CRAC_OBJ_FIFO;
	CHECK_EQ(fifos, N);
	CHECKF(crac_obj_pipe_scans <= 4, "%lu scans of /proc/self/fd for %d FIFOs", crac_obj_pipe_scans, N);

	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	for (int i = 0; i < N; i++) {
		if (w[i] >= 0)
			close(w[i]);
		unlink(path[i]);
	}
	rmdir(dir);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	raise_nofile(N_PIPES + 64);
	RUN(test_check_scans_once);
	RUN(test_check_other_process_scans);
	RUN(test_other_end_between_passes);
	RUN(test_capture_scans_once);
	return t_done();
}
