#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The control endpoint refuses other users (DESIGN §3 "External trigger":
# 0600 socket in a 0700 directory, SO_PEERCRED: same uid or root only).
# Needs root to have a second uid (65534); skipped otherwise, with the reason.
#  - with the directory opened up (0755) and the socket 0666, uid 65534 can
#    reach the socket, but its `crac checkpoint` is refused by the server:
#    no callback runs, the CLI fails, the target logs "refused" on stderr;
#  - with the default 0700 directory uid 65534 cannot even connect.
#  - root may checkpoint a process of another user (positive control).

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/ctlprog"
	T="$(mktemp -d /tmp/crac-bats-uid.XXXXXX)"
	chmod 0755 "$T"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL
	PID=
}

teardown() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null || true
	[ -n "$PID" ] && wait "$PID" 2>/dev/null || true
	rm -rf "$T"
}

need_root_and_nobody() {
	[ "$(id -u)" -eq 0 ] || skip "needs root to run a client under a second uid"
	command -v setpriv >/dev/null || skip "needs setpriv(1) to switch uid"
	# uid 65534 must be able to run the crac binary
	setpriv --reuid=65534 --regid=65534 --clear-groups "$CRAC" --version >/dev/null 2>&1 ||
		skip "uid 65534 cannot execute $CRAC"
}

start_prog() {
	spawn "$T/out" "$T/err" "$@"
	PID=$SPAWNED
	wait_line "$T/out" '^ready' 5 "$T/err"
}

as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}

@test "another uid reaching the socket is refused by the server" {
	need_root_and_nobody
	start_prog "$PROG" --control
	chmod 0755 "$CRAC_CONTROL_DIR"
	chmod 0666 "$CRAC_CONTROL_DIR/$PID.sock"
	run as_nobody timeout 20 "$CRAC" checkpoint "$PID"
	echo "$output"
	[ "$status" -ne 0 ]
	# no checkpoint happened in the target
	! grep -q '^before' "$T/out" || false
	# and the target logged the refusal
	wait_line "$T/err" refused 2
	cat "$T/err"
	# the same request from root (the owner) works: the refusal was about the uid
	run timeout 20 "$CRAC" checkpoint "$PID"
	[ "$status" -eq 0 ]
	grep -q '^before alpha' "$T/out"
}

@test "with the default 0700 directory another uid cannot even connect" {
	need_root_and_nobody
	start_prog "$PROG" --control
	[ "$(stat -c %a "$CRAC_CONTROL_DIR")" = 700 ]
	run as_nobody timeout 20 "$CRAC" checkpoint "$PID"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *[Pp]ermission* ]]
	! grep -q '^before' "$T/out" || false
	# refused before reaching the server: nothing for the server to log
	! grep -q refused "$T/err" || false
}

@test "root may checkpoint a process of another uid" {
	need_root_and_nobody
	# the target runs as 65534 with its own (0700, 65534-owned) directory
	mkdir -p "$T/nobody"
	chown 65534:65534 "$T/nobody"
	CRAC_CONTROL_DIR="$T/nobody/ctl" start_prog setpriv --reuid=65534 --regid=65534 --clear-groups "$PROG" --control
	[ "$(stat -c %u "$T/nobody/ctl")" = 65534 ]
	CRAC_CONTROL_DIR="$T/nobody/ctl" run timeout 20 "$CRAC" checkpoint "$PID"
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q '^after alpha gen=1 ' "$T/out"
}
