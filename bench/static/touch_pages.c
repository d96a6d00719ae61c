/* SPDX-License-Identifier: MIT */
/*
 * touch_pages.c - the bound of bench/restore.sh and bench/start.sh: a
 * static binary without libc that has the kernel fault in POPULATE fresh
 * anonymous pages with one MADV_POPULATE_WRITE (the faults a restore's
 * loader takes inside system calls: its fill), writes one byte to each of
 * PAGES other fresh anonymous pages (the faults of user-mode touches),
 * then prints "first_ns=NS" (CLOCK_MONOTONIC) and exits; with both 0 it
 * does nothing (the static no-op of bench/restore.sh).
 * Built by the scripts with
 *   cc -O2 -static -nostdlib -fno-stack-protector -fcf-protection=none -DPAGES=N [-DPOPULATE=F]
 * (not by CMake: bench/*.c are its programs, this folder is not).
 */
static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	long r;
	register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
	__asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return r;
}
#ifndef POPULATE
#define POPULATE 0
#endif
__attribute__((force_align_arg_pointer, noreturn)) void _start(void)
{
	struct { long s, ns; } t;
	char buf[48], d[24];
	int n = 0, k = 0;
	if (POPULATE > 0) {
		/* mmap as below, then madvise(MADV_POPULATE_WRITE) */
		long a = sys6(9, 0, POPULATE * 4096l, 3, 0x22, -1, 0);
		sys6(28, a, POPULATE * 4096l, 23, 0, 0, 0);
	}
	if (PAGES > 0) {   /* PAGES 0: the no-op of bench/restore.sh */
		/* mmap(NULL, PAGES pages, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) */
		volatile char *m = (volatile char *)sys6(9, 0, PAGES * 4096l, 3, 0x22, -1, 0);
		for (long p = 0; p < PAGES; p++)
			m[p * 4096] = 1;
	}
	sys6(228, 1, (long)&t, 0, 0, 0, 0);   /* clock_gettime(CLOCK_MONOTONIC) */
	unsigned long v = (unsigned long)t.s * 1000000000ul + (unsigned long)t.ns;
	for (const char *p = "first_ns="; *p; p++)
		buf[n++] = *p;
	do d[k++] = (char)('0' + v % 10); while (v /= 10);
	while (k)
		buf[n++] = d[--k];
	buf[n++] = '\n';
	sys6(1, 1, (long)buf, n, 0, 0, 0);
	sys6(231, 0, 0, 0, 0, 0, 0);
	for (;;)
		;
}
