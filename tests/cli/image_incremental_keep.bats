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

# keep_run [ENV...]: incr_keep (with ENV) into $T: the arena kept, not
# forked, reused; then every image it wrote restores (--populate too), and
# $output is `crac inspect` of the last one. $stderr: incr_keep's.
keep_run() {
	run --separate-stderr clean env CRAC_IMAGE_STATS=1 "$@" "$KEEP" "$T"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "kept arena"
	echo "$output" | grep -qx "child ok"
	echo "$output" | grep -qx "reused arena"
	local err="$stderr"
	for x in k0 c1 k1 k2; do
		run --separate-stderr clean "$CRAC" restore "$T/$x"
		echo "restore $x: status $status, $output, $stderr"
		[ "$status" -eq 0 ]
		[ "$output" = "ok $x" ]
		run --separate-stderr clean "$CRAC" restore --populate "$T/$x"
		[ "$status" -eq 0 ]
		[ "$output" = "ok $x" ]
	done
	stderr="$err"
	run "$CRAC" inspect "$T/k2"
}

@test "the arena is kept between incremental checkpoints, not forked, reused; every image restores" {
	keep_run CRAC_IMAGE_INCREMENTAL=1
	echo "$stderr" | grep -q "MiB referenced from 2 images below"
	echo "$output" | grep -q "^parent: .*; 2 images below"
}

@test "full keep-running images keep the arena too (a full image between incremental ones left the next a fresh one); every image restores" {
	keep_run
	! echo "$stderr" | grep -q "referenced from [1-9]" || false
	! echo "$output" | grep -q "^parent:" || false
}
