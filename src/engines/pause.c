/* SPDX-License-Identifier: MIT */
/*
 * pause.c - the pause engine: after the before-callbacks the process waits
 * in a coordinated state until it is resumed.
 *
 * The building block for VM and container snapshots: the platform asks for
 * a checkpoint (`crac checkpoint --engine pause PID`), snapshots the paused
 * VM or container, and on resume sends `crac restore --pid PID [-- args]`;
 * the after_restore callbacks then run with a new generation and see the
 * new arguments and environment. Resuming goes through the control
 * endpoint, which this engine starts if it is not running.
 */
#include "core/internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct crac_round *paused;   /* the round waiting, NULL if none */
static bool resumed;

static int pause_configure(struct crac_round *r)
{
	char path[256] = "", msg[PATH_MAX + 300];
	/* bounded by the checkpoint's deadline (a control directory on a file
	 * system that does not answer) */
	int rc = crac__control_start_msg(r->event.deadline_monotonic, msg, sizeof(msg));

	if (rc < 0) {
		crac_control_path(path, sizeof(path));
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "pause", rc,
				 "the pause engine is resumed through the control endpoint, which could not start at %s: %s",
				 path, msg);
	}
	return rc;
}

static int pause_checkpoint(struct crac_round *r)
{
	char what[128];

	pthread_mutex_lock(&lock);
	paused = r;
	resumed = false;
	pthread_mutex_unlock(&lock);

	snprintf(what, sizeof(what), "process %d paused; resume it with: crac restore --pid %d",
		 (int)getpid(), (int)getpid());
	/* Said once: to the requester (`crac checkpoint` prints it), or here
	 * when the program itself asked (no one else would tell). */
	if (!r->requester || !r->requester->reply)
		crac__log(CRAC_LOG_WARN, "%s", what);
	crac__round_snapshot_taken(r, what);
	crac__round_finish_requester(r, CRAC_CONTINUED);

	pthread_mutex_lock(&lock);
	while (!resumed)
		pthread_cond_wait(&cond, &lock);
	paused = NULL;
	pthread_mutex_unlock(&lock);
	return CRAC_RESTORED;
}

int crac__pause_resume(char *const *argv, char *const *envp, struct crac_requester *rq)
{
	int rc = 0;

	pthread_mutex_lock(&lock);
	if (!paused || resumed) {
		rc = -EAGAIN;
	} else {
		struct crac_round *r = paused;
		if (crac__strv_copy(argv, -1, &r->new_argv) < 0 ||
		    crac__strv_copy(envp, -1, &r->new_envp) < 0)
			crac__report_add(r->report, CRAC_PHASE_RESTORE, "pause", -ENOMEM,
					 "new arguments or environment lost: out of memory");
		for (r->new_argc = 0; r->new_argv && r->new_argv[r->new_argc]; r->new_argc++)
			;
		r->resumer = rq;
		resumed = true;
		pthread_cond_broadcast(&cond);
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

const struct crac_engine crac__engine_pause = {
	.name = "pause",
	.summary = "pause: waits after the before-callbacks until resumed (VM/container snapshots)",
	.configure = pause_configure,
	.checkpoint = pause_checkpoint,
};
