/* SPDX-License-Identifier: MIT */
/*
 * own_rseq DIR [thread] - registers an rseq area of its own (as tcmalloc
 * does when glibc does not: run with GLIBC_TUNABLES=glibc.pthread.rseq=0),
 * in the main thread or, with "thread", in a second thread that waits
 * while the main thread checkpoints into DIR. The image engine can
 * register only glibc's area again at restore (it cannot learn where a
 * thread's own area is): a process restored without it would run its
 * rseq critical sections unprotected and read a frozen cpu_id. So the
 * checkpoint must be refused ("FAIL: ..." and the report, status 1, from
 * image_ckpt.h); restored, it prints "restored registered" or "restored
 * LOST" (the area was lost). With "thread", the second thread first
 * prints "holder TID". Exits 77 when glibc holds the rseq
 * registration (no room for one of its own).
 */
#include "image_ckpt.h"

#include <errno.h>
#include <linux/rseq.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SIG 0x53053053

static struct rseq area[2] __attribute__((aligned(32)));
static volatile int registered = -1;   /* the thread's answer: 0 ok, else errno */
static volatile int done;

static int reg(struct rseq *rs)
{
	return syscall(SYS_rseq, rs, sizeof(*rs), 0, SIG) == 0 ? 0 : errno;
}

static void *holder(void *arg)
{
	(void)arg;
	printf("holder %ld\n", (long)syscall(SYS_gettid));
	fflush(stdout);
	registered = reg(&area[1]);
	while (!done)
		usleep(1000);
	/* restored: is the area still ours? (EBUSY: registered) */
	int again = reg(&area[1]);
	printf("restored %s\n", again == EBUSY ? "registered" : "LOST");
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: own_rseq DIR [thread]\n");
		return 2;
	}
	bool thread = argc > 2 && !strcmp(argv[2], "thread");
	pthread_t th;
	if (thread) {
		if (pthread_create(&th, NULL, holder, NULL))
			return 1;
		while (registered < 0)
			usleep(1000);
	} else {
		registered = reg(&area[0]);
	}
	if (registered) {
		printf("skip: cannot register an rseq area of its own: %s\n", strerror(registered));
		if (thread)
			done = 1, pthread_join(th, NULL);
		return 77;
	}
	int rc = image_checkpoint(argv[1], 0);
	if (thread) {
		done = rc == CRAC_RESTORED ? 1 : 0;
		if (rc != CRAC_RESTORED) {
			syscall(SYS_exit_group, 0);   /* the image is written */
		}
		pthread_join(th, NULL);
		return 0;
	}
	if (rc != CRAC_RESTORED)
		return 0;
	int again = reg(&area[0]);
	printf("restored %s\n", again == EBUSY ? "registered" : "LOST");
	return 0;
}
