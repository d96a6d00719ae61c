#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A mapped file whose path holds a newline: /proc/self/maps writes it as
# "\012", and the capture opened that text as the path (ENOENT: "mapped file
# .../nl\012dir/prog: No such file or directory"), so such a program could
# not be checkpointed. The capture takes the path with the newline when the
# written one is not the file mapped there (device and inode decide: a path
# holding a real backslash, "\012", is kept as it is).

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-pathnl.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LOADER
	require_image_engine
}

teardown() {
	rm -rf "$T"
}

# in_dir DIR: image_counter copied into DIR, checkpointed into $T/img from
# there and restored; the restored state is the checkpointed one
in_dir() {
	mkdir -p "$1"
	cp "$CRAC_BUILD_DIR/tests/image_counter" "$1/prog"
	run clean timeout 60 "$1/prog" "$T/img"
	echo "checkpoint: $status $output"
	[ "$status" -eq 0 ]
	before="$(echo "$output" | sed -n 's/^before: checksum=//p')"
	[ -n "$before" ]
	run clean timeout 60 "$CRAC" restore "$T/img"
	echo "restore: $status $output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^restored: checksum=$before"
	rm -rf "$T/img"
}

@test "a program whose path holds a newline is checkpointed and restored" {
	in_dir "$T/nl
dir"
}

@test "a program whose path holds a real backslash sequence \\012 keeps that path" {
	in_dir "$T/bs\\012dir"
	# and both at once, the file with the newline being the one mapped
	mkdir -p "$T/both\\012x"
	cp "$CRAC_BUILD_DIR/tests/image_counter" "$T/both\\012x/prog"
	in_dir "$T/both
x"
}
