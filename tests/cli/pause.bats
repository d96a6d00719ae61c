#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The pause engine through the command line (DESIGN §1, third bullet):
# `crac checkpoint --engine pause PID` returns 0 once the target ran its
# before_checkpoint callbacks and is paused; `crac restore --pid PID
# [--env K=V]... [-- ARGS...]` resumes it, and its after_restore callbacks
# run with a new generation and see the new args/env. Also the target
# pausing itself (crac_checkpoint_restore with engine "pause") and the
# errors: resuming a process that is not paused, checkpointing one that is.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/ctlprog"
	T="$(mktemp -d /tmp/crac-bats-pause.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL
	PID=
}

teardown() {
	if [ -n "$PID" ]; then
		# a paused target: resume it so that it can exit cleanly
		timeout 5 "$CRAC" restore --pid "$PID" >/dev/null 2>&1 || true
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$T"
}

start_prog() {
	spawn "$T/out" "$T/err" "$PROG" "$@"
	PID=$SPAWNED
	for _ in $(seq 250); do
		grep -qE '^(ready|checkpointing)' "$T/out" 2>/dev/null && return 0
		sleep 0.02
	done
	cat "$T/err" >&2
	return 1
}

callbacks() {
	awk '$1 == "before" { printf "%sB:%s", sep, $2; sep = " " }
	     $1 == "after"  { printf "%sA:%s", sep, $2; sep = " " }' "$T/out"
}

@test "checkpoint --engine pause returns once paused; restore --pid resumes with new args and env" {
	start_prog --control
	run timeout 20 "$CRAC" checkpoint --engine pause "$PID"
	echo "$output"
	[ "$status" -eq 0 ]
	# said once, by the requester; not also on the program's stderr
	# (under `crac run` both reach the same terminal)
	[[ "$output" == *"process $PID paused; resume it with: crac restore --pid $PID"* ]]
	cat "$T/err"
	! grep -q "paused; resume it with" "$T/err" || false
	# paused: before-callbacks ran, no after_restore yet
	run callbacks
	echo "callbacks: $output"
	[ "$output" = "B:svc/db B:beta B:alpha" ]
	grep -q '^before alpha gen=0 engine=pause$' "$T/out"
	kill -0 "$PID"
	# stays paused (nothing runs after_restore on its own)
	sleep 0.3
	! grep -q '^after' "$T/out" || false

	run timeout 20 "$CRAC" restore --pid "$PID" --env X=1 --env Y=two -- a b
	echo "$output"
	[ "$status" -eq 0 ]
	wait_line "$T/out" '^after svc/db' 2
	run callbacks
	echo "callbacks: $output"
	[ "$output" = "B:svc/db B:beta B:alpha A:alpha A:beta A:svc/db" ]
	grep -qx 'after alpha gen=1 engine=pause outcome=2 argc=2 argv=a,b env=X=1,Y=two' "$T/out"
	grep -qx 'after svc/db gen=1 engine=pause outcome=2 argc=2 argv=a,b env=X=1,Y=two' "$T/out"
	kill -0 "$PID"
}

@test "after -- everything is an argument, even what looks like an option" {
	start_prog --control
	run timeout 20 "$CRAC" checkpoint --engine pause "$PID"
	[ "$status" -eq 0 ]
	run timeout 20 "$CRAC" restore --pid "$PID" --env X=1 -- a --env Y=2 --pid 1
	echo "$output"
	[ "$status" -eq 0 ]
	wait_line "$T/out" '^after alpha' 2
	grep -qx 'after alpha gen=1 engine=pause outcome=2 argc=5 argv=a,--env,Y=2,--pid,1 env=X=1' "$T/out"
}

@test "resume without new args: argc=0, no env; a second pause advances the generation again" {
	start_prog --control
	run timeout 20 "$CRAC" checkpoint --engine pause "$PID"
	[ "$status" -eq 0 ]
	run timeout 20 "$CRAC" restore --pid "$PID"
	[ "$status" -eq 0 ]
	wait_line "$T/out" '^after alpha' 2
	grep -qx 'after alpha gen=1 engine=pause outcome=2 argc=0 argv= env=' "$T/out"
	run timeout 20 "$CRAC" checkpoint --engine pause "$PID"
	[ "$status" -eq 0 ]
	run timeout 20 "$CRAC" restore --pid "$PID" -- z
	[ "$status" -eq 0 ]
	wait_line "$T/out" '^after alpha gen=2' 2
	grep -qx 'after alpha gen=2 engine=pause outcome=2 argc=1 argv=z env=' "$T/out"
}

@test "restore --pid on a process that is not paused: exit 1 with a clear message" {
	start_prog --control
	run timeout 20 "$CRAC" restore --pid "$PID"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"paused"* ]]
	# nothing ran in the target
	run callbacks
	[ "$output" = "" ]
}

@test "restore --pid on a process without an endpoint: non-zero with a message" {
	start_prog
	run timeout 20 "$CRAC" restore --pid "$PID"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"$PID"* ]]
	run "$CRAC" restore --pid not-a-pid
	[ "$status" -eq 2 ]
	run "$CRAC" restore --pid "$PID" --env NOEQUALSSIGN
	[ "$status" -eq 2 ]
}

@test "a second checkpoint while paused is refused (busy); the paused one still resumes" {
	start_prog --control
	run timeout 20 "$CRAC" checkpoint --engine pause "$PID"
	[ "$status" -eq 0 ]
	run timeout 20 "$CRAC" checkpoint --engine sim "$PID"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"EBUSY"* || "$output" == *"in progress"* ]]
	# only one round of before-callbacks
	[ "$(grep -c '^before alpha' "$T/out")" -eq 1 ]
	run timeout 20 "$CRAC" restore --pid "$PID"
	[ "$status" -eq 0 ]
	wait_line "$T/out" '^after alpha' 2
	grep -q '^after alpha gen=1 engine=pause outcome=2 ' "$T/out"
}

@test "a failing before_checkpoint: checkpoint --engine pause exits 1, nothing is paused" {
	start_prog --control --fail-before alpha
	run timeout 20 "$CRAC" checkpoint --engine pause "$PID"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"alpha is busy (test)"* ]]
	grep -q '^after alpha gen=0 engine=pause outcome=3 ' "$T/out"
	run timeout 20 "$CRAC" restore --pid "$PID"
	[ "$status" -eq 1 ]
}

@test "after_restore failures reach the resumer (crac restore --pid prints them)" {
	start_prog --control --fail-after beta
	run timeout 20 "$CRAC" checkpoint --engine pause "$PID"
	[ "$status" -eq 0 ]
	run timeout 20 "$CRAC" restore --pid "$PID"
	echo "$output"
	[[ "$output" == *"beta"*"ENOTCONN"*"beta cannot reconnect (test)"* ]]
}

@test "the program pauses itself (engine pause from the API) and crac restore --pid resumes it" {
	start_prog --self pause   # the engine starts the endpoint by itself
	grep -q '^checkpointing' "$T/out"
	# the pause comes right after the before-callbacks: retry until paused
	ok=
	for _ in $(seq 250); do
		if timeout 20 "$CRAC" restore --pid "$PID" --env K=V -- x >"$T/restore.out" 2>&1; then
			ok=1
			break
		fi
		sleep 0.02
	done
	cat "$T/restore.out"
	[ -n "$ok" ]
	# no requester to tell: the program's own stderr says it
	grep -q "process $PID paused; resume it with: crac restore --pid $PID" "$T/err"
	wait_line "$T/out" '^ready' 2
	cat "$T/out"
	grep -qx 'result=2' "$T/out"
	grep -qx 'after alpha gen=1 engine=pause outcome=2 argc=1 argv=x env=K=V' "$T/out"
	run callbacks
	[ "$output" = "B:svc/db B:beta B:alpha A:alpha A:beta A:svc/db" ]
}
