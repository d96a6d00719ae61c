#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A target in a user namespace not ours (a rootless container: its user
# runs `unshare -U -r`, and is root in there). It sees a client's uid as
# its namespace maps it, and an unmapped one (root outside) as the overflow
# uid, which its owner check refuses (only its own uid or root). Its owner
# outside controls it; root outside is refused by the client itself, in
# one line naming the namespace and the owner to use, nothing sent (the
# target says nothing), where it used to get "closed the connection
# without an answer" and the target a refusal of "uid 65534".

bats_require_minimum_version 1.5.0

load common

setup() {
	common_setup ctluserns --open
	unset CRAC_CONTROL_DIR
	PROG="$CRAC_BUILD_DIR/tests/ctlprog"
	[ "$(id -u)" -eq 0 ] || skip "needs root (to become nobody)"
	command -v setpriv >/dev/null || skip "needs setpriv(1)"
	command -v unshare >/dev/null || skip "needs unshare(1)"
	id nobody >/dev/null 2>&1 || skip "no user nobody"
	setpriv --reuid=nobody --regid=nogroup --clear-groups unshare -U -r true 2>/dev/null ||
		skip "unprivileged user namespaces are not allowed here"
}

teardown() {
	common_teardown
}

@test "a target in a user namespace of its own: its owner controls it; root outside is refused in one line, nothing sent" {
	mkdir -m 755 "$T/home"
	chown nobody "$T/home"
	spawn "$T/p.out" "$T/p.err" setpriv --reuid=nobody --regid=nogroup --clear-groups \
		unshare -U -r env CRAC_CONTROL_DIR="$T/home/ctl" "$PROG" --control
	pid=$SPAWNED
	PIDS+=("$pid")
	for _ in $(seq 200); do grep -qs ready "$T/p.out" && break; sleep 0.05; done
	cat "$T/p.out" "$T/p.err"
	grep -q "ready pid=$pid" "$T/p.out"
	[ -S "$T/home/ctl/$pid.sock" ]
	# in its own user namespace, where it is root
	[ "$(readlink /proc/$pid/ns/user)" != "$(readlink /proc/self/ns/user)" ]
	grep -q "^Uid:.*65534" "/proc/$pid/status"
	# root outside: refused here, before anything is sent
	run --separate-stderr timeout 20 env CRAC_CONTROL_DIR="$T/home/ctl" "$CRAC" checkpoint --dry-run "$pid"
	echo "status $status, stdout: $output, stderr: $stderr"
	[ "$status" -ne 0 ]
	[ "$(echo "$stderr" | wc -l)" -eq 1 ]
	[ "$stderr" = "crac: process $pid is in a user namespace not ours (/proc/$pid/ns/user) that does not map uid 0 (/proc/$pid/uid_map): it would take us for its overflow uid and refuse; control it as uid 65534, its owner" ]
	! grep -q "refused connection" "$T/p.err" || false
	# its owner outside: controls it
	run timeout 20 setpriv --reuid=nobody --regid=nogroup --clear-groups env CRAC_CONTROL_DIR="$T/home/ctl" \
		"$CRAC" checkpoint --dry-run "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	cat "$T/p.err"
	! grep -q "refused connection" "$T/p.err" || false
}
