#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# An image directory that is itself a mount point (a volume mounted at
# DIR, as containers do): an image is put in place by renaming a directory
# next to DIR onto it, which the kernel refuses for a mount point (EBUSY,
# EXDEV). The checkpoint and crac start fail with one line that says so
# and what to do (a directory inside the mounted file system), not a bare
# "Device or resource busy"; the image there is kept, no temporary left.

load common
load start_common

bats_require_minimum_version 1.5.0

setup() {
	T="$(mktemp -d /tmp/crac-bats-mountpt.XXXXXX)"
	chmod 755 "$T"
	start_setup
	COUNTER="$CRAC_BUILD_DIR/tests/image_counter"
	require_image_engine
	MOUNTED=
	mkdir -m 700 "$T/D"
	mount -t tmpfs -o mode=700,size=64m tmpfs "$T/D" 2>/dev/null ||
		skip "cannot mount a tmpfs here (not root, or no mount permission)"
	MOUNTED="$T/D"
}

teardown() {
	[ -z "$MOUNTED" ] || umount "$MOUNTED" 2>/dev/null || true
	start_teardown
}

@test "a checkpoint into a mount point holding an image: refused with the reason, the image kept, no temporary" {
	run clean "$COUNTER" "$T/img" 1
	[ "$status" -eq 0 ]
	cp -a "$T/img/." "$T/D/"
	rm -rf "$T/img"
	sum="$(cat "$T/D/header" "$T/D/pages" | md5sum)"
	run clean "$COUNTER" "$T/D" 2
	echo "$output"
	[ "$status" -ne 0 ]
	echo "$output" | grep -q "$T/D is a mount point"
	echo "$output" | grep -q "a directory inside the mounted file system"
	[ "$(cat "$T/D/header" "$T/D/pages" | md5sum)" = "$sum" ]
	[ "$(ls "$T" | grep -v '^D$' | grep -v '^d$')" = "" ]
	run clean "$CRAC" restore "$T/D"
	echo "$output" | grep -q "^restored: checksum="
}

@test "crac start --image on a mount point: the program runs cold, the reason says mount point, nothing left next to it" {
	bg cold "$CRAC" start --image "$T/D" --checkpoint-on-ready -- "$SERVER" "$T/d" 100
	wait_for grep -q "mount point" "$T/cold.err"
	cat "$T/cold.err"
	grep -q "$T/D is a mount point" "$T/cold.err"
	grep -q "a directory inside the mounted file system" "$T/cold.err"
	kill -0 "$pid"
	! ls -d "$T"/D.new-* 2>/dev/null || false
}
