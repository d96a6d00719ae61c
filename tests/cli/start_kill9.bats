#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `crac start` (and `crac run` with a trigger) killed with SIGKILL: its
# program, cold or restored, must not run on unsupervised, holding the
# port so that the next `crac start` can neither restore (the address is
# taken) nor start cold. The program gets SIGTERM when its supervisor dies
# (PR_SET_PDEATHSIG), and that parent-death signal is the supervisor's, not
# the program's: an image written under crac start does not keep it.

load common
load start_common

bats_require_minimum_version 1.5.0

setup() {
	T="$(mktemp -d /tmp/crac-bats-startk9.XXXXXX)"
	start_setup
	require_image_engine
	export START_PORT="$(free_port)"
}

teardown() { start_teardown; }

# killed_at_once PID: crac start PID gets SIGKILL; its one child (the
# program) must be gone within 5 s.
killed_at_once() {
	local child
	child="$(child_of "$1")"
	kill -9 "$1"
	wait "$1" 2>/dev/null || true
	exited "$child" || { echo "the program $child runs on after crac start was killed" >&2; return 1; }
}

@test "kill -9 of crac start while its program runs cold, then restored: the program ends with it; the next start restores" {
	bg cold "$CRAC" start --image "$T/img" --checkpoint-on-ready -- "$SERVER" "$T/d" 100
	wait_for grep -q "written to $T/img" "$T/cold.err"
	[[ "$(ask "$START_PORT")" == "answer "*"boots=1 served=1 "* ]]
	killed_at_once "$pid"
	! listening "$START_PORT" || false

	# restored this time: the restored program ends with crac start too
	bg warm "$CRAC" start --image "$T/img" --checkpoint-on-ready -- "$SERVER" "$T/d" 100
	a="$(ask_until "$START_PORT")"
	echo "$a"
	cat "$T/warm.err"
	[[ "$a" == "answer "*"boots=1 served=1 "* ]]   # restored, not cold
	killed_at_once "$pid"
	! listening "$START_PORT" || false

	bg again "$CRAC" start --image "$T/img" --checkpoint-on-ready -- "$SERVER" "$T/d" 100
	a="$(ask_until "$START_PORT")"
	[[ "$a" == "answer "*"boots=1 served=1 "* ]]
	[ "$(wc -l <"$T/d/boots")" -eq 1 ]
	! grep -q "Address already in use" "$T/again.err" || false
}

@test "kill -9 of crac run --checkpoint-on-ready: the program ends with it" {
	bg run "$CRAC" run --checkpoint-on-ready --checkpoint-to "$T/img2" --keep-running -- "$SERVER" "$T/d" 100
	wait_for test -d "$T/img2"
	ask_until "$START_PORT" >/dev/null
	killed_at_once "$pid"
}

@test "an image written under crac start keeps no parent-death signal: restored by hand, the program outlives the restoring command's parent" {
	bg cold "$CRAC" start --image "$T/img" --checkpoint-on-ready -- "$SERVER" "$T/d" 100
	wait_for grep -q "written to $T/img" "$T/cold.err"
	kill -TERM "$pid"
	wait "$pid" || true
	! listening "$START_PORT" || false
	# a shell starts the restore and ends once the program answers: the
	# restored program's parent ends after the restore
	bg shell sh -c '"$1" restore "$2" </dev/null >"$3" 2>&1 & echo $! >"$4"; while [ ! -e "$4.go" ]; do sleep 0.02; done' \
		sh "$CRAC" "$T/img" "$T/hand.out" "$T/hand.pid"
	shell=$pid
	wait_for test -s "$T/hand.pid"
	hand="$(cat "$T/hand.pid")"
	BG+=("$hand")
	a="$(ask_until "$START_PORT")"
	echo "$a"
	cat "$T/hand.out"
	[[ "$a" == "answer "*"pid=$hand "* ]]
	[ "$(cut -d' ' -f4 "/proc/$hand/stat")" -eq "$shell" ]   # its parent: the shell
	touch "$T/hand.pid.go"
	exited "$shell"
	sleep 0.3
	kill -0 "$hand"
	[[ "$(ask "$START_PORT")" == "answer "*"pid=$hand "* ]]
}
