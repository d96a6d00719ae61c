#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Nothing of a restore's report is lost under `crac run`: a program
# checkpointed by a trigger (sim engine: the restore comes at once) whose
# main thread ends the process as soon as an after_restore callback says
# it was restored (tests/progs/run_quick_exit.c) still gets its whole
# report to the user when it ends with exit() (libcrac's exit waits for
# the report: src/core/checkpoint.c); when it cannot (_exit, SIGKILL), the
# supervisor prints what came and says the report was cut short, never that
# the program "keeps running cold". 30 rounds each: the race is narrow.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/run_quick_exit"
	T="$(mktemp -d /tmp/crac-bats-runrep.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LOG
}

teardown() {
	rm -rf "$T"
}

# quick MODE N: N rounds of `crac run` on run_quick_exit MODE; round i's
# stderr in $T/err.i, its exit status in $T/rc.i.
quick() {
	local i
	for i in $(seq "$2"); do
		rc=0
		clean "$CRAC" run --engine sim --checkpoint-after 20ms -- "$PROG" "$1" \
			>/dev/null 2>"$T/err.$i" || rc=$?
		echo "$rc" >"$T/rc.$i"
	done
}

@test "a program that exit()s at once after its restore: every round prints the whole report, exit status 5" {
	quick exit 30
	for i in $(seq 30); do
		echo "round $i (status $(cat "$T/rc.$i")):"; cat "$T/err.$i"
		[ "$(cat "$T/rc.$i")" -eq 5 ]
		grep -q "^crac: simulated snapshot" "$T/err.$i"
		grep -q "^crac: restored: 1 problem" "$T/err.$i"
		grep -q "after_restore quick-fail: .*ECONNREFUSED.*quick-fail could not reconnect" "$T/err.$i"
		grep -q "^crac: after restore: quick-fail: ECONNREFUSED" "$T/err.$i"
		! grep -q "cut short\|without an answer\|keeps running" "$T/err.$i" || false
	done
}

@test "a program that _exit()s or is killed at once after its restore: the whole report, or what came and that it was cut short" {
	for mode in _exit kill; do
		quick "$mode" 15
		for i in $(seq 15); do
			echo "$mode round $i (status $(cat "$T/rc.$i")):"; cat "$T/err.$i"
			if [ "$mode" = _exit ]; then [ "$(cat "$T/rc.$i")" -eq 5 ]; else [ "$(cat "$T/rc.$i")" -eq 137 ]; fi
			grep -q "^crac: simulated snapshot" "$T/err.$i"
			! grep -q "without an answer\|keeps running" "$T/err.$i" || false
			if ! grep -q "after_restore quick-fail: .*could not reconnect" "$T/err.$i"; then
				grep -q "^crac: run: process [0-9]* ended before its answer to the checkpoint that --checkpoint-after 20 ms started was complete: the report above was cut short" "$T/err.$i"
			fi
		done
	done
}
