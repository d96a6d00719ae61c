/* SPDX-License-Identifier: MIT */
/*
 * page_pattern.h - the page patterns of the test programs that check, page
 * by page, what a restore brought back of mappings they moved around
 * (incr_remap, probe_incr_mem).
 *
 * Pattern N (1-255) in page p of a mapping: word i of the page is
 * N << 56 ^ p << 20 ^ i * 0x9e3779b97f4a7c15, so no two pages of a
 * mapping, nor two patterns of a page, hold the same bytes, and a page
 * restored from the wrong place or the wrong image is told apart. Pattern
 * 0 is a page of zeros: never written, or dropped.
 *
 * Pages are 4 KiB (PATTERN_PG); a mapping is addressed by its base.
 */
#ifndef CRAC_TEST_PAGE_PATTERN_H
#define CRAC_TEST_PAGE_PATTERN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#define PATTERN_PG 4096ul

/* Word i of page p in pattern pat (0 for pattern 0). */
static inline uint64_t pattern_word(int pat, size_t p, size_t i)
{
	return pat ? ((uint64_t)pat << 56) ^ ((uint64_t)p << 20) ^ (i * 0x9e3779b97f4a7c15ull) : 0;
}

/* Writes pattern pat into page p of the mapping at base. */
static inline void pattern_fill(unsigned char *base, size_t p, int pat)
{
	uint64_t *w = (uint64_t *)(base + p * PATTERN_PG);
	for (size_t i = 0; i < PATTERN_PG / 8; i++)
		w[i] = pattern_word(pat, p, i);
}

/*
 * 0 when page p of the mapping at base holds pattern pat; else 1, after
 * printing "FAIL: NAME page P word I: GOT, want WANT (pattern PAT)" on
 * stdout of the first word that differs, unless name is NULL (a probe).
 */
static inline int pattern_check(const char *name, const unsigned char *base, size_t p, int pat)
{
	const uint64_t *w = (const uint64_t *)(base + p * PATTERN_PG);
	for (size_t i = 0; i < PATTERN_PG / 8; i++) {
		uint64_t want = pattern_word(pat, p, i);
		if (w[i] != want) {
			if (name)
				printf("FAIL: %s page %zu word %zu: %#llx, want %#llx (pattern %d)\n", name, p, i,
				       (unsigned long long)w[i], (unsigned long long)want, pat);
			return 1;
		}
	}
	return 0;
}

/* A private anonymous read-write mapping of len bytes (whole pages), every
 * page in pattern pat; exits 1, saying why on stderr, when mmap fails. */
static inline unsigned char *pattern_map(size_t len, int pat)
{
	unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	for (size_t p = 0; p < len / PATTERN_PG; p++)
		pattern_fill(m, p, pat);
	return m;
}

#endif
