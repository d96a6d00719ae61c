/* SPDX-License-Identifier: MIT */
/*
 * probe_forge - damages an image header with its checksum kept valid, for
 * the forged-header probe (tests/cli/probe_incr_forge.bats): what refuses
 * the image must then be the parser's and the checks' own rules.
 *
 *   probe_forge DIR SEED N [REGION]
 *       xors N bytes of DIR/header, at offsets and with bits drawn from
 *       SEED, inside REGION: all (the default; the magic, version, size
 *       and crc words spared), refs (the page reference table), maps (the
 *       mapping table), chunks (the chunk table) or parent (the parent
 *       image record: parent, parent_crc, parent_created_ns,
 *       parent_pages_size, depth, n_refs, refs_off, img_flags); prints
 *       "OFFSET OLD NEW" for each byte changed, followed by "chunk K FIELD"
 *       for a byte of the chunk table (FIELD: addr, offset, len, zlen, crc,
 *       map).
 *   probe_forge DIR set FIELD VALUE
 *       sets a header field of the parent image record: parent (its string
 *       table offset), depth, img_flags or n_refs (VALUE: C number syntax).
 *
 * Compiles the format code itself (it is internal to libcrac).
 */
#include "image/format.c"
#include "header_file.h"

#include <stddef.h>

static uint64_t state;

static uint64_t next(void)
{
	/* xorshift64*: reproducible from SEED on any libc */
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return state * 0x2545f4914f6cdd1dull;
}

int main(int argc, char **argv)
{
	struct header_file hf;

	if (argc < 4) {
		fprintf(stderr, "usage: probe_forge DIR SEED N [all|refs|maps|chunks|parent] | DIR set FIELD VALUE\n");
		return 2;
	}
	if (header_load(&hf, argv[1]) < 0)
		return 1;
	if (!strcmp(argv[2], "set") && argc > 4) {
		struct crac_img_header *h = (void *)hf.buf;
		uint32_t val = (uint32_t)strtoul(argv[4], NULL, 0);
		if (!strcmp(argv[3], "parent"))
			h->parent = val;
		else if (!strcmp(argv[3], "depth"))
			h->depth = val;
		else if (!strcmp(argv[3], "img_flags"))
			h->img_flags = val;
		else if (!strcmp(argv[3], "n_refs"))
			h->n_refs = val;
		else
			return 2;
		return header_store(&hf);
	}
	state = strtoull(argv[2], NULL, 0) * 2654435761u + 1;
	unsigned n = (unsigned)strtoul(argv[3], NULL, 0);
	const char *region = argc > 4 ? argv[4] : "all";
	struct crac_img_header *h = (void *)hf.buf;
	uint64_t lo = 24, hi = hf.size;   /* magic, version, crc, size spared */

	if (!strcmp(region, "refs")) {
		lo = h->refs_off;
		hi = lo + (uint64_t)h->n_refs * sizeof(struct crac_img_ref);
	} else if (!strcmp(region, "maps")) {
		lo = h->maps_off;
		hi = lo + (uint64_t)h->n_maps * sizeof(struct crac_img_map);
	} else if (!strcmp(region, "chunks")) {
		lo = h->chunks_off;
		hi = lo + (uint64_t)h->n_chunks * sizeof(struct crac_img_chunk);
	} else if (!strcmp(region, "parent")) {
		lo = offsetof(struct crac_img_header, parent);
		hi = offsetof(struct crac_img_header, seccomp_filters);
	} else if (strcmp(region, "all")) {
		fprintf(stderr, "probe_forge: unknown region %s\n", region);
		return 2;
	}
	if (hi <= lo || hi > hf.size) {
		fprintf(stderr, "probe_forge: region %s is empty in %s\n", region, hf.path);
		return 1;
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t off = lo + next() % (hi - lo);
		unsigned char old = (unsigned char)hf.buf[off];
		unsigned char bits = (unsigned char)(next() % 255 + 1);
		hf.buf[off] = (char)(old ^ bits);
		printf("%llu %u %u", (unsigned long long)off, old, (unsigned char)hf.buf[off]);
		if (off >= h->chunks_off && off < h->chunks_off + (uint64_t)h->n_chunks * sizeof(struct crac_img_chunk)) {
			uint64_t k = (off - h->chunks_off) / sizeof(struct crac_img_chunk);
			uint64_t in = (off - h->chunks_off) % sizeof(struct crac_img_chunk);
			static const struct { size_t at, len; const char *name; } f[] = {
				{ offsetof(struct crac_img_chunk, addr), 8, "addr" },
				{ offsetof(struct crac_img_chunk, offset), 8, "offset" },
				{ offsetof(struct crac_img_chunk, len), 4, "len" },
				{ offsetof(struct crac_img_chunk, zlen), 4, "zlen" },
				{ offsetof(struct crac_img_chunk, crc), 4, "crc" },
				{ offsetof(struct crac_img_chunk, map), 4, "map" },
			};
			for (size_t j = 0; j < sizeof(f) / sizeof(f[0]); j++)
				if (in >= f[j].at && in < f[j].at + f[j].len)
					printf(" chunk %llu %s", (unsigned long long)k, f[j].name);
		}
		printf("\n");
	}
	return header_store(&hf);
}
