/* SPDX-License-Identifier: MIT */
/*
 * image_restore.c - the restored side of the image engine: what runs in the
 * new process after the loader (src/loader) mapped the image and jumped into
 * the checkpointing thread's saved context (image.c, step 5), where
 * crac__img_setctx returned 1.
 *
 *   0. if this thread was not the original main thread, the thread-group
 *      leader becomes the main thread again and a new clone goes on here
 *   1. this thread: tid field, robust list, rseq, altstack, name
 *   2. signal dispositions, cwd, umask, rlimits, POSIX timers
 *   3. recreate the other threads (they wait in their handler, each with
 *      its capabilities, no_new_privs, personality... given back); then
 *      this thread's (image_attrs.c)
 *   4. let them go; copy the new arguments; unmap the loader
 *   5. this thread's signal mask; return CRAC_RESTORED
 */
#include "engines/image_engine.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void restore_fatal(const char *what)
{
	/* The process is restored but unusable: say why and stop. */
	static const char pre[] = "crac: restore failed: ";
	ssize_t unused = write(2, pre, sizeof(pre) - 1);
	unused = write(2, what, strlen(what));
	unused = write(2, "\n", 1);
	(void)unused;
	_exit(1);
}

/* A heap copy of n strings from the loader's memory (NULL-terminated). */
static void copy_new_env(struct crac_round *r, const struct crac_img_resume *res)
{
	char *const *envp = (char *const *)(uintptr_t)res->envp;

	if (!envp || !res->envc)
		return;
	if (crac__strv_copy(envp, (int)res->envc, &r->new_envp) < 0)
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "image", -ENOMEM, "new environment lost: out of memory");
}

static void copy_new_args(struct crac_round *r, const struct crac_img_resume *res)
{
	char *const *argv = (char *const *)(uintptr_t)res->argv;
	int argc = (int)res->argc;

	if (!argv || argc <= 0)
		return;
	if (crac__strv_copy(argv, argc, &r->new_argv) < 0) {
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "image", -ENOMEM, "new arguments lost: out of memory");
		return;
	}
	r->new_argc = argc;
}

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#endif

/*
 * Creates the POSIX timers again (image_capture.c recorded them): with
 * PR_TIMER_CREATE_RESTORE_IDS on, timer_create takes the id it is given, so
 * the program's timer_t values still name its timers; each is armed with
 * the time it had left at the checkpoint and its interval. A timer that
 * cannot be created leaves the program unusable (it would act on another
 * timer or on none): the restore stops with the reason.
 */
static void restore_timers(const struct img_self *s)
{
	char why[256];

	if (!s->n_timers)
		return;
	if (prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0) < 0) {
		snprintf(why, sizeof(why), "the image has %u POSIX timers, and this kernel cannot create a timer "
			 "with a given id (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.14): %s", s->n_timers,
			 img_strerror(errno));
		restore_fatal(why);
	}
	for (uint32_t i = 0; i < s->n_timers; i++) {
		const struct img_timer *t = &s->timers[i];
		struct sigevent sev;
		int id = t->id;

		memset(&sev, 0, sizeof(sev));
		sev.sigev_notify = t->notify;
		sev.sigev_signo = t->signo;
		sev.sigev_value.sival_ptr = (void *)(uintptr_t)t->value;
		if (syscall(SYS_timer_create, t->clock, &sev, &id) < 0 || id != t->id ||
		    syscall(SYS_timer_settime, id, 0, &t->spec, NULL) < 0) {
			int err = errno;
			struct rlimit rl = { 0, 0 };
			char lim[96] = "";
			/* EAGAIN: each timer holds one of the user's queued
			 * signals (RLIMIT_SIGPENDING) */
			if (id == t->id && err == EAGAIN && getrlimit(RLIMIT_SIGPENDING, &rl) == 0)
				snprintf(lim, sizeof(lim), " (each timer counts against RLIMIT_SIGPENDING, %llu here)",
					 (unsigned long long)rl.rlim_cur);
			snprintf(why, sizeof(why), "POSIX timer %d (clock %d, signal %d; %u of %u) not created again: %s%s",
				 t->id, t->clock, t->signo, i + 1, s->n_timers,
				 id != t->id ? "another id" : img_strerror(err), lim);
			restore_fatal(why);
		}
	}
	prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0);
}

struct img_attrs img_attrs_loader;

/* "RLIMIT_AS", or the number of a limit this build has no name for. */
static const char *limit_name(int i)
{
	static const char *const names[CRAC_IMG_NRLIMIT] = {
		"RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
		"RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
		"RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
	};
	return i >= 0 && i < CRAC_IMG_NRLIMIT && names[i] ? names[i] : "?";
}

/* A limit's value as text: "unlimited" or the number. */
static void limit_text(char out[24], rlim_t v)
{
	if (v == RLIM_INFINITY)
		snprintf(out, 24, "unlimited");
	else
		snprintf(out, 24, "%llu", (unsigned long long)v);
}

__attribute__((noinline)) int img_restored(struct crac_round *r)
{
	struct img_self *s = &crac__img_self;
	struct crac_img_resume *res = &s->resume;
	struct img_err err = { 0 };
	char problems[8][256];
	int n_problems = 0;
	int64_t t0 = img_mono_ns();

	/* What every thread starts with (the loader's), once for all. */
	img_attrs_capture_now(&img_attrs_loader);

	/* 0. The leader resumes the original main thread; a clone goes on here. */
	if (img_threads_restore_leader(&s->thread, &err) < 0)
		restore_fatal(err.msg);
	int64_t t_leader = img_mono_ns();

	/* 1. This thread, in a new process. */
	img_thread_reattach(&s->thread, true);

	/* 2. Process state. Signals stay blocked (the loader blocked them). */
	for (int sig = 1; sig <= CRAC_IMG_NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (syscall(SYS_rt_sigaction, sig, &s->sig[sig - 1], NULL, 8) < 0 && n_problems < 8)
			snprintf(problems[n_problems++], sizeof(problems[0]), "signal %d: disposition not restored: %s",
				 sig, img_strerror(errno));
	}
	umask((mode_t)s->umask);
	if (chdir(s->cwd) < 0 && n_problems < 8)
		snprintf(problems[n_problems++], sizeof(problems[0]), "working directory %.180s: %s", s->cwd,
			 img_strerror(errno));
	for (int i = 0; i < CRAC_IMG_NRLIMIT; i++) {
		struct rlimit now, want = { s->rlimit[i][0], s->rlimit[i][1] };
		if (getrlimit(i, &now) < 0 || (now.rlim_cur == want.rlim_cur && now.rlim_max == want.rlim_max))
			continue;
		if (setrlimit(i, &want) < 0 && n_problems < 8) {
			char cur[24], max[24], here_cur[24], here_max[24];
			limit_text(cur, want.rlim_cur);
			limit_text(max, want.rlim_max);
			limit_text(here_cur, now.rlim_cur);
			limit_text(here_max, now.rlim_max);
			snprintf(problems[n_problems++], sizeof(problems[0]),
				 "resource limit %s not restored (soft %s, hard %s; here %s, %s): %s", limit_name(i), cur,
				 max, here_cur, here_max, img_strerror(errno));
		}
	}

	/* POSIX timers, with their ids (signals are still blocked: one that
	 * fires now waits for the program's mask). */
	restore_timers(s);

	/* The signals pending at the checkpoint, queued again now that the
	 * dispositions are back and while every signal is still blocked:
	 * this thread's own, and the process's when this thread is the
	 * leader (else the main thread does it: image_signals.c). The
	 * other threads queue their own as they resume. */
	img_signals_state_ready();
	img_signals_give_back_checkpointer(s->thread.tid, true);

	/* Before any other thread runs: the clock offset moves and the random
	 * generators go stale, so nobody sees the image's values. */
	int64_t t_state = img_mono_ns();
	crac__runtime_restore_early();

	/* Incremental checkpoints: tracking the pages written from now on
	 * (the image asked for it), before any other thread of the program
	 * exists: what a thread writes from its creation on is seen. */
	img_track_restored(res);

	/* 3. The other threads. */
	int64_t t_early = img_mono_ns(), t_cloned = t_early;
	int n_threads = img_threads_recreate(&err, &t_cloned);
	if (n_threads < 0)
		restore_fatal(err.msg);
	/* Capabilities, no_new_privs, personality, ... of this thread, once
	 * it cloned the others (each gave back its own: image_attrs.c) */
	img_attrs_restore(&s->thread.attrs, &img_attrs_loader, problems, &n_problems, 8);
	int64_t t1 = img_mono_ns();

	/* 4. From here on other threads run: locks are usable again. */
	img_threads_release();
	img_track_restored_late();
	copy_new_args(r, res);
	copy_new_env(r, res);
	crac__img_loader_leave();
	for (int i = 0; i < n_problems; i++)
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "image", -EIO, "%s", problems[i]);
	img_signals_report(r->report);
	/* the other threads' (each gave back its own attributes) */
	const char (*lines)[256];
	int more, n_lines = img_attrs_thread_problems(&lines, &more);
	for (int i = 0; i < n_lines; i++)
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "image", -EIO, "%s", lines[i]);
	if (more)
		crac__report_add(r->report, CRAC_PHASE_ENGINE, "image", -EIO,
				 "%d more attributes of threads not restored", more);

	if (res->loader_flags & CRAC_LOADER_STATS) {
		int64_t t2 = img_mono_ns();
		/* threads: from the jump (t0: the first restored code) to
		 * every thread back, in its steps */
		fprintf(stderr, "crac: restore stats: loader %.3f ms (%.1f MiB read, %.1f MiB lazy, %.1f MiB mapped), "
			"threads %.3f ms (jump %.3f, leader %.3f, process state %.3f, clocks and random %.3f, "
			"%d clones %.3f, their start %.3f), then %.3f ms to the program, total %.3f ms; %s: %s\n",
			(double)(res->loader_done_ns - res->loader_start_ns) / 1e6,
			(double)res->stored / 1048576.0, (double)res->lazy_bytes / 1048576.0,
			(double)res->mapped / 1048576.0,
			(double)(t1 - t0) / 1e6, (double)(t0 - (int64_t)res->loader_done_ns) / 1e6,
			(double)(t_leader - t0) / 1e6, (double)(t_state - t_leader) / 1e6,
			(double)(t_early - t_state) / 1e6, n_threads, (double)(t_cloned - t_early) / 1e6,
			(double)(t1 - t_cloned) / 1e6, (double)(t2 - t1) / 1e6,
			(double)(t2 - (int64_t)res->loader_start_ns) / 1e6,
			res->lazy_mode == CRAC_LAZY_ON ? "lazy" : "eager", crac_img_lazy_why(res->lazy_mode));
	}

	/* 5. This thread's signal mask, last. */
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &s->thread.sigmask, NULL, 8);
	crac__img_lazy_go();
	return CRAC_RESTORED;
}

