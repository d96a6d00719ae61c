/* SPDX-License-Identifier: MIT */
/*
 * image_ckpt.h - for the test programs that checkpoint themselves with the
 * image engine (image_incr, image_zstd, incr_remap): one checkpoint into
 * dir with the given flags; a failure prints "FAIL: ..." with the report
 * on stdout and exits 1. Returns CRAC_CONTINUED or CRAC_RESTORED.
 */
#ifndef CRAC_TEST_IMAGE_CKPT_H
#define CRAC_TEST_IMAGE_CKPT_H

#include <crac.h>
#include <stdio.h>
#include <stdlib.h>

static inline int image_checkpoint(const char *dir, unsigned flags)
{
	struct crac_options o;
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = dir;
	o.flags |= flags;
	crac_report *rep = NULL;
	int rc = crac_checkpoint_restore(&o, &rep);
	if (rc != CRAC_CONTINUED && rc != CRAC_RESTORED) {
		printf("FAIL: checkpoint into %s returned %d\n", dir, rc);
		if (rep)
			crac_report_print(rep, stdout);
		exit(1);
	}
	crac_report_free(rep);
	return rc;
}

#endif
