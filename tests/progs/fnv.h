/* SPDX-License-Identifier: MIT */
/*
 * fnv.h - FNV-1a, the checksum the image test programs compare before the
 * checkpoint and after each restore.
 */
#ifndef CRAC_TESTS_FNV_H
#define CRAC_TESTS_FNV_H

#include <stddef.h>
#include <stdint.h>

#define FNV_START 1469598103934665603ull

static inline uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

#endif
