#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Image engine and rseq: a thread with an rseq area of the program's own
# registered (not glibc's: tcmalloc registers one when glibc does not, under
# GLIBC_TUNABLES=glibc.pthread.rseq=0) cannot be carried, since the kernel
# does not say where that area is: restored without it, the program's rseq
# critical sections would run unprotected and its cpu_id stay frozen. The
# checkpoint is refused, naming the thread, and the program goes on
# (tests/progs/own_rseq). With glibc's own registration (the default), and
# with none at all (the tunable, no area of its own), threads are restored.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	OWN="$CRAC_BUILD_DIR/tests/own_rseq"
	THREADS="$CRAC_BUILD_DIR/tests/image_threads"
	T="$(mktemp -d /tmp/crac-bats-rseq.XXXXXX)"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOADER
}

teardown() {
	rm -rf "$T"
}

# own [thread]: own_rseq checkpoints into $T/img with glibc's rseq off.
own() {
	run --separate-stderr clean env GLIBC_TUNABLES=glibc.pthread.rseq=0 "$OWN" "$T/img" "$@"
	echo "checkpoint: status $status"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -ne 77 ] || skip "$output"
}

@test "an rseq area of the main thread's own: the checkpoint is refused, naming the thread" {
	own
	[ "$status" -eq 1 ]
	[[ "$output" == *"FAIL: checkpoint"* ]]
	[[ "$output" == *"rseq area of its own registered"* ]]
	[ ! -e "$T/img" ] || ! "$CRAC" inspect "$T/img" >/dev/null 2>&1
}

@test "an rseq area of another thread's own: the checkpoint is refused, naming that thread" {
	own thread
	[ "$status" -eq 1 ]
	tid="$(sed -n 's/^holder //p' <<<"$output")"
	[ -n "$tid" ]
	[[ "$output" == *"thread $tid has an rseq area of its own registered"* ]]
}

@test "no rseq at all (glibc.pthread.rseq=0, no area of its own): threads checkpoint and restore" {
	[ -x "$THREADS" ] || skip "no image_threads test program"
	run --separate-stderr clean env GLIBC_TUNABLES=glibc.pthread.rseq=0 "$THREADS" "$T/img"
	echo "checkpoint: status $status: $output $stderr"
	[ "$status" -eq 0 ]
	run --separate-stderr clean env GLIBC_TUNABLES=glibc.pthread.rseq=0 "$CRAC" restore "$T/img"
	echo "restore: status $status: $output $stderr"
	[ "$status" -eq 0 ]
	[[ "$output" == *"restored ok"* ]]
}
