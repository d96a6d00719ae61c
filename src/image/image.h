/* SPDX-License-Identifier: MIT */
/*
 * image.h - the on-disk image format of the image engine, shared by the
 * engine (writer), the restore loader (reader) and `crac inspect`.
 *
 * An image is a directory holding two files:
 *
 *   header   one struct crac_img_header, then arrays (maps, files, chunks,
 *            threads) and a string table; crc32c over the whole file.
 *   pages    page data, every chunk page-aligned so the loader can pread or
 *            mmap it; a crc32c per chunk is kept in the header.
 *
 * The format is native x86-64 little-endian: the structs below ARE the file
 * layout (sizes pinned by static asserts). The first 24 bytes (magic,
 * version, crc, size) never change between versions, so any version can
 * be recognised and refused clearly.
 *
 * This header and format.c are freestanding: they use no libc beyond
 * memcpy/memset/memcmp/strlen, because the static loader links no libc.
 */
#ifndef CRAC_IMAGE_H
#define CRAC_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal to libcrac (and the loader): never exported from the .so. */
#pragma GCC visibility push(hidden)

/* Helpers the lazy loader thread calls (engines/image_lazy.c): never
 * sanitizer-instrumented, since shadow memory may not be loaded yet. */
#define CRAC_IMG_NOSAN __attribute__((no_sanitize("address", "undefined")))

#define CRAC_IMG_MAGIC "CRACIMG\0"
#define CRAC_IMG_VERSION 6   /* 2: lazy-restore fields in the resume block; 3: descriptors; 4: incremental;
			      * 5: compressed chunks (crac_img_chunk.zlen); 6: pending signals */
#define CRAC_IMG_VERSION_MIN 4   /* the oldest version this build still reads (same layout, no zlen) */
#define CRAC_IMG_PAGE 4096ull

#define CRAC_IMG_HEADER_FILE "header"
#define CRAC_IMG_PAGES_FILE "pages"

/* Limits that keep a corrupt header from making the reader loop or overflow. */
#define CRAC_IMG_MAX_MAPS 65536u
#define CRAC_IMG_MAX_FILES 4096u
#define CRAC_IMG_MAX_THREADS 16384u
#define CRAC_IMG_MAX_CHUNKS (1u << 24)
#define CRAC_IMG_MAX_HEADER (1ull << 30)
#define CRAC_IMG_CHUNK_MAX (1ull << 20)   /* a chunk holds at most 1 MiB of pages */
/*
 * A chunk is what a restore reads and verifies before it places any page
 * of it, so a lazy restore's first fault in a chunk waits for all of it.
 * The checkpoint cuts the pages of a mapping smaller than
 * CRAC_IMG_CHUNK_SMALL_MAP into chunks of at most CRAC_IMG_CHUNK_SMALL
 * (an interpreter's arenas, a server's heap: touched here and there by the
 * first request), a larger mapping's into chunks of CRAC_IMG_CHUNK_MAX
 * (a big heap, loaded whole in the background: fewer reads per byte), and
 * every chunk of a compressed image too (one zstd frame each: larger
 * frames compress better). Measured on python3 with heavy imports (23 MiB
 * stored in 30 mappings): the restore's CPU time to its first answer fell
 * from 14.2 to 9.7 ms with 128 KiB chunks (medians of 14 runs here).
 */
#define CRAC_IMG_CHUNK_SMALL (128u << 10)
#define CRAC_IMG_CHUNK_SMALL_MAP (64ull << 20)

/*
 * The restore loader (src/loader) runs at a fixed address and stays there
 * until the restored process is running, so no restored mapping may lie in
 * [CRAC_IMG_LOADER_LO, CRAC_IMG_LOADER_HI): the checkpoint refuses such a
 * process before it writes anything (image/check.c, CRAC_CHECK_LAYOUT).
 * The range is far from where Linux puts programs (0x55..., 0x7f...) and
 * outside AddressSanitizer's shadow (0x00007fff8000-0x10007fff7fff) and
 * allocator (0x600000000000-0x640000000000). The loader's build asserts
 * that it fits.
 */
#define CRAC_IMG_LOADER_LO 0x500000000000ull
#define CRAC_IMG_LOADER_HI (CRAC_IMG_LOADER_LO + (256ull << 20))

/* ---- CPU ------------------------------------------------------------- */

/*
 * Feature words compared at restore: every bit set at checkpoint must be set
 * on the restoring CPU (glibc's IFUNC choices and the XSAVE layout are baked
 * into the image). Indexes into crac_img_cpu.words.
 */
enum {
	CRAC_CPU_1_ECX,     /* cpuid(1).ecx: sse3, ssse3, sse4.1/4.2, popcnt, aes, xsave, avx, ... */
	CRAC_CPU_1_EDX,     /* cpuid(1).edx: sse, sse2, ... */
	CRAC_CPU_7_0_EBX,   /* cpuid(7,0).ebx: avx2, bmi1/2, avx512f/dq/cd/bw/vl, sha, ... */
	CRAC_CPU_7_0_ECX,   /* cpuid(7,0).ecx: avx512vbmi, vaes, gfni, ... */
	CRAC_CPU_7_0_EDX,   /* cpuid(7,0).edx: amx-bf16/tile/int8, avx512fp16, ... */
	CRAC_CPU_7_1_EAX,   /* cpuid(7,1).eax: avx-vnni, avx512bf16, ... */
	CRAC_CPU_D_1_EAX,   /* cpuid(0xd,1).eax: xsaveopt, xsavec, xgetbv1, xsaves */
	CRAC_CPU_81_ECX,    /* cpuid(0x80000001).ecx: lzcnt, ... */
	CRAC_CPU_81_EDX,    /* cpuid(0x80000001).edx: ... */
	CRAC_CPU_WORDS
};

struct crac_img_cpu {
	char vendor[16];             /* "GenuineIntel", NUL-padded */
	uint32_t words[CRAC_CPU_WORDS];
	uint32_t xsave_size;         /* cpuid(0xd,0).ebx: XSAVE area for the enabled XCR0 */
	uint64_t xcr0;               /* xgetbv(0): state components the OS enabled */
	uint64_t xcomp_perm;         /* arch_prctl(ARCH_GET_XCOMP_PERM) of the process */
};

/* Fills *c from the running CPU (cpuid, xgetbv; xcomp_perm left 0). */
void crac_img_cpu_probe(struct crac_img_cpu *c);

/*
 * Compares the recorded CPU `want` with the running one `have`. Returns 0 if
 * every recorded feature is present, else -1 and a one-line description of
 * the first difference in msg ("CPU lacks avx512f (cpuid 7.ebx bit 16)").
 */
int crac_img_cpu_compare(const struct crac_img_cpu *want, const struct crac_img_cpu *have,
			 char *msg, size_t msglen);

/* ---- the header -------------------------------------------------------- */

/* struct crac_img_map.kind */
enum crac_img_kind {
	CRAC_MAP_ANON = 1,        /* private anonymous (incl. thread stacks) */
	CRAC_MAP_HEAP = 2,        /* [heap]: the brk area */
	CRAC_MAP_STACK = 3,       /* [stack]: the main stack (grows down) */
	CRAC_MAP_FILE = 4,        /* file-backed (private or shared) */
	CRAC_MAP_SHMEM = 5,       /* shared anonymous / memfd: content stored, sharing lost */
	CRAC_MAP_VVAR = 6,        /* [vvar]: recorded, not stored */
	CRAC_MAP_VVAR_VCLOCK = 7, /* [vvar_vclock] */
	CRAC_MAP_VDSO = 8,        /* [vdso] */
};

/* struct crac_img_map.flags */
#define CRAC_MAPF_SHARED 0x1u     /* MAP_SHARED (else private) */
#define CRAC_MAPF_NORESERVE 0x2u  /* map with MAP_NORESERVE (PROT_NONE reservations) */
#define CRAC_MAPF_REFS 0x4u       /* some of its pages come from ancestor images (struct crac_img_ref) */

struct crac_img_map {
	uint64_t start, end;         /* [start, end), page-aligned */
	uint64_t offset;             /* file offset (FILE) */
	uint32_t prot;               /* PROT_* */
	uint32_t flags;              /* CRAC_MAPF_* */
	uint32_t kind;               /* enum crac_img_kind */
	uint32_t file;               /* index into the files array (FILE), else UINT32_MAX */
	uint32_t name;               /* strtab offset of the name as in /proc/self/maps (0: none) */
	uint32_t first_chunk;        /* this mapping's chunks: [first_chunk, first_chunk + n_chunks) */
	uint32_t n_chunks;
	uint32_t pad;
	uint64_t stored;             /* bytes stored in the pages file */
};

/*
 * A file that mappings come from, with what identifies it: restore refuses
 * if any of these differ (the clean pages are read back from this file).
 */
struct crac_img_file {
	uint32_t path;               /* strtab offset */
	uint32_t crc_head;           /* crc32c of the first page (or less) */
	uint32_t crc_tail;           /* crc32c of the last page */
	uint32_t pad;
	uint64_t dev, ino, size;
	int64_t mtime_ns;
	int64_t ctime_ns;            /* status change: moves on any write, cannot be set back */
};

/*
 * A run of stored pages: `len` bytes at virtual address `addr`, stored at
 * `offset` (page-aligned) in the pages file: as they are when zlen is 0,
 * else as one zstd frame of zlen bytes (zlen < len) that decompresses to
 * exactly len bytes (`crac checkpoint --compress`; version 5). The crc is
 * that of the memory, uncompressed, so every reader checks what the
 * program gets. (Up to version 4, len was a 64-bit field: zlen is its high
 * half, always 0 there since a chunk holds at most CRAC_IMG_CHUNK_MAX.)
 */
struct crac_img_chunk {
	uint64_t addr;
	uint64_t offset;
	uint32_t len;                /* bytes of memory, whole pages, <= CRAC_IMG_CHUNK_MAX */
	uint32_t zlen;               /* 0: stored as is; else the compressed frame's size */
	uint32_t crc;                /* crc32c of the (uncompressed) data */
	uint32_t map;                /* index of its mapping */
};

/* Bytes chunk k takes in the pages file (before the padding to a page). */
static inline uint64_t crac_img_chunk_stored(const struct crac_img_chunk *k)
{
	return k->zlen ? k->zlen : k->len;
}

/*
 * Reads chunk k of a pages file (fd) into dst (k->len bytes): pread of
 * the stored bytes, decompressed if the chunk is compressed (through zbuf,
 * zcap bytes, and the zstd context dctx made by crac_img_zstd_dctx), size
 * and crc32c checked (crc with the caller's table: crac_img_crc32c_prepare).
 * Raw system calls only, no allocation: the loader, the lazy loader thread
 * and the checkpoint's read-back all read chunks through it
 * (image/chunk.c). Returns 0, a negative errno from pread, or a
 * CRAC_CHUNK_* reason.
 */
struct crac_img_crc;
enum {
	CRAC_CHUNK_CRC = 1,          /* the crc32c does not match: damaged */
	CRAC_CHUNK_SHORT = 2,        /* the file ends inside the chunk: truncated */
	CRAC_CHUNK_FRAME = 3,        /* not a zstd frame of exactly len bytes: damaged */
	CRAC_CHUNK_NO_ZSTD = 4,      /* compressed, and this build has no zstd */
	CRAC_CHUNK_ZBUF = 5,         /* the frame is larger than zbuf */
};
long crac_img_chunk_read(int fd, const struct crac_img_chunk *k, void *dst, void *zbuf, uint64_t zcap,
			 void *dctx, const struct crac_img_crc *crc);
/* What a CRAC_CHUNK_* reason means ("page data checksum mismatch", ...). */
const char *crac_img_chunk_why(long rc);
/* Bytes a decompression context needs (0: built without zstd), and one
 * made in mem (that many bytes, 8-aligned): NULL if mem is too small. */
uint64_t crac_img_zstd_dctx_size(void);
void *crac_img_zstd_dctx(void *mem, uint64_t size);
/* Whether this build has zstd (`crac checkpoint --compress`). */
bool crac_img_have_zstd(void);

/*
 * Writing compressed chunks (image/compress.c: libcrac only, never the
 * loader): the image engine's --compress and `crac flatten --compress`.
 * A chunk is compressed into one or more zstd frames (of its parts, in
 * order), padded to a page; it is stored so only if that saves a page.
 */
#define CRAC_IMG_ZSTD_LEVEL 1        /* the default: the fastest, most of the gain on page data */
#define CRAC_IMG_ZSTD_MAX_LEVEL 19   /* above, contexts take hundreds of MiB */
/* Bytes a compression context for chunks at `level` needs (64-byte
 * alignment included; 0: built without zstd), and one made in mem (that
 * many bytes; libzstd then never allocates): NULL if mem is too small. */
uint64_t crac_img_zstd_cctx_size(int level);
void *crac_img_zstd_cctx(void *mem, uint64_t size, int level);
/* Room the frames of a chunk of len bytes may take, up to two frames,
 * padding included. */
uint64_t crac_img_zstd_bound(uint64_t len);
/* One frame of src (len bytes) at out (cap bytes): its size, 0 on error. */
uint64_t crac_img_zstd_frame(void *cctx, int level, void *out, uint64_t cap, const void *src, uint64_t len);
/* Chunk k (k->len bytes of memory) as the n bytes of frames at `frames`
 * (room for crac_img_zstd_bound(k->len)): pads them with zeros to a page
 * and sets k->zlen. Returns the bytes to write, or 0 (k unchanged) if
 * that saves no page: the chunk is then stored as it is. */
uint64_t crac_img_chunk_pack(struct crac_img_chunk *k, void *frames, uint64_t n);

/* A thread, for inspection (the restored libcrac keeps its own records). */
struct crac_img_thread {
	int32_t tid;
	uint32_t flags;              /* CRAC_THREADF_* */
	uint64_t fs_base;
	uint64_t sp, ip;             /* where it stopped (its saved context) */
	uint64_t tid_addr;           /* PR_GET_TID_ADDRESS (glibc: &pd->tid) */
	uint64_t robust_head, robust_len;
	uint64_t rseq;               /* registered rseq area (0: none) */
	uint64_t sigmask;
	char comm[16];
};
#define CRAC_THREADF_CHECKPOINTER 0x1u  /* the thread that ran the checkpoint */

/*
 * A signal that was pending at the checkpoint (blocked, or not yet taken),
 * with its siginfo as the kernel gave it (rt_sigtimedwait): thread-directed
 * ones under the thread's tid at the checkpoint, process-wide ones under
 * tid 0, each thread's and the process's in the order they were queued
 * (every instance of a real-time signal, one of a standard signal). For
 * inspection: the restored libcrac queues its own copy of them again
 * (engines/image_signals.c), as it recreates threads from its own records.
 */
struct crac_img_signal {
	int32_t tid;                 /* 0: the process */
	uint32_t signo;              /* 1..64, never SIGKILL or SIGSTOP */
	int32_t code;                /* si_code (SI_USER, SI_QUEUE, SI_TKILL, SI_TIMER, ...) */
	uint32_t pad;
	uint8_t info[128];           /* the siginfo_t */
};
#define CRAC_IMG_MAX_SIGNALS 1024u

/* One signal's disposition, as the kernel's struct sigaction. */
struct crac_img_sigaction {
	uint64_t handler, flags, restorer, mask;
};

/* The mm fields set with PR_SET_MM_MAP (layout of struct prctl_mm_map). */
struct crac_img_mm {
	uint64_t start_code, end_code, start_data, end_data;
	uint64_t start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
	uint64_t auxv[64];           /* /proc/self/auxv */
	uint32_t auxv_size;          /* bytes */
	uint32_t pad;
};

#define CRAC_IMG_NSIG 64
#define CRAC_IMG_NRLIMIT 16

struct crac_img_header {
	/* --- stable prefix: same in every version --- */
	char magic[8];
	uint32_t version;
	uint32_t crc;                /* crc32c of the whole file, this field read as 0 */
	uint64_t size;               /* size of the header file */
	/* --- version 1 --- */
	uint64_t pages_size;         /* size of the pages file */
	int64_t created_ns;          /* CLOCK_REALTIME at checkpoint */
	char kernel[72];             /* uname release */
	char machine[16];            /* uname machine */
	struct crac_img_cpu cpu;

	/* [vvar][vvar_vclock][vdso]: one block, moved as one at restore */
	uint64_t vdso_block;         /* start of [vvar] */
	uint64_t vvar_size, vvar_vclock_size, vdso_size;
	uint32_t vdso_crc;           /* crc32c of the [vdso] bytes: same kernel build */
	uint32_t pad0;

	int32_t pid, tid;            /* of the checkpointed process / thread */
	uint32_t umask;
	uint32_t cwd;                /* strtab offset */
	uint64_t resume;             /* address of the restored libcrac's resume block */
	struct crac_img_mm mm;
	uint64_t rlimit[CRAC_IMG_NRLIMIT][2];
	struct crac_img_sigaction sig[CRAC_IMG_NSIG];  /* index = signal - 1 */

	uint32_t n_maps, n_files, n_chunks, n_threads;
	uint64_t maps_off, files_off, chunks_off, threads_off;
	uint64_t strtab_off, strtab_size;
	uint64_t stored;             /* total bytes of page data */
	uint32_t n_secrets;          /* crac_secret_region()s, written as zeros */
	uint32_t pad1;
	uint64_t secrets_off;        /* array of struct crac_img_range */
	int64_t monotonic_ns;        /* CLOCK_MONOTONIC at checkpoint (`restore --timens`) */
	int64_t boottime_ns;         /* CLOCK_BOOTTIME at checkpoint */
	/* --- version 3: descriptors carried across the restore (objects/) --- */
	uint32_t n_fds;              /* struct crac_img_fd[n_fds] at fds_off, by fd number */
	uint32_t pad2;
	uint64_t fds_off;
	uint64_t blobs_off, blobs_size;   /* kind-specific data of the descriptors */
	/* --- version 4: incremental images (see struct crac_img_ref) --- */
	uint32_t parent;             /* strtab: the parent image's directory, relative to this
				      * image's directory unless absolute; 0: a full image */
	uint32_t parent_crc;         /* the parent's header crc: its identity */
	int64_t parent_created_ns;   /* its created_ns ... */
	uint64_t parent_pages_size;  /* ... and pages_size (said in messages) */
	uint32_t depth;              /* images below this one: 0 full, parent's depth + 1 */
	uint32_t n_refs;             /* struct crac_img_ref[n_refs] at refs_off, sorted by address */
	uint64_t refs_off;
	uint32_t img_flags;          /* CRAC_IMGF_* */
	uint32_t seccomp_filters;    /* the seccomp filters the checkpointing thread ran under: a restore
				      * under fewer is refused (image/check.c). 0 in images before it was
				      * recorded (this was padding, always 0) */
	/* --- version 6: signals pending at the checkpoint (struct crac_img_signal). A header of
	 * version 5 or 4 ends before these fields (CRAC_IMG_HEADER_V5_SIZE): read them through
	 * struct crac_img_view, never from the header of an image of unknown version. --- */
	uint32_t n_signals;          /* struct crac_img_signal[n_signals] at signals_off */
	uint32_t pad3;
	uint64_t signals_off;
};
/* The size of a header of version 4 or 5 (which ends with seccomp_filters). */
#define CRAC_IMG_HEADER_V5_SIZE offsetof(struct crac_img_header, n_signals)
#define CRAC_IMGF_TRACK 0x1u         /* made with incremental checkpoints asked for: the restored
				      * process tracks the pages it writes (userfaultfd write-protect) */
#define CRAC_IMGF_COMPRESSED 0x2u    /* version 5: some chunks are zstd frames (crac_img_chunk.zlen) */
#define CRAC_IMG_MAX_CHAIN 8u        /* images below an incremental one, at most */
#define CRAC_IMG_MAX_REFS (1u << 24)

/*
 * Incremental images. A process restored from image P, or checkpointed
 * into P with keep-running, tracks the pages it writes (engines/
 * image_track.c). Its next checkpoint with incremental checkpoints asked
 * for stores only the pages written since P; a page not written since
 * holds what P holds, so it is a reference: [addr, addr + len) takes its
 * bytes from chunk `chunk` of the image `depth` levels below (1: the
 * parent, 2: its parent...), at the same address. References always name
 * the image that stored the bytes, so a restore reads each page from one
 * file. The restore verifies the whole chain first (each image's identity
 * as its child recorded it, owner, size; every reference inside the chunk
 * it names), reads every referenced chunk whole (its crc checked), then
 * the image's own chunks; what neither covers reads as zero. Only private
 * anonymous memory (anon, heap, stack) has references.
 */
struct crac_img_ref {
	uint64_t addr, len;
	uint32_t depth;              /* 1 .. header depth */
	uint32_t chunk;              /* index in that image's chunk table */
	uint32_t map;                /* index of the mapping of this image it lies in */
	uint32_t pad;
};

/*
 * A descriptor the restored process gets back at the same number, before
 * any of its threads runs (DESIGN §7; one file per kind in src/objects/,
 * which says what the kind-specific words mean).
 */
struct crac_img_fd {
	int32_t fd;                  /* the descriptor number (3 and up) */
	uint32_t kind;               /* CRAC_OBJ_* (objects/objects.h) */
	uint32_t flags;              /* file status flags (O_ACCMODE, O_APPEND, O_NONBLOCK, ...) */
	uint32_t fd_flags;           /* FD_CLOEXEC */
	uint32_t same_as;            /* an earlier entry for the same open file (dup), else UINT32_MAX */
	uint32_t path;               /* strtab offset: path of a file, directory, device, FIFO; 0: none */
	uint64_t obj;                /* the object's inode: the ends of one pipe or socket pair share it */
	uint64_t data_off, data_len; /* content in the pages file (pipe, memfd), after the page chunks */
	uint32_t data_crc;           /* crc32c of that content */
	uint32_t blob_len;           /* kind-specific bytes at blob_off in the blob area */
	uint64_t blob_off;
	uint64_t u[8];               /* kind-specific words */
};
#define CRAC_IMG_MAX_FDS 65536u
#define CRAC_IMG_NO_FD 0xffffffffu   /* crac_img_fd.same_as: none */

/* An address range [start, end) (secret regions). */
struct crac_img_range {
	uint64_t start, end;
};
#define CRAC_IMG_MAX_SECRETS 65536u

/* ---- the resume block ---------------------------------------------------- */

/*
 * Saved callee-saved registers of a thread (crac__img_setctx / jumpctx and
 * the loader's copy). Offsets are used by assembly: keep them.
 */
struct crac_img_ctx {
	uint64_t rbx, rbp, r12, r13, r14, r15;  /* 0 .. 40 */
	uint64_t rsp;                            /* 48 */
	uint64_t rip;                            /* 56 */
	uint32_t mxcsr;                          /* 64 */
	uint16_t fcw;                            /* 68 */
	uint16_t pad;
	uint64_t fs_base;                        /* 72 */
};

#define CRAC_RESUME_MAGIC 0x43524143526573ull  /* "CRACRes" */

/*
 * The hand-over between the loader and the libcrac it jumps into. That
 * libcrac is the one in the image, linked into the program when it was
 * checkpointed: it may be older or newer than the loader (the crac that
 * restores). They share this block (the loader fills it, the restored
 * libcrac reads it), the lazy area (struct crac_img_lazy: the loader makes
 * it, the restored libcrac's lazy loader thread runs on it) and what that
 * thread can read (chains of images, compressed chunks). CRAC_RESUME_ABI
 * numbers that contract: raised at any change of either side. It is the
 * top byte of the block's magic (a place no layout change moves):
 * crac__img_self.resume.magic = CRAC_RESUME_MAGIC_ABI(CRAC_RESUME_ABI).
 * The loader restores only an image whose libcrac speaks its own number,
 * and says so before the point of no return (image/check.c); 0 is a
 * libcrac from before the number, and a loader from before it refuses a
 * numbered block as not a resume block at all.
 */
#define CRAC_RESUME_ABI 1u
#define CRAC_RESUME_MAGIC_ABI(abi) (CRAC_RESUME_MAGIC | (uint64_t)(abi) << 56)
#define CRAC_RESUME_ABI_OF(magic) ((uint32_t)((magic) >> 56))
/* Whether magic is a resume block's, of any ABI. */
#define CRAC_RESUME_IS_MAGIC(magic) (((magic) & 0x00ffffffffffffffull) == CRAC_RESUME_MAGIC)

/*
 * Lives in the restored libcrac's memory (its address is header.resume).
 * The engine fills `ctx` before the memory is written; the loader fills the
 * loader_* fields after mapping the image and jumps to ctx.
 */
struct crac_img_resume {
	uint64_t magic;
	struct crac_img_ctx ctx;
	/* written by the loader */
	uint64_t loader_lo, loader_hi;   /* unmap once restored */
	uint64_t loader_start_ns;        /* CLOCK_MONOTONIC when the loader started */
	uint64_t loader_done_ns;         /* ... when it jumped */
	uint64_t loader_flags;           /* CRAC_LOADER_* */
	uint64_t argc;                   /* new args (`crac restore DIR -- ARGS`) */
	uint64_t argv;                   /* char ** in the loader's memory (copy before unmapping) */
	uint64_t stored, mapped;         /* bytes read from the pages file / mapped */
	uint64_t envc;                   /* new environment (`crac restore --env K=V`) */
	uint64_t envp;                   /* char ** in the loader's memory, like argv */
	/* lazy restore (see struct crac_img_lazy) */
	uint64_t lazy_entry;             /* engine: address of crac__img_lazy_main; once the thread
					  * serves on (CRAC_LAZY_STATE_LOADED): its doorbell page, or 0 */
	uint64_t lazy_bytes;             /* loader: bytes left to the lazy loader */
	uint32_t lazy_tid;               /* its thread (cleared by the kernel when it exits) */
	uint32_t lazy_pid;               /* the process it serves */
	uint32_t lazy_mode;              /* CRAC_LAZY_* : lazy, or why restore was eager */
	uint32_t lazy_hurry;             /* set by crac__img_lazy_finish: prefetch now */
	uint32_t lazy_started;           /* who left the loader's code: CRAC_LOADER_OUT_* */
	uint32_t lazy_go;                /* set once the process is restored: prefetch may start */
	/* the image restored (incremental checkpoints: image_track.c) */
	uint64_t image_dir;              /* loader: its absolute path (char *, loader's memory: copy it) */
	uint32_t image_crc;              /* its header crc */
	uint32_t image_depth;            /* its header depth */
	uint64_t image_pages_size;
	int64_t image_created_ns;
	uint32_t image_flags;            /* its header img_flags (CRAC_IMGF_TRACK) */
	uint32_t lazy_state;             /* CRAC_LAZY_TRACK: CRAC_LAZY_STATE_* (0 from a loader before it) */
};
/* resume.lazy_state, when the lazy loader also tracks writes (CRAC_LAZY_TRACK) */
enum {
	CRAC_LAZY_STATE_LOADING = 0,  /* pages are still to load */
	CRAC_LAZY_STATE_LOADED,       /* every page is in; the thread still serves faults and events */
	CRAC_LAZY_STATE_LEAVE,        /* asked by the stopped process (img_lazy_handover): close and exit */
};
#define CRAC_LOADER_POPULATE 0x1u
#define CRAC_LOADER_STATS 0x2u

/* resume.lazy_mode */
enum {
	CRAC_LAZY_ON = 1,            /* some mappings are loaded lazily */
	CRAC_LAZY_OFF_POPULATE,      /* --populate */
	CRAC_LAZY_OFF_PRIVILEGE,     /* no userfaultfd that handles kernel faults */
	CRAC_LAZY_OFF_KERNEL,        /* userfaultfd lacks a needed feature */
	CRAC_LAZY_OFF_SMALL,         /* no mapping large enough to be worth it */
	CRAC_LAZY_OFF_WALKED,        /* the working set: the program walks its lazy mappings at once */
};

/*
 * Lazy restore. Large anonymous mappings are not read by the loader: it maps
 * them empty and registers them with userfaultfd (missing mode). A thread of
 * the restored process (crac__img_lazy_main, in libcrac) then fills them:
 * on demand when the program touches a page, and in the background until
 * everything is in. A chunk is read whole (pread) into a buffer of the
 * thread, its crc checked there, and pages are copied only from that
 * buffer (which keeps the last few chunks): only verified bytes become
 * visible, even if the pages file changes meanwhile (it is never mapped).
 * The loader hands over one anonymous mapping, the "lazy area": this
 * struct, the segment table and the per-chunk table, the chunk buffer,
 * then the thread's stack. The thread has its own file table (clone
 * without CLONE_FILES), holding the userfaultfd and the pages file: the
 * program never sees them.
 */
/* A mapping is loaded lazily from this many stored bytes on: below, reading
 * it costs less than the faults it would take. */
#define CRAC_IMG_LAZY_MIN (1ull << 20)

/* Whether mapping m is left to the lazy loader (when lazy restore is
 * possible): private anonymous read-write memory with at least
 * CRAC_IMG_LAZY_MIN stored bytes, not holding the resume block. */
bool crac_img_lazy_candidate(const struct crac_img_map *m, uint64_t resume);

/*
 * Whether the loader fills mapping m lazily (where userfaultfd allows):
 * crac_img_lazy_candidate with `below` (the bytes it takes from the images
 * below an incremental image, by references) counted as stored, since the
 * lazy thread reads those pages from their pages files too; and with
 * `small`, the same kind of private read-write anonymous mapping with any
 * byte stored, as if it were large: thread stacks and malloc arenas the
 * program may not touch before its first answer. A small [heap] stays
 * eager: the first malloc touches it anyway. The one rule for the loader
 * (plan_lazy) and `crac inspect` (its "L" column).
 */
bool crac_img_lazy_pick(const struct crac_img_map *m, uint64_t below, uint64_t resume, bool small);
/* Under this many bytes picked in all (stored and taken from below), a
 * restore is eager: a lazy one's fixed costs exceed filling that much
 * (the loader's lazy_too_little; `crac inspect` shows no "L" then). */
#define CRAC_IMG_LAZY_TOTAL_MIN (4ull << 20)

/* What a CRAC_LAZY_* mode means, in one line. */
const char *crac_img_lazy_why(uint32_t mode);

/* resume.lazy_started: the restored program's thread and the lazy thread
 * each set their bit once out of the loader's code; the one that finds the
 * other's bit set unmaps the loader (neither waits for the other). */
#define CRAC_LOADER_OUT_LAZY 1u
#define CRAC_LOADER_OUT_MAIN 2u
#define CRAC_LAZY_MAGIC 0x797a614c43415243ull   /* "CRACLazy" */
/* The loader makes this area for the restored libcrac's thread: any change
 * to it, or to what that thread must be able to read, raises
 * CRAC_RESUME_ABI. */

/* A run of lazily loaded pages: [addr, addr + len) holds pages file bytes
 * [off, off + len), all inside chunk `chunk`. */
struct crac_img_lazy_seg {
	uint64_t addr, len, off;
	uint32_t chunk, pad;
};

struct crac_img_lazy {
	uint64_t magic;
	uint64_t area_size;              /* the whole area, unmapped by the thread at its end */
	int32_t uffd;                    /* in the thread's own file table */
	int32_t err_fd;                  /* stderr, for the one fatal message */
	uint32_t flags;                  /* CRAC_LOADER_STATS, CRAC_LAZY_NO_PREFETCH */
	uint32_t n_segs;
	uint64_t segs_off;               /* struct crac_img_lazy_seg[n_segs], sorted by addr */
	uint64_t n_chunks;               /* chunks of the image (struct crac_img_chunk[]) */
	uint64_t chunks_off;
	int32_t pages_fd;                /* the pages file (read with pread, never mapped) */
	uint32_t buf_slots;              /* the chunk buffer: this many slots ... */
	uint64_t pages_size;             /* its size, from the header */
	uint64_t buf_off, buf_size;      /* ... of buf_size bytes (>= the largest lazy chunk) */
	uint64_t resume;                 /* the resume block (lazy_tid, lazy_hurry) */
	uint64_t jump_ns;                /* CLOCK_MONOTONIC when the loader jumped */
	uint64_t stack_off, stack_size;  /* the thread's stack inside the area */
	uint64_t tls_off;                /* a page for its thread pointer */
	/* Compressed images (CRAC_IMGF_COMPRESSED): the offsets in the chunk
	 * table and the segments are then those the chunks would have
	 * uncompressed (pages_size: their sum), which the thread counts pages
	 * by; the real ones are here. */
	uint64_t real_off;               /* uint64_t[n_chunks]: offset in the pages file; 0: as in the table */
	uint64_t file_size;              /* the pages file's size, from the header */
	uint64_t zbuf_off, zbuf_size;    /* one compressed frame at a time */
	uint64_t dctx_off, dctx_size;    /* the zstd decompression context */
	char dir[4096];                  /* image directory, for messages */
	/*
	 * The pages files (an incremental image: its own, then its parent's,
	 * ...; struct crac_img_ref): chunk and segment offsets are offsets in
	 * their concatenation, each file starting at a page-aligned base.
	 * n_files 0 (a loader before these fields): pages_fd alone.
	 */
	uint32_t n_files;
	uint32_t pad;
	struct crac_img_lazy_file {
		int32_t fd;              /* in the thread's own file table */
		uint32_t first_chunk;    /* its chunks: [first_chunk, the next file's first_chunk) */
		uint64_t base, size;     /* its bytes: [base, base + size) */
		char path[4096];         /* its image directory, for messages */
	} files[1 + CRAC_IMG_MAX_CHAIN];
	/*
	 * The working set (image/workingset.c), behind flags a libcrac before
	 * it ignores (so no new CRAC_RESUME_ABI): CRAC_LAZY_WS_LOAD: ws_n
	 * entries at ws_off, read and validated by the loader, loaded first;
	 * CRAC_LAZY_WS_RECORD: record the pages the program touches in its
	 * first ws_record_ms and write them into ws_dir_fd (the image
	 * directory, in the thread's own file table).
	 */
	uint64_t ws_off;
	uint32_t ws_n;
	int32_t ws_dir_fd;
	uint32_t ws_record_ms;
	uint32_t ws_image_crc;           /* header crc of the image, which the file is bound to */
	char ws_note[160];               /* the loader's word on the file, for --stats */
};
#define CRAC_LAZY_NO_PREFETCH 0x100u /* CRAC_LAZY_PREFETCH=off: load on demand only */
/* The image asks for incremental checkpoints (CRAC_IMGF_TRACK): the lazy
 * mappings are registered in missing and write-protect mode, on a
 * userfaultfd with UFFD_FEATURE_WP_ASYNC, and pages are installed
 * write-protected, so the pages the program writes are seen (a mapping
 * belongs to one userfaultfd only: image_track.c could not register them).
 * Once every page is in, the thread keeps serving (resume.lazy_state
 * CRAC_LAZY_STATE_LOADED) until a checkpoint, threads stopped, takes the
 * tracking over (img_lazy_handover). A libcrac without it ignores the flag. */
#define CRAC_LAZY_TRACK 0x200u
#define CRAC_LAZY_WS_LOAD 0x400u     /* ws_n entries at ws_off to load first */
#define CRAC_LAZY_WS_RECORD 0x800u   /* record the working set into ws_dir_fd ... */
#define CRAC_LAZY_WS_REPLACE 0x1000u /* ... over an unusable file of that name */
#define CRAC_LAZY_WS_TEST_SLOW 0x2000u /* tests: 2 ms before each working-set run is copied, and after each read of the events meanwhile (CRAC_TEST_WS_SLOW=1) */
/* tests: the working set's claim as on a file system without
 * RENAME_NOREPLACE (NFS, some FUSE): CRAC_PRETEND_MISSING=rename_noreplace */
#define CRAC_LAZY_WS_NO_NOREPLACE 0x4000u
/* tests: each working-set file is changed after it is written, as by a file
 * system that lost a write (CRAC_TEST_WS_DAMAGE=1): the check after the
 * rename must see it */
#define CRAC_LAZY_WS_TEST_DAMAGE 0x8000u
/* tests: each working-set store waits 10 s first, as on a file system that
 * does not answer (CRAC_TEST_WS_STUCK=1) */
#define CRAC_LAZY_WS_TEST_STUCK 0x10000u
#define CRAC_LAZY_TEST_LATE 0x20000u /* tests: the thread leaves the loader 100 ms late (CRAC_TEST_LAZY_LATE=1) */
/* tests: a store that removes its file waits 1 s first (CRAC_TEST_WS_UNCLAIM_SLOW=1),
 * so that another file can take the name meanwhile */
#define CRAC_LAZY_WS_TEST_UNCLAIM 0x40000u
/* The userfaultfd has UFFD_FEATURE_MOVE (Linux 6.8) and the image is not
 * tracked: the thread may move whole 2 MiB blocks in (UFFDIO_MOVE) from a
 * buffer of its own that holds a huge page, where a copy would install 512
 * small ones (image_lazy.c, move_block). Not with CRAC_LAZY_MOVE=off. A
 * libcrac without it ignores the flag. */
#define CRAC_LAZY_MOVE 0x80000u
/* tests (CRAC_TEST_LAZY_MOVE=force|slow): moves whatever fresh huge pages
 * cost here / every block's read taken as slow (the fallback to copies) */
#define CRAC_LAZY_TEST_MOVE_FORCE 0x100000u
#define CRAC_LAZY_TEST_MOVE_SLOW 0x200000u
/* tests: once hurried (a checkpoint or fork waits for it), the thread stalls
 * 2 s, as on a pages file that reads slowly (CRAC_TEST_LAZY_STALL=1) */
#define CRAC_LAZY_TEST_STALL 0x400000u
#define CRAC_LAZY_SLOTS 4u           /* chunks kept verified in the buffer (threads faulting at once) */
/* What the lazy thread maps for itself besides its tables (image_lazy.c),
 * counted by the loader's address-space check (loader/lazy.c lazy_as_need):
 * the read-ahead helper's stack, and the room for the two 2 MiB buffers of
 * moves, aligned to a huge page (move_start) */
#define CRAC_LAZY_AHEAD_STACK (64u << 10)
#define CRAC_LAZY_MOVE_ROOM (3ull * (2ull << 20))

/*
 * The working set: IMAGE/working-set lists the pages the program touched
 * in its first CRAC_IMG_WS_RECORD_MS after a lazy restore, in the order it
 * touched them, each with the crc32c of its bytes. The first lazy restore
 * of an image writes it (when the image is the restoring user's and its
 * directory writable); later ones load those pages first, one page read
 * and verified at a time instead of whole chunks, while the restore path
 * runs, so the program meets them loaded (image/workingset.c). Only a
 * hint for the order of loading: a page whose bytes do not match is left
 * to the normal path, which verifies its whole chunk.
 */
#define CRAC_IMG_WS_FILE "working-set"
#define CRAC_IMG_WS_MAGIC 0x7465534b52574143ull   /* "CAWRKSet" */
#define CRAC_IMG_WS_VERSION 1u
#define CRAC_IMG_WS_MAX 4096u          /* pages recorded at most (16 MiB) */
#define CRAC_IMG_WS_RECORD_MS 50u

struct crac_img_ws_head {
	uint64_t magic;
	uint32_t version;
	uint32_t n;                    /* struct crac_img_ws_page[n] follow */
	uint32_t image_crc;            /* the header crc of the image it was recorded for */
	uint32_t crc;                  /* crc32c of this head (crc 0) and the pages */
	uint64_t recorded_ns;          /* CLOCK_REALTIME when written */
	uint32_t record_ms;            /* the time recorded after the jump */
	uint32_t flags;                /* CRAC_IMG_WS_PARTIAL */
};
/* The restore that recorded it stored it before its time was up (and may
 * have ended before): the pages so far; none at all when it ended within
 * its first moments. Used as it is, never recorded again on its own. */
#define CRAC_IMG_WS_PARTIAL 0x1u

struct crac_img_ws_page {
	uint64_t addr;                 /* page address in the restored process */
	uint32_t crc;                  /* crc32c of its 4096 bytes */
	uint32_t chunk_crc;            /* the crc of the chunk it came from */
};

struct crac_img_buf;
/* IMAGE/working-set opened through dir_fd (0, *fd and *size; -ENOENT:
 * there is none; else a negative errno and why in one phrase). */
int crac_img_ws_open(int dir_fd, uint32_t owner, int *fd, uint64_t *size, struct crac_img_buf *why);
/* The file read into buf: its count of pages, or a negative errno and why. */
int crac_img_ws_check(const void *buf, uint64_t size, uint32_t image_crc, struct crac_img_buf *why);
uint32_t crac_img_ws_crc(const struct crac_img_ws_head *h, const struct crac_img_ws_page *p);

/* ---- reading ------------------------------------------------------------- */

/* A parsed, validated header: pointers into the caller's buffer. */
struct crac_img_view {
	const struct crac_img_header *h;
	const struct crac_img_map *maps;
	const struct crac_img_file *files;
	const struct crac_img_chunk *chunks;
	const struct crac_img_thread *threads;
	const struct crac_img_range *secrets;
	const struct crac_img_fd *fds;
	const struct crac_img_ref *refs;
	const struct crac_img_signal *signals;   /* version 6; NULL when none */
	uint32_t n_signals;
	const unsigned char *blobs;
	const char *strtab;
	uint64_t strtab_size;
};

/*
 * Validates the header file contents buf[0..len) (8-byte aligned): magic,
 * version, size (truncation), crc, then every offset, count, string and
 * address range. Returns 0 and fills *v, or a negative errno with a one-line
 * reason in msg:
 *   -EPROTO      not an image (bad magic) or an unsupported version
 *   -EBADMSG     truncated, checksum mismatch or inconsistent contents
 */
int crac_img_parse(const void *buf, uint64_t len, struct crac_img_view *v,
		   char *msg, size_t msglen);

/* A string of the table ("" for offset 0 or out of range). */
const char *crac_img_str(const struct crac_img_view *v, uint32_t off);

/* Name of a mapping kind ("anon", "heap", ...). */
const char *crac_img_kind_name(uint32_t kind);

/* ---- checksums ----------------------------------------------------------- */

/* crc32c (Castagnoli), with SSE4.2 when the CPU has it. crc starts at 0. */
uint32_t crac_img_crc32c(uint32_t crc, const void *buf, size_t len);

/* The same for code that must not touch libcrac's own data (the lazy
 * loader thread): the caller keeps the table and the SSE4.2 decision. */
struct crac_img_crc {
	uint32_t table[256];
	int hw;                      /* SSE 4.2's crc32 */
	int wide;                    /* ... and AVX-512's VPCLMULQDQ (large buffers) */
};
void crac_img_crc32c_prepare(struct crac_img_crc *k);
/* The paths k takes for a CPU whose cpuid(1).ecx, XCR0, cpuid(7,0).ebx
 * and .ecx are these (prepare's choice, apart for tests: the table without
 * SSE 4.2, folding only with AVX-512F, VPCLMULQDQ, PCLMULQDQ and the zmm
 * state saved by the OS). */
void crac_img_crc32c_pick(struct crac_img_crc *k, uint32_t ecx1, uint64_t xcr0, uint32_t ebx7, uint32_t ecx7);
uint32_t crac_img_crc32c_with(const struct crac_img_crc *k, uint32_t crc, const void *buf, size_t len);

/* crc of the header buffer with its crc field taken as 0. */
uint32_t crac_img_header_crc(const void *buf, uint64_t len);

/* ---- tiny freestanding formatting (used by the loader for messages) ---- */

/* Appends to a bounded buffer; always NUL-terminates. */
struct crac_img_buf {
	char *p;
	size_t len, cap;
};
void crac_img_puts(struct crac_img_buf *b, const char *s);
void crac_img_putu(struct crac_img_buf *b, uint64_t v);
void crac_img_putx(struct crac_img_buf *b, uint64_t v);   /* 0x... */
/* Appends s with every control character (and DEL) written as \xNN, so
 * that text from an image or a peer cannot drive the terminal. A string
 * that does not fit whole with CRAC_IMG_ESC_KEEP bytes left after it (a
 * path near PATH_MAX in a message) is cut to half of what is left: its
 * middle is shown as "...", and the end of a path, which names the file,
 * and the reason that follows it stay in the message. */
#define CRAC_IMG_ESC_KEEP 160
#define CRAC_IMG_ESC_MIN 64
void crac_img_put_escaped(struct crac_img_buf *b, const char *s);
/* The same with keep bytes left after s: 0 for a string printed alone,
 * more where a second path follows. */
void crac_img_put_escaped_keep(struct crac_img_buf *b, const char *s, size_t keep);
/* ": Text (errno N)" for an errno (negative or not; image/check.c). */
void crac_img_put_err(struct crac_img_buf *b, long e);
struct crac_img_chunk;
/* "chunk #N (LEN bytes at ADDR": every message about a chunk starts so,
 * and goes on (", WHERE)", ")"). */
void crac_img_put_chunk_head(struct crac_img_buf *b, uint32_t index, const struct crac_img_chunk *k);
/* "page data checksum mismatch in chunk #N (LEN bytes at ADDR, WHERE): the
 * pages file is damaged" (the loader and the lazy loader thread). */
void crac_img_put_damaged_chunk(struct crac_img_buf *b, uint32_t index, const struct crac_img_chunk *k,
				const char *where);

#pragma GCC visibility pop

#endif
