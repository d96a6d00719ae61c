/* SPDX-License-Identifier: MIT */
/*
 * ckpt_heap - a program with a heap of known contents, for
 * tests/cli/checkpoint_progress.bats (`crac checkpoint --stats`, progress).
 *
 *   ckpt_heap MIB ZERO_MIB
 *
 * Maps MIB mebibytes of private anonymous memory and writes every page;
 * then clears the last ZERO_MIB of them again (resident and all zero, so
 * the image engine leaves them out as zero pages). Starts the control
 * endpoint, prints "ready pid=PID" and waits for a checkpoint through it
 * (`crac checkpoint PID`) or for SIGTERM/SIGINT (exit 0).
 */
#include <crac.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: ckpt_heap MIB ZERO_MIB\n");
		return 2;
	}
	size_t len = strtoul(argv[1], NULL, 10) << 20, zero = strtoul(argv[2], NULL, 10) << 20;
	if (zero > len) {
		fprintf(stderr, "ckpt_heap: ZERO_MIB is over MIB\n");
		return 2;
	}
	unsigned char *heap = len ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
				  : NULL;
	if (heap == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (size_t i = 0; i < len; i++)   /* every page written, none all zero */
		heap[i] = (unsigned char)((i * 2654435761u) >> 13 | 1);
	memset(heap + len - zero, 0, zero);  /* ... then the last ZERO_MIB zero again */

	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	int rc = crac_control_start();
	if (rc < 0) {
		fprintf(stderr, "ckpt_heap: crac_control_start: %s\n", strerror(-rc));
		return 1;
	}
	printf("ready pid=%d\n", (int)getpid());
	fflush(stdout);
	while (!stop)
		pause();
	crac_control_stop();
	return 0;
}
