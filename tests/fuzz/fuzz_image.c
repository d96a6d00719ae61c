/* SPDX-License-Identifier: MIT */
/*
 * fuzz_image.c - libFuzzer target for the image header reader
 * (crac_img_parse, src/image/format.c) and the shared check routine
 * (src/image/check.c) that the restore loader and `crac inspect` run.
 *
 * Built two ways (tests/fuzz/CMakeLists.txt):
 *   - with clang and -DCRAC_FUZZ=ON: the libFuzzer binary fuzz_image;
 *   - in every build: fuzz_image_regress, which runs the files of
 *     tests/fuzz/corpus through the same function (driver.c; ctest
 *     fuzz.corpus, under ASan in the sanitizer build).
 *
 * Input layout:
 *   byte 0        flags (FZ_* below)
 *   bytes 1..     the header file. Its length L is the header's own size
 *                 field (bytes 16..23) when that lies in [24, rest], else
 *                 the whole rest of the input.
 *   after that    optional pages patch: a little-endian u64 offset, then
 *                 bytes written at that offset of the pages file.
 * The pages file is sparse: the header's pages_size bytes (when at most
 * FZ_PAGES_CAP, else just the patch), zero except for the patch. Seeds made
 * from a real image (make_corpus.sh) patch in the page that holds the resume
 * block, so the pages check gets past the resume block's magic.
 *
 * With FZ_FIX, the header's size field is set to L and its crc32c is
 * recomputed before parsing: otherwise nearly every mutation would die at the
 * checksum. Without it the bytes are parsed as given (the checksum and size
 * checks themselves are fuzzed too).
 *
 * A header that parses is written as DIR/header next to DIR/pages in a
 * private temporary directory, opened with crac_img_open, read back with
 * crac_img_read_header, and every check runs on it (file_fds NULL), then
 * crac_img_check_all (which must stop at the first check that failed on its
 * own); each check once more without a message buffer (msg NULL, msglen 0),
 * which must give the same answer. Every message must be
 * NUL-terminated inside its buffer
 * and hold no control character (image text is escaped), what the
 * parser accepted must keep its promises (check_parsed), and so must what
 * the layout check passed (check_layout_kept): otherwise abort().
 *
 * CRAC_CHECK_FILES opens the paths the image names (O_NONBLOCK, no link
 * followed, regular files only: what we want to exercise). Opening some
 * devices has side effects (a watchdog starts its timer), so the check is
 * skipped for an input naming a character or block device other than
 * /dev/null, zero, full, random and urandom. A few harmless non-regular
 * files to name live in FZ_FILES_DIR (see fuzz_image.dict).
 */
#include "image/check.h"
#include "image/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define FZ_FIX 0x01u            /* set size, recompute the header crc */
#define FZ_GROUP_WRITABLE 0x02u /* header file mode 0620 (owner check) */
#define FZ_TRUST_OWNER 0x04u    /* CRAC_IMG_TRUST_OWNER */
#define FZ_MSGLEN_SHIFT 3       /* bits 3-4: message buffer size 512, 64, 1, 0 (NULL) */
#define FZ_PAGES_SHIFT 5        /* bits 5-6: DIR/pages is a regular file, missing, a
				 * symbolic link to the header, a FIFO (refused) */
#define FZ_SMALL_CAP 0x80u      /* header read into a buffer 1 byte too small (refused) */

#define FZ_PAGES_CAP (4ull << 20)
#define FZ_FILES_DIR "/tmp/crac-fuzz-files"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int verbose;             /* CRAC_FUZZ_VERBOSE=1: print each result */
static char img_dir[64];        /* private: /tmp/crac-fuzz-img.XXXXXX */
static char header_path[96], pages_path[96];

static void remove_img_dir(void)
{
	if (!img_dir[0])
		return;
	unlink(header_path);
	unlink(pages_path);
	rmdir(img_dir);
}

static void die(const char *what)
{
	fprintf(stderr, "fuzz_image: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* The shared directory of files worth naming in an image (idempotent: parallel
 * fuzzing jobs only read it). */
static void make_files_dir(void)
{
	struct stat st;
	int fd;

	if (mkdir(FZ_FILES_DIR, 0755) < 0 && errno != EEXIST)
		die("mkdir " FZ_FILES_DIR);
	/* /tmp is shared: never work through somebody else's link or directory */
	if (lstat(FZ_FILES_DIR, &st) < 0)
		die("lstat " FZ_FILES_DIR);
	if (!S_ISDIR(st.st_mode) || (st.st_uid != geteuid() && st.st_uid != 0) || (st.st_mode & 022)) {
		fprintf(stderr, "fuzz_image: " FZ_FILES_DIR " is not a directory of ours (or root's) "
			"that only its owner can write: remove it\n");
		exit(2);
	}
	fd = open(FZ_FILES_DIR "/file", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd >= 0) {
		char b[5000];
		memset(b, 'x', sizeof(b));
		if (write(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
			die("write " FZ_FILES_DIR "/file");
		close(fd);
	}
	fd = open(FZ_FILES_DIR "/empty", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	if (mkfifo(FZ_FILES_DIR "/fifo", 0666) < 0 && errno != EEXIST)
		die("mkfifo " FZ_FILES_DIR "/fifo");
	if (symlink("file", FZ_FILES_DIR "/link") < 0 && errno != EEXIST)
		die("symlink " FZ_FILES_DIR "/link");
	if (mkdir(FZ_FILES_DIR "/dir", 0755) < 0 && errno != EEXIST)
		die("mkdir " FZ_FILES_DIR "/dir");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (img_dir[0])
		return 0;
	strcpy(img_dir, "/tmp/crac-fuzz-img.XXXXXX");
	if (!mkdtemp(img_dir))
		die("mkdtemp");
	snprintf(header_path, sizeof(header_path), "%s/" CRAC_IMG_HEADER_FILE, img_dir);
	snprintf(pages_path, sizeof(pages_path), "%s/" CRAC_IMG_PAGES_FILE, img_dir);
	atexit(remove_img_dir);
	make_files_dir();
	verbose = getenv("CRAC_FUZZ_VERBOSE") != NULL;
	return 0;
}

/* A message of the check routine: terminated inside its buffer, one line,
 * no control character (image text must come out escaped). */
static void check_msg(const char *where, const char *msg, size_t msglen)
{
	if (!msglen)
		return;
	const char *end = memchr(msg, 0, msglen);
	if (!end) {
		fprintf(stderr, "fuzz_image: %s: message not terminated inside its %zu bytes\n", where, msglen);
		abort();
	}
	for (const char *p = msg; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c == 0x7f) {
			fprintf(stderr, "fuzz_image: %s: control character 0x%02x in message \"%s\"\n", where, c, msg);
			abort();
		}
	}
}

/*
 * What crac_img_parse promises beyond memory safety, where a check of the
 * routine relies on it without testing it again (the loader moves the vDSO
 * block by these sizes): each size of the [vvar]/[vvar_vclock]/[vdso] block
 * is at most 16 MiB, as their sum is.
 */
static void check_parsed(const struct crac_img_view *v)
{
	const struct crac_img_header *h = v->h;

	/* every pending signal accepted lies in the buffer (ASan reads it
	 * whole) and names a signal a restore may queue */
	for (uint32_t i = 0; i < v->n_signals; i++) {
		const struct crac_img_signal *g = &v->signals[i];
		volatile uint8_t last = g->info[sizeof(g->info) - 1];
		(void)last;
		if (!g->signo || g->signo > CRAC_IMG_NSIG || g->signo == 9 || g->signo == 19 || g->tid < 0) {
			fprintf(stderr, "fuzz_image: crac_img_parse accepted pending signal #%u: signal %u, tid %d\n",
				i, g->signo, g->tid);
			abort();
		}
	}

	if (h->vvar_size > (1u << 24) || h->vvar_vclock_size > (1u << 24) || h->vdso_size > (1u << 24)) {
		fprintf(stderr, "fuzz_image: crac_img_parse accepted vDSO block sizes %#llx/%#llx/%#llx "
			"(their sum wraps around)\n", (unsigned long long)h->vvar_size,
			(unsigned long long)h->vvar_vclock_size, (unsigned long long)h->vdso_size);
		abort();
	}
}

/* What the layout check promises when it passes, that the restore loader
 * would otherwise find only after its point of no return: every file
 * mapping (PROT_NONE ones too) ends at or below the largest file offset
 * mmap takes (2^63 - 4096 with its length). */
static void check_layout_kept(const struct crac_img_view *v)
{
	for (uint32_t i = 0; i < v->h->n_maps; i++) {
		const struct crac_img_map *m = &v->maps[i];
		if (m->kind == CRAC_MAP_FILE && m->offset > (1ull << 63) - 4096 - (m->end - m->start)) {
			fprintf(stderr, "fuzz_image: the layout check passed mapping #%u at file offset %#llx, "
				"length %#llx: past the largest offset of a file\n", i,
				(unsigned long long)m->offset, (unsigned long long)(m->end - m->start));
			abort();
		}
	}
}

/* Whether CRAC_CHECK_FILES may open every path the image names (see top). */
static int files_safe(const struct crac_img_view *v)
{
	for (uint32_t i = 0; i < v->h->n_files; i++) {
		const char *path = crac_img_str(v, v->files[i].path);
		struct stat st;
		if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
			continue;
		if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 &&
		    (minor(st.st_rdev) == 3 || minor(st.st_rdev) == 5 || minor(st.st_rdev) == 7 ||
		     minor(st.st_rdev) == 8 || minor(st.st_rdev) == 9))
			continue;   /* null, zero, full, random, urandom */
		return 0;
	}
	return 1;
}

static void write_file(const char *path, const void *p, size_t n, uint64_t off, uint64_t size, mode_t mode)
{
	unlink(path);   /* the last input may have left a FIFO or a link there */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0)
		die(path);
	if (n && pwrite(fd, p, n, (off_t)off) != (ssize_t)n)
		die(path);
	if (size > off + n && ftruncate(fd, (off_t)size) < 0)
		die(path);
	if (fchmod(fd, mode) < 0)
		die(path);
	close(fd);
}

/* Runs the check routine on a header that parsed (buf, len), as the loader and
 * `crac inspect` would: from files. */
static void run_checks(const void *buf, uint64_t len, const struct crac_img_view *pv,
		       const uint8_t *patch, size_t patch_len, unsigned flags, char *msg, size_t msglen)
{
	uint64_t pages_size = pv->h->pages_size <= FZ_PAGES_CAP ? pv->h->pages_size : 0;
	uint64_t off = 0;
	size_t n = 0;

	if (patch_len >= 8) {
		memcpy(&off, patch, 8);
		n = patch_len - 8;
		if (off > FZ_PAGES_CAP || n > FZ_PAGES_CAP - off)
			off = n = 0;
	}
	write_file(header_path, buf, (size_t)len, 0, 0, (flags & FZ_GROUP_WRITABLE) ? 0620 : 0600);
	write_file(pages_path, n ? patch + 8 : NULL, n, off, pages_size, 0600);

	static const char *const pages_what[4] = { "", "missing", "a symbolic link", "a FIFO" };
	unsigned pages_kind = (flags >> FZ_PAGES_SHIFT) & 3;
	if (pages_kind) {
		unlink(pages_path);
		if (pages_kind == 2 && symlink(CRAC_IMG_HEADER_FILE, pages_path) < 0)
			die("symlink pages");
		if (pages_kind == 3 && mkfifo(pages_path, 0600) < 0)
			die("mkfifo pages");
	}

	struct crac_img_opened o;
	struct crac_img_view v;
	int rc = crac_img_open(img_dir, &o, msg, msglen);
	check_msg("crac_img_open", msg, msglen);
	if (pages_kind) {
		if (rc >= 0) {
			fprintf(stderr, "fuzz_image: crac_img_open accepted DIR/pages that is %s\n",
				pages_what[pages_kind]);
			abort();
		}
		if (verbose)
			fprintf(stderr, "  open %d %s\n", rc, msg ? msg : "");
		return;
	}
	if (rc < 0) {
		fprintf(stderr, "fuzz_image: crac_img_open failed on a good image directory: %s\n", msg);
		abort();
	}
	/* exactly the file's size: ASan sees any read past the header */
	void *hbuf = malloc(len ? len : 1);
	if (flags & FZ_SMALL_CAP) {
		rc = crac_img_read_header(&o, hbuf, len - 1, &v, msg, msglen);
		check_msg("crac_img_read_header", msg, msglen);
		if (rc != -EFBIG) {
			fprintf(stderr, "fuzz_image: crac_img_read_header returned %d for a header larger "
				"than its buffer\n", rc);
			abort();
		}
		free(hbuf);
		crac_img_close(&o);
		return;
	}
	rc = crac_img_read_header(&o, hbuf, len, &v, msg, msglen);
	check_msg("crac_img_read_header", msg, msglen);
	if (rc < 0) {
		/* the same bytes parsed from memory a moment ago */
		fprintf(stderr, "fuzz_image: crac_img_read_header refused what crac_img_parse accepted: %s\n", msg);
		abort();
	}

	struct crac_img_checker k = {
		.v = &v, .o = &o, .dir = img_dir,
		.flags = (flags & FZ_TRUST_OWNER) ? CRAC_IMG_TRUST_OWNER : 0,
		.file_fds = NULL,
	};
	int files_ok = files_safe(&v), first_failed = -1, first_rc = 0;
	for (int id = 0; id < CRAC_CHECK_COUNT; id++) {
		if (id == CRAC_CHECK_FILES && !files_ok)
			continue;
		rc = crac_img_check(id, &k, msg, msglen);
		check_msg(crac_img_check_name(id), msg, msglen);
		if (verbose)
			fprintf(stderr, "  check %-8s %d %s\n", crac_img_check_name(id), rc, msg ? msg : "");
		/* again without a message buffer, which check.c accepts (mbuf,
		 * crac_img_puts): the same answer */
		int rc0 = msglen ? crac_img_check(id, &k, NULL, 0) : rc;
		if (rc0 != rc) {
			fprintf(stderr, "fuzz_image: check %s returned %d with a message buffer, %d without\n",
				crac_img_check_name(id), rc, rc0);
			abort();
		}
		if (id == CRAC_CHECK_LAYOUT && rc == 0)
			check_layout_kept(&v);
		if (rc < 0 && first_failed < 0) {
			first_failed = id;
			first_rc = rc;
		}
	}
	if (verbose && !files_ok)
		fprintf(stderr, "  check files    skipped: the image names a device\n");
	if (files_ok) {
		int failed = -1;
		rc = crac_img_check_all(&k, &failed, msg, msglen);
		check_msg("crac_img_check_all", msg, msglen);
		/* the first check that failed on its own, with its answer */
		if (rc != first_rc || (rc < 0 && failed != first_failed)) {
			fprintf(stderr, "fuzz_image: crac_img_check_all returned %d (check %d), the checks one by "
				"one %d (check %d)\n", rc, failed, first_rc, first_failed);
			abort();
		}
	}
	free(hbuf);
	crac_img_close(&o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t msglens[4] = { 512, 64, 1, 0 };

	if (!img_dir[0])
		LLVMFuzzerInitialize(NULL, NULL);
	if (size < 1)
		return 0;

	unsigned flags = data[0];
	const uint8_t *body = data + 1;
	size_t rest = size - 1;
	uint64_t len = rest;

	if (rest >= 24) {
		uint64_t want;
		memcpy(&want, body + offsetof(struct crac_img_header, size), 8);
		if (want >= 24 && want <= rest)
			len = want;
	}

	/* malloc: 16-byte aligned, and exactly len bytes so that ASan sees any
	 * read past the end */
	uint8_t *buf = malloc(len ? len : 1);
	memcpy(buf, body, len);
	if ((flags & FZ_FIX) && len >= sizeof(struct crac_img_header)) {
		struct crac_img_header *h = (struct crac_img_header *)buf;
		h->size = len;
		h->crc = crac_img_header_crc(buf, len);
	}

	size_t msglen = msglens[(flags >> FZ_MSGLEN_SHIFT) & 3];
	char msgbuf[512];
	char *msg = msglen ? msgbuf : NULL;
	struct crac_img_view v;

	int rc = crac_img_parse(buf, len, &v, msg, msglen);
	check_msg("crac_img_parse", msg, msglen);
	if (verbose)
		fprintf(stderr, "flags 0x%02x, header %llu bytes: parse %d %s\n", flags,
			(unsigned long long)len, rc, msg ? msg : "");
	if (rc == 0)
		check_parsed(&v);
	if (rc == 0)
		run_checks(buf, len, &v, body + len, rest - len, flags, msg, msglen);
	free(buf);
	return 0;
}
