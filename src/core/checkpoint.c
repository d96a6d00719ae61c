/* SPDX-License-Identifier: MIT */
/*
 * checkpoint.c - one checkpoint round, top to bottom:
 *
 *   1. claim the round (refuse a concurrent or recursive request)
 *   2. resolve options, find and configure the engine
 *   3. wait for a lazy restore's loading, then for inhibitors (up to the
 *      deadline)
 *   4. before_checkpoint over every resource (reports every failure), then
 *      the safety checks (inventory + policies)
 *   5. the engine takes the snapshot, unless something failed (or dry run)
 *   6. reopen what the checks closed; after_restore over exactly the
 *      notified resources, in reverse
 *   7. release the round; hand the report to the caller and any requester
 */
#include "core/core.h"
#include "runtime/checks.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_DEADLINE_MS 10000

struct crac_round_state crac__round_state;

__thread volatile unsigned crac__depth __attribute__((tls_model("initial-exec")));

void crac_options_init(struct crac_options *opts)
{
	if (!opts)
		return;
	memset(opts, 0, sizeof(*opts));
	opts->size = sizeof(*opts);
}

/* Copies what the caller's (possibly older, smaller) struct has. Returns
 * whether the engine was implied by the image directory. */
static bool resolve_options(struct crac_options *o, const struct crac_options *in)
{
	crac_options_init(o);
	if (in && in->size) {
		size_t n = in->size < sizeof(*o) ? in->size : sizeof(*o);
		memcpy(o, in, n);
		o->size = sizeof(*o);
	}
	if (!o->engine || !*o->engine)
		o->engine = getenv("CRAC_ENGINE");
	if (!o->image_dir || !*o->image_dir)
		o->image_dir = getenv("CRAC_IMAGE_DIR");
	/* No engine named anywhere: an image directory asks for the engine
	 * that writes one; without it, the sim engine. */
	if (!o->engine || !*o->engine) {
		bool dir = o->image_dir && *o->image_dir;
		o->engine = dir ? "image" : "sim";
		return dir;
	}
	return false;
}

/* CLOCK_MONOTONIC ns `ms` after `from`; 0 (none) for ms < 0, and for a
 * budget beyond what an int64_t of nanoseconds holds (from + ms * 10^6
 * overflowed, came out in the past and aborted every checkpoint at once). */
static int64_t deadline_after(int64_t ms, int64_t from)
{
	if (ms < 0)
		return 0;
	if (ms == 0)
		ms = DEFAULT_DEADLINE_MS;
	if (from < 0 || ms > (INT64_MAX - from) / 1000000LL)
		return 0;
	return from + ms * 1000000LL;
}

/* ---- progress -------------------------------------------------------------- */

const char *const crac__ckpt_phase_name[CRAC_CKPT_NPHASES] = {
	[CRAC_CKPT_INHIBITORS] = "inhibitors",
	[CRAC_CKPT_CALLBACKS] = "callbacks",
	[CRAC_CKPT_PREPARE] = "prepare",
	[CRAC_CKPT_FREEZE] = "freeze",
	[CRAC_CKPT_CAPTURE] = "capture",
	[CRAC_CKPT_PAGES] = "pages",
	[CRAC_CKPT_SYNC] = "fsync",
	[CRAC_CKPT_VERIFY] = "verify",
	[CRAC_CKPT_AFTER] = "after_restore",
	[CRAC_CKPT_LAZY] = "lazy",
};

#define PROGRESS_EVERY_NS 100000000LL   /* at most 10 records a second within a phase */

/* Adds the time since the current phase started to it; restarts the clock. */
static void close_phase(struct crac_ckpt_stats *s, int64_t now)
{
	if (s->entered)
		s->phase_ns[s->phase] += now - s->phase_start_ns;
	s->phase_start_ns = now;
}

/*
 * Only clock reads, stores into r->stats and the requester's progress
 * callback (which never blocks nor allocates): callable while the image
 * engine holds every other thread stopped.
 */
void crac__round_phase(struct crac_round *r, enum crac_ckpt_phase p)
{
	struct crac_ckpt_stats *s = &r->stats;
	int64_t now = crac__now_ns(CLOCK_MONOTONIC);

	close_phase(s, now);
	s->phase = p;
	s->entered |= 1u << p;
	if (r->requester && r->requester->progress) {
		s->last_sent_ns = now;   /* a phase change is always sent */
		r->requester->progress(r->requester, s, false);
	}
}

void crac__round_progress(struct crac_round *r)
{
	struct crac_ckpt_stats *s = &r->stats;
	int64_t now;

	if (!r->requester || !r->requester->progress)
		return;
	now = crac__now_ns(CLOCK_MONOTONIC);
	if (now - s->last_sent_ns < PROGRESS_EVERY_NS)
		return;
	s->last_sent_ns = now;
	r->requester->progress(r->requester, s, false);
}

void crac__round_snapshot_taken(struct crac_round *r, const char *what)
{
	if (r->requester && r->requester->reply)
		r->requester->reply(r->requester, CRAC_CONTINUED, what);
}

void crac__round_finish_requester(struct crac_round *r, int status)
{
	struct crac_requester *rq = r->requester;

	r->requester = NULL;
	if (rq && rq->progress) {
		/* the figures of the whole round, the current phase closed */
		close_phase(&r->stats, crac__now_ns(CLOCK_MONOTONIC));
		rq->progress(rq, &r->stats, true);
	}
	if (rq && rq->finish) {
		crac__report_set_status(r->report, status);
		rq->finish(rq, status, r->report);
	}
}

/* Step 3: waits for every inhibitor to be released, up to the deadline. */
static int wait_inhibitors(struct crac_round *r, int64_t deadline)
{
	int rc = 0;

	crac__round_phase(r, CRAC_CKPT_INHIBITORS);
	pthread_mutex_lock(&crac__lock);
	while (crac__inhibitors_held()) {
		if (deadline) {
			struct timespec ts;
			/* the condvar uses CLOCK_REALTIME: convert the remaining time */
			int64_t left = deadline - crac__now_ns(CLOCK_MONOTONIC);
			if (left <= 0)
				break;
			int64_t abs = crac__now_ns(CLOCK_REALTIME) + left;
			ts.tv_sec = abs / 1000000000LL;
			ts.tv_nsec = abs % 1000000000LL;
			pthread_cond_timedwait(&crac__cond, &crac__lock, &ts);
		} else {
			pthread_cond_wait(&crac__cond, &crac__lock);
		}
	}
	if (crac__inhibitors_held()) {
		crac__inhibitors_report(r->report);
		rc = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&crac__lock);
	return rc;
}

/*
 * A call from a signal handler, decided before anything is locked or
 * allocated (system calls and a thread-local read only):
 *   -EDEADLK  the handler interrupted this thread inside crac (crac__lock
 *             may be held, or malloc's lock through crac): going on would
 *             deadlock or corrupt the heap;
 *   -EINVAL   the thread runs on its alternate signal stack, so it is in a
 *             handler, which may have interrupted anything (malloc too).
 * A handler on the normal stack that interrupted the program outside crac
 * cannot be told apart from an ordinary call: crac_checkpoint_restore(3).
 */
static int signal_context(void)
{
	stack_t ss;

	if (crac__depth)
		return -EDEADLK;
	if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK))
		return -EINVAL;
	return 0;
}

/*
 * A round refused before it started (nothing locked, claimed or notified):
 * the caller and the requester get a report that needs no memory.
 */
static int refuse_unstarted(int rc, enum crac__fixed_report which, struct crac_requester *rq,
			    crac_report **report)
{
	crac_report *fixed = crac__report_fixed(which);

	if (rq && rq->finish)
		rq->finish(rq, rc, fixed);
	if (report)
		*report = fixed;
	return rc;
}

/*
 * In a restored process, say what the restore led to on stderr (that of
 * `crac restore`, which became this process): the program sees its report,
 * but an operator restoring an unmodified program only sees this.
 */
static void log_restored(struct crac_round *r)
{
	size_t n = crac_report_count(r->report);

	/* The level asked for at restore (crac restore --env CRAC_LOG=...):
	 * the environment variable of the image is the checkpoint's. */
	for (char **e = r->new_envp; e && *e; e++) {
		int l;
		if (strncmp(*e, "CRAC_LOG=", 9) == 0 && (l = crac__log_parse_level(*e + 9)) >= 0)
			crac_log_set_level((enum crac_log_level)l);
	}
	crac__log(CRAC_LOG_INFO, "restored by engine %s: generation %llu%s",
		  r->engine->name, (unsigned long long)r->event.generation,
		  n ? "" : ", every after_restore callback succeeded");
	for (size_t i = 0; i < n; i++) {
		const struct crac_failure *f = crac_report_get(r->report, i);
		crac__log(CRAC_LOG_WARN, "after restore: %s: %s: %s", f->resource,
			  crac__errno_name(f->code), f->message);
	}
}

/* 1. Claims the round for the calling thread: -EBUSY if another thread
 * runs one, -EDEADLK from inside a callback of our own (reported). */
static int claim_round(struct crac_round *r)
{
	int me = crac__gettid();

	pthread_mutex_lock(&crac__lock);
	if (crac__round_state.active) {
		bool recursive = crac__round_state.owner_tid == me;
		int owner = crac__round_state.owner_tid;
		pthread_mutex_unlock(&crac__lock);
		if (recursive) {
			crac__report_add(r->report, CRAC_PHASE_CHECKPOINT, "crac", -EDEADLK,
					 "recursive checkpoint: requested from inside a callback of the running checkpoint");
			return -EDEADLK;
		}
		crac__report_add(r->report, CRAC_PHASE_CHECKPOINT, "crac", -EBUSY,
				 "another checkpoint is in progress (started by thread %d)", owner);
		return -EBUSY;
	}
	crac__round_state.active = true;
	crac__round_state.owner_tid = me;
	pthread_mutex_unlock(&crac__lock);
	return 0;
}

/* 7 (first half). Lets the engine go and frees the round for the next. */
static void release_round(struct crac_round *r)
{
	if (r->engine && r->engine->release)
		r->engine->release(r);
	pthread_mutex_lock(&crac__lock);
	crac__round_state.active = false;
	crac__round_state.owner_tid = 0;
	pthread_cond_broadcast(&crac__cond);
	pthread_mutex_unlock(&crac__lock);
}

/* 2. Options, then the engine by name, configured. */
static int choose_engine(struct crac_round *r, const struct crac_options *in)
{
	bool implied = resolve_options(&r->opts, in);
	int rc;

	/* the deadline runs from here: the engine's own setup (the image
	 * engine looks at its target directory) is part of the budget */
	r->event.deadline_monotonic = deadline_after(r->opts.deadline_ms, crac__now_ns(CLOCK_MONOTONIC));
	r->engine = crac__engine_find(r->opts.engine);
	if (!r->engine) {
		const char *const *e = crac_engines();
		char known[256] = "";
		for (; *e; e++) {
			strncat(known, *e, sizeof(known) - strlen(known) - 1);
			if (e[1])
				strncat(known, ", ", sizeof(known) - strlen(known) - 1);
		}
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "crac", -ENOENT,
				 "unknown engine \"%s\"%s (available: %s)", r->opts.engine,
				 implied ? ", implied by the image directory" : "", known);
		return -ENOENT;
	}
	if (r->engine->configure && (rc = r->engine->configure(r)) < 0) {
		if (!crac_report_count(r->report))
			crac__report_add(r->report, CRAC_PHASE_ENGINE, r->engine->name, rc,
					 "engine %s cannot work here", r->engine->name);
		return rc;
	}
	return 0;
}

/* 3 (first half). The memory of a lazily restored process all in, by the
 * deadline: else refused, naming the loading thread (it goes on loading,
 * hurried, and a later checkpoint finds it done). */
static int lazy_loaded(struct crac_round *r, int64_t deadline)
{
	int tid = 0;
	int64_t t0 = crac__now_ns(CLOCK_MONOTONIC);

	int rc = crac__img_lazy_finish_by(1, &tid);
	if (rc == 0)
		return 0;   /* (a deadline long past: only a look) nothing loading */
	if (rc != -EBUSY) {
		crac__round_phase(r, CRAC_CKPT_LAZY);
		rc = crac__img_lazy_finish_by(deadline, &tid);
		if (rc == 0)
			return 0;
	}
	if (rc == -EBUSY) {
		/* its thread would be stopped with the program's, and never
		 * stops while its call does not return */
		crac__report_add(r->report, CRAC_PHASE_CHECKPOINT, "lazy loader", -EBUSY,
				 "thread %d (crac's lazy loader) was given up on: every page is in, but its way out "
				 "(the close of its image's files) has not returned, its file system may not answer. "
				 "No checkpoint is taken while it is there; the process goes on; try again once it "
				 "has ended", tid);
		return -EBUSY;
	}
	crac__report_add(r->report, CRAC_PHASE_CHECKPOINT, "lazy loader", -ETIMEDOUT,
			 "thread %d (crac's lazy loader) was still loading the memory this process was restored "
			 "with when the deadline came (%.0f ms waited): every page must be in before a checkpoint; "
			 "its image's pages file reads slowly (a slow or hung file system?). No checkpoint was "
			 "taken; the process goes on and the loading with it; try again once it is done",
			 tid, (double)(crac__now_ns(CLOCK_MONOTONIC) - t0) / 1e6);
	return -ETIMEDOUT;
}

/* 4. before_checkpoint over every resource, then the safety checks (a dry
 * run, only reporting, if a callback failed already). Returns who was
 * notified: exactly they get after_restore. */
static struct crac_notified *before_checkpoint(struct crac_round *r, int64_t deadline)
{
	struct crac_notified *notified;

	r->event.size = sizeof(r->event);
	r->event.kind = CRAC_EVENT_BEFORE_CHECKPOINT;
	r->event.engine = r->engine->name;
	crac__identity(r->event.instance_id, &r->event.generation);
	r->event.checkpoint_realtime = crac__now_ns(CLOCK_REALTIME);
	r->event.checkpoint_monotonic = crac__now_ns(CLOCK_MONOTONIC);
	r->event.deadline_monotonic = deadline;
	crac__round_phase(r, CRAC_CKPT_CALLBACKS);
	crac__runtime_checkpointing(r);
	notified = crac__notify_before(r, deadline);
	crac__checks_before(r, crac_report_count(r->report) > 0 || (r->opts.flags & CRAC_DRY_RUN));
	return notified;
}

/*
 * 5. The snapshot, unless something failed already (or a dry run). Returns
 * the outcome (CRAC_RESTORED in a restored process) or a negative errno;
 * *taken says whether the engine was asked to take it.
 */
static int take_snapshot(struct crac_round *r, bool *taken)
{
	*taken = false;
	if (crac_report_count(r->report))
		return CRAC_ABORTED;
	if (r->opts.flags & CRAC_DRY_RUN)
		return CRAC_CONTINUED;
	*taken = true;

	bool image = r->engine->flags & CRAC_ENGINE_WRITES_IMAGE;
	bool control = image && crac__control_suspend();
	int e = r->engine->checkpoint(r);

	if (image && e == CRAC_RESTORED) {
		/* a new process: whoever asked is connected to the old one */
		if (r->requester && r->requester->forget)
			r->requester->forget(r->requester);
		r->requester = NULL;
	}
	if (control && !(e == CRAC_CONTINUED && !(r->opts.flags & CRAC_KEEP_RUNNING)))
		crac__control_resume(control, image && e == CRAC_RESTORED);
	if (e < 0 && !crac_report_count(r->report))
		crac__report_add(r->report, CRAC_PHASE_ENGINE, r->engine->name, e,
				 "engine %s failed", r->engine->name);
	return e;
}

/* After a successful image checkpoint without keep-running: as in CRaC,
 * the image exists and the original process is done. */
static _Noreturn void exit_after_image(struct crac_round *r)
{
	crac__round_finish_requester(r, CRAC_CONTINUED);
	/* No fflush(NULL): it would wait for the lock of a stream another
	 * thread holds (a thread in fgets(stdin) holds stdin's for ever);
	 * exit() flushes every stream without taking their locks. */
	crac__leave();   /* atexit handlers are the program's code */
	exit(0);
}

/* 6. Reopen what the checks closed, let the engine's threads go, then
 * after_restore over exactly the notified resources. */
static void after_restore(struct crac_round *r, struct crac_notified *notified, int outcome)
{
	crac__round_phase(r, CRAC_CKPT_AFTER);
	crac__checks_after(r);
	if (r->engine->resume_threads)
		r->engine->resume_threads(r);
	r->event.kind = CRAC_EVENT_AFTER_RESTORE;
	r->event.outcome = outcome;
	r->event.restore_realtime = crac__now_ns(CLOCK_REALTIME);
	r->event.restore_monotonic = crac__now_ns(CLOCK_MONOTONIC);
	r->event.argc = r->new_argc;
	r->event.argv = r->new_argv;
	r->event.envp = r->new_envp;
	if (outcome == CRAC_RESTORED) {
		crac__new_identity(&r->event);
		crac__runtime_restored(r);
	}
	r->event.deadline_monotonic = deadline_after(r->opts.restore_deadline_ms,
						     r->event.restore_monotonic);
	crac__notify_after(r, notified, r->event.deadline_monotonic);
	if (outcome == CRAC_RESTORED)
		log_restored(r);
}

/*
 * A round's report on its way out: from step 6 until the requester (crac
 * run's supervisor, crac checkpoint PID) and the resumer (crac restore
 * --pid) have it. A program may end with exit() right after its restore
 * (an after_restore callback tells its main thread, which has nothing left
 * to do): exit_group() would then end this thread between two
 * after_restore callbacks or halfway through the answer, and the restore's
 * report (its problems, the callbacks' results) would never reach whoever
 * asked. So exit() waits for it here (a destructor: after the program's
 * own atexit handlers), at most until the after_restore deadline and
 * REPORT_GRACE_MS more. _exit() and a kill cannot be waited for: the
 * requester then sees the answer cut short and says so (supervise.c).
 */
#define REPORT_GRACE_MS 1000

static _Atomic pid_t reporting_pid;        /* the process whose round reports; 0: none */
static _Atomic int64_t reporting_until;    /* CLOCK_MONOTONIC ns: no wait beyond it */
static _Atomic int reporting_tid;          /* the thread that runs that round (no TLS of
					    * ours more: see crac__depth) */

static void reporting_begin(const struct crac_round *r)
{
	int64_t now = crac__now_ns(CLOCK_MONOTONIC);
	int64_t dl = deadline_after(r->opts.restore_deadline_ms, now);

	if (!r->requester && !r->resumer)
		return;   /* nobody waits for this report: the caller gets it */
	if (!dl)
		dl = deadline_after(0, now);   /* no deadline: the default one bounds the wait */
	atomic_store(&reporting_until, dl > INT64_MAX - REPORT_GRACE_MS * 1000000LL ? INT64_MAX :
				       dl + REPORT_GRACE_MS * 1000000LL);
	atomic_store(&reporting_tid, crac__gettid());
	atomic_store(&reporting_pid, getpid());
}

static void reporting_end(void)
{
	if (atomic_load(&reporting_tid) != crac__gettid())
		return;   /* nobody waited for this round's report */
	atomic_store(&reporting_pid, 0);
	atomic_store(&reporting_tid, 0);
}

__attribute__((destructor)) static void round_at_exit(void)
{
	pid_t me = getpid();   /* a forked child has no round of its parent's to wait for */

	/* exit() from inside the round (an after_restore callback): it
	 * cannot wait for itself */
	if (atomic_load(&reporting_pid) != me || atomic_load(&reporting_tid) == crac__gettid())
		return;
	int64_t until = atomic_load(&reporting_until);
	while (atomic_load(&reporting_pid) == me) {
		if (crac__now_ns(CLOCK_MONOTONIC) >= until) {
			crac__log(CRAC_LOG_WARN, "exit: the report of the restore (after_restore "
				  "callbacks) is still not made; the process ends without it");
			return;
		}
		struct timespec ts = { 0, 200000 };   /* 0.2 ms: an exit path, seldom taken */
		nanosleep(&ts, NULL);
	}
}

/* 7 (second half). The status goes into the report; the requester (crac
 * checkpoint PID), the resumer (pause engine) and the caller get it. */
static int finish_round(struct crac_round *r, int status, crac_report **report)
{
	crac__report_set_status(r->report, status);
	crac__round_finish_requester(r, status);
	if (r->resumer && r->resumer->finish)
		r->resumer->finish(r->resumer, status, r->report);
	crac__strv_free(r->new_argv);
	crac__strv_free(r->new_envp);
	if (report && (crac_report_count(r->report) || status < 0 || status == CRAC_ABORTED))
		*report = r->report;
	else
		crac_report_free(r->report);
	crac__leave();
	return status;
}

int crac__checkpoint(const struct crac_options *in, struct crac_requester *rq,
		     crac_report **report)
{
	struct crac_round r = { .requester = rq };
	struct crac_notified *notified;
	int rc;

	r.stats.start_ns = r.stats.phase_start_ns = crac__now_ns(CLOCK_MONOTONIC);

	if (report)
		*report = NULL;
	if ((rc = signal_context()) < 0)
		return refuse_unstarted(rc, rc == -EDEADLK ? CRAC__FIXED_SIGNAL_IN_CRAC
							   : CRAC__FIXED_SIGNAL_STACK, rq, report);
	crac__enter();   /* the whole round, but for the callbacks (resource.c) */
	r.report = crac__report_new();
	if (!r.report) {
		crac__leave();
		return refuse_unstarted(-ENOMEM, CRAC__FIXED_NO_MEMORY, rq, report);
	}

	/* 1 */
	if ((rc = claim_round(&r)) < 0)
		return finish_round(&r, rc, report);

	/* 2, then 3: a restored process may still be loading its memory
	 * lazily, which every engine needs all in (image engine:
	 * src/engines/image_lazy.c), by the deadline; then the inhibitors */
	int64_t deadline = 0;
	if ((rc = choose_engine(&r, in)) < 0 ||
	    (deadline = r.event.deadline_monotonic, rc = lazy_loaded(&r, deadline)) < 0 ||
	    (rc = wait_inhibitors(&r, deadline)) < 0) {
		release_round(&r);
		return finish_round(&r, rc, report);
	}

	/* 4, 5 */
	bool taken;
	notified = before_checkpoint(&r, deadline);
	int outcome = take_snapshot(&r, &taken);
	if (outcome < 0) {
		rc = outcome;
		outcome = CRAC_ABORTED;
	} else if (taken && outcome == CRAC_CONTINUED && (r.engine->flags & CRAC_ENGINE_WRITES_IMAGE) &&
		   !(r.opts.flags & CRAC_KEEP_RUNNING)) {
		exit_after_image(&r);
	}

	/* 6, 7: exit() on another thread waits for the report (round_at_exit) */
	reporting_begin(&r);
	after_restore(&r, notified, outcome);
	release_round(&r);
	rc = finish_round(&r, rc < 0 ? rc : outcome, report);
	reporting_end();
	return rc;
}

int crac_checkpoint_restore(const struct crac_options *opts, crac_report **report)
{
	return crac__checkpoint(opts, NULL, report);
}
