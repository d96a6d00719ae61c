/* SPDX-License-Identifier: MIT */
/*
 * sys.h - the restore loader's whole "libc": raw Linux system calls and the
 * few memory/string helpers (start.c). The loader links no C library: no
 * TLS, no rseq registration, no stdio buffers, no atexit handlers, nothing
 * that could touch memory once the restored process is mapped in.
 */
#ifndef CRAC_LOADER_SYS_H
#define CRAC_LOADER_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <linux/ioctl.h>
#include <sys/syscall.h>

/* UFFDIO_MOVE (Linux 6.8), spelt out for headers older than the kernel
 * (Debian 12's are 6.1): moves pages of the caller's own address space
 * into a range registered with the userfaultfd, without copying them. */
struct crac_uffdio_move {
	uint64_t dst, src, len, mode;
	int64_t move;   /* bytes moved, or -errno */
};
#define CRAC_UFFD_FEATURE_MOVE (1ull << 16)
#define CRAC_UFFDIO_MOVE _IOWR(0xAA, 0x05, struct crac_uffdio_move)
#define CRAC_UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES (1ull << 1)

static inline long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#define SYS(n, a, b, c, d, e, f) sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
#define sys_read(fd, b, n) SYS(SYS_read, fd, b, n, 0, 0, 0)
#define sys_write(fd, b, n) SYS(SYS_write, fd, b, n, 0, 0, 0)
#define sys_pread(fd, b, n, off) SYS(SYS_pread64, fd, b, n, off, 0, 0)
#define sys_openat(dfd, p, fl) SYS(SYS_openat, dfd, p, fl, 0, 0, 0)
#define sys_close(fd) SYS(SYS_close, fd, 0, 0, 0, 0, 0)
#define sys_fstat(fd, st) SYS(SYS_fstat, fd, st, 0, 0, 0, 0)
#define sys_mmap(a, l, p, fl, fd, off) SYS(SYS_mmap, a, l, p, fl, fd, off)
#define sys_munmap(a, l) SYS(SYS_munmap, a, l, 0, 0, 0, 0)
#define sys_mprotect(a, l, p) SYS(SYS_mprotect, a, l, p, 0, 0, 0)
#define sys_mremap(a, ol, nl, fl, na) SYS(SYS_mremap, a, ol, nl, fl, na, 0)
#define sys_prctl(o, a, b, c, d) SYS(SYS_prctl, o, a, b, c, d, 0)
#define sys_arch_prctl(c, a) SYS(SYS_arch_prctl, c, a, 0, 0, 0, 0)
#define sys_sigprocmask(how, set, old) SYS(SYS_rt_sigprocmask, how, set, old, 8, 0, 0)
#define sys_clock_gettime(id, ts) SYS(SYS_clock_gettime, id, ts, 0, 0, 0, 0)
#define sys_exit_group(c) SYS(SYS_exit_group, c, 0, 0, 0, 0, 0)
#define sys_fstatat(dfd, p, st, fl) SYS(SYS_newfstatat, dfd, p, st, fl, 0, 0)
#define sys_geteuid() SYS(SYS_geteuid, 0, 0, 0, 0, 0, 0)
#define sys_prlimit(pid, res, nw, old) SYS(SYS_prlimit64, pid, res, nw, old, 0, 0)
#define sys_getdents64(fd, b, n) SYS(SYS_getdents64, fd, b, n, 0, 0, 0)
#define sys_rt_sigaction(sig, act, old) SYS(SYS_rt_sigaction, sig, act, old, 8, 0, 0)
#define sys_close_range(lo, hi, fl) SYS(436, lo, hi, fl, 0, 0, 0)   /* SYS_close_range (5.9+) */
#define sys_readlinkat(dfd, p, b, n) SYS(SYS_readlinkat, dfd, p, b, n, 0, 0)
#define sys_fcntl(fd, cmd, arg) SYS(SYS_fcntl, fd, cmd, arg, 0, 0, 0)
#define sys_dup3(o, n, fl) SYS(SYS_dup3, o, n, fl, 0, 0, 0)
#define sys_lseek(fd, off, wh) SYS(SYS_lseek, fd, off, wh, 0, 0, 0)
#define sys_ioctl(fd, req, arg) SYS(SYS_ioctl, fd, req, arg, 0, 0, 0)
#define sys_getpid() SYS(SYS_getpid, 0, 0, 0, 0, 0, 0)
#define sys_kcmp(p1, p2, t, a, b) SYS(SYS_kcmp, p1, p2, t, a, b, 0)
#define sys_pwrite(fd, b, n, off) SYS(SYS_pwrite64, fd, b, n, off, 0, 0)
#define sys_ftruncate(fd, len) SYS(SYS_ftruncate, fd, len, 0, 0, 0, 0)
#define sys_madvise(a, l, adv) SYS(SYS_madvise, a, l, adv, 0, 0, 0)

/* start.c */
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int has_prefix(const char *s, const char *prefix);

struct crac_img_ctx;
__attribute__((noreturn)) void crac_loader_jump(const struct crac_img_ctx *c, int val);

/* How many CPUs this process may run on. */
static inline int sys_cpus_allowed(void)
{
	uint64_t mask[16];   /* on the stack: its pages are in already, a static's may not be */
	long n = SYS(SYS_sched_getaffinity, 0, sizeof(mask), mask, 0, 0, 0);
	int count = 0;

	for (long i = 0; n > 0 && i < n / 8; i++)
		for (uint64_t m = mask[i]; m; m &= m - 1)   /* not __builtin_popcountll: a libgcc call */
			count++;
	return count;
}

/*
 * SYS_CLONE_TRAMPOLINE(NAME, DIRECTIVES): defines
 *   long NAME(unsigned long flags, void *sp, uint32_t *ptid, uint32_t *ctid, unsigned long tls);
 * clone(2) with those arguments; the child pops fn and its argument from the
 * new stack sp and calls fn(arg), which never returns. DIRECTIVES: more
 * assembler lines for the symbol (".hidden NAME\n" in libcrac), or "".
 * The loader's thread starts (loader/lazy.c) and libcrac's lazy read-ahead
 * helper (engines/image_lazy.c) use it: neither has a libc to ask.
 */
#define SYS_CLONE_TRAMPOLINE(name, directives)                                                        \
	long name(unsigned long flags, void *sp, uint32_t *ptid, uint32_t *ctid, unsigned long tls); \
	__asm__(".text\n"                                                                              \
		".globl " #name "\n" directives ".type " #name ",@function\n" #name ":\n"              \
		"	movq %rcx, %r10\n"                                                              \
		"	movl $56, %eax\n" /* SYS_clone */                                               \
		"	syscall\n"                                                                      \
		"	testq %rax, %rax\n"                                                             \
		"	jnz 1f\n"                                                                       \
		"	xorl %ebp, %ebp\n"                                                              \
		"	popq %rax\n"                                                                    \
		"	popq %rdi\n"                                                                    \
		"	callq *%rax\n"                                                                  \
		"	hlt\n"                                                                          \
		"1:	ret\n"                                                                          \
		".size " #name ", .-" #name "\n")

#endif
