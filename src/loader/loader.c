/* SPDX-License-Identifier: MIT */
/*
 * loader.c - crac-loader: turns this process into a restored image.
 *
 *   crac-loader [--populate | --lazy] [--stats] [--check] [--trust-owner] [--verify-files] [--env K=V]...
 *               DIR [-- ARGS...]
 *
 * `crac restore DIR` execs this program, so the restored process keeps the
 * pid of the restore command and its stdio (fds 0, 1, 2 are inherited;
 * every other descriptor is closed before the jump). The loader is static,
 * links no libc and is linked at a fixed unusual address
 * (CRAC_IMG_LOADER_LO, image/image.h): restored mappings that would overlap
 * its reserved range are refused by the checkpoint already.
 *
 * Top to bottom (loader_main, at the end of this file, calls one function
 * per step):
 *   1. arguments (limits said, never cut silently): read_environment,
 *      parse_arguments
 *   2. open_image: verify, changing nothing, with the checks `crac inspect` runs too
 *      (image/check.c): the image's files opened safely (no symbolic link
 *      followed, no FIFO read), header (magic, version, size, crc, every
 *      table), owner (an image is code), layout (addresses the loader can
 *      map), pages file and resume block, CPU features and XSAVE size, vDSO
 *      layout and code, PR_SET_MM_MAP, identity of every mapped file;
 *      then plan_lazy (which mappings userfaultfd fills) and
 *      check_descriptors (descriptor limit, socket addresses, activation;
 *      listening and bound sockets bound and held for the restore, the
 *      socket files of Unix paths removed again if the restore is refused
 *      before the point of no return)
 *      and check_address_space (the image, the loader's own range and what
 *      it will map within RLIMIT_AS)
 *   -- point of no return: async signals blocked, crash handler installed --
 *   3. clear_address_space: unmap everything of ours but the loader itself
 *      and the vDSO block
 *   4. move [vvar][vvar_vclock][vdso] to the recorded address (one mremap)
 *   5. map_image: every recorded mapping: files from their files, anonymous
 *      memory anonymous, then read the stored pages into it (crc checked);
 *      large anonymous mappings are registered with userfaultfd instead
 *      (lazy.c)
 *   6. set_mm: brk, arg/env areas, auxv: PR_SET_MM_MAP (exe_fd -1)
 *   7. fill_resume: the resume block in the restored libcrac; start_lazy:
 *      the lazy loader thread, our fds closed; resume_program: every
 *      inherited fd closed, the program's descriptors recreated at their
 *      numbers (src/objects), the thread pointer set, a jump into the
 *      saved context: the engine's checkpoint call returns CRAC_RESTORED.
 * Any refusal prints one line "crac: restore DIR: reason" and exits 1;
 * after the point of no return too (our own code and data stay mapped). A
 * crash after it is caught by a last-resort handler that says where and
 * during what ("crac: restore DIR: crashed at ADDR (SIGSEGV, fault address
 * X) while mapping the image"): never a silent death.
 *
 * Restored memory is anonymous memory, so MADV_DONTNEED and MADV_FREE
 * behave as in the original process: small mappings are read with pread
 * (eager), large ones are filled by userfaultfd (lazy, when the kernel lets
 * us handle faults taken inside system calls; see lazy.c), an incremental
 * image's mappings with references to the images below it too. `--populate`
 * makes everything eager, `--lazy` refuses when lazy restore is impossible.
 */
#include "image/check.h"
#include "loader/activation.h"
#include "loader/lazy.h"
#include "objects/objects.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/prctl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef ARCH_SET_FS
#define ARCH_SET_FS 0x1002
#endif
#define ARCH_GET_XCOMP_PERM 0x1022
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

#define P CRAC_IMG_PAGE
#define MAX_OWN_MAPS 64
#define MAX_NEW_ARGS 16384              /* arguments, and --env settings, each */
#define MAX_NEW_BYTES (1u << 20)        /* their total size, each */

extern char __executable_start[], _end[];

/*
 * The small variables every restore touches, together in .data next to the
 * initialized ones (ld, phase, ...): the first touch of each page of ours is
 * a page fault, slow on a VM with shadow paging (10-30 us here), and in
 * .bss they lay between the large buffers, a page each.
 */
#define HOT __attribute__((section(".data.loader_hot")))
/* Larger ones of which only the head is used: after the small ones. */
#define HOT_TAIL __attribute__((section(".data.loader_hot_tail")))

/* Big buffers live in .bss: inside the loader's fixed range. The two
 * largest (the header, the headers of the images below an incremental
 * image: up to 64 MiB each) are mapped when needed, as large as needed,
 * right after it (loader_buf): in .bss they made every exec of crac, the
 * loader and the installed command alike, reserve 128 MiB of address
 * space, and under an RLIMIT_AS below that the kernel killed any crac
 * command with SIGSEGV inside its exec, before a word could say why. */
#define HEADER_BUF_MAX (64u << 20)
#define ANC_BUF_MAX (64u << 20)
static HOT char *header_buf;
static char vdso_park[1u << 20] __attribute__((aligned(4096)));  /* parking spot while moving */
static char args_buf[MAX_NEW_BYTES];
static char env_buf[MAX_NEW_BYTES];
static char *new_argv[MAX_NEW_ARGS + 1];
static char *new_envp[MAX_NEW_ARGS + 1];
/* Per file and per mapping of the image (image_arrays, right after the
 * header is read): mapped files' descriptors, and which mappings
 * userfaultfd fills. */
static int *file_fd HOT;
static bool *is_lazy HOT;
/* An incremental image: the images below it (their headers in anc_buf). */
static struct crac_img_chain chain;
static HOT char *anc_buf;
/* Chunk buffers: fill_refs (one per thread), then fill_eager's small
 * mappings (fill_mem). */
static char ref_bounce[CRAC_IMG_CHUNK_MAX] __attribute__((aligned(4096)));
static char ref_bounce2[CRAC_IMG_CHUNK_MAX] __attribute__((aligned(4096)));
static char abs_dir[CRAC_IMG_PATH_MAX + 4096];   /* the image directory made absolute (set_abs_dir) */
static HOT const char *abs_path;                  /* the image directory, absolute (resume block), or 0 */

static HOT const char *image_dir;   /* set as soon as the arguments name it */
static HOT const char *pretend_list; /* $CRAC_PRETEND_MISSING: kernel features to do without (tests) */

/* Is feature in $CRAC_PRETEND_MISSING (comma-separated)? */
static int pretend(const char *feature)
{
	size_t n = strlen(feature);

	for (const char *p = pretend_list; p && *p;) {
		const char *end = p;
		while (*end && *end != ',')
			end++;
		if ((size_t)(end - p) == n && !memcmp(p, feature, n))
			return 1;
		p = *end ? end + 1 : end;
	}
	return 0;
}

/* ---- output ------------------------------------------------------------------ */

static void out(int fd, const char *s)
{
	size_t n = strlen(s);
	while (n) {
		long w = sys_write(fd, s, n);
		if (w == -EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/*
 * The image directory in a message: whole up to 160 bytes, else its first
 * and last 64 around "..." (a path of up to 4 KiB would push the reason
 * out of the line).
 */
#define DIR_SHOW_MAX 160
static void put_n(struct crac_img_buf *b, const char *s, size_t n, bool escaped)
{
	char part[65];

	while (n) {
		size_t k = n < sizeof(part) - 1 ? n : sizeof(part) - 1;
		memcpy(part, s, k);
		part[k] = 0;
		if (escaped)
			crac_img_put_escaped(b, part);
		else
			crac_img_puts(b, part);
		s += k;
		n -= k;
	}
}

static void put_dir(struct crac_img_buf *b, const char *d, size_t dl)
{
	if (dl <= DIR_SHOW_MAX) {
		put_n(b, d, dl, true);
		return;
	}
	put_n(b, d, 64, true);
	crac_img_puts(b, "...");
	put_n(b, d + dl - 64, 64, true);
}

static bool past_ponr HOT;   /* point_of_no_return() ran */
static HOT uint64_t as_room = ~0ull;   /* RLIMIT_AS less the restore's need (check_address_space); ~0: no limit */

/* "crac: restore DIR: WHY", the directory shortened where WHY names it
 * too, always one whole line: cut short, it ends in "...". Before the
 * point of no return, the Unix socket files check_descriptors bound are
 * removed again first (each only if it is still the one it made). */
static __attribute__((noreturn)) void die(int status, const char *why)
{
	static char line[2048];

	if (!past_ponr)
		crac_obj_socket_unhold();
	struct crac_img_buf b = { line, 0, sizeof(line) - 4 };   /* room for "...\n" */
	size_t dl = image_dir ? strlen(image_dir) : 0;

	crac_img_puts(&b, "crac: restore ");
	if (image_dir) {
		put_dir(&b, image_dir, dl);
		crac_img_puts(&b, ": ");
	}
	for (const char *w = why; *w;) {
		const char *at = dl > DIR_SHOW_MAX ? w : NULL;
		while (at && *at && !has_prefix(at, image_dir))
			at++;
		if (!at || !*at) {
			crac_img_puts(&b, w);   /* as its writer put it */
			break;
		}
		put_n(&b, w, (size_t)(at - w), false);
		put_dir(&b, image_dir, dl);
		w = at + dl;
	}
	b.cap = sizeof(line);
	if (b.len >= sizeof(line) - 5)
		crac_img_puts(&b, "...");
	crac_img_puts(&b, "\n");
	out(2, line);
	sys_exit_group(status);
	__builtin_unreachable();
}

/* A message with an errno: "what: Exxx (n)". */
static HOT char msg_buf[1024];
static struct crac_img_buf msg(void)
{
	struct crac_img_buf b = { msg_buf, 0, sizeof(msg_buf) };
	msg_buf[0] = 0;
	return b;
}

static void put_err(struct crac_img_buf *b, long e)
{
	crac_img_put_err(b, e);
}

static uint64_t mono_ns(void)
{
	struct timespec ts = { 0, 0 };
	sys_clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- reading ---------------------------------------------------------------- */

static long read_full(int fd, void *buf, uint64_t len, uint64_t off)
{
	char *p = buf;
	uint64_t got = 0;

	while (got < len) {
		long n = sys_pread(fd, p + got, len - got, off + got);
		if (n == -EINTR)
			continue;
		if (n < 0)
			return n;
		if (n == 0)
			return -EIO;   /* file ended early */
		got += (uint64_t)n;
	}
	return 0;
}

/*
 * Every chunk read whole goes through read_chunk (image/chunk.c: pread,
 * zstd decompression of a compressed chunk, size and crc32c checked); one
 * reader per filling thread (we and the helper), each with its frame
 * buffer and zstd context. Runs of uncompressed chunks are still read
 * with one preadv by fill_chunks, which checks their crc itself.
 */
struct chunk_reader {
	char zbuf[CRAC_IMG_CHUNK_MAX] __attribute__((aligned(4096)));
	char dctx_mem[256u << 10] __attribute__((aligned(64)));  /* ZSTD_estimateDCtxSize(): ~160 KiB */
	void *dctx;
	struct crac_img_crc crc;
	bool ready;
};
static struct chunk_reader readers[2];
/* The thread pointer while chunks are decompressed: libzstd is built with
 * the stack protector, which reads its canary at %fs:0x28 (the loader has
 * no TLS otherwise; the helper thread inherits it with the clone). */
static uint64_t zstd_tls[64] __attribute__((aligned(64)));

static long read_chunk(struct chunk_reader *r, int fd, const struct crac_img_chunk *k, void *dst)
{
	if (!r->ready) {
		crac_img_crc32c_prepare(&r->crc);
		r->dctx = crac_img_zstd_dctx(r->dctx_mem, sizeof(r->dctx_mem));
		r->ready = true;
	}
	if (k->zlen) {
		zstd_tls[0] = (uint64_t)(uintptr_t)zstd_tls;
		sys_arch_prctl(ARCH_SET_FS, (uint64_t)(uintptr_t)zstd_tls);
	}
	return crac_img_chunk_read(fd, k, dst, r->zbuf, sizeof(r->zbuf), r->dctx, &r->crc);
}

/* ---- our own mappings (/proc/self/maps) ------------------------------------ */

/* /proc/self/maps is read into the first bytes of ref_bounce, which the
 * fill reads chunks into later (a buffer of its own would be one more
 * fresh page to fault in). */
#define MAPS_MAX (64u << 10)
#define maps_buf ref_bounce

struct own_map { uint64_t start, end; char name[32]; };
static HOT struct own_map own[MAX_OWN_MAPS];
static HOT int n_own;

static uint64_t parse_hex(const char **s)
{
	uint64_t v = 0;
	for (;; (*s)++) {
		char c = **s;
		if (c >= '0' && c <= '9') v = v * 16 + (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f') v = v * 16 + (uint64_t)(c - 'a' + 10);
		else return v;
	}
}

static void read_own_maps(void)
{
	int fd = (int)sys_openat(AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
	long len = 0, n;

	if (fd < 0) {
		struct crac_img_buf b = msg();
		crac_img_puts(&b, "cannot read /proc/self/maps");
		put_err(&b, fd);   /* e.g. EMFILE: the chain's files took the last descriptors */
		die(1, msg_buf);
	}
	while ((n = sys_read(fd, maps_buf + len, MAPS_MAX - 1 - (size_t)len)) > 0)
		len += n;
	sys_close(fd);
	maps_buf[len] = 0;
	for (const char *s = maps_buf; *s && n_own < MAX_OWN_MAPS;) {
		struct own_map *m = &own[n_own++];
		m->start = parse_hex(&s);
		s++;
		m->end = parse_hex(&s);
		/* skip perms, offset, dev, inode: 4 fields */
		for (int f = 0; f < 4 && *s && *s != '\n'; f++) {
			while (*s == ' ') s++;
			while (*s && *s != ' ' && *s != '\n') s++;
		}
		while (*s == ' ') s++;
		size_t k = 0;
		while (*s && *s != '\n') {
			if (k + 1 < sizeof(m->name))
				m->name[k++] = *s;
			s++;
		}
		m->name[k] = 0;
		if (*s == '\n')
			s++;
	}
}

static const struct own_map *own_find(const char *name)
{
	for (int i = 0; i < n_own; i++)
		if (!strcmp(own[i].name, name))
			return &own[i];
	return 0;
}

/* ---- building the address space ----------------------------------------------- */

static void unmap_foreign(uint64_t lo, uint64_t hi, uint64_t block_lo, uint64_t block_hi)
{
	for (int i = 0; i < n_own; i++) {
		const struct own_map *m = &own[i];
		if (m->start >= 0xffffffffff600000ull)       /* [vsyscall] */
			continue;
		if (m->start >= lo && m->end <= hi)          /* the loader */
			continue;
		if (m->start >= block_lo && m->end <= block_hi)
			continue;                             /* vDSO block: moved, not unmapped */
		sys_munmap(m->start, m->end - m->start);
	}
}

static void move_vdso(const struct crac_img_header *h, uint64_t cur)
{
	uint64_t size = h->vvar_size + h->vvar_vclock_size + h->vdso_size;
	uint64_t target = h->vdso_block;
	long rc;

	if (cur == target)
		return;
	if (cur < target + size && target < cur + size) {
		/* Overlapping: via a parking spot inside our own .bss. */
		if (size > sizeof(vdso_park))
			die(1, "vDSO block larger than the loader's parking area");
		rc = sys_mremap(cur, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, vdso_park);
		if (rc < 0)
			die(1, "cannot move the vDSO block out of the way");
		cur = (uint64_t)(uintptr_t)vdso_park;
	}
	rc = sys_mremap(cur, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
	if (rc < 0) {
		struct crac_img_buf b = msg();
		crac_img_puts(&b, "moving the vDSO block to ");
		crac_img_putx(&b, target);
		put_err(&b, rc);
		die(1, msg_buf);
	}
}

static void fail_map(const struct crac_img_view *v, const struct crac_img_map *m, const char *what, long e)
{
	struct crac_img_buf b = msg();

	crac_img_puts(&b, what);
	crac_img_puts(&b, " ");
	crac_img_putx(&b, m->start);
	crac_img_puts(&b, "-");
	crac_img_putx(&b, m->end);
	crac_img_puts(&b, " (");
	crac_img_put_escaped(&b, m->name ? crac_img_str(v, m->name) : crac_img_kind_name(m->kind));
	crac_img_puts(&b, ")");
	if (e)
		put_err(&b, e);
	die(1, msg_buf);
}

/*
 * Step 5 in two passes. First every mapping is made (and the lazy ones
 * registered with userfaultfd): one mmap each, nothing read yet. Then the
 * eager memory is filled (fill_eager): chunks that follow each other in the
 * pages file are read with one preadv (fill_chunks), each chunk's crc32c
 * checked right after; from 1 MiB on, with two CPUs, a second thread
 * fills the second half meanwhile. Fresh memory costs more to fault in than to copy
 * (a VM with shadow paging: ~20x), so large dense anonymous mappings get
 * transparent huge pages while they are filled (THP mode "madvise": the
 * mapping is marked MADV_NOHUGEPAGE afterwards, which in that mode behaves
 * as the unmarked original did: no huge pages for later faults).
 * Last, the protections the program had.
 */
/* How each mapping is filled: one array of small entries, so that the
 * entries of a few hundred mappings share a page or two (each page the
 * loader touches first is a page fault, ~10 us on a VM with shadow
 * paging: an array a flag would be a fault a flag). */
struct fill_map {
	bool needs_prot;   /* made writable to be filled */
	bool by_mem;       /* filled through /proc/self/mem (fill_mem) */
	bool made_huge;    /* MADV_HUGEPAGE while filling */
	bool wide;         /* filled in whole huge pages before the rest (map_wide) */
	bool in_pass;      /* filled by this fill_pass */
};
static struct fill_map *fm HOT;   /* one a mapping (image_arrays) */

/*
 * fm, is_lazy and file_fd, each as long as the image needs, one after the
 * other in one buffer: sized for the largest image, they began a page
 * each, and the few hundred bytes a restore uses of each were three pages
 * to fault in (python3: 1.5 KiB in all, one page).
 */
static char image_arrays_buf[CRAC_IMG_MAX_MAPS * (sizeof(struct fill_map) + sizeof(bool)) +
			     CRAC_IMG_MAX_FILES * sizeof(int) + 8] __attribute__((aligned(64)));

static void image_arrays(const struct crac_img_header *h)
{
	char *p = image_arrays_buf;

	fm = (struct fill_map *)(void *)p;
	p += h->n_maps * sizeof(struct fill_map);
	is_lazy = (bool *)p;
	p += h->n_maps * sizeof(bool);
	file_fd = (int *)(void *)(((uintptr_t)p + 3) & ~(uintptr_t)3);
}
static int mem_fd = -1;                       /* /proc/self/mem, or -1: every mapping by preadv */
static HOT int mem_no_force;                  /* tests: as if it refused writes to read-only mappings */
static HOT uint64_t wide_fill_ns;             /* map_wide's time filling (--stats counts it as fill) */
static HOT int thp_madvise;                   /* THP mode is "madvise" */
static int fill_threads = 2;                  /* $CRAC_LOADER_THREADS: 1 or 2 */

#define FILL_RUN_MAX (4ull << 20)      /* one preadv; the crc then reads it from cache */
#define FILL_MEM_MAX (1ull << 20)      /* anonymous mappings with less stored: fill_mem */
#define FILL_SPLIT_MIN (1ull << 20)    /* below this, one thread fills all */
#define MADV_POPULATE_WRITE_ 23        /* Linux 5.14 */
#define HUGE_MIN (2ull << 20)
#define HUGE_ALIGN(a) ((a) & ~(HUGE_MIN - 1))

/* Is a chunk of mapping m compressed? (fill_mem writes raw file bytes.) */
static bool has_compressed(const struct crac_img_view *v, const struct crac_img_map *m)
{
	for (uint32_t c = m->first_chunk; c < m->first_chunk + m->n_chunks; c++)
		if (v->chunks[c].zlen)
			return true;
	return false;
}

/* Worth huge pages while filled (THP mode "madvise"): large anonymous
 * memory, dense enough that huge pages hold no more memory than the
 * original. */
static bool huge_candidate(const struct crac_img_map *m, uint32_t i)
{
	uint64_t len = m->end - m->start;

	return thp_madvise && (m->kind == CRAC_MAP_ANON || m->kind == CRAC_MAP_HEAP) && !is_lazy[i] &&
	       !(m->flags & CRAC_MAPF_SHARED) && len >= HUGE_MIN && m->stored >= len / 2;
}

static void map_all(const struct crac_img_view *v, int uffd, uint64_t *mapped, uint32_t *n_syscalls)
{
	const struct crac_img_header *h = v->h;

	for (uint32_t i = 0; i < h->n_maps; i++) {
		const struct crac_img_map *m = &v->maps[i];
		uint64_t len = m->end - m->start;
		int prot = (int)m->prot, flags = MAP_FIXED_NOREPLACE, fd = -1;
		uint64_t off = 0;

		if (m->kind >= CRAC_MAP_VVAR)
			continue;
		/* fill_mem writes with the final protection in place: files'
		 * dirty pages (RELRO, .data, GOT) and small anonymous memory */
		fm[i].by_mem = mem_fd >= 0 && m->stored && !is_lazy[i] && !fm[i].wide && !has_compressed(v, m) &&
			    !(m->flags & (CRAC_MAPF_REFS | CRAC_MAPF_SHARED)) &&
			    (m->kind == CRAC_MAP_FILE || m->stored < FILL_MEM_MAX);
		if ((m->stored || (m->flags & CRAC_MAPF_REFS)) && !is_lazy[i])
			prot |= PROT_READ | PROT_WRITE;   /* to read the pages in */
		fm[i].needs_prot = prot != (int)m->prot && !fm[i].by_mem;
		if (fm[i].wide) {   /* mapped and filled already (map_wide) */
			*mapped += len;
			continue;
		}
		flags |= (m->flags & CRAC_MAPF_SHARED) ? MAP_SHARED : MAP_PRIVATE;
		if (m->flags & CRAC_MAPF_NORESERVE)
			flags |= MAP_NORESERVE;
		if (m->kind == CRAC_MAP_FILE) {
			fd = file_fd[m->file];
			off = m->offset;
		} else {
			flags |= MAP_ANONYMOUS;
		}
		if (m->kind == CRAC_MAP_STACK)
			flags |= MAP_GROWSDOWN;
		long a = sys_mmap(m->start, len, prot, flags, fd, off);
		(*n_syscalls)++;
		if (a < 0 || (uint64_t)a != m->start)
			fail_map(v, m, "cannot map", a < 0 ? a : -EEXIST);
		*mapped += len;
		if (fm[i].by_mem && prot != (int)m->prot) {
			/* Mapped writable and protected at once, while no page
			 * is in (cheap: nothing to change, no TLB to flush):
			 * the mapping is then what the original's was (a
			 * private mapping once writable is accounted, and its
			 * neighbours of the same file do not merge with it). */
			long rc = sys_mprotect(m->start, len, m->prot);
			(*n_syscalls)++;
			if (rc < 0)
				fail_map(v, m, "cannot set the protection of", rc);
		}
		if (is_lazy[i]) {
			long rc = lazy_register(uffd, m->start, len);
			(*n_syscalls)++;
			if (rc < 0)
				fail_map(v, m, "userfaultfd cannot register", rc);
			continue;
		}
		if (huge_candidate(m, i) && sys_madvise(m->start, len, MADV_HUGEPAGE) == 0) {
			fm[i].made_huge = true;
			(*n_syscalls)++;
		}
	}
}

/* The chunks [c0, c1) of eager mappings, read and verified. 0, or -errno
 * from pread, or 1 for a checksum mismatch; *bad: the chunk at fault.
 *
 * System calls are what costs most here (a guest's transitions are slow:
 * python3 has some 130 small runs of dirty library pages), so chunks that
 * follow each other in the pages file are read with one preadv, one
 * iovec per run of chunks contiguous in memory, up to FILL_RUN_MAX bytes
 * and FILL_IOV runs. Runs of FILL_POPULATE_MIN and more are faulted in
 * first with one MADV_POPULATE_WRITE (cheaper than a fault per page
 * inside the read: 1.5x for anonymous memory here, 1.2x for copies of
 * file pages; an old kernel without it just faults). */
#define FILL_IOV 256
#define FILL_POPULATE_MIN (16 * P)

struct k_iovec { uint64_t base, len; };

/*
 * The small part of eager restores, which is most of a real program's
 * (python3: 2 MiB of dirty library pages in some 190 mappings, RELRO among
 * them): read into a chunk buffer of ours, its crc checked there, and
 * written into place through /proc/self/mem, the mapping already at its
 * final protection (map_all protects it while it is empty). Where the
 * pages land the kernel alone touches them: no mprotect once they are in
 * (each then costs a TLB flush; on this VM's shadow paging ~0.7 ms for a
 * mapping of a few dirty pages), no read of the fresh copies by the crc
 * (the first user access to a page is the expensive one here; the program
 * pays it only for the pages it touches). A kernel that refuses the forced
 * write (proc_mem.force_override = never) gets the mapping made writable,
 * the bytes copied and its protection put back afterwards.
 *
 * Chunks from c on: one run of the pages file (total bytes), read a window of
 * at most FILL_MEM_WINDOW bytes at a time: the buffer's pages are fresh
 * memory, each a page fault the first time (~10 us here, a few system
 * calls' worth), so only the window's 16 are ever touched (python3: 2 MiB
 * in some 50 reads). Each chunk's crc runs
 * across the windows, and a chunk whose crc does not match is refused
 * when its end is read: its first bytes may be in place by then, but
 * nothing runs (fail_chunk ends the loader). Parts contiguous in memory
 * (chunks of one mapping that follow each other) are written with one
 * pwrite.
 */
#define FILL_MEM_WINDOW (64ull << 10)

/* [dst, dst + len) of mapping m from src */
static void mem_write(const struct crac_img_view *v, uint32_t map, uint64_t dst, const char *src, uint64_t len,
		      uint32_t *n_sys)
{
	const struct crac_img_map *m = &v->maps[map];
	long w = mem_no_force && !(m->prot & PROT_WRITE) ? -EIO : SYS(SYS_pwrite64, mem_fd, src, len, dst, 0, 0);

	(*n_sys)++;
	if (w == (long)len)
		return;
	/* refused (or cut short): writable, copied, put back later */
	if (!fm[map].needs_prot) {
		long r = sys_mprotect(m->start, m->end - m->start, m->prot | PROT_READ | PROT_WRITE);
		(*n_sys)++;
		if (r < 0)
			fail_map(v, m, "cannot make writable to fill", r);
		fm[map].needs_prot = true;
	}
	memcpy((void *)(uintptr_t)dst, src, len);
}

static long fill_mem(const struct crac_img_view *v, int fd, uint32_t c, uint64_t total, char *bounce, uint32_t *bad,
		     uint32_t *n_sys)
{
	const uint64_t base = v->chunks[c].offset;
	uint32_t x = c;      /* the chunk being read */
	uint32_t crc = 0;    /* its crc so far */

	for (uint64_t at = 0; at < total;) {
		/* the window: whole chunks (or FILL_MEM_WINDOW of one larger),
		 * so that a chunk's bytes are written with one pwrite */
		uint64_t w = v->chunks[x].offset + v->chunks[x].len - (base + at);
		if (w > FILL_MEM_WINDOW)
			w = FILL_MEM_WINDOW;
		else
			for (uint32_t y = x + 1; at + w < total && w + v->chunks[y].len <= FILL_MEM_WINDOW; y++)
				w += v->chunks[y].len;
		long rc = read_full(fd, bounce, w, base + at);
		(*n_sys)++;
		if (rc < 0) {
			*bad = x;
			return rc;
		}
		/* the pending write: [dst, dst + len) of mapping map from bounce + from */
		uint64_t dst = 0, len = 0, from = 0;
		uint32_t map = 0;
		for (uint64_t p = 0; p < w;) {
			const struct crac_img_chunk *y = &v->chunks[x];
			uint64_t in = base + at + p - y->offset;   /* where in chunk x */
			uint64_t n = y->len - in < w - p ? y->len - in : w - p;
			crc = crac_img_crc32c(crc, bounce + p, n);
			if (len && y->map == map && y->addr + in == dst + len) {
				len += n;
			} else {
				if (len)
					mem_write(v, map, dst, bounce + from, len, n_sys);
				dst = y->addr + in;
				len = n;
				from = p;
				map = y->map;
			}
			p += n;
			if (in + n == y->len) {   /* chunk x read whole */
				if (crc != y->crc) {
					*bad = x;
					return 1;
				}
				crc = 0;
				x++;
			}
		}
		if (len)
			mem_write(v, map, dst, bounce + from, len, n_sys);
		at += w;
	}
	return 0;
}

static long fill_chunks(const struct crac_img_view *v, int fd, uint32_t c0, uint32_t c1, uint32_t *bad,
			uint32_t *n_reads, struct k_iovec *iov, char *bounce, struct chunk_reader *rd)
{
	/* The window of bounce fill_mem uses, faulted in with one call: each
	 * of its pages is fresh memory, else a page fault inside pread's copy
	 * (a slow exception on this VM: 16 of them a thread for python3). */
	uint64_t by_mem = 0;
	for (uint32_t c = c0; c < c1 && by_mem < FILL_MEM_WINDOW; c++)
		if (fm[v->chunks[c].map].in_pass && fm[v->chunks[c].map].by_mem)
			by_mem += v->chunks[c].len;
	if (by_mem) {
		sys_madvise(bounce, by_mem < FILL_MEM_WINDOW ? by_mem : FILL_MEM_WINDOW, MADV_POPULATE_WRITE_);
		(*n_reads)++;
	}
	for (uint32_t c = c0; c < c1;) {
		const struct crac_img_chunk *k = &v->chunks[c];
		if (!fm[k->map].in_pass) {
			c++;
			continue;
		}
		if (fm[k->map].by_mem) {
			/* the batch: chunks by_mem that follow each other in the file */
			uint32_t e = c + 1;
			uint64_t total = k->len;
			while (e < c1 && fm[v->chunks[e].map].by_mem && fm[v->chunks[e].map].in_pass &&
			       v->chunks[e].offset == k->offset + total) {
				total += v->chunks[e].len;
				e++;
			}
			long rc = fill_mem(v, fd, c, total, bounce, bad, n_reads);
			if (rc != 0)
				return rc;
			c = e;
			continue;
		}
		if (k->zlen) {   /* compressed: one frame, decompressed in place */
			if (k->len >= FILL_POPULATE_MIN) {
				sys_madvise(k->addr, k->len, MADV_POPULATE_WRITE_);
				(*n_reads)++;
			}
			long rc = read_chunk(rd, fd, k, (void *)(uintptr_t)k->addr);
			(*n_reads)++;
			if (rc != 0) {
				*bad = c;
				return rc;
			}
			c++;
			continue;
		}
		/* the batch: [c, e), file bytes [k->offset, k->offset + total) */
		uint32_t e = c + 1, n_iov = 1;
		uint64_t total = k->len;
		iov[0].base = k->addr;
		iov[0].len = k->len;
		while (e < c1) {
			const struct crac_img_chunk *x = &v->chunks[e];
			if (!fm[x->map].in_pass || fm[x->map].by_mem || x->zlen ||
			    x->offset != k->offset + total || total + x->len > FILL_RUN_MAX)
				break;
			if (x->addr == iov[n_iov - 1].base + iov[n_iov - 1].len) {
				iov[n_iov - 1].len += x->len;
			} else if (n_iov < FILL_IOV) {
				iov[n_iov].base = x->addr;
				iov[n_iov++].len = x->len;
			} else {
				break;
			}
			total += x->len;
			e++;
		}
		for (uint32_t i = 0; i < n_iov; i++)
			if (iov[i].len >= FILL_POPULATE_MIN) {
				sys_madvise(iov[i].base, iov[i].len, MADV_POPULATE_WRITE_);
				(*n_reads)++;
			}
		long n = SYS(SYS_preadv, fd, iov, n_iov, k->offset, 0, 0);
		(*n_reads)++;
		if (n == -EINTR)
			n = 0;
		if (n < 0) {
			*bad = c;
			return n;
		}
		/* a short read (a signal, a file cut short): the rest one by one */
		uint64_t done = (uint64_t)n, at = 0;
		for (uint32_t i = 0; done < total && i < n_iov; i++) {
			if (at + iov[i].len > done) {
				uint64_t skip = done > at ? done - at : 0;
				long rc = read_full(fd, (void *)(uintptr_t)(iov[i].base + skip), iov[i].len - skip,
						    k->offset + at + skip);
				(*n_reads)++;
				if (rc < 0) {
					*bad = c;
					return rc;
				}
				done = at + iov[i].len;
			}
			at += iov[i].len;
		}
		for (; c < e; c++) {
			const struct crac_img_chunk *x = &v->chunks[c];
			if (crac_img_crc32c(0, (const void *)(uintptr_t)x->addr, x->len) != x->crc) {
				*bad = c;
				return 1;
			}
		}
	}
	return 0;
}

/* The second filler: a thread of ours (CLONE_VM, this same freestanding
 * code, a stack of its own); gone (fill_tid cleared by the kernel) before
 * the program runs. */
static struct {
	const struct crac_img_view *v;
	int fd;
	uint32_t c0, c1, bad, n_reads;
	long rc;
} fill_job HOT;
static HOT uint32_t fill_tid;
static char fill_stack[64u << 10] __attribute__((aligned(64)));

static void fill_helper(void *arg)
{
	(void)arg;
	static struct k_iovec iov[FILL_IOV];
	fill_job.rc = fill_chunks(fill_job.v, fill_job.fd, fill_job.c0, fill_job.c1, &fill_job.bad, &fill_job.n_reads,
				  iov, ref_bounce2, &readers[1]);
	SYS(SYS_exit, 0, 0, 0, 0, 0, 0);
}

/* "chunk #N (LEN bytes at ADDR, WHERE): WHY" (read_chunk's reasons but
 * the crc, which crac_img_put_damaged_chunk says). */
static void put_chunk_why(struct crac_img_buf *b, uint32_t c, const struct crac_img_chunk *k, const char *where,
			  long rc)
{
	crac_img_put_chunk_head(b, c, k);
	crac_img_puts(b, ", ");
	crac_img_put_escaped(b, where);
	crac_img_puts(b, "): ");
	crac_img_puts(b, crac_img_chunk_why(rc));
}

static __attribute__((noreturn)) void fail_chunk(const struct crac_img_view *v, uint32_t c, long rc)
{
	const struct crac_img_chunk *k = &v->chunks[c];
	const struct crac_img_map *m = &v->maps[k->map];

	if (rc < 0)
		fail_map(v, m, "cannot read the stored pages of", rc);
	struct crac_img_buf b = msg();
	if (rc == CRAC_CHUNK_CRC) {
		crac_img_put_damaged_chunk(&b, c, k, m->name ? crac_img_str(v, m->name) : crac_img_kind_name(m->kind));
	} else {
		put_chunk_why(&b, c, k, m->name ? crac_img_str(v, m->name) : crac_img_kind_name(m->kind), rc);
	}
	die(1, msg_buf);
}

/* The chunks of the mappings in_pass, read and verified (fail_chunk if
 * one cannot be): from FILL_SPLIT_MIN on, with two CPUs, a second thread
 * fills the second half of the bytes meanwhile. Adds the bytes filled to
 * *stored; *threads: 2 if a second thread helped. */
static void fill_pass(const struct crac_img_view *v, int pages_fd, uint64_t *stored, uint32_t *threads,
		      uint32_t *n_syscalls)
{
	const struct crac_img_header *h = v->h;
	uint64_t total = 0, half = 0;
	uint32_t split = h->n_chunks, bad = 0, n_reads = 0;
	bool helper = false;

	for (uint32_t c = 0; c < h->n_chunks; c++)
		if (fm[v->chunks[c].map].in_pass)
			total += v->chunks[c].len;
	*stored += total;
	if (fill_threads > 1 && total >= FILL_SPLIT_MIN && sys_cpus_allowed() > 1)
		for (uint32_t c = 0; c < h->n_chunks; c++) {
			if (!fm[v->chunks[c].map].in_pass)
				continue;
			half += v->chunks[c].len;
			if (half >= total / 2) {
				split = c + 1;
				break;
			}
		}
	if (split < h->n_chunks) {
		fill_job.v = v;
		fill_job.fd = pages_fd;
		fill_job.c0 = split;
		fill_job.c1 = h->n_chunks;
		fill_job.n_reads = 0;
		uint64_t *sp = (uint64_t *)(fill_stack + sizeof(fill_stack));
		*--sp = 0;                                   /* arg */
		*--sp = (uint64_t)(uintptr_t)fill_helper;   /* fn */
		unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
				      CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
		helper = lazy_clone(flags, sp, &fill_tid, &fill_tid, 0) > 0;
		if (helper)
			*threads = 2;
		else
			split = h->n_chunks;   /* no second thread: we fill all */
	}
	/* static: 4 KiB on the stack took the fill's frames a page deeper (a
	 * page fault more); touched only where preadv fills */
	static struct k_iovec iov[FILL_IOV];
	long rc = fill_chunks(v, pages_fd, 0, split, &bad, &n_reads, iov, ref_bounce, &readers[0]);
	if (helper) {
		uint32_t t;
		while ((t = __atomic_load_n(&fill_tid, __ATOMIC_ACQUIRE)) != 0)
			SYS(SYS_futex, &fill_tid, FUTEX_WAIT, t, 0, 0, 0);
		n_reads += fill_job.n_reads;
		if (rc == 0 && fill_job.rc != 0) {
			rc = fill_job.rc;
			bad = fill_job.bad;
		}
	}
	if (rc != 0)
		fail_chunk(v, bad, rc);
	*n_syscalls += n_reads;
}

/*
 * Huge pages cover only the 2 MiB-aligned part of a mapping: a large
 * anonymous mapping that neither starts nor ends on a 2 MiB boundary (a
 * malloc'd 16 MiB: 16 MiB and 16 KiB, anywhere) would get up to 4 MiB of
 * 4 KiB pages at its ends, and filling a fresh 4 KiB page costs ~30x
 * what the same bytes in a huge page cost here (a VM with shadow paging:
 * 2 MiB of such ends took 7 of the 10 ms of a 16 MiB restore). So such a
 * mapping is first made 2 MiB-aligned at both ends ([lo, hi), while its
 * neighbours are not mapped yet), filled in whole huge pages, and then
 * cut to its own range: the kernel splits the end huge pages into 4 KiB
 * entries in one go (cheap: a fresh page table, filled before it is in
 * use), and the parts outside the mapping go back to the kernel when it
 * splits those pages (deferred split: at the latest under memory
 * pressure; at most 4 MiB less 8 KiB a mapping meanwhile, not counted in
 * the program's RSS). Only where the widened range meets nothing the
 * loader keeps (itself, the vDSO block, another widened mapping); every
 * other mapping is made afterwards by map_all, in the order of the image.
 */
static void map_wide(const struct crac_img_view *v, int pages_fd, uint64_t *stored, uint32_t *threads,
		     uint32_t *n_syscalls)
{
	const struct crac_img_header *h = v->h;
	uint64_t block = h->vdso_block, block_end = block + h->vvar_size + h->vvar_vclock_size + h->vdso_size;
	uint64_t prev_hi = 0;
	uint32_t n = 0;

	for (uint32_t i = 0; i < h->n_maps; i++) {
		const struct crac_img_map *m = &v->maps[i];
		uint64_t lo = HUGE_ALIGN(m->start), hi = HUGE_ALIGN(m->end + HUGE_MIN - 1);
		int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;

		/* [heap] is no candidate when references fill it (incremental) */
		if (!huge_candidate(m, i) || (m->flags & CRAC_MAPF_REFS) || (lo == m->start && hi == m->end) ||
		    lo < prev_hi || (lo < block_end && hi > block) ||
		    (lo < CRAC_IMG_LOADER_HI && hi > CRAC_IMG_LOADER_LO))
			continue;
		/* (the widening counts against RLIMIT_AS until cut: only
		 * within what check_address_space left) */
		uint64_t extra = (hi - lo) - (m->end - m->start);
		if (extra > as_room)
			continue;
		if (m->flags & CRAC_MAPF_NORESERVE)
			flags |= MAP_NORESERVE;
		long a = sys_mmap(lo, hi - lo, (int)m->prot | PROT_READ | PROT_WRITE, flags, -1, 0);
		(*n_syscalls)++;
		if (a < 0 || (uint64_t)a != lo) {
			if (a >= 0)
				sys_munmap((uint64_t)a, hi - lo);
			continue;   /* map_all maps it in place */
		}
		long rc = sys_madvise(lo, hi - lo, MADV_HUGEPAGE);
		(*n_syscalls)++;
		if (rc < 0) {
			sys_munmap(lo, hi - lo);
			continue;
		}
		if (as_room != ~0ull)
			as_room -= extra;
		fm[i].wide = fm[i].made_huge = true;
		fm[i].needs_prot = ((int)m->prot | PROT_READ | PROT_WRITE) != (int)m->prot;
		prev_hi = hi;
		n++;
	}
	if (!n)
		return;
	uint64_t t = mono_ns();
	for (uint32_t i = 0; i < h->n_maps; i++)
		fm[i].in_pass = fm[i].wide;
	fill_pass(v, pages_fd, stored, threads, n_syscalls);
	wide_fill_ns = mono_ns() - t;
	for (uint32_t i = 0; i < h->n_maps; i++) {
		const struct crac_img_map *m = &v->maps[i];
		uint64_t lo = HUGE_ALIGN(m->start), hi = HUGE_ALIGN(m->end + HUGE_MIN - 1);
		if (!fm[i].wide)
			continue;
		long r1 = lo < m->start ? sys_munmap(lo, m->start - lo) : 0;
		long r2 = hi > m->end ? sys_munmap(m->end, hi - m->end) : 0;
		*n_syscalls += (lo < m->start) + (hi > m->end);
		if (r1 < 0 || r2 < 0)
			fail_map(v, m, "cannot cut to its size the huge-page mapping of", r1 < 0 ? r1 : r2);
	}
}

/* The eager memory but map_wide's: the small mappings through
 * /proc/self/mem (fill_mem), the rest by preadv; then every filled
 * mapping's huge-page mark and protection as the program had them. */
static void fill_eager(const struct crac_img_view *v, int pages_fd, uint64_t *stored, uint32_t *threads,
		       uint32_t *n_syscalls)
{
	const struct crac_img_header *h = v->h;

	for (uint32_t i = 0; i < h->n_maps; i++)
		fm[i].in_pass = !is_lazy[i] && !fm[i].wide && v->maps[i].kind < CRAC_MAP_VVAR;
	fill_pass(v, pages_fd, stored, threads, n_syscalls);

	for (uint32_t i = 0; i < h->n_maps; i++) {
		const struct crac_img_map *m = &v->maps[i];
		if (fm[i].made_huge) {
			sys_madvise(m->start, m->end - m->start, MADV_NOHUGEPAGE);
			(*n_syscalls)++;
		}
		if (fm[i].needs_prot) {
			long r = sys_mprotect(m->start, m->end - m->start, m->prot);
			(*n_syscalls)++;
			if (r < 0)
				fail_map(v, m, "cannot set the protection of", r);
		}
	}
}

/*
 * An incremental image: the pages it takes from the images below it
 * (struct crac_img_ref), before its own chunks are read (fill_eager).
 * Every referenced chunk is read whole and its crc checked; in place when
 * its address range lies inside one mapping with references (anonymous,
 * writable while filled), then the parts of it no reference wants and no
 * own chunk of the image covers are dropped again (MADV_DONTNEED: zeros);
 * else through a buffer, copying only the referenced parts. Deepest image
 * first: a page's newest copy is read last. (A page a reference names is
 * never in an own chunk of a newer image: that chunk would be its source.)
 */
static const struct crac_img_map *map_holding(const struct crac_img_view *v, uint64_t a, uint64_t len)
{
	uint32_t lo = 0, hi = v->h->n_maps;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct crac_img_map *m = &v->maps[mid];
		if (a >= m->end)
			lo = mid + 1;
		else if (a < m->start)
			hi = mid;
		else
			return len <= m->end - a ? m : 0;
	}
	return 0;
}

/* Drops [s, e) but what own chunks of v cover (they are read later). */
static void zap_uncovered(const struct crac_img_view *v, uint64_t s, uint64_t e, uint32_t *n_sys)
{
	uint32_t lo = 0, hi = v->h->n_chunks;

	while (lo < hi) {   /* the first chunk ending after s */
		uint32_t mid = lo + (hi - lo) / 2;
		if (v->chunks[mid].addr + v->chunks[mid].len <= s)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (uint32_t c = lo; s < e; c++) {
		uint64_t cs = c < v->h->n_chunks ? v->chunks[c].addr : e;
		if (cs > e)
			cs = e;
		if (cs > s) {
			sys_madvise(s, cs - s, MADV_DONTNEED);
			(*n_sys)++;
		}
		if (c >= v->h->n_chunks)
			break;
		s = v->chunks[c].addr + v->chunks[c].len;
	}
}

/* The references of depth d among refs [i0, i1) (whole groups). */
static void fill_refs_part(const struct crac_img_view *v, uint32_t d, uint32_t i0, uint32_t i1, char *bounce,
			   struct chunk_reader *rd, uint64_t *stored, uint32_t *n_sys)
{
	const struct crac_img_view *av = &chain.v[d - 1];
	int fd = chain.o[d - 1].pages_fd;

	for (uint32_t i = i0; i < i1; i++) {
		const struct crac_img_ref *r = &v->refs[i];
		if (r->depth != d)
			continue;
		const struct crac_img_chunk *k = &av->chunks[r->chunk];
		uint64_t kend = k->addr + k->len;
		/* the group: the references of depth d into this chunk (the
		 * chunks of one image never overlap) */
		uint32_t j = i;
		bool eager = false;   /* a reference of the group in a mapping filled now */
		while (j < i1 && v->refs[j].addr < kend) {
			eager |= v->refs[j].depth == d && !is_lazy[v->refs[j].map];
			j++;
		}
		if (!eager) {         /* the lazy thread's (lazy.c) */
			i = j - 1;
			continue;
		}
		const struct crac_img_map *m = map_holding(v, k->addr, k->len);
		bool in_place = m && (m->flags & CRAC_MAPF_REFS);
		char *dst = in_place ? (char *)(uintptr_t)k->addr : bounce;
		if (!in_place && k->len > CRAC_IMG_CHUNK_MAX)
			die(1, "a chunk of an image below this one is larger than the loader's buffer");
		if (in_place && k->len >= FILL_POPULATE_MIN) {
			sys_madvise(k->addr, k->len, MADV_POPULATE_WRITE_);
			(*n_sys)++;
		}
		long rc = read_chunk(rd, fd, k, dst);
		(*n_sys)++;
		if (rc < 0) {
			struct crac_img_buf b = msg();
			crac_img_puts(&b, "cannot read the pages file of ");
			crac_img_put_escaped(&b, chain.path[d - 1]);
			put_err(&b, rc);
			die(1, msg_buf);
		}
		if (rc == CRAC_CHUNK_CRC) {
			struct crac_img_buf b = msg();
			crac_img_put_damaged_chunk(&b, r->chunk, k, chain.path[d - 1]);
			die(1, msg_buf);
		}
		if (rc > 0) {
			struct crac_img_buf b = msg();
			put_chunk_why(&b, r->chunk, k, chain.path[d - 1], rc);
			die(1, msg_buf);
		}
		uint64_t gap = k->addr;
		for (uint32_t x = i; x < j; x++) {
			const struct crac_img_ref *q = &v->refs[x];
			if (q->depth != d || is_lazy[q->map])
				continue;
			if (in_place) {
				if (q->addr > gap)
					zap_uncovered(v, gap, q->addr, n_sys);
				gap = q->addr + q->len;
			} else {
				memcpy((void *)(uintptr_t)q->addr, bounce + (q->addr - k->addr), q->len);
			}
			*stored += q->len;
		}
		if (in_place && gap < kend)
			zap_uncovered(v, gap, kend, n_sys);
		i = j - 1;
	}
}

/* The second filler for references (as fill_helper for chunks). */
static struct {
	const struct crac_img_view *v;
	uint32_t d, i0, i1, n_sys;
	uint64_t stored;
} refs_job;

static void refs_helper(void *arg)
{
	(void)arg;
	fill_refs_part(refs_job.v, refs_job.d, refs_job.i0, refs_job.i1, ref_bounce2, &readers[1], &refs_job.stored,
		       &refs_job.n_sys);
	SYS(SYS_exit, 0, 0, 0, 0, 0, 0);
}


static void fill_refs(const struct crac_img_view *v, uint64_t *stored, uint32_t *n_sys)
{
	const struct crac_img_header *h = v->h;
	bool two = fill_threads > 1 && sys_cpus_allowed() > 1;

	for (uint32_t d = h->depth; d >= 1; d--) {
		/* Two threads from 1 MiB on: the second takes the groups of the
		 * second half of the bytes (disjoint chunks, disjoint memory). */
		uint64_t total = 0, half = 0;
		uint32_t split = h->n_refs;
		for (uint32_t i = 0; i < h->n_refs; i++)
			if (v->refs[i].depth == d)
				total += v->refs[i].len;
		if (two && total >= FILL_SPLIT_MIN) {
			uint32_t last = UINT32_MAX;
			for (uint32_t i = 0; i < h->n_refs; i++) {
				if (v->refs[i].depth != d)
					continue;
				if (half >= total / 2 && v->refs[i].chunk != last) {
					split = i;
					break;
				}
				half += v->refs[i].len;
				last = v->refs[i].chunk;
			}
		}
		bool helper = false;
		if (split < h->n_refs) {
			refs_job.v = v;
			refs_job.d = d;
			refs_job.i0 = split;
			refs_job.i1 = h->n_refs;
			refs_job.stored = 0;
			refs_job.n_sys = 0;
			uint64_t *sp = (uint64_t *)(fill_stack + sizeof(fill_stack));
			*--sp = 0;                                   /* arg */
			*--sp = (uint64_t)(uintptr_t)refs_helper;    /* fn */
			unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
					      CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
			helper = lazy_clone(flags, sp, &fill_tid, &fill_tid, 0) > 0;
			if (!helper)
				split = h->n_refs;
		}
		fill_refs_part(v, d, 0, split, ref_bounce, &readers[0], stored, n_sys);
		if (helper) {
			uint32_t t;
			while ((t = __atomic_load_n(&fill_tid, __ATOMIC_ACQUIRE)) != 0)
				SYS(SYS_futex, &fill_tid, FUTEX_WAIT, t, 0, 0, 0);
			*stored += refs_job.stored;
			*n_sys += refs_job.n_sys;
		}
	}
}

static void set_mm(const struct crac_img_header *h)
{
	struct prctl_mm_map mm = {
		.start_code = h->mm.start_code, .end_code = h->mm.end_code,
		.start_data = h->mm.start_data, .end_data = h->mm.end_data,
		.start_brk = h->mm.start_brk, .brk = h->mm.brk,
		.start_stack = h->mm.start_stack,
		.arg_start = h->mm.arg_start, .arg_end = h->mm.arg_end,
		.env_start = h->mm.env_start, .env_end = h->mm.env_end,
		.auxv = (__u64 *)h->mm.auxv, .auxv_size = h->mm.auxv_size,
		.exe_fd = (uint32_t)-1,
	};
	long rc = sys_prctl(PR_SET_MM, PR_SET_MM_MAP, &mm, sizeof(mm), 0);
	if (rc < 0) {
		struct crac_img_buf b = msg();
		crac_img_puts(&b, "prctl(PR_SET_MM_MAP) refused the brk/arg/env layout");
		put_err(&b, rc);
		die(1, msg_buf);
	}
}

/* The resume block must lie inside a restored readable+writable mapping. */
static struct crac_img_resume *find_resume(const struct crac_img_view *v)
{
	uint64_t a = v->h->resume, e = a + sizeof(struct crac_img_resume);

	for (uint32_t i = 0; i < v->h->n_maps; i++) {
		const struct crac_img_map *m = &v->maps[i];
		if (a >= m->start && e <= m->end && a % 8 == 0 && m->kind < CRAC_MAP_VVAR &&
		    (m->prot & (PROT_READ | PROT_WRITE)) == (PROT_READ | PROT_WRITE)) {
			struct crac_img_resume *r = (struct crac_img_resume *)(uintptr_t)a;
			if (r->magic == CRAC_RESUME_MAGIC_ABI(CRAC_RESUME_ABI))   /* as check_pages saw it */
				return r;
			break;
		}
	}
	die(1, "the restored memory holds no libcrac resume block (image damaged)");
}

/* ---- after the point of no return: never a silent death -------------------------- */

/* What the loader is doing, for the crash handler's line. */
static const char *volatile phase HOT = "verifying the image";

struct k_sigaction { uint64_t handler, flags, restorer, mask; };
#define K_SA_SIGINFO 0x4ull
#define K_SA_RESTORER 0x04000000ull
#define K_SA_RESETHAND 0x80000000ull

__attribute__((visibility("hidden"))) void loader_sigreturn(void);
__asm__(".text\n"
	".globl loader_sigreturn\n"
	".hidden loader_sigreturn\n"
	".type loader_sigreturn,@function\n"
	"loader_sigreturn:\n"
	"	movl $15, %eax\n"             /* SYS_rt_sigreturn */
	"	syscall\n"
	"	hlt\n"
	".size loader_sigreturn, .-loader_sigreturn\n");

/* The crash signals: never blocked, handled until the restored libcrac
 * puts the program's own dispositions back. */
static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS };

static void crash_handler(int sig, siginfo_t *si, void *ucv)
{
	static const char *const names[] = { [SIGSEGV] = "SIGSEGV", [SIGBUS] = "SIGBUS", [SIGILL] = "SIGILL",
					     [SIGFPE] = "SIGFPE", [SIGTRAP] = "SIGTRAP", [SIGSYS] = "SIGSYS" };
	const uint64_t *gregs = (const uint64_t *)((const char *)ucv + 40);   /* uc_mcontext.gregs */
	struct crac_img_buf b = msg();

	crac_img_puts(&b, "crashed at ");
	crac_img_putx(&b, gregs[16]);   /* REG_RIP */
	crac_img_puts(&b, " (");
	crac_img_puts(&b, sig > 0 && sig < (int)(sizeof(names) / sizeof(names[0])) && names[sig] ? names[sig] : "signal");
	if (sig == SIGSEGV || sig == SIGBUS) {
		crac_img_puts(&b, ", fault address ");
		crac_img_putx(&b, (uint64_t)(uintptr_t)si->si_addr);
	}
	crac_img_puts(&b, ") while ");
	crac_img_puts(&b, phase);
	crac_img_puts(&b, ": the image is damaged or does not fit this machine; nothing was changed on disk");
	die(1, msg_buf);
}

/* $CRAC_LOADER_PONR_FD (crac start's supervisor): "p" is written there at
 * the point of no return and "j" right before the jump into the program
 * (the descriptor then closed). An exit without "j" is a restore that
 * failed before any code of the program ran (refused before the point of
 * no return; or, after it, a damaged chunk or descriptor content, a crash
 * of the loader): the supervisor may start the program cold. An exit after
 * "j" is the restored program's own: never run it twice. The descriptor
 * moves above the program's with the pages file (restore_fds); where it
 * cannot, "j" is written at once (the safe side: no cold start). */
static int ponr_fd = -1;

static void ponr_jumping(void)
{
	if (ponr_fd >= 0) {
		out(ponr_fd, "j");
		sys_close(ponr_fd);
		ponr_fd = -1;
	}
}

/* From here on, asynchronous signals wait for the restored program (it sets
 * its own mask), and a crash says where it happened. */
static void point_of_no_return(void)
{
	past_ponr = true;
	if (ponr_fd >= 3)
		out(ponr_fd, "p");
	uint64_t mask = ~0ull;
	struct k_sigaction ka = {
		.handler = (uint64_t)(uintptr_t)crash_handler,
		.flags = K_SA_SIGINFO | K_SA_RESTORER | K_SA_RESETHAND,
		.restorer = (uint64_t)(uintptr_t)loader_sigreturn,
		.mask = ~0ull,
	};

	for (size_t i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++) {
		sys_rt_sigaction(crash_signals[i], &ka, 0);
		mask &= ~(1ull << (crash_signals[i] - 1));
	}
	sys_sigprocmask(SIG_SETMASK, &mask, 0);
}

/* Is fd one of kept[0..nk)? */
static bool is_kept(const int *kept, int nk, int fd)
{
	for (int k = 0; k < nk; k++)
		if (kept[k] == fd)
			return true;
	return false;
}

/* Every descriptor from 3 up but kept[0..nk) (each >= 3; sorted here, in
 * place) is closed. */
static void close_all_but(int *kept, int nk)
{
	unsigned lo = 3;
	bool ok = !pretend("close_range");

	for (int a = 1; a < nk; a++)   /* insertion sort: a few entries */
		for (int b = a; b > 0 && kept[b - 1] > kept[b]; b--) {
			int t = kept[b];
			kept[b] = kept[b - 1];
			kept[b - 1] = t;
		}

	for (int k = 0; ok && k <= nk; k++) {
		unsigned hi = k < nk ? (unsigned)kept[k] : ~0u;
		if (hi > lo && sys_close_range(lo, k < nk ? hi - 1 : hi, 0) < 0)
			ok = false;
		if (k < nk)
			lo = (unsigned)kept[k] + 1;
	}
	if (ok)
		return;
	/* before Linux 5.9: one by one, as /proc/self/fd lists them */
	static char dents[8192];
	static int list[65536];
	long fd = sys_openat(AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n;
	int count = 0;

	if (fd < 0)
		return;
	while ((n = sys_getdents64(fd, dents, sizeof(dents))) > 0)
		for (long off = 0; off < n;) {
			const char *name = dents + off + 19;   /* struct linux_dirent64: d_name */
			unsigned short reclen = *(const unsigned short *)(dents + off + 16);
			int v = 0;
			for (const char *c = name; *c >= '0' && *c <= '9'; c++)
				v = v * 10 + (*c - '0');
			if (name[0] >= '0' && name[0] <= '9' && v > 2 && v != fd && !is_kept(kept, nk, v) &&
			    count < 65536)
				list[count++] = v;
			off += reclen;
		}
	sys_close(fd);
	for (int i = 0; i < count; i++)
		sys_close(list[i]);
}

/* Every descriptor from 3 up but `keep` (the pages file), crac start's
 * pipe and the sockets the port check holds for the restore is closed:
 * what `crac restore` inherited from its caller is not the restored
 * program's business. */
static void close_inherited(int keep)
{
	int kept[66], nk = crac_obj_socket_held(kept, 64);

	if (keep >= 0)
		kept[nk++] = keep;
	if (ponr_fd >= 0)
		kept[nk++] = ponr_fd;
	close_all_but(kept, nk);
	crac_obj_socket_held_kept();
}

/* ---- socket activation (`crac start`, contrib/systemd) ------------------------------ */

/*
 * $CRAC_ACTIVATION_FDS = "SRC:DST,SRC:DST,...", set by `crac start` from
 * the image directory's `activation` record and the sockets systemd passes
 * now (LISTEN_FDS): the program's listener at DST came from socket
 * activation, and the socket passed now at SRC takes its place instead of
 * a new socket bound to the same address (the activation socket holds
 * it). Used instead of close_inherited(keep): every SRC moves above the
 * image's descriptors, everything else inherited is closed, each goes to
 * its DST with the entry's flags, and the entry is marked done (a dup of
 * it, same_as, is then made by crac_obj_restore_all). Returns 0 when the
 * variable is absent (the caller closes as usual), 1 when done.
 */
#define MAX_ACTIVATION CRAC_ACTIVATION_MAX   /* entries (loader/activation.h: the CLI's limit too) */
static struct {
	int src[MAX_ACTIVATION], dst[MAX_ACTIVATION];
} act;
static int n_act HOT;                 /* entries parsed; 0: no socket activation */
static HOT const char *activation_env;    /* the variable's value (the kernel's stack: parsed before unmapping) */

/* One decimal descriptor number of $CRAC_ACTIVATION_FDS at *p (leading
 * zeros allowed, at least one digit, at most INT_MAX); -1 if none. */
static int activation_number(const char **p)
{
	const char *s = *p;
	long v = 0;

	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (*s++ - '0');
		if (v > 0x7fffffff)
			return -1;
	}
	if (s == *p)
		return -1;
	*p = s;
	return (int)v;
}

/* $CRAC_ACTIVATION_FDS into act, whatever its length (the environment
 * can hold 128 KiB in one variable); refused with one line when malformed
 * or over MAX_ACTIVATION entries, never ignored. Before the point of no
 * return: the socket check needs activation_dst. */
static void parse_activation(void)
{
	const char *p = activation_env;

	if (!p)
		return;
	while (*p) {
		int s = activation_number(&p), d = -1;
		if (s >= 0 && *p == ':') {
			p++;
			d = activation_number(&p);
		}
		if (d < 0 || (*p && *p != ','))
			die(2, "CRAC_ACTIVATION_FDS: malformed (SRC:DST,... wanted)");
		if (*p == ',')
			p++;
		if (n_act == MAX_ACTIVATION)
			die(2, "CRAC_ACTIVATION_FDS: more than " CRAC_ACTIVATION_MAX_TEXT " entries");
		act.src[n_act] = s;
		act.dst[n_act++] = d;
	}
}

/* Is fd the DST of an entry of $CRAC_ACTIVATION_FDS? */
static int activation_dst(int fd)
{
	for (int j = 0; j < n_act; j++)
		if (act.dst[j] == fd)
			return 1;
	return 0;
}

static int activation_place(const struct crac_img_view *v, unsigned char *done, int keep)
{
	static int src[MAX_ACTIVATION], kept[MAX_ACTIVATION + 2 + 64];
	const int *dst = act.dst;
	int n = n_act, nk = 0;
	struct crac_obj_restore r = { .v = v, .pages_fd = keep, .done = done };
	struct crac_img_buf b = msg();

	if (!n)
		return 0;
	memcpy(src, act.src, sizeof(src[0]) * (size_t)n);
	/* above the image's descriptors, next to the pages file; the ports the
	 * check holds stay held, as close_inherited keeps them (the check
	 * skips the activated descriptors: none of them is one) */
	kept[nk++] = keep;
	nk += crac_obj_socket_held(kept + nk, 64);
	for (int j = 0; j < n; j++) {
		struct stat st;
		long t = sys_fstat(src[j], &st) < 0 || !S_ISSOCK(st.st_mode) ? -ENOTSOCK :
			 sys_fcntl(src[j], F_DUPFD_CLOEXEC, keep + 1);
		if (t < 0) {
			crac_img_puts(&b, "socket activation: passed fd ");
			crac_img_putu(&b, (uint64_t)src[j]);
			crac_img_puts(&b, " (for the program's fd ");
			crac_img_putu(&b, (uint64_t)dst[j]);
			crac_img_puts(&b, ") is not an open socket");
			put_err(&b, t);
			die(1, msg_buf);
		}
		src[j] = (int)t;
		kept[nk++] = (int)t;   /* close_all_but sorts them */
	}
	/* everything from 3 up but kept[] and crac start's pipe */
	if (ponr_fd >= 0)
		kept[nk++] = ponr_fd;
	close_all_but(kept, nk);
	crac_obj_socket_held_kept();
	for (int j = 0; j < n; j++) {
		uint32_t i = 0;
		while (i < v->h->n_fds && (v->fds[i].fd != dst[j] || v->fds[i].same_as != CRAC_IMG_NO_FD))
			i++;
		if (i == v->h->n_fds) {
			sys_close(src[j]);
			continue;   /* a dup of another activation socket: crac_obj_restore_all makes it */
		}
		if (v->fds[i].kind != CRAC_OBJ_SOCKET) {
			crac_img_puts(&b, "socket activation: the program's fd ");
			crac_img_putu(&b, (uint64_t)dst[j]);
			crac_img_puts(&b, " is not a socket in the image");
			die(1, msg_buf);
		}
		long rc = crac_obj_place(&r, i, src[j]);
		if (rc < 0) {
			crac_img_puts(&b, "socket activation: cannot put the passed socket at fd ");
			crac_img_putu(&b, (uint64_t)dst[j]);
			put_err(&b, rc);
			die(1, msg_buf);
		}
	}
	return 1;
}

/*
 * The program's descriptors (objects/), at their numbers, with nothing
 * else open: the pages file (their content) moves above the highest
 * number first. Runs after the lazy loader thread started (it has a file
 * table of its own).
 */
/* RLIMIT_NOFILE (soft, hard), read once before the point of no return. */
static HOT uint64_t nofile[2];
static HOT bool nofile_read;

static void restore_fds(const struct crac_img_view *v, int pfd)
{
	static unsigned char done[CRAC_IMG_MAX_FDS];
	const struct crac_img_header *h = v->h;
	int top = h->n_fds ? v->fds[h->n_fds - 1].fd : 2;

	/* the soft limit raised as check_descriptors() found possible */
	if (nofile_read && nofile[0] < (uint64_t)top + 2 && nofile[1] >= (uint64_t)top + 2) {
		uint64_t want[2] = { (uint64_t)top + 2, nofile[1] };
		sys_prlimit(0, 7 /* RLIMIT_NOFILE */, want, 0);
	}
	long hp = h->n_fds ? sys_fcntl(pfd, F_DUPFD_CLOEXEC, top + 1) : pfd;
	if (hp < 0) {
		struct crac_img_buf b = msg();
		crac_img_puts(&b, "cannot keep the pages file above the program's descriptors (fd ");
		crac_img_putu(&b, (uint64_t)top);
		crac_img_puts(&b, ")");
		put_err(&b, hp);
		die(1, msg_buf);
	}
	if (ponr_fd >= 0 && ponr_fd <= top) {
		long pf = sys_fcntl(ponr_fd, F_DUPFD_CLOEXEC, top + 1);
		if (pf < 0)
			ponr_jumping();   /* cannot keep it: said now, the safe side */
		else {
			sys_close(ponr_fd);
			ponr_fd = (int)pf;
		}
	}
	if (!activation_place(v, done, (int)hp))   /* socket activation: `crac start` */
		close_inherited((int)hp);
	if (h->n_fds) {
		struct crac_obj_restore r = { .v = v, .pages_fd = (int)hp, .done = done,
					      .checkpoint_realtime_ns = h->created_ns,
					      .checkpoint_monotonic_ns = h->monotonic_ns };
		struct crac_img_buf b = msg();
		if (crac_obj_restore_all(&r, &b) < 0)
			die(1, msg_buf);
	}
	sys_close(hp);
}

/*
 * What the restore did with each descriptor, on stderr (issue: an operator
 * restoring an unmodified program sees only this): level 1 (default) says
 * what did not come back as it was — a connection restored closed by a
 * policy, a file reopened although it changed (policy changed=ok); level 2
 * ($CRAC_LOG=info or debug) also every descriptor reopened as it was.
 * --quiet or $CRAC_LOG=error: nothing (refusals are fatal and said anyway).
 */
static int fd_report = 1;

static void fd_line(const struct crac_img_view *v, const struct crac_img_fd *e, const char *what)
{
	struct crac_img_buf b = msg();

	crac_img_puts(&b, "crac: restore ");
	crac_img_put_escaped(&b, image_dir);
	crac_img_puts(&b, ": ");
	crac_obj_put_entry(&b, v, e);
	crac_img_puts(&b, what);
	crac_img_puts(&b, "\n");
	out(2, msg_buf);
}

static void report_fds(const struct crac_img_view *v)
{
	for (uint32_t i = 0; fd_report && i < v->h->n_fds; i++) {
		const struct crac_img_fd *e = &v->fds[i];
		struct stat st;
		if (e->kind == CRAC_OBJ_CLOSED) {
			fd_line(v, e, "restored closed, as a policy said at the checkpoint (the program sees its peer gone)");
		} else if (e->kind == CRAC_OBJ_FILE && (e->u[6] & CRAC_OBJ_F_CHANGED_OK) && e->path &&
			   sys_fstatat(AT_FDCWD, crac_img_str(v, e->path), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			   ((uint64_t)st.st_size != e->u[2] ||
			    (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec != e->u[3] ||
			    (uint64_t)st.st_ctim.tv_sec * 1000000000ull + (uint64_t)st.st_ctim.tv_nsec != e->u[4])) {
			if (e->same_as == CRAC_IMG_NO_FD)
				fd_line(v, e, "changed since the checkpoint; reopened at its old offset as the "
					"policy (changed=ok) allows");
		} else if (fd_report > 1) {
			fd_line(v, e, e->same_as != CRAC_IMG_NO_FD ? "reopened (a duplicate)" : "reopened");
		}
	}
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(void)
{
	out(2, "usage: crac-loader [--populate | --lazy] [--stats] [--check] [--trust-owner] [--verify-files] [--quiet] [--env K=V]... DIR [-- ARGS...]\n"
	       "(normally run by `crac restore DIR`)\n");
	sys_exit_group(2);
}

/* Appends a copy of s to a string vector in buf (limits said, never cut). */
static void keep_string(const char *s, char *buf, size_t *used, char **vec, int *n, const char *what)
{
	size_t len = strlen(s) + 1;
	struct crac_img_buf b = msg();

	if (*n >= MAX_NEW_ARGS || *used + len > MAX_NEW_BYTES) {
		crac_img_puts(&b, "too many ");
		crac_img_puts(&b, what);
		crac_img_puts(&b, " (at most ");
		crac_img_putu(&b, MAX_NEW_ARGS);
		crac_img_puts(&b, " of them, ");
		crac_img_putu(&b, MAX_NEW_BYTES);
		crac_img_puts(&b, " bytes in all)");
		die(2, msg_buf);
	}
	memcpy(buf + *used, s, len);
	vec[(*n)++] = buf + *used;
	*used += len;
}

/* "12.345": a count of millionths (ns as ms, bytes*1000 as MiB). */
static void put_ms(struct crac_img_buf *b, uint64_t ns)
{
	char frac[4] = { (char)('0' + ns / 100000 % 10), (char)('0' + ns / 10000 % 10),
			 (char)('0' + ns / 1000 % 10), 0 };
	crac_img_putu(b, ns / 1000000);
	crac_img_puts(b, ".");
	crac_img_puts(b, frac);
}

/* Is /sys/kernel/mm/transparent_hugepage/enabled "[madvise]"? */
static int thp_mode_is_madvise(void)
{
	char buf[128];
	long fd = sys_openat(AT_FDCWD, "/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC), n;

	if (fd < 0)
		return 0;
	n = sys_read(fd, buf, sizeof(buf) - 1);
	sys_close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	for (const char *p = buf; *p; p++)
		if (!memcmp(p, "[madvise]", 9))
			return 1;
	return 0;
}

/*
 * What the steps of loader_main hand each other (one restore per process:
 * static, in the loader's .bss, not on the kernel's stack that step 3
 * unmaps).
 */
static struct {
	/* 1. arguments and environment */
	int populate, lazy, stats, check, test_crash, small_lazy, huge;
	unsigned check_flags;
	int n_args, n_env;
	/* 2. the image */
	struct crac_img_opened o;
	struct crac_img_view v;
	uint64_t lo, hi;                 /* the loader's own range, page-aligned */
	/* lazy or eager */
	struct lazy_plan plan;
	uint32_t n_lazy, n_lazy_refs;   /* mappings userfaultfd fills; of them, with references */
	/* 5. */
	uint64_t stored, mapped;
	uint32_t n_sys, threads;
	/* CLOCK_MONOTONIC at the end of each step, for --stats */
	uint64_t t0, t_checked, t_unmapped, t_mapped, t_filled;
	/* page faults of this process (getrusage) in map_image, and from its
	 * fork to the end of map_image, for --stats */
	uint64_t flt_fill, flt_total;
} ld = { .small_lazy = 1, .huge = 1, .plan = { .uffd = -1 } };

/* The loader must fit its reserved range (image/image.h). */
static void check_own_range(void)
{
	if ((uint64_t)(uintptr_t)__executable_start < CRAC_IMG_LOADER_LO ||
	    (uint64_t)(uintptr_t)_end > CRAC_IMG_LOADER_HI)
		die(2, "internal error: the restore loader does not fit its reserved address range");
	ld.lo = (uint64_t)(uintptr_t)__executable_start & ~(P - 1);
	ld.hi = ((uint64_t)(uintptr_t)_end + P - 1) & ~(P - 1);
}

static int activation_number(const char **p);

/* 1a. The environment's settings for the loader. Signals keep their
 * defaults until the point of no return: until then, interrupting us
 * changes nothing. */
static void read_environment(char **envp)
{
	for (char **e = envp; *e; e++)
		if (!memcmp(*e, "CRAC_IMAGE_STATS=", 17) && (*e)[17] && (*e)[17] != '0')
			ld.stats = 1;
		else if (!strcmp(*e, "CRAC_LAZY_PREFETCH=off"))
			ld.plan.flags |= CRAC_LAZY_NO_PREFETCH;
		else if (!strcmp(*e, "CRAC_LAZY_MOVE=off"))
			ld.plan.no_move = true;             /* every page copied, none moved */
		else if (!strcmp(*e, "CRAC_TEST_LAZY_MOVE=force"))
			ld.plan.flags |= CRAC_LAZY_TEST_MOVE_FORCE;   /* tests: moves even where slow */
		else if (!strcmp(*e, "CRAC_TEST_LAZY_MOVE=slow"))
			ld.plan.flags |= CRAC_LAZY_TEST_MOVE_SLOW;    /* tests: the fallback to copies */
		else if (!strcmp(*e, "CRAC_TEST_LAZY_STALL=1"))
			ld.plan.flags |= CRAC_LAZY_TEST_STALL;        /* tests: a checkpoint's wait for loading bounded */
		else if (!strcmp(*e, "CRAC_WORKING_SET=off"))
			ld.plan.ws_mode = LAZY_WS_OFF;      /* neither loaded nor recorded */
		else if (!strcmp(*e, "CRAC_WORKING_SET=lazy"))
			ld.plan.ws_no_walk = true;          /* used, but no mapping made eager by it */
		else if (!strcmp(*e, "CRAC_WORKING_SET=record"))
			ld.plan.ws_mode = LAZY_WS_RECORD;   /* recorded anew, over the file there */
		else if (!memcmp(*e, "CRAC_TEST_WS_RECORD_MS=", 23)) {
			const char *p = (*e) + 23;
			int ms = activation_number(&p);   /* (a decimal number) */
			ld.plan.ws_record_ms = ms > 0 && ms <= 600000 ? (uint32_t)ms : 0;   /* tests: a longer recording */
		} else if (!strcmp(*e, "CRAC_TEST_WS_SLOW=1"))
			ld.plan.flags |= CRAC_LAZY_WS_TEST_SLOW;   /* tests: faults while it loads */
		else if (!strcmp(*e, "CRAC_TEST_LAZY_LATE=1"))
			ld.plan.flags |= CRAC_LAZY_TEST_LATE;   /* tests: the program out of the loader first */
		else if (!strcmp(*e, "CRAC_TEST_WS_DAMAGE=1"))
			ld.plan.flags |= CRAC_LAZY_WS_TEST_DAMAGE;   /* tests: the check after storing */
		else if (!strcmp(*e, "CRAC_TEST_WS_UNCLAIM_SLOW=1"))
			ld.plan.flags |= CRAC_LAZY_WS_TEST_UNCLAIM;  /* tests: a file put there before we remove ours */
		else if (!strcmp(*e, "CRAC_TEST_WS_STUCK=1"))
			ld.plan.flags |= CRAC_LAZY_WS_TEST_STUCK;    /* tests: a store that does not end */
		else if (!strcmp(*e, "CRAC_LAZY_SMALL=off"))
			ld.small_lazy = 0;   /* only mappings of CRAC_IMG_LAZY_MIN and more: benchmarks */
		else if (!strcmp(*e, "CRAC_VERIFY_FILES=1"))
			ld.check_flags |= CRAC_IMG_VERIFY_FILES;   /* crac restore --verify-files */
		else if (!strcmp(*e, "CRAC_LOADER_THREADS=1"))
			fill_threads = 1;   /* benchmarks: one thread fills the eager memory */
		else if (!strcmp(*e, "CRAC_LOADER_HUGE=off"))
			ld.huge = 0;        /* benchmarks: no huge pages while filling */
		else if (!memcmp(*e, "CRAC_PRETEND_MISSING=", 21)) {
			/* copied: the kernel's stack (envp) is unmapped later */
			static char copy[256];
			size_t n = strlen(*e + 21);
			if (n >= sizeof(copy))
				n = sizeof(copy) - 1;
			memcpy(copy, *e + 21, n);
			copy[n] = 0;
			pretend_list = copy;
		}
		else if (!memcmp(*e, "CRAC_ACTIVATION_FDS=", 20))
			activation_env = *e + 20;   /* parse_activation(), before anything is unmapped */
		else if (!strcmp(*e, "CRAC_LOG=error"))
			fd_report = 0;
		else if (!strcmp(*e, "CRAC_LOG=info") || !strcmp(*e, "CRAC_LOG=debug"))
			fd_report = 2;
		else if (!strcmp(*e, "CRAC_LOADER_TEST_CRASH=1"))
			ld.test_crash = 1;   /* tests of the crash handler: fault after mapping */
		else if (!memcmp(*e, "CRAC_LOADER_TEST_LISTEN_DELAY_MS=", 33)) {
			/* tests of two restores binding one Unix path (socket.c) */
			long v = 0;
			for (const char *c = *e + 33; *c >= '0' && *c <= '9' && v < 60000; c++)
				v = v * 10 + (*c - '0');
			crac_obj_socket_test_listen_delay(v);
		}
		else if (!memcmp(*e, "CRAC_LOADER_TEST_LOCKED_DELAY_MS=", 33)) {
			/* tests of a Unix path's directory replaced (socket.c) */
			long v = 0;
			for (const char *c = *e + 33; *c >= '0' && *c <= '9' && v < 60000; c++)
				v = v * 10 + (*c - '0');
			crac_obj_socket_test_locked_delay(v);
		}
		else if (!memcmp(*e, "CRAC_LOADER_PONR_FD=", 20)) {
			/* crac start: see point_of_no_return() */
			int v = 0;
			const char *c = *e + 20;
			while (*c >= '0' && *c <= '9' && v < 100000)
				v = v * 10 + (*c++ - '0');
			ponr_fd = *c || c == *e + 20 || v < 3 ? -1 : v;
		}
}

/* 1b. The arguments; new arguments and --env settings are copied into our
 * .bss (the kernel's stack goes away); --env=K=V and -q as the crac
 * command spells them too (front.c). */
static void parse_arguments(int argc, char **argv)
{
	size_t env_used = 0, args_used = 0;
	const char *dir = 0;

	/* The directory first, so that every message names it. */
	for (int a = 1; a < argc && strcmp(argv[a], "--"); a++) {
		if (!strcmp(argv[a], "--env"))
			a++;
		else if (argv[a][0] != '-') {
			static HOT_TAIL char dir_copy[4096];
			if (strlen(argv[a]) >= sizeof(dir_copy))
				die(2, "image directory name too long (at most 4095 bytes)");
			memcpy(dir_copy, argv[a], strlen(argv[a]) + 1);
			image_dir = dir_copy;
			break;
		}
	}
	int i = 1;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--populate")) ld.populate = 1;
		else if (!strcmp(argv[i], "--lazy")) ld.lazy = 1;
		else if (!strcmp(argv[i], "--stats")) ld.stats = 1;
		else if (!strcmp(argv[i], "--check")) ld.check = 1;
		else if (!strcmp(argv[i], "--trust-owner")) ld.check_flags |= CRAC_IMG_TRUST_OWNER;
		else if (!strcmp(argv[i], "--verify-files")) ld.check_flags |= CRAC_IMG_VERIFY_FILES;
		else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) fd_report = 0;
		else if ((!strcmp(argv[i], "--env") && i + 1 < argc) || has_prefix(argv[i], "--env=")) {
			const char *kv = argv[i][5] == '=' ? argv[i] + 6 : argv[++i];
			const char *eq = kv;
			while (*eq && *eq != '=')
				eq++;
			if (*eq != '=' || eq == kv)
				die(2, "--env needs KEY=VALUE");
			keep_string(kv, env_buf, &env_used, new_envp, &ld.n_env, "--env settings");
		}
		else if (!strcmp(argv[i], "--")) { i++; break; }
		else if (argv[i][0] == '-') usage();
		else if (!dir) dir = argv[i];
		else usage();
	}
	if (!dir || (ld.lazy && ld.populate))
		usage();
	for (; i < argc; i++)
		keep_string(argv[i], args_buf, &args_used, new_argv, &ld.n_args, "new arguments");
}

/* The image directory's absolute path, for the restored process's next
 * incremental checkpoint (its parent); empty if it cannot be said. */
static void set_abs_dir(void)
{
	if (image_dir[0] == '/') {   /* as it is (a copy in abs_dir was one more page to fault in) */
		abs_path = image_dir;
		return;
	}
	long n = SYS(SYS_getcwd, abs_dir, CRAC_IMG_PATH_MAX, 0, 0, 0, 0);
	size_t at = n > 0 ? strlen(abs_dir) : 0;
	if (n > 0 && at + 1 + strlen(image_dir) + 1 <= sizeof(abs_dir)) {
		abs_dir[at] = '/';
		memcpy(abs_dir + at + 1, image_dir, strlen(image_dir) + 1);
		abs_path = abs_dir;
	} else {
		abs_dir[0] = 0;
	}
}

/*
 * The header into header_buf, a copy the checks then verify and nothing
 * changes afterwards: the header file mapped privately over header_buf
 * and every page of it copied at once by the kernel (MADV_POPULATE_WRITE:
 * a write fault on each page of a private mapping gives it its own copy,
 * which later writes to the file do not reach). One system call where
 * pread into header_buf took a page fault per page inside the copy (11
 * for python3, each a slow exception on this VM: 0.2 ms), and no page of
 * header_buf is zeroed first. 0, or -1 where the kernel cannot (before
 * Linux 5.14, a file cut short meanwhile): header_buf is then anonymous
 * memory again, for crac_img_read_header's pread (and its message).
 */
static int header_snapshot(void)
{
	uint64_t size = ld.o.header_size, len = (size + P - 1) & ~(P - 1);
	uint64_t at = (uint64_t)(uintptr_t)header_buf;

	if (!size || size > HEADER_BUF_MAX || size > CRAC_IMG_MAX_HEADER || pretend("populate"))
		return -1;
	long a = sys_mmap(at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, ld.o.header_fd, 0);
	if (a == (long)at && sys_madvise(at, len, MADV_POPULATE_WRITE_) == 0)
		return 0;
	/* back to what .bss is: anonymous, zeros (a failed MAP_FIXED may
	 * have unmapped the range) */
	a = sys_mmap(at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (a != (long)at)
		die(1, "cannot map the loader's header buffer back");
	return -1;
}

/*
 * size bytes (whole pages) of anonymous memory at the end of the loader's
 * own range (ld.hi, which then moves past them: they are the loader's,
 * kept until the restored program unmaps the loader). what names them in
 * the message if the process may not have them (RLIMIT_AS).
 */
static char *loader_buf(uint64_t size, const char *what)
{
	uint64_t at = ld.hi, len = size ? (size + P - 1) & ~(P - 1) : P;
	char why[256];
	struct crac_img_buf b = { why, 0, sizeof(why) };

	if (len > CRAC_IMG_LOADER_HI - at)
		die(2, "internal error: the restore loader's buffers do not fit its reserved address range");
	long a = sys_mmap(at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (a == (long)at) {
		ld.hi = at + len;
		return (char *)(uintptr_t)at;
	}
	if (a >= 0)
		sys_munmap((uint64_t)a, len);   /* a kernel without MAP_FIXED_NOREPLACE put it elsewhere */
	crac_img_puts(&b, "cannot map the loader's buffer for ");
	crac_img_puts(&b, what);
	crac_img_puts(&b, " (");
	crac_img_putu(&b, len);
	crac_img_puts(&b, " bytes)");
	crac_img_put_err(&b, a < 0 ? a : -EEXIST);
	if (a == -ENOMEM)
		crac_img_puts(&b, "; is RLIMIT_AS (ulimit -v) too low?");
	die(1, why);
}

/* 2. Open and verify, changing nothing, with the checks `crac inspect`
 * runs; an incremental image: every image below it, checked the same way. */
static void open_image(void)
{
	char why[2048];

	if (crac_img_open(image_dir, &ld.o, why, sizeof(why)) < 0)
		die(1, why);
	/* a header larger than the buffer may be is refused by
	 * crac_img_read_header before it reads anything */
	uint64_t hcap = ld.o.header_size > HEADER_BUF_MAX ? HEADER_BUF_MAX : ld.o.header_size;
	header_buf = loader_buf(hcap, "the image's header");
	if (header_snapshot() == 0 ? crac_img_parse(header_buf, ld.o.header_size, &ld.v, why, sizeof(why)) < 0
				   : crac_img_read_header(&ld.o, header_buf, ld.o.header_size > HEADER_BUF_MAX
								     ? HEADER_BUF_MAX : (hcap + P - 1) & ~(P - 1),
							  &ld.v, why, sizeof(why)) < 0)
		die(1, why);
	image_arrays(ld.v.h);
	if (pretend("pr_set_mm_map"))
		ld.check_flags |= CRAC_IMG_PRETEND_NO_MM_MAP;
	/* the vDSO check takes our maps (read_own_maps) instead of reading them again */
	static HOT uint64_t vdso[3][2];
	static const char *const vdso_names[3] = { "[vvar]", "[vvar_vclock]", "[vdso]" };
	for (int i = 0; i < 3; i++) {
		const struct own_map *m = own_find(vdso_names[i]);
		vdso[i][0] = m ? m->start : 0;
		vdso[i][1] = m ? m->end : 0;
	}
	struct crac_img_checker k = { .v = &ld.v, .o = &ld.o, .dir = image_dir, .flags = ld.check_flags,
				      .file_fds = file_fd, .vdso = (const uint64_t (*)[2])vdso };
	if (crac_img_check_all(&k, 0, why, sizeof(why)) < 0)
		die(1, why);
	if (ld.v.h->depth && !anc_buf)
		anc_buf = loader_buf(ANC_BUF_MAX, "the headers of the images below");
	if (ld.v.h->depth && crac_img_chain_open(&ld.v, image_dir, ld.check_flags & CRAC_IMG_TRUST_OWNER, &chain,
						 anc_buf, ANC_BUF_MAX, why, sizeof(why)) < 0)
		die(1, why);
	set_abs_dir();
}

/* Lazy or eager, for each mapping: decided before anything changes. Small
 * mappings too: what the program does not touch before its first answer
 * is not worth its time (python3: 5.6 MiB in 39 arenas and thread
 * stacks). With CRAC_LAZY_PREFETCH=off (tests of the fault paths of the
 * large mappings) the small ones stay eager. */
static void plan_lazy(void)
{
	const struct crac_img_view *v = &ld.v;
	const struct crac_img_header *h = v->h;
	struct lazy_plan *pl = &ld.plan;

	if (pl->flags & CRAC_LAZY_NO_PREFETCH)
		ld.small_lazy = 0;
	if (ld.populate) {
		pl->mode = CRAC_LAZY_OFF_POPULATE;
	} else {
		/* A mapping with references (an incremental image): what it
		 * takes from the images below counts as stored (the lazy
		 * thread reads it from their pages files). */
		uint32_t ri = 0;
		for (uint32_t m = 0; m < h->n_maps; m++) {
			uint64_t below = 0;
			for (; ri < h->n_refs && v->refs[ri].map <= m; ri++)
				if (v->refs[ri].map == m)
					below += v->refs[ri].len;
			is_lazy[m] = crac_img_lazy_pick(&v->maps[m], below, h->resume, ld.small_lazy);
			ld.n_lazy += is_lazy[m];
			ld.n_lazy_refs += is_lazy[m] && (v->maps[m].flags & CRAC_MAPF_REFS);
		}
	}
	/* Mappings the working set shows the program walks at once: eager
	 * (lazy.c, lazy_walked). Not with --lazy (asked for), nor with
	 * CRAC_LAZY_PREFETCH=off (tests of the fault paths). */
	uint32_t walked = 0;
	if (!ld.populate && ld.n_lazy && !ld.lazy && !(pl->flags & CRAC_LAZY_NO_PREFETCH)) {
		pl->dir_fd = ld.o.dir_fd;
		pl->owner = ld.o.uid[1];
		walked = lazy_walked(pl, v, is_lazy);
		ld.n_lazy -= walked;
		ld.n_lazy_refs = 0;
		for (uint32_t m = 0; m < h->n_maps; m++)
			ld.n_lazy_refs += is_lazy[m] && (v->maps[m].flags & CRAC_MAPF_REFS);
	}
	/* Too little left to it: eager (not with --lazy, nor with
	 * CRAC_LAZY_PREFETCH=off: tests of the fault paths). */
	if (!ld.populate && ld.n_lazy && !ld.lazy && !(pl->flags & CRAC_LAZY_NO_PREFETCH) &&
	    lazy_too_little(v, is_lazy)) {
		memset(is_lazy, 0, h->n_maps);
		ld.n_lazy = 0;
		ld.n_lazy_refs = 0;
	}
	if (!ld.populate && ld.n_lazy && pretend("userfaultfd")) {
		pl->mode = CRAC_LAZY_OFF_KERNEL;
		memset(is_lazy, 0, h->n_maps);
		ld.n_lazy_refs = 0;
	} else if (!ld.populate && ld.n_lazy && (pl->uffd = lazy_open(&pl->mode, h->img_flags & CRAC_IMGF_TRACK, !pl->no_move)) < 0) {
		memset(is_lazy, 0, h->n_maps);
		ld.n_lazy_refs = 0;
	}
	if (!ld.populate && !ld.n_lazy)
		pl->mode = walked ? CRAC_LAZY_OFF_WALKED : CRAC_LAZY_OFF_SMALL;
	if (ld.lazy && pl->uffd < 0) {
		struct crac_img_buf b = msg();
		crac_img_puts(&b, "--lazy: ");
		crac_img_puts(&b, crac_img_lazy_why((uint32_t)pl->mode));
		die(1, msg_buf);
	}
	if (ld.stats)
		pl->flags |= CRAC_LOADER_STATS;
	if (pretend("rename_noreplace"))
		pl->flags |= CRAC_LAZY_WS_NO_NOREPLACE;   /* tests: the working set's claim by linkat */
	/* Huge pages while filling: only where THP is "madvise" (with
	 * "always" the kernel uses them anyway, with "never" it cannot).
	 * Never for an image whose process tracks its writes (incremental
	 * checkpoints): a write to a huge page marks all 2 MiB of it written. */
	if (h->img_flags & CRAC_IMGF_TRACK)
		ld.huge = 0;
	for (uint32_t m = 0; ld.huge && m < h->n_maps; m++)
		if (!is_lazy[m] && v->maps[m].stored >= HUGE_MIN) {
			thp_madvise = thp_mode_is_madvise();
			break;
		}
	/* The small eager mappings are written through /proc/self/mem
	 * (fill_mem); without it (no /proc), by preadv as the large ones. */
	if (!pretend("proc_mem"))
		mem_fd = (int)sys_openat(AT_FDCWD, "/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (mem_fd < 0)
		mem_fd = -1;
	mem_no_force = pretend("proc_mem_force");
}

/* The descriptors, refused now if they cannot be recreated, not after the
 * jump. */
static void check_descriptors(void)
{
	const struct crac_img_view *v = &ld.v;
	const struct crac_img_header *h = v->h;

	parse_activation();
	/* Room for the descriptors: the pages file stays above the highest
	 * while they are recreated (restore_fds), so RLIMIT_NOFILE must allow
	 * one more than the image's highest, if need be by raising the soft
	 * limit up to the hard one (restore_fds, with what is read here). */
	nofile_read = sys_prlimit(0, 7 /* RLIMIT_NOFILE */, 0, nofile) == 0;
	if (h->n_fds && nofile_read) {
		uint64_t top = (uint64_t)v->fds[h->n_fds - 1].fd;
		if (nofile[1] < top + 2) {
			struct crac_img_buf b = msg();
			crac_img_puts(&b, "the image's highest descriptor is fd ");
			crac_img_putu(&b, top);
			crac_img_puts(&b, ", and restoring it needs RLIMIT_NOFILE of at least ");
			crac_img_putu(&b, top + 2);
			crac_img_puts(&b, " (the pages file stays above it while descriptors are recreated); the hard "
				      "limit here is ");
			crac_img_putu(&b, nofile[1]);
			crac_img_puts(&b, ": raise it (ulimit -Hn, LimitNOFILE=) to restore this image");
			die(1, msg_buf);
		}
	}
	/* The addresses of listening and bound IP sockets are free again
	 * (another instance of this image may hold them): refused now, while
	 * the restoring command can still start the program otherwise. Not
	 * those socket activation replaces (the passed socket holds it). */
	for (uint32_t f = 0; f < h->n_fds; f++) {
		struct crac_img_buf b = msg();
		if (activation_dst(v->fds[f].fd))
			continue;
		crac_obj_put_entry(&b, v, &v->fds[f]);
		long rc = crac_obj_socket_check(v, &v->fds[f], &b);
		if (rc < 0) {
			put_err(&b, rc);
			die(1, msg_buf);
		}
	}
	/* Then the Unix socket paths, once every descriptor passed (a refusal
	 * above changed no file): bound (a stale socket file removed) and
	 * held as the ports are, so that a second restore of this image finds
	 * the path in use now, not after its point of no return. A refusal
	 * from here on removes the socket files made (die). */
	for (uint32_t f = 0; f < h->n_fds; f++) {
		struct crac_img_buf b = msg();
		if (activation_dst(v->fds[f].fd))
			continue;
		crac_obj_put_entry(&b, v, &v->fds[f]);
		long rc = crac_obj_socket_hold_path(v, &v->fds[f], &b);
		if (rc < 0) {
			put_err(&b, rc);
			die(1, msg_buf);
		}
	}
}

/*
 * RLIMIT_AS, all of it: check.c refused an image whose mappings alone
 * exceed it, but past the point of no return this process also holds its
 * own range (code, .bss and the header buffers: ld.lo..ld.hi, ~10 MiB)
 * and the vDSO block, maps the lazy thread's area and tables (lazy.c,
 * lazy_as_need) and, recreating descriptors, one socket's queued bytes at
 * a time: a limit between the image's size and that total let the restore
 * die after the point of no return, the process lost. Refused now, naming
 * the limit and the need. What is left (as_room) bounds map_wide's
 * temporary widening, which is only an optimisation.
 */
static void check_address_space(void)
{
	const struct crac_img_view *v = &ld.v;
	const struct crac_img_header *h = v->h;
	uint64_t lim[2] = { ~0ull, ~0ull };

	if (sys_prlimit(0, 9 /* RLIMIT_AS */, 0, lim) < 0 || lim[0] == ~0ull)
		return;
	uint64_t image = 0, queued = 0;
	for (uint32_t i = 0; i < h->n_maps; i++)
		if (v->maps[i].kind < CRAC_MAP_VVAR && v->maps[i].end > v->maps[i].start)
			image += v->maps[i].end - v->maps[i].start;
	for (uint32_t f = 0; f < h->n_fds; f++) {   /* (socket.c, requeue: one at a time) */
		uint64_t d = (v->fds[f].data_len + P - 1) & ~(P - 1);
		if (v->fds[f].kind == CRAC_OBJ_SOCKET && d > queued)
			queued = d;
	}
	uint64_t mine = ld.hi - ld.lo + h->vvar_size + h->vvar_vclock_size + h->vdso_size;
	uint64_t lazy = ld.plan.uffd >= 0 ? lazy_as_need(v, is_lazy, ld.n_lazy_refs ? &chain : 0) : 0;
	uint64_t need = image + mine + lazy + queued;
	if (need <= lim[0]) {
		as_room = lim[0] - need;
		return;
	}
	struct crac_img_buf b = msg();
	crac_img_puts(&b, "restoring needs ");
	crac_img_putu(&b, need);
	crac_img_puts(&b, " bytes of address space (");
	crac_img_putu(&b, (need + 1023) / 1024);
	crac_img_puts(&b, " KiB: the image's mappings ");
	crac_img_putu(&b, image);
	crac_img_puts(&b, ", the loader's own ");
	crac_img_putu(&b, mine);
	if (lazy) {
		crac_img_puts(&b, ", the lazy loader's ");
		crac_img_putu(&b, lazy);
	}
	if (queued) {
		crac_img_puts(&b, ", a socket's queued bytes ");
		crac_img_putu(&b, queued);
	}
	crac_img_puts(&b, "), more than this process's RLIMIT_AS (");
	crac_img_putu(&b, lim[0]);
	crac_img_puts(&b, " bytes; ulimit -v)");
	die(1, msg_buf);
}

/* 3 and 4. Everything of ours unmapped but the loader itself and the vDSO
 * block, which moves to the recorded address. */
static void clear_address_space(void)
{
	const struct crac_img_header *h = ld.v.h;
	const struct own_map *vvar = own_find("[vvar]");
	uint64_t block = h->vvar_size + h->vvar_vclock_size + h->vdso_size;

	phase = "unmapping the loader's process";
	unmap_foreign(ld.lo, ld.hi, vvar->start, vvar->start + block);
	phase = "moving the vDSO";
	move_vdso(h, vvar->start);
}

/*
 * The page faults of this process so far (minor + major, every thread's,
 * from its fork: the crac command's exec included). For --stats: those
 * the fill takes are the kernel's (MADV_POPULATE_WRITE, the writes
 * through /proc/self/mem), far cheaper here than a program's own first
 * touch of a page, and bench/restore.sh tells them apart.
 */
static uint64_t faults_now(void)
{
	struct rusage ru;

	if (SYS(SYS_getrusage, RUSAGE_SELF, &ru, 0, 0, 0, 0) < 0)
		return 0;
	return (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt;
}

/* 5. Every recorded mapping made (lazy ones registered), then the pages
 * of the images below (an incremental image), then its own. */
static void map_image(void)
{
	uint64_t ref_bytes = 0, flt0 = ld.stats ? faults_now() : 0;

	phase = "mapping the image";
	ld.threads = 1;
	map_wide(&ld.v, ld.o.pages_fd, &ld.stored, &ld.threads, &ld.n_sys);
	map_all(&ld.v, ld.plan.uffd, &ld.mapped, &ld.n_sys);
	ld.t_mapped = mono_ns() - wide_fill_ns;   /* --stats: map_wide's filling is fill */
	if (ld.v.h->n_refs)
		fill_refs(&ld.v, &ref_bytes, &ld.n_sys);
	if (!ld.n_lazy_refs && ld.v.h->depth)
		crac_img_chain_close(&chain);   /* else the lazy thread needs it (start_lazy) */
	fill_eager(&ld.v, ld.o.pages_fd, &ld.stored, &ld.threads, &ld.n_sys);
	if (mem_fd >= 0)
		sys_close(mem_fd);
	ld.stored += ref_bytes;
	ld.t_filled = mono_ns();
	if (ld.stats) {   /* (two system calls a restore needs only for --stats) */
		ld.flt_total = faults_now();
		ld.flt_fill = ld.flt_total - flt0;
	}
	if (ld.test_crash) {
		volatile uint64_t bad = 16;
		*(volatile int *)(uintptr_t)bad = 0;
	}
}

/* 7a. The resume block in the restored libcrac: what the restored side
 * needs to know of this restore. */
static struct crac_img_resume *fill_resume(void)
{
	const struct crac_img_header *h = ld.v.h;

	phase = "filling the resume block";
	struct crac_img_resume *res = find_resume(&ld.v);
	res->loader_lo = ld.lo;
	res->loader_hi = ld.hi;
	res->loader_start_ns = ld.t0;
	res->loader_flags = (ld.populate ? CRAC_LOADER_POPULATE : 0) | (ld.stats ? CRAC_LOADER_STATS : 0);
	res->argc = (uint64_t)ld.n_args;
	res->argv = ld.n_args ? (uint64_t)(uintptr_t)new_argv : 0;
	res->envc = (uint64_t)ld.n_env;
	res->envp = ld.n_env ? (uint64_t)(uintptr_t)new_envp : 0;
	res->stored = ld.stored;
	res->mapped = ld.mapped;
	res->lazy_mode = (uint32_t)ld.plan.mode;
	res->image_dir = abs_path ? (uint64_t)(uintptr_t)abs_path : 0;
	res->image_crc = h->crc;
	res->image_depth = h->depth;
	res->image_pages_size = h->pages_size;
	res->image_created_ns = h->created_ns;
	res->image_flags = h->img_flags;
	return res;
}

/* 7b. The lazy loader thread (lazy.c), then our descriptors closed but the
 * pages file (restore_fds needs it). */
static void start_lazy(struct crac_img_resume *res)
{
	if (ld.plan.uffd >= 0) {
		phase = "starting the lazy loader thread";
		uint32_t me = (uint32_t)sys_geteuid();
		ld.plan.dir_fd = ld.o.dir_fd;
		ld.plan.owner = ld.o.uid[1];
		/* (a directory on a read-only file system: not writable either;
		 * recorded there, the working set would cost each restore its
		 * page-by-page recording and never be stored) */
		struct statfs fs;
		ld.plan.may_write = ld.o.uid[0] == me && ld.o.uid[1] == me && ld.o.uid[2] == me &&
				    (ld.o.mode[0] & S_IWUSR) && SYS(SYS_fstatfs, ld.o.dir_fd, &fs, 0, 0, 0, 0) == 0 &&
				    !(fs.f_flags & 1 /* ST_RDONLY */);
		long rc = lazy_start(&ld.plan, &ld.v, is_lazy, res, ld.o.pages_fd, image_dir,
				     ld.n_lazy_refs ? &chain : 0, mono_ns());
		if (rc < 0) {
			struct crac_img_buf b = msg();
			crac_img_puts(&b, "cannot start the lazy loader thread");
			put_err(&b, rc);
			die(1, msg_buf);
		}
		sys_close(ld.plan.uffd);   /* the thread has its own copy */
	}
	if (ld.v.h->depth)   /* (chain not even read without one: a page fault less) */
		crac_img_chain_close(&chain);   /* the thread has its own copies */
	for (uint32_t f = 0; f < ld.v.h->n_files; f++)
		if (file_fd[f] >= 0)
			sys_close(file_fd[f]);
	sys_close(ld.o.dir_fd);
}

/* --stats: where the loader's time went, one line on stderr. */
static void print_stats(void)
{
	const struct crac_img_header *h = ld.v.h;
	uint64_t t = mono_ns();
	struct crac_img_buf b = msg();
	uint32_t n_huge = 0;

	for (uint32_t m = 0; m < h->n_maps; m++)
		n_huge += fm[m].made_huge;
	crac_img_puts(&b, "crac: loader: checks ");
	put_ms(&b, ld.t_checked - ld.t0);
	crac_img_puts(&b, " ms (");
	crac_img_putu(&b, h->n_files);
	crac_img_puts(&b, (ld.check_flags & CRAC_IMG_VERIFY_FILES) ? " mapped files by stat and first/last page)"
								    : " mapped files by stat identity)");
	crac_img_puts(&b, ", unmap ");
	put_ms(&b, ld.t_unmapped - ld.t_checked);
	crac_img_puts(&b, " ms, map ");
	put_ms(&b, ld.t_mapped - ld.t_unmapped);
	crac_img_puts(&b, " ms (");
	crac_img_putu(&b, h->n_maps);
	crac_img_puts(&b, " mappings, ");
	crac_img_putu(&b, ld.n_lazy);
	crac_img_puts(&b, " by userfaultfd");
	if (ld.n_lazy_refs) {
		crac_img_puts(&b, ", ");
		crac_img_putu(&b, ld.n_lazy_refs);
		crac_img_puts(&b, " of them with pages of images below");
	}
	crac_img_puts(&b, "), fill ");
	put_ms(&b, ld.t_filled - ld.t_mapped);
	crac_img_puts(&b, " ms (");
	put_ms(&b, ld.stored * 1000000 / 1048576);
	crac_img_puts(&b, " MiB, ");
	crac_img_putu(&b, ld.threads);
	crac_img_puts(&b, ld.threads == 1 ? " thread, " : " threads, ");
	crac_img_putu(&b, n_huge);
	crac_img_puts(&b, " mappings with huge pages; ");
	crac_img_putu(&b, ld.n_sys);
	crac_img_puts(&b, " system calls mapping and filling; ");
	crac_img_putu(&b, ld.flt_fill);
	crac_img_puts(&b, " page faults filling, ");
	crac_img_putu(&b, ld.flt_total);
	crac_img_puts(&b, " since the fork), start ");
	put_ms(&b, t - ld.t_filled);
	crac_img_puts(&b, " ms\n");
	out(2, msg_buf);
}

/* 7c. The program's descriptors, then into the saved context: the
 * engine's checkpoint call returns CRAC_RESTORED. */
static __attribute__((noreturn)) void resume_program(struct crac_img_resume *res)
{
	phase = "recreating the program's descriptors";
	restore_fds(&ld.v, ld.o.pages_fd);
	report_fds(&ld.v);
	res->loader_done_ns = mono_ns();
	ponr_jumping();

	phase = "jumping into the restored program (before it restored its signal handlers)";
	sys_arch_prctl(ARCH_SET_FS, res->ctx.fs_base);
	crac_loader_jump(&res->ctx, 1);
}

/*
 * front.c in the crac command: `crac restore DIR ...` goes on here with
 * the arguments after "restore" (1 skipped); any other command line execs
 * crac-cli. front_none.c in crac-loader: 0.
 */
int front_dispatch(int argc, char **argv, char **envp);

/*
 * 0. Standard input, output and error the caller left closed (a service
 * manager, `crac restore DIR <&- >&-`) are /dev/null: else the first files
 * the loader opens (the image's header, a pipe) would take those numbers,
 * and the restored program, which keeps 0-2 as the restore gets them,
 * would have them as its stdio (crac-cli does the same where it execs
 * the loader).
 */
static void stdio_fill(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (SYS(SYS_fcntl, fd, F_GETFD, 0, 0, 0, 0) == -EBADF) {
			/* the lowest free number: fd (those below are open) */
			long n = sys_openat(AT_FDCWD, "/dev/null", O_RDWR);
			if (n >= 0 && n != fd)
				sys_close(n);   /* (not expected) */
			if (n < 0) {
				/* as crac-cli refuses (cli/main.c): else the image's
				 * own files would take the number, or the program
				 * would find it closed, and nobody told */
				struct crac_img_buf b = msg();
				crac_img_puts(&b, "descriptor ");
				crac_img_putu(&b, (uint64_t)fd);
				crac_img_puts(&b, " is closed and /dev/null cannot take its place");
				put_err(&b, n);
				die(1, msg_buf);
			}
		}
}

/* The steps of the header comment, top to bottom. */
__attribute__((noreturn, used)) void loader_main(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;

	ld.t0 = mono_ns();
	check_own_range();
	stdio_fill();   /* 0. */
	int skip = front_dispatch(argc, argv, envp);
	argc -= skip;
	argv += skip;
	/* 1. */
	read_environment(envp);
	parse_arguments(argc, argv);
	/* 2. */
	read_own_maps();   /* (open_image's checks take the vDSO's place from them) */
	open_image();
	ld.t_checked = mono_ns();
	if (ld.check) {
		out(1, "image ok\n");
		sys_exit_group(0);
	}
	plan_lazy();
	check_descriptors();
	check_address_space();

	/* -- point of no return -- */
	point_of_no_return();
	clear_address_space();            /* 3, 4 */
	ld.t_unmapped = mono_ns();
	map_image();                      /* 5 */
	phase = "setting brk and the arg/env areas";
	set_mm(ld.v.h);                   /* 6 */
	struct crac_img_resume *res = fill_resume();   /* 7 */
	start_lazy(res);
	if (ld.stats)
		print_stats();
	resume_program(res);
}
