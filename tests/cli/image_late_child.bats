#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The safety checks look at the process while its threads still run; the
# image engine stops them later. A thread that forked, or created a POSIX
# timer, in between was not refused: the image was written without the
# child (or the timer), and the restored program waited for a child it did
# not have. The engine looks again once every thread is stopped
# (src/engines/image_capture.c): where the checks saw none, there must be
# none. CRAC_TEST_FREEZE_DELAY_MS widens the window.

load common
load start_common

setup() {
	T="$(mktemp -d /tmp/crac-bats-latechild.XXXXXX)"
	chmod 755 "$T"
	start_setup
	PROG="$CRAC_BUILD_DIR/tests/fork_late"
	require_image_engine
}

teardown() { start_teardown; }

late() {
	bg prog env CRAC_TEST_FREEZE_DELAY_MS=3000 "$PROG" "$1" "$T/go"
	wait_for grep -qs '^ready' "$T/prog.out"
	wait_for test -S "$CRAC_CONTROL_DIR/$pid.sock"
	target=$pid
	bg ckpt "$CRAC" checkpoint --engine image --image-dir "$T/img" "$target"
	client=$pid
	sleep 1   # the checks are done, the engine waits 3 s before it stops the threads
	touch "$T/go"
	wait_for grep -qs '^done' "$T/prog.out"
	status=0
	wait "$client" || status=$?
	cat "$T/ckpt.out" "$T/ckpt.err"
	[ "$status" -eq 1 ]
	[ ! -e "$T/img" ]
	kill -0 "$target"   # the program runs on
}

@test "a child forked after the safety checks, before the threads stopped: the checkpoint is refused, naming it" {
	late child
	grep -Eq "child process [0-9]+ \(fork_late\) was started by thread [0-9]+ after the safety checks, while the checkpoint ran" "$T/ckpt.out"
}

@test "a POSIX timer the engine cannot carry, created after the safety checks: the checkpoint is refused, naming it" {
	late timer
	grep -Eq "POSIX timer [0-9]+ was created after the safety checks, while the checkpoint ran, and the image engine cannot create it again" "$T/ckpt.out"
}
