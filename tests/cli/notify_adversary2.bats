#!/usr/bin/env bats
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
	wait_for pgrep -P "$pid" >/dev/null
	child="$(pgrep -P "$pid")"
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
	! grep -q "ignored a notification" "$T/run.err"
}
