/* SPDX-License-Identifier: MIT */
/*
 * image_edit - edits an image header for the refusal tests, keeping its
 * checksum valid so that the loader's later checks are what refuses.
 *
 *   image_edit DIR cpu-missing   record a CPU feature this CPU lacks; prints
 *                                "NAME (WORD bit N)", e.g. "avx512f (cpuid
 *                                7.ebx bit 16)", as the refusal
 *                                names it ("a feature" if it has no name)
 *   image_edit DIR xsave-size    record a larger XSAVE area
 *   image_edit DIR xcr0          record an XSAVE state component this OS
 *                                does not enable; prints its mask
 *   image_edit DIR version N     claim format version N
 *   image_edit DIR chunk-at ADDR prints "index offset length" of the chunk holding ADDR
 *   image_edit DIR vdso-size     record a [vdso] one page smaller (header and mapping)
 *   image_edit DIR overlap       move the first mapping into the loader's reserved range
 *   image_edit DIR vdso-block-zero    record no vDSO block address
 *   image_edit DIR map-at-zero   make the first mapping start at address 0
 *   image_edit DIR file-past-end make a file mapping start past its file's end
 *   image_edit DIR file-offset VALUE   the file offset of a file mapping
 *                                without stored pages made VALUE (any base
 *                                strtoull reads), its protection PROT_NONE
 *                                (the layout check's past-the-end rule is
 *                                for accessible mappings only); prints
 *                                "START-END PATH" of that mapping
 *   image_edit DIR kind          give the first mapping an unknown kind
 *   image_edit DIR resume-moved  move the resume block address off its alignment
 *   image_edit DIR vdso-kind     call the first mapping a [vdso]
 *   image_edit DIR chunk KIND    print "INDEX OFFSET LENGTH" of the first
 *                                stored chunk of a mapping of KIND (heap,
 *                                anon, stack, file, ...), changing nothing:
 *                                where to damage the pages file
 *   image_edit DIR zchunk        print "INDEX OFFSET ZLEN LEN" of the largest
 *                                compressed chunk, changing nothing
 *   image_edit DIR zlen-short    that chunk's frame said one byte shorter
 *   image_edit DIR zlen-huge     that chunk's stored length 0xffffffff
 *   image_edit DIR zlen-set N    that chunk's stored length N (a frame of
 *                                our own written in its place)
 *   image_edit DIR resume-abi N  the resume block says its libcrac speaks
 *                                hand-over version N (image.h,
 *                                CRAC_RESUME_ABI; 0: a libcrac from before
 *                                the versions): the pages file patched,
 *                                the chunk's crc made valid again
 *   image_edit DIR maps          prints one line per mapping, changing
 *                                nothing: "I START END OFFSET PROT FLAGS
 *                                KIND FILE FIRST_CHUNK N_CHUNKS STORED NAME"
 *                                (numbers in hex but I, PROT, KIND, FILE,
 *                                FIRST_CHUNK, N_CHUNKS; FILE -1: none;
 *                                NAME "-": none)
 *   image_edit DIR chunks        prints "I ADDR OFFSET LEN MAP" per chunk
 *   image_edit DIR files         prints "I SIZE PATH" per mapped file
 *   image_edit DIR map I FIELD VALUE   sets field start|end|offset|prot|
 *                                flags|kind|file|name|first_chunk|n_chunks|
 *                                stored of mapping #I (VALUE: C number
 *                                syntax; name: a string table offset)
 *   image_edit DIR chunkf C FIELD VALUE   sets field addr|offset|len|map
 *                                of chunk #C
 *   image_edit DIR strtab STRING prints the string table offset of STRING
 *                                (the path of a file, the name of a
 *                                mapping), or fails
 *
 * Compiles the format code itself (it is internal to libcrac).
 */
#include "image/format.c"
#include "header_file.h"

int main(int argc, char **argv)
{
	struct header_file hf;

	if (argc < 3) {
		fprintf(stderr, "usage: image_edit DIR cpu-missing|xsave-size|xcr0|version N|vdso-size|overlap|chunk KIND|chunk-at ADDR\n");
		return 2;
	}
	if (header_load(&hf, argv[1]) < 0)
		return 1;
	char *buf = hf.buf;
	struct crac_img_header *h = (void *)buf;
	struct crac_img_map *maps = (void *)(buf + h->maps_off);
	const char *op = argv[2];

	if (!strcmp(op, "chunk") && argc > 3) {
		struct crac_img_view v;
		char why[256];
		if (crac_img_parse(buf, (uint64_t)hf.size, &v, why, sizeof(why)) < 0) {
			fprintf(stderr, "%s: %s\n", hf.path, why);
			return 1;
		}
		for (uint32_t c = 0; c < v.h->n_chunks; c++)
			if (!strcmp(crac_img_kind_name(v.maps[v.chunks[c].map].kind), argv[3])) {
				printf("%u %llu %llu\n", c, (unsigned long long)v.chunks[c].offset,
				       (unsigned long long)v.chunks[c].len);
				return 0;
			}
		fprintf(stderr, "no stored chunk of a %s mapping\n", argv[3]);
		return 1;
	}
	if (!strcmp(op, "maps")) {
		const char *str = buf + h->strtab_off;
		for (uint32_t i = 0; i < h->n_maps; i++) {
			const struct crac_img_map *m = &maps[i];
			printf("%u %#llx %#llx %#llx %u %#x %u %d %u %u %#llx %s\n", i, (unsigned long long)m->start,
			       (unsigned long long)m->end, (unsigned long long)m->offset, m->prot, m->flags, m->kind,
			       (int)m->file, m->first_chunk, m->n_chunks, (unsigned long long)m->stored,
			       m->name && m->name < h->strtab_size ? str + m->name : "-");
		}
		return 0;
	}
	if (!strcmp(op, "chunks")) {
		/* every chunk: index, address, pages file offset, length, mapping */
		const struct crac_img_chunk *ch = (void *)(buf + h->chunks_off);
		for (uint32_t c = 0; c < h->n_chunks; c++)
			printf("%u %#llx %llu %u %u\n", c, (unsigned long long)ch[c].addr, (unsigned long long)ch[c].offset,
			       ch[c].len, ch[c].map);
		return 0;
	}
	if (!strcmp(op, "files")) {
		const struct crac_img_file *files = (void *)(buf + h->files_off);
		for (uint32_t i = 0; i < h->n_files; i++)
			printf("%u %llu %s\n", i, (unsigned long long)files[i].size, buf + h->strtab_off + files[i].path);
		return 0;
	}
	if (!strcmp(op, "strtab") && argc > 3) {
		const char *str = buf + h->strtab_off;
		for (uint64_t at = 1; at < h->strtab_size; at += strlen(str + at) + 1)
			if (!strcmp(str + at, argv[3])) {
				printf("%llu\n", (unsigned long long)at);
				return 0;
			}
		fprintf(stderr, "%s is not in the string table\n", argv[3]);
		return 1;
	}
	if (!strcmp(op, "chunk-at") && argc > 3) {
		/* the chunk holding address ARGV[3]: "index offset length" */
		struct crac_img_view v;
		char why[256];
		uint64_t addr = strtoull(argv[3], NULL, 0);
		if (crac_img_parse(buf, (uint64_t)hf.size, &v, why, sizeof(why)) < 0) {
			fprintf(stderr, "%s: %s\n", hf.path, why);
			return 1;
		}
		for (uint32_t c = 0; c < v.h->n_chunks; c++)
			if (addr >= v.chunks[c].addr && addr < v.chunks[c].addr + v.chunks[c].len) {
				printf("%u %llu %llu\n", c, (unsigned long long)v.chunks[c].offset,
				       (unsigned long long)v.chunks[c].len);
				return 0;
			}
		fprintf(stderr, "no stored chunk holds %s\n", argv[3]);
		return 1;
	}
	if (!strcmp(op, "resume-abi") && argc > 3) {
		/* the top byte of the resume block's magic, in the chunk
		 * holding it (stored as it is: never compressed) */
		struct crac_img_chunk *ck = (void *)(buf + h->chunks_off);
		uint64_t at = h->resume + 7;
		uint32_t c = 0;
		while (c < h->n_chunks && !(at >= ck[c].addr && at < ck[c].addr + ck[c].len))
			c++;
		if (c == h->n_chunks || ck[c].zlen) {
			fprintf(stderr, "no uncompressed chunk holds the resume block\n");
			return 1;
		}
		char pages[4200], *data = malloc(ck[c].len);
		snprintf(pages, sizeof(pages), "%s/pages", argv[1]);
		int fd = open(pages, O_RDWR);
		if (fd < 0 || !data || pread(fd, data, ck[c].len, (off_t)ck[c].offset) != (ssize_t)ck[c].len) {
			perror(pages);
			return 1;
		}
		data[at - ck[c].addr] = (char)strtoul(argv[3], NULL, 0);
		ck[c].crc = crac_img_crc32c(0, data, ck[c].len);
		if (pwrite(fd, data, ck[c].len, (off_t)ck[c].offset) != (ssize_t)ck[c].len) {
			perror(pages);
			return 1;
		}
		close(fd);
		free(data);
	} else if (!strcmp(op, "zchunk") || !strcmp(op, "zlen-short") || !strcmp(op, "zlen-huge") ||
		   (!strcmp(op, "zlen-set") && argc > 3)) {
		struct crac_img_chunk *ck = (void *)(buf + h->chunks_off);
		uint32_t c = h->n_chunks;   /* the largest (first of them) */
		for (uint32_t i = 0; i < h->n_chunks; i++)
			if (ck[i].zlen && (c == h->n_chunks || ck[i].len > ck[c].len))
				c = i;
		if (c == h->n_chunks) {
			fprintf(stderr, "no compressed chunk\n");
			return 1;
		}
		if (!strcmp(op, "zchunk")) {
			printf("%u %llu %u %u\n", c, (unsigned long long)ck[c].offset, ck[c].zlen, ck[c].len);
			return 0;
		}
		if (!strcmp(op, "zlen-short"))
			ck[c].zlen--;
		else if (!strcmp(op, "zlen-set"))
			ck[c].zlen = (uint32_t)strtoul(argv[3], NULL, 0);
		else
			ck[c].zlen = 0xffffffffu;
	} else if (!strcmp(op, "map") && argc > 5) {
		uint32_t i = (uint32_t)strtoul(argv[3], NULL, 0);
		unsigned long long val = strtoull(argv[5], NULL, 0);
		const char *f = argv[4];
		if (i >= h->n_maps) {
			fprintf(stderr, "no mapping #%u\n", i);
			return 1;
		}
		struct crac_img_map *m = &maps[i];
		if (!strcmp(f, "start"))
			m->start = val;
		else if (!strcmp(f, "end"))
			m->end = val;
		else if (!strcmp(f, "offset"))
			m->offset = val;
		else if (!strcmp(f, "prot"))
			m->prot = (uint32_t)val;
		else if (!strcmp(f, "flags"))
			m->flags = (uint32_t)val;
		else if (!strcmp(f, "kind"))
			m->kind = (uint32_t)val;
		else if (!strcmp(f, "file"))
			m->file = (uint32_t)val;
		else if (!strcmp(f, "name"))
			m->name = (uint32_t)val;
		else if (!strcmp(f, "first_chunk"))
			m->first_chunk = (uint32_t)val;
		else if (!strcmp(f, "n_chunks"))
			m->n_chunks = (uint32_t)val;
		else if (!strcmp(f, "stored"))
			m->stored = val;
		else {
			fprintf(stderr, "no field %s in a mapping\n", f);
			return 2;
		}
	} else if (!strcmp(op, "chunkf") && argc > 5) {
		struct crac_img_chunk *ck = (void *)(buf + h->chunks_off);
		uint32_t c = (uint32_t)strtoul(argv[3], NULL, 0);
		unsigned long long val = strtoull(argv[5], NULL, 0);
		const char *f = argv[4];
		if (c >= h->n_chunks) {
			fprintf(stderr, "no chunk #%u\n", c);
			return 1;
		}
		if (!strcmp(f, "addr"))
			ck[c].addr = val;
		else if (!strcmp(f, "offset"))
			ck[c].offset = val;
		else if (!strcmp(f, "len"))
			ck[c].len = (uint32_t)val;
		else if (!strcmp(f, "map"))
			ck[c].map = (uint32_t)val;
		else {
			fprintf(stderr, "no field %s in a chunk\n", f);
			return 2;
		}
	} else if (!strcmp(op, "cpu-missing")) {
		/* Prefer a feature with a name (the message then names it); the
		 * words from cpuid 7 on hold the features a CPU is likeliest to lack. */
		struct crac_img_cpu have;
		crac_img_cpu_probe(&have);
		int word = -1, bit = -1;
		const char *name = NULL;
		for (size_t i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]) && !name; i++) {
			const struct feature_name *f = &feature_names[i];
			if (f->word >= CRAC_CPU_7_0_EBX && !(have.words[f->word] & (1u << f->bit)) &&
			    !(cpu_ignore[f->word] & (1u << f->bit))) {
				word = f->word;
				bit = f->bit;
				name = f->name;
			}
		}
		for (int w = CRAC_CPU_7_0_EBX; w < CRAC_CPU_WORDS && bit < 0; w++) {
			uint32_t clear = ~have.words[w] & ~cpu_ignore[w];
			if (clear) {
				word = w;
				bit = __builtin_ctz(clear);
			}
		}
		if (bit < 0) {
			fprintf(stderr, "this CPU has every feature bit set\n");
			return 77;
		}
		h->cpu.words[word] |= 1u << bit;
		/* What the refusal should say: "NAME (WORD bit N)". */
		printf("%s (%s bit %d)\n", name ? name : "a feature", word_names[word], bit);
	} else if (!strcmp(op, "xsave-size")) {
		h->cpu.xsave_size += 64;
	} else if (!strcmp(op, "xcr0")) {
		struct crac_img_cpu have;
		crac_img_cpu_probe(&have);
		uint64_t off = ~have.xcr0 & ((1ull << 19) - 1) & ~0x3ull;   /* a known component not enabled */
		if (!off) {
			fprintf(stderr, "every XSAVE state component is enabled here\n");
			return 77;
		}
		h->cpu.xcr0 |= 1ull << __builtin_ctzll(off);
		printf("%#llx\n", 1ull << __builtin_ctzll(off));
	} else if (!strcmp(op, "version") && argc > 3) {
		h->version = (uint32_t)atoi(argv[3]);
	} else if (!strcmp(op, "vdso-size")) {
		/* consistently: the block size and the [vdso] mapping, so that
		 * what refuses is the comparison with this kernel's vDSO */
		if (h->vdso_size < 2 * 4096) {
			fprintf(stderr, "the [vdso] is a single page\n");
			return 77;
		}
		h->vdso_size -= 4096;
		for (uint32_t i = 0; i < h->n_maps; i++)
			if (maps[i].kind == CRAC_MAP_VDSO)
				maps[i].end -= 4096;
	} else if (!strcmp(op, "vdso-block-zero")) {
		h->vdso_block = 0;
	} else if (!strcmp(op, "map-at-zero")) {
		maps[0].start = 0;
	} else if (!strcmp(op, "file-past-end")) {
		struct crac_img_file *files = (void *)(buf + h->files_off);
		uint32_t i = 0;
		while (i < h->n_maps && !(maps[i].kind == CRAC_MAP_FILE && !maps[i].n_chunks && maps[i].prot))
			i++;
		if (i == h->n_maps) {
			fprintf(stderr, "no file mapping without stored pages\n");
			return 1;
		}
		maps[i].offset = (files[maps[i].file].size + 4095) / 4096 * 4096 + 65536;
		printf("%llx-%llx\n", (unsigned long long)maps[i].start, (unsigned long long)maps[i].end);
	} else if (!strcmp(op, "file-offset") && argc > 3) {
		const struct crac_img_file *files = (void *)(buf + h->files_off);
		uint32_t i = 0;
		while (i < h->n_maps && !(maps[i].kind == CRAC_MAP_FILE && !maps[i].n_chunks))
			i++;
		if (i == h->n_maps) {
			fprintf(stderr, "no file mapping without stored pages\n");
			return 1;
		}
		maps[i].offset = strtoull(argv[3], NULL, 0);
		maps[i].prot = 0;
		printf("%llx-%llx %s\n", (unsigned long long)maps[i].start, (unsigned long long)maps[i].end,
		       buf + h->strtab_off + files[maps[i].file].path);
	} else if (!strcmp(op, "kind")) {
		maps[0].kind = 42;
	} else if (!strcmp(op, "resume-moved")) {
		h->resume += 4;
	} else if (!strcmp(op, "vdso-kind")) {
		if (maps[0].n_chunks) {
			fprintf(stderr, "first mapping has stored pages\n");
			return 1;
		}
		maps[0].kind = CRAC_MAP_VDSO;
	} else if (!strcmp(op, "overlap")) {
		if (maps[0].n_chunks) {
			fprintf(stderr, "first mapping has stored pages\n");
			return 1;
		}
		maps[0].start = CRAC_IMG_LOADER_LO;
		maps[0].end = maps[0].start + 4096;
	} else {
		fprintf(stderr, "unknown edit %s\n", op);
		return 2;
	}
	return header_store(&hf);
}
