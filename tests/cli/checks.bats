#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Safety checks and policies through the command line (issue #4): an
# unmodified TCP server under `crac run --policies`, `crac check PID`, and a
# malformed policy file.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	SERVER="$CRAC_BUILD_DIR/tests/checks_server"
	T="$(mktemp -d /tmp/crac-bats-checks.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	PID=
}

teardown() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null || true
	rm -rf "$T"
}

ping_server() {
	python3 - "$(cat "$T/port")" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
print(s.recv(64).decode().strip())
PY
}

@test "crac check: the server's log file and listener are carried; a pipe to another process is listed with the policy that allows it" {
	# fd 5: a pipe whose writer is a process of ours, not the server's child
	exec 5< <(exec sleep 30)
	EXTRA_PIPE=1 start_server
	exec 5<&-
	run "$CRAC" check "$PID"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"1 problem would refuse a checkpoint of process $PID"* ]]
	[[ "$output" == *"check fd 5: "*"pipe"*"its other end is not in this process"* ]]
	[[ "$output" == *'`pipe * close`'* ]]
	# what the image engine carries is not listed
	[[ "$output" != *"server.log"* ]]
	[[ "$output" != *"tcp 127.0.0.1"* ]]
}

@test "with reopen policies the server keeps serving and logging after a checkpoint" {
	printf '# the server'"'"'s own descriptors\ntcp  127.0.0.1:*  reopen\nfile %s/*.log reopen\n' "$T" >"$T/policies"
	start_server --policies "$T/policies"
	run "$CRAC" check "$PID"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"nothing stands in the way"* ]]
	run ping_server
	[ "$output" = "pong 1" ]
	run "$CRAC" checkpoint --engine sim --force-checks "$PID"
	[ "$status" -eq 0 ]
	run ping_server
	[ "$output" = "pong 2" ]
	run ping_server
	[ "$output" = "pong 3" ]
	# the log continued at the right offset: three lines, in order
	run cat "$T/server.log"
	[ "${lines[0]}" = "connection 1" ]
	[ "${lines[1]}" = "connection 2" ]
	[ "${lines[2]}" = "connection 3" ]
	[ "${#lines[@]}" -eq 3 ]
}

@test "without policies a forced checkpoint is refused and the server is untouched" {
	start_server
	run "$CRAC" checkpoint --engine sim --force-checks "$PID"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"checkpoint aborted: 2 problems"* ]]
	run ping_server
	[ "$output" = "pong 1" ]
}

@test "a malformed policy file is rejected with line and column" {
	printf 'tcp * reopen\nfile /x clos\n' >"$T/bad"
	run "$CRAC" run --policies "$T/bad" -- /bin/true
	[[ "$output" == *"$T/bad:2:9: unknown action \"clos\""* ]]
	# and every checkpoint of that process is refused
	start_server --policies "$T/bad"
	run "$CRAC" checkpoint --engine sim --force-checks "$PID"
	[ "$status" -eq 1 ]
	[[ "$output" == *"CRAC_POLICIES: $T/bad:2:9"* ]]
}

@test "crac run refuses a policy file it cannot read" {
	run "$CRAC" run --policies "$T/missing" -- /bin/true
	[ "$status" -eq 2 ]
	[[ "$output" == *"$T/missing"* ]]
}

@test "image engine, no policy: the server blocked in accept() is checkpointed and restored; it goes on accepting on the carried listener and logging at the right offset" {
	start_server
	run ping_server
	[ "$output" = "pong 1" ]
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" "$PID"
	echo "$output"
	[ "$status" -eq 0 ]
	wait_gone "$PID" 5
	PID=
	(
		close_fds
		exec "$CRAC" restore "$T/img" </dev/null >"$T/out2" 2>"$T/err2"
	) &
	PID=$!
	run ping_server
	echo "$output"; cat "$T/err2"
	[ "$output" = "pong 2" ]
	run ping_server
	[ "$output" = "pong 3" ]
	run cat "$T/server.log"
	[ "${lines[0]}" = "connection 1" ]
	[ "${lines[1]}" = "connection 2" ]
	[ "${lines[2]}" = "connection 3" ]
	[ "${#lines[@]}" -eq 3 ]
}

@test "image engine: a close policy never acts on the running program (keep-running: the original keeps serving)" {
	printf 'tcp  127.0.0.1:*  close\n' >"$T/policies"
	start_server --policies "$T/policies"
	run "$CRAC" checkpoint --engine image --keep-running --image-dir "$T/img" "$PID"
	echo "$output"
	[ "$status" -eq 0 ]
	# the original still has its listener and serves
	run ping_server
	[ "$output" = "pong 1" ]
	run ping_server
	[ "$output" = "pong 2" ]
}

@test "image engine: a log file written after the checkpoint refuses the restore, naming it and the policy" {
	start_server
	run "$CRAC" checkpoint --engine image --keep-running --image-dir "$T/img" "$PID"
	[ "$status" -eq 0 ]
	run ping_server   # the original appends to its log: the file changed
	[ "$output" = "pong 1" ]
	run --separate-stderr "$CRAC" restore "$T/img"
	echo "$status: $stderr"
	[ "$status" -eq 1 ]
	[[ "$stderr" =~ ^crac:\ restore\ $T/img:\ fd\ [0-9]+\ \(file\):\ $T/server\.log\ changed\ since\ the\ checkpoint\ \(its\ size\ differs\)\;\ a\ policy\ \`file\ $T/server\.log\ reopen\ changed=ok\`\ accepts\ it$ ]]
}
