/* SPDX-License-Identifier: MIT */
/*
 * criu.h - what the criu engine (src/engines/criu.c, in the library) and
 * `crac restore DIR` for a CRIU image (src/cli/cmd_restore_criu.c) share.
 *
 * The hand-over between the two sides is one queued signal, CRAC_CRIU_SIG,
 * sent to the checkpointing thread (same tid in the restored process) with
 * rt_tgsigqueueinfo(2), si_code SI_QUEUE and a 64-bit si_value:
 *
 *     bits 63-32  CRAC_CRIU_MAGIC
 *     bits 31-24  what: CRAC_CRIU_DUMPED, CRAC_CRIU_FAILED, CRAC_CRIU_RESTORED
 *     bits 23-0   DUMPED/FAILED: criu's wait status (exit code << 8, or signal)
 *                 RESTORED: a memfd number in the sender (si_pid) holding the
 *                 new arguments and environment, 0 if none
 *
 * The memfd holds "A<arg>\0" and "E<KEY=VALUE>\0" records; the restored
 * process copies it out with pidfd_getfd(2).
 */
#ifndef CRAC_ENGINES_CRIU_H
#define CRAC_ENGINES_CRIU_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* The marker file: CRIU wrote this directory for crac (criu.c). */
#define CRAC_CRIU_MARKER "crac-criu"
/* First line of the marker. */
#define CRAC_CRIU_MARKER_MAGIC "crac-criu-image 1"

#define CRAC_CRIU_SIG (SIGRTMAX - 2)
#define CRAC_CRIU_MAGIC 0x63726163u   /* "crac" */
enum crac_criu_what {
	CRAC_CRIU_GO = 1,         /* checkpointing thread -> helper: dump now */
	CRAC_CRIU_DUMPED = 2,     /* helper -> original: criu dump succeeded */
	CRAC_CRIU_FAILED = 3,     /* helper -> original: criu dump failed */
	CRAC_CRIU_RESTORED = 4,   /* crac restore -> restored process */
};

static inline uint64_t crac_criu_value(enum crac_criu_what what, uint32_t arg)
{
	return ((uint64_t)CRAC_CRIU_MAGIC << 32) | ((uint64_t)what << 24) | (arg & 0xffffffu);
}

/*
 * Where criu is: $CRAC_CRIU (a path, or a name looked up in PATH), else
 * "criu" in PATH. Returns 0 and the path in buf, or -ENOENT with one line
 * in msg. (criu.c)
 */
int crac__criu_find(char *buf, size_t len, char *msg, size_t msglen) __attribute__((visibility("hidden")));

/*
 * Runs `CRIU check` once per process and path (the answer is kept).
 * Returns 0 if it succeeded; otherwise -ENOTSUP with CRIU's own words and
 * the hint about [vvar_vclock] / CRIU >= 4.1 in msg. (criu.c)
 */
int crac__criu_check(const char *criu, char *msg, size_t msglen) __attribute__((visibility("hidden")));

/*
 * The errors of a CRIU log file (lines with "Error" or "Warn", the time
 * stamps dropped), the last ones that fit, joined with "; ". "" if none.
 */
void crac__criu_log_errors(const char *path, char *out, size_t len) __attribute__((visibility("hidden")));

/* Is `dir` a CRIU image written by crac (it holds the marker file)? */
int crac__criu_is_image(const char *dir) __attribute__((visibility("hidden")));

/* `crac restore DIR` for such an image: crac_cmd_restore_criu, declared in
 * src/cli/cli.h (src/cli/cmd_restore_criu.c). */

#endif
