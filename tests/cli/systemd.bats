#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# systemd (issue 13 item 3): the units of contrib/systemd run as systemd
# would run them, without a running systemd: their ExecStart line with a
# fake NOTIFY_SOCKET (a python3 datagram reader that sees the sender's pid,
# as systemd does), and socket activation with systemd-socket-activate
# (Debian package systemd). The program is tests/progs/start_server
# (standing for /usr/local/bin/myapp --data DIR).

bats_require_minimum_version 1.5.0
load common
load start_common

setup() {
	T="$(mktemp -d /tmp/crac-bats-sd.XXXXXX)"
	start_setup
	require_image_engine
	UNITS="$CRAC_SOURCE_DIR/contrib/systemd"
	export STATE_DIRECTORY="$T/state"
	mkdir -p "$STATE_DIRECTORY"
	# Environment=CRAC_CONTROL_DIR=%t/myapp, %t standing for $T
	export CRAC_CONTROL_DIR="$T/myapp"
}

teardown() { start_teardown; }

# exec_start UNIT: the unit's ExecStart command, with this build's crac and
# the test server for /usr/local/bin/myapp --data; ${STATE_DIRECTORY} is
# expanded (by eval) as systemd expands it.
exec_start() {
	sed -n 's/^ExecStart=//p' "$UNITS/$1" |
		sed "s|/usr/local/bin/crac|$CRAC|; s|/usr/local/bin/myapp --data|$SERVER|"
}

@test "the units pass systemd-analyze verify" {
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed (Debian package systemd)"
	mkdir "$T/units"
	for f in "$UNITS"/*.service "$UNITS"/*.socket; do
		sed "s|/usr/local/bin/crac|$CRAC|; s|/usr/local/bin/myapp|/bin/true|" "$f" >"$T/units/$(basename "$f")"
	done
	run timeout 60 systemd-analyze verify "$T"/units/*
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "myapp.service (Type=notify): cold start relays the program's READY=1, a restart restores and crac says READY=1; every notification comes from crac, the main PID" {
	cmd="$(exec_start myapp.service)"
	[[ "$cmd" == "$CRAC start --image \${STATE_DIRECTORY}/crac-image --checkpoint-on-ready"* ]]
	notify_reader "$T/notify" "$T/notes"
	export NOTIFY_SOCKET="$T/notify"
	eval "bg first $cmd"
	wait_for grep -q "written to $STATE_DIRECTORY/crac-image" "$T/first.err"
	grep -q "READY=1" "$T/notes"
	grep -q "STATUS=warm" "$T/notes"
	grep -q "^from=$pid\$" "$T/notes"
	! grep -v -e "^from=$pid\$" -e "^--\$" -e "^READY=1\$" -e "^STATUS=warm\$" -e '^$' "$T/notes" || false
	port="$(cat "$STATE_DIRECTORY/port")"
	# systemctl stop: SIGTERM to the main process (KillMode=mixed)
	kill -TERM "$pid"
	wait "$pid" || true
	: >"$T/notes"
	eval "bg second $cmd"
	wait_for grep -q "READY=1" "$T/notes"
	grep -q "^from=$pid\$" "$T/notes"
	[ ! -s "$T/second.err" ]
	[[ "$(ask "$port")" == "answer "*"boots=1 "* ]]
	# systemctl reload (ExecReload=/bin/kill -USR1 $MAINPID): a fresh image
	kill -USR1 "$pid"
	wait_for grep -q "written to $STATE_DIRECTORY/crac-image" "$T/second.err"
	[[ "$(ask "$port")" == "answer "* ]]
}

@test "myapp-activated (socket activation): the restored program gets the socket systemd passes, at fd 3, and no connection is refused" {
	command -v systemd-socket-activate >/dev/null ||
		skip "systemd-socket-activate is not installed (Debian package systemd)"
	cmd="$(exec_start myapp-activated.service)"
	port=$(( 20000 + RANDOM % 20000 ))
	notify_reader "$T/notify" "$T/notes"
	# ListenStream=127.0.0.1:PORT
	eval "bg first systemd-socket-activate -l 127.0.0.1:$port -E NOTIFY_SOCKET=$T/notify \
		-E STATE_DIRECTORY -E CRAC_CONTROL_DIR -E PATH $cmd"
	wait_for listening "$port"
	# the first connection starts the service
	a="$(ask "$port")"
	echo "$a"
	[[ "$a" == "answer "*"boots=1 served=1 activated=1"* ]]
	wait_for grep -q "written to $STATE_DIRECTORY/crac-image" "$T/first.err"
	cat "$T/first.err"
	[ "$(cat "$STATE_DIRECTORY/crac-image/activation")" = "0 3" ]
	kill -TERM "$pid"
	wait "$pid" || true

	eval "bg second systemd-socket-activate -l 127.0.0.1:$port -E NOTIFY_SOCKET=$T/notify \
		-E STATE_DIRECTORY -E CRAC_CONTROL_DIR -E PATH $cmd"
	wait_for listening "$port"
	a="$(ask "$port")"
	echo "$a"
	cat "$T/second.err"
	# restored (no cold boot), serving on the socket systemd passed
	[[ "$a" == "answer "*"boots=1 served=2 activated=1"* ]]
	[ "$(wc -l <"$STATE_DIRECTORY/boots")" -eq 1 ]
	! grep -q cold "$T/second.err" || false
	child="$(child_of "$pid")"
	[ "$(stat -L -c %i /proc/$child/fd/3)" = "$(stat -L -c %i /proc/$pid/fd/3)" ]
}

@test "sockets passed now but none at the checkpoint: the image is refused with the reason, a cold start uses them" {
	command -v systemd-socket-activate >/dev/null ||
		skip "systemd-socket-activate is not installed (Debian package systemd)"
	cmd="$(exec_start myapp.service)"
	eval "bg first $cmd"
	wait_for grep -q "written to $STATE_DIRECTORY/crac-image" "$T/first.err"
	kill -TERM "$pid"
	wait "$pid" || true
	port=$(( 20000 + RANDOM % 20000 ))
	eval "bg second systemd-socket-activate -l 127.0.0.1:$port -E STATE_DIRECTORY -E CRAC_CONTROL_DIR -E PATH $cmd"
	wait_for listening "$port"
	a="$(ask "$port")"
	[[ "$a" == "answer "*"boots=2 served=1 activated=1"* ]]
	grep -q "LISTEN_FDS passes 1 socket, but the program of $STATE_DIRECTORY/crac-image got none at its checkpoint" "$T/second.err"
}

@test "FDSTORE=1: the descriptors the program sends with its notification reach systemd's NOTIFY_SOCKET through crac" {
	[ -x "$PY" ] || skip "python3 is not installed"
	notify_reader "$T/notify" "$T/notes"
	echo "kept across restarts" >"$T/stored"
	NOTIFY_SOCKET="$T/notify" run --separate-stderr timeout 20 "$CRAC" run --checkpoint-after 1h -- "$PY" -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
f = os.open(sys.argv[1], os.O_RDONLY)
s.connect(os.environ["NOTIFY_SOCKET"])
socket.send_fds(s, [b"FDSTORE=1\nFDNAME=state"], [f, f])
s.send(b"READY=1")
' "$T/stored"
	echo "$status: $output / $stderr"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	wait_for grep -q "READY=1" "$T/notes"
	cat "$T/notes"
	# both descriptors arrived with the FDSTORE message, in one datagram
	[ "$(grep -c '^fd=kept across restarts$' "$T/notes")" -eq 2 ]
	grep -B4 '^fd=kept' "$T/notes" | grep -q '^FDSTORE=1$'
	grep -q '^FDNAME=state$' "$T/notes"
	# no descriptor of crac's own went along
	[ "$(grep -c '^fd=' "$T/notes")" -eq 2 ]
}
