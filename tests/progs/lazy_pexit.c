/* SPDX-License-Identifier: MIT */
/*
 * lazy_pexit DIR - 8 MiB of written memory (a lazy mapping on restore),
 * checkpointed into DIR (run with CRAC_IMAGE_INCREMENTAL=1: the lazy loader
 * then tracks writes and serves on after loading). Restored, it checks the
 * memory, prints "restored" and ends with pthread_exit from its only
 * thread: the process must end (status 0) although the lazy loader thread
 * was still there.
 */
#include "image_ckpt.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LEN (8u << 20)

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: lazy_pexit DIR\n");
		return 2;
	}
	uint64_t *m = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 1;
	for (size_t i = 0; i < LEN / 8; i++)
		m[i] = i * 0x9e3779b97f4a7c15ull;
	if (image_checkpoint(argv[1], 0) != CRAC_RESTORED)
		return 0;   /* the image is written: exits */
	for (size_t i = 0; i < LEN / 8; i++)
		if (m[i] != i * 0x9e3779b97f4a7c15ull) {
			printf("FAIL: word %zu differs\n", i);
			return 1;
		}
	printf("restored\n");
	/* the lazy loader finishes meanwhile: the process ends with us */
	usleep(300 * 1000);
	pthread_exit(NULL);
}
