/* SPDX-License-Identifier: MIT */
/*
 * crac.h - Coordinated Restore at Checkpoint for native Linux programs.
 *
 * A program registers resources: each has a before_checkpoint callback
 * (close files and sockets, drop secrets, quiesce threads) and an
 * after_restore callback (reopen, reseed, take a new identity). At a warm
 * point it calls crac_checkpoint_restore(); an engine then snapshots the
 * process (or pauses it for an external snapshot) and, later, the process
 * continues from that call in a restored instance.
 *
 * Conventions
 *  - Every function returns 0 (or a documented non-negative value) on
 *    success and a negative errno value on failure; errno is not used.
 *  - Handles (crac_context, crac_resource, crac_report, crac_inhibitor) are
 *    opaque.
 *  - Every function is thread-safe.
 *
 * Ordering (as in OpenJDK CRaC's jdk.crac):
 *  - A context holds resources and contexts; it is itself a resource.
 *  - Inside a context, before_checkpoint runs in increasing priority and,
 *    among equal priorities, in reverse registration order. after_restore
 *    runs over exactly the resources that were notified (less any that was
 *    unregistered meanwhile), in the exact reverse of that order: among
 *    equal priorities, forward registration order.
 *  - Every resource is notified even after another failed. If any
 *    before_checkpoint failed, no snapshot is taken, after_restore still
 *    runs for every notified resource, and the report lists every failure.
 *  - A resource registered while a checkpoint is running is notified from
 *    the next checkpoint on. After crac_unregister() returns, none of the
 *    resource's callbacks start again.
 *
 * Every public function is also documented in a man page (docs/man).
 */
#ifndef CRAC_H
#define CRAC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CRAC_VERSION_MAJOR 0
#define CRAC_VERSION_MINOR 1
#define CRAC_VERSION_PATCH 0

/* Returns the library version as "MAJOR.MINOR.PATCH" (static storage). */
const char *crac_version(void);

/* ------------------------------------------------------------------------
 * Handles and events
 * --------------------------------------------------------------------- */

typedef struct crac_context crac_context;
typedef struct crac_resource crac_resource;
typedef struct crac_report crac_report;
typedef struct crac_inhibitor crac_inhibitor;

enum crac_event_kind {
	CRAC_EVENT_BEFORE_CHECKPOINT = 1,
	CRAC_EVENT_AFTER_RESTORE = 2,
};

/*
 * What happened to the process, as seen by after_restore callbacks and
 * returned by crac_checkpoint_restore().
 */
enum crac_outcome {
	/* The snapshot was taken and this is the original process going on
	 * (CRAC_KEEP_RUNNING, or an engine that does not stop it). */
	CRAC_CONTINUED = 1,
	/* This process is a restored instance (image engines), or was resumed
	 * after a pause / external snapshot, or the sim engine simulated it. */
	CRAC_RESTORED = 2,
	/* No snapshot was taken: a before_checkpoint callback or a safety
	 * check failed; the after_restore callbacks ran anyway. */
	CRAC_ABORTED = 3,
};

/*
 * The event passed to every callback. Read-only; valid for the duration of
 * the callback. Times are nanoseconds: *_realtime from CLOCK_REALTIME,
 * *_monotonic from CLOCK_MONOTONIC of the process that took them (a
 * restored process may run on another boot: compare boot ids).
 * Fields that do not apply are zero / NULL.
 */
typedef struct crac_event {
	size_t size;                  /* sizeof(struct crac_event) of the library */
	enum crac_event_kind kind;
	enum crac_outcome outcome;    /* after_restore only: what happened */
	const char *engine;           /* "sim", "pause", "image", "external", ... */
	uint64_t generation;          /* number of restores this lineage went through */
	uint8_t instance_id[16];      /* fresh random id for each restored instance */
	int64_t checkpoint_realtime;  /* when before_checkpoint started */
	int64_t checkpoint_monotonic;
	int64_t restore_realtime;     /* after_restore only: when the process resumed */
	int64_t restore_monotonic;
	int64_t deadline_monotonic;   /* callbacks must finish before this (0: none) */
	int argc;                     /* new arguments given at restore, if any */
	char *const *argv;            /* argv[0] is the first new argument (no program
					 name); NULL-terminated; NULL if none */
	char *const *envp;            /* new KEY=VALUE pairs given at restore */
	/* after_restore only: how the clocks moved between checkpoint and restore. */
	int64_t realtime_jump;        /* restore_realtime - checkpoint_realtime */
	int64_t monotonic_offset;     /* what crac_clock_monotonic_ns() adds to CLOCK_MONOTONIC now */
	int boot_changed;             /* 1 if the boot id differs from the checkpoint's */
	/* after_restore only: 1 if the restore was noticed after the fact (the
	 * external engine's watcher: VM generation counter, boot id, clock
	 * jump); no before_checkpoint ran for it. Read it only when
	 * ev->size > offsetof(crac_event, unannounced): an older libcrac
	 * passes a shorter event. */
	int unannounced;
} crac_event;

/*
 * A callback. Returns 0 on success or a negative errno value on failure (a
 * positive value counts as a failure with -EIO);
 * crac_fail() sets a message and returns its code in one step:
 *     return crac_fail(-EBUSY, "connection to %s still open", peer);
 */
typedef int (*crac_callback)(const crac_event *ev, void *arg);

/*
 * Records a message for the failure the calling callback is about to return
 * and returns `code` (a negative errno value; a non-negative code is turned
 * into -EIO). Only meaningful from inside a callback; the message is kept per
 * thread until the callback returns. printf-style format.
 */
int crac_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------------
 * Contexts and resources
 * --------------------------------------------------------------------- */

/* Priorities: lower runs earlier before the checkpoint and later after the
 * restore. User resources use CRAC_PRIO_NORMAL; runtime checks such as the
 * file-descriptor inventory use higher values so that they see the state left
 * by user callbacks and are the first to run after restore. */
enum crac_priority {
	CRAC_PRIO_NORMAL = 0,
	CRAC_PRIO_RUNTIME = 100,   /* built-in runtime resources (clock, random) */
	CRAC_PRIO_SECURITY = 150,  /* secret wiping */
	CRAC_PRIO_CHECKS = 200,    /* safety checks: last before the snapshot */
};

/*
 * Describes a resource to register. Unused fields must be zero.
 * `size` keeps the structure extensible: 0 (what a designated initializer
 * leaves) means the fields up to `size`; a later version appends fields
 * after it and reads them only when `size` says the caller has them.
 */
struct crac_resource_def {
	const char *name;             /* shown in reports; copied */
	crac_callback before_checkpoint; /* may be NULL */
	crac_callback after_restore;     /* may be NULL */
	void *arg;                    /* passed to both callbacks */
	int priority;                 /* enum crac_priority or any int */
	size_t size;                  /* 0, or sizeof(struct crac_resource_def) */
};

/* The process-wide context. Never NULL; never freed. */
crac_context *crac_global_context(void);

/*
 * Creates a context named `name` (copied; no '/') and registers it as a
 * resource of `parent` (NULL: the global context) with the given priority.
 * Its resources are notified when the parent notifies it, in the order
 * described above. -EINVAL: no name, a '/' in it, or out NULL; -ENOMEM.
 */
int crac_context_create(crac_context *parent, const char *name, int priority,
			crac_context **out);

/*
 * Unregisters a context from its parent, unregisters everything registered
 * in it (recursively, with crac_unregister's guarantees) and frees it.
 * -EINVAL for NULL or the global context.
 */
int crac_context_destroy(crac_context *ctx);

/*
 * Registers a resource in `ctx` (NULL: the global context). `out` may be NULL
 * if the resource is never unregistered. If a checkpoint is running, the
 * resource takes part from the next checkpoint on.
 * -EINVAL: def or def->name missing, or both callbacks NULL; -ENOMEM.
 */
int crac_register(crac_context *ctx, const struct crac_resource_def *def,
		  crac_resource **out);

/*
 * Unregisters and frees a resource. After it returns no callback of the
 * resource starts; if another thread is running one of its callbacks right
 * now, it waits for that callback to return (a callback may unregister its
 * own resource: then it does not wait). -EINVAL for NULL.
 */
int crac_unregister(crac_resource *res);

/* ------------------------------------------------------------------------
 * Checkpoint
 * --------------------------------------------------------------------- */

enum crac_flags {
	/* After a successful image snapshot, the original process goes on
	 * (crac_checkpoint_restore returns CRAC_CONTINUED) instead of exiting. */
	CRAC_KEEP_RUNNING = 1u << 0,
	/* Run before_checkpoint, the safety checks and after_restore, but take
	 * no snapshot (returns CRAC_ABORTED if anything failed, else
	 * CRAC_CONTINUED). */
	CRAC_DRY_RUN = 1u << 1,
	/* Apply the safety checks and policies (see crac_check) even with an
	 * engine that loses nothing (sim, pause): lets tests see what the image
	 * engine would refuse, and makes close/reopen policies act. */
	CRAC_FORCE_CHECKS = 1u << 2,
	/* Image engine: write an incremental image, holding only the pages
	 * written since the image this process was restored from (one made
	 * incremental too) or last checkpointed into with CRAC_KEEP_RUNNING
	 * and this flag;
	 * every other page is referenced in that image, which the new one
	 * names (restore needs it). Without a usable parent (none yet, gone,
	 * replaced, the target itself, a chain of 8) the image is full and
	 * CRAC_LOG=info says why. Also CRAC_IMAGE_INCREMENTAL=1. */
	CRAC_INCREMENTAL = 1u << 3,
	/* Image engine: compress the page data with zstd (level 1), one frame
	 * per chunk, so restore, lazy restore included, decompresses only the
	 * chunks it reads; a chunk compression does not shrink is stored as
	 * it is. Also CRAC_IMAGE_COMPRESS=1 (or =LEVEL, 1-19). A build
	 * without zstd fails the checkpoint with -ENOTSUP. */
	CRAC_COMPRESS = 1u << 4,
};

/*
 * Options for crac_checkpoint_restore(). Initialise with crac_options_init();
 * the library reads at most `size` bytes, so old binaries keep working.
 */
struct crac_options {
	size_t size;                /* sizeof(struct crac_options) */
	const char *engine;         /* NULL: $CRAC_ENGINE, else "sim" */
	const char *image_dir;      /* image engines; NULL: $CRAC_IMAGE_DIR */
	int64_t deadline_ms;        /* whole before-phase budget; 0: default (10 s), <0: none */
	int64_t restore_deadline_ms;/* after_restore budget; 0: default (10 s), <0: none */
	unsigned flags;             /* enum crac_flags */
};

/* Fills `opts` with defaults. */
void crac_options_init(struct crac_options *opts);

/*
 * Checkpoints the process and, in a restored instance, returns there.
 *
 * Waits for inhibitors, runs the before_checkpoint callbacks of every
 * registered resource (global context), the safety checks, the engine, then
 * the after_restore callbacks. `opts` may be NULL (defaults). If `report` is
 * not NULL, it receives a report (free it with crac_report_free) whenever
 * one exists: always on failure or abort, and also when after_restore
 * callbacks failed; otherwise *report is set to NULL.
 *
 * Deadlines: a callback cannot be interrupted; one that returns after the
 * deadline (opts.deadline_ms from the start of the call) adds an ETIMEDOUT
 * failure naming it, which aborts the checkpoint (CRAC_ABORTED). An
 * after_restore callback past opts.restore_deadline_ms is reported the same
 * way without undoing the restore. Callbacks of a checkpoint requested
 * through the control endpoint run on a thread of the library.
 *
 * Returns CRAC_CONTINUED, CRAC_RESTORED or CRAC_ABORTED (see enum
 * crac_outcome), or a negative errno:
 *   -EBUSY     another checkpoint is in progress (another thread)
 *   -EDEADLK   called from inside a callback (recursive checkpoint)
 *   -ENOENT    unknown engine
 *   -ENOTSUP   engine not available here (the report says why)
 *   -ETIMEDOUT inhibitors were not released before the deadline
 *   other      the engine failed (the report says why)
 * A CRAC_ABORTED or negative return means no snapshot was taken.
 * Unless CRAC_KEEP_RUNNING is set, a successful image snapshot ends the
 * original process (exit status 0) and this call returns only in restored
 * instances.
 */
int crac_checkpoint_restore(const struct crac_options *opts, crac_report **report);

/*
 * Names of the engines built into the library, NULL-terminated (static).
 */
const char *const *crac_engines(void);

/* ------------------------------------------------------------------------
 * Reports
 * --------------------------------------------------------------------- */

enum crac_phase {
	CRAC_PHASE_CHECKPOINT = 1,  /* a before_checkpoint callback or the orchestration */
	CRAC_PHASE_CHECK = 2,       /* a safety check */
	CRAC_PHASE_ENGINE = 3,      /* the engine */
	CRAC_PHASE_RESTORE = 4,     /* an after_restore callback */
};

/* One failure. Strings live as long as the report. */
struct crac_failure {
	enum crac_phase phase;
	const char *resource;       /* path of the resource, e.g. "db/pool"; "crac" for the runtime */
	int code;                   /* negative errno */
	const char *message;        /* never NULL */
};

/* Number of failures in the report (0 for NULL). */
size_t crac_report_count(const crac_report *rep);

/* The i-th failure, or NULL if out of range. */
const struct crac_failure *crac_report_get(const crac_report *rep, size_t i);

/* What the checkpoint led to (enum crac_outcome) or its negative errno;
 * -EINVAL for NULL. */
int crac_report_status(const crac_report *rep);

/*
 * Prints the report, one line per failure, to `f`:
 *   crac: checkpoint aborted: 1 problem
 *     before_checkpoint db/pool: Device or resource busy (EBUSY): 3 connections open
 * The phase words are before_checkpoint, check, engine and after_restore.
 * Returns 0, -EINVAL for NULL arguments, or -EIO.
 */
int crac_report_print(const crac_report *rep, FILE *f);

/*
 * Formats the report as crac_report_print would into a newly allocated
 * string (free with free()). Returns 0 or -ENOMEM.
 */
int crac_report_format(const crac_report *rep, char **out);

/* Frees a report (NULL is fine). */
void crac_report_free(crac_report *rep);

/* ------------------------------------------------------------------------
 * Inhibitors
 * --------------------------------------------------------------------- */

/*
 * Marks the start of a critical section that a checkpoint must not cut
 * through. A checkpoint waits (up to its deadline) until every inhibitor is
 * released; while a checkpoint is running, crac_inhibit blocks until it has
 * finished. `why` appears in the report if the checkpoint times out.
 * -EDEADLK when called from inside a callback of a running checkpoint;
 * -EINVAL if out is NULL; -ENOMEM.
 */
int crac_inhibit(const char *why, crac_inhibitor **out);

/* Ends the critical section started by crac_inhibit. -EINVAL for NULL. */
int crac_release(crac_inhibitor *inh);

/* ------------------------------------------------------------------------
 * Safety checks and policies
 *
 * Before an image is written, crac takes an inventory of the process: every
 * file descriptor (regular file, directory, pipe, fifo, TCP/UDP/Unix socket,
 * eventfd, epoll, timerfd, signalfd, inotify, memfd, io_uring, device, tty),
 * shared mappings and SysV shm, child processes, POSIX timers and itimers.
 * Anything the engine cannot restore refuses the checkpoint, one report line
 * per item (phase CRAC_PHASE_CHECK), naming the fd, kind, path or address,
 * and the policy that would allow it. stdin/stdout/stderr are never
 * refused: a restored process gets the restoring command's stdio.
 *
 * Policies say what to do instead, matched first-wins by kind and a glob on
 * the path or address. One rule per line:
 *
 *     KIND  GLOB  ACTION  [OPTION=VALUE]...      # comment
 *
 * KIND: file dir pipe fifo socket tcp udp unix eventfd epoll timerfd
 * signalfd inotify memfd io_uring device tty userfaultfd pidfd fanotify
 * perf_event bpf anon_inode fd (any descriptor) mapping shm child timer any. ACTION: error (the default), warn (leave it, print a
 * warning; it will be missing after an image restore), close (close it
 * before the checkpoint), reopen (regular files at the same offset and
 * flags, directories, and listening TCP/Unix sockets re-bound after
 * restore). Options of reopen: changed=error|ok (a regular file whose size
 * or modification time changed since the checkpoint: refuse, the default,
 * or accept). Rules come from $CRAC_POLICIES (read at start-up), from
 * `crac run --policies FILE`, or from the functions below.
 * --------------------------------------------------------------------- */

/*
 * Adds one rule (file syntax) after the existing ones. On a syntax error
 * returns -EINVAL and writes "LINE:COL: message" (line 1) into err.
 */
int crac_policy_add(const char *rule, char *err, size_t errlen);

/*
 * Adds every rule of a file. On a syntax error returns -EINVAL and writes
 * "FILE:LINE:COL: message" into err; if the file cannot be read, its
 * negative errno and "FILE: reason". No rule of the file is added then.
 * -EINVAL without a message for a NULL path.
 */
int crac_policy_load(const char *path, char *err, size_t errlen);

/* Removes every rule. Returns 0. */
int crac_policy_clear(void);

/*
 * Takes the inventory now, without checkpointing and without running any
 * callback, and applies the policies as the image engine would. Returns the
 * number of items that would refuse a checkpoint (0: none), or a negative
 * errno. If `report` is not NULL it receives a report listing them (free
 * with crac_report_free), or NULL when there is none.
 */
int crac_check(crac_report **report);

/* ------------------------------------------------------------------------
 * Restore-time environment: clock, randomness, identity, arguments, secrets
 * --------------------------------------------------------------------- */

/*
 * A monotonic clock that never goes backwards across any number of
 * restores, even on another boot: CLOCK_MONOTONIC plus an offset. As in
 * CRaC: if the boot id changed, the clock advances by the wall-clock gap
 * between checkpoint and restore (a negative gap counts as 0); on the same
 * boot it only must not go backwards. Returns nanoseconds.
 */
int64_t crac_clock_monotonic_ns(void);

/* The same as a timespec. Returns 0 or -EINVAL for NULL. */
int crac_clock_monotonic(struct timespec *ts);

/*
 * Fills `buf` with random bytes read from getrandom(2) on every call (no
 * state is kept in memory, so nothing can repeat across instances restored
 * from one image). Returns 0, -EINVAL for NULL with len > 0, or a negative
 * errno if the kernel has no randomness to give.
 */
int crac_random_bytes(void *buf, size_t len);

/*
 * A fast per-thread generator (not for keys; use crac_random_bytes), also
 * reseeded on every restore in every thread.
 */
uint64_t crac_random_u64(void);

/*
 * Opt-in: in every restored instance (outcome CRAC_RESTORED), reseed libc's
 * rand()/srand(), random()/srandom() and the drand48 family from getrandom.
 * Generators an application seeded on purpose (for reproducibility) keep
 * their sequence unless this is enabled; states the application owns
 * (initstate, random_r, drand48_r, rand_r) are never touched. Enabled during
 * a checkpoint, it takes effect from the next one. `enable` 0 turns it off
 * again. Returns 0 or -ENOMEM.
 */
int crac_random_reseed_libc(int enable);

/*
 * The identity of this instance: a 128-bit id (an RFC 9562 version-4 UUID),
 * fresh after every restore, and the generation counter (number of restores
 * in this lineage). Either pointer may be NULL. Returns 0.
 */
int crac_instance_id(uint8_t id[16], uint64_t *generation);

/* Formats the instance id as "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" (37 bytes
 * with the NUL). Returns 0 or -EINVAL. */
int crac_instance_uuid(char out[37]);

/* Writes a new random version-4 UUID (from crac_random_bytes). 0, -EINVAL,
 * or the errno of crac_random_bytes. */
int crac_uuid(char out[37]);

/*
 * The arguments and environment given to the last restore or resume
 * (`crac restore ... -- ARGS`, `--env K=V`); *argc 0 and NULL vectors if
 * none. The new variables are also set in `environ` before any after_restore
 * callback runs. Every restore replaces them (a restore without arguments
 * gives argc 0); vectors stay valid until the next restore. Either pointer
 * may be NULL. Returns 0.
 */
int crac_restore_args(int *argc, char *const **argv, char *const **envp);

/*
 * Marks [ptr, ptr+len) as secret: image engines write it as zeros (it is
 * never stored) and `crac inspect` lists it. The application re-derives
 * the secret after restore. Regions may overlap; registering again at the
 * same start keeps one region with the larger length. -EINVAL for NULL or
 * len 0, -ENOMEM. crac_secret_forget() removes the region starting at ptr
 * (-ENOENT if none).
 */
int crac_secret_region(void *ptr, size_t len);
int crac_secret_forget(void *ptr);

/* ------------------------------------------------------------------------
 * Control endpoint (external trigger)
 * --------------------------------------------------------------------- */

/*
 * Starts the control endpoint: a Unix socket $CRAC_CONTROL_DIR/PID.sock
 * (DIR/PID.sock: DIR is $CRAC_CONTROL_DIR, else $XDG_RUNTIME_DIR/crac or
 * /run/user/UID/crac when that is a directory of ours not writable by group
 * or others, else /tmp/crac-UID; created 0700; socket 0600, removed by
 * crac_control_stop() and at normal exit; DIR/PID.pidns-INO.sock, INO the
 * inode of /proc/self/ns/pid, where a live socket of another pid namespace's
 * process with the same pid number holds PID.sock). Only
 * processes of the same uid, or root, may connect; others are refused and
 * logged on stderr. Through it `crac checkpoint PID` requests a checkpoint
 * (and receives the report), `crac restore --pid PID` resumes a process
 * paused by the pause engine. Also started at load time when CRAC_CONTROL=1.
 * Idempotent. -EEXIST if the socket exists and belongs to a live process;
 * -EPERM if the directory is not owned by us or is not mode 0700;
 * -ETIMEDOUT if a look at the directory or the socket (made by a helper
 * process) did not return within 10 s: its file system does not answer
 * (logged, naming the step and the path).
 */
int crac_control_start(void);

/* Stops the control endpoint and removes its socket. Idempotent; returns 0. */
int crac_control_stop(void);

/*
 * Writes the path of this process's control socket to buf (even if not
 * started). Returns the length without the NUL, -EINVAL for NULL, or
 * -ENAMETOOLONG if it does not fit in `len` or in a socket address.
 */
int crac_control_path(char *buf, size_t len);

/* ------------------------------------------------------------------------
 * Messages
 *
 * crac says what it does on its own (a warning from a policy, a refused
 * control connection, what a restore dropped) through one logger. The
 * default sink writes one line "crac: MESSAGE" to stderr with a single
 * write(2) (no stdio lock, so it is safe while the program's threads are
 * stopped). The level comes from $CRAC_LOG (error, warn, info or debug;
 * default warn) at load time, or from crac_log_set_level().
 * --------------------------------------------------------------------- */

enum crac_log_level {
	CRAC_LOG_ERROR = 0,
	CRAC_LOG_WARN = 1,
	CRAC_LOG_INFO = 2,
	CRAC_LOG_DEBUG = 3,
};

/*
 * A message sink: `msg` is one line without the "crac: " prefix and without
 * a newline, valid only during the call. It may be called from any thread,
 * from inside a checkpoint round and from a restored process before its
 * after_restore callbacks; it must not call crac's API. Messages emitted
 * while the program's other threads are stopped for an image (when the
 * sink could deadlock on a lock one of them holds) go to the default sink.
 */
typedef void (*crac_log_fn)(enum crac_log_level level, const char *msg, void *arg);

/*
 * Routes crac's messages to fn (NULL: back to the default stderr sink).
 * Returns 0. Thread-safe; a message being delivered while the sink changes
 * reaches the old or the new sink, whole.
 */
int crac_log_set_handler(crac_log_fn fn, void *arg);

/*
 * Messages of `level` and more severe are delivered; the others are
 * dropped. Returns the previous level, or -EINVAL for an unknown level.
 */
int crac_log_set_level(enum crac_log_level level);

#ifdef __cplusplus
}
#endif

#endif /* CRAC_H */
