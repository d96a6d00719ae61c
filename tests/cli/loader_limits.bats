#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The restore loader (the installed crac command is the same binary) under
# a low RLIMIT_AS. Its two largest buffers (the image's header, the
# headers of the images below an incremental image: up to 64 MiB each)
# were .bss: every exec of crac reserved 128 MiB of address space, and
# under `ulimit -v` below that the kernel killed any crac command with
# SIGSEGV inside its exec (crac --version too), without a word. They are
# mapped now when needed, as large as needed (src/loader/loader.c,
# loader_buf).

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/obj_hostile"
	T="$(mktemp -d /tmp/crac-bats-limits.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
	require_image_engine
}

teardown() {
	rm -rf "$T"
}

@test "under ulimit -v 60000 (60 MiB of address space): crac --version, inspect and restore run" {
	echo data >"$T/f"
	run clean "$PROG" "$T/img" "$T/f"
	echo "$output"
	[ "$status" -eq 0 ]
	run clean sh -c 'ulimit -v 60000 && exec "$0" --version' "$CRAC"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^engines:"
	run clean sh -c 'ulimit -v 60000 && exec "$0" inspect "$1"' "$CRAC" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	run clean sh -c 'ulimit -v 60000 && exec "$0" restore "$1"' "$CRAC" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "fd 5: regular"
	# the program had no RLIMIT_AS: the restore under one cannot raise it, and says so
	echo "$output" | grep -q "resource limit RLIMIT_AS not restored (soft unlimited, hard unlimited; here 61440000, 61440000): Operation not permitted"
}

@test "an image whose mappings exceed RLIMIT_AS is refused before the point of no return, naming the limit" {
	# 256 MiB of the image's own memory (tests/progs/image_lazy), restored
	# under 200 MiB of address space: the loader's mmap of it failed after
	# the point of no return (the restore died there, 'Cannot allocate
	# memory')
	run clean "$CRAC_BUILD_DIR/tests/image_lazy" "$T/img" 256
	echo "$output"
	[ "$status" -eq 0 ]
	run clean sh -c 'ulimit -v 200000 && exec 3>"$2" && CRAC_LOADER_PONR_FD=3 exec "$0" restore "$1" -- read' \
		"$CRAC" "$T/img" "$T/ponr"
	echo "$output"
	[ "$status" -eq 1 ]
	[ ! -s "$T/ponr" ]
	[ "${#lines[@]}" -eq 1 ]
	echo "$output" | grep -q "^crac: restore $T/img: the image's mappings ([0-9]* bytes) exceed this process's RLIMIT_AS (204800000 bytes; ulimit -v)"
	# under enough address space, it restores
	run clean sh -c 'ulimit -v 1000000 && exec "$0" restore "$1" -- read' "$CRAC" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "ok read"
}
