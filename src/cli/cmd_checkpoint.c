/*
 * cmd_checkpoint.c - `crac checkpoint PID`: ask a process, through its
 * control endpoint, to checkpoint itself, and print what it answers.
 */
#include "cli.h"
#include "core/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* ---- --timeout ------------------------------------------------------------- */

struct timed {
	int pid;
	const char *const *tokens;
	FILE *out;                   /* the write end of the pipe */
	int rc, status;
	char err[1024];
};

static void *timed_thread(void *p)
{
	struct timed *t = p;

	t->rc = crac__control_request(t->pid, t->tokens, t->out, &t->status, t->err, sizeof(t->err));
	fclose(t->out);              /* end of file: the answer is complete */
	return NULL;
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

/* Bytes under dir (one level: an image directory). */
static long long dir_bytes(const char *dir)
{
	char path[PATH_MAX + 300];
	long long sum = 0;
	struct dirent *d;
	struct stat st;
	DIR *dp = opendir(dir);

	if (!dp)
		return 0;
	while ((d = readdir(dp)))
		if (snprintf(path, sizeof(path), "%s/%s", dir, d->d_name) < (int)sizeof(path) &&
		    stat(path, &st) == 0 && S_ISREG(st.st_mode))
			sum += (long long)st.st_blocks * 512;
	closedir(dp);
	return sum;
}

/*
 * Where the checkpoint of pid is, as seen from outside (the answer says
 * nothing until the snapshot): the snapshot's line already came (after
 * it); the image engine's temporary DIR.tmp-PID-* exists (writing the
 * image); else before the snapshot.
 */
static void phase_of(int pid, const char *image, bool answered, char *out, size_t len)
{
	char dir[PATH_MAX + 8], parent[PATH_MAX + 8], prefix[PATH_MAX + 48], path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (stat(path, &st) < 0) {
		snprintf(out, len, "process %d is gone", pid);
		return;
	}
	if (answered) {
		snprintf(out, len, "after the snapshot: the program's after_restore callbacks (or its exit) "
			 "had not finished");
		return;
	}
	if (image && *image)
		snprintf(dir, sizeof(dir), "%s", image);
	else
		env_of(pid, "CRAC_IMAGE_DIR", dir, sizeof(dir));
	if (dir[0]) {
		snprintf(parent, sizeof(parent), "%s", dir);
		char *slash = strrchr(parent, '/');
		const char *base = slash ? slash + 1 : parent;
		if (slash)
			*slash = 0;
		snprintf(prefix, sizeof(prefix), "%s.tmp-%d-", base, pid);
		DIR *dp = opendir(slash ? (parent[0] ? parent : "/") : ".");
		struct dirent *d;
		while (dp && (d = readdir(dp)))
			if (!strncmp(d->d_name, prefix, strlen(prefix))) {
				char tmp[PATH_MAX + 300];
				(void)!snprintf(tmp, sizeof(tmp), "%s/%s", slash ? parent : ".", d->d_name);
				snprintf(out, len, "writing the image: %s holds %.1f MiB so far", tmp,
					 (double)dir_bytes(tmp) / 1048576.0);
				closedir(dp);
				return;
			}
		if (dp)
			closedir(dp);
	}
	snprintf(out, len, "before the snapshot: waiting for inhibitors (crac_inhibit), in the "
		 "before_checkpoint callbacks or the safety checks");
}

/*
 * The request with a limit: on a thread writing the answer into a pipe,
 * copied to stdout as it comes. timeout_ms < 0: none.
 */
static int request_timed(int pid, const char *const *tokens, long long timeout_ms, const char *image)
{
	struct timed t = { .pid = pid, .tokens = tokens };
	int p[2];
	pthread_t th;
	bool answered = false;
	char buf[4096];

	if (timeout_ms < 0)
		return cli_request(pid, tokens);
	if (pipe2(p, O_CLOEXEC) < 0 || !(t.out = fdopen(p[1], "w"))) {
		cli_err("checkpoint: pipe: %s", strerror(errno));
		return 2;
	}
	setvbuf(t.out, NULL, _IOLBF, 0);
	if (pthread_create(&th, NULL, timed_thread, &t) != 0) {
		cli_err("checkpoint: cannot start a thread");
		return 2;
	}
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long spent = (now.tv_sec - t0.tv_sec) * 1000LL + (now.tv_nsec - t0.tv_nsec) / 1000000;
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		int n = spent >= timeout_ms ? 0 : poll(&pf, 1, (int)(timeout_ms - spent));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			char where[2 * PATH_MAX + 800];
			fflush(stdout);
			phase_of(pid, image, answered, where, sizeof(where));
			cli_err("checkpoint of process %d: no answer after %.1f s (--timeout); it was %s. "
				"The checkpoint goes on in the process; crac stopped waiting", pid,
				(double)timeout_ms / 1000.0, where);
			return 1;
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
	if (t.rc < 0) {
		cli_err("%s", t.err);
		return 2;
	}
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
		{ "timeout", required_argument, 0, 't' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	/* one token per option at most: repeated options replace their token */
	const char *tokens[8] = { "CHECKPOINT" };
	int at[128] = { 0 };   /* option letter -> its token index */
	char engine[128], image[PATH_MAX + 8], deadline[64], dir[PATH_MAX];
	int n = 1, c, pid;
	long long deadline_ms = 0, timeout_ms = -2;   /* -2: the default */
	const char *image_dir = NULL;
#define TOKEN(opt, text) (tokens[at[opt] ? at[opt] : (at[opt] = n++)] = (text))

	optind = 1;
	while ((c = getopt_long(argc, argv, "+e:i:kd:nft:h", opts, NULL)) != -1) {
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
			       "  --timeout DURATION  stop waiting for the answer after DURATION (500ms, 30s, 2m),\n"
			       "                      saying which phase the checkpoint was in; default: the\n"
			       "                      deadline plus %d s (none with --deadline -1); 0: no limit\n"
			       "  --help              this text\n"
			       "exit status: 0 done, 1 refused/aborted/failed or --timeout expired, 2 usage error or\n"
			       "no control endpoint\n", DEFAULT_DEADLINE_MS, TIMEOUT_MARGIN_MS / 1000);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc - 1 || !(pid = cli_parse_pid(argv[optind]))) {
		cli_err("usage: crac checkpoint [options] PID");
		return 2;
	}
	tokens[n] = NULL;
	if (timeout_ms == -2)
		timeout_ms = deadline_ms < 0 ? -1 :
			(deadline_ms ? deadline_ms : DEFAULT_DEADLINE_MS) + TIMEOUT_MARGIN_MS;
	else if (timeout_ms == 0)
		timeout_ms = -1;
	return request_timed(pid, tokens, timeout_ms, image_dir);
}
