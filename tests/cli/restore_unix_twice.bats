#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Two plain `crac restore DIR` of one image that listens on a Unix socket
# PATH (not abstract), started together. Between one restore's bind and its
# listen the other found its socket file answering nothing and removed it
# as stale, binding its own: the first then listened on a file no longer
# there, unreachable. The removal, bind and listen are made under a flock
# on the path's directory (src/objects/socket.c, unix_dir_lock), and BEFORE
# the loader's point of no return (crac_obj_socket_hold_path, as a port is
# held): each restore ends with a listener that a connection to PATH
# reaches, or is refused before its point of no return with one line
# naming PATH in use (so that `crac start` starts the program cold). The
# test hook CRAC_LOADER_TEST_LISTEN_DELAY_MS makes the window between the
# bind and the listen wide.

bats_require_minimum_version 1.5.0

load common
load start_common

setup() {
	T="$(mktemp -d /tmp/crac-bats-unix2.XXXXXX)"
	chmod 755 "$T"
	mkdir -m 755 "$T/work"
	start_setup
	PROG="$CRAC_BUILD_DIR/tests/obj_sock"
	require_image_engine
	PIDS=()
}

teardown() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	start_teardown
}

# restore_delayed NAME [DELAY_MS]: restore_bg NAME (common.bash: stdout and
# stderr in $T/NAME.out, the loader's point-of-no-return bytes in
# $T/NAME.ponr, "p" at it, "j" at the jump into the program) with the
# window between bind and listen made DELAY_MS wide (default 1500)
restore_delayed() {
	restore_bg "$1" CRAC_LOADER_TEST_LISTEN_DELAY_MS="${2:-1500}"
}

# outcome NAME STATUS: "reachable" (its listener answered on the path), or
# "refused" (one line: the path is in use; never past the point of no
# return); anything else fails
outcome() {
	echo "== $1 (status $2, point of no return bytes: $(cat "$T/$1.ponr")):"
	cat "$T/$1.out"
	if [ "$2" -eq 0 ] && grep -q "^reachable " "$T/$1.out" && ! grep -q FAIL "$T/$1.out" &&
		[ "$(cat "$T/$1.ponr")" = pj ]; then
		echo reachable >"$T/$1.res"
	elif [ "$2" -eq 1 ] && [ "$(wc -l <"$T/$1.out")" -eq 1 ] && [ ! -s "$T/$1.ponr" ] &&
		grep -q "^crac: restore $T/img: fd [0-9]* (socket $T/work/sock): $T/work/sock is in use: another process listens there" "$T/$1.out"; then
		echo refused >"$T/$1.res"
	else
		echo "unexpected outcome of $1"
		return 1
	fi
}

# file_id PATH: the inode and change time (ns) of PATH (an inode number
# alone is given again at once to the next file made)
file_id() {
	stat -c '%i %z' "$1"
}

# wait_rebound PATH ID: up to 10 s for the socket file at PATH to be
# another than ID (file_id: a restore removed the stale one and bound there)
wait_rebound() {
	wait_for sh -c '[ -S "$1" ] && [ "$(stat -c "%i %z" "$1")" != "$2" ]' _ "$1" "$2"
}

@test "two plain restores of one image listening on a Unix path, started together, the bind-listen window wide: each ends reachable or refused before its point of no return, never unreachable" {
	run clean "$PROG" "$T/img" "$T/work" unixonly
	echo "$output"
	[ "$status" -eq 0 ]
	[ -S "$T/work/sock" ]   # stale: the original exited
	for round in 1 2; do
		restore_delayed a
		pa=$pid
		restore_delayed b
		pb=$pid
		wait "$pa" && sa=0 || sa=$?
		wait "$pb" && sb=0 || sb=$?
		outcome a "$sa"
		outcome b "$sb"
		# they overlapped: at most one can hold the path at a time, and
		# the other found it listening
		[ "$(cat "$T/a.res" "$T/b.res" | sort | tr '\n' ' ')" = "reachable refused " ]
	done
}

@test "a second plain restore started while the first is between its bind and its listen on the Unix path: refused before its point of no return, naming the path; the first serves" {
	run clean "$PROG" "$T/img" "$T/work" unixonly
	echo "$output"
	[ "$status" -eq 0 ]
	[ -S "$T/work/sock" ]   # stale: the original exited
	ino="$(file_id "$T/work/sock")"
	restore_delayed a 3000
	pa=$pid
	wait_rebound "$T/work/sock" "$ino"   # a removed the stale file and bound: 3 s before it listens
	# b's first look finds a's socket answering nothing (not listening
	# yet): its bind waits for a's directory lock, then finds a listening
	restore_delayed b 0
	pb=$pid
	wait "$pb" && sb=0 || sb=$?
	wait "$pa" && sa=0 || sa=$?
	outcome a "$sa"
	outcome b "$sb"
	[ "$(cat "$T/a.res")" = reachable ]
	[ "$(cat "$T/b.res")" = refused ]
}

@test "a restore refused before its point of no return after it bound a Unix path removes the socket file it made, and nothing else" {
	command -v python3 >/dev/null || skip "no python3"
	run clean "$PROG" "$T/img" "$T/work"   # a listener at work/sock, a datagram socket at work/dgram, ...
	echo "$output"
	[ "$status" -eq 0 ]
	[ -S "$T/work/sock" ]
	[ -S "$T/work/dgram" ]
	ino="$(file_id "$T/work/sock")"
	restore_delayed a 3000
	wait_rebound "$T/work/sock" "$ino"
	# while it waits to listen on work/sock, another process takes
	# work/dgram (the restore's first look found it stale)
	rm "$T/work/dgram"
	spawn "$T/hold.out" "$T/hold.err" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("holding", flush=True)
time.sleep(60)' "$T/work/dgram"
	holder=$SPAWNED
	wait_for grep -q holding "$T/hold.out"
	dino="$(file_id "$T/work/dgram")"
	wait "$pid" && s=0 || s=$?
	cat "$T/a.out"
	kill "$holder"
	[ "$s" -eq 1 ]
	[ ! -s "$T/a.ponr" ]
	[ "$(wc -l <"$T/a.out")" -eq 1 ]
	grep -q "^crac: restore $T/img: fd [0-9]* (socket $T/work/dgram): $T/work/dgram is in use: another process listens there" "$T/a.out"
	# the socket file it made at work/sock is gone; the other's stays
	[ ! -e "$T/work/sock" ]
	[ -S "$T/work/dgram" ]
	[ "$(file_id "$T/work/dgram")" = "$dino" ]
	wait "$holder" || true
	# and the restore works again once the path is free
	rm "$T/work/dgram"
	run clean "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "restored ok"
}

# ask_unix PATH: one answer line of the server listening at Unix PATH.
ask_unix() {
	"$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
print(s.makefile().readline().strip())' "$1"
}

@test "crac start whose restore loses the image's Unix path to a plain restore of it: refused before the point of no return, naming the path, and the program starts cold" {
	[ -x "$PY" ] || skip "no python3"
	# the image: start_server listening at work/sock, written by crac start
	START_UNIX="$T/work/sock" bg cold "$CRAC" start --image "$T/img" --checkpoint-on-ready -- "$SERVER" "$T/d" 100
	wait_for grep -q "written to $T/img" "$T/cold.err"
	kill -TERM "$pid"
	wait "$pid" || true
	[ -S "$T/work/sock" ]   # stale
	ino="$(file_id "$T/work/sock")"
	# a plain restore of it, held 3 s between its bind and its listen
	restore_delayed a 3000
	pa=$pid
	wait_rebound "$T/work/sock" "$ino"
	# crac start meanwhile: its restore is refused; the cold program
	# (another path in its environment) serves
	START_UNIX="$T/work/sock2" bg warm "$CRAC" start --image "$T/img" --checkpoint-on USR1 -- "$SERVER" "$T/d" 100
	warm=$pid
	wait_for test -S "$T/work/sock2"
	cat "$T/warm.err" "$T/a.out"
	[ "$(grep -c "^crac: restore $T/img: fd [0-9]* (socket $T/work/sock): $T/work/sock is in use: another process listens there" "$T/warm.err")" -eq 1 ]
	grep -q "the restore of $T/img failed (exit status 1, its reason above): starting $SERVER cold" "$T/warm.err"
	[[ "$(ask_unix "$T/work/sock2")" == "answer "*"boots=2 "* ]]   # cold: the second boot
	[[ "$(ask_unix "$T/work/sock")" == "answer pid=$pa "*"boots=1 "* ]]   # the plain restore: the image's
	kill -TERM "$warm"
}

@test "a Unix path socket the check cannot hold (no descriptor number above the image's under the soft RLIMIT_NOFILE): bound after the point of no return, as before, and reachable" {
	[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -gt 200 ] || skip "hard RLIMIT_NOFILE too low"
	run clean "$PROG" "$T/img" "$T/work" unixonly 100   # the listener at fd 100
	echo "$output"
	[ "$status" -eq 0 ]
	[ -S "$T/work/sock" ]
	ino="$(file_id "$T/work/sock")"
	# soft limit 101: the loader cannot keep a socket above fd 100 before
	# its point of no return (it raises the soft limit only after it)
	restore_bg a CRAC_LOADER_TEST_LISTEN_DELAY_MS=2000 bash -c 'ulimit -Sn 101 && exec "$@"' _
	pa=$pid
	wait_rebound "$T/work/sock" "$ino"
	# bound after the point of no return (held, it would have been bound
	# before it, "p" not written yet). (Its "j" comes early: the pipe at
	# fd 3 cannot be kept above fd 100 either, and the loader says "j" at
	# once then, the safe side.)
	[ "$(head -c 1 "$T/a.ponr")" = p ]
	wait "$pa" && sa=0 || sa=$?
	cat "$T/a.out"
	[ "$sa" -eq 0 ]
	grep -q "^reachable " "$T/a.out"
	! grep -q FAIL "$T/a.out" || false
}
