/* SPDX-License-Identifier: MIT */
/*
 * wp_probe.c - the kernel's cost of tracking written pages, the floor
 * under an incremental re-checkpoint (issue 12, item 3). No libcrac.
 *
 *   wp_probe [MIB [PERMILLE [REPS [block] [busy]]]]  (defaults 1024 10 5)
 *
 * Maps MIB mebibytes of private anonymous memory, writes every page,
 * registers it with an asynchronous write-protect userfaultfd (as
 * src/engines/image_track.c does) and protects it. Then, REPS times for
 * each way below, writes PERMILLE per mille of the pages (spread evenly,
 * like bench/ckpt_incr.c, or in one block with "block"; with "busy", a
 * second thread of the process spins on the other CPU meanwhile, as a
 * helper of the checkpoint's would) and times what
 * tells the written pages and protects them again:
 *   scan          PAGEMAP_SCAN, the categories crac asks for, no protect
 *   scan+wp       the same with PM_SCAN_WP_MATCHING (crac's re-checkpoint)
 *   scan-written  PAGEMAP_SCAN asking for written pages only, no protect
 *   written+wp    the same with PM_SCAN_WP_MATCHING (the kernel's fast
 *                 path for "written" only)
 *   scan,uffd-wp  scan, then UFFDIO_WRITEPROTECT of each written range
 *   uffd-wp-all   UFFDIO_WRITEPROTECT of the whole range (no scan)
 *   wp-only       PAGEMAP_SCAN WP_MATCHING without an output vector
 *                 (the kernel's "protect everything" fast path)
 *   written,scan+wp  scan-written, then scan+wp of each written range
 *   scan-nofile   scan without PAGE_IS_FILE asked (an anonymous mapping
 *                 has no file pages; asking makes the kernel look at
 *                 every page's struct page)
 *   nofile+wp     the same with PM_SCAN_WP_MATCHING
 * and, for each, the time the next writes of those pages take (the
 * program's side: one write fault per protected page).
 * Prints "WAY median MS min MS max MS" lines, plus the number of written
 * ranges found. Run it as root and as nobody (UFFD_USER_MODE_ONLY).
 *
 * What it showed on a 2-vCPU PVM guest (shadow paging; Linux 6.18; 1 GiB,
 * 1% = 2622 pages; medians at a load of 3.6: scan 11.9 ms, scan-nofile
 * 1.7, scan+wp 36.0, nofile+wp 23.9, written+wp 26.8, wp-only 12.6, the
 * program's next writes 50-63; written+wp of one block 1.0; at a load of
 * 7-10 all of them 2-6x that):
 *   - the protect, not the scan, is the cost, and it is per 2 MiB of
 *     memory holding written pages, not per page: the kernel flushes the
 *     TLB once per page table it edited (pagemap_scan_pmd_entry), and a
 *     flush traps to the hypervisor. written+wp of 2622 pages in one
 *     block (6 page tables): 1.1 ms; spread over all 512: 44-150 ms.
 *     UFFDIO_WRITEPROTECT flushes once per call but edits every entry of
 *     its range (whole range: 80-550 ms), or pays a flush per call (per
 *     written range: 310-970 ms). No sequence of these calls is cheaper
 *     than scan+wp for spread writes; the floor is about one hypervisor
 *     TLB flush per 2 MiB region written since the last checkpoint.
 *   - wp-only (the kernel's exclusive write-protect path, no output)
 *     protects the same pages in half the time of the reporting paths,
 *     but it protects holes too (uffd-wp markers; page tables allocated
 *     for never-touched ranges), which crac avoids (image_track.c).
 *   - asking for PAGE_IS_FILE makes the scan read every present page's
 *     struct page: 1 GiB scan 38-70 ms with it, 1.6-18 ms without
 *     (crac asks for it on file mappings only since).
 *   - the program pays about as much again afterwards: its first write
 *     to each protected page is a write-protect fault (next writes).
 *   - busy: with a thread of the same process running on the other CPU,
 *     each of those TLB flushes must interrupt it too: nofile+wp, four
 *     alternating pairs at a load of 9-11 (2026-12-02), 133 96 122 89 ms
 *     alone against 190 207 105 199 ms with it. So a helper that scans on
 *     the other core while the checkpointing thread writes pages would
 *     rather slow the scan down than hide it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

/* PAGEMAP_SCAN (the installed headers are too old) */
struct region { uint64_t start, end, categories; };
struct scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN_ _IOWR('f', 16, struct scan_arg)
#define WP_MATCHING 0x1ull
#define CHECK_WPASYNC 0x2ull
#define IS_WPALLOWED (1ull << 0)
#define IS_WRITTEN (1ull << 1)
#define IS_FILE (1ull << 2)
#define IS_PRESENT (1ull << 3)
#define IS_SWAPPED (1ull << 4)
#define IS_PFNZERO (1ull << 5)

#define PG 4096ull
enum { NV = 1024, MAXREP = 64 };

static char *heap;
static uint64_t len, n_pages;
static int uffd, pm;
static struct region vec[NV];
static struct region written[1 << 20];
static uint64_t n_written;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "wp_probe: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* One pass of PAGEMAP_SCAN over the heap; collects written ranges. */
static void scan(uint64_t flags, uint64_t cat_mask, uint64_t anyof, uint64_t ret_mask)
{
	n_written = 0;
	for (uint64_t at = (uint64_t)(uintptr_t)heap, end = at + len, seen = at; at < end;) {
		struct scan_arg a = {
			.size = sizeof(a), .flags = flags, .start = at, .end = end,
			.vec = (uint64_t)(uintptr_t)vec, .vec_len = NV, .category_mask = cat_mask,
			.category_anyof_mask = anyof, .return_mask = ret_mask,
		};
		long n = syscall(SYS_ioctl, pm, PAGEMAP_SCAN_, &a);
		if (n < 0)
			die("PAGEMAP_SCAN");
		for (long i = 0; i < n; i++) {
			uint64_t rs = vec[i].start > seen ? vec[i].start : seen;
			if (vec[i].end <= rs)
				continue;
			seen = vec[i].end;
			if ((vec[i].categories & IS_WRITTEN) && n_written < sizeof(written) / sizeof(*written))
				written[n_written++] = (struct region){ rs, vec[i].end, 0 };
		}
		uint64_t next = a.walk_end > seen ? a.walk_end : seen;
		if (next <= at)
			break;
		at = next;
	}
}

/* scan+wp of each range found written (crac's categories) */
static void detail_written(void)
{
	uint64_t n = n_written;
	static struct region cand[1 << 20];

	memcpy(cand, written, n * sizeof(*cand));
	for (uint64_t k = 0; k < n; k++) {
		struct scan_arg a = {
			.size = sizeof(a), .flags = WP_MATCHING, .start = cand[k].start, .end = cand[k].end,
			.vec = (uint64_t)(uintptr_t)vec, .vec_len = NV, .category_anyof_mask = IS_PRESENT | IS_SWAPPED,
			.return_mask = IS_PRESENT | IS_SWAPPED | IS_FILE | IS_PFNZERO | IS_WPALLOWED | IS_WRITTEN,
		};
		if (syscall(SYS_ioctl, pm, PAGEMAP_SCAN_, &a) < 0)
			die("PAGEMAP_SCAN");
	}
	n_written = n;
}

static void wp_range(uint64_t s, uint64_t e)
{
	struct uffdio_writeprotect w = { .range = { .start = s, .len = e - s }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &w) < 0)
		die("UFFDIO_WRITEPROTECT");
}

static void protect_all(void)
{
	struct scan_arg a = {
		.size = sizeof(a), .flags = WP_MATCHING | CHECK_WPASYNC, .start = (uint64_t)(uintptr_t)heap,
		.end = (uint64_t)(uintptr_t)heap + len, .category_mask = IS_WRITTEN, .return_mask = IS_WRITTEN,
	};
	if (syscall(SYS_ioctl, pm, PAGEMAP_SCAN_, &a) < 0)
		die("PAGEMAP_SCAN protect");
}

static unsigned permille;
static uint64_t gen;
static int block;

/* "busy": a thread of this process that keeps the other CPU in our mm */
static void *spinner(void *arg)
{
	volatile uint64_t buf[512];

	for (uint64_t i = 0;; i++)
		buf[i % 512] += i + (uint64_t)(uintptr_t)arg;
	return NULL;
}

/* Pins this thread to one CPU and starts the spinner on another; false if
 * there is no second CPU. */
static int start_busy(void)
{
	cpu_set_t all, one;
	int cpu[2], n = 0;
	pthread_t th;
	pthread_attr_t at;

	if (sched_getaffinity(0, sizeof(all), &all) < 0)
		return 0;
	for (int i = 0; i < CPU_SETSIZE && n < 2; i++)
		if (CPU_ISSET(i, &all))
			cpu[n++] = i;
	if (n < 2)
		return 0;
	CPU_ZERO(&one);
	CPU_SET(cpu[0], &one);
	sched_setaffinity(0, sizeof(one), &one);
	CPU_ZERO(&one);
	CPU_SET(cpu[1], &one);
	pthread_attr_init(&at);
	pthread_attr_setaffinity_np(&at, sizeof(one), &one);
	return pthread_create(&th, &at, spinner, NULL) == 0;
}

/* Writes PERMILLE per mille of the pages; returns the time it took. */
static double touch(void)
{
	uint64_t step = permille ? 1000 / permille : n_pages;
	double t0 = now_ms();
	gen++;
	if (block) {
		for (uint64_t p = 0; p < n_pages * permille / 1000; p++)
			((volatile uint64_t *)(heap + p * PG))[gen % 512] += gen;
		return now_ms() - t0;
	}
	for (uint64_t p = gen % step; p < n_pages; p += step)
		((volatile uint64_t *)(heap + p * PG))[gen % 512] += gen;
	return now_ms() - t0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *way, double *t, double *f, int reps, uint64_t ranges)
{
	qsort(t, (size_t)reps, sizeof(double), cmp);
	qsort(f, (size_t)reps, sizeof(double), cmp);
	printf("%-13s median %7.2f ms  min %7.2f  max %7.2f   next writes median %6.2f ms   written ranges %llu\n",
	       way, t[(reps - 1) / 2], t[0], t[reps - 1], f[(reps - 1) / 2], (unsigned long long)ranges);
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024;
	permille = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 10;
	int reps = argc > 3 ? atoi(argv[3]) : 5;
	if (reps < 1 || reps > MAXREP)
		reps = 5;
	int busy = 0;
	for (int i = 4; i < argc; i++) {
		block |= !strcmp(argv[i], "block");
		busy |= !strcmp(argv[i], "busy");
	}
	len = mib << 20;
	n_pages = len / PG;
	heap = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (heap == MAP_FAILED)
		die("mmap");
	madvise(heap, len, MADV_NOHUGEPAGE);   /* crac's heaps are 4 KiB pages here */
	for (uint64_t p = 0; p < n_pages; p++)
		heap[p * PG] = (char)p | 1;
	if ((pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) < 0)
		die("/proc/self/pagemap");
	long fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		die("userfaultfd");
	uffd = (int)fd;
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
	if (ioctl(uffd, UFFDIO_API, &api) < 0)
		die("UFFDIO_API");
	struct uffdio_register r = { .range = { .start = (uint64_t)(uintptr_t)heap, .len = len },
				     .mode = UFFDIO_REGISTER_MODE_WP };
	if (ioctl(uffd, UFFDIO_REGISTER, &r) < 0)
		die("UFFDIO_REGISTER");
	if (busy && !(busy = start_busy()))
		printf("# busy: no second CPU to spin on\n");
	double t0 = now_ms();
	protect_all();
	printf("# %llu MiB, %u per mille written (%s)%s, %d reps; load ", (unsigned long long)mib, permille,
	       block ? "one block" : "spread evenly", busy ? ", a thread spinning on the other CPU" : "", reps);
	FILE *la = fopen("/proc/loadavg", "r");
	char lb[128] = "?\n";
	if (la && fgets(lb, sizeof(lb), la))
		fclose(la);
	printf("%s", lb);
	printf("first protect of every page  %.2f ms\n", now_ms() - t0);

	const uint64_t crac_ret = IS_PRESENT | IS_SWAPPED | IS_FILE | IS_PFNZERO | IS_WPALLOWED | IS_WRITTEN;
	const char *ways[] = { "scan", "scan+wp", "scan-written", "written+wp", "scan,uffd-wp", "uffd-wp-all",
			       "wp-only", "written,scan+wp", "scan-nofile", "nofile+wp" };
	for (int w = 0; w < 10; w++) {
		double t[MAXREP], f[MAXREP];
		uint64_t ranges = 0;
		for (int i = 0; i < reps; i++) {
			protect_all();   /* a clean start: every page protected */
			touch();
			double s = now_ms();
			switch (w) {
			case 0:
				scan(0, 0, IS_PRESENT | IS_SWAPPED, crac_ret);
				break;
			case 1:
				scan(WP_MATCHING, 0, IS_PRESENT | IS_SWAPPED, crac_ret);
				break;
			case 2:
				scan(0, IS_WRITTEN, 0, IS_WRITTEN);
				break;
			case 3:
				scan(WP_MATCHING, IS_WRITTEN, 0, IS_WRITTEN);
				break;
			case 4:
				scan(0, IS_WRITTEN, 0, IS_WRITTEN);
				for (uint64_t k = 0; k < n_written; k++)
					wp_range(written[k].start, written[k].end);
				break;
			case 5:
				wp_range((uint64_t)(uintptr_t)heap, (uint64_t)(uintptr_t)heap + len);
				break;
			case 6:
				protect_all();
				break;
			case 7:
				scan(0, IS_WRITTEN, 0, IS_WRITTEN);
				detail_written();
				break;
			case 8:
				scan(0, 0, IS_PRESENT | IS_SWAPPED, crac_ret & ~IS_FILE);
				break;
			case 9:
				scan(WP_MATCHING, 0, IS_PRESENT | IS_SWAPPED, crac_ret & ~IS_FILE);
				break;
			}
			t[i] = now_ms() - s;
			ranges = n_written;
			gen--;   /* the same pages again: the program's side */
			f[i] = touch();
		}
		report(ways[w], t, f, reps, w == 5 || w == 6 ? 0 : ranges);
	}
	return 0;
}
