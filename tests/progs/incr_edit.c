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
#include "header_file.h"

int main(int argc, char **argv)
{
	struct header_file hf, pf;

	if (argc < 3) {
		fprintf(stderr, "usage: incr_edit DIR show|ref I FIELD VALUE|parent PATH|depth N|adopt PDIR\n");
		return 2;
	}
	const char *op = argv[2];
	size_t extra = !strcmp(op, "parent") && argc > 3 ? strlen(argv[3]) + 8 : 0;
	if (header_load_ex(&hf, argv[1], extra, 1) < 0)
		return 1;
	char *buf = hf.buf;
	size_t len = hf.size;
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
		if (header_load_ex(&pf, argv[3], 0, 0) < 0)
			return 1;
		const struct crac_img_header *p = (const void *)pf.buf;
		h->parent_crc = p->crc;
		h->parent_created_ns = p->created_ns;
		h->parent_pages_size = p->pages_size;
	} else {
		fprintf(stderr, "unknown edit %s\n", op);
		return 2;
	}
	hf.size = len;   /* "parent" makes it longer */
	return header_store(&hf);
}
