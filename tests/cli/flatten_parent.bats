#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `crac flatten` over the parent of incremental images. An incremental
# image names its parent by path and by the parent's header identity (crc,
# created_ns, pages_size; image/check.c crac_img_chain_open), and its page
# references name chunks of the images below by index and depth: a
# flattened parent (one full image, chunks renumbered) is another image to
# it, and crac restore refuses it. flatten cannot know those images
# (nothing names an image's children), so whenever it replaces an image by
# a different one it warns in one line; flattening the children first keeps
# everything restorable. `crac flatten X Y; mv Y X` is a replacement flatten
# does not see: the children are refused the same way.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	INCR="$CRAC_BUILD_DIR/tests/image_incr"
	T="$(mktemp -d /tmp/crac-bats-flatpar.XXXXXX)"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOADER CRAC_LAZY_PREFETCH \
		CRAC_LOG CRAC_IMAGE_COMPRESS CRAC_IMAGE_INCREMENTAL
	require_image_engine
}

teardown() {
	rm -rf "$T"
}

# chain: $T/i0 (full), $T/i1 (parent i0) and $T/i2 (parent i1), by image_incr.
chain() {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$INCR" "$T/i0" "$T/i1" "$T/i2" 8
	echo "chain: status $status, stdout: $output, stderr: $stderr"
	[ "$status" -eq 0 ]
}

# restore_ok STAGE DIR: restores DIR, which verifies every page of STAGE
restore_ok() {
	run --separate-stderr clean timeout 60 "$CRAC" restore "$2"
	echo "restore $2: status $status, stdout: $output, stderr: $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok stage $1" ]
}

# restore_stale CHILD PARENT: restoring CHILD is refused in one line, its
# parent image PARENT (the path as CHILD names it) changed; nothing runs
restore_stale() {
	run --separate-stderr clean timeout 60 "$CRAC" restore "$1"
	echo "restore $1: status $status, stdout: $output, stderr: $stderr"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$(echo "$stderr" | wc -l)" -eq 1 ]
	[[ "$stderr" == "crac: restore $1: parent image $2 of $1 was replaced or changed since the image above it was written (header crc32c 0x"*", recorded 0x"*")" ]]
}

# flatten_ok DIR OUT [WARNED]: `crac flatten DIR OUT` succeeds, its summary
# on stdout; on stderr the one warning line when WARNED is "rewritten" or
# "replaced", else nothing
flatten_ok() {
	run --separate-stderr clean "$CRAC" flatten "$1" "$2"
	echo "flatten $1 $2: status $status, stdout: $output, stderr: $stderr"
	[ "$status" -eq 0 ]
	[[ "$output" == "$2: "*" chunks, "*" MiB of page data ("*" below merged)" ]]
	if [ -z "${3:-}" ]; then
		[ -z "$stderr" ]
	else
		local doing=rewriting
		[ "$3" = rewritten ] || doing=replacing
		[ "$stderr" = "crac: flatten $1: warning: $2 was $3: an incremental image whose parent image is $2 is refused by crac restore from now on; flatten such images before $doing it" ]
	fi
}

@test "flatten a parent in place: it warns, and its child is refused in one line; the child flattened first restores" {
	chain
	cp -a "$T/i2" "$T/i2.copy"   # the same chain, to do it in the right order below
	flatten_ok "$T/i1" "$T/i1" rewritten
	# the flattened image itself restores without the image below it
	mv "$T/i0" "$T/i0.away"
	restore_ok 1 "$T/i1"
	mv "$T/i0.away" "$T/i0"
	# its child does not: i1 is another image now
	restore_stale "$T/i2" "$T/i2/../i1"
	! clean "$CRAC" flatten "$T/i2" "$T/flat" 2>/dev/null || false
	[ ! -e "$T/flat" ]

	# the order the warning asks for: the child first, then its parent
	rm -rf "$T"/i*
	chain
	flatten_ok "$T/i2" "$T/i2" rewritten
	flatten_ok "$T/i1" "$T/i1" rewritten
	rm -rf "$T/i0"
	restore_ok 2 "$T/i2"
	restore_ok 1 "$T/i1"
}

@test "flatten X Y, then mv Y X: X's child is refused the same way (flatten cannot see the mv)" {
	chain
	flatten_ok "$T/i1" "$T/flat"   # nothing replaced: no warning
	restore_ok 2 "$T/i2"
	rm -rf "$T/i1"
	mv "$T/flat" "$T/i1"
	restore_stale "$T/i2" "$T/i2/../i1"
	restore_ok 1 "$T/i1"
}

@test "flatten over an image with a child: no warning when the image is the same byte for byte, else warned" {
	chain
	flatten_ok "$T/i1" "$T/f"
	# a child of f: f restored, changed to stage 2, checkpointed incrementally
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$CRAC" restore "$T/f" -- next "$T/c"
	echo "restore f -- next c: status $status, stdout: $output, stderr: $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok stage 1" ]
	run clean "$CRAC" inspect "$T/c"
	echo "$output"
	echo "$output" | grep -q "^parent: .*\.\./f"
	restore_ok 2 "$T/c"
	# the same image again at f: its child still restores, nothing said
	flatten_ok "$T/i1" "$T/f"
	restore_ok 2 "$T/c"
	# another image at f: warned, and the child is refused
	flatten_ok "$T/i2" "$T/f" replaced
	restore_ok 2 "$T/f"
	restore_stale "$T/c" "$T/c/../f"
}
