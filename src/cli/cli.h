/*
 * cli.h - the `crac` command: one file per subcommand group.
 * Exit status of every subcommand: 0 success, 1 the operation failed (a
 * report or an error was printed), 2 usage error or feature unavailable.
 */
#ifndef CRAC_CLI_H
#define CRAC_CLI_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

int crac_cmd_checkpoint(int argc, char **argv);  /* cmd_checkpoint.c */
int crac_cmd_restore(int argc, char **argv);     /* cmd_restore.c: --pid, else image */
int crac_cmd_run(int argc, char **argv);         /* cmd_run.c */
int crac_cmd_check(int argc, char **argv);       /* cmd_check.c */
/* cmd_image.c (image engine): `crac restore DIR ...` and `crac inspect DIR`.
 * argv[0] is the subcommand name. */
int crac_cmd_restore_image(int argc, char **argv);
int crac_cmd_inspect(int argc, char **argv);

/* Prints "crac: <msg>" to stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Length limits of path arguments, in bytes without the terminating NUL
 * (main.c). Every path argument is checked against one of them before use,
 * and a longer one is refused with one line that gives the limit.
 *
 *   CLI_PATH_MAX       any file or directory the kernel opens: PATH_MAX - 1.
 *   CLI_IMAGE_DIR_MAX  an image directory DIR: the image engine also uses
 *                      DIR.tmp-XXXXXX/pages and DIR.old-PID/header, so DIR
 *                      leaves room for 32 bytes of suffix.
 */
#define CLI_PATH_MAX (PATH_MAX - 1)
#define CLI_IMAGE_DIR_MAX (PATH_MAX - 1 - 32)

/*
 * Checks the path argument `arg` of option `what` (e.g. "--checkpoint-to")
 * against `max` bytes and copies it to `out` (outlen > max). With
 * `absolute`, a relative path is first made absolute against the current
 * directory, and the result must fit in `max`. Returns 0, or -1 after one
 * line on stderr (too long, or no usable current directory).
 */
int cli_path_arg(const char *what, const char *arg, size_t max, bool absolute,
		 char *out, size_t outlen);

/*
 * A path as messages show it: unchanged up to 80 bytes, else its first and
 * last 32 bytes around "...". Returns buf (len >= 80).
 */
const char *cli_path_show(const char *path, char *buf, size_t len);
#define CLI_PATH_SHOW_LEN 96

#endif
