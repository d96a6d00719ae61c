#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `crac checkpoint PID` when the program exits during the checkpoint (a
# before_checkpoint callback that calls _exit, a kill): the connection
# closes without an answer, and crac says that the process exited (with
# its exit status or signal when it is crac's own child), not that it
# refused; a process that closes without an answer and lives on is still
# said to have refused.

bats_require_minimum_version 1.5.0

load common
load stuck_common

setup() {
	common_setup ckptexit --open --control
	PROG="$CRAC_BUILD_DIR/tests/ctlprog"
	FAKE="$CRAC_BUILD_DIR/tests/control_fake"
}

teardown() {
	common_teardown
}

@test "not crac's child, _exit in a callback: 'process PID exited during the checkpoint, before it answered', status 2" {
	spawn "$T/p.out" "$T/p.err" "$PROG" --control --exit-before alpha 3
	pid=$SPAWNED
	PIDS+=("$pid")
	wait_line "$T/p.out" '^ready' 5
	run --separate-stderr "$CRAC" checkpoint --engine sim "$pid"
	echo "$status: $output / $stderr"
	[ "$status" -eq 2 ]
	[ "$stderr" = "crac: process $pid exited during the checkpoint, before it answered" ]
}

# as_parent ARGS...: ctlprog --control ARGS started by a shell that then
# becomes `crac checkpoint --engine sim` of it (exec: the program is crac's
# child); $status, $output (stdout), $stderr, and $child the program's pid.
as_parent() {
	run --separate-stderr bash -c '
		for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
		"$0" --control "$@" >"'"$T"'/child.out" 2>&1 </dev/null &
		p=$!
		echo "$p" >"'"$T"'/child.pid"
		for _ in $(seq 250); do grep -q "^ready" "'"$T"'/child.out" && break; sleep 0.02; done
		exec "'"$CRAC"'" checkpoint --engine sim "$p"' "$PROG" "$@"
	child=$(cat "$T/child.pid")
	echo "$status: $output / $stderr"
}

@test "crac's own child exits with status 3 during the checkpoint: said with its status" {
	as_parent --exit-before beta 3
	[ "$status" -eq 2 ]
	[ "$stderr" = "crac: process $child exited with status 3 during the checkpoint, before it answered" ]
}

@test "crac's own child killed by SIGKILL during the checkpoint: said with the signal" {
	as_parent --exit-before svc/db -9
	[ "$status" -eq 2 ]
	[ "$stderr" = "crac: process $child was killed by signal 9 (SIGKILL) during the checkpoint, before it answered" ]
}

@test "an endpoint that closes without an answer and lives on: said as before (refused?)" {
	spawn "$T/fake.out" "$T/fake.err" env CONTROL_FAKE_NO_STATUS=1 "$FAKE" "$T/ctl" self "some line"
	pid=$SPAWNED
	PIDS+=("$pid")
	wait_line "$T/fake.out" '^ready' 5
	run --separate-stderr "$CRAC" checkpoint --engine sim "$pid"
	echo "$status: $output / $stderr"
	[ "$status" -eq 2 ]
	[ "$stderr" = "crac: process $pid closed the connection without an answer (refused? its stderr says why)" ]
	kill -0 "$pid"
}

@test "image engine, _exit in an after_restore callback: the image is in place, and the failure says so" {
	require_image_engine
	spawn "$T/p.out" "$T/p.err" "$PROG" --control --exit-after alpha 3
	pid=$SPAWNED
	PIDS+=("$pid")
	wait_line "$T/p.out" '^ready' 5
	run --separate-stderr "$CRAC" checkpoint --keep-running --image-dir "$T/img" "$pid"
	echo "$status: $output / $stderr"
	[ "$status" -eq 2 ]
	echo "$stderr" | grep -q "^crac: process $pid exited during the checkpoint, before it answered; but $T/img holds the image this checkpoint wrote (made by process $pid "
	run "$CRAC" inspect "$T/img"
	[ "$status" -eq 0 ]
	# a failure before the image: no such words
	spawn "$T/q.out" "$T/q.err" "$PROG" --control --exit-before alpha 3
	pid=$SPAWNED
	PIDS+=("$pid")
	wait_line "$T/q.out" '^ready' 5
	run --separate-stderr "$CRAC" checkpoint --keep-running --image-dir "$T/img2" "$pid"
	echo "$status: $output / $stderr"
	[ "$status" -eq 2 ]
	[ "$stderr" = "crac: process $pid exited during the checkpoint, before it answered" ]
	[ ! -e "$T/img2" ]
}
