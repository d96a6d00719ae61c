/* SPDX-License-Identifier: MIT */
/*
 * cmd_run.c - `crac run -- PROG ARGS`: run an unmodified program with
 * libcrac preloaded and its control endpoint on, so that `crac checkpoint
 * PID` can reach it.
 */
#include "cli.h"
#include "image/bounded.h"
#include "image/dir.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Finds libcrac.so: $CRAC_LIBDIR, next to this binary (build tree), at the
 * libdir relative to this binary's directory (the libexecdir of an install:
 * "../lib"; a tree installed into another prefix, or moved, preloads its own
 * library), then the configured libdir. */
static int find_library(char *out, size_t len)
{
	char exe[PATH_MAX], cand[4][PATH_MAX + 64], msg[PATH_MAX + 400];
	const char *dirs[4], *cands[5];
	int nd = 0, nc = 0, found = -1;
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
	for (int i = 0; i < nd; i++)
		snprintf(cand[nc++], sizeof(cand[0]), "%s/libcrac.so", dirs[i]);
	if (n > 0)
		snprintf(cand[nc++], sizeof(cand[0]), "%s/%s/libcrac.so", exe, CRAC_LIBEXEC_TO_LIBDIR);
	snprintf(cand[nc++], sizeof(cand[0]), "%s/libcrac.so", CRAC_INSTALL_LIBDIR);
	for (int i = 0; i < nc; i++)
		cands[i] = cand[i];
	cands[nc] = NULL;
	/* The access(2) of each in turn by one helper of image/dir.c, bounded
	 * (crac run's limit, crac start's --timeout): a directory on a file
	 * system that does not answer ends the search, said with the path
	 * and the time waited. */
	for (int from = 0; from < nc; from += found + 1) {
		int rc = crac_img_access_first_msg(cands + from, R_OK, &found, msg, sizeof(msg));
		if (rc == -ETIMEDOUT) {
			cli_err("the search for libcrac.so stopped: %s", msg);
			return rc;
		}
		if (rc < 0)
			break;
		/* its resolution bounded the same way */
		if ((rc = crac_img_realpath_as_msg(cands[from + found], out, len, "librealpath", msg, sizeof(msg))) ==
		    -ETIMEDOUT) {
			cli_err("the search for libcrac.so stopped: %s", msg);
			return rc;
		}
		if (rc == 0)
			return 0;
	}
	return -ENOENT;
}

/* LD_PRELOAD gets libcrac (first), CRAC_CONTROL=1: for the program we run. */
int cli_preload_env(void)
{
	char lib[PATH_MAX], *preload = NULL;
	const char *old;

	if (find_library(lib, sizeof(lib)) < 0) {
		cli_err("cannot find libcrac.so to preload (looked in $CRAC_LIBDIR, next to crac-cli, %s from there "
			"and %s)", CRAC_LIBEXEC_TO_LIBDIR, CRAC_INSTALL_LIBDIR);
		return -1;
	}
	/* The dynamic linker splits LD_PRELOAD at spaces and colons, with no
	 * escape: such a path would be ignored ("cannot be preloaded") and the
	 * program would run without libcrac, and without its control endpoint. */
	if (strpbrk(lib, " :\t\n")) {
		cli_err("cannot preload %s: LD_PRELOAD cannot name a path with a space or a colon; install crac "
			"into a prefix without them, or set CRAC_LIBDIR to a directory whose real path has none",
			lib);
		return -1;
	}
	old = getenv("LD_PRELOAD");
	if (asprintf(&preload, "%s%s%s", lib, old && *old ? ":" : "", old ? old : "") < 0)
		return -1;
	setenv("LD_PRELOAD", preload, 1);
	setenv("CRAC_CONTROL", "1", 1);
	free(preload);
	return 0;
}

static void run_usage(FILE *f)
{
	fprintf(f,
		"usage: crac run [options] -- PROG [ARGS...]\n"
		"Runs an unmodified program with libcrac preloaded and its control endpoint on, so that\n"
		"`crac checkpoint PID` reaches it. Without a trigger crac becomes the program (same pid).\n"
		"  --engine E             engine of its checkpoints (sets $CRAC_ENGINE)\n"
		"  --checkpoint-to DIR    image directory (made absolute, at most %d bytes);\n"
		"                         without --engine or $CRAC_ENGINE, selects the image engine\n"
		"  --policies FILE        policy file (at most %d bytes)\n"
		"  --keep-running         a checkpoint a trigger starts leaves the program running\n"
		"                         (else the image engine ends it once its image is written)\n"
		"%s"
		"  --help                 this text\n"
		"Under socket activation (LISTEN_FDS, LISTEN_PID), a checkpoint a trigger starts records in\n"
		"DIR/activation which of the program's descriptors are systemd's sockets, for a restore\n"
		"given sockets again (`crac restore DIR`, `crac start`).\n"
		"exit status: the program's (killed by a signal: the same signal); 2 usage error;\n"
		"126/127 PROG not executable / not found\n",
		CLI_IMAGE_DIR_MAX, CLI_PATH_MAX, cli_triggers_help);
}

/*
 * Path arguments: --checkpoint-to is made absolute (the program may chdir
 * before it checkpoints) and must fit CLI_IMAGE_DIR_MAX once absolute;
 * --policies (read at library start-up, before the program runs) and PROG
 * must fit CLI_PATH_MAX. A checkpoint directory without --engine (and
 * without $CRAC_ENGINE) selects the image engine: it is the only one that
 * writes there. With a trigger (supervise.c), crac forks the program and
 * supervises it.
 */
int crac_cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "engine", required_argument, 0, 'e' },
		{ "checkpoint-to", required_argument, 0, 'c' },
		{ "policies", required_argument, 0, 'p' },
		{ "keep-running", no_argument, 0, 'k' },
		{ "help", no_argument, 0, 'h' },
		CLI_TRIGGER_LONGOPTS,
		{ 0, 0, 0, 0 },
	};
	char path[PATH_MAX], show[CLI_PATH_SHOW_LEN], msg[PATH_MAX + 400];
	const char *engine = NULL;
	struct cli_triggers trig;
	bool dir = false, keep = false;
	int c, t;

	/* Its looks at files that may sit on a file system that does not
	 * answer (the policy file, the library's install paths) wait at most
	 * CRAC_BOUNDED_GRACE_MS (image/dir.c's helpers). */
	static char bound[64];
	long limit_ms = crac_bounded_grace_ms();
	snprintf(bound, sizeof(bound), "crac run's limit, %ld ms", limit_ms);
	crac_img_fs_limit(0, limit_ms, bound);
	cli_triggers_init(&trig);
	optind = 0;
	while ((c = cli_getopt(argc, argv, "+:e:c:p:kh", opts, "usage: crac run [options] -- PROG [ARGS...]; crac run --help")) != -1 && c != CLI_OPERAND) {
		if ((t = cli_trigger_opt(&trig, c, optarg)) < 0)
			return 2;
		if (t)
			continue;
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
			int rc = crac_img_access_msg(path, R_OK, msg, sizeof(msg));
			if (rc == -ETIMEDOUT) {   /* msg names the path and the time waited */
				cli_err("policy file: %s", msg);
				return 2;
			}
			if (rc < 0) {
				cli_err("policy file %s: %s", cli_path_show(path, show, sizeof(show)), strerror(-rc));
				return 2;
			}
			setenv("CRAC_POLICIES", path, 1);
			break;
		case 'k':
			keep = true;
			break;
		case 'h':
			run_usage(stdout);
			return 0;
		default:
			return 2;   /* said by cli_getopt */
		}
	}
	if (optind >= argc) {
		cli_err("usage: crac run [options] -- PROG [ARGS...] (crac run --help)");
		return 2;
	}
	if (cli_path_arg("run PROG", argv[optind], CLI_PATH_MAX, false, path, sizeof(path)) < 0)
		return 2;
	if (keep && !cli_triggers_any(&trig)) {
		cli_err("run --keep-running is for the checkpoints of a trigger (--checkpoint-after, "
			"-on, -when-listening, -on-ready); with `crac checkpoint` say --keep-running there");
		return 2;
	}
	if (trig.stats && !cli_triggers_any(&trig)) {
		cli_err("run --stats is for the checkpoints of a trigger (--checkpoint-after, -on, "
			"-when-listening, -on-ready); with `crac checkpoint` say --stats there");
		return 2;
	}
	if (engine)
		setenv("CRAC_ENGINE", engine, 1);
	else if (dir && !(getenv("CRAC_ENGINE") && *getenv("CRAC_ENGINE")))
		setenv("CRAC_ENGINE", "image", 1);
	if (cli_preload_env() < 0)
		return 2;
	if (cli_triggers_any(&trig)) {
		static const char *keep_tokens[] = { "CHECKPOINT", "keep=1", NULL };
		static const char *plain_tokens[] = { "CHECKPOINT", NULL };
		struct cli_super s;
		const char *eng = getenv("CRAC_ENGINE"), *img = getenv("CRAC_IMAGE_DIR");
		cli_super_init(&s, "run");
		s.trig = trig;
		s.armed = true;
		s.tokens = keep ? keep_tokens : plain_tokens;
		/* socket activation: the image says which of the program's
		 * descriptors were systemd's sockets (DIR/activation), for a
		 * `crac restore DIR` or `crac start` given sockets again */
		if (cli_listen_fds() > 0)
			s.listen_fds = cli_listen_fds();
		if (s.listen_fds > 0 && eng && !strcmp(eng, "image") && img && *img)
			s.activation_dir = img;
		if (cli_super_spawn(&s, argv + optind, NULL) < 0)
			return 125;
		return cli_super_wait(&s, false);
	}
	execvp(argv[optind], argv + optind);
	int e = errno;
	cli_err("cannot run %s: %s", cli_path_show(argv[optind], show, sizeof(show)), strerror(e));
	return e == ENOENT ? 127 : 126;
}
