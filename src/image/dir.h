/*
 * dir.h - image directories on disk (library side; see dir.c).
 */
#ifndef CRAC_IMAGE_DIR_H
#define CRAC_IMAGE_DIR_H

#include "core/internal.h"
#include "image/image.h"

/* A header read into memory and validated. */
struct crac_img_loaded {
	void *buf;
	uint64_t len;
	struct crac_img_view v;
};

/*
 * Reads DIR/header, validates it (crac_img_parse) and checks that DIR/pages
 * has the recorded size. On failure returns a negative errno with a
 * one-line reason (naming the file) in msg.
 */
int crac_img_load(const char *dir, struct crac_img_loaded *out, char *msg, size_t msglen) CRAC_HIDDEN;
void crac_img_unload(struct crac_img_loaded *l) CRAC_HIDDEN;

/* Reads every chunk of DIR/pages and checks its crc32c. */
int crac_img_verify_pages(const char *dir, const struct crac_img_view *v, char *msg, size_t msglen) CRAC_HIDDEN;

/*
 * Puts the finished image directory `tmp` in place as `dir` atomically
 * (replacing a previous image), fsyncs the parent, removes the old image.
 */
int crac_img_commit(const char *tmp, const char *dir, char *msg, size_t msglen) CRAC_HIDDEN;

/* Removes an image directory (its header and pages files, then the
 * directory itself). 0 if it does not exist. */
int crac_img_remove(const char *dir) CRAC_HIDDEN;

/* fsync of a directory. */
int crac_img_fsync_path(const char *path) CRAC_HIDDEN;

/* "a/b/img" -> parent "a/b", base "img". */
int crac_img_split_path(const char *dir, char *parent, size_t plen, const char **base) CRAC_HIDDEN;

/* Path of the restore loader: $CRAC_LOADER, next to /proc/self/exe, or
 * CRAC_INSTALL_LIBEXECDIR. Returns 0 or -ENOENT (msg says where it looked). */
int crac_img_loader_path(char *buf, size_t len, char *msg, size_t msglen) CRAC_HIDDEN;

#endif
