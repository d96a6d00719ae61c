/* SPDX-License-Identifier: MIT */
/*
 * cli.h - the `crac` command: one file per subcommand group.
 * Exit status of every subcommand: 0 success, 1 the operation failed (a
 * report or an error was printed), 2 usage error or feature unavailable.
 */
#ifndef CRAC_CLI_H
#define CRAC_CLI_H

#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/* Every subcommand gets argv[0] = its name, its options from argv[1] on. */
int crac_cmd_checkpoint(int argc, char **argv);  /* cmd_checkpoint.c */
int crac_cmd_restore(int argc, char **argv);     /* cmd_restore.c: --pid, image, criu image */
int crac_cmd_run(int argc, char **argv);         /* cmd_run.c */
int crac_cmd_check(int argc, char **argv);       /* cmd_check.c */
int crac_cmd_inspect(int argc, char **argv);     /* cmd_image.c */
int crac_cmd_flatten(int argc, char **argv);     /* cmd_flatten.c */

/*
 * `crac restore`, parsed once (cmd_restore.c) for its three forms: resume
 * a paused process (--pid), restore an image of the image engine
 * (cmd_image.c) or of the criu engine (cmd_restore_criu.c).
 */
struct cli_restore {
	const char *dir;              /* DIR; NULL with --pid */
	int pid;                      /* --pid; 0: none */
	bool populate, lazy, stats, timens, trust, verify, quiet;
	const char *image_only;       /* the first image-engine option given, for messages */
	int n_env;                    /* --env K=V values, in order */
	char **env;
	int n_args;                   /* ARGS after "--" */
	char **args;
};
int crac_cmd_restore_image(const struct cli_restore *r);   /* cmd_image.c: execs the loader */
int crac_cmd_restore_criu(const struct cli_restore *r);    /* cmd_restore_criu.c */

/*
 * watch.c: body(arg) run by a forked child that this process watches: each
 * step the child names (cli_watch_step, before a call that may not return
 * on a file system that stopped answering) may last limit_ms at most;
 * then the child is killed, "WHO: STEP did not return after N ms (BOUND):
 * its file system does not answer; given up" is said, the temporary it
 * named (cli_watch_tmp) removed, and 1 returned. Else the child's exit
 * status (a child killed by a signal: 1, or 0 if it had put its
 * temporary in place, cli_watch_place, which is said). limit_ms 0:
 * body(arg) here, unwatched. In the child, between
 * steps (cli_watch_idle), nothing is watched (image/dir.c's bounded
 * helpers end at the same limit themselves). The step's `slow` names the
 * CRAC_TEST_SLOW_FS operation that delays it in tests (NULL: none).
 */
int cli_watch_run(const char *who, long limit_ms, const char *bound, int (*body)(void *), void *arg);
void cli_watch_step(const char *slow, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_watch_idle(void);
/* The child's temporary (its identity st, NULL: unknown) and the place it
 * is renamed to (named before the temporary exists): see watch.c. */
struct stat;
void cli_watch_tmp(const char *path, const struct stat *st);
void cli_watch_place(const char *path);
/* The command's process: the watcher's pid in the child, else ours. */
int cli_watch_owner(void);

/* Prints "crac: <msg>" to stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * getopt_long for every command (main.c). shortopts must start with "+:":
 * parsing stops at the first operand and at "--" (a program's own
 * arguments are never parsed), and a missing value is told apart. Every
 * option taking a value accepts "--opt VALUE" and "--opt=VALUE". Returns
 * the option's code, CLI_OPERAND when it stopped at an operand (argv[optind];
 * the caller takes it, optind++, and may go on parsing), or -1 at "--"
 * (optind past it) or at the end. An unknown or ambiguous option, a missing
 * value or a value given to an option that takes none: one line naming it,
 * with usage (the command's "usage: crac ..." line), and '?' (the caller
 * exits 2). Reset optind to 0 before the first call of a command.
 */
#define CLI_OPERAND 1
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
	       const char *usage);

/*
 * --compress[=LEVEL] of crac checkpoint and crac flatten, one parser
 * (main.c): the zstd level, CRAC_IMG_ZSTD_LEVEL without a value, or -1
 * after one line (a usage error: a LEVEL that is not 1 to
 * CRAC_IMG_ZSTD_MAX_LEVEL in decimal digits, a build without zstd). getopt
 * gives an optional value only after '=': `next` is the argument after a
 * bare --compress when the command would take it for an operand (what
 * next_as names) although the user may have meant a level: a level there
 * ("--compress 5") is refused, with the spelling that works.
 */
int cli_compress_level(const char *arg, const char *next, const char *next_as);

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

/* ---- warm-up triggers and the supervisor (supervise.c) ------------------ */

#include <signal.h>
#include <sys/types.h>

/* getopt_long codes of the trigger options, shared by run and start */
enum {
	CLI_OPT_AFTER = 0x101, CLI_OPT_ON, CLI_OPT_LISTENING, CLI_OPT_READY, CLI_OPT_STATS,
	CLI_OPT_FIRST_FREE = 0x120
};
#define CLI_TRIGGER_LONGOPTS \
	{ "checkpoint-after", required_argument, 0, CLI_OPT_AFTER }, \
	{ "checkpoint-on", required_argument, 0, CLI_OPT_ON }, \
	{ "checkpoint-when-listening", required_argument, 0, CLI_OPT_LISTENING }, \
	{ "checkpoint-on-ready", no_argument, 0, CLI_OPT_READY }, \
	{ "stats", no_argument, 0, CLI_OPT_STATS }

struct cli_triggers {
	long long after_ms;          /* --checkpoint-after; -1: none */
	int on_signal;               /* --checkpoint-on; 0: none */
	int listen_port;             /* --checkpoint-when-listening; 0: none */
	int listen_family;           /* its ADDR: AF_INET, AF_INET6, 0 any */
	unsigned char listen_addr[16];
	bool on_ready;               /* --checkpoint-on-ready */
	bool stats;                  /* --stats: the figures of each checkpoint */
};

extern const char cli_triggers_help[];
void cli_triggers_init(struct cli_triggers *t);
bool cli_triggers_any(const struct cli_triggers *t);
/* Handles option c: 1 handled, 0 not a trigger option, -1 bad (said). */
int cli_trigger_opt(struct cli_triggers *t, int c, const char *arg);
long long cli_parse_duration(const char *s);   /* ms, -1 if bad */
/* cmd_checkpoint.c: a checkpoint's STATS record (NULL: none came) as
 * crac checkpoint --stats prints it, on stderr. */
void cli_print_stats(int pid, const char *record);
/* cmd_checkpoint.c: a positive pid from s, or 0 if it is not one. */
int cli_parse_pid(const char *s);
/* cmd_checkpoint.c: sends tokens to pid's control endpoint, its answer to
 * stdout; the exit status: 0 done, 1 refused or failed, 2 not asked. */
int cli_request(int pid, const char *const *tokens);
int cli_parse_signal(const char *s);           /* 0 if bad */
/* Sends msg to the sd_notify socket named sockname ("/path", "@name"),
 * with n_fds descriptors (FDSTORE=1) as SCM_RIGHTS; they stay the caller's. */
#define CLI_NOTIFY_MAX_FDS 253   /* SCM_MAX_FD: the most one datagram carries */
int cli_notify_send(const char *sockname, const char *msg);
int cli_notify_send_fds(const char *sockname, const char *msg, const int *fds, int n_fds);

struct cli_super {
	const char *who;                 /* "run", "start": for messages */
	struct cli_triggers trig;
	bool armed;                      /* after/listening/ready not fired yet */
	/* restoring an image (crac start): no socket of ours for the program
	 * unless there is $NOTIFY_SOCKET to relay to (cli_super_prepare) */
	bool warm;
	bool quiet;                      /* success lines not printed */
	/* SIGCHLD was ignored (SIG_IGN or SA_NOCLDWAIT) by our caller: the
	 * kernel would reap our child unseen; ours is the default, and the
	 * program gets it ignored again (cli_super_init, spawn_child) */
	bool chld_ignored;
	const char *const *tokens;       /* the CHECKPOINT request */
	/* On the request thread, after a successful checkpoint: 0 (msg: a
	 * line to print, or empty) or -1 (msg: why it failed). */
	int (*installed)(struct cli_super *s, int pid, char *msg, size_t len);
	/* When a restored child answers on its control endpoint. */
	void (*restored)(struct cli_super *s);
	void *priv;
	int listen_fds;                  /* LISTEN_FDS passed on to the program */
	/* with listen_fds: DIR/activation is written here after each
	 * successful checkpoint (`crac run`; crac start's install does it) */
	const char *activation_dir;
	/* on the request thread, before the request: cli_activation_record()
	 * of the program, for installed() */
	char *activation;
	/* --checkpoint-on SIGNAL where this instance writes nothing: the
	 * signal is still consumed (never forwarded) and this line said */
	const char *no_write_why;
	/* restoring: the read end of the loader's point-of-no-return pipe
	 * ($CRAC_LOADER_PONR_FD); 0: none */
	int ponr_fd;
	bool ponr_seen;                  /* "p" came: the loader passed it */
	bool ponr_jumped;                /* "j" came: the program's code runs */
	bool ponr_eof;                   /* it ended (without "p": refused) */
	/* state */
	pid_t child;
	long long started_ms;
	const char *outer_notify;        /* $NOTIFY_SOCKET we were given */
	char notify_dir[128], notify_path[128 + 1 + 40];   /* notify_dir "/" name */
	int notify_fd, sig_fd, done_pipe[2];
	bool ready_sent;
	unsigned ignored;                /* notifications of others, ignored */
	unsigned unrelayed;              /* the program's, not relayed (said: the first few) */
	bool ready_pending;              /* READY=1 found $NOTIFY_SOCKET full: sent again */
	long long ready_retry_ms;        /* when */
	bool notify_pidfd;               /* the kernel passes the sender's pidfd */
	void *busy;                      /* the request in progress */
	int checkpoints;                 /* successful ones */
	sigset_t old_mask;
	int stop_sig;                    /* a stop signal came before the restore answered */
};

/* The restore was refused before the loader's point of no return (nothing
 * of the program ran) and no stop signal came: wait status | this flag. */
#define CLI_SUPER_RESTORE_FAILED 0x10000

int cli_super_init(struct cli_super *s, const char *who);
/* Signal fd, pipes and the program's NOTIFY_SOCKET (s->notify_path, when
 * $NOTIFY_SOCKET is set or with --checkpoint-on-ready); spawn calls it.
 * 0 or -1 (said). */
int cli_super_prepare(struct cli_super *s);
/* Forks and execs argv (PATH searched) with extra_env added; -1 on failure. */
pid_t cli_super_spawn(struct cli_super *s, char *const argv[], char *const extra_env[]);
/* Runs until the child ends: its exit status for us, or
 * CLI_SUPER_RESTORE_FAILED | wait status when `restoring` and the loader
 * refused before its point of no return (s->ponr_fd said nothing). */
int cli_super_wait(struct cli_super *s, bool restoring);
/* The exit status for a wait status (raises a fatal signal on ourselves). */
int cli_super_end(struct cli_super *s, int ws);

/* ---- socket activation (activation.c) ------------------------------------- */

struct crac_img_view;
#define CLI_ACTIVATION_FILE "activation"   /* DIR/activation: "IDX FD" lines */
/* What the loader takes of $CRAC_ACTIVATION_FDS, and the sockets of
 * $LISTEN_FDS: CRAC_ACTIVATION_MAX entries (src/loader/activation.h, the
 * loader's own definition). */

/* DIR/name, a regular file of ours (or root's) only we may write, at most
 * 64 KiB, no link followed, as a string; NULL with *err = -errno. */
char *cli_read_small(const char *dir, const char *name, int *err);
/* The same, bounded as image/dir.c's looks (crac start's --timeout): given
 * up, NULL with *err = -ETIMEDOUT and msg naming the file (one line). */
char *cli_read_small_msg(const char *dir, const char *name, int *err, char *msg, size_t msglen);
/* $LISTEN_FDS when $LISTEN_PID is this process, else -1; -2 when it is
 * ours but $LISTEN_FDS no count (0...CRAC_ACTIVATION_MAX). */
int cli_listen_fds(void);
/* Which of process pid's descriptors are the sockets of socket activation
 * we hold at fds 3..3+n-1: "IDX FD" lines (malloc'd, maybe ""), NULL if
 * out of memory. */
char *cli_activation_record(int pid, int n);
/* At a restore of DIR (its header in v) with listen_fds sockets passed
 * now: 0 and act = "CRAC_ACTIVATION_FDS=SRC:DST,..." (or "" when none is
 * recorded and none passed); -1 and why when they do not match (a socket
 * recorded that is not passed now, sockets passed and none recorded, a
 * damaged record); -ETIMEDOUT and why when the read of DIR/activation was
 * given up on (image/dir.c's bound: crac start's --timeout). */
int cli_activation_env(const char *dir, const struct crac_img_view *v, int listen_fds, char *act,
		       size_t actlen, char *why, size_t len);
/* `crac restore DIR` under socket activation: sets CRAC_ACTIVATION_FDS for
 * the loader; 0, or -1 after one line (a mismatch: refused). */
int cli_restore_activation(const char *dir);

/* cmd_run.c: LD_PRELOAD with libcrac for a program; 0 or -1 (said). */
int cli_preload_env(void);
int crac_cmd_start(int argc, char **argv);       /* cmd_start.c */

#endif
