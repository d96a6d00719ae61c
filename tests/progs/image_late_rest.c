/* SPDX-License-Identifier: MIT */
/*
 * image_late_rest - the pages of a stopped thread must not change while the
 * image is written.
 *
 *   image_late_rest DIR N
 *       checkpoints N times with keep-running into DIR/c1 .. DIR/cN; a
 *       second thread waits in pthread_cond_wait meanwhile.
 *   crac restore DIR/cK
 *       prints "ok K" once the second thread answers.
 *
 * Run with CRAC_TEST_LATE_REST_MS=MS: the image engine's stop handler then
 * goes on writing its stack for MS milliseconds after the thread was
 * counted as stopped, as a thread preempted at that point does once it runs
 * again. The image engine must wait for the thread to be at rest before it
 * writes the thread's pages (image_threads.c, wait_at_rest); else the pages
 * file holds bytes that are not those its crc was taken of, and the restore
 * refuses with a checksum mismatch. A 24 MiB mapping of data makes the
 * pages phase long enough for the late writes to fall into it.
 */
#include <crac.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define BIG (24u << 20)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int asked, answered;

static void *peer(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	for (;;) {
		while (asked == answered)
			pthread_cond_wait(&cond, &lock);
		answered = asked;
		pthread_cond_broadcast(&cond);
	}
	return NULL;
}

/* Asks the second thread for an answer and waits for it. */
static void ping(void)
{
	pthread_mutex_lock(&lock);
	asked++;
	pthread_cond_broadcast(&cond);
	while (answered != asked)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: image_late_rest DIR N\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	/* mapped first: above the thread's stack, so its pages are written
	 * right after the stack's, in the same batch (after their crc) */
	uint64_t *big = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (big == MAP_FAILED)
		return 1;
	for (size_t i = 0; i < BIG / 8; i++)
		big[i] = i * 0x9e3779b97f4a7c15ull + 1;
	pthread_t th;
	if (pthread_create(&th, NULL, peer, NULL))
		return 1;
	ping();
	int n = atoi(argv[2]);
	for (int k = 1; k <= n; k++) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/c%d", argv[1], k);
		struct crac_options o;
		crac_options_init(&o);
		o.engine = "image";
		o.image_dir = dir;
		o.flags |= CRAC_KEEP_RUNNING;
		crac_report *rep = NULL;
		int rc = crac_checkpoint_restore(&o, &rep);
		if (rc == CRAC_RESTORED) {
			ping();
			for (size_t i = 0; i < BIG / 8; i++)
				if (big[i] != i * 0x9e3779b97f4a7c15ull + 1) {
					printf("FAIL: word %zu differs\n", i);
					return 1;
				}
			printf("ok %d\n", k);
			return 0;
		}
		if (rc != CRAC_CONTINUED) {
			printf("FAIL: checkpoint into %s returned %d\n", dir, rc);
			if (rep)
				crac_report_print(rep, stdout);
			return 1;
		}
		crac_report_free(rep);
		ping();
	}
	printf("checkpointed %d times\n", n);
	return 0;
}
