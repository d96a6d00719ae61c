/* SPDX-License-Identifier: MIT */
/*
 * ckpt_zero - all-zero pages: left out of the image where the restore
 * gives zeros anyway (anonymous memory), kept where it would not (a
 * private file mapping, whose missing pages come back from the file).
 *
 *   ckpt_zero DIR FILE [MIB]
 *
 * Maps MIB mebibytes (default 16) of private anonymous memory and writes
 * every page; then zeroes every other 64 KiB block again (written, then
 * cleared: resident, dirty, all zero - not the kernel's zero page), so that
 * half of the heap is zeros. Creates FILE (16 pages of 0xab), maps it
 * MAP_PRIVATE read-write and zeroes pages 2-5 of the mapping, writes a
 * pattern into page 7. Checkpoints into DIR with the image engine (the
 * original exits 0 there) and, restored, checks every byte of both:
 *
 *   before: heap=X file=Y
 *   restored: heap=X file=Y
 *   pages ok
 *
 * or "FAIL: ..." and exit 1.
 */
#include <crac.h>

#include "fnv.h"
#include "image_ckpt.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096u
#define BLOCK (64u << 10)
#define FILE_PAGES 16u

static unsigned char *heap, *fmap;
static size_t heap_len;

/* The byte the heap holds at i: zero in odd blocks. */
static unsigned char heap_byte(size_t i)
{
	if ((i / BLOCK) % 2)
		return 0;
	return (unsigned char)((i * 2654435761u) >> 13 | 1);
}

static unsigned char file_byte(size_t i)
{
	size_t page = i / PG;
	if (page >= 2 && page <= 5)
		return 0;
	if (page == 7)
		return (unsigned char)(i * 31 + 7);
	return 0xab;
}

static int check(const char *when)
{
	for (size_t i = 0; i < heap_len; i++)
		if (heap[i] != heap_byte(i)) {
			printf("FAIL: %s: heap byte %zu (page %zu) is %u, not %u\n", when, i, i / PG, heap[i],
			       heap_byte(i));
			return -1;
		}
	for (size_t i = 0; i < FILE_PAGES * PG; i++)
		if (fmap[i] != file_byte(i)) {
			printf("FAIL: %s: file mapping byte %zu (page %zu) is %u, not %u\n", when, i, i / PG,
			       fmap[i], file_byte(i));
			return -1;
		}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: ckpt_zero DIR FILE [MIB]\n");
		return 2;
	}
	heap_len = (argc > 3 ? strtoul(argv[3], NULL, 10) : 16) << 20;
	heap = mmap(NULL, heap_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (heap == MAP_FAILED) {
		perror("mmap heap");
		return 1;
	}
	memset(heap, 0x77, heap_len);          /* every page written ... */
	for (size_t i = 0; i < heap_len; i++)  /* ... then half of them zero again */
		heap[i] = heap_byte(i);

	int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror(argv[2]);
		return 1;
	}
	unsigned char page[PG];
	memset(page, 0xab, sizeof(page));
	for (unsigned i = 0; i < FILE_PAGES; i++)
		if (write(fd, page, PG) != PG) {
			perror("write");
			return 1;
		}
	fmap = mmap(NULL, FILE_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (fmap == MAP_FAILED) {
		perror("mmap file");
		return 1;
	}
	for (size_t i = 0; i < FILE_PAGES * PG; i++)
		if (fmap[i] != file_byte(i))
			fmap[i] = file_byte(i);
	if (check("before") < 0)
		return 1;

	uint64_t h = fnv(FNV_START, heap, heap_len), f = fnv(FNV_START, fmap, FILE_PAGES * PG);
	printf("before: heap=%016llx file=%016llx\n", (unsigned long long)h, (unsigned long long)f);
	fflush(stdout);

	image_restored(argv[1]);

	printf("restored: heap=%016llx file=%016llx\n", (unsigned long long)fnv(FNV_START, heap, heap_len),
	       (unsigned long long)fnv(FNV_START, fmap, FILE_PAGES * PG));
	if (check("restored") < 0)
		return 1;
	printf("pages ok\n");
	return 0;
}
