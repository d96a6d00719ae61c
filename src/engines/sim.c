/* SPDX-License-Identifier: MIT */
/*
 * sim.c - the simulation engine: takes no snapshot, reports a restore.
 *
 * Every callback runs exactly as in a real checkpoint and restore, and the
 * restored side gets a new generation and instance id, so applications can
 * test their resources without an image.
 */
#include "core/internal.h"

static int sim_checkpoint(struct crac_round *r)
{
	crac__round_snapshot_taken(r, "simulated snapshot (sim engine: no image)");
	return CRAC_RESTORED;
}

const struct crac_engine crac__engine_sim = {
	.name = "sim",
	.summary = "simulation: runs every callback, takes no snapshot",
	.checkpoint = sim_checkpoint,
};
