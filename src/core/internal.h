/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what the API core shares with the engines, the runtime
 * resources, the control endpoint and the CLI. Not installed.
 */
#ifndef CRAC_INTERNAL_H
#define CRAC_INTERNAL_H

#include "crac.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CRAC_HIDDEN __attribute__((visibility("hidden")))

/* Set by a supervisor (`crac start`, `crac run` with a trigger) to its pid
 * for its program, which it gave a parent-death signal (cli/supervise.c):
 * the checkpoint does not record that signal as the program's. */
#define CRAC_SUPERVISOR_ENV "CRAC_SUPERVISOR_PID"

/* ---- messages (core/log.c) ------------------------------------------- */

/*
 * Every message crac prints on its own: one line, no "crac: " prefix, no
 * newline (the sink adds them). errno is preserved. Safe while the
 * program's threads are stopped if the caller brackets that window with
 * crac__log_stopped_begin/end (then only the lock-free stderr sink is used).
 */
void crac__log(enum crac_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3))) CRAC_HIDDEN;
void crac__vlog(enum crac_log_level level, const char *fmt, va_list ap) CRAC_HIDDEN;
bool crac__log_enabled(enum crac_log_level level) CRAC_HIDDEN;
int crac__log_parse_level(const char *s) CRAC_HIDDEN;
void crac__log_stopped_begin(void) CRAC_HIDDEN;
void crac__log_stopped_end(void) CRAC_HIDDEN;

/* ---- reports (core/report.c) ---------------------------------------- */

crac_report *crac__report_new(void) CRAC_HIDDEN;
/* Appends a failure; the strings are copied. Never fails visibly: on ENOMEM
 * the entry is replaced by a static "out of memory" entry. */
void crac__report_add(crac_report *rep, enum crac_phase phase, const char *resource,
		      int code, const char *fmt, ...) __attribute__((format(printf, 5, 6))) CRAC_HIDDEN;
void crac__report_vadd(crac_report *rep, enum crac_phase phase, const char *resource,
		       int code, const char *fmt, va_list ap) CRAC_HIDDEN;
void crac__report_set_status(crac_report *rep, int status) CRAC_HIDDEN;

/* All of buf written to fd (write(2) again after a short write or EINTR):
 * 0, or -errno (-EIO when write(2) wrote nothing). No stdio. */
int crac__write_all(int fd, const void *buf, size_t len) CRAC_HIDDEN;

/* "EBUSY" for -EBUSY / EBUSY; "E?" if unknown. */
const char *crac__errno_name(int code) CRAC_HIDDEN;

/*
 * Text from another process or a file (a control peer's answer, an image)
 * printed safely (core/util.c): every byte below 0x20 (tab and newline too),
 * 0x7f, and every byte that is not part of valid UTF-8 or encodes a C1
 * control (U+0080-U+009F) is written as the 4 characters \xNN (lowercase
 * hex); everything else, backslash included, as is.
 * crac__put_escaped writes s to f; crac__escaped writes it to buf (always
 * NUL-terminated, truncated at a character boundary) and returns buf.
 */
void crac__put_escaped(FILE *f, const char *s) CRAC_HIDDEN;
char *crac__escaped(const char *s, char *buf, size_t len) CRAC_HIDDEN;

/* ---- time (core/util.c) ---------------------------------------------- */

int64_t crac__now_ns(int clockid) CRAC_HIDDEN;
/* Thread id of the caller (gettid). */
int crac__gettid(void) CRAC_HIDDEN;

/* ---- string vectors (core/util.c) -------------------------------------- */

/*
 * A NULL-terminated deep copy of v: of its first n entries when n >= 0 (a
 * NULL entry among them is copied as ""), else up to its NULL. *out is NULL
 * when there is nothing to copy. 0, or -ENOMEM (then *out is NULL).
 */
int crac__strv_copy(char *const *v, int n, char ***out) CRAC_HIDDEN;
/* Frees a vector from crac__strv_copy (NULL is fine). */
void crac__strv_free(char **v) CRAC_HIDDEN;

/* ---- a checkpoint round (core/checkpoint.c) -------------------------- */

struct crac_round;

/*
 * The phases of a checkpoint round, in order, for progress records and
 * `crac checkpoint --stats` (names: crac__ckpt_phase_name). The image
 * engine goes through prepare..verify; other engines only through the
 * round's own phases (inhibitors, callbacks, after_restore).
 */
enum crac_ckpt_phase {
	CRAC_CKPT_INHIBITORS,        /* waiting for crac_inhibit holders */
	CRAC_CKPT_CALLBACKS,         /* before_checkpoint callbacks, safety checks */
	CRAC_CKPT_PREPARE,           /* image: arena, temporary directory */
	CRAC_CKPT_FREEZE,            /* image: stopping the threads, flushing stdio */
	CRAC_CKPT_CAPTURE,           /* image: process state, mappings */
	CRAC_CKPT_PAGES,             /* image: scanning and writing the pages */
	CRAC_CKPT_SYNC,              /* image: descriptors, header, fsync */
	CRAC_CKPT_VERIFY,            /* image: reading it back, rename into place */
	CRAC_CKPT_AFTER,             /* after_restore callbacks (keep-running) */
	CRAC_CKPT_LAZY,              /* a lazily restored process's memory loading (first, when it is) */
	CRAC_CKPT_NPHASES
};
/* "inhibitors", "callbacks", "prepare", ...: one word each (the wire). */
extern const char *const crac__ckpt_phase_name[CRAC_CKPT_NPHASES] CRAC_HIDDEN;

/*
 * What a round measured. Written by the round's thread only; read by the
 * requester's progress callback on the same thread. While the program's
 * threads are stopped, only plain stores and clock_gettime touch it.
 */
struct crac_ckpt_stats {
	int64_t start_ns;                       /* CLOCK_MONOTONIC, round start */
	int64_t phase_start_ns;                 /* of the current phase */
	int64_t last_sent_ns;                   /* last progress record */
	int64_t phase_ns[CRAC_CKPT_NPHASES];    /* time spent in each phase */
	unsigned entered;                       /* bit per phase entered */
	enum crac_ckpt_phase phase;             /* the current one */
	/* The pages (image engine; else 0): */
	uint64_t scanned_pages;   /* pages of the mappings whose pages were looked at */
	uint64_t stored_pages;    /* written to the pages file */
	uint64_t zero_pages;      /* all-zero anonymous pages left out */
	uint64_t written_bytes;   /* page data, then the whole image (pages + header) */
	uint64_t done_bytes;      /* pages stored or skipped so far ... */
	uint64_t total_bytes;     /* ... of about this many (an estimate; 0: unknown) */
	uint32_t threads, maps;
};

/*
 * Who asked for the checkpoint when it came through the control endpoint:
 * told once when the snapshot is taken or the process is paused (`reply`),
 * and at the end of the round with the full report (`finish`).
 */
struct crac_requester {
	void (*reply)(struct crac_requester *rq, int status, const char *text);
	void (*finish)(struct crac_requester *rq, int status, const crac_report *rep);
	/* In a process restored from an image the requester's connection does
	 * not exist (its fd number may even be reused): drop it unused. */
	void (*forget)(struct crac_requester *rq);
	/* Optional (NULL: not wanted): how far the round is. `final` once,
	 * right before `finish`, with the whole round's figures (threads run
	 * then). Otherwise it may be called while the program's threads are
	 * stopped: it must take no lock, allocate nothing, never block (drop
	 * the record instead). */
	void (*progress)(struct crac_requester *rq, const struct crac_ckpt_stats *s, bool final);
	void *priv;
	int compress;                /* zstd level the request asked for (token compress=N), 0: none */
};

struct crac_round {
	struct crac_options opts;    /* resolved: engine and image_dir set */
	const struct crac_engine *engine;
	crac_report *report;         /* failures of this round */
	crac_event event;            /* the event the callbacks see */
	struct crac_requester *requester; /* NULL for in-process calls */
	struct crac_requester *resumer;   /* who resumed us (pause engine), gets the after_restore report */
	void *engine_state;          /* engine-private */
	void *checks_state;          /* what the safety checks closed for reopening */
	/* New args/env given at resume/restore (owned by the round). */
	int new_argc;
	char **new_argv;
	char **new_envp;
	struct crac_ckpt_stats stats;  /* phases and pages, for the requester */
};

/*
 * The round enters phase p (closes the time of the one before) and tells
 * the requester at once. Safe while the program's threads are stopped.
 */
void crac__round_phase(struct crac_round *r, enum crac_ckpt_phase p) CRAC_HIDDEN;
/* Tells the requester how far the current phase is, at most every 100 ms
 * (calls in between only cost a clock read). Same safety. */
void crac__round_progress(struct crac_round *r) CRAC_HIDDEN;

/*
 * Called by engines when the snapshot exists (or the process is paused) so
 * that an external requester learns it before the process exits or waits.
 */
void crac__round_snapshot_taken(struct crac_round *r, const char *what) CRAC_HIDDEN;

/*
 * Gives the external requester (if any) its final answer now, with the
 * failures collected so far: for engines after which the process waits
 * (pause) or exits (image without keep-running).
 */
void crac__round_finish_requester(struct crac_round *r, int status) CRAC_HIDDEN;

/*
 * Runs a whole round (used by the API and the control endpoint).
 * `rq` may be NULL. Returns as crac_checkpoint_restore().
 */
int crac__checkpoint(const struct crac_options *opts, struct crac_requester *rq,
		     crac_report **report) CRAC_HIDDEN;

/* Identity of the lineage: advanced by every restore (core/checkpoint.c). */
void crac__new_identity(crac_event *ev) CRAC_HIDDEN;
/* Reads the current instance id and generation (either may be NULL). */
void crac__identity(uint8_t id[16], uint64_t *generation) CRAC_HIDDEN;

/* ---- restore-time environment (src/runtime) ----------------------------- */

/*
 * Called by the core in the restored (or resumed) process, after the engine
 * returned CRAC_RESTORED and after crac__new_identity(), before any
 * after_restore callback: moves the clock offset and fills the event's clock
 * fields, exports the new environment to environ, records the new
 * args/env for crac_restore_args(), and marks every random generator for
 * reseeding. (runtime/restore.c)
 */
void crac__runtime_restored(struct crac_round *r) CRAC_HIDDEN;

/*
 * Called before the before_checkpoint callbacks: records the clock state
 * (boot id, realtime, monotonic) that the restore side compares against.
 */
void crac__runtime_checkpointing(struct crac_round *r) CRAC_HIDDEN;

/* Secret regions, for image engines (runtime/secret.c): calls fn for each
 * region (ptr, len) with the registry locked; stops when fn returns non-0. */
int crac__secret_foreach(int (*fn)(void *ptr, size_t len, void *arg), void *arg) CRAC_HIDDEN;

/* ---- engines (src/engines) ------------------------------------------- */

/*
 * An engine. configure() checks that the engine can work here with these
 * options and prepares round->engine_state; checkpoint() takes the snapshot
 * after every before_checkpoint callback succeeded and returns:
 *   CRAC_CONTINUED  the original process goes on (snapshot taken)
 *   CRAC_RESTORED   this is a restored / resumed instance
 *   negative errno  failed; a line was added to round->report
 * release() frees engine_state (may be NULL).
 */
enum crac_engine_flags {
	/* The engine writes an image: unless CRAC_KEEP_RUNNING, the original
	 * process exits (status 0) once checkpoint() returned CRAC_CONTINUED. */
	CRAC_ENGINE_WRITES_IMAGE = 1u << 0,
	/* The engine carries descriptors across (src/objects): the checks
	 * refuse only what it cannot carry, and policies decide per
	 * descriptor instead of acting on the running process. */
	CRAC_ENGINE_CARRIES_FDS = 1u << 1,
};

struct crac_engine {
	const char *name;
	const char *summary;
	unsigned flags;              /* enum crac_engine_flags */
	int (*configure)(struct crac_round *r);
	int (*checkpoint)(struct crac_round *r);
	void (*release)(struct crac_round *r);
	/*
	 * Optional: in a restored process, lets the other threads run again.
	 * The core calls it after reopening what the safety checks closed and
	 * before any after_restore callback, so that no restored thread races
	 * for descriptor numbers being reopened. An engine without it must
	 * have let its threads run before checkpoint() returned.
	 */
	void (*resume_threads)(struct crac_round *r);
};

extern const struct crac_engine crac__engine_sim CRAC_HIDDEN;
extern const struct crac_engine crac__engine_pause CRAC_HIDDEN;

/* Finds an engine by name, NULL if unknown. */
const struct crac_engine *crac__engine_find(const char *name) CRAC_HIDDEN;

/*
 * Pause engine <-> control endpoint: resume a paused process. `argv`/`envp`
 * (NULL-terminated, may be NULL) are copied into the round. The resumer
 * receives the after_restore report through `rq` (round->resumer).
 * -EAGAIN if nothing is paused.
 */
int crac__pause_resume(char *const *argv, char *const *envp, struct crac_requester *rq) CRAC_HIDDEN;

/* ---- control endpoint (core/control.c) -------------------------------- */

/* crac_control_start, its file system steps bounded by deadline_ns
 * (CLOCK_MONOTONIC: a checkpoint's deadline; 0: 10 s from now). On
 * failure msg says why, naming the step and the path. */
int crac__control_start_msg(int64_t deadline_ns, char *msg, size_t msglen) CRAC_HIDDEN;
/* Records our credentials at load time: the supervisor's end is acted on
 * when they changed since (the kernel cleared the parent-death signal). */
void crac__control_note_creds(void) CRAC_HIDDEN;
/*
 * Around an image snapshot: the endpoint's thread and descriptors must not
 * be in the image. suspend stops it (keeping connections being served) and
 * returns whether it ran; resume starts it again if it did (in a restored
 * process, `restored`: with the new pid's socket). A process that could not
 * make its endpoint again (its effective uid changed since it made it) has
 * it parked instead: the listening socket kept open meanwhile (control.c).
 */
bool crac__control_suspend(void) CRAC_HIDDEN;
void crac__control_resume(bool was_running, bool restored) CRAC_HIDDEN;

/*
 * Client side, used by the CLI: sends one request (a verb and key=value
 * tokens, NULL-terminated; escaped on the wire) to the control socket of
 * `pid` and copies every text line of the answer to `out`, escaped with
 * crac__put_escaped. The socket is used only if its directory and the
 * socket belong to the owner of `pid` (no symlink followed) and its
 * listener is process `pid` of that uid (SO_PEERCRED). Returns 0 and
 * the status the server sent in *status (enum crac_outcome or negative
 * errno), or a negative errno if the exchange itself failed, with a message
 * in `err` (size errlen).
 */
int crac__control_request(int pid, const char *const *tokens, FILE *out, int *status,
			  char *err, size_t errlen) CRAC_HIDDEN;
/*
 * The same; with `record` set, the answer's progress records (lines
 * "PROGRESS k=v..." and "STATS k=v...", sent when the request has the
 * token progress=1) go to record(arg, line) instead of `out`. Called on the
 * caller's thread as they arrive.
 */
int crac__control_request_cb(int pid, const char *const *tokens, FILE *out, int *status,
			     char *err, size_t errlen, void (*record)(void *arg, const char *line),
			     void *arg) CRAC_HIDDEN;

/*
 * A process restored lazily by the image engine loads its large mappings in
 * the background for a while: this waits until it is done (no-op otherwise).
 * Called before every checkpoint and, through pthread_atfork, before fork.
 */
void crac__img_lazy_finish(void) CRAC_HIDDEN;
/* The same, given up at deadline_ns (CLOCK_MONOTONIC; 0: never):
 * -ETIMEDOUT, and the lazy loader's thread id in *tid, if it is still
 * loading then (it goes on, hurried); 0 once done. A loader asked to
 * leave (every page in) that does not within the grace of the bounded
 * waits, or was given up on before (its way out does not return): -EBUSY
 * and its thread id in *tid (image_lazy.c). */
int crac__img_lazy_finish_by(int64_t deadline_ns, int *tid) CRAC_HIDDEN;

#endif /* CRAC_INTERNAL_H */
