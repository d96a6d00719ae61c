#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The image engine's temporary (DIR.tmp-PID-START-XXXXXX) is made, opened
# and locked by bounded helpers (image/dir.c crac_img_tmp_create_msg): a
# file system that stops answering at that moment keeps the checkpoint no
# longer than its deadline (before, the mkdtemp, open and flock were made
# directly, for as long as the file system liked). The step is simulated
# with CRAC_TEST_SLOW_FS (a helper that sleeps before its call).

bats_require_minimum_version 1.5.0

load common
load stuck_common

setup() {
	stuck_setup tmpstuck
}

teardown() {
	common_teardown
}

# tmp_given_up STEP WHAT: the checkpoint with STEP not returning fails
# within 10 s saying "WHAT ... did not return", the program runs on, and
# no image nor temporary is left (the one given up on is removed: its
# helper ended with its sleep before the removal).
tmp_given_up() {
	checkpoint_stuck CRAC_TEST_SLOW_FS="$1:600000"
	[ "$status" -eq 1 ]
	echo "$output" | grep -Eq "$2 did not return after [0-9]+ ms \(the checkpoint's deadline, and 1 s at least\): its file system does not answer; given up"
	[ "$ms" -lt 10000 ]
	runs_on
	ls -la "$T"
	[ -z "$(ls -d "$T"/img "$T"/img.tmp-* 2>/dev/null)" ]
}

@test "the creation of the temporary does not return: given up at the deadline naming it, nothing left, the program runs on" {
	tmp_given_up mkdtemp "the creation of the temporary image $T/img\\.tmp-[0-9]+-[0-9]+-[A-Za-z0-9]{6}"
}

@test "the open and lock of the temporary do not return: given up at the deadline naming it, nothing left, the program runs on" {
	tmp_given_up tmplock "the open and lock of the temporary image $T/img\\.tmp-[0-9]+-[0-9]+-[A-Za-z0-9]{6}"
}

@test "without a stuck file system the temporary is made, locked and becomes the image" {
	start_prog good
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running "$pid"
	echo "$status: $output"
	[ "$status" -eq 0 ]
	"$CRAC" inspect "$T/img" >/dev/null
	[ -z "$(ls -d "$T"/img.tmp-* 2>/dev/null)" ]
}

# (its watcher, whose limit is the same, may say it first: either names the step)
@test "crac flatten --timeout 1s: the creation of its temporary that does not return is given up after 1 s, naming it; nothing left" {
	start_prog good
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running "$pid"
	[ "$status" -eq 0 ]
	t0=$(date +%s%N)
	run env CRAC_TEST_SLOW_FS=mkdtemp:600000 timeout -k 5 60 "$CRAC" flatten "$T/img" "$T/flat" --timeout 1s
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status: $output ($ms ms)"
	[ "$status" -eq 1 ]
	echo "$output" | grep -Eq "^crac: flatten $T/img: the creation of the temporary image (next to $T/flat|$T/flat\\.tmp-[0-9]+-[0-9]+-[A-Za-z0-9]{6}) did not return after [0-9]+ ms \\(crac flatten --timeout, 1000 ms\\): its file system does not answer; given up$"
	[ "$ms" -lt 10000 ]
	[ ! -e "$T/flat" ]
	! ls -d "$T"/flat.tmp-* 2>/dev/null || false
}
