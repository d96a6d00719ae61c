/* SPDX-License-Identifier: MIT */
/*
 * compress.c - writing compressed chunks (struct crac_img_chunk.zlen): the
 * zstd side that the image engine's --compress (engines/image_write.c)
 * and `crac flatten --compress` (cli/cmd_flatten.c) share. Reading is
 * image/chunk.c's. libcrac only: the loader never compresses.
 *
 * No allocation (the contexts are the caller's memory) and no libc call:
 * the engine calls it while the program's threads are stopped.
 */
#include "image/image.h"

#if CRAC_HAVE_ZSTD
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#endif

#define P CRAC_IMG_PAGE

uint64_t crac_img_zstd_cctx_size(int level)
{
#if CRAC_HAVE_ZSTD
	/* sized for chunks: at most CRAC_IMG_CHUNK_MAX bytes at once */
	ZSTD_compressionParameters cp = ZSTD_getCParams(level, CRAC_IMG_CHUNK_MAX, 0);
	return ZSTD_estimateCCtxSize_usingCParams(cp) + 64;
#else
	(void)level;
	return 0;
#endif
}

void *crac_img_zstd_cctx(void *mem, uint64_t size, int level)
{
#if CRAC_HAVE_ZSTD
	uint64_t need = crac_img_zstd_cctx_size(level);
	if (!mem || size < need)
		return NULL;
	return ZSTD_initStaticCCtx((void *)(((uintptr_t)mem + 63) & ~(uintptr_t)63), (size_t)(need - 64));
#else
	(void)mem, (void)size, (void)level;
	return NULL;
#endif
}

uint64_t crac_img_zstd_bound(uint64_t len)
{
#if CRAC_HAVE_ZSTD
	return (ZSTD_COMPRESSBOUND(len) + 2 * P - 1) & ~(P - 1);   /* room for two frames */
#else
	return (len + 2 * P - 1) & ~(P - 1);
#endif
}

uint64_t crac_img_zstd_frame(void *cctx, int level, void *out, uint64_t cap, const void *src, uint64_t len)
{
#if CRAC_HAVE_ZSTD
	size_t n = ZSTD_compressCCtx(cctx, out, (size_t)cap, src, (size_t)len, level);
	return ZSTD_isError(n) ? 0 : (uint64_t)n;
#else
	(void)cctx, (void)level, (void)out, (void)cap, (void)src, (void)len;
	return 0;
#endif
}

uint64_t crac_img_chunk_pack(struct crac_img_chunk *k, void *frames, uint64_t n)
{
	uint64_t padded = (n + P - 1) & ~(P - 1);
	char *out = frames;

	if (!n || padded >= k->len)
		return 0;   /* not a page saved: stored as it is */
	for (uint64_t i = n; i < padded; i++)
		out[i] = 0;
	k->zlen = (uint32_t)n;
	return padded;
}
