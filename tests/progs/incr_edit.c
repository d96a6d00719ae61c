/* SPDX-License-Identifier: MIT */
/*
 * incr_edit - edits the incremental-image fields of an image header for the
 * adversarial chain tests (tests/cli/image_incremental_adversary.bats),
 * keeping its checksum valid so that what refuses is the chain's checks.
 *
 *   incr_edit DIR show                   prints "depth D refs N" then one line
 *                                        "addr len depth chunk map" per reference
 *   incr_edit DIR ref I FIELD VALUE      sets field addr|len|depth|chunk|map of
 *                                        reference #I (VALUE: C number syntax)
 *   incr_edit DIR parent PATH            names PATH as the parent image
 *   incr_edit DIR depth N                claims N images below
 *   incr_edit DIR adopt PDIR             records PDIR's header as the parent's
 *                                        identity (crc, creation time, pages size)
 *
 * Compiles the format code itself (it is internal to libcrac).
 */
#include "image/format.c"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* DIR/header, whole, in an 8-aligned buffer with `extra` bytes to spare. */
static char *read_header(const char *dir, size_t extra, size_t *len, int *fdp)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/header", dir);
	int fd = open(path, fdp ? O_RDWR : O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(path);
		exit(1);
	}
	char *buf = aligned_alloc(8, ((size_t)st.st_size + extra + 8) & ~7ul);
	if (!buf || pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		perror("read");
		exit(1);
	}
	memset(buf + st.st_size, 0, extra);
	*len = (size_t)st.st_size;
	if (fdp)
		*fdp = fd;
	else
		close(fd);
	return buf;
}

int main(int argc, char **argv)
{
	size_t len;
	int fd;

	if (argc < 3) {
		fprintf(stderr, "usage: incr_edit DIR show|ref I FIELD VALUE|parent PATH|depth N|adopt PDIR\n");
		return 2;
	}
	const char *op = argv[2];
	size_t extra = !strcmp(op, "parent") && argc > 3 ? strlen(argv[3]) + 8 : 0;
	char *buf = read_header(argv[1], extra, &len, &fd);
	struct crac_img_header *h = (void *)buf;
	struct crac_img_ref *refs = (void *)(buf + h->refs_off);

	if (!strcmp(op, "show")) {
		printf("depth %u refs %u\n", h->depth, h->n_refs);
		for (uint32_t i = 0; i < h->n_refs; i++)
			printf("%#llx %#llx %u %u %u\n", (unsigned long long)refs[i].addr,
			       (unsigned long long)refs[i].len, refs[i].depth, refs[i].chunk, refs[i].map);
		return 0;
	} else if (!strcmp(op, "ref") && argc > 5) {
		uint32_t i = (uint32_t)strtoul(argv[3], NULL, 0);
		unsigned long long val = strtoull(argv[5], NULL, 0);
		if (i >= h->n_refs) {
			fprintf(stderr, "no reference #%u\n", i);
			return 1;
		}
		if (!strcmp(argv[4], "addr"))
			refs[i].addr = val;
		else if (!strcmp(argv[4], "len"))
			refs[i].len = val;
		else if (!strcmp(argv[4], "depth"))
			refs[i].depth = (uint32_t)val;
		else if (!strcmp(argv[4], "chunk"))
			refs[i].chunk = (uint32_t)val;
		else if (!strcmp(argv[4], "map"))
			refs[i].map = (uint32_t)val;
		else
			return 2;
	} else if (!strcmp(op, "parent") && argc > 3) {
		/* appended to the string table, which must end the header */
		if (h->strtab_off + h->strtab_size != len) {
			fprintf(stderr, "the string table does not end the header\n");
			return 1;
		}
		size_t n = strlen(argv[3]) + 1, grow = (n + 7) & ~7ul;
		memcpy(buf + len, argv[3], n);
		h->parent = (uint32_t)h->strtab_size;
		h->strtab_size += grow;
		len += grow;
		h->size = len;
	} else if (!strcmp(op, "depth") && argc > 3) {
		h->depth = (uint32_t)strtoul(argv[3], NULL, 0);
	} else if (!strcmp(op, "adopt") && argc > 3) {
		size_t plen;
		const struct crac_img_header *p = (const void *)read_header(argv[3], 0, &plen, NULL);
		h->parent_crc = p->crc;
		h->parent_created_ns = p->created_ns;
		h->parent_pages_size = p->pages_size;
	} else {
		fprintf(stderr, "unknown edit %s\n", op);
		return 2;
	}
	h->crc = crac_img_header_crc(buf, len);
	if (pwrite(fd, buf, len, 0) != (ssize_t)len) {
		perror("write");
		return 1;
	}
	close(fd);
	return 0;
}
