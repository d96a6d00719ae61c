/* SPDX-License-Identifier: MIT */
/*
 * image_lazy - what a lazily restored process does with memory that is not
 * loaded yet (run with CRAC_LAZY_PREFETCH=off so that nothing is loaded but
 * what it touches).
 *
 *   image_lazy DIR [MiB [second|holes]]  checkpoint into DIR (the original exits 0);
 *                                    "second": a second lazy mapping of 2 MiB;
 *                                    "holes": some pages of the big mapping left
 *                                    zero (every seventh, and a run of 16 from
 *                                    page 1000), which the image does not store,
 *                                    and the mapping starting 4 KiB past a 2 MiB
 *                                    boundary
 *   crac restore DIR -- SCENARIO     one scenario per restore
 *
 * The big mapping (MiB mebibytes, default 32) holds a pattern that differs
 * on every page. Scenarios, each printing "ok SCENARIO" or "FAIL: ..." (exit 1):
 *   read      every page reads back its pattern
 *   syscall   write() from and read() into pages not loaded yet
 *   dontneed  MADV_DONTNEED on pages not loaded yet: zeros; neighbours intact
 *   free      MADV_FREE on pages not loaded yet: zeros or the old pattern
 *   dropall   MADV_DONTNEED on each of the first 256 pages alone, in order
 *             (restored with CRAC_TEST_WS_SLOW=1 after a recording "read":
 *             the working set is loading them meanwhile), then each must
 *             read zeros, and the rest its pattern
 *   mprotect  the mapping split into three VMAs first: every page still loads
 *   mremap    the mapping moved to a new address: the pattern follows it
 *   munmap    half unmapped, fresh memory mapped there: zeros; the rest intact
 *   fork      glibc fork(): the child sees every page
 *   rawfork   fork by a raw system call: the child sees every page
 *   touchfork reads the first 64 pages (in several chunks), then forks by
 *             glibc fork() at once: the child sees every page
 *   threads   four threads read a quarter each
 *   mlock-mremap  the mapping locked, then moved and grown by mremap (with
 *             "second", so that loading is not over: a kernel limit, see
 *             tests/cli/image_lazy.bats)
 *   wait SYNC touches page 0 and one page at each MiB from 2 to 9 (with
 *             prefetch off: a window of the first chunk and of eight others
 *             is loaded), creates SYNC.ready, waits up to 60 s for SYNC.go
 *             (the test changes the pages file meanwhile), then reads every
 *             page like "read"
 *   wait3 SYNC the same with page 0 and the pages at 2 and 3 MiB only
 *   wait0 SYNC the same touching no page of it before it waits
 *   huge      waits for the lazy thread to be done, checks every page, then
 *             prints "huge KB": the big mapping's AnonHugePages (whole
 *             2 MiB blocks moved in by UFFDIO_MOVE are huge pages)
 *   stalled DIR2  (restored with CRAC_TEST_LAZY_STALL=1: the lazy thread
 *             stalls 2 s once a checkpoint hurries it) a checkpoint into DIR2
 *             with a 300 ms deadline must be refused naming the lazy loader,
 *             its report printed as "refused: ..."; every page must then read
 *             back its pattern, and a checkpoint into DIR2 with the default
 *             deadline (CRAC_KEEP_RUNNING) succeed; restored from DIR2
 *             (`-- read`) it checks every page and prints "ok read"
 *   loader    prints "loader mapped at first: yes|no" (the restore loader's
 *             range, 0x500000000000 + 256 MiB, in /proc/self/maps when the
 *             program runs again: the program does not wait for the lazy
 *             thread to leave the loader), then waits for the lazy thread
 *             to be done: the range must be unmapped by then
 */
#include <crac.h>
#include "image_ckpt.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096ul

/* libcrac internal (this program links the static library): waits until
 * the lazy loader thread is done, so that its --stats line is printed. */
void crac__img_lazy_finish(void);

static unsigned char *big, *second;
static size_t big_len, n_pages;
static int holes;   /* "holes": is_hole pages are zero */

static int is_hole(size_t page)
{
	return holes && (page % 7 == 3 || (page >= 1000 && page < 1016));
}
static char scenario[64], sync_path[4000];

static uint64_t word(size_t page, size_t i)
{
	return (page << 20) ^ (i * 0x9e3779b97f4a7c15ull) ^ 0x5eed;
}

static void fill(unsigned char *base, size_t from, size_t to)
{
	for (size_t p = from; p < to; p++)
		for (size_t i = 0; i < PG / 8 && !is_hole(p); i++)
			((uint64_t *)(base + p * PG))[i] = word(p, i);
}

/* Pages [from, to) of the pattern that do not hold it; at points to page from. */
static size_t bad_at(const unsigned char *at, size_t from, size_t to)
{
	size_t bad = 0;
	for (size_t p = from; p < to; p++)
		for (size_t i = 0; i < PG / 8; i++)
			if (((const uint64_t *)(at + (p - from) * PG))[i] != (is_hole(p) ? 0 : word(p, i))) {
				bad++;
				break;
			}
	return bad;
}

/* The same for pages [from, to) of the mapping at base. */
static size_t bad_pages(const unsigned char *base, size_t from, size_t to)
{
	return bad_at(base + from * PG, from, to);
}

static int all_zero(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

static int fail(const char *what, size_t n)
{
	printf("FAIL: %s: %zu\n", what, n);
	return 1;
}

static int after(const crac_event *ev, void *arg)
{
	(void)arg;
	if (ev->argc > 0)
		snprintf(scenario, sizeof(scenario), "%s", ev->argv[0]);
	if (ev->argc > 1)
		snprintf(sync_path, sizeof(sync_path), "%s", ev->argv[1]);
	return 0;
}

static void *reader(void *arg)
{
	size_t q = (size_t)(uintptr_t)arg, per = n_pages / 4;
	return (void *)(uintptr_t)bad_pages(big, q * per, (q + 1) * per);
}

static int child_check(void)
{
	/* in a forked child: no stdio (its buffer is the parent's too) */
	return bad_pages(big, 0, n_pages) ? 1 : 0;
}

/* "wait": SYNC.ready says the pages are touched, SYNC.go lets us go on. */
static int wait_for_go(size_t to_mib)
{
	char path[4096];
	volatile unsigned char sink = 0;

	if (to_mib)
		sink += big[0];
	for (size_t mib = 2; mib < to_mib && (mib << 20) < big_len; mib++)
		sink += big[mib << 20];
	(void)sink;
	snprintf(path, sizeof(path), "%s.ready", sync_path);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (!sync_path[0] || fd < 0)
		return -1;
	close(fd);
	snprintf(path, sizeof(path), "%s.go", sync_path);
	for (int i = 0; i < 6000 && access(path, F_OK) != 0; i++)
		usleep(10000);
	return access(path, F_OK);
}

/* The big mapping's AnonHugePages in kB (/proc/self/smaps), or -1. */
static long huge_kb(void)
{
	char line[512];
	FILE *f = fopen("/proc/self/smaps", "re");
	int in = 0;
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo;
		char dash;
		if (sscanf(line, "%llx%c", &lo, &dash) == 2 && dash == '-')
			in = lo == (unsigned long long)(uintptr_t)big;
		else if (in && !strncmp(line, "AnonHugePages:", 14))
			kb = strtol(line + 14, NULL, 10);
	}
	fclose(f);
	return kb;
}

/* Is anything mapped in the restore loader's range? 1 yes, 0 no, -1 error */
static int loader_mapped(void)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");
	int found = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo = strtoull(line, NULL, 16);
		if (lo >= 0x500000000000ull && lo < 0x500000000000ull + (256ull << 20))
			found = 1;
	}
	fclose(f);
	return found;
}

static int run(void)
{
	size_t n;

	if (!strcmp(scenario, "read")) {
		if ((n = bad_pages(big, 0, n_pages)))
			return fail("pages without their pattern", n);
	} else if (!strcmp(scenario, "wait") || !strcmp(scenario, "wait3") || !strcmp(scenario, "wait0")) {
		/* wait3: pages in three chunks only (fewer than the lazy
		 * loader's chunk buffer holds); wait0: none before it waits */
		if (wait_for_go(!scenario[4] ? 10 : scenario[4] == '3' ? 4 : 0) < 0)
			return fail("no SYNC argument, or no SYNC.ready / SYNC.go", 0);
		if ((n = bad_pages(big, 0, n_pages)))
			return fail("pages without their pattern", n);
	} else if (!strcmp(scenario, "syscall")) {
		int fd[2];
		unsigned char buf[16 * PG];
		if (pipe(fd) < 0)
			return fail("pipe", 0);
		/* the kernel reads pages 100-115 (not loaded) */
		if (write(fd[1], big + 100 * PG, sizeof(buf)) != (ssize_t)sizeof(buf))
			return fail("write() from lazy pages", 0);
		if (read(fd[0], buf, sizeof(buf)) != (ssize_t)sizeof(buf) || bad_at(buf, 100, 116))
			return fail("write() from lazy pages sent the wrong bytes", 0);
		/* the kernel writes pages 200-215 (not loaded) */
		memset(buf, 0xab, sizeof(buf));
		if (write(fd[1], buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
		    read(fd[0], big + 200 * PG, sizeof(buf)) != (ssize_t)sizeof(buf))
			return fail("read() into lazy pages", 0);
		for (size_t i = 0; i < sizeof(buf); i++)
			if (big[200 * PG + i] != 0xab)
				return fail("read() into lazy pages: byte", i);
		if ((n = bad_pages(big, 0, 200) + bad_pages(big, 216, n_pages)))
			return fail("other pages", n);
	} else if (!strcmp(scenario, "dontneed") || !strcmp(scenario, "free")) {
		int advice = scenario[0] == 'd' ? MADV_DONTNEED : MADV_FREE;
		if (madvise(big + 10 * PG, 4 * PG, advice) < 0)
			return fail("madvise", 0);
		if (advice == MADV_DONTNEED && !all_zero(big + 10 * PG, 4 * PG))
			return fail("MADV_DONTNEED on lazy pages did not give zeros", 0);
		for (size_t p = 10; p < 14; p++)
			if (!all_zero(big + p * PG, PG) && bad_pages(big, p, p + 1))
				return fail("MADV_FREE'd page is neither zero nor its old content", p);
		if ((n = bad_pages(big, 0, 10) + bad_pages(big, 14, n_pages)))
			return fail("neighbours", n);
	} else if (!strcmp(scenario, "dropall")) {
		for (size_t p = 0; p < 256 && p < n_pages; p++)
			if (madvise(big + p * PG, PG, MADV_DONTNEED) < 0)
				return fail("madvise", p);
		for (size_t p = 0; p < 256 && p < n_pages; p++)
			if (!all_zero(big + p * PG, PG))
				return fail("a page dropped with MADV_DONTNEED while the working set loaded does not read "
					    "zeros: page",
					    p);
		if (n_pages > 256 && (n = bad_pages(big, 256, n_pages)))
			return fail("pages not dropped", n);
	} else if (!strcmp(scenario, "mprotect")) {
		/* split the mapping into three VMAs before anything is loaded:
		 * a load window must not cross their boundaries */
		if (mprotect(big + 8 * PG, 4 * PG, PROT_READ) < 0)
			return fail("mprotect", 0);
		if ((n = bad_pages(big, 0, n_pages)))
			return fail("pages without their pattern after mprotect", n);
		if (mprotect(big + 8 * PG, 4 * PG, PROT_READ | PROT_WRITE) < 0)
			return fail("mprotect back", 0);
		big[9 * PG] ^= 1;
		big[9 * PG] ^= 1;
		if ((n = bad_pages(big, 0, n_pages)))
			return fail("pages after writing", n);
	} else if (!strcmp(scenario, "mlock-mremap")) {
		/* probe: a locked lazy mapping grown and moved by mremap (the
		 * kernel populates the new tail before it reports the move) */
		if (mlock(big, big_len) < 0)
			return fail("mlock", 0);
		unsigned char *old = big;
		void *to = mmap(NULL, big_len + 128 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (to == MAP_FAILED)
			return fail("mmap", 0);
		big = mremap(big, big_len, big_len + 64 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, (char *)to + 32 * PG);
		if (big == MAP_FAILED || big == old)
			return fail("mremap", 0);
		if ((n = bad_pages(big, 0, n_pages)))
			return fail("pages without their pattern after mremap", n);
		if (!all_zero(big + big_len, 64 * PG))
			return fail("grown tail not zero", 0);
		if (second && (n = bad_pages(second, 0, 512)))
			return fail("second mapping", n);
		(void)old;
	} else if (!strcmp(scenario, "mremap")) {
		/* a new place that is surely free: reserve it, then move there */
		void *to = mmap(NULL, big_len + 64 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		unsigned char *old = big;
		if (to == MAP_FAILED)
			return fail("mmap", 0);
		big = mremap(big, big_len, big_len, MREMAP_MAYMOVE | MREMAP_FIXED, (char *)to + 32 * PG);
		if (big == MAP_FAILED || big == old)
			return fail("mremap", 0);
		if ((n = bad_pages(big, 0, n_pages)))
			return fail("pages without their pattern after mremap", n);
	} else if (!strcmp(scenario, "munmap")) {
		size_t half = n_pages / 2;
		if (munmap(big + half * PG, big_len - half * PG) < 0 ||
		    mmap(big + half * PG, big_len - half * PG, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
			return fail("munmap/mmap", 0);
		if (!all_zero(big + half * PG, big_len - half * PG))
			return fail("fresh memory over unmapped lazy pages is not zero", 0);
		if ((n = bad_pages(big, 0, half)))
			return fail("first half", n);
	} else if (!strcmp(scenario, "fork") || !strcmp(scenario, "rawfork") || !strcmp(scenario, "touchfork")) {
		if (scenario[0] == 't' && (n = bad_pages(big, 0, 64)))
			return fail("pages without their pattern before the fork", n);
		fflush(stdout);
		pid_t pid = scenario[0] != 'r' ? fork() : (pid_t)syscall(SYS_fork);
		if (pid == 0)
			_exit(child_check());
		int st = 0;
		if (pid < 0 || waitpid(pid, &st, 0) != pid)
			return fail("fork/waitpid", 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return fail("the child saw pages without their pattern, status", (size_t)st);
		if ((n = bad_pages(big, 0, n_pages)))
			return fail("parent", n);
	} else if (!strcmp(scenario, "huge")) {
		crac__img_lazy_finish();
		if ((n = bad_pages(big, 0, n_pages)))
			return fail("pages without their pattern", n);
		printf("huge %ld\n", huge_kb());
	} else if (!strcmp(scenario, "loader")) {
		int first = loader_mapped();
		printf("loader mapped at first: %s\n", first > 0 ? "yes" : "no");
		crac__img_lazy_finish();
		if (loader_mapped() != 0)
			return fail("the loader's range still mapped once the lazy loader was done", 0);
	} else if (!strcmp(scenario, "stalled")) {
		struct crac_options o;
		crac_report *rep = NULL;
		crac_options_init(&o);
		o.engine = "image";
		o.image_dir = sync_path;
		o.flags = CRAC_KEEP_RUNNING;
		o.deadline_ms = 300;
		int rc = crac_checkpoint_restore(&o, &rep);
		char *text = NULL;
		if (rep && crac_report_format(rep, &text) < 0)
			text = NULL;
		printf("refused: rc=%d %s\n", rc, text ? text : "(no report)");
		free(text);
		crac_report_free(rep);
		rep = NULL;
		if (rc != -ETIMEDOUT)
			return fail("the checkpoint with a 300 ms deadline was not refused with ETIMEDOUT", (size_t)-rc);
		size_t bad = bad_pages(big, 0, n_pages);
		if (bad)
			return fail("pages without their pattern after the refused checkpoint", bad);
		o.deadline_ms = 0;
		rc = crac_checkpoint_restore(&o, &rep);
		if (rc < 0 && rep)
			crac_report_print(rep, stdout);
		crac_report_free(rep);
		if (rc == CRAC_RESTORED && (bad = bad_pages(big, 0, n_pages)) != 0)
			return fail("pages without their pattern in the copy restored from DIR2", bad);
		if (rc != CRAC_CONTINUED && rc != CRAC_RESTORED)
			return fail("the checkpoint once loaded failed", (size_t)-rc);
		/* (restored from DIR2: the scenario is the new argv's, "read") */
	} else if (!strcmp(scenario, "threads")) {
		pthread_t t[4];
		for (size_t q = 0; q < 4; q++)
			pthread_create(&t[q], NULL, reader, (void *)(uintptr_t)q);
		for (size_t q = 0; q < 4; q++) {
			void *r;
			pthread_join(t[q], &r);
			if (r)
				return fail("a thread found pages without their pattern", (size_t)(uintptr_t)r);
		}
	} else {
		printf("FAIL: unknown scenario \"%s\"\n", scenario);
		return 1;
	}
	printf("ok %s\n", scenario);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: image_lazy DIR [MiB]\n");
		return 2;
	}
	big_len = (argc > 2 ? strtoull(argv[2], NULL, 10) : 32) << 20;
	holes = argc > 3 && !strcmp(argv[3], "holes");
	n_pages = big_len / PG;
	if (holes) {
		/* 4 KiB past a 2 MiB boundary: the room, then its head let go */
		unsigned char *room = mmap(NULL, big_len + (4u << 20), PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (room == MAP_FAILED)
			return 1;
		big = (unsigned char *)(((uintptr_t)room + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1)) + PG;
		munmap(room, (size_t)(big - room));
		munmap(big + big_len, (size_t)(room + big_len + (4u << 20) - (big + big_len)));
	} else {
		big = mmap(NULL, big_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (big == MAP_FAILED)
		return 1;
	fill(big, 0, n_pages);
	if (argc > 3 && !strcmp(argv[3], "second")) {
		/* a second lazy mapping (2 MiB), left untouched by mlock-mremap */
		second = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (second == MAP_FAILED)
			return 1;
		fill(second, 0, 512);
	}
	printf("big=%p len=%zu\n", (void *)big, big_len);
	fflush(stdout);

	struct crac_resource_def def = { .name = "lazy-test", .after_restore = after };
	crac_register(NULL, &def, NULL);
	crac_report *rep = NULL;
	int rc = image_try(argv[1], 0, &rep);
	if (rc != CRAC_RESTORED) {
		if (rc != CRAC_CONTINUED && rep)
			crac_report_print(rep, stderr);
		crac_report_free(rep);
		return rc == CRAC_CONTINUED ? 0 : 1;
	}
	crac_report_free(rep);
	int status = run();
	fflush(stdout);
	crac__img_lazy_finish();
	return status;
}
