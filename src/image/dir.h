/* SPDX-License-Identifier: MIT */
/*
 * dir.h - image directories on disk (library side; see dir.c).
 */
#ifndef CRAC_IMAGE_DIR_H
#define CRAC_IMAGE_DIR_H

#include "core/internal.h"
#include "image/image.h"

#include <sys/stat.h>

/* A header read into memory and validated. */
struct crac_img_loaded {
	void *buf;
	uint64_t len;
	struct crac_img_view v;
};

/*
 * Reads DIR/header, validates it (crac_img_parse) and checks that DIR/pages
 * has the recorded size. On failure returns a negative errno with a
 * one-line reason (naming the file) in msg.
 */
int crac_img_load(const char *dir, struct crac_img_loaded *out, char *msg, size_t msglen) CRAC_HIDDEN;
void crac_img_unload(struct crac_img_loaded *l) CRAC_HIDDEN;

/* Reads every chunk of DIR/pages and checks its crc32c. */
int crac_img_verify_pages(const char *dir, const struct crac_img_view *v, char *msg, size_t msglen) CRAC_HIDDEN;
/* The same, calling step(ctx, path, i) before each read of a file: i -1
 * the open of path (DIR/pages), i < n_chunks chunk #i, then n_chunks + k
 * the data of descriptor k (crac flatten's watcher: each may not return). */
int crac_img_verify_pages_steps(const char *dir, const struct crac_img_view *v,
				void (*step)(void *ctx, const char *path, long i), void *ctx, char *msg,
				size_t msglen) CRAC_HIDDEN;

/* Reading chunks in a program with libc (crac inspect, flatten): the
 * buffers crac_img_chunk_read needs, malloc'd. */
struct crac_img_reader {
	void *zbuf, *dmem, *dctx;
	struct crac_img_crc crc;
};
int crac_img_reader_init(struct crac_img_reader *r) CRAC_HIDDEN;   /* 0 or -ENOMEM */
void crac_img_reader_free(struct crac_img_reader *r) CRAC_HIDDEN;
/* crac_img_chunk_read of chunk k into dst (k->len bytes). */
long crac_img_reader_read(struct crac_img_reader *r, int fd, const struct crac_img_chunk *k, void *dst) CRAC_HIDDEN;

/*
 * May a checkpoint write its image at `dir`? Returns 0 if nothing is there,
 * 1 if `dir` is a crac image of the caller (a directory, not a symbolic
 * link, owned by the effective uid, holding only `header` - starting with
 * the image magic - and `pages`), which a checkpoint may replace. Anything
 * else: a negative errno (-EEXIST, -EPERM for another owner) and one line
 * in msg naming dir and what it is. Never changes anything.
 */
int crac_img_target_check(const char *dir, char *msg, size_t msglen) CRAC_HIDDEN;

/*
 * Puts the finished image directory `tmp` in place as `dir` atomically
 * (replacing a previous image; crac_img_target_check again first), fsyncs
 * the parent, removes the old image. Returns:
 *   < 0  nothing was committed (msg says why; `tmp` is still there)
 *   0    committed
 *   1    committed, with a warning in msg (the old image could not be
 *        removed, or the fsync of the parent failed)
 */
int crac_img_commit(const char *tmp, const char *dir, char *msg, size_t msglen) CRAC_HIDDEN;
/*
 * The same, replacing only the directory `expect` identifies (st_dev and
 * st_ino, as lstat saw it before the image was written; NULL: whatever
 * crac image is there; a zero st_ino: nothing may be there). What the
 * rename took out of place is looked at after it: another directory (a
 * commit into DIR meanwhile, between the last check and the rename) is
 * put back at once, and -EEXIST says so; nothing was committed then. If
 * putting it back fails (-errno), ours stays at DIR and the other one is
 * kept: moved to DIR.kept-PID-START-N (a name no cleaner takes), or, that
 * rename failing too, left at `tmp`, locked while this process runs; no
 * removal by this process (crac_img_remove of `tmp` by the caller,
 * crac_img_clean_stale) touches it, and msg names where it is. The same
 * for a previous image that could not be looked at (1).
 * CRAC_TEST_NO_EXCHANGE=back (tests only): the exchange back fails;
 * =back-keep: the move to the kept name too.
 */
int crac_img_commit_expect(const char *tmp, const char *dir, const struct stat *expect, char *msg,
			   size_t msglen) CRAC_HIDDEN;
/*
 * The same for an image of another engine (criu.c): ops->check says
 * whether `dir` may be replaced (as crac_img_target_check: 0 nothing
 * there, 1 an image of ours, < 0 refused with msg), ops->remove removes the
 * previous image (as crac_img_remove_msg). NULL ops, or a NULL member:
 * those of the image engine. On a file system without RENAME_EXCHANGE
 * (NFS, FUSE, vfat: EINVAL) the previous image is moved aside as
 * DIR.old-PID-START, the new one renamed in, the old one removed; put back
 * if the new one cannot take its place. CRAC_TEST_NO_EXCHANGE=1 (tests
 * only) takes that way on any file system.
 */
struct crac_img_commit_ops {
	int (*check)(const char *dir, char *msg, size_t msglen);
	int (*remove)(const char *dir, char *msg, size_t msglen);
};
int crac_img_commit_with(const char *tmp, const char *dir, const struct stat *expect,
			 const struct crac_img_commit_ops *ops, char *msg, size_t msglen) CRAC_HIDDEN;

/*
 * Temporaries. An image is written in DIR.tmp-PID-START-XXXXXX (PID and
 * START: the writer's pid and its start time, field 22 of /proc/PID/stat);
 * file systems without RENAME_EXCHANGE briefly keep the previous image as
 * DIR.old-PID-START. crac_img_tmp_name() fills `out` with the template for
 * mkdtemp(); the writer holds flock(LOCK_EX) on the directory until its
 * rename. crac_img_clean_stale() removes, next to DIR, the temporaries of
 * DIR whose writer is gone (or is the caller, which must not be writing
 * one) and that no writer holds locked, owned by the caller, holding
 * nothing but header and pages; follows no symbolic link; *removed counts
 * them. A previous image moved aside (DIR.old-PID-START) whose writer is
 * gone before a new image took its place is put back at DIR when nothing
 * is there, only if it is a real directory (no symbolic link), owned by
 * the caller's effective uid (root's too: never another user's), not
 * locked (its writer alive in another pid namespace, another cleaner),
 * and an image (header with the magic); otherwise it is left where it is.
 */
int crac_img_tmp_name(const char *dir, char *out, size_t len) CRAC_HIDDEN;
/* A writer's temporary: created (a random name on crac_img_tmp_name's
 * template, mode 0700, as mkdtemp makes it), opened as *fd and locked (flock LOCK_EX, held while *fd is
 * open). A cleaner in another pid namespace that takes the lock between
 * the mkdtemp and the flock removes it: a new one then, three tries. 0;
 * -ENAMETOOLONG; mkdir's -errno (tmp emptied); open's -errno (tmp made,
 * *fd -1); -EBUSY (removed each time as it was created). */
int crac_img_tmp_create(const char *dir, char *tmp, size_t len, int *fd) CRAC_HIDDEN;
/* The same, each step bounded (crac_img_fs_deadline): -ETIMEDOUT with msg
 * naming the temporary and the step given up on (tmp then names what may
 * still be made: the caller removes it). */
int crac_img_tmp_create_msg(const char *dir, char *tmp, size_t len, int *fd, char *msg, size_t msglen) CRAC_HIDDEN;
/* Temporaries named after process pid from now on (0: the caller, the
 * default): a worker names them after the command that watches it
 * (crac flatten, cli/watch.c), which outlives it and kills it when it
 * ends; the lock is the worker's. */
void crac_img_tmp_writer(int pid) CRAC_HIDDEN;
int crac_img_clean_stale(const char *dir, int *removed) CRAC_HIDDEN;
/* The same; its listing of the parent, each removal and the put-back are
 * bounded by the checkpoint's deadline (crac_img_fs_deadline): -ETIMEDOUT
 * with msg naming the directory and the step when the file system does not
 * answer. With 0, msg is empty, or says why a previous image was not put
 * back at DIR and is left where it is (a warning). */
int crac_img_clean_stale_msg(const char *dir, int *removed, char *msg, size_t msglen) CRAC_HIDDEN;
/* Start time of a process (field 22 of /proc/PID/stat), 0 if unknown. */
/* The fields of /proc/PID/stat after the command name (" STATE PPID ...",
 * proc(5)), read into buf; NULL when it cannot be read (gone, hidden). */
const char *crac_img_proc_stat(int pid, char *buf, size_t len) CRAC_HIDDEN;
unsigned long long crac_img_start_time(int pid) CRAC_HIDDEN;

/*
 * For `crac inspect PATH`: if PATH names a temporary of an image, returns 0
 * and one line in msg: "an unfinished image of D being written by pid N
 * (running)", "... being written by a process that holds it locked, not
 * pid N of this pid namespace ..." (its writer elsewhere), "... left by pid
 * N, which is gone: the next checkpoint to D removes it", and the same for
 * a set-aside previous image. -EINVAL if PATH is not named like a
 * temporary.
 */
int crac_img_tmp_describe(const char *path, char *msg, size_t msglen) CRAC_HIDDEN;

/*
 * Removes an image directory (its header and pages files, then the
 * directory itself). 0 if it does not exist. Bounded: a file system that
 * does not answer is given up on at the deadline (crac_img_fs_deadline),
 * and no sooner than 30 s after the wait began: -ETIMEDOUT, and the _msg
 * variant says which file and how long in msg (any error: one line);
 * crac_img_remove writes that line to stderr as a warning.
 */
int crac_img_remove(const char *dir) CRAC_HIDDEN;
int crac_img_remove_msg(const char *dir, char *msg, size_t msglen) CRAC_HIDDEN;
/* The same for a directory of this user's only (-EPERM for another's, no
 * link followed), with the names in more (NULL-terminated) unlinked too
 * (crac start's start-key and activation record). */
int crac_img_remove_own_msg(const char *dir, const char *const *more, char *msg, size_t msglen) CRAC_HIDDEN;

/* fsync of a directory, bounded as crac_img_remove. */
int crac_img_fsync_path(const char *path) CRAC_HIDDEN;
int crac_img_fsync_path_msg(const char *path, char *msg, size_t msglen) CRAC_HIDDEN;

/* fsync (data_only: fdatasync) of a descriptor, bounded as crac_img_remove:
 * 0, -errno, or -ETIMEDOUT with *waited_ms >= 0 when it was given up on
 * (else *waited_ms is -1). System calls only: for the image engine while
 * the program's threads are stopped (CRAC_IMAGE_SYNC_HELPER=0). */
int crac_img_fsync_fd(int fd, bool data_only, int64_t *waited_ms) CRAC_HIDDEN;

/* The deadline (CLOCK_MONOTONIC ns; 0: none) of the waits above: the
 * checkpoint's, set by the image engine for its round; each wait lasts
 * at least the grace (CRAC_BOUNDED_GRACE_MS: files are written after the
 * deadline, which is for the callbacks). */
void crac_img_fs_deadline(int64_t mono_ns) CRAC_HIDDEN;
/* The same with a grace of grace_ms (-1: the default; 0 with mono_ns 0:
 * no limit at all): the waits end at the caller's own limit (the
 * checkpoint's deadline at its setup, a command's --timeout), which
 * `bound` names in the messages ("--timeout 10s"; NULL: the default text). */
void crac_img_fs_limit(int64_t mono_ns, long grace_ms, const char *bound) CRAC_HIDDEN;
/* access(2) of path (the real ids), bounded as crac_img_remove: 0, -errno,
 * or -ETIMEDOUT; msg says which path and why (one line). */
int crac_img_access_msg(const char *path, int mode, char *msg, size_t msglen) CRAC_HIDDEN;
/* W_OK | X_OK on the directory path an image is to be made in, bounded as
 * crac_img_access_msg; a path that is no directory: -ENOTDIR, said so. */
int crac_img_dir_access_msg(const char *path, char *msg, size_t msglen) CRAC_HIDDEN;
/* open(2) of path with flags (O_CLOEXEC added) and mode, and fstat into
 * *st, bounded as crac_img_remove: the descriptor, -errno, or -ETIMEDOUT
 * ("the open of PATH did not return after ..."); msg says why (one line). */
int crac_img_open_msg(const char *path, int flags, unsigned mode, struct stat *st, char *msg,
		      size_t msglen) CRAC_HIDDEN;
/* A small regular file path (no link followed) into buf (cap bytes at
 * most; no NUL added), bounded the same way: the bytes read, -errno (not a
 * regular file: -EPERM; larger than cap: -EFBIG) or -ETIMEDOUT ("the read
 * of PATH did not return after ..."); *st its fstat unless -ETIMEDOUT or
 * the open failed. crac_img_read_part_msg(path, CRAC_IMG_WHOLE, "read",
 * ...). */
int crac_img_read_msg(const char *path, char *buf, size_t cap, struct stat *st, char *msg, size_t msglen)
	CRAC_HIDDEN;
/* What crac_img_read_part_msg reads of a file. */
enum crac_img_part {
	CRAC_IMG_WHOLE,   /* all of it; a file larger than cap: -EFBIG */
	CRAC_IMG_HEAD,    /* its first cap bytes (all of a shorter file) */
	CRAC_IMG_TAIL,    /* its last cap bytes (all of a shorter file): the end of a log */
};
/* The same for the part `part` of the file, with its size as fstat saw it
 * (a file that grows meanwhile: what it held then); slowed in tests by
 * CRAC_TEST_SLOW_FS=SLOW:MS (the criu engine's reads: `criu-log`, ...).
 * st may be NULL. */
int crac_img_read_part_msg(const char *path, enum crac_img_part part, const char *slow, char *buf, size_t cap,
			   struct stat *st, char *msg, size_t msglen) CRAC_HIDDEN;
/* What is at dir and in it, by one helper bounded the same way (the look
 * of crac_img_target_check without its parent): -errno of DIR's lstat
 * (-ENOENT: nothing there), -ETIMEDOUT with msg ("the check of DIR (the
 * lstat of it) did not return after ..."); else st_mode and st_uid of DIR
 * in *st and, when it is a directory of ours, -errno of its listing or the
 * number of entries in it that are not header, pages, the working set or
 * one of also (NULL-terminated; regular files of ours), the first three in
 * others ("a, b, c"); 0 for anything else. */
int crac_img_own_dir_msg(const char *dir, const char *const *also, struct stat *st, char *others,
			 size_t olen, char *msg, size_t msglen) CRAC_HIDDEN;
/* lstat(2) of path into *st, bounded the same way: 0, -errno or -ETIMEDOUT. */
int crac_img_lstat_msg(const char *path, struct stat *st, char *msg, size_t msglen) CRAC_HIDDEN;
/* The same, slowed in tests by CRAC_TEST_SLOW_FS=SLOW:MS instead of `lstat`. */
int crac_img_lstat_as_msg(const char *path, struct stat *st, const char *slow, char *msg, size_t msglen)
	CRAC_HIDDEN;
/* fn(arg) by a helper (bounded.h: raw system calls only; own_files: a
 * table of descriptors of its own, none of ours in it, so that one its
 * late call opens ends with it), bounded the same way: 0 when fn returned,
 * -ETIMEDOUT when it was given up on, with why ("did not return after N ms
 * (LIMIT): its file system does not answer; given up"); what fn writes
 * then must be on the helper's stack or in memory that stays (a late call
 * may still write it). Without a helper (seccomp): fn(arg) here,
 * unbounded. Slowed in tests by CRAC_TEST_SLOW_FS=SLOW:MS (NULL: never). */
int crac_img_bounded_call(const char *slow, void (*fn)(void *), void *arg, bool own_files, char *why, size_t wlen)
	CRAC_HIDDEN;
/* stat(2) (links followed) the same way. */
int crac_img_stat_msg(const char *path, struct stat *st, char *msg, size_t msglen) CRAC_HIDDEN;
/* A new file path (O_EXCL, mode 0600, no link followed) holding len bytes
 * of data, fsync'd, by one helper bounded the same way: 0, -errno (msg
 * "PATH: error") or -ETIMEDOUT with msg ("the write of PATH (its
 * creation|the write of its data|its fsync) did not return after ...");
 * a file given up on may be left, whole or not. */
int crac_img_write_new_msg(const char *path, const char *data, size_t len, char *msg, size_t msglen) CRAC_HIDDEN;
/* In directory dir (opened without following a symbolic link), the file
 * name replaced whole by len bytes of data: written to tmpname in dir
 * first, fsync'd, renamed over name (the temporary removed on failure);
 * by one helper bounded the same way: 0, -errno (msg "DIR/FILE: error")
 * or -ETIMEDOUT with msg ("the write of DIR/NAME (the open of DIR|the
 * creation of DIR/TMP|the write|the fsync|the rename into place) did not
 * return after ..."). crac_img_unlink_in_msg: dir/name removed the same
 * way ("the removal of DIR/NAME (...)"). */
int crac_img_put_file_msg(const char *dir, const char *name, const char *tmpname, const char *data, size_t len,
			  char *msg, size_t msglen) CRAC_HIDDEN;
int crac_img_unlink_in_msg(const char *dir, const char *name, char *msg, size_t msglen) CRAC_HIDDEN;
/* fcntl(fd, F_OFD_SETLK) of byte `byte` (type F_RDLCK, F_WRLCK or F_UNLCK:
 * a lock server, NFS's, may not answer), by a helper bounded the same way:
 * 0, -errno (-EAGAIN: held by another), or -ETIMEDOUT with msg ("the lock
 * of PATH (byte N) did not return after ..."; it may still be granted
 * when the server answers again, on fd's open file description: close fd
 * to have such a grant released as soon as the call returns). */
int crac_img_ofd_lock_msg(int fd, const char *path, short type, long byte, char *msg, size_t msglen) CRAC_HIDDEN;
/* rename (flags 0) or renameat2(flags) of from to to, bounded the same way:
 * 0, -errno (msg "rename FROM to TO: error") or -ETIMEDOUT with msg naming
 * both (a rename given up on may still happen when the file system answers
 * again). */
int crac_img_rename_msg(const char *from, const char *to, unsigned flags, char *msg, size_t msglen) CRAC_HIDDEN;
/* The header of image dir, read and validated as the loader reads it
 * (crac_img_open, crac_img_read_header: no link followed, never blocking,
 * regular files only), by one helper bounded the same way: 0 with the
 * header in out (crac_img_header_unmap frees it), -errno with their line
 * in msg, or -ETIMEDOUT with msg ("the open of the image DIR (...) did not
 * return after ..." or "the read of DIR/header did not return ..."). */
struct crac_img_header_map {
	void *map;              /* an anonymous mapping of map_len bytes holding the header */
	size_t map_len;
	struct crac_img_view v;
};
int crac_img_header_msg(const char *dir, struct crac_img_header_map *out, char *msg, size_t msglen) CRAC_HIDDEN;
void crac_img_header_unmap(struct crac_img_header_map *h) CRAC_HIDDEN;
/* The bytes the regular files in dir take (st_blocks; one level, no link
 * followed), bounded the same way: 0 with *bytes, -errno, or -ETIMEDOUT
 * with msg ("the look at the files of DIR did not return after ..."). */
int crac_img_dir_bytes_msg(const char *dir, long long *bytes, char *msg, size_t msglen) CRAC_HIDDEN;
/* realpath(3) of path into out (len bytes), bounded the same way (the name
 * the kernel gives the file opened with O_PATH): 0, -errno, -ENAMETOOLONG
 * or -ETIMEDOUT. */
int crac_img_realpath_msg(const char *path, char *out, size_t len, char *msg, size_t msglen) CRAC_HIDDEN;
/* The same, slowed in tests by CRAC_TEST_SLOW_FS=SLOW:MS instead of
 * `realpath` (a resolution a test tells from the others). */
int crac_img_realpath_as_msg(const char *path, char *out, size_t len, const char *slow, char *msg, size_t msglen)
	CRAC_HIDDEN;
/* access(2) of each of paths (NULL-terminated) in turn, by one helper,
 * bounded the same way: 0 and *found the index of the first that passes,
 * the last one's -errno (-ENOENT: none), or -ETIMEDOUT with msg naming the
 * path it was at (a search of PATH or of install paths). */
int crac_img_access_first_msg(const char *const *paths, int mode, int *found, char *msg, size_t msglen) CRAC_HIDDEN;
/* The names in directory dir that start with prefix, NUL after each, into
 * names (cap bytes; whole names only: those that do not fit, and more than
 * 16 KiB of them, are left out), *len bytes; bounded as crac_img_remove:
 * 0, -errno or -ETIMEDOUT, msg says which directory and why (one line). */
int crac_img_list_msg(const char *dir, const char *prefix, char *names, size_t cap, size_t *len, char *msg,
		      size_t msglen) CRAC_HIDDEN;
/* Tests only: sleeps MS ms where CRAC_TEST_SLOW_FS=OP:MS names op (a
 * caller killed at a given point: crac start's install, the previous
 * image moved aside, `aside`). */
void crac_img_test_pause(const char *op) CRAC_HIDDEN;
/* Binds what the bounded waits call (clone), before the program's threads
 * are stopped. */
void crac_img_fs_prepare(void) CRAC_HIDDEN;

/* "a/b/img" -> parent "a/b", base "img". */
int crac_img_split_path(const char *dir, char *parent, size_t plen, const char **base) CRAC_HIDDEN;
/* Is directory `dir` a mount point (another file system than its parent's,
 * or the root)? No image can be renamed onto it. */
bool crac_img_is_mount_point(const char *dir) CRAC_HIDDEN;

/* Path of the restore loader: $CRAC_LOADER, next to /proc/self/exe, or
 * CRAC_INSTALL_LIBEXECDIR. Returns 0 or -ENOENT (msg says where it looked);
 * each access(2) bounded as crac_img_remove: -ETIMEDOUT with msg ("access
 * to PATH did not return after ...") when one was given up on. */
int crac_img_loader_path(char *buf, size_t len, char *msg, size_t msglen) CRAC_HIDDEN;

#endif
