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
#include "loader/lazy.h"
#include "loader/sys.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/stat.h>
#include <time.h>

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

/*
 * The look for a CRIU image's marker, bounded as crac-cli's restore bounds
 * it (cmd_restore.c criu_image: crac restore's limit, image/bounded.h's
 * CRAC_BOUNDED_GRACE_MS, or CRAC_TEST_SYNC_GRACE_MS in tests). On a file
 * system that does not answer (an NFS or FUSE server gone) an lstat never
 * returns: made by this process, `crac restore DIR` would wait for ever
 * where crac-cli gives up. So a thread of ours makes it (the loader's
 * fill helper's way: a thread of this thread group, its exit said by the
 * kernel clearing marker_tid), waited for until the limit; given up on,
 * it is said as crac-cli says it and the process ends (exit_group takes
 * the thread with it: such a wait is killable). Once the look answered,
 * the loader's own reads of DIR are not bounded (a restore has no
 * deadline; a file system that stops answering in the middle keeps it
 * waiting, as the loader exec'd by crac-cli would).
 */
#define FRONT_LIMIT_MS 30000   /* = CRAC_BOUNDED_GRACE_MS (image/bounded.h) */

static char marker[DIR_MAX + 16];   /* DIR/crac-criu */
static struct stat marker_st;
static long marker_rc;
static uint32_t marker_tid;
static char marker_stack[16384] __attribute__((aligned(16)));

static void marker_look(void *arg)
{
	(void)arg;
	marker_rc = sys_fstatat(AT_FDCWD, marker, &marker_st, AT_SYMLINK_NOFOLLOW);
	SYS(SYS_exit, 0, 0, 0, 0, 0, 0);   /* this thread only */
	__builtin_unreachable();
}

static int64_t mono_ms(void)
{
	struct timespec t;

	sys_clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* CRAC_TEST_SYNC_GRACE_MS (tests), else FRONT_LIMIT_MS. */
static int64_t front_limit_ms(char **envp)
{
	for (char **e = envp; *e; e++)
		if (has_prefix(*e, "CRAC_TEST_SYNC_GRACE_MS=")) {
			int64_t v = 0;
			for (const char *c = *e + sizeof("CRAC_TEST_SYNC_GRACE_MS=") - 1; *c >= '0' && *c <= '9'; c++)
				v = v * 10 + (*c - '0');
			return v;
		}
	return FRONT_LIMIT_MS;
}

/* Is dir an image of the criu engine (it holds its marker, engines/criu.h,
 * a regular file)? Given up on at the limit: said, and the process ends. */
static bool criu_image(const char *dir, char **envp)
{
	size_t n = strlen(dir);

	memcpy(marker, dir, n);
	memcpy(marker + n, "/crac-criu", sizeof("/crac-criu"));
	uint64_t *sp = (uint64_t *)(marker_stack + sizeof(marker_stack));
	*--sp = 0;                                    /* arg */
	*--sp = (uint64_t)(uintptr_t)marker_look;    /* fn */
	unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
			      CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
	if (lazy_clone(flags, sp, &marker_tid, &marker_tid, 0) <= 0) {
		/* no thread (a seccomp filter, a limit on threads): the look
		 * made here, unbounded, as crac-cli's without a helper */
		marker_rc = sys_fstatat(AT_FDCWD, marker, &marker_st, AT_SYMLINK_NOFOLLOW);
		return marker_rc == 0 && S_ISREG(marker_st.st_mode);
	}
	int64_t t0 = mono_ms(), limit = front_limit_ms(envp), waited = 0;
	uint32_t t;
	while ((t = __atomic_load_n(&marker_tid, __ATOMIC_ACQUIRE)) != 0) {
		waited = mono_ms() - t0;
		if (waited >= limit) {
			static char line[2 * DIR_MAX + 300];
			struct crac_img_buf b = { line, 0, sizeof(line) };
			crac_img_puts(&b, "crac: restore ");
			crac_img_put_escaped(&b, dir);
			crac_img_puts(&b, ": the lstat of ");
			crac_img_put_escaped(&b, marker);
			crac_img_puts(&b, " did not return after ");
			crac_img_putu(&b, (uint64_t)waited);
			crac_img_puts(&b, " ms (crac restore's limit, ");
			crac_img_putu(&b, (uint64_t)limit);
			crac_img_puts(&b, " ms): its file system does not answer; given up\n");
			sys_write(2, line, b.len);
			sys_exit_group(1);
		}
		int64_t left = limit - waited;
		struct timespec ts = { left / 1000, (left % 1000) * 1000000 };
		SYS(SYS_futex, &marker_tid, FUTEX_WAIT, t, &ts, 0, 0);
	}
	return marker_rc == 0 && S_ISREG(marker_st.st_mode);
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
	return !criu_image(dir, envp);
}

/* Execs path with the same arguments and environment; returns its error. */
static long exec_cli(const char *path, char **argv, char **envp)
{
	return SYS(SYS_execve, path, argv, envp, 0, 0, 0);
}

/* "DIR/NAME" into out (cap bytes) from the first n bytes of dir; false when
 * it does not fit. */
static bool join(char *out, size_t cap, const char *dir, size_t n, const char *name)
{
	size_t k = strlen(name);

	if (n + 1 + k + 1 > cap)
		return false;
	memcpy(out, dir, n);
	out[n] = '/';
	memcpy(out + n + 1, name, k + 1);
	return true;
}

int front_dispatch(int argc, char **argv, char **envp)
{
	static char self[4096];
	static char cli[3][4096 + 512];   /* next to us, relative to us, the configured path */
	static char line[3 * sizeof(cli[0]) + 512];
	struct crac_img_buf b = { line, 0, sizeof(line) };
	const char *what[3] = { 0, 0, 0 };
	long err[3] = { -ENOENT, -ENOENT, -ENOENT }, n;
	int tried = 0;

	if (loader_restore(argc, argv, envp))
		return 1;

	/*
	 * crac-cli is looked for, in this order, until a place holds one (an
	 * error other than ENOENT there, say EACCES, is a broken install that
	 * must be said, not passed over):
	 *  1. next to this binary: the build tree, or an install that keeps
	 *     them together;
	 *  2. at the path from the bindir to the libexecdir, taken relative to
	 *     this binary's directory (CRAC_BIN_TO_LIBEXEC, computed when
	 *     configuring: "../libexec"): a tree installed with `cmake --install
	 *     --prefix P`, or moved, finds its own tool, not the configured
	 *     prefix's (which may hold another version, or nothing);
	 *  3. the configured absolute libexecdir (CRAC_INSTALL_LIBEXECDIR).
	 */
	n = sys_readlinkat(AT_FDCWD, "/proc/self/exe", self, sizeof(self));
	if (n > 0 && n < (long)sizeof(self)) {
		self[n] = 0;
		size_t dl = (size_t)n;
		while (dl > 0 && self[dl] != '/')
			dl--;
		if (self[dl] == '/' && join(cli[tried], sizeof(cli[0]), self, dl, CLI_NAME)) {
			what[tried] = cli[tried];
			err[tried] = exec_cli(cli[tried], argv, envp);
			tried++;
		}
#ifdef CRAC_BIN_TO_LIBEXEC
		/* "" when bindir and libexecdir are one directory: done above */
		if (tried == 1 && err[0] == -ENOENT && sizeof(CRAC_BIN_TO_LIBEXEC) > 1 &&
		    join(cli[tried], sizeof(cli[0]), self, dl, CRAC_BIN_TO_LIBEXEC "/" CLI_NAME)) {
			what[tried] = cli[tried];
			err[tried] = exec_cli(cli[tried], argv, envp);
			tried++;
		}
#endif
	}
#ifdef CRAC_INSTALL_LIBEXECDIR
	if (!tried || err[tried - 1] == -ENOENT) {
		what[tried] = CRAC_INSTALL_LIBEXECDIR "/" CLI_NAME;
		err[tried] = exec_cli(what[tried], argv, envp);
		tried++;
	}
#endif
	/* Name what was tried, each with its own error. */
	crac_img_puts(&b, "crac: cannot run " CLI_NAME ", the crac command's tool: ");
	if (what[0] != cli[0])
		crac_img_puts(&b, "not next to /proc/self/exe (unreadable)");
	for (int i = 0; i < tried; i++) {
		if (i || what[0] != cli[0])
			crac_img_puts(&b, "; ");
		crac_img_put_escaped(&b, what[i]);
		crac_img_put_err(&b, err[i]);
	}
	crac_img_puts(&b, "\n");
	sys_write(2, line, b.len);
	sys_exit_group(2);
	__builtin_unreachable();
}
