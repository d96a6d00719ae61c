/* SPDX-License-Identifier: MIT */
/*
 * secret.c - the registry of secret memory regions.
 *
 * An application marks buffers that hold keys, tokens or passwords with
 * crac_secret_region(); image engines write those bytes as zeros (walking
 * the registry with crac__secret_foreach) and `crac inspect` lists them, so
 * the secret never reaches an image file. After restore the application
 * re-derives the secret (examples/session_key.c).
 *
 * The registry is an array of (start, length) under a mutex. Regions may
 * overlap. Registering a region that starts where a registered one starts
 * keeps one region with the larger of the two lengths: protection never
 * shrinks by accident (to shrink, forget and register again), and
 * crac_secret_forget(ptr) has exactly one region to remove.
 *
 * For image engines: crac__secret_foreach holds the registry lock while it
 * calls fn. A thread stopped (quiesced) while inside crac_secret_region or
 * crac_secret_forget would hold that lock, so foreach waits for it for at
 * most LOCK_WAIT_S seconds and then returns -EDEADLK instead of hanging:
 * the engine should walk the registry BEFORE it stops the other threads (or
 * refuse the checkpoint on -EDEADLK). fn must not call back into this file.
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOCK_WAIT_S 2

struct region {
	void *ptr;
	size_t len;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct region *regions;
static size_t count, capacity;

int crac_secret_region(void *ptr, size_t len)
{
	int rc = 0;

	if (!ptr || !len || (uintptr_t)ptr + len < (uintptr_t)ptr)
		return -EINVAL;   /* NULL, empty, or wraps around the address space */
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < count; i++) {
		if (regions[i].ptr == ptr) {
			if (len > regions[i].len)
				regions[i].len = len;
			goto out;
		}
	}
	if (count == capacity) {
		size_t ncap = capacity ? capacity * 2 : 16;
		struct region *n = realloc(regions, ncap * sizeof(*n));
		if (!n) {
			rc = -ENOMEM;
			goto out;
		}
		regions = n;
		capacity = ncap;
	}
	regions[count].ptr = ptr;
	regions[count].len = len;
	count++;
out:
	pthread_mutex_unlock(&lock);
	return rc;
}

int crac_secret_forget(void *ptr)
{
	int rc = -ENOENT;

	if (!ptr)
		return -EINVAL;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < count; i++) {
		if (regions[i].ptr == ptr) {
			/* Order does not matter: move the last one here. */
			regions[i] = regions[--count];
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

int crac__secret_foreach(int (*fn)(void *ptr, size_t len, void *arg), void *arg)
{
	struct timespec until;
	int rc = 0;

	if (!fn)
		return -EINVAL;
	clock_gettime(CLOCK_REALTIME, &until);   /* timedlock wants CLOCK_REALTIME */
	until.tv_sec += LOCK_WAIT_S;
	if (pthread_mutex_timedlock(&lock, &until) != 0)
		return -EDEADLK;
	for (size_t i = 0; i < count && rc == 0; i++)
		rc = fn(regions[i].ptr, regions[i].len, arg);
	pthread_mutex_unlock(&lock);
	return rc;
}
