#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `crac checkpoint --timeout` (issue 13 item 6): the command stops waiting
# after the limit and says which phase the checkpoint was in; by default the
# limit is the deadline plus a margin. The target is tests/progs/ctlprog,
# whose resource beta sleeps in its before_checkpoint callback (--slow).

load start_common

setup() {
	T="$(mktemp -d /tmp/crac-bats-tmo.XXXXXX)"
	start_setup
	PROG="$CRAC_BUILD_DIR/tests/ctlprog"
}

teardown() { start_teardown; }

# start_prog NAME ARGS...: ctlprog ARGS in the background, ready; $pid.
start_prog() {
	local name="$1"
	shift
	bg "$name" "$PROG" "$@"
	wait_for grep -q '^ready' "$T/$name.out"
}

@test "--timeout: a checkpoint stuck before the snapshot is given up with its phase, exit 1; the process lives on" {
	start_prog one --control --slow beta 3000
	start=$(date +%s%N)
	run "$CRAC" checkpoint --engine sim --deadline 10000 --timeout 400ms "$pid"
	took=$(( ($(date +%s%N) - start) / 1000000 ))
	echo "$output (${took} ms)"
	[ "$status" -eq 1 ]
	[[ "$output" == *"checkpoint of process $pid: no answer after 0.4 s (--timeout); it was before the snapshot: waiting for inhibitors (crac_inhibit), in the before_checkpoint callbacks or the safety checks"* ]]
	[ "$took" -lt 2500 ]
	kill -0 "$pid"
	# the round finishes in the process: the next checkpoint works
	wait_for grep -q '^after beta' "$T/one.out"
	run "$CRAC" checkpoint --engine sim --timeout 5s "$pid"
	[ "$status" -eq 0 ]
}

@test "--timeout 0 waits as long as it takes; an answer within the limit is printed as without it" {
	start_prog one --control --slow beta 600
	run "$CRAC" checkpoint --engine sim --timeout 0 "$pid"
	[ "$status" -eq 0 ]
	run "$CRAC" checkpoint --engine sim --timeout 10s "$pid"
	[ "$status" -eq 0 ]
	start_prog two --control --fail-before alpha
	run "$CRAC" checkpoint --engine sim --timeout 10s "$pid"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"alpha is busy (test)"* ]]
}

@test "--timeout: bad durations are usage errors; --help gives the default (the deadline plus a margin)" {
	run "$CRAC" checkpoint --timeout soon 1
	[ "$status" -eq 2 ]
	[[ "$output" == *"--timeout wants a duration"* ]]
	run "$CRAC" checkpoint --help
	[ "$status" -eq 0 ]
	for o in --engine --image-dir --keep-running --deadline --dry-run --force-checks --timeout; do
		[[ "$output" == *"$o"* ]]
	done
	[[ "$output" == *"deadline plus 60 s"* ]]
}
