#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Helpers of common.bash that the other tests stand on. The bounded waits
# (wait_until, wait_line, wait_sock, wait_file, wait_gone, wait_no_file):
# true as soon as what they wait for is there, false at their bound (not
# before it, not much after it) with a message naming what they waited
# for. close_fds: only 0-2 and the descriptors named stay open. hold_flock:
# a lock held by another process.

load common

setup() {
	common_setup helpers
}

teardown() {
	common_teardown -9
}

# ms_now: the clock in milliseconds.
ms_now() {
	echo $((${EPOCHREALTIME//[!0-9]/} / 1000))
}

@test "wait_until: true at once when CMD succeeds; false after SECONDS, naming WHAT" {
	local t0 ms
	t0=$(ms_now)
	wait_until 5 "true" true
	ms=$(($(ms_now) - t0))
	echo "true took $ms ms"
	[ "$ms" -lt 1000 ]
	t0=$(ms_now)
	run wait_until 0.3 "the impossible" false
	ms=$(($(ms_now) - t0))
	echo "status $status after $ms ms: $output"
	[ "$status" -eq 1 ]
	[ "$output" = "waited 0.3 s for the impossible" ]
	[ "$ms" -ge 300 ]
	[ "$ms" -lt 3000 ]
	t0=$(ms_now)
	run wait_until 1 "the impossible" false
	ms=$(($(ms_now) - t0))
	echo "status $status after $ms ms: $output"
	[ "$status" -eq 1 ]
	[ "$ms" -ge 1000 ]
}

@test "wait_until: sees what comes during the wait" {
	(sleep 0.3; touch "$T/late") &
	PIDS+=($!)
	wait_until 5 "late" test -e "$T/late"
}

@test "wait_line: a line written later; false with the file's text when none matches" {
	(sleep 0.3; echo "ready pid=1" >> "$T/log") &
	PIDS+=($!)
	echo "starting" > "$T/log"
	wait_line "$T/log" '^ready pid=1$'
	run wait_line "$T/log" '^done' 0.2
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "waited 0.2 s for a line matching '^done' in $T/log" ]
	[ "${lines[1]}" = "$T/log holds:" ]
	[ "${lines[2]}" = "starting" ]
	[ "${lines[3]}" = "ready pid=1" ]
	run wait_line "$T/none" ready 0.1
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${lines[2]}" = "(no such file)" ]
}

@test "wait_sock: a socket, not a plain file" {
	touch "$T/plain"
	run wait_sock "$T/plain" 0.2
	[ "$status" -eq 1 ]
	[ "$output" = "waited 0.2 s for the socket $T/plain" ]
	need_python
	"$PY" -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/s.sock"
	wait_sock "$T/s.sock" 1
}

@test "wait_file: exists and is not empty" {
	: > "$T/empty"
	run wait_file "$T/empty" 0.2
	[ "$status" -eq 1 ]
	[ "$output" = "waited 0.2 s for $T/empty to exist, not empty" ]
	echo 42 > "$T/full"
	wait_file "$T/full" 1
}

@test "wait_gone: a process that ends; false for one that does not" {
	sleep 30 &
	local p=$!
	PIDS+=("$p")
	run wait_gone "$p" 0.2
	[ "$status" -eq 1 ]
	[ "$output" = "waited 0.2 s for pid $p to end" ]
	kill "$p"
	wait "$p" || true
	wait_gone "$p" 1
}

@test "wait_no_file: until the path is gone" {
	touch "$T/lock"
	run wait_no_file "$T/lock" 0.2
	[ "$status" -eq 1 ]
	[ "$output" = "waited 0.2 s for $T/lock to go" ]
	(sleep 0.3; rm "$T/lock") &
	PIDS+=($!)
	wait_no_file "$T/lock"
}

@test "a failed wait fails the test that calls it" {
	run bash -c 'set -e; source "$1"; wait_sock /nonexistent/sock 0.1; echo "went on"' _ "$BATS_TEST_DIRNAME/common.bash"
	echo "$output"
	[ "$status" -ne 0 ]
	[ "$output" = "waited 0.1 s for the socket /nonexistent/sock" ]
}

@test "wait_line: on failure shows each SHOW file after FILE" {
	echo "starting" > "$T/out"
	echo "an error" > "$T/err"
	run wait_line "$T/out" ready 0.1 "$T/err" "$T/none"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${lines[1]}" = "$T/out holds:" ]
	[ "${lines[2]}" = "starting" ]
	[ "${lines[3]}" = "$T/err holds:" ]
	[ "${lines[4]}" = "an error" ]
	[ "${lines[5]}" = "$T/none holds:" ]
	[ "${lines[6]}" = "(no such file)" ]
}

@test "close_fds: closes every descriptor above 2 but those named" {
	# ls, a child (not exec'd: "; true"), lists the descriptors of the shell ($$)
	run bash -c 'source "$1"; exec 5</dev/null 7</dev/null 9</dev/null; close_fds; ls /proc/$$/fd; true' \
		_ "$BATS_TEST_DIRNAME/common.bash"
	echo "left: ${lines[*]}"
	[ "${lines[*]}" = "0 1 2" ]
	run bash -c 'source "$1"; exec 5</dev/null 7</dev/null 9</dev/null; close_fds 7 5; ls /proc/$$/fd; true' \
		_ "$BATS_TEST_DIRNAME/common.bash"
	echo "left: ${lines[*]}"
	[ "${lines[*]}" = "0 1 2 5 7" ]
}

@test "hold_flock: returns once the lock is held, by HOLDER, until it is killed" {
	command -v flock >/dev/null || skip "flock(1) is not installed"
	mkdir "$T/d"
	hold_flock "$T/d"
	PIDS+=("$HOLDER")
	run flock -n -E 7 "$T/d" true
	[ "$status" -eq 7 ]
	[ ! -e "$T/held" ]
	kill "$HOLDER"
	wait "$HOLDER" || true
	flock -n "$T/d" true
}
