/*
 * main.c - the `crac` command: dispatch to one file per subcommand.
 */
#include "cli.h"
#include "core/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_err(const char *fmt, ...)
{
	va_list ap;

	fputs("crac: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

const char *cli_path_show(const char *path, char *buf, size_t len)
{
	size_t n = strlen(path);

	if (n <= 80 || len < 80)
		return path;
	snprintf(buf, len, "%.32s...%s", path, path + n - 32);
	return buf;
}

int cli_path_arg(const char *what, const char *arg, size_t max, bool absolute,
		 char *out, size_t outlen)
{
	char show[CLI_PATH_SHOW_LEN], show_cwd[CLI_PATH_SHOW_LEN], cwd[PATH_MAX];
	size_t n = strlen(arg), c;

	if (!*arg) {
		cli_err("%s: empty path", what);
		return -1;
	}
	if (n > max || max >= outlen) {
		cli_err("%s: path %s is %zu bytes long, over the limit of %zu bytes",
			what, cli_path_show(arg, show, sizeof(show)), n, max);
		return -1;
	}
	if (!absolute || arg[0] == '/') {
		memcpy(out, arg, n + 1);
		return 0;
	}
	/* Relative: the program may chdir, so pass it as an absolute path. */
	if (!getcwd(cwd, sizeof(cwd))) {
		cli_err("%s: cannot make %s absolute: current directory: %s", what,
			cli_path_show(arg, show, sizeof(show)), strerror(errno));
		return -1;
	}
	c = strlen(cwd);
	if (c == 1)
		c = 0;   /* in "/": "/arg", not "//arg" */
	if (c + 1 + n > max) {
		cli_err("%s: path %s made absolute (in %s) is %zu bytes long, over the limit of %zu bytes",
			what, cli_path_show(arg, show, sizeof(show)),
			cli_path_show(cwd, show_cwd, sizeof(show_cwd)), c + 1 + n, max);
		return -1;
	}
	/* c + 1 + n <= max < outlen: fits with its NUL */
	memcpy(out, cwd, c);
	out[c] = '/';
	memcpy(out + c + 1, arg, n + 1);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: crac <command> [options]\n"
		"\n"
		"Coordinated Restore at Checkpoint for native Linux programs.\n"
		"\n"
		"commands:\n"
		"  checkpoint [--engine E] [--image-dir DIR] [--keep-running] [--deadline MS] [--dry-run]\n"
		"             [--force-checks] PID\n"
		"        ask process PID (through its control endpoint) to checkpoint; prints the report\n"
		"  restore --pid PID [--env K=V]... [-- ARGS...]\n"
		"        resume a process paused by the pause engine\n"
		"  restore DIR [--populate | --lazy] [--stats] [--timens] [--trust-owner] [--verify-files] [--quiet] [--env K=V]... [-- ARGS...]\n"
		"        restore an image written by the image engine (only your own: an image is code)\n"
		"  run [--engine E] [--checkpoint-to DIR] [--policies FILE] [--keep-running] [triggers]\n"
		"      -- PROG [ARGS...]\n"
		"        run an unmodified program with libcrac preloaded and its control endpoint on\n"
		"        (--checkpoint-to DIR without --engine: the image engine, writing to DIR);\n"
		"        triggers: --checkpoint-after DURATION, --checkpoint-on SIGNAL,\n"
		"        --checkpoint-when-listening [ADDR:]PORT, --checkpoint-on-ready\n"
		"  start --image DIR [--key K] [triggers] -- PROG [ARGS...]\n"
		"        restore DIR if it holds a good image of PROG, else start PROG cold under `crac run`\n"
		"        and write DIR when a trigger fires (the program keeps running)\n"
		"  inspect DIR [--json] [--trust-owner]\n"
		"        print an image's header, mappings, threads and checks\n"
		"  flatten DIR OUT [--trust-owner]\n"
		"        one self-contained image at OUT from an incremental image and the images below it\n"
		"  check PID\n"
		"        list what would stop process PID from being checkpointed\n"
		"\n"
		"options: --help, --version; before the command: -v (info), -vv (debug), -q (errors only):\n"
		"  how much crac says, also in the programs it starts or restores ($CRAC_LOG)\n"
		"exit status: 0 success, 1 the operation failed (report printed), 2 usage error or unavailable\n"
		"crac <command> --help: the options of one command; see crac(1), crac(7)\n");
}

/*
 * -v, -vv, -q before the command: how much crac says, for this command and
 * what it starts or restores (they inherit $CRAC_LOG): -v info, -vv debug,
 * -q errors only. Returns how many arguments it took.
 */
static int verbosity(int argc, char **argv)
{
	int n = 0, level = -1;

	for (int i = 1; i < argc; i++, n++) {
		if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose"))
			level = level >= CRAC_LOG_INFO ? CRAC_LOG_DEBUG : CRAC_LOG_INFO;
		else if (!strcmp(argv[i], "-vv"))
			level = CRAC_LOG_DEBUG;
		else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet"))
			level = CRAC_LOG_ERROR;
		else
			break;
	}
	if (level >= 0) {
		static const char *const names[] = { "error", "warn", "info", "debug" };
		setenv("CRAC_LOG", names[level], 1);
		crac_log_set_level((enum crac_log_level)level);
	}
	return n;
}

int main(int argc, char **argv)
{
	int skip = verbosity(argc, argv);

	argc -= skip;
	argv += skip;
	const char *cmd = argc > 1 ? argv[1] : NULL;

	/* The command links libcrac too: started under `crac run` it inherits
	 * CRAC_CONTROL=1, but it is no program to checkpoint. */
	crac_control_stop();
	if (!cmd) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version")) {
		const char *const *e = crac_engines();
		printf("crac %s\nengines:", crac_version());
		for (; *e; e++)
			printf(" %s", *e);
		printf("\n");
		return 0;
	}
	argc--;
	argv++;
	if (!strcmp(cmd, "checkpoint"))
		return crac_cmd_checkpoint(argc, argv);
	if (!strcmp(cmd, "restore"))
		return crac_cmd_restore(argc, argv);
	if (!strcmp(cmd, "run"))
		return crac_cmd_run(argc, argv);
	if (!strcmp(cmd, "start"))
		return crac_cmd_start(argc, argv);
	if (!strcmp(cmd, "inspect"))
		return crac_cmd_inspect(argc, argv);
	if (!strcmp(cmd, "flatten"))
		return crac_cmd_flatten(argc, argv);
	if (!strcmp(cmd, "check"))
		return crac_cmd_check(argc, argv);
	cli_err("unknown command \"%s\" (try crac --help)", cmd);
	return 2;
}
