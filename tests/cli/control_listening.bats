#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# libcrac's control socket appears at its name (DIR/PID.sock) only once it
# listens: it is bound under a temporary name (DIR/PID.tmp), listened on,
# then renamed. It was bound at its own name and listened on after the
# setup's helper returned; a client that waited for the file to appear
# (crac run, then crac checkpoint PID) could connect in between and was
# refused ("nothing listens at ...": run_image.bats under load).
# CRAC_TEST_SLOW_FS=bound:MS (src/core/control.c) holds the setup once the
# socket is bound, before the listen.

bats_require_minimum_version 1.5.0

load common
load stuck_common

setup() {
	common_setup ctllisten --open --control CRAC_TEST_SYNC_GRACE_MS CRAC_TEST_SLOW_FS
	PROG="$CRAC_BUILD_DIR/tests/ctlprog"
}

teardown() {
	common_teardown
}

@test "the control socket file appears only once it listens: bound under PID.tmp, then renamed to PID.sock" {
	# held 8 s once bound: the look below needs to come once in that time
	spawn "$T/p.out" "$T/p.err" env CRAC_CONTROL=1 CRAC_TEST_SLOW_FS=bound:8000 "$PROG"
	pid=$SPAWNED
	PIDS+=("$pid")
	for _ in $(seq 400); do [ -S "$T/ctl/$pid.tmp" ] && break; sleep 0.02; done
	ls -la "$T/ctl"
	[ -S "$T/ctl/$pid.tmp" ]
	# bound, not yet listening: not at its own name
	[ ! -e "$T/ctl/$pid.sock" ]
	[ "$(stat -c %a "$T/ctl/$pid.tmp")" = 600 ]
	for _ in $(seq 1000); do [ -S "$T/ctl/$pid.sock" ] && break; sleep 0.02; done
	cat "$T/p.err"
	[ -S "$T/ctl/$pid.sock" ]
	[ ! -e "$T/ctl/$pid.tmp" ]
	[ "$(stat -c %a "$T/ctl/$pid.sock")" = 600 ]
	# there: it answers at once
	run --separate-stderr "$CRAC" checkpoint --engine sim "$pid"
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	[ ! -e "$T/ctl/$pid.sock" ]
	[ -z "$(ls "$T/ctl")" ]
}
