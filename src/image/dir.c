/*
 * dir.c - the image directory on disk (library side, uses libc).
 *
 * Writing: the engine writes into DIR.tmp-XXXXXX (0700, files 0600),
 * fsyncs every file and the directory, then crac_img_commit() puts it in
 * place with one atomic rename (RENAME_EXCHANGE when DIR already exists, so
 * that at every instant DIR is either the complete old image or the
 * complete new one), fsyncs the parent and removes the old image.
 *
 * Reading (`crac inspect`, tests): crac_img_load() reads and validates the
 * header and checks the pages file size.
 *
 * Functions used while other threads are stopped (everything but
 * crac_img_load/crac_img_unload) make system calls only: no malloc, no
 * stdio, because a stopped thread may hold their locks.
 */

#include "image/dir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* renameat2 flag (glibc 2.36 has the wrapper; keep the constant local). */
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

int crac_img_split_path(const char *dir, char *parent, size_t plen, const char **base)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;             /* "img/" -> "img" */
	if (n == 0 || n >= plen)
		return -ENAMETOOLONG;
	memcpy(parent, dir, n);
	parent[n] = 0;
	char *slash = strrchr(parent, '/');
	if (!slash) {
		*base = dir;
		strcpy(parent, ".");
		return 0;
	}
	*base = dir + (slash - parent) + 1;
	if (slash == parent)
		slash[1] = 0;    /* "/img": parent "/" */
	else
		*slash = 0;
	return 0;
}

int crac_img_fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

int crac_img_remove(const char *dir)
{
	static const char *const names[] = { CRAC_IMG_HEADER_FILE, CRAC_IMG_PAGES_FILE };
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (unlinkat(dfd, names[i], 0) < 0 && errno != ENOENT) {
			int e = -errno;
			close(dfd);
			return e;
		}
	close(dfd);
	/* Anything else in there is not ours: rmdir fails and we say so. */
	return rmdir(dir) < 0 ? -errno : 0;
}

int crac_img_commit(const char *tmp, const char *dir, char *msg, size_t msglen)
{
	char parent[PATH_MAX], old[PATH_MAX];
	const char *base;
	int rc;

	if ((rc = crac_img_split_path(dir, parent, sizeof(parent), &base)) < 0) {
		snprintf(msg, msglen, "image directory name %s is too long", dir);
		return rc;
	}
	if (syscall(SYS_renameat2, AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) == 0) {
		/* tmp now holds the previous image. */
		if ((rc = crac_img_fsync_path(parent)) < 0) {
			snprintf(msg, msglen, "fsync of %s: %s", parent, strerror(-rc));
			return rc;
		}
		if ((rc = crac_img_remove(tmp)) < 0) {
			snprintf(msg, msglen, "new image in place, but the previous one (now %s) could not be removed: %s",
				 tmp, strerror(-rc));
			return rc;
		}
		return 0;
	}
	if (errno == ENOENT) {
		/* No previous image (or tmp vanished: rename says which). */
		if (rename(tmp, dir) < 0) {
			rc = -errno;
			snprintf(msg, msglen, "rename %s to %s: %s", tmp, dir, strerror(errno));
			return rc;
		}
	} else if (errno == EINVAL || errno == ENOSYS) {
		/* The file system cannot exchange: move the old image aside first. */
		if (snprintf(old, sizeof(old), "%s.old-%d", dir, (int)getpid()) >= (int)sizeof(old))
			return -ENAMETOOLONG;
		if (rename(dir, old) < 0 || rename(tmp, dir) < 0) {
			rc = -errno;
			snprintf(msg, msglen, "replace %s: %s", dir, strerror(errno));
			return rc;
		}
		crac_img_remove(old);
	} else {
		rc = -errno;
		snprintf(msg, msglen, "rename %s to %s: %s", tmp, dir, strerror(errno));
		return rc;
	}
	if ((rc = crac_img_fsync_path(parent)) < 0) {
		snprintf(msg, msglen, "fsync of %s: %s", parent, strerror(-rc));
		return rc;
	}
	return 0;
}

int crac_img_load(const char *dir, struct crac_img_loaded *out, char *msg, size_t msglen)
{
	char path[PATH_MAX];
	struct stat st;
	int fd = -1, rc;

	memset(out, 0, sizeof(*out));
	msg[0] = 0;
	if (snprintf(path, sizeof(path), "%s/%s", dir, CRAC_IMG_HEADER_FILE) >= (int)sizeof(path)) {
		snprintf(msg, msglen, "path too long");
		return -ENAMETOOLONG;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if ((uint64_t)st.st_size > CRAC_IMG_MAX_HEADER) {
		rc = -EFBIG;
		snprintf(msg, msglen, "%s: header too large (%lld bytes)", path, (long long)st.st_size);
		goto fail;
	}
	out->len = (uint64_t)st.st_size;
	/* 8-byte aligned for the struct views; +1 so that an empty file works. */
	out->buf = aligned_alloc(8, (out->len + 8) & ~7ull);
	if (!out->buf) {
		rc = -ENOMEM;
		snprintf(msg, msglen, "out of memory");
		goto fail;
	}
	for (uint64_t got = 0; got < out->len;) {
		ssize_t n = pread(fd, (char *)out->buf + got, out->len - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EBADMSG;
			snprintf(msg, msglen, "%s: read: %s", path, n < 0 ? strerror(errno) : "file shrank");
			goto fail;
		}
		got += (uint64_t)n;
	}
	close(fd);
	fd = -1;

	char why[256];
	if ((rc = crac_img_parse(out->buf, out->len, &out->v, why, sizeof(why))) < 0) {
		snprintf(msg, msglen, "%s: %s", path, why);
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, CRAC_IMG_PAGES_FILE);
	if (stat(path, &st) < 0) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if ((uint64_t)st.st_size != out->v.h->pages_size) {
		rc = -EBADMSG;
		snprintf(msg, msglen, "%s: page data is truncated or damaged (%lld bytes, header says %llu)",
			 path, (long long)st.st_size, (unsigned long long)out->v.h->pages_size);
		goto fail;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	crac_img_unload(out);
	return rc;
}

void crac_img_unload(struct crac_img_loaded *l)
{
	free(l->buf);
	memset(l, 0, sizeof(*l));
}

int crac_img_verify_pages(const char *dir, const struct crac_img_view *v, char *msg, size_t msglen)
{
	char path[PATH_MAX];
	size_t cap = CRAC_IMG_CHUNK_MAX;
	char *buf = NULL;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, CRAC_IMG_PAGES_FILE);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (!(buf = malloc(cap))) {
		close(fd);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < v->h->n_chunks && !rc; i++) {
		const struct crac_img_chunk *c = &v->chunks[i];
		uint32_t crc = 0;
		for (uint64_t done = 0; done < c->len;) {
			size_t want = c->len - done < cap ? (size_t)(c->len - done) : cap;
			ssize_t n = pread(fd, buf, want, (off_t)(c->offset + done));
			if (n <= 0) {
				rc = n < 0 ? -errno : -EBADMSG;
				snprintf(msg, msglen, "%s: read at %llu: %s", path,
					 (unsigned long long)(c->offset + done), n < 0 ? strerror(errno) : "end of file");
				break;
			}
			crc = crac_img_crc32c(crc, buf, (size_t)n);
			done += (uint64_t)n;
		}
		if (!rc && crc != c->crc) {
			rc = -EBADMSG;
			snprintf(msg, msglen, "%s: checksum mismatch in page chunk #%u (%llu bytes at %#llx of %s)",
				 path, i, (unsigned long long)c->len, (unsigned long long)c->addr,
				 crac_img_kind_name(v->maps[c->map].kind));
		}
	}
	free(buf);
	close(fd);
	return rc;
}

int crac_img_loader_path(char *buf, size_t len, char *msg, size_t msglen)
{
	const char *env = getenv("CRAC_LOADER");
	char self[PATH_MAX];
	ssize_t n;

	if (env && *env) {
		if (access(env, X_OK) == 0 && snprintf(buf, len, "%s", env) < (int)len)
			return 0;
		snprintf(msg, msglen, "CRAC_LOADER=%s is not an executable file", env);
		return -ENOENT;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			if (snprintf(buf, len, "%s/crac-loader", self) < (int)len && access(buf, X_OK) == 0)
				return 0;
		}
	}
#ifdef CRAC_INSTALL_LIBEXECDIR
	if (snprintf(buf, len, "%s/crac-loader", CRAC_INSTALL_LIBEXECDIR) < (int)len && access(buf, X_OK) == 0)
		return 0;
	snprintf(msg, msglen, "restore loader crac-loader not found next to %s nor in %s (set CRAC_LOADER)",
		 n > 0 ? self : "this program", CRAC_INSTALL_LIBEXECDIR);
#else
	snprintf(msg, msglen, "restore loader crac-loader not found next to this program (set CRAC_LOADER)");
#endif
	return -ENOENT;
}
