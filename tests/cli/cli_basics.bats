#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The `crac` command itself: --help, --version, usage errors (exit 2), and
# subcommands that cannot do their job must say so and exit non-zero — never
# print a fake success (restore DIR, inspect DIR, check PID).

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-basics.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	OTHER=
}

teardown() {
	[ -n "$OTHER" ] && kill "$OTHER" 2>/dev/null || true
	rm -rf "$T"
}

# has_image_engine: the image engine has landed (restore DIR and inspect DIR
# are then real, not stubs): the library lists it, or the CLI's image
# subcommands are no longer the "not built yet" stubs.
has_image_engine() {
	"$CRAC" --version | grep -qw image && return 0
	[ -f "$CRAC_SOURCE_DIR/src/cli/cmd_image.c" ] &&
		! grep -q "not built yet" "$CRAC_SOURCE_DIR/src/cli/cmd_image.c" || false
}

@test "--help lists every subcommand and exits 0" {
	run "$CRAC" --help
	echo "$output"
	[ "$status" -eq 0 ]
	for cmd in run checkpoint restore inspect check; do
		[[ "$output" == *"$cmd"* ]] || { echo "missing $cmd"; false; }
	done
	[[ "$output" == *"restore --pid"* ]]
}

@test "--version prints the library version" {
	run "$CRAC" --version
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"0.1.0"* ]]
	# the header's version, not a hard-coded one
	major=$(sed -n 's/^#define CRAC_VERSION_MAJOR \([0-9]*\)/\1/p' "$CRAC_SOURCE_DIR/include/crac.h")
	minor=$(sed -n 's/^#define CRAC_VERSION_MINOR \([0-9]*\)/\1/p' "$CRAC_SOURCE_DIR/include/crac.h")
	patch=$(sed -n 's/^#define CRAC_VERSION_PATCH \([0-9]*\)/\1/p' "$CRAC_SOURCE_DIR/include/crac.h")
	[[ "$output" == *"$major.$minor.$patch"* ]]
}

@test "an unknown subcommand is a usage error (exit 2) with a message" {
	run "$CRAC" frobnicate
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"frobnicate"* ]]
}

@test "checkpoint PID DIR (the directory after the PID) is a usage error that says how to give it" {
	run "$CRAC" checkpoint 123 "$T/img"
	echo "$output"
	[ "$status" -eq 2 ]
	[ "$output" = "crac: usage: crac checkpoint [options] PID: the image directory is given with --image-dir DIR (with --engine image or criu), not after the PID: crac checkpoint --engine image --image-dir $T/img 123" ]
	[ ! -e "$T/img" ]
}

@test "no subcommand at all is a usage error (exit 2)" {
	run "$CRAC"
	[ "$status" -eq 2 ]
	[[ "$output" == *"usage"* ]]
}

@test "restore of a directory that does not exist fails with a message" {
	run "$CRAC" restore "$T/no-such-image"
	echo "$output"
	[ "$status" -ne 0 ]
	[ -n "$output" ]
	if has_image_engine; then
		[[ "$output" == *"$T/no-such-image"* ]]
	fi
}

@test "restore of an empty directory (not an image) fails with a message" {
	mkdir "$T/empty"
	run "$CRAC" restore "$T/empty"
	echo "$output"
	[ "$status" -ne 0 ]
	[ -n "$output" ]
}

@test "inspect of a missing or non-image directory fails with a message" {
	run "$CRAC" inspect "$T/no-such-image"
	echo "$output"
	[ "$status" -ne 0 ]
	[ -n "$output" ]
	if has_image_engine; then
		[[ "$output" == *"$T/no-such-image"* ]]
	fi
	mkdir "$T/empty"
	run "$CRAC" inspect "$T/empty"
	echo "$output"
	[ "$status" -ne 0 ]
	[ -n "$output" ]
}

@test "check of a process without an endpoint, or of no process, fails with a message" {
	sleep 30 3>&- &
	OTHER=$!
	run "$CRAC" check "$OTHER"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"$OTHER"* ]]
	run "$CRAC" check 2147483646
	echo "$output"
	[ "$status" -ne 0 ]
	[ -n "$output" ]
	# two arguments are a usage error; none is the kernel report (kernel_fallbacks.bats)
	run "$CRAC" check 1 2
	[ "$status" -eq 2 ]
	run "$CRAC" check
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "crac: what this kernel offers the image engine:" ]
}

@test "subcommand --help works and exits 0" {
	for cmd in checkpoint check; do
		run "$CRAC" "$cmd" --help
		echo "$cmd: $output"
		[ "$status" -eq 0 ]
		[[ "$output" == *"usage"* ]]
	done
}
