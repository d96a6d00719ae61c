/*
 * cmd_restore.c - `crac restore`: resume a paused process (--pid) or
 * restore an image directory (cmd_image.c).
 */
#include "cli.h"
#include "core/internal.h"
#include "engines/criu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_parse_pid(const char *s);
int cli_request(int pid, const char *const *tokens);

static int resume(int argc, char **argv)
{
	const char **tokens = calloc((size_t)argc + 2, sizeof(char *));
	char **owned = calloc((size_t)argc + 1, sizeof(char *));
	int n = 0, pid = 0, rc = 2;
	bool rest = false;

	if (!tokens || !owned)
		goto out;
	tokens[n++] = "RESUME";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *t = NULL;
		if (!rest && !strcmp(a, "--")) {
			rest = true;
		} else if (!rest && !strcmp(a, "--pid") && i + 1 < argc) {
			pid = cli_parse_pid(argv[++i]);
		} else if (!rest && !strncmp(a, "--pid=", 6)) {
			pid = cli_parse_pid(a + 6);
		} else if (!rest && !strcmp(a, "--env") && i + 1 < argc) {
			if (!strchr(argv[i + 1], '=')) {
				cli_err("--env wants KEY=VALUE, got \"%s\"", argv[i + 1]);
				goto out;
			}
			if (asprintf(&t, "env=%s", argv[++i]) < 0)
				goto out;
		} else if (rest) {
			if (asprintf(&t, "arg=%s", a) < 0)
				goto out;
		} else {
			cli_err("unknown option \"%s\" (usage: crac restore --pid PID [--env K=V]... [-- ARGS...])", a);
			goto out;
		}
		if (t)
			tokens[n++] = owned[i] = t;
	}
	if (!pid) {
		cli_err("usage: crac restore --pid PID [--env K=V]... [-- ARGS...]");
		goto out;
	}
	tokens[n] = NULL;
	rc = cli_request(pid, tokens);
out:
	for (int i = 0; owned && i < argc; i++)
		free(owned[i]);
	free(owned);
	free(tokens);
	return rc;
}

int crac_cmd_restore(int argc, char **argv)
{
	/* An image written by the criu engine: cmd_restore_criu.c. */
	if (argc >= 2 && argv[1][0] != '-' && crac__criu_is_image(argv[1]))
		return crac_cmd_restore_criu(argc, argv);
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--pid") || !strncmp(argv[i], "--pid=", 6))
			return resume(argc, argv);
	if (argc < 2) {
		cli_err("usage: crac restore DIR [--populate | --lazy] [-- ARGS...] | crac restore --pid PID [-- ARGS...]");
		return 2;
	}
	/*
	 * --verify-files: the loader also compares each mapped file's first
	 * and last page with the image's checksums, beyond its stat identity
	 * (image/check.c). Passed on in the environment of the loader (it
	 * reads CRAC_VERIFY_FILES=1; the restored program's environment is
	 * its own, from the image), so that the loader's command line stays
	 * the one crac_cmd_restore_image builds.
	 */
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (i > 0 && !strcmp(argv[i], "--")) {
			while (i < argc)
				argv[n++] = argv[i++];
			break;
		}
		if (i > 0 && !strcmp(argv[i], "--verify-files")) {
			setenv("CRAC_VERIFY_FILES", "1", 1);
			continue;
		}
		if (i > 0 && !strcmp(argv[i], "--env") && i + 1 < argc)
			argv[n++] = argv[i++];   /* its value is never an option */
		argv[n++] = argv[i];
	}
	argv[n] = NULL;
	return crac_cmd_restore_image(n, argv);
}
