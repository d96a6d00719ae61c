#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Review of crac's sd_notify relay (supervise.c notify_open/notify_read,
# review2): where the program's NOTIFY_SOCKET is made, what is left behind,
# what a sender can do to the supervisor.

bats_require_minimum_version 1.5.0
load common
load start_common

setup() {
	T="$(mktemp -d /tmp/crac-bats-ntf2.XXXXXX)"
	chmod 755 "$T"
	start_setup
}

teardown() { start_teardown; }

# absent ARGS...: grep -q ARGS finds nothing (a bare "! grep" in the middle
# of a bats test fails nothing)
absent() {
	! grep -q "$@" || false
}

as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}

@test "XDG_RUNTIME_DIR too long for a socket path: the NOTIFY_SOCKET goes to /tmp, the program runs, nothing is left behind" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to run the test as nobody (XDG_RUNTIME_DIR is used by a user other than root)"
	command -v setpriv >/dev/null || skip "no setpriv"
	# 82 bytes: "$L/crac-notify-XXXXXX/notify" does not fit sun_path (108)
	L="$T/x/$(printf 'a%.0s' $(seq $(( 82 - ${#T} - 3 ))))"
	mkdir -p "$L"
	chown -R 65534 "$T/x"
	chmod 700 "$L"
	run --separate-stderr as_nobody env XDG_RUNTIME_DIR="$L" CRAC_CONTROL_DIR="$L/ctl" \
		"$CRAC" run --checkpoint-on-ready -- sh -c 'echo "$NOTIFY_SOCKET"'
	echo "$status: $output / $stderr"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[[ "$output" == /tmp/crac-notify-*/notify ]]
	# its directory went with crac; none was left in $L
	[ ! -e "$(dirname "$output")" ]
	[ -z "$(ls "$L" | grep crac-notify)" ]
}

@test "crac run as a user other than root: the program's NOTIFY_SOCKET is that user's only (0700 directory, 0600 socket)" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to run the test as nobody"
	command -v setpriv >/dev/null || skip "no setpriv"
	mkdir -m 700 "$T/ctl"
	chown 65534 "$T/ctl"
	run --separate-stderr as_nobody env -u XDG_RUNTIME_DIR CRAC_CONTROL_DIR="$T/ctl" timeout 10 \
		"$CRAC" run --checkpoint-on-ready -- sh -c \
		'echo "$(stat -c %a "$(dirname "$NOTIFY_SOCKET")") $(stat -c %a "$NOTIFY_SOCKET") $NOTIFY_SOCKET"'
	echo "$status: $output / $stderr"
	[ "$status" -eq 0 ]
	[[ "$output" == "700 600 /tmp/crac-notify-"*"/notify" ]]
	[ -z "$stderr" ]
}

@test "another user's READY=1 cannot even reach the NOTIFY_SOCKET of a crac run by a user other than root" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to run crac as nobody and to try as another user"
	command -v setpriv >/dev/null || skip "no setpriv"
	[ -x "$PY" ] || skip "python3 is not installed"
	mkdir -m 700 "$T/ctl"
	chown 65534 "$T/ctl"
	bg run setpriv --reuid=65534 --regid=65534 --clear-groups env -u XDG_RUNTIME_DIR CRAC_CONTROL_DIR="$T/ctl" \
		"$CRAC" -v run --checkpoint-on-ready -- sleep 30
	child="$(child_of "$pid")"
	wait_for grep -q NOTIFY_SOCKET "/proc/$child/environ"
	sock="$(tr '\0' '\n' <"/proc/$child/environ" | sed -n 's/^NOTIFY_SOCKET=//p')"
	run setpriv --reuid=65533 --regid=65533 --clear-groups "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", sys.argv[1])
' "$sock"
	echo "$status: $output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Permission denied"* ]]
	absent "ignored a notification" "$T/run.err"
}

@test "a flood of notifications from another user: crac -v says the first few it ignored, then that it says no more; the program's own still counts" {
	[ "$(id -u)" -eq 0 ] || skip "needs root: root's NOTIFY_SOCKET is the one other users reach"
	command -v setpriv >/dev/null || skip "no setpriv"
	[ -x "$PY" ] || skip "python3 is not installed"
	notify_reader "$T/outer" "$T/notes"
	export NOTIFY_SOCKET="$T/outer"
	bg run "$CRAC" -v run --checkpoint-on-ready --keep-running --checkpoint-to "$T/img" -- "$PY" -c '
import os, socket, sys, time
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1\nSTATUS=mine", os.environ["NOTIFY_SOCKET"])
time.sleep(30)
' "$T/go"
	child="$(child_of "$pid")"
	wait_for grep -q NOTIFY_SOCKET "/proc/$child/environ"
	sock="$(tr '\0' '\n' <"/proc/$child/environ" | sed -n 's/^NOTIFY_SOCKET=//p')"
	nfds="$(ls "/proc/$pid/fd" | wc -l)"
	# 2000 datagrams (blocking sends: none lost), some with a descriptor
	setpriv --reuid=65534 --regid=65534 --clear-groups "$PY" -c '
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
fd = os.open("/dev/null", os.O_RDONLY)
for i in range(2000):
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))] if i % 2 else []
    s.sendmsg([b"READY=1\nSTATUS=spoofed %d" % i], anc, 0, sys.argv[1])
' "$sock"
	touch "$T/go"
	wait_for grep -q "STATUS=mine" "$T/notes"
	wait_for grep -q "more ignored notifications are not said" "$T/run.err"
	[ "$(grep -c "ignored a notification" "$T/run.err")" -eq 10 ]
	grep -q "^crac: run: more ignored notifications are not said (this one: process [0-9]*, uid 65534)$" "$T/run.err"
	absent spoofed "$T/notes"
	# no descriptor kept (those passed, the senders' pidfds), once the
	# checkpoint the program's READY=1 started is over
	wait_for grep -q "image written" "$T/run.err"
	[ "$(ls "/proc/$pid/fd" | wc -l)" -eq "$nfds" ]
}

@test "a notification of the program that is too long (over 4096 bytes) or holds a NUL byte: not relayed cut, said in one line (systemd itself would ignore it)" {
	[ -x "$PY" ] || skip "python3 is not installed"
	notify_reader "$T/outer" "$T/notes"
	export NOTIFY_SOCKET="$T/outer"
	bg run "$CRAC" run --checkpoint-on SIGUSR2 -- "$PY" -c '
import os, socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"STATUS=" + b"x" * 5000 + b"\nREADY=1", os.environ["NOTIFY_SOCKET"])
s.sendto(b"STATUS=before\0STATUS=after", os.environ["NOTIFY_SOCKET"])
s.sendto(b"STATUS=" + b"y" * 4089, os.environ["NOTIFY_SOCKET"])   # 4096 bytes: taken
s.sendto(b"STATUS=last", os.environ["NOTIFY_SOCKET"])
time.sleep(30)
'
	wait_for grep -q "STATUS=last" "$T/notes"
	cat "$T/run.err"
	absent "STATUS=x" "$T/notes"
	absent "READY=1" "$T/notes"
	absent "STATUS=before" "$T/notes"
	grep -q "STATUS=yyyy" "$T/notes"
	child="$(child_of "$pid")"
	[ "$(grep -c "^crac: run: " "$T/run.err")" -eq 2 ]
	grep -q "^crac: run: a notification of process $child on its NOTIFY_SOCKET is longer than 4096 bytes: not relayed$" "$T/run.err"
	grep -q "^crac: run: a notification of process $child on its NOTIFY_SOCKET holds a NUL byte: not relayed$" "$T/run.err"
}

@test "a worker of the program sends READY=1 with 250 descriptors: still taken (its pidfd has room after them), none of them kept" {
	[ -x "$PY" ] || skip "python3 is not installed"
	notify_reader "$T/outer" "$T/notes"
	export NOTIFY_SOCKET="$T/outer"
	bg run "$CRAC" run --checkpoint-on SIGUSR2 -- "$PY" -c '
import array, os, socket, sys, time
if os.fork() > 0:
    time.sleep(30)
    sys.exit(0)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(250)]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendmsg([b"READY=1\nSTATUS=worker"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))], 0,
          os.environ["NOTIFY_SOCKET"])
time.sleep(30)
' "$T/go"
	wait_for pgrep -P "$pid" >/dev/null
	# the descriptors sent are /dev/null: count those (crac run's own come
	# and go: the sockets of its pings of the program's control endpoint)
	nfds="$(devnulls "$pid")"
	touch "$T/go"
	wait_for grep -q "STATUS=worker" "$T/notes"
	sleep 0.2
	[ "$(devnulls "$pid")" -eq "$nfds" ]
	[ ! -s "$T/run.err" ]
}

# devnulls PID: how many of PID's descriptors are /dev/null
devnulls() {
	local n=0 f
	for f in /proc/"$1"/fd/*; do
		[ "$(readlink "$f" 2>/dev/null)" = /dev/null ] && n=$((n + 1))
	done
	echo "$n"
}
