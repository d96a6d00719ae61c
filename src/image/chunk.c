/* SPDX-License-Identifier: MIT */
/*
 * chunk.c - reading one chunk of a pages file: the one place that knows how
 * a chunk is stored (as it is, or as one zstd frame: struct crac_img_chunk).
 *
 * Freestanding like format.c: raw system calls (loader/sys.h), no
 * allocation, no libc call, not sanitizer-instrumented. Three very
 * different callers use it: the static restore loader (its eager fill and
 * the chunks of the images below an incremental one), the lazy loader
 * thread inside the restored process (engines/image_lazy.c, which must not
 * touch libcrac's data), and libcrac's read-back of what a checkpoint
 * wrote. The zstd decompression context is the caller's memory, made by
 * crac_img_zstd_dctx (ZSTD_initStaticDCtx: libzstd then never allocates).
 */
#include "image/image.h"
#include "loader/sys.h"

#include <errno.h>

#if CRAC_HAVE_ZSTD
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#endif

bool crac_img_have_zstd(void)
{
	return CRAC_HAVE_ZSTD != 0;
}

uint64_t crac_img_zstd_dctx_size(void)
{
#if CRAC_HAVE_ZSTD
	return (ZSTD_estimateDCtxSize() + 63) & ~63ull;
#else
	return 0;
#endif
}

void *crac_img_zstd_dctx(void *mem, uint64_t size)
{
#if CRAC_HAVE_ZSTD
	if (!mem || size < ZSTD_estimateDCtxSize())
		return NULL;
	return ZSTD_initStaticDCtx(mem, (size_t)size);
#else
	(void)mem, (void)size;
	return NULL;
#endif
}

CRAC_IMG_NOSAN long crac_img_chunk_read(int fd, const struct crac_img_chunk *k, void *dst, void *zbuf, uint64_t zcap,
					void *dctx, const struct crac_img_crc *crc)
{
	uint64_t want = crac_img_chunk_stored(k), got = 0;
	char *into = k->zlen ? zbuf : dst;

	if (k->zlen) {
		if (!CRAC_HAVE_ZSTD || !dctx)
			return CRAC_CHUNK_NO_ZSTD;
		if (k->zlen > zcap)
			return CRAC_CHUNK_ZBUF;
	}
	while (got < want) {
		long n = sys_pread(fd, into + got, want - got, k->offset + got);
		if (n == -EINTR)
			continue;
		if (n < 0)
			return n;
		if (n == 0)
			return CRAC_CHUNK_SHORT;
		got += (uint64_t)n;
	}
#if CRAC_HAVE_ZSTD
	if (k->zlen) {
		/* One or more zstd frames (the writer may cut a chunk in two,
		 * compressed at once), which must fill dst exactly. Frame by
		 * frame, each one's magic checked first: libzstd would take a
		 * legacy frame, and decoding one allocates (malloc: never in
		 * the loader, nor in the lazy loader thread); nor do we make
		 * skippable frames. */
		const unsigned char *z = zbuf;
		uint64_t at = 0, out = 0;
		while (at < k->zlen) {
			if (k->zlen - at < 8)
				return CRAC_CHUNK_FRAME;
			uint32_t magic = (uint32_t)z[at] | (uint32_t)z[at + 1] << 8 | (uint32_t)z[at + 2] << 16 |
					 (uint32_t)z[at + 3] << 24;
			if (magic != ZSTD_MAGICNUMBER)
				return CRAC_CHUNK_FRAME;
			size_t fl = ZSTD_findFrameCompressedSize(z + at, k->zlen - at);
			if (ZSTD_isError(fl) || fl > k->zlen - at)
				return CRAC_CHUNK_FRAME;
			size_t r = ZSTD_decompressDCtx(dctx, (char *)dst + out, k->len - out, z + at, fl);
			if (ZSTD_isError(r) || r > k->len - out)
				return CRAC_CHUNK_FRAME;
			at += fl;
			out += r;
		}
		if (out != k->len)
			return CRAC_CHUNK_FRAME;
	}
#endif
	if (crac_img_crc32c_with(crc, 0, dst, k->len) != k->crc)
		return CRAC_CHUNK_CRC;
	return 0;
}

const char *crac_img_chunk_why(long rc)
{
	switch (rc) {
	case CRAC_CHUNK_CRC:
		return "page data checksum mismatch";
	case CRAC_CHUNK_SHORT:
		return "the pages file ends inside the chunk (truncated)";
	case CRAC_CHUNK_FRAME:
		return "the compressed chunk is not a zstd frame of its size (damaged)";
	case CRAC_CHUNK_NO_ZSTD:
		return "the chunk is compressed (zstd) and this build of crac has no zstd";
	case CRAC_CHUNK_ZBUF:
		return "the compressed chunk is larger than the reader's buffer";
	}
	return "cannot read the chunk";
}
