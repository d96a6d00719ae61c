/* SPDX-License-Identifier: MIT */
/*
 * test_env_random.c - restore-aware randomness and instance identity
 * (issue 5: "10 instances get different random bytes and instance ids").
 *
 *  - 10 sim rounds in one process: 10 different instance ids, byte strings
 *    and crac_random_u64 values;
 *  - 10 forked children that each do a sim restore from the same state;
 *  - 10 children made by the raw fork system call, which bypasses
 *    pthread_atfork: the children start with exactly the parent's memory,
 *    generator state included, as instances restored from one image do.
 *    Without a restore they draw the same crac_random_u64 values (checked,
 *    so the test proves something); after a sim restore they must differ;
 *  - every thread reseeds after a restore; libc reseeding is opt-in.
 */
#include "crac.h"
#include "harness.h"
#include "test_common.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 10

/* What one instance reports about itself. */
struct sample {
	uint8_t id[16];
	uint64_t generation;
	uint8_t bytes[32];
	uint64_t u64[2];
	int restored;   /* outcome of the round, or 0 if none was run */
};

static void take_sample(struct sample *s)
{
	CHECK_EQ(crac_instance_id(s->id, &s->generation), 0);
	CHECK_EQ(crac_random_bytes(s->bytes, sizeof(s->bytes)), 0);
	s->u64[0] = crac_random_u64();
	s->u64[1] = crac_random_u64();
}

/* Checks that every field differs between every pair of samples; reports
 * the first clash of each kind and how many pairs clash. */
static void check_all_distinct(const char *what, const struct sample *s, int n, int check_ids)
{
	int same_id = 0, same_bytes = 0, same_u64 = 0;
	int id_pair[2] = { 0 }, bytes_pair[2] = { 0 }, u64_pair[2] = { 0 };

	for (int i = 0; i < n; i++) {
		for (int j = i + 1; j < n; j++) {
			if (check_ids && memcmp(s[i].id, s[j].id, 16) == 0 && !same_id++) {
				id_pair[0] = i;
				id_pair[1] = j;
			}
			if (memcmp(s[i].bytes, s[j].bytes, sizeof(s[i].bytes)) == 0 && !same_bytes++) {
				bytes_pair[0] = i;
				bytes_pair[1] = j;
			}
			if ((s[i].u64[0] == s[j].u64[0] || s[i].u64[1] == s[j].u64[1]) && !same_u64++) {
				u64_pair[0] = i;
				u64_pair[1] = j;
			}
		}
	}
	CHECKF(!same_id, "%s: %d pairs share an instance id (first: %d and %d)", what, same_id,
	       id_pair[0], id_pair[1]);
	CHECKF(!same_bytes, "%s: %d pairs drew the same random bytes (first: %d and %d)", what,
	       same_bytes, bytes_pair[0], bytes_pair[1]);
	CHECKF(!same_u64, "%s: %d pairs drew the same crac_random_u64 (first: %d and %d)", what,
	       same_u64, u64_pair[0], u64_pair[1]);
}

static void test_bytes_basics(void)
{
	uint8_t a[64], b[64], zero[64] = { 0 };
	static uint8_t big[3 << 20];

	CHECK_EQ(crac_random_bytes(NULL, 0), 0);
	CHECK_EQ(crac_random_bytes(NULL, 1), -EINVAL);
	CHECK_EQ(crac_random_bytes(a, 0), 0);
	CHECK_EQ(crac_random_bytes(a, sizeof(a)), 0);
	CHECK_EQ(crac_random_bytes(b, sizeof(b)), 0);
	CHECK(memcmp(a, b, sizeof(a)) != 0);
	CHECK(memcmp(a, zero, sizeof(a)) != 0);
	/* A large request is filled completely (getrandom may return short). */
	CHECK_EQ(crac_random_bytes(big, sizeof(big)), 0);
	size_t zeros = 0;
	for (size_t i = sizeof(big) - 4096; i < sizeof(big); i++)
		zeros += big[i] == 0;
	CHECKF(zeros < 64, "tail of a 3 MiB request looks unfilled (%zu zero bytes of 4096)", zeros);
}

static void test_u64_basics(void)
{
	uint64_t v[1000];
	int ones = 0;

	for (int i = 0; i < 1000; i++)
		v[i] = crac_random_u64();
	for (int i = 0; i < 1000; i++) {
		ones += __builtin_popcountll(v[i]);
		for (int j = i + 1; j < 1000; j++)
			if (v[i] == v[j]) {
				CHECKF(v[i] != v[j], "repeat at %d and %d", i, j);
				i = j = 1000;
			}
	}
	/* 64000 bits: the count of ones is 32000 +- 126 (1 sigma). */
	CHECKF(ones > 31000 && ones < 33000, "bit balance off: %d ones in 64000 bits", ones);
}

/* 10 rounds in one process: each restore gives a new identity and fresh
 * randomness, and the generation counts the restores. */
static void test_ten_rounds(void)
{
	struct sample s[N];
	uint64_t gen0;

	crac_instance_id(NULL, &gen0);
	for (int i = 0; i < N; i++) {
		uint64_t seed_before = crac__random_thread_seedings();
		crac_random_u64();
		REQUIRE(t_sim_printed() == CRAC_RESTORED);
		take_sample(&s[i]);
		CHECK_EQ(s[i].generation, gen0 + (uint64_t)i + 1);
		CHECKF(crac__random_thread_seedings() > seed_before,
		       "round %d: the thread's generator was not reseeded", i);
	}
	check_all_distinct("10 sim rounds", s, N, 1);
}

/* A child: optionally run a sim round, then write a sample to fd. */
static void child(int fd, int do_restore)
{
	struct sample s = { 0 };
	int failures_before = t_failures;   /* the parent's, inherited */

	if (do_restore)
		s.restored = t_sim_printed();
	take_sample(&s);
	if (write(fd, &s, sizeof(s)) != (ssize_t)sizeof(s))
		_exit(3);
	_exit(t_failures != failures_before ? 2 : 0);
}

/* Runs N children made with `raw` (the fork system call) or fork(), and
 * reads their samples. */
static void run_children(struct sample *s, int raw, int do_restore)
{
	int fds[2];

	REQUIRE(pipe(fds) == 0);
	/* Warm the parent's generator, so children inherit a seeded state. */
	crac_random_u64();
	fflush(NULL);
	for (int i = 0; i < N; i++) {
		pid_t pid = raw ? (pid_t)syscall(SYS_fork) : fork();
		REQUIRE(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			child(fds[1], do_restore);
		}
	}
	close(fds[1]);
	for (int i = 0; i < N; i++) {
		ssize_t n = read(fds[0], &s[i], sizeof(s[i]));
		CHECKF(n == (ssize_t)sizeof(s[i]), "child sample %d: read %zd", i, n);
	}
	close(fds[0]);
	for (int i = 0; i < N; i++) {
		int st = 0;
		pid_t w = wait(&st);
		CHECKF(w > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child exit status %#x", st);
	}
}

static void test_fork_then_restore(void)
{
	struct sample s[N];

	run_children(s, 0, 1);
	for (int i = 0; i < N; i++)
		CHECK_EQ(s[i].restored, CRAC_RESTORED);
	check_all_distinct("fork + sim restore", s, N, 1);
}

/* Identical memory, as from one image: only the restore can tell the
 * instances apart. */
static void test_identical_memory(void)
{
	struct sample s[N];

	/* Premise: without a restore, raw-forked children continue the
	 * parent's generator and draw the same value. If this fails, the
	 * test below proves nothing. */
	run_children(s, 1, 0);
	int same = 1;
	for (int i = 1; i < N; i++)
		same &= s[i].u64[0] == s[0].u64[0] && s[i].u64[1] == s[0].u64[1];
	CHECKF(same, "raw-forked children without a restore should share the generator state");
	/* (getrandom keeps no state: their bytes differ even so.) */

	run_children(s, 1, 1);
	for (int i = 0; i < N; i++)
		CHECK_EQ(s[i].restored, CRAC_RESTORED);
	check_all_distinct("identical memory + sim restore", s, N, 1);
}

/* Every thread reseeds on its next call after a restore. */
static sem_t go_round, round_done;
static uint64_t thread_seedings[3];

static void *worker(void *p)
{
	(void)p;
	crac_random_u64();
	thread_seedings[0] = crac__random_thread_seedings();
	crac_random_u64();
	thread_seedings[1] = crac__random_thread_seedings();
	sem_post(&go_round);
	sem_wait(&round_done);
	crac_random_u64();
	thread_seedings[2] = crac__random_thread_seedings();
	return NULL;
}

static void test_threads_reseed(void)
{
	pthread_t th;

	sem_init(&go_round, 0, 0);
	sem_init(&round_done, 0, 0);
	REQUIRE(pthread_create(&th, NULL, worker, NULL) == 0);
	sem_wait(&go_round);
	CHECK_EQ(t_sim_printed(), CRAC_RESTORED);
	sem_post(&round_done);
	pthread_join(th, NULL);
	CHECK_EQ(thread_seedings[0], 1);
	CHECK_EQ(thread_seedings[1], 1);   /* no reseed without a restore */
	CHECK_EQ(thread_seedings[2], 2);   /* reseeded after it */
	sem_destroy(&go_round);
	sem_destroy(&round_done);
}

/* libc: left alone unless asked; reseeded in restored instances when asked. */
struct libc_seq {
	int r[4];
	long rd[4];
	long l48[4];
};

static void draw_libc(struct libc_seq *q)
{
	for (int i = 0; i < 4; i++) {
		q->r[i] = rand();
		q->rd[i] = random();
		q->l48[i] = lrand48();
	}
}

static void seed_libc(void)
{
	unsigned short s48[3] = { 1, 2, 3 };
	srand(42);
	srandom(43);
	seed48(s48);
}

static void test_libc_reseed(void)
{
	struct libc_seq expect, got;

	seed_libc();
	draw_libc(&expect);

	/* Default: an application that seeded on purpose keeps its sequence. */
	seed_libc();
	CHECK_EQ(t_sim_printed(), CRAC_RESTORED);
	draw_libc(&got);
	CHECK(memcmp(&expect, &got, sizeof(got)) == 0);

	/* Enabled (twice: idempotent): every generator moves to a new sequence. */
	CHECK_EQ(crac_random_reseed_libc(1), 0);
	CHECK_EQ(crac_random_reseed_libc(1), 0);
	seed_libc();
	CHECK_EQ(t_sim_printed(), CRAC_RESTORED);
	draw_libc(&got);
	CHECK(memcmp(expect.r, got.r, sizeof(got.r)) != 0);
	CHECK(memcmp(expect.rd, got.rd, sizeof(got.rd)) != 0);
	CHECK(memcmp(expect.l48, got.l48, sizeof(got.l48)) != 0);

	/* Not in an aborted round (no new instance). */
	seed_libc();
	struct crac_options o;
	crac_options_init(&o);
	o.engine = "sim";
	o.flags = CRAC_DRY_RUN;
	CHECK_EQ(crac_checkpoint_restore(&o, NULL), CRAC_CONTINUED);
	draw_libc(&got);
	CHECK(memcmp(&expect, &got, sizeof(got)) == 0);

	/* Disabled again (twice): left alone. */
	CHECK_EQ(crac_random_reseed_libc(0), 0);
	CHECK_EQ(crac_random_reseed_libc(0), 0);
	seed_libc();
	CHECK_EQ(t_sim_printed(), CRAC_RESTORED);
	draw_libc(&got);
	CHECK(memcmp(&expect, &got, sizeof(got)) == 0);
}

int main(void)
{
	RUN(test_bytes_basics);
	RUN(test_u64_basics);
	RUN(test_ten_rounds);
	RUN(test_fork_then_restore);
	RUN(test_identical_memory);
	RUN(test_threads_reseed);
	RUN(test_libc_reseed);
	return t_done();
}
