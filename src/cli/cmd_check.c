/*
 * cmd_check.c - `crac check PID`: the safety-check inventory without a
 * checkpoint. The inventory itself is not built yet.
 */
#include "cli.h"

int crac_cmd_check(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_err("check needs the safety-check inventory, which is not built yet (issue #4); "
		"`crac checkpoint --dry-run PID` runs the callbacks without taking a snapshot");
	return 2;
}
