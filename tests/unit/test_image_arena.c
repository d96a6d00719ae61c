/* SPDX-License-Identifier: MIT */
/*
 * test_image_arena.c - the image engine's arena made as new for the next
 * checkpoint of a process that keeps it (img_arena_reset, engines/image.c):
 * every byte it handed out before reads zero again, pages never touched stay
 * untouched (not resident), and what was handed out past the old high-water
 * mark is zero too.
 */
#include "harness.h"
#include "engines/image_engine.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096u

static bool resident(const struct img_arena *a, size_t page)
{
	unsigned char v = 0;

	return mincore(a->base + page * PG, PG, &v) == 0 && (v & 1);
}

static void test_reset_zeroes_what_was_used(void)
{
	struct img_arena a;

	REQUIRE(img_arena_init(&a, 64u << 20) == 0);
	/* a first checkpoint: pages 0-2 written, a reservation (3-99) left
	 * untouched but for page 50, then page 100 */
	char *p = img_arena_alloc(&a, 3 * PG);
	char *r = img_arena_alloc(&a, 97 * PG);
	char *q = img_arena_alloc(&a, PG);
	REQUIRE(p && r && q);
	memset(p, 0xa5, 3 * PG);
	r[47 * PG + 17] = 1;
	q[PG - 1] = 2;
	CHECK(resident(&a, 50));
	CHECK(!resident(&a, 60));
	uint64_t high = a.used;

	img_arena_reset(&a, high);
	CHECK_EQ(a.used, 0);
	/* everything zero, read without touching what was never touched */
	CHECK(!resident(&a, 60));
	for (size_t i = 0; i < 101; i++) {
		if (!resident(&a, i))
			continue;
		const unsigned char *b = (const unsigned char *)a.base + i * PG;
		for (size_t k = 0; k < PG; k++)
			if (b[k]) {
				CHECKF(0, "byte %zu of page %zu is %u after the reset", k, i, b[k]);
				break;
			}
	}
	/* the next checkpoint's allocations are zeroed, as fresh ones */
	char *n = img_arena_alloc(&a, 101 * PG);
	REQUIRE(n == a.base);
	size_t nonzero = 0;
	for (size_t k = 0; k < 101 * PG; k++)
		nonzero += n[k] != 0;
	CHECK_EQ(nonzero, 0);
	img_arena_free(&a);
}

static void test_reset_of_nothing(void)
{
	struct img_arena a;

	REQUIRE(img_arena_init(&a, 1u << 20) == 0);
	img_arena_reset(&a, 0);
	CHECK_EQ(a.used, 0);
	/* a high-water mark past the end is clamped */
	char *p = img_arena_alloc(&a, 1u << 20);
	REQUIRE(p);
	memset(p, 7, 1u << 20);
	img_arena_reset(&a, 2u << 20);
	CHECK_EQ(((char *)img_arena_alloc(&a, 1u << 20))[12345], 0);
	img_arena_free(&a);
}

int main(void)
{
	RUN(test_reset_zeroes_what_was_used);
	RUN(test_reset_of_nothing);
	return t_done();
}
