#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# crac's sd_notify relay (supervise.c) and programs that drop privileges
# (issue 13 review finding): a root service that setuid()s to nobody and
# then sends READY=1 reaches crac's NOTIFY_SOCKET, and its READY=1 is
# relayed and fires --checkpoint-on-ready; a READY=1 sent to the same socket
# by another user's process, or by an unrelated process, is ignored (the
# sender's SCM_CREDENTIALS) and said at info level.

load common
load start_common

setup() {
	[ "$(id -u)" -eq 0 ] || skip "needs root: the program starts as root and drops to nobody"
	command -v setpriv >/dev/null || skip "no setpriv"
	T="$(mktemp -d /tmp/crac-bats-ntf.XXXXXX)"
	chmod 755 "$T"
	start_setup
	command -v "$PY" >/dev/null || skip "python3 is not installed"
	notify_reader "$T/outer" "$T/notes"
	export NOTIFY_SOCKET="$T/outer"
}

teardown() { start_teardown; }

# the program: started as root; with FORK=1 a child of it goes on (a
# worker) while it sleeps; with DROP=1 that one becomes nobody; once $T/go
# exists it sends READY=1 (and STATUS=...) to $NOTIFY_SOCKET, then sleeps
PROG='
import os, socket, sys, time
if os.environ.get("FORK") == "1" and os.fork() > 0:
    time.sleep(60)    # the program; its child (a worker) says READY=1
    sys.exit(0)
if os.environ.get("DROP") == "1":
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
    if os.environ.get("DUMPABLE") == "1":   # prctl(PR_SET_DUMPABLE, 1)
        import ctypes
        ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.02)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(("READY=1\nSTATUS=uid %d" % os.getuid()).encode(), os.environ["NOTIFY_SOCKET"])
time.sleep(60)
'

# send_as WHO PATH: WHO ("nobody" or "root") sends READY=1 to PATH, from a
# process that is not the program's
send_as() {
	local pre=()
	[ "$1" = nobody ] && pre=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	"${pre[@]}" "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1\nSTATUS=spoofed", sys.argv[1])
' "$2"
}

# program_notify_socket: the NOTIFY_SOCKET crac gave the program ($child)
program_notify_socket() {
	tr '\0' '\n' </proc/$child/environ | sed -n 's/^NOTIFY_SOCKET=//p'
}

# has_notify_socket: the program ($child) runs with its NOTIFY_SOCKET (the
# python3 program, not crac's child before its exec)
has_notify_socket() {
	[ "$(readlink /proc/$child/exe)" = "$(readlink -f "$PY")" ] && [ -n "$(program_notify_socket)" ]
}

# uid_is PID UID: process PID runs as UID (now)
uid_is() {
	[ "$(stat -c %u "/proc/$1" 2>/dev/null)" = "$2" ]
}

@test "a program that drops to nobody before READY=1: relayed to \$NOTIFY_SOCKET and --checkpoint-on-ready fires" {
	# the image directory's parent is the program's once it is nobody
	mkdir "$T/nb" && chown 65534:65534 "$T/nb"
	DROP=1 DUMPABLE=1 bg run "$CRAC" run --keep-running --checkpoint-on-ready --checkpoint-to "$T/nb/img" -- "$PY" -c "$PROG" "$T/go"
	child="$(child_of "$pid")"
	wait_for uid_is "$child" 65534
	touch "$T/go"
	wait_for grep -q "STATUS=uid 65534" "$T/notes"
	cat "$T/notes"
	grep -q "^READY=1$" "$T/notes"
	grep -q "^from=$pid$" "$T/notes"
	# the trigger fired and checkpointed the program, which is nobody now
	# but listens on the control endpoint it made as root
	wait_for test -f "$T/nb/img/header"
	cat "$T/run.err"
	[ "$(stat -c %u "$T/nb/img/header")" = 65534 ]
	! grep -q "refused" "$T/run.err" || false
	! grep -q "ignored a notification" "$T/run.err" || false
	kill -0 "$child"
}

@test "a program that drops to nobody and is not dumpable: its checkpoint is refused with the reason, it runs on" {
	mkdir "$T/nb" && chown 65534:65534 "$T/nb"
	DROP=1 bg run "$CRAC" run --keep-running --checkpoint-on-ready --checkpoint-to "$T/nb/img" -- "$PY" -c "$PROG" "$T/go"
	child="$(child_of "$pid")"
	wait_for uid_is "$child" 65534
	touch "$T/go"
	wait_for grep -q "keeps running cold" "$T/run.err"
	cat "$T/run.err"
	grep -q "the process is not dumpable (it changed its user or group IDs" "$T/run.err"
	[ ! -e "$T/nb/img" ]
	kill -0 "$child"
}

@test "READY=1 from another user's process or from an unrelated process: ignored, said at info level; the program's own still counts" {
	bg run "$CRAC" -v run --keep-running --checkpoint-on-ready --checkpoint-to "$T/img" -- "$PY" -c "$PROG" "$T/go"
	child="$(child_of "$pid")"
	wait_for has_notify_socket
	sock="$(program_notify_socket)"
	[[ "$sock" == */crac-notify-*/notify-* ]]   # root's: a random name (notify_flood.bats)
	# reachable by every user (the program may become one), listable by none
	[ "$(stat -c %a "$(dirname "$sock")")" = 711 ]
	send_as nobody "$sock"
	wait_for grep -q "uid 65534" "$T/run.err"
	send_as root "$sock"
	wait_for grep -q "uid 0)" "$T/run.err"
	cat "$T/run.err"
	grep -q "^crac: run: ignored a notification on the program's NOTIFY_SOCKET $sock from process [0-9]* (uid 65534): it is neither the program (process $child) nor a process it started$" "$T/run.err"
	grep -q "^crac: run: ignored a notification on the program's NOTIFY_SOCKET $sock from process [0-9]* (uid 0): it is neither the program (process $child) nor a process it started$" "$T/run.err"
	# nothing relayed, no checkpoint
	sleep 0.3
	[ ! -s "$T/notes" ]
	[ ! -e "$T/img" ]
	! grep -q "written" "$T/run.err" || false
	# the program's own READY=1: relayed, and the image written
	touch "$T/go"
	wait_for grep -q "STATUS=uid 0" "$T/notes"
	grep -q "^from=$pid$" "$T/notes"
	! grep -q spoofed "$T/notes" || false
	wait_for test -f "$T/img/header"
}

@test "at the default log level an ignored notification prints nothing" {
	bg run "$CRAC" run --keep-running --checkpoint-on-ready --checkpoint-to "$T/img" -- "$PY" -c "$PROG" "$T/go"
	child="$(child_of "$pid")"
	wait_for has_notify_socket
	send_as nobody "$(program_notify_socket)"
	sleep 0.3
	[ ! -s "$T/run.err" ]
	[ ! -s "$T/notes" ]
}

@test "a worker the program forked, become nobody, says READY=1: relayed (a process the program started)" {
	FORK=1 DROP=1 bg run "$CRAC" -v run --keep-running --checkpoint-on-ready --checkpoint-to "$T/img" -- \
		"$PY" -c "$PROG" "$T/go"
	child="$(child_of "$pid")"
	worker="$(child_of "$child")"
	wait_for uid_is "$worker" 65534
	touch "$T/go"
	wait_for grep -q "STATUS=uid 65534" "$T/notes"
	grep -q "^from=$pid$" "$T/notes"
	wait_for grep -q "checkpoint" "$T/run.err"
	cat "$T/run.err"
	! grep -q "ignored a notification" "$T/run.err" || false
}
