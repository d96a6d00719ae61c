#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The scan of a keep-running incremental checkpoint (image_capture.c
# scan_map; written for a two-pass variant that was later dropped, kept
# for the one-pass scan): tests/progs/rev_incr_mix.c writes, reads, drops
# and writes again pages in holes and in written regions, in small pages
# and in THP, moves and grows a mapping with mremap, and makes more runs
# than one scan vector holds; every image of the chain of seven restores
# every byte. (The two-pass variant without the clipping of its first pass
# to where the second one stopped restored stale bytes of k0 in F2 at k2.)
# tests/progs/rev_incr_fork.c: a fork after such a checkpoint, the child
# and the parent checkpointing on.

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup revmix
	MIX="$CRAC_BUILD_DIR/tests/rev_incr_mix"
	mkdir -m 777 "$T/c"   # (nobody writes the chain in one test)
}

teardown() {
	common_teardown
}

# chain AS...: the program, then every image restored (lazily and
# populated), each run as AS (nothing, or setpriv to nobody)
chain() {
	run --separate-stderr clean "$@" env CRAC_IMAGE_INCREMENTAL=1 CRAC_IMAGE_STATS=1 "$MIX" "$T/c"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | tail -1)" = "done" ]
	PROG_ERR=$stderr
	echo "$PROG_ERR" | grep -q "referenced from 6 images below"
	for x in k0 k1 k2 k3 k4 k5 k6; do
		for how in "" --populate; do
			run --separate-stderr clean "$@" "$CRAC" restore $how "$T/c/$x"
			echo "restore $how $x: status $status, $output, $stderr"
			[ "$status" -eq 0 ]
			[ "$output" = "ok $x" ]
		done
	done
}

@test "holes, THP, mremap and full scan vectors: every image of a chain of seven restores every byte" {
	chain
	# the incremental images went through the O_DIRECT helper
	[ "$(nproc)" -lt 2 ] || echo "$PROG_ERR" | grep -q "written with O_DIRECT by a helper on the other CPU"
}

@test "the same chain with the O_DIRECT writer in this thread (CRAC_IMAGE_DIRECT_HELPER=0)" {
	chain env CRAC_IMAGE_DIRECT_HELPER=0
	! echo "$PROG_ERR" | grep -q "by a helper on the other CPU"
	echo "$PROG_ERR" | grep -q "written with O_DIRECT (the default for an incremental image)"
}

@test "the same chain unprivileged (nobody)" {
	[ "$(id -u)" -eq 0 ] || skip "needs root (to become nobody)"
	chain setpriv --reuid=nobody --regid=nogroup --clear-groups
}

@test "fork after a keep-running incremental checkpoint: the child's and the parent's next images restore every byte" {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 CRAC_IMAGE_STATS=1 "$CRAC_BUILD_DIR/tests/rev_incr_fork" "$T/c"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | tail -1)" = "done" ]
	echo "$output" | grep -qx "child done"
	for x in k0 c1 c2 p1; do
		for how in "" --populate; do
			run --separate-stderr clean "$CRAC" restore $how "$T/c/$x"
			echo "restore $how $x: status $status, $output, $stderr"
			[ "$status" -eq 0 ]
			[ "$output" = "ok $x" ]
		done
	done
}
