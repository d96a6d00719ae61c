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
#include <sys/stat.h>
#include <unistd.h>

struct header_file {
	char path[4096];
	int fd;
	size_t size;
	char *buf;        /* 8-byte aligned: the header's structures are read in place */
};

/* Reads DIR/header into hf; prints why and returns -1 if it cannot. */
static int header_load(struct header_file *hf, const char *dir)
{
	struct stat st;

	snprintf(hf->path, sizeof(hf->path), "%s/header", dir);
	hf->fd = open(hf->path, O_RDWR);
	if (hf->fd < 0 || fstat(hf->fd, &st) < 0) {
		perror(hf->path);
		return -1;
	}
	hf->size = (size_t)st.st_size;
	hf->buf = aligned_alloc(8, (hf->size + 8) & ~7ul);
	if (!hf->buf || pread(hf->fd, hf->buf, hf->size, 0) != (ssize_t)hf->size) {
		perror("read");
		return -1;
	}
	return 0;
}

/* Writes hf back with a valid checksum; returns 0, or 1 after saying why. */
static int header_store(struct header_file *hf)
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
