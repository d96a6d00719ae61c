#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# libcrac's control socket appears at its name (DIR/PID.sock) only once it
# listens: it is bound under a temporary name unique to that start
# (DIR/PID-RANDOM.tmp), listened on, then renamed. It was bound at its own name and listened on after the
# setup's helper returned; a client that waited for the file to appear
# (crac run, then crac checkpoint PID) could connect in between and was
# refused ("nothing listens at ...": run_image.bats under load).
# CRAC_TEST_SLOW_FS=bound:MS (src/core/control.c) holds the setup once the
# socket is bound, before the listen.

bats_require_minimum_version 1.5.0

load common
load stuck_common

setup() {
	common_setup ctllisten --open --control CRAC_TEST_SYNC_GRACE_MS CRAC_TEST_SLOW_FS
	PROG="$CRAC_BUILD_DIR/tests/ctlprog"
}

teardown() {
	common_teardown
}

# The temporary of this start: DIR/PID-RANDOM.tmp (16 hex digits), waited for.
tmp_of() {
	local f
	for _ in $(seq 400); do
		for f in "$1/$2"-*.tmp; do
			[ -S "$f" ] && { echo "$f"; return 0; }
		done
		sleep 0.02
	done
	return 1
}

@test "the control socket file appears only once it listens: bound under PID-RANDOM.tmp, then renamed to PID.sock" {
	# held 8 s once bound: the look below needs to come once in that time
	spawn "$T/p.out" "$T/p.err" env CRAC_CONTROL=1 CRAC_TEST_SLOW_FS=bound:8000 "$PROG"
	pid=$SPAWNED
	PIDS+=("$pid")
	tmp=$(tmp_of "$T/ctl" "$pid")
	ls -la "$T/ctl"
	[[ "$tmp" =~ /$pid-[0-9a-f]{16}\.tmp$ ]]
	# bound, not yet listening: not at its own name
	[ ! -e "$T/ctl/$pid.sock" ]
	[ "$(stat -c %a "$tmp")" = 600 ]
	wait_sock "$T/ctl/$pid.sock" 20 || { cat "$T/p.err"; false; }
	cat "$T/p.err"
	[ ! -e "$tmp" ]
	[ "$(stat -c %a "$T/ctl/$pid.sock")" = 600 ]
	# there: it answers at once
	run --separate-stderr "$CRAC" checkpoint --engine sim "$pid"
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	[ ! -e "$T/ctl/$pid.sock" ]
	[ -z "$(ls "$T/ctl")" ]
}

@test "what stands at PID.sock and cannot be removed is named in the refusal; PID.tmp (the old temporary's name) is not in the way" {
	mkdir -m 700 "$T/ctl"
	# a directory at the old temporary's name (the program's pid: bash
	# execs it): the temporary's name is not PID.tmp any more, nothing
	# there is removed
	run --separate-stderr timeout 3 bash -c 'mkdir "$CRAC_CONTROL_DIR/$$.tmp"; CRAC_CONTROL=1 exec "$0"' "$PROG"
	echo "$output / $stderr"
	pid=$(echo "$output" | sed -n 's/^ready pid=//p')
	[ -n "$pid" ]
	[[ "$stderr" != *"could not start"* ]]
	[ -d "$T/ctl/$pid.tmp" ]
	# one at the socket's own name
	rm -rf "${T:?}/ctl/"*
	run --separate-stderr timeout 3 bash -c 'mkdir "$CRAC_CONTROL_DIR/$$.sock"; CRAC_CONTROL=1 exec "$0"' "$PROG"
	echo "$output / $stderr"
	pid=$(echo "$output" | sed -n 's/^ready pid=//p')
	[ -n "$pid" ]
	[[ "$stderr" == *"could not start at $T/ctl/$pid.sock: the removal of a stale $T/ctl/$pid.sock: Is a directory"* ]]
	# nothing of ours left behind
	[ "$(ls "$T/ctl")" = "$pid.sock" ]
}

@test "a socket that came to listen at PID.sock while ours was bound under its temporary is not replaced by the rename (another process of that pid: a pid namespace sharing the directory); ours goes to PID.pidns-INO.sock" {
	command -v python3 >/dev/null || skip "python3 is not installed"
	spawn "$T/p.out" "$T/p.err" env CRAC_CONTROL=1 CRAC_TEST_SLOW_FS=bound:3000 "$PROG"
	pid=$SPAWNED
	PIDS+=("$pid")
	tmp=$(tmp_of "$T/ctl" "$pid")
	# the other one listens at the name meanwhile, and says it still has it
	python3 -c '
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
ino = os.stat(sys.argv[1]).st_ino
time.sleep(6)
print("kept" if os.path.exists(sys.argv[1]) and os.stat(sys.argv[1]).st_ino == ino else "replaced")
' "$T/ctl/$pid.sock" >"$T/py.out" &
	py=$!
	wait "$py"
	cat "$T/py.out" "$T/p.err"
	[ "$(cat "$T/py.out")" = kept ]
	# ours beside it, named with its pid namespace, and reachable: the
	# client finds it after PID.sock answered for another pid
	ns=$(stat -L -c %i /proc/"$pid"/ns/pid)
	[ -S "$T/ctl/$pid.pidns-$ns.sock" ]
	[ ! -e "$tmp" ]   # not left behind
	run --separate-stderr "$CRAC" checkpoint --engine sim "$pid"
	echo "$output $stderr"
	[ "$status" -eq 0 ]
}

@test "root's chmod of its bound socket never follows a link another uid put in its way (a control directory below one that uid may write to)" {
	[ "$(id -u)" -eq 0 ] || skip "needs root (and the uid nobody)"
	id nobody >/dev/null 2>&1 || skip "no user nobody"
	# the attacker's directory, the control directory below it
	mkdir -m 755 "$T/att"
	chown nobody "$T/att"
	echo victim >"$T/victim"
	chmod 644 "$T/victim"
	# held 4 s between the look at the bound socket file and its chmod
	spawn "$T/p.out" "$T/p.err" env CRAC_CONTROL=1 CRAC_CONTROL_DIR="$T/att/ctl" CRAC_TEST_SLOW_FS=chmod:4000 "$PROG"
	pid=$SPAWNED
	PIDS+=("$pid")
	tmp=$(tmp_of "$T/att/ctl" "$pid")
	tmp=${tmp##*/}
	# nobody moves root's directory aside (it owns the parent) and puts a
	# link to a directory of its own in its place, holding a link to the
	# victim (at the temporary's name: told, the worst case)
	runuser -u nobody -- sh -c "mv '$T/att/ctl' '$T/att/real' && mkdir '$T/att/evil' &&
		ln -s '$T/victim' '$T/att/evil/$tmp' && ln -s '$T/att/evil' '$T/att/ctl'"
	sleep 5
	cat "$T/p.err"
	ls -la "$T" "$T/att" "$T/att/real"
	[ "$(stat -c %a "$T/victim")" = 644 ]
	[ "$(cat "$T/victim")" = victim ]
	# the socket root bound was made private all the same
	[ "$(stat -c %a "$T/att/real/$tmp" 2>/dev/null || stat -c %a "$T/att/real/$pid.sock")" = 600 ]
}

@test "a stale PID.sock is removed only if it is still the file tried: a live socket another process (of that pid, another pid namespace) put there meanwhile stays, ours goes to PID.pidns-INO.sock" {
	command -v python3 >/dev/null || skip "python3 is not installed"
	mkdir -m 700 "$T/ctl"
	# a stale socket at the program's name (bash execs it: same pid), the
	# program held 8 s between its try of that file and the removal
	spawn "$T/p.out" "$T/p.err" bash -c 'python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()
" "$CRAC_CONTROL_DIR/$$.sock"; CRAC_CONTROL=1 CRAC_TEST_SLOW_FS=stale:8000 exec "$0"' "$PROG"
	pid=$SPAWNED
	PIDS+=("$pid")
	# once it tried the stale file: its setup's helper (a child process)
	# in the test's nanosleep (system call 35 on x86-64)
	held=
	for _ in $(seq 400); do
		if [ "$(readlink /proc/"$pid"/exe)" = "$PROG" ]; then
			for h in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
				grep -q '^35 ' /proc/"$h"/syscall 2>/dev/null && held=1
			done
			[ -n "$held" ] && break
		fi
		sleep 0.02
	done
	[ -n "$held" ]
	[ -S "$T/ctl/$pid.sock" ]
	[ ! -s "$T/p.out" ]   # still in its setup
	# the other one: listening under a temporary name, puts its socket at
	# the name in place of the stale file (as one that removed it and
	# renamed its own there would: never bound there and not listening)
	python3 -c '
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1] + ".other"); s.listen(4)
os.rename(sys.argv[1] + ".other", sys.argv[1])
ino = os.stat(sys.argv[1]).st_ino
time.sleep(12)
print("kept" if os.path.exists(sys.argv[1]) and os.stat(sys.argv[1]).st_ino == ino else "replaced")
' "$T/ctl/$pid.sock" >"$T/py.out" &
	py=$!
	wait_line "$T/p.out" ready 20
	ns=$(stat -L -c %i /proc/"$pid"/ns/pid)
	ls -la "$T/ctl"
	[ -S "$T/ctl/$pid.pidns-$ns.sock" ]
	run --separate-stderr "$CRAC" checkpoint --engine sim "$pid"
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	wait "$py"
	cat "$T/py.out" "$T/p.err"
	[ "$(cat "$T/py.out")" = kept ]
	# nothing aside or temporary left
	! ls "$T/ctl" | grep -q '\.\(tmp\|stale\)$'
}
