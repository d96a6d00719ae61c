#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A final fsync of the image engine that does not return (an NFS or FUSE
# server that stopped answering), simulated by CRAC_TEST_SLOW_SYNC_MS (the
# fsync helpers of src/engines/image_capture.c sleep that long before each
# fsync): the checkpoint gives up at its deadline (CRAC_TEST_SYNC_GRACE_MS
# shortens the 30 s it waits at least), says which file it was making
# durable, the program runs on and the image in place is untouched.

bats_require_minimum_version 1.5.0

load common
load stuck_common

setup() {
	common_setup syncstuck --open --control CRAC_IMAGE_SYNC_HELPER CRAC_IMAGE_INCREMENTAL \
		CRAC_TEST_SLOW_SYNC_MS CRAC_TEST_SYNC_GRACE_MS
	PROG="$CRAC_BUILD_DIR/tests/ctlprog"
	require_image_engine
}

teardown() {
	common_teardown
}

@test "an fsync that does not return: the checkpoint gives up at its deadline naming the file, the program runs on, the image in place is untouched" {
	# the image in place: another instance's
	start_prog good
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	before="$(state "$T/img")"
	start_prog stuck CRAC_TEST_SLOW_SYNC_MS=600000 CRAC_TEST_SYNC_GRACE_MS=1000
	t0=$(date +%s%N)
	run timeout -k 5 60 "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running --deadline 1000 "$pid"
	t1=$(date +%s%N)
	echo "$status: $output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -Eq "fsync $T/img\.[^ ]*/(header|pages|) ?did not return after [0-9]+ ms \(the checkpoint's deadline, and 1 s at least\): the image's file system does not answer; given up, no image was written, the program goes on"
	# the deadline (1 s) and the grace (1 s) overlap: well under 10 s
	[ $(((t1 - t0) / 1000000)) -lt 10000 ]
	# the program runs on and answers
	kill -0 "$pid"
	run "$CRAC" checkpoint --engine sim "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	# the image in place is untouched, no temporary left
	[ "$(state "$T/img")" = "$before" ]
	[ -z "$(ls -d "$T"/img.* 2>/dev/null)" ]
	# the helpers given up on ended with their sleep (a real stuck fsync
	# would leave one to the next checkpoint): no child left, not even a zombie
	ps -o pid,stat,comm --ppid "$pid" || true
	[ -z "$(ps -o pid= --ppid "$pid")" ]
}
