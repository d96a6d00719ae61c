#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# crac flatten's watched worker (src/cli/watch.c) and its ends other than a
# step given up on: a worker killed by a signal mid-write, crac flatten
# itself stopped by SIGTERM or SIGINT while its worker runs, and crac
# flatten started with SIGCHLD ignored (inherited across exec). In each,
# crac flatten ends, no worker is left, no temporary is left next to OUT,
# and the chain is untouched. (Steps given up on: flatten_fs_stuck.bats.)

bats_require_minimum_version 1.5.0

load common

setup() { chain_setup flatworker; }

teardown() {
	[ -z "${FPID:-}" ] || kill -9 "$FPID" 2>/dev/null || true
	[ -z "${WPID:-}" ] || kill -9 "$WPID" 2>/dev/null || true
	common_teardown
}

# writing [SETSID]: crac flatten $T/i2 $T/flat in the background (in a
# session of its own with SETSID=1), its page write held (a file system
# that does not answer, well within its --timeout of 60 s); waits until
# its worker has created the temporary. Sets FPID (crac flatten) and WPID
# (its worker).
writing() {
	local i
	if [ "${1:-}" = 1 ]; then
		spawn "$T/flat.out" "$T/flat.err" setsid env CRAC_TEST_SLOW_FS=pagewrite:600000 "$CRAC" flatten \
			"$T/i2" "$T/flat" --timeout 60s
	else
		spawn "$T/flat.out" "$T/flat.err" env CRAC_TEST_SLOW_FS=pagewrite:600000 "$CRAC" flatten \
			"$T/i2" "$T/flat" --timeout 60s
	fi
	FPID=$SPAWNED
	for i in $(seq 200); do
		WPID=$(pgrep -P "$FPID" || true)
		[ -n "$WPID" ] && [ -n "$(ls "$T" | grep "^flat\.tmp-")" ] && [ -e "$(ls -d "$T"/flat.tmp-*)/pages" ] && break
		sleep 0.05
	done
	echo "flatten $FPID, worker $WPID: $(ls "$T")"
	[ -n "$WPID" ]
	[ -n "$(ls "$T" | grep "^flat\.tmp-")" ]
}

# ended STATUS: crac flatten ended (within 10 s) with STATUS; no worker, no
# temporary, nothing at OUT, the chain untouched.
ended() {
	flatten_ended
	echo "status $FST; stderr: $(cat "$T/flat.err")"
	[ "$FST" -eq "$1" ]
	! kill -0 "$WPID" 2>/dev/null
	[ -z "$(ls "$T" | grep "\.tmp-")" ]
	[ ! -e "$T/flat" ]
	[ "$(chain_state)" = "$BEFORE" ]
}

@test "flatten: its worker killed by a signal mid-write: said, the temporary removed, the chain untouched" {
	writing
	kill -KILL "$WPID"
	ended 1
	grep -q "^crac: flatten $T/i2: its worker (pid $WPID) was killed by signal 9 (Killed)" "$T/flat.err"
}

@test "flatten: SIGTERM to crac flatten while its worker writes: the worker stopped, the temporary removed, dies by SIGTERM" {
	writing
	kill -TERM "$FPID"
	ended 143
	grep -q "^crac: flatten $T/i2: stopped by signal 15 (Terminated)" "$T/flat.err"
}

@test "flatten: SIGINT to its process group (^C) while its worker writes: the temporary removed, dies by SIGINT" {
	writing 1
	kill -INT -- -"$FPID"
	ended 130
}

@test "flatten started with SIGCHLD ignored: ends with its worker's status, at once" {
	t0=$(date +%s%N)
	run --separate-stderr timeout -k 5 30 "$CRAC_BUILD_DIR/tests/sigchld_ign" \
		"$CRAC" flatten "$T/i2" "$T/flat" --timeout 5s
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status: [$output] [$stderr] ($ms ms)"
	[ "$status" -eq 0 ]
	[ "$ms" -lt 4000 ]
	"$CRAC" inspect "$T/flat" >/dev/null
	# and one that fails: its own message, not a step given up on
	run --separate-stderr timeout -k 5 30 "$CRAC_BUILD_DIR/tests/sigchld_ign" \
		"$CRAC" flatten "$T/nothing" "$T/flat2" --timeout 5s
	echo "$status: [$output] [$stderr]"
	[ "$status" -eq 1 ]
	echo "$stderr" | grep -q "cannot open the image directory"
	! echo "$stderr" | grep -q "did not return" || false
	[ -z "$(ls "$T" | grep "\.tmp-")" ]
}

@test "flatten: SIGKILL to crac flatten while its worker writes: the worker dies with it; the next flatten removes the temporary" {
	writing
	kill -KILL "$FPID"
	wait "$FPID" || true
	for i in $(seq 100); do
		kill -0 "$WPID" 2>/dev/null || break
		sleep 0.05
	done
	! kill -0 "$WPID" 2>/dev/null
	[ -n "$(ls "$T" | grep "^flat\.tmp-")" ]
	[ "$(chain_state)" = "$BEFORE" ]
	run "$CRAC" flatten "$T/i2" "$T/flat" --timeout 5s
	echo "$status: $output"
	[ "$status" -eq 0 ]
	[ -z "$(ls "$T" | grep "\.tmp-")" ]
	"$CRAC" inspect "$T/flat" >/dev/null
	[ "$(chain_state)" = "$BEFORE" ]
}
