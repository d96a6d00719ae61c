/* SPDX-License-Identifier: MIT */
/*
 * activation.h - the limits of $CRAC_ACTIVATION_FDS ("SRC:DST,..."), one
 * definition for its writer, the CLI (src/cli/activation.c:
 * cli_activation_env, for `crac restore DIR` and `crac start`), and its
 * reader, the loader (src/loader/loader.c: parse_activation), so that the
 * CLI never refuses what the loader takes nor hands over what it refuses.
 */
#ifndef CRAC_LOADER_ACTIVATION_H
#define CRAC_LOADER_ACTIVATION_H

/* Entries of $CRAC_ACTIVATION_FDS, and sockets of $LISTEN_FDS: a socket
 * IDX of socket activation is 0...CRAC_ACTIVATION_MAX-1. */
#define CRAC_ACTIVATION_MAX 4096
#define CRAC_ACTIVATION_MAX_TEXT "4096"

/* The longest entry with its comma: SRC = 3 + IDX (4 digits), ':', DST (a
 * descriptor number, at most INT_MAX: 10 digits), ','. */
#define CRAC_ACTIVATION_ENTRY_MAX 16

/* The whole "CRAC_ACTIVATION_FDS=..." string of CRAC_ACTIVATION_MAX
 * entries, with its NUL: 64 KiB and a little, under the kernel's limit of
 * one environment string (MAX_ARG_STRLEN, 128 KiB). */
#define CRAC_ACTIVATION_ENV_MAX (sizeof("CRAC_ACTIVATION_FDS=") + \
				 CRAC_ACTIVATION_MAX * CRAC_ACTIVATION_ENTRY_MAX)

#endif
