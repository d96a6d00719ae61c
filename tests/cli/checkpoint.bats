#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `crac checkpoint PID` against tests/progs/ctlprog, a program that registered
# resources (alpha, beta, svc/db) and started its control endpoint: the
# callbacks run in order inside the target, the report comes back, the exit
# status says what happened (0 ok, 1 the checkpoint failed, 2 no endpoint /
# usage). Also: `crac check PID` runs no callback, CRAC_CONTROL=1 starts the
# endpoint at load time.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/ctlprog"
	T="$(mktemp -d /tmp/crac-bats-ckpt.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"   # fresh, does not exist yet
	unset CRAC_ENGINE CRAC_CONTROL
	PID=
	OTHER=
}

teardown() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null || true
	[ -n "$OTHER" ] && kill "$OTHER" 2>/dev/null || true
	[ -n "$PID" ] && wait "$PID" 2>/dev/null || true
	rm -rf "$T"
}

# start_prog ARGS...: runs ctlprog in the background (no inherited fds beyond
# stdio, so bats does not wait for it), waits for "ready" and its socket.
start_prog() {
	spawn "$T/out" "$T/err" "$PROG" "$@"
	PID=$SPAWNED
	wait_line "$T/out" '^ready' 5 "$T/err"
}

# callbacks: the callback lines of the helper, as "B:name"/"A:name" words.
callbacks() {
	awk '$1 == "before" { printf "%sB:%s", sep, $2; sep = " " }
	     $1 == "after"  { printf "%sA:%s", sep, $2; sep = " " }' "$T/out"
}

@test "checkpoint with the sim engine: exit 0, callbacks ran in order in the target" {
	start_prog --control
	[ -S "$CRAC_CONTROL_DIR/$PID.sock" ]
	run "$CRAC" checkpoint "$PID"
	echo "$output"
	[ "$status" -eq 0 ]
	run callbacks
	echo "callbacks: $output"
	[ "$output" = "B:svc/db B:beta B:alpha A:alpha A:beta A:svc/db" ]
	# the engine was sim (default) and the restore advanced the generation
	grep -q '^before alpha gen=0 engine=sim$' "$T/out"
	grep -q '^after alpha gen=1 engine=sim outcome=2 ' "$T/out"
	# the target is still alive and can be checkpointed again
	kill -0 "$PID"
	run "$CRAC" checkpoint --engine sim "$PID"
	[ "$status" -eq 0 ]
	grep -q '^after svc/db gen=2 engine=sim outcome=2 ' "$T/out"
}

@test "a failing resource: exit 1, the report names it with code and message" {
	start_prog --control --fail-before beta
	run "$CRAC" checkpoint "$PID"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"checkpoint aborted"* ]]
	[[ "$output" == *"beta"*"EBUSY"*"beta is busy (test)"* ]]
	# every resource was still notified, and all got after_restore
	run callbacks
	[ "$output" = "B:svc/db B:beta B:alpha A:alpha A:beta A:svc/db" ]
	# nothing was restored: the generation did not move
	grep -q '^after alpha gen=0 engine=sim outcome=3 ' "$T/out"
	kill -0 "$PID"
}

@test "a failing after_restore is reported in the answer" {
	start_prog --control --fail-after svc/db
	run "$CRAC" checkpoint "$PID"
	echo "$output"
	[[ "$output" == *"svc/db"*"ENOTCONN"*"db cannot reconnect (test)"* ]]
	[[ "$output" == *"after_restore"* ]]
}

@test "a process without a control endpoint: exit 2 with a clear message" {
	start_prog   # no --control, no CRAC_CONTROL
	run "$CRAC" checkpoint "$PID"
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"$PID"* ]]
	[[ "$output" == *"endpoint"* ]]
	# and no callback ran
	run callbacks
	[ "$output" = "" ]

	# an ordinary process that never heard of crac
	sleep 30 3>&- &
	OTHER=$!
	run "$CRAC" checkpoint "$OTHER"
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"$OTHER"* ]]
}

@test "a process that does not exist, or a bad PID: non-zero with a message" {
	run "$CRAC" checkpoint 2147483646
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"2147483646"* ]]
	run "$CRAC" checkpoint not-a-pid
	[ "$status" -eq 2 ]
	[ -n "$output" ]
	run "$CRAC" checkpoint
	[ "$status" -eq 2 ]
	[ -n "$output" ]
}

@test "CRAC_CONTROL=1 starts the endpoint when the library loads" {
	CRAC_CONTROL=1 start_prog
	wait_sock "$CRAC_CONTROL_DIR/$PID.sock" 2
	[ "$(stat -c %a "$CRAC_CONTROL_DIR")" = 700 ]
	[ "$(stat -c %a "$CRAC_CONTROL_DIR/$PID.sock")" = 600 ]
	run "$CRAC" checkpoint "$PID"
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q '^after alpha gen=1 ' "$T/out"
}

@test "an unknown engine is refused with a message naming it; nothing restored" {
	start_prog --control
	run "$CRAC" checkpoint --engine no-such-engine "$PID"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"no-such-engine"* ]]
	! grep -q '^after .* gen=1 ' "$T/out" || false
}

@test "--dry-run runs the callbacks but restores nothing" {
	start_prog --control
	run "$CRAC" checkpoint --dry-run "$PID"
	echo "$output"
	[ "$status" -eq 0 ]
	run callbacks
	[ "$output" = "B:svc/db B:beta B:alpha A:alpha A:beta A:svc/db" ]
	grep -q '^after alpha gen=0 engine=sim outcome=1 ' "$T/out"
}

@test "the endpoint is removed when the program stops it" {
	start_prog --control
	[ -S "$CRAC_CONTROL_DIR/$PID.sock" ]
	kill -TERM "$PID"
	wait "$PID"
	PID=
	grep -q '^exiting' "$T/out"
	[ ! -e "$CRAC_CONTROL_DIR/"*.sock ]
}

@test "crac check PID runs no callback and answers (no fake success without an endpoint)" {
	start_prog --control --fail-before beta
	run "$CRAC" check "$PID"
	echo "$output"
	[ -n "$output" ]
	run callbacks
	[ "$output" = "" ]
	# without an endpoint there is nothing to check: must not claim success
	sleep 30 3>&- &
	OTHER=$!
	run "$CRAC" check "$OTHER"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"$OTHER"* ]]
	run "$CRAC" check 2147483646
	[ "$status" -ne 0 ]
	[ -n "$output" ]
}

@test "--deadline reaches the target: a callback over the budget aborts with ETIMEDOUT naming it" {
	start_prog --control --slow beta 400
	run timeout 20 "$CRAC" checkpoint --deadline 100 "$PID"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"beta"*"ETIMEDOUT"* ]]
	grep -q '^after beta gen=0 engine=sim outcome=3 ' "$T/out"
	# without the short deadline the same slow callback is fine
	run timeout 20 "$CRAC" checkpoint "$PID"
	echo "$output"
	[ "$status" -eq 0 ]
	run "$CRAC" checkpoint --deadline soon "$PID"
	[ "$status" -eq 2 ]
}
