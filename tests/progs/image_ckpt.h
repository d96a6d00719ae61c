/* SPDX-License-Identifier: MIT */
/*
 * image_ckpt.h - for the test programs that checkpoint themselves with the
 * image engine (image_incr, image_zstd, incr_remap, ...):
 *
 * image_try: crac_checkpoint_restore with the image engine into dir and
 * the given flags, its report in *rep (NULL or to free); returns its
 * result, for the programs that judge it themselves.
 *
 * image_checkpoint: one checkpoint into dir with the given flags; a
 * failure prints "FAIL: ..." with the report on stdout and exits 1.
 * Returns CRAC_CONTINUED or CRAC_RESTORED.
 *
 * image_restored: one checkpoint into dir that must come back restored.
 *
 * image_round: one of a series of checkpoints, each verified on restore
 * (incr_holes, incr_keep, rev_incr_fork, rev_incr_mix).
 */
#ifndef CRAC_TEST_IMAGE_CKPT_H
#define CRAC_TEST_IMAGE_CKPT_H

#include <crac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static inline int image_try(const char *dir, unsigned flags, crac_report **rep)
{
	struct crac_options o;
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = dir;
	o.flags |= flags;
	*rep = NULL;
	return crac_checkpoint_restore(&o, rep);
}

static inline int image_checkpoint(const char *dir, unsigned flags)
{
	crac_report *rep = NULL;
	int rc = image_try(dir, flags, &rep);
	if (rc != CRAC_CONTINUED && rc != CRAC_RESTORED) {
		printf("FAIL: checkpoint into %s returned %d\n", dir, rc);
		if (rep)
			crac_report_print(rep, stdout);
		exit(1);
	}
	crac_report_free(rep);
	return rc;
}

/*
 * A checkpoint into dir with no flags (the image engine ends the program
 * once the image is written): returns only in the restored process; else
 * prints "FAIL: crac_checkpoint_restore returned N" and the report on
 * stdout, and exits 1.
 */
static inline void image_restored(const char *dir)
{
	crac_report *rep = NULL;
	int rc = image_try(dir, 0, &rep);
	if (rc != CRAC_RESTORED) {
		printf("FAIL: crac_checkpoint_restore returned %d\n", rc);
		if (rep)
			crac_report_print(rep, stdout);
		exit(1);
	}
	crac_report_free(rep);
}

/*
 * A checkpoint with CRAC_KEEP_RUNNING into DIR/X, named X: X is copied
 * first into name (name_size bytes), the round the "ok NAME" or "FAIL:
 * NAME ..." lines of verify say. The restored process exits with
 * verify()'s status; the one that goes on returns, when verify_continued
 * only once verify() passed in it too (else it exits 1).
 */
static inline void image_round(const char *dir, const char *x, char *name, size_t name_size, int (*verify)(void),
			       bool verify_continued)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, x);
	snprintf(name, name_size, "%s", x);
	if (image_checkpoint(path, CRAC_KEEP_RUNNING) == CRAC_RESTORED)
		exit(verify());
	if (verify_continued && verify() != 0)
		exit(1);
}

#endif
