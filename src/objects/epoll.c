/* SPDX-License-Identifier: MIT */
/*
 * epoll.c - epoll instances: created again empty in the first pass of the
 * restore, their registrations added again in the second pass, once every
 * descriptor is at its number (EPOLL_CTL_ADD takes the target's number).
 *
 * Capture reads the registrations from fdinfo, one line each:
 *   "tfd:        5 events:       19 data:                7  pos:0 ino:4e0f sdev:9"
 * and checks each target: the descriptor number must still hold the file
 * that was registered (a number closed and reused since would re-register
 * the wrong file: refused; same inode and device, then kcmp(KCMP_EPOLL_TFD)
 * when the kernel has it), and it must be carried (not crac's own, not
 * left out by a policy). In probe mode (the safety checks) only the first
 * part can be known; the target's own probe says whether it is carried.
 * Targets 0, 1 and 2 are the restoring command's standard streams after a
 * restore: they are registered again as they are then.
 *
 * Events are kept as the kernel shows them (EPOLLERR and EPOLLHUP are
 * always part of them), EPOLLET, EPOLLONESHOT and EPOLLEXCLUSIVE included.
 * EPOLLWAKEUP needs CAP_BLOCK_SUSPEND: without it the kernel drops the bit
 * silently, at the checkpoint as at the restore. A one-shot registration
 * that fired and was not re-armed comes back armed for EPOLLERR and
 * EPOLLHUP only (EPOLL_CTL_ADD always adds them). Events pending at the
 * checkpoint are not kept as such: the restored registrations report what
 * is ready after the restore (level-triggered ones report the same).
 *
 * Kind-specific words of struct crac_img_fd:
 *   u[0] number of registrations
 * Blob: struct epoll_reg[u[0]] (target number, events, data).
 */
#include "objects/objects.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/sysmacros.h>

#ifndef KCMP_EPOLL_TFD
#define KCMP_EPOLL_TFD 7
#endif

struct epoll_reg {
	int32_t tfd;
	uint32_t events;
	uint64_t data;
};

/* the bits EPOLL_CTL_ADD takes; anything else the kernel may show is its own */
#define USER_EVENTS (EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDNORM | EPOLLRDBAND | \
		     EPOLLWRNORM | EPOLLWRBAND | EPOLLMSG | EPOLLRDHUP | EPOLLEXCLUSIVE | EPOLLWAKEUP | \
		     EPOLLONESHOT | EPOLLET)

static void put_tfd(struct crac_img_buf *why, int32_t tfd, const char *what)
{
	crac_img_puts(why, "watches fd ");
	crac_img_putu(why, (uint64_t)tfd);
	crac_img_puts(why, what);
}

/*
 * One registration: is its target still at its number, and carried?
 * toff: how many registrations of the same number came before (kcmp).
 */
static int check_target(struct crac_obj_capture *c, int epfd, int32_t tfd, uint32_t toff, uint64_t ino,
			uint64_t sdev, struct crac_img_buf *why)
{
	struct stat st;
	long rc = sys_fstat(tfd, &st);

	/* closed, maybe reused (by the program, or by whoever looks: the
	 * safety checks' own descriptors): the registration cannot be made again */
	if (rc < 0 || st.st_ino != ino || crac_obj_kdev(st.st_dev) != sdev) {
		put_tfd(why, tfd, ", which no longer holds the watched file (it was closed there, the file staying "
			"open elsewhere): the registration cannot be made again at that number");
		return -ENOTSUP;
	}
	struct kcmp_epoll_slot { uint32_t efd, tfd, toff; } slot = { (uint32_t)epfd, (uint32_t)tfd, toff };
	long pid = sys_getpid();
	rc = sys_kcmp(pid, pid, KCMP_EPOLL_TFD, tfd, &slot);
	if (rc == 1 || rc == 2) {
		put_tfd(why, tfd, ", which no longer holds the watched open file (it was closed there and the "
			"number reused for the same object): the registration cannot be made again at that number");
		return -ENOTSUP;
	}
	if (c->pages_fd < 0 || tfd < 3)
		return 0;   /* probe: the target's own probe says whether it is carried */
	for (int k = 0; k < c->n_skip; k++)
		if (c->skip[k] == tfd) {
			put_tfd(why, tfd, ", which is not carried (it is crac's own)");
			return -ENOTSUP;
		}
	if (c->decide) {
		static struct crac_obj_fd t;   /* full capture: only the checkpointing thread runs */
		if (crac_obj_read_fd(tfd, &t) == 0 && c->decide(c->decide_arg, &t) == CRAC_OBJ_OMIT) {
			put_tfd(why, tfd, ", which is not carried (a policy leaves it out): the epoll instance "
				"would lose the registration");
			return -ENOTSUP;
		}
	}
	return 0;
}

static int epoll_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			 struct crac_img_fd *e, struct crac_img_buf *why)
{
	char buf[4096], path[64];
	struct crac_img_buf pb = { path, 0, sizeof(path) };
	struct epoll_reg *regs = c->pages_fd >= 0 ? (struct epoll_reg *)(void *)c->scratch : 0;
	uint64_t cap = regs ? c->scratch_cap / sizeof(*regs) : ~0ull, n = 0, have = 0;
	long rc;

	(void)i;
	/* d->info may be cut short: read the whole text again, line by line */
	crac_img_puts(&pb, "/proc/self/fdinfo/");
	crac_img_putu(&pb, (uint64_t)d->fd);
	long fd = sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		crac_img_puts(why, "cannot read its registrations (fdinfo)");
		return (int)fd;
	}
	/* not on a number a registration names (a closed one would look reused) */
	long high = sys_fcntl(fd, F_DUPFD_CLOEXEC, 1000);
	if (high >= 0) {
		sys_close(fd);
		fd = high;
	}
	for (;;) {
		rc = sys_read(fd, buf + have, sizeof(buf) - 1 - have);
		if (rc == -EINTR)
			continue;
		if (rc < 0) {
			sys_close(fd);
			crac_img_puts(why, "cannot read its registrations (fdinfo)");
			return (int)rc;
		}
		have += (uint64_t)rc;
		/* every complete line (the last one too, at the end) */
		uint64_t start = 0;
		for (uint64_t k = 0; k < have; k++) {
			if (buf[k] != '\n' && !(rc == 0 && k == have - 1))
				continue;
			const char *s = buf + start, *end = buf + k + 1;
			int f_tfd, f_ev, f_data, f_ino, f_dev;
			start = k + 1;
			if (memcmp(s, "tfd:", 4))
				continue;
			int32_t tfd = (int32_t)crac_obj_line_num(s, end, "tfd:", 10, &f_tfd);
			uint32_t ev = (uint32_t)crac_obj_line_num(s, end, "events:", 16, &f_ev);
			uint64_t data = crac_obj_line_num(s, end, "data:", 16, &f_data);
			uint64_t ino = crac_obj_line_num(s, end, "ino:", 16, &f_ino);
			uint64_t sdev = crac_obj_line_num(s, end, "sdev:", 16, &f_dev);
			if (!f_tfd || !f_ev || !f_data || !f_ino || !f_dev) {
				sys_close(fd);
				crac_img_puts(why, "a registration in fdinfo that cannot be read");
				return -EPROTO;
			}
			/* earlier registrations of the same number (kcmp's toff) */
			uint32_t toff = 0;
			for (uint64_t k2 = 0; regs && k2 < n; k2++)
				toff += regs[k2].tfd == tfd;
			int crc = check_target(c, d->fd, tfd, toff, ino, sdev, why);
			if (crc < 0) {
				sys_close(fd);
				return crc;
			}
			if (n >= cap) {
				sys_close(fd);
				crac_img_puts(why, "more registrations than crac keeps");
				return -E2BIG;
			}
			if (regs)
				regs[n] = (struct epoll_reg){ tfd, ev & USER_EVENTS, data };
			n++;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
		if (rc == 0)
			break;
		if (have >= sizeof(buf) - 1) {
			sys_close(fd);
			crac_img_puts(why, "a line of fdinfo longer than expected");
			return -EPROTO;
		}
	}
	sys_close(fd);
	e->u[0] = n;
	if (n * sizeof(struct epoll_reg) > 0xffffffffull)
		return -E2BIG;
	if ((rc = crac_obj_put_blob(c, e, regs, (uint32_t)(n * sizeof(struct epoll_reg)))) < 0) {
		crac_img_puts(why, "no room for its registrations");
		return (int)rc;
	}
	return 0;
}

static long epoll_restore(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	long fd = SYS(SYS_epoll_create1, EPOLL_CLOEXEC, 0, 0, 0, 0, 0);

	if (fd < 0) {
		crac_img_puts(why, "cannot create the epoll instance");
		return fd;
	}
	return crac_obj_place(r, i, fd);
}

int crac_obj_epoll_check(const struct crac_img_view *v, const struct crac_img_fd *e, struct crac_img_buf *why)
{
	const unsigned char *b = v->blobs + e->blob_off;

	if (e->u[0] > e->blob_len / sizeof(struct epoll_reg) || e->blob_len != e->u[0] * sizeof(struct epoll_reg)) {
		crac_img_puts(why, "its registrations in the image do not add up");
		return -EBADMSG;
	}
	for (uint64_t k = 0; k < e->u[0]; k++) {
		struct epoll_reg g;
		memcpy(&g, b + k * sizeof(g), sizeof(g));
		uint32_t t = 0;
		/* entries are in number order: a binary search would do, the
		 * tables are small and this runs once */
		while (g.tfd > 2 && t < v->h->n_fds && v->fds[t].fd != g.tfd)
			t++;
		if (g.tfd < 0 || g.tfd == e->fd || (g.tfd > 2 && t == v->h->n_fds)) {
			if (g.tfd < 0)
				crac_img_puts(why, "watches a negative descriptor number (damaged image)");
			else
				put_tfd(why, g.tfd, g.tfd == e->fd ? ", itself (damaged image)"
							: ", which the image does not hold (damaged image)");
			return -EBADMSG;
		}
	}
	return 0;
}

static long epoll_finish(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	const struct crac_img_fd *e = &r->v->fds[i];
	const unsigned char *b = r->v->blobs + e->blob_off;
	long rc;

	/* checked before the point of no return (image/check.c); again, as
	 * a loop reads it */
	if ((rc = crac_obj_epoll_check(r->v, e, why)) < 0)
		return rc;
	for (uint64_t k = 0; k < e->u[0]; k++) {
		struct epoll_reg g;
		memcpy(&g, b + k * sizeof(g), sizeof(g));
		struct epoll_event ev = { .events = g.events, .data.u64 = g.data };
		rc = SYS(SYS_epoll_ctl, e->fd, EPOLL_CTL_ADD, g.tfd, &ev, 0, 0);
		if (rc >= 0)
			continue;
		crac_img_puts(why, "cannot watch fd ");
		crac_img_putu(why, (uint64_t)g.tfd);
		crac_img_puts(why, rc == -EBADF ? " again: it is not open" :
			      rc == -EPERM && g.tfd < 3 ? " again: the restoring command's standard stream there "
							  "is a file epoll cannot watch" :
			      " again");
		return rc;
	}
	return 0;
}

const struct crac_obj_ops crac_obj_epoll_ops = {
	.name = "epoll",
	.capture = epoll_capture,
	.restore = epoll_restore,
	.finish = epoll_finish,
};
