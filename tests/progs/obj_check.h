/* SPDX-License-Identifier: MIT */
/*
 * obj_check.h - what the tests/progs/obj_*.c programs share: CHECK lines
 * ("ok NAME" or "FAIL: NAME: why", counted in `fails`) and a checkpoint
 * with the image engine that returns only in a restored process.
 */
#ifndef CRAC_TEST_OBJ_CHECK_H
#define CRAC_TEST_OBJ_CHECK_H

#include <crac.h>

#include <stdio.h>
#include <stdlib.h>

static int fails;

#define CHECK(name, cond, ...)                                   \
	do {                                                     \
		if (cond) {                                      \
			printf("ok %s\n", name);                 \
		} else {                                         \
			printf("FAIL: %s: ", name);              \
			printf(__VA_ARGS__);                     \
			printf("\n");                            \
			fails++;                                 \
		}                                                \
	} while (0)

/*
 * Checkpoints into dir with the image engine, with one policy rule if
 * given (a bad rule exits 1). The original exits there (0 if the image was
 * written, 3 if refused, after printing the report); returns 0 in a
 * restored process.
 */
static inline int checkpoint(const char *dir, const char *policy)
{
	char err[256];

	if (policy && crac_policy_add(policy, err, sizeof(err)) < 0) {
		printf("policy: %s\n", err);
		exit(1);
	}
	struct crac_options o;
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = dir;
	crac_report *rep = NULL;
	int rc = crac_checkpoint_restore(&o, &rep);
	if (rc != CRAC_RESTORED) {
		printf("checkpoint refused: %d\n", rc);
		if (rep)
			crac_report_print(rep, stdout);
		fflush(stdout);
		exit(rc == 0 ? 0 : 3);
	}
	crac_report_free(rep);
	return 0;
}

#endif
