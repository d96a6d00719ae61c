#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The loader's reading of $CRAC_ACTIVATION_FDS (set by `crac start` under
# socket activation): taken whatever its length (it used to be dropped
# whole from 512 bytes on, and the program's listeners then bound again
# instead of taking the passed sockets), refused with one line when
# malformed or too long, never ignored. The values here pad their numbers
# with leading zeros to pass the old limit.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	COUNTER="$CRAC_BUILD_DIR/tests/image_counter"
	T="$(mktemp -d /tmp/crac-bats-loadact.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOADER CRAC_ACTIVATION_FDS
	require_image_engine
	run clean "$COUNTER" "$T/img" 1
	[ "$status" -eq 0 ]
	ZEROS="$(printf '0%.0s' $(seq 600))"
}

teardown() {
	rm -rf "$T"
}

# restore_act VALUE: crac restore $T/img with CRAC_ACTIVATION_FDS=VALUE and
# fd 3 open on /dev/null (no socket).
restore_act() {
	run --separate-stderr bash -c 'exec 3</dev/null; CRAC_ACTIVATION_FDS="$1" exec "$2" restore "$3"' \
		_ "$1" "$CRAC" "$T/img"
	echo "status $status"
	echo "stdout: $output"
	echo "stderr: $stderr"
}

@test "a value of 512 bytes and more is read: the passed fd is checked" {
	restore_act "${ZEROS}3:${ZEROS}3"
	[ "$status" -eq 1 ]
	[[ "$stderr" == "crac: restore $T/img: socket activation: passed fd 3 (for the program's fd 3) is not an open socket: "* ]]
	# a short one, as before
	restore_act "3:3"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"passed fd 3 (for the program's fd 3) is not an open socket"* ]]
	# empty: no socket activation
	restore_act ""
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^restored: checksum="
}

@test "a malformed or overlong value refuses with one line, whatever its length" {
	for bad in "${ZEROS}3:" "${ZEROS}3:4x" ":3" "3:3,,4:4" "3:99999999999" "${ZEROS}3:4;5:6"; do
		restore_act "$bad"
		[ "$status" -eq 2 ]
		[ "$stderr" = "crac: restore $T/img: CRAC_ACTIVATION_FDS: malformed (SRC:DST,... wanted)" ]
	done
	many="$(for i in $(seq 4097); do printf '3:%d,' "$((i + 2))"; done)"
	restore_act "${many%,}"
	[ "$status" -eq 2 ]
	[ "$stderr" = "crac: restore $T/img: CRAC_ACTIVATION_FDS: more than 4096 entries" ]
}
