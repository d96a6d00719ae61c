/* SPDX-License-Identifier: MIT */
/*
 * cmd_restore.c - `crac restore`, its options parsed once here for its
 * three forms:
 *
 *   crac restore --pid PID [--env K=V]... [-- ARGS...]
 *       resume a process the pause engine paused (below);
 *   crac restore DIR [image options] [--env K=V]... [-- ARGS...]
 *       an image of the image engine: cmd_image.c execs the loader;
 *   crac restore DIR [--trust-owner] [--env K=V]... [-- ARGS...]
 *       an image of the criu engine (DIR holds its marker):
 *       cmd_restore_criu.c.
 *
 * Options and DIR may come in any order before "--"; what follows "--" is
 * the program's and is never parsed.
 */
#include "cli.h"
#include "core/internal.h"
#include "engines/criu.h"
#include "image/bounded.h"
#include "image/dir.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char image_usage[] =
	"usage: crac restore DIR [--populate | --lazy] [--stats] [--timens] [--trust-owner] [--verify-files] "
	"[--quiet|-q] [--env K=V]... [-- ARGS...]";
static const char pid_usage[] = "usage: crac restore --pid PID [--env K=V]... [-- ARGS...]";

/*
 * Is DIR an image of the criu engine (it holds the engine's marker, a
 * regular file)? 1 or 0; -1 when the look did not return within crac
 * restore's limit (a file system that does not answer), said.
 */
static int criu_image(const char *dir)
{
	char path[PATH_MAX], msg[PATH_MAX + 300];
	struct stat st;

	if (snprintf(path, sizeof(path), "%s/%s", dir, CRAC_CRIU_MARKER) >= (int)sizeof(path))
		return 0;
	int rc = crac_img_lstat_as_msg(path, &st, "criu", msg, sizeof(msg));
	if (rc == -ETIMEDOUT) {
		cli_err("restore %s: %s", dir, msg);
		return -1;
	}
	return rc == 0 && S_ISREG(st.st_mode);
}

static void restore_help(void)
{
	printf("usage: crac restore DIR [options] [--env K=V]... [-- ARGS...]\n"
	       "       crac restore --pid PID [--env K=V]... [-- ARGS...]\n"
	       "Restores the image in DIR: one of the image engine becomes this process (same pid, same\n"
	       "stdio); one of the criu engine becomes its child. With --pid, resumes process PID,\n"
	       "paused by the pause engine, through its control endpoint.\n"
	       "  --pid PID          resume process PID instead of restoring an image\n"
	       "  --env K=V          a new environment variable for the program (repeatable)\n"
	       "  -- ARGS...         new arguments for the program\n"
	       "  --populate         load all of the image's memory before the program runs (eager)\n"
	       "  --lazy             refuse unless large mappings can be loaded lazily (userfaultfd)\n"
	       "  --stats            print the loader's times, the bytes read and mapped, the restore mode\n"
	       "  --timens           restore in a new time namespace: CLOCK_MONOTONIC and CLOCK_BOOTTIME\n"
	       "                     continue from the checkpoint (needs CAP_SYS_ADMIN)\n"
	       "  --trust-owner      restore an image of another user, or writable by others (an image\n"
	       "                     is code: by default only your own restore)\n"
	       "  --verify-files     also compare mapped files' first and last pages with the image\n"
	       "  --quiet, -q        no line for a descriptor that came back otherwise than it was\n"
	       "  --help, -h         this text\n"
	       "--populate, --lazy, --stats, --timens, --verify-files and --quiet are the image engine's;\n"
	       "a criu image takes --trust-owner and --env. Under socket activation (LISTEN_FDS, LISTEN_PID\n"
	       "naming this process) the sockets passed take the place of those DIR/activation records.\n"
	       "exit status: the restored program's; 1 the restore was refused (reason printed);\n"
	       "2 usage error\n");
}

/* --pid: the RESUME request, with the new environment and arguments. */
static int resume(const struct cli_restore *r)
{
	const char **tokens = calloc((size_t)(r->n_env + r->n_args) + 2, sizeof(char *));
	char **owned = calloc((size_t)(r->n_env + r->n_args) + 1, sizeof(char *));
	int n = 0, k = 0, rc = 2;

	if (!tokens || !owned)
		goto out;
	tokens[n++] = "RESUME";
	for (int i = 0; i < r->n_env; i++) {
		if (asprintf(&owned[k], "env=%s", r->env[i]) < 0)
			goto out;
		tokens[n++] = owned[k++];
	}
	for (int i = 0; i < r->n_args; i++) {
		if (asprintf(&owned[k], "arg=%s", r->args[i]) < 0)
			goto out;
		tokens[n++] = owned[k++];
	}
	tokens[n] = NULL;
	rc = cli_request(r->pid, tokens);
out:
	for (int i = 0; owned && i < k; i++)
		free(owned[i]);
	free(owned);
	free(tokens);
	return rc;
}

/* "--NAME" of the option whose getopt value is c, from the table opts. */
static const char *image_only_name(const struct option *opts, int c)
{
	static char name[32];

	for (; opts->name; opts++)
		if (opts->val == c) {
			snprintf(name, sizeof(name), "--%s", opts->name);
			return name;
		}
	return NULL;
}

int crac_cmd_restore(int argc, char **argv)
{
	/* from O_POPULATE on, and 'q': options of the image engine's restore
	 * of DIR only */
	enum { O_PID = 0x200, O_ENV, O_TRUST, O_POPULATE, O_LAZY, O_STATS, O_TIMENS, O_VERIFY };
	static const struct option opts[] = {
		{ "pid", required_argument, 0, O_PID },
		{ "env", required_argument, 0, O_ENV },
		{ "populate", no_argument, 0, O_POPULATE },
		{ "lazy", no_argument, 0, O_LAZY },
		{ "stats", no_argument, 0, O_STATS },
		{ "timens", no_argument, 0, O_TIMENS },
		{ "trust-owner", no_argument, 0, O_TRUST },
		{ "verify-files", no_argument, 0, O_VERIFY },
		{ "quiet", no_argument, 0, 'q' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct cli_restore r = { 0 };
	bool pid_given = false;
	int c;

	if (!(r.env = calloc((size_t)argc + 1, sizeof(char *)))) {
		cli_err("out of memory");
		return 1;
	}
	for (;;) {
		const char *usage = pid_given ? pid_usage : image_usage;
		c = cli_getopt(argc, argv, "+:qh", opts, usage);
		if (c == -1)
			break;
		/* the first option given that only the image engine's restore
		 * knows, for the refusal of --pid or a CRIU image below */
		if (!r.image_only && (c >= O_POPULATE || c == 'q'))
			r.image_only = image_only_name(opts, c);
		switch (c) {
		case CLI_OPERAND:
			if (r.dir || pid_given) {
				cli_err("unexpected \"%s\" (%s)", argv[optind], usage);
				return 2;
			}
			r.dir = argv[optind++];
			break;
		case O_PID:
			/* DIR first: refused as DIR after --pid is (else DIR
			 * would be forgotten and process PID resumed instead) */
			if (r.dir) {
				cli_err("unexpected \"--pid\" after DIR %s: crac restore DIR and crac restore --pid "
					"PID exclude each other (%s)", r.dir, pid_usage);
				return 2;
			}
			pid_given = true;
			if (!(r.pid = cli_parse_pid(optarg))) {
				cli_err("--pid wants a process ID, got \"%s\" (%s)", optarg, pid_usage);
				return 2;
			}
			break;
		case O_ENV:
			/* its value is never an option: "--env --x=1" sets --x */
			if (!strchr(optarg, '=') || optarg[0] == '=') {
				cli_err("--env needs KEY=VALUE, not \"%s\"", optarg);
				return 2;
			}
			r.env[r.n_env++] = optarg;
			break;
		case O_POPULATE:
			r.populate = true;
			break;
		case O_LAZY:
			r.lazy = true;
			break;
		case O_STATS:
			r.stats = true;
			break;
		case O_TIMENS:
			r.timens = true;
			break;
		case O_VERIFY:
			r.verify = true;
			break;
		case 'q':
			r.quiet = true;   /* no line for what came back otherwise than it was */
			break;
		case O_TRUST:
			r.trust = true;
			break;
		case 'h':
			restore_help();
			return 0;
		default:
			return 2;
		}
	}
	r.args = argv + optind;
	r.n_args = argc - optind;

	if (pid_given) {
		if (r.image_only || r.trust) {
			cli_err("%s is an option of an image's restore (crac restore DIR), not of --pid (%s)",
				r.image_only ? r.image_only : "--trust-owner", pid_usage);
			return 2;
		}
		return resume(&r);
	}
	if (!r.dir) {
		cli_err("usage: crac restore DIR [--populate | --lazy] [-- ARGS...] | "
			"crac restore --pid PID [-- ARGS...] (crac restore --help)");
		return 2;
	}
	/* every look at DIR's files bounded (image/dir.c's helpers, 30 s):
	 * a directory on a file system that does not answer is given up on */
	static char bound[64];
	long limit_ms = crac_bounded_grace_ms();
	snprintf(bound, sizeof(bound), "crac restore's limit, %ld ms", limit_ms);
	crac_img_fs_limit(0, limit_ms, bound);
	/* An image written by the criu engine: cmd_restore_criu.c. */
	int criu = criu_image(r.dir);
	if (criu < 0)
		return 1;
	if (criu) {
		if (r.image_only) {
			cli_err("%s is an option of the image engine's restore; %s is a CRIU image "
				"(CRIU options go in CRAC_CRIU_OPTS)", r.image_only, r.dir);
			return 2;
		}
		return crac_cmd_restore_criu(&r);
	}
	if (r.populate && r.lazy) {
		cli_err("--populate and --lazy exclude each other");
		return 2;
	}
	/* socket activation (LISTEN_FDS, LISTEN_PID: ours): the sockets
	 * passed take the place of those DIR/activation records */
	if (cli_restore_activation(r.dir) < 0)
		return 1;
	return crac_cmd_restore_image(&r);
}
