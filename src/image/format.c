/* SPDX-License-Identifier: MIT */
/*
 * format.c - the image format: checksums, CPU features, header validation.
 *
 * Freestanding on purpose (see image.h): the static restore loader compiles
 * this file too and links no libc. The only library calls are memcpy,
 * memset, memcmp and strlen, which the loader provides.
 *
 * The reader trusts nothing: every count, offset and address is checked
 * before use, so a corrupt or truncated header gives a one-line reason and
 * never a crash.
 */
#include "image/image.h"

#include <sys/mman.h>

#include <cpuid.h>
#include <immintrin.h>
#include <errno.h>
#include <string.h>

_Static_assert(sizeof(struct crac_img_map) == 64, "map layout");
_Static_assert(sizeof(struct crac_img_file) == 56, "file layout");
_Static_assert(sizeof(struct crac_img_chunk) == 32, "chunk layout");
_Static_assert(sizeof(struct crac_img_thread) == 88, "thread layout");
_Static_assert(sizeof(struct crac_img_fd) == 128, "fd layout");
_Static_assert(sizeof(struct crac_img_ref) == 32, "ref layout");
_Static_assert(sizeof(struct crac_img_signal) == 144, "signal layout");
_Static_assert(CRAC_IMG_HEADER_V5_SIZE % 8 == 0, "version 5 header alignment");
_Static_assert(sizeof(struct crac_img_ctx) == 80, "ctx layout");
_Static_assert(offsetof(struct crac_img_ctx, rsp) == 48, "ctx rsp");
_Static_assert(offsetof(struct crac_img_ctx, rip) == 56, "ctx rip");
_Static_assert(offsetof(struct crac_img_ctx, mxcsr) == 64, "ctx mxcsr");
_Static_assert(offsetof(struct crac_img_ctx, fcw) == 68, "ctx fcw");
_Static_assert(offsetof(struct crac_img_header, crc) == 12, "stable prefix");
_Static_assert(offsetof(struct crac_img_header, size) == 16, "stable prefix");
_Static_assert(sizeof(struct crac_img_header) % 8 == 0, "header alignment");

/* ------------------------------------------------------------------------
 * Bounded string building (messages, without printf)
 * --------------------------------------------------------------------- */

CRAC_IMG_NOSAN void crac_img_puts(struct crac_img_buf *b, const char *s)
{
	if (!b->cap)
		return;
	while (*s && b->len + 1 < b->cap)
		b->p[b->len++] = *s++;
	b->p[b->len] = 0;
}

CRAC_IMG_NOSAN void crac_img_putu(struct crac_img_buf *b, uint64_t v)
{
	char tmp[24];
	int i = (int)sizeof(tmp) - 1;

	tmp[i] = 0;
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	crac_img_puts(b, tmp + i);
}

CRAC_IMG_NOSAN void crac_img_putx(struct crac_img_buf *b, uint64_t v)
{
	char tmp[24];
	int i = (int)sizeof(tmp) - 1;

	tmp[i] = 0;
	do {
		tmp[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	tmp[--i] = 'x';
	tmp[--i] = '0';
	crac_img_puts(b, tmp + i);
}

/* Bytes byte c takes escaped: itself, or \xNN. */
static inline size_t esc_width(unsigned char c)
{
	return c >= 0x20 && c != 0x7f ? 1 : 4;
}

/* The first n bytes of s, escaped. */
CRAC_IMG_NOSAN static void put_escaped_n(struct crac_img_buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (esc_width(c) == 1) {
			char one[2] = { (char)c, 0 };
			crac_img_puts(b, one);
		} else {
			char esc[5] = { '\\', 'x', "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15], 0 };
			crac_img_puts(b, esc);
		}
	}
}

/*
 * s escaped, whole when it fits with keep bytes left for what follows;
 * else cut to at most half of what is left of the buffer: its first third
 * and last two thirds around "...", so that the end of a path (the file's
 * name) and the reason after it stay in the line. Never fewer than
 * CRAC_IMG_ESC_MIN bytes of s where the buffer has them.
 */
CRAC_IMG_NOSAN void crac_img_put_escaped_keep(struct crac_img_buf *b, const char *s, size_t keep)
{
	size_t len = strlen(s), need = 0;

	if (!b->cap)
		return;
	for (size_t i = 0; i < len; i++)
		need += esc_width((unsigned char)s[i]);
	size_t free = b->len + 1 < b->cap ? b->cap - 1 - b->len : 0;
	size_t room = free > keep ? free - keep : 0;
	/* cut: at most half of the buffer left, so that a caller that puts
	 * this message into a longer line (the loader's "crac: restore DIR: ")
	 * has room for it too */
	if (need > room && room > free / 2)
		room = free / 2;
	if (room < CRAC_IMG_ESC_MIN)
		room = free < CRAC_IMG_ESC_MIN ? free : CRAC_IMG_ESC_MIN;
	if (need <= room) {
		put_escaped_n(b, s, len);
		return;
	}
	if (room < 3) {
		crac_img_puts(b, "...");
		return;
	}
	size_t head_room = (room - 3) / 3, tail_room = room - 3 - head_room, h = 0, t = len, w = 0;
	while (h < len && w + esc_width((unsigned char)s[h]) <= head_room)
		w += esc_width((unsigned char)s[h++]);
	w = 0;
	while (t > h && w + esc_width((unsigned char)s[t - 1]) <= tail_room)
		w += esc_width((unsigned char)s[--t]);
	put_escaped_n(b, s, h);
	crac_img_puts(b, "...");
	put_escaped_n(b, s + t, len - t);
}

CRAC_IMG_NOSAN void crac_img_put_escaped(struct crac_img_buf *b, const char *s)
{
	crac_img_put_escaped_keep(b, s, CRAC_IMG_ESC_KEEP);
}

/* ------------------------------------------------------------------------
 * crc32c
 * --------------------------------------------------------------------- */

static struct crac_img_crc crc_state;
static int crc_state_ready;

/*
 * The table and whether the CPU has SSE 4.2's crc32: once a process, then
 * copied (every chunk reader and the lazy thread prepare their own). cpuid
 * traps to the hypervisor on a VM (6-100 us a leaf here); leaf 1 exists on
 * every x86-64 CPU, so it is asked alone, not after leaf 0 as
 * __get_cpuid would. Leaf 7 (AVX-512, VPCLMULQDQ: crc_wide) only where
 * leaf 1 says the OS saves the vector registers (6-17 us more here; the
 * loader checks megabytes, each ~25 us faster).
 */
static uint64_t xgetbv0(void);

CRAC_IMG_NOSAN void crac_img_crc32c_prepare(struct crac_img_crc *k)
{
	unsigned a, b, c, d;

	if (__atomic_load_n(&crc_state_ready, __ATOMIC_ACQUIRE)) {
		*k = crc_state;
		return;
	}
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t x = i;
		for (int n = 0; n < 8; n++)
			x = (x >> 1) ^ (0x82F63B78u & (0u - (x & 1)));
		k->table[i] = x;
	}
	__cpuid(1, a, b, c, d);
	uint32_t ecx1 = c, ebx7 = 0, ecx7 = 0;
	uint64_t xcr0 = 0;
	/* leaf 7 only where it can matter (see above) */
	if ((c & bit_SSE4_2) && (c & bit_OSXSAVE) && (c & bit_PCLMUL) && ((xcr0 = xgetbv0()) & 0xe6) == 0xe6) {
		__cpuid_count(7, 0, a, b, c, d);
		ebx7 = b, ecx7 = c;
	}
	crac_img_crc32c_pick(k, ecx1, xcr0, ebx7, ecx7);
}

void crac_img_crc32c_pick(struct crac_img_crc *k, uint32_t ecx1, uint64_t xcr0, uint32_t ebx7, uint32_t ecx7)
{
	k->hw = (ecx1 & bit_SSE4_2) != 0;
	/* AVX-512 with VPCLMULQDQ, and the OS saving the zmm registers (XCR0:
	 * SSE, AVX, opmask, the upper halves of zmm0-15, zmm16-31) */
	k->wide = k->hw && (ecx1 & bit_OSXSAVE) && (ecx1 & bit_PCLMUL) && (xcr0 & 0xe6) == 0xe6 &&
		  (ebx7 & bit_AVX512F) && (ecx7 & bit_VPCLMULQDQ);
}

CRAC_IMG_NOSAN __attribute__((target("sse4.2")))
static uint32_t crc_sse42(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	while (len >= 32) {
		uint64_t w0, w1, w2, w3;
		memcpy(&w0, p, 8);
		memcpy(&w1, p + 8, 8);
		memcpy(&w2, p + 16, 8);
		memcpy(&w3, p + 24, 8);
		c = __builtin_ia32_crc32di(c, w0);
		c = __builtin_ia32_crc32di(c, w1);
		c = __builtin_ia32_crc32di(c, w2);
		c = __builtin_ia32_crc32di(c, w3);
		p += 32;
		len -= 32;
	}
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}

/*
 * One crc32 instruction takes 3 cycles before the next may use its result,
 * and the CPU can start one a cycle: one running crc goes at a third of
 * the speed the CPU has. Large buffers are done as three parts at once
 * (independent crcs, the 2nd and 3rd started from 0), then joined: the
 * crc register is linear, so the register after part A then part B is
 * the register after A, moved on by |B| zero bytes, xor B's own. Moving a
 * register on by n zero bytes multiplies it by x^(8n) modulo the crc32c
 * polynomial.
 */
#define CRC_3WAY_MIN 4096   /* below this, one running crc */

/* a * b modulo the crc32c polynomial, bit-reflected (bit 31 is x^0) */
static uint32_t crc_mul(uint32_t a, uint32_t b)
{
	uint32_t p = 0;

	for (int i = 0; i < 32; i++) {
		if (a & (0x80000000u >> i))   /* a has x^i: add b * x^i */
			p ^= b;
		b = (b >> 1) ^ (0x82F63B78u & (0u - (b & 1)));   /* b *= x */
	}
	return p;
}

/* x^(8n) modulo the polynomial: n zero bytes */
static uint32_t crc_zeros(uint64_t n)
{
	uint32_t r = 0x80000000u, sq = 0x00800000u;   /* x^0, x^8 */

	for (; n; n >>= 1) {
		if (n & 1)
			r = crc_mul(r, sq);
		sq = crc_mul(sq, sq);
	}
	return r;
}

CRAC_IMG_NOSAN __attribute__((target("sse4.2")))
static uint32_t crc_sse42_3way(uint32_t crc, const unsigned char *p, size_t len)
{
	size_t head = (8 - ((uintptr_t)p & 7)) & 7;

	crc = crc_sse42(crc, p, head);
	p += head;
	len -= head;
	size_t n = len / 24 * 8;   /* each part: whole 8-byte words */
	const unsigned char *q = p + n, *r = p + 2 * n;
	uint64_t a = crc, b = 0, c = 0;
	for (size_t i = 0; i < n; i += 8) {
		uint64_t wa, wb, wc;
		memcpy(&wa, p + i, 8);
		memcpy(&wb, q + i, 8);
		memcpy(&wc, r + i, 8);
		a = __builtin_ia32_crc32di(a, wa);
		b = __builtin_ia32_crc32di(b, wb);
		c = __builtin_ia32_crc32di(c, wc);
	}
	uint32_t z = crc_zeros(n);
	crc = crc_mul(z, crc_mul(z, (uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)c;
	return crc_sse42(crc, p + 3 * n, len - 3 * n);
}

/*
 * Large buffers, where the CPU has AVX-512's carry-less multiply
 * (VPCLMULQDQ): folding. The crc register is linear, and a 16-byte piece
 * X of the data followed by D bytes contributes to the crc what X * x^(8D)
 * modulo the polynomial does, placed at the piece D bytes on: two
 * carry-less multiplications of X's halves by constants, xor'ed into that
 * piece, "fold" X forward. Sixteen pieces (four zmm registers of four) are
 * folded 256 bytes forward at a time, 64 bytes an instruction, then into
 * one another down to the last 16 bytes, which crc32 finishes with the
 * rest. crc32 alone goes 8 bytes a cycle at best (crc_sse42_3way): 1 MiB
 * chunks checked from the cache, 1 GiB took 38-56 ms here, this 19-26 ms
 * (the lazy loader checks every chunk before it copies it in).
 * The running crc enters xor'ed into the first 4 bytes (crc32 of a word
 * from register r equals crc32 of the word xor r from 0).
 * The constants (bit-reflected, bit 31 is x^0, as crc_mul's): for
 * folding D bytes forward, x^(8D+31) for the low half and x^(8D-33) for
 * the high half (crc_mul's arithmetic gives them; a wrong one gives wrong
 * crcs, which test_image_format compares with the table's on a CPU that
 * has VPCLMULQDQ):
 */
#define CRC_WIDE_MIN 1024
#define CRC_K256_LO 0xdcb17aa4u   /* x^(8*256+31) */
#define CRC_K256_HI 0xb9e02b86u   /* x^(8*256-33) */
#define CRC_K64_LO 0x740eef02u    /* x^(8*64+31) */
#define CRC_K64_HI 0x9e4addf8u    /* x^(8*64-33) */
#define CRC_K16_LO 0xf20c0dfeu    /* x^(8*16+31) */
#define CRC_K16_HI 0x493c7d27u    /* x^(8*16-33) */

CRAC_IMG_NOSAN __attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2")))
static __m512i crc_fold512(__m512i x, __m512i k)
{
	return _mm512_xor_si512(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11));
}

CRAC_IMG_NOSAN __attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2")))
static __m128i crc_fold128(__m128i x, __m128i k)
{
	return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}

CRAC_IMG_NOSAN __attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2")))
static uint32_t crc_wide(uint32_t crc, const unsigned char *p, size_t len)
{
	const __m512i k256 = _mm512_broadcast_i32x4(_mm_set_epi64x(CRC_K256_HI, CRC_K256_LO));
	const __m512i k64 = _mm512_broadcast_i32x4(_mm_set_epi64x(CRC_K64_HI, CRC_K64_LO));
	const __m128i k16 = _mm_set_epi64x(CRC_K16_HI, CRC_K16_LO);
	__m512i z0 = _mm512_loadu_si512(p), z1 = _mm512_loadu_si512(p + 64);
	__m512i z2 = _mm512_loadu_si512(p + 128), z3 = _mm512_loadu_si512(p + 192);

	z0 = _mm512_xor_si512(z0, _mm512_castsi128_si512(_mm_cvtsi32_si128((int)crc)));
	p += 256;
	len -= 256;
	while (len >= 256) {
		z0 = _mm512_xor_si512(crc_fold512(z0, k256), _mm512_loadu_si512(p));
		z1 = _mm512_xor_si512(crc_fold512(z1, k256), _mm512_loadu_si512(p + 64));
		z2 = _mm512_xor_si512(crc_fold512(z2, k256), _mm512_loadu_si512(p + 128));
		z3 = _mm512_xor_si512(crc_fold512(z3, k256), _mm512_loadu_si512(p + 192));
		p += 256;
		len -= 256;
	}
	/* four registers into the last: 64 bytes forward each */
	z1 = _mm512_xor_si512(crc_fold512(z0, k64), z1);
	z2 = _mm512_xor_si512(crc_fold512(z1, k64), z2);
	z3 = _mm512_xor_si512(crc_fold512(z2, k64), z3);
	/* its four pieces into the last: 16 bytes forward each */
	__m128i x = _mm512_extracti32x4_epi32(z3, 0);
	x = _mm_xor_si128(crc_fold128(x, k16), _mm512_extracti32x4_epi32(z3, 1));
	x = _mm_xor_si128(crc_fold128(x, k16), _mm512_extracti32x4_epi32(z3, 2));
	x = _mm_xor_si128(crc_fold128(x, k16), _mm512_extracti32x4_epi32(z3, 3));
	uint64_t c = __builtin_ia32_crc32di(0, (uint64_t)_mm_cvtsi128_si64(x));
	c = __builtin_ia32_crc32di(c, (uint64_t)_mm_extract_epi64(x, 1));
	return crc_sse42((uint32_t)c, p, len);
}

CRAC_IMG_NOSAN uint32_t crac_img_crc32c_with(const struct crac_img_crc *k, uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	crc = ~crc;
	if (k->hw && k->wide && len >= CRC_WIDE_MIN) {
		crc = crc_wide(crc, p, len);
	} else if (k->hw && len >= CRC_3WAY_MIN) {
		crc = crc_sse42_3way(crc, p, len);
	} else if (k->hw) {
		crc = crc_sse42(crc, p, len);
	} else {
		while (len--)
			crc = k->table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	}
	return ~crc;
}

uint32_t crac_img_crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (!__atomic_load_n(&crc_state_ready, __ATOMIC_ACQUIRE)) {
		/* Two threads may both fill it: same values, so the race is benign. */
		struct crac_img_crc k;
		crac_img_crc32c_prepare(&k);
		crc_state = k;
		__atomic_store_n(&crc_state_ready, 1, __ATOMIC_RELEASE);
	}
	return crac_img_crc32c_with(&crc_state, crc, buf, len);
}

uint32_t crac_img_header_crc(const void *buf, uint64_t len)
{
	const size_t at = offsetof(struct crac_img_header, crc);
	static const unsigned char zero[4];
	uint32_t c;

	if (len < at + 4)
		return crac_img_crc32c(0, buf, (size_t)len);
	c = crac_img_crc32c(0, buf, at);
	c = crac_img_crc32c(c, zero, 4);
	return crac_img_crc32c(c, (const char *)buf + at + 4, (size_t)(len - at - 4));
}

/* ------------------------------------------------------------------------
 * CPU features
 * --------------------------------------------------------------------- */

static uint64_t xgetbv0(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

void crac_img_cpu_probe(struct crac_img_cpu *c)
{
	unsigned a, b, cx, d, max;

	memset(c, 0, sizeof(*c));
	__cpuid(0, max, b, cx, d);
	memcpy(c->vendor, &b, 4);
	memcpy(c->vendor + 4, &d, 4);
	memcpy(c->vendor + 8, &cx, 4);
	__cpuid(1, a, b, cx, d);
	c->words[CRAC_CPU_1_ECX] = cx;
	c->words[CRAC_CPU_1_EDX] = d;
	if (max >= 7) {
		__cpuid_count(7, 0, a, b, cx, d);
		c->words[CRAC_CPU_7_0_EBX] = b;
		c->words[CRAC_CPU_7_0_ECX] = cx;
		c->words[CRAC_CPU_7_0_EDX] = d;
		if (a >= 1) {
			__cpuid_count(7, 1, a, b, cx, d);
			c->words[CRAC_CPU_7_1_EAX] = a;
		}
	}
	if (max >= 0xd) {
		__cpuid_count(0xd, 0, a, b, cx, d);
		c->xsave_size = b;
		__cpuid_count(0xd, 1, a, b, cx, d);
		c->words[CRAC_CPU_D_1_EAX] = a;
	}
	__cpuid(0x80000000, max, b, cx, d);
	if (max >= 0x80000001) {
		__cpuid(0x80000001, a, b, cx, d);
		c->words[CRAC_CPU_81_ECX] = cx;
		c->words[CRAC_CPU_81_EDX] = d;
	}
	if (c->words[CRAC_CPU_1_ECX] & (1u << 27))   /* OSXSAVE */
		c->xcr0 = xgetbv0();
}

/*
 * Bits of the feature words that describe the CPU model or state rather
 * than a feature (cpuid(7).edx bit 15 "hybrid", ...): never compared.
 * Everything else is a feature bit.
 */
static const uint32_t cpu_ignore[CRAC_CPU_WORDS] = {
	[CRAC_CPU_7_0_EDX] = 1u << 15,      /* hybrid part */
};

struct feature_name { uint8_t word, bit; const char *name; };

static const struct feature_name feature_names[] = {
	{ CRAC_CPU_1_ECX, 0, "sse3" }, { CRAC_CPU_1_ECX, 1, "pclmulqdq" },
	{ CRAC_CPU_1_ECX, 9, "ssse3" }, { CRAC_CPU_1_ECX, 12, "fma" },
	{ CRAC_CPU_1_ECX, 19, "sse4.1" }, { CRAC_CPU_1_ECX, 20, "sse4.2" },
	{ CRAC_CPU_1_ECX, 22, "movbe" }, { CRAC_CPU_1_ECX, 23, "popcnt" },
	{ CRAC_CPU_1_ECX, 25, "aes" }, { CRAC_CPU_1_ECX, 26, "xsave" },
	{ CRAC_CPU_1_ECX, 27, "osxsave" }, { CRAC_CPU_1_ECX, 28, "avx" },
	{ CRAC_CPU_1_ECX, 29, "f16c" }, { CRAC_CPU_1_ECX, 30, "rdrand" },
	{ CRAC_CPU_1_EDX, 25, "sse" }, { CRAC_CPU_1_EDX, 26, "sse2" },
	{ CRAC_CPU_7_0_EBX, 3, "bmi1" }, { CRAC_CPU_7_0_EBX, 5, "avx2" },
	{ CRAC_CPU_7_0_EBX, 8, "bmi2" }, { CRAC_CPU_7_0_EBX, 9, "erms" },
	{ CRAC_CPU_7_0_EBX, 16, "avx512f" }, { CRAC_CPU_7_0_EBX, 17, "avx512dq" },
	{ CRAC_CPU_7_0_EBX, 18, "rdseed" }, { CRAC_CPU_7_0_EBX, 19, "adx" },
	{ CRAC_CPU_7_0_EBX, 21, "avx512ifma" }, { CRAC_CPU_7_0_EBX, 28, "avx512cd" },
	{ CRAC_CPU_7_0_EBX, 29, "sha" }, { CRAC_CPU_7_0_EBX, 30, "avx512bw" },
	{ CRAC_CPU_7_0_EBX, 31, "avx512vl" },
	{ CRAC_CPU_7_0_ECX, 1, "avx512vbmi" }, { CRAC_CPU_7_0_ECX, 6, "avx512vbmi2" },
	{ CRAC_CPU_7_0_ECX, 8, "gfni" }, { CRAC_CPU_7_0_ECX, 9, "vaes" },
	{ CRAC_CPU_7_0_ECX, 10, "vpclmulqdq" }, { CRAC_CPU_7_0_ECX, 11, "avx512vnni" },
	{ CRAC_CPU_7_0_ECX, 12, "avx512bitalg" }, { CRAC_CPU_7_0_ECX, 14, "avx512vpopcntdq" },
	{ CRAC_CPU_7_0_EDX, 4, "fsrm" }, { CRAC_CPU_7_0_EDX, 22, "amx-bf16" },
	{ CRAC_CPU_7_0_EDX, 23, "avx512fp16" }, { CRAC_CPU_7_0_EDX, 24, "amx-tile" },
	{ CRAC_CPU_7_0_EDX, 25, "amx-int8" },
	{ CRAC_CPU_7_1_EAX, 4, "avx-vnni" }, { CRAC_CPU_7_1_EAX, 5, "avx512bf16" },
	{ CRAC_CPU_D_1_EAX, 0, "xsaveopt" }, { CRAC_CPU_D_1_EAX, 1, "xsavec" },
	{ CRAC_CPU_D_1_EAX, 3, "xsaves" },
	{ CRAC_CPU_81_ECX, 5, "lzcnt" }, { CRAC_CPU_81_EDX, 27, "rdtscp" },
};

static const char *const word_names[CRAC_CPU_WORDS] = {
	"cpuid 1.ecx", "cpuid 1.edx", "cpuid 7.ebx", "cpuid 7.ecx", "cpuid 7.edx",
	"cpuid 7.1.eax", "cpuid 0xd.1.eax", "cpuid 0x80000001.ecx", "cpuid 0x80000001.edx",
};

int crac_img_cpu_compare(const struct crac_img_cpu *want, const struct crac_img_cpu *have,
			 char *msg, size_t msglen)
{
	struct crac_img_buf b = { msg, 0, msglen };

	if (msglen)
		msg[0] = 0;
	for (int w = 0; w < CRAC_CPU_WORDS; w++) {
		uint32_t missing = want->words[w] & ~have->words[w] & ~cpu_ignore[w];
		if (!missing)
			continue;
		int bit = __builtin_ctz(missing);
		const char *name = NULL;
		for (size_t i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
			if (feature_names[i].word == w && feature_names[i].bit == bit)
				name = feature_names[i].name;
		crac_img_puts(&b, "this CPU lacks ");
		crac_img_puts(&b, name ? name : "a feature");
		crac_img_puts(&b, " (");
		crac_img_puts(&b, word_names[w]);
		crac_img_puts(&b, " bit ");
		crac_img_putu(&b, (uint64_t)bit);
		crac_img_puts(&b, ") that the checkpointed process could use");
		return -1;
	}
	if (want->xcr0 & ~have->xcr0) {
		crac_img_puts(&b, "the OS does not enable XSAVE state components ");
		crac_img_putx(&b, want->xcr0 & ~have->xcr0);
		crac_img_puts(&b, " (XCR0 ");
		crac_img_putx(&b, have->xcr0);
		crac_img_puts(&b, ", image ");
		crac_img_putx(&b, want->xcr0);
		crac_img_puts(&b, ")");
		return -1;
	}
	if (want->xsave_size != have->xsave_size) {
		crac_img_puts(&b, "XSAVE area size differs: ");
		crac_img_putu(&b, have->xsave_size);
		crac_img_puts(&b, " bytes here, ");
		crac_img_putu(&b, want->xsave_size);
		crac_img_puts(&b, " in the image");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Header validation
 * --------------------------------------------------------------------- */

CRAC_IMG_NOSAN const char *crac_img_kind_name(uint32_t kind)
{
	switch (kind) {
	case CRAC_MAP_ANON: return "anon";
	case CRAC_MAP_HEAP: return "heap";
	case CRAC_MAP_STACK: return "stack";
	case CRAC_MAP_FILE: return "file";
	case CRAC_MAP_SHMEM: return "shmem";
	case CRAC_MAP_VVAR: return "vvar";
	case CRAC_MAP_VVAR_VCLOCK: return "vvar_vclock";
	case CRAC_MAP_VDSO: return "vdso";
	}
	return "?";
}

const char *crac_img_str(const struct crac_img_view *v, uint32_t off)
{
	if (!off || off >= v->strtab_size)
		return "";
	return v->strtab + off;
}

/* Is the array [off, off + n * size) inside a file of `total` bytes? */
static int array_ok(uint64_t off, uint64_t n, uint64_t size, uint64_t total)
{
	if (off % 8 || off > total)
		return 0;
	return n <= (total - off) / size;
}

static int fail(struct crac_img_buf *b, int code, const char *what, uint64_t idx, int with_idx)
{
	crac_img_puts(b, what);
	if (with_idx) {
		crac_img_puts(b, " #");
		crac_img_putu(b, idx);
	}
	return code;
}

#define USER_TOP (1ull << 47)

/* "START-END" */
static void put_span(struct crac_img_buf *b, uint64_t s, uint64_t e)
{
	crac_img_putx(b, s);
	crac_img_puts(b, "-");
	crac_img_putx(b, e);
}

/* "header: WHAT #i START-END NAME: " for mapping i (its raw fields: the
 * string table is checked by now; a name past it is left out), then why. */
static int map_fail(struct crac_img_buf *b, const struct crac_img_view *v, uint32_t i, const char *what)
{
	const struct crac_img_map *m = &v->maps[i];

	crac_img_puts(b, what);
	crac_img_puts(b, " #");
	crac_img_putu(b, i);
	crac_img_puts(b, " ");
	put_span(b, m->start, m->end);
	if (m->name && m->name < v->h->strtab_size) {
		crac_img_puts(b, " ");
		crac_img_put_escaped(b, crac_img_str(v, m->name));
	}
	crac_img_puts(b, ": ");
	return -EBADMSG;
}

/* "WHATchunk #c (LEN bytes at ADDR, pages file offset OFF) of mapping #i
 * START-END NAME: " */
static int chunk_fail(struct crac_img_buf *b, const struct crac_img_view *v, uint32_t c, uint32_t i,
		      const char *what)
{
	const struct crac_img_chunk *k = &v->chunks[c];

	crac_img_puts(b, what);
	crac_img_put_chunk_head(b, c, k);
	crac_img_puts(b, ", pages file offset ");
	crac_img_putu(b, k->offset);
	crac_img_puts(b, ") of");
	return map_fail(b, v, i, " mapping");
}

/* The parent image record of h is inconsistent: which field, and why. */
static int parent_fail(struct crac_img_buf *b, const struct crac_img_header *h)
{
	crac_img_puts(b, "header: bad parent image record: ");
	if (h->depth > CRAC_IMG_MAX_CHAIN) {
		crac_img_puts(b, "depth ");
		crac_img_putu(b, h->depth);
		crac_img_puts(b, " (at most ");
		crac_img_putu(b, CRAC_IMG_MAX_CHAIN);
		crac_img_puts(b, " images below)");
	} else if (h->parent >= h->strtab_size) {
		crac_img_puts(b, "parent name at string table offset ");
		crac_img_putu(b, h->parent);
		crac_img_puts(b, ", past its end (");
		crac_img_putu(b, h->strtab_size);
		crac_img_puts(b, " bytes)");
	} else if (h->parent && !h->depth) {
		crac_img_puts(b, "a parent image named, depth 0 (a full image)");
	} else if (!h->parent && h->depth) {
		crac_img_puts(b, "depth ");
		crac_img_putu(b, h->depth);
		crac_img_puts(b, ", no parent image named");
	} else if (h->n_refs && !h->depth) {
		crac_img_putu(b, h->n_refs);
		crac_img_puts(b, " page references in a full image (depth 0)");
	} else {
		crac_img_puts(b, "unknown image flags ");
		crac_img_putx(b, h->img_flags & ~(CRAC_IMGF_TRACK | CRAC_IMGF_COMPRESSED));
	}
	return -EBADMSG;
}

/* Page reference #i of v breaks a rule (prev: where the one before it
 * ended): which field, and why. */
static int ref_fail(struct crac_img_buf *b, const struct crac_img_view *v, uint32_t i, uint64_t prev)
{
	const struct crac_img_header *h = v->h;
	const struct crac_img_ref *r = &v->refs[i];
	const struct crac_img_map *m = r->map < h->n_maps ? &v->maps[r->map] : NULL;
	const uint64_t P = CRAC_IMG_PAGE;

	fail(b, -EBADMSG, "header: bad page reference", i, 1);
	crac_img_puts(b, ": ");
	if (r->addr % P) {
		crac_img_puts(b, "address ");
		crac_img_putx(b, r->addr);
		crac_img_puts(b, " is not page aligned");
	} else if (r->len % P || !r->len) {
		crac_img_puts(b, "length ");
		crac_img_putx(b, r->len);
		crac_img_puts(b, " is not a whole number of pages");
	} else if (r->addr < prev) {
		crac_img_puts(b, "address ");
		crac_img_putx(b, r->addr);
		crac_img_puts(b, " lies before the end of the one before it (");
		crac_img_putx(b, prev);
		crac_img_puts(b, "): not sorted, or overlapping");
	} else if (r->depth == 0 || r->depth > h->depth) {
		crac_img_puts(b, "depth ");
		crac_img_putu(b, r->depth);
		crac_img_puts(b, " (the image has ");
		crac_img_putu(b, h->depth);
		crac_img_puts(b, h->depth == 1 ? " image below)" : " images below)");
	} else if (!m) {
		crac_img_puts(b, "mapping #");
		crac_img_putu(b, r->map);
		crac_img_puts(b, " (the image has ");
		crac_img_putu(b, h->n_maps);
		crac_img_puts(b, ")");
	} else if (!(m->flags & CRAC_MAPF_REFS) || (m->flags & CRAC_MAPF_SHARED) ||
		   (m->kind != CRAC_MAP_ANON && m->kind != CRAC_MAP_HEAP && m->kind != CRAC_MAP_STACK)) {
		crac_img_puts(b, "mapping #");
		crac_img_putu(b, r->map);
		crac_img_puts(b, " ");
		put_span(b, m->start, m->end);
		crac_img_puts(b, " (");
		crac_img_puts(b, crac_img_kind_name(m->kind));
		crac_img_puts(b, ") is not a private anonymous mapping marked as taking pages from the images below");
	} else {
		crac_img_putx(b, r->len);
		crac_img_puts(b, " bytes at ");
		crac_img_putx(b, r->addr);
		crac_img_puts(b, " are not inside its mapping #");
		crac_img_putu(b, r->map);
		crac_img_puts(b, " ");
		put_span(b, m->start, m->end);
	}
	return -EBADMSG;
}

int crac_img_parse(const void *buf, uint64_t len, struct crac_img_view *v,
		   char *msg, size_t msglen)
{
	const struct crac_img_header *h = buf;
	struct crac_img_buf b = { msg, 0, msglen };
	const uint64_t P = CRAC_IMG_PAGE;

	if (msglen)
		msg[0] = 0;
	memset(v, 0, sizeof(*v));
	if (len < 24) {
		crac_img_puts(&b, "header is truncated (");
		crac_img_putu(&b, len);
		crac_img_puts(&b, " bytes)");
		return -EBADMSG;
	}
	if (memcmp(h->magic, CRAC_IMG_MAGIC, 8))
		return fail(&b, -EPROTO, "not a crac image (bad magic in header)", 0, 0);
	if (h->version < CRAC_IMG_VERSION_MIN || h->version > CRAC_IMG_VERSION) {
		crac_img_puts(&b, "image format version ");
		crac_img_putu(&b, h->version);
		crac_img_puts(&b, " is not supported (this build reads version ");
		crac_img_putu(&b, CRAC_IMG_VERSION);
		crac_img_puts(&b, ")");
		return -EPROTO;
	}
	/* versions 4 and 5 end before the pending signals */
	const uint64_t hsize = h->version >= 6 ? sizeof(*h) : CRAC_IMG_HEADER_V5_SIZE;
	if (len < hsize || h->size != len) {
		crac_img_puts(&b, "header is truncated or damaged (");
		crac_img_putu(&b, len);
		crac_img_puts(&b, " bytes, header says ");
		crac_img_putu(&b, h->size);
		crac_img_puts(&b, ")");
		return -EBADMSG;
	}
	uint32_t crc = crac_img_header_crc(buf, len);
	if (crc != h->crc) {
		crac_img_puts(&b, "header checksum mismatch (crc32c ");
		crac_img_putx(&b, crc);
		crac_img_puts(&b, ", recorded ");
		crac_img_putx(&b, h->crc);
		crac_img_puts(&b, ")");
		return -EBADMSG;
	}

	/* Arrays and the string table. */
	if (h->n_maps > CRAC_IMG_MAX_MAPS || !array_ok(h->maps_off, h->n_maps, sizeof(struct crac_img_map), len))
		return fail(&b, -EBADMSG, "header: bad mapping table", 0, 0);
	if (h->n_files > CRAC_IMG_MAX_FILES || !array_ok(h->files_off, h->n_files, sizeof(struct crac_img_file), len))
		return fail(&b, -EBADMSG, "header: bad file table", 0, 0);
	if (h->n_chunks > CRAC_IMG_MAX_CHUNKS || !array_ok(h->chunks_off, h->n_chunks, sizeof(struct crac_img_chunk), len))
		return fail(&b, -EBADMSG, "header: bad chunk table", 0, 0);
	if (h->n_threads > CRAC_IMG_MAX_THREADS || !array_ok(h->threads_off, h->n_threads, sizeof(struct crac_img_thread), len))
		return fail(&b, -EBADMSG, "header: bad thread table", 0, 0);
	if (h->n_secrets > CRAC_IMG_MAX_SECRETS ||
	    (h->n_secrets && !array_ok(h->secrets_off, h->n_secrets, sizeof(struct crac_img_range), len)))
		return fail(&b, -EBADMSG, "header: bad secret region table", 0, 0);
	if (h->n_fds > CRAC_IMG_MAX_FDS ||
	    (h->n_fds && !array_ok(h->fds_off, h->n_fds, sizeof(struct crac_img_fd), len)))
		return fail(&b, -EBADMSG, "header: bad descriptor table", 0, 0);
	if (h->blobs_off > len || h->blobs_size > len - h->blobs_off)
		return fail(&b, -EBADMSG, "header: bad descriptor data area", 0, 0);
	if (!h->strtab_size || h->strtab_off > len || h->strtab_size > len - h->strtab_off)
		return fail(&b, -EBADMSG, "header: bad string table", 0, 0);
	if (h->n_refs > CRAC_IMG_MAX_REFS ||
	    (h->n_refs && !array_ok(h->refs_off, h->n_refs, sizeof(struct crac_img_ref), len)))
		return fail(&b, -EBADMSG, "header: bad reference table", 0, 0);
	if (h->version >= 6 &&
	    (h->n_signals > CRAC_IMG_MAX_SIGNALS ||
	     (h->n_signals && !array_ok(h->signals_off, h->n_signals, sizeof(struct crac_img_signal), len))))
		return fail(&b, -EBADMSG, "header: bad pending signal table", 0, 0);
	if (h->depth > CRAC_IMG_MAX_CHAIN || (h->parent != 0) != (h->depth != 0) || h->parent >= h->strtab_size ||
	    (h->n_refs && !h->depth) || (h->img_flags & ~(CRAC_IMGF_TRACK | CRAC_IMGF_COMPRESSED)))
		return parent_fail(&b, h);
	/* Compressed chunks came with version 5, and only with the flag. */
	bool compressed = (h->img_flags & CRAC_IMGF_COMPRESSED) != 0;
	if (compressed && h->version < 5)
		return fail(&b, -EBADMSG, "header: compressed chunks in a version 4 image", 0, 0);

	v->h = h;
	v->maps = (const void *)((const char *)buf + h->maps_off);
	v->files = (const void *)((const char *)buf + h->files_off);
	v->chunks = (const void *)((const char *)buf + h->chunks_off);
	v->threads = (const void *)((const char *)buf + h->threads_off);
	v->secrets = h->n_secrets ? (const void *)((const char *)buf + h->secrets_off) : NULL;
	v->fds = h->n_fds ? (const void *)((const char *)buf + h->fds_off) : NULL;
	v->refs = h->n_refs ? (const void *)((const char *)buf + h->refs_off) : NULL;
	if (h->version >= 6 && h->n_signals) {
		v->signals = (const void *)((const char *)buf + h->signals_off);
		v->n_signals = h->n_signals;
	}
	v->blobs = (const unsigned char *)buf + h->blobs_off;
	v->strtab = (const char *)buf + h->strtab_off;
	v->strtab_size = h->strtab_size;
	if (v->strtab[v->strtab_size - 1] != 0)
		return fail(&b, -EBADMSG, "header: string table not terminated", 0, 0);

	if (h->kernel[sizeof(h->kernel) - 1] || h->machine[sizeof(h->machine) - 1] ||
	    h->cpu.vendor[sizeof(h->cpu.vendor) - 1])
		return fail(&b, -EBADMSG, "header: unterminated kernel, machine or CPU vendor name", 0, 0);
	if (h->cwd >= h->strtab_size)
		return fail(&b, -EBADMSG, "header: bad cwd", 0, 0);
	if (h->mm.auxv_size > sizeof(h->mm.auxv) || h->mm.auxv_size % 16)
		return fail(&b, -EBADMSG, "header: bad auxv", 0, 0);
	if (h->vvar_size > (1u << 24) || h->vvar_vclock_size > (1u << 24) || h->vdso_size > (1u << 24) ||
	    h->vdso_block % P || h->vvar_size % P || h->vvar_vclock_size % P || h->vdso_size % P ||
	    h->vdso_block >= USER_TOP || h->vvar_size + h->vvar_vclock_size + h->vdso_size > (1u << 24))
		return fail(&b, -EBADMSG, "header: bad vdso layout", 0, 0);

	for (uint32_t i = 0; i < h->n_files; i++) {
		const struct crac_img_file *f = &v->files[i];
		if (!f->path || f->path >= h->strtab_size)
			return fail(&b, -EBADMSG, "header: bad path of file", i, 1);
	}

	uint64_t prev_end = 0, stored = 0;
	uint32_t next_chunk = 0;
	uint64_t coff = 0;   /* end of the previous chunk's page data */
	for (uint32_t i = 0; i < h->n_maps; i++) {
		const struct crac_img_map *m = &v->maps[i];
		if (m->start % P || m->end % P || m->start >= m->end || m->end > USER_TOP ||
		    m->start < prev_end) {
			map_fail(&b, v, i, "header: bad address range of mapping");
			if (m->start % P || m->end % P)
				crac_img_puts(&b, "not page aligned");
			else if (m->start >= m->end)
				crac_img_puts(&b, "empty or reversed");
			else if (m->end > USER_TOP)
				crac_img_puts(&b, "past the user address space");
			else {
				crac_img_puts(&b, "starts below the end of the mapping before it, ");
				crac_img_putx(&b, prev_end);
			}
			return -EBADMSG;
		}
		prev_end = m->end;
		if (m->kind < CRAC_MAP_ANON || m->kind > CRAC_MAP_VDSO || m->prot & ~7u) {
			map_fail(&b, v, i, "header: bad kind or protection of mapping");
			crac_img_puts(&b, m->prot & ~7u ? "protection (field prot) " : "kind (field kind) ");
			crac_img_putx(&b, m->prot & ~7u ? m->prot : m->kind);
			return -EBADMSG;
		}
		if (m->kind == CRAC_MAP_FILE && m->file >= h->n_files) {
			map_fail(&b, v, i, "header: bad file of mapping");
			crac_img_puts(&b, "file index (field file) ");
			crac_img_putu(&b, m->file);
			crac_img_puts(&b, ", the image has ");
			crac_img_putu(&b, h->n_files);
			crac_img_puts(&b, h->n_files == 1 ? " file" : " files");
			return -EBADMSG;
		}
		if (m->kind == CRAC_MAP_FILE && m->offset % P) {
			/* (its file's path was checked above) */
			crac_img_puts(&b, "header: mapping #");
			crac_img_putu(&b, i);
			crac_img_puts(&b, " ");
			crac_img_putx(&b, m->start);
			crac_img_puts(&b, "-");
			crac_img_putx(&b, m->end);
			crac_img_puts(&b, " of file ");
			crac_img_put_escaped(&b, crac_img_str(v, v->files[m->file].path));
			crac_img_puts(&b, ": file offset (field offset) ");
			crac_img_putx(&b, m->offset);
			crac_img_puts(&b, " is not page aligned");
			return -EBADMSG;
		}
		if (m->name >= h->strtab_size) {
			map_fail(&b, v, i, "header: bad name of mapping");
			crac_img_puts(&b, "its name (field name) at ");
			crac_img_putu(&b, m->name);
			crac_img_puts(&b, " is past the string table (");
			crac_img_putu(&b, h->strtab_size);
			crac_img_puts(&b, " bytes)");
			return -EBADMSG;
		}
		if (m->first_chunk != next_chunk || m->n_chunks > h->n_chunks - next_chunk) {
			map_fail(&b, v, i, "header: bad chunk range of mapping");
			if (m->first_chunk != next_chunk) {
				crac_img_puts(&b, "its first chunk (field first_chunk) is #");
				crac_img_putu(&b, m->first_chunk);
				crac_img_puts(&b, ", the mappings before it end at #");
				crac_img_putu(&b, next_chunk);
			} else {
				crac_img_puts(&b, "its chunk count (field n_chunks) ");
				crac_img_putu(&b, m->n_chunks);
				crac_img_puts(&b, " is more than the ");
				crac_img_putu(&b, h->n_chunks - next_chunk);
				crac_img_puts(&b, " chunks left");
			}
			return -EBADMSG;
		}
		uint64_t mstored = 0, caddr = m->start;
		for (uint32_t c = m->first_chunk; c < m->first_chunk + m->n_chunks; c++) {
			const struct crac_img_chunk *k = &v->chunks[c];
			uint64_t kst = crac_img_chunk_stored(k);
			const char *why = NULL;
			if (k->map != i)
				why = "its mapping (field map) is another one";
			else if (k->addr % P || k->len % P || k->offset % P)
				why = "not page aligned";
			else if (!k->len || k->len > CRAC_IMG_CHUNK_MAX)
				why = "empty, or longer than a chunk may be";
			else if (k->addr < m->start || k->addr >= m->end || k->len > m->end - k->addr)
				why = "not inside its mapping";
			else if (k->addr < caddr)
				why = "below the end of the chunk before it (chunks overlap or are out of order)";
			else if (k->offset > h->pages_size || kst > h->pages_size - k->offset)
				why = "past the end of the pages file";
			else if (k->offset < coff)   /* page data never overlaps (the lazy loader counts pages) */
				why = "its page data overlaps the chunk before it's";
			if (why) {
				chunk_fail(&b, v, c, i, "header: bad page ");
				crac_img_puts(&b, why);
				return -EBADMSG;
			}
			/* a frame: smaller than the data (else it is stored as
			 * is), at least a frame header, in a compressed image */
			if (k->zlen && (!compressed || k->zlen >= k->len || k->zlen < 8)) {
				chunk_fail(&b, v, c, i, "header: bad compressed size of page ");
				crac_img_puts(&b, "compressed size (field zlen) ");
				crac_img_putu(&b, k->zlen);
				crac_img_puts(&b, !compressed ? " in an image that is not compressed"
							      : " is not a frame smaller than the data");
				return -EBADMSG;
			}
			caddr = k->addr + k->len;
			coff = k->offset + kst;
			mstored += k->len;
		}
		if (mstored != m->stored) {
			map_fail(&b, v, i, "header: stored size mismatch in mapping");
			crac_img_puts(&b, "its chunks hold ");
			crac_img_putu(&b, mstored);
			crac_img_puts(&b, " bytes, its record (field stored) says ");
			crac_img_putu(&b, m->stored);
			return -EBADMSG;
		}
		stored += mstored;
		next_chunk += m->n_chunks;
	}
	if (next_chunk != h->n_chunks || stored != h->stored)
		return fail(&b, -EBADMSG, "header: chunks do not add up", 0, 0);

	/* Descriptors: by number, the same-file links backwards, their data
	 * after the page chunks, their blobs inside the blob area. */
	int64_t prev_fd = 2;
	for (uint32_t i = 0; i < h->n_fds; i++) {
		const struct crac_img_fd *e = &v->fds[i];
		if (e->fd <= prev_fd || e->fd >= (1 << 20) || e->kind == 0 || e->kind > 64 ||
		    e->path >= h->strtab_size || e->fd_flags & ~1u ||
		    (e->same_as != CRAC_IMG_NO_FD && (e->same_as >= i || v->fds[e->same_as].kind != e->kind)) ||
		    (e->data_len && (e->data_off < coff || e->data_off % P || e->data_off > h->pages_size ||
				     e->data_len > h->pages_size - e->data_off)) ||
		    e->blob_off > h->blobs_size || e->blob_len > h->blobs_size - e->blob_off)
			return fail(&b, -EBADMSG, "header: bad descriptor", i, 1);
		prev_fd = e->fd;
	}

	/* Pending signals: a real signal number (SIGKILL and SIGSTOP are
	 * never pending in a running thread), the siginfo's own number the
	 * same, a thread id or 0 (the process). */
	for (uint32_t i = 0; i < v->n_signals; i++) {
		const struct crac_img_signal *g = &v->signals[i];
		int32_t si_signo;
		memcpy(&si_signo, g->info, sizeof(si_signo));
		if (g->signo == 0 || g->signo > CRAC_IMG_NSIG || g->signo == 9 || g->signo == 19 || g->tid < 0 ||
		    si_signo != (int32_t)g->signo || memcmp(&g->code, g->info + 8, 4))
			return fail(&b, -EBADMSG, "header: bad pending signal", i, 1);
	}

	/* References: sorted, page-aligned, inside a private anonymous
	 * mapping marked as having them, never over a page of this image's
	 * own chunks (both lists are sorted: one merged walk). Whether each
	 * lies inside the chunk it names is checked against that image
	 * (crac_img_chain_open). */
	uint64_t prev = 0;
	uint32_t oc = 0;
	for (uint32_t i = 0; i < h->n_refs; i++) {
		const struct crac_img_ref *r = &v->refs[i];
		const struct crac_img_map *m = r->map < h->n_maps ? &v->maps[r->map] : NULL;
		if (r->addr % P || r->len % P || !r->len || r->addr < prev || r->depth == 0 || r->depth > h->depth ||
		    !m || !(m->flags & CRAC_MAPF_REFS) || (m->flags & CRAC_MAPF_SHARED) ||
		    (m->kind != CRAC_MAP_ANON && m->kind != CRAC_MAP_HEAP && m->kind != CRAC_MAP_STACK) ||
		    r->addr < m->start || r->len > m->end - r->addr || r->addr >= m->end)
			return ref_fail(&b, v, i, prev);
		prev = r->addr + r->len;
		while (oc < h->n_chunks && v->chunks[oc].addr + v->chunks[oc].len <= r->addr)
			oc++;
		if (oc < h->n_chunks && v->chunks[oc].addr < r->addr + r->len) {
			fail(&b, -EBADMSG, "header: page reference over stored pages", i, 1);
			crac_img_puts(&b, ": ");
			put_span(&b, r->addr, r->addr + r->len);
			crac_img_puts(&b, " overlaps this image's chunk #");
			crac_img_putu(&b, oc);
			crac_img_puts(&b, " ");
			put_span(&b, v->chunks[oc].addr, v->chunks[oc].addr + v->chunks[oc].len);
			return -EBADMSG;
		}
	}
	return 0;
}

const char *crac_img_lazy_why(uint32_t mode)
{
	switch (mode) {
	case CRAC_LAZY_ON:
		return "large anonymous mappings load in the background (userfaultfd)";
	case CRAC_LAZY_OFF_POPULATE:
		return "--populate";
	case CRAC_LAZY_OFF_PRIVILEGE:
		return "lazy restore needs a userfaultfd that also handles faults taken inside system calls: "
		       "root (CAP_SYS_PTRACE), vm.unprivileged_userfaultfd=1, or read-write access to /dev/userfaultfd";
	case CRAC_LAZY_OFF_KERNEL:
		return "this kernel's userfaultfd lacks the fork/remap/remove/unmap events lazy restore needs";
	case CRAC_LAZY_OFF_SMALL:
		return "too little memory (under 4 MiB in its large mappings) to be worth loading lazily";
	case CRAC_LAZY_OFF_WALKED:
		return "the working set shows the program goes through most of its large mappings at once: "
		       "loaded whole first (faster than page by page)";
	}
	return "unknown";
}

bool crac_img_lazy_candidate(const struct crac_img_map *m, uint64_t resume)
{
	if (m->kind != CRAC_MAP_ANON && m->kind != CRAC_MAP_HEAP)
		return false;
	if (m->flags & CRAC_MAPF_SHARED)
		return false;
	if ((m->prot & (PROT_READ | PROT_WRITE)) != (PROT_READ | PROT_WRITE))
		return false;
	if (resume >= m->start && resume < m->end)   /* the loader writes there */
		return false;
	return m->stored >= CRAC_IMG_LAZY_MIN;
}

bool crac_img_lazy_pick(const struct crac_img_map *m, uint64_t below, uint64_t resume, bool small)
{
	struct crac_img_map x = *m;

	x.stored += below;
	if (crac_img_lazy_candidate(&x, resume))
		return true;
	if (!small || !x.stored || x.kind != CRAC_MAP_ANON)
		return false;
	x.stored = CRAC_IMG_LAZY_MIN;   /* small, judged as if it were large */
	return crac_img_lazy_candidate(&x, resume);
}

CRAC_IMG_NOSAN void crac_img_put_chunk_head(struct crac_img_buf *b, uint32_t index, const struct crac_img_chunk *k)
{
	crac_img_puts(b, "chunk #");
	crac_img_putu(b, index);
	crac_img_puts(b, " (");
	crac_img_putu(b, k->len);
	crac_img_puts(b, " bytes at ");
	crac_img_putx(b, k->addr);
}

CRAC_IMG_NOSAN void crac_img_put_damaged_chunk(struct crac_img_buf *b, uint32_t index,
					       const struct crac_img_chunk *k, const char *where)
{
	crac_img_puts(b, "page data checksum mismatch in ");
	crac_img_put_chunk_head(b, index, k);
	crac_img_puts(b, ", ");
	crac_img_put_escaped(b, where);   /* a mapping's or an image's name: from an image */
	crac_img_puts(b, "): the pages file is damaged");
}
