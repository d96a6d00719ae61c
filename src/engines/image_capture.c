/* SPDX-License-Identifier: MIT */
/*
 * image_capture.c - what goes into the image, and writing it.
 *
 * Runs while every other thread is stopped (image_threads.c), so: system
 * calls only, memory from the arena (see image_engine.h).
 *
 * Order (called by image.c):
 *   img_capture_open     DIR.tmp-PID-START-XXXXXX, the pages file, /proc/self/pagemap
 *   img_capture_process  signals, cwd, umask, rlimits, mm fields, auxv, CPU
 *   img_capture_maps     /proc/self/maps -> mappings and files; checks them
 *   img_capture_pages    page data: anonymous and dirty private pages only
 *   img_capture_header   the header; fsync of both files and the directory
 *
 * Which pages are stored (per mapping kind):
 *   private (anon, heap, stack, file): pages present or swapped that are
 *       anonymous memory (not a page of the file; not the shared zero page).
 *       Untouched pages and clean file pages are not stored: the loader maps
 *       the file again (its identity is recorded and checked).
 *   shared anonymous / memfd (shmem): every page (content has no file).
 *   shared file: nothing (the content is the file). Except a JVM's own
 *       perf-data file (/tmp/hsperfdata_USER/PID, crac__jvm_perfdata): the
 *       JVM writes its counters there all the time, so the file the image
 *       would map again has changed by the restore; it is recorded as
 *       private anonymous memory with every page stored (sharing lost:
 *       jstat no longer sees the restored JVM's counters).
 *   [vvar] [vvar_vclock] [vdso]: recorded (address, size, crc of the vDSO
 *       code), never stored; the loader moves its own there.
 * PAGEMAP_SCAN (Linux 6.7+) gives page ranges with their categories in one
 * call; older kernels fall back to reading /proc/self/pagemap entries.
 */
#include "engines/image_engine.h"
#include "runtime/checks.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "image/bounded.h"
#include "image/dir.h"
#include "runtime/checks.h"
#include "runtime/runtime.h"

#define P CRAC_IMG_PAGE

/* ---- PAGEMAP_SCAN (the installed headers are too old: FACTS.md) ---------- */

struct img_page_region { uint64_t start, end, categories; };
struct img_pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define IMG_PAGEMAP_SCAN _IOWR('f', 16, struct img_pm_scan_arg)

/* /proc/self/pagemap entry bits */
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_FILE (1ull << 61)
#define PM_EXCLUSIVE (1ull << 56)

#ifndef ARCH_GET_XCOMP_PERM
#define ARCH_GET_XCOMP_PERM 0x1022
#endif

/* ---- errors and the arena ---------------------------------------------------- */

int img_fail(struct img_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e->code)        /* keep the first error: it is the cause */
		return e->code;
	e->code = code < 0 ? code : -EIO;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return e->code;
}

int img_arena_init(struct img_arena *a, size_t size)
{
	a->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (a->base == MAP_FAILED) {
		a->base = NULL;
		return -errno;
	}
	a->size = size;
	a->used = 0;
	return 0;
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CRAC_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(CRAC_ASAN)
#include <sanitizer/asan_interface.h>
#define ARENA_UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define ARENA_UNPOISON(p, n) ((void)0)
#endif

void *img_arena_alloc(struct img_arena *a, size_t n)
{
	size_t at = (a->used + 15) & ~(size_t)15;

	if (!a->base || n > a->size - at)
		return NULL;
	a->used = at + n;
	return a->base + at;   /* fresh anonymous memory: already zero */
}

/*
 * An arena used before, up to `high` bytes, made as new: used 0, every byte
 * zero. Resident pages are zeroed with memset (no page fault: the point of
 * keeping it, image.c); the others, never touched or swapped out, dropped
 * with MADV_DONTNEED (a swapped-out page is not zero), so untouched parts
 * stay untouched.
 */
void img_arena_reset(struct img_arena *a, uint64_t high)
{
	unsigned char vec[4096];

	a->used = 0;
	high = (high + P - 1) & ~(uint64_t)(P - 1);
	if (high > a->size)
		high = a->size;
	/* Under AddressSanitizer: code that ran on a stack in the arena (the
	 * clone helpers, killed at their deadline or leaving by a raw exit)
	 * leaves its frames' redzones poisoned; the arena is new memory now. */
	ARENA_UNPOISON(a->base, high);
	for (uint64_t at = 0; at < high;) {
		uint64_t len = high - at < sizeof(vec) * P ? high - at : sizeof(vec) * P;
		if (mincore(a->base + at, len, vec) < 0) {
			memset(vec, 0, sizeof(vec));   /* unknown: dropped */
		}
		for (uint64_t i = 0; i < len / P;) {
			uint64_t j = i + 1;
			while (j < len / P && (vec[j] & 1) == (vec[i] & 1))
				j++;
			if (vec[i] & 1)
				memset(a->base + at + i * P, 0, (j - i) * P);
			else
				madvise(a->base + at + i * P, (j - i) * P, MADV_DONTNEED);
			i = j;
		}
		at += len;
	}
}

void *img_scratch(struct img_arena *a, size_t n, size_t *mapped)
{
	void *p = img_arena_alloc(a, n);

	*mapped = 0;
	if (p)
		return p;
	size_t len = (n + CRAC_IMG_PAGE - 1) & ~(size_t)(CRAC_IMG_PAGE - 1);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	*mapped = len;
	return p;
}

void img_arena_free(struct img_arena *a)
{
	if (a->base)
		munmap(a->base, a->size);
	a->base = NULL;
}

/* ---- small helpers -------------------------------------------------------------- */

/* Reads a whole (proc) file into the arena, NUL-terminated. */
static char *read_file(struct img_capture *c, const char *path, size_t max, size_t *len)
{
	char *buf = img_arena_alloc(&c->arena, max + 1);
	size_t got = 0;
	int fd;

	if (!buf) {
		img_fail(&c->err, -ENOMEM, "engine arena exhausted reading %s", path);
		return NULL;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		img_fail(&c->err, -errno, "%s: %s", path, img_strerror(errno));
		return NULL;
	}
	while (got < max) {
		ssize_t n = read(fd, buf + got, max - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			img_fail(&c->err, -errno, "%s: %s", path, img_strerror(errno));
			close(fd);
			return NULL;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got == max) {
		img_fail(&c->err, -E2BIG, "%s is larger than %zu bytes", path, max);
		return NULL;
	}
	buf[got] = 0;
	if (len)
		*len = got;
	return buf;
}

/*
 * Reading the program's memory. Under AddressSanitizer the program's memory
 * includes ASan's own shadow and allocator ranges, which instrumented code
 * and ASan's interceptors (write, memcpy) refuse to read ("unknown-crash
 * ... in the high shadow area"). Every read of memory that is not the
 * engine's own therefore goes through these: not instrumented, and making
 * no intercepted call (the raw write system call, a copy in assembly,
 * crac_img_crc32c_with, which is CRAC_IMG_NOSAN).
 */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = syscall(SYS_write, fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- open --------------------------------------------------------------------- */

static void sync_open(struct img_capture *c);
static bool sync_join(struct img_capture *c, bool wait);

int img_capture_open(struct img_capture *c, const char *dir)
{
	c->dir = dir;
	c->dir_fd = c->pages_fd = c->pagemap_fd = -1;
	/* DIR.tmp-PID-START-XXXXXX: who writes it (crac_img_clean_stale). */
	/* Locked (flock) until its rename (image.c): a checkpoint into DIR
	 * in another pid namespace, to which this PID and START mean nothing,
	 * leaves it alone (crac_img_clean_stale). Such a cleaner that took
	 * the lock first, between the mkdtemp and the flock, removes it: a
	 * new one then (it is gone, or going: no link left). */
	char msg[PATH_MAX + 300];
	int rc = crac_img_tmp_create_msg(dir, c->tmp, sizeof(c->tmp), &c->dir_fd, msg, sizeof(msg));
	if (rc == -ETIMEDOUT && msg[0])
		return img_fail(&c->err, rc, "%s", msg);
	if (rc == -ENAMETOOLONG)
		return img_fail(&c->err, rc, "image directory name too long: %s", dir);
	if (rc == -EBUSY)
		return img_fail(&c->err, rc, "%s was removed as it was created (a checkpoint into %s running "
				"elsewhere?)", c->tmp, dir);
	if (rc < 0 && !c->tmp[0])
		return img_fail(&c->err, rc, "cannot create %s.tmp-...: %s", dir, img_strerror(-rc));
	if (rc < 0)
		return img_fail(&c->err, rc, "%s: %s", c->tmp, img_strerror(-rc));
	c->pages_fd = openat(c->dir_fd, CRAC_IMG_PAGES_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (c->pages_fd < 0)
		return img_fail(&c->err, -errno, "%s/%s: %s", c->tmp, CRAC_IMG_PAGES_FILE, img_strerror(errno));
	c->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (c->pagemap_fd < 0 && errno == EACCES && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0)
		/* /proc/self/ is root's then: a process that changed its user
		 * or group IDs (a service dropping root) or said so itself. Not
		 * made dumpable behind its back: that is what keeps processes of
		 * its new uid from reading what it got as root. */
		return img_fail(&c->err, -EACCES, "/proc/self/pagemap: %s: " CRAC_NOT_DUMPABLE_WHY,
				img_strerror(EACCES));
	if (c->pagemap_fd < 0)
		return img_fail(&c->err, -errno, "/proc/self/pagemap: %s", img_strerror(errno));

	/* Does PAGEMAP_SCAN work here? Probe it on the arena's first page. */
	struct img_page_region r;
	struct img_pm_scan_arg arg = {
		.size = sizeof(arg), .start = (uint64_t)(uintptr_t)c->arena.base,
		.end = (uint64_t)(uintptr_t)c->arena.base + P, .vec = (uint64_t)(uintptr_t)&r, .vec_len = 1,
		.category_anyof_mask = IMG_PAGE_IS_PRESENT, .return_mask = IMG_PAGE_IS_PRESENT,
	};
	c->use_scan = ioctl(c->pagemap_fd, IMG_PAGEMAP_SCAN, &arg) >= 0 && !getenv("CRAC_IMAGE_NO_PAGEMAP_SCAN") &&
		      !crac__pretend_missing("pagemap_scan");
	sync_open(c);   /* the fsync helper (below) */
	return 0;
}

void img_capture_close(struct img_capture *c, bool failed)
{
	c->w.n_iov = 0;     /* a failure: what is queued is not wanted */
	img_write_end(c);   /* its descriptors, if a failure left them open */
	sync_join(c, true); /* the fsync a failure left running */
	if (c->header_fd >= 0)
		close(c->header_fd);
	c->header_fd = -1;
	if (c->pagemap_fd >= 0)
		close(c->pagemap_fd);
	if (c->pages_fd >= 0)
		close(c->pages_fd);
	if (c->dir_fd >= 0)
		close(c->dir_fd);
	c->pagemap_fd = c->pages_fd = c->dir_fd = -1;
	if (failed && c->tmp[0])
		crac_img_remove(c->tmp);
	/* (a size of 0: in the arena, which the caller frees or keeps) */
	if (c->chunk_area && c->chunk_area_size)
		munmap(c->chunk_area, c->chunk_area_size);
	c->chunk_area = NULL;
	if (c->incr.refs && c->incr.refs_area_size)
		munmap(c->incr.refs, c->incr.refs_area_size);
	c->incr.refs = NULL;
	if (c->incr.hmap)
		munmap(c->incr.hmap, c->incr.hmap_size);
	c->incr.hmap = NULL;
	c->incr.pchunks = NULL;
	c->incr.prefs = NULL;
}

/* ---- process state ------------------------------------------------------------- */

/* The fields after "(comm)" in /proc/self/stat, numbered as in proc(5). */
static int stat_fields(struct img_capture *c, uint64_t *f, int nf)
{
	char *s = read_file(c, "/proc/self/stat", 4096, NULL);
	if (!s)
		return c->err.code;
	char *p = strrchr(s, ')');
	if (!p)
		return img_fail(&c->err, -EINVAL, "/proc/self/stat: unexpected format");
	p++;
	for (int i = 3; i < nf && *p; i++) {
		while (*p == ' ')
			p++;
		if (*p == 0)
			break;
		f[i] = strtoull(p, &p, 10);   /* state ("R") parses as 0 */
		while (*p && *p != ' ')
			p++;
	}
	return 0;
}

/* The number after `key` on its line of text (0 if absent). */
static long long line_num(const char *text, const char *key, int base)
{
	const char *p = strstr(text, key);
	long long v = 0;
	bool neg = false;

	if (!p)
		return 0;
	p += strlen(key);
	if (*p == '-')
		neg = true, p++;
	for (;; p++) {
		int d = *p >= '0' && *p <= '9' ? *p - '0'
			: base == 16 && *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
		if (d < 0)
			break;
		v = v * base + d;
	}
	return neg ? -v : v;
}

/*
 * The table of POSIX timers the restore creates again (crac__img_self.timers).
 * Up to IMG_TIMERS_INLINE it is timers_inline, in libcrac's data; past that an
 * anonymous mapping of its own, made here (before img_capture_maps reads the
 * memory map, so it is in the image like the rest of the program's memory)
 * and kept for the next checkpoint of a process that runs on. A process may
 * have as many timers as its RLIMIT_SIGPENDING allows (tens of thousands).
 */
static struct img_timer timers_inline[IMG_TIMERS_INLINE];
static struct img_timer *timers_area;   /* the mapping past the inline table, or NULL */
static size_t timers_area_cap;          /* entries it holds */

/* The slot of the next timer (s->n_timers), the table grown if it is full;
 * NULL (c->err says why) if no memory for it. System calls only. */
static struct img_timer *timer_slot(struct img_capture *c, struct img_self *s)
{
	size_t cap = s->timers == timers_area && timers_area ? timers_area_cap : IMG_TIMERS_INLINE;

	if (s->n_timers < cap)
		return &s->timers[s->n_timers];
	size_t ncap = cap < 1024 ? 1024 : cap * 2;
	size_t len = (ncap * sizeof(struct img_timer) + P - 1) & ~(size_t)(P - 1);
	struct img_timer *n = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (n == MAP_FAILED) {
		img_fail(&c->err, -errno, "%u POSIX timers: no memory for a table of %zu of them: %s",
			 s->n_timers, ncap, img_strerror(errno));
		return NULL;
	}
	memcpy(n, s->timers, s->n_timers * sizeof(*n));
	if (timers_area)
		munmap(timers_area, (timers_area_cap * sizeof(*n) + P - 1) & ~(size_t)(P - 1));
	timers_area = n;
	timers_area_cap = len / sizeof(*n);
	s->timers = n;
	return &n[s->n_timers];
}

/*
 * One entry of /proc/self/timers (NUL-terminated) into the table, or left
 * out if the checks refused it (a policy let the process go on without it).
 */
static int capture_timer(struct img_capture *c, struct img_self *s, const char *e)
{
	const char *nl = strstr(e, "notify: ");
	char notify[64] = "";
	if (nl) {
		size_t n = strcspn(nl + 8, "\n");
		memcpy(notify, nl + 8, n < sizeof(notify) - 1 ? n : sizeof(notify) - 1);
	}
	struct img_timer t = {
		.id = (int32_t)line_num(e, "ID: ", 10),
		.clock = (int32_t)line_num(e, "ClockID: ", 10),
		.signo = (int32_t)line_num(e, "signal: ", 10),
		.notify = strncmp(notify, "none/", 5) ? SIGEV_SIGNAL : SIGEV_NONE,
	};
	const char *sv = strstr(e, "signal: ");
	sv = sv ? strchr(sv, '/') : NULL;
	t.value = sv ? (uint64_t)line_num(sv, "/", 16) : 0;
	const char *why = !nl || !strstr(e, "ClockID: ") ? "its entry was not understood"
			  : crac__posix_timer_refusal(notify, t.clock);
	if (why) {
		/* the checks refused it, unless a policy (warn) lets the
		 * process go on without it, as before; but where the checks
		 * saw no timer at all, a thread created it while the
		 * checkpoint ran, and no policy let it go */
		int children, timers;
		if (crac__checks_saw(c->round, &children, &timers) == 0 && !timers)
			return img_fail(&c->err, -EBUSY, "POSIX timer %d was created after the safety checks, "
					"while the checkpoint ran, and the image engine cannot create it again "
					"(%s); checkpoint again", t.id, why);
		return 0;
	}
	if (syscall(SYS_timer_gettime, t.id, &t.spec) < 0)
		return img_fail(&c->err, -errno, "POSIX timer %d: timer_gettime: %s", t.id, img_strerror(errno));
	struct img_timer *slot = timer_slot(c, s);
	if (!slot)
		return c->err.code;
	*slot = t;
	s->n_timers++;
	return 0;
}

/*
 * The POSIX timers (timer_create), from /proc/self/timers: id, signal and
 * value, notification, clock; timer_gettime gives what is left and the
 * interval. Each entry reads
 *   ID: 0 / signal: 26/00007f5ce21af200 / notify: signal/pid.28989 / ClockID: 1
 * (one per line). The checks refuse a timer crac__posix_timer_refusal
 * rejects; one that a policy let through is left out (not created again).
 * The file is read through a window of TIMERS_WINDOW bytes: an entry is
 * taken once the next one's "ID: " line (or the end) is in the window, so
 * the file may be of any size (about 80 bytes a timer).
 */
#define TIMERS_WINDOW (64 * 1024)
static int capture_timers(struct img_capture *c, struct img_self *s)
{
	static const char path[] = "/proc/self/timers";
	char *buf = img_arena_alloc(&c->arena, TIMERS_WINDOW + 1);
	size_t have = 0;
	bool eof = false;
	int fd;

	s->n_timers = 0;
	s->timers = timers_area ? timers_area : timers_inline;
	if (!buf)
		return img_fail(&c->err, -ENOMEM, "engine arena exhausted reading %s", path);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return img_fail(&c->err, -errno, "%s: %s", path, img_strerror(errno));
	while (!eof) {
		while (have < TIMERS_WINDOW) {
			ssize_t n = read(fd, buf + have, TIMERS_WINDOW - have);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				img_fail(&c->err, -errno, "%s: %s", path, img_strerror(errno));
				close(fd);
				return c->err.code;
			}
			if (n == 0) {
				eof = true;
				break;
			}
			have += (size_t)n;
		}
		buf[have] = 0;
		/* an entry starts at a line "ID: " ("ClockID: " holds those letters) */
		char *e = have && !strncmp(buf, "ID: ", 4) ? buf : NULL;
		if (have && !e) {
			close(fd);
			return img_fail(&c->err, -EPROTO, "%s: an entry does not start with \"ID: \"", path);
		}
		while (e && *e) {
			char *next = strstr(e + 4, "\nID: ");
			if (!next && !eof)
				break;   /* its end is not in the window yet */
			if (next)
				*next++ = 0;   /* this entry's text ends there */
			if (capture_timer(c, s, e) < 0) {
				close(fd);
				return c->err.code;
			}
			e = next;
		}
		/* what is left (the start of an entry) moves to the front */
		size_t rest = e ? have - (size_t)(e - buf) : 0;
		if (!eof && rest == have) {
			close(fd);
			return img_fail(&c->err, -E2BIG, "%s: an entry longer than %d bytes", path, TIMERS_WINDOW);
		}
		memmove(buf, e ? e : buf, rest);
		have = rest;
	}
	close(fd);
	return 0;
}

#define KCMP_VM_ 1

/* Up to cap-1 bytes of a /proc file into buf (open and read: nothing that
 * may take a lock of the stopped program), NUL-terminated; its length or -1. */
static long read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t n;

	if (fd < 0)
		return -1;
	while (got < cap - 1 && ((n = read(fd, buf + got, cap - 1 - got)) > 0 || (n < 0 && errno == EINTR)))
		got += n > 0 ? (size_t)n : 0;
	close(fd);
	buf[got] = 0;
	return (long)got;
}

/*
 * The safety checks looked at the process while its threads still ran: a
 * thread may have forked since. A child would not be in the image (the
 * restored process has no children): where the checks saw none, there must
 * be none now, every thread stopped. (A POSIX timer created since is
 * carried like the others, or refused by capture_timers.)
 */
static int recheck_children(struct img_capture *c)
{
	static char buf[4096];
	char path[64];
	int children, timers;

	if (crac__checks_saw(c->round, &children, &timers) < 0)
		return 0;
	for (const struct img_thread *t = &crac__img_self.thread; !children && t;
	     t = t == &crac__img_self.thread ? img_threads_list() : t->next) {
		snprintf(path, sizeof(path), "/proc/self/task/%d/children", t->tid);
		if (read_small(path, buf, sizeof(buf)) <= 0)
			continue;
		for (char *p = buf; *p;) {
			int pid = (int)strtol(p, &p, 10);
			while (*p == ' ' || *p == '\n')
				p++;
			/* crac's own helpers share our memory (image/bounded.c:
			 * one given up at its deadline may still be there) */
			if (pid <= 0 || syscall(SYS_kcmp, getpid(), pid, KCMP_VM_, 0, 0) == 0)
				continue;
			char comm[32] = "?";
			snprintf(path, sizeof(path), "/proc/%d/comm", pid);
			if (read_small(path, comm, sizeof(comm)) > 0)
				comm[strcspn(comm, "\n")] = 0;
			return img_fail(&c->err, -EBUSY, "child process %d (%s) was started by thread %d after the "
					"safety checks, while the checkpoint ran: child processes are not part of the "
					"image; checkpoint again", pid, comm, t->tid);
		}
	}
	/* a POSIX timer: capture_timers, which carries those it can */
	(void)timers;
	return 0;
}

int img_capture_process(struct img_capture *c)
{
	struct crac_img_header *h = &c->hdr;
	struct img_self *s = &crac__img_self;
	struct utsname u;
	uint64_t f[53] = { 0 };
	size_t len;

	h->created_ns = crac__now_ns(CLOCK_REALTIME);
	h->monotonic_ns = crac__now_ns(CLOCK_MONOTONIC);
	h->boottime_ns = crac__now_ns(CLOCK_BOOTTIME);
	if (uname(&u) == 0) {
		snprintf(h->kernel, sizeof(h->kernel), "%s", u.release);
		snprintf(h->machine, sizeof(h->machine), "%.15s", u.machine);
	}
	crac_img_cpu_probe(&h->cpu);
	unsigned long perm = 0;
	if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &perm) == 0)
		h->cpu.xcomp_perm = perm;
	h->pid = getpid();
	h->tid = img_gettid();

	/* The checkpointing thread. */
	memset(&s->thread, 0, sizeof(s->thread));
	img_thread_record(&s->thread);
	if (recheck_children(c) < 0)
		return c->err.code;
	/* An rseq area of the program's own (not glibc's) cannot be
	 * registered again at restore: the kernel does not say where it is.
	 * Restored without it, the program's rseq critical sections would
	 * run unprotected and its cpu_id stay frozen: refused. */
	for (const struct img_thread *t = &s->thread; t; t = t == &s->thread ? img_threads_list() : t->next)
		if (t->rseq_other)
			return img_fail(&c->err, -ENOTSUP,
					"thread %d has an rseq area of its own registered, not glibc's (a library "
					"such as tcmalloc registers one under GLIBC_TUNABLES=glibc.pthread.rseq=0): "
					"the image engine can register only glibc's again at restore; let glibc "
					"register rseq (no glibc.pthread.rseq=0)", t->tid);
	sigset_t mask;
	pthread_sigmask(SIG_BLOCK, NULL, &mask);
	memcpy(&s->thread.sigmask, &mask, sizeof(s->thread.sigmask));

	/* Pending signals: this thread's own (each stopped thread took its
	 * own in its stop handler), then the process's (image_signals.c).
	 * Given back when the threads go on, and by the restored process. */
	struct timespec now_ts;
	clock_gettime(CLOCK_MONOTONIC, &now_ts);
	int64_t now_ns = now_ts.tv_sec * 1000000000LL + now_ts.tv_nsec,
		sig_deadline = c->round ? c->round->event.deadline_monotonic : 0;
	if (sig_deadline < now_ns + 1000000000LL)
		sig_deadline = now_ns + 5000000000LL;   /* (as the stop: image.c) */
	if (img_signals_take_checkpointer(&c->arena, s->thread.tid, img_threads_main_stopped(), sig_deadline,
					  &c->err) < 0)
		return c->err.code;
	char over[400];
	if (img_signals_overflow(over, sizeof(over)))
		return img_fail(&c->err, -E2BIG, "%s", over);

	/* Signals: the kernel's view, for all 64 (glibc refuses 32 and 33). */
	for (int sig = 1; sig <= CRAC_IMG_NSIG; sig++) {
		struct k_sigaction k = { 0 };
		if (sig == IMG_STOP_SIGNAL)
			k = *img_stop_old_kact();    /* before our handler went in */
		else
			syscall(SYS_rt_sigaction, sig, NULL, &k, 8);
		memcpy(&s->sig[sig - 1], &k, sizeof(k));
	}
	memcpy(h->sig, s->sig, sizeof(h->sig));

	s->umask = umask(022);
	umask(s->umask);
	h->umask = s->umask;
	if (!getcwd(s->cwd, sizeof(s->cwd)))
		return img_fail(&c->err, -errno, "getcwd: %s", img_strerror(errno));
	for (int i = 0; i < CRAC_IMG_NRLIMIT; i++) {
		struct rlimit rl;
		if (getrlimit(i, &rl) == 0) {
			s->rlimit[i][0] = rl.rlim_cur;
			s->rlimit[i][1] = rl.rlim_max;
		}
	}
	memcpy(h->rlimit, s->rlimit, sizeof(h->rlimit));
	if (capture_timers(c, s) < 0)
		return c->err.code;
	/* The most seccomp filters a thread runs under: a restore under
	 * fewer is refused (image_attrs.c). Asked of /proc for every thread,
	 * not only where PR_GET_SECCOMP said 2: a filter may fail prctl
	 * itself (its stop handler then recorded -1), and the image said 0
	 * filters, so a restore ran the program without them. Where /proc
	 * does not tell, a thread whose PR_GET_SECCOMP did not say 0 counts
	 * one. */
	for (const struct img_thread *t = &s->thread; t; t = t == &s->thread ? img_threads_list() : t->next) {
		int64_t n = img_attrs_seccomp_filters(t->tid);
		if (n < 0)
			n = t->attrs.seccomp != 0;
		h->seccomp_filters = (uint32_t)n > h->seccomp_filters ? (uint32_t)n : h->seccomp_filters;
	}

	/* mm fields for PR_SET_MM_MAP, as the kernel shows them. */
	if (stat_fields(c, f, 53) < 0)
		return c->err.code;
	h->mm.start_code = f[26];
	h->mm.end_code = f[27];
	h->mm.start_stack = f[28];
	h->mm.start_data = f[45];
	h->mm.end_data = f[46];
	h->mm.start_brk = f[47];
	h->mm.arg_start = f[48];
	h->mm.arg_end = f[49];
	h->mm.env_start = f[50];
	h->mm.env_end = f[51];
	h->mm.brk = (uint64_t)syscall(SYS_brk, 0);
	char *auxv = read_file(c, "/proc/self/auxv", 4096, &len);
	if (!auxv)
		return c->err.code;
	if (len > sizeof(h->mm.auxv))
		return img_fail(&c->err, -E2BIG, "/proc/self/auxv: %zu bytes, more than the image holds", len);
	memcpy(h->mm.auxv, auxv, len);
	h->mm.auxv_size = (uint32_t)(len & ~15ul);
	return 0;
}

/* ---- mappings ---------------------------------------------------------------------- */

/*
 * The path of a file mapping as /proc/self/maps writes it: a newline in it
 * as "\012" (and nothing else escaped, so a real backslash sequence reads
 * the same). When the written path is not the file mapped there (device
 * and inode) and holds "\012", the path with newlines there instead is
 * taken if it is (a copy in the arena); otherwise the written one, which
 * add_file() then says is missing or replaced.
 */
static const char *maps_path(struct img_capture *c, const char *name, uint64_t dev, uint64_t ino)
{
	struct stat st;

	if (!strstr(name, "\\012") ||
	    (stat(name, &st) == 0 && (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino))
		return name;
	char *nl = img_arena_alloc(&c->arena, strlen(name) + 1);
	if (!nl)
		return name;
	size_t o = 0;
	for (const char *p = name; *p;) {
		if (!strncmp(p, "\\012", 4)) {
			nl[o++] = '\n';
			p += 4;
		} else {
			nl[o++] = *p++;
		}
	}
	nl[o] = '\0';
	if (stat(nl, &st) == 0 && (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino)
		return nl;
	return name;
}

/* Identity of a mapped file: stat + crc of its first and last page. */
static int add_file(struct img_capture *c, const char *path, uint64_t dev, uint64_t ino, uint32_t *idx)
{
	for (uint32_t i = 0; i < c->n_files; i++)
		if (c->files[i].dev == dev && c->files[i].ino == ino && !strcmp(c->file_paths[i], path)) {
			*idx = i;
			return 0;
		}
	if (c->n_files >= CRAC_IMG_MAX_FILES)
		return img_fail(&c->err, -E2BIG, "more than %u mapped files", CRAC_IMG_MAX_FILES);

	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return img_fail(&c->err, -e, "mapped file %s: %s", path, img_strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return img_fail(&c->err, -ENOTSUP, "mapping of %s (not a regular file) cannot be restored", path);
	}
	if ((uint64_t)st.st_ino != ino || (uint64_t)st.st_dev != dev) {
		close(fd);
		return img_fail(&c->err, -ESTALE, "mapped file %s was replaced after it was mapped "
				"(inode %llu mapped, %llu on disk)", path, (unsigned long long)ino,
				(unsigned long long)st.st_ino);
	}
	struct crac_img_file *f = &c->files[c->n_files];
	char *page = img_arena_alloc(&c->arena, P);
	if (!page) {
		close(fd);
		return img_fail(&c->err, -ENOMEM, "engine arena exhausted");
	}
	f->dev = (uint64_t)st.st_dev;
	f->ino = (uint64_t)st.st_ino;
	f->size = (uint64_t)st.st_size;
	f->mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	f->ctime_ns = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
	ssize_t n = pread(fd, page, P, 0);
	f->crc_head = crac_img_crc32c(0, page, n > 0 ? (size_t)n : 0);
	uint64_t tail = f->size ? (f->size - 1) / P * P : 0;
	n = pread(fd, page, P, (off_t)tail);
	f->crc_tail = crac_img_crc32c(0, page, n > 0 ? (size_t)n : 0);
	close(fd);
	c->file_paths[c->n_files] = path;
	*idx = c->n_files++;
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

char *img_maps_next(char **text)
{
	char *line = *text, *next;

	if (!*line)
		return NULL;
	next = strchr(line, '\n');
	if (next)
		*next++ = 0;
	else
		next = line + strlen(line);
	*text = next;
	return line;
}

bool img_maps_parse(const char *line, struct img_maps_line *m)
{
	int name_at = 0;

	if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu %n", &m->start, &m->end, m->perms, &m->off, &m->maj,
		   &m->min, &m->ino, &name_at) < 7)
		return false;
	m->name = line + name_at;
	return true;
}

int img_capture_maps(struct img_capture *c)
{
	struct crac_img_header *h = &c->hdr;
	size_t len;
	char *text = read_file(c, "/proc/self/maps", 32u << 20, &len);

	if (!text)
		return c->err.code;
	size_t lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	c->maps = img_arena_alloc(&c->arena, (lines + 1 + 4) * sizeof(*c->maps));
	c->files = img_arena_alloc(&c->arena, CRAC_IMG_MAX_FILES * sizeof(*c->files));
	c->file_paths = img_arena_alloc(&c->arena, CRAC_IMG_MAX_FILES * sizeof(char *));
	if (!c->maps || !c->files || !c->file_paths)
		return img_fail(&c->err, -ENOMEM, "engine arena exhausted");

	uint64_t max_pages = 0;
	struct sysinfo si;
	c->noreserve_above = UINT64_MAX;
	if (sysinfo(&si) == 0)
		c->noreserve_above = ((uint64_t)si.totalram + si.totalswap) * si.mem_unit;
	for (char *rest = text, *line; (line = img_maps_next(&rest));) {
		struct img_maps_line ml;
		if (!img_maps_parse(line, &ml))
			return img_fail(&c->err, -EINVAL, "/proc/self/maps: cannot parse \"%s\"", line);
		unsigned long long s = ml.start, e = ml.end, off = ml.off, ino = ml.ino;
		unsigned maj = ml.maj, min = ml.min;
		const char *perms = ml.perms, *name = ml.name;
		if (!strcmp(name, "[vsyscall]"))
			continue;

		/* The kernel merges our arena with an adjacent anonymous mapping
		 * of the same protection into one line: keep the parts of the
		 * line outside the engine's own ranges. */
		unsigned long long piece[8][2], n_piece = 1;
		piece[0][0] = s;
		piece[0][1] = e;
		for (int k = 0; k < c->n_skip; k++) {
			unsigned long long out[8][2], n_out = 0;
			for (unsigned long long q = 0; q < n_piece; q++) {
				unsigned long long ps = piece[q][0], pe = piece[q][1];
				if (pe <= c->skip[k][0] || ps >= c->skip[k][1]) {
					out[n_out][0] = ps, out[n_out++][1] = pe;
					continue;
				}
				if (ps < c->skip[k][0])
					out[n_out][0] = ps, out[n_out++][1] = c->skip[k][0];
				if (pe > c->skip[k][1])
					out[n_out][0] = c->skip[k][1], out[n_out++][1] = pe;
			}
			memcpy(piece, out, sizeof(out));
			n_piece = n_out;
		}
		const unsigned long long line_s = s, line_off = off;
		for (unsigned long long q = 0; q < n_piece; q++) {
		s = piece[q][0];
		e = piece[q][1];
		off = line_off + (s - line_s);

		struct img_map *im = &c->maps[c->n_maps];
		struct crac_img_map *m = &im->m;
		memset(im, 0, sizeof(*im));
		m->start = s;
		m->end = e;
		m->offset = off;
		m->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
			  (perms[2] == 'x' ? PROT_EXEC : 0);
		m->flags = perms[3] == 's' ? CRAC_MAPF_SHARED : 0;
		m->file = UINT32_MAX;
		im->name = name;
		im->dev = makedev(maj, min);
		im->ino = ino;

		if (!strcmp(name, "[vvar]") || !strcmp(name, "[vvar_vclock]") || !strcmp(name, "[vdso]")) {
			m->kind = name[2] == 'd' ? CRAC_MAP_VDSO :
				  !strcmp(name, "[vvar]") ? CRAC_MAP_VVAR : CRAC_MAP_VVAR_VCLOCK;
			if (m->kind == CRAC_MAP_VVAR && !h->vdso_block)
				h->vdso_block = s;
			if (m->kind == CRAC_MAP_VVAR)
				h->vvar_size = e - s;
			else if (m->kind == CRAC_MAP_VVAR_VCLOCK)
				h->vvar_vclock_size = e - s;
			else {
				h->vdso_size = e - s;
				h->vdso_crc = crac_img_crc32c(0, (const void *)(uintptr_t)s, e - s);
			}
		} else if (!strcmp(name, "[heap]")) {
			/* The brk area grown after its first part was registered
			 * for write tracking (image_track.c) is a second VMA (the
			 * two do not merge): recorded as anonymous memory. */
			m->kind = CRAC_MAP_HEAP;
			for (uint32_t k = 0; k < c->n_maps; k++)
				if (c->maps[k].m.kind == CRAC_MAP_HEAP)
					m->kind = CRAC_MAP_ANON;
		} else if (!strcmp(name, "[stack]")) {
			m->kind = CRAC_MAP_STACK;
		} else if (!*name || !strncmp(name, "[anon:", 6)) {
			m->kind = (m->flags & CRAC_MAPF_SHARED) ? CRAC_MAP_SHMEM : CRAC_MAP_ANON;
		} else if ((m->flags & CRAC_MAPF_SHARED) &&
			   (!strcmp(name, "/dev/zero (deleted)") || !strncmp(name, "/memfd:", 7) ||
			    !strncmp(name, "[anon_shmem:", 12))) {
			m->kind = CRAC_MAP_SHMEM;
		} else if ((m->flags & CRAC_MAPF_SHARED) && (m->prot & PROT_WRITE) &&
			   crac__jvm_perfdata(name, (long)h->pid)) {
			m->kind = CRAC_MAP_ANON;
			m->flags &= ~CRAC_MAPF_SHARED;
			im->whole = true;
		} else if (!strncmp(name, "/SYSV", 5)) {
			return img_fail(&c->err, -ENOTSUP, "SysV shared memory mapped at %#llx (%s) cannot be restored",
					s, name);
		} else if (name[0] == '/' && !ends_with(name, " (deleted)")) {
			m->kind = CRAC_MAP_FILE;
			im->name = maps_path(c, name, im->dev, ino);
			if (add_file(c, im->name, im->dev, ino, &m->file) < 0)
				return c->err.code;
		} else if (ends_with(name, " (deleted)")) {
			return img_fail(&c->err, -ENOTSUP, "mapping at %#llx of deleted file %s cannot be restored",
					s, name);
		} else {
			return img_fail(&c->err, -ENOTSUP, "special mapping %s at %#llx cannot be restored", name, s);
		}
		/* MAP_NORESERVE is not in /proc/self/maps. PROT_NONE
		 * reservations need it, and so does an anonymous mapping larger
		 * than memory and swap together, which (overcommit heuristic)
		 * only MAP_NORESERVE could create: ASan's shadow, a JVM's heap
		 * reservation. Mapped again without it, it fails with ENOMEM. */
		if (!(m->prot) || (m->kind <= CRAC_MAP_STACK && e - s > c->noreserve_above))
			m->flags |= CRAC_MAPF_NORESERVE;
		if (m->kind <= CRAC_MAP_SHMEM && !(m->kind == CRAC_MAP_FILE && (m->flags & CRAC_MAPF_SHARED)))
			max_pages += (e - s) / P;
		c->n_maps++;
		}   /* pieces */
	}
	if (!h->vdso_block || h->vvar_size + h->vvar_vclock_size + h->vdso_size == 0)
		return img_fail(&c->err, -ENOTSUP, "no [vvar]/[vdso] mapping found");

	/* The chunk table: at most one chunk per stored page. Mapped after the
	 * maps were read, so it is not part of the image. */
	c->max_chunks = max_pages < CRAC_IMG_MAX_CHUNKS ? max_pages + 1 : CRAC_IMG_MAX_CHUNKS;
	/* (From the arena when it fits, which is kept between the checkpoints
	 * of a process: its pages are touched already; see image.c.) */
	size_t want = c->max_chunks * sizeof(struct crac_img_chunk);
	c->chunk_area = img_scratch(&c->arena, want, &c->chunk_area_size);
	if (!c->chunk_area)
		return img_fail(&c->err, -errno, "chunk table (%zu bytes): %s", want, img_strerror(errno));
	c->chunks = (struct crac_img_chunk *)c->chunk_area;
	if (c->incr.on) {
		/* References: at most one per parent range, plus one per
		 * range of written pages cutting one, plus one per mapping. */
		struct img_incr *in = &c->incr;
		in->max_refs = in->n_base + c->max_chunks + c->n_maps;
		size_t rwant = in->max_refs * sizeof(struct crac_img_ref);
		in->refs = img_scratch(&c->arena, rwant, &in->refs_area_size);
		if (!in->refs)
			return img_fail(&c->err, -errno, "reference table (%zu bytes): %s", rwant, img_strerror(errno));
	}
	return 0;
}

/* ---- pages ---------------------------------------------------------------------- */

/* ---- secret regions ------------------------------------------------------------ */

static int add_secret(void *ptr, size_t len, void *arg)
{
	struct img_capture *c = arg;

	if (c->n_secrets == c->max_secrets)
		return -E2BIG;
	c->secrets[c->n_secrets].start = (uint64_t)(uintptr_t)ptr;
	c->secrets[c->n_secrets].end = (uint64_t)(uintptr_t)ptr + len;
	c->n_secrets++;
	return 0;
}

int img_capture_secrets(struct img_capture *c)
{
	c->max_secrets = 4096;
	c->secrets = img_arena_alloc(&c->arena, c->max_secrets * sizeof(*c->secrets));
	if (!c->secrets)
		return img_fail(&c->err, -ENOMEM, "engine arena exhausted");
	int rc = crac__secret_foreach(add_secret, c);
	if (rc == -E2BIG)
		return img_fail(&c->err, rc, "more than %u secret regions: the image engine cannot zero them all",
				c->max_secrets);
	if (rc < 0)
		return img_fail(&c->err, rc, "secret regions: %s (a thread holds the registry lock)",
				img_strerror(-rc));
	return 0;
}

/* Zeroes, in a copy of [s, s+len) at buf, the bytes of every secret region. */
static void zero_secrets(const struct img_capture *c, char *buf, uint64_t s, uint64_t len)
{
	for (uint32_t i = 0; i < c->n_secrets; i++) {
		uint64_t a = c->secrets[i].start > s ? c->secrets[i].start : s;
		uint64_t b = c->secrets[i].end < s + len ? c->secrets[i].end : s + len;
		if (a < b)
			memset(buf + (a - s), 0, b - a);
	}
}

static bool has_secret(const struct img_capture *c, uint64_t s, uint64_t len)
{
	for (uint32_t i = 0; i < c->n_secrets; i++)
		if (c->secrets[i].start < s + len && c->secrets[i].end > s)
			return true;
	return false;
}

/* Does [s, s + len) come within w bytes of address a? */
static bool near(uint64_t s, uint64_t len, uint64_t a, uint64_t w)
{
	return s < a + w && s + len + w > a;
}

/* AddressSanitizer's shadow byte of address a (x86-64 default mapping). */
#define IMG_ASAN_SHADOW(a) (((a) >> 3) + 0x7fff8000ull)

/* ---- fsync on the other core ---------------------------------------------------- */

/*
 * Making the image durable costs about as much as everything else in a
 * small (incremental) checkpoint: on this kind of VM an fsync waits for the
 * host to write the data it holds for the guest's disk (~1 ms per MiB), and
 * each of the three fsyncs (header, pages, directory) is a journal commit
 * and a device flush (1-4 ms each). Meanwhile this thread has CPU work:
 * scanning and write-protecting the written pages again (bench/wp_probe.c:
 * a TLB flush per 2 MiB with written pages, ~20 ms for 1% of 1 GiB spread
 * out). So a helper does the waiting, on the other core: every
 * IMG_EARLY_SYNC bytes of the pages file it fdatasyncs what is written so
 * far while the scan goes on (from IMG_EARLY_SYNC_FROM bytes on: a task
 * of our address space on the other CPU makes every TLB flush of the
 * write-protect scan interrupt it, bench/wp_probe.c "busy"; a small
 * incremental image measured shorter stops without them: threads stopped
 * 111/90/94 ms against 123/140/106 in 3 alternating pairs at a load of 7-8,
 * whole call 164/143/134 against 163/183/134), and at the end it fsyncs the pages file, the
 * header and the directory while the other threads already run again and
 * this thread reads the image back (image.c: every byte is in the page
 * cache by then; the rename waits for the fsyncs).
 *
 * The helper is one of image/bounded.c's (a clone child of our address
 * space, never one of the program's threads that are stopped, raw system
 * calls only, every signal blocked; see there), on a stack in the arena;
 * not used under a seccomp filter. CRAC_IMAGE_SYNC_HELPER=0, or clone
 * refused: fsync in this thread (bounded too: image/dir.c's
 * crac_img_fsync_fd).
 *
 * At the end there are two more: one fsyncs the pages file, the other the
 * header and the directory, while the early one may still be at its
 * fdatasync; the other threads run again meanwhile, and the checkpointing
 * thread only waits, for a bounded time:
 * an fsync that does not return (an NFS or FUSE server that stopped
 * answering) would otherwise keep the program stopped forever. Waiting for
 * a helper ends at the checkpoint's deadline, and never sooner than
 * CRAC_BOUNDED_GRACE_MS after the wait began (the deadline is for the
 * callbacks; the pages are written after it). Then the helper is killed
 * (it runs no instruction of ours again, whenever its fsync returns), left
 * to be reaped later (crac_bounded_reap), and the checkpoint fails naming
 * the file it was making durable: the program runs on, the image in place
 * is untouched.
 */
#define IMG_EARLY_SYNC (4ull << 20)
#define IMG_SYNCERS 3
#define IMG_EARLY_SYNC_FROM (32ull << 20)

struct img_syncer {
	struct crac_bounded helper;   /* helper.pid 0: not running */
	int n;
	int fd[2];
	bool data_only[2];
	const char *what[2];
	int res[2];             /* 0 or -errno, written by the helper */
	long slow_ms;           /* CRAC_TEST_SLOW_SYNC_MS: tests only */
	char *stack;            /* CRAC_BOUNDED_STACK bytes of the arena */
};

/*
 * The helper's work: raw system calls only (it shares our TLS).
 * CRAC_TEST_SLOW_SYNC_MS=N (tests/cli/image_sync_stuck.bats only): it
 * first sleeps N ms before each fsync, a file system that does not answer.
 */
static void syncer_run(void *arg)
{
	struct img_syncer *s = arg;

	for (int i = 0; i < s->n; i++) {
		crac_bounded_test_sleep(s->slow_ms);
		s->res[i] = (int)crac_raw_syscall3(s->data_only[i] ? SYS_fdatasync : SYS_fsync, s->fd[i], 0, 0);
	}
}

/* Before the threads stop: binds clone (lazy binding writes the GOT),
 * reaps the helpers of earlier checkpoints given up on, and takes the
 * helpers' memory from the arena. */
static void sync_open(struct img_capture *c)
{
	const char *e = getenv("CRAC_IMAGE_SYNC_HELPER");
	const char *slow = getenv("CRAC_TEST_SLOW_SYNC_MS");

	crac_bounded_reap();
	crac_img_fs_prepare();   /* the helpers, and sync_here's bounded fsync (image/dir.c) */
	c->syncer = NULL;
	c->sync_at = 0;
	c->sync_err = 0;
	c->sync_what = NULL;
	if (e && !strcmp(e, "0"))
		return;
	/* A seccomp filter may kill a process for a clone it did not expect. */
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 0)
		return;
	/* three: c->syncer[0] (the early fdatasyncs), c->syncer[1] (the pages
	 * file, at the end) and c->syncer[2] (the header and the directory,
	 * at the end) */
	struct img_syncer *s = img_arena_alloc(&c->arena, IMG_SYNCERS * (sizeof(*s) + CRAC_BOUNDED_STACK));
	if (!s)
		return;
	for (int i = 0; i < IMG_SYNCERS; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		s[i].stack = (char *)(s + IMG_SYNCERS) + i * CRAC_BOUNDED_STACK;
		s[i].slow_ms = slow ? strtol(slow, NULL, 10) : 0;
	}
	c->syncer = s;
}

static void sync_note(struct img_capture *c, int res, const char *what)
{
	if (res < 0 && !c->sync_err) {
		c->sync_err = res;
		c->sync_what = what;
	}
}

/*
 * Waits for one helper (or only looks); true when it does not run (any
 * more). A wait ends at the checkpoint's deadline, CRAC_BOUNDED_GRACE_MS
 * from now at the earliest, at once when the other helper was given up on
 * (the file system does not answer: no more waiting). A helper given up on
 * is killed and left to a later checkpoint to reap (whenever its fsync
 * returns, it runs nothing of ours: the arena, its stack, may be gone by
 * then); the file it was at is the error.
 */
static bool syncer_join(struct img_capture *c, struct img_syncer *s, bool wait)
{
	if (!s || !s->helper.pid)
		return true;
	if (!wait && !crac_bounded_done(&s->helper))
		return false;   /* still at it */
	int64_t deadline = c->round ? c->round->event.deadline_monotonic : 0, waited;
	long grace_ms = crac_bounded_grace_ms();
	if (c->sync_err == -ETIMEDOUT)
		deadline = grace_ms = 0;
	if (crac_bounded_wait(&s->helper, deadline, grace_ms, &waited) == -ETIMEDOUT) {
		int i = 0;
		while (i < s->n - 1 && s->res[i] != -EINPROGRESS)
			i++;
		if (!c->sync_err) {
			c->sync_err = -ETIMEDOUT;
			c->sync_what = s->what[i];
			c->sync_data_only = s->data_only[i];
			c->sync_waited_ms = waited;
		}
		return true;
	}
	for (int i = 0; i < s->n; i++)
		sync_note(c, s->res[i], s->what[i]);
	return true;
}

/* Every helper. */
static bool sync_join(struct img_capture *c, bool wait)
{
	bool all = true;

	for (int i = 0; i < IMG_SYNCERS; i++)
		all &= syncer_join(c, c->syncer ? c->syncer + i : NULL, wait);
	return all;
}

/* fsync (or fdatasync) of up to two descriptors by the helper; false if it
 * could not start (nothing done then). */
static bool sync_spawn(struct img_capture *c, struct img_syncer *s, int n, const int *fd, const bool *data_only,
		       const char *const *what)
{
	if (!s || !syncer_join(c, s, true) || c->sync_err == -ETIMEDOUT)
		return false;
	s->n = n;
	for (int i = 0; i < n; i++) {
		s->fd[i] = fd[i];
		s->data_only[i] = data_only[i];
		s->what[i] = what[i];
		s->res[i] = -EINPROGRESS;
	}
	if (crac_bounded_start(&s->helper, syncer_run, s, s->stack) < 0) {
		if (s == c->syncer)
			c->syncer = NULL;   /* not again this time */
		return false;
	}
	return true;
}

/* During the scan: the pages file's data written so far goes to the disk
 * (one fdatasync at a time; the page cache's: O_DIRECT data is there). */
static void sync_early(struct img_capture *c)
{
	const int fd[1] = { c->pages_fd };
	const bool data_only[1] = { true };
	const char *const what[1] = { CRAC_IMG_PAGES_FILE };

	if (!c->syncer || c->w.mode == IMG_WRITE_DIRECT || c->w.at < IMG_EARLY_SYNC_FROM ||
	    c->w.at < c->sync_at + IMG_EARLY_SYNC || !sync_join(c, false))
		return;
	if (sync_spawn(c, c->syncer, 1, fd, data_only, what))
		c->sync_at = c->w.at;
}

/*
 * Without a helper of ours (CRAC_IMAGE_SYNC_HELPER=0, clone refused): the
 * fsync is image/dir.c's bounded one, given up on at the deadline (30 s at
 * least) as a helper is; nothing more after one was given up on.
 */
static void sync_here(struct img_capture *c, int fd, bool data_only, const char *what)
{
	int64_t waited;

	if (c->sync_err == -ETIMEDOUT)
		return;
	int rc = crac_img_fsync_fd(fd, data_only, &waited);
	if (rc == -ETIMEDOUT && waited >= 0) {
		c->sync_err = -ETIMEDOUT;
		c->sync_what = what;
		c->sync_data_only = data_only;
		c->sync_waited_ms = waited;
		return;
	}
	sync_note(c, rc, what);
}

/* An error of any fsync, or of an early fdatasync, fails the checkpoint
 * (an error is reported to one fsync only), and so does a helper given up
 * on (syncer_join). */
static int sync_result(struct img_capture *c)
{
	if (c->sync_err == -ETIMEDOUT)
		return img_fail(&c->err, -ETIMEDOUT, "%s %s%s%s did not return after %lld ms (the checkpoint's "
				"deadline, and %ld s at least): the image's file system does not answer; given "
				"up, no image was written, the program goes on", c->sync_data_only ? "fdatasync" :
				"fsync", c->tmp, *c->sync_what ? "/" : "", c->sync_what,
				(long long)c->sync_waited_ms, crac_bounded_grace_ms() / 1000);
	if (c->sync_err)
		return img_fail(&c->err, c->sync_err, "fsync %s%s%s: %s", c->tmp, *c->sync_what ? "/" : "",
				c->sync_what, img_strerror(-c->sync_err));
	return 0;
}

/*
 * The final fsyncs: the header (fd, kept open until then) and the
 * directory by one helper, the pages file by another, at the same time.
 * With the helpers, they are started here and img_capture_synced waits for
 * them (for a bounded time): the other threads run meanwhile (every byte
 * is in the page cache and the pipe is drained: nothing of the program's
 * memory is needed any more) and the image is read back while the disk
 * works. What a helper cannot do is done here. An early fdatasync still
 * running is not waited for here either (the threads stayed stopped for
 * it: 385 ms of a 932 ms stop in a first checkpoint of 1 GiB), only
 * looked at: the final fsync of the pages file covers what it was at, and
 * img_capture_synced waits for it with the others.
 */
static int sync_final(struct img_capture *c, int fd)
{
	const int fds[2] = { fd, c->dir_fd };
	const bool data_only[2] = { false, false };
	const char *const what[2] = { CRAC_IMG_HEADER_FILE, "" };
	const char *const pages[1] = { CRAC_IMG_PAGES_FILE };
	const bool pages_data_only[1] = { false };

	c->header_fd = fd;
	sync_join(c, false);
	if (c->sync_err == -ETIMEDOUT)
		return sync_result(c);
	if (!c->syncer || !sync_spawn(c, c->syncer + 2, 2, fds, data_only, what))
		for (int i = 0; i < 2; i++)
			sync_here(c, fds[i], false, what[i]);
	if (!c->syncer || !sync_spawn(c, c->syncer + 1, 1, &c->pages_fd, pages_data_only, pages))
		sync_here(c, c->pages_fd, false, CRAC_IMG_PAGES_FILE);
	return sync_result(c);
}

int img_capture_synced(struct img_capture *c)
{
	sync_join(c, true);
	if (c->header_fd >= 0)
		close(c->header_fd);
	c->header_fd = -1;
	return sync_result(c);
}

/* Records chunk [s, s + len) of mapping `mi`, its bytes at src, and queues
 * them for the pages file (image_write.c). */
static int store_chunk(struct img_capture *c, uint32_t mi, uint64_t s, uint64_t len, const void *src)
{
	struct crac_img_map *m = &c->maps[mi].m;

	if (c->n_chunks >= c->max_chunks)
		return img_fail(&c->err, -E2BIG, "too many page chunks");
	struct crac_img_chunk *k = &c->chunks[c->n_chunks];
	k->addr = s;
	k->offset = c->pages_size;
	k->len = (uint32_t)len;
	k->zlen = 0;
	k->map = mi;
	int64_t queued = 0;
	if (c->z.level) {
		/* --compress: the crc now, of the bytes compressed or copied
		 * (every chunk: the flush takes none then; a chunk stored as it
		 * is goes as a copy made now, whose crc img_write_copy takes,
		 * since this thread may write to those pages before the flush).
		 * The chunk holding the resume block is stored as it is: restore
		 * checks it before anything else (image/check.c reads it
		 * straight from the pages file). */
		uint64_t res = (uint64_t)(uintptr_t)&crac__img_self.resume;
		if (near(s, len, res, sizeof(struct crac_img_resume))) {
			queued = img_write_copy(c, k, src);
		} else {
			k->crc = crac_img_crc32c(0, src, len);
			queued = img_write_compressed(c, k, src);
		}
		if (queued < 0)
			return (int)queued;
	} else {
		/* The crc is taken when the queue is written (img_write_flush),
		 * right before the bytes go to the kernel; a copy's (the bounce
		 * buffer) now, since the flush takes it from the program's pages. */
		k->crc = src != (const void *)(uintptr_t)s ? crac_img_crc32c(0, src, len) : 0;
	}
	int rc = queued ? 0 : img_write_queue(c, src, len);
	if (rc < 0)
		return rc;
	m->n_chunks++;
	m->stored += len;
	c->n_chunks++;
	c->pages_size += queued ? (uint64_t)queued : len;
	if (c->z.level)
		c->w.crc_from = c->n_chunks;
	return 0;
}

/*
 * All-zero pages of anonymous memory (private anonymous, heap, stack,
 * shared anonymous / memfd) are left out: the loader maps such memory
 * anonymous, so a page without a chunk reads as zero (eager restore), and
 * the lazy loader gives it the zero page (UFFDIO_ZEROPAGE). Never for a
 * private file mapping: a page without a chunk comes back from the file,
 * and the program's zeros are not the file's bytes.
 */
static bool zero_skippable(const struct crac_img_map *m)
{
	return m->kind == CRAC_MAP_ANON || m->kind == CRAC_MAP_HEAP || m->kind == CRAC_MAP_STACK ||
	       m->kind == CRAC_MAP_SHMEM;
}

/* Appends [s, e) of mapping `mi` to the pages file, in chunks of at most
 * CRAC_IMG_CHUNK_SMALL or CRAC_IMG_CHUNK_MAX
 * (runs of non-zero pages where zero pages are left out). */
static int store_range(struct img_capture *c, uint32_t mi, uint64_t s, uint64_t e)
{
	struct crac_img_map *m = &c->maps[mi].m;
	bool skip_zero = zero_skippable(m) && !c->w.keep_zero;
	int rc;

	/* chunk size: see CRAC_IMG_CHUNK_SMALL (image/image.h) */
	uint64_t most = m->end - m->start < CRAC_IMG_CHUNK_SMALL_MAP && !c->z.level ? CRAC_IMG_CHUNK_SMALL
										      : CRAC_IMG_CHUNK_MAX;
	while (s < e) {
		/* cut where the address is a multiple of `most`: a 2 MiB block
		 * of a mapping stored whole is then whole chunks, which a lazy
		 * restore moves in as one huge page (engines/image_lazy.c,
		 * move_block), wherever the mapping starts */
		uint64_t len = most - (s & (most - 1));
		if (len > e - s)
			len = e - s;
		/* Our own stack changes under our feet (the frames of the crc
		 * and write calls), and so does our TLS block (errno; the kernel
		 * updates the rseq area at fs + __rseq_offset when we migrate):
		 * copy such a chunk first, so the crc matches the bytes written.
		 * Stopped threads do not run, so their memory stays still.
		 * Under AddressSanitizer the shadow of our stack changes too (the
		 * redzones of instrumented frames): its shadow window is copied
		 * the same way (a harmless copy where there is no ASan).
		 * (The frame address, not a local's: ASan may keep locals on a
		 * fake stack.) Zero pages of such a chunk are those of the copy. */
		uint64_t sp = (uint64_t)(uintptr_t)__builtin_frame_address(0);
		uint64_t fs = crac__img_self.thread.ctx.fs_base;
		const uint64_t W = 1u << 20;
		bool secret = has_secret(c, s, len);
		const char *src = (const char *)(uintptr_t)s;
		if (secret || near(s, len, sp, W) || near(s, len, fs, W) ||
		    near(s, len, IMG_ASAN_SHADOW(sp), W >> 3)) {
			if (!c->bounce) {
				/* page-aligned: O_DIRECT writes it */
				char *b = img_arena_alloc(&c->arena, CRAC_IMG_CHUNK_MAX + P);
				if (!b)
					return img_fail(&c->err, -ENOMEM, "engine arena exhausted");
				c->bounce = (char *)(((uintptr_t)b + P - 1) & ~(uintptr_t)(P - 1));
			}
			/* The queue may hold the previous use of the bounce. */
			if ((rc = img_write_sync(c)) < 0)
				return rc;
			img_copy_raw(c->bounce, src, len);
			if (secret)   /* the secret never reaches the file */
				zero_secrets(c, c->bounce, s, len);
			src = c->bounce;
		}
		if (!skip_zero) {
			if ((rc = store_chunk(c, mi, s, len, src)) < 0)
				return rc;
		} else {
			/* Runs of non-zero pages, each its own chunk (of the copy,
			 * if there is one: its zeros are what is stored). */
			for (uint64_t a = 0; a < len;) {
				if (img_page_is_zero(src + a)) {
					c->w.zero_pages++;
					a += P;
					continue;
				}
				uint64_t b = a + P;
				while (b < len && !img_page_is_zero(src + b))
					b += P;
				if ((rc = store_chunk(c, mi, s + a, b - a, src + a)) < 0)
					return rc;
				a = b;
			}
		}
		if (src == c->bounce) {
			c->w.crc_from = c->n_chunks;   /* their crc is the copy's */
			if ((rc = img_write_flush(c)) < 0)
				return rc;
		}
		s += len;
		img_progress(c);
	}
	return 0;
}

/* Is this page worth storing, given its categories? */
static bool wanted(const struct crac_img_map *m, uint64_t cat)
{
	if (m->kind == CRAC_MAP_SHMEM)
		return true;
	return !(cat & (IMG_PAGE_IS_FILE | IMG_PAGE_IS_PFNZERO));
}

/* Where extent i of a chunk table, of a reference table, ends. */
static uint64_t chunk_end(const void *tab, uint64_t i)
{
	const struct crac_img_chunk *k = tab;

	return k[i].addr + k[i].len;
}

static uint64_t ref_end(const void *tab, uint64_t i)
{
	const struct crac_img_ref *r = tab;

	return r[i].addr + r[i].len;
}

/* The index of the first of the n extents of tab (in address order, never
 * overlapping: a chunk or reference table) that ends after addr; n if
 * none. end(tab, i): where extent i ends. */
static uint64_t first_ending_after(const void *tab, uint64_t n, uint64_t addr,
				   uint64_t (*end)(const void *tab, uint64_t i))
{
	uint64_t lo = 0, hi = n;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (end(tab, mid) <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Incremental: [s, e) of mapping mi was not written since the parent, so
 * it holds what the parent holds: references to the chunks holding that
 * (c->incr.pchunks and c->incr.prefs), nothing where the parent holds
 * nothing (zeros). Stored instead where a secret region or the resume block lies (the parent's
 * bytes there are not the ones to restore), and near our own stack and
 * thread pointer (written under our feet, see store_range).
 */
/*
 * Whether [s, s + len) of mapping `mi` may change under the capture itself,
 * so that it must be stored, never taken from the images below: a secret
 * region (stored as zeros), the resume block, and the pages within 1 MiB of
 * our own stack pointer or thread pointer (our stack frames, errno, the rseq
 * area), which we write while the capture runs. Only inside the mapping that
 * holds that address: a stack or TLS block never spans two mappings, and a
 * window reaching into the next mapping would store up to 1 MiB of a
 * neighbour every time (a heap that happens to lie right below the main
 * thread's TLS, depending on ASLR).
 */
static bool own_or_secret(struct img_capture *c, uint32_t mi, uint64_t s, uint64_t len)
{
	const struct crac_img_map *m = &c->maps[mi].m;
	uint64_t res = (uint64_t)(uintptr_t)&crac__img_self.resume;
	uint64_t sp = (uint64_t)(uintptr_t)__builtin_frame_address(0), fs = crac__img_self.thread.ctx.fs_base;
#define IN_MAP(a) ((a) >= m->start && (a) < m->end)
	return has_secret(c, s, len) || (IN_MAP(res) && near(s, len, res, sizeof(struct crac_img_resume))) ||
	       (IN_MAP(sp) && near(s, len, sp, 1u << 20)) || (IN_MAP(fs) && near(s, len, fs, 1u << 20));
#undef IN_MAP
}

static int add_refs(struct img_capture *c, uint32_t mi, uint64_t s, uint64_t e)
{
	struct img_incr *in = &c->incr;
	int rc;

	if (own_or_secret(c, mi, s, e - s)) {
		/* page by page: only the pages concerned are stored */
		for (uint64_t a = s; a < e; a += P) {
			bool store = own_or_secret(c, mi, a, P);
			uint64_t z = a + P;
			while (z < e && own_or_secret(c, mi, z, P) == store)
				z += P;
			rc = store ? store_range(c, mi, a, z) : add_refs(c, mi, a, z);
			if (rc < 0)
				return rc;
			a = z - P;
		}
		return 0;
	}
	/* the first parent chunk and the first parent reference ending after s */
	const struct crac_img_chunk *pc = in->pchunks;
	const struct crac_img_ref *pr = in->prefs;
	uint64_t i = first_ending_after(pc, in->n_pchunks, s, chunk_end);
	uint64_t j = first_ending_after(pr, in->n_prefs, s, ref_end);
	/* both in address order (they never overlap) */
	for (;;) {
		bool chunk_next = i < in->n_pchunks && pc[i].addr < e &&
				  !(j < in->n_prefs && pr[j].addr < pc[i].addr);
		if (!chunk_next && !(j < in->n_prefs && pr[j].addr < e))
			break;
		struct crac_img_ref b = chunk_next ?
			(struct crac_img_ref){ .addr = pc[i].addr, .len = pc[i].len, .depth = 1, .chunk = (uint32_t)i } :
			(struct crac_img_ref){ .addr = pr[j].addr, .len = pr[j].len, .depth = pr[j].depth + 1,
					       .chunk = pr[j].chunk };
		if (chunk_next)
			i++;
		else
			j++;
		uint64_t rs = b.addr > s ? b.addr : s;
		uint64_t re = b.addr + b.len < e ? b.addr + b.len : e;
		if (rs >= re)
			continue;
		struct crac_img_ref *last = in->n_refs ? &in->refs[in->n_refs - 1] : NULL;
		if (last && last->addr + last->len == rs && last->depth == b.depth && last->chunk == b.chunk &&
		    last->map == mi) {
			last->len += re - rs;
		} else {
			if (in->n_refs >= in->max_refs)
				return img_fail(&c->err, -E2BIG, "too many page references");
			in->refs[in->n_refs++] = (struct crac_img_ref){ .addr = rs, .len = re - rs, .depth = b.depth,
									.chunk = b.chunk, .map = mi };
		}
		c->maps[mi].m.flags |= CRAC_MAPF_REFS;
		in->ref_bytes += re - rs;
	}
	return 0;
}

/*
 * Calls store_range for every run of wanted pages of mapping `mi`.
 * With PAGEMAP_SCAN: ranges of equal categories from the kernel. Without:
 * /proc/self/pagemap entries (the zero page is then recognised by content).
 */
static int scan_map(struct img_capture *c, uint32_t mi)
{
	struct crac_img_map *m = &c->maps[mi].m;
	enum { NV = 1024, NE = 3072 };
	/* Scratch from the arena, never from libcrac's data: that is part of
	 * the image, and the queued pages are written after their crc was
	 * taken (image_write.c), so memory the scan changes must not be in it. */
	if (!c->scan_vec && !(c->scan_vec = img_arena_alloc(&c->arena, 2 * NV * sizeof(struct img_page_region))))
		return img_fail(&c->err, -ENOMEM, "engine arena exhausted");
	struct img_page_region *vec = c->scan_vec;
	uint64_t run_s = 0, run_e = 0;           /* pending run, merged across calls */
	int rc;

	if (m->kind == CRAC_MAP_SHMEM || c->maps[mi].whole)
		return store_range(c, mi, m->start, m->end);
	bool refs = c->incr.on && img_track_eligible(m);
	/* Keep-running with tracking: what is captured now is the base of the
	 * next incremental checkpoint. The scan itself protects the written
	 * pages again as it reports them (PM_SCAN_WP_MATCHING, atomic per
	 * page), so a write after it, ours included, is seen next time. The
	 * mapping is registered first (the first time; a mapping that cannot
	 * be is stored whole next time). Holes are never protected: the scan
	 * takes present and swapped pages only (image_track.c). */
	bool wp = c->use_scan && c->incr.reset && img_track_eligible(m) && img_track_register(m->start, m->end) == 0;

	if (c->use_scan) {
		/*
		 * The kernel may return regions beyond the walk_end it reports
		 * (seen on 6.18 once a call returns more than its internal
		 * 512-entry buffer: walk_end stays at the buffer flush while
		 * the regions go on), and the next call from walk_end returns
		 * them again. Overlapping chunks make the image unreadable, so
		 * never take an address twice: `seen` is the end of the last
		 * region handed out, and the next call starts at or after it.
		 */
		uint64_t seen = m->start;
		/*
		 * PAGE_IS_FILE only where a page can be one: asking for it makes
		 * the kernel look up every present page's struct page (a cache
		 * miss each), which was most of the scan of a large heap (1 GiB:
		 * 4-40 ms of a 5-50 ms scan; bench/wp_probe.c). A private
		 * anonymous mapping holds anonymous pages and the zero page only
		 * (PAGE_IS_PFNZERO is read from the page table entry).
		 */
		uint64_t file_bit = m->kind == CRAC_MAP_FILE ? IMG_PAGE_IS_FILE : 0;
		for (uint64_t at = m->start; at < m->end;) {
			struct img_pm_scan_arg arg = {
				.size = sizeof(arg), .flags = wp ? 1 /* PM_SCAN_WP_MATCHING */ : 0, .start = at, .end = m->end,
				.vec = (uint64_t)(uintptr_t)vec, .vec_len = NV,
				.category_anyof_mask = IMG_PAGE_IS_PRESENT | IMG_PAGE_IS_SWAPPED,
				.return_mask = IMG_PAGE_IS_PRESENT | IMG_PAGE_IS_SWAPPED | file_bit | IMG_PAGE_IS_PFNZERO |
					       IMG_PAGE_IS_WPALLOWED | IMG_PAGE_IS_WRITTEN,
			};
			/* raw system calls: no ASan interceptor runs meanwhile */
			int64_t t0 = crac__now_ns(CLOCK_MONOTONIC);
			int n = (int)syscall(SYS_ioctl, c->pagemap_fd, IMG_PAGEMAP_SCAN, &arg);
			c->incr.t_scan_ns += crac__now_ns(CLOCK_MONOTONIC) - t0;
			if (n < 0)
				return img_fail(&c->err, -errno, "PAGEMAP_SCAN of %#llx-%#llx: %s",
						(unsigned long long)at, (unsigned long long)m->end, img_strerror(errno));
			for (int i = 0; i < n; i++) {
				uint64_t rs = vec[i].start > seen ? vec[i].start : seen;
				uint64_t re = vec[i].end < m->end ? vec[i].end : m->end;
				if (re <= rs)
					continue;   /* already handed out */
				seen = re;
				/* Not written since the parent (tracked, write
				 * bit clear: never a hole, see image_track.c). */
				if (refs && (vec[i].categories & IMG_PAGE_IS_WPALLOWED) &&
				    !(vec[i].categories & IMG_PAGE_IS_WRITTEN)) {
					if (run_e > run_s && (rc = store_range(c, mi, run_s, run_e)) < 0)
						return rc;
					run_s = run_e = 0;
					if ((rc = add_refs(c, mi, rs, re)) < 0)
						return rc;
					continue;
				}
				if (!wanted(m, vec[i].categories))
					continue;
				if (run_e == rs) {
					run_e = re;
					continue;
				}
				if (run_e > run_s && (rc = store_range(c, mi, run_s, run_e)) < 0)
					return rc;
				run_s = rs;
				run_e = re;
			}
			sync_early(c);
			uint64_t next = arg.walk_end > seen ? arg.walk_end : seen;
			if (next <= at)
				break;
			at = next;
		}
	} else {
		uint64_t *ent = (uint64_t *)vec;   /* NE entries fit */
		_Static_assert(NE * sizeof(uint64_t) <= NV * sizeof(struct img_page_region), "scratch");
		for (uint64_t at = m->start; at < m->end;) {
			uint64_t n = (m->end - at) / P;
			if (n > NE)
				n = NE;
			ssize_t got = syscall(SYS_pread64, c->pagemap_fd, ent, n * 8, (off_t)(at / P * 8));
			if (got < (ssize_t)(n * 8))
				return img_fail(&c->err, got < 0 ? -errno : -EIO, "/proc/self/pagemap at %#llx: %s",
						(unsigned long long)at, got < 0 ? img_strerror(errno) : "short read");
			for (uint64_t i = 0; i < n; i++, at += P) {
				uint64_t v = ent[i];
				bool want = false;
				if (v & PM_SWAPPED)
					want = true;
				else if ((v & PM_PRESENT) && !(v & PM_FILE)) {
					/* not exclusive: the zero page or shared with a
					 * parent after fork; only the content tells */
					want = true;
					if (!(v & PM_EXCLUSIVE) && (m->prot & PROT_READ))
						want = !img_page_is_zero((const void *)(uintptr_t)at);
				}
				if (!want)
					continue;
				if (run_e == at) {
					run_e = at + P;
					continue;
				}
				if (run_e > run_s && (rc = store_range(c, mi, run_s, run_e)) < 0)
					return rc;
				run_s = at;
				run_e = at + P;
			}
		}
	}
	if (run_e > run_s && (rc = store_range(c, mi, run_s, run_e)) < 0)
		return rc;
	/* Keep-running with tracking: what was just captured is the base of
	 * the next incremental checkpoint: protect the written pages again
	 * (registering the mapping the first time). */
	return 0;
}

/*
 * Success is verified: the chunks that hold a thread's stack top and TLS
 * (within 1 MiB of its saved stack pointer or thread pointer, ours too) are
 * read back from the pages file and their crc compared with the one taken
 * when they were queued. Those are the pages that change if a thread runs
 * when it should not (a stopped thread before its wait, see wait_at_rest
 * in image_threads.c; ours, copied first, see store_range), which would
 * leave an image that every restore refuses. A few MiB per thread, from
 * the page cache.
 */
static int verify_thread_chunks(struct img_capture *c)
{
	const uint64_t W = 1u << 20;
	uint64_t own[2] = { (uint64_t)(uintptr_t)__builtin_frame_address(0), crac__img_self.thread.ctx.fs_base };
	char *buf = img_arena_alloc(&c->arena, CRAC_IMG_CHUNK_MAX);
	int fd = -1, rc = 0;
	struct crac_img_crc crc;

	if (!buf)
		return img_fail(&c->err, -ENOMEM, "engine arena exhausted");
	crac_img_crc32c_prepare(&crc);
	for (const struct img_thread *t = img_threads_list();; t = t->next) {
		/* every stopped thread, then this one (t == NULL) */
		uint64_t at[2] = { t ? t->sp : own[0], t ? t->ctx.fs_base : own[1] };
		for (int w = 0; w < 2 && rc == 0; w++) {
			if (!at[w])
				continue;
			/* the first chunk ending after at - W (chunks follow addresses) */
			uint64_t from = at[w] > W ? at[w] - W : 0;
			for (uint64_t i = first_ending_after(c->chunks, c->n_chunks, from, chunk_end); i < c->n_chunks && c->chunks[i].addr < at[w] + W; i++) {
				const struct crac_img_chunk *k = &c->chunks[i];
				if (fd < 0 && (fd = openat(c->dir_fd, CRAC_IMG_PAGES_FILE, O_RDONLY | O_CLOEXEC)) < 0) {
					rc = img_fail(&c->err, -errno, "%s/%s for reading back: %s", c->tmp,
						      CRAC_IMG_PAGES_FILE, img_strerror(errno));
					break;
				}
				/* read, decompressed if it is, its crc checked (image/chunk.c) */
				long n = crac_img_chunk_read(fd, k, buf, c->z.zbuf, c->z.zbuf ? CRAC_IMG_CHUNK_MAX : 0,
							     c->z.dctx, &crc);
				if (n != 0 && n != CRAC_CHUNK_CRC) {
					rc = img_fail(&c->err, n < 0 ? (int)n : -EIO, "reading back chunk #%llu from %s/%s: %s",
						      (unsigned long long)i, c->tmp, CRAC_IMG_PAGES_FILE,
						      n < 0 ? img_strerror((int)-n) : crac_img_chunk_why(n));
					break;
				}
				if (n == CRAC_CHUNK_CRC) {
					rc = img_fail(&c->err, -EIO, "page data of chunk #%llu (%llu bytes at %#llx, the "
						      "stack or TLS of thread %d) changed while it was written: the image "
						      "would not restore", (unsigned long long)i,
						      (unsigned long long)k->len, (unsigned long long)k->addr,
						      t ? t->tid : img_gettid());
					break;
				}
			}
		}
		if (rc < 0 || !t)
			break;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

int img_capture_pages(struct img_capture *c)
{
	int rc = img_write_begin(c);

	for (uint32_t i = 0; rc == 0 && i < c->n_maps; i++) {
		struct crac_img_map *m = &c->maps[i].m;

		m->first_chunk = (uint32_t)c->n_chunks;   /* chunks follow map order */
		if (m->kind > CRAC_MAP_SHMEM || (m->kind == CRAC_MAP_FILE && (m->flags & CRAC_MAPF_SHARED)))
			continue;
		/* Pages of a mapping we cannot read (PROT_NONE or write-only after
		 * being written) are read through a temporary PROT_READ. */
		bool unreadable = !(m->prot & PROT_READ);
		if (unreadable && mprotect((void *)(uintptr_t)m->start, m->end - m->start, m->prot | PROT_READ) < 0) {
			rc = img_fail(&c->err, -errno, "mprotect of %#llx-%#llx for reading: %s",
				      (unsigned long long)m->start, (unsigned long long)m->end, img_strerror(errno));
			break;
		}
		rc = scan_map(c, i);
		sync_early(c);
		/* The queue may read this mapping: write it out before the
		 * protection goes back. */
		if (rc == 0 && unreadable)
			rc = img_write_sync(c);
		if (unreadable)
			mprotect((void *)(uintptr_t)m->start, m->end - m->start, (int)m->prot);
	}
	/* Everything written, the pipe drained: from here on no page of the
	 * program is referenced by the kernel for us (image_write.c). */
	int end = img_write_end(c);
	if (rc == 0 && end == 0)
		end = verify_thread_chunks(c);
	if (rc < 0 || end < 0)
		sync_join(c, true);   /* before the threads run again */
	return rc < 0 ? rc : end;
}

/* ---- header -------------------------------------------------------------------- */

uint32_t img_strtab_add(char *tab, uint64_t *used, const char *s)
{
	uint32_t at = (uint32_t)*used;
	size_t n = strlen(s) + 1;

	memcpy(tab + at, s, n);
	*used += n;
	return at;
}

int img_capture_header(struct img_capture *c)
{
	struct crac_img_header *h = &c->hdr;
	uint32_t n_threads = 1;
	uint64_t strmax = 2 + strlen(crac__img_self.cwd) + 1;

	for (struct img_thread *t = img_threads_list(); t; t = t->next)
		n_threads++;
	for (uint32_t i = 0; i < c->n_maps; i++)
		strmax += strlen(c->maps[i].name) + 1;
	for (uint32_t i = 0; i < c->n_files; i++)
		strmax += strlen(c->file_paths[i]) + 1;
	strmax += img_fds_strings(c);
	if (c->incr.on)
		strmax += strlen(c->incr.parent) + 1;

	uint64_t off = sizeof(*h);
	h->maps_off = off;
	off += (uint64_t)c->n_maps * sizeof(struct crac_img_map);
	h->files_off = off;
	off += (uint64_t)c->n_files * sizeof(struct crac_img_file);
	h->chunks_off = off;
	off += c->n_chunks * sizeof(struct crac_img_chunk);
	h->threads_off = off;
	off += (uint64_t)n_threads * sizeof(struct crac_img_thread);
	h->secrets_off = off;
	h->n_secrets = c->n_secrets;
	off += (uint64_t)c->n_secrets * sizeof(struct crac_img_range);
	h->refs_off = off;
	h->n_refs = c->incr.on ? (uint32_t)c->incr.n_refs : 0;
	off += (uint64_t)h->n_refs * sizeof(struct crac_img_ref);
	h->n_signals = img_signals_count();
	h->signals_off = h->n_signals ? off : 0;
	off += (uint64_t)h->n_signals * sizeof(struct crac_img_signal);
	off = img_fds_layout(c, off);   /* descriptors and their blob area */
	h->strtab_off = off;
	uint64_t total = (off + strmax + 7) & ~7ull;

	char *buf = img_arena_alloc(&c->arena, total);
	if (!buf)
		return img_fail(&c->err, -ENOMEM, "header of %llu bytes does not fit the engine arena",
				(unsigned long long)total);
	char *tab = buf + h->strtab_off;
	uint64_t used = 1;   /* offset 0 is "" */

	memcpy(h->magic, CRAC_IMG_MAGIC, 8);
	h->version = CRAC_IMG_VERSION;
	h->size = total;
	h->pages_size = c->pages_size;
	h->resume = (uint64_t)(uintptr_t)&crac__img_self.resume;
	h->cwd = img_strtab_add(tab, &used, crac__img_self.cwd);
	h->n_maps = c->n_maps;
	h->n_files = c->n_files;
	h->n_chunks = (uint32_t)c->n_chunks;
	h->n_threads = n_threads;
	h->stored = 0;   /* page data of the mappings (descriptor content follows it) */
	for (uint32_t i = 0; i < c->n_maps; i++)
		h->stored += c->maps[i].m.stored;

	struct crac_img_map *maps = (void *)(buf + h->maps_off);
	for (uint32_t i = 0; i < c->n_maps; i++) {
		maps[i] = c->maps[i].m;
		maps[i].name = c->maps[i].name[0] ? img_strtab_add(tab, &used, c->maps[i].name) : 0;
	}
	struct crac_img_file *files = (void *)(buf + h->files_off);
	for (uint32_t i = 0; i < c->n_files; i++) {
		files[i] = c->files[i];
		files[i].path = img_strtab_add(tab, &used, c->file_paths[i]);
	}
	memcpy(buf + h->chunks_off, c->chunks, c->n_chunks * sizeof(struct crac_img_chunk));
	if (c->n_secrets)
		memcpy(buf + h->secrets_off, c->secrets, c->n_secrets * sizeof(struct crac_img_range));
	h->img_flags = c->img_flags | (c->z.n_frames ? CRAC_IMGF_COMPRESSED : 0);
	if (c->incr.on) {
		/* an incremental image: its parent, and what it takes from it */
		h->parent = img_strtab_add(tab, &used, c->incr.parent);
		h->parent_crc = c->incr.parent_crc;
		h->parent_created_ns = c->incr.parent_created_ns;
		h->parent_pages_size = c->incr.parent_pages_size;
		h->depth = c->incr.depth;
		if (h->n_refs)
			memcpy(buf + h->refs_off, c->incr.refs, h->n_refs * sizeof(struct crac_img_ref));
	}
	img_fds_fill(c, buf, tab, &used);
	if (h->n_signals)
		img_signals_fill((struct crac_img_signal *)(buf + h->signals_off));

	struct crac_img_thread *th = (void *)(buf + h->threads_off);
	const struct img_thread *t = &crac__img_self.thread;
	for (uint32_t i = 0; i < n_threads; i++, th++) {
		th->tid = t->tid;
		th->flags = i == 0 ? CRAC_THREADF_CHECKPOINTER : 0;
		th->fs_base = t->ctx.fs_base;
		th->sp = i == 0 ? crac__img_self.resume.ctx.rsp : t->sp;
		th->ip = i == 0 ? crac__img_self.resume.ctx.rip : t->ip;
		th->tid_addr = t->tid_addr;
		th->robust_head = t->robust_head;
		th->robust_len = t->robust_len;
		th->rseq = t->rseq;
		th->sigmask = t->sigmask;
		memcpy(th->comm, t->comm, sizeof(th->comm));
		t = i == 0 ? img_threads_list() : t->next;
	}
	h->strtab_size = total - h->strtab_off;
	memcpy(buf, h, sizeof(*h));
	((struct crac_img_header *)buf)->crc = crac_img_header_crc(buf, total);
	c->header_crc = ((struct crac_img_header *)buf)->crc;
	c->header_buf = buf;
	c->header_len = total;

	int fd = openat(c->dir_fd, CRAC_IMG_HEADER_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return img_fail(&c->err, -errno, "%s/%s: %s", c->tmp, CRAC_IMG_HEADER_FILE, img_strerror(errno));
	int rc = write_all(fd, buf, total);
	if (rc < 0) {
		close(fd);
		return img_fail(&c->err, rc, "%s/%s: %s", c->tmp, CRAC_IMG_HEADER_FILE, img_strerror(-rc));
	}
	return sync_final(c, fd);   /* the header's fd is closed by img_capture_synced */
}
