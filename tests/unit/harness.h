/* SPDX-License-Identifier: MIT */
/*
 * harness.h - a tiny test harness: CHECK() records a failure and goes on,
 * REQUIRE() stops the test. A test file defines `static void test_x(void)`
 * functions and lists them in main() with RUN(test_x); main returns
 * t_done(). Exit 77 = skipped (reason printed), as CTest is told.
 */
#ifndef CRAC_TEST_HARNESS_H
#define CRAC_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>

extern int t_failures;
extern const char *t_current;

void t_fail(const char *file, int line, const char *expr, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int t_done(void);
/* Prints "SKIP: reason" and exits 77 (whole file skipped). */
void t_skip_all(const char *reason) __attribute__((noreturn));
/* How many mappings the process has (/proc/self/maps lines): a helper's
 * mapping left behind shows as one more. */
int t_mappings(void);

#define CHECK(expr) do { if (!(expr)) t_fail(__FILE__, __LINE__, #expr, NULL); } while (0)
#define CHECKF(expr, ...) do { if (!(expr)) t_fail(__FILE__, __LINE__, #expr, __VA_ARGS__); } while (0)
#define CHECK_EQ(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
	if (_a != _b) t_fail(__FILE__, __LINE__, #a " == " #b, "%lld != %lld", _a, _b); } while (0)
#define REQUIRE(expr) do { if (!(expr)) { t_fail(__FILE__, __LINE__, #expr, NULL); return; } } while (0)
#define RUN(fn) do { int _before = t_failures; t_current = #fn; fn(); \
	printf("%s %s\n", t_failures == _before ? "ok" : "not ok", #fn); fflush(stdout); } while (0)

#endif
