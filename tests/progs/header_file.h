/* SPDX-License-Identifier: MIT */
/*
 * header_file.h - for the test programs that edit an image header in place
 * (image_edit, obj_edit): read DIR/header whole, and write it back with
 * its checksum made valid again, so that what refuses the edited image is
 * the loader's later check, not the checksum. Include after
 * "image/format.c".
 */
#ifndef CRAC_TEST_HEADER_FILE_H
#define CRAC_TEST_HEADER_FILE_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct header_file {
	char path[4096];
	int fd;
	size_t size;
	char *buf;        /* 8-byte aligned: the header's structures are read in place */
};

/* Reads DIR/header into hf, with `extra` zeroed bytes to spare after it
 * (for an edit that makes it longer), opened for writing when `writable`;
 * prints why and returns -1 if it cannot. */
static inline int header_load_ex(struct header_file *hf, const char *dir, size_t extra, int writable)
{
	struct stat st;

	snprintf(hf->path, sizeof(hf->path), "%s/header", dir);
	hf->fd = open(hf->path, writable ? O_RDWR : O_RDONLY);
	if (hf->fd < 0 || fstat(hf->fd, &st) < 0) {
		perror(hf->path);
		return -1;
	}
	hf->size = (size_t)st.st_size;
	hf->buf = aligned_alloc(8, (hf->size + extra + 8) & ~7ul);
	if (!hf->buf || pread(hf->fd, hf->buf, hf->size, 0) != (ssize_t)hf->size) {
		perror("read");
		return -1;
	}
	memset(hf->buf + hf->size, 0, extra);
	return 0;
}

/* Reads DIR/header into hf, for writing it back. */
static inline int header_load(struct header_file *hf, const char *dir)
{
	return header_load_ex(hf, dir, 0, 1);
}

/* Writes hf back with a valid checksum; returns 0, or 1 after saying why. */
static inline int header_store(struct header_file *hf)
{
	struct crac_img_header *h = (void *)hf->buf;

	h->crc = crac_img_header_crc(hf->buf, (uint64_t)hf->size);
	if (pwrite(hf->fd, hf->buf, hf->size, 0) != (ssize_t)hf->size) {
		perror("write");
		return 1;
	}
	return 0;
}

#endif
