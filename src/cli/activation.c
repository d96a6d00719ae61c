/* SPDX-License-Identifier: MIT */
/*
 * activation.c - sockets of socket activation (systemd's LISTEN_FDS,
 * LISTEN_PID) across a checkpoint and a restore, for `crac run`,
 * `crac start` and `crac restore`.
 *
 * At the checkpoint, the supervisor (supervise.c, the parent of the
 * program, holding the sockets systemd passed at fds 3...) records which
 * of the program's descriptors are those sockets, by inode:
 * DIR/activation, one line "IDX FD" each (socket IDX of LISTEN_FDS, the
 * program's fd FD). At a restore with sockets passed again,
 * cli_activation_env() checks that record against the image and the
 * sockets passed now and builds CRAC_ACTIVATION_FDS=SRC:DST,... for the
 * loader (src/loader/loader.c activation_place), which puts each passed
 * socket at the program's number instead of binding the address again.
 */
#include "cli.h"
#include "image/check.h"
#include "image/dir.h"
#include "loader/activation.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SMALL (64 * 1024)

char *cli_read_small_msg(const char *dir, const char *name, int *err, char *msg, size_t msglen)
{
	char path[PATH_MAX + 32];
	struct stat st;
	char *buf = calloc(1, MAX_SMALL + 1);
	long n;

	if (!buf) {
		*err = -ENOMEM;
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	/* open, fstat and read by a helper bounded by crac start's --timeout
	 * (image/dir.c) */
	n = crac_img_read_msg(path, buf, MAX_SMALL, &st, msg, msglen);
	if (n >= 0 && ((st.st_uid != geteuid() && st.st_uid != 0) || (st.st_mode & 022)))
		n = -EPERM;
	else if (n >= 0 && n != st.st_size)
		n = -EIO;
	if (n < 0) {
		/* A read given up on may still fill buf when the file system
		 * answers again: it is left allocated then (64 KiB, once). */
		if (n != -ETIMEDOUT)
			free(buf);
		*err = (int)n;
		return NULL;
	}
	*err = 0;
	return buf;
}

char *cli_read_small(const char *dir, const char *name, int *err)
{
	char msg[PATH_MAX + 300];

	return cli_read_small_msg(dir, name, err, msg, sizeof(msg));
}

int cli_listen_fds(void)
{
	const char *lf = getenv("LISTEN_FDS"), *lp = getenv("LISTEN_PID");
	char *end;
	long n, pid;

	if (!lf || !lp)
		return -1;
	errno = 0;
	pid = strtol(lp, &end, 10);
	if (*end || end == lp || errno || pid != (long)getpid())
		return -1;   /* systemd's sockets for another process */
	/* ours: a count or nothing usable (as sd_listen_fds(3) says -EINVAL) */
	errno = 0;
	n = strtol(lf, &end, 10);
	return *end || end == lf || errno || lf[0] < '0' || lf[0] > '9' || n > CRAC_ACTIVATION_MAX ? -2 : (int)n;
}

/* One socket descriptor of the program: its number and inode. */
struct prog_sock {
	int fd;
	unsigned long ino;
};

/* The socket descriptors of process pid, every number (no bound: an
 * activated program may hold thousands), from /proc/PID/fd; malloc'd, *n
 * of them (NULL and 0 when none or unreadable). */
static struct prog_sock *prog_sockets(int pid, size_t *n)
{
	char path[64], link[64];
	struct prog_sock *v = NULL;
	size_t cap = 0;
	struct dirent *e;
	DIR *d;

	*n = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if (!(d = opendir(path)))
		return NULL;
	while ((e = readdir(d))) {
		unsigned long ino;
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end || end == e->d_name || fd < 3 || fd > INT_MAX)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%ld", pid, fd);
		ssize_t l = readlink(path, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
		link[l] = 0;
		if (sscanf(link, "socket:[%lu]", &ino) != 1)
			continue;
		if (*n == cap) {
			struct prog_sock *w = realloc(v, (cap = cap ? 2 * cap : 64) * sizeof(*v));
			if (!w)
				break;
			v = w;
		}
		v[(*n)++] = (struct prog_sock){ .fd = (int)fd, .ino = ino };
	}
	closedir(d);
	return v;
}

char *cli_activation_record(int pid, int n)
{
	char *text = NULL;
	size_t len = 0, nsock;
	FILE *f = open_memstream(&text, &len);
	struct prog_sock *socks = prog_sockets(pid, &nsock);

	if (!f) {
		free(socks);
		return NULL;
	}
	for (int idx = 0; idx < n; idx++) {
		struct stat st;
		if (fstat(3 + idx, &st) < 0 || !S_ISSOCK(st.st_mode))
			continue;
		/* lowest number first (readdir's order is the kernel's) */
		int last = 2;
		for (;;) {
			int next = -1;
			for (size_t k = 0; k < nsock; k++)
				if (socks[k].ino == (unsigned long)st.st_ino && socks[k].fd > last &&
				    (next < 0 || socks[k].fd < next))
					next = socks[k].fd;
			if (next < 0)
				break;
			fprintf(f, "%d %d\n", idx, next);
			last = next;
		}
	}
	free(socks);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/*
 * One line of DIR/activation, "IDX FD" and nothing else: IDX a socket of
 * LISTEN_FDS (0...CRAC_ACTIVATION_MAX-1), FD the program's descriptor (3 and up). 0 and
 * *next past its newline, or -1.
 */
static int record_line(const char *line, int *idx, int *fd, const char **next)
{
	const char *p = line;
	long v[2];

	for (int k = 0; k < 2; k++) {
		long n = 0;
		if (k && *p++ != ' ')
			return -1;
		if (*p < '0' || *p > '9')
			return -1;
		/* digits only, no sign, no blank: at most 10 of them */
		for (int d = 0; *p >= '0' && *p <= '9'; d++, p++) {
			if (d == 10)
				return -1;
			n = n * 10 + (*p - '0');
		}
		v[k] = n;
	}
	if (*p && *p != '\n')
		return -1;
	if (v[0] >= CRAC_ACTIVATION_MAX || v[1] < 3 || v[1] > INT_MAX)
		return -1;
	*idx = (int)v[0];
	*fd = (int)v[1];
	*next = *p ? p + 1 : p;
	return 0;
}

int cli_activation_env(const char *dir, const struct crac_img_view *v, int listen_fds, char *act,
		       size_t actlen, char *why, size_t len)
{
	int err = 0, recorded = 0, fds[CRAC_ACTIVATION_MAX];
	char msg[PATH_MAX + 300];
	/* bounded (crac start's --timeout): given up, said naming the file */
	char *rec = cli_read_small_msg(dir, CLI_ACTIVATION_FILE, &err, msg, sizeof(msg));
	size_t at;

	act[0] = 0;
	if (!rec && err == -ETIMEDOUT) {
		snprintf(why, len, "%s", msg);
		return -ETIMEDOUT;
	}
	if (!rec && err != -ENOENT) {
		snprintf(why, len, "%s/%s: %s", dir, CLI_ACTIVATION_FILE,
			 err == -EPERM ? "not a regular file of ours that only we may write" :
			 err == -EFBIG ? "larger than 64 KiB" : strerror(-err));
		return -1;
	}
	at = (size_t)snprintf(act, actlen, "CRAC_ACTIVATION_FDS=");
	const char *next;
	for (const char *line = rec; line && *line; line = next) {
		int idx, fd;
		if (record_line(line, &idx, &fd, &next) < 0) {
			snprintf(why, len, "%s/%s is damaged", dir, CLI_ACTIVATION_FILE);
			goto bad;
		}
		/* one socket at one number: a number twice is no record crac
		 * wrote (and the loader would take neither as meant) */
		for (int k = 0; k < recorded; k++)
			if (fds[k] == fd) {
				snprintf(why, len, "%s/%s is damaged: fd %d named twice", dir,
					 CLI_ACTIVATION_FILE, fd);
				goto bad;
			}
		if (recorded == CRAC_ACTIVATION_MAX) {
			snprintf(why, len, "%s/%s: more than %d activation sockets", dir, CLI_ACTIVATION_FILE,
				 CRAC_ACTIVATION_MAX);
			goto bad;
		}
		if (idx >= listen_fds) {
			snprintf(why, len, "the program of %s got socket %d of socket activation (LISTEN_FDS) at fd %d; "
				 "LISTEN_FDS passes %d socket%s now", dir, idx + 1, fd, listen_fds,
				 listen_fds == 1 ? "" : "s");
			goto bad;
		}
		uint32_t i = 0;
		while (i < v->h->n_fds && v->fds[i].fd != fd)
			i++;
		if (i == v->h->n_fds) {
			snprintf(why, len, "%s/%s names fd %d, which the image does not hold", dir,
				 CLI_ACTIVATION_FILE, fd);
			goto bad;
		}
		at += (size_t)snprintf(act + at, at < actlen ? actlen - at : 0, "%s%d:%d", recorded ? "," : "",
				       3 + idx, fd);
		fds[recorded++] = fd;
	}
	free(rec);
	/* whole or not at all: a value cut short would hand the loader other
	 * sockets than recorded (CRAC_ACTIVATION_ENV_MAX holds every record
	 * this takes; a caller's smaller buffer is said) */
	if (at >= actlen) {
		snprintf(why, len, "%s/%s: %d activation sockets: CRAC_ACTIVATION_FDS would take %zu bytes, "
			 "more than the %zu this command has room for", dir, CLI_ACTIVATION_FILE, recorded,
			 at + 1, actlen);
		act[0] = 0;
		return -1;
	}
	if (!recorded)
		act[0] = 0;
	if (listen_fds > 0 && !recorded) {
		snprintf(why, len, "LISTEN_FDS passes %d socket%s, but the program of %s got none at its checkpoint "
			 "(it would bind its own address again)", listen_fds, listen_fds == 1 ? "" : "s", dir);
		return -1;
	}
	return 0;
bad:
	free(rec);
	act[0] = 0;
	return -1;
}

int cli_restore_activation(const char *dir)
{
	static char act[CRAC_ACTIVATION_ENV_MAX];
	char why[2048], msg[2048];
	struct crac_img_header_map h;
	int n = cli_listen_fds(), rc = -1;

	/* not activated, or `crac start` did it (CRAC_ACTIVATION_FDS set) */
	if (n == -1 || getenv("CRAC_ACTIVATION_FDS"))
		return 0;
	/* ours but no count: not taken as no activation (the record of the
	 * sockets the program got would be ignored, its address bound again) */
	if (n < 0) {
		cli_err("restore %s: LISTEN_FDS=\"%s\" (LISTEN_PID is this process) is no number of sockets "
			"(0 to " CRAC_ACTIVATION_MAX_TEXT ")", dir, getenv("LISTEN_FDS"));
		return -1;
	}
	/* the image's header as the loader reads it (its own checks come
	 * later), by a helper bounded by crac restore's limit (image/dir.c):
	 * a file system that does not answer is given up on, said */
	int hrc = crac_img_header_msg(dir, &h, msg, sizeof(msg));
	if (hrc == -ETIMEDOUT) {
		cli_err("restore %s: %s", dir, msg);
		return -1;
	}
	if (hrc < 0)
		return 0;   /* the loader says why, as without activation */
	if (cli_activation_env(dir, &h.v, n, act, sizeof(act), why, sizeof(why)) < 0) {
		cli_err("restore %s: %s", dir, why);
		goto out;
	}
	if (act[0])
		putenv(act);   /* the loader's activation_place() reads it */
	rc = 0;
out:
	crac_img_header_unmap(&h);
	return rc;
}
