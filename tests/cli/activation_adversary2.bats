#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Review of socket activation for crac restore DIR (review2): a hostile or
# damaged DIR/activation record, hostile LISTEN_FDS values. Each must
# refuse with one line rather than restore the program with its recorded
# sockets quietly bound again (or the passed ones quietly closed).

bats_require_minimum_version 1.5.0
load common
load start_common

setup() {
	T="$(mktemp -d /tmp/crac-bats-act2.XXXXXX)"
	start_setup
	require_image_engine
	command -v systemd-socket-activate >/dev/null ||
		skip "systemd-socket-activate is not installed (Debian package systemd)"
	command -v "$PY" >/dev/null || skip "python3 is not installed"
}

teardown() { start_teardown; }

# activated_image: `crac run` under socket activation on $port1 checkpoints
# the server into $T/img (DIR/activation "0 3").
activated_image() {
	port1="$(free_port)"
	bg first systemd-socket-activate -l "127.0.0.1:$port1" -E CRAC_CONTROL_DIR -E PATH \
		"$CRAC" run --checkpoint-to "$T/img" --checkpoint-after 300ms -- "$SERVER" "$T/d"
	wait_for listening "$port1"
	[[ "$(ask "$port1")" == "answer "*"activated=1"* ]]
	wait "$pid"
	[ -f "$T/img/header" ]
	[ "$(cat "$T/img/activation")" = "0 3" ]
}

# restore_activated LISTEN_FDS: `crac restore $T/img` as systemd would
# start it: a listening socket on a free port at fd 3, LISTEN_PID its own
# pid, LISTEN_FDS as given; at most 3 s (a restored server runs on: killed).
restore_activated() {
	port2="$(free_port)"
	run --separate-stderr clean timeout 3 "$PY" -c '
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
    s.close()
else:
    s.detach()
os.set_inheritable(3, True)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = sys.argv[2]
os.execv(sys.argv[3], [sys.argv[3], "restore", sys.argv[4]])
' "$port2" "$1" "$CRAC" "$T/img"
	echo "$status: $stderr"
}

@test "DIR/activation naming one fd many times (a value the loader would drop whole): refused as damaged" {
	activated_image
	# 129 times "0 3": CRAC_ACTIVATION_FDS=3:3,...: 515 bytes, over what
	# the loader takes; it used to ignore the variable and close fd 3
	for _ in $(seq 129); do echo "0 3"; done >"$T/img/activation"
	restore_activated 1
	[ "$status" -eq 1 ]
	[ "$stderr" = "crac: restore $T/img: $T/img/activation is damaged: fd 3 named twice" ]
	# twice is as wrong as 129 times
	printf '0 3\n0 3\n' >"$T/img/activation"
	restore_activated 1
	[ "$status" -eq 1 ]
	[ "$stderr" = "crac: restore $T/img: $T/img/activation is damaged: fd 3 named twice" ]
}

@test "DIR/activation with a number that overflows, or more on its line: refused as damaged" {
	activated_image
	# 2^32 + 3 used to read as fd 3
	printf '0 4294967299\n' >"$T/img/activation"
	restore_activated 1
	[ "$status" -eq 1 ]
	[ "$stderr" = "crac: restore $T/img: $T/img/activation is damaged" ]
	printf '0 3 and more\n' >"$T/img/activation"
	restore_activated 1
	[ "$status" -eq 1 ]
	[ "$stderr" = "crac: restore $T/img: $T/img/activation is damaged" ]
	printf '0 3\n-1 3\n' >"$T/img/activation"
	restore_activated 1
	[ "$status" -eq 1 ]
	[ "$stderr" = "crac: restore $T/img: $T/img/activation is damaged" ]
}

@test "LISTEN_FDS that is no number of sockets, LISTEN_PID naming crac restore: refused with one line, not taken as no activation" {
	activated_image
	for bad in abc -1 "" 1x 99999; do
		restore_activated "$bad"
		[ "$status" -eq 1 ]
		[ "$stderr" = "crac: restore $T/img: LISTEN_FDS=\"$bad\" (LISTEN_PID is this process) is no number of sockets (0 to 4096)" ]
	done
	# the one passed, as it should be: restored, its socket taken
	restore_activated 1
	[ "$status" -eq 124 ]
	[ -z "$stderr" ]
}
