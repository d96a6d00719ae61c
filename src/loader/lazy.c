/*
 * lazy.c - the loader's half of lazy restore (see struct crac_img_lazy in
 * image/image.h for the whole picture, and engines/image_lazy.c for the
 * thread that does the loading).
 *
 *   lazy_open       before the point of no return: a userfaultfd that
 *                   also handles faults taken inside system calls, with the
 *                   events that keep anonymous semantics (remove = DONTNEED
 *                   and MADV_FREE, unmap, remap, fork); or why there is none
 *   (which mappings are left to it: crac_img_lazy_candidate, image/format.c)
 *   lazy_register   one mapping, whole (registering part of a mapping would
 *                   split it, and mremap of the original range would fail)
 *   lazy_start      the area (struct, segments, chunk table, chunk buffer,
 *                   stack, thread pointer page), and the thread, cloned into
 *                   the restored libcrac's crac__img_lazy_main with a file
 *                   table of its own that holds the userfaultfd and the
 *                   pages file (read with pread: a mapping of it would let
 *                   a change after verification through, and a truncation
 *                   would be a SIGBUS)
 *
 * Why only with a userfaultfd that handles kernel faults: unprivileged, the
 * kernel here grants UFFD_USER_MODE_ONLY alone (vm.unprivileged_userfaultfd
 * is 0), and then read(fd, buf) into a page not loaded yet fails with
 * EFAULT instead of waiting for it. Such a restore would be wrong, so it is
 * eager instead, and `--stats` / `--lazy` say why.
 */
#include "loader/lazy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#define P CRAC_IMG_PAGE
#define LAZY_STACK (256u << 10)

/* clone(flags, sp, ptid, ctid, tls); the child pops fn and its argument
 * from the new stack and calls fn(arg), which never returns. */
long lazy_clone(unsigned long flags, void *sp, uint32_t *ptid, uint32_t *ctid, unsigned long tls);
__asm__(
	".text\n"
	".globl lazy_clone\n"
	".type lazy_clone,@function\n"
	"lazy_clone:\n"
	"	movq %rcx, %r10\n"
	"	movl $56, %eax\n"          /* SYS_clone */
	"	syscall\n"
	"	testq %rax, %rax\n"
	"	jnz 1f\n"
	"	xorl %ebp, %ebp\n"
	"	popq %rax\n"
	"	popq %rdi\n"
	"	callq *%rax\n"
	"	hlt\n"
	"1:	ret\n"
	".size lazy_clone, .-lazy_clone\n");

int lazy_open(int *mode)
{
	const uint64_t want = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
			      UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP;
	long fd = SYS(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0);

	if (fd == -EPERM || fd == -EACCES) {
		/* /dev/userfaultfd: its permissions are the administrator's grant */
		long dev = sys_openat(AT_FDCWD, "/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		fd = dev;
		if (dev >= 0) {
			fd = SYS(SYS_ioctl, dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK, 0, 0, 0);
			sys_close(dev);
		}
		if (fd < 0) {
			*mode = CRAC_LAZY_OFF_PRIVILEGE;
			return -1;
		}
	}
	if (fd < 0) {
		*mode = CRAC_LAZY_OFF_KERNEL;
		return -1;
	}
	struct uffdio_api api = { .api = UFFD_API, .features = want };
	if (SYS(SYS_ioctl, fd, UFFDIO_API, &api, 0, 0, 0) < 0 || (api.features & want) != want ||
	    !(api.ioctls & (1ull << _UFFDIO_REGISTER))) {
		sys_close(fd);
		*mode = CRAC_LAZY_OFF_KERNEL;
		return -1;
	}
	return (int)fd;
}

long lazy_register(int uffd, uint64_t start, uint64_t len)
{
	struct uffdio_register r = {
		.range = { .start = start, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	return SYS(SYS_ioctl, uffd, UFFDIO_REGISTER, &r, 0, 0, 0);
}

long lazy_start(struct lazy_plan *pl, const struct crac_img_view *v, const bool *is_lazy,
		struct crac_img_resume *res, int pages_fd, const char *dir, uint64_t now_ns)
{
	const struct crac_img_header *h = v->h;
	uint64_t n_segs = 0, buf_size = 0, zbuf_size = 0;
	bool compressed = (h->img_flags & CRAC_IMGF_COMPRESSED) != 0;

	if (!res->lazy_entry)
		return -ENOEXEC;   /* the restored libcrac has no lazy loader */

	for (uint32_t i = 0; i < h->n_maps; i++) {
		const struct crac_img_map *m = &v->maps[i];
		if (!is_lazy[i])
			continue;
		n_segs += m->n_chunks;
		for (uint32_t c = m->first_chunk; c < m->first_chunk + m->n_chunks; c++) {
			if (v->chunks[c].len > buf_size)
				buf_size = v->chunks[c].len;   /* CRAC_IMG_CHUNK_MAX from our writer */
			if (v->chunks[c].zlen > zbuf_size)
				zbuf_size = v->chunks[c].zlen;
		}
	}
	/* Compressed chunks: the thread reads each through
	 * crac_img_chunk_read, with a frame buffer and a zstd context here. */
	uint64_t dctx_size = zbuf_size ? crac_img_zstd_dctx_size() : 0;
	if (zbuf_size && !dctx_size)
		return -ENOTSUP;   /* not reached: the eager path says "no zstd" */
	zbuf_size = (zbuf_size + P - 1) & ~(P - 1);
	uint64_t segs_off = (sizeof(struct crac_img_lazy) + 63) & ~63ull;
	uint64_t chunks_off = segs_off + n_segs * sizeof(struct crac_img_lazy_seg);
	uint64_t real_off = chunks_off + h->n_chunks * sizeof(struct crac_img_chunk);
	uint64_t dctx_off = (real_off + (compressed ? h->n_chunks * 8ull : 0) + 63) & ~63ull;
	uint64_t buf_off = (dctx_off + dctx_size + P - 1) & ~(P - 1);
	uint64_t zbuf_off = buf_off + buf_size * CRAC_LAZY_SLOTS;   /* chunk lengths are whole pages */
	uint64_t stack_off = zbuf_off + zbuf_size;
	uint64_t tls_off = stack_off + LAZY_STACK;
	uint64_t size = tls_off + P;

	long area = sys_mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area < 0)
		return area;
	struct crac_img_lazy *a = (struct crac_img_lazy *)area;
	a->magic = CRAC_LAZY_MAGIC;
	a->area_size = size;
	a->uffd = pl->uffd;
	a->err_fd = 2;
	a->flags = pl->flags;
	a->n_segs = (uint32_t)n_segs;
	a->segs_off = segs_off;
	a->n_chunks = h->n_chunks;
	a->chunks_off = chunks_off;
	a->pages_fd = pages_fd;   /* the thread's copy of the file table keeps it */
	a->pages_size = h->pages_size;
	a->buf_off = buf_off;
	a->buf_size = buf_size;
	a->buf_slots = CRAC_LAZY_SLOTS;
	a->resume = (uint64_t)(uintptr_t)res;
	a->jump_ns = now_ns;
	a->stack_off = stack_off;
	a->stack_size = LAZY_STACK;
	a->tls_off = tls_off;
	a->file_size = h->pages_size;
	if (compressed) {
		a->real_off = real_off;
		a->zbuf_off = zbuf_off;
		a->zbuf_size = zbuf_size;
		a->dctx_off = dctx_off;
		a->dctx_size = dctx_size;
	}
	size_t dl = strlen(dir);
	if (dl >= sizeof(a->dir))
		dl = sizeof(a->dir) - 1;
	memcpy(a->dir, dir, dl);

	/* Segments in map order: maps and their chunks are sorted by address. */
	struct crac_img_lazy_seg *seg = (struct crac_img_lazy_seg *)(area + segs_off);
	struct crac_img_chunk *ck = (struct crac_img_chunk *)(area + chunks_off);
	uint64_t voff = 0;
	for (uint32_t c = 0; c < h->n_chunks; c++) {
		ck[c] = v->chunks[c];
		ck[c].map = v->maps[v->chunks[c].map].kind;   /* the thread only needs the kind */
		if (compressed) {
			/* the thread counts pages by offset: give it the offsets
			 * the chunks would have uncompressed, keep the real ones */
			((uint64_t *)(area + real_off))[c] = v->chunks[c].offset;
			ck[c].offset = voff;
			voff += v->chunks[c].len;
		}
	}
	if (compressed)
		a->pages_size = voff;
	for (uint32_t i = 0; i < h->n_maps; i++) {
		const struct crac_img_map *m = &v->maps[i];
		if (!is_lazy[i])
			continue;
		for (uint32_t c = m->first_chunk; c < m->first_chunk + m->n_chunks; c++) {
			seg->addr = v->chunks[c].addr;
			seg->len = v->chunks[c].len;
			seg->off = ck[c].offset;
			seg->chunk = c;
			seg++;
			res->lazy_bytes += v->chunks[c].len;
		}
	}

	/* The thread: in the process's thread group, sharing its memory and
	 * signal handlers, with all signals blocked (the loader's mask), its
	 * own file table (a copy holding 0-2, the userfaultfd and the pages
	 * file; it closes all else) and a thread
	 * pointer page of its own (any %fs access stays inside the area). */
	uint64_t *tls = (uint64_t *)(area + tls_off);
	tls[0] = (uint64_t)(uintptr_t)tls;
	uint64_t *sp = (uint64_t *)(area + stack_off + LAZY_STACK);
	*--sp = (uint64_t)area;              /* arg */
	*--sp = res->lazy_entry;             /* fn */
	res->lazy_pid = (uint32_t)SYS(SYS_getpid, 0, 0, 0, 0, 0, 0);
	unsigned long flags = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS |
			      CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
	long tid = lazy_clone(flags, sp, &res->lazy_tid, &res->lazy_tid, (unsigned long)(uintptr_t)tls);
	if (tid < 0)
		return tid;
	res->lazy_mode = CRAC_LAZY_ON;
	return 0;
}
