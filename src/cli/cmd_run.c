/*
 * cmd_run.c - `crac run -- PROG ARGS`: run an unmodified program with
 * libcrac preloaded and its control endpoint on, so that `crac checkpoint
 * PID` can reach it.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Finds libcrac.so: $CRAC_LIBDIR, next to this binary (build tree),
 * ../lib next to it, then the install directory. */
static int find_library(char *out, size_t len)
{
	char exe[PATH_MAX], cand[PATH_MAX + 64];
	const char *dirs[4];
	int nd = 0;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (getenv("CRAC_LIBDIR"))
		dirs[nd++] = getenv("CRAC_LIBDIR");
	if (n > 0) {
		exe[n] = 0;
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = 0;
		dirs[nd++] = exe;
	}
	for (int i = 0; i < nd + 2; i++) {
		if (i < nd)
			snprintf(cand, sizeof(cand), "%s/libcrac.so", dirs[i]);
		else if (i == nd && n > 0)
			snprintf(cand, sizeof(cand), "%s/../lib/libcrac.so", exe);
		else
			snprintf(cand, sizeof(cand), "%s/libcrac.so", CRAC_INSTALL_LIBDIR);
		if (access(cand, R_OK) == 0 && realpath(cand, out) && strlen(out) < len)
			return 0;
	}
	return -ENOENT;
}

/*
 * Path arguments: --checkpoint-to is made absolute (the program may chdir
 * before it checkpoints) and must fit CLI_IMAGE_DIR_MAX once absolute;
 * --policies (read at library start-up, before the program runs) and PROG
 * must fit CLI_PATH_MAX. A checkpoint directory without --engine (and
 * without $CRAC_ENGINE) selects the image engine: it is the only one that
 * writes there.
 */
int crac_cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "engine", required_argument, 0, 'e' },
		{ "checkpoint-to", required_argument, 0, 'c' },
		{ "policies", required_argument, 0, 'p' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	char lib[PATH_MAX], path[PATH_MAX], show[CLI_PATH_SHOW_LEN], *preload = NULL;
	const char *old, *engine = NULL;
	bool dir = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+e:c:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			engine = optarg;
			break;
		case 'c':
			if (cli_path_arg("run --checkpoint-to", optarg, CLI_IMAGE_DIR_MAX, true,
					 path, sizeof(path)) < 0)
				return 2;
			setenv("CRAC_IMAGE_DIR", path, 1);
			dir = true;
			break;
		case 'p':
			if (cli_path_arg("run --policies", optarg, CLI_PATH_MAX, false,
					 path, sizeof(path)) < 0)
				return 2;
			if (access(path, R_OK) < 0) {
				cli_err("policy file %s: %s", cli_path_show(path, show, sizeof(show)),
					strerror(errno));
				return 2;
			}
			setenv("CRAC_POLICIES", path, 1);
			break;
		case 'h':
			printf("usage: crac run [--engine E] [--checkpoint-to DIR] [--policies FILE] -- PROG [ARGS...]\n"
			       "  --checkpoint-to DIR  image directory (made absolute, at most %d bytes);\n"
			       "                       without --engine or $CRAC_ENGINE, selects the image engine\n"
			       "  --policies FILE      policy file (at most %d bytes)\n",
			       CLI_IMAGE_DIR_MAX, CLI_PATH_MAX);
			return 0;
		default:
			return 2;
		}
	}
	if (optind >= argc) {
		cli_err("usage: crac run [options] -- PROG [ARGS...]");
		return 2;
	}
	if (cli_path_arg("run PROG", argv[optind], CLI_PATH_MAX, false, path, sizeof(path)) < 0)
		return 2;
	if (engine)
		setenv("CRAC_ENGINE", engine, 1);
	else if (dir && !(getenv("CRAC_ENGINE") && *getenv("CRAC_ENGINE")))
		setenv("CRAC_ENGINE", "image", 1);
	if (find_library(lib, sizeof(lib)) < 0) {
		cli_err("cannot find libcrac.so to preload (looked in $CRAC_LIBDIR, next to crac, ../lib and %s)",
			CRAC_INSTALL_LIBDIR);
		return 2;
	}
	old = getenv("LD_PRELOAD");
	if (asprintf(&preload, "%s%s%s", lib, old && *old ? ":" : "", old ? old : "") < 0)
		return 2;
	setenv("LD_PRELOAD", preload, 1);
	setenv("CRAC_CONTROL", "1", 1);
	free(preload);
	execvp(argv[optind], argv + optind);
	int e = errno;
	cli_err("cannot run %s: %s", cli_path_show(argv[optind], show, sizeof(show)), strerror(e));
	return e == ENOENT ? 127 : 126;
}
