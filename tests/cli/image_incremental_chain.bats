#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The images below an incremental checkpoint's parent are read and validated
# once; the next checkpoints of the same process only check that their files
# are still the ones it validated (stat identity of each image's directory,
# header and pages file: engines/image_track.c). These tests change an image
# below the parent between two checkpoints of a running process and check
# that the next checkpoint notices: an image replaced by another becomes a
# full image (said why), one copied anew with the same bytes stays a valid
# parent, and every image written restores.

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup incrchain
	export CRAC_CONTROL_DIR="$T/ctl"
	CRAC_LOG=info CRAC_IMAGE_INCREMENTAL=1 spawn "$T/out" "$T/out" "$CRAC" run -- sleep 100
	pid=$SPAWNED
	wait_sock "$CRAC_CONTROL_DIR/$pid.sock"
}

teardown() {
	[ -z "${pid:-}" ] || kill "$pid" 2>/dev/null || true
	rm -rf "$T"
}

# ckpt DIR: a keep-running checkpoint of the process (its info lines go to
# $T/out)
ckpt() {
	run "$CRAC" checkpoint --keep-running --image-dir "$T/$1" "$pid"
	echo "checkpoint $1: $output"
	[ "$status" -eq 0 ]
}

# below DIR N: crac inspect says DIR has N images below it (0: a full image)
below() {
	run "$CRAC" inspect "$T/$1"
	echo "inspect $1: $output"
	[ "$status" -eq 0 ]
	if [ "$2" -eq 0 ]; then
		! echo "$output" | grep -q "^parent:" || false
	else
		echo "$output" | grep -q "^parent: .*; $2 images\? below"
	fi
}

# restores DIR: the image restores (sleep runs again until timeout stops it)
restores() {
	run clean timeout 2 "$CRAC" restore "$T/$1"
	echo "restore $1: status $status, $output"
	[ "$status" -eq 124 ]
}

@test "an image two levels below replaced by another between checkpoints: the next image is full, said why" {
	ckpt i0
	ckpt i1
	ckpt i2
	below i2 2
	# i0 (below i2's parent i1) becomes another image: i1's own
	mv "$T/i0" "$T/i0.orig"
	cp -a "$T/i1" "$T/i0"
	ckpt i3
	cat "$T/out"
	grep -q "a full image was written to $T/i3: .*i0.* was replaced or changed" "$T/out"
	below i3 0
	restores i3
	# the chain goes on from the full image
	ckpt i4
	below i4 1
	restores i4
}

@test "an image below copied anew (same bytes, other files): still a valid parent; a truncated one is not" {
	ckpt i0
	ckpt i1
	ckpt i2
	cp -a "$T/i0" "$T/i0.copy"
	rm -rf "$T/i0"
	mv "$T/i0.copy" "$T/i0"
	ckpt i3
	below i3 3
	restores i3
	# a pages file of the chain cut short (the header kept): refused by
	# its size; the checkpoint writes a full image
	truncate -s -4096 "$T/i1/pages"
	ckpt i4
	cat "$T/out"
	grep -q "a full image was written to $T/i4: .*i1.*pages file is truncated" "$T/out"
	below i4 0
	restores i4
}
