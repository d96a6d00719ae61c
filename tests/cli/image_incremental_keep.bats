#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A process that keeps running after a checkpoint (keep-running, full or
# incremental images) keeps its engine arena from one checkpoint to the next (engines/image.c: no page faults on
# fresh scratch memory, which cost 10-20 us each on this kind of VM). The
# arena is never in an image, a forked child does not inherit it (and
# checkpoints with an arena of its own), it is reused (zeroed) by the next
# checkpoint, and every image written with it restores exactly
# (tests/progs/incr_keep.c).

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup incrkeep
	KEEP="$CRAC_BUILD_DIR/tests/incr_keep"
}

teardown() {
	common_teardown
}

@test "the arena is kept between incremental checkpoints, not forked, reused; every image restores" {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 CRAC_IMAGE_STATS=1 "$KEEP" "$T"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "kept arena"
	echo "$output" | grep -qx "child ok"
	echo "$output" | grep -qx "reused arena"
	echo "$stderr" | grep -q "MiB referenced from 2 images below"
	for x in k0 c1 k1 k2; do
		run --separate-stderr clean "$CRAC" restore "$T/$x"
		echo "restore $x: status $status, $output, $stderr"
		[ "$status" -eq 0 ]
		[ "$output" = "ok $x" ]
		run --separate-stderr clean "$CRAC" restore --populate "$T/$x"
		[ "$status" -eq 0 ]
		[ "$output" = "ok $x" ]
	done
	run "$CRAC" inspect "$T/k2"
	echo "$output" | grep -q "^parent: .*; 2 images below"
}

@test "full keep-running images keep the arena too (a full image between incremental ones left the next a fresh one); every image restores" {
	run --separate-stderr clean "$KEEP" "$T"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "kept arena"
	echo "$output" | grep -qx "child ok"
	echo "$output" | grep -qx "reused arena"
	for x in k0 c1 k1 k2; do
		run --separate-stderr clean "$CRAC" restore "$T/$x"
		echo "restore $x: status $status, $output, $stderr"
		[ "$status" -eq 0 ]
		[ "$output" = "ok $x" ]
	done
	run "$CRAC" inspect "$T/k2"
	! echo "$output" | grep -q "^parent:" || false
}
