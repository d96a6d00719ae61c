/* SPDX-License-Identifier: MIT */
/*
 * image_fds.c - the program's descriptors go into the image (src/objects
 * does the work, kind by kind; the restore loader recreates them).
 *
 * Runs while every other thread is stopped, after the page data is written
 * (content of pipes and memfds is appended to the pages file after it).
 * What the safety checks and policies decided for each descriptor comes
 * from the round (crac__checks_fd_decision): carried as it is, omitted, or
 * restored closed. The engine's own descriptors and crac's internal ones
 * (control endpoint) are never the program's.
 */
#include "engines/image_engine.h"
#include "image/dir.h"
#include "objects/objects.h"
#include "runtime/checks.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <string.h>

static int decide(void *arg, const struct crac_obj_fd *d)
{
	const struct crac_round *r = arg;

	return crac__checks_fd_decision(r, d->fd);
}

int img_capture_fds(struct img_capture *c, const struct crac_round *r)
{
	struct crac_obj_capture *o = &c->objs;
	enum { MAX = 65536, STRINGS = 4u << 20, BLOB = 4u << 20, SCRATCH = 1u << 20 };
	char line[1024];
	struct crac_img_buf why = { line, 0, sizeof(line) };

	/* The image's directory operations from here on (the commit's
	 * fsync, a removal) end at this checkpoint's deadline when the file
	 * system does not answer (image/dir.c). */
	crac_img_fs_deadline(r ? r->event.deadline_monotonic : 0);
	memset(o, 0, sizeof(*o));
	c->skip_fds[0] = c->dir_fd;
	c->skip_fds[1] = c->pages_fd;
	c->skip_fds[2] = c->pagemap_fd;
	int n = crac__internal_fds_snapshot(c->skip_fds + 3, IMG_MAX_SKIP_FDS - 3);
	if (n < 0)
		return img_fail(&c->err, n, "a thread was changing crac's own descriptor list when it was "
				"stopped; try the checkpoint again");
	o->skip = c->skip_fds;
	o->n_skip = 3 + n;
	o->pages_fd = c->pages_fd;
	o->pages_size = c->pages_size;
	o->max_fds = MAX;
	o->fds = img_arena_alloc(&c->arena, MAX * sizeof(*o->fds));
	o->paths = img_arena_alloc(&c->arena, MAX * sizeof(*o->paths));
	o->strings = img_arena_alloc(&c->arena, STRINGS);
	o->strings_cap = STRINGS;
	o->blob = img_arena_alloc(&c->arena, BLOB);
	o->blob_cap = BLOB;
	o->scratch = img_arena_alloc(&c->arena, SCRATCH);
	o->scratch_cap = SCRATCH;
	o->no_kcmp = crac__pretend_missing("kcmp");
	o->decide = decide;
	o->decide_arg = (void *)r;
	if (!o->fds || !o->paths || !o->strings || !o->blob || !o->scratch)
		return img_fail(&c->err, -ENOMEM, "engine arena exhausted (descriptor table)");
	line[0] = 0;
	int rc = crac_obj_capture_all(o, &why);
	if (rc < 0)
		return img_fail(&c->err, rc, "%s", line);
	c->pages_size = o->pages_size;
	return 0;
}

/* ---- into the header (img_capture_header) -------------------------------------- */

uint64_t img_fds_strings(const struct img_capture *c)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < c->objs.n_fds; i++)
		if (c->objs.paths[i])
			n += strlen(c->objs.paths[i]) + 1;
	return n;
}

uint64_t img_fds_layout(struct img_capture *c, uint64_t off)
{
	struct crac_img_header *h = &c->hdr;

	h->n_fds = c->objs.n_fds;
	h->fds_off = off;
	off += (uint64_t)c->objs.n_fds * sizeof(struct crac_img_fd);
	h->blobs_off = off;
	h->blobs_size = (c->objs.blob_used + 7) & ~7ull;
	return off + h->blobs_size;
}

void img_fds_fill(struct img_capture *c, char *buf, char *tab, uint64_t *used)
{
	const struct crac_img_header *h = &c->hdr;
	struct crac_img_fd *fds = (void *)(buf + h->fds_off);

	for (uint32_t i = 0; i < c->objs.n_fds; i++) {
		fds[i] = c->objs.fds[i];
		fds[i].path = c->objs.paths[i] ? img_strtab_add(tab, used, c->objs.paths[i]) : 0;
	}
	if (c->objs.blob_used)
		memcpy(buf + h->blobs_off, c->objs.blob, c->objs.blob_used);
}
