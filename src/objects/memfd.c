/*
 * memfd.c - memfd (see objects.h).
 */
#include "objects/objects.h"

#include <errno.h>

static int memfd_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			   struct crac_img_fd *e, struct crac_img_buf *why)
{
	(void)c, (void)d, (void)i, (void)e;
	crac_img_puts(why, "memfd descriptors are not carried across a restore yet");
	return -ENOTSUP;
}

static long memfd_restore(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	(void)r, (void)i;
	crac_img_puts(why, "memfd descriptors are not carried across a restore yet");
	return -ENOTSUP;
}

const struct crac_obj_ops crac_obj_memfd_ops = {
	.name = "memfd",
	.capture = memfd_capture,
	.restore = memfd_restore,
};


