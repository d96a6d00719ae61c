#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Compressed images restored lazily, in every build: scripts/test.sh runs
# this file in the AddressSanitizer build too, with ASan-built programs.
# There libzstd's memcpy, memmove and memset were ASan's interceptors,
# which look at the shadow of the memory they are given: the checkpoint's
# compressor, reading the program's pages, stopped on ASan's heap redzones
# ("heap-buffer-overflow ... in ZSTD_buildSeqStore"), and the lazy loader
# thread of the restored process, decompressing into its own buffers, faulted
# on the restored shadow it was itself to load and waited for itself for
# ever (both threads in handle_userfault). libzstd now calls copies that
# touch only the bytes they are given (src/image/nosan_mem.c). Every
# restore here has 30 s, then is killed: a deadlock fails the test.

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup zlazy CRAC_IMAGE_COMPRESS CRAC_IMAGE_INCREMENTAL
	PROG="$CRAC_BUILD_DIR/tests/image_zstd"
	require_zstd
}

teardown() {
	common_teardown
}

# restore_ok STAGE DIR [restore options...]: the restored program finds
# every page as it was (30 s at most)
restore_ok() {
	local stage=$1 dir=$2
	shift 2
	run --separate-stderr clean timeout -s KILL 30 "$CRAC" restore "$@" "$dir"
	echo "restore $* $dir: status $status"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok stage $stage" ]
}

@test "compressed by the checkpoint and by crac flatten: lazy restores (prefetch on and off) and an eager one give back every page" {
	run --separate-stderr clean env CRAC_IMAGE_COMPRESS=1 "$PROG" "$T/i0" "$T/i1"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "continued after stage 0" ]
	run clean "$CRAC" inspect "$T/i1"
	echo "$output" | grep -Eq "^compress: *zstd, [1-9][0-9]* of"
	# an image made uncompressed, compressed by crac flatten
	run --separate-stderr clean "$PROG" "$T/u0" "$T/u1"
	[ "$status" -eq 0 ]
	run clean "$CRAC" flatten "$T/u1" "$T/f" --compress=1
	echo "$output"
	[ "$status" -eq 0 ]
	run clean "$CRAC" restore --lazy --stats "$T/i1"
	if echo "$output" | grep -q -- "--lazy: lazy restore needs"; then
		restore_ok 1 "$T/i1" --populate
		skip "no userfaultfd for kernel faults here: $output"
	fi
	for d in i1 f; do
		restore_ok 1 "$T/$d" --lazy --stats
		echo "$stderr" | grep -q "lazy: large anonymous mappings load in the background"
		CRAC_LAZY_PREFETCH=off restore_ok 1 "$T/$d" --lazy
		restore_ok 1 "$T/$d" --populate
	done
}
