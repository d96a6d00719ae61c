#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# What the control client trusts (issue 10, items 5-7; DESIGN §3 "External
# trigger", §8): it follows no symlink at PID.sock, uses a directory only if
# it belongs to the target's owner (or root) and nobody else may write to it,
# checks that the listener is process PID of that uid (SO_PEERCRED) before
# sending anything, and prints the answer with control characters escaped.
# The server side does not let a directory pre-created by another user deny
# its endpoint when $XDG_RUNTIME_DIR is usable.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/ctlprog"
	FAKE="$CRAC_BUILD_DIR/tests/control_fake"
	T="$(mktemp -d /tmp/crac-bats-trust.XXXXXX)"
	chmod 0755 "$T"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL
	PIDS=()
	MADE_TMP_DIR=
}

teardown() {
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	[ -n "$MADE_TMP_DIR" ] && rm -rf "$MADE_TMP_DIR"
	rm -rf "$T"
}

# bg OUT CMD...: runs CMD in the background with only fds 0-2 open, stdout
# to $T/OUT.out and stderr to $T/OUT.err; sets LAST to its pid and waits for
# a "ready" line.
bg() {
	local out="$1"
	shift
	spawn "$T/$out.out" "$T/$out.err" "$@"
	LAST=$SPAWNED
	PIDS+=("$LAST")
	wait_line "$T/$out.out" '^ready' 5 "$T/$out.err"
}

# decoy: a process of ours with no endpoint (the pid the attacker names)
decoy() {
	sleep 300 </dev/null >/dev/null 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	DECOY=$!
	PIDS+=("$DECOY")
}

need_root_and_nobody() {
	[ "$(id -u)" -eq 0 ] || skip "needs root to have a directory of another uid"
	command -v setpriv >/dev/null || skip "needs setpriv(1) to switch uid"
	setpriv --reuid=65534 --regid=65534 --clear-groups "$CRAC" --version >/dev/null 2>&1 ||
		skip "uid 65534 cannot execute $CRAC"
}

as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}

@test "a symlink at PID.sock to another process's socket is refused: that process is not checkpointed" {
	# the victim: a live endpoint in its own directory
	CRAC_CONTROL_DIR="$T/victim" bg victim "$PROG" --control
	VICTIM=$LAST
	[ -S "$T/victim/$VICTIM.sock" ]
	# in the (otherwise proper) control directory, DECOY.sock -> the victim's socket
	decoy
	mkdir -m 0700 "$T/ctl"
	ln -s "$T/victim/$VICTIM.sock" "$T/ctl/$DECOY.sock"
	run timeout 20 "$CRAC" checkpoint "$DECOY"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"control socket $T/ctl/$DECOY.sock is a symlink: refused"* ]]
	! grep -q '^before' "$T/victim.out" || false
	# the same for crac check and crac restore --pid
	run timeout 20 "$CRAC" check "$DECOY"
	[ "$status" -ne 0 ]
	[[ "$output" == *"is a symlink: refused"* ]]
	run timeout 20 "$CRAC" restore --pid "$DECOY"
	[ "$status" -ne 0 ]
	[[ "$output" == *"is a symlink: refused"* ]]
	# positive control: the victim's own socket works
	CRAC_CONTROL_DIR="$T/victim" run timeout 20 "$CRAC" checkpoint "$VICTIM"
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q '^before alpha' "$T/victim.out"
}

@test "a control directory owned by another uid is not used, even for a socket of the right process" {
	need_root_and_nobody
	# the target (root) listens in $T/ctl; then another user's directory is
	# named instead, with a symlink to the real socket in it
	bg target "$PROG" --control
	TARGET=$LAST
	mkdir -m 0700 "$T/other"
	ln -s "$T/ctl/$TARGET.sock" "$T/other/$TARGET.sock"
	chown -h 65534:65534 "$T/other" "$T/other/$TARGET.sock"
	CRAC_CONTROL_DIR="$T/other" run timeout 20 "$CRAC" checkpoint "$TARGET"
	echo "$output"
	# the other directory is refused; the real one is found through the
	# target's own environment (CRAC_CONTROL_DIR=$T/ctl) and works
	[ "$status" -eq 0 ]
	grep -q '^before alpha' "$T/target.out"
	# with no other way to the process named, the refusal is what is reported
	CRAC_CONTROL_DIR="$T/victim" bg victim "$PROG" --control
	VICTIM=$LAST
	decoy
	ln -s "$T/victim/$VICTIM.sock" "$T/other/$DECOY.sock"
	chown -h 65534:65534 "$T/other/$DECOY.sock"
	CRAC_CONTROL_DIR="$T/other" run timeout 20 "$CRAC" checkpoint "$DECOY"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"control directory $T/other is owned by uid 65534"*"refused"* ]]
	! grep -q '^before' "$T/victim.out" || false
}

@test "a fake endpoint for a pid it is not is refused by SO_PEERCRED, before any request is sent" {
	decoy
	bg fake "$FAKE" "$T/ctl" "$DECOY" "crac: checkpoint taken: 0 problems"
	FAKEPID=$LAST
	run timeout 20 "$CRAC" checkpoint "$DECOY"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"control socket $T/ctl/$DECOY.sock was answered by pid $FAKEPID, not $DECOY: refused"* ]]
	[[ "$output" != *"checkpoint taken"* ]]
	! grep -q '^request' "$T/fake.out" || false
}

@test "a fake endpoint of another uid is refused (owner of the socket, then of the listener)" {
	need_root_and_nobody
	# a process of nobody; root listens as if it were that process's endpoint
	setpriv --reuid=65534 --regid=65534 --clear-groups sleep 300 </dev/null >/dev/null 2>&1 &
	VPID=$!
	PIDS+=("$VPID")
	for _ in $(seq 100); do
		[ "$(awk '/^Uid:/ { print $3 }' /proc/$VPID/status)" = 65534 ] && break
		sleep 0.02
	done
	mkdir -m 0700 "$T/nb"
	chown 65534:65534 "$T/nb"
	bg fake "$FAKE" "$T/nb" "$VPID" "crac: checkpoint taken: 0 problems"
	# a socket of a third user: neither the process's nor root's
	chown -h 1:1 "$T/nb/$VPID.sock"
	CRAC_CONTROL_DIR="$T/nb" run timeout 20 "$CRAC" checkpoint "$VPID"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"$T/nb/$VPID.sock is owned by uid 1, not uid 65534 (the owner of process $VPID) or root: refused"* ]]
	! grep -q '^request' "$T/fake.out" || false
	# root's socket (a program that dropped root keeps the endpoint it
	# made as root): the owner is accepted, the listener is not the process
	chown -h 0:0 "$T/nb/$VPID.sock"
	CRAC_CONTROL_DIR="$T/nb" run timeout 20 "$CRAC" checkpoint "$VPID"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"was answered by pid "*", not $VPID: refused"* ]]
	! grep -q '^request' "$T/fake.out" || false
	# a socket of the right owner whose listener is not that process
	chown -h 65534:65534 "$T/nb/$VPID.sock"
	CRAC_CONTROL_DIR="$T/nb" run timeout 20 "$CRAC" checkpoint "$VPID"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"was answered by pid "*", not $VPID: refused"* ]]
	! grep -q '^request' "$T/fake.out" || false
}

@test "escape sequences in an answer are printed escaped" {
	bg fake "$FAKE" "$T/ctl" self $'crac: \e[2J\e]0;owned\a red\tTAB\x7f DEL \xc2\x9b C1 \xff bad' \
		'crac: café \ backslash'
	FAKEPID=$LAST
	run timeout 20 "$CRAC" checkpoint "$FAKEPID"
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q '^request CHECKPOINT' "$T/fake.out"
	[ "${lines[0]}" = 'crac: \x1b[2J\x1b]0;owned\x07 red\x09TAB\x7f DEL \xc2\x9b C1 \xff bad' ]
	[ "${lines[1]}" = 'crac: café \ backslash' ]
	[[ "$output" != *$'\e'* ]]
	[[ "$output" != *$'\t'* ]]
	[[ "$output" != *$'\a'* ]]
}

@test "a very long answer line is printed whole, escaped, as one line" {
	long=$(printf 'x%.0s' $(seq 50000))
	bg fake "$FAKE" "$T/ctl" self "crac: $long"$'\e' "crac: next"
	FAKEPID=$LAST
	run timeout 20 "$CRAC" checkpoint "$FAKEPID"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	[ "${lines[0]}" = "crac: $long\\x1b" ]
	[ "${lines[1]}" = "crac: next" ]
}

@test "the socket file is removed when the program exits normally" {
	# (bash, which ends with exit(); dash ends with _exit(), which runs no
	# exit handler)
	command -v bash >/dev/null || skip "needs bash"
	run "$CRAC" run -- bash -c 'test -S "$CRAC_CONTROL_DIR/$$.sock" && echo "present $$"; exit 0'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "present "* ]]
	ls -la "$T/ctl"
	[ -z "$(ls -A "$T/ctl")" ]
	# a program with a running endpoint that returns from main
	run "$CRAC" run -- "$CRAC_BUILD_DIR/crac" --version
	[ "$status" -eq 0 ]
	[ -z "$(ls -A "$T/ctl")" ]
}

@test "a /tmp/crac-UID pre-created by another uid does not deny the endpoint when XDG_RUNTIME_DIR is usable" {
	need_root_and_nobody
	TMPDIR_NB=/tmp/crac-65534
	[ ! -e "$TMPDIR_NB" ] || skip "$TMPDIR_NB already exists (not ours to remove)"
	# "another uid" (root here) takes the /tmp name first
	mkdir -m 0700 "$TMPDIR_NB"
	MADE_TMP_DIR="$TMPDIR_NB"
	mkdir -m 0700 "$T/xdg"
	chown 65534:65534 "$T/xdg"
	unset CRAC_CONTROL_DIR
	bg target env -u CRAC_CONTROL_DIR XDG_RUNTIME_DIR="$T/xdg" \
		setpriv --reuid=65534 --regid=65534 --clear-groups "$PROG" --control
	TARGET=$LAST
	[ -S "$T/xdg/crac/$TARGET.sock" ]
	[ "$(stat -c %u:%a "$T/xdg/crac")" = 65534:700 ]
	# the owner (without XDG_RUNTIME_DIR) and root find it
	run as_nobody env -u XDG_RUNTIME_DIR timeout 20 "$CRAC" checkpoint "$TARGET"
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q '^after alpha gen=1 ' "$T/target.out"
	run env -u XDG_RUNTIME_DIR timeout 20 "$CRAC" checkpoint "$TARGET"
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q '^after alpha gen=2 ' "$T/target.out"
	# without a usable XDG_RUNTIME_DIR the /tmp fallback is still refused
	run env -u CRAC_CONTROL_DIR XDG_RUNTIME_DIR=/tmp setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$PROG" --control
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"refusing /tmp/crac-65534"* ]]
}
