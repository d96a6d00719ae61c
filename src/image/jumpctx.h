/* SPDX-License-Identifier: MIT */
/*
 * jumpctx.h - the one routine that resumes a saved thread context (struct
 * crac_img_ctx, image.h), as assembly text. Both the engine (libcrac,
 * engines/image_ctx.c) and the static loader (loader/start.c, which cannot
 * link libcrac) emit it under their own name:
 *
 *   void NAME(const struct crac_img_ctx *c, int val)  -- never returns
 *
 * It restores rbx, rbp, r12-r15, MXCSR and the x87 control word, switches
 * to the saved stack and jumps to the saved rip, where crac__img_setctx
 * returns val. The thread pointer (fs) is the caller's business.
 */
#ifndef CRAC_IMAGE_JUMPCTX_H
#define CRAC_IMAGE_JUMPCTX_H

#define CRAC_IMG_JUMPCTX_ASM(name)                   \
	".globl " name "\n"                          \
	".hidden " name "\n"                         \
	".type " name ",@function\n"                 \
	name ":\n"                                   \
	"	movl %esi, %eax\n"                  \
	"	movq 0(%rdi), %rbx\n"               \
	"	movq 8(%rdi), %rbp\n"               \
	"	movq 16(%rdi), %r12\n"              \
	"	movq 24(%rdi), %r13\n"              \
	"	movq 32(%rdi), %r14\n"              \
	"	movq 40(%rdi), %r15\n"              \
	"	ldmxcsr 64(%rdi)\n"                 \
	"	fldcw 68(%rdi)\n"                   \
	"	movq 48(%rdi), %rsp\n"              \
	"	jmpq *56(%rdi)\n"                   \
	".size " name ", .-" name "\n"

#endif
