/*
 * socket.c - sockets (see objects.h).
 */
#include "objects/objects.h"

#include <errno.h>

static int socket_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			   struct crac_img_fd *e, struct crac_img_buf *why)
{
	(void)c, (void)d, (void)i, (void)e;
	crac_img_puts(why, "socket descriptors are not carried across a restore yet");
	return -ENOTSUP;
}

static long socket_restore(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	(void)r, (void)i;
	crac_img_puts(why, "socket descriptors are not carried across a restore yet");
	return -ENOTSUP;
}

const struct crac_obj_ops crac_obj_socket_ops = {
	.name = "socket",
	.capture = socket_capture,
	.restore = socket_restore,
};

static int closed_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			   struct crac_img_fd *e, struct crac_img_buf *why)
{
	(void)c, (void)d, (void)i, (void)e;
	crac_img_puts(why, "closed descriptors are not carried across a restore yet");
	return -ENOTSUP;
}

static long closed_restore(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	(void)r, (void)i;
	crac_img_puts(why, "closed descriptors are not carried across a restore yet");
	return -ENOTSUP;
}

const struct crac_obj_ops crac_obj_closed_ops = {
	.name = "closed",
	.capture = closed_capture,
	.restore = closed_restore,
};


