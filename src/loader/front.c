/* SPDX-License-Identifier: MIT */
/*
 * front.c - the `crac` command's first instructions: the restore loader is
 * the crac command, so that `crac restore DIR` is one exec.
 *
 * Restoring an image means exec'ing the static loader (loader.c), which
 * becomes the restored process. When `crac` was only the dynamically linked
 * command-line tool, `crac restore DIR` cost two execs: the tool (the
 * dynamic linker, libc's relocations and start: about 70 page faults and
 * 4 ms of CPU here, where the first touch of a page is slow) only to parse
 * the options and exec the loader. So the installed `crac` is the loader,
 * linked once more with this file, and the tool is `crac-cli`, installed
 * next to the loader (libexec) and built next to it.
 *
 * front_dispatch() looks at the arguments before anything else:
 *
 *   crac restore DIR [--populate | --lazy] [--stats] [--trust-owner]
 *                    [--verify-files] [--quiet | -q] [--env K=V | --env=K=V]...
 *                    [-- ARGS...]
 *       options spelled out in full, DIR an image of the image engine, no
 *       socket activation (LISTEN_FDS, LISTEN_PID) and no CRAC_LOADER: the
 *       loader's own work. It returns 1: the loader goes on with the
 *       arguments after "restore", in this process;
 *   anything else (another command, --help, --timens, --pid, an
 *   abbreviated option, --populate with --lazy, a usage error, a CRIU image,
 *   an activated restore, a loader named by CRAC_LOADER)
 *       the tool's: crac-cli is exec'd with the same arguments and
 *       environment, so that it behaves, and words its errors, exactly as
 *       it always did. A command other than restore pays one static exec
 *       more (about 0.5 ms), a restore one fewer.
 *
 * The crac-loader executable links front_none.c instead (0: its arguments
 * are the loader's).
 */
#include "image/image.h"
#include "loader/sys.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <sys/stat.h>

#define CLI_NAME "crac-cli"
#define DIR_MAX 4095   /* the tool's limit (PATH_MAX - 1) */

int front_dispatch(int argc, char **argv, char **envp);

/* --env's value as the tool takes it: KEY=VALUE, KEY not empty. */
static bool env_value_ok(const char *kv)
{
	if (kv[0] == '=')
		return false;
	for (; *kv; kv++)
		if (*kv == '=')
			return true;
	return false;
}

/* Is argv[1..] a restore of DIR the loader does exactly as the tool would? */
static bool loader_restore(int argc, char **argv, char **envp)
{
	const char *dir = 0;
	bool populate = false, lazy = false;

	if (argc < 3 || strcmp(argv[1], "restore"))
		return false;
	for (char **e = envp; *e; e++)
		if ((has_prefix(*e, "CRAC_LOADER=") && (*e)[12]) || has_prefix(*e, "LISTEN_FDS=") ||
		    has_prefix(*e, "LISTEN_PID="))
			return false;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--"))
			break;
		if (!strcmp(a, "--populate"))
			populate = true;
		else if (!strcmp(a, "--lazy"))
			lazy = true;
		else if (!strcmp(a, "--stats") || !strcmp(a, "--trust-owner") || !strcmp(a, "--verify-files") ||
			 !strcmp(a, "--quiet") || !strcmp(a, "-q"))
			;
		else if (!strcmp(a, "--env")) {
			if (i + 1 >= argc || !env_value_ok(argv[++i]))
				return false;
		} else if (has_prefix(a, "--env=")) {
			if (!env_value_ok(a + 6))
				return false;
		} else if (a[0] != '-' && a[0] && !dir && strlen(a) <= DIR_MAX)
			dir = a;
		else
			return false;
	}
	if (!dir || (populate && lazy))
		return false;

	/* an image of the criu engine holds its marker (engines/criu.h) */
	static char marker[DIR_MAX + 16];
	struct stat st;
	size_t n = strlen(dir);
	memcpy(marker, dir, n);
	memcpy(marker + n, "/crac-criu", sizeof("/crac-criu"));
	if (sys_fstatat(AT_FDCWD, marker, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
		return false;
	return true;
}

/* Execs path with the same arguments and environment; returns its error. */
static long exec_cli(const char *path, char **argv, char **envp)
{
	return SYS(SYS_execve, path, argv, envp, 0, 0, 0);
}

int front_dispatch(int argc, char **argv, char **envp)
{
	static char self[4096 + sizeof(CLI_NAME) + 1];
	static char line[8192];
	struct crac_img_buf b = { line, 0, sizeof(line) };
	long n, e = -ENOENT;
	bool tried_self = false;

	if (loader_restore(argc, argv, envp))
		return 1;

	/* crac-cli next to this binary (the build tree, or an install that
	 * keeps them together), then in the libexec directory */
	n = sys_readlinkat(AT_FDCWD, "/proc/self/exe", self, 4096);
	if (n > 0 && n < 4096) {
		self[n] = 0;
		char *slash = self + n;
		while (slash > self && *slash != '/')
			slash--;
		if (*slash == '/') {
			memcpy(slash + 1, CLI_NAME, sizeof(CLI_NAME));
			e = exec_cli(self, argv, envp);
			tried_self = true;
		}
	}
	/* Name what was tried, each with its own error: the libexec copy
	 * only when the one next to us is absent (another error there, say
	 * EACCES, is a broken install that must be said, not passed over). */
	crac_img_puts(&b, "crac: cannot run " CLI_NAME ", the crac command's tool: ");
	crac_img_put_escaped(&b, tried_self ? self : "next to /proc/self/exe");
	crac_img_put_err(&b, e);
#ifdef CRAC_INSTALL_LIBEXECDIR
	if (e == -ENOENT) {
		e = exec_cli(CRAC_INSTALL_LIBEXECDIR "/" CLI_NAME, argv, envp);
		crac_img_puts(&b, "; " CRAC_INSTALL_LIBEXECDIR "/" CLI_NAME);
		crac_img_put_err(&b, e);
	}
#endif
	crac_img_puts(&b, "\n");
	sys_write(2, line, b.len);
	sys_exit_group(2);
	__builtin_unreachable();
}
