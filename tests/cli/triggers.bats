#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Warm-up triggers of `crac run` (issue 13 item 1): the program stays
# unmodified (tests/progs/start_server.c), crac stays as its parent and
# checkpoints it when the trigger fires; a checkpoint that fails prints its
# report and the program keeps running cold; signals reach the program and
# crac exits as it exits.

load common
load start_common

setup() {
	T="$(mktemp -d /tmp/crac-bats-trig.XXXXXX)"
	start_setup
	require_image_engine
}

teardown() { start_teardown; }

@test "--checkpoint-after: the image is written after the delay; without --keep-running the program ends, crac exits 0" {
	bg run "$CRAC" run --checkpoint-after 400ms --checkpoint-to "$T/img" -- "$SERVER" "$T/d"
	wait_for test -s "$T/d/port"
	[ ! -e "$T/img" ]   # not before the delay
	status=0; wait "$pid" || status=$?
	cat "$T/run.err"
	[ "$status" -eq 0 ]
	grep -q "image written to $T/img" "$T/run.err"
	run "$CRAC" inspect "$T/img"
	[ "$status" -eq 0 ]
}

@test "--checkpoint-after that fires before the program's control endpoint is up: crac waits for it, the image is written" {
	# the program's libcrac starts its endpoint 1.5 s late (a slow start)
	CRAC_TEST_CONTROL_DELAY_MS=1500 bg run "$CRAC" run --keep-running --checkpoint-after 100ms \
		--checkpoint-to "$T/img" -- "$SERVER" "$T/d"
	wait_for grep -q "image written to $T/img\|keeps running cold" "$T/run.err"
	cat "$T/run.err"
	grep -q "image written to $T/img" "$T/run.err"
	! grep -q "no control endpoint" "$T/run.err" || false
	run "$CRAC" inspect "$T/img"
	[ "$status" -eq 0 ]
}

@test "--checkpoint-on USR1 --keep-running: each USR1 to crac writes the image; the program is not sent USR1 and keeps answering" {
	bg run "$CRAC" run --keep-running --checkpoint-on USR1 --checkpoint-to "$T/img" -- "$SERVER" "$T/d"
	wait_for test -s "$T/d/port"
	port="$(cat "$T/d/port")"
	sleep 0.3
	[ ! -e "$T/img" ]
	kill -USR1 "$pid"
	wait_for test -f "$T/img/header"
	wait_for grep -q "image written" "$T/run.err"
	[[ "$(ask "$port")" == "answer "*"served=1 "* ]]
	first="$(stat -c %i "$T/img/header")"
	kill -USR1 "$pid"
	wait_for sh -c "[ \$(grep -c 'image written' '$T/run.err') -eq 2 ]"
	[ "$(stat -c %i "$T/img/header")" != "$first" ]
	[[ "$(ask "$port")" == "answer "*"served=2 "* ]]
	kill -0 "$pid"
	cat "$T/run.err"
}

@test "--checkpoint-when-listening ADDR:PORT fires the first time the program listens there, not before" {
	port=$(( 20000 + RANDOM % 20000 ))
	START_PORT=$port START_LISTEN_LATE=1 bg run "$CRAC" run --checkpoint-when-listening "127.0.0.1:$port" \
		--checkpoint-to "$T/img" -- "$SERVER" "$T/d" 700
	sleep 0.4
	[ ! -e "$T/img" ]        # warming up, not listening yet
	status=0; wait "$pid" || status=$?
	cat "$T/run.err"
	[ "$status" -eq 0 ]
	grep -q "image written to $T/img" "$T/run.err"
	# another port never fires
	START_PORT=$port bg run2 "$CRAC" run --checkpoint-when-listening $((port + 1)) --checkpoint-to "$T/img2" \
		-- "$SERVER" "$T/d"
	sleep 0.8
	[ ! -e "$T/img2" ]
	kill -0 "$pid"
}

@test "--checkpoint-on-ready: READY=1 and the program's other notifications reach \$NOTIFY_SOCKET through crac (no MAINPID), and the image is written" {
	notify_reader "$T/notify" "$T/notes"
	NOTIFY_SOCKET="$T/notify" bg run "$CRAC" run --keep-running --checkpoint-on-ready --checkpoint-to "$T/img" \
		-- "$SERVER" "$T/d" 200
	wait_for grep -q "READY=1" "$T/notes"
	grep -q "STATUS=warm" "$T/notes"
	! grep -q MAINPID "$T/notes" || false
	wait_for grep -q "image written to $T/img" "$T/run.err"
	# the program's NOTIFY_SOCKET was crac's, not the outer one
	child="$(child_of "$pid")"
	tr '\0' '\n' </proc/$child/environ | grep '^NOTIFY_SOCKET=' | grep -v "=$T/notify\$"
	port="$(cat "$T/d/port")"
	[[ "$(ask "$port")" == "answer "* ]]
}

@test "a checkpoint a trigger started that fails prints its report; the program keeps running cold" {
	# fd 5: a pipe to another process, which the image cannot carry
	exec 5> >(cat >/dev/null)
	(
		close_fds 5
		exec "$CRAC" run --checkpoint-after 200ms --checkpoint-to "$T/img" -- "$SERVER" "$T/d" \
			</dev/null >"$T/run.out" 2>"$T/run.err"
	) &
	pid=$!
	BG+=("$pid")
	exec 5>&-
	wait_for grep -q "keeps running cold" "$T/run.err"
	cat "$T/run.err"
	grep -q "checkpoint aborted" "$T/run.err"
	grep -q "fd 5" "$T/run.err"
	grep -q -- "--checkpoint-after 200 ms started failed (aborted)" "$T/run.err"
	[ ! -e "$T/img" ]
	[[ "$(ask "$(cat "$T/d/port")")" == "answer "* ]]
}

@test "signals reach the program; crac ends as it ended (SIGTERM: killed by SIGTERM)" {
	bg run "$CRAC" run --checkpoint-after 1h -- "$SERVER" "$T/d"
	wait_for test -s "$T/d/port"
	child="$(child_of "$pid")"
	[ -n "$child" ]
	[ "$(readlink /proc/$child/exe)" = "$(readlink -f "$SERVER")" ]
	kill -TERM "$pid"
	status=0; wait "$pid" || status=$?
	[ "$status" -eq 143 ]
	exited "$child"
}

@test "bad trigger options are usage errors (exit 2); crac run --help lists every option" {
	run "$CRAC" run --checkpoint-after soon -- true
	[ "$status" -eq 2 ]
	[[ "$output" == *"--checkpoint-after wants a duration"* ]]
	run "$CRAC" run --checkpoint-on KILL -- true
	[ "$status" -eq 2 ]
	run "$CRAC" run --checkpoint-when-listening 1.2.3:80 -- true
	[ "$status" -eq 2 ]
	run "$CRAC" run --keep-running -- true
	[ "$status" -eq 2 ]
	run "$CRAC" run --help
	[ "$status" -eq 0 ]
	for o in --engine --checkpoint-to --policies --keep-running --checkpoint-after --checkpoint-on \
		 --checkpoint-when-listening --checkpoint-on-ready; do
		[[ "$output" == *"$o"* ]]
	done
}
