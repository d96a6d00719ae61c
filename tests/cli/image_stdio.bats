#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Image engine and stdio: a checkpoint while a thread sits in fgets(stdin)
# (which holds the stdin FILE lock as long as no input comes: Lua
# io.lines, sqlite3's shell) used to hang forever in fflush(NULL). The
# engine now flushes with the other threads stopped, taking no lock a
# thread holds (src/engines/image_stdio.c). Pending output is written
# exactly once: by the checkpoint, never again by a restored process.
# Every run is under `timeout`, so a regression fails instead of hanging.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/ckpt_stdio"
	T="$(mktemp -d /tmp/crac-bats-stdio.XXXXXX)"
	chmod 755 "$T"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
}

teardown() {
	[ -n "${BG:-}" ] && kill "$BG" 2>/dev/null || true
	[ -n "${KEEPER:-}" ] && kill "$KEEPER" 2>/dev/null || true
	rm -rf "$T"
}

restore_check() {
	run clean timeout 30 "$CRAC" restore "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^restored$"
	echo "$output" | grep -q "^eof restored=1$"
	# the output pending at checkpoint was written by the checkpoint only
	! echo "$output" | grep -q "pending output" || false
}

@test "checkpoint (keep running) while the main thread is in fgets(stdin): completes, output once, restore works" {
	require_image_engine
	# stdin: a pipe that stays silent for 3 s, then one line and EOF
	run clean timeout 30 sh -c "(sleep 3; echo hello) | \"$PROG\" \"$T/img\" keep"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^continued$"
	echo "$output" | grep -q "^got: hello$"
	echo "$output" | grep -q "^eof restored=0$"
	[ "$(echo "$output" | grep -c "pending output")" -eq 1 ]
	# the checkpoint finished while fgets still waited (not once input came),
	# and flushed the pending output before it finished, not at exit
	line_of() { echo "$output" | grep -n . | grep -m1 "$1" | cut -d: -f1; }
	[ "$(line_of continued)" -lt "$(line_of "got: hello")" ]
	[ "$(line_of "pending output")" -lt "$(line_of continued)" ]
	restore_check
}

@test "crac checkpoint PID (control endpoint) while the main thread is in fgets(stdin)" {
	require_image_engine
	mkfifo "$T/in"
	clean timeout 60 "$PROG" ctl ctl <"$T/in" >"$T/out" 2>&1 &
	BG=$!
	sleep 60 >"$T/in" &     # a writer that never writes: fgets blocks
	KEEPER=$!
	wait_line "$T/out" "^ready" 10
	pid="$(sed -n 's/^ready pid=//p' "$T/out")"
	[ -n "$pid" ]
	wait_sock "$CRAC_CONTROL_DIR/$pid.sock" 5
	run timeout 30 "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -f "$T/img/header" ]
	echo "line" >"$T/in"
	kill "$KEEPER"
	KEEPER=
	wait "$BG"
	BG=
	cat "$T/out"
	grep -q "^got: line$" "$T/out"
	[ "$(grep -c "pending output" "$T/out")" -eq 1 ]
	run clean timeout 30 "$CRAC" restore "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^eof restored=0$"   # ctl mode: no checkpointer thread
	! echo "$output" | grep -q "pending output" || false
}

@test "a thread printing without pause (holding the stdout lock): the checkpoint retries, completes" {
	require_image_engine
	run clean timeout 30 sh -c "(sleep 2; echo hello) | \"$PROG\" \"$T/img\" spam 2>\"$T/err\" | grep -c '^pending output'"
	echo "$output"
	cat "$T/err"
	[ "$status" -eq 0 ]
	[ "$output" = 1 ]
	grep -q "^continued$" "$T/err"
	[ -f "$T/img/header" ]
}

@test "checkpoint (original exits) while the main thread is in fgets(stdin): the original exits" {
	require_image_engine
	run clean timeout 30 sh -c "(sleep 20; echo late) | \"$PROG\" \"$T/img\""
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | grep -c "pending output")" -eq 1 ]
	! echo "$output" | grep -q "late" || false
	restore_check
}
