#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A `crac checkpoint PID` while PID writes an image (review "robust"): the
# image engine closes the control endpoint while it writes (the socket is
# not carried), so the second request finds no endpoint. It used to say
# only that the process "has no control endpoint" and how to enable one, a
# lie about a process that has one; now it says it may be writing an image.
# A `crac checkpoint` killed (-9) in the middle: the target finishes its
# checkpoint, runs on and takes the next one.

bats_require_minimum_version 1.5.0

load common
load start_common

setup() {
	T="$(mktemp -d /tmp/crac-bats-ctlbusy.XXXXXX)"
	chmod 755 "$T"
	start_setup
	HEAP="$CRAC_BUILD_DIR/tests/ckpt_heap"
	unset CRAC_TEST_SLOW_PAGES_US CRAC_IMAGE_STATS
	require_image_engine
}

teardown() { start_teardown; }

@test "a second checkpoint request while the image is written: said that the process may be writing an image; a client killed -9 changes nothing for the target" {
	# 64 MiB written at 50 ms per MiB: about 3 s of image writing
	bg heap env CRAC_TEST_SLOW_PAGES_US=50000 "$HEAP" 64 0
	wait_for grep -qs '^ready' "$T/heap.out"
	wait_for test -S "$CRAC_CONTROL_DIR/$pid.sock"
	target=$pid
	bg first "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running "$target"
	first=$pid
	# the endpoint goes away while the image is written
	wait_for test ! -e "$CRAC_CONTROL_DIR/$target.sock"
	run "$CRAC" checkpoint --engine image --image-dir "$T/img2" --keep-running "$target"
	echo "$status: $output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"process $target has no control endpoint"*", or it is writing an image right now (its endpoint is closed until the image is written: try again then)" ]]
	# the first client killed in the middle: the checkpoint goes on
	kill -9 "$first"
	wait_for test -S "$CRAC_CONTROL_DIR/$target.sock"
	[ -d "$T/img" ]
	kill -0 "$target"
	run "$CRAC" checkpoint --engine image --image-dir "$T/img2" --keep-running "$target"
	echo "$status: $output"
	[ "$status" -eq 0 ]
	[ -d "$T/img2" ]
}
