#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A checkpoint directory implies the image engine (issue 11): `crac run
# --checkpoint-to DIR -- PROG` then `crac checkpoint PID` writes an image at
# DIR (made absolute: the program may chdir) that `crac inspect DIR` reads,
# as the crac(1)/crac(7) example says. The same holds for $CRAC_IMAGE_DIR
# and `crac checkpoint --image-dir DIR` with no engine named (the library
# default). An engine named with --engine or $CRAC_ENGINE still wins.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-runimg.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
	pid=
	require_image_engine
}

teardown() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	cd /
	rm -rf "$T"
}

# start ARGS...: runs `crac ARGS...` in the background with only stdio open,
# waits for the control socket of the program it becomes.
start() {
	(
		close_fds
		exec "$CRAC" "$@" </dev/null >"$T/out" 2>&1
	) &
	pid=$!
	for _ in $(seq 250); do
		[ -S "$CRAC_CONTROL_DIR/$pid.sock" ] && return 0
		sleep 0.02
	done
	echo "no control socket for $pid:" >&2
	cat "$T/out" >&2
	return 1
}

# exits_soon: the original process is gone once its image is written.
exits_soon() {
	wait_gone "$pid" 5
	pid=
}

@test "run --checkpoint-to DIR without --engine: crac checkpoint writes an image inspect reads" {
	start run --checkpoint-to "$T/img" -- sleep 100
	run "$CRAC" checkpoint "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"image written to $T/img"* ]]
	exits_soon
	run "$CRAC" inspect "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"image:"*"$T/img"* ]]
	[[ "$output" == *"/usr/bin/sleep"* ]]
}

@test "run --checkpoint-to with a relative DIR: the image lands there although the program chdir'ed" {
	mkdir "$T/wd"
	cd "$T/wd"
	start run --checkpoint-to img -- sh -c 'cd /; exec sleep 100'
	run "$CRAC" checkpoint "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	exits_soon
	[ -f "$T/wd/img/header" ]
	run "$CRAC" inspect "$T/wd/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"cwd /,"* ]]
}

@test "CRAC_IMAGE_DIR alone, and checkpoint --image-dir alone, select the image engine" {
	CRAC_IMAGE_DIR="$T/env-img" start run -- sleep 100
	run "$CRAC" checkpoint "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	exits_soon
	run "$CRAC" inspect "$T/env-img"
	[ "$status" -eq 0 ]

	start run -- sleep 100
	run "$CRAC" checkpoint --image-dir "$T/opt-img" "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	exits_soon
	run "$CRAC" inspect "$T/opt-img"
	[ "$status" -eq 0 ]
}

@test "an engine named explicitly wins over the directory" {
	start run --engine sim --checkpoint-to "$T/img" -- sleep 100
	run "$CRAC" checkpoint "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	# sim: nothing written, the program goes on
	[ ! -e "$T/img" ]
	kill -0 "$pid"
	kill "$pid"
	pid=

	CRAC_ENGINE=sim start run --checkpoint-to "$T/img" -- sleep 100
	run "$CRAC" checkpoint "$pid"
	[ "$status" -eq 0 ]
	[ ! -e "$T/img" ]
	kill -0 "$pid"
}
