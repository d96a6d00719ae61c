/* SPDX-License-Identifier: MIT */
/*
 * lazy.h - the loader's half of lazy restore (lazy.c).
 */
#ifndef CRAC_LOADER_LAZY_H
#define CRAC_LOADER_LAZY_H

#include "image/check.h"
#include "image/image.h"
#include "loader/sys.h"

#include <stdbool.h>

struct lazy_plan {
	int uffd;          /* -1: eager restore */
	int mode;          /* CRAC_LAZY_*: why eager, when uffd is -1 */
	uint32_t flags;    /* for struct crac_img_lazy.flags */
	/* the working set (image/workingset.c) */
	int ws_mode;       /* CRAC_WORKING_SET: 0 use or record, LAZY_WS_OFF, LAZY_WS_RECORD (anew) */
	int dir_fd;        /* the image directory */
	uint32_t owner;    /* the uid of its header file */
	bool may_write;    /* the image is the restoring user's, its directory writable */
	bool ws_no_walk;   /* CRAC_WORKING_SET=lazy: no mapping made eager by it (lazy_walked) */
	bool no_move;      /* CRAC_LAZY_MOVE=off: every page copied (CRAC_LAZY_MOVE) */
	uint32_t ws_record_ms;   /* tests: how long to record (0: CRAC_IMG_WS_RECORD_MS) */
};
enum { LAZY_WS_AUTO, LAZY_WS_OFF, LAZY_WS_RECORD };

/* clone(flags, sp, ptid, ctid, tls): the child pops fn and its argument
 * from sp and calls fn(arg), which never returns (it exits). */
long lazy_clone(unsigned long flags, void *sp, uint32_t *ptid, uint32_t *ctid, unsigned long tls);
/* A userfaultfd with the needed events, or -1 and *mode says why not.
 * track (the image asks for incremental checkpoints): also asynchronous
 * write-protect where the kernel has it (lazy_start then sets
 * CRAC_LAZY_TRACK); else, with move, UFFDIO_MOVE where the kernel has it
 * (CRAC_LAZY_MOVE). */
int lazy_open(int *mode, bool track, bool move);
/* Registers [start, start + len) in missing mode (and write-protect mode
 * when tracking); 0 or -errno. */
long lazy_register(int uffd, uint64_t start, uint64_t len);
/* The working set's word on the maps marked in is_lazy: those the program
 * walks (most of their pages touched in its first moments) are unmarked,
 * to be loaded eagerly (faster than page by page). Returns how many. Only
 * for a working set that is used (CRAC_WORKING_SET unset). */
uint32_t lazy_walked(const struct lazy_plan *pl, const struct crac_img_view *v, bool *is_lazy);
/* Do the maps marked in is_lazy hold too little memory in all for a lazy
 * restore to be worth its fixed costs? */
bool lazy_too_little(const struct crac_img_view *v, const bool *is_lazy);
/* Builds the lazy area for the maps marked in is_lazy and starts the thread
 * (res->lazy_entry); fills res->lazy_*. An incremental image: chain holds
 * the images below it (open: the thread gets their pages files), whose
 * referenced pages the lazy maps take too. 0 or -errno. */
long lazy_start(struct lazy_plan *pl, const struct crac_img_view *v, const bool *is_lazy,
		struct crac_img_resume *res, int pages_fd, const char *dir, const struct crac_img_chain *chain,
		uint64_t now_ns);
/* The address space lazy_start's area and the thread's own tables take at
 * most, besides the image's mappings (checked against RLIMIT_AS before the
 * point of no return). */
uint64_t lazy_as_need(const struct crac_img_view *v, const bool *is_lazy, const struct crac_img_chain *chain);

#endif
