/* SPDX-License-Identifier: MIT */
/*
 * warm.c - hands the guest memory the host has taken back before a timed
 * step, so that crac and CRIU meet memory in the same state. No libcrac.
 * Used by bench/side.py before each timed step of its large heap rows.
 *
 *   warm MIB [THREADS]
 *
 * Some virtual machines return memory the guest has left free for a few
 * seconds to the host (free page reporting): the next first touch of such
 * a page faults in the host too, which here makes writing 1 GiB of fresh
 * memory take seconds instead of a few hundred ms. The kernel hands out
 * free pages that were not reported before reported ones, so touching
 * MIB fresh MiB (huge pages asked for, as crac's eager restore does) and
 * exiting leaves that much memory backed by the host and at the head of
 * the free lists for the step that follows at once. Prints the ms the
 * touch took (large: the memory had gone back to the host).
 *
 * With THREADS (1 by default), that many threads touch the memory, each
 * its own share of whole 2 MiB blocks. bench/side.py times `warm MIB 2`
 * after idle as a bound: the cheapest way measured here to get MIB of
 * fresh memory from a host that took it back (huge pages, both CPUs), which
 * a lazy restore of a heap that size after idle has to get too.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

#define BLOCK (2ul << 20)
#define MAX_THREADS 64

static volatile char *mem;
static size_t mem_size;
static unsigned long n_threads = 1;

/* Thread k touches every page of blocks k, k + n_threads, ... */
static void *touch(void *arg)
{
	size_t k = (size_t)(uintptr_t)arg;

	for (size_t b = k * BLOCK; b < mem_size; b += n_threads * BLOCK)
		for (size_t i = b; i < b + BLOCK && i < mem_size; i += 4096)
			mem[i] = 1;
	return NULL;
}

int main(int argc, char **argv)
{
	char *end = NULL, *tend = NULL;
	unsigned long mib = argc == 2 || argc == 3 ? strtoul(argv[1], &end, 10) : 0;
	if (argc == 3)
		n_threads = strtoul(argv[2], &tend, 10);
	if (!mib || !end || *end || (argc == 3 && (!tend || *tend || !n_threads || n_threads > MAX_THREADS))) {
		fprintf(stderr, "usage: warm MIB [THREADS (1-%d)]\n", MAX_THREADS);
		return 2;
	}
	size_t n = (size_t)mib << 20;
	double t0 = now_ms();
	volatile char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("warm: mmap");
		return 1;
	}
	madvise((void *)p, n, MADV_HUGEPAGE);   /* best effort: THP may be off */
	mem = p;
	mem_size = n;
	pthread_t t[MAX_THREADS];
	for (unsigned long k = 1; k < n_threads; k++)
		if (pthread_create(&t[k], NULL, touch, (void *)(uintptr_t)k)) {
			fprintf(stderr, "warm: cannot start thread %lu\n", k);
			return 1;
		}
	touch((void *)0);
	for (unsigned long k = 1; k < n_threads; k++)
		pthread_join(t[k], NULL);
	printf("%.1f\n", now_ms() - t0);
	return 0;
}
