/*
 * cmd_check.c - `crac check PID`: ask a process, through its control
 * endpoint, to take its inventory and list what would refuse a checkpoint
 * (no callback runs, nothing is closed). `crac check` alone: what this
 * kernel offers the image engine (runtime/kernel.c).
 */
#include "cli.h"
#include "runtime/runtime.h"

#include <stdio.h>
#include <string.h>

int cli_parse_pid(const char *s);
int cli_request(int pid, const char *const *tokens);

int crac_cmd_check(int argc, char **argv)
{
	static const char *const tokens[] = { "CHECK", NULL };
	int pid;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: crac check PID    what would refuse a checkpoint of process PID\n"
		       "       crac check        what this kernel offers the image engine\n");
		return 0;
	}
	if (argc == 1)
		return crac__kernel_report(stdout) ? 1 : 0;
	if (argc != 2 || !(pid = cli_parse_pid(argv[1]))) {
		cli_err("usage: crac check [PID]");
		return 2;
	}
	return cli_request(pid, tokens);
}
