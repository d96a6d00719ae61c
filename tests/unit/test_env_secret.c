/* SPDX-License-Identifier: MIT */
/*
 * test_env_secret.c - the registry of secret regions (crac_secret_region,
 * crac_secret_forget, and crac__secret_foreach for image engines).
 * Whether a secret stays out of an image file is tested end to end in
 * tests/cli/env_secret.bats (needs the image engine).
 */
#include "crac.h"
#include "core/internal.h"
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

/* Collects the registry through crac__secret_foreach. */
struct seen {
	size_t n;
	void *ptr[512];
	size_t len[512];
	size_t stop_after;   /* 0: never stop */
};

static int collect(void *ptr, size_t len, void *arg)
{
	struct seen *s = arg;
	if (s->n < 512) {
		s->ptr[s->n] = ptr;
		s->len[s->n] = len;
	}
	s->n++;
	return s->stop_after && s->n >= s->stop_after ? 7 : 0;
}

static struct seen list(void)
{
	struct seen s;
	memset(&s, 0, sizeof(s));
	CHECK_EQ(crac__secret_foreach(collect, &s), 0);
	return s;
}

/* Length registered at ptr, or 0. */
static size_t len_of(const struct seen *s, void *ptr)
{
	for (size_t i = 0; i < s->n && i < 512; i++)
		if (s->ptr[i] == ptr)
			return s->len[i];
	return 0;
}

static char buf[4096];

static void test_invalid(void)
{
	CHECK_EQ(crac_secret_region(NULL, 10), -EINVAL);
	CHECK_EQ(crac_secret_region(buf, 0), -EINVAL);
	CHECK_EQ(crac_secret_region((void *)(UINTPTR_MAX - 10), 100), -EINVAL);  /* wraps */
	CHECK_EQ(crac_secret_forget(NULL), -EINVAL);
	CHECK_EQ(crac_secret_forget(buf), -ENOENT);
	CHECK_EQ(crac__secret_foreach(NULL, NULL), -EINVAL);
	CHECK_EQ(list().n, 0);
}

static void test_add_forget(void)
{
	struct seen s;

	CHECK_EQ(crac_secret_region(buf, 32), 0);
	CHECK_EQ(crac_secret_region(buf + 16, 64), 0);   /* overlapping: allowed */
	CHECK_EQ(crac_secret_region(buf + 1000, 1), 0);
	s = list();
	CHECK_EQ(s.n, 3);
	CHECK_EQ(len_of(&s, buf), 32);
	CHECK_EQ(len_of(&s, buf + 16), 64);
	CHECK_EQ(len_of(&s, buf + 1000), 1);

	/* Same start: one region, never shrunk. */
	CHECK_EQ(crac_secret_region(buf, 128), 0);
	CHECK_EQ(crac_secret_region(buf, 8), 0);
	s = list();
	CHECK_EQ(s.n, 3);
	CHECK_EQ(len_of(&s, buf), 128);

	CHECK_EQ(crac_secret_forget(buf + 16), 0);
	CHECK_EQ(crac_secret_forget(buf + 16), -ENOENT);
	CHECK_EQ(crac_secret_forget(buf + 17), -ENOENT);  /* only by start address */
	s = list();
	CHECK_EQ(s.n, 2);
	CHECK_EQ(len_of(&s, buf + 16), 0);
	CHECK_EQ(len_of(&s, buf), 128);

	CHECK_EQ(crac_secret_forget(buf), 0);
	CHECK_EQ(crac_secret_forget(buf + 1000), 0);
	CHECK_EQ(list().n, 0);
}

static void test_foreach_stops(void)
{
	struct seen s;

	for (int i = 0; i < 5; i++)
		CHECK_EQ(crac_secret_region(buf + i * 10, 5), 0);
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	CHECK_EQ(crac__secret_foreach(collect, &s), 7);   /* fn's value comes back */
	CHECK_EQ(s.n, 2);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(crac_secret_forget(buf + i * 10), 0);
	CHECK_EQ(list().n, 0);
}

static void test_many(void)
{
	struct seen s;

	for (int i = 0; i < 400; i++)
		REQUIRE(crac_secret_region(buf + i, (size_t)i + 1) == 0);
	s = list();
	CHECK_EQ(s.n, 400);
	for (int i = 0; i < 400; i++)
		CHECK_EQ(len_of(&s, buf + i), i + 1);
	for (int i = 0; i < 400; i += 2)
		CHECK_EQ(crac_secret_forget(buf + i), 0);
	s = list();
	CHECK_EQ(s.n, 200);
	for (int i = 0; i < 400; i++)
		CHECK_EQ(len_of(&s, buf + i), i % 2 ? (size_t)i + 1 : 0);
	for (int i = 1; i < 400; i += 2)
		CHECK_EQ(crac_secret_forget(buf + i), 0);
	CHECK_EQ(list().n, 0);
}

/* Threads registering and forgetting their own regions concurrently. */
static void *churn(void *p)
{
	char *base = p;
	for (int round = 0; round < 2000; round++) {
		for (int i = 0; i < 8; i++)
			if (crac_secret_region(base + i, 1) != 0)
				return (void *)1;
		for (int i = 0; i < 8; i++)
			if (crac_secret_forget(base + i) != 0)
				return (void *)2;
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t th[4];
	void *res;

	for (int i = 0; i < 4; i++)
		REQUIRE(pthread_create(&th[i], NULL, churn, buf + 100 * i) == 0);
	for (int i = 0; i < 50; i++) {
		struct seen s = list();
		CHECK(s.n <= 32);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], &res);
		CHECKF(res == NULL, "thread %d failed at step %ld", i, (long)(intptr_t)res);
	}
	CHECK_EQ(list().n, 0);
}

/* A foreach that cannot get the lock gives up instead of hanging (an image
 * engine that stopped a thread inside crac_secret_region). */
static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static int holding, release_holder;

static int hold_lock(void *ptr, size_t len, void *arg)
{
	(void)ptr; (void)len; (void)arg;
	pthread_mutex_lock(&hold_mu);
	holding = 1;
	pthread_cond_broadcast(&hold_cv);
	while (!release_holder)
		pthread_cond_wait(&hold_cv, &hold_mu);
	pthread_mutex_unlock(&hold_mu);
	return 0;
}

static void *holder(void *p)
{
	(void)p;
	crac__secret_foreach(hold_lock, NULL);
	return NULL;
}

static void test_foreach_no_hang(void)
{
	pthread_t th;
	struct seen s;

	REQUIRE(crac_secret_region(buf, 1) == 0);
	REQUIRE(pthread_create(&th, NULL, holder, NULL) == 0);
	pthread_mutex_lock(&hold_mu);
	while (!holding)
		pthread_cond_wait(&hold_cv, &hold_mu);
	pthread_mutex_unlock(&hold_mu);

	memset(&s, 0, sizeof(s));
	CHECK_EQ(crac__secret_foreach(collect, &s), -EDEADLK);
	CHECK_EQ(s.n, 0);

	pthread_mutex_lock(&hold_mu);
	release_holder = 1;
	pthread_cond_broadcast(&hold_cv);
	pthread_mutex_unlock(&hold_mu);
	pthread_join(th, NULL);
	CHECK_EQ(crac_secret_forget(buf), 0);
}

int main(void)
{
	RUN(test_invalid);
	RUN(test_add_forget);
	RUN(test_foreach_stops);
	RUN(test_many);
	RUN(test_threads);
	RUN(test_foreach_no_hang);
	return t_done();
}
