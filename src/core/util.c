/*
 * util.c - small helpers shared by the core: clocks, thread ids, errno names.
 */
#include "core/internal.h"
#include "runtime/checks.h"

#include <errno.h>
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

const char *crac__errno_name(int code)
{
	if (code < 0)
		code = -code;
	switch (code) {
#define E(x) case x: return #x
	E(EPERM); E(ENOENT); E(ESRCH); E(EINTR); E(EIO); E(ENXIO); E(E2BIG);
	E(ENOEXEC); E(EBADF); E(ECHILD); E(EAGAIN); E(ENOMEM); E(EACCES);
	E(EFAULT); E(EBUSY); E(EEXIST); E(EXDEV); E(ENODEV); E(ENOTDIR);
	E(EISDIR); E(EINVAL); E(ENFILE); E(EMFILE); E(ENOTTY); E(ETXTBSY);
	E(EFBIG); E(ENOSPC); E(ESPIPE); E(EROFS); E(EMLINK); E(EPIPE);
	E(ERANGE); E(EDEADLK); E(ENAMETOOLONG); E(ENOSYS); E(ENOTEMPTY);
	E(ELOOP); E(ENODATA); E(ETIME); E(EPROTO); E(EBADMSG); E(EOVERFLOW);
	E(EILSEQ); E(ENOTSOCK); E(EADDRINUSE); E(EADDRNOTAVAIL); E(ENETDOWN);
	E(ECONNABORTED); E(ECONNRESET); E(EISCONN); E(ENOTCONN); E(ETIMEDOUT);
	E(ECONNREFUSED); E(EALREADY); E(EINPROGRESS); E(ESTALE); E(ECANCELED);
	E(EOPNOTSUPP); E(EUCLEAN); E(EKEYREJECTED); E(ENOTRECOVERABLE);
#undef E
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

bool crac__is_internal_fd(int fd)
{
	bool found = false;

	pthread_mutex_lock(&internal_lock);
	for (size_t i = 0; i < n_internal && !found; i++)
		found = internal_fds[i] == fd;
	pthread_mutex_unlock(&internal_lock);
	return found;
}
