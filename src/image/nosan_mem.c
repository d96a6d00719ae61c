/* SPDX-License-Identifier: MIT */
/*
 * nosan_mem.c - memcpy, memmove and memset for libzstd in sanitizer builds.
 *
 * libzstd (the system's libzstd.a, not instrumented) calls memcpy, memmove
 * and memset. In a build with AddressSanitizer those names are ASan's
 * interceptors, which check the shadow of every byte they are given, and
 * libzstd is given memory that is not the engine's own:
 *   - the checkpoint compresses the program's pages straight from where
 *     they are (image_write.c), redzones of ASan's heap included: the
 *     interceptor reports them as a heap-buffer-overflow and aborts the
 *     checkpoint;
 *   - the lazy loader thread of a restored process (image_lazy.c)
 *     decompresses into its own buffers, whose shadow lies in the restored
 *     program's ASan shadow, a large mapping the same thread loads on
 *     demand: the interceptor's first look at a shadow page not loaded yet
 *     waits for the thread itself, for ever (the restored program hangs).
 * So a sanitizer build links a copy of libzstd.a whose references to those
 * three names are renamed to these (CMakeLists.txt: objcopy
 * --redefine-sym), which touch nothing but the bytes they are given: not
 * instrumented, no libc call (string instructions). Without sanitizers
 * libzstd.a is linked as it is and these are unused.
 */
#include "core/internal.h"

#include <stddef.h>

#define NOSAN __attribute__((no_sanitize("address", "undefined"), used))

NOSAN CRAC_HIDDEN void *crac_nosan_memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dst;
}

NOSAN CRAC_HIDDEN void *crac_nosan_memmove(void *dst, const void *src, size_t n)
{
	if ((const char *)dst <= (const char *)src || (const char *)dst >= (const char *)src + n)
		return crac_nosan_memcpy(dst, src, n);   /* forward is safe */
	/* dst overlaps the end of src: backward, from the last byte */
	void *d = (char *)dst + n - 1;
	const void *s = (const char *)src + n - 1;
	__asm__ volatile("std\n\trep movsb\n\tcld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return dst;
}

NOSAN CRAC_HIDDEN void *crac_nosan_memset(void *dst, int c, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}
