#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Length limits of the path arguments of `crac run` (src/cli/cli.h):
# --checkpoint-to at most 4063 bytes once made absolute (room for the image
# engine's DIR.tmp-XXXXXX and DIR.old-PID siblings), --policies and PROG at
# most 4095 (PATH_MAX - 1). A longer one is refused with exit 2 and one
# line that names the option and the limit; never a crash, never a path
# silently left relative or cut.

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-limits.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
}

teardown() {
	cd /
	rm -rf "$T"
}

# long N: a string of N 'a's
long() {
	head -c "$1" /dev/zero | tr '\0' a
}

# one_line_refusal WHAT LIMIT: exit 2, exactly one line, naming WHAT and LIMIT
one_line_refusal() {
	echo "status=$status"
	echo "$output"
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "${lines[0]}" == "crac: $1: "* ]]
	[[ "${lines[0]}" == *"limit of $2 bytes"* ]]
	# the path is shown shortened: the line stays readable
	[ "${#lines[0]}" -lt 400 ]
}

@test "run --checkpoint-to: a 5000-byte relative path is refused, no crash" {
	cd "$T"
	run "$CRAC" run --checkpoint-to "$(long 5000)" -- true
	one_line_refusal "run --checkpoint-to" 4063
	[[ "$output" == *"5000 bytes long"* ]]
}

@test "run --checkpoint-to: a 5000-byte absolute path is refused" {
	run "$CRAC" run --checkpoint-to "/$(long 4999)" -- true
	one_line_refusal "run --checkpoint-to" 4063
}

@test "run --checkpoint-to: the limit applies to the path made absolute" {
	cd "$T"
	# exactly at the limit once "$T/" is put in front: accepted
	n=$((4063 - ${#T} - 1))
	run "$CRAC" run --checkpoint-to "$(long $n)" -- sh -c 'echo "${#CRAC_IMAGE_DIR}"'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = 4063 ]
	# one byte more: refused, saying it was made absolute in $T
	run "$CRAC" run --checkpoint-to "$(long $((n + 1)))" -- true
	one_line_refusal "run --checkpoint-to" 4063
	[[ "$output" == *"made absolute (in $T)"* ]]
}

@test "run --checkpoint-to: no current directory to make it absolute is an error" {
	mkdir "$T/gone"
	cd "$T/gone"
	rmdir "$T/gone"
	run "$CRAC" run --checkpoint-to img -- sh -c 'echo "dir=$CRAC_IMAGE_DIR"'
	echo "$output"
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" == "crac: run --checkpoint-to: cannot make img absolute: current directory: "* ]]
}

@test "run --checkpoint-to: empty path is refused" {
	run "$CRAC" run --checkpoint-to "" -- true
	echo "$output"
	[ "$status" -eq 2 ]
	[ "$output" = "crac: run --checkpoint-to: empty path" ]
}

@test "run --policies and PROG: over 4095 bytes refused with one line" {
	run "$CRAC" run --policies "$(long 5000)" -- true
	one_line_refusal "run --policies" 4095
	run "$CRAC" run -- "/$(long 4999)"
	one_line_refusal "run PROG" 4095
}

@test "run: a failing exec names the program shortened, in one line" {
	run "$CRAC" run -- "$T/$(long 300)"
	echo "$output"
	[ "$status" -eq 126 ] || [ "$status" -eq 127 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" == "crac: cannot run /tmp/"*"..."*"aaaa: File name too long" ]]
}

@test "checkpoint --image-dir: over the limit refused, relative made absolute here; repeated options are one token" {
	run "$CRAC" checkpoint --image-dir "/$(long 5000)" 1
	one_line_refusal "checkpoint --image-dir" 4063
	# a repeated option replaces itself (no overflow of the request): the
	# request fails only because process 2^22+1 does not exist
	run "$CRAC" checkpoint -k -k -k -k -k -k -k -k -k -k -k -k -k -k -k -k -n -n -n -f -f -f \
		--engine image --engine image --deadline 5 --deadline 6 --image-dir a --image-dir b 4194305
	echo "$output"
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" == "crac: "* ]]
}

@test "restore and inspect: an image path over 4095 bytes is refused in one line" {
	run "$CRAC" restore "/$(long 5000)"
	one_line_refusal "restore" 4095
	run "$CRAC" inspect "/$(long 5000)"
	one_line_refusal "inspect" 4095
}
