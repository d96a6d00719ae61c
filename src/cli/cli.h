/*
 * cli.h - the `crac` command: one file per subcommand group.
 * Exit status of every subcommand: 0 success, 1 the operation failed (a
 * report or an error was printed), 2 usage error or feature unavailable.
 */
#ifndef CRAC_CLI_H
#define CRAC_CLI_H

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

#endif
