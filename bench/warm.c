/* SPDX-License-Identifier: MIT */
/*
 * warm.c - hands the guest memory the host has taken back before a timed
 * step, so that crac and CRIU meet memory in the same state. No libcrac.
 * Used by bench/side.py before each timed step of its large heap rows.
 *
 *   warm MIB
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
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	char *end = NULL;
	unsigned long mib = argc == 2 ? strtoul(argv[1], &end, 10) : 0;
	if (!mib || !end || *end) {
		fprintf(stderr, "usage: warm MIB\n");
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
	for (size_t i = 0; i < n; i += 4096)
		p[i] = 1;
	printf("%.1f\n", now_ms() - t0);
	return 0;
}
