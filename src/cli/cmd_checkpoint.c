/*
 * cmd_checkpoint.c - `crac checkpoint PID`: ask a process, through its
 * control endpoint, to checkpoint itself, and print what it answers.
 */
#include "cli.h"
#include "core/internal.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses a positive pid; 0 if invalid. */
int cli_parse_pid(const char *s)
{
	char *end;
	long v = s ? strtol(s, &end, 10) : 0;

	return s && *s && !*end && v > 0 && v <= INT_MAX ? (int)v : 0;
}

/*
 * Sends a request and turns the answer into an exit status. The answer (the
 * target's text, escaped by the client) goes to our stdout; our own lines to
 * our stderr, after the answer: stdout is flushed first so that the two stay
 * in order when they end up in the same file or terminal.
 */
int cli_request(int pid, const char *const *tokens)
{
	char err[1024];
	int status = 0, rc;

	rc = crac__control_request(pid, tokens, stdout, &status, err, sizeof(err));
	fflush(stdout);
	if (rc < 0) {
		cli_err("%s", err);
		return 2;
	}
	if (status == CRAC_CONTINUED || status == CRAC_RESTORED || status == 0)
		return 0;
	if (status < 0)
		cli_err("process %d answered: %s (%s)", pid, strerror(-status), crac__errno_name(status));
	return 1;
}

int crac_cmd_checkpoint(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "engine", required_argument, 0, 'e' },
		{ "image-dir", required_argument, 0, 'i' },
		{ "keep-running", no_argument, 0, 'k' },
		{ "deadline", required_argument, 0, 'd' },
		{ "dry-run", no_argument, 0, 'n' },
		{ "force-checks", no_argument, 0, 'f' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	/* one token per option at most: repeated options replace their token */
	const char *tokens[8] = { "CHECKPOINT" };
	int at[128] = { 0 };   /* option letter -> its token index */
	char engine[128], image[PATH_MAX + 8], deadline[64], dir[PATH_MAX];
	int n = 1, c, pid;
#define TOKEN(opt, text) (tokens[at[opt] ? at[opt] : (at[opt] = n++)] = (text))

	optind = 1;
	while ((c = getopt_long(argc, argv, "+e:i:kd:nfh", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			if (snprintf(engine, sizeof(engine), "engine=%s", optarg) >= (int)sizeof(engine)) {
				cli_err("--engine: no engine has a name that long");
				return 2;
			}
			TOKEN('e', engine);
			break;
		case 'i':
			/* relative to our directory, not the target's */
			if (cli_path_arg("checkpoint --image-dir", optarg, CLI_IMAGE_DIR_MAX, true, dir, sizeof(dir)) < 0)
				return 2;
			snprintf(image, sizeof(image), "image=%s", dir);
			TOKEN('i', image);
			break;
		case 'k':
			TOKEN('k', "keep=1");
			break;
		case 'n':
			TOKEN('n', "dry=1");
			break;
		case 'f':
			TOKEN('f', "force=1");
			break;
		case 'd': {
			char *end;
			long long v = strtoll(optarg, &end, 10);
			if (*end || v < -1) {
				cli_err("--deadline wants milliseconds, got \"%s\"", optarg);
				return 2;
			}
			snprintf(deadline, sizeof(deadline), "deadline=%lld", v);
			TOKEN('d', deadline);
			break;
		}
		case 'h':
			printf("usage: crac checkpoint [--engine E] [--image-dir DIR] [--keep-running] "
			       "[--deadline MS] [--dry-run] [--force-checks] PID\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc - 1 || !(pid = cli_parse_pid(argv[optind]))) {
		cli_err("usage: crac checkpoint [options] PID");
		return 2;
	}
	tokens[n] = NULL;
	return cli_request(pid, tokens);
}
