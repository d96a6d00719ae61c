#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Defects of `crac start` and the supervisor found by review (issue 13):
# a stop signal during a restore, a restored program that ends before it
# answers, --checkpoint-on where this instance is not the writer, ends by a
# core-dumping signal or SIGKILL, what DIR may be, DIR.lock, leftovers.

load common
load start_common

bats_require_minimum_version 1.5.0

setup() {
	T="$(mktemp -d /tmp/crac-bats-startrev.XXXXXX)"
	start_setup
	EXITP="${CRAC_TEST_START_EXIT:-$CRAC_BUILD_DIR/tests/start_exit}"
	require_image_engine
}

teardown() { start_teardown; pkill -9 -f "start_exit $T/" 2>/dev/null || true; }

# ends: crac start ($pid) ends within 5 s (not a cold program running on); $status.
ends() {
	exited "$pid" || { cat "$T"/*.err; echo "crac start $pid still runs" >&2; return 1; }
	status=0; wait "$pid" || status=$?
}

# image MODE [MB]: a cold start of start_exit that writes $T/img, then ended.
image() {
	bg cold "$CRAC" start --image "$T/img" --checkpoint-after 300ms -- "$EXITP" "$T/d" "$@"
	wait_for grep -q "written to $T/img" "$T/cold.err"
	kill -TERM "$pid"
	status=0; wait "$pid" || status=$?
	[ "$(wc -l <"$T/d/boots")" -eq 1 ]
}

@test "a restored program that exits before its first answer: its exit status, run once, never cold" {
	image exit
	START_EXIT_NOW=1 bg warm "$CRAC" start --image "$T/img" --checkpoint-after 300ms -- "$EXITP" "$T/d" exit
	ends
	cat "$T/warm.err"
	[ "$status" -eq 7 ]
	[ "$(wc -l <"$T/d/boots")" -eq 1 ]
	! grep -q "cold" "$T/warm.err" || false
}

# A restore that fails after the loader's point of no return but before it
# jumps into the program ran none of the program's code: the loader says
# "j" on crac start's pipe only at the jump, so crac start starts it cold,
# the reason said (a crash of the loader; a chunk found damaged while
# loading). After the jump, the program's end is its own (the test above).
@test "a restore that crashes after the loader's point of no return, before the program ran: started cold, the crash said" {
	image wait
	CRAC_LOADER_TEST_CRASH=1 bg warm "$CRAC" start --image "$T/img" --checkpoint-after 1h -- "$EXITP" "$T/d" wait
	boots_are() { [ "$(wc -l <"$T/d/boots" 2>/dev/null)" = "$1" ]; }
	wait_for boots_are 2
	wait_for grep -q "starting .* cold" "$T/warm.err"
	cat "$T/warm.err"
	grep -q "crashed at .* while " "$T/warm.err"
	grep -q "the restore of $T/img failed (exit status 1, its reason above)" "$T/warm.err"
	kill -0 "$pid"
	kill -TERM "$pid"
	ends
	[ "$status" -eq 143 ]
}

@test "an eager restore that finds a damaged chunk after the point of no return: started cold, the chunk named" {
	image wait 4
	# one byte of the pages file changed: every chunk is verified as it is
	# loaded (eagerly here), after the loader's point of no return
	"$PY" -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
off = os.fstat(fd).st_size // 2
b = os.pread(fd, 1, off)
os.pwrite(fd, bytes([b[0] ^ 0x5a]), off)
' "$T/img/pages"
	CRAC_PRETEND_MISSING=userfaultfd bg warm "$CRAC" start --image "$T/img" --checkpoint-after 1h -- "$EXITP" "$T/d" wait 4
	boots_are() { [ "$(wc -l <"$T/d/boots" 2>/dev/null)" = "$1" ]; }
	wait_for boots_are 2
	wait_for grep -q "starting .* cold" "$T/warm.err"
	cat "$T/warm.err"
	grep -q "chunk" "$T/warm.err"
	grep -q "the restore of $T/img failed (exit status 1, its reason above)" "$T/warm.err"
	kill -TERM "$pid"
	ends
	[ "$status" -eq 143 ]
}

# is_crac PID: PID is crac start already (exec'd: the crac command, which
# execs the tool crac-cli; no longer bg's subshell).
is_crac() {
	[ "$(readlink /proc/"$1"/exe)" = "$(readlink -f "$CRAC_BUILD_DIR/crac-cli")" ]
}

# has_child PID: PID (exec'd already: bg's own children are gone) has a child.
has_child() {
	is_crac "$1" && [ -n "$(cat /proc/"$1"/task/*/children 2>/dev/null)" ]
}

@test "TERM to crac start during a restore (before the first answer): it ends by TERM, no cold start" {
	image wait 64
	bg warm "$CRAC" start --image "$T/img" --checkpoint-after 300ms -- "$EXITP" "$T/d" wait 64
	for _ in $(seq 5000); do has_child "$pid" && break; done
	child="$(cat /proc/"$pid"/task/*/children)"
	kill -STOP $child   # held in the middle of its restore (64 MiB)
	kill -TERM "$pid"
	sleep 0.3
	kill -CONT $child 2>/dev/null || true   # (a fatal TERM may have ended it already)
	ends
	cat "$T/warm.err"
	[ "$status" -eq 143 ]
	[ "$(wc -l <"$T/d/boots")" -eq 1 ]
	! grep -q "cold" "$T/warm.err" || false
}

@test "--checkpoint-on USR1 where this start is not the writer: USR1 is consumed, one line says why, the program lives" {
	bg a "$CRAC" start --image "$T/img" --checkpoint-on USR1 -- "$EXITP" "$T/d" wait
	a="$pid"
	wait_for grep -q "starting" "$T/a.err"
	boots_are() { [ "$(wc -l <"$T/d/boots" 2>/dev/null)" = "$1" ]; }
	wait_for boots_are 1
	bg b "$CRAC" start --image "$T/img" --checkpoint-on USR1 -- "$EXITP" "$T/d" wait
	b="$pid"
	wait_for grep -q "this one writes none" "$T/b.err"
	wait_for boots_are 2
	prog="$(child_of "$b")"
	kill -USR1 "$b"
	wait_for grep -q "not the writer" "$T/b.err"
	cat "$T/b.err"
	sleep 0.2
	kill -0 "$prog"
	kill -0 "$b"
	[ ! -e "$T/img" ]
	[ "$(grep -c "not the writer" "$T/b.err")" -eq 1 ]
}

# ends_like SIG: crac run's supervisor ends as its child ended by SIG.
ends_like() {
	(
		cd "$T"
		ulimit -c unlimited 2>/dev/null || true
		"$PY" -c '
import subprocess, sys
r = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, close_fds=True)
print(r.returncode)
' "$CRAC" run --checkpoint-after 1h -- /bin/sh -c "kill -$1 \$\$"
	)
}

@test "a child killed by a core-dumping signal or by SIGKILL: crac dies by the same signal (not exit 128+N)" {
	run ends_like SEGV
	echo "$output"
	[ "${lines[-1]}" = "-11" ]
	run ends_like ABRT
	[ "${lines[-1]}" = "-6" ]
	run ends_like KILL
	echo "$output"
	[ "${lines[-1]}" = "-9" ]
	run ends_like TERM
	[ "${lines[-1]}" = "-15" ]
}

@test "DIR a regular file, a named pipe, a symbolic link: refused with one line, cold start, nothing replaced or removed through it" {
	echo precious >"$T/img"
	bg a "$CRAC" start --image "$T/img" --checkpoint-after 200ms -- "$EXITP" "$T/d" wait
	wait_for grep -q "not a crac image of this user" "$T/a.err"
	sleep 1
	cat "$T/a.err"
	[ "$(cat "$T/img")" = precious ]
	kill -0 "$pid"
	kill -TERM "$pid"; wait "$pid" || true
	rm -f "$T/img"

	mkfifo "$T/img"
	bg b "$CRAC" start --image "$T/img" --checkpoint-after 200ms -- "$EXITP" "$T/d" wait
	wait_for grep -q "not a crac image of this user" "$T/b.err"
	sleep 1
	[ -p "$T/img" ]
	kill -TERM "$pid"; wait "$pid" || true
	rm -f "$T/img"

	mkdir "$T/victim"
	echo h >"$T/victim/header"; echo p >"$T/victim/pages"
	ln -s "$T/victim" "$T/img"
	bg c "$CRAC" start --image "$T/img" --checkpoint-after 200ms -- "$EXITP" "$T/d" wait
	wait_for grep -q "not a crac image of this user (it is a symbolic link" "$T/c.err"
	sleep 1
	cat "$T/c.err"
	[ -L "$T/img" ]
	[ "$(cat "$T/victim/header")" = h ]
	[ "$(cat "$T/victim/pages")" = p ]
	kill -TERM "$pid"; wait "$pid" || true
}

@test "DIR.lock writable by others: refused (cold, nothing written); a held lock: TERM still ends crac start" {
	touch "$T/img.lock"; chmod 666 "$T/img.lock"
	bg a "$CRAC" start --image "$T/img" --checkpoint-after 200ms -- "$EXITP" "$T/d" wait
	wait_for grep -q "only it may write" "$T/a.err"
	sleep 1
	cat "$T/a.err"
	[ ! -e "$T/img" ]
	kill -TERM "$pid"; wait "$pid" || true
	rm -f "$T/img.lock"

	touch "$T/img.lock"
	"$PY" -c '
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, 37, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 2, 0))   # F_OFD_SETLK
open(sys.argv[2], "w").close()
time.sleep(60)
' "$T/img.lock" "$T/locked" &
BG+=("$!")
	wait_for test -e "$T/locked"
	bg b "$CRAC" start --image "$T/img" --checkpoint-after 200ms -- "$EXITP" "$T/d" wait
	wait_for has_child_or_waits "$pid"
	sleep 0.3
	kill -TERM "$pid"
	ends
	[ "$status" -eq 143 ]
}

# has_child_or_waits PID: crac start (exec'd) runs.
has_child_or_waits() { is_crac "$1"; }

@test "an unfinished DIR.new-PID of a crac start that is gone, and DIR.new-PID.tmp-* of writers that are gone, are removed by the next writer" {
	mkdir -p "$T/img.new-4194300"
	echo h >"$T/img.new-4194300/header"
	# and a temporary of the image engine inside such a start's checkpoint
	# (TERM during the warm-up checkpoint): its writer's pid is gone too
	mkdir -p "$T/img.new-4194300.tmp-4194301-12345-abcdef"
	head -c 1000000 /dev/zero >"$T/img.new-4194300.tmp-4194301-12345-abcdef/pages"
	bg a "$CRAC" start --image "$T/img" --checkpoint-after 300ms -- "$EXITP" "$T/d" wait
	wait_for grep -q "written to $T/img" "$T/a.err"
	cat "$T/a.err"
	[ ! -e "$T/img.new-4194300" ]
	[ ! -e "$T/img.new-4194300.tmp-4194301-12345-abcdef" ]
	grep -q "removed 2 unfinished images of $T/img" "$T/a.err"
}

@test "arguments over 64 KiB: the key is hashed, the next start restores; an environment too large to pass twice: one clear reason" {
	long="$(head -c 70000 /dev/zero | tr '\0' x)"
	bg a "$CRAC" start --image "$T/img" --checkpoint-after 300ms -- "$EXITP" "$T/d" wait 0 "$long"
	wait_for grep -q "written to $T/img" "$T/a.err"
	kill -TERM "$pid"; wait "$pid" || true
	[ "$(wc -c <"$T/img/start-key")" -lt 8192 ]
	bg b "$CRAC" start --image "$T/img" --checkpoint-after 300ms -- "$EXITP" "$T/d" wait 0 "$long"
	sleep 1
	cat "$T/b.err"
	! grep -q cold "$T/b.err" || false
	[ "$(wc -l <"$T/d/boots")" -eq 1 ]
	kill -TERM "$pid"; wait "$pid" || true

	big="$(head -c 100000 /dev/zero | tr '\0' y)"
	for i in $(seq 12); do export BIG$i="$big"; done
	bg c "$CRAC" start --image "$T/img" --checkpoint-after 300ms -- "$EXITP" "$T/d" wait 0 "$long"
	wait_for grep -q "starting" "$T/c.err"
	for i in $(seq 12); do unset BIG$i; done
	cat "$T/c.err"
	grep -q "too large to pass to the restore" "$T/c.err"
	kill -TERM "$pid"; wait "$pid" || true
}

@test "a planted DIR.new-PID symbolic link (PID: this crac start's) is never followed: the files it points to stay" {
	mkdir "$T/victim"
	echo h >"$T/victim/header"; echo p >"$T/victim/pages"
	# crac start's pid is known before it runs: the shell that execs it
	bg a /bin/sh -c 'while [ ! -e "$1/go" ]; do sleep 0.01; done; shift; exec "$@"' sh "$T" \
		"$CRAC" start --image "$T/img" --checkpoint-on USR1 -- "$EXITP" "$T/d" wait
	ln -s "$T/victim" "$T/img.new-$pid"
	touch "$T/go"
	wait_for grep -q "starting" "$T/a.err"
	wait_for test -s "$T/d/boots"
	sleep 0.3
	cat "$T/a.err"
	[ "$(cat "$T/victim/header")" = h ]
	[ "$(cat "$T/victim/pages")" = p ]
	[ -L "$T/img.new-$pid" ]
}

# The key of an image made without --key names the executable PROG was
# found as in PATH (execvp's choice): a warm start must search PATH too, or
# it would restore the image of a program that is no longer the one PROG
# names.
@test "PROG found in PATH: restored; a PROG put earlier in PATH is another program: started cold, the reason said" {
	mkdir -p "$T/bin0" "$T/bin1"
	cp "$EXITP" "$T/bin1/start_exit"
	export PATH="$T/bin0:$T/bin1:$PATH"
	bg cold "$CRAC" start --image "$T/img" --checkpoint-after 300ms -- start_exit "$T/d" exit
	wait_for grep -q "written to $T/img" "$T/cold.err"
	kill -TERM "$pid"
	wait "$pid" || true
	grep -q "path $T/bin1/start_exit" "$T/img/start-key"
	START_EXIT_NOW=1 bg warm "$CRAC" start --image "$T/img" --checkpoint-after 1h -- start_exit "$T/d" exit
	ends
	cat "$T/warm.err"
	[ "$status" -eq 7 ]
	[ "$(wc -l <"$T/d/boots")" -eq 1 ]
	cp "$EXITP" "$T/bin0/start_exit"
	START_EXIT_NOW=1 bg shadow "$CRAC" start --image "$T/img" --checkpoint-after 1h -- start_exit "$T/d" exit
	ends
	cat "$T/shadow.err"
	[ "$status" -eq 7 ]
	[ "$(wc -l <"$T/d/boots")" -eq 2 ]
	grep -q "the image at $T/img is of another program or other arguments (recorded \"exe .*path $T/bin1/start_exit\", now \"exe .*path $T/bin0/start_exit\")" "$T/shadow.err"
}
