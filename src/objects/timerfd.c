/* SPDX-License-Identifier: MIT */
/*
 * timerfd.c - timerfd_create(2): clock, interval, remaining time, pending
 * expirations.
 *
 * Capture: timerfd_gettime(2) gives the remaining time and the interval
 * (for a periodic timer that expired and was not read, the kernel first
 * counts the missed periods into its pending expirations: nothing the
 * program can see changes); fdinfo gives the clock ("clockid:"), the
 * flags of the last timerfd_settime ("settime flags:": TFD_TIMER_ABSTIME,
 * TFD_TIMER_CANCEL_ON_SET) and the expirations not read yet ("ticks:"),
 * read again until they do not change under our feet. The timer's clock
 * and CLOCK_REALTIME are read at the same moment, and the boot id
 * (/proc/sys/kernel/random/boot_id).
 *
 * Restore, re-armed with the same interval:
 *   - a relative timer: the remaining time counts from the restore (a
 *     timer due in 3 s at the checkpoint is due 3 s after the restore);
 *   - an absolute CLOCK_REALTIME (or _ALARM) timer keeps its absolute
 *     time (TFD_TIMER_CANCEL_ON_SET kept): a time already past fires at
 *     once, with the periods missed meanwhile as expirations;
 *   - an absolute CLOCK_MONOTONIC / CLOCK_BOOTTIME timer follows the
 *     clock rule of DESIGN §6: on the same boot (same boot id) it keeps
 *     its absolute time, which is the same instant (a time namespace
 *     restore, `crac restore --timens`, sees the same clock values); on
 *     another boot the monotonic clock is shifted: the time left is
 *     reduced by the wall-clock time between checkpoint and restore (never
 *     increased), and counts from the restore;
 *   - a disarmed timer stays disarmed.
 * The pending expirations are given back with the TFD_IOC_SET_TICKS ioctl
 * (kernels with CONFIG_CHECKPOINT_RESTORE, which every common distribution
 * kernel has); without it, a disarmed timer with pending expirations is
 * armed to expire at once (the program reads 1, not the count), and the
 * pending expirations of a still armed timer are lost. A timer canceled by
 * a clock change (TFD_TIMER_CANCEL_ON_SET, read fails with ECANCELED) is
 * restored armed, not canceled.
 *
 * Kind-specific words of struct crac_img_fd:
 *   u[0] clock id   u[1] settime flags   u[2] remaining ns (0: disarmed)
 *   u[3] interval ns   u[4] pending expirations   u[5] the timer's clock at
 *   capture (ns)   u[7] CLOCK_REALTIME at capture (ns)
 *   blob: the boot id at capture (36 characters)
 */
#include "objects/objects.h"

#include <errno.h>
#include <fcntl.h>
#include <time.h>

#define TFD_TIMER_ABSTIME_ 1
#define TFD_TIMER_CANCEL_ON_SET_ 2
#define TFD_IOC_SET_TICKS_ 0x40085400ul   /* _IOW('T', 0, u64) */
#define BOOT_ID_LEN 36

#define sys_timerfd_create(clk, fl) SYS(SYS_timerfd_create, clk, fl, 0, 0, 0, 0)
#define sys_timerfd_settime(fd, fl, nw, old) SYS(SYS_timerfd_settime, fd, fl, nw, old, 0, 0)
#define sys_timerfd_gettime(fd, cur) SYS(SYS_timerfd_gettime, fd, cur, 0, 0, 0, 0)

struct its {
	struct timespec interval, value;
};

static int64_t ns_of(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static struct timespec ts_of(int64_t ns)
{
	struct timespec t = { (time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL) };
	return t;
}

static int64_t now(int clk)
{
	struct timespec t = { 0, 0 };
	sys_clock_gettime(clk, &t);
	return ns_of(&t);
}

static int absolute_realtime(uint64_t clk)
{
	return clk == CLOCK_REALTIME || clk == 8 /* CLOCK_REALTIME_ALARM */;
}

/* The boot id into id[BOOT_ID_LEN]; 0, or -1 if unreadable. */
static int boot_id(char id[BOOT_ID_LEN])
{
	long fd = sys_openat(AT_FDCWD, "/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC), n;

	if (fd < 0)
		return -1;
	n = sys_read(fd, id, BOOT_ID_LEN);
	sys_close(fd);
	return n == BOOT_ID_LEN ? 0 : -1;
}

static int timerfd_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			   struct crac_img_fd *e, struct crac_img_buf *why)
{
	static struct crac_obj_fd again;
	int found = 0;
	uint64_t clk = crac_obj_info_num(d->info, "clockid", 10, &found);
	char id[BOOT_ID_LEN];
	struct its cur;
	long rc;

	(void)i;
	if (!found) {
		crac_img_puts(why, "its clock cannot be read (no clockid in /proc/self/fdinfo)");
		return -ENOTSUP;
	}
	e->u[0] = clk;
	if (c->pages_fd < 0)
		return 0;   /* probe: what the timer holds is read at the checkpoint */
	/* the time left and the ticks, until the ticks stay the same */
	uint64_t ticks = crac_obj_info_num(d->info, "ticks", 10, 0);
	for (int tries = 0;; tries++) {
		if ((rc = sys_timerfd_gettime(d->fd, &cur)) < 0) {
			crac_img_puts(why, "cannot read its time (timerfd_gettime)");
			return (int)rc;
		}
		e->u[5] = (uint64_t)now((int)clk);
		e->u[7] = (uint64_t)now(CLOCK_REALTIME);
		if ((rc = crac_obj_read_fd(d->fd, &again)) < 0) {
			crac_img_puts(why, "cannot read its /proc/self/fdinfo");
			return (int)rc;
		}
		uint64_t t = crac_obj_info_num(again.info, "ticks", 10, 0);
		if (t == ticks || tries == 8) {
			ticks = t;
			break;
		}
		ticks = t;
	}
	e->u[1] = crac_obj_info_num(again.info, "settime flags", 8, 0);
	e->u[2] = (uint64_t)ns_of(&cur.value);
	e->u[3] = (uint64_t)ns_of(&cur.interval);
	e->u[4] = ticks;
	if (boot_id(id) == 0 && (rc = crac_obj_put_blob(c, e, id, BOOT_ID_LEN)) < 0) {
		crac_img_puts(why, "no room for the boot id");
		return (int)rc;
	}
	return 0;
}

/* Same boot as at the checkpoint? 1 yes, 0 no, -1 unknown. */
static int same_boot(const struct crac_obj_restore *r, const struct crac_img_fd *e)
{
	char id[BOOT_ID_LEN];

	if (e->blob_len != BOOT_ID_LEN || boot_id(id) < 0)
		return -1;
	return !memcmp(id, r->v->blobs + e->blob_off, BOOT_ID_LEN);
}

int crac_obj_timerfd_check(const struct crac_img_fd *e, struct crac_img_buf *why)
{
	long fd = e->u[0] > 0x7fffffff ? -EINVAL : sys_timerfd_create((int)e->u[0], O_CLOEXEC);

	if (fd >= 0) {
		sys_close(fd);
		return 0;
	}
	crac_img_puts(why, "a timer on its clock (");
	crac_img_putu(why, e->u[0]);
	crac_img_puts(why, fd == -EPERM ? ", an alarm clock: it needs CAP_WAKE_ALARM) cannot be made here"
				       : ") cannot be made here");
	crac_img_put_err(why, fd);
	return (int)fd;
}

static long timerfd_restore(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	const struct crac_img_fd *e = &r->v->fds[i];
	int clk = (int)e->u[0];
	long fd = sys_timerfd_create(clk, O_CLOEXEC | O_NONBLOCK), rc;
	struct its set = { ts_of((int64_t)e->u[3]), { 0, 0 } };
	int flags = 0;

	if (fd < 0) {
		crac_img_puts(why, "cannot create a timer on its clock");
		return fd;
	}
	int64_t left = (int64_t)e->u[2], ticks = (int64_t)e->u[4];
	if (left > 0 && (e->u[1] & TFD_TIMER_ABSTIME_)) {
		int64_t at = (int64_t)e->u[5] + left;   /* the absolute time it was set to */
		int same = absolute_realtime(e->u[0]) ? 1 : same_boot(r, e);
		if (same < 0)
			same = now(clk) >= (int64_t)e->u[5];   /* unknown: a clock gone back is another boot */
		if (same) {
			flags = (int)(e->u[1] & (TFD_TIMER_ABSTIME_ | TFD_TIMER_CANCEL_ON_SET_));
			set.value = ts_of(at);
		} else {
			int64_t gap = now(CLOCK_REALTIME) - (int64_t)e->u[7];
			left -= gap > 0 ? gap : 0;
			set.value = ts_of(left > 0 ? left : 1);
		}
	} else if (left > 0) {
		set.value = ts_of(left);
	}
	if (set.value.tv_sec || set.value.tv_nsec) {
		if ((rc = sys_timerfd_settime(fd, flags, &set, 0)) < 0) {
			sys_close(fd);
			crac_img_puts(why, "cannot arm it again");
			return rc;
		}
	}
	if (ticks > 0) {
		uint64_t t = (uint64_t)ticks;
		rc = sys_ioctl(fd, TFD_IOC_SET_TICKS_, &t);
		if (rc < 0 && !set.value.tv_sec && !set.value.tv_nsec) {
			/* no ioctl: a disarmed timer expires at once, once */
			struct its once = { { 0, 0 }, { 0, 1 } };
			rc = sys_timerfd_settime(fd, 0, &once, 0);
		}
		if (rc < 0 && rc != -ENOTTY) {
			sys_close(fd);
			crac_img_puts(why, "cannot give back its pending expirations");
			return rc;
		}
	}
	if ((rc = crac_obj_place(r, i, fd)) < 0)
		crac_img_puts(why, "cannot put it at its number");
	return rc;
}

const struct crac_obj_ops crac_obj_timerfd_ops = {
	.name = "timerfd",
	.capture = timerfd_capture,
	.restore = timerfd_restore,
};
