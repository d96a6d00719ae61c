/* SPDX-License-Identifier: MIT */
/*
 * eventfd.c - eventfd(2): the counter and the semaphore mode.
 *
 * Capture: fdinfo "eventfd-count:" (hex) and, on kernels that show it
 * (6.6 and later), "eventfd-semaphore:". An older kernel does not tell
 * whether an eventfd is a semaphore (EFD_SEMAPHORE): it is then restored
 * as a plain counter. EFD_NONBLOCK and EFD_CLOEXEC are the descriptor's
 * flags (crac_obj_place). Nothing is read from the eventfd (a read would
 * take the counter).
 *
 * Restore: eventfd2(0, flags), then the counter is written (an 8-byte
 * write adds it; the initial value of eventfd2 is only 32 bits wide).
 *
 * Kind-specific words of struct crac_img_fd:
 *   u[0] counter   u[1] EFD_SEMAPHORE (1) or 0   u[2] 1 if the kernel said
 *   whether it is a semaphore
 */
#include "objects/objects.h"

#include <errno.h>
#include <fcntl.h>

#define EFD_SEMAPHORE_ 1
#define EFD_CLOEXEC_ O_CLOEXEC
#define EFD_NONBLOCK_ O_NONBLOCK
#define sys_eventfd2(v, fl) SYS(SYS_eventfd2, v, fl, 0, 0, 0, 0)

static int eventfd_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			   struct crac_img_fd *e, struct crac_img_buf *why)
{
	int found = 0, sem_known = 0;

	(void)c, (void)i;
	e->u[0] = crac_obj_info_num(d->info, "eventfd-count", 16, &found);
	if (!found) {
		crac_img_puts(why, "its counter cannot be read (no eventfd-count in /proc/self/fdinfo)");
		return -ENOTSUP;
	}
	e->u[1] = crac_obj_info_num(d->info, "eventfd-semaphore", 10, &sem_known) ? EFD_SEMAPHORE_ : 0;
	e->u[2] = (uint64_t)sem_known;
	return 0;
}

static long eventfd_restore(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	const struct crac_img_fd *e = &r->v->fds[i];
	long fd = sys_eventfd2(0, EFD_CLOEXEC_ | EFD_NONBLOCK_ | (e->u[1] & EFD_SEMAPHORE_));
	long rc;

	if (fd < 0) {
		crac_img_puts(why, "cannot create an eventfd");
		return fd;
	}
	if (e->u[0]) {
		uint64_t v = e->u[0];
		do
			rc = sys_write(fd, &v, sizeof(v));
		while (rc == -EINTR);
		if (rc != sizeof(v)) {
			sys_close(fd);
			crac_img_puts(why, "cannot set its counter again");
			return rc < 0 ? rc : -EIO;
		}
	}
	if ((rc = crac_obj_place(r, i, fd)) < 0)
		crac_img_puts(why, "cannot put it at its number");
	return rc;
}

const struct crac_obj_ops crac_obj_eventfd_ops = {
	.name = "eventfd",
	.capture = eventfd_capture,
	.restore = eventfd_restore,
};
