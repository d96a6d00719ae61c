/* SPDX-License-Identifier: MIT */
/*
 * show_proc - a program that says how it was started, before anything of
 * its own can change it (no shell in between: a shell blocks every signal
 * while it waits for a child, so a status read by a shell's child may show
 * the shell's wait, not the mask the program was started with).
 *
 *   show_proc DIR
 *       writes DIR/status (its /proc/self/status), DIR/pid and, last,
 *       DIR/environ (one variable per line), each whole (a rename), then
 *       sleeps 30 s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static int put(const char *dir, const char *name, const char *data, size_t len)
{
	char tmp[4096], path[4096];
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(tmp, "w");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0 || rename(tmp, path) != 0) {
		perror(tmp);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char buf[1 << 16];
	size_t n = 0;

	if (argc < 2)
		return 2;
	FILE *s = fopen("/proc/self/status", "r");
	if (!s)
		return 1;
	n = fread(buf, 1, sizeof(buf), s);
	fclose(s);
	if (put(argv[1], "status", buf, n) < 0)
		return 1;
	n = (size_t)snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (put(argv[1], "pid", buf, n) < 0)
		return 1;
	n = 0;
	for (char **e = environ; *e && n + strlen(*e) + 2 < sizeof(buf); e++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\n", *e);
	if (put(argv[1], "environ", buf, n) < 0)
		return 1;
	sleep(30);
	return 0;
}
