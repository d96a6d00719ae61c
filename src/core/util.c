/* SPDX-License-Identifier: MIT */
/*
 * util.c - small helpers shared by the core: clocks, thread ids, errno names,
 * writing all of a buffer, printing text that came from elsewhere.
 */
#include "core/internal.h"
#include "runtime/checks.h"
#include "image/errnames.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int64_t crac__now_ns(int clockid)
{
	struct timespec ts;

	if (clock_gettime(clockid, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int crac__gettid(void)
{
	return (int)syscall(SYS_gettid);
}

void crac__strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

int crac__strv_copy(char *const *v, int n, char ***out)
{
	size_t len = 0;
	char **c;

	*out = NULL;
	while (v && (n >= 0 ? len < (size_t)n : v[len] != NULL))
		len++;
	if (!len)
		return 0;
	if (!(c = calloc(len + 1, sizeof(*c))))
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		if (!(c[i] = strdup(v[i] ? v[i] : ""))) {
			crac__strv_free(c);
			return -ENOMEM;
		}
	}
	*out = c;
	return 0;
}

int crac__write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

const char *crac__errno_name(int code)
{
	if (code < 0)
		code = -code;
	switch (code) {
#define X(name, text) case name: return #name;
	CRAC_ERRNO_TABLE(X)
#undef X
	default:
		return "E?";
	}
}

/*
 * crac's own descriptors (the control endpoint's socket and pipe, a
 * connection being served): the safety checks skip them.
 */
#define MAX_INTERNAL_FDS 64
static int internal_fds[MAX_INTERNAL_FDS];
static size_t n_internal;
static pthread_mutex_t internal_lock = PTHREAD_MUTEX_INITIALIZER;

void crac__internal_fd(int fd, bool add)
{
	pthread_mutex_lock(&internal_lock);
	if (add && n_internal < MAX_INTERNAL_FDS) {
		internal_fds[n_internal++] = fd;
	} else if (!add) {
		for (size_t i = 0; i < n_internal; i++) {
			if (internal_fds[i] == fd) {
				internal_fds[i] = internal_fds[--n_internal];
				break;
			}
		}
	}
	pthread_mutex_unlock(&internal_lock);
}

int crac__internal_fds_snapshot(int *out, int max)
{
	int n = 0;

	/* never waits: the caller may have stopped every other thread */
	if (pthread_mutex_trylock(&internal_lock) != 0)
		return -EBUSY;
	for (size_t i = 0; i < n_internal && n < max; i++)
		out[n++] = internal_fds[i];
	pthread_mutex_unlock(&internal_lock);
	return n;
}

bool crac__is_internal_fd(int fd)
{
	bool found = false;

	pthread_mutex_lock(&internal_lock);
	for (size_t i = 0; i < n_internal && !found; i++)
		found = internal_fds[i] == fd;
	pthread_mutex_unlock(&internal_lock);
	return found;
}

/*
 * Printing text that came from another process or a file (a control peer's
 * answer, an image): a terminal must not see its control characters.
 *
 * Returns the length (1 to 4) of the character at p if it may be printed as
 * is: printable ASCII (0x20-0x7e) or a well-formed UTF-8 sequence of a code
 * point >= U+00A0 (no overlong form, no surrogate, <= U+10FFFF). Returns 0
 * if the byte at p must be escaped: C0 controls, DEL, the C1 controls
 * U+0080-U+009F (0x9b is CSI to some terminals) and any byte that is not
 * part of valid UTF-8.
 */
static size_t printable_len(const unsigned char *p)
{
	uint32_t cp;
	size_t n;

	if (*p >= 0x20 && *p < 0x7f)
		return 1;
	if (*p >= 0xc2 && *p <= 0xdf) {
		n = 2;
		cp = *p & 0x1f;
	} else if (*p >= 0xe0 && *p <= 0xef) {
		n = 3;
		cp = *p & 0x0f;
	} else if (*p >= 0xf0 && *p <= 0xf4) {
		n = 4;
		cp = *p & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)   /* also stops at the NUL */
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < 0xa0 || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

void crac__put_escaped(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = printable_len(p);
		if (n) {
			fwrite(p, 1, n, f);
			p += n;
		} else {
			fprintf(f, "\\x%02x", *p++);
		}
	}
}

char *crac__escaped(const char *s, char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;

	if (!len)
		return buf;
	while (*p) {
		size_t n = printable_len(p);
		if (n ? o + n >= len : o + 4 >= len)
			break;   /* truncated at a character boundary */
		if (n) {
			memcpy(buf + o, p, n);
			o += n;
			p += n;
		} else {
			snprintf(buf + o, len - o, "\\x%02x", *p++);
			o += 4;
		}
	}
	buf[o] = 0;
	return buf;
}
