/* SPDX-License-Identifier: MIT */
/*
 * start.c - entry point of the restore loader and its libc stand-ins.
 *
 * _start moves at once to a stack inside the loader's own .bss: the stack
 * the kernel gave us sits where the restored process may have had memory,
 * and is unmapped before the image is mapped. The original stack pointer
 * (argc, argv, envp) is passed to loader_main, which copies what it needs.
 */
#include "loader/sys.h"
#include "image/jumpctx.h"

#define LOADER_STACK_SIZE (256u << 10)

__attribute__((aligned(64))) char crac_loader_stack[LOADER_STACK_SIZE];

__attribute__((noreturn)) void loader_main(long *sp);

__asm__(
	".text\n"
	".globl _start\n"
	".type _start,@function\n"
	"_start:\n"
	"	xorl %ebp, %ebp\n"
	"	movq %rsp, %rdi\n"                       /* argc, argv..., envp... */
	"	leaq crac_loader_stack+262144(%rip), %rsp\n"
	"	andq $-16, %rsp\n"
	"	call loader_main\n"
	"	hlt\n"
	".size _start, .-_start\n");

/*
 * memcpy, memmove and memset: string instructions (fast on CPUs with
 * ERMS/FSRM, which is all of them since Ivy Bridge) for all but a few
 * bytes; libzstd's decompressor (compressed images) calls them with
 * literal runs and matches, and the compiler for copies of structs.
 */
void *memcpy(void *d, const void *s, size_t n)
{
	void *r = d;

	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return r;
}

void *memmove(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;

	if (dp <= sp || dp >= sp + n)
		return memcpy(d, s, n);
	/* overlapping, destination above: backwards, 8 bytes a step */
	while (n >= 8) {
		uint64_t w;
		n -= 8;
		__builtin_memcpy(&w, sp + n, 8);
		__builtin_memcpy(dp + n, &w, 8);
	}
	while (n--)
		dp[n] = sp[n];
	return d;
}

void *memset(void *d, int c, size_t n)
{
	void *r = d;

	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return r;
}

/*
 * libzstd's decompressor refers to these, for contexts it would allocate
 * and for legacy frame formats; the loader gives it a static context
 * (ZSTD_initStaticDCtx) and only zstd frames (image/chunk.c): an
 * allocation then fails cleanly as an error of the frame.
 */
void *malloc(size_t n);
void *calloc(size_t n, size_t m);
void free(void *p);
void *malloc(size_t n)
{
	(void)n;
	return 0;
}

void *calloc(size_t n, size_t m)
{
	(void)n, (void)m;
	return 0;
}

void free(void *p)
{
	(void)p;
}

/* libzstd's tracing hooks (weak: a static executable linked this high
 * cannot call address 0): no tracing. */
unsigned long long ZSTD_trace_decompress_begin(const void *dctx);
void ZSTD_trace_decompress_end(unsigned long long ctx, const void *trace);
unsigned long long ZSTD_trace_decompress_begin(const void *dctx)
{
	(void)dctx;
	return 0;
}

void ZSTD_trace_decompress_end(unsigned long long ctx, const void *trace)
{
	(void)ctx, (void)trace;
}

/* libzstd is built with the stack protector: a smashed canary (a bug,
 * never the image's content) stops the loader with a message. */
__attribute__((noreturn)) void __stack_chk_fail(void);
__attribute__((noreturn)) void __stack_chk_fail(void)
{
	static const char m[] = "crac-loader: stack smashing detected (in the zstd decompressor)\n";
	sys_write(2, m, sizeof(m) - 1);
	sys_exit_group(127);
	__builtin_unreachable();
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	const char *p = s;

	while (*p)
		p++;
	return (size_t)(p - s);
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}

/* Does s begin with prefix? (Never reads past the end of s.) */
int has_prefix(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return 0;
	return 1;
}

/*
 * void crac_loader_jump(const struct crac_img_ctx *c, int val): resumes the
 * context saved by the engine's crac__img_setctx, which then returns val.
 * The thread pointer (fs) is already set. The same routine as the engine's
 * crac__img_jumpctx (image/jumpctx.h).
 */
__asm__(".text\n" CRAC_IMG_JUMPCTX_ASM("crac_loader_jump"));
