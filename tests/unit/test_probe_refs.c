/* SPDX-License-Identifier: MIT */
/*
 * test_probe_refs.c - probe (s23): an incremental image's parent record
 * and page references refused by the parser (crac_img_parse) name the field
 * at fault and its value, each rule on its own; a reference over this
 * image's own stored pages names both ranges.
 *
 * The header built here: one private anonymous mapping 0x100000-0x110000
 * marked as taking pages from below, with one stored chunk at 0x104000
 * (one page), a file mapping after it; a parent "../p" one level below.
 */
#include "harness.h"
#include "image/image.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static _Alignas(8) char hdr[8192];

/* Builds the header with the references r[0..n), depth and parent offset
 * as given (the string table holds "../p" at offset 1); returns its size. */
static uint64_t make(const struct crac_img_ref *r, uint32_t n, uint32_t depth, uint32_t parent)
{
	static const char strs[] = "\0../p\0/lib/f.so\0";
	struct crac_img_header *h = (void *)hdr;
	uint64_t off = sizeof(*h);

	memset(hdr, 0, sizeof(hdr));
	memcpy(h->magic, CRAC_IMG_MAGIC, 8);
	h->version = CRAC_IMG_VERSION;
	strcpy(h->kernel, "6.18-probe");
	h->n_maps = 2;
	h->n_files = 1;
	h->n_chunks = 1;
	h->n_threads = 1;
	h->maps_off = off;
	off += 2 * sizeof(struct crac_img_map);
	h->files_off = off;
	off += sizeof(struct crac_img_file);
	h->chunks_off = off;
	off += sizeof(struct crac_img_chunk);
	h->threads_off = off;
	off += sizeof(struct crac_img_thread);
	h->refs_off = off;
	h->n_refs = n;
	if (n)
		memcpy(hdr + off, r, n * sizeof(*r));
	off += n * sizeof(*r);
	h->strtab_off = off;
	h->strtab_size = (sizeof(strs) + 7) & ~7ul;
	memcpy(hdr + off, strs, sizeof(strs));
	off += h->strtab_size;

	struct crac_img_map *m = (void *)(hdr + h->maps_off);
	m[0] = (struct crac_img_map){ .start = 0x100000, .end = 0x110000, .prot = 3, .kind = CRAC_MAP_ANON,
				      .flags = CRAC_MAPF_REFS, .file = UINT32_MAX, .n_chunks = 1, .stored = 4096 };
	m[1] = (struct crac_img_map){ .start = 0x200000, .end = 0x202000, .prot = 5, .kind = CRAC_MAP_FILE,
				      .file = 0, .name = 6, .first_chunk = 1 };
	struct crac_img_file *f = (void *)(hdr + h->files_off);
	f->path = 6;
	f->size = 8192;
	struct crac_img_chunk *c = (void *)(hdr + h->chunks_off);
	c[0] = (struct crac_img_chunk){ .addr = 0x104000, .offset = 0, .len = 4096, .map = 0 };
	struct crac_img_thread *t = (void *)(hdr + h->threads_off);
	t->tid = 7;
	t->flags = CRAC_THREADF_CHECKPOINTER;
	h->pages_size = 4096;
	h->stored = 4096;
	h->parent = parent;
	h->depth = depth;
	h->img_flags = CRAC_IMGF_TRACK;
	h->size = off;
	h->crc = crac_img_header_crc(hdr, off);
	return off;
}

/* parse with the header as built, after `edit` changed it (crc made valid) */
static int parse(uint64_t len, char *msg, size_t cap)
{
	struct crac_img_view v;

	((struct crac_img_header *)hdr)->crc = crac_img_header_crc(hdr, len);
	return crac_img_parse(hdr, len, &v, msg, cap);
}

#define REF(a, l, d, m) ((struct crac_img_ref){ .addr = (a), .len = (l), .depth = (d), .map = (m) })

static void test_valid(void)
{
	char msg[512];
	struct crac_img_ref r[2] = { REF(0x100000, 0x4000, 1, 0), REF(0x105000, 0x2000, 2, 0) };

	CHECKF(parse(make(r, 2, 2, 1), msg, sizeof(msg)) == 0, "%s", msg);
}

/* each bad reference: the message said exactly */
static void test_bad_refs(void)
{
	static const struct {
		struct crac_img_ref r[2];
		uint32_t n;
		const char *want;
	} cases[] = {
		{ { REF(0x100800, 0x1000, 1, 0) }, 1,
		  "header: bad page reference #0: address 0x100800 is not page aligned" },
		{ { REF(0x100000, 0x800, 1, 0) }, 1,
		  "header: bad page reference #0: length 0x800 is not a whole number of pages" },
		{ { REF(0x100000, 0, 1, 0) }, 1,
		  "header: bad page reference #0: length 0x0 is not a whole number of pages" },
		{ { REF(0x100000, 0x3000, 1, 0), REF(0x102000, 0x1000, 1, 0) }, 2,
		  "header: bad page reference #1: address 0x102000 lies before the end of the one before it "
		  "(0x103000): not sorted, or overlapping" },
		{ { REF(0x100000, 0x1000, 3, 0) }, 1,
		  "header: bad page reference #0: depth 3 (the image has 2 images below)" },
		{ { REF(0x100000, 0x1000, 0, 0) }, 1,
		  "header: bad page reference #0: depth 0 (the image has 2 images below)" },
		{ { REF(0x100000, 0x1000, 1, 9) }, 1,
		  "header: bad page reference #0: mapping #9 (the image has 2)" },
		{ { REF(0x200000, 0x1000, 1, 1) }, 1,
		  "header: bad page reference #0: mapping #1 0x200000-0x202000 (file) is not a private anonymous "
		  "mapping marked as taking pages from the images below" },
		{ { REF(0x10f000, 0x2000, 1, 0) }, 1,
		  "header: bad page reference #0: 0x2000 bytes at 0x10f000 are not inside its mapping #0 "
		  "0x100000-0x110000" },
		{ { REF(0x100000, 0xffffffffffff0000ull, 1, 0) }, 1,
		  "header: bad page reference #0: 0xffffffffffff0000 bytes at 0x100000 are not inside its "
		  "mapping #0 0x100000-0x110000" },
		{ { REF(0x103000, 0x2000, 1, 0) }, 1,
		  "header: page reference over stored pages #0: 0x103000-0x105000 overlaps this image's chunk #0 "
		  "0x104000-0x105000" },
	};
	char msg[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t len = make(cases[i].r, cases[i].n, 2, 1);
		int rc = parse(len, msg, sizeof(msg));
		CHECKF(rc == -EBADMSG, "case %zu: %d", i, rc);
		CHECKF(!strcmp(msg, cases[i].want), "case %zu: \"%s\", want \"%s\"", i, msg, cases[i].want);
	}
	/* the mapping not marked, or shared: the same rule */
	struct crac_img_ref r = REF(0x100000, 0x1000, 1, 0);
	uint64_t len = make(&r, 1, 2, 1);
	struct crac_img_map *m = (void *)(hdr + ((struct crac_img_header *)hdr)->maps_off);
	m[0].flags = 0;
	CHECK_EQ(parse(len, msg, sizeof(msg)), -EBADMSG);
	CHECKF(!strcmp(msg, "header: bad page reference #0: mapping #0 0x100000-0x110000 (anon) is not a private "
			    "anonymous mapping marked as taking pages from the images below"), "%s", msg);
}

/* each bad parent record: the field and its value */
static void test_bad_parent(void)
{
	struct crac_img_ref r = REF(0x100000, 0x1000, 1, 0);
	struct crac_img_header *h = (void *)hdr;
	char msg[512];
	uint64_t len;

	len = make(&r, 1, CRAC_IMG_MAX_CHAIN + 1, 1);
	CHECK_EQ(parse(len, msg, sizeof(msg)), -EBADMSG);
	CHECKF(!strcmp(msg, "header: bad parent image record: depth 9 (at most 8 images below)"), "%s", msg);
	len = make(&r, 1, 2, 0);
	CHECK_EQ(parse(len, msg, sizeof(msg)), -EBADMSG);
	CHECKF(!strcmp(msg, "header: bad parent image record: depth 2, no parent image named"), "%s", msg);
	len = make(NULL, 0, 0, 1);
	CHECK_EQ(parse(len, msg, sizeof(msg)), -EBADMSG);
	CHECKF(!strcmp(msg, "header: bad parent image record: a parent image named, depth 0 (a full image)"), "%s",
	       msg);
	len = make(&r, 1, 2, 4000);
	CHECK_EQ(parse(len, msg, sizeof(msg)), -EBADMSG);
	CHECKF(!strcmp(msg, "header: bad parent image record: parent name at string table offset 4000, past its "
			    "end (24 bytes)"), "%s", msg);
	len = make(&r, 1, 0, 0);
	CHECK_EQ(parse(len, msg, sizeof(msg)), -EBADMSG);
	CHECKF(!strcmp(msg, "header: bad parent image record: 1 page references in a full image (depth 0)"), "%s",
	       msg);
	len = make(&r, 1, 2, 1);
	h->img_flags |= 0x40;
	CHECK_EQ(parse(len, msg, sizeof(msg)), -EBADMSG);
	CHECKF(!strcmp(msg, "header: bad parent image record: unknown image flags 0x40"), "%s", msg);
	/* a message cut short by a small buffer stays terminated */
	len = make(&r, 1, CRAC_IMG_MAX_CHAIN + 1, 1);
	CHECK_EQ(parse(len, msg, 20), -EBADMSG);
	CHECK(strlen(msg) < 20);
}

int main(void)
{
	RUN(test_valid);
	RUN(test_bad_refs);
	RUN(test_bad_parent);
	return t_done();
}
