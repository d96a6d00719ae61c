/* SPDX-License-Identifier: MIT */
/*
 * image_ctx.c - saving and resuming a thread, in x86-64 assembly.
 *
 * A thread is only ever saved at a function call (the checkpointing thread
 * inside the engine; every other thread inside its stop-signal handler), so
 * the System V ABI tells us what must survive: rbx, rbp, r12-r15, rsp, the
 * MXCSR control bits and the x87 control word. Everything else the
 * interrupted code had (all registers, full XSAVE state, signal mask) sits
 * in the signal frame on the thread's stack, which is part of the image,
 * and comes back when the handler returns through rt_sigreturn.
 *
 * Layout of struct crac_img_ctx (image.h, asserted in format.c):
 *   0 rbx  8 rbp  16 r12  24 r13  32 r14  40 r15  48 rsp  56 rip
 *   64 mxcsr (4)  68 fcw (2)
 */
#include "engines/image_engine.h"
#include "image/jumpctx.h"

__asm__(
	".text\n"

	/* int crac__img_setctx(struct crac_img_ctx *c)  -- rdi = c */
	".globl crac__img_setctx\n"
	".hidden crac__img_setctx\n"
	".type crac__img_setctx,@function\n"
	"crac__img_setctx:\n"
	"	movq %rbx, 0(%rdi)\n"
	"	movq %rbp, 8(%rdi)\n"
	"	movq %r12, 16(%rdi)\n"
	"	movq %r13, 24(%rdi)\n"
	"	movq %r14, 32(%rdi)\n"
	"	movq %r15, 40(%rdi)\n"
	"	leaq 8(%rsp), %rdx\n"          /* the caller's rsp after we return */
	"	movq %rdx, 48(%rdi)\n"
	"	movq (%rsp), %rdx\n"           /* our return address */
	"	movq %rdx, 56(%rdi)\n"
	"	stmxcsr 64(%rdi)\n"
	"	fnstcw 68(%rdi)\n"
	"	xorl %eax, %eax\n"
	"	ret\n"
	".size crac__img_setctx, .-crac__img_setctx\n"

	/* void crac__img_jumpctx(const struct crac_img_ctx *c, int val) */
	CRAC_IMG_JUMPCTX_ASM("crac__img_jumpctx")

	/*
	 * long crac__img_clone(flags, stack, ptid, ctid, tls, ctx)
	 *   rdi flags, rsi stack, rdx ptid, rcx ctid, r8 tls, r9 ctx
	 * The clone system call takes (flags, stack, ptid, ctid, tls) in
	 * rdi, rsi, rdx, r10, r8. r9 survives the system call in both the
	 * parent and the child, so the child finds ctx there.
	 */
	".globl crac__img_clone\n"
	".hidden crac__img_clone\n"
	".type crac__img_clone,@function\n"
	"crac__img_clone:\n"
	"	movq %rcx, %r10\n"
	"	movl $56, %eax\n"              /* SYS_clone */
	"	syscall\n"
	"	testq %rax, %rax\n"
	"	jz 1f\n"
	"	ret\n"                         /* parent: tid or -errno */
	"1:	xorl %ebp, %ebp\n"             /* child: new stack, resume ctx */
	"	movq %r9, %rdi\n"
	"	movl $1, %esi\n"
	"	jmp crac__img_jumpctx\n"
	".size crac__img_clone, .-crac__img_clone\n"

	/*
	 * long crac__img_clone_leader(flags, stack, ctid, tls, child, leader_fs, leader)
	 *   rdi flags, rsi stack, rdx ctid, rcx tls, r8 child, r9 leader_fs,
	 *   8(%rsp) leader
	 * The child resumes `child` like crac__img_clone. The parent (the
	 * thread-group leader, running on the stack the child is about to
	 * use) touches no memory after the system call: it sets its fs base
	 * to leader_fs and resumes `leader`, all in registers that the system
	 * call keeps (rbx, r12). Returns only on failure (-errno).
	 */
	".globl crac__img_clone_leader\n"
	".hidden crac__img_clone_leader\n"
	".type crac__img_clone_leader,@function\n"
	"crac__img_clone_leader:\n"
	"	pushq %rbx\n"
	"	pushq %r12\n"
	"	movq %r9, %rbx\n"             /* leader_fs */
	"	movq 24(%rsp), %r12\n"        /* leader ctx */
	"	movq %r8, %r9\n"              /* child ctx: kept in r9 */
	"	movq %rcx, %r8\n"             /* tls */
	"	movq %rdx, %r10\n"            /* ctid */
	"	xorl %edx, %edx\n"            /* ptid */
	"	movl $56, %eax\n"             /* SYS_clone */
	"	syscall\n"
	"	testq %rax, %rax\n"
	"	jz 2f\n"
	"	js 1f\n"
	"	movl $158, %eax\n"            /* SYS_arch_prctl */
	"	movl $0x1002, %edi\n"         /* ARCH_SET_FS */
	"	movq %rbx, %rsi\n"
	"	syscall\n"
	"	movq %r12, %rdi\n"
	"	movl $1, %esi\n"
	"	jmp crac__img_jumpctx\n"
	"1:	popq %r12\n"                  /* failed: nothing happened */
	"	popq %rbx\n"
	"	ret\n"
	"2:	xorl %ebp, %ebp\n"            /* child */
	"	movq %r9, %rdi\n"
	"	movl $1, %esi\n"
	"	jmp crac__img_jumpctx\n"
	".size crac__img_clone_leader, .-crac__img_clone_leader\n"

	/*
	 * long crac__img_clone3(struct clone_args *args, size_t size, ctx)
	 *   rdi args, rsi size, rdx ctx
	 * The child starts on args->stack + args->stack_size; ctx is kept in
	 * r9, which the system call leaves alone.
	 */
	".globl crac__img_clone3\n"
	".hidden crac__img_clone3\n"
	".type crac__img_clone3,@function\n"
	"crac__img_clone3:\n"
	"	movq %rdx, %r9\n"
	"	movl $435, %eax\n"             /* SYS_clone3 */
	"	syscall\n"
	"	testq %rax, %rax\n"
	"	jz 1f\n"
	"	ret\n"
	"1:	xorl %ebp, %ebp\n"
	"	movq %r9, %rdi\n"
	"	movl $1, %esi\n"
	"	jmp crac__img_jumpctx\n"
	".size crac__img_clone3, .-crac__img_clone3\n"
);
