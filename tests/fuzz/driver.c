/* SPDX-License-Identifier: MIT */
/*
 * driver.c - runs fuzz_image.c's target without libFuzzer.
 *
 *   fuzz_image_regress PATH...
 *       runs every file named, and every regular file in every directory
 *       named, through LLVMFuzzerTestOneInput once (the corpus as a
 *       regression test: ctest fuzz.corpus). A crash or abort() is the
 *       failure; exit status 0 once all ran, 1 if there was no input.
 *
 *   fuzz_image_regress --make-seed IMGDIR OUT FLAGS
 *       writes a seed input (layout: see fuzz_image.c) from the real image
 *       IMGDIR: the flags byte FLAGS, IMGDIR/header, then a pages patch of
 *       the (at most two) pages of IMGDIR/pages that hold the resume
 *       block. Used by make_corpus.sh.
 *
 *   fuzz_image_regress --make-fd-seeds SEED OUT_DIR
 *       writes OUT_DIR/seed-fds-*: SEED (made by --make-seed) with a table
 *       of descriptors added (see make_fd_seeds). Used by make_corpus.sh.
 */
#include "image/image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads a whole file into a malloc'ed buffer; NULL with a message if not. */
static uint8_t *slurp(const char *path, size_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *p;

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "fuzz_image_regress: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	p = malloc(st.st_size ? (size_t)st.st_size : 1);
	*size = 0;
	while (p && *size < (size_t)st.st_size) {
		ssize_t n = read(fd, p + *size, (size_t)st.st_size - *size);
		if (n <= 0) {
			fprintf(stderr, "fuzz_image_regress: %s: %s\n", path, n < 0 ? strerror(errno) : "file shrank");
			free(p);
			p = NULL;
			break;
		}
		*size += (size_t)n;
	}
	close(fd);
	return p;
}

static int run_file(const char *path)
{
	size_t size;
	uint8_t *p = slurp(path, &size);

	if (!p)
		return -1;
	LLVMFuzzerTestOneInput(p, size);
	free(p);
	return 0;
}

static int make_seed(const char *dir, const char *out, unsigned flags)
{
	char path[4096], msg[256];
	size_t hsize, psize;
	struct crac_img_view v;

	snprintf(path, sizeof(path), "%s/" CRAC_IMG_HEADER_FILE, dir);
	uint8_t *h = slurp(path, &hsize);
	snprintf(path, sizeof(path), "%s/" CRAC_IMG_PAGES_FILE, dir);
	uint8_t *pg = slurp(path, &psize);
	if (!h || !pg)
		return 1;
	if (crac_img_parse(h, hsize, &v, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "fuzz_image_regress: %s/header: %s\n", dir, msg);
		return 1;
	}
	/* the pages holding the resume block (none for inputs that stop at
	 * opening the image or reading its header: flags 0xe0) */
	uint64_t off = 0, end = 0, r = v.h->resume;
	for (uint32_t c = 0; c < v.h->n_chunks && !(flags & 0xe0); c++) {
		const struct crac_img_chunk *k = &v.chunks[c];
		if (r >= k->addr && r - k->addr < k->len) {
			off = (k->offset + (r - k->addr)) & ~(CRAC_IMG_PAGE - 1);
			end = off + 2 * CRAC_IMG_PAGE;
			if (end > k->offset + k->len)
				end = k->offset + k->len;
			break;
		}
	}
	if (end > psize) {
		fprintf(stderr, "fuzz_image_regress: %s/pages is shorter than its header says\n", dir);
		return 1;
	}
	FILE *f = fopen(out, "wb");
	uint8_t fl = (uint8_t)flags;
	if (!f || fwrite(&fl, 1, 1, f) != 1 || fwrite(h, 1, hsize, f) != hsize ||
	    (end > off && (fwrite(&off, 8, 1, f) != 1 || fwrite(pg + off, 1, end - off, f) != end - off)) ||
	    fclose(f) != 0) {
		fprintf(stderr, "fuzz_image_regress: %s: %s\n", out, strerror(errno));
		return 1;
	}
	free(h);
	free(pg);
	return 0;
}

/*
 * Seeds for the fds check, made from a seed of make_seed: the image engine
 * does not record descriptors of every kind (yet), so the header's string
 * table (last in the header) grows by a few paths and a table of
 * descriptors follows it; the flags byte asks the target to fix the size
 * and checksum. Paths name the harmless files of /tmp/crac-fuzz-files
 * (fuzz_image.c) and /dev/null.
 */
struct fd_seed_entry {
	int32_t fd;
	uint32_t kind;            /* CRAC_OBJ_* (objects/objects.h) */
	const char *path;         /* NULL: none */
	uint32_t same_as;
	int device_null;          /* u[7] = rdev of /dev/null, else u[] all 0 */
};

static int write_fd_seed(const uint8_t *seed, size_t seed_size, const char *out, const struct fd_seed_entry *ents,
			 unsigned n)
{
	const struct crac_img_header *h0 = (const void *)(seed + 1);
	uint64_t hlen;

	if (seed_size < 1 + sizeof(*h0))
		return -1;
	memcpy(&hlen, seed + 1 + offsetof(struct crac_img_header, size), 8);
	if (hlen < sizeof(*h0) || hlen > seed_size - 1 || h0->strtab_off + h0->strtab_size != hlen) {
		fprintf(stderr, "fuzz_image_regress: the seed's string table is not last in its header\n");
		return -1;
	}
	size_t cap = hlen + n * (sizeof(struct crac_img_fd) + 64 + 8) + 8;
	uint8_t *h = calloc(1, cap);
	uint64_t len = hlen;
	uint32_t off[16];

	memcpy(h, seed + 1, hlen);
	for (unsigned i = 0; i < n && i < 16; i++) {
		off[i] = 0;
		if (!ents[i].path)
			continue;
		off[i] = (uint32_t)(len - h0->strtab_off);
		memcpy(h + len, ents[i].path, strlen(ents[i].path) + 1);
		len += strlen(ents[i].path) + 1;
	}
	len = (len + 7) & ~7ull;
	struct crac_img_header *hh = (void *)h;
	hh->strtab_size = len - hh->strtab_off;
	hh->n_fds = n;
	hh->fds_off = len;
	for (unsigned i = 0; i < n && i < 16; i++) {
		struct crac_img_fd e = { .fd = ents[i].fd, .kind = ents[i].kind, .fd_flags = 1,
					 .same_as = ents[i].same_as, .path = off[i] };
		if (ents[i].device_null)
			e.u[7] = (1 << 8) | 3;
		memcpy(h + len, &e, sizeof(e));
		len += sizeof(e);
	}
	hh->size = len;

	FILE *f = fopen(out, "wb");
	uint8_t fl = 0x01;
	size_t tail = seed_size - 1 - hlen;
	int bad = !f || fwrite(&fl, 1, 1, f) != 1 || fwrite(h, 1, len, f) != len ||
		  fwrite(seed + 1 + hlen, 1, tail, f) != tail;
	if (f && fclose(f) != 0)
		bad = 1;
	if (bad)
		fprintf(stderr, "fuzz_image_regress: %s: %s\n", out, strerror(errno));
	free(h);
	return bad ? -1 : 0;
}

static int make_fd_seeds(const char *seed_path, const char *outdir)
{
	enum { FILE_ = 1, DIR_ = 2, DEVICE_ = 3, FIFO_ = 5 };
	static const struct fd_seed_entry device_dir[] = {
		{ 3, DEVICE_, "/dev/null", CRAC_IMG_NO_FD, 1 },
		{ 4, DEVICE_, NULL, 0, 1 },   /* a dup of fd 3 */
		{ 5, DIR_, "/tmp/crac-fuzz-files/dir", CRAC_IMG_NO_FD, 0 },
	};
	static const struct fd_seed_entry fifo_file[] = {
		{ 3, FIFO_, "/tmp/crac-fuzz-files/fifo", CRAC_IMG_NO_FD, 0 },
		{ 7, FILE_, "/tmp/crac-fuzz-files/file", CRAC_IMG_NO_FD, 0 },
	};
	static const struct fd_seed_entry link[] = {
		{ 3, FILE_, "/tmp/crac-fuzz-files/link", CRAC_IMG_NO_FD, 0 },
	};
	char out[4096];
	size_t size;
	uint8_t *seed = slurp(seed_path, &size);
	int bad = !seed;

	if (seed) {
		snprintf(out, sizeof(out), "%s/seed-fds-device-dir", outdir);
		bad |= write_fd_seed(seed, size, out, device_dir, 3) < 0;
		snprintf(out, sizeof(out), "%s/seed-fds-fifo-file", outdir);
		bad |= write_fd_seed(seed, size, out, fifo_file, 2) < 0;
		snprintf(out, sizeof(out), "%s/seed-fds-link", outdir);
		bad |= write_fd_seed(seed, size, out, link, 1) < 0;
	}
	free(seed);
	return bad;
}

int main(int argc, char **argv)
{
	unsigned n = 0;
	int bad = 0;

	if (argc == 5 && !strcmp(argv[1], "--make-seed"))
		return make_seed(argv[2], argv[3], (unsigned)strtoul(argv[4], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "--make-fd-seeds"))
		return make_fd_seeds(argv[2], argv[3]);
	if (argc < 2) {
		fprintf(stderr, "usage: fuzz_image_regress CORPUS_DIR_OR_FILE...\n"
				"       fuzz_image_regress --make-seed IMGDIR OUT FLAGS\n"
				"       fuzz_image_regress --make-fd-seeds SEED OUT_DIR\n");
		return 2;
	}
	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "fuzz_image_regress: %s: %s\n", argv[i], strerror(errno));
			bad = 1;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			bad |= run_file(argv[i]) < 0;
			n++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			if (e->d_name[0] == '.' || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
				continue;
			bad |= run_file(path) < 0;
			n++;
		}
		if (d)
			closedir(d);
	}
	printf("fuzz_image_regress: %u inputs ran\n", n);
	return bad || !n ? 1 : 0;
}
