/* SPDX-License-Identifier: MIT */
/* hello.c - the README example: one resource, one checkpoint. */
#include <crac.h>
#include <stdio.h>

static int close_conn(const crac_event *ev, void *conn) { puts("closing connections"); return 0; }
static int reopen_conn(const crac_event *ev, void *conn)
{
	printf("restored: generation %llu, engine %s\n", (unsigned long long)ev->generation, ev->engine);
	return 0;
}

int main(void)
{
	struct crac_resource_def db = { .name = "db", .before_checkpoint = close_conn,
					.after_restore = reopen_conn };
	crac_register(NULL, &db, NULL);          /* NULL: the global context */

	struct crac_options o;
	crac_options_init(&o);                   /* engine from $CRAC_ENGINE, default "sim" */
	crac_report *rep = NULL;
	int rc = crac_checkpoint_restore(&o, &rep);
	if (rc < 0 || rc == CRAC_ABORTED)
		crac_report_print(rep, stderr);      /* one line per failure */
	crac_report_free(rep);
	return rc == CRAC_RESTORED || rc == CRAC_CONTINUED ? 0 : 1;
}
