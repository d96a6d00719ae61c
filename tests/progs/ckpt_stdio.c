/* SPDX-License-Identifier: MIT */
/*
 * ckpt_stdio - a program whose main thread sits in fgets(stdin) while it is
 * checkpointed with the image engine (the stdin FILE lock is held the whole
 * time), with output pending in the stdout buffer.
 *
 *   ckpt_stdio DIR [keep|ctl|spam]
 *
 * Prints (write(2) to stderr, as every status line) "ready pid=PID", then puts "pending output" into the
 * stdout buffer without flushing, and reads lines from stdin:
 *   - DIR given, not "ctl": a second thread checkpoints into DIR after
 *     300 ms (with CRAC_KEEP_RUNNING if "keep") and prints "continued" or
 *     "restored", or "FAIL: ..." with the report;
 *   - "ctl": no thread; the control endpoint is started and
 *     `crac checkpoint --engine image --image-dir DIR PID` does it.
 *   - "spam": as "keep", and a third thread prints lines to stdout
 *     without pause (it holds the stdout lock most of the time).
 * The main thread prints "got: LINE" for every line, and "eof
 * restored=0|1" at end of input, then exits 0.
 *
 * "pending output" must appear exactly once in the original's output (the
 * checkpoint flushes it) and never in a restored process's.
 */
#include <crac.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *dir;
static bool keep;
static atomic_int restored, stop_spam;

static void *spammer(void *arg)
{
	(void)arg;
	for (unsigned long i = 0; !atomic_load(&stop_spam); i++)
		printf("spam %lu\n", i);
	return NULL;
}

static void say(const char *s)
{
	if (write(2, s, strlen(s)) < 0)
		_exit(3);
}

static void *checkpointer(void *arg)
{
	(void)arg;
	struct timespec ts = { 0, 300 * 1000000L };
	nanosleep(&ts, NULL);

	struct crac_options o;
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = dir;
	o.deadline_ms = 10000;
	if (keep)
		o.flags |= CRAC_KEEP_RUNNING;
	crac_report *rep = NULL;
	int rc = crac_checkpoint_restore(&o, &rep);
	if (rc == CRAC_RESTORED) {
		atomic_store(&restored, 1);
		say("restored\n");
	} else if (rc == CRAC_CONTINUED) {
		say("continued\n");
	} else {
		char line[64];
		snprintf(line, sizeof(line), "FAIL: crac_checkpoint_restore returned %d\n", rc);
		say(line);
		char *text = NULL;
		if (rep && crac_report_format(rep, &text) == 0) {
			say(text);
			free(text);
		}
	}
	crac_report_free(rep);
	return NULL;
}

int main(int argc, char **argv)
{
	char line[256];

	if (argc < 2) {
		fprintf(stderr, "usage: ckpt_stdio DIR [keep|ctl]\n");
		return 2;
	}
	dir = argv[1];
	bool spam = argc > 2 && !strcmp(argv[2], "spam");
	keep = spam || (argc > 2 && !strcmp(argv[2], "keep"));
	bool ctl = argc > 2 && !strcmp(argv[2], "ctl");

	if (ctl && crac_control_start() < 0) {
		fprintf(stderr, "ckpt_stdio: crac_control_start failed\n");
		return 1;
	}
	pthread_t t;
	if (!ctl && pthread_create(&t, NULL, checkpointer, NULL) != 0)
		return 1;
	snprintf(line, sizeof(line), "ready pid=%d\n", (int)getpid());
	say(line);
	/* stdout is a pipe or a file: fully buffered, this stays pending */
	printf("pending output\n");
	pthread_t sp;
	if (spam && pthread_create(&sp, NULL, spammer, NULL) != 0)
		return 1;

	while (fgets(line, sizeof(line), stdin)) {
		printf("got: %s", line);
		fflush(stdout);
	}
	if (!ctl)
		pthread_join(t, NULL);
	if (spam) {
		atomic_store(&stop_spam, 1);
		pthread_join(sp, NULL);
	}
	printf("eof restored=%d\n", atomic_load(&restored));
	return 0;
}
