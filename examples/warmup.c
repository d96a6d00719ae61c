/* SPDX-License-Identifier: MIT */
/*
 * warmup.c - the main demo: a program with an expensive warm-up.
 *
 * It builds an in-memory index (a hash table of word counts over a few
 * million pseudo-random words, then a sorted array of the distinct words),
 * which takes over a second of real work, and then answers with a checksum
 * of the whole structure.
 *
 *   warmup                      cold start: warm up, print the checksum
 *   warmup --checkpoint DIR     warm up, checkpoint into DIR with the image
 *                               engine; `crac restore DIR` continues from
 *                               there and prints the same checksum
 *
 * Output lines (read by scripts/demo.sh):
 *   ready mode=cold|restored checksum=HEX words=N t_ready_ns=REALTIME
 * where t_ready_ns is CLOCK_REALTIME when the structure is ready to serve:
 * after the warm-up, or at the first after_restore callback.
 */
#include <crac.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#define WORDS 4000000u          /* words generated */
#define TABLE (1u << 23)        /* hash slots (8 Mi) */
#define WORDLEN 6               /* letters per word: 26^6 possible words */

struct slot {
	char word[8];
	uint32_t count;
};

static struct slot *table;
static char (*sorted)[8];
static size_t distinct;
static int64_t ready_ns;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* xorshift64*: deterministic, so every run builds the same index */
static uint64_t next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static uint64_t hash(const char *w)
{
	uint64_t h = 1469598103934665603ULL;
	for (int i = 0; i < WORDLEN; i++)
		h = (h ^ (unsigned char)w[i]) * 1099511628211ULL;
	return h;
}

static int cmp_words(const void *a, const void *b)
{
	return memcmp(a, b, WORDLEN);
}

/* The expensive part: count words, then sort the distinct ones. */
static void warm_up(void)
{
	uint64_t s = 0x9E3779B97F4A7C15ULL;

	table = calloc(TABLE, sizeof(*table));
	if (!table) {
		perror("calloc");
		exit(1);
	}
	for (uint32_t i = 0; i < WORDS; i++) {
		char w[8] = { 0 };
		uint64_t r = next(&s);
		/* skew the distribution so that counts differ */
		int len = WORDLEN;
		for (int k = 0; k < len; k++) {
			w[k] = (char)('a' + r % 26);
			r /= 26;
		}
		if (i % 3 == 0)
			w[0] = 'e';
		uint64_t h = hash(w) & (TABLE - 1);
		while (table[h].count && memcmp(table[h].word, w, WORDLEN))
			h = (h + 1) & (TABLE - 1);
		if (!table[h].count) {
			memcpy(table[h].word, w, 8);
			distinct++;
		}
		table[h].count++;
	}
	sorted = malloc(distinct * sizeof(*sorted));
	if (!sorted) {
		perror("malloc");
		exit(1);
	}
	size_t n = 0;
	for (uint32_t i = 0; i < TABLE; i++)
		if (table[i].count)
			memcpy(sorted[n++], table[i].word, 8);
	qsort(sorted, distinct, sizeof(*sorted), cmp_words);
}

/* A checksum of the whole index: every sorted word with its count. */
static uint64_t checksum(void)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < distinct; i++) {
		uint64_t k = hash(sorted[i]) & (TABLE - 1);
		while (memcmp(table[k].word, sorted[i], WORDLEN))
			k = (k + 1) & (TABLE - 1);
		h = (h ^ hash(sorted[i])) * 1099511628211ULL;
		h = (h ^ table[k].count) * 1099511628211ULL;
	}
	return h;
}

static int on_restore(const crac_event *ev, void *arg)
{
	(void)arg;
	if (ev->outcome == CRAC_RESTORED)
		ready_ns = now_ns();   /* first after_restore: ready to serve */
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = "cold";

	/* This program owns no descriptor but stdio. Whatever the launching
	 * shell or terminal leaked to it (an IDE's pipe, a /dev/null) would make
	 * the image engine's safety check refuse the checkpoint, rightly: drop
	 * it. A real server would close or register what it opened instead. */
	closefrom(3);
	warm_up();
	ready_ns = now_ns();
	if (argc == 3 && !strcmp(argv[1], "--checkpoint")) {
		struct crac_resource_def d = { .name = "warmup", .after_restore = on_restore };
		struct crac_options o;
		crac_report *rep = NULL;

		crac_register(NULL, &d, NULL);
		crac_options_init(&o);
		o.engine = "image";
		o.image_dir = argv[2];
		int rc = crac_checkpoint_restore(&o, &rep);
		if (rc != CRAC_RESTORED) {
			fprintf(stderr, "warmup: checkpoint did not restore (%d)\n", rc);
			crac_report_print(rep, stderr);
			crac_report_free(rep);
			return 1;
		}
		crac_report_free(rep);
		mode = "restored";
	} else if (argc != 1) {
		fprintf(stderr, "usage: warmup [--checkpoint DIR]\n");
		return 2;
	}
	/* The checksum reads the whole index: after a lazy restore this is
	 * also where the pages not loaded yet come in. */
	uint64_t sum = checksum();
	long long sum_ns = now_ns();
	printf("ready mode=%s checksum=%016llx words=%zu t_ready_ns=%lld t_sum_ns=%lld\n", mode,
	       (unsigned long long)sum, distinct, (long long)ready_ns, sum_ns);
	return 0;
}
