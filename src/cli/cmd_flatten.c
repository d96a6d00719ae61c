/* SPDX-License-Identifier: MIT */
/*
 * cmd_flatten.c - `crac flatten DIR OUT [--compress[=LEVEL]] [--trust-owner]`:
 * one self-contained image from an incremental image and the images below
 * it.
 *
 * The chain is opened and checked as a restore does (image/check.c: each
 * image's identity as its child recorded it, owner, sizes, every reference
 * inside the chunk it names). OUT gets DIR's header with the references
 * turned into chunks of its own: DIR's own chunks and the referenced parts
 * of the chunks below, in address order, each read whole and its crc
 * checked before a byte is copied (a part of a chunk gets a crc of its
 * own), then DIR's descriptor data. Written uncompressed, or with
 * --compress each chunk zstd-compressed as the image engine does it
 * (image/compress.c: one frame, kept only if it saves a page; the chunk
 * holding the resume block stays as it is). Written to OUT.tmp-PID-START-X,
 * fsync'd, read back and verified (header and every chunk's crc), then
 * renamed into place: OUT must be absent or an image of the caller, and may
 * be DIR itself, never an image below it.
 */
#include "cli.h"
#include "core/internal.h"
#include "image/check.h"
#include "image/bounded.h"
#include "image/dir.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int read_at(int fd, void *buf, uint64_t len, uint64_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* A path named by an image (an image below DIR), control characters
 * escaped for printing: text from an image is never printed raw. */
static const char *esc(const char *path, char *buf, size_t len)
{
	struct crac_img_buf b = { buf, 0, len };

	buf[0] = 0;
	crac_img_put_escaped_keep(&b, path, 0);   /* whole where len allows */
	return buf;
}

struct flat {
	const struct crac_img_view *v;
	struct crac_img_chain *ch;
	int pages_fd, out_fd;               /* DIR's pages file; OUT's */
	const char *dir;                    /* DIR (messages) */
	const char *tmp;                    /* OUT's temporary directory (messages) */
	char *buf;                          /* one chunk, verified */
	struct crac_img_reader rd;          /* its buffers (compressed chunks) */
	int buf_depth;                      /* what buf holds: depth (0: DIR) ... */
	uint32_t buf_chunk;                 /* ... and chunk, -1: nothing */
	struct crac_img_chunk *chunks;      /* OUT's */
	uint32_t n_chunks;
	uint64_t off;                       /* OUT's pages file size so far */
	uint64_t mem;                       /* bytes of memory in OUT's chunks */
	/* --compress: the level, the context, one chunk's frame */
	int level;
	void *cmem, *cctx;
	char *zout;
	uint64_t zcap;
	uint32_t n_z;                       /* chunks stored compressed */
	uint64_t z_mem, z_out;              /* their memory, their bytes in the file */
	char msg[2048];
};

/* Chunk c of the image `depth` below DIR (0: DIR), read and verified. */
static int load(struct flat *f, int depth, uint32_t c)
{
	const struct crac_img_view *v = depth ? &f->ch->v[depth - 1] : f->v;
	const struct crac_img_chunk *k = &v->chunks[c];
	char ebuf[CRAC_IMG_PATH_MAX * 4 + 1];
	const char *dir = depth ? esc(f->ch->path[depth - 1], ebuf, sizeof(ebuf)) : "the image";
	int fd = depth ? f->ch->o[depth - 1].pages_fd : f->pages_fd;

	if (f->buf_depth == depth && f->buf_chunk == c)
		return 0;
	f->buf_chunk = UINT32_MAX;
	if (k->len > CRAC_IMG_CHUNK_MAX) {
		snprintf(f->msg, sizeof(f->msg), "chunk #%u of %s is larger than %llu bytes", c, dir,
			 (unsigned long long)CRAC_IMG_CHUNK_MAX);
		return -EFBIG;
	}
	/* read, decompressed if it is, its crc checked (image/chunk.c); a
	 * read that does not return is given up on (watch.c) */
	cli_watch_step("pageread", "the read of chunk #%u of %s/%s", c, depth ? dir : f->dir, CRAC_IMG_PAGES_FILE);
	long rc = crac_img_reader_read(&f->rd, fd, k, f->buf);
	if (rc < 0) {
		snprintf(f->msg, sizeof(f->msg), "cannot read chunk #%u of %s: %s", c, dir, strerror((int)-rc));
		return (int)rc;
	}
	if (rc == CRAC_CHUNK_CRC) {
		struct crac_img_buf b = { f->msg, 0, sizeof(f->msg) };
		crac_img_put_damaged_chunk(&b, c, k, dir);
		return -EBADMSG;
	}
	if (rc > 0) {
		snprintf(f->msg, sizeof(f->msg), "cannot read chunk #%u of %s: %s", c, dir, crac_img_chunk_why(rc));
		return rc == CRAC_CHUNK_NO_ZSTD ? -ENOTSUP : -EBADMSG;
	}
	f->buf_depth = depth;
	f->buf_chunk = c;
	return 0;
}

/* Appends [addr, addr + len) of mapping `map` from the loaded chunk k:
 * compressed with --compress when that saves a page, except where the
 * resume block lies (restore reads it straight from the pages file before
 * anything else, as the image engine stores it). */
static int emit(struct flat *f, const struct crac_img_chunk *k, uint64_t addr, uint64_t len, uint32_t map)
{
	const char *src = f->buf + (addr - k->addr);
	struct crac_img_chunk out = {
		.addr = addr, .offset = f->off, .len = (uint32_t)len, .crc = crac_img_crc32c(0, src, len), .map = map,
	};
	uint64_t res = f->v->h->resume, rlen = sizeof(struct crac_img_resume), stored = 0;
	int rc;

	if (f->cctx && !(addr < res + rlen && addr + len + rlen > res))
		stored = crac_img_chunk_pack(&out, f->zout,
					     crac_img_zstd_frame(f->cctx, f->level, f->zout, f->zcap, src, len));
	/* (after the compression, which may take long at a high level) */
	cli_watch_step("pagewrite", "the write of %s/%s (at byte %llu)", f->tmp, CRAC_IMG_PAGES_FILE,
		       (unsigned long long)f->off);
	if (stored) {
		f->n_z++;
		f->z_mem += len;
		f->z_out += stored;
		rc = crac__write_all(f->out_fd, f->zout, stored);
	} else {
		rc = crac__write_all(f->out_fd, src, len);
		stored = len;
	}
	if (rc < 0) {
		snprintf(f->msg, sizeof(f->msg), "writing %s/%s: %s", f->tmp, CRAC_IMG_PAGES_FILE, strerror(-rc));
		return rc;
	}
	f->chunks[f->n_chunks++] = out;
	f->off += stored;
	f->mem += len;
	return 0;
}

/* Writes OUT's pages file and builds its header in *out (malloc'd). */
static int flatten(struct flat *f, char **out, uint64_t *out_len)
{
	const struct crac_img_view *v = f->v;
	const struct crac_img_header *h = v->h;
	int rc;

	/* page data: own chunks and references, merged by address */
	for (uint32_t a = 0, r = 0; a < h->n_chunks || r < h->n_refs;) {
		if (r >= h->n_refs || (a < h->n_chunks && v->chunks[a].addr < v->refs[r].addr)) {
			const struct crac_img_chunk *k = &v->chunks[a];
			if ((rc = load(f, 0, a)) < 0 || (rc = emit(f, k, k->addr, k->len, k->map)) < 0)
				return rc;
			a++;
		} else {
			const struct crac_img_ref *q = &v->refs[r++];
			const struct crac_img_chunk *k = &f->ch->v[q->depth - 1].chunks[q->chunk];
			if ((rc = load(f, (int)q->depth, q->chunk)) < 0 || (rc = emit(f, k, q->addr, q->len, q->map)) < 0)
				return rc;
		}
	}
	/* descriptor data, after the pages (its offsets move) */
	uint64_t *data_off = calloc(h->n_fds + 1, sizeof(uint64_t));
	char *page = malloc(1u << 20);
	if (!data_off || !page) {
		free(data_off);
		free(page);
		snprintf(f->msg, sizeof(f->msg), "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < h->n_fds; i++) {
		const struct crac_img_fd *e = &v->fds[i];
		uint32_t crc = 0;   /* its crc32c, checked before anything is at OUT */
		data_off[i] = f->off;
		for (uint64_t done = 0; done < e->data_len;) {
			uint64_t n = e->data_len - done < (1u << 20) ? e->data_len - done : (1u << 20);
			cli_watch_step(NULL, "the read of the data of fd %d in %s/%s", e->fd, f->dir, CRAC_IMG_PAGES_FILE);
			if ((rc = read_at(f->pages_fd, page, n, e->data_off + done)) == 0)
				cli_watch_step(NULL, "the write of %s/%s (at byte %llu)", f->tmp, CRAC_IMG_PAGES_FILE,
					       (unsigned long long)(f->off + done));
			if (rc < 0 || (rc = crac__write_all(f->out_fd, page, n)) < 0) {
				snprintf(f->msg, sizeof(f->msg), "copying the data of fd %d to %s/%s: %s", e->fd, f->tmp,
					 CRAC_IMG_PAGES_FILE, strerror(-rc));
				free(data_off);
				free(page);
				return rc;
			}
			crc = crac_img_crc32c(crc, page, n);
			done += n;
		}
		if (crc != e->data_crc) {
			snprintf(f->msg, sizeof(f->msg), "the content of fd %d in the pages file is damaged (checksum mismatch)",
				 e->fd);
			free(data_off);
			free(page);
			return -EBADMSG;
		}
		uint64_t pad = ((e->data_len + CRAC_IMG_PAGE - 1) & ~(CRAC_IMG_PAGE - 1)) - e->data_len;
		memset(page, 0, pad);
		cli_watch_step(NULL, "the write of %s/%s (at byte %llu)", f->tmp, CRAC_IMG_PAGES_FILE,
			       (unsigned long long)(f->off + e->data_len));
		if (pad && (rc = crac__write_all(f->out_fd, page, pad)) < 0) {
			snprintf(f->msg, sizeof(f->msg), "writing %s/%s: %s", f->tmp, CRAC_IMG_PAGES_FILE, strerror(-rc));
			free(data_off);
			free(page);
			return rc;
		}
		f->off += e->data_len + pad;
	}
	free(page);
	cli_watch_idle();

	/* the header: the same tables, new chunks, no parent */
	uint64_t off = sizeof(struct crac_img_header);
	uint64_t maps_off = off;
	off += (uint64_t)h->n_maps * sizeof(struct crac_img_map);
	uint64_t files_off = off;
	off += (uint64_t)h->n_files * sizeof(struct crac_img_file);
	uint64_t chunks_off = off;
	off += (uint64_t)f->n_chunks * sizeof(struct crac_img_chunk);
	uint64_t threads_off = off;
	off += (uint64_t)h->n_threads * sizeof(struct crac_img_thread);
	uint64_t secrets_off = off;
	off += (uint64_t)h->n_secrets * sizeof(struct crac_img_range);
	uint64_t fds_off = off;
	off += (uint64_t)h->n_fds * sizeof(struct crac_img_fd);
	uint64_t signals_off = off;   /* the pending signals of the top image */
	off += (uint64_t)v->n_signals * sizeof(struct crac_img_signal);
	uint64_t blobs_off = off;
	off += (h->blobs_size + 7) & ~7ull;
	uint64_t strtab_off = off;
	uint64_t total = (off + h->strtab_size + 7) & ~7ull;
	char *buf = calloc(1, total);
	if (!buf) {
		free(data_off);
		snprintf(f->msg, sizeof(f->msg), "out of memory");
		return -ENOMEM;
	}
	struct crac_img_header *nh = (struct crac_img_header *)buf;
	/* (a header of version 4 or 5 ends before the pending signals) */
	memcpy(nh, h, h->version >= 6 ? sizeof(*nh) : CRAC_IMG_HEADER_V5_SIZE);
	nh->n_signals = v->n_signals;
	nh->pad3 = 0;
	nh->signals_off = v->n_signals ? signals_off : 0;
	if (v->n_signals)
		memcpy(buf + signals_off, v->signals, (size_t)v->n_signals * sizeof(struct crac_img_signal));
	nh->size = total;
	nh->pages_size = f->off;
	nh->stored = f->mem;   /* bytes of memory: compressed chunks count as they decompress */
	nh->maps_off = maps_off;
	nh->files_off = files_off;
	nh->chunks_off = chunks_off;
	nh->n_chunks = f->n_chunks;
	nh->threads_off = threads_off;
	nh->secrets_off = secrets_off;
	nh->fds_off = fds_off;
	nh->blobs_off = blobs_off;
	nh->strtab_off = strtab_off;
	nh->parent = 0;
	nh->parent_crc = 0;
	nh->parent_created_ns = 0;
	nh->parent_pages_size = 0;
	nh->depth = 0;
	nh->n_refs = 0;
	nh->refs_off = 0;
	/* in this build's format; compressed only if a chunk is (--compress) */
	nh->version = CRAC_IMG_VERSION;
	nh->img_flags &= ~CRAC_IMGF_COMPRESSED;
	if (f->n_z)
		nh->img_flags |= CRAC_IMGF_COMPRESSED;
	struct crac_img_map *maps = (struct crac_img_map *)(buf + maps_off);
	memcpy(maps, v->maps, (size_t)h->n_maps * sizeof(*maps));
	for (uint32_t i = 0; i < h->n_maps; i++) {
		maps[i].flags &= ~CRAC_MAPF_REFS;
		maps[i].n_chunks = 0;
		maps[i].stored = 0;
		maps[i].first_chunk = 0;
	}
	for (uint32_t c = f->n_chunks; c-- > 0;) {   /* chunks are in map order */
		struct crac_img_map *m = &maps[f->chunks[c].map];
		m->first_chunk = c;
		m->n_chunks++;
		m->stored += f->chunks[c].len;
	}
	for (uint32_t i = 0, next = 0; i < h->n_maps; i++) {   /* mappings without chunks */
		if (!maps[i].n_chunks)
			maps[i].first_chunk = next;
		next = maps[i].first_chunk + maps[i].n_chunks;
	}
	memcpy(buf + files_off, v->files, (size_t)h->n_files * sizeof(struct crac_img_file));
	memcpy(buf + chunks_off, f->chunks, (size_t)f->n_chunks * sizeof(struct crac_img_chunk));
	memcpy(buf + threads_off, v->threads, (size_t)h->n_threads * sizeof(struct crac_img_thread));
	if (h->n_secrets)
		memcpy(buf + secrets_off, v->secrets, (size_t)h->n_secrets * sizeof(struct crac_img_range));
	struct crac_img_fd *fds = (struct crac_img_fd *)(buf + fds_off);
	if (h->n_fds)
		memcpy(fds, v->fds, (size_t)h->n_fds * sizeof(*fds));
	for (uint32_t i = 0; i < h->n_fds; i++)
		fds[i].data_off = fds[i].data_len ? data_off[i] : 0;
	memcpy(buf + blobs_off, v->blobs, h->blobs_size);
	memcpy(buf + strtab_off, v->strtab, h->strtab_size);
	nh->strtab_size = total - strtab_off;
	nh->crc = 0;
	nh->crc = crac_img_header_crc(buf, total);
	free(data_off);
	*out = buf;
	*out_len = total;
	return 0;
}

/*
 * The image (DIR or one below it) that OUT would be put inside, into *in,
 * or NULL. An image directory holds only its header and pages: anything
 * else in it keeps it from ever being replaced (crac_img_target_check), so
 * OUT's directory and every directory above it are compared with the
 * chain's. Each look by a helper of image/dir.c, bounded by --timeout: 0,
 * or -ETIMEDOUT with msg naming the step and the path.
 */
static int inside_image(const char *outdir, const char *dir, const struct crac_img_chain *ch, const char **in,
			char *msg, size_t msglen)
{
	char parent[PATH_MAX], real[PATH_MAX];
	const char *base;
	struct stat img[CRAC_IMG_MAX_CHAIN + 1];
	bool have[CRAC_IMG_MAX_CHAIN + 1];
	int rc;

	*in = NULL;
	if (crac_img_split_path(outdir, parent, sizeof(parent), &base) < 0)
		return 0;
	if ((rc = crac_img_realpath_msg(parent, real, sizeof(real), msg, msglen)) < 0)
		return rc == -ETIMEDOUT ? rc : 0;   /* OUT cannot be created there: said when it is */
	for (uint32_t i = 0; i <= ch->n; i++) {
		if ((rc = crac_img_stat_msg(i ? ch->path[i - 1] : dir, &img[i], msg, msglen)) == -ETIMEDOUT)
			return rc;
		have[i] = rc == 0;
	}
	for (;;) {
		struct stat st;
		if ((rc = crac_img_stat_msg(real, &st, msg, msglen)) == -ETIMEDOUT)
			return rc;
		for (uint32_t i = 0; rc == 0 && i <= ch->n; i++)
			if (have[i] && st.st_dev == img[i].st_dev && st.st_ino == img[i].st_ino) {
				*in = i ? ch->path[i - 1] : dir;
				return 0;
			}
		char *slash = strrchr(real, '/');
		if (!slash || slash == real)
			return 0;
		*slash = 0;
	}
}

/* Each read of the image written, read back (crac_img_verify_pages_steps):
 * a step of the watcher's (watch.c). */
static void readback_step(void *ctx, const char *path, long i)
{
	const struct crac_img_view *v = ctx;

	if (i < 0)
		cli_watch_step(NULL, "the read back of %s (its open)", path);
	else if (i < (long)v->h->n_chunks)
		cli_watch_step(NULL, "the read back of chunk #%ld of %s", i, path);
	else
		cli_watch_step(NULL, "the read back of the data of fd %d in %s", v->fds[i - v->h->n_chunks].fd, path);
}

/*
 * OUT as flatten found it before writing, and again before the commit: the
 * image put in place replaces only what was checked. A checkpoint into DIR
 * while DIR is flattened in place, or a second flatten into the same OUT,
 * commits another directory at OUT meanwhile; replacing it would throw
 * that newer image away (the commit removes what it replaced), so flatten
 * refuses instead. Directory and header, by identity (a commit renames a
 * new directory into place; nobody rewrites a header in place).
 */
struct out_id {
	bool there, header;
	struct stat dir, hdr;
};

/* The lstats bounded by --timeout: 0, or -ETIMEDOUT with msg. */
static int out_identify(const char *outdir, struct out_id *id, char *msg, size_t msglen)
{
	char path[PATH_MAX + sizeof(CRAC_IMG_HEADER_FILE) + 1];
	int rc;

	memset(id, 0, sizeof(*id));
	if ((rc = crac_img_lstat_msg(outdir, &id->dir, msg, msglen)) == -ETIMEDOUT)
		return rc;
	id->there = rc == 0;
	snprintf(path, sizeof(path), "%s/%s", outdir, CRAC_IMG_HEADER_FILE);
	if (id->there && (rc = crac_img_lstat_msg(path, &id->hdr, msg, msglen)) == -ETIMEDOUT)
		return rc;
	id->header = id->there && rc == 0;
	return 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Has OUT changed since `was`? Said (one line) if it has. */
static bool out_moved(const char *dir, const char *outdir, const struct out_id *was)
{
	struct out_id now;
	char msg[PATH_MAX + 400];

	if (out_identify(outdir, &now, msg, sizeof(msg)) == -ETIMEDOUT)
		cli_err("flatten %s: %s; nothing was replaced", dir, msg);
	else if (!was->there && now.there)
		cli_err("flatten %s: %s appeared while the image was written (another flatten or checkpoint into "
			"it?); nothing was replaced", dir, outdir);
	else if (was->there && (!now.there || now.dir.st_dev != was->dir.st_dev ||
				now.dir.st_ino != was->dir.st_ino || now.header != was->header ||
				(now.header && !same_file(&now.hdr, &was->hdr))))
		cli_err("flatten %s: %s was replaced while %s (another flatten or checkpoint into it?); "
			"nothing was replaced", dir, outdir,
			strcmp(dir, outdir) ? "the image was written" : "it was flattened");
	else
		return false;
	return true;
}

/*
 * What an incremental image records of its parent, and crac restore
 * compares (image/check.c crac_img_chain_open): the parent's header crc,
 * created_ns and pages_size. Its page references also name chunks of the
 * parent (and of the images below it) by index and depth, which a flatten
 * renumbers and collapses: an image whose parent is OUT restores after OUT
 * was replaced only if OUT's new header is the same as the old one (see
 * docs/guide.md, "Incremental images, and flattening them").
 */
struct img_ident {
	bool known;
	uint32_t crc;
	int64_t created_ns;
	uint64_t pages_size;
};

/* The identity of the image at OUT before it is replaced, read from its
 * header's first bytes (a watched step); unknown if it cannot be read. */
static void out_ident(const char *outdir, struct img_ident *id)
{
	char path[PATH_MAX + sizeof(CRAC_IMG_HEADER_FILE) + 1];
	struct crac_img_header h;
	const size_t need = offsetof(struct crac_img_header, kernel);   /* v1's stable fields */

	memset(id, 0, sizeof(*id));
	snprintf(path, sizeof(path), "%s/%s", outdir, CRAC_IMG_HEADER_FILE);
	cli_watch_step(NULL, "the read of %s (the identity of the image flatten replaces)", path);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0 && read_at(fd, &h, need, 0) == 0 && !memcmp(h.magic, CRAC_IMG_MAGIC, sizeof(h.magic))) {
		id->known = true;
		id->crc = h.crc;
		id->created_ns = h.created_ns;
		id->pages_size = h.pages_size;
	}
	if (fd >= 0)
		close(fd);
	cli_watch_idle();
}

/*
 * CRAC_TEST_FLATTEN_HOLD=FILE (tests only): flatten, its temporary
 * complete (written, synced, read back and verified, still locked), makes
 * FILE.held and waits until FILE exists before its last looks at OUT
 * (out_moved, then the commit's check). A test does what it likes to OUT
 * meanwhile and lets flatten go on by creating FILE: an event of the
 * test's, not a timer that a loaded machine outlasts. Bounded (60 s, then
 * flatten goes on, saying so), so a test that never creates FILE cannot
 * hang.
 */
#define TEST_HOLD_MAX_MS 60000

static void test_hold(void)
{
	const char *go = getenv("CRAC_TEST_FLATTEN_HOLD");
	char held[PATH_MAX];

	if (!go || !*go)
		return;
	if (snprintf(held, sizeof(held), "%s.held", go) >= (int)sizeof(held)) {
		cli_err("flatten: CRAC_TEST_FLATTEN_HOLD=%s: name too long; not held", go);
		return;
	}
	int fd = open(held, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		cli_err("flatten: CRAC_TEST_FLATTEN_HOLD: creating %s: %s; not held", held, strerror(errno));
		return;
	}
	close(fd);
	for (int64_t end = crac_bounded_mono_ns() + TEST_HOLD_MAX_MS * 1000000LL; access(go, F_OK) != 0;) {
		if (crac_bounded_mono_ns() >= end) {
			cli_err("flatten: CRAC_TEST_FLATTEN_HOLD: %s did not appear in %d ms; going on", go,
				TEST_HOLD_MAX_MS);
			return;
		}
		usleep(10000);
	}
}

/* What the command line asked for. */
struct flat_args {
	const char *dir, *outdir;
	unsigned flags;
	int level;
	long long timeout_ms;
	const char *bound;
};

static int flatten_main(void *arg);

int crac_cmd_flatten(int argc, char **argv)
{
	const char *usage = "usage: crac flatten DIR OUT [--compress[=LEVEL]] [--trust-owner] [--timeout DURATION]";
	const char *dir = NULL, *outdir = NULL;
	unsigned flags = 0;
	int level = 0;
	long long timeout_ms = crac_bounded_grace_ms();   /* 30 s */
	static char bound[64];

	static const struct option opts[] = {
		{ "compress", optional_argument, 0, 'z' },
		{ "trust-owner", no_argument, 0, 't' },
		{ "timeout", required_argument, 0, 'T' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	int c;

	optind = 0;
	while ((c = cli_getopt(argc, argv, "+:h", opts, usage)) != -1) {
		switch (c) {
		case CLI_OPERAND:
			if (dir && outdir) {
				cli_err("unexpected \"%s\" (%s)", argv[optind], usage);
				return 2;
			}
			*(dir ? &outdir : &dir) = argv[optind++];
			break;
		case 't':
			flags |= CRAC_IMG_TRUST_OWNER;
			break;
		case 'T':
			if ((timeout_ms = cli_parse_duration(optarg)) < 0) {
				cli_err("--timeout wants a duration (500ms, 30s, 2m; 0: no limit), got \"%s\"", optarg);
				return 2;
			}
			break;
		case 'z': {
			/* as crac checkpoint --compress: a bare --compress followed by
			 * a number that names no file meant a level, not DIR or OUT */
			struct stat st;
			const char *next = !optarg && optind < argc && lstat(argv[optind], &st) < 0 ? argv[optind] : NULL;
			if ((level = cli_compress_level(optarg, next, dir ? "OUT" : "DIR")) < 0)
				return 2;
			break;
		}
		case 'h':
			printf("%s\n"
			       "Writes at OUT one self-contained image made of the incremental image DIR and the\n"
			       "images below it, checked as `crac restore` checks them, written to a temporary\n"
			       "directory, read back and verified, then renamed into place. OUT must be absent or\n"
			       "an image of yours; it may be DIR itself, never an image below DIR. An image\n"
			       "replaced at OUT (DIR itself too) is said in a warning: the incremental images\n"
			       "whose parent it was are refused by crac restore from then on; flatten them first.\n"
			       "  --compress[=LEVEL]  zstd-compress the page data, one frame per chunk, as crac\n"
			       "                      checkpoint --compress does; LEVEL 1-19, default 1 (fastest);\n"
			       "                      without it, OUT is uncompressed whatever the chain was\n"
			       "  --trust-owner       accept images of another user (as crac restore --trust-owner)\n"
			       "  --timeout DURATION  how long one step on a file system may take before it is\n"
			       "                      given up on, naming the step and the path: each open and\n"
			       "                      read of DIR and the images below it, each write of the\n"
			       "                      copy and read of its read back (done by a watched child\n"
			       "                      process), each look at OUT (its check, stats, the removal\n"
			       "                      of stale temporaries, the fsyncs, the renames) (500ms, 30s,\n"
			       "                      2m; default 30s; 0: no limit)\n"
			       "  --help              this text\n"
			       "exit status: 0 written, 1 refused or failed (nothing at OUT changed), 2 usage error\n",
			       usage);
			return 0;
		default:
			return 2;   /* said by cli_getopt */
		}
	}
	if (!dir || !outdir) {
		cli_err("%s", usage);
		return 2;
	}
	/* each bounded step of image/dir.c (a file system that does not
	 * answer: NFS, FUSE) waits at most --timeout */
	snprintf(bound, sizeof(bound), "crac flatten --timeout, %lld ms", timeout_ms);
	crac_img_fs_limit(0, (long)timeout_ms, timeout_ms ? bound : NULL);
	char dir_ok[PATH_MAX], out_ok[PATH_MAX];
	if (cli_path_arg("flatten", dir, CLI_PATH_MAX, false, dir_ok, sizeof(dir_ok)) < 0 ||
	    cli_path_arg("flatten", outdir, CLI_PATH_MAX, false, out_ok, sizeof(out_ok)) < 0)
		return 2;
	/* the reads of the chain, the creation of the temporary and the page
	 * copy too: done by a child watched step by step (watch.c) */
	struct flat_args fa = { .dir = dir, .outdir = outdir, .flags = flags, .level = level,
				.timeout_ms = timeout_ms, .bound = bound };
	char who[PATH_MAX + 16];
	snprintf(who, sizeof(who), "flatten %s", dir);
	return cli_watch_run(who, (long)timeout_ms, bound, flatten_main, &fa);
}

/* The flatten itself (in the watched child unless --timeout 0). */
static int flatten_main(void *arg)
{
	const struct flat_args *fa = arg;
	const char *dir = fa->dir, *outdir = fa->outdir;
	unsigned flags = fa->flags;
	int level = fa->level;
	long long timeout_ms = fa->timeout_ms;
	const char *bound = fa->bound;
	struct crac_img_opened o;
	struct crac_img_view v;
	struct crac_img_chain *ch = calloc(1, sizeof(*ch));
	struct flat f = { .v = &v, .ch = ch, .out_fd = -1, .buf_depth = -1, .buf_chunk = UINT32_MAX, .level = level };
	void *hbuf = NULL, *abuf = malloc(64u << 20);
	char *nbuf = NULL, tmp[PATH_MAX] = "", msg[2048];
	uint64_t nlen = 0;
	int rc, dfd = -1;

	f.buf = malloc(CRAC_IMG_CHUNK_MAX);
	if (level) {
		/* the image engine's compressor (image/compress.c), our memory */
		uint64_t csize = crac_img_zstd_cctx_size(level);
		f.zcap = crac_img_zstd_bound(CRAC_IMG_CHUNK_MAX);
		f.cmem = malloc(csize);
		f.zout = malloc(f.zcap);
		f.cctx = f.cmem && f.zout ? crac_img_zstd_cctx(f.cmem, csize, level) : NULL;
	}
	if (!ch || !abuf || !f.buf || (level && !f.cctx) || crac_img_reader_init(&f.rd) < 0) {
		cli_err("flatten %s: out of memory", dir);
		return 1;
	}
	/* DIR and the images below it, as the loader reads them; each open
	 * and read that does not return is given up on (watch.c) */
	cli_watch_step("image", "the open of the image %s (its directory, header and pages files)", dir);
	if ((rc = crac_img_open(dir, &o, msg, sizeof(msg))) < 0) {
		cli_err("flatten %s: %s", dir, msg);
		return 1;
	}
	f.pages_fd = o.pages_fd;
	f.dir = dir;
	cli_watch_step(NULL, "the read of %s/%s", dir, CRAC_IMG_HEADER_FILE);
	if (!(hbuf = aligned_alloc(8, (o.header_size + 8) & ~7ull)) ||
	    (rc = crac_img_read_header(&o, hbuf, o.header_size, &v, msg, sizeof(msg))) < 0) {
		cli_err("flatten %s: %s", dir, hbuf ? msg : "out of memory");
		rc = 1;
		goto out;
	}
	/* the same trust rules as a restore: owner, sizes, the chain */
	struct crac_img_checker k = { .v = &v, .o = &o, .dir = dir, .flags = flags };
	if (o.pages_size != v.h->pages_size) {
		cli_err("flatten %s: %s/pages has %llu bytes, the header says %llu", dir, dir,
			(unsigned long long)o.pages_size, (unsigned long long)v.h->pages_size);
		rc = 1;
		goto out;
	}
	cli_watch_step(NULL, "the check of the image %s (its owner and files)", dir);
	if ((rc = crac_img_check(CRAC_CHECK_OWNER, &k, msg, sizeof(msg))) < 0) {
		cli_err("flatten %s: %s", dir, msg);
		rc = 1;
		goto out;
	}
	if (v.h->depth) {
		char below[PATH_MAX];
		if (crac_img_parent_path(&v, dir, below, sizeof(below)) < 0)
			snprintf(below, sizeof(below), "its parent");
		cli_watch_step("chain", "the open of the images below %s (%s and those below it: their directories, "
			       "headers and pages files)", dir, esc(below, msg, sizeof(msg)));
	}
	if ((rc = crac_img_chain_open(&v, dir, flags, ch, abuf, 64u << 20, msg, sizeof(msg))) < 0) {
		cli_err("flatten %s: %s", dir, msg);
		rc = 1;
		goto out;
	}
	cli_watch_idle();
	/* every look at OUT and the chain's paths from here on bounded by
	 * --timeout (image/dir.c's helpers), said naming the step and the path */
	struct stat a;
	int arc = ch->n ? crac_img_stat_msg(outdir, &a, msg, sizeof(msg)) : -ENOENT;
	for (uint32_t i = 0; arc != -ETIMEDOUT && i < ch->n; i++) {
		struct stat b;
		int brc = arc == 0 ? crac_img_stat_msg(ch->path[i], &b, msg, sizeof(msg)) : -ENOENT;
		if (brc == -ETIMEDOUT) {
			arc = brc;
			break;
		}
		if (brc == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			cli_err("flatten %s: %s is an image below it (%s): other images may need it; choose another OUT",
				dir, outdir, esc(ch->path[i], msg, sizeof(msg)));
			rc = 1;
			goto out;
		}
	}
	const char *in = NULL;
	if (arc == -ETIMEDOUT || inside_image(outdir, dir, ch, &in, msg, sizeof(msg)) == -ETIMEDOUT) {
		cli_err("flatten %s: %s", dir, msg);
		rc = 1;
		goto out;
	}
	if (in) {
		cli_err("flatten %s: %s is inside the image %s: an image directory holds only its header and pages; "
			"choose another OUT", dir, outdir, esc(in, msg, sizeof(msg)));
		rc = 1;
		goto out;
	}
	/* what an earlier flatten or checkpoint to OUT left when it was
	 * killed, before OUT is looked at: a previous image it had set aside
	 * (OUT.old-PID-START) is put back at OUT first, and is then what the
	 * commit replaces (looked at after it, it "appeared" meanwhile) */
	int stale_rc = crac_img_clean_stale_msg(outdir, NULL, msg, sizeof(msg));
	if (stale_rc == -ETIMEDOUT) {
		cli_err("flatten %s: %s", dir, msg);
		rc = 1;
		goto out;
	}
	if (stale_rc == 0 && msg[0])   /* a previous image not put back, and why */
		cli_err("flatten %s: warning: %s", dir, msg);
	if ((rc = crac_img_target_check(outdir, msg, sizeof(msg))) < 0) {
		cli_err("flatten %s: %s", dir, msg);
		rc = 1;
		goto out;
	}
	/* what OUT is now: the commit replaces only that (out_moved) */
	struct out_id was;
	if (out_identify(outdir, &was, msg, sizeof(msg)) == -ETIMEDOUT) {
		cli_err("flatten %s: %s", dir, msg);
		rc = 1;
		goto out;
	}
	/* what images above the image at OUT recorded of it (out_ident) */
	struct img_ident was_id = { 0 };
	bool in_place = false;
	if (was.header)
		out_ident(outdir, &was_id);
	if (was.there) {
		struct stat d, od;
		int drc = crac_img_stat_msg(dir, &d, msg, sizeof(msg));
		if (drc == -ETIMEDOUT) {
			cli_err("flatten %s: %s", dir, msg);
			rc = 1;
			goto out;
		}
		if (drc == 0 && d.st_dev == was.dir.st_dev && d.st_ino == was.dir.st_ino &&
		    (fstat(o.dir_fd, &od) < 0 || od.st_dev != d.st_dev || od.st_ino != d.st_ino)) {
			cli_err("flatten %s: %s was replaced while it was flattened (a checkpoint into it?); "
				"nothing was replaced", dir, dir);
			rc = 1;
			goto out;
		}
		in_place = drc == 0 && d.st_dev == was.dir.st_dev && d.st_ino == was.dir.st_ino;
	}
	f.chunks = calloc((size_t)v.h->n_chunks + v.h->n_refs + 1, sizeof(*f.chunks));
	/* locked until it is renamed (dfd stays open until then): a checkpoint
	 * or flatten into OUT in another pid namespace, to which our pid means
	 * nothing, leaves it alone (crac_img_clean_stale) */
	/* named after the command (the watcher, which outlives its worker):
	 * stale only once it is gone */
	crac_img_tmp_writer(cli_watch_owner());
	/* (the watcher cleans there after us if we are killed, even before
	 * the temporary is named) */
	cli_watch_place(outdir);
	cli_watch_step("mkdtemp", "the creation of the temporary image next to %s", outdir);
	char tmp_msg[PATH_MAX + 300] = "";
	int tmp_rc = f.chunks ? crac_img_tmp_create_msg(outdir, tmp, sizeof(tmp), &dfd, tmp_msg, sizeof(tmp_msg))
			      : -ENOMEM;
	/* removed by the watcher if we are given up on, while it is ours (by
	 * its identity: the commit's exchange puts the previous image under
	 * its name for a moment) */
	struct stat tmp_st;
	cli_watch_tmp(tmp, dfd >= 0 && fstat(dfd, &tmp_st) == 0 ? &tmp_st : NULL);
	if (tmp_rc < 0 && (!f.chunks || !tmp[0] || tmp_rc == -ENAMETOOLONG)) {
		cli_err("flatten %s: cannot create the temporary image next to %s: %s", dir, outdir,
			f.chunks ? strerror(-tmp_rc) : "out of memory");
		tmp[0] = 0;
		rc = 1;
		goto out;
	}
	if (tmp_rc == 0)
		cli_watch_step(NULL, "the creation of %s/%s", tmp, CRAC_IMG_PAGES_FILE);
	if (tmp_rc == -ETIMEDOUT && tmp_msg[0]) {
		cli_err("flatten %s: %s", dir, tmp_msg);
		rc = 1;
		goto out;
	}
	if (tmp_rc < 0 ||
	    (f.out_fd = openat(dfd, CRAC_IMG_PAGES_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		cli_err("flatten %s: %s: %s", dir, tmp, strerror(tmp_rc < 0 ? -tmp_rc : errno));
		rc = 1;
		goto out;
	}
	f.tmp = tmp;
	if ((rc = flatten(&f, &nbuf, &nlen)) < 0) {
		cli_err("flatten %s: %s", dir, f.msg);
		rc = 1;
		goto out;
	}
	cli_watch_step(NULL, "the creation of %s/%s", tmp, CRAC_IMG_HEADER_FILE);
	int hfd = openat(dfd, CRAC_IMG_HEADER_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (hfd >= 0)
		cli_watch_step(NULL, "the write of %s/%s", tmp, CRAC_IMG_HEADER_FILE);
	const char *failed = NULL;   /* the file at fault */
	int64_t waited = -1;         /* an fsync given up on (bounded by --timeout): how long it was waited for */
	if (hfd < 0)
		rc = -errno, failed = CRAC_IMG_HEADER_FILE;
	else if ((rc = crac__write_all(hfd, nbuf, nlen)) < 0)
		failed = CRAC_IMG_HEADER_FILE;
	/* (the fsyncs: bounded by image/dir.c's helpers, the watcher idle) */
	else if (cli_watch_idle(), (rc = crac_img_fsync_fd(hfd, false, &waited)) < 0)
		failed = CRAC_IMG_HEADER_FILE;
	else if ((rc = crac_img_fsync_fd(f.out_fd, false, &waited)) < 0)
		failed = CRAC_IMG_PAGES_FILE;
	else if ((rc = crac_img_fsync_fd(dfd, false, &waited)) < 0)
		failed = "";
	if (failed && waited >= 0) {
		cli_err("flatten %s: writing %s%s%s: the fsync did not return after %lld ms (%s): its file system does "
			"not answer; given up", dir, tmp, *failed ? "/" : "", failed, (long long)waited,
			timeout_ms ? bound : "no limit");
		if (hfd >= 0)
			close(hfd);
		rc = 1;
		goto out;
	}
	if (failed) {
		cli_err("flatten %s: writing %s%s%s: %s", dir, tmp, *failed ? "/" : "", failed, strerror(-rc));
		if (hfd >= 0)
			close(hfd);
		rc = 1;
		goto out;
	}
	close(hfd);
	/* read back and verified like a checkpoint's image, then in place */
	struct crac_img_loaded l;
	cli_watch_step("readback", "the read back of %s/%s", tmp, CRAC_IMG_HEADER_FILE);
	if ((rc = crac_img_load(tmp, &l, msg, sizeof(msg))) == 0) {
		rc = crac_img_verify_pages_steps(tmp, &l.v, readback_step, &l.v, msg, sizeof(msg));
		crac_img_unload(&l);
	}
	cli_watch_idle();
	if (rc < 0) {
		cli_err("flatten %s: the image written is not valid: %s", dir, msg);
		rc = 1;
		goto out;
	}
	test_hold();   /* tests: OUT changed here by the test (CRAC_TEST_FLATTEN_HOLD) */
	if (out_moved(dir, outdir, &was)) {
		rc = 1;
		goto out;
	}
	/* only the directory checked (there or not): a commit into OUT after
	 * this last look is put back by the commit itself */
	struct stat expect_dir = was.dir;
	if (!was.there)
		expect_dir.st_ino = 0;
	if ((rc = crac_img_commit_expect(tmp, outdir, &expect_dir, msg, sizeof(msg))) < 0) {
		cli_err("flatten %s: %s", dir, msg);
		rc = 1;
		goto out;
	}
	tmp[0] = 0;
	/* in place; what went wrong after (the previous image left, the
	 * parent's fsync) is said */
	if (rc > 0)
		cli_err("flatten %s: warning: %s written, but %s", dir, outdir, msg);
	/* An image whose parent was the image at OUT names it by path and
	 * identity, and names its chunks by index: refused by crac restore
	 * from now on, unless the new header is the old one byte for byte
	 * (the same crc: flattening again what was flattened). Said, since
	 * flatten cannot know those images (nothing names its children). */
	const struct crac_img_header *nh = (const struct crac_img_header *)nbuf;
	if (was.header && (!was_id.known || was_id.crc != nh->crc || was_id.created_ns != nh->created_ns ||
			   was_id.pages_size != nh->pages_size))
		cli_err("flatten %s: warning: %s was %s: an incremental image whose parent image is %s is refused by "
			"crac restore from now on; flatten such images before %s", dir, outdir,
			in_place ? "rewritten" : "replaced", outdir, in_place ? "rewriting it" : "replacing it");
	printf("%s: %u chunks, %.1f MiB of page data (%u image%s below merged)\n", outdir, f.n_chunks,
	       (double)((const struct crac_img_header *)nbuf)->stored / 1048576.0, ch->n,
	       ch->n == 1 ? "" : "s");
	if (level)
		printf("%s: zstd level %d: %u of %u chunks compressed, %.1f MiB of memory in %.1f MiB of the "
		       "pages file\n", outdir, level, f.n_z, f.n_chunks, (double)f.z_mem / 1048576.0,
		       (double)f.z_out / 1048576.0);
	rc = 0;
out:
	cli_watch_idle();
	if (f.out_fd >= 0)
		close(f.out_fd);
	if (dfd >= 0)
		close(dfd);
	if (tmp[0])
		crac_img_remove(tmp);
	crac_img_chain_close(ch);
	crac_img_close(&o);
	free(nbuf);
	free(f.chunks);
	free(f.buf);
	free(f.cmem);
	free(f.zout);
	crac_img_reader_free(&f.rd);
	free(hbuf);
	free(abuf);
	free(ch);
	return rc;
}
