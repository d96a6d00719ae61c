/* SPDX-License-Identifier: MIT */
/*
 * workingset.c - IMAGE/working-set: the pages a restored program touched
 * first (see CRAC_IMG_WS_FILE in image.h for what it is and who writes it).
 *
 *   crac_img_ws_open   opens the file of an image directory safely: never
 *                      through a symbolic link, never a FIFO or device, a
 *                      regular file owned by the image's owner and writable
 *                      by nobody else (the rule of the image's own files),
 *                      of a size a working set can have
 *   crac_img_ws_check  validates what was read: magic, version, the count
 *                      against the size, the image it was recorded for,
 *                      its crc32c; says in one line what is wrong
 *   crac_img_ws_crc    that crc32c (the writer in engines/image_lazy.c
 *                      uses it too)
 *
 * The loader (loader/lazy.c) uses these. The file is a
 * hint: it orders the loading, it never decides what the program sees.
 * Each page it names is read alone and compared with the crc recorded for
 * it from bytes that were verified then, and a page that differs is left
 * to the normal path, which reads and verifies its whole chunk.
 *
 * Freestanding like check.c: raw system calls only (loader/sys.h).
 */
#include "image/check.h"
#include "image/image.h"
#include "loader/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

uint32_t crac_img_ws_crc(const struct crac_img_ws_head *h, const struct crac_img_ws_page *p)
{
	struct crac_img_ws_head c = *h;

	c.crc = 0;
	return crac_img_crc32c(crac_img_crc32c(0, &c, sizeof(c)), p, (size_t)h->n * sizeof(*p));
}

int crac_img_ws_open(int dir_fd, uint32_t owner, int *fd, uint64_t *size, struct crac_img_buf *why)
{
	struct stat st;
	int r = crac_img_open_regular(dir_fd, CRAC_IMG_WS_FILE, fd, &st);

	if (r != 0) {
		if (r == -ELOOP)
			crac_img_puts(why, "a symbolic link, not followed");
		else if (r == CRAC_IMG_NOT_REGULAR)
			crac_img_puts(why, "not a regular file");
		else if (r == CRAC_IMG_SWAPPED)
			crac_img_puts(why, "replaced while it was opened");
		else if (r != -ENOENT)
			crac_img_put_err(why, r);
		return r > 0 ? -EINVAL : r;
	}
	int f = *fd;
	*fd = -1;
	if (st.st_uid != owner || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		crac_img_puts(why, st.st_uid != owner ? "owned by uid " : "writable by other users (owner uid ");
		crac_img_putu(why, st.st_uid);
		crac_img_puts(why, st.st_uid != owner ? ", not by the image's owner" : ")");
		sys_close(f);
		return -EPERM;
	}
	uint64_t max = sizeof(struct crac_img_ws_head) + (uint64_t)CRAC_IMG_WS_MAX * sizeof(struct crac_img_ws_page);
	if ((uint64_t)st.st_size < sizeof(struct crac_img_ws_head) || (uint64_t)st.st_size > max) {
		crac_img_puts(why, "of ");
		crac_img_putu(why, (uint64_t)st.st_size);
		crac_img_puts(why, " bytes, not a working set's size");
		sys_close(f);
		return -EINVAL;
	}
	*fd = f;
	*size = (uint64_t)st.st_size;
	return 0;
}

int crac_img_ws_check(const void *buf, uint64_t size, uint32_t image_crc, struct crac_img_buf *why)
{
	const struct crac_img_ws_head *h = buf;
	const struct crac_img_ws_page *p = (const struct crac_img_ws_page *)(h + 1);

	if (size < sizeof(*h) || h->magic != CRAC_IMG_WS_MAGIC) {
		crac_img_puts(why, "not a working-set file (bad magic)");
		return -EINVAL;
	}
	if (h->version != CRAC_IMG_WS_VERSION) {
		crac_img_puts(why, "version ");
		crac_img_putu(why, h->version);
		crac_img_puts(why, ", not ");
		crac_img_putu(why, CRAC_IMG_WS_VERSION);
		return -EINVAL;
	}
	if (h->flags & ~CRAC_IMG_WS_PARTIAL) {
		crac_img_puts(why, "damaged (unknown flags)");
		return -EINVAL;
	}
	if (h->n > CRAC_IMG_WS_MAX || size != sizeof(*h) + (uint64_t)h->n * sizeof(*p)) {
		crac_img_puts(why, "truncated or padded (its count does not match its size)");
		return -EINVAL;
	}
	if (h->image_crc != image_crc) {
		crac_img_puts(why, "recorded for another image (stale)");
		return -ESTALE;
	}
	if (crac_img_ws_crc(h, p) != h->crc) {
		crac_img_puts(why, "damaged (crc32c mismatch)");
		return -EINVAL;
	}
	for (uint32_t i = 0; i < h->n; i++)
		if (p[i].addr & (CRAC_IMG_PAGE - 1)) {
			crac_img_puts(why, "damaged (an address not page-aligned)");
			return -EINVAL;
		}
	return (int)h->n;
}
