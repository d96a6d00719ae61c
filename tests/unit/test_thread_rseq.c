/* SPDX-License-Identifier: MIT */
/*
 * test_thread_rseq.c - img_thread_record (engines/image_threads.c) records a
 * thread's rseq area only if the kernel has it registered. A thread stopped
 * inside glibc's start_thread before its registration holds zeros or a
 * previous thread's values in the area; recorded, the restore registered it,
 * glibc's own registration then failed (EBUSY) and the restored process
 * aborted with "Fatal glibc error: rseq registration failed". And asking
 * the kernel leaves the registration as it found it. A thread with an rseq
 * area of its own registered instead (tcmalloc's, when glibc has none) is
 * marked (rseq_other: the capture refuses it), not taken for glibc's.
 */
#include "harness.h"
#include "engines/image_engine.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SIG 0x53053053

static struct rseq *area(void)
{
	return (struct rseq *)(uintptr_t)((uint64_t)(uintptr_t)__builtin_thread_pointer() + (uint64_t)__rseq_offset);
}

/* Registered now? (registering again: EBUSY if so; undone if not) */
static bool registered(void)
{
	if (syscall(SYS_rseq, area(), 32, 0, SIG) == 0) {
		syscall(SYS_rseq, area(), 32, RSEQ_FLAG_UNREGISTER, SIG);
		return false;
	}
	return errno == EBUSY;
}

static void test_registered_thread(void)
{
	struct img_thread t;

	memset(&t, 0, sizeof(t));
	REQUIRE(registered());
	img_thread_record(&t);
	CHECK_EQ(t.rseq, (uint64_t)(uintptr_t)area());
	CHECK(!t.rseq_other);
	CHECK(registered());   /* still */
}

static void *unregistered(void *arg)
{
	struct img_thread *t = arg;

	/* as before glibc's registration: not registered, the area holds
	 * what the memory held (here: a cpu_id of 0, not "failed") */
	if (syscall(SYS_rseq, area(), 32, RSEQ_FLAG_UNREGISTER, SIG) != 0)
		return (void *)1;
	area()->cpu_id = 0;
	area()->cpu_id_start = 0;
	img_thread_record(t);
	bool still_not = !registered();
	/* back as glibc left it */
	syscall(SYS_rseq, area(), 32, 0, SIG);
	return still_not ? NULL : (void *)2;
}

static void test_unregistered_thread(void)
{
	struct img_thread t;
	pthread_t th;
	void *ret = (void *)3;

	memset(&t, 0, sizeof(t));
	REQUIRE(pthread_create(&th, NULL, unregistered, &t) == 0);
	pthread_join(th, &ret);
	CHECK_EQ((long)(intptr_t)ret, 0);   /* 1: could not unregister; 2: the probe left it registered */
	CHECK_EQ(t.rseq, 0);
	CHECK(!t.rseq_other);
}

static struct rseq own_area __attribute__((aligned(32)));

static void *own(void *arg)
{
	struct img_thread *t = arg;

	/* glibc's area unregistered, one of the program's own instead (its
	 * cpu_id -1, as glibc leaves it when it has not registered) */
	if (syscall(SYS_rseq, area(), 32, RSEQ_FLAG_UNREGISTER, SIG) != 0)
		return (void *)1;
	area()->cpu_id = (uint32_t)-1;
	if (syscall(SYS_rseq, &own_area, 32, 0, SIG) != 0) {
		syscall(SYS_rseq, area(), 32, 0, SIG);
		return (void *)2;
	}
	img_thread_record(t);
	/* still registered: EBUSY */
	bool still = syscall(SYS_rseq, &own_area, 32, 0, SIG) != 0 && errno == EBUSY;
	syscall(SYS_rseq, &own_area, 32, RSEQ_FLAG_UNREGISTER, SIG);
	syscall(SYS_rseq, area(), 32, 0, SIG);
	return still ? NULL : (void *)3;
}

static void test_own_area_thread(void)
{
	struct img_thread t;
	pthread_t th;
	void *ret = (void *)4;

	memset(&t, 0, sizeof(t));
	REQUIRE(pthread_create(&th, NULL, own, &t) == 0);
	pthread_join(th, &ret);
	CHECK_EQ((long)(intptr_t)ret, 0);   /* 1, 2: could not set it up; 3: the probe changed it */
	CHECK_EQ(t.rseq, 0);
	CHECK(t.rseq_other);
}

int main(void)
{
	if (!__rseq_size)
		t_skip_all("glibc does not register rseq here (glibc.pthread.rseq=0?)");
	RUN(test_registered_thread);
	RUN(test_unregistered_thread);
	RUN(test_own_area_thread);
	return t_done();
}
