/* SPDX-License-Identifier: MIT */
/*
 * image_stdio.c - flushing the program's stdio output without ever waiting
 * for a lock the program holds.
 *
 * Output still in a FILE buffer at checkpoint would be in the image, and
 * written again by every restored process: it must reach its fd first.
 * fflush(NULL) cannot do that here: it takes every stream's lock, and a
 * thread blocked inside fgets/getline (Lua io.lines, sqlite3's shell)
 * holds its stream's lock for as long as no input comes, so the checkpoint
 * hung forever.
 *
 * So the flush runs while every other thread is stopped (image.c step 3b):
 * nothing can add output between the flush and the memory capture, and the
 * list of streams cannot change under us. For every stream:
 *   - no pending output (read streams, unbuffered ones, empty buffers):
 *     skipped without touching its lock;
 *   - no fd (open_memstream, fmemopen, fopencookie): skipped, its output
 *     goes to memory, which the image holds once (flushing them may call
 *     malloc or the program's own cookie functions);
 *   - otherwise ftrylockfile(), fflush_unlocked() (a write(2) of the
 *     existing buffer), funlockfile().
 * A stream with pending output whose lock is taken belongs to a stopped
 * thread in the middle of a stdio call on it: the caller lets the threads
 * go and stops them again, until the deadline. For stdin, stdout and
 * stderr (static objects of libc, never freed) it first takes the
 * stream's lock itself, with threads running, trying without waiting until
 * it gets it, and stops the threads while holding it: a thread that prints
 * without pause (or waits in write(2) on a full pipe, lock held) would
 * otherwise be caught inside printf at every attempt. A thread that then
 * wants the stream waits in the lock and is stopped there.
 *
 * The stream list is glibc's _IO_list_all (exported since GLIBC_2.2.5).
 * fopen/fclose change it with single stores that keep it a valid list at
 * every instant, so walking it while its lock holder is stopped is safe.
 */
#include "engines/image_engine.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#ifdef __GLIBC__
/* glibc: the head of the list of all streams (struct _IO_FILE_plus, whose
 * first member is the FILE), linked through FILE._chain. */
extern FILE *_IO_list_all;
#endif

#ifdef __GLIBC__
/* The first members of glibc's struct _IO_wide_data (libio.h; stable since
 * glibc 2.2): a wide stream's own buffer pointers. */
struct img_wide_head {
	wchar_t *read_ptr, *read_end, *read_base, *write_base, *write_ptr;
};
#endif

/* Does fp hold output that has not reached its fd? */
static bool pending(FILE *fp)
{
#ifdef __GLIBC__
	if (fp->_IO_write_ptr > fp->_IO_write_base)
		return true;
	if (fp->_mode > 0 && fp->_wide_data) {
		const struct img_wide_head *w = (const void *)fp->_wide_data;
		return w->write_ptr > w->write_base;
	}
	return false;
#else
	(void)fp;
	return true;
#endif
}

#ifdef __GLIBC__
/* The standard streams themselves (stdout the variable may be changed). */
extern FILE _IO_2_1_stdin_, _IO_2_1_stdout_, _IO_2_1_stderr_;
#endif

void *img_stdio_static(void *fp)
{
#ifdef __GLIBC__
	if (fp == &_IO_2_1_stdin_ || fp == &_IO_2_1_stdout_ || fp == &_IO_2_1_stderr_)
		return fp;
#endif
	return NULL;
}

int img_stdio_trylock(void *fp)
{
	return ftrylockfile(fp);
}

void img_stdio_unlock(void *fp)
{
	funlockfile(fp);
}

int img_stdio_flush(struct img_err *e, int *busy_fd, void **busy)
{
#ifdef __GLIBC__
	int n = 0;

	*busy_fd = -1;
	*busy = NULL;
	for (FILE *fp = _IO_list_all; fp; fp = fp->_chain) {
		if (++n > 1000000)
			break;          /* a damaged list: do not loop forever */
		if (fp->_fileno < 0 || !pending(fp))
			continue;
		if (ftrylockfile(fp) != 0) {
			/* A stopped thread is inside a stdio call on it. */
			*busy_fd = fp->_fileno;
			*busy = fp;
			return -EAGAIN;
		}
		if (pending(fp))
			fflush_unlocked(fp);   /* a write error is the program's business */
		funlockfile(fp);
	}
	return 0;
#else
	*busy_fd = -1;
	*busy = NULL;
	return img_fail(e, -ENOTSUP, "flushing stdio without locks needs glibc");
#endif
}

const char *img_stdio_fd_name(int fd)
{
	return fd == 0 ? " (stdin)" : fd == 1 ? " (stdout)" : fd == 2 ? " (stderr)" : "";
}
