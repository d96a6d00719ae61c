/* SPDX-License-Identifier: MIT */
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

int crac_cmd_check(int argc, char **argv)
{
	static const char *const tokens[] = { "CHECK", NULL };
	static const struct option opts[] = {
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	static const char usage[] = "usage: crac check [PID]";
	const char *arg = NULL;
	int c, pid;

	while ((c = cli_getopt(argc, argv, "+:h", opts, usage)) != -1) {
		if (c == CLI_OPERAND && !arg) {
			arg = argv[optind++];
		} else if (c == CLI_OPERAND) {
			cli_err("unexpected \"%s\" (%s)", argv[optind], usage);
			return 2;
		} else if (c == 'h') {
			printf("usage: crac check PID    what would refuse a checkpoint of process PID\n"
			       "       crac check        what this kernel offers the image engine\n"
			       "Asks process PID, through its control endpoint, to take the inventory a checkpoint\n"
			       "takes and to apply its policies, without running any callback or closing anything.\n"
			       "  --help, -h         this text\n"
			       "exit status: 0 nothing would refuse a checkpoint (without PID: a restore is possible\n"
			       "on this kernel); 1 something would; 2 usage error or no control endpoint\n");
			return 0;
		} else {
			return 2;
		}
	}
	if (optind < argc && !arg)   /* crac check -- PID */
		arg = argv[optind++];
	if (optind < argc) {
		cli_err("unexpected \"%s\" (%s)", argv[optind], usage);
		return 2;
	}
	if (!arg)
		return crac__kernel_report(stdout) ? 1 : 0;
	if (!(pid = cli_parse_pid(arg))) {
		cli_err("check wants a process ID, got \"%s\" (%s)", arg, usage);
		return 2;
	}
	return cli_request(pid, tokens);
}
