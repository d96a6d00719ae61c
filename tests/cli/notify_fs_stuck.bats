#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The program's NOTIFY_SOCKET (supervise.c notify_open) on a file system
# that does not answer (/run, /tmp or $XDG_RUNTIME_DIR on NFS or FUSE),
# simulated by CRAC_TEST_SLOW_FS=notify:MS (src/image/dir.c: the helper
# first sleeps MS ms): the look at the base directory, the mkdir, the bind
# and the chmods are made by one helper bounded by the command's limit
# (crac run's, crac start --timeout), given up on naming the step and the
# directory; nothing runs. A file system that answers: the usual socket.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-ntfstuck.XXXXXX)"
	chmod 755 "$T"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_TEST_SLOW_FS CRAC_TEST_SYNC_GRACE_MS \
		NOTIFY_SOCKET LISTEN_FDS LISTEN_PID
}

teardown() {
	rm -rf "$T"
}

# base: the directory the NOTIFY_SOCKET's directory is made in for this user
base() {
	if [ "$(id -u)" -eq 0 ]; then
		[ -d /run ] && [ "$(stat -c %u /run)" -eq 0 ] && [ $((0$(stat -c %a /run) & 022)) -eq 0 ] && echo /run ||
			echo /tmp
	else
		echo /tmp   # (XDG_RUNTIME_DIR unset below)
	fi
}

@test "crac run --checkpoint-on-ready: the setup of the program's NOTIFY_SOCKET that does not return is given up after crac run's limit, naming the directory; nothing runs" {
	t0=$(date +%s%N)
	run --separate-stderr clean env -u XDG_RUNTIME_DIR CRAC_TEST_SLOW_FS=notify:600000 CRAC_TEST_SYNC_GRACE_MS=1000 \
		timeout -k 5 60 "$CRAC" run --checkpoint-on-ready -- sh -c 'echo ran'
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status: [$output] [$stderr] ($ms ms)"
	[ "$status" -eq 125 ]
	[ -z "$output" ]
	echo "$stderr" | grep -Eq "^crac: run: cannot set up the program's NOTIFY_SOCKET: the look at $(base) did not return after [0-9]+ ms \\(crac run's limit, 1000 ms\\): its file system does not answer; given up$"
	[ "$ms" -lt 10000 ]
}

@test "crac start --timeout 1s with NOTIFY_SOCKET: the setup of the program's NOTIFY_SOCKET that does not return is given up naming the directory and the limit" {
	t0=$(date +%s%N)
	run --separate-stderr clean env -u XDG_RUNTIME_DIR NOTIFY_SOCKET="$T/outer" CRAC_TEST_SLOW_FS=notify:600000 \
		timeout -k 5 60 "$CRAC" start --image "$T/img" --timeout 1s --checkpoint-after 1h -- sh -c 'echo ran'
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status: [$output] [$stderr] ($ms ms)"
	[ "$status" -ne 0 ]
	[ -z "$output" ]
	echo "$stderr" | grep -Eq "^crac: start: cannot set up the program's NOTIFY_SOCKET: the look at $(base) did not return after [0-9]+ ms \\(crac start --timeout, 1000 ms\\): its file system does not answer; given up$"
	[ "$ms" -lt 10000 ]
}

@test "a file system that answers: the program gets its NOTIFY_SOCKET in a directory of its own, removed when crac ends" {
	run --separate-stderr clean env -u XDG_RUNTIME_DIR CRAC_TEST_SYNC_GRACE_MS=1000 timeout -k 5 60 \
		"$CRAC" run --checkpoint-on-ready -- sh -c 'echo "$NOTIFY_SOCKET"; test -S "$NOTIFY_SOCKET" && echo socket'
	echo "$status: [$output] [$stderr]"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[[ "${lines[0]}" == "$(base)"/crac-notify-??????/notify* ]]
	[ "${lines[1]}" = socket ]
	[ ! -e "$(dirname "${lines[0]}")" ]
}
