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

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;

	while (n--)
		*dp++ = *sp++;
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;

	if (dp < sp) {
		while (n--)
			*dp++ = *sp++;
	} else {
		while (n--)
			dp[n] = sp[n];
	}
	return d;
}

void *memset(void *d, int c, size_t n)
{
	unsigned char *dp = d;

	while (n--)
		*dp++ = (unsigned char)c;
	return d;
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

/*
 * void crac_loader_jump(const struct crac_img_ctx *c, int val): resumes the
 * context saved by the engine's crac__img_setctx, which then returns val.
 * The thread pointer (fs) is already set. The same routine as the engine's
 * crac__img_jumpctx (image/jumpctx.h).
 */
__asm__(".text\n" CRAC_IMG_JUMPCTX_ASM("crac_loader_jump"));
