/* SPDX-License-Identifier: MIT */
#include "harness.h"

#include <stdarg.h>

int t_failures;
const char *t_current = "?";

void t_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
	t_failures++;
	fprintf(stderr, "FAIL %s (%s:%d): %s", t_current, file, line, expr);
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		fputs(": ", stderr);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	fputc('\n', stderr);
}

int t_done(void)
{
	printf("%s: %d failure(s)\n", t_failures ? "FAILED" : "PASSED", t_failures);
	return t_failures ? 1 : 0;
}

void t_skip_all(const char *reason)
{
	printf("SKIP: %s\n", reason);
	exit(77);
}

int t_mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	int n = 0;

	for (int c; f && (c = fgetc(f)) != EOF;)
		n += c == '\n';
	if (f)
		fclose(f);
	return n;
}
