#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Long paths in the messages of `crac inspect` and of the restore loader: an
# image under a directory of about 3000 bytes, a program mapped from a path
# of about 4000 (near PATH_MAX). inspect prints every path whole, with the
# reason after it; the loader's line (a 2 KiB message) shows a path cut in
# its middle with a visible "...", and still its end (the file's name) and
# the reason, never a line cut short before them.

bats_require_minimum_version 1.5.0
load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-longp.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
	pid=
	require_image_engine
	# $D: 15 components of 199 bytes (2993 bytes under $T); $M: 20 (3980)
	D="$T/d"
	for i in $(seq 15); do D="$D/$(printf 'd%02d%0196d' "$i" 0)"; done
	M="$T/m"
	for i in $(seq 20); do M="$M/$(printf 'm%02d%0196d' "$i" 0)"; done
	mkdir -p "$D" "$M"
	PROG="$M/sleep-at-the-end-of-a-long-path"
	cp "$(command -v sleep)" "$PROG"
}

teardown() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	rm -rf "$T"
}

# checkpoint: $PROG under `crac run`, its image at $D/img.
checkpoint() {
	spawn "$T/out" "$T/err" "$CRAC" run --checkpoint-to "$D/img" -- "$PROG" 600
	pid=$SPAWNED
	for _ in $(seq 250); do
		[ -S "$CRAC_CONTROL_DIR/$pid.sock" ] && break
		sleep 0.02
	done
	run "$CRAC" checkpoint "$pid"
	[ "$status" -eq 0 ] || { echo "$output" | cut -c1-300; cat "$T/err"; false; }
	pid=
}

@test "long paths: inspect and restore name a changed file mapped from near PATH_MAX, with its reason" {
	[ ${#PROG} -gt 4000 ] && [ ${#PROG} -lt 4096 ]
	checkpoint
	touch -d '2001-01-01' "$PROG"
	run "$CRAC" inspect "$D/img"
	[ "$status" -eq 1 ]
	line=$(echo "$output" | grep '^  files   FAILED: ')
	echo "${line:0:200}"
	[ "$line" = "  files   FAILED: file $PROG changed since the checkpoint (its modification time differs)" ]
	# the image directory, whole
	echo "$output" | grep -qxF "image:     $D/img"
	run --separate-stderr "$CRAC" restore "$D/img"
	echo "${stderr:0:200} [...] ${stderr: -200}"
	[ "$status" -eq 1 ]
	[ "$(echo "$stderr" | wc -l)" -eq 1 ]
	[[ "$stderr" == "crac: restore "*": file $T/m/m01"*"..."*"/sleep-at-the-end-of-a-long-path changed since the checkpoint (its modification time differs)" ]]
}

@test "long paths: an image under a 3000-byte directory: owner and missing header, named whole by inspect" {
	[ ${#D} -gt 3000 ]
	checkpoint
	chmod 0666 "$D/img/header"
	run "$CRAC" inspect "$D/img"
	[ "$status" -eq 1 ]
	line=$(echo "$output" | grep '^  owner   FAILED: ')
	echo "${line:0:200}"
	[[ "$line" == "  owner   FAILED: $D/img/header can be written by other users (mode 0666): "*"--trust-owner"* ]]
	run --separate-stderr "$CRAC" restore "$D/img"
	echo "${stderr:0:200} [...] ${stderr: -200}"
	[ "$status" -eq 1 ]
	[[ "$stderr" == "crac: restore $T/d/d01"*"..."*"/img/header can be written by other users (mode 0666): "*"--trust-owner"*" accepts it" ]]

	mv "$D/img/header" "$D/img/header.away"
	run --separate-stderr "$CRAC" inspect "$D/img"
	echo "${stderr:0:200} [...] ${stderr: -200}"
	[ "$status" -eq 1 ]
	[ "$stderr" = "crac: inspect $D/img: $D/img/header: No such file or directory (errno 2)" ]
	run --separate-stderr "$CRAC" restore "$D/img"
	echo "${stderr:0:200} [...] ${stderr: -200}"
	[ "$status" -eq 1 ]
	[[ "$stderr" == "crac: restore $T/d/d01"*"..."*"/img/header: No such file or directory (errno 2)" ]]
}
