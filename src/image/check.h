/* SPDX-License-Identifier: MIT */
/*
 * check.h - can this image be restored here, by this user? (check.c)
 *
 * One routine, used by everyone who must answer that question so that the
 * answers cannot drift apart:
 *   - the restore loader, before its point of no return (it refuses with
 *     the first failing check's line);
 *   - `crac inspect` (it prints every check);
 *   - the image engine, on the image it has just written and before it
 *     reports success (a checkpoint that succeeds is restorable here).
 *
 * Freestanding like format.c: raw system calls only (loader/sys.h), no
 * libc, no allocation. Every string that comes from an image (paths, names)
 * is written into messages with control characters escaped.
 */
#ifndef CRAC_IMAGE_CHECK_H
#define CRAC_IMAGE_CHECK_H

#include "image/image.h"

#pragma GCC visibility push(hidden)

/* The files of an image directory, opened safely: the header and pages
 * files are opened without following a symbolic link and without blocking
 * (a FIFO planted there cannot hang us), and must be regular files. */
struct crac_img_opened {
	int dir_fd, header_fd, pages_fd;   /* -1 when not open */
	uint64_t header_size, pages_size;
	uint32_t uid[3], mode[3];          /* owner and mode: directory, header, pages */
};

/*
 * Opens DIR, DIR/header and DIR/pages. Returns 0, or a negative errno with a
 * one-line reason in msg ("DIR/header: No such file or directory (errno 2)",
 * "DIR/pages is a FIFO, not a regular file"). Ownership is not checked here
 * (see CRAC_CHECK_OWNER): `crac inspect` shows anybody's image.
 */
int crac_img_open(const char *dir, struct crac_img_opened *o, char *msg, size_t msglen);

/*
 * Opens name in the directory dfd read-only, the way every file of an
 * image is opened: no symbolic link followed (-ELOOP), never blocking, a
 * regular file only, looked at before the open (a FIFO or device planted
 * there is never opened: CRAC_IMG_NOT_REGULAR, its type in st->st_mode)
 * and after it (CRAC_IMG_SWAPPED: another file by then). 0 with *fd and
 * *st, or a negative errno, or one of those two.
 */
#define CRAC_IMG_NOT_REGULAR 1
#define CRAC_IMG_SWAPPED 2
struct stat;
int crac_img_open_regular(int dfd, const char *name, int *fd, struct stat *st);
void crac_img_close(struct crac_img_opened *o);

/*
 * Reads the header file into buf (cap bytes, 8-aligned) and validates it
 * (crac_img_parse). Returns 0 and fills *v, or a negative errno and msg.
 */
int crac_img_read_header(const struct crac_img_opened *o, void *buf, uint64_t cap,
			 struct crac_img_view *v, char *msg, size_t msglen);

/* The checks, in the order the loader runs them. */
enum crac_img_check_id {
	CRAC_CHECK_OWNER,    /* image owned by the restoring user, writable by nobody else */
	CRAC_CHECK_LAYOUT,   /* addresses: loader range, vDSO block, mmap_min_addr, file offsets */
	CRAC_CHECK_PAGES,    /* pages file: size; the resume block is stored and intact */
	CRAC_CHECK_CPU,      /* CPU features, XCR0, XSAVE size; AMX permission */
	CRAC_CHECK_VDSO,     /* this kernel's [vvar]/[vvar_vclock]/[vdso] match */
	CRAC_CHECK_PROCESS,  /* PR_SET_MM_MAP available, brk/arg/env as the kernel accepts them */
	CRAC_CHECK_FILES,    /* every mapped file unchanged */
	CRAC_CHECK_FDS,      /* every file, directory, device, FIFO a descriptor names unchanged */
	CRAC_CHECK_COUNT
};

/* Restore even an image owned by another user (crac restore --trust-owner). */
#define CRAC_IMG_TRUST_OWNER 0x1u
/* Tests of the refusals: pretend the kernel lacks PR_SET_MM_MAP
 * (CRAC_PRETEND_MISSING=pr_set_mm_map, runtime/kernel.c). */
#define CRAC_IMG_PRETEND_NO_MM_MAP 0x2u
/* Files check: also compare each mapped file's first and last page with
 * the checksums the image recorded (crac restore --verify-files); without
 * it, the stat identity (device, inode, size, mtime, ctime) decides. */
#define CRAC_IMG_VERIFY_FILES 0x4u

struct crac_img_checker {
	const struct crac_img_view *v;
	const struct crac_img_opened *o;
	const char *dir;             /* for messages */
	unsigned flags;              /* CRAC_IMG_TRUST_OWNER */
	/* CRAC_CHECK_FILES: NULL closes each mapped file after checking it;
	 * else v->h->n_files slots receive the open descriptors (the loader
	 * maps the files from them), -1 for files not opened. */
	int *file_fds;
	/* CRAC_CHECK_VDSO: start and end of this process's [vvar],
	 * [vvar_vclock] and [vdso] when the caller read its maps already (the
	 * loader); NULL: the check reads /proc/self/maps. */
	const uint64_t (*vdso)[2];
};

/* "owner", "layout", ... */
const char *crac_img_check_name(int id);

/*
 * Runs one check. Returns 0 (msg then says briefly what was checked) or a
 * negative errno with the reason in msg. A check never changes anything,
 * except that CRAC_CHECK_CPU asks the kernel for AMX permission when the
 * image needs it (as the restored process will).
 */
int crac_img_check(int id, const struct crac_img_checker *k, char *msg, size_t msglen);

/* Runs every check in order; stops at the first failure: its id in *failed. */
int crac_img_check_all(const struct crac_img_checker *k, int *failed, char *msg, size_t msglen);

/*
 * The images below an incremental image (struct crac_img_ref): its parent,
 * the parent's parent, ... down to a full image, at most CRAC_IMG_MAX_CHAIN.
 */
#define CRAC_IMG_PATH_MAX 4096
/* A message buffer that holds two whole paths and the reason: a check's
 * message names a file, an image and the one below it (a longer path
 * loses its middle: crac_img_put_escaped). */
#define CRAC_IMG_MSG_MAX (2 * CRAC_IMG_PATH_MAX + 1024)
struct crac_img_chain {
	uint32_t n;                                  /* images opened: [0] the parent, [1] its parent ... */
	struct crac_img_opened o[CRAC_IMG_MAX_CHAIN];
	struct crac_img_view v[CRAC_IMG_MAX_CHAIN];
	char path[CRAC_IMG_MAX_CHAIN][CRAC_IMG_PATH_MAX];   /* as opened: a relative parent is
							     * taken from its child's directory */
};

/*
 * Opens and validates the chain below image v (in directory dir): each
 * image's header is read into buf (cap bytes, shared by all) and parsed;
 * its identity must be the one its child recorded (header crc, creation
 * time, pages size) and its depth one less; the owner rule applies to it
 * (flags: CRAC_IMG_TRUST_OWNER) and its pages file has the recorded size.
 * Then every reference of v must lie inside the chunk it names. Returns 0
 * (ch->n = v's depth; nothing opened for a full image), or a negative errno
 * with one line in msg naming the image at fault ("parent image PATH of
 * DIR is missing: ..."); ch is then closed.
 */
int crac_img_chain_open(const struct crac_img_view *v, const char *dir, unsigned flags, struct crac_img_chain *ch,
			void *buf, uint64_t cap, char *msg, size_t msglen);
void crac_img_chain_close(struct crac_img_chain *ch);
/* The directory of the parent named by image v in directory dir (out: cap bytes); 0 or -ENAMETOOLONG. */
int crac_img_parent_path(const struct crac_img_view *v, const char *dir, char *out, size_t cap);

#pragma GCC visibility pop

#endif
