/* SPDX-License-Identifier: MIT */
/*
 * sim_demo.c - shows the order crac notifies resources in, with the sim
 * engine (no image): three resources and a nested context, one clean round,
 * then a round where two resources fail and every problem is reported.
 *
 *   build/examples/sim_demo
 */
#include <crac.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int fail_db;

static int before(const crac_event *ev, void *arg)
{
	const char *name = arg;

	printf("  before_checkpoint %-12s (generation %llu)\n", name,
	       (unsigned long long)ev->generation);
	if (fail_db && !strcmp(name, "db-pool"))
		return crac_fail(-EBUSY, "3 connections still open");
	if (fail_db && !strcmp(name, "cache/disk"))
		return crac_fail(-EIO, "cannot flush /var/cache/app");
	return 0;
}

static int after(const crac_event *ev, void *arg)
{
	printf("  after_restore     %-12s (generation %llu, %s)\n", (const char *)arg,
	       (unsigned long long)ev->generation,
	       ev->outcome == CRAC_RESTORED ? "restored" : "checkpoint aborted");
	return 0;
}

static void reg(crac_context *ctx, const char *name, const char *label)
{
	struct crac_resource_def d = {
		.name = name, .before_checkpoint = before, .after_restore = after,
		.arg = (void *)label,
	};
	crac_register(ctx, &d, NULL);
}

int main(void)
{
	struct crac_options o;
	crac_context *cache;
	crac_report *rep = NULL;
	int rc;

	/* registration order: config, db-pool, cache{memory, disk}, http */
	reg(NULL, "config", "config");
	reg(NULL, "db-pool", "db-pool");
	crac_context_create(NULL, "cache", 0, &cache);
	reg(cache, "memory", "cache/memory");
	reg(cache, "disk", "cache/disk");
	reg(NULL, "http", "http");

	crac_options_init(&o);
	o.engine = "sim";

	printf("crac %s: round 1 (sim engine): before in reverse order, after in forward order\n",
	       crac_version());
	rc = crac_checkpoint_restore(&o, &rep);
	printf("=> %s\n\n", rc == CRAC_RESTORED ? "restored" : "failed");
	crac_report_free(rep);

	printf("round 2: db-pool and cache/disk fail; every resource is still notified\n");
	fail_db = 1;
	rc = crac_checkpoint_restore(&o, &rep);
	printf("=> %s\n", rc == CRAC_ABORTED ? "aborted, no snapshot" : "unexpected");
	crac_report_print(rep, stdout);
	crac_report_free(rep);
	return 0;
}
