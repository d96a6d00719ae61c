#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The supervisor's NOTIFY_SOCKET (src/cli/supervise.c) against floods
# (review "robust"): a $NOTIFY_SOCKET (systemd's side) that does not read
# must never block the supervisor (its signals, its child, READY=1 once the
# reader is back); a program that floods bad notifications does not flood
# crac's stderr; root's socket, which every user may reach, has a name no
# other user can find.

bats_require_minimum_version 1.5.0
load common
load start_common

setup() {
	T="$(mktemp -d /tmp/crac-bats-nflood.XXXXXX)"
	chmod 755 "$T"
	start_setup
	[ -x "$PY" ] || skip "python3 is not installed"
}

teardown() { start_teardown; }

# stalled_reader PATH FILE: a $NOTIFY_SOCKET at PATH that reads nothing
# until $T/drain exists, then appends every datagram to FILE (then "--")
stalled_reader() {
	(
		close_fds
		exec "$PY" -c '
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
f = open(sys.argv[2], "a", buffering=1)
while True:
    f.write(s.recv(8192).decode() + "\n--\n")
' "$1" "$2" "$T/drain"
	) &
	reader=$!
	BG+=("$reader")
	wait_for test -S "$1"
}

@test "an outer NOTIFY_SOCKET that does not read: the supervisor is not blocked (the program's end is its own at once)" {
	stalled_reader "$T/outer" "$T/notes"
	export NOTIFY_SOCKET="$T/outer"
	# 100 notifications fill the outer queue (net.unix.max_dgram_qlen);
	# then READY=1, then the program ends
	run --separate-stderr timeout -k 5 20 "$CRAC" run --checkpoint-on SIGUSR2 -- "$PY" -c '
import os, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for i in range(100):
    s.sendto(b"STATUS=step %d" % i, os.environ["NOTIFY_SOCKET"])
s.sendto(b"READY=1\nSTATUS=up", os.environ["NOTIFY_SOCKET"])
print("sent", flush=True)
os._exit(7)
'
	echo "$status: $output / $stderr"
	# blocked in a send to the outer socket, it never reaped its child
	[ "$status" -eq 7 ]
	[ "$output" = sent ]
	# what could not be relayed is said, a few lines at most
	[ "$(echo "$stderr" | grep -c "^crac: run: ")" -le 12 ]
	echo "$stderr" | grep -q "^crac: run: cannot relay the program's notification to NOTIFY_SOCKET $T/outer: Resource temporarily unavailable"
}

@test "READY=1 that finds the outer NOTIFY_SOCKET full is sent again until it gets there; signals are forwarded meanwhile" {
	stalled_reader "$T/outer" "$T/notes"
	export NOTIFY_SOCKET="$T/outer"
	bg run "$CRAC" run --checkpoint-on SIGUSR2 -- "$PY" -c '
import os, signal, socket, sys, time
signal.signal(signal.SIGHUP, lambda *a: open(sys.argv[1], "w").close())
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for i in range(100):
    s.sendto(b"STATUS=step %d" % i, os.environ["NOTIFY_SOCKET"])
s.sendto(b"READY=1\nSTATUS=up", os.environ["NOTIFY_SOCKET"])
time.sleep(30)
' "$T/hup"
	wait_for pgrep -P "$pid" >/dev/null
	sleep 1
	# the supervisor still forwards signals
	kill -HUP "$pid"
	wait_for test -e "$T/hup"
	touch "$T/drain"
	wait_for grep -qx "READY=1" "$T/notes"
	kill -TERM "$pid"
}

@test "a program that floods notifications too long to relay: a few lines on stderr, then one that says no more are said" {
	notify_reader "$T/outer" "$T/notes"
	export NOTIFY_SOCKET="$T/outer"
	run --separate-stderr timeout -k 5 20 "$CRAC" run --checkpoint-on SIGUSR2 -- "$PY" -c '
import os, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for i in range(200):
    s.sendto(b"STATUS=" + b"x" * 5000, os.environ["NOTIFY_SOCKET"])
s.sendto(b"STATUS=last", os.environ["NOTIFY_SOCKET"])
'
	echo "$status: $stderr"
	[ "$status" -eq 0 ]
	wait_for grep -q "STATUS=last" "$T/notes"
	[ "$(echo "$stderr" | grep -c "is longer than 4096 bytes: not relayed$")" -eq 10 ]
	echo "$stderr" | grep -q "^crac: run: more notifications that cannot be relayed are not said$"
	[ "$(echo "$stderr" | wc -l)" -eq 11 ]
}

@test "root's NOTIFY_SOCKET, reachable by every user: its name cannot be found by another user" {
	[ "$(id -u)" -eq 0 ] || skip "needs root: root's NOTIFY_SOCKET is the one other users reach"
	command -v setpriv >/dev/null || skip "no setpriv"
	bg run "$CRAC" run --checkpoint-on-ready -- sleep 30
	child="$(child_of "$pid")"
	wait_for grep -q NOTIFY_SOCKET "/proc/$child/environ"
	sock="$(tr '\0' '\n' <"/proc/$child/environ" | sed -n 's/^NOTIFY_SOCKET=//p')"
	dir="$(dirname "$sock")"
	[ -S "$sock" ]
	# the directory is searchable (a program that drops to another user
	# reaches the socket by the name it was given), not readable
	[ "$(stat -c %a "$dir")" = 711 ]
	run setpriv --reuid=65534 --regid=65534 --clear-groups ls "$dir"
	[ "$status" -ne 0 ]
	# and the socket's name is not one another user can guess
	[ "$(basename "$sock")" != notify ]
	[[ "$(basename "$sock")" =~ ^notify-[0-9a-f]{32}$ ]]
	kill -TERM "$pid"
}
