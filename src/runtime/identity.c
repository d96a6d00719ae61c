/* SPDX-License-Identifier: MIT */
/*
 * identity.c - who this instance is: a random version-4 UUID (the instance
 * id) and a generation counter, both renewed on every restore by
 * crac__new_identity before any after_restore callback runs (the core calls
 * it from core/checkpoint.c, the external engine from its watcher); and
 * fresh UUIDs on demand.
 *
 * An engine that restores a process (image, criu) renews them earlier,
 * before any other thread of the restored process runs
 * (crac__identity_restored_early, from crac__runtime_restore_early): the
 * program's threads are let go before the after_restore callbacks, and one
 * that asked for the identity at once (a request waiting on its socket)
 * got the image's, the same in every restored copy (probe s20).
 */
#include "core/core.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* RFC 9562: version 4 (random), variant 10. */
static void uuid_v4_bits(uint8_t u[16])
{
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
}


/* Identity of this lineage (guarded by crac__lock). */
static uint64_t generation;
static uint8_t instance_id[16];
static bool have_id;
/* Renewed by crac__identity_restored_early for the restore in progress:
 * crac__new_identity then only reports it. */
static bool renewed_early;

static void random_id(uint8_t id[16])
{
	size_t got = 0;

	while (got < 16) {
		ssize_t n = getrandom(id + got, 16 - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* No entropy source at all: fall back to time and tid so that
			 * instances still differ; never leave the id blank. */
			int64_t t = crac__now_ns(CLOCK_REALTIME) ^ crac__now_ns(CLOCK_MONOTONIC);
			int tid = crac__gettid();
			memcpy(id, &t, 8);
			memcpy(id + 8, &tid, sizeof(tid));
			return;
		}
		got += (size_t)n;
	}
	uuid_v4_bits(id);
}

static void current_identity(crac_event *ev)
{
	if (!have_id) {
		random_id(instance_id);
		have_id = true;
	}
	ev->generation = generation;
	memcpy(ev->instance_id, instance_id, 16);
}

void crac__identity(uint8_t id[16], uint64_t *gen)
{
	crac__enter();
	pthread_mutex_lock(&crac__lock);
	if (!have_id) {
		random_id(instance_id);
		have_id = true;
	}
	if (id)
		memcpy(id, instance_id, 16);
	if (gen)
		*gen = generation;
	pthread_mutex_unlock(&crac__lock);
	crac__leave();
}

void crac__identity_restored_early(void)
{
	crac__enter();
	/* Its memory is the image's: a thread stopped inside crac__identity
	 * holds the lock until it is recreated and resumes. Then the identity
	 * is renewed later, by crac__new_identity, as it always was. */
	if (pthread_mutex_trylock(&crac__lock) == 0) {
		generation++;
		random_id(instance_id);
		have_id = true;
		renewed_early = true;
		pthread_mutex_unlock(&crac__lock);
	}
	crac__leave();
}

void crac__new_identity(crac_event *ev)
{
	crac__enter();
	pthread_mutex_lock(&crac__lock);
	if (renewed_early) {
		renewed_early = false;
	} else {
		generation++;
		random_id(instance_id);
		have_id = true;
	}
	current_identity(ev);
	pthread_mutex_unlock(&crac__lock);
	crac__leave();
}

int crac_instance_id(uint8_t id[16], uint64_t *gen)
{
	crac__identity(id, gen);
	return 0;
}

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower-case hex, NUL-terminated. */
static void format_uuid(const uint8_t u[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[u[i] >> 4];
		out[o++] = hex[u[i] & 15];
	}
	out[o] = '\0';
}

int crac_instance_uuid(char out[37])
{
	uint8_t id[16];

	if (!out)
		return -EINVAL;
	crac__identity(id, NULL);
	format_uuid(id, out);
	return 0;
}

int crac_uuid(char out[37])
{
	uint8_t u[16];
	int rc;

	if (!out)
		return -EINVAL;
	if ((rc = crac_random_bytes(u, sizeof(u))) < 0)
		return rc;
	uuid_v4_bits(u);
	format_uuid(u, out);
	return 0;
}
