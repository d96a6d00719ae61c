/*
 * pipe.c - pipes and FIFOs (see objects.h).
 */
#include "objects/objects.h"

#include <errno.h>

static int pipe_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			   struct crac_img_fd *e, struct crac_img_buf *why)
{
	(void)c, (void)d, (void)i, (void)e;
	crac_img_puts(why, "pipe descriptors are not carried across a restore yet");
	return -ENOTSUP;
}

static long pipe_restore(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	(void)r, (void)i;
	crac_img_puts(why, "pipe descriptors are not carried across a restore yet");
	return -ENOTSUP;
}

const struct crac_obj_ops crac_obj_pipe_ops = {
	.name = "pipe",
	.capture = pipe_capture,
	.restore = pipe_restore,
};

static int fifo_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			   struct crac_img_fd *e, struct crac_img_buf *why)
{
	(void)c, (void)d, (void)i, (void)e;
	crac_img_puts(why, "fifo descriptors are not carried across a restore yet");
	return -ENOTSUP;
}

static long fifo_restore(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	(void)r, (void)i;
	crac_img_puts(why, "fifo descriptors are not carried across a restore yet");
	return -ENOTSUP;
}

const struct crac_obj_ops crac_obj_fifo_ops = {
	.name = "fifo",
	.capture = fifo_capture,
	.restore = fifo_restore,
};


