#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# libcrac's control endpoint in a directory on a file system that does not
# answer (an NFS or FUSE server gone), simulated by
# CRAC_TEST_SLOW_FS=control:MS (src/core/control.c: the setup's helper
# first sleeps MS ms): its setup (the choice, mkdir and lstat of the
# directory, the stale socket, the bind) is given up on at a bound, 10 s
# (CRAC_TEST_SYNC_GRACE_MS in tests), or the checkpoint's deadline when a
# checkpoint starts it; the error names the step and the path, and the
# program goes on.

bats_require_minimum_version 1.5.0

load common
load stuck_common

setup() {
	common_setup ctlstuck --open --control CRAC_TEST_SYNC_GRACE_MS CRAC_TEST_SLOW_FS
	PROG="$CRAC_BUILD_DIR/tests/ctlprog"
}

teardown() {
	common_teardown
}

# ms_since T0: milliseconds since T0 (date +%s%N)
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

@test "CRAC_CONTROL=1 at load time, the directory does not answer: given up after the bound naming the mkdir and the directory; the program runs on" {
	t0=$(date +%s%N)
	spawn "$T/p.out" "$T/p.err" env CRAC_CONTROL=1 CRAC_TEST_SLOW_FS=control:600000 CRAC_TEST_SYNC_GRACE_MS=1000 "$PROG"
	pid=$SPAWNED
	PIDS+=("$pid")
	wait_line "$T/p.out" '^ready' 15 "$T/p.err"
	ms=$(ms_since "$t0")
	cat "$T/p.out" "$T/p.err"
	[ "$ms" -ge 900 ]
	[ "$ms" -lt 8000 ]
	grep -Eq "^crac: (error: )?CRAC_CONTROL=1 but the control endpoint could not start at $T/ctl/$pid\.sock: the mkdir of $T/ctl did not return after [0-9]+ ms \(the control endpoint's setup, 1000 ms at most\): its file system does not answer; given up$" "$T/p.err"
	# the helper given up on ended with its sleep: no child left
	kill -0 "$pid"
	[ -z "$(ps -o pid= --ppid "$pid")" ]
	[ ! -e "$T/ctl/$pid.sock" ]
}

@test "the default bound of the setup at load time is 10 s" {
	t0=$(date +%s%N)
	spawn "$T/p.out" "$T/p.err" env CRAC_CONTROL=1 CRAC_TEST_SLOW_FS=control:600000 "$PROG"
	pid=$SPAWNED
	PIDS+=("$pid")
	wait_line "$T/p.out" '^ready' 30 "$T/p.err"
	ms=$(ms_since "$t0")
	cat "$T/p.err"
	[ "$ms" -ge 9900 ]
	[ "$ms" -lt 20000 ]
	grep -Eq "did not return after [0-9]+ ms \(the control endpoint's setup, 10000 ms at most\)" "$T/p.err"
}

@test "crac_control_start() itself: -ETIMEDOUT, the message says the step and the path" {
	run --separate-stderr timeout 30 env CRAC_TEST_SLOW_FS=control:600000 CRAC_TEST_SYNC_GRACE_MS=500 \
		bash -c "\"$PROG\" --control & p=\$!; wait \$p"
	echo "$status: $output / $stderr"
	[ "$status" -eq 1 ]
	echo "$stderr" | grep -Eq "^crac: (error: )?control: the mkdir of $T/ctl did not return after [0-9]+ ms \(the control endpoint's setup, 500 ms at most\): its file system does not answer; given up$"
	echo "$stderr" | grep -q "ctlprog: crac_control_start: Connection timed out"
}

@test "the pause engine's first checkpoint starts the endpoint: given up at the checkpoint's deadline, the report names the step and the socket" {
	t0=$(date +%s%N)
	spawn "$T/p.out" "$T/p.err" env CRAC_TEST_SLOW_FS=control:600000 "$PROG" --self pause --deadline 1000
	pid=$SPAWNED
	PIDS+=("$pid")
	wait_line "$T/p.out" '^ready' 15 "$T/p.err"
	ms=$(ms_since "$t0")
	cat "$T/p.out" "$T/p.err"
	[ "$ms" -lt 8000 ]
	grep -Eq "the pause engine is resumed through the control endpoint, which could not start at $T/ctl/$pid\.sock: the mkdir of $T/ctl did not return after [0-9]+ ms \(the checkpoint's deadline\): its file system does not answer; given up" "$T/p.out"
	grep -q "^result=" "$T/p.out"
}

@test "a file system that answers: the endpoint comes up as before, and its socket is removed at exit" {
	start_prog good CRAC_TEST_SLOW_FS=control:200
	[ -S "$T/ctl/$pid.sock" ]
	run "$CRAC" checkpoint --engine sim "$pid"
	[ "$status" -eq 0 ]
	kill "$pid"
	wait_gone "$pid" 5
	[ ! -e "$T/ctl/$pid.sock" ]
}

@test "crac checkpoint PID, the control directory does not answer the client: its lookup is given up at the bound naming the directory; the program was asked nothing" {
	start_prog target
	[ -S "$T/ctl/$pid.sock" ]
	t0=$(date +%s%N)
	# (no --timeout: without a bound of its own the lookup waited 70 s, the
	# default deadline and its margin, or for ever in the kernel)
	run --separate-stderr timeout -k 5 40 env CRAC_TEST_SLOW_FS=lookup:600000 CRAC_TEST_SYNC_GRACE_MS=1000 \
		"$CRAC" checkpoint --engine sim "$pid"
	ms=$(ms_since "$t0")
	echo "$status ($ms ms): $output / $stderr"
	[ "$status" -eq 2 ]
	[ "$ms" -lt 8000 ]
	echo "$stderr" | grep -Eq "^crac: (error: )?(checkpoint: )?the open of $T/ctl did not return after [0-9]+ ms \(the lookup of the control socket of process $pid, 1000 ms at most\): its file system does not answer; given up$"
	# asked nothing: it still answers a checkpoint
	run "$CRAC" checkpoint --engine sim "$pid"
	[ "$status" -eq 0 ]
}
