/* SPDX-License-Identifier: MIT */
/*
 * objects.h - kernel objects the image engine carries across a restore
 * (DESIGN.md §7): an unmodified program cannot close and reopen what it
 * does not know about, so its descriptors come back at the same numbers,
 * with the same flags, before any of its threads runs.
 *
 *   capture   in the checkpointing process, while every other thread is
 *             stopped (engines/image.c): reads what /proc/self/fd,
 *             /proc/self/fdinfo and the object itself tell, changing
 *             nothing (pipe content is copied with tee(2), not read), and
 *             fills one struct crac_img_fd per descriptor (image/image.h)
 *   restore   in the restore loader (src/loader), after the memory is in
 *             place and before the jump: recreates each object and puts it
 *             at its number; a second pass (epoll registrations) once
 *             every descriptor is in place
 *   probe     for the safety checks (runtime/checks.c): would this
 *             descriptor be carried, and if not, why
 *
 * One file per kind, capture and restore side by side (file.c, pipe.c,
 * eventfd.c, ...), behind the table in table.c. Every file here is compiled
 * into libcrac and into the static loader, so it is freestanding: raw
 * system calls (loader/sys.h), no libc, no allocation.
 */
#ifndef CRAC_OBJECTS_H
#define CRAC_OBJECTS_H

#include "image/image.h"
#include "loader/sys.h"

#include <sys/stat.h>

#pragma GCC visibility push(hidden)

/* struct crac_img_fd.kind */
enum crac_obj_kind {
	CRAC_OBJ_FILE = 1,      /* regular file: path, offset, identity (file.c) */
	CRAC_OBJ_DIR,           /* directory (file.c) */
	CRAC_OBJ_DEVICE,        /* stateless character device: /dev/null, zero, full, random, urandom (file.c) */
	CRAC_OBJ_PIPE,          /* one end of a pipe whose both ends are ours; unread content kept (pipe.c) */
	CRAC_OBJ_FIFO,          /* a named pipe, opened again by path (pipe.c) */
	CRAC_OBJ_EVENTFD,       /* counter and flags (eventfd.c) */
	CRAC_OBJ_TIMERFD,       /* clock, interval, remaining time (timerfd.c) */
	CRAC_OBJ_SIGNALFD,      /* signal mask (signalfd.c) */
	CRAC_OBJ_EPOLL,         /* registrations, restored last (epoll.c) */
	CRAC_OBJ_MEMFD,         /* content and seals (memfd.c) */
	CRAC_OBJ_SOCKET,        /* listening TCP/UDP/Unix socket, socket pair (socket.c) */
	CRAC_OBJ_CLOSED,        /* a connection a policy closed: the program sees its peer gone (socket.c) */
	CRAC_OBJ_INOTIFY,       /* watches (path, mask, wd number) (inotify.c) */
	CRAC_OBJ_KINDS
};

/* major(3)/minor(3) without libc (glibc's are functions at -O0) */
#define CRAC_DEV_MAJOR(d) ((unsigned)((((uint64_t)(d)) >> 8) & 0xfffu) | (unsigned)((((uint64_t)(d)) >> 32) & ~0xfffu))
#define CRAC_DEV_MINOR(d) ((unsigned)(((uint64_t)(d)) & 0xffu) | (unsigned)((((uint64_t)(d)) >> 12) & ~0xffu))

/* A device as the kernel names it inside (major << 20 | minor): fdinfo's
 * sdev, unix_diag's udiag_vfs_dev. */
static inline uint64_t crac_obj_kdev(uint64_t d)
{
	return ((uint64_t)CRAC_DEV_MAJOR(d) << 20) | CRAC_DEV_MINOR(d);
}

/* Policy decisions at the checkpoint (struct crac_obj_capture.decide). */
#define CRAC_OBJ_OMIT (-1)                 /* not carried: the restored process lacks it */
#define CRAC_OBJ_CHANGED_OK 0x10000        /* or-ed: a changed file is accepted at restore */
/* struct crac_img_fd.u[6] of files: */
#define CRAC_OBJ_F_CHANGED_OK 0x1u
#define CRAC_OBJ_F_PROC_SELF 0x2u   /* file.c: a file of the process's own /proc directory, kept as
				     * /proc/self/...: the restored process's own, no identity to check */

/* What capture reads about one descriptor, once. */
struct crac_obj_fd {
	int fd;
	struct stat st;
	char link[4096];             /* readlink /proc/self/fd/N ("pipe:[123]", a path, ...);
				      * "" if it does not fit (no path to open again) */
	char info[4096];             /* /proc/self/fdinfo/N */
	uint32_t flags;              /* "flags:" of fdinfo (file status flags) */
	uint32_t fd_flags;           /* FD_CLOEXEC */
	uint64_t pos;                /* "pos:" of fdinfo */
};

/* Reads /proc/self/fd/N, fdinfo, fstat. 0 or -errno. */
int crac_obj_read_fd(int fd, struct crac_obj_fd *d);

/* The value after "key:" in fdinfo text (base 8, 10 or 16; 0 if absent);
 * *found says whether the key was there. */
uint64_t crac_obj_info_num(const char *info, const char *key, int base, int *found);

/* The number (base 10 or 16, no prefix) after the first `key` in [s, end),
 * blanks before it skipped: one line of fdinfo ("tfd:", " ino:") or one
 * field of mountinfo (key ""). *found: whether a digit was there. */
uint64_t crac_obj_line_num(const char *s, const char *end, const char *key, int base, int *found);

/*
 * A walk over this process's descriptor numbers, /proc/self/fd read with
 * getdents64 into the caller's buffer (no allocation):
 * crac_obj_fds_open (0 or -errno), then crac_obj_fds_next until it gives
 * -1 (or the caller has found what it looked for), then crac_obj_fds_close.
 * A getdents64 error ends the walk and stays in .err; crac_obj_fds_rewind
 * starts it again from the first number.
 */
struct crac_obj_fds {
	long dfd;        /* the walk's own descriptor of /proc/self/fd (never given) */
	char *buf;       /* the caller's, for the directory's records */
	long size;
	long n, off;     /* bytes in buf, and the next record's offset */
	long err;        /* -errno of getdents64, or 0 */
};
long crac_obj_fds_open(struct crac_obj_fds *w, char *buf, long size);
/* The next descriptor number (from 0), or -1 at the end. */
int crac_obj_fds_next(struct crac_obj_fds *w);
void crac_obj_fds_rewind(struct crac_obj_fds *w);
void crac_obj_fds_close(struct crac_obj_fds *w);

/* ---- capture ------------------------------------------------------------- */

struct crac_obj_capture {
	/* set by the engine */
	int pages_fd;                /* -1: probe only (nothing is written) */
	uint64_t pages_size;         /* where data is appended (kept page-aligned) */
	struct crac_img_fd *fds;     /* room for max_fds entries */
	const char **paths;          /* per entry: its path (strings below), or NULL */
	uint32_t max_fds;
	char *strings;               /* storage for paths */
	uint64_t strings_cap;
	unsigned char *blob;         /* the blob area */
	uint64_t blob_cap;
	char *scratch;               /* 1 MiB of work space (pipe content) */
	uint64_t scratch_cap;
	const int *skip;             /* descriptors that are not the program's (the engine's own) */
	int n_skip;
	/* Policy decisions (engine): 0 for the default, CRAC_OBJ_OMIT, or a
	 * CRAC_OBJ_* kind to use (CRAC_OBJ_CLOSED for a connection a policy
	 * closes), or-ed with CRAC_OBJ_CHANGED_OK. */
	int (*decide)(void *arg, const struct crac_obj_fd *d);
	void *decide_arg;
	int no_kcmp;                 /* pretend kcmp(2) is absent: no dup detection */
	/* filled */
	uint32_t n_fds;
	uint64_t strings_used, blob_used;
};

/* Appends content to the pages file for entry e (data_off, data_len,
 * data_crc). 0 or -errno. In probe mode only counts. */
int crac_obj_put_data(struct crac_obj_capture *c, struct crac_img_fd *e, const void *buf, uint64_t len);
/* Appends kind-specific bytes to the blob area for entry e. */
int crac_obj_put_blob(struct crac_obj_capture *c, struct crac_img_fd *e, const void *buf, uint32_t len);
/* Keeps a copy of a path for entry index i (strings area). */
int crac_obj_put_path(struct crac_obj_capture *c, uint32_t i, const char *path);

/*
 * Captures every descriptor from 3 up (but c->skip). Returns 0, or -errno
 * with one line naming the descriptor that cannot be carried:
 * "fd 7 (socket:[1234], IPv4 stream socket connected to 10.0.0.1:80):
 * established connections are not carried ...".
 */
int crac_obj_capture_all(struct crac_obj_capture *c, struct crac_img_buf *why);

/*
 * pipe.c: a capture pass over the descriptors begins (c), or ends (NULL).
 * During it no descriptor is opened but by the capture itself, so the
 * pipe lookups take a negative answer (no other end in the process) from
 * the index they built in it as final. crac_obj_pipe_scans counts the
 * scans of /proc/self/fd they make (for tests: O(1) per pass).
 */
void crac_obj_pipe_pass(const struct crac_obj_capture *c);
extern unsigned long crac_obj_pipe_scans;

/*
 * For the safety checks: would descriptor fd be carried? Returns its kind
 * (CRAC_OBJ_*), or -errno with the reason it is not (why).
 */
int crac_obj_probe(int fd, struct crac_img_buf *why);

/* The policy kind name of a CRAC_OBJ_* ("file", "pipe", ...). */
const char *crac_obj_kind_name(uint32_t kind);

/*
 * The glob a refusal suggests for a policy rule (glob.c): one that parses
 * as the rule's GLOB word and matches the item, in this run and the next.
 *   crac_obj_glob_needs_quotes   1 if s must be written in double quotes
 *                                (a blank, or '#', which starts a comment)
 *   crac_obj_put_glob_literal    the first n bytes of s (up to its NUL),
 *                                fnmatch's '*', '?', '[', ']', '\' escaped,
 *                                a '"' or a control character (no rule
 *                                can hold one) as '?'
 *   crac_obj_temp_random_part    for a deleted temporary's name ("PATH
 *                                (deleted)"): the length of the part that
 *                                is random from run to run (mkstemp's
 *                                letters in /tmp, /var/tmp, /dev/shm;
 *                                O_TMPFILE's "#INODE" number),
 *                                its offset in *start; else 0 (also when
 *                                no stable part of the name, with a
 *                                letter or digit, precedes it)
 *   crac_obj_put_name_glob       a whole glob for name: escaped, quoted if
 *                                need be, a temporary's random part as
 *                                '*' (unless the glob would not fit in
 *                                a rule's word); 1 if it wrote a wildcard
 */
int crac_obj_glob_needs_quotes(const char *s);
void crac_obj_put_glob_literal(struct crac_img_buf *b, const char *s, size_t n);
size_t crac_obj_temp_random_part(const char *name, size_t *start);
int crac_obj_put_name_glob(struct crac_img_buf *b, const char *name);

/* Tests: as where the kernel refuses sock_diag (CRAC_PRETEND_MISSING=inet_diag,
 * set at libcrac's start-up): which end of a TCP connection listens is then
 * guessed from the namespace's ephemeral port range. */
extern int crac_obj_no_inet_diag;

/*
 * For an established connection (socket.c): the policy kind that names it
 * ("tcp", "unix", ...) and a glob for it that keeps its stable end, the
 * service, and matches every connection to or from that service: an
 * accepted connection (a TCP socket of this network namespace listens on
 * its local port: "127.0.0.1:6379->*", "*:8080->*" when the listener is
 * bound to every address; a Unix one on the listener's name:
 * "/run/app.sock->*") or an outgoing one ("*->10.0.0.5:5432",
 * "*->/run/app.sock"); the ephemeral port, or the unnamed or autobound
 * Unix end, becomes '*'. Both ends unnamed: "*". l, p: the local and peer
 * addresses as getsockname(2) and getpeername(2) give them (pl 0: none).
 */
const char *crac_obj_policy_kind(int domain, int type);
void crac_obj_put_connection_glob(struct crac_img_buf *b, int domain, const void *l, uint32_t ll, const void *p,
				  uint32_t pl);
/* Appends "fd N (KIND PATH): " for entry e: how every message names a descriptor. */
void crac_obj_put_entry(struct crac_img_buf *b, const struct crac_img_view *v, const struct crac_img_fd *e);

/* ---- restore (loader) ------------------------------------------------------ */

struct crac_obj_restore {
	const struct crac_img_view *v;
	int pages_fd;
	unsigned char *done;         /* n_fds flags: entry in place */
	int64_t checkpoint_realtime_ns, checkpoint_monotonic_ns;   /* clock rule of timers */
};

/*
 * Puts new descriptor nfd at entry i's number with its flags (status and
 * close-on-exec), marks it done; closes nfd if it moved. 0 or -errno.
 */
long crac_obj_place(struct crac_obj_restore *r, uint32_t i, long nfd);

/* Reads entry e's content from the pages file into buf (data_len bytes,
 * checksum verified). 0 or -errno (-EBADMSG: checksum). */
long crac_obj_read_data(struct crac_obj_restore *r, const struct crac_img_fd *e, void *buf, uint64_t cap);

/*
 * Entry e's content (data_len bytes, too large for one buffer) read from
 * the pages file in parts of at most `size` bytes into buf, each handed
 * to put(arg, part, n, at, why) (at: the part's offset in the content),
 * the checksum checked once all is read. 0; put's -errno (it says why); or
 * -errno, why saying "cannot read WHAT from the pages file" or "WHAT in
 * the pages file is damaged (checksum)" (-EBADMSG), WHAT being `what`
 * ("its content", ...).
 */
typedef long (*crac_obj_put_part)(void *arg, const char *part, long n, uint64_t at, struct crac_img_buf *why);
long crac_obj_stream_data(struct crac_obj_restore *r, const struct crac_img_fd *e, char *buf, uint64_t size,
			  const char *what, crac_obj_put_part put, void *arg, struct crac_img_buf *why);

/*
 * Recreates every descriptor of the image at its number. The caller has
 * closed everything else from 3 up and keeps r->pages_fd above every
 * number the image uses. Returns 0, or -errno with one line naming the
 * descriptor ("fd 5 (file /var/log/x): changed since the checkpoint ...").
 */
long crac_obj_restore_all(struct crac_obj_restore *r, struct crac_img_buf *why);

/* ---- the kinds ------------------------------------------------------------- */

struct crac_obj_ops {
	const char *name;            /* the kind as policies name it */
	/* Fills e (and c->paths, data, blob) from d: 0, or -errno and why. */
	int (*capture)(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
		       struct crac_img_fd *e, struct crac_img_buf *why);
	/* Creates the object of entry i and places it (crac_obj_place; a pipe
	 * places both its ends). 0, or -errno and why. */
	long (*restore)(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why);
	/* Optional second pass, once every descriptor is in place. */
	long (*finish)(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why);
};

extern const struct crac_obj_ops crac_obj_file_ops, crac_obj_dir_ops, crac_obj_device_ops,
	crac_obj_pipe_ops, crac_obj_fifo_ops, crac_obj_eventfd_ops, crac_obj_timerfd_ops,
	crac_obj_signalfd_ops, crac_obj_epoll_ops, crac_obj_memfd_ops, crac_obj_socket_ops,
	crac_obj_closed_ops, crac_obj_inotify_ops;

/* Before the point of no return (image/check.c): is the file, directory,
 * device or FIFO of entry e still the one the image saw? 0, or -errno and
 * why ("PATH changed since the checkpoint (its size differs); ..."). */
int crac_obj_file_check(const struct crac_img_view *v, const struct crac_img_fd *e, struct crac_img_buf *why);

/* Before the point of no return: is every path an inotify entry e watches
 * there, and the file the image saw? 0, or -errno and why ("wd 3: PATH"
 * + the errno's text for the caller to add, or -ESTALE with a sentence). */
int crac_obj_inotify_check(const struct crac_img_view *v, const struct crac_img_fd *e, struct crac_img_buf *why);

/* Before the point of no return: does every registration of epoll entry e
 * name a descriptor the restored process will have (0-2, or one of the
 * image's, not the instance itself), and does their count add up? 0, or
 * -EBADMSG and why ("watches fd 9, which the image does not hold"). */
int crac_obj_epoll_check(const struct crac_img_view *v, const struct crac_img_fd *e, struct crac_img_buf *why);

/* Before the point of no return: can a memfd be made here as memfd entry
 * e needs it (executable, sealed against exec: vm.memfd_noexec=2 forbids
 * an executable one)? 0, or -errno and why. */
int crac_obj_memfd_check(const struct crac_img_fd *e, struct crac_img_buf *why);

/* Before the point of no return: can a timer of timerfd entry e's clock
 * be made here (an alarm clock needs CAP_WAKE_ALARM)? 0, or -errno and
 * why. */
int crac_obj_timerfd_check(const struct crac_img_fd *e, struct crac_img_buf *why);

/* Before the point of no return: can a pipe as large as the one of pipe or
 * FIFO entry e be made here (above fs.pipe-max-size it takes
 * CAP_SYS_RESOURCE; a user's pipes are limited in total)? 0, or -errno
 * and why. */
int crac_obj_pipe_check(const struct crac_img_fd *e, struct crac_img_buf *why);

/* Before the point of no return (the loader): can the listening or bound
 * socket of entry e have its address again? An IP address or abstract
 * Unix name is bound, and kept for the restore (crac_obj_socket_held); a
 * Unix path is only looked at, nothing changed.
 * 0, or -errno and why (an entry of another kind: 0). */
int crac_obj_socket_check(const struct crac_img_view *v, const struct crac_img_fd *e, struct crac_img_buf *why);
/* Then, once every entry passed crac_obj_socket_check, still before the
 * point of no return: the listening or bound Unix socket of entry e with a
 * path is bound there (a stale socket file removed, under the directory's
 * flock) and kept for the restore. 0, or -errno and why (another entry:
 * 0). A restore refused before its point of no return calls
 * crac_obj_socket_unhold(): the socket files made are removed again, each
 * only if the file at its path is still the one made. */
int crac_obj_socket_hold_path(const struct crac_img_view *v, const struct crac_img_fd *e, struct crac_img_buf *why);
void crac_obj_socket_unhold(void);
/* The sockets the check bound and holds for the restore: their
 * descriptors into fds (at most max), how many. The loader's
 * close_inherited step keeps them open and then says so with
 * crac_obj_socket_held_kept(); without that (socket activation closed
 * them), the restore binds again. */
int crac_obj_socket_held(int *fds, int max);
void crac_obj_socket_held_kept(void);
/* Tests only ($CRAC_LOADER_TEST_LISTEN_DELAY_MS): ms slept between the bind
 * and the listen of a Unix path socket at restore (socket.c). */
void crac_obj_socket_test_listen_delay(long ms);
/* Tests only ($CRAC_LOADER_TEST_LOCKED_DELAY_MS): ms slept once the
 * directory of a Unix path is locked, before its stale socket file is
 * removed and the socket bound (socket.c). */
void crac_obj_socket_test_locked_delay(long ms);

/* Which kind a descriptor is, from its link and mode (0: none we carry). */
uint32_t crac_obj_classify(const struct crac_obj_fd *d);

#pragma GCC visibility pop

#endif
