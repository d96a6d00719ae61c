/* cmd_image.c - image engine subcommands (not there yet). */
#include "cli.h"

int crac_cmd_restore_image(int argc, char **argv)
{
	(void)argc; (void)argv;
	cli_err("restore from an image directory needs the image engine, which is not built yet (issue #3); "
		"`crac restore --pid PID` resumes a process paused by the pause engine");
	return 2;
}

int crac_cmd_inspect(int argc, char **argv)
{
	(void)argc; (void)argv;
	cli_err("inspect needs the image format, which is not built yet (issue #3)");
	return 2;
}
