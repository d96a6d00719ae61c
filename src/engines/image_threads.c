/* SPDX-License-Identifier: MIT */
/*
 * image_threads.c - stopping every other thread for the image, and
 * recreating them in the restored process.
 *
 * Stopping. The checkpointing thread sends IMG_STOP_SIGNAL to each thread
 * in /proc/self/task (again until no new thread shows up). The handler
 * records the thread's kernel-side state (tid address, robust list, rseq,
 * fs base, name, capabilities and other attributes: image_attrs.c) into a
 * struct img_thread on its own stack, links it into a global list, saves
 * its registers with crac__img_setctx and waits on a futex. Its signal frame, just above, holds everything the interrupted
 * code had: general registers, the XSAVE area (AVX-512/AMX too), signal
 * mask and alternate stack. The stack is written into the image like any
 * other memory.
 *
 * A thread that blocks the signal is made to take it: a ptrace helper
 * (image_ptrace.c) removes the signal from its mask while it is pending,
 * and the handler blocks it again in the signal frame (so rt_sigreturn
 * restores the mask it had, in the original and in every restored process).
 *
 * Recreating. The restored libcrac clones one thread per record, with the
 * saved TLS, on the saved stack, and the child resumes the saved context:
 * crac__img_setctx returns 1 inside the handler. The handler points the
 * kernel at the thread's tid field, robust list and rseq area again, waits
 * for the release and returns: rt_sigreturn restores the rest.
 *
 * The thread-group leader of the restored process (the loader's thread)
 * arrives as the checkpointing thread. When that was not the original main
 * thread (a checkpoint taken by the control endpoint's thread, or any other
 * one), the leader hands that role to a new clone and resumes the main
 * thread's record itself: the main thread stays the leader, which ps,
 * /proc/PID and the next checkpoint depend on (img_threads_restore_leader).
 *
 * Thread ids change (the restored process has the pid of `crac restore`).
 * glibc's pd->tid is rewritten (CLONE_CHILD_SETTID), and robust mutexes a
 * thread holds get their owner tid rewritten by walking its robust list.
 * A thread stopped while it waited for a lock whose word holds the owner's
 * tid (robust, PI and error-checking mutexes) keeps its own tid in a
 * register across that wait and would take the lock under its old tid:
 * see fix_cached_tid().
 * Known limit: error-checking and recursive non-robust mutexes held at the
 * moment of checkpoint keep the old tid in their owner field; unlocking them
 * after restore returns EPERM.
 */
#include "engines/image_engine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <limits.h>
#include <link.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef ARCH_GET_FS
#define ARCH_GET_FS 0x1003
#endif
#ifndef FUTEX_TID_MASK
#define FUTEX_TID_MASK 0x3fffffff
#endif

/* Kernel ABI of rseq registration (FACTS.md: glibc 2.36 registers 32 bytes). */
#define IMG_RSEQ_LEN 32
#define IMG_RSEQ_SIG 0x53053053

/* ---- shared state (libcrac globals: part of the image) ------------------- */

static struct img_thread *_Atomic stopped_list;  /* records, on their stacks */
static _Atomic int stopped_count;                 /* handlers that saved their context */
static _Atomic int resumed_count;                 /* restored threads ready */
static _Atomic int resumed_want;                  /* ... of these: the last one wakes the restorer */
static _Atomic uint32_t release_gen;              /* bumped to let them go */
static struct sigaction stop_old_action;          /* the app's disposition of the signal */
static struct k_sigaction stop_old_kact;          /* the same, as the kernel has it */
static int stop_pid;                              /* pid at checkpoint: the main thread's tid */
static struct img_thread *leader_thread;          /* restored: the record the leader resumed */
/* Threads whose mask the ptrace helper changed, with their mask before
 * (engine arena; entries are valid once done is set and err is 0). */
static struct img_unblock *unblocked;
static _Atomic int n_unblocked;
static _Atomic int in_handler;                    /* threads inside stop_handler */
static _Atomic bool stopping;                     /* from a stop attempt to its release */
/* CRAC_TEST_LATE_REST_MS (tests only): a stopped thread goes on writing
 * its stack this long after it was counted, before its futex wait. */
static long test_late_rest_ms;

const char *img_strerror(int e)
{
	const char *s = strerrordesc_np(e);
	return s ? s : "Unknown error";
}

const struct k_sigaction *img_stop_old_kact(void)
{
	return &stop_old_kact;
}

int img_gettid(void)
{
	return (int)syscall(SYS_gettid);
}

uint64_t img_get_fs(void)
{
	unsigned long fs = 0;

	syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
	return fs;
}

static long futex(volatile void *addr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

/* ---- per-thread kernel state ---------------------------------------------- */

/*
 * Which rseq area the kernel has registered for the calling thread:
 * RSEQ_GLIBC (glibc's, at rs), RSEQ_NONE, or RSEQ_OTHER (an area of the
 * program's own: a library such as tcmalloc registers one when glibc did
 * not, e.g. under GLIBC_TUNABLES=glibc.pthread.rseq=0). rs: glibc's area,
 * or NULL when glibc registered none (__rseq_size 0).
 *
 * glibc's cpu_id field cannot tell: a thread stopped inside glibc's
 * start_thread before it registers (one blocking the stop signal there,
 * stopped through ptrace: image_ptrace.c) holds whatever the memory held,
 * zeros or a previous thread's values; registered for it at restore, glibc
 * then fails its own registration (EBUSY) and aborts the restored process
 * ("rseq registration failed"). So the kernel is asked, by registering an
 * area: glibc's, or a probe of our own on the stack when glibc has none.
 *   0       nothing was registered (it is now: unregistered at once)
 *   EBUSY   this very area is registered
 *   EINVAL  another area (or another length) is registered: glibc's own
 *           if its cpu_id is kept up to date (>= 0: the kernel writes it
 *           whenever the thread returns to user space, and it did since
 *           it registered), else another one
 *   other   (ENOSYS: no rseq; EPERM: a seccomp filter, or glibc's area
 *           with another signature) glibc's cpu_id says, as before
 */
enum { RSEQ_NONE, RSEQ_GLIBC, RSEQ_OTHER };

static int rseq_which(struct rseq *rs)
{
	struct rseq probe __attribute__((aligned(32)));
	struct rseq *at = rs ? rs : &probe;
	int saved = errno, which;

	memset(&probe, 0, sizeof(probe));
	if (syscall(SYS_rseq, at, IMG_RSEQ_LEN, 0, IMG_RSEQ_SIG) == 0) {
		syscall(SYS_rseq, at, IMG_RSEQ_LEN, RSEQ_FLAG_UNREGISTER, IMG_RSEQ_SIG);
		which = RSEQ_NONE;
	} else if (errno == EBUSY) {
		which = rs ? RSEQ_GLIBC : RSEQ_OTHER;
	} else if (errno == EINVAL) {
		which = rs && (int32_t)rs->cpu_id >= 0 ? RSEQ_GLIBC : RSEQ_OTHER;
	} else {
		which = rs && (int32_t)rs->cpu_id >= 0 ? RSEQ_GLIBC : RSEQ_NONE;
	}
	errno = saved;
	return which;
}

void img_thread_record(struct img_thread *t)
{
	int *tid_addr = NULL;
	void *head = NULL;
	size_t len = 0;

	t->tid = img_gettid();
	t->ctx.fs_base = img_get_fs();
	if (prctl(PR_GET_TID_ADDRESS, &tid_addr, 0, 0, 0) == 0)
		t->tid_addr = (uint64_t)(uintptr_t)tid_addr;
	if (syscall(SYS_get_robust_list, 0, &head, &len) == 0) {
		t->robust_head = (uint64_t)(uintptr_t)head;
		t->robust_len = len;
	}
	/* glibc's rseq area is at the thread pointer + __rseq_offset; an
	 * area of the program's own cannot be carried (the capture refuses
	 * it: img_capture_process) */
	struct rseq *rs = NULL;
	if (__rseq_size && t->ctx.fs_base)
		rs = (struct rseq *)(uintptr_t)(t->ctx.fs_base + (uint64_t)__rseq_offset);
	int which = rseq_which(rs);
	if (which == RSEQ_GLIBC)
		t->rseq = (uint64_t)(uintptr_t)rs;
	t->rseq_other = which == RSEQ_OTHER;
	sigaltstack(NULL, &t->altstack);
	prctl(PR_GET_NAME, t->comm, 0, 0, 0);
	img_attrs_capture(&t->attrs);
	img_attrs_drop_supervisor(&t->attrs);
}

/*
 * Rewrites the owner tid of the robust mutexes on a robust list (glibc's
 * layout: the futex word at entry + futex_offset, __owner 8 bytes after it).
 */
struct robust_entry { struct robust_entry *next; };
struct robust_head { struct robust_entry list; long futex_offset; struct robust_entry *pending; };

static void fix_owner(struct robust_head *h, struct robust_entry *e, int old_tid, int new_tid)
{
	_Atomic uint32_t *word = (_Atomic uint32_t *)((char *)((uintptr_t)e & ~1ul) + h->futex_offset);
	uint32_t v = atomic_load(word);

	while ((int)(v & FUTEX_TID_MASK) == old_tid &&
	       !atomic_compare_exchange_weak(word, &v, (v & ~(uint32_t)FUTEX_TID_MASK) | (uint32_t)new_tid))
		;
	int *owner = (int *)((char *)word + 8);
	if (*owner == old_tid)
		*owner = new_tid;
}

static void fix_robust_list(uint64_t head_addr, int old_tid, int new_tid)
{
	struct robust_head *h = (struct robust_head *)(uintptr_t)head_addr;
	struct robust_entry *e = h->list.next;

	for (int n = 0; e && e != &h->list && n < 100000; n++) {
		struct robust_entry *next = ((struct robust_entry *)((uintptr_t)e & ~1ul))->next;
		fix_owner(h, e, old_tid, new_tid);
		e = next;
	}
	if (h->pending)
		fix_owner(h, h->pending, old_tid, new_tid);
}

void img_thread_reattach(const struct img_thread *t, bool checkpointer)
{
	int tid = img_gettid();

	if (t->tid_addr) {
		/* Clones got it with CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID
		 * already; the leader (whichever record it resumed) did not. */
		syscall(SYS_set_tid_address, (int *)(uintptr_t)t->tid_addr);
		*(volatile int *)(uintptr_t)t->tid_addr = tid;
	}
	if (t->robust_head) {
		syscall(SYS_set_robust_list, (void *)(uintptr_t)t->robust_head, (size_t)t->robust_len);
		fix_robust_list(t->robust_head, t->tid, tid);
	}
	if (t->rseq)
		syscall(SYS_rseq, (void *)(uintptr_t)t->rseq, IMG_RSEQ_LEN, 0, IMG_RSEQ_SIG);
	if (checkpointer && !(t->altstack.ss_flags & SS_DISABLE)) {
		stack_t ss = t->altstack;
		ss.ss_flags &= ~SS_ONSTACK;
		sigaltstack(&ss, NULL);
	}
	/* the raw call: a sanitizer's prctl interceptor would update its own
	 * thread registry, which may hold this thread as not started yet (it
	 * was stopped inside its start-up) and aborts then */
	syscall(SYS_prctl, PR_SET_NAME, t->comm, 0, 0, 0);
	/* capabilities, no_new_privs, ...; the checkpointing thread's last,
	 * once it cloned every other (img_restored) */
	if (!checkpointer)
		img_attrs_restore_thread(&t->attrs, &img_attrs_loader, t->tid, t->comm);
}

/* ---- a tid cached by the interrupted code ------------------------------------ */

/*
 * glibc reads the calling thread's tid once and keeps it while it works:
 * the robust, PI, error-checking and recursive mutex lock paths store it
 * into the lock word when the lock becomes free (so across a futex wait),
 * pthread_kill passes it to tgkill. A thread stopped inside such a window
 * and restored with a new tid would take the lock under its old tid, and
 * glibc's unlock (which compares with the new one) would then fail with
 * EPERM and leave the lock held forever.
 *
 * The window is recognised by the tid itself: it is in one of the
 * interrupted registers or in the top of the interrupted stack, and the
 * thread was interrupted in a futex wait of the C library's code, or in
 * its plain instructions between reading the tid and using it (the lock's
 * compare-and-exchange, the unlock's comparison: in_libc_code). The
 * checkpoint then lets every thread go and stops them again a little later
 * (img_threads_stop), which almost always finds every thread outside such a
 * window. If not, the restored thread gets its old tid replaced by the new
 * one in those same places (fix_cached_tid).
 */
#define IMG_TID_SCAN 128   /* bytes of the interrupted stack searched */

/*
 * The C library's code, where those windows are: a thread interrupted
 * anywhere else (a program keeping its pid in a register while it spins,
 * say) is never taken for one, so nothing of the program's own is
 * rewritten. Found once a checkpoint (img_threads_stop), before any thread
 * stops; where it cannot be told, every address counts.
 */
static uint64_t libc_text_lo, libc_text_hi = ~0ull;

struct text_find { uint64_t addr, lo, hi; };

static int text_of(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct text_find *f = arg;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uint64_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && f->addr >= lo && f->addr < hi) {
			f->lo = lo;
			f->hi = hi;
			return 1;
		}
	}
	return 0;
}

/*
 * Did the code before the `syscall` instruction at sc put SYS_futex in
 * eax? Once a call returned, rax holds its result, not its number: the
 * number is read from the instructions that set eax in the 40 bytes
 * before it, as the C library writes them: `mov $202,%eax`, or a move
 * from another register (`mov %r15d,%eax`, with or without a REX prefix,
 * either opcode), whose value the call kept (it changes only rax, rcx and
 * r11). Decoding backwards may misread a byte; a misread can only take
 * another call for a futex where a register happens to hold 202.
 */
CRAC_IMG_NOSAN static bool eax_set_to_futex(const unsigned char *sc, const greg_t *g)
{
	static const int reg[16] = { REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
				     REG_R8,  REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15 };

	/* not before the C library's text (or, where it is not known, the
	 * page of the call: the one before may not be mapped) */
	uint64_t lo = libc_text_hi == ~0ull ? ((uint64_t)(uintptr_t)sc & ~(CRAC_IMG_PAGE - 1)) : libc_text_lo;

	for (int back = 2; back <= 40; back++) {
		const unsigned char *p = sc - back;
		if ((uint64_t)(uintptr_t)p <= lo)
			break;
		if (back >= 5 && p[0] == 0xb8 && p[1] == SYS_futex && !p[2] && !p[3] && !p[4])
			return true;
		if ((p[0] == 0x89 || p[0] == 0x8b) && (p[1] & 0xc0) == 0xc0) {
			int rex = (p[-1] & 0xf0) == 0x40 ? p[-1] : 0;
			int r = (p[1] >> 3 & 7) + (rex & 4 ? 8 : 0), m = (p[1] & 7) + (rex & 1 ? 8 : 0);
			int dst = p[0] == 0x89 ? m : r, src = p[0] == 0x89 ? r : m;
			/* rcx and r11 hold what the call left there */
			if (dst == 0 && src != 0 && src != 1 && src != 11 && g[reg[src]] == SYS_futex)
				return true;
		}
	}
	return false;
}

/*
 * Was the thread interrupted in a futex wait of the C library's, or right
 * after a futex call of it returned 0 or EAGAIN (woken from such a wait,
 * about to take the lock under its tid)? Our stop signal is SA_RESTART: for a call
 * it interrupts, the kernel points the saved instruction pointer back at
 * the `syscall` instruction and puts the call's number back in rax, so
 * that it runs again. A thread asleep in another call (nanosleep, read...;
 * or one our signal cut short: EINTR), or right after another call that
 * returned 0 (sched_yield, poll...), with its own pid in a register or on
 * its stack while its program waits is not taken for a lock window.
 */
CRAC_IMG_NOSAN static bool in_libc_futex_wait(const ucontext_t *uc)
{
	const greg_t *g = uc->uc_mcontext.gregs;
	uint64_t ip = (uint64_t)g[REG_RIP];

	if (ip < libc_text_lo + 2 || ip + 2 > libc_text_hi)
		return false;
	const unsigned char *code = (const unsigned char *)(uintptr_t)ip;
	return (code[0] == 0x0f && code[1] == 0x05 && g[REG_RAX] == SYS_futex) ||
	       (code[-2] == 0x0f && code[-1] == 0x05 && (g[REG_RAX] == 0 || g[REG_RAX] == -EAGAIN) &&
		eax_set_to_futex(code - 2, g));
}

/*
 * Was the thread interrupted in the C library's own instructions, neither
 * in a system call nor right after one? The lock and unlock code of the
 * robust, PI and error-checking mutexes reads the tid once and works with
 * it in a register before any futex call: an unlock compares it with the
 * lock word (EPERM if it differs), a lock stores it there with a
 * compare-and-exchange. A thread stopped between that read and that use
 * holds its old tid as surely as one stopped in the wait (a tight
 * lock/unlock loop is stopped there most of the time:
 * tests/cli/image_robust_tid.bats). Only where the C library's text is
 * known: a program's own code keeping its pid in a register is never
 * taken for one (tests/cli/image_tid_register.bats).
 */
CRAC_IMG_NOSAN static bool in_libc_code(const ucontext_t *uc)
{
	uint64_t ip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];

	if (libc_text_hi == ~0ull || ip < libc_text_lo + 2 || ip + 2 > libc_text_hi)
		return false;
	const unsigned char *code = (const unsigned char *)(uintptr_t)ip;
	return !(code[0] == 0x0f && code[1] == 0x05) && !(code[-2] == 0x0f && code[-1] == 0x05);
}

static void find_libc_text(void)
{
	/* a function of glibc's own that nothing intercepts (a sanitizer
	 * interposes the pthread ones) */
	struct text_find f = { (uint64_t)(uintptr_t)&gnu_get_libc_version, 0, 0 };

	if (dl_iterate_phdr(text_of, &f) && f.hi) {
		libc_text_lo = f.lo;
		libc_text_hi = f.hi;
	}
}

static const int gregs_scanned[] = { REG_RAX, REG_RBX, REG_RCX, REG_RDX, REG_RSI, REG_RDI, REG_RBP,
				     REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15 };

/* Bytes readable from sp on (the stack above sp is mapped up to its top). */
CRAC_IMG_NOSAN static size_t stack_window(uint64_t sp)
{
	uint64_t page = sp & ~(CRAC_IMG_PAGE - 1), end = sp + IMG_TID_SCAN;
	unsigned char vec;

	if (sp & 3)
		return 0;
	if ((end & ~(CRAC_IMG_PAGE - 1)) != page &&
	    mincore((void *)(uintptr_t)(page + CRAC_IMG_PAGE), CRAC_IMG_PAGE, &vec) < 0)
		return page + CRAC_IMG_PAGE - sp;
	return IMG_TID_SCAN;
}

CRAC_IMG_NOSAN static bool tid_cached(const ucontext_t *uc, int tid)
{
	const greg_t *g = uc->uc_mcontext.gregs;
	uint64_t sp = (uint64_t)g[REG_RSP];

	for (size_t i = 0; i < sizeof(gregs_scanned) / sizeof(gregs_scanned[0]); i++)
		if (g[gregs_scanned[i]] == (greg_t)tid)
			return true;
	const uint32_t *w = (const uint32_t *)(uintptr_t)sp;
	for (size_t i = 0, n = stack_window(sp) / 4; i < n; i++)
		if (w[i] == (uint32_t)tid)
			return true;
	return false;
}

/* Is the 8-byte slot holding the 4-byte word at p a mapped address? */
CRAC_IMG_NOSAN static bool looks_like_pointer(const uint32_t *p)
{
	const uint64_t *slot = (const uint64_t *)((uintptr_t)p & ~7ul);
	uint64_t v = *slot;
	unsigned char vec;

	if (v < 0x10000 || v >= (1ull << 47))
		return false;
	return mincore((void *)(uintptr_t)(v & ~(CRAC_IMG_PAGE - 1)), CRAC_IMG_PAGE, &vec) == 0;
}

/*
 * Restored thread whose every stop attempt found its tid cached: replace the
 * old tid by the new one in the registers that hold exactly it and in the
 * 4-byte words of the top of its stack that equal it (unless the word is
 * half of a mapped address: then it is a pointer, not a tid).
 */
CRAC_IMG_NOSAN static void fix_cached_tid(ucontext_t *uc, int old_tid, int new_tid)
{
	greg_t *g = uc->uc_mcontext.gregs;
	uint64_t sp = (uint64_t)g[REG_RSP];

	if (old_tid == new_tid)
		return;
	for (size_t i = 0; i < sizeof(gregs_scanned) / sizeof(gregs_scanned[0]); i++)
		if (g[gregs_scanned[i]] == (greg_t)old_tid)
			g[gregs_scanned[i]] = new_tid;
	uint32_t *w = (uint32_t *)(uintptr_t)sp;
	for (size_t i = 0, n = stack_window(sp) / 4; i < n; i++)
		if (w[i] == (uint32_t)old_tid && !looks_like_pointer(&w[i]))
			w[i] = (uint32_t)new_tid;
}

/* ---- the stop handler ------------------------------------------------------ */

/* Did the ptrace helper take the stop signal out of thread tid's mask? */
static bool was_unblocked_by_helper(int tid)
{
	struct img_unblock *u = unblocked;

	for (int i = 0, n = atomic_load(&n_unblocked); u && i < n; i++)
		if (u[i].tid == tid && atomic_load(&u[i].done) && u[i].err == 0)
			return u[i].mask & (1ull << (IMG_STOP_SIGNAL - 1));
	return false;
}

static void stop_handler(int sig, siginfo_t *si, void *ucv)
{
	int saved_errno = errno;
	ucontext_t *uc = ucv;
	struct img_thread t;

	/* Only our own tgkill stops a thread; anything else is ignored, but
	 * for the program's own SIGRTMAX-1 (blocked, read with sigwaitinfo or
	 * a signalfd) that the ptrace helper's unblocking delivered here: it
	 * was queued to this thread before the stop signal, so the next one
	 * delivered is ours. It is queued again, behind ours, and taken in
	 * the stop (image_signals.c), which keeps it pending. */
	if (si->si_code != SI_TKILL || si->si_pid != getpid()) {
		if (atomic_load(&stopping) && was_unblocked_by_helper(img_gettid()))
			syscall(SYS_rt_tgsigqueueinfo, getpid(), img_gettid(), sig, si);
		errno = saved_errno;
		return;
	}
	/* A signal of a stop attempt that was given up (a thread that could
	 * not take it in time) arrives after the release: nothing to do.
	 * (release clears `stopping` before it bumps the generation.) */
	uint32_t gen = atomic_load(&release_gen);
	if (!atomic_load(&stopping)) {
		errno = saved_errno;
		return;
	}
	atomic_fetch_add(&in_handler, 1);
	memset(&t, 0, sizeof(t));
	t.gen = gen;
	img_thread_record(&t);
	/* Its thread-directed pending signals (every signal is blocked
	 * here): taken before it counts as stopped, given back below. */
	int cut = img_signals_take_own(t.tid, &t.sig_to_read);
	/* The helper delivered the signal right where it unblocked it: the
	 * interrupted code had it blocked. */
	if (was_unblocked_by_helper(t.tid))
		sigaddset(&uc->uc_sigmask, IMG_STOP_SIGNAL);
	memcpy(&t.sigmask, &uc->uc_sigmask, sizeof(t.sigmask));
	t.sp = (uint64_t)uc->uc_mcontext.gregs[REG_RSP];
	t.ip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
	t.tid_cache_wait = in_libc_futex_wait(uc);
	t.tid_cache = (t.tid_cache_wait || in_libc_code(uc)) && tid_cached(uc, t.tid);
	t.next = atomic_load(&stopped_list);
	while (!atomic_compare_exchange_weak(&stopped_list, &t.next, &t))
		;

	bool restored = false;
	if (crac__img_setctx(&t.ctx) == 0) {
		/* Original process: stopped. */
		atomic_fetch_add(&stopped_count, 1);
		futex((volatile void *)&stopped_count, FUTEX_WAKE_PRIVATE, 1, NULL);
		if (test_late_rest_ms > 0) {
			/* Tests: what a thread preempted right here does once it
			 * runs again, for longer (see wait_at_rest). */
			volatile uint64_t scribble[64];
			int64_t until = img_mono_ns() + test_late_rest_ms * 1000000LL;
			for (uint64_t n = 0; img_mono_ns() < until; n++)
				scribble[n % 64] = n;
			(void)scribble[0];
		}
	} else {
		/* Restored process: a fresh clone on this very stack, or the
		 * thread-group leader if this is the original main thread and
		 * another thread took the checkpoint. */
		restored = true;
		/* Its pending signals, queued to its new tid while every
		 * signal is still blocked; the leader resuming the main thread
		 * also the process-wide ones (image_signals.c). Before it
		 * counts as resumed: the restore goes on only after that. */
		if (t.tid == stop_pid)
			img_signals_give_back_main(true);
		img_signals_give_back_own(t.tid, 0, true);
		img_thread_reattach(&t, false);
		if (t.tid_cache)
			fix_cached_tid(uc, t.tid, img_gettid());
		/* (one wake, by the last: the restoring thread sleeps until all are) */
		if (atomic_fetch_add(&resumed_count, 1) + 1 >= atomic_load(&resumed_want))
			futex((volatile void *)&resumed_count, FUTEX_WAKE_PRIVATE, 1, NULL);
	}
	while (atomic_load(&release_gen) == t.gen)
		futex((volatile void *)&release_gen, FUTEX_WAIT_PRIVATE, t.gen, NULL);
	if (!restored) {
		/* Original process, let go: the checkpoint eats no signal. */
		if (t.tid == stop_pid)
			img_signals_give_back_main(false);
		img_signals_give_back_own(t.tid, cut, false);
	}
	(void)sig;
	errno = saved_errno;
	atomic_fetch_sub(&in_handler, 1);
	/* Returning runs rt_sigreturn: registers, FPU state, mask, altstack. */
}

/* ---- stopping -------------------------------------------------------------- */

/* Thread ids in /proc/self/task, with getdents64 (no malloc). */
static int list_tasks(int *tids, int max, char *buf, size_t buflen)
{
	int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int n = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		long got = syscall(SYS_getdents64, fd, buf, buflen);
		if (got < 0) {
			int e = -errno;
			close(fd);
			return e;
		}
		if (got == 0)
			break;
		for (long off = 0; off < got;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			off += d->d_reclen;
			if (d->d_name[0] < '1' || d->d_name[0] > '9')
				continue;
			if (n < max)
				tids[n] = atoi(d->d_name);
			n++;
		}
	}
	close(fd);
	return n;
}

/* Is `sig` blocked by thread `tid`? (SigBlk in its status; best effort) */
static bool signal_blocked(int tid, int sig)
{
	char path[64], buf[2048];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	char *p = strstr(buf, "SigBlk:");
	if (!p)
		return false;
	unsigned long long mask = strtoull(p + 7, NULL, 16);
	return mask & (1ull << (sig - 1));
}

struct img_thread *img_threads_list(void)
{
	return atomic_load(&stopped_list);
}

/* Scratch arrays of one stop attempt (from the engine arena). */
struct stop_scratch {
	int *signaled, *tasks, *blocking;
	char *dents;
	struct img_unblock *ub;         /* the unblocked table */
	void *ptrace_area;              /* the ptrace helper's stack */
};

static int stop_once(struct stop_scratch *w, bool again, int64_t deadline_ns, struct img_err *e);
static struct img_thread *find_thread(int tid);

/*
 * Threads tids[0..n-1] block the stop signal: the ptrace helper seizes them
 * (the table of unblocked threads, where the handler looks, gets them).
 * Then the caller sends the signal (unless it is pending already) and calls
 * img_ptrace_unblock(). Returns 0 or -errno.
 */
static int seize_threads(struct stop_scratch *w, const int *tids, int n, int64_t deadline_ns, struct img_err *e)
{
	int base = atomic_load(&n_unblocked);
	struct img_unblock *u = w->ub + base;

	if (base + n > (int)CRAC_IMG_MAX_THREADS)
		return img_fail(e, -E2BIG, "too many threads block SIGRTMAX-1");
	for (int i = 0; i < n; i++)
		u[i].tid = tids[i];
	unblocked = w->ub;
	int rc = img_ptrace_seize(w->ptrace_area, u, n, deadline_ns, e);
	if (rc == 0)
		atomic_store(&n_unblocked, base + n);
	return rc;
}

/* Was thread tid given to the ptrace helper in this attempt? */
static bool was_unblocked(int tid)
{
	for (int i = 0, n = atomic_load(&n_unblocked); unblocked && i < n; i++)
		if (unblocked[i].tid == tid)
			return true;
	return false;
}

static bool is_stopped(int tid)
{
	for (const struct img_thread *t = atomic_load(&stopped_list); t; t = t->next)
		if (t->tid == tid)
			return true;
	return false;
}

/*
 * Does a stopped thread wait for a lock that records its owner's tid (or,
 * unless waits_only, hold its tid in the C library's lock code)?
 */
static const struct img_thread *tid_caching_thread(bool waits_only)
{
	for (const struct img_thread *t = atomic_load(&stopped_list); t; t = t->next)
		if (t->tid_cache && (t->tid_cache_wait || !waits_only))
			return t;
	return NULL;
}

/*
 * Is thread `tid` asleep in the futex wait at the end of stop_handler?
 * /proc/self/task/TID/syscall reads "202 0xUADDR 0xOP ..." while the thread
 * is blocked in futex(2) (readable for a thread of our own group).
 */
static bool at_rest(int tid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);
	int err = errno;

	if (fd >= 0)
		close(fd);
	/* Cannot tell (no such file on this kernel, or not allowed): go on;
	 * the read-back of the threads' chunks (image_capture.c) still
	 * refuses an image a late write damaged. */
	if (n < 0)
		return err == ENOENT || err == EACCES || err == EPERM;
	if (n == 0)
		return false;
	buf[n] = 0;
	char *end;
	long nr = strtol(buf, &end, 10);
	if (nr != SYS_futex || *end != ' ')
		return false;
	unsigned long long uaddr = strtoull(end + 1, &end, 16);
	unsigned long long op = *end == ' ' ? strtoull(end + 1, NULL, 16) : ~0ull;
	return uaddr == (unsigned long long)(uintptr_t)&release_gen && op == FUTEX_WAIT_PRIVATE;
}

/*
 * A thread is counted as stopped once it saved its context, but it still
 * runs a few instructions after that: the futex wake, the calls into its
 * wait, and (rseq) the kernel's update of its cpu fields if it was
 * preempted or migrated meanwhile. All of that writes its stack and TLS,
 * which the image holds; on a loaded machine a thread preempted right after
 * the count runs those writes while its pages are being written out, after
 * their crc was taken (image_write.c), and the image is damaged. So the
 * capture waits until every stopped thread is asleep in that wait: from
 * then on it writes nothing until the release (every signal is blocked in
 * the handler).
 */
static int wait_at_rest(char *buf, size_t len, int64_t deadline_ns, struct img_err *e)
{
	for (const struct img_thread *t = atomic_load(&stopped_list); t; t = t->next) {
		long spins = 0;
		while (!at_rest(t->tid, buf, len)) {
			if (img_mono_ns() > deadline_ns)
				return img_fail(e, -ETIMEDOUT, "thread %d, stopped for the checkpoint, did not come to "
						"rest in its wait in time (/proc/self/task/%d/syscall)", t->tid, t->tid);
			if (spins++ < 100) {
				sched_yield();
			} else {
				struct timespec ts = { 0, 100 * 1000 };
				nanosleep(&ts, NULL);
			}
		}
	}
	return 0;
}

/*
 * A thread stopped inside the wait of a tid-owned lock holds its old tid in
 * the lock code's frame (see fix_cached_tid). Rather than rely on the
 * restore-side repair, let everyone go and try again a little later: lock
 * waits are usually short. After IMG_STOP_ATTEMPTS attempts (or near the
 * deadline) the last attempt is kept.
 *
 * A thread stopped in the lock code's plain instructions with its tid in
 * hand (in_libc_code) leaves them within nanoseconds, but one that takes
 * and releases a lock all the time is back there at most later attempts:
 * those count for the first IMG_STOP_CODE_ATTEMPTS attempts only (with
 * four threads doing nothing else, tests/progs/robust_hammer.c, the
 * checkpoint took 0.2-3.1 s, median 0.9 s, instead of 0.1-0.3 s);
 * then the restore's repair, exact for a tid in a register, takes
 * over.
 */
#define IMG_STOP_ATTEMPTS 256
#define IMG_STOP_CODE_ATTEMPTS 16

int img_threads_stop(struct img_arena *a, int64_t deadline_ns, struct img_err *e)
{
	struct stop_scratch w = {
		.signaled = img_arena_alloc(a, sizeof(int) * CRAC_IMG_MAX_THREADS),
		.tasks = img_arena_alloc(a, sizeof(int) * CRAC_IMG_MAX_THREADS),
		.blocking = img_arena_alloc(a, sizeof(int) * CRAC_IMG_MAX_THREADS),
		.dents = img_arena_alloc(a, 32768),
		.ub = img_arena_alloc(a, sizeof(struct img_unblock) * CRAC_IMG_MAX_THREADS),
		.ptrace_area = img_arena_alloc(a, img_ptrace_area_size()),
	};
	int rc;

	struct sigaction sa;

	if (!w.signaled || !w.tasks || !w.blocking || !w.dents || !w.ub || !w.ptrace_area)
		return img_fail(e, -ENOMEM, "engine arena exhausted");
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = stop_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigfillset(&sa.sa_mask);
	syscall(SYS_rt_sigaction, IMG_STOP_SIGNAL, NULL, &stop_old_kact, 8);
	if (sigaction(IMG_STOP_SIGNAL, NULL, &stop_old_action) < 0)
		return img_fail(e, -errno, "sigaction(%d): %s", IMG_STOP_SIGNAL, img_strerror(errno));
	if ((stop_old_action.sa_flags & SA_SIGINFO) ||
	    (stop_old_action.sa_handler != SIG_DFL && stop_old_action.sa_handler != SIG_IGN))
		return img_fail(e, -EBUSY, "signal %d (SIGRTMAX-1), which the image engine uses to stop threads, "
				"has a handler installed by the application", IMG_STOP_SIGNAL);
	if (sigaction(IMG_STOP_SIGNAL, &sa, NULL) < 0)
		return img_fail(e, -errno, "sigaction(%d): %s", IMG_STOP_SIGNAL, img_strerror(errno));
	stop_pid = getpid();
	leader_thread = NULL;
	find_libc_text();
	const char *late = getenv("CRAC_TEST_LATE_REST_MS");
	test_late_rest_ms = late ? strtol(late, NULL, 10) : 0;
	atomic_store(&resumed_count, 0);   /* still counts the last restore's threads */

	for (int attempt = 1;; attempt++) {
		if ((rc = stop_once(&w, attempt > 1, deadline_ns, e)) < 0) {
			/* A thread that did not take the signal in time still
			 * has it pending: ignoring the signal discards it, so the
			 * application's disposition (SIG_DFL: terminate) never
			 * sees it. The program's own pending for the process
			 * and this thread are kept; the stopped threads give
			 * back theirs once let go, after the discarding
			 * (image_signals.c). */
			img_signals_put_back_stop(&stop_old_action, true);
			img_threads_release();
			return rc;
		}
		if (!tid_caching_thread(attempt >= IMG_STOP_CODE_ATTEMPTS) || attempt >= IMG_STOP_ATTEMPTS ||
		    img_mono_ns() + 200 * 1000000LL > deadline_ns)
			return rc;
		img_threads_release();
		/* 50 us, growing to 1 ms: let the lock change hands. */
		struct timespec ts = { 0, 50000L * (attempt < 20 ? attempt : 20) };
		nanosleep(&ts, NULL);
		/* Every thread out of the handler again (where all signals are
		 * blocked: it would look like a thread that blocks the signal). */
		for (int k = 0; atomic_load(&in_handler) > 0 && k < 1000; k++) {
			struct timespec tick = { 0, 100000L };
			nanosleep(&tick, NULL);
		}
	}
}

/*
 * Thread tid shows the stop signal blocked in a stop attempt that follows
 * one that let the threads go (again): was it stopped by the signal last
 * time (not seized: prev_seized entries of w->ub), it is on its way out
 * of the handler, where every signal is blocked until its sigreturn (a
 * traced process takes that slowly: strace -f). Waits for its mask to
 * clear, 200 ms at most (and the deadline). True if it cleared: the
 * thread is stopped by the signal, not taken for one that blocks it.
 */
static bool leaving_handler(const struct stop_scratch *w, int prev_seized, int tid, int64_t deadline_ns)
{
	for (int i = 0; i < prev_seized; i++)
		if (w->ub[i].tid == tid)
			return false;   /* it blocks the signal itself */
	int64_t until = img_mono_ns() + 200 * 1000000LL;
	if (until > deadline_ns)
		until = deadline_ns;
	while (img_mono_ns() < until) {
		struct timespec tick = { 0, 1000000L };
		nanosleep(&tick, NULL);
		if (!signal_blocked(tid, IMG_STOP_SIGNAL))
			return true;
	}
	return false;
}

static int stop_once(struct stop_scratch *w, bool again, int64_t deadline_ns, struct img_err *e)
{
	const int max = CRAC_IMG_MAX_THREADS;
	int *signaled = w->signaled, *tasks = w->tasks;
	char *dents = w->dents;
	int n_signaled = 0, gone = 0, me = img_gettid(), pid = getpid();
	int64_t start = img_mono_ns();

	/* Threads let go by a previous attempt may still be giving back the
	 * signals they took (image_signals.c): the table is theirs until
	 * they leave the handler. */
	while (atomic_load(&in_handler) > 0) {
		if (img_mono_ns() > deadline_ns)
			return img_fail(e, -ETIMEDOUT, "%d threads let go by an earlier stop attempt did not leave "
					"the stop handler in time", atomic_load(&in_handler));
		struct timespec tick = { 0, 100000L };
		nanosleep(&tick, NULL);
	}
	int prev_seized = again ? atomic_load(&n_unblocked) : 0;
	img_signals_reset();
	atomic_store(&stopped_list, NULL);
	atomic_store(&stopped_count, 0);
	atomic_store(&n_unblocked, 0);
	atomic_store(&stopping, true);

	for (;;) {
		int n = list_tasks(tasks, max, dents, 32768), fresh = 0, n_blocking = 0;
		if (n < 0) {
			img_fail(e, n, "/proc/self/task: %s", img_strerror(-n));
			goto fail;
		}
		if (n > max) {
			img_fail(e, -E2BIG, "%d threads: the image engine handles at most %d", n, max);
			goto fail;
		}
		/* The threads not seen before; those that block the signal are
		 * unblocked first, before anyone is signalled (a failure then
		 * leaves nobody on the way into the handler). */
		int n_new = 0;
		for (int i = 0; i < n; i++) {
			/* (a lazy loader serving on while it tracks writes is
			 * not the program's: img_track_lazy_handover ends it) */
			bool known = tasks[i] == me || tasks[i] == crac__img_lazy_serving();
			for (int k = 0; k < n_signaled && !known; k++)
				known = signaled[k] == tasks[i];
			if (!known && !was_unblocked(tasks[i]))
				tasks[n_new++] = tasks[i];
		}
		for (int i = 0; i < n_new; i++)
			if (signal_blocked(tasks[i], IMG_STOP_SIGNAL) &&
			    !(again && leaving_handler(w, prev_seized, tasks[i], deadline_ns)))
				w->blocking[n_blocking++] = tasks[i];
		again = false;   /* (later passes: threads new to this attempt; w->ub is its own) */
		if (n_blocking && seize_threads(w, w->blocking, n_blocking, deadline_ns, e) < 0)
			goto fail;
		for (int i = 0; i < n_new; i++) {
			if (syscall(SYS_tgkill, pid, tasks[i], IMG_STOP_SIGNAL) < 0) {
				if (errno == ESRCH)
					continue;     /* exited meanwhile */
				img_fail(e, -errno, "tgkill(thread %d): %s", tasks[i], img_strerror(errno));
				if (n_blocking)
					img_ptrace_cancel(w->ptrace_area);
				goto fail;
			}
			signaled[n_signaled++] = tasks[i];
			fresh++;
		}
		if (n_blocking && img_ptrace_unblock(w->ptrace_area, deadline_ns, e) < 0)
			goto fail;
		int stopped = atomic_load(&stopped_count);
		if (!fresh && stopped + gone >= n_signaled)
			break;   /* everyone listed is stopped and nobody new appeared */
		if (img_mono_ns() > deadline_ns) {
			/* Name the first thread that did not stop. */
			for (int k = 0; k < n_signaled; k++) {
				bool found = false;
				for (struct img_thread *t = atomic_load(&stopped_list); t && !found; t = t->next)
					found = t->tid == signaled[k];
				if (found)
					continue;
				img_fail(e, -ETIMEDOUT, "thread %d did not stop for the checkpoint%s", signaled[k],
					 signal_blocked(signaled[k], IMG_STOP_SIGNAL)
					 ? ": it blocks signal SIGRTMAX-1, which the image engine uses to stop threads"
					 : " in time (stuck in an uninterruptible wait?)");
				break;
			}
			if (!e->code)
				img_fail(e, -ETIMEDOUT, "threads did not stop in time");
			goto fail;
		}
		if (stopped + gone < n_signaled) {
			struct timespec ts = { 0, 20 * 1000 * 1000 };
			futex((volatile void *)&stopped_count, FUTEX_WAIT_PRIVATE, (uint32_t)stopped, &ts);
			/* A thread that exited before handling the signal never counts. */
			gone = 0;
			for (int k = 0; k < n_signaled; k++)
				if (syscall(SYS_tgkill, pid, signaled[k], 0) < 0 && errno == ESRCH)
					gone++;
			/* A thread that blocked the signal after we looked: the
			 * signal is pending, the helper unblocks it. */
			int n_late = 0;
			if (img_mono_ns() - start > 50 * 1000000LL)
				for (int k = 0; k < n_signaled; k++)
					if (!is_stopped(signaled[k]) && !was_unblocked(signaled[k]) &&
					    signal_blocked(signaled[k], IMG_STOP_SIGNAL))
						w->blocking[n_late++] = signaled[k];
			if (n_late && (seize_threads(w, w->blocking, n_late, deadline_ns, e) < 0 ||
				       img_ptrace_unblock(w->ptrace_area, deadline_ns, e) < 0))
				goto fail;
		}
	}
	if (wait_at_rest(dents, 32768, deadline_ns, e) < 0)
		goto fail;
	return atomic_load(&stopped_count);
fail:
	/* (img_threads_stop lets the threads go, once the disposition is
	 * back) */
	return e->code;
}

void img_threads_release(void)
{
	atomic_store(&stopping, false);
	atomic_fetch_add(&release_gen, 1);
	futex((volatile void *)&release_gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	atomic_store(&stopped_list, NULL);
	/* After a complete stop every signalled thread has handled the signal
	 * (it was counted), so nothing is pending: the caller puts the old
	 * disposition back before it calls this (img_signals_put_back_stop:
	 * SIG_IGN would discard the program's own SIGRTMAX-1 that the
	 * threads give back). After a failed one, img_threads_stop discards
	 * what is still pending first, and a handler entered late returns at
	 * once. */
}

bool img_threads_main_stopped(void)
{
	return stop_pid != img_gettid() && find_thread(stop_pid) != NULL;
}

void img_threads_wait_out(int64_t ns)
{
	int64_t until = img_mono_ns() + ns;

	while (atomic_load(&in_handler) > 0 && img_mono_ns() < until) {
		struct timespec tick = { 0, 100000L };
		nanosleep(&tick, NULL);
	}
}

const struct sigaction *img_stop_old_action(void)
{
	return &stop_old_action;
}

/* ---- recreating (restored process) ------------------------------------------ */

/*
 * Recreates one thread. First with its old tid (clone3 set_tid: needs
 * CAP_CHECKPOINT_RESTORE or root, and the tid must be free): then nothing
 * that cached the tid can notice. Else with a fresh tid.
 */
static long recreate_one(const struct img_thread *t, bool *try_same)
{
	const unsigned long base = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
				   CLONE_SYSVSEM | CLONE_SETTLS;
	unsigned long flags = base;
	int *ctid = NULL;
	long tid;

	if (t->tid_addr) {
		flags |= CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
		ctid = (int *)(uintptr_t)t->tid_addr;
	}
	/* The child starts below the saved stack pointer and moves to it at
	 * once (crac__img_jumpctx uses no stack before that). */
	uint64_t sp = (t->ctx.rsp - 256) & ~15ull;
	if (*try_same) {
		pid_t want = t->tid;
		struct clone_args ca;
		memset(&ca, 0, sizeof(ca));
		ca.flags = flags;
		ca.child_tid = (uint64_t)(uintptr_t)ctid;
		ca.stack = sp - 4096;
		ca.stack_size = 4096;
		ca.tls = t->ctx.fs_base;
		ca.set_tid = (uint64_t)(uintptr_t)&want;
		ca.set_tid_size = 1;
		tid = crac__img_clone3(&ca, sizeof(ca), &t->ctx);
		if (tid >= 0)
			return tid;
		if (tid == -EPERM || tid == -ENOSYS || tid == -E2BIG)
			*try_same = false;   /* not allowed here: do not ask again */
	}
	return crac__img_clone(flags, (void *)(uintptr_t)sp, NULL, ctid, t->ctx.fs_base, &t->ctx);
}

/*
 * The leader runs as the checkpointing thread on that thread's stack. To
 * become the main thread again it must leave that stack before anyone else
 * uses it: crac__img_clone_leader creates the clone that goes on as the
 * checkpointing thread (back in the caller, where crac__img_setctx below
 * returns 1) and, without touching memory, moves the leader onto the main
 * thread's fs base and into its stop handler, where it re-registers its own
 * kernel state (tid field, robust list, rseq, name) like any restored
 * thread and counts as resumed; img_threads_recreate skips its record.
 */
static struct img_thread *find_thread(int tid)
{
	for (struct img_thread *t = atomic_load(&stopped_list); t; t = t->next)
		if (t->tid == tid)
			return t;
	return NULL;
}

int img_threads_restore_leader(const struct img_thread *self, struct img_err *e)
{
	static struct crac_img_ctx here;

	if (self->tid == stop_pid)
		return 1;
	/* (a global, not a local: it must survive crac__img_setctx) */
	if (!(leader_thread = find_thread(stop_pid)))
		return 1;   /* the main thread had exited: the leader stays the checkpointing thread */
	if (crac__img_setctx(&here) != 0)
		return 0;   /* the new clone */

	const struct img_thread *m = leader_thread;
	unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
			      CLONE_SYSVSEM | CLONE_SETTLS;
	int *ctid = NULL;
	if (self->tid_addr) {
		flags |= CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
		ctid = (int *)(uintptr_t)self->tid_addr;
	}
	/* The clone's initial stack is never used (it switches at once), but
	 * must not be the one the leader still stands on. */
	uint64_t sp = (here.rsp - 256) & ~15ull;
	long rc = crac__img_clone_leader(flags, (void *)(uintptr_t)sp, ctid, self->ctx.fs_base, &here,
					 m->ctx.fs_base, &m->ctx);
	leader_thread = NULL;
	return img_fail(e, (int)rc, "clone of the checkpointing thread %d (%s), to give the main thread %d "
			"back its place as thread-group leader: %s", self->tid, self->comm, m->tid,
			img_strerror((int)-rc));
}

int img_threads_recreate(struct img_err *e, int64_t *cloned_ns)
{
	bool try_same = !getenv("CRAC_IMAGE_NEW_TIDS");
	int n = 0, want = 0;

	for (struct img_thread *t = atomic_load(&stopped_list); t; t = t->next)
		want++;
	atomic_store(&resumed_want, want);

	for (struct img_thread *t = atomic_load(&stopped_list); t; t = t->next) {
		if (t == leader_thread) {   /* already running: the leader */
			n++;
			continue;
		}
		long tid = recreate_one(t, &try_same);
		if (tid < 0)
			return img_fail(e, (int)tid, "clone of thread %d (%s): %s", t->tid, t->comm,
					img_strerror((int)-tid));
		n++;
	}
	*cloned_ns = img_mono_ns();
	/* Wait until each one has re-registered its kernel state. */
	int64_t deadline = img_mono_ns() + 10LL * 1000000000LL;
	for (int got; (got = atomic_load(&resumed_count)) < n;) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		if (img_mono_ns() > deadline)
			return img_fail(e, -ETIMEDOUT, "only %d of %d restored threads started", got, n);
		futex((volatile void *)&resumed_count, FUTEX_WAIT_PRIVATE, (uint32_t)got, &ts);
	}
	return n;
}

/* ---- what `crac check` says ------------------------------------------------- */

int img_threads_stop_plan(char *buf, size_t len)
{
	const int max = CRAC_IMG_MAX_THREADS;
	int *tids = malloc(sizeof(int) * (size_t)max);
	char *dents = malloc(32768), why[256], comm[16];
	const char *obstacle = NULL;
	int n, found = 0, me = img_gettid();
	size_t used = 0;

	if (len)
		buf[0] = 0;
	if (!tids || !dents) {
		free(tids);
		free(dents);
		return -ENOMEM;
	}
	n = list_tasks(tids, max, dents, 32768);
	for (int i = 0; i < n && i < max; i++) {
		if (tids[i] == me || !signal_blocked(tids[i], IMG_STOP_SIGNAL))
			continue;
		if (!found++)
			obstacle = img_ptrace_obstacle(why, sizeof(why));
		img_thread_comm(tids[i], comm, sizeof(comm));
		int k = snprintf(buf + used, len - used,
				 obstacle ? "thread %d (%s) blocks SIGRTMAX-1, the image engine's stop signal, and "
					    "cannot be stopped with ptrace either (%s): an image checkpoint will fail\n"
					  : "thread %d (%s) blocks SIGRTMAX-1, the image engine's stop signal: "
					    "it will be stopped with ptrace%s\n",
				 tids[i], comm, obstacle ? obstacle : "");
		if (k > 0)
			used = used + (size_t)k < len ? used + (size_t)k : (len ? len - 1 : 0);
	}
	free(tids);
	free(dents);
	return n < 0 ? n : found;
}
