/* SPDX-License-Identifier: MIT */
/*
 * cmd_image.c - image engine subcommands:
 *
 *   crac restore DIR [--populate | --lazy] [--stats] [--timens] [--trust-owner] [--env K=V]... [-- ARGS...]
 *       execs the static loader (crac-loader), which verifies the image and
 *       becomes the restored process: same pid as this command, same stdio.
 *       Large anonymous mappings load lazily when this user may handle
 *       kernel faults with userfaultfd; --populate loads everything first,
 *       --lazy refuses to restore if lazy loading is impossible.
 *       --timens first enters a new time namespace whose CLOCK_MONOTONIC and
 *       CLOCK_BOOTTIME continue from their values at checkpoint.
 *       --trust-owner restores an image owned by another user (an image is
 *       code: by default only the restoring user's own images restore).
 *   crac inspect DIR [--json] [--trust-owner]
 *       prints the header, mappings (mapped vs stored bytes), threads, and
 *       runs the loader's own checks (image/check.c) against this machine
 *       and user, plus every chunk's checksum. Exit 1 if any fails.
 */
#include "cli.h"
#include "core/internal.h"
#include "image/check.h"
#include "image/bounded.h"
#include "image/dir.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Text from an image, for the terminal: control characters as \xNN
 * (crac_img_put_escaped), whole (a path of CRAC_IMG_PATH_MAX bytes all
 * escaped, or a message of CRAC_IMG_MSG_MAX). Four results may be live at
 * once. */
static const char *esc(const char *s)
{
	static char bufs[4][4 * CRAC_IMG_PATH_MAX + CRAC_IMG_MSG_MAX];
	static int next;
	char *out = bufs[next++ & 3];
	struct crac_img_buf b = { out, 0, sizeof(bufs[0]) };

	out[0] = 0;
	crac_img_put_escaped_keep(&b, s, 0);
	return out;
}

/* ---- restore ------------------------------------------------------------------ */

/*
 * --timens: a new time namespace for this process (it then execs the
 * loader), with offsets that make CLOCK_MONOTONIC and CLOCK_BOOTTIME read
 * what they read at checkpoint. Needs CAP_SYS_ADMIN in the owning user
 * namespace. unshare(CLONE_NEWTIME) only moves our future children; a
 * single-threaded process may then join time_for_children itself, and the
 * offsets (written before any task is in the namespace) apply at once.
 */
static int enter_timens(const char *dir)
{
	struct crac_img_opened o;
	struct crac_img_view v;
	char msg[CRAC_IMG_MSG_MAX];
	struct timespec mono, boot;
	void *buf = NULL;

	/* read as the loader reads it (no FIFO waited on, no link followed) */
	if (crac_img_open(dir, &o, msg, sizeof(msg)) < 0 ||
	    !(buf = aligned_alloc(8, (o.header_size + 8) & ~7ull)) ||
	    crac_img_read_header(&o, buf, o.header_size, &v, msg, sizeof(msg)) < 0) {
		if (o.dir_fd >= 0 && !buf)
			snprintf(msg, sizeof(msg), "out of memory");
		cli_err("restore %s: %s", esc(dir), esc(msg));
		free(buf);
		crac_img_close(&o);
		return 1;
	}
	int64_t want_mono = v.h->monotonic_ns, want_boot = v.h->boottime_ns;
	free(buf);
	crac_img_close(&o);
	if (want_mono <= 0 || want_boot <= 0) {
		cli_err("restore %s --timens: the image does not record its clocks", dir);
		return 1;
	}
	if (unshare(CLONE_NEWTIME) < 0) {
		int e = errno;
		cli_err("restore %s --timens: cannot create a time namespace: %s; it needs CAP_SYS_ADMIN "
			"(run as root, or inside a user namespace: `unshare -U -r crac restore --timens ...`); "
			"without --timens crac_clock_monotonic() still never goes backwards", dir, strerror(e));
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_BOOTTIME, &boot);
	int64_t off_mono = want_mono - (mono.tv_sec * 1000000000LL + mono.tv_nsec);
	int64_t off_boot = want_boot - (boot.tv_sec * 1000000000LL + boot.tv_nsec);
	/* "<clock> <seconds> <nanoseconds>", nanoseconds in [0, 1e9) */
	char offs[160];
	long long ms = off_mono >= 0 ? off_mono / 1000000000LL : -((-off_mono + 999999999LL) / 1000000000LL);
	long long bs = off_boot >= 0 ? off_boot / 1000000000LL : -((-off_boot + 999999999LL) / 1000000000LL);
	int n = snprintf(offs, sizeof(offs), "monotonic %lld %lld\nboottime %lld %lld\n", ms,
			 (long long)(off_mono - ms * 1000000000LL), bs, (long long)(off_boot - bs * 1000000000LL));
	int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, offs, (size_t)n) != n) {
		int e = errno;
		cli_err("restore %s --timens: cannot set the clock offsets (%.*s): %s", dir, n - 1, offs, strerror(e));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	close(fd);
	fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWTIME) < 0) {
		int e = errno;
		cli_err("restore %s --timens: cannot enter the new time namespace: %s", dir, strerror(e));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	close(fd);
	return 0;
}

/* Options parsed by cmd_restore.c (--populate and --lazy together refused there). */
int crac_cmd_restore_image(const struct cli_restore *r)
{
	char loader[PATH_MAX], msg[PATH_MAX + 400];
	const char *dir = r->dir;

	char dir_ok[PATH_MAX];
	if (cli_path_arg("restore", dir, CLI_PATH_MAX, false, dir_ok, sizeof(dir_ok)) < 0)
		return 2;
	/* the search for the loader bounded (image/dir.c's helpers, by crac
	 * restore's limit: cmd_restore.c): a directory on a file system that
	 * does not answer is given up on */
	if (crac_img_loader_path(loader, sizeof(loader), msg, sizeof(msg)) < 0) {
		cli_err("%s", msg);
		return 2;
	}
	if (r->timens && enter_timens(dir) != 0)
		return 1;
	/*
	 * --verify-files: the loader also compares each mapped file's first
	 * and last page with the image's checksums, beyond its stat identity
	 * (image/check.c). Passed on in the environment of the loader (it
	 * reads CRAC_VERIFY_FILES=1; the restored program's environment is
	 * its own, from the image).
	 */
	if (r->verify)
		setenv("CRAC_VERIFY_FILES", "1", 1);

	/* loader [--populate | --lazy] [--stats] [--env K=V]... DIR [-- ARGS...] */
	char **args = calloc((size_t)(2 * r->n_env + r->n_args) + 10, sizeof(char *));
	int n = 0;
	if (!args) {
		cli_err("out of memory");
		return 1;
	}
	args[n++] = "crac-loader";
	if (r->populate)
		args[n++] = "--populate";
	if (r->lazy)
		args[n++] = "--lazy";
	if (r->stats)
		args[n++] = "--stats";
	if (r->trust)
		args[n++] = "--trust-owner";
	if (r->quiet)
		args[n++] = "--quiet";
	for (int k = 0; k < r->n_env; k++) {
		args[n++] = "--env";
		args[n++] = r->env[k];
	}
	args[n++] = (char *)dir;
	if (r->n_args) {
		args[n++] = "--";
		for (int k = 0; k < r->n_args; k++)
			args[n++] = r->args[k];
	}
	args[n] = NULL;
	fflush(NULL);
	execv(loader, args);
	cli_err("cannot run the restore loader %s: %s", loader, strerror(errno));
	free(args);
	return 2;
}

/* ---- inspect: the checks ---------------------------------------------------------- */

/*
 * The checks are the restore loader's own (image/check.c), run in the same
 * order, so that "restorable here" means what `crac restore` will do. Only
 * "data" is inspect's alone: every chunk's checksum, which the loader
 * verifies as it loads each chunk.
 */
struct check {
	const char *name;
	bool ok;
	char detail[CRAC_IMG_MSG_MAX];
};

/*
 * The chunks of the images below that v's references name, each read whole
 * (decompressed if it is: image/chunk.c) and its crc32c compared, as the
 * loader does before it copies a byte (a chunk that several references
 * name is read once). Returns how many, or -1 with the loader's own message
 * in `detail`.
 */
static long verify_referenced(const struct crac_img_view *v, const struct crac_img_chain *ch, char *detail,
			      size_t len)
{
	unsigned char *seen[CRAC_IMG_MAX_CHAIN] = { 0 };
	char *buf = malloc(CRAC_IMG_CHUNK_MAX);
	struct crac_img_reader rd;
	long n = 0;

	if (crac_img_reader_init(&rd) < 0)
		n = -1;
	for (uint32_t d = 0; d < ch->n && buf && n >= 0; d++)
		if (!(seen[d] = calloc(ch->v[d].h->n_chunks + 1, 1)))
			n = -1;
	if (!buf || n < 0) {
		snprintf(detail, len, "out of memory");
		n = -1;
	}
	for (uint32_t i = 0; n >= 0 && i < v->h->n_refs; i++) {
		const struct crac_img_ref *r = &v->refs[i];
		const struct crac_img_chunk *k = &ch->v[r->depth - 1].chunks[r->chunk];
		if (seen[r->depth - 1][r->chunk])
			continue;
		seen[r->depth - 1][r->chunk] = 1;
		struct crac_img_buf b = { detail, 0, len };
		long rc = k->len > CRAC_IMG_CHUNK_MAX ? CRAC_CHUNK_SHORT
						     : crac_img_reader_read(&rd, ch->o[r->depth - 1].pages_fd, k, buf);
		if (rc == CRAC_CHUNK_CRC || rc == CRAC_CHUNK_SHORT) {
			crac_img_put_damaged_chunk(&b, r->chunk, k, ch->path[r->depth - 1]);
			n = -1;
		} else if (rc != 0) {
			crac_img_puts(&b, "cannot read chunk #");
			crac_img_putu(&b, r->chunk);
			crac_img_puts(&b, " of ");
			crac_img_put_escaped(&b, ch->path[r->depth - 1]);   /* named by an image */
			crac_img_puts(&b, ": ");
			crac_img_puts(&b, rc < 0 ? strerror((int)-rc) : crac_img_chunk_why(rc));
			n = -1;
		} else {
			n++;
		}
	}
	for (uint32_t d = 0; d < ch->n; d++)
		free(seen[d]);
	crac_img_reader_free(&rd);
	free(buf);
	return n;
}

/* An incremental image: the images below it, opened as a restore does. */
static int chain_check(const char *dir, const struct crac_img_view *v, unsigned flags, struct check *out)
{
	struct crac_img_chain *ch = malloc(sizeof(*ch));
	void *buf = malloc(64u << 20);

	out->name = "chain";
	if (!ch || !buf) {
		out->ok = false;
		snprintf(out->detail, sizeof(out->detail), "out of memory");
	} else if (crac_img_chain_open(v, dir, flags & CRAC_IMG_TRUST_OWNER, ch, buf, 64u << 20, out->detail,
				       sizeof(out->detail)) == 0) {
		long n = verify_referenced(v, ch, out->detail, sizeof(out->detail));
		out->ok = n >= 0;
		size_t at = 0;
		if (out->ok)
			at = (size_t)snprintf(out->detail, sizeof(out->detail), "%u image%s below, each as recorded:",
					      ch->n, ch->n == 1 ? "" : "s");
		for (uint32_t i = 0; out->ok && i < ch->n && at < sizeof(out->detail); i++)
			at += (size_t)snprintf(out->detail + at, sizeof(out->detail) - at, "%s %s", i ? "," : "",
					       ch->path[i]);
		if (out->ok && at < sizeof(out->detail))
			snprintf(out->detail + at, sizeof(out->detail) - at, "; %ld chunk%s referenced, crc32c ok", n,
				 n == 1 ? "" : "s");
		crac_img_chain_close(ch);
	} else {
		out->ok = false;
	}
	free(buf);
	free(ch);
	return 1;
}

static int run_checks(const char *dir, const struct crac_img_opened *o, const struct crac_img_view *v,
		      unsigned flags, struct check *out)
{
	struct crac_img_checker k = { .v = v, .o = o, .dir = dir, .flags = flags, .file_fds = NULL };
	int n = 0;

	out[n].name = "header";
	out[n].ok = true;
	snprintf(out[n].detail, sizeof(out[n].detail), "magic, version, size, crc32c and every table ok");
	n++;
	for (int id = 0; id < CRAC_CHECK_COUNT; id++, n++) {
		out[n].name = crac_img_check_name(id);
		out[n].ok = crac_img_check(id, &k, out[n].detail, sizeof(out[n].detail)) == 0;
	}
	out[n].name = "data";
	out[n].ok = o->pages_size == v->h->pages_size &&
		    crac_img_verify_pages(dir, v, out[n].detail, sizeof(out[n].detail)) == 0;
	if (out[n].ok)
		snprintf(out[n].detail, sizeof(out[n].detail), "%u chunks, crc32c ok", v->h->n_chunks);
	else if (o->pages_size != v->h->pages_size)
		snprintf(out[n].detail, sizeof(out[n].detail), "not verified: the pages file has the wrong size");
	n++;
	if (v->h->depth)
		n += chain_check(dir, v, flags, &out[n]);
	return n;
}


/* ---- inspect: printing --------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s, 0 if s does not start one. */
static int utf8_len(const unsigned char *s)
{
	int n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;

	for (int i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
	    (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
		return 0;   /* overlong, surrogate, beyond U+10FFFF */
	return n;
}

/*
 * A JSON string that stays valid whatever the bytes: control characters as
 * \u00XX, valid UTF-8 as it is, and every byte that is not valid UTF-8 as
 * \udcXX (the "surrogateescape" convention: Python's json reads it back,
 * and the original bytes can be recovered).
 */
static void json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p) {
		int n;
		if (*p == '"' || *p == '\\') {
			fprintf(f, "\\%c", *p++);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p++);
		} else if (*p < 0x80) {
			fputc(*p++, f);
		} else if ((n = utf8_len(p)) > 0) {
			fwrite(p, 1, (size_t)n, f);
			p += n;
		} else {
			fprintf(f, "\\udc%02x", *p++);
		}
	}
	fputc('"', f);
}

static void perms(const struct crac_img_map *m, char out[5])
{
	out[0] = (m->prot & 1) ? 'r' : '-';
	out[1] = (m->prot & 2) ? 'w' : '-';
	out[2] = (m->prot & 4) ? 'x' : '-';
	out[3] = (m->flags & CRAC_MAPF_SHARED) ? 's' : 'p';
	out[4] = 0;
}

static double mib(uint64_t b)
{
	return (double)b / 1048576.0;
}

/*
 * Bytes each mapping takes from the images below (its references: an
 * incremental image), malloc'd, n_maps entries; NULL for a full image (or
 * out of memory: then counted as none).
 */
static uint64_t *below_bytes(const struct crac_img_view *v)
{
	uint64_t *b = v->h->n_refs ? calloc(v->h->n_maps + 1, sizeof(*b)) : NULL;

	for (uint32_t i = 0; b && i < v->h->n_refs; i++)
		if (v->refs[i].map < v->h->n_maps)
			b[v->refs[i].map] += v->refs[i].len;
	return b;
}

/*
 * Whether the loader leaves mapping i to the lazy loader thread (where
 * userfaultfd allows): crac_img_lazy_pick, the loader's own rule (its
 * plan_lazy), with what the mapping takes from the images below (below[i])
 * and small mappings unless CRAC_LAZY_SMALL=off (benchmarks), as the
 * loader reads it.
 */
static bool lazy_pick(const struct crac_img_view *v, uint32_t i, const uint64_t *below)
{
	const char *small = getenv("CRAC_LAZY_SMALL");

	return crac_img_lazy_pick(&v->maps[i], below ? below[i] : 0, v->h->resume, !(small && !strcmp(small, "off")));
}

/* The bytes the picked mappings hold in all (stored and from below):
 * under CRAC_IMG_LAZY_TOTAL_MIN the loader reads them at once. */
static uint64_t lazy_total(const struct crac_img_view *v, const uint64_t *below)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < v->h->n_maps; i++)
		if (lazy_pick(v, i, below))
			total += v->maps[i].stored + (below ? below[i] : 0);
	return total;
}

/* Mapping i's "L": picked, where enough is picked in all for a lazy
 * restore (enough: lazy_total of the view reaches CRAC_IMG_LAZY_TOTAL_MIN,
 * taken once by the caller). */
static bool lazy_map(const struct crac_img_view *v, uint32_t i, const uint64_t *below, bool enough)
{
	return enough && lazy_pick(v, i, below);
}


/* "SIGUSR1", "SIGRTMIN+2", or "signal 40". */
static void signal_name(uint32_t sig, char out[24])
{
	const char *abbrev = sig < 32 ? sigabbrev_np((int)sig) : NULL;

	if (abbrev)
		snprintf(out, 24, "SIG%s", abbrev);
	else if ((int)sig >= SIGRTMIN && (int)sig <= SIGRTMAX)
		snprintf(out, 24, "SIGRTMIN+%d", (int)sig - SIGRTMIN);
	else
		snprintf(out, 24, "signal %u", sig);
}

/* What a pending signal's siginfo says: "SI_QUEUE from pid 12 uid 1000
 * value 0x7", ... */
static void signal_info(const struct crac_img_signal *g, char *out, size_t len)
{
	siginfo_t si;

	memcpy(&si, g->info, sizeof(si) < sizeof(g->info) ? sizeof(si) : sizeof(g->info));
	switch (g->code) {
	case SI_USER:
	case SI_TKILL:
		snprintf(out, len, "%s from pid %d uid %u", g->code == SI_USER ? "SI_USER" : "SI_TKILL", si.si_pid,
			 si.si_uid);
		break;
	case SI_QUEUE:
		snprintf(out, len, "SI_QUEUE from pid %d uid %u value %#llx", si.si_pid, si.si_uid,
			 (unsigned long long)(uintptr_t)si.si_value.sival_ptr);
		break;
	case SI_TIMER:
		snprintf(out, len, "SI_TIMER timer %d overrun %d value %#llx", si.si_timerid, si.si_overrun,
			 (unsigned long long)(uintptr_t)si.si_value.sival_ptr);
		break;
	case SI_KERNEL:
		snprintf(out, len, "SI_KERNEL");
		break;
	default:
		snprintf(out, len, "code %d", g->code);
	}
}

static void print_text(const char *dir, const struct crac_img_view *v, const struct check *checks, int nc)
{
	const struct crac_img_header *h = v->h;
	uint64_t mapped = 0;
	time_t t = (time_t)(h->created_ns / 1000000000LL);
	char when[64];
	struct tm tm;

	for (uint32_t i = 0; i < h->n_maps; i++)
		mapped += v->maps[i].end - v->maps[i].start;
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", localtime_r(&t, &tm));
	printf("image:     %s\n", esc(dir));
	printf("format:    version %u, header %llu bytes, page data %.1f MiB in %u chunks\n", h->version,
	       (unsigned long long)h->size, mib(h->pages_size), h->n_chunks);
	printf("created:   %s\n", when);
	if (h->img_flags & CRAC_IMGF_COMPRESSED) {
		uint64_t zmem = 0, zout = 0, n = 0;
		for (uint32_t c = 0; c < h->n_chunks; c++)
			if (v->chunks[c].zlen) {
				n++;
				zmem += v->chunks[c].len;
				zout += v->chunks[c].zlen;
			}
		printf("compress:  zstd, %llu of %u chunks: %.1f MiB of memory in %.1f MiB (%.2fx)\n",
		       (unsigned long long)n, h->n_chunks, mib(zmem), mib(zout), zout ? (double)zmem / (double)zout : 1.0);
	}
	if (h->depth) {
		uint64_t ref_bytes = 0;
		for (uint32_t i = 0; i < h->n_refs; i++)
			ref_bytes += v->refs[i].len;
		printf("parent:    %s (header crc32c %#x; %u image%s below; %.1f MiB taken from them in %u ranges)\n",
		       esc(crac_img_str(v, h->parent)), h->parent_crc, h->depth, h->depth == 1 ? "" : "s",
		       mib(ref_bytes), h->n_refs);
	}
	if (h->img_flags & CRAC_IMGF_TRACK)
		printf("tracking:  a restored process tracks the pages it writes (incremental checkpoints)\n");
	printf("kernel:    %s %s\n", esc(h->kernel), esc(h->machine));
	printf("process:   pid %d, checkpointed by thread %d, cwd %s, umask %03o", h->pid, h->tid,
	       esc(crac_img_str(v, h->cwd)), h->umask);
	if (h->seccomp_filters)
		printf(", %u seccomp filter%s", h->seccomp_filters, h->seccomp_filters == 1 ? "" : "s");
	printf("\n");
	char vendor[sizeof(h->cpu.vendor) + 1];
	memcpy(vendor, h->cpu.vendor, sizeof(h->cpu.vendor));
	vendor[sizeof(h->cpu.vendor)] = 0;
	printf("cpu:       %s, XSAVE %u bytes, XCR0 %#llx, AMX permission %s\n", esc(vendor),
	       h->cpu.xsave_size, (unsigned long long)h->cpu.xcr0,
	       (h->cpu.xcomp_perm & (1ull << 18)) ? "yes" : "no");
	printf("vdso:      block at %#llx: [vvar] %#llx, [vvar_vclock] %#llx, [vdso] %#llx bytes\n",
	       (unsigned long long)h->vdso_block, (unsigned long long)h->vvar_size,
	       (unsigned long long)h->vvar_vclock_size, (unsigned long long)h->vdso_size);
	printf("brk:       %#llx-%#llx; args %#llx-%#llx; env %#llx-%#llx\n",
	       (unsigned long long)h->mm.start_brk, (unsigned long long)h->mm.brk,
	       (unsigned long long)h->mm.arg_start, (unsigned long long)h->mm.arg_end,
	       (unsigned long long)h->mm.env_start, (unsigned long long)h->mm.env_end);
	unsigned handlers = 0;
	for (int s = 0; s < CRAC_IMG_NSIG; s++)
		handlers += h->sig[s].handler > 1;
	printf("signals:   %u with handlers\n", handlers);
	uint64_t from_below = 0, *below = below_bytes(v);
	for (uint32_t i = 0; i < h->n_maps; i++)
		from_below += below ? below[i] : 0;
	uint64_t lazy = lazy_total(v, below);
	if (lazy < CRAC_IMG_LAZY_TOTAL_MIN) {
		if (h->depth)
			printf("mappings:  %u, %.1f MiB mapped, %.1f MiB stored, %.1f MiB taken from images below (none "
			       "lazy: under %llu MiB would be, read at once)\n", h->n_maps, mib(mapped), mib(h->stored),
			       mib(from_below), CRAC_IMG_LAZY_TOTAL_MIN >> 20);
		else
			printf("mappings:  %u, %.1f MiB mapped, %.1f MiB stored (none lazy: under %llu MiB would be, "
			       "read at once)\n", h->n_maps, mib(mapped), mib(h->stored), CRAC_IMG_LAZY_TOTAL_MIN >> 20);
	} else if (h->depth)
		printf("mappings:  %u, %.1f MiB mapped, %.1f MiB stored, %.1f MiB taken from images below (%.1f MiB "
		       "of them lazy where userfaultfd allows: L)\n",
		       h->n_maps, mib(mapped), mib(h->stored), mib(from_below), mib(lazy));
	else
		printf("mappings:  %u, %.1f MiB mapped, %.1f MiB stored (%.1f MiB of it lazy where userfaultfd "
		       "allows: L)\n", h->n_maps, mib(mapped), mib(h->stored), mib(lazy));
	printf("  %-12s %-12s %-4s %-11s %10s %10s  %s\n", "start", "end", "perm", "kind", "mapped", "stored", "name");
	for (uint32_t i = 0; i < h->n_maps; i++) {
		const struct crac_img_map *m = &v->maps[i];
		char p[5];
		perms(m, p);
		printf("  %012llx %012llx %-4s %-11s %9lluK %9lluK%s %s\n", (unsigned long long)m->start,
		       (unsigned long long)m->end, p, crac_img_kind_name(m->kind),
		       (unsigned long long)((m->end - m->start) >> 10), (unsigned long long)(m->stored >> 10),
		       lazy_map(v, i, below, lazy >= CRAC_IMG_LAZY_TOTAL_MIN) ? " L" : "  ", esc(crac_img_str(v, m->name)));
	}
	free(below);
	printf("threads:   %u\n", h->n_threads);
	for (uint32_t i = 0; i < h->n_threads; i++) {
		const struct crac_img_thread *th = &v->threads[i];
		char comm[17];
		memcpy(comm, th->comm, 16);
		comm[16] = 0;
		printf("  tid %-7d fs %#014llx sp %#014llx ip %#014llx %-16s%s\n", th->tid,
		       (unsigned long long)th->fs_base, (unsigned long long)th->sp, (unsigned long long)th->ip,
		       esc(comm), (th->flags & CRAC_THREADF_CHECKPOINTER) ? " (checkpointer)" : "");
	}
	printf("pending:   %u signal%s\n", v->n_signals, v->n_signals == 1 ? "" : "s");
	for (uint32_t i = 0; i < v->n_signals; i++) {
		const struct crac_img_signal *g = &v->signals[i];
		char name[24], info[128], who[24];
		signal_name(g->signo, name);
		signal_info(g, info, sizeof(info));
		if (g->tid)
			snprintf(who, sizeof(who), "tid %d", g->tid);
		else
			snprintf(who, sizeof(who), "process");
		printf("  %-11s %-12s %s\n", who, name, info);
	}
	uint64_t secret_bytes = 0;
	for (uint32_t i = 0; i < h->n_secrets; i++)
		secret_bytes += v->secrets[i].end - v->secrets[i].start;
	printf("secrets:   %u region%s, %llu bytes written as zeros\n", h->n_secrets, h->n_secrets == 1 ? "" : "s",
	       (unsigned long long)secret_bytes);
	for (uint32_t i = 0; i < h->n_secrets; i++)
		printf("  %012llx %012llx %9llu bytes\n", (unsigned long long)v->secrets[i].start,
		       (unsigned long long)v->secrets[i].end,
		       (unsigned long long)(v->secrets[i].end - v->secrets[i].start));
	printf("files:     %u\n", h->n_files);
	for (uint32_t i = 0; i < h->n_files; i++)
		printf("  %s (%llu bytes, inode %llu)\n", esc(crac_img_str(v, v->files[i].path)),
		       (unsigned long long)v->files[i].size, (unsigned long long)v->files[i].ino);
	printf("checks:\n");
	int bad = 0;
	for (int i = 0; i < nc; i++) {
		printf("  %-7s %s: %s\n", checks[i].name, checks[i].ok ? "ok" : "FAILED", esc(checks[i].detail));
		bad += !checks[i].ok;
	}
	printf("result:    %s\n", bad ? "this machine cannot restore the image" : "restorable here");
}

static void print_json(const char *dir, const struct crac_img_view *v, const struct check *checks, int nc)
{
	const struct crac_img_header *h = v->h;
	FILE *f = stdout;
	int bad = 0;

	fprintf(f, "{\"image\":");
	json_str(f, dir);
	fprintf(f, ",\"version\":%u,\"header_size\":%llu,\"pages_size\":%llu,\"stored\":%llu,\"chunks\":%u,"
		"\"created_ns\":%lld,\"kernel\":", h->version, (unsigned long long)h->size,
		(unsigned long long)h->pages_size, (unsigned long long)h->stored, h->n_chunks,
		(long long)h->created_ns);
	json_str(f, h->kernel);
	uint64_t zn = 0, zmem = 0, zout = 0;
	for (uint32_t c = 0; c < h->n_chunks; c++)
		if (v->chunks[c].zlen) {
			zn++;
			zmem += v->chunks[c].len;
			zout += v->chunks[c].zlen;
		}
	fprintf(f, ",\"compressed_chunks\":%llu,\"compressed_memory\":%llu,\"compressed_bytes\":%llu",
		(unsigned long long)zn, (unsigned long long)zmem, (unsigned long long)zout);
	fprintf(f, ",\"machine\":");
	json_str(f, h->machine);
	fprintf(f, ",\"pid\":%d,\"tid\":%d,\"umask\":%u,\"seccomp_filters\":%u,\"cwd\":", h->pid, h->tid, h->umask,
		h->seccomp_filters);
	json_str(f, crac_img_str(v, h->cwd));
	char vendor[sizeof(h->cpu.vendor) + 1];
	memcpy(vendor, h->cpu.vendor, sizeof(h->cpu.vendor));
	vendor[sizeof(h->cpu.vendor)] = 0;
	fprintf(f, ",\"cpu\":{\"vendor\":");
	json_str(f, vendor);
	fprintf(f, ",\"xsave_size\":%u,\"xcr0\":%llu,\"xcomp_perm\":%llu},", h->cpu.xsave_size,
		(unsigned long long)h->cpu.xcr0, (unsigned long long)h->cpu.xcomp_perm);
	fprintf(f, "\"vdso\":{\"block\":%llu,\"vvar\":%llu,\"vvar_vclock\":%llu,\"vdso\":%llu},",
		(unsigned long long)h->vdso_block, (unsigned long long)h->vvar_size,
		(unsigned long long)h->vvar_vclock_size, (unsigned long long)h->vdso_size);
	fprintf(f, "\"mappings\":[");
	uint64_t *below = below_bytes(v);
	bool enough = lazy_total(v, below) >= CRAC_IMG_LAZY_TOTAL_MIN;
	for (uint32_t i = 0; i < h->n_maps; i++) {
		const struct crac_img_map *m = &v->maps[i];
		char p[5];
		perms(m, p);
		fprintf(f, "%s{\"start\":%llu,\"end\":%llu,\"perms\":\"%s\",\"kind\":\"%s\",\"mapped\":%llu,"
			"\"stored\":%llu,\"chunks\":%u,\"below\":%llu,\"lazy\":%s,\"name\":", i ? "," : "",
			(unsigned long long)m->start, (unsigned long long)m->end, p, crac_img_kind_name(m->kind),
			(unsigned long long)(m->end - m->start), (unsigned long long)m->stored, m->n_chunks,
			(unsigned long long)(below ? below[i] : 0), lazy_map(v, i, below, enough) ? "true" : "false");
		json_str(f, crac_img_str(v, m->name));
		fputc('}', f);
	}
	free(below);
	fprintf(f, "],\"threads\":[");
	for (uint32_t i = 0; i < h->n_threads; i++) {
		const struct crac_img_thread *th = &v->threads[i];
		char comm[17];
		memcpy(comm, th->comm, 16);
		comm[16] = 0;
		fprintf(f, "%s{\"tid\":%d,\"checkpointer\":%s,\"fs_base\":%llu,\"sp\":%llu,\"ip\":%llu,\"comm\":",
			i ? "," : "", th->tid, (th->flags & CRAC_THREADF_CHECKPOINTER) ? "true" : "false",
			(unsigned long long)th->fs_base, (unsigned long long)th->sp, (unsigned long long)th->ip);
		json_str(f, comm);
		fputc('}', f);
	}
	fprintf(f, "],\"signals\":[");
	for (uint32_t i = 0; i < v->n_signals; i++) {
		const struct crac_img_signal *g = &v->signals[i];
		char name[24], info[128];
		signal_name(g->signo, name);
		signal_info(g, info, sizeof(info));
		fprintf(f, "%s{\"tid\":%d,\"signo\":%u,\"code\":%d,\"name\":", i ? "," : "", g->tid, g->signo,
			g->code);
		json_str(f, name);
		fprintf(f, ",\"info\":");
		json_str(f, info);
		fputc('}', f);
	}
	fprintf(f, "],\"secrets\":[");
	for (uint32_t i = 0; i < h->n_secrets; i++)
		fprintf(f, "%s{\"start\":%llu,\"end\":%llu}", i ? "," : "", (unsigned long long)v->secrets[i].start,
			(unsigned long long)v->secrets[i].end);
	fprintf(f, "],\"parent\":");
	if (h->depth) {
		uint64_t ref_bytes = 0;
		for (uint32_t i = 0; i < h->n_refs; i++)
			ref_bytes += v->refs[i].len;
		fprintf(f, "{\"path\":");
		json_str(f, crac_img_str(v, h->parent));
		fprintf(f, ",\"header_crc\":%u,\"depth\":%u,\"refs\":%u,\"ref_bytes\":%llu}", h->parent_crc, h->depth,
			h->n_refs, (unsigned long long)ref_bytes);
	} else {
		fprintf(f, "null");
	}
	fprintf(f, ",\"tracking\":%s", (h->img_flags & CRAC_IMGF_TRACK) ? "true" : "false");
	fprintf(f, ",\"files\":[");
	for (uint32_t i = 0; i < h->n_files; i++) {
		fprintf(f, "%s{\"path\":", i ? "," : "");
		json_str(f, crac_img_str(v, v->files[i].path));
		fprintf(f, ",\"size\":%llu,\"inode\":%llu}", (unsigned long long)v->files[i].size,
			(unsigned long long)v->files[i].ino);
	}
	fprintf(f, "],\"checks\":[");
	for (int i = 0; i < nc; i++) {
		fprintf(f, "%s{\"name\":\"%s\",\"ok\":%s,\"detail\":", i ? "," : "", checks[i].name,
			checks[i].ok ? "true" : "false");
		json_str(f, checks[i].detail);
		fputc('}', f);
		bad += !checks[i].ok;
	}
	fprintf(f, "],\"restorable\":%s}\n", bad ? "false" : "true");
}

int crac_cmd_inspect(int argc, char **argv)
{
	const char *usage = "usage: crac inspect DIR [--json] [--trust-owner]";
	const char *dir = NULL;
	bool json = false;
	unsigned flags = 0;
	struct crac_img_opened o;
	struct crac_img_view v;
	struct check checks[CRAC_CHECK_COUNT + 3];
	char msg[CRAC_IMG_MSG_MAX];

	static const struct option opts[] = {
		{ "json", no_argument, 0, 'j' },
		{ "trust-owner", no_argument, 0, 't' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	int c;

	while ((c = cli_getopt(argc, argv, "+:h", opts, usage)) != -1) {
		switch (c) {
		case CLI_OPERAND:
			if (dir) {
				cli_err("unexpected \"%s\" (%s)", argv[optind], usage);
				return 2;
			}
			dir = argv[optind++];
			break;
		case 'j':
			json = true;
			break;
		case 't':
			flags |= CRAC_IMG_TRUST_OWNER;
			break;
		case 'h':
			printf("%s\n"
			       "Prints the image's header, mappings, threads, pending signals, secret regions and mapped files, and\n"
			       "runs the restore loader's own checks against this machine and user.\n"
			       "  --json             print JSON instead of text\n"
			       "  --trust-owner      check the image as `crac restore --trust-owner` would\n"
			       "  --help, -h         this text\n"
			       "exit status: 0 restorable here; 1 a check failed or the image cannot be read;\n"
			       "2 usage error\n", usage);
			return 0;
		default:
			return 2;
		}
	}
	if (optind < argc) {   /* after "--" */
		if (dir) {
			cli_err("unexpected \"%s\" (%s)", argv[optind], usage);
			return 2;
		}
		dir = argv[optind++];
		if (optind < argc) {
			cli_err("unexpected \"%s\" (%s)", argv[optind], usage);
			return 2;
		}
	}
	if (!dir) {
		cli_err("%s", usage);
		return 2;
	}
	char dir_ok[PATH_MAX];
	if (cli_path_arg("inspect", dir, CLI_PATH_MAX, false, dir_ok, sizeof(dir_ok)) < 0)
		return 2;
	/* A temporary image (DIR.tmp-PID-START-X): whose it is, first. */
	char tmp_note[CRAC_IMG_MSG_MAX];
	if (crac_img_tmp_describe(dir, tmp_note, sizeof(tmp_note)) == 0)
		printf("note:      %s\n", esc(tmp_note));
	/* Opened and read as the loader does: a FIFO or a symbolic link where
	 * a file belongs is refused, never waited on or followed. */
	if (crac_img_open(dir, &o, msg, sizeof(msg)) < 0) {
		cli_err("inspect %s: %s", esc(dir), esc(msg));
		return 1;
	}
	void *buf = o.header_size <= CRAC_IMG_MAX_HEADER ? aligned_alloc(8, (o.header_size + 8) & ~7ull) : NULL;
	if (!buf || crac_img_read_header(&o, buf, o.header_size, &v, msg, sizeof(msg)) < 0) {
		if (!buf)
			snprintf(msg, sizeof(msg), "header of %llu bytes: %s", (unsigned long long)o.header_size,
				 o.header_size > CRAC_IMG_MAX_HEADER ? "too large" : "out of memory");
		cli_err("inspect %s: %s/%s: %s", esc(dir), esc(dir), CRAC_IMG_HEADER_FILE, esc(msg));
		free(buf);
		crac_img_close(&o);
		return 1;
	}
	if (crac__pretend_missing("pr_set_mm_map"))
		flags |= CRAC_IMG_PRETEND_NO_MM_MAP;
	memset(checks, 0, sizeof(checks));
	int nc = run_checks(dir, &o, &v, flags, checks);
	if (json)
		print_json(dir, &v, checks, nc);
	else
		print_text(dir, &v, checks, nc);
	int bad = 0;
	for (int i = 0; i < nc; i++)
		bad += !checks[i].ok;
	free(buf);
	crac_img_close(&o);
	return bad ? 1 : 0;
}
