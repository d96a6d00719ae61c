/* SPDX-License-Identifier: MIT */
/*
 * cmd_checkpoint.c - `crac checkpoint PID`: ask a process, through its
 * control endpoint, to checkpoint itself, and print what it answers.
 */
#include "cli.h"
#include "core/internal.h"
#include "image/dir.h"
#include "image/image.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Parses a positive pid; 0 if invalid. */
int cli_parse_pid(const char *s)
{
	char *end;
	long v = s ? strtol(s, &end, 10) : 0;

	return s && *s && !*end && v > 0 && v <= INT_MAX ? (int)v : 0;
}

/*
 * Sends a request and turns the answer into an exit status. The answer (the
 * target's text, escaped by the client) goes to our stdout; our own lines to
 * our stderr, after the answer: stdout is flushed first so that the two stay
 * in order when they end up in the same file or terminal.
 */
int cli_request(int pid, const char *const *tokens)
{
	char err[1024];
	int status = 0, rc;

	rc = crac__control_request(pid, tokens, stdout, &status, err, sizeof(err));
	fflush(stdout);
	if (rc < 0) {
		cli_err("%s", err);
		return 2;
	}
	if (status == CRAC_CONTINUED || status == CRAC_RESTORED || status == 0)
		return 0;
	if (status < 0)
		cli_err("process %d answered: %s (%s)", pid, strerror(-status), crac__errno_name(status));
	return 1;
}

/* ---- the request: answer, progress, --stats, --timeout ---------------------- */

/*
 * The request runs on a thread that writes the answer's text into a pipe
 * (copied to our stdout as it comes) and keeps the progress records
 * (control.c: "PROGRESS ..." and "STATS ...") here; the main thread waits
 * on the pipe in ticks of 100 ms, draws the progress line and enforces
 * --timeout.
 */
struct timed {
	int pid;
	const char *const *tokens;
	FILE *out;                   /* the write end of the pipe */
	int rc, status;
	char err[1024];
	pthread_mutex_t lock;        /* the records below */
	bool have;                   /* a PROGRESS record came */
	char phase[32];
	long long phase_us;
	unsigned long long done, total;
	bool have_stats;
	char stats[1024];            /* the STATS record */
};

/* Copies the value of key in a record "VERB k=v k=v" into buf; false if absent. */
static bool record_value(const char *line, const char *key, char *buf, size_t len)
{
	size_t k = strlen(key);

	for (const char *p = strchr(line, ' '); p; p = strchr(p + 1, ' ')) {
		if (strncmp(p + 1, key, k) || p[1 + k] != '=')
			continue;
		const char *v = p + 2 + k;
		size_t n = strcspn(v, " ");
		if (n >= len)
			return false;
		memcpy(buf, v, n);
		buf[n] = 0;
		return true;
	}
	return false;
}

static unsigned long long record_num(const char *line, const char *key)
{
	char v[32];

	return record_value(line, key, v, sizeof(v)) ? strtoull(v, NULL, 10) : 0;
}

/* On the request's thread: a progress record of the target. */
static void on_record(void *arg, const char *line)
{
	struct timed *t = arg;

	pthread_mutex_lock(&t->lock);
	if (!strncmp(line, "STATS ", 6)) {
		snprintf(t->stats, sizeof(t->stats), "%s", line);
		t->have_stats = true;
	} else if (record_value(line, "phase", t->phase, sizeof(t->phase))) {
		t->have = true;
		t->phase_us = (long long)record_num(line, "phase_us");
		t->done = record_num(line, "done");
		t->total = record_num(line, "total");
	}
	pthread_mutex_unlock(&t->lock);
}

static void *timed_thread(void *p)
{
	struct timed *t = p;

	t->rc = crac__control_request_cb(t->pid, t->tokens, t->out, &t->status, t->err, sizeof(t->err),
					 on_record, t);
	fclose(t->out);              /* end of file: the answer is complete */
	return NULL;
}

/*
 * The phases of a round (crac__ckpt_phase_name): what the progress line
 * says, and what --timeout says the checkpoint "was" in. The texts of the
 * three parts are those phase_of() guesses from outside for a process
 * whose libcrac sends no progress.
 */
static const struct {
	const char *name, *line, *was;
} phases[] = {
	{ "inhibitors", "waiting for inhibitors", NULL },
	{ "callbacks", "before_checkpoint callbacks and safety checks", NULL },
	{ "prepare", "preparing the image directory", "writing the image: preparing its temporary directory" },
	{ "freeze", "stopping the program's threads", "writing the image: stopping the program's threads" },
	{ "capture", "capturing process state and mappings",
	  "writing the image: capturing the process state and mappings" },
	{ "pages", "writing pages", NULL },
	{ "fsync", "writing descriptors and header, fsync",
	  "writing the image: writing the descriptors and the header, fsync" },
	{ "verify", "verifying the image", "writing the image: reading it back, verifying and committing it" },
	{ "after_restore", "after_restore callbacks", NULL },
	{ "lazy", "waiting for the memory restored lazily to be loaded",
	  "before the snapshot: the memory this process was restored with was still loading lazily (its image's "
	  "pages file reads slowly)" },
};
#define BEFORE_SNAPSHOT "before the snapshot: waiting for inhibitors (crac_inhibit), in the before_checkpoint " \
	"callbacks or the safety checks"
#define AFTER_SNAPSHOT "after the snapshot: the program's after_restore callbacks (or its exit) had not finished"

static int phase_index(const char *name)
{
	for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++)
		if (!strcmp(phases[i].name, name))
			return (int)i;
	return -1;
}

/* "412.0/~1024.0 MiB" or "412.0 MiB" (no estimate, or past it). */
static void put_amount(char *buf, size_t len, unsigned long long done, unsigned long long total)
{
	if (total && done <= total)
		snprintf(buf, len, "%.1f of ~%.1f MiB", done / 1048576.0, total / 1048576.0);
	else
		snprintf(buf, len, "%.1f MiB", done / 1048576.0);
}

/* What --timeout says the checkpoint was in, from its last record. */
static void phase_from_record(const struct timed *t, char *out, size_t len)
{
	int i = phase_index(t->phase);
	char amount[96];

	if (i < 0)
		snprintf(out, len, "in phase \"%s\"", t->phase);   /* a newer libcrac's phase */
	else if (!strcmp(t->phase, "inhibitors") || !strcmp(t->phase, "callbacks"))
		snprintf(out, len, "%s", BEFORE_SNAPSHOT);
	else if (!strcmp(t->phase, "after_restore"))
		snprintf(out, len, "%s", AFTER_SNAPSHOT);
	else if (!strcmp(t->phase, "pages")) {
		put_amount(amount, sizeof(amount), t->done, t->total);
		snprintf(out, len, "writing the image: writing pages, %s so far", amount);
	} else
		snprintf(out, len, "%s", phases[i].was);
}

/*
 * The progress line: "crac: checkpoint of process PID: writing pages,
 * 412.0 of ~1024.0 MiB, 350.2 MiB/s, ETA 1.8 s" (ETA and rate once known),
 * or the phase and the time so far; cut to the terminal's width (a line
 * that wraps could not be redrawn in place).
 */
static void progress_line(const struct timed *t, long long spent_ms, char *out, size_t len)
{
	int i = phase_index(t->phase);
	const char *what = i < 0 ? t->phase : phases[i].line;
	char amount[96];
	int n;

	if (!strcmp(t->phase, "pages")) {
		put_amount(amount, sizeof(amount), t->done, t->total);
		n = snprintf(out, len, "crac: checkpoint of process %d: %s, %s", t->pid, what, amount);
		double rate = t->phase_us > 0 ? t->done / 1048576.0 / (t->phase_us / 1e6) : 0;
		if (rate > 0 && n > 0 && (size_t)n < len) {
			n += snprintf(out + n, len - (size_t)n, ", %.1f MiB/s", rate);
			if (t->total > t->done && n > 0 && (size_t)n < len)
				snprintf(out + n, len - (size_t)n, ", ETA %.1f s",
					 (t->total - t->done) / 1048576.0 / rate);
		}
	} else {
		snprintf(out, len, "crac: checkpoint of process %d: %s (%.1f s)", t->pid, what, spent_ms / 1000.0);
	}
	struct winsize ws;
	if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && strlen(out) >= ws.ws_col)
		out[ws.ws_col - 1] = 0;
}

/* Writes s to stderr as it is (no stdio buffering in between). */
static void put_stderr(const char *s)
{
	fflush(stderr);
	crac__write_all(2, s, strlen(s));
}

/*
 * --stats: the STATS record as one line, "crac: checkpoint stats: 16384
 * pages scanned, 8192 stored, 8192 zero pages skipped, 32.1 MiB written
 * (2 threads, 23 mappings); inhibitors 0.0 ms, callbacks 0.1 ms, ...;
 * total 62.0 ms". Phases in the order the record gives them.
 */
void cli_print_stats(int pid, const char *rec)
{
	char line[2048], key[48];
	size_t n;

	if (!rec) {
		cli_err("checkpoint stats: process %d sent no figures (its libcrac predates --stats)", pid);
		return;
	}
	unsigned long long scanned = record_num(rec, "scanned"), stored = record_num(rec, "stored"),
			   zero = record_num(rec, "zero"), written = record_num(rec, "written");
	if (scanned || stored || written)
		n = (size_t)snprintf(line, sizeof(line), "crac: checkpoint stats: %llu pages scanned, %llu stored, "
				     "%llu zero pages skipped, %.1f MiB written (%llu threads, %llu mappings);",
				     scanned, stored, zero, written / 1048576.0, record_num(rec, "threads"),
				     record_num(rec, "maps"));
	else
		n = (size_t)snprintf(line, sizeof(line), "crac: checkpoint stats: no pages written;");
	const char *sep = "";
	for (const char *p = strchr(rec, ' '); p && n < sizeof(line); p = strchr(p + 1, ' ')) {
		size_t k = strcspn(p + 1, "=");
		if (k < 4 || k >= sizeof(key) || strncmp(p + 1 + k - 3, "_us", 3) ||
		    !strncmp(p + 1, "elapsed_us", 10))
			continue;
		memcpy(key, p + 1, k - 3);
		key[k - 3] = 0;
		if (strspn(key, "abcdefghijklmnopqrstuvwxyz_") != k - 3)
			continue;   /* only names as crac__ckpt_phase_name has them */
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s %s %.1f ms", sep, key,
				      strtoull(p + 2 + k, NULL, 10) / 1000.0);
		sep = ",";
	}
	if (n < sizeof(line))
		snprintf(line + n, sizeof(line) - n, "; total %.1f ms\n", record_num(rec, "elapsed_us") / 1000.0);
	fflush(stdout);
	put_stderr(line);
}

/* The value of key in process pid's initial environment, or "". */
static void env_of(int pid, const char *key, char *buf, size_t len)
{
	char path[64], *e = NULL;
	size_t cap = 0, k = strlen(key);
	FILE *f;

	buf[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	if (!(f = fopen(path, "re")))
		return;
	while (getdelim(&e, &cap, 0, f) > 0)
		if (!strncmp(e, key, k) && e[k] == '=')
			snprintf(buf, len, "%s", e + k + 1);
	free(e);
	fclose(f);
}

/*
 * phase_of's looks at the image's parent directory and the temporary in it
 * come after --timeout expired, on a file system that may not answer (an
 * NFS or FUSE server gone): each is made by a helper of image/dir.c and
 * given up on after PHASE_LOOK_MS, said naming the path (the message then
 * says the phase could not be told).
 */
#define PHASE_LOOK_MS 2000

/*
 * Where the checkpoint of pid is, as seen from outside, for a process that
 * sent no progress record (its libcrac predates them): the snapshot's line
 * already came (after it); the image engine's temporary DIR.tmp-PID-*
 * exists (writing the image); else before the snapshot.
 */
static void phase_of(int pid, const char *image, bool answered, char *out, size_t len)
{
	char dir[PATH_MAX + 8], parent[PATH_MAX + 8], prefix[PATH_MAX + 48], path[64], msg[PATH_MAX + 400];
	static char names[16384];
	struct stat st;
	size_t nlen = 0;
	int rc;

	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (stat(path, &st) < 0) {
		snprintf(out, len, "process %d is gone", pid);
		return;
	}
	if (answered) {
		snprintf(out, len, AFTER_SNAPSHOT);
		return;
	}
	if (image && *image)
		snprintf(dir, sizeof(dir), "%s", image);
	else
		env_of(pid, "CRAC_IMAGE_DIR", dir, sizeof(dir));
	if (!dir[0]) {
		snprintf(out, len, BEFORE_SNAPSHOT);
		return;
	}
	snprintf(parent, sizeof(parent), "%s", dir);
	char *slash = strrchr(parent, '/');
	const char *base = slash ? slash + 1 : parent;
	if (slash)
		*slash = 0;
	snprintf(prefix, sizeof(prefix), "%s.tmp-%d-", base, pid);
	const char *pdir = slash ? (parent[0] ? parent : "/") : ".";
	static char bound[64];
	snprintf(bound, sizeof(bound), "crac checkpoint's look after --timeout, %d ms", PHASE_LOOK_MS);
	crac_img_fs_limit(0, PHASE_LOOK_MS, bound);
	if ((rc = crac_img_list_msg(pdir, prefix, names, sizeof(names), &nlen, msg, sizeof(msg))) == -ETIMEDOUT) {
		snprintf(out, len, "in a phase crac could not tell (%s)", msg);
		return;
	}
	if (rc < 0 || !nlen) {
		snprintf(out, len, BEFORE_SNAPSHOT);
		return;
	}
	char tmp[PATH_MAX + 300];
	long long bytes = 0;
	(void)!snprintf(tmp, sizeof(tmp), "%s/%.*s", slash ? parent : ".", NAME_MAX, names);   /* (the first) */
	if (crac_img_dir_bytes_msg(tmp, &bytes, msg, sizeof(msg)) == -ETIMEDOUT)
		snprintf(out, len, "writing the image into %s (how far it got is not known: %s)", tmp, msg);
	else
		snprintf(out, len, "writing the image: %s holds %.1f MiB so far", tmp, (double)bytes / 1048576.0);
}

/* The state letter of /proc/PID/stat, or 0. */
static char proc_state(int pid)
{
	char buf[512];
	const char *f = crac_img_proc_stat(pid, buf, sizeof(buf));
	return f && f[0] == ' ' ? f[1] : 0;
}

/*
 * The process ended during the checkpoint, before it answered: had it
 * committed the image by then? An image at DIR written by that process
 * (its pid) since the request began (since_ns, CLOCK_REALTIME) was
 * written, read back and renamed into place by it (nothing else puts an
 * image there under its name): said in note, so that the failure does not
 * read as "no image". The look is bounded like phase_of's.
 */
static void image_after_exit(int pid, const char *image, int64_t since_ns, char *note, size_t len)
{
	struct crac_img_header_map h;
	char msg[PATH_MAX + 400];
	static char bound[64];

	note[0] = 0;
	if (!image || !*image)
		return;
	snprintf(bound, sizeof(bound), "crac checkpoint's look at the image, %d ms", PHASE_LOOK_MS);
	crac_img_fs_limit(0, PHASE_LOOK_MS, bound);
	if (crac_img_header_msg(image, &h, msg, sizeof(msg)) < 0)
		return;
	if (h.v.h->pid == pid && h.v.h->created_ns >= since_ns)
		snprintf(note, len, "; but %s holds the image this checkpoint wrote (made by process %d %.1f s after "
			 "the request; an image is renamed into place only once it was written, made durable and read "
			 "back): the process ended after that, before its answer came", image, pid,
			 (double)(h.v.h->created_ns - since_ns) / 1e9);
	crac_img_header_unmap(&h);
}

#define TICK_MS 100           /* the progress line is redrawn at most this often */
#define PROGRESS_AFTER_MS 1000 /* and shown only once the checkpoint took this long */

/*
 * The request, its answer copied to stdout as it comes. timeout_ms < 0: no
 * limit. On a terminal (stderr), a checkpoint that takes over a second
 * shows one progress line, redrawn in place and erased before anything
 * else is printed; elsewhere nothing. stats: print the STATS record.
 */
static int request_timed(int pid, const char *const *tokens, long long timeout_ms, const char *image,
			 bool stats)
{
	struct timed t = { .pid = pid, .tokens = tokens };
	int p[2];
	pthread_t th;
	bool answered = false, tty = isatty(2), shown = false;
	char buf[4096], drawn[512] = "";

	pthread_mutex_init(&t.lock, NULL);
	if (pipe2(p, O_CLOEXEC) < 0 || !(t.out = fdopen(p[1], "w"))) {
		cli_err("checkpoint: pipe: %s", strerror(errno));
		return 2;
	}
	setvbuf(t.out, NULL, _IOLBF, 0);
	if (pthread_create(&th, NULL, timed_thread, &t) != 0) {
		cli_err("checkpoint: cannot start a thread");
		return 2;
	}
	struct timespec t0, now, real0;
	clock_gettime(CLOCK_REALTIME, &real0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long spent = (now.tv_sec - t0.tv_sec) * 1000LL + (now.tv_nsec - t0.tv_nsec) / 1000000;
		long long wait = TICK_MS;
		if (timeout_ms >= 0 && timeout_ms - spent < wait)
			wait = timeout_ms - spent > 0 ? timeout_ms - spent : 0;
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		int n = poll(&pf, 1, (int)wait);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			n = 0;
		if (tty && spent >= PROGRESS_AFTER_MS) {
			char line[512];
			pthread_mutex_lock(&t.lock);
			bool have = t.have;
			if (have)
				progress_line(&t, spent, line, sizeof(line));
			pthread_mutex_unlock(&t.lock);
			if (have && n == 0 && strcmp(line, drawn)) {
				char out[600];
				snprintf(out, sizeof(out), "\r%s\033[K", line);
				fflush(stdout);
				put_stderr(out);
				snprintf(drawn, sizeof(drawn), "%s", line);
				shown = true;
			}
		}
		if (n == 0 && timeout_ms >= 0 && spent + wait >= timeout_ms) {
			char where[2 * PATH_MAX + 800];
			if (shown)
				put_stderr("\r\033[K");
			fflush(stdout);
			pthread_mutex_lock(&t.lock);
			if (t.have)
				phase_from_record(&t, where, sizeof(where));
			pthread_mutex_unlock(&t.lock);
			if (!t.have)
				phase_of(pid, image, answered, where, sizeof(where));
			char stopped = proc_state(pid);
			if (stopped == 'T' || stopped == 't') {
				/* it cannot have got further: none of its threads runs */
				cli_err("checkpoint of process %d: no answer after %.1f s (--timeout): the process is "
					"stopped (%s), and none of its threads runs until it is continued (kill -CONT "
					"%d); the checkpoint is asked and goes on then; crac stopped waiting",
					pid, (double)timeout_ms / 1000.0,
					stopped == 'T' ? "state T: SIGSTOP or a job-control stop" : "state t: by a tracer",
					pid);
				return 1;
			}
			cli_err("checkpoint of process %d: no answer after %.1f s (--timeout); it was %s. "
				"The checkpoint goes on in the process; crac stopped waiting", pid,
				(double)timeout_ms / 1000.0, where);
			return 1;
		}
		if (n == 0)
			continue;
		if (shown) {   /* the answer's text on a clean line */
			put_stderr("\r\033[K");
			shown = false;
			drawn[0] = 0;
		}
		ssize_t r = read(p[0], buf, sizeof(buf));
		if (r <= 0)
			break;
		answered = true;
		fwrite(buf, 1, (size_t)r, stdout);
		fflush(stdout);
	}
	pthread_join(th, NULL);
	close(p[0]);
	if (shown)
		put_stderr("\r\033[K");
	if (t.rc < 0) {
		char note[PATH_MAX + 400] = "";
		if (strstr(t.err, "during the checkpoint, before it answered"))
			image_after_exit(pid, image, real0.tv_sec * 1000000000LL + real0.tv_nsec, note, sizeof(note));
		cli_err("%s%s", t.err, note);
		return 2;
	}
	if (stats)
		cli_print_stats(t.pid, t.have_stats ? t.stats : NULL);
	if (t.status == CRAC_CONTINUED || t.status == CRAC_RESTORED || t.status == 0)
		return 0;
	if (t.status < 0)
		cli_err("process %d answered: %s (%s)", pid, strerror(-t.status), crac__errno_name(t.status));
	return 1;
}

#define TIMEOUT_MARGIN_MS 60000   /* over the deadline: the snapshot itself */
#define DEFAULT_DEADLINE_MS 10000 /* core/checkpoint.c */

int crac_cmd_checkpoint(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "engine", required_argument, 0, 'e' },
		{ "image-dir", required_argument, 0, 'i' },
		{ "keep-running", no_argument, 0, 'k' },
		{ "deadline", required_argument, 0, 'd' },
		{ "dry-run", no_argument, 0, 'n' },
		{ "force-checks", no_argument, 0, 'f' },
		{ "incremental", no_argument, 0, 'I' },
		{ "compress", optional_argument, 0, 'z' },
		{ "timeout", required_argument, 0, 't' },
		{ "stats", no_argument, 0, 's' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	/* one token per option at most: repeated options replace their token */
	const char *tokens[12] = { "CHECKPOINT" };
	int at[128] = { 0 };   /* option letter -> its token index */
	char engine[128], image[PATH_MAX + 8], deadline[64], dir[PATH_MAX], compress[32];
	int n = 1, c, pid;
	long long deadline_ms = 0, timeout_ms = -2;   /* -2: the default */
	const char *image_dir = NULL;
	bool stats = false;
#define TOKEN(opt, text) (tokens[at[opt] ? at[opt] : (at[opt] = n++)] = (text))

	optind = 0;
	while ((c = cli_getopt(argc, argv, "+:e:i:kd:nft:sh", opts,
			       "usage: crac checkpoint [options] PID; crac checkpoint --help")) != -1 &&
	       c != CLI_OPERAND) {
		switch (c) {
		case 'e':
			if (snprintf(engine, sizeof(engine), "engine=%s", optarg) >= (int)sizeof(engine)) {
				cli_err("--engine: no engine has a name that long");
				return 2;
			}
			TOKEN('e', engine);
			break;
		case 'i':
			/* relative to our directory, not the target's */
			if (cli_path_arg("checkpoint --image-dir", optarg, CLI_IMAGE_DIR_MAX, true, dir, sizeof(dir)) < 0)
				return 2;
			snprintf(image, sizeof(image), "image=%s", dir);
			image_dir = image + 6;
			TOKEN('i', image);
			break;
		case 'k':
			TOKEN('k', "keep=1");
			break;
		case 'n':
			TOKEN('n', "dry=1");
			break;
		case 'f':
			TOKEN('f', "force=1");
			break;
		case 'I':
			TOKEN('I', "incr=1");
			break;
		case 'z': {
			/* a number before the PID after a bare --compress: a level meant */
			int lv = cli_compress_level(optarg, optind < argc - 1 ? argv[optind] : NULL, "the process ID");
			if (lv < 0)
				return 2;
			snprintf(compress, sizeof(compress), "compress=%d", lv);
			TOKEN('z', compress);
			break;
		}
		case 'd': {
			char *end;
			long long v = strtoll(optarg, &end, 10);
			if (*end || v < -1) {
				cli_err("--deadline wants milliseconds, got \"%s\"", optarg);
				return 2;
			}
			snprintf(deadline, sizeof(deadline), "deadline=%lld", v);
			deadline_ms = v;
			TOKEN('d', deadline);
			break;
		}
		case 't':
			if ((timeout_ms = cli_parse_duration(optarg)) < 0) {
				cli_err("--timeout wants a duration (500ms, 30s, 2m; 0: no limit), got \"%s\"", optarg);
				return 2;
			}
			break;
		case 's':
			stats = true;
			break;
		case 'h':
			printf("usage: crac checkpoint [options] PID\n"
			       "Asks process PID, through its control endpoint, to checkpoint; prints its report.\n"
			       "  --engine E          the engine (default: the process's $CRAC_ENGINE, else sim)\n"
			       "  --image-dir DIR     where the image engine writes (made absolute)\n"
			       "  --keep-running      the process goes on after its image is written\n"
			       "  --deadline MS       for inhibitors and before_checkpoint callbacks (default %d;\n"
			       "                      -1: none)\n"
			       "  --dry-run           callbacks and checks only: no snapshot\n"
			       "  --force-checks      run the safety checks even with an engine that needs none\n"
			       "  --incremental       image engine: write only the pages changed since the image the\n"
			       "                      process was restored from or last checkpointed into (with\n"
			       "                      --keep-running); a full image, said why, when there is none\n"
			       "  --compress[=LEVEL]  image engine: zstd-compress the page data, one frame per chunk\n"
			       "                      (restore, lazy too, decompresses what it reads); LEVEL 1-19,\n"
			       "                      default 1 (fastest)\n"
			       "  --timeout DURATION  stop waiting for the answer after DURATION (500ms, 30s, 2m),\n"
			       "                      saying which phase the checkpoint was in; default: the\n"
			       "                      deadline plus %d s (none with --deadline -1); 0: no limit\n"
			       "  --stats             at the end, one line on stderr: pages scanned, stored and\n"
			       "                      zero pages skipped, MiB written, the time of each phase\n"
			       "  --help              this text\n"
			       "On a terminal, a checkpoint that takes over a second shows its progress on stderr\n"
			       "(phase; MiB written of the total, MiB/s and ETA while the pages are written).\n"
			       "exit status: 0 done, 1 refused/aborted/failed or --timeout expired, 2 usage error or\n"
			       "no control endpoint\n", DEFAULT_DEADLINE_MS, TIMEOUT_MARGIN_MS / 1000);
			return 0;
		default:
			return 2;
		}
	}
	if (optind == argc - 2 && cli_parse_pid(argv[optind])) {
		/* `crac checkpoint PID DIR`, as CRIU's -D or a restore's DIR
		 * might suggest: say how the directory is given */
		cli_err("usage: crac checkpoint [options] PID: the image directory is given with --image-dir DIR "
			"(with --engine image or criu), not after the PID: crac checkpoint --engine image --image-dir "
			"%s %s",
			argv[optind + 1], argv[optind]);
		return 2;
	}
	if (optind != argc - 1 || !(pid = cli_parse_pid(argv[optind]))) {
		cli_err("usage: crac checkpoint [options] PID");
		return 2;
	}
	/* Progress records (control.c); a process whose libcrac predates
	 * them ignores the token. */
	tokens[n++] = "progress=1";
	tokens[n] = NULL;
	/* (a deadline the program cannot count in nanoseconds is none there:
	 * core/checkpoint.c; no limit here then either, and no overflow) */
	if (timeout_ms == -2)
		timeout_ms = deadline_ms < 0 || deadline_ms > LLONG_MAX / 1000000 - TIMEOUT_MARGIN_MS ? -1 :
			(deadline_ms ? deadline_ms : DEFAULT_DEADLINE_MS) + TIMEOUT_MARGIN_MS;
	else if (timeout_ms == 0)
		timeout_ms = -1;
	return request_timed(pid, tokens, timeout_ms, image_dir, stats);
}
