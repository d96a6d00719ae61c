/* SPDX-License-Identifier: MIT */
/*
 * main.c - the `crac` command's tool (crac-cli: the crac command, which is
 * the restore loader, src/loader/front.c, execs it for everything but a
 * plain image restore): dispatch to one file per subcommand.
 */
#include "cli.h"
#include "core/internal.h"
#include "image/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

int cli_compress_level(const char *arg, const char *next, const char *next_as)
{
	const char *v = arg ? arg : next;
	/* a level: decimal digits only (no sign, no space), 1 to the maximum */
	bool level = v && v[0] >= '0' && v[0] <= '9' && strspn(v, "0123456789") == strlen(v) && strlen(v) <= 2 &&
		     atoi(v) >= 1 && atoi(v) <= CRAC_IMG_ZSTD_MAX_LEVEL;

	if (arg && !level) {
		cli_err("--compress wants a zstd level from 1 to %d, got \"%s\"", CRAC_IMG_ZSTD_MAX_LEVEL, arg);
		return -1;
	}
	if (!arg && next && level) {
		/* the value of an optional argument is only ever after '=' */
		cli_err("--compress %s: a level goes after '=' (--compress=%s); \"%s\" would be taken for %s",
			next, next, next, next_as);
		return -1;
	}
	if (!crac_img_have_zstd()) {
		cli_err("--compress: this build of crac has no zstd (built without libzstd-dev)");
		return -1;
	}
	return arg ? atoi(arg) : CRAC_IMG_ZSTD_LEVEL;
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
	       const char *usage)
{
	/* optind 0 asks glibc to start afresh: it then begins at argv[1] */
	int before = optind ? optind : 1;
	char name[80];
	const char *what;
	int c;

	opterr = 0;   /* our message below, not glibc's */
	c = getopt_long(argc, argv, shortopts, longopts, NULL);
	opterr = 1;   /* as it was, for a plain getopt_long of another command */
	if (c == -1)
		/* "+": stopped at an operand (optind unmoved), or past "--" */
		return optind == before && optind < argc ? CLI_OPERAND : -1;
	if (c != '?' && c != ':')
		return c;
	/*
	 * With "+" nothing is permuted: argv[before] is the element getopt
	 * read. A long option always starts a new element; a short one may sit
	 * in a cluster ("-kx", optind not moved yet): optopt names it.
	 */
	const char *a = before < argc ? argv[before] : "";
	if (a[0] == '-' && a[1] == '-' && a[2]) {
		size_t n = strcspn(a + 2, "=");
		int exact = 0, prefix = 0;
		snprintf(name, sizeof(name), "--%.*s", (int)(n > 64 ? 64 : n), a + 2);
		for (const struct option *o = longopts; o && o->name; o++) {
			if (strncmp(o->name, a + 2, n))
				continue;
			if (strlen(o->name) == n)
				exact++;
			else
				prefix++;
		}
		if (c == ':')
			what = "needs a value";
		else if (exact || prefix == 1)
			what = "takes no value";   /* the only other refusal of a known option */
		else if (prefix > 1)
			what = "is ambiguous (it abbreviates several options)";
		else
			what = "is unknown";
	} else {
		snprintf(name, sizeof(name), "-%c", optopt > ' ' && optopt < 0x7f ? optopt : '?');
		what = c == ':' ? "needs a value" : "is unknown";
	}
	cli_err("option \"%s\" %s (%s)", name, what, usage);
	return '?';
}

static const char main_usage[] = "usage: crac [-v | -vv | -q] <command> [options]; crac --help";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: crac [-v | -vv | -q] <command> [options]\n"
		"\n"
		"Coordinated Restore at Checkpoint for native Linux programs.\n"
		"\n"
		"commands:\n"
		"  checkpoint [--engine E] [--image-dir DIR] [--keep-running] [--deadline MS] [--dry-run]\n"
		"             [--force-checks] [--incremental] [--compress[=LEVEL]] [--timeout DURATION]\n"
		"             [--stats] PID\n"
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
		"  flatten DIR OUT [--compress[=LEVEL]] [--trust-owner]\n"
		"        one self-contained image at OUT from an incremental image and the images below it\n"
		"  check [PID]\n"
		"        list what would stop process PID from being checkpointed (without PID: what\n"
		"        this kernel offers the image engine)\n"
		"\n"
		"options, before the command:\n"
		"  -v, --verbose     informational lines too (-vv, or -v twice: debugging lines)\n"
		"  -q, --quiet       errors only\n"
		"                    (how much crac says, also in the programs it starts or restores:\n"
		"                    it sets $CRAC_LOG)\n"
		"  --version         print the version and the engines, and exit\n"
		"  -h, --help        this text\n"
		"Every option taking a value accepts --opt VALUE and --opt=VALUE; an optional value\n"
		"(--compress[=LEVEL]) only --opt=VALUE.\n"
		"exit status: 0 success, 1 the operation failed (report printed), 2 usage error or unavailable\n"
		"crac <command> --help: the options of one command; see crac(1), crac(7)\n");
}

/*
 * The options before the command: -v, -vv, -q say how much crac says, for
 * this command and what it starts or restores (they inherit $CRAC_LOG):
 * -v info, -vv (or -v twice) debug, -q errors only. --help and --version
 * answer and end.
 */
/*
 * Descriptors 0-2 the caller left closed (a service manager, `crac start
 * ... <&- >&-`) are /dev/null, first, before this command opens anything:
 * else its own files would take those numbers, and a program it starts or
 * restores (the loader keeps 0-2 for the program and closes every other
 * one but its own) would have them as its stdin, stdout or stderr: the
 * image's header file, a socket, a signalfd. 0, or 1 said.
 */
static int stdio_fill(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int n = open("/dev/null", O_RDWR);   /* the lowest free number: fd */
		if (n >= 0 && n != fd) {
			int d = dup2(n, fd);
			close(n);
			n = d;
		}
		if (n < 0) {
			/* (stderr may be the closed one: said where it can be) */
			cli_err("descriptor %d is closed and /dev/null cannot take its place: %s", fd, strerror(errno));
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "verbose", no_argument, 0, 'v' },
		{ "quiet", no_argument, 0, 'q' },
		{ "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' },
		{ 0, 0, 0, 0 },
	};
	int c, level = -1;

	/* The command links libcrac too: started under `crac run` it inherits
	 * CRAC_CONTROL=1, but it is no program to checkpoint. */
	crac_control_stop();
	if (stdio_fill() != 0)
		return 1;
	/* exec'd by the crac command (src/loader/front.c) as crac-cli: named
	 * crac again, as ps and a unit's status show it */
	prctl(PR_SET_NAME, "crac", 0, 0, 0);
	optind = 0;
	while ((c = cli_getopt(argc, argv, "+:vqh", opts, main_usage)) != -1 && c != CLI_OPERAND) {
		switch (c) {
		case 'v':
			level = level >= CRAC_LOG_INFO ? CRAC_LOG_DEBUG : CRAC_LOG_INFO;
			break;
		case 'q':
			level = CRAC_LOG_ERROR;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V': {
			const char *const *e = crac_engines();
			printf("crac %s\nengines:", crac_version());
			for (; *e; e++)
				printf(" %s", *e);
			printf("\n");
			return 0;
		}
		default:
			return 2;
		}
	}
	if (level >= 0) {
		static const char *const names[] = { "error", "warn", "info", "debug" };
		setenv("CRAC_LOG", names[level], 1);
		crac_log_set_level((enum crac_log_level)level);
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[optind];
	if (!strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	/* the command's own argv: argv[0] its name, its options after it */
	argc -= optind;
	argv += optind;
	optind = 0;
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
