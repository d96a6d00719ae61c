/* SPDX-License-Identifier: MIT */
/*
 * obj_edit - edits one descriptor entry of an image header, keeping the
 * header's checksum valid, so that what the loader does with a hostile
 * objects table is what a test sees (not the checksum's refusal).
 *
 *   obj_edit DIR FD kind N      set the entry's kind (CRAC_OBJ_*)
 *   obj_edit DIR FD u K VALUE   set its kind-specific word u[K] (VALUE in
 *                               any base strtoull reads)
 *   obj_edit DIR FD path OFF    set its path (a string table offset; 0: none)
 *   obj_edit DIR FD blob32 OFF VALUE   set the 32-bit word at OFF in its blob
 *
 * Compiles the format code itself (it is internal to libcrac).
 */
#include "image/format.c"
#include "header_file.h"

int main(int argc, char **argv)
{
	struct header_file hf;

	if (argc < 5) {
		fprintf(stderr, "usage: obj_edit DIR FD kind N | obj_edit DIR FD u K VALUE | obj_edit DIR FD path OFF | obj_edit DIR FD blob32 OFF VALUE\n");
		return 2;
	}
	if (header_load(&hf, argv[1]) < 0)
		return 1;
	char *buf = hf.buf;
	struct crac_img_header *h = (void *)buf;
	struct crac_img_fd *fds = (void *)(buf + h->fds_off);
	int want = atoi(argv[2]);
	uint32_t i;
	for (i = 0; i < h->n_fds && fds[i].fd != want; i++)
		;
	if (i == h->n_fds) {
		fprintf(stderr, "obj_edit: no entry for fd %d\n", want);
		return 1;
	}
	if (!strcmp(argv[3], "kind")) {
		fds[i].kind = (uint32_t)strtoul(argv[4], NULL, 0);
	} else if (!strcmp(argv[3], "u") && argc > 5 && atoi(argv[4]) >= 0 && atoi(argv[4]) < 8) {
		fds[i].u[atoi(argv[4])] = strtoull(argv[5], NULL, 0);
	} else if (!strcmp(argv[3], "blob32") && argc > 5 && strtoull(argv[4], NULL, 0) + 4 <= fds[i].blob_len) {
		uint32_t val = (uint32_t)strtoul(argv[5], NULL, 0);
		memcpy(buf + h->blobs_off + fds[i].blob_off + strtoull(argv[4], NULL, 0), &val, 4);
	} else if (!strcmp(argv[3], "path")) {
		fds[i].path = (uint32_t)strtoul(argv[4], NULL, 0);
	} else {
		fprintf(stderr, "obj_edit: unknown edit %s\n", argv[3]);
		return 2;
	}
	return header_store(&hf);
}
