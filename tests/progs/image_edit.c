/*
 * image_edit - edits an image header for the refusal tests, keeping its
 * checksum valid so that the loader's later checks are what refuses.
 *
 *   image_edit DIR cpu-missing   record a CPU feature this CPU lacks
 *   image_edit DIR version N     claim format version N
 *   image_edit DIR vdso-size     record a different [vdso] size
 *   image_edit DIR overlap       move the first mapping onto the loader
 *
 * Compiles the format code itself (it is internal to libcrac).
 */
#include "image/format.c"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char path[4096];
	struct stat st;

	if (argc < 3) {
		fprintf(stderr, "usage: image_edit DIR cpu-missing|version N|vdso-size|overlap\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/header", argv[1]);
	int fd = open(path, O_RDWR);
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(path);
		return 1;
	}
	char *buf = aligned_alloc(8, ((size_t)st.st_size + 8) & ~7ul);
	if (!buf || pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		perror("read");
		return 1;
	}
	struct crac_img_header *h = (void *)buf;
	struct crac_img_map *maps = (void *)(buf + h->maps_off);
	const char *op = argv[2];

	if (!strcmp(op, "cpu-missing")) {
		struct crac_img_cpu have;
		crac_img_cpu_probe(&have);
		int done = 0;
		for (int w = CRAC_CPU_7_0_EBX; w < CRAC_CPU_WORDS && !done; w++) {
			uint32_t clear = ~have.words[w] & ~cpu_ignore[w];
			if (clear) {
				h->cpu.words[w] |= 1u << __builtin_ctz(clear);
				done = 1;
			}
		}
		if (!done) {
			fprintf(stderr, "this CPU has every feature bit set\n");
			return 77;
		}
	} else if (!strcmp(op, "version") && argc > 3) {
		h->version = (uint32_t)atoi(argv[3]);
	} else if (!strcmp(op, "vdso-size")) {
		h->vdso_size += 4096;
	} else if (!strcmp(op, "overlap")) {
		if (maps[0].n_chunks) {
			fprintf(stderr, "first mapping has stored pages\n");
			return 1;
		}
		maps[0].start = 0x3f0000000000ull;
		maps[0].end = maps[0].start + 4096;
	} else {
		fprintf(stderr, "unknown edit %s\n", op);
		return 2;
	}
	h->crc = crac_img_header_crc(buf, (uint64_t)st.st_size);
	if (pwrite(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		perror("write");
		return 1;
	}
	close(fd);
	return 0;
}
