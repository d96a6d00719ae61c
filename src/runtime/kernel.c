/* SPDX-License-Identifier: MIT */
/*
 * kernel.c - what this kernel offers the image engine, probed once per
 * question, and the switch that pretends a feature is absent so that every
 * fallback can be tested on a kernel that has it all.
 *
 *   CRAC_PRETEND_MISSING=pagemap_scan,userfaultfd,kcmp,close_range,pr_set_mm_map,inet_diag
 *
 * `crac check` with no PID prints crac__kernel_report(): one line per
 * feature, whether it is here, what it is for, and what happens without it
 * (a fallback, or a refusal naming the kernel version that has it).
 */
#include "runtime/runtime.h"
#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

bool crac__pretend_missing(const char *feature)
{
	const char *list = getenv("CRAC_PRETEND_MISSING");
	size_t n = strlen(feature);

	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && !memcmp(p, feature, n))
			return true;
		p = end ? end + 1 : p + len;
	}
	return false;
}

/* PAGEMAP_SCAN on one page of ours. */
static bool have_pagemap_scan(void)
{
	struct { uint64_t start, end, categories; } r;
	struct {
		uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
		uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
	} arg;
	static char page[4096] __attribute__((aligned(4096)));
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	memset(&arg, 0, sizeof(arg));
	arg.size = sizeof(arg);
	arg.start = (uint64_t)(uintptr_t)page;
	arg.end = arg.start + sizeof(page);
	arg.vec = (uint64_t)(uintptr_t)&r;
	arg.vec_len = 1;
	arg.category_anyof_mask = arg.return_mask = 1ull << 3;   /* PAGE_IS_PRESENT */
	ok = ioctl(fd, _IOWR('f', 16, arg), &arg) >= 0;
	close(fd);
	return ok;
}

/* 1: a userfaultfd with the events lazy restore needs, 0: none for this
 * user (EPERM), -1: the kernel lacks it or the events. */
static int have_userfaultfd(void)
{
	long fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errno == EPERM || errno == EACCES ? 0 : -1;
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
				  UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP };
	int ok = ioctl((int)fd, UFFDIO_API, &api) == 0 ? 1 : -1;
	close((int)fd);
	return ok;
}

static bool have_mm_map(void)
{
	unsigned int size = 0;
	return prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0) == 0 && size;
}

static bool have_kcmp(void)
{
	return syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, 0, 0) >= 0 || errno != ENOSYS;
}

static bool have_close_range(void)
{
	return syscall(436, ~0u - 1, ~0u - 1, 0) == 0;   /* closes nothing */
}

static bool have_file(const char *path)
{
	return access(path, F_OK) == 0;
}

static void line(FILE *f, const char *name, bool yes, const char *what)
{
	fprintf(f, "  %-16s %-4s %s\n", name, yes ? "yes" : "no", what);
}

int crac__kernel_report(FILE *f)
{
	int refused = 0;
	bool scan = have_pagemap_scan() && !crac__pretend_missing("pagemap_scan");
	int uffd = crac__pretend_missing("userfaultfd") ? -1 : have_userfaultfd();
	bool mm = have_mm_map() && !crac__pretend_missing("pr_set_mm_map");
	bool kcmp = have_kcmp() && !crac__pretend_missing("kcmp");
	bool cr = have_close_range() && !crac__pretend_missing("close_range");
	char yama[16] = "";
	FILE *y = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");

	if (y) {
		if (!fgets(yama, sizeof(yama), y))
			yama[0] = 0;
		yama[strcspn(yama, "\n")] = 0;
		fclose(y);
	}
	fprintf(f, "crac: what this kernel offers the image engine:\n");
	line(f, "PR_SET_MM_MAP", mm, mm ? "restore sets brk and the arg/env areas"
					   : "restore is impossible: it needs CONFIG_CHECKPOINT_RESTORE (Linux 3.18)");
	line(f, "PAGEMAP_SCAN", scan, scan ? "the checkpoint finds written pages in one call"
					    : "fallback: /proc/self/pagemap is read entry by entry (slower; Linux 6.7 has it)");
	line(f, "userfaultfd", uffd > 0,
	     uffd > 0 ? "lazy restore: large mappings load on demand"
	     : uffd == 0 ? "not for this user: restore is eager (root, vm.unprivileged_userfaultfd=1 or /dev/userfaultfd allow it)"
	     : "restore is eager (lazy restore needs its fork/remap/remove/unmap events: Linux 4.11)");
	line(f, "kcmp", kcmp, kcmp ? "descriptors that share an open file stay shared"
					: "fallback: duplicated descriptors come back as separate opens (CONFIG_KCMP, Linux 3.5)");
	line(f, "close_range", cr, cr ? "the loader closes inherited descriptors in one call"
					 : "fallback: one by one from /proc/self/fd (Linux 5.9 has it)");
	bool ids = !crac__posix_timer_refusal("signal/pid.1", CLOCK_MONOTONIC);
	line(f, "timer ids", ids, ids ? "POSIX timers come back with their ids (PR_TIMER_CREATE_RESTORE_IDS)"
				    : "a POSIX timer refuses the checkpoint (timer_create with a given id: Linux 6.14)");
	line(f, "time namespace", have_file("/proc/self/ns/time"),
	     "crac restore --timens (Linux 5.6; needs CAP_SYS_ADMIN in the owning user namespace)");
	line(f, "ptrace", !yama[0] || strcmp(yama, "3") != 0,
	     !yama[0] ? "threads that block SIGRTMAX-1 are stopped with ptrace (no Yama)"
	     : !strcmp(yama, "3") ? "Yama ptrace_scope 3: a thread that blocks SIGRTMAX-1 refuses the checkpoint"
	     : "threads that block SIGRTMAX-1 are stopped with ptrace (Yama ptrace_scope allows it)");
	refused += !mm;
	return refused;
}
