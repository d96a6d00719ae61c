/* SPDX-License-Identifier: MIT */
/*
 * restore.c - the core's two hooks into the restore-time environment, and
 * the new arguments / environment given at restore.
 *
 * crac__runtime_checkpointing (start of every round, before the
 * before_checkpoint callbacks): records the clock state.
 *
 * crac__runtime_restored (restored or resumed process only, after the core
 * gave the instance a new identity, before any after_restore callback):
 *   1. moves the monotonic clock offset and fills the event's clock fields
 *      (clock.c);
 *   2. marks every thread's random generator for reseeding (random.c);
 *   3. keeps the new args/env for crac_restore_args() and exports the new
 *      variables with setenv(), so after_restore callbacks see them.
 *
 * Everything here is process memory: in a process restored from an image,
 * the checkpoint record and the previous args are simply there.
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void crac__runtime_checkpointing(struct crac_round *r)
{
	(void)r;
	crac__clock_checkpointing();
}

void crac__runtime_restore_early(void)
{
	crac__clock_restored(NULL);
	crac__random_restored();
	crac__identity_restored_early();
}

void crac__runtime_restored(struct crac_round *r)
{
	crac__clock_restored(r ? &r->event : NULL);
	crac__random_restored();
	if (r)
		crac__args_restored(r);
}

/* ---- new args / env -------------------------------------------------------- */

/*
 * The args/env of the last restore. Replaced as a whole by every restore
 * (a restore without new args leaves argc 0 and NULL vectors), so the
 * pointers crac_restore_args() hands out stay valid until the next restore.
 */
static pthread_mutex_t args_lock = PTHREAD_MUTEX_INITIALIZER;
static int saved_argc;
static char **saved_argv;
static char **saved_envp;

/* setenv() for each KEY=VALUE; entries without '=' or with an empty key are
 * skipped (and reported). */
static void export_env(struct crac_round *r, char *const *envp)
{
	for (; envp && *envp; envp++) {
		const char *kv = *envp, *eq = strchr(kv, '=');
		char *key;

		if (!eq || eq == kv) {
			crac__report_add(r->report, CRAC_PHASE_RESTORE, "crac", -EINVAL,
					 "new environment entry \"%s\" is not KEY=VALUE: ignored", kv);
			continue;
		}
		key = strndup(kv, (size_t)(eq - kv));
		if (!key || setenv(key, eq + 1, 1) != 0)
			crac__report_add(r->report, CRAC_PHASE_RESTORE, "crac", -ENOMEM,
					 "cannot set %s from the new environment", kv);
		free(key);
	}
}

void crac__args_restored(struct crac_round *r)
{
	char **argv, **envp, **old_argv, **old_envp;
	bool ok = crac__strv_copy(r->new_argv, r->new_argc, &argv) == 0;

	ok = crac__strv_copy(r->new_envp, -1, &envp) == 0 && ok;
	if (!ok)
		crac__report_add(r->report, CRAC_PHASE_RESTORE, "crac", -ENOMEM,
				 "out of memory keeping the new arguments/environment for crac_restore_args()");

	pthread_mutex_lock(&args_lock);
	old_argv = saved_argv;
	old_envp = saved_envp;
	saved_argv = argv;
	saved_envp = envp;
	saved_argc = 0;
	while (argv && argv[saved_argc])
		saved_argc++;
	pthread_mutex_unlock(&args_lock);
	crac__strv_free(old_argv);
	crac__strv_free(old_envp);

	/* From the round's own vectors, so that a failed copy still exports. */
	export_env(r, r->new_envp);
}

int crac_restore_args(int *argc, char *const **argv, char *const **envp)
{
	pthread_mutex_lock(&args_lock);
	if (argc)
		*argc = saved_argc;
	if (argv)
		*argv = saved_argv;
	if (envp)
		*envp = saved_envp;
	pthread_mutex_unlock(&args_lock);
	return 0;
}
