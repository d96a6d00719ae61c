#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# What crac restore says about the program's descriptors (issue 13 item 4):
# by default one line for each that did not come back as it was (a
# connection a policy closed; a file reopened although it changed, as the
# policy changed=ok allowed); with CRAC_LOG=info also one per descriptor
# reopened as it was; --quiet (and CRAC_LOG=error): none. An unmodified
# python3 under `crac run`, checkpointed from outside.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-rr.XXXXXX)"
	chmod 755 "$T"
	require_image_engine
	export CRAC_CONTROL_DIR="$T/ctl"
	mkdir -m 0700 "$CRAC_CONTROL_DIR"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LOG
	echo "first" >"$T/data"
	printf 'file %s/data reopen changed=ok\ntcp * close\n' "$T" >"$T/pol"
	cat >"$T/prog.py" <<'PY'
import os, socket, sys
data = open(sys.argv[1])
null = open("/dev/null")
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
c = socket.create_connection(l.getsockname()); a, _ = l.accept()
l.close()
print("ready", data.fileno(), c.fileno(), a.fileno(), flush=True)
line = sys.stdin.readline()
print("data:", data.read().strip(), "conn:", c.recv(10), flush=True)
PY
}

teardown() {
	[ -z "${pid:-}" ] || kill "$pid" 2>/dev/null || true
	[ -z "${writer:-}" ] || kill "$writer" 2>/dev/null || true
	rm -rf "$T"
}

checkpoint() {
	# stdin: a FIFO whose writer never writes (the program waits in
	# readline); neither process keeps a descriptor of bats open, or bats
	# would wait for them (not `clean`: a function's subshell would make
	# $! another process than the one to stop)
	mkfifo "$T/in"
	(
		close_fds
		exec sleep 600 >"$T/in"
	) &
	writer=$!
	(
		close_fds
		exec "$CRAC" run --policies "$T/pol" -- python3 "$T/prog.py" "$T/data"
	) <"$T/in" >"$T/out" 2>&1 &
	pid=$!
	local i
	for ((i = 0; i < 300; i++)); do
		grep -q '^ready' "$T/out" && break
		sleep 0.05
	done
	cat "$T/out"
	run timeout 60 "$CRAC" checkpoint --image-dir "$T/img" "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	pid=""
	read -r _ FD_DATA FD_C FD_A <"$T/out"
}

@test "default: a line for the connection restored closed and for the changed file; nothing for the rest" {
	checkpoint
	echo "second" >>"$T/data"
	run bash -c 'echo go | exec "$0" restore "$1" 2>"$2"' "$CRAC" "$T/img" "$T/err"
	echo "$output"; cat "$T/err"
	[ "$status" -eq 0 ]
	[[ "$output" == "data: first"*"conn: b''" ]]
	grep -q "^crac: restore $T/img: fd $FD_DATA (file $T/data): changed since the checkpoint; reopened at its old offset as the policy (changed=ok) allows\$" "$T/err"
	grep -q "^crac: restore $T/img: fd $FD_C (closed): restored closed, as a policy said at the checkpoint (the program sees its peer gone)\$" "$T/err"
	grep -q "^crac: restore $T/img: fd $FD_A (closed): restored closed" "$T/err"
	[ "$(grep -c '^crac: restore' "$T/err")" -eq 3 ]
}

@test "--quiet and CRAC_LOG=error (crac -q): no line; CRAC_LOG=info (crac -v): every descriptor" {
	checkpoint
	echo "second" >>"$T/data"
	run bash -c 'echo go | exec "$0" restore --quiet "$1" 2>"$2"' "$CRAC" "$T/img" "$T/err"
	[ "$status" -eq 0 ]
	cat "$T/err"
	[ ! -s "$T/err" ]
	run bash -c 'echo go | CRAC_LOG=error exec "$0" restore "$1" 2>"$2"' "$CRAC" "$T/img" "$T/err"
	[ "$status" -eq 0 ]
	[ ! -s "$T/err" ]
	run bash -c 'echo go | CRAC_LOG=info exec "$0" restore "$1" 2>"$2"' "$CRAC" "$T/img" "$T/err"
	[ "$status" -eq 0 ]
	cat "$T/err"
	grep -q "changed since the checkpoint" "$T/err"
	grep -q "restored closed" "$T/err"
	# what came back as it was is said too
	grep -q "^crac: restore $T/img: fd [0-9]* (device /dev/null): reopened\$" "$T/err"
	# crac -v / -q before the command: the same as CRAC_LOG=info / error
	run bash -c 'echo go | exec "$0" -v restore "$1" 2>"$2"' "$CRAC" "$T/img" "$T/err"
	[ "$status" -eq 0 ]
	grep -q "(device /dev/null): reopened\$" "$T/err"
	run bash -c 'echo go | exec "$0" -q restore "$1" 2>"$2"' "$CRAC" "$T/img" "$T/err"
	[ "$status" -eq 0 ]
	[ ! -s "$T/err" ]
}
