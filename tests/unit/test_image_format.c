/* SPDX-License-Identifier: MIT */
/*
 * test_image_format.c - the image format: crc32c, header write/parse round
 * trip, refusal of truncated / corrupt / wrong-version / inconsistent
 * headers, CPU feature comparison, image directories on disk (load, page
 * checksums, atomic replace).
 */
#include "harness.h"
#include "image/dir.h"
#include "image/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if CRAC_HAVE_ZSTD
#include <zstd.h>
#endif

/* A small but complete image: 2 mappings (anon with 2 chunks, file), 1 file,
 * 1 thread. Returns the header size; pages (3 pages) in *pages. */
static uint64_t build(void *buf, size_t cap, unsigned char pages[3 * 4096])
{
	struct crac_img_header *h = buf;
	uint64_t off = sizeof(*h);
	const char strs[] = "\0/tmp\0[anon:x]\0/lib/x.so\0";

	memset(buf, 0, cap);
	memcpy(h->magic, CRAC_IMG_MAGIC, 8);
	h->version = CRAC_IMG_VERSION;
	strcpy(h->kernel, "6.18-test");
	h->vdso_block = 0x7f0000100000;
	h->vvar_size = 0x4000;
	h->vvar_vclock_size = 0x2000;
	h->vdso_size = 0x2000;
	h->cwd = 1;
	h->n_maps = 2;
	h->n_files = 1;
	h->n_chunks = 2;
	h->n_threads = 1;
	h->maps_off = off;
	off += 2 * sizeof(struct crac_img_map);
	h->files_off = off;
	off += sizeof(struct crac_img_file);
	h->chunks_off = off;
	off += 2 * sizeof(struct crac_img_chunk);
	h->threads_off = off;
	off += sizeof(struct crac_img_thread);
	h->strtab_off = off;
	h->strtab_size = (sizeof(strs) + 7) & ~7ul;
	off += h->strtab_size;
	memcpy((char *)buf + h->strtab_off, strs, sizeof(strs));

	for (int i = 0; i < 3 * 4096; i++)
		pages[i] = (unsigned char)(i * 7 + i / 4096);
	struct crac_img_map *m = (void *)((char *)buf + h->maps_off);
	m[0] = (struct crac_img_map){ .start = 0x10000, .end = 0x14000, .prot = 3, .kind = CRAC_MAP_ANON,
				      .file = UINT32_MAX, .name = 6, .first_chunk = 0, .n_chunks = 2,
				      .stored = 3 * 4096 };
	m[1] = (struct crac_img_map){ .start = 0x20000, .end = 0x22000, .prot = 5, .kind = CRAC_MAP_FILE,
				      .file = 0, .name = 15, .first_chunk = 2, .n_chunks = 0 };
	struct crac_img_file *f = (void *)((char *)buf + h->files_off);
	f->path = 15;
	f->size = 8192;
	struct crac_img_chunk *c = (void *)((char *)buf + h->chunks_off);
	c[0] = (struct crac_img_chunk){ .addr = 0x10000, .offset = 0, .len = 4096, .map = 0,
					.crc = crac_img_crc32c(0, pages, 4096) };
	c[1] = (struct crac_img_chunk){ .addr = 0x12000, .offset = 4096, .len = 8192, .map = 0,
					.crc = crac_img_crc32c(0, pages + 4096, 8192) };
	struct crac_img_thread *t = (void *)((char *)buf + h->threads_off);
	t->tid = 42;
	t->flags = CRAC_THREADF_CHECKPOINTER;
	h->pages_size = 3 * 4096;
	h->stored = 3 * 4096;
	h->size = off;
	h->crc = crac_img_header_crc(buf, off);
	return off;
}

static _Alignas(8) char hbuf[8192];
static unsigned char pbuf[3 * 4096];

static void recrc(void *buf, uint64_t len)
{
	((struct crac_img_header *)buf)->crc = crac_img_header_crc(buf, len);
}

static void test_crc32c(void)
{
	CHECK_EQ(crac_img_crc32c(0, "123456789", 9), 0xE3069283u);
	CHECK_EQ(crac_img_crc32c(0, "", 0), 0);
	/* incremental = one shot, and unaligned starts */
	char big[1000];
	for (int i = 0; i < 1000; i++)
		big[i] = (char)(i * 31);
	uint32_t one = crac_img_crc32c(0, big, 1000);
	CHECK_EQ(crac_img_crc32c(crac_img_crc32c(0, big, 333), big + 333, 667), one);
	CHECK(crac_img_crc32c(0, big + 1, 999) != one);

	/* the lazy loader's copy (its own table): the same with and without
	 * SSE4.2, incremental too */
	struct crac_img_crc k;
	crac_img_crc32c_prepare(&k);
	for (int hw = 0; hw < 2; hw++) {
		if (hw && !k.hw)
			break;
		struct crac_img_crc t = k;
		t.hw = hw;
		CHECK_EQ(crac_img_crc32c_with(&t, 0, "123456789", 9), 0xE3069283u);
		CHECK_EQ(crac_img_crc32c_with(&t, 0, big, 1000), one);
		CHECK_EQ(crac_img_crc32c_with(&t, crac_img_crc32c_with(&t, 0, big + 1, 332), big + 333, 667),
			 crac_img_crc32c(0, big + 1, 999));
	}

	/* large buffers (three crcs at once, then joined): the same as the
	 * table's byte at a time, at every start alignment, for lengths
	 * around the threshold and not multiples of 24, from a running crc */
	static unsigned char large[70000];
	for (size_t i = 0; i < sizeof(large); i++)
		large[i] = (unsigned char)(i * 2654435761u >> 13);
	struct crac_img_crc table = k, three = k;
	table.hw = 0;
	three.wide = 0;   /* crc32 alone, three at once */
	/* (and with VPCLMULQDQ: folding from 1024 bytes on, 256 at a time) */
	static const size_t lens[] = { 1023, 1024, 1025, 1279, 1280, 1281, 1536 + 255, 4095, 4096, 4097, 4103, 4119,
				       24 * 1000 + 13, 65536, 69990 };
	for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
		for (size_t at = 0; at < 8; at++) {
			uint32_t want = crac_img_crc32c_with(&table, 0x12345678u, large + at, lens[l]);
			CHECK_EQ(crac_img_crc32c_with(&k, 0x12345678u, large + at, lens[l]), want);
			if (k.hw)
				CHECK_EQ(crac_img_crc32c_with(&three, 0x12345678u, large + at, lens[l]), want);
			CHECK_EQ(crac_img_crc32c(0x12345678u, large + at, lens[l]), want);
			/* in pieces below the threshold: one running crc */
			uint32_t c = 0x12345678u;
			for (size_t d = 0; d < lens[l]; d += 1000)
				c = crac_img_crc32c(c, large + at + d, lens[l] - d < 1000 ? lens[l] - d : 1000);
			CHECK_EQ(c, want);
		}
}

/*
 * Every path the crc may take (the table, crc32 alone, three crcs at once,
 * AVX-512 folding) against the table's byte at a time, for every length
 * 0..4096 at every start alignment 0..63, from a running crc: a wrong fold
 * constant, a wrong piece order or a tail one byte off gives another crc
 * for some of them. The table's crc of each length is the one before it
 * moved on by one byte (so the reference costs one byte a length).
 * Then large buffers of random bytes and random lengths, the folding
 * forced off (k.wide = 0: the path a CPU without VPCLMULQDQ takes) and on
 * where this CPU has it.
 */
static void test_crc32c_every_length(void)
{
	static unsigned char buf[4096 + 64 + 64];
	struct crac_img_crc k, table, three;
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < sizeof(buf); i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
	crac_img_crc32c_prepare(&k);
	table = three = k;
	table.hw = 0;
	three.wide = 0;
	int bad = 0;
	for (size_t at = 0; at < 64 && bad < 5; at++) {
		uint32_t want = 0xa5a5a5a5u;   /* the table's crc of the len bytes at at */
		for (size_t len = 0; len <= 4096 && bad < 5; len++) {
			if (len)
				want = crac_img_crc32c_with(&table, want, buf + at + len - 1, 1);
			uint32_t got[3] = { crac_img_crc32c_with(&k, 0xa5a5a5a5u, buf + at, len),
					    k.hw ? crac_img_crc32c_with(&three, 0xa5a5a5a5u, buf + at, len) : want,
					    crac_img_crc32c(0xa5a5a5a5u, buf + at, len) };
			for (int w = 0; w < 3; w++)
				if (got[w] != want) {
					fprintf(stderr, "crc32c path %d (wide %d hw %d): len %zu at %zu: %08x, table %08x\n", w,
						k.wide, k.hw, len, at, got[w], want);
					bad++;
				}
		}
	}
	CHECK_EQ(bad, 0);

	/* random large buffers, lengths and alignments */
	size_t big = 4u << 20;
	unsigned char *r = malloc(big + 64);
	CHECK(r != NULL);
	if (!r)
		return;
	for (size_t i = 0; i < big + 64; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		r[i] = (unsigned char)(x >> 11);
	}
	for (int t = 0; t < 24; t++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t at = x % 64, len = t < 4 ? big - (size_t)t * 4093 : (size_t)(x >> 8) % big;
		uint32_t seed = (uint32_t)(x >> 32);
		uint32_t want = crac_img_crc32c_with(&table, seed, r + at, len);
		CHECK_EQ(crac_img_crc32c_with(&k, seed, r + at, len), want);
		if (k.hw)
			CHECK_EQ(crac_img_crc32c_with(&three, seed, r + at, len), want);
		CHECK_EQ(crac_img_crc32c(seed, r + at, len), want);
		/* split at a random point: the running crc carried through */
		size_t cut = len ? (size_t)(x >> 3) % len : 0;
		CHECK_EQ(crac_img_crc32c_with(&k, crac_img_crc32c_with(&k, seed, r + at, cut), r + at + cut, len - cut),
			 want);
	}
	free(r);
}

/* The path a CPU gets: folding only where every piece it needs is there;
 * without SSE 4.2, the table. */
static void test_crc32c_pick(void)
{
	const uint32_t ecx1 = (1u << 20) | (1u << 27) | (1u << 1);   /* SSE4.2, OSXSAVE, PCLMULQDQ */
	const uint32_t ebx7 = 1u << 16, ecx7 = 1u << 10;              /* AVX512F; VPCLMULQDQ */
	struct crac_img_crc k;

	crac_img_crc32c_pick(&k, ecx1, 0xe7, ebx7, ecx7);
	CHECK(k.hw && k.wide);
	crac_img_crc32c_pick(&k, ecx1, 0xe7, ebx7, 0);   /* no VPCLMULQDQ */
	CHECK(k.hw && !k.wide);
	crac_img_crc32c_pick(&k, ecx1, 0xe7, 0, ecx7);   /* no AVX-512F */
	CHECK(k.hw && !k.wide);
	crac_img_crc32c_pick(&k, ecx1, 0x07, ebx7, ecx7);   /* the OS saves no zmm state */
	CHECK(k.hw && !k.wide);
	crac_img_crc32c_pick(&k, ecx1 & ~(1u << 1), 0xe7, ebx7, ecx7);   /* no PCLMULQDQ */
	CHECK(k.hw && !k.wide);
	crac_img_crc32c_pick(&k, ecx1 & ~(1u << 27), 0xe7, ebx7, ecx7);   /* no OSXSAVE */
	CHECK(k.hw && !k.wide);
	crac_img_crc32c_pick(&k, ecx1 & ~(1u << 20), 0xe7, ebx7, ecx7);   /* no SSE 4.2 */
	CHECK(!k.hw && !k.wide);
	/* and what each gives is the same crc (test_crc32c_every_length) */
	crac_img_crc32c_prepare(&k);
	printf("# this CPU: crc32 %s, folding %s\n", k.hw ? "yes" : "no", k.wide ? "yes" : "no");
}

/* Which mappings a lazy restore leaves to the userfaultfd thread. */
/* A string that does not fit its message loses its middle ("..."), keeps
 * its end and leaves room for the reason; escapes are never split. */
static void test_put_escaped_cut(void)
{
	char path[4096], out[1024];
	struct crac_img_buf b = { out, 0, sizeof(out) };

	crac_img_puts(&b, "file ");
	crac_img_put_escaped(&b, "/a\tb");
	CHECK(!strcmp(out, "file /a\\x09b"));   /* whole when it fits */

	memset(path, 'x', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = 0;
	memcpy(path + sizeof(path) - 1 - 9, "/the-name", 9);
	path[100] = '\001';   /* an escape in the head */
	b.len = 0;
	crac_img_puts(&b, "file ");
	crac_img_put_escaped(&b, path);
	crac_img_puts(&b, " changed since the checkpoint (its size differs)");
	size_t n = strlen(out);
	CHECKF(n < sizeof(out) - 1, "%zu", n);   /* nothing cut at the end */
	CHECK(!strncmp(out, "file /xxx", 9));
	CHECK(strstr(out, "...") != NULL);
	const char *end = "/the-name changed since the checkpoint (its size differs)";
	CHECK(n > strlen(end) && !strcmp(out + n - strlen(end), end));
	CHECK(n <= sizeof(out) / 2 + 64);          /* at most half of the room: a caller may add to it */

	/* an escape at the cut is whole or absent, never split */
	for (size_t i = 0; i < sizeof(path) - 1; i++)
		path[i] = (i % 3) ? '\002' : 'y';
	b.len = 0;
	crac_img_put_escaped(&b, path);
	const char *dots = strstr(out, "...");
	REQUIRE(dots != NULL);
	for (const char *p = out; p < dots;) {
		if (*p == 'y') {
			p++;
			continue;
		}
		CHECKF(!strncmp(p, "\\x02", 4), "at %zd: %.8s", p - out, p);
		p += 4;
	}
	CHECK(strlen(dots) >= 3 + 4 && !strcmp(out + strlen(out) - 4, "\\x02"));

	/* keep 0: a string alone fills the buffer whole */
	char big[4 * sizeof(path)];
	struct crac_img_buf w = { big, 0, sizeof(big) };
	crac_img_put_escaped_keep(&w, path, 0);
	CHECK_EQ(strlen(big), 1365 + 2730 * 4);   /* 1365 'y', 2730 bytes escaped */
}

static void test_lazy_candidate(void)
{
	struct crac_img_map m = { .start = 0x100000, .end = 0x100000 + (8u << 20), .prot = 3,
				  .kind = CRAC_MAP_ANON, .stored = CRAC_IMG_LAZY_MIN };
	CHECK(crac_img_lazy_candidate(&m, 0));
	CHECK(!crac_img_lazy_candidate(&m, m.start + 64));          /* holds the resume block */
	m.stored = CRAC_IMG_LAZY_MIN - 4096;
	CHECK(!crac_img_lazy_candidate(&m, 0));                     /* too small */
	m.stored = CRAC_IMG_LAZY_MIN;
	m.kind = CRAC_MAP_HEAP;
	CHECK(crac_img_lazy_candidate(&m, 0));
	m.kind = CRAC_MAP_STACK;
	CHECK(!crac_img_lazy_candidate(&m, 0));                     /* the main stack: eager */
	m.kind = CRAC_MAP_FILE;
	CHECK(!crac_img_lazy_candidate(&m, 0));
	m.kind = CRAC_MAP_SHMEM;
	CHECK(!crac_img_lazy_candidate(&m, 0));
	m.kind = CRAC_MAP_ANON;
	m.flags = CRAC_MAPF_SHARED;
	CHECK(!crac_img_lazy_candidate(&m, 0));
	m.flags = 0;
	m.prot = 1;                                                 /* read-only */
	CHECK(!crac_img_lazy_candidate(&m, 0));
	for (uint32_t mode = CRAC_LAZY_ON; mode <= CRAC_LAZY_OFF_SMALL; mode++)
		CHECK(strcmp(crac_img_lazy_why(mode), "unknown") != 0);
	CHECK(strcmp(crac_img_lazy_why(0), "unknown") == 0);
}

/* The loader's and inspect's one rule: references count as stored, and
 * small private anonymous mappings with anything stored go lazily too
 * unless `small` is off; never a small [heap], never the resume block's. */
static void test_lazy_pick(void)
{
	struct crac_img_map m = { .start = 0x100000, .end = 0x100000 + (8u << 20), .prot = 3,
				  .kind = CRAC_MAP_ANON, .stored = CRAC_IMG_LAZY_MIN };
	CHECK(crac_img_lazy_pick(&m, 0, 0, false));
	CHECK(!crac_img_lazy_pick(&m, 0, m.start, true));            /* holds the resume block */
	m.stored = 8192;
	CHECK(!crac_img_lazy_pick(&m, 0, 0, false));                 /* small, small ones off */
	CHECK(crac_img_lazy_pick(&m, 0, 0, true));                   /* a stack, an arena */
	CHECK(crac_img_lazy_pick(&m, CRAC_IMG_LAZY_MIN, 0, false));  /* large with the images below */
	CHECK(!crac_img_lazy_pick(&m, CRAC_IMG_LAZY_MIN - 8192 - 4096, 0, false));
	CHECK(crac_img_lazy_pick(&m, CRAC_IMG_LAZY_MIN - 8192, 0, false));
	m.stored = 0;
	CHECK(!crac_img_lazy_pick(&m, 0, 0, true));                  /* nothing stored: eager */
	CHECK(crac_img_lazy_pick(&m, 4096, 0, true));                /* only references */
	m.stored = 8192;
	m.kind = CRAC_MAP_HEAP;
	CHECK(!crac_img_lazy_pick(&m, 0, 0, true));                  /* a small [heap]: eager */
	CHECK(crac_img_lazy_pick(&m, CRAC_IMG_LAZY_MIN, 0, true));
	m.kind = CRAC_MAP_ANON;
	m.prot = 1;
	CHECK(!crac_img_lazy_pick(&m, 0, 0, true));                  /* read-only */
	CHECK_EQ(m.stored, 8192);                                    /* m itself unchanged */
}

static void test_roundtrip(void)
{
	struct crac_img_view v;
	char msg[256];
	uint64_t len = build(hbuf, sizeof(hbuf), pbuf);

	int rc = crac_img_parse(hbuf, len, &v, msg, sizeof(msg));
	CHECKF(rc == 0, "%d %s", rc, msg);
	REQUIRE(rc == 0);
	CHECK_EQ(v.h->n_maps, 2);
	CHECK_EQ(v.maps[1].kind, CRAC_MAP_FILE);
	CHECK(!strcmp(crac_img_str(&v, v.h->cwd), "/tmp"));
	CHECK(!strcmp(crac_img_str(&v, v.maps[0].name), "[anon:x]"));
	CHECK(!strcmp(crac_img_str(&v, v.files[0].path), "/lib/x.so"));
	CHECK(!strcmp(crac_img_str(&v, 0), ""));
	CHECK(!strcmp(crac_img_str(&v, 100000), ""));
	CHECK_EQ(v.chunks[1].len, 8192);
	CHECK_EQ(v.threads[0].tid, 42);
}

static void test_truncated(void)
{
	struct crac_img_view v;
	char msg[256];
	uint64_t len = build(hbuf, sizeof(hbuf), pbuf);

	CHECK_EQ(crac_img_parse(hbuf, len - 8, &v, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "truncated") != NULL);
	CHECK_EQ(crac_img_parse(hbuf, 10, &v, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "truncated") != NULL);
	CHECK_EQ(crac_img_parse(hbuf, 100, &v, msg, sizeof(msg)), -EBADMSG);
	CHECK_EQ(crac_img_parse(hbuf, 0, &v, msg, sizeof(msg)), -EBADMSG);
}

static void test_corrupt(void)
{
	struct crac_img_view v;
	char msg[256];
	uint64_t len = build(hbuf, sizeof(hbuf), pbuf);

	hbuf[sizeof(struct crac_img_header) + 3] ^= 1;   /* inside maps[0] */
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "checksum") != NULL);
	/* every single-byte change anywhere is caught */
	for (uint64_t i = 0; i < len; i += 37) {
		build(hbuf, sizeof(hbuf), pbuf);
		hbuf[i] ^= 0x40;
		CHECKF(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)) < 0, "byte %llu", (unsigned long long)i);
	}
}


/* The descriptor table (format 3): numbers from 3 up and in order, dups
 * pointing backwards to the same kind, content after the page chunks,
 * kind-specific bytes inside the blob area. */
static uint64_t with_fds(struct crac_img_fd *fds, uint32_t n, uint64_t blobs)
{
	uint64_t len = build(hbuf, sizeof(hbuf), pbuf);
	struct crac_img_header *h = (void *)hbuf;

	h->n_fds = n;
	h->fds_off = len;
	memcpy(hbuf + len, fds, n * sizeof(*fds));
	len += n * sizeof(*fds);
	h->blobs_off = len;
	h->blobs_size = blobs;
	len += blobs;
	h->pages_size = 4 * 4096;   /* one page of descriptor content after the chunks */
	h->size = len;
	recrc(hbuf, len);
	return len;
}

static void test_fds(void)
{
	struct crac_img_view v;
	char msg[256];
	struct crac_img_fd good[2] = {
		{ .fd = 3, .kind = 4, .same_as = CRAC_IMG_NO_FD, .data_off = 3 * 4096, .data_len = 100,
		  .blob_off = 0, .blob_len = 16 },
		{ .fd = 7, .kind = 4, .same_as = 0 },
	};
	struct crac_img_fd bad[2];
	uint64_t len = with_fds(good, 2, 16);

	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), 0);
	CHECK_EQ(v.h->n_fds, 2u);
	CHECK_EQ(v.fds[1].fd, 7);

	/* each of these is refused, naming the descriptor entry */
	for (int k = 0; k < 7; k++) {
		memcpy(bad, good, sizeof(bad));
		switch (k) {
		case 0: bad[0].fd = 2; break;                        /* stdio is never carried */
		case 1: bad[1].fd = 3; break;                        /* not in order */
		case 2: bad[1].same_as = 1; break;                   /* a dup of itself */
		case 3: bad[1].kind = 5; break;                      /* a dup of another kind */
		case 4: bad[0].data_off = 4096; break;               /* content over the page chunks */
		case 5: bad[0].blob_len = 17; break;                 /* past the blob area */
		case 6: bad[0].fd_flags = 2; break;                  /* unknown descriptor flag */
		}
		len = with_fds(bad, 2, 16);
		CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
		CHECK(strstr(msg, "header: bad descriptor #") != NULL);
	}
	/* a table that does not fit the file */
	len = with_fds(good, 2, 16);
	((struct crac_img_header *)hbuf)->n_fds = 1000;
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "bad descriptor table") != NULL);
}

/* The pending signals (format 6): appended after the other tables. */
static uint64_t with_signals(const struct crac_img_signal *g, uint32_t n)
{
	uint64_t len = build(hbuf, sizeof(hbuf), pbuf);
	struct crac_img_header *h = (void *)hbuf;

	h->n_signals = n;
	h->signals_off = len;
	memcpy(hbuf + len, g, n * sizeof(*g));
	len += n * sizeof(*g);
	h->size = len;
	recrc(hbuf, len);
	return len;
}

static struct crac_img_signal one_signal(int32_t tid, uint32_t signo, int32_t code)
{
	struct crac_img_signal g;

	memset(&g, 0, sizeof(g));
	g.tid = tid;
	g.signo = signo;
	g.code = code;
	memcpy(g.info, &signo, 4);       /* si_signo */
	memcpy(g.info + 8, &code, 4);    /* si_code */
	return g;
}

static void test_signals(void)
{
	struct crac_img_view v;
	char msg[256];
	struct crac_img_signal g[3] = { one_signal(42, 12, -6), one_signal(0, 10, 0), one_signal(0, 34, -1) };

	uint64_t len = with_signals(g, 3);
	CHECKF(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)) == 0, "%s", msg);
	CHECK_EQ(v.n_signals, 3);
	CHECK(v.signals != NULL && v.signals[2].signo == 34 && v.signals[0].tid == 42);
	/* none: no table */
	len = with_signals(g, 0);
	CHECKF(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)) == 0, "%s", msg);
	CHECK_EQ(v.n_signals, 0);
	CHECK(v.signals == NULL);

	/* hostile counts and offsets */
	struct crac_img_header *h = (void *)hbuf;
	len = with_signals(g, 3);
	h->n_signals = 4;                    /* one past the end of the file */
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "bad pending signal table") != NULL);
	h->n_signals = 0xffffffffu;
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "bad pending signal table") != NULL);
	h->n_signals = CRAC_IMG_MAX_SIGNALS + 1;
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	h->n_signals = 1;
	h->signals_off = len;                /* at the very end: no room */
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	h->signals_off = 0xfffffffffffffff8ull;
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	h->signals_off = len - 3 * sizeof(g[0]) + 4;   /* misaligned */
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	/* truncated inside the table */
	len = with_signals(g, 3);
	h->size = len - 8;
	recrc(hbuf, len - 8);
	CHECK_EQ(crac_img_parse(hbuf, len - 8, &v, msg, sizeof(msg)), -EBADMSG);

	/* entries: a real signal, never SIGKILL or SIGSTOP, the siginfo's
	 * own number and code the same, a tid or 0 */
	const struct crac_img_signal bad[] = {
		one_signal(0, 0, 0), one_signal(0, 65, 0), one_signal(0, 9, 0), one_signal(0, 19, 0),
		one_signal(-1, 10, 0),
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct crac_img_signal two[2] = { g[0], bad[i] };
		len = with_signals(two, 2);
		CHECKF(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)) == -EBADMSG, "bad signal %zu", i);
		CHECKF(strstr(msg, "bad pending signal #1") != NULL, "%s", msg);
	}
	struct crac_img_signal odd = g[1];
	odd.info[0] = 11;                    /* si_signo not signo */
	len = with_signals(&odd, 1);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	odd = g[1];
	odd.code = -1;                       /* code not si_code */
	len = with_signals(&odd, 1);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);

	/* a version 5 header ends before these fields: whatever follows it
	 * is not read as a signal table */
	len = with_signals(g, 3);
	h->version = 5;
	h->n_signals = 0xffffffffu;
	h->signals_off = 3;
	recrc(hbuf, len);
	CHECKF(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)) == 0, "%s", msg);
	CHECK_EQ(v.n_signals, 0);
	CHECK(v.signals == NULL);
	/* ... and may be that short */
	CHECK(CRAC_IMG_HEADER_V5_SIZE < sizeof(struct crac_img_header));
}

static void test_version_and_magic(void)
{
	struct crac_img_view v;
	char msg[256];
	uint64_t len = build(hbuf, sizeof(hbuf), pbuf);

	((struct crac_img_header *)hbuf)->version = CRAC_IMG_VERSION + 1;
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EPROTO);
	char want[96];
	snprintf(want, sizeof(want), "image format version %d is not supported (this build reads version %d)",
		 CRAC_IMG_VERSION + 1, CRAC_IMG_VERSION);
	CHECK(strstr(msg, want) != NULL);

	build(hbuf, sizeof(hbuf), pbuf);
	memcpy(hbuf, "ELF\0\0\0\0\0", 8);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EPROTO);
	CHECK(strstr(msg, "magic") != NULL);
}

/* Inconsistent but correctly checksummed headers are refused too. */
static void test_inconsistent(void)
{
	struct crac_img_view v;
	char msg[256];
	uint64_t len = build(hbuf, sizeof(hbuf), pbuf);
	struct crac_img_header *h = (void *)hbuf;
	struct crac_img_map *m = (void *)(hbuf + h->maps_off);
	struct crac_img_chunk *c = (void *)(hbuf + h->chunks_off);

	c[1].addr = 0x30000;   /* outside its mapping */
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "chunk") != NULL);

	build(hbuf, sizeof(hbuf), pbuf);
	c[1].offset = 1ull << 40;   /* beyond the pages file */
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);

	build(hbuf, sizeof(hbuf), pbuf);
	c[1].offset = 0;   /* page data shared with chunk 0 */
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "bad page chunk") != NULL);

	build(hbuf, sizeof(hbuf), pbuf);
	m[1].start = 0x12000;   /* overlaps mapping 0 */
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "mapping #1") != NULL);

	build(hbuf, sizeof(hbuf), pbuf);
	m[1].file = 5;   /* no such file */
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);

	build(hbuf, sizeof(hbuf), pbuf);
	h->n_chunks = 0xffffff;   /* table past the end */
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);

	build(hbuf, sizeof(hbuf), pbuf);
	hbuf[len - 1] = 'x';   /* string table not terminated */
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
}

static void test_cpu(void)
{
	struct crac_img_cpu have, want;
	char msg[256];

	crac_img_cpu_probe(&have);
	CHECK(have.words[CRAC_CPU_1_EDX] & (1u << 26));   /* sse2 on any x86-64 */
	want = have;
	CHECK_EQ(crac_img_cpu_compare(&want, &have, msg, sizeof(msg)), 0);
	/* a feature this CPU lacks: the first clear bit of cpuid 7.ebx */
	uint32_t clear = ~have.words[CRAC_CPU_7_0_EBX];
	if (clear) {
		int bit = __builtin_ctz(clear);
		want.words[CRAC_CPU_7_0_EBX] |= 1u << bit;
		CHECK_EQ(crac_img_cpu_compare(&want, &have, msg, sizeof(msg)), -1);
		CHECK(strstr(msg, "lacks") != NULL && strstr(msg, "cpuid 7.ebx") != NULL);
	}
	want = have;
	want.xsave_size += 64;
	CHECK_EQ(crac_img_cpu_compare(&want, &have, msg, sizeof(msg)), -1);
	CHECK(strstr(msg, "XSAVE") != NULL);
	want = have;
	want.xcr0 |= 1ull << 62;
	CHECK_EQ(crac_img_cpu_compare(&want, &have, msg, sizeof(msg)), -1);
}

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, p, n) != (ssize_t)n)
		t_fail(__FILE__, __LINE__, "write_file", "%s", path);
	if (fd >= 0)
		close(fd);
}

static void test_dir(void)
{
	char base[] = "/tmp/crac-test-image-XXXXXX", img[600], tmp[600], msg[512];
	struct crac_img_loaded l;
	struct stat st;
	uint64_t len = build(hbuf, sizeof(hbuf), pbuf);

	REQUIRE(mkdtemp(base));
	snprintf(img, sizeof(img), "%s/img", base);
	snprintf(tmp, sizeof(tmp), "%s/img.tmp-1", base);

	/* first image: plain rename */
	REQUIRE(mkdir(tmp, 0700) == 0);
	write_file(tmp, "header", hbuf, len);
	write_file(tmp, "pages", pbuf, sizeof(pbuf));
	CHECKF(crac_img_commit(tmp, img, msg, sizeof(msg)) == 0, "%s", msg);
	CHECK(stat(tmp, &st) < 0);
	CHECK(stat(img, &st) == 0 && (st.st_mode & 0777) == 0700);
	int rc = crac_img_load(img, &l, msg, sizeof(msg));
	CHECKF(rc == 0, "%s", msg);
	if (rc == 0) {
		CHECKF(crac_img_verify_pages(img, &l.v, msg, sizeof(msg)) == 0, "%s", msg);
		crac_img_unload(&l);
	}

	/* second image replaces it atomically; the old one is gone */
	REQUIRE(mkdir(tmp, 0700) == 0);
	((struct crac_img_header *)hbuf)->created_ns = 12345;
	recrc(hbuf, len);
	write_file(tmp, "header", hbuf, len);
	write_file(tmp, "pages", pbuf, sizeof(pbuf));
	CHECKF(crac_img_commit(tmp, img, msg, sizeof(msg)) == 0, "%s", msg);
	CHECK(stat(tmp, &st) < 0);
	REQUIRE(crac_img_load(img, &l, msg, sizeof(msg)) == 0);
	CHECK_EQ(l.v.h->created_ns, 12345);
	crac_img_unload(&l);

	/* corrupt page data: found by the chunk checksums */
	unsigned char bad[sizeof(pbuf)];
	memcpy(bad, pbuf, sizeof(bad));
	bad[5000] ^= 1;
	write_file(img, "pages", bad, sizeof(bad));
	REQUIRE(crac_img_load(img, &l, msg, sizeof(msg)) == 0);
	CHECK_EQ(crac_img_verify_pages(img, &l.v, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "chunk #1") != NULL);
	crac_img_unload(&l);

	/* truncated page data and header */
	write_file(img, "pages", pbuf, 4096);
	CHECK_EQ(crac_img_load(img, &l, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "truncated") != NULL);
	write_file(img, "pages", pbuf, sizeof(pbuf));
	write_file(img, "header", hbuf, 64);
	CHECK_EQ(crac_img_load(img, &l, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "truncated") != NULL);

	CHECK_EQ(crac_img_remove(img), 0);
	CHECK(stat(img, &st) < 0);
	CHECK_EQ(crac_img_remove(img), 0);   /* already gone: fine */
	rmdir(base);
}

static void test_split(void)
{
	char parent[256];
	const char *b;

	CHECK(crac_img_split_path("a/b/img", parent, sizeof(parent), &b) == 0 && !strcmp(parent, "a/b") &&
	      !strcmp(b, "img"));
	CHECK(crac_img_split_path("img", parent, sizeof(parent), &b) == 0 && !strcmp(parent, ".") &&
	      !strcmp(b, "img"));
	CHECK(crac_img_split_path("/img/", parent, sizeof(parent), &b) == 0 && !strcmp(parent, "/") &&
	      !strncmp(b, "img", 3));
}

/* References to the images below (format 4): inside a private anonymous
 * mapping marked as having them, never over its own chunks, at most as
 * deep as the chain, the chain recorded with a parent. */
static uint64_t with_refs(const struct crac_img_ref *r, uint32_t n, uint32_t depth, uint32_t parent, bool flag)
{
	uint64_t len = build(hbuf, sizeof(hbuf), pbuf);
	struct crac_img_header *h = (void *)hbuf;
	struct crac_img_map *m = (void *)(hbuf + h->maps_off);

	if (flag)
		m[0].flags |= CRAC_MAPF_REFS;
	h->parent = parent;
	h->depth = depth;
	h->n_refs = n;
	h->refs_off = len;
	memcpy(hbuf + len, r, n * sizeof(*r));
	len += n * sizeof(*r);
	h->size = len;
	recrc(hbuf, len);
	return len;
}

static void test_refs(void)
{
	struct crac_img_view v;
	char msg[256];
	const struct crac_img_ref good = { .addr = 0x11000, .len = 4096, .depth = 1, .chunk = 5, .map = 0 };
	uint64_t len = with_refs(&good, 1, 1, 1, true);

	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), 0);
	CHECK_EQ(v.h->n_refs, 1u);
	CHECK_EQ(v.refs[0].addr, 0x11000ull);
	CHECK(!strcmp(crac_img_str(&v, v.h->parent), "/tmp"));
	for (int k = 0; k < 7; k++) {
		struct crac_img_ref bad = good;
		uint32_t depth = 1, parent = 1;
		bool flag = true;
		switch (k) {
		case 0: bad.addr = 0x10000; break;     /* over a page of its own chunks */
		case 1: bad.depth = 2; break;          /* deeper than the chain */
		case 2: flag = false; break;           /* its mapping not marked */
		case 3: bad.map = 1; break;            /* a file mapping */
		case 4: bad.len = 100; break;          /* not whole pages */
		case 5: bad.addr = 0x13000; bad.len = 0x2000; break;   /* past its mapping's end */
		case 6: bad.depth = 0; break;
		}
		len = with_refs(&bad, 1, depth, parent, flag);
		CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
		CHECK(strstr(msg, "page reference") != NULL);
	}
	/* the chain record itself */
	len = with_refs(&good, 1, 1, 0, true);    /* a depth without a parent */
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "bad parent image record") != NULL);
	len = with_refs(&good, 1, CRAC_IMG_MAX_CHAIN + 1, 1, true);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	len = with_refs(&good, 0, 0, 0, true);    /* a full image with no references */
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), 0);
}


/* Version 5: crac_img_chunk.zlen and CRAC_IMGF_COMPRESSED, validated
 * strictly; version 4 images (no zlen) still parse. */
static void test_compressed_fields(void)
{
	struct crac_img_view v;
	char msg[256];
	uint64_t len = build(hbuf, sizeof(hbuf), pbuf);
	struct crac_img_header *h = (struct crac_img_header *)hbuf;
	struct crac_img_chunk *c = (struct crac_img_chunk *)(hbuf + h->chunks_off);

	/* an old (version 4) image loads */
	h->version = 4;
	recrc(hbuf, len);
	CHECKF(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)) == 0, "%s", msg);
	/* ... but no version 4 image has compressed chunks (zlen was the
	 * high half of its 64-bit len) */
	c[1].zlen = 100;
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "bad compressed size of page chunk #1") != NULL);
	h->img_flags = CRAC_IMGF_COMPRESSED;
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "compressed chunks in a version 4 image") != NULL);

	/* version 5 with the flag: a frame smaller than the data */
	h->version = CRAC_IMG_VERSION;
	recrc(hbuf, len);
	CHECKF(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)) == 0, "%s", msg);
	CHECK_EQ(crac_img_chunk_stored(&v.chunks[1]), 100);
	/* without the flag, refused */
	h->img_flags = 0;
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "bad compressed size of page chunk #1") != NULL);
	h->img_flags = CRAC_IMGF_COMPRESSED;
	/* not smaller than the data, or not even a frame header */
	static const uint32_t bad[] = { 8192, 8193, 7, 1 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c[1].zlen = bad[i];
		recrc(hbuf, len);
		CHECKF(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)) == -EBADMSG, "zlen %u", bad[i]);
		CHECK(strstr(msg, "page chunk #1") != NULL);
	}
	/* a stored length past the end of the pages file */
	c[1].zlen = 0xffffffffu;
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "bad page chunk #1") != NULL);
	/* frames overlapping: the next chunk must start after the stored bytes */
	build(hbuf, sizeof(hbuf), pbuf);
	h->img_flags = CRAC_IMGF_COMPRESSED;
	c[0].len = 8192;   /* at 0x10000: 2 pages, stored in 1 page */
	c[0].zlen = 4000;
	c[1].addr = 0x12000;
	c[1].offset = 4096;
	c[1].len = 4096;
	recrc(hbuf, len);
	CHECKF(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)) == 0, "%s", msg);
	c[0].zlen = 4097;
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "bad page chunk #1") != NULL);
	/* a chunk over CRAC_IMG_CHUNK_MAX */
	build(hbuf, sizeof(hbuf), pbuf);
	c[1].len = (uint32_t)CRAC_IMG_CHUNK_MAX + 4096;
	recrc(hbuf, len);
	CHECK_EQ(crac_img_parse(hbuf, len, &v, msg, sizeof(msg)), -EBADMSG);
}

/* crac_img_chunk_read: a frame read back exactly; a damaged, cut short,
 * mislabelled or foreign frame refused with its reason. */
static void test_chunk_read(void)
{
#if CRAC_HAVE_ZSTD
	const size_t L = 64 * 4096;
	unsigned char *data = malloc(L), *out = malloc(L), *z = malloc(L), *zbuf = malloc(L);
	REQUIRE(data && out && z && zbuf);
	for (size_t i = 0; i < L; i++)
		data[i] = (unsigned char)"compressible text "[i % 18];
	size_t n = ZSTD_compress(z, L, data, L, 1);
	REQUIRE(!ZSTD_isError(n) && n < L);
	char path[] = "/tmp/crac-unit-zchunk.XXXXXX";
	int fd = mkstemp(path);
	REQUIRE(fd >= 0);
	unlink(path);
	REQUIRE(pwrite(fd, z, n, 4096) == (ssize_t)n);

	uint64_t ds = crac_img_zstd_dctx_size();
	void *dmem = aligned_alloc(64, ds);
	void *dctx = crac_img_zstd_dctx(dmem, ds);
	REQUIRE(dctx != NULL);
	CHECK(crac_img_zstd_dctx(dmem, 100) == NULL);
	struct crac_img_crc crc;
	crac_img_crc32c_prepare(&crc);
	struct crac_img_chunk k = { .addr = 0x10000, .offset = 4096, .len = (uint32_t)L, .zlen = (uint32_t)n,
				    .crc = crac_img_crc32c(0, data, L) };

	CHECK_EQ(crac_img_chunk_read(fd, &k, out, zbuf, L, dctx, &crc), 0);
	CHECK(memcmp(out, data, L) == 0);
	/* no context, or a buffer too small for the frame */
	CHECK_EQ(crac_img_chunk_read(fd, &k, out, zbuf, L, NULL, &crc), CRAC_CHUNK_NO_ZSTD);
	CHECK_EQ(crac_img_chunk_read(fd, &k, out, zbuf, n - 1, dctx, &crc), CRAC_CHUNK_ZBUF);
	/* the frame cut short, or said to decompress to another size */
	k.zlen = (uint32_t)n - 1;
	CHECK_EQ(crac_img_chunk_read(fd, &k, out, zbuf, L, dctx, &crc), CRAC_CHUNK_FRAME);
	k.zlen = (uint32_t)n;
	k.len = (uint32_t)L - 4096;
	CHECK_EQ(crac_img_chunk_read(fd, &k, out, zbuf, L, dctx, &crc), CRAC_CHUNK_FRAME);
	k.len = (uint32_t)L;
	/* a wrong crc */
	k.crc ^= 1;
	CHECK_EQ(crac_img_chunk_read(fd, &k, out, zbuf, L, dctx, &crc), CRAC_CHUNK_CRC);
	k.crc ^= 1;
	/* not a zstd frame (magic) */
	unsigned char junk = 0x27;
	REQUIRE(pwrite(fd, &junk, 1, 4096) == 1);
	CHECK_EQ(crac_img_chunk_read(fd, &k, out, zbuf, L, dctx, &crc), CRAC_CHUNK_FRAME);
	REQUIRE(pwrite(fd, z, 1, 4096) == 1);
	CHECK_EQ(crac_img_chunk_read(fd, &k, out, zbuf, L, dctx, &crc), 0);
	/* a byte of the frame flipped: never accepted */
	unsigned char b = z[n / 2] ^ 0x5a;
	REQUIRE(pwrite(fd, &b, 1, 4096 + n / 2) == 1);
	long rc = crac_img_chunk_read(fd, &k, out, zbuf, L, dctx, &crc);
	CHECKF(rc == CRAC_CHUNK_FRAME || rc == CRAC_CHUNK_CRC, "%ld", rc);
	/* the file ends inside the frame */
	REQUIRE(ftruncate(fd, 4096 + n / 2) == 0);
	CHECK_EQ(crac_img_chunk_read(fd, &k, out, zbuf, L, dctx, &crc), CRAC_CHUNK_SHORT);
	CHECK(strstr(crac_img_chunk_why(CRAC_CHUNK_SHORT), "truncated") != NULL);

	/* two frames, one per half (the writer's two threads): read as one */
	size_t n1 = ZSTD_compress(z, L, data, L / 2, 1);
	size_t n2 = ZSTD_compress(z + n1, L - n1, data + L / 2, L / 2, 1);
	REQUIRE(!ZSTD_isError(n1) && !ZSTD_isError(n2) && n1 + n2 < L);
	REQUIRE(ftruncate(fd, 0) == 0 && pwrite(fd, z, n1 + n2, 4096) == (ssize_t)(n1 + n2));
	k.zlen = (uint32_t)(n1 + n2);
	memset(out, 0, L);
	CHECK_EQ(crac_img_chunk_read(fd, &k, out, zbuf, L, dctx, &crc), 0);
	CHECK(memcmp(out, data, L) == 0);
	/* the second frame a legacy one (decoding it would allocate) or a
	 * skippable one: refused */
	static const uint32_t magics[] = { 0xFD2FB527u, 0x184D2A50u };
	for (int i = 0; i < 2; i++) {
		REQUIRE(pwrite(fd, &magics[i], 4, 4096 + n1) == 4);
		CHECK_EQ(crac_img_chunk_read(fd, &k, out, zbuf, L, dctx, &crc), CRAC_CHUNK_FRAME);
	}
	close(fd);
	free(dmem);
	free(data), free(out), free(z), free(zbuf);
#else
	CHECK(!crac_img_have_zstd());
	CHECK_EQ(crac_img_zstd_dctx_size(), 0);
#endif
}

int main(void)
{
	RUN(test_crc32c);
	RUN(test_crc32c_every_length);
	RUN(test_crc32c_pick);
	RUN(test_put_escaped_cut);
	RUN(test_lazy_candidate);
	RUN(test_lazy_pick);
	RUN(test_roundtrip);
	RUN(test_truncated);
	RUN(test_corrupt);
	RUN(test_version_and_magic);
	RUN(test_fds);
	RUN(test_signals);
	RUN(test_refs);
	RUN(test_inconsistent);
	RUN(test_cpu);
	RUN(test_dir);
	RUN(test_split);
	RUN(test_compressed_fields);
	RUN(test_chunk_read);
	return t_done();
}
