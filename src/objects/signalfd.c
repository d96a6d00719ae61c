/* SPDX-License-Identifier: MIT */
/*
 * signalfd.c - signalfd(2): the signal mask.
 *
 * Capture: fdinfo "sigmask:" (hex, one bit per signal, bit 0 = signal 1).
 * A signalfd holds nothing else: the signals it reads are the pending
 * signals of the thread and the process, which the image engine carries
 * (or not) with the threads, not the descriptor. SFD_NONBLOCK and
 * SFD_CLOEXEC are the descriptor's flags (crac_obj_place).
 *
 * Restore: signalfd4(-1, mask, 8, flags).
 *
 * Kind-specific words of struct crac_img_fd:
 *   u[0] signal mask
 */
#include "objects/objects.h"

#include <errno.h>
#include <fcntl.h>

#define sys_signalfd4(fd, mask, size, fl) SYS(SYS_signalfd4, fd, mask, size, fl, 0, 0)

static int signalfd_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			    struct crac_img_fd *e, struct crac_img_buf *why)
{
	int found = 0;

	(void)c, (void)i;
	e->u[0] = crac_obj_info_num(d->info, "sigmask", 16, &found);
	if (!found) {
		crac_img_puts(why, "its signal mask cannot be read (no sigmask in /proc/self/fdinfo)");
		return -ENOTSUP;
	}
	return 0;
}

static long signalfd_restore(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	const struct crac_img_fd *e = &r->v->fds[i];
	uint64_t mask = e->u[0];
	long fd = sys_signalfd4(-1, &mask, sizeof(mask), O_CLOEXEC | O_NONBLOCK), rc;

	if (fd < 0) {
		crac_img_puts(why, "cannot create a signalfd");
		return fd;
	}
	if ((rc = crac_obj_place(r, i, fd)) < 0)
		crac_img_puts(why, "cannot put it at its number");
	return rc;
}

const struct crac_obj_ops crac_obj_signalfd_ops = {
	.name = "signalfd",
	.capture = signalfd_capture,
	.restore = signalfd_restore,
};
