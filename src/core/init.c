/* SPDX-License-Identifier: MIT */
/*
 * init.c - library start-up and version.
 *
 * With CRAC_CONTROL=1 in the environment (set by `crac run`), the control
 * endpoint starts when the library is loaded, so unmodified programs can be
 * checkpointed from outside.
 */
#include "core/internal.h"
#include "runtime/checks.h"
#include "engines/external.h"
#include "objects/objects.h"
#include "runtime/runtime.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STR2(x) #x
#define STR(x) STR2(x)

const char *crac_version(void)
{
	return STR(CRAC_VERSION_MAJOR) "." STR(CRAC_VERSION_MINOR) "." STR(CRAC_VERSION_PATCH);
}

__attribute__((constructor)) static void crac_init(void)
{
	const char *c = getenv("CRAC_CONTROL");
	int rc;

	crac__control_note_creds();   /* before the program can change them */
	crac__policy_init_env();
	crac__external_autostart();   /* CRAC_ENGINE=external: follow the platform */
	crac_obj_no_inet_diag = crac__pretend_missing("inet_diag");   /* tests */

	/* Tests only: a program whose endpoint comes up late (a slow start). */
	const char *delay = getenv("CRAC_TEST_CONTROL_DELAY_MS");
	if (c && strcmp(c, "1") == 0 && delay && atoi(delay) > 0)
		usleep((useconds_t)atoi(delay) * 1000);
	/* (its look at the file system bounded: 10 s at most) */
	char msg[PATH_MAX + 300];
	if (c && strcmp(c, "1") == 0 && (rc = crac__control_start_msg(0, msg, sizeof(msg))) < 0) {
		char path[256] = "";
		crac_control_path(path, sizeof(path));
		crac__log(CRAC_LOG_ERROR, "CRAC_CONTROL=1 but the control endpoint could not start at %s: %s",
			path, msg);
	}
}
