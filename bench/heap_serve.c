/* SPDX-License-Identifier: MIT */
/*
 * heap_serve.c - a heap that answers on stdin, for checkpointers that work
 * from outside the process (crac run + crac checkpoint, CRIU): the same
 * program, unmodified and not linked with libcrac, goes through both.
 * Driven by bench/side.py.
 *
 *   heap_serve MIB
 *       Maps MIB mebibytes of anonymous memory (one mapping) and writes
 *       every 8-byte word with a different non-zero value (every page
 *       dirty), keeps the heap's checksum, prints "ready pid=P", then
 *       answers one command per line of stdin:
 *         ping      -> "pong"
 *         read      -> reads every word and compares the checksum with the
 *                      one kept: "read ms=T sum=ok" (or sum=BAD)
 *         dirty N   -> changes one word in every (100/N)th page (N percent
 *                      of the pages), keeps the new checksum:
 *                      "dirtied pages=K"
 *       At the end of stdin: "eof", exit status 0.
 *
 * The checksum is process state: a restored copy checks its heap against
 * the value it had when it was checkpointed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t *heap;
static size_t heap_words;
static uint64_t heap_sum;
static uint64_t round_no;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint64_t sum(void)
{
	uint64_t s = 0;
	for (size_t i = 0; i < heap_words; i++)
		s = s * 31 + heap[i];
	return s;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	size_t len = argc == 2 ? (size_t)strtoull(argv[1], NULL, 10) << 20 : 0;
	if (!len) {
		fprintf(stderr, "usage: heap_serve MIB\n");
		return 2;
	}
	heap = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (heap == MAP_FAILED) {
		perror("heap_serve: mmap");
		return 1;
	}
	heap_words = len / 8;
	for (size_t i = 0; i < heap_words; i++)
		heap[i] = ((i + 1) * 0x9e3779b97f4a7c15ull) | 1;
	heap_sum = sum();
	printf("ready pid=%d\n", (int)getpid());

	char line[128];
	while (fgets(line, sizeof(line), stdin)) {
		if (!strcmp(line, "ping\n")) {
			printf("pong\n");
		} else if (!strcmp(line, "read\n")) {
			double t0 = now_ms();
			uint64_t s = sum();
			double t1 = now_ms();
			printf("read ms=%.3f sum=%s\n", t1 - t0, s == heap_sum ? "ok" : "BAD");
		} else if (!strncmp(line, "dirty ", 6)) {
			unsigned pct = (unsigned)atoi(line + 6);
			size_t pages = len / 4096, step = pct ? 100 / pct : 0, n = 0;
			round_no++;
			for (size_t p = 0; step && p < pages; p += step, n++)
				heap[p * 512 + round_no % 512] ^= round_no << 1;
			heap_sum = sum();
			printf("dirtied pages=%zu\n", n);
		} else {
			printf("unknown command\n");
		}
	}
	printf("eof\n");
	return 0;
}
