#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Carried descriptors (src/objects/) against an objects table that names
# what it should not, and paths that became something else before the
# restore. "An image is code": the loader opens again only what the image
# saw, and only the stateless devices are ever opened as devices.
#  - a file entry whose path is a character device now, with the device's
#    numbers written into the entry (a hostile image), is refused before
#    anything is opened: the kind says what the object must be;
#  - a file whose path is longer than 511 bytes (a deep node_modules) is
#    carried with its whole path, not a truncated one.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/obj_hostile"
	EDIT="$CRAC_BUILD_DIR/tests/obj_edit"
	T="$(mktemp -d /tmp/crac-bats-hostile.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
	require_image_engine
}

teardown() {
	rm -rf "$T"
}

@test "a file entry whose path is a character device now (the entry claiming its numbers) is refused" {
	[ "$(id -u)" -eq 0 ] || skip "mknod needs root (uid $(id -u))"
	echo data >"$T/f"
	run clean "$PROG" "$T/img" "$T/f"
	echo "$output"
	[ "$status" -eq 0 ]
	# the file becomes a device node (/dev/null's numbers, 1:3), and the
	# entry claims them (u[7], the rdev a device entry keeps)
	rm "$T/f"
	mknod "$T/f" c 1 3
	"$EDIT" "$T/img" 5 u 7 0x103
	run clean "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 1 ]
	! echo "$output" | grep -q "^fd 5:" || false
	echo "$output" | grep -q "fd 5 (file): $T/f changed since the checkpoint (it is a character device now, not a regular file"
}

@test "a FIFO entry whose path is a character device now is refused before it is opened" {
	[ "$(id -u)" -eq 0 ] || skip "mknod needs root (uid $(id -u))"
	mkfifo "$T/f"
	# the FIFO opened read-only needs a writer to open without blocking: O_RDWR holder
	sleep 30 <>"$T/f" 3>&- &
	holder=$!
	run clean "$PROG" "$T/img" "$T/f"
	kill $holder
	echo "$output"
	[ "$status" -eq 0 ]
	rm "$T/f"
	mknod "$T/f" c 1 3
	"$EDIT" "$T/img" 5 u 7 0x103
	# and no birth time to compare (u[3]: its flags)
	"$EDIT" "$T/img" 5 u 3 0
	run clean "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "fd 5 (fifo): $T/f changed since the checkpoint (it is a character device now, not a fifo"
}

@test "a file whose path is longer than 511 bytes is carried with its whole path" {
	d="$T/$(printf 'd%.0s' $(seq 60))"
	d="$d/$d/$d/$d/$d/$d/$d/$d/$d"
	d="$T${d//$T/}"
	mkdir -p "$d"
	echo data >"$d/file.txt"
	[ ${#d} -gt 520 ]
	run clean "$PROG" "$T/img" "$d/file.txt"
	echo "$output"
	[ "$status" -eq 0 ]
	run clean "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "fd 5: regular"
}

@test "an entry of a kind this crac does not know, or a file entry without a path: refused before the point of no return" {
	echo data >"$T/f"
	run clean "$PROG" "$T/img" "$T/f"
	echo "$output"
	[ "$status" -eq 0 ]
	cp -a "$T/img" "$T/orig"
	# a kind past the last one this build knows (an image of a newer crac)
	"$EDIT" "$T/img" 5 kind 14
	run clean "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	echo "$output" | grep -q "fd 5: a kind of descriptor this crac does not know (kind 14"
	# refused by the check (crac inspect's), not after the point of no return
	run clean "$CRAC" inspect "$T/img"
	echo "$output"
	echo "$output" | grep -q "fd 5: a kind of descriptor this crac does not know"
	# a file entry with no path
	rm -rf "$T/img"
	cp -a "$T/orig" "$T/img"
	"$EDIT" "$T/img" 5 path 0
	run clean "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	echo "$output" | grep -q "fd 5 (file): no path in the image (damaged image)"
	run clean "$CRAC" inspect "$T/img"
	echo "$output" | grep -q "fd 5 (file): no path in the image"
}

@test "a device entry naming a device that is not stateless (its numbers matching the node at its path) is refused before the point of no return" {
	[ "$(id -u)" -eq 0 ] || skip "mknod needs root (uid $(id -u))"
	echo data >"$T/f"
	run clean "$PROG" "$T/img" "$T/f"
	echo "$output"
	[ "$status" -eq 0 ]
	# the entry becomes a device entry for 5:0 (/dev/tty), and the path
	# such a node, so that its identity matches
	rm "$T/f"
	mknod "$T/f" c 5 0
	"$EDIT" "$T/img" 5 kind 3
	"$EDIT" "$T/img" 5 u 7 0x500
	run clean "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	echo "$output" | grep -q "fd 5 (device): not a stateless device (5:0): refused"
	# the check's refusal (crac inspect's), before the point of no return
	run clean "$CRAC" inspect "$T/img"
	echo "$output" | grep -q "fd 5 (device): not a stateless device (5:0): refused"
}
