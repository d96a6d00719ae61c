/* SPDX-License-Identifier: MIT */
/*
 * ckpt_loader_range - a process with memory in the restore loader's
 * reserved range (image/image.h: 0x500000000000 + 256 MiB) checkpoints
 * itself with the image engine into argv[1]. The checkpoint must be
 * refused while the process still runs (no image that could never be
 * restored): prints "refused: RC" and the report, "still running", exit 0;
 * "FAIL: ..." and exit 1 otherwise.
 */
#include <crac.h>
#include "image_ckpt.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	void *want = (void *)0x500000100000ull;
	void *p = mmap(want, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != want) {
		printf("FAIL: cannot map at %p\n", want);
		return 1;
	}
	memset(p, 0x5a, 1 << 20);
	crac_report *rep = NULL;
	int rc = image_try(argv[1], 0, &rep);
	if (rc >= 0 && rc != CRAC_ABORTED) {
		printf("FAIL: checkpoint returned %d\n", rc);
		return 1;
	}
	printf("refused: %d\n", rc);
	crac_report_print(rep, stdout);
	crac_report_free(rep);
	printf("still running\n");
	return 0;
}
