/*
 * restore.c - placeholder hooks; the restore-time environment (clock,
 * randomness, args/env) is being written.
 */
#include "core/internal.h"

void crac__runtime_checkpointing(struct crac_round *r)
{
	(void)r;
}

void crac__runtime_restored(struct crac_round *r)
{
	(void)r;
}
