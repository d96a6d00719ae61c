/*
 * loader.c - crac-loader: turns this process into a restored image.
 *
 *   crac-loader [--populate | --lazy] [--stats] [--check] [--env K=V]... DIR [-- ARGS...]
 *
 * `crac restore DIR` execs this program, so the restored process keeps the
 * pid of the restore command and its stdio (fds 0, 1, 2 are inherited).
 * The loader is static, links no libc and is linked at a fixed unusual
 * address (LOADER_BASE in CMakeLists.txt, 0x3f0000000000): restored
 * mappings that would overlap it are refused before anything changes.
 *
 * Top to bottom:
 *   1. arguments; all signals blocked
 *   2. verify, changing nothing: header (magic, version, size, crc, every
 *      table), pages file size, CPU features and XSAVE size, vDSO layout
 *      and code, overlap with the loader, identity of every mapped file
 *      (dev, inode, size, mtime, crc of first and last page), AMX permission
 *   -- point of no return --
 *   3. unmap everything of ours but the loader itself and the vDSO block
 *   4. move [vvar][vvar_vclock][vdso] to the recorded address (one mremap)
 *   5. map every recorded mapping: files from their files, anonymous memory
 *      anonymous, then read the stored pages into it (crc checked); large
 *      anonymous mappings are registered with userfaultfd instead (lazy.c)
 *   6. brk, arg/env areas, auxv: PR_SET_MM_MAP (exe_fd -1)
 *   7. fill the resume block in the restored libcrac, start the lazy
 *      loader thread, close our fds, set the thread pointer, jump into the
 *      saved context: the engine's checkpoint call returns CRAC_RESTORED.
 * Any refusal prints one line "crac: restore DIR: reason" and exits 1;
 * after the point of no return too (our own code and data stay mapped).
 *
 * Restored memory is anonymous memory, so MADV_DONTNEED and MADV_FREE
 * behave as in the original process: small mappings are read with pread
 * (eager), large ones are filled by userfaultfd (lazy, when the kernel lets
 * us handle faults taken inside system calls; see lazy.c). `--populate`
 * makes everything eager, `--lazy` refuses when lazy restore is impossible.
 */
#include "loader/lazy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/prctl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
#define MAX_NEW_ARGS 1024

extern char __executable_start[], _end[];

/* Big buffers live in .bss: inside the loader's fixed range. */
static char header_buf[64u << 20] __attribute__((aligned(4096)));
static char maps_buf[64u << 10];
static char vdso_park[1u << 20] __attribute__((aligned(4096)));  /* parking spot while moving */
static char args_buf[64u << 10];
static char env_buf[64u << 10];
static char *new_argv[MAX_NEW_ARGS + 1];
static char *new_envp[MAX_NEW_ARGS + 1];
static int file_fd[CRAC_IMG_MAX_FILES];
static bool is_lazy[CRAC_IMG_MAX_MAPS];

static const char *image_dir = "?";

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

static __attribute__((noreturn)) void die(int status, const char *why)
{
	static char line[2048];
	struct crac_img_buf b = { line, 0, sizeof(line) };

	crac_img_puts(&b, "crac: restore ");
	crac_img_puts(&b, image_dir);
	crac_img_puts(&b, ": ");
	crac_img_puts(&b, why);
	crac_img_puts(&b, "\n");
	out(2, line);
	sys_exit_group(status);
	__builtin_unreachable();
}

/* A message with an errno: "what: Exxx (n)". */
static char msg_buf[1024];
static struct crac_img_buf msg(void)
{
	struct crac_img_buf b = { msg_buf, 0, sizeof(msg_buf) };
	msg_buf[0] = 0;
	return b;
}

static const char *errname(long e)
{
	switch (-e) {
	case EPERM: return "Operation not permitted";
	case ENOENT: return "No such file or directory";
	case EACCES: return "Permission denied";
	case EEXIST: return "File exists (address already in use)";
	case EINVAL: return "Invalid argument";
	case ENOMEM: return "Cannot allocate memory";
	case EFAULT: return "Bad address";
	case EMFILE: return "Too many open files";
	case EBUSY: return "Device or resource busy";
	case EIO: return "Input/output error";
	case ENOTDIR: return "Not a directory";
	case EISDIR: return "Is a directory";
	case ELOOP: return "Too many levels of symbolic links";
	case ENAMETOOLONG: return "File name too long";
	case ENFILE: return "Too many open files in system";
	case EOVERFLOW: return "Value too large for defined data type";
	case ENOSPC: return "No space left on device";
	case EAGAIN: return "Resource temporarily unavailable";
	case ESRCH: return "No such process";
	case ENOSYS: return "Function not implemented";
	case ENODEV: return "No such device";
	case EBADF: return "Bad file descriptor";
	case ETXTBSY: return "Text file busy";
	case EROFS: return "Read-only file system";
	}
	return "error";
}

static void put_err(struct crac_img_buf *b, long e)
{
	crac_img_puts(b, ": ");
	crac_img_puts(b, errname(e));
	crac_img_puts(b, " (errno ");
	crac_img_putu(b, (uint64_t)-e);
	crac_img_puts(b, ")");
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

/* ---- our own mappings (/proc/self/maps) ------------------------------------ */

struct own_map { uint64_t start, end; char name[32]; };
static struct own_map own[MAX_OWN_MAPS];
static int n_own;

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

	if (fd < 0)
		die(1, "cannot read /proc/self/maps");
	while ((n = sys_read(fd, maps_buf + len, sizeof(maps_buf) - 1 - (size_t)len)) > 0)
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

/* ---- verification ----------------------------------------------------------- */

static void check_cpu(const struct crac_img_header *h)
{
	struct crac_img_cpu have;
	char why[256];

	crac_img_cpu_probe(&have);
	if (crac_img_cpu_compare(&h->cpu, &have, why, sizeof(why)) < 0)
		die(1, why);
}

static void check_vdso(const struct crac_img_header *h)
{
	const struct own_map *vvar = own_find("[vvar]"), *vclock = own_find("[vvar_vclock]"),
			     *vdso = own_find("[vdso]");
	struct crac_img_buf b = msg();
	uint64_t vvar_size = vvar ? vvar->end - vvar->start : 0;
	uint64_t vclock_size = vclock ? vclock->end - vclock->start : 0;
	uint64_t vdso_size = vdso ? vdso->end - vdso->start : 0;

	if (!vvar || !vdso || vvar_size != h->vvar_size || vclock_size != h->vvar_vclock_size ||
	    vdso_size != h->vdso_size ||
	    (vclock && (vclock->start != vvar->end || vdso->start != vclock->end)) ||
	    (!vclock && vdso->start != vvar->end)) {
		crac_img_puts(&b, "vDSO layout differs: [vvar]/[vvar_vclock]/[vdso] are ");
		crac_img_putx(&b, vvar_size);
		crac_img_puts(&b, "/");
		crac_img_putx(&b, vclock_size);
		crac_img_puts(&b, "/");
		crac_img_putx(&b, vdso_size);
		crac_img_puts(&b, " bytes here, ");
		crac_img_putx(&b, h->vvar_size);
		crac_img_puts(&b, "/");
		crac_img_putx(&b, h->vvar_vclock_size);
		crac_img_puts(&b, "/");
		crac_img_putx(&b, h->vdso_size);
		crac_img_puts(&b, " in the image (kernel ");
		crac_img_puts(&b, h->kernel);
		crac_img_puts(&b, ")");
		die(1, msg_buf);
	}
	if (crac_img_crc32c(0, (const void *)(uintptr_t)vdso->start, vdso_size) != h->vdso_crc) {
		crac_img_puts(&b, "vDSO code differs from the image's (image taken on kernel ");
		crac_img_puts(&b, h->kernel);
		crac_img_puts(&b, "): glibc's cached vDSO entry points would be wrong");
		die(1, msg_buf);
	}
}

static void check_overlap(const struct crac_img_view *v, uint64_t lo, uint64_t hi)
{
	const struct crac_img_header *h = v->h;
	uint64_t block = h->vvar_size + h->vvar_vclock_size + h->vdso_size;

	for (uint32_t i = 0; i < h->n_maps; i++) {
		const struct crac_img_map *m = &v->maps[i];
		if (m->start < hi && m->end > lo) {
			struct crac_img_buf b = msg();
			crac_img_puts(&b, "mapping ");
			crac_img_putx(&b, m->start);
			crac_img_puts(&b, "-");
			crac_img_putx(&b, m->end);
			crac_img_puts(&b, " (");
			crac_img_puts(&b, m->name ? crac_img_str(v, m->name) : crac_img_kind_name(m->kind));
			crac_img_puts(&b, ") overlaps the restore loader at ");
			crac_img_putx(&b, lo);
			crac_img_puts(&b, "-");
			crac_img_putx(&b, hi);
			die(1, msg_buf);
		}
	}
	if (h->vdso_block < hi && h->vdso_block + block > lo)
		die(1, "the recorded vDSO address overlaps the restore loader");
}

/* Opens every mapped file and checks that it is the file the image saw. */
static void check_files(const struct crac_img_view *v)
{
	const struct crac_img_header *h = v->h;

	for (uint32_t i = 0; i < h->n_files; i++) {
		const struct crac_img_file *f = &v->files[i];
		const char *path = crac_img_str(v, f->path);
		int writable = 0;
		for (uint32_t k = 0; k < h->n_maps; k++)
			if (v->maps[k].file == i && (v->maps[k].flags & CRAC_MAPF_SHARED) &&
			    (v->maps[k].prot & PROT_WRITE))
				writable = 1;
		long fd = sys_openat(AT_FDCWD, path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
		struct crac_img_buf b = msg();
		if (fd < 0) {
			crac_img_puts(&b, "mapped file ");
			crac_img_puts(&b, path);
			put_err(&b, fd);
			die(1, msg_buf);
		}
		file_fd[i] = (int)fd;
		struct stat st;
		if (sys_fstat(fd, &st) < 0)
			die(1, "fstat of a mapped file failed");
		const char *what = 0;
		int64_t mtime = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
		if ((uint64_t)st.st_size != f->size)
			what = "its size";
		else if (mtime != f->mtime_ns)
			what = "its modification time";
		else if ((uint64_t)st.st_ino != f->ino || (uint64_t)st.st_dev != f->dev)
			what = "its inode (the file was replaced)";
		else if (st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec != f->ctime_ns)
			what = "its status change time (ctime)";
		if (!what) {
			static char page[P];
			long n = sys_pread(fd, page, P, 0);
			if (crac_img_crc32c(0, page, n > 0 ? (size_t)n : 0) != f->crc_head)
				what = "the content of its first page";
			uint64_t tail = f->size ? (f->size - 1) / P * P : 0;
			n = sys_pread(fd, page, P, tail);
			if (!what && crac_img_crc32c(0, page, n > 0 ? (size_t)n : 0) != f->crc_tail)
				what = "the content of its last page";
		}
		if (what) {
			crac_img_puts(&b, "file ");
			crac_img_puts(&b, path);
			crac_img_puts(&b, " changed since the checkpoint (");
			crac_img_puts(&b, what);
			crac_img_puts(&b, " differs)");
			die(1, msg_buf);
		}
	}
}

static void request_amx(const struct crac_img_header *h)
{
	if (!(h->cpu.xcomp_perm & (1ull << XFEATURE_XTILEDATA)))
		return;
	long rc = sys_arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA);
	if (rc < 0) {
		struct crac_img_buf b = msg();
		crac_img_puts(&b, "the image uses AMX but arch_prctl(ARCH_REQ_XCOMP_PERM) was refused");
		put_err(&b, rc);
		die(1, msg_buf);
	}
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
	crac_img_puts(&b, m->name ? crac_img_str(v, m->name) : crac_img_kind_name(m->kind));
	crac_img_puts(&b, ")");
	if (e)
		put_err(&b, e);
	die(1, msg_buf);
}

static void map_all(const struct crac_img_view *v, int pages_fd, int uffd, uint64_t *stored, uint64_t *mapped)
{
	const struct crac_img_header *h = v->h;

	for (uint32_t i = 0; i < h->n_maps; i++) {
		const struct crac_img_map *m = &v->maps[i];
		uint64_t len = m->end - m->start;
		int prot = (int)m->prot, flags = MAP_FIXED_NOREPLACE, fd = -1;
		uint64_t off = 0;

		if (m->kind >= CRAC_MAP_VVAR)
			continue;
		if (m->stored && !is_lazy[i])
			prot |= PROT_READ | PROT_WRITE;   /* to read the pages in */
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
		if (a < 0 || (uint64_t)a != m->start)
			fail_map(v, m, "cannot map", a < 0 ? a : -EEXIST);
		*mapped += len;
		if (is_lazy[i]) {
			long rc = lazy_register(uffd, m->start, len);
			if (rc < 0)
				fail_map(v, m, "userfaultfd cannot register", rc);
			continue;
		}

		for (uint32_t c = m->first_chunk; c < m->first_chunk + m->n_chunks; c++) {
			const struct crac_img_chunk *k = &v->chunks[c];
			long rc = read_full(pages_fd, (void *)(uintptr_t)k->addr, k->len, k->offset);
			if (rc < 0)
				fail_map(v, m, "cannot read the stored pages of", rc);
			if (crac_img_crc32c(0, (const void *)(uintptr_t)k->addr, k->len) != k->crc) {
				struct crac_img_buf b = msg();
				crac_img_put_damaged_chunk(&b, c, k, m->name ? crac_img_str(v, m->name)
									   : crac_img_kind_name(m->kind));
				die(1, msg_buf);
			}
			*stored += k->len;
		}
		if (prot != (int)m->prot) {
			long rc = sys_mprotect(m->start, len, m->prot);
			if (rc < 0)
				fail_map(v, m, "cannot set the protection of", rc);
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
			if (r->magic == CRAC_RESUME_MAGIC)
				return r;
			break;
		}
	}
	die(1, "the restored memory holds no libcrac resume block (image damaged)");
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(void)
{
	out(2, "usage: crac-loader [--populate | --lazy] [--stats] [--check] [--env K=V]... DIR [-- ARGS...]\n"
	       "(normally run by `crac restore DIR`)\n");
	sys_exit_group(2);
}

__attribute__((noreturn, used)) void loader_main(long *sp)
{
	uint64_t t0 = mono_ns();
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	int populate = 0, lazy = 0, stats = 0, check = 0, n_args = 0, n_env = 0;
	struct lazy_plan plan = { .uffd = -1, .mode = 0, .flags = 0 };
	size_t env_used = 0;
	const char *dir = 0;
	uint64_t full = ~0ull;

	/* 1. Nothing may interrupt us: the restored libcrac sets the mask. */
	sys_sigprocmask(SIG_SETMASK, &full, 0);
	for (char **e = envp; *e; e++)
		if (!memcmp(*e, "CRAC_IMAGE_STATS=", 17) && (*e)[17] && (*e)[17] != '0')
			stats = 1;
		else if (!strcmp(*e, "CRAC_LAZY_PREFETCH=off"))
			plan.flags |= CRAC_LAZY_NO_PREFETCH;
	int i = 1;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--populate")) populate = 1;
		else if (!strcmp(argv[i], "--lazy")) lazy = 1;
		else if (!strcmp(argv[i], "--stats")) stats = 1;
		else if (!strcmp(argv[i], "--check")) check = 1;
		else if (!strcmp(argv[i], "--env") && i + 1 < argc && n_env < MAX_NEW_ARGS) {
			const char *kv = argv[++i];
			size_t n = strlen(kv) + 1;
			const char *eq = kv;
			while (*eq && *eq != '=')
				eq++;
			if (*eq != '=' || eq == kv)
				die(2, "--env needs KEY=VALUE");
			if (env_used + n > sizeof(env_buf))
				die(2, "new environment too long");
			memcpy(env_buf + env_used, kv, n);
			new_envp[n_env++] = env_buf + env_used;
			env_used += n;
		}
		else if (!strcmp(argv[i], "--")) { i++; break; }
		else if (argv[i][0] == '-') usage();
		else if (!dir) dir = argv[i];
		else usage();
	}
	if (!dir || (lazy && populate))
		usage();
	/* New arguments: copied into our .bss, the kernel's stack goes away. */
	size_t used = 0;
	for (; i < argc && n_args < MAX_NEW_ARGS; i++) {
		size_t n = strlen(argv[i]) + 1;
		if (used + n > sizeof(args_buf))
			die(2, "new arguments too long");
		memcpy(args_buf + used, argv[i], n);
		new_argv[n_args++] = args_buf + used;
		used += n;
	}
	static char dir_copy[4096];
	if (strlen(dir) >= sizeof(dir_copy))
		die(2, "image directory name too long");
	memcpy(dir_copy, dir, strlen(dir) + 1);
	image_dir = dir_copy;

	/* 2. Verify. */
	long dfd = sys_openat(AT_FDCWD, image_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		struct crac_img_buf b = msg();
		crac_img_puts(&b, "cannot open the image directory");
		put_err(&b, dfd);
		die(1, msg_buf);
	}
	long hfd = sys_openat(dfd, CRAC_IMG_HEADER_FILE, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (hfd < 0 || sys_fstat(hfd, &st) < 0)
		die(1, "cannot open the header file");
	if ((uint64_t)st.st_size > sizeof(header_buf))
		die(1, "header too large for the loader");
	if (read_full((int)hfd, header_buf, (uint64_t)st.st_size, 0) < 0)
		die(1, "cannot read the header file");
	sys_close(hfd);

	struct crac_img_view v;
	char why[512];
	if (crac_img_parse(header_buf, (uint64_t)st.st_size, &v, why, sizeof(why)) < 0)
		die(1, why);
	const struct crac_img_header *h = v.h;

	long pfd = sys_openat(dfd, CRAC_IMG_PAGES_FILE, O_RDONLY | O_CLOEXEC);
	if (pfd < 0 || sys_fstat(pfd, &st) < 0)
		die(1, "cannot open the pages file");
	if ((uint64_t)st.st_size != h->pages_size)
		die(1, "page data is truncated or damaged (pages file size differs from the header)");

	check_cpu(h);
	read_own_maps();
	check_vdso(h);
	uint64_t lo = (uint64_t)(uintptr_t)__executable_start & ~(P - 1);
	uint64_t hi = ((uint64_t)(uintptr_t)_end + P - 1) & ~(P - 1);
	check_overlap(&v, lo, hi);
	check_files(&v);
	request_amx(h);
	if (check) {
		out(1, "image ok\n");
		sys_exit_group(0);
	}
	/* Lazy or eager: decided here, before anything changes. */
	uint32_t n_lazy = 0;
	if (populate)
		plan.mode = CRAC_LAZY_OFF_POPULATE;
	else
		for (uint32_t k = 0; k < h->n_maps; k++)
			n_lazy += (is_lazy[k] = crac_img_lazy_candidate(&v.maps[k], h->resume));
	if (!populate && n_lazy && (plan.uffd = lazy_open(&plan.mode)) < 0)
		memset(is_lazy, 0, sizeof(is_lazy));
	if (!populate && !n_lazy)
		plan.mode = CRAC_LAZY_OFF_SMALL;
	if (lazy && plan.uffd < 0) {
		struct crac_img_buf b = msg();
		crac_img_puts(&b, "--lazy: ");
		crac_img_puts(&b, crac_img_lazy_why((uint32_t)plan.mode));
		die(1, msg_buf);
	}
	if (stats)
		plan.flags |= CRAC_LOADER_STATS;

	/* -- point of no return -- */
	const struct own_map *vvar = own_find("[vvar]");
	uint64_t block = h->vvar_size + h->vvar_vclock_size + h->vdso_size;
	/* 3. */
	unmap_foreign(lo, hi, vvar->start, vvar->start + block);
	/* 4. */
	move_vdso(h, vvar->start);
	/* 5. */
	uint64_t stored = 0, mapped = 0;
	map_all(&v, (int)pfd, plan.uffd, &stored, &mapped);
	/* 6. */
	set_mm(h);

	/* 7. */
	struct crac_img_resume *res = find_resume(&v);
	res->loader_lo = lo;
	res->loader_hi = hi;
	res->loader_start_ns = t0;
	res->loader_flags = (populate ? CRAC_LOADER_POPULATE : 0) | (stats ? CRAC_LOADER_STATS : 0);
	res->argc = (uint64_t)n_args;
	res->argv = n_args ? (uint64_t)(uintptr_t)new_argv : 0;
	res->envc = (uint64_t)n_env;
	res->envp = n_env ? (uint64_t)(uintptr_t)new_envp : 0;
	res->stored = stored;
	res->mapped = mapped;
	res->lazy_mode = (uint32_t)plan.mode;
	if (plan.uffd >= 0) {
		long rc = lazy_start(&plan, &v, is_lazy, res, (int)pfd, image_dir, mono_ns());
		if (rc < 0) {
			struct crac_img_buf b = msg();
			crac_img_puts(&b, "cannot start the lazy loader thread");
			put_err(&b, rc);
			die(1, msg_buf);
		}
		sys_close(plan.uffd);   /* the thread has its own copy */
	}
	for (uint32_t f = 0; f < h->n_files; f++)
		sys_close(file_fd[f]);
	sys_close(pfd);
	sys_close(dfd);
	res->loader_done_ns = mono_ns();

	sys_arch_prctl(ARCH_SET_FS, res->ctx.fs_base);
	crac_loader_jump(&res->ctx, 1);
}
