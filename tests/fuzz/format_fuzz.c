/* SPDX-License-Identifier: MIT */
/*
 * format_fuzz.c - src/image/format.c with its CRAC_IMG_NOSAN helpers
 * (message building, crc32c) sanitizer-instrumented too.
 *
 * In libcrac they stay uninstrumented because the lazy loader thread calls
 * them before shadow memory may exist; the fuzzer has no such thread, and
 * an overread in crac_img_put_escaped or crac_img_puts is exactly what it
 * should see. image.h is included first (its include guard then keeps
 * format.c's own #include from redefining the macro).
 */
#include "image/image.h"

#undef CRAC_IMG_NOSAN
#define CRAC_IMG_NOSAN

#include "image/format.c"
