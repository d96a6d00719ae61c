#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A thread stopped with its tid in a register is taken for one inside the C
# library's lock code that caches it (image_threads.c, fix_cached_tid) only
# when it was interrupted in the C library: a program that keeps its own pid
# in a register while it spins gets it back unchanged after a restore (with
# the new pid put there, it answered "changed").

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/tid_register"
	T="$(mktemp -d /tmp/crac-bats-tidreg.XXXXXX)"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LOADER
	require_image_engine
}

teardown() {
	rm -rf "$T"
}

@test "a program's own pid in a register is not rewritten by a restore" {
	run clean timeout 60 "$PROG" "$T/img"
	echo "checkpoint: $status $output"
	[ "$status" -eq 0 ]
	[ -f "$T/img/header" ]
	restores_twice "restored orig=kept"
}

@test "nor when it is stopped right after a C library system call that returned 0 (sched_yield)" {
	run clean timeout 60 "$PROG" --yield "$T/img"
	echo "checkpoint: $status $output"
	[ "$status" -eq 0 ]
	[ -f "$T/img/header" ]
	for i in 1 2; do
		run clean timeout 60 "$CRAC" restore "$T/img"
		echo "restore $i: $status $output"
		[ "$status" -eq 0 ]
		[ "$output" = "restored orig=kept" ]
	done
}
