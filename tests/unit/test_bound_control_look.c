/* SPDX-License-Identifier: MIT */
/*
 * test_bound_control_look.c - the client's look at a control directory
 * (core/control.c client_look_run) given up on must not write into the
 * caller's memory when its call returns late.
 *
 * The directory is the root of a FUSE mount whose server (a child here)
 * answers FUSE_INIT, then reads the GETATTR of the look's fstat and holds
 * it: the helper's open (O_PATH, of the mount's root: no request) returns,
 * its fstat waits; the lookup gives up after the grace (killed, the
 * helper stays in the kernel until the answer, which the kernel then
 * copies into the stat buffer the call was given). Then the caller's stack
 * below the test function, where the lookup's frames were, is filled with
 * a pattern, the server answers, and the pattern must be intact: the
 * late stat lands in the helper's own stack. Before, the fstat wrote into
 * the caller's struct (try_dir's frame): 144 bytes of the pattern changed.
 *
 * Needs root and /dev/fuse (else skipped).
 */
#include "harness.h"
#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char mnt[64];
static pid_t server = -1;
static int go_pipe[2] = { -1, -1 };   /* the test -> the server: answer the held GETATTR now */
static int held_pipe[2] = { -1, -1 }; /* the server -> the test: a GETATTR is held / answered */

/* One reply: header and body. */
static void reply(int fd, uint64_t unique, int error, const void *body, size_t len)
{
	char buf[256];
	struct fuse_out_header h = { .len = (uint32_t)(sizeof(h) + len), .error = error, .unique = unique };

	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), body, len);
	if (write(fd, buf, h.len) < 0) {
		/* (the connection gone: the test ends) */
	}
}

/* The server: INIT answered, the first GETATTR held until go_pipe says,
 * then answered (a directory of root's, mode 0700); anything else:
 * ENOSYS (FORGET and INTERRUPT: nothing). */
static void serve(int fd)
{
	static char buf[1 << 18];
	bool held = false;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < (ssize_t)sizeof(struct fuse_in_header))
			_exit(0);
		struct fuse_in_header *in = (struct fuse_in_header *)buf;
		if (in->opcode == FUSE_INIT) {
			struct fuse_init_in *ii = (struct fuse_init_in *)(in + 1);
			struct fuse_init_out o = { .major = FUSE_KERNEL_VERSION,
						   .minor = ii->minor < FUSE_KERNEL_MINOR_VERSION ? ii->minor
												: FUSE_KERNEL_MINOR_VERSION,
						   .max_readahead = ii->max_readahead, .max_write = 4096 };
			reply(fd, in->unique, 0, &o, sizeof(o));
		} else if (in->opcode == FUSE_GETATTR) {
			struct fuse_attr_out a = { .attr = { .ino = 1, .mode = S_IFDIR | 0700, .nlink = 2,
							     .blksize = 4096 } };
			if (!held) {
				held = true;
				char c = 'h';
				if (write(held_pipe[1], &c, 1) < 0 || read(go_pipe[0], &c, 1) != 1)
					_exit(0);
				reply(fd, in->unique, 0, &a, sizeof(a));
				c = 'a';
				if (write(held_pipe[1], &c, 1) < 0)
					_exit(0);
			} else {
				reply(fd, in->unique, 0, &a, sizeof(a));
			}
		} else if (in->opcode != FUSE_FORGET && in->opcode != FUSE_BATCH_FORGET &&
			   in->opcode != FUSE_INTERRUPT) {
			reply(fd, in->unique, -ENOSYS, NULL, 0);
		}
	}
}

/* Mounts the server's file system at mnt (a new directory). */
static void mount_server(void)
{
	if (geteuid() != 0)
		t_skip_all("mounting a FUSE file system needs root here");
	if (access("/dev/fuse", R_OK | W_OK) != 0)
		t_skip_all("no /dev/fuse");
	snprintf(mnt, sizeof(mnt), "/tmp/crac-look-%d", (int)getpid());
	if (mkdir(mnt, 0700) < 0 && errno != EEXIST)
		t_skip_all("cannot make the mount point");
	if (pipe(go_pipe) < 0 || pipe(held_pipe) < 0)
		t_skip_all("pipe");
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		t_skip_all("cannot open /dev/fuse");
	char opts[128];
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0", fd);
	if (mount("crac-late", mnt, "fuse", MS_NOSUID | MS_NODEV, opts) < 0) {
		char why[160];
		snprintf(why, sizeof(why), "cannot mount a FUSE file system at %s: %s", mnt, strerror(errno));
		rmdir(mnt);
		t_skip_all(why);
	}
	server = fork();
	if (server == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* (a test killed: its server too) */
		serve(fd);
		_exit(0);
	}
	close(fd);
}

static void unmount_server(void)
{
	if (server > 0) {
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
	}
	umount2(mnt, MNT_DETACH);
	rmdir(mnt);
}

/* The request whose lookup is given up on (its own frames, below the
 * caller's). */
static int __attribute__((noinline)) request(char *err, size_t errlen)
{
	const char *tokens[] = { "status", NULL };
	int status = -1;

	return crac__control_request((int)getpid(), tokens, NULL, &status, err, errlen);
}

#define AREA (64u << 10)

/* Fills AREA bytes of the stack below the caller (where request's frames
 * were) with a pattern, has the server answer the held GETATTR, waits for
 * the answer to be taken, and counts the bytes of the pattern changed. */
static long __attribute__((noinline)) late_answer_changes(void)
{
	volatile unsigned char area[AREA];
	char c;
	long changed = 0;

	for (size_t i = 0; i < AREA; i++)
		area[i] = 0x5a;
	if (write(go_pipe[1], "g", 1) != 1 || read(held_pipe[0], &c, 1) != 1)
		return -1;
	struct timespec ts = { 0, 200 * 1000000 };   /* (the helper's call returns, the kernel copies) */
	nanosleep(&ts, NULL);
	for (size_t i = 0; i < AREA; i++)
		changed += area[i] != 0x5a;
	return changed;
}

static void test_late_stat_writes_helper_stack(void)
{
	char err[1024], c;

	setenv("CRAC_CONTROL_DIR", mnt, 1);
	setenv("CRAC_TEST_SYNC_GRACE_MS", "300", 1);
	int rc = request(err, sizeof(err));
	CHECKF(rc == -ETIMEDOUT, "%d: %s", rc, err);
	CHECKF(strstr(err, "the fstat of ") && strstr(err, " did not return after "), "%s", err);
	/* the server holds the GETATTR (it said so before the give-up) */
	REQUIRE(read(held_pipe[0], &c, 1) == 1 && c == 'h');
	long changed = late_answer_changes();
	CHECKF(changed == 0, "%ld bytes of the caller's stack changed by the late stat", changed);
}

int main(void)
{
	mount_server();
	RUN(test_late_stat_writes_helper_stack);
	unmount_server();
	return t_done();
}
