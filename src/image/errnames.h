/* SPDX-License-Identifier: MIT */
/*
 * errnames.h - one table of the errno values crac names in its messages:
 * the symbol ("ENOENT", in reports) and the text ("No such file or
 * directory", in one-line refusals). An X-macro, so that libcrac
 * (core/util.c) and the static loader, which has no libc strerror
 * (image/check.c), print the same words:
 *
 *     #define X(name, text) case name: return text;
 *     CRAC_ERRNO_TABLE(X)
 *     #undef X
 *
 * Freestanding: needs only <errno.h>. ENOTSUP is EOPNOTSUPP on Linux, so it
 * is not listed twice.
 */
#ifndef CRAC_ERRNAMES_H
#define CRAC_ERRNAMES_H

#include <errno.h>

#define CRAC_ERRNO_TABLE(X) \
	X(EPERM, "Operation not permitted") \
	X(ENOENT, "No such file or directory") \
	X(ESRCH, "No such process") \
	X(EINTR, "Interrupted system call") \
	X(EIO, "Input/output error") \
	X(ENXIO, "No such device or address") \
	X(E2BIG, "Argument list too long") \
	X(ENOEXEC, "Exec format error") \
	X(EBADF, "Bad file descriptor") \
	X(ECHILD, "No child processes") \
	X(EAGAIN, "Resource temporarily unavailable") \
	X(ENOMEM, "Cannot allocate memory") \
	X(EACCES, "Permission denied") \
	X(EFAULT, "Bad address") \
	X(EBUSY, "Device or resource busy") \
	X(EEXIST, "File exists (address already in use)") \
	X(EXDEV, "Invalid cross-device link") \
	X(ENODEV, "No such device") \
	X(ENOTDIR, "Not a directory") \
	X(EISDIR, "Is a directory") \
	X(EINVAL, "Invalid argument") \
	X(ENFILE, "Too many open files in system") \
	X(EMFILE, "Too many open files") \
	X(ENOTTY, "Inappropriate ioctl for device") \
	X(ETXTBSY, "Text file busy") \
	X(EFBIG, "File too large") \
	X(ENOSPC, "No space left on device") \
	X(ESPIPE, "Illegal seek") \
	X(EROFS, "Read-only file system") \
	X(EMLINK, "Too many links") \
	X(EPIPE, "Broken pipe") \
	X(ERANGE, "Numerical result out of range") \
	X(EDEADLK, "Resource deadlock avoided") \
	X(ENAMETOOLONG, "File name too long") \
	X(ENOSYS, "Function not implemented") \
	X(ENOTEMPTY, "Directory not empty") \
	X(ELOOP, "Too many levels of symbolic links (a symbolic link where a file belongs)") \
	X(ENODATA, "No data available") \
	X(ETIME, "Timer expired") \
	X(EPROTO, "Protocol error") \
	X(EBADMSG, "Bad message (damaged data)") \
	X(EOVERFLOW, "Value too large for defined data type") \
	X(EILSEQ, "Invalid or incomplete multibyte or wide character") \
	X(ENOTSOCK, "Socket operation on non-socket") \
	X(EADDRINUSE, "Address already in use") \
	X(EADDRNOTAVAIL, "Cannot assign requested address") \
	X(ENETDOWN, "Network is down") \
	X(ECONNABORTED, "Software caused connection abort") \
	X(ECONNRESET, "Connection reset by peer") \
	X(EISCONN, "Transport endpoint is already connected") \
	X(ENOTCONN, "Transport endpoint is not connected") \
	X(ETIMEDOUT, "Connection timed out") \
	X(ECONNREFUSED, "Connection refused") \
	X(EALREADY, "Operation already in progress") \
	X(EINPROGRESS, "Operation now in progress") \
	X(ESTALE, "Stale file handle (changed since the checkpoint)") \
	X(ECANCELED, "Operation canceled") \
	X(EOPNOTSUPP, "Operation not supported") \
	X(EUCLEAN, "Structure needs cleaning") \
	X(EKEYREJECTED, "Key was rejected by service") \
	X(ENOTRECOVERABLE, "State not recoverable") \
	X(EMSGSIZE, "Message too long") \
	X(EAFNOSUPPORT, "Address family not supported by protocol")

#endif /* CRAC_ERRNAMES_H */
