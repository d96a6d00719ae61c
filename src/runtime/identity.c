/*
 * identity.c - who this instance is: the instance id and generation kept by
 * the core (core/checkpoint.c: a fresh random version-4 UUID and generation
 * + 1 on every restore, made by crac__new_identity before any after_restore
 * callback), and fresh UUIDs on demand.
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int crac_instance_id(uint8_t id[16], uint64_t *generation)
{
	crac__identity(id, generation);
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
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);   /* RFC 9562 version 4 */
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);   /* variant 10 */
	format_uuid(u, out);
	return 0;
}
