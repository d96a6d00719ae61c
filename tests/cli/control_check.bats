#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `crac check PID` says what it is (issue 11): its headline is the check's,
# "crac: check: N problems would refuse a checkpoint of process PID" or
# "crac: check: nothing stands in the way of a checkpoint of process PID",
# never "checkpoint aborted" (nothing was aborted: no callback ran); the
# entries follow, one per line; exit status 1 with problems, 0 without.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	SERVER="$CRAC_BUILD_DIR/tests/checks_server"
	T="$(mktemp -d /tmp/crac-bats-ctlcheck.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL
	PID=
}

teardown() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null || true
	[ -n "$PID" ] && wait "$PID" 2>/dev/null || true
	rm -rf "$T"
}

@test "crac check PID with problems: the check's own headline, then the entries" {
	# one descriptor the image engine cannot carry: the end of a pipe whose
	# other end is in a process of ours (the server's listener and log file
	# are carried)
	exec 5< <(exec sleep 30)
	EXTRA_PIPE=1 start_server
	exec 5<&-
	run "$CRAC" check "$PID"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "crac: check: 1 problem would refuse a checkpoint of process $PID" ]
	[[ "${lines[1]}" == "  check fd 5: "* ]]
	[ "${#lines[@]}" -eq 2 ]
	[[ "$output" != *"aborted"* ]]
}

@test "crac check PID without problems says so" {
	printf 'tcp  127.0.0.1:*  reopen\nfile %s/*.log reopen\n' "$T" >"$T/policies"
	start_server --policies "$T/policies"
	run "$CRAC" check "$PID"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "crac: check: nothing stands in the way of a checkpoint of process $PID" ]
}
