#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A checkpoint removes the temporaries of DIR whose writer is gone
# (DIR.tmp-PID-START-XXXXXX). A writer in another pid namespace (a
# container sharing the volume) has a PID and START that mean nothing here:
# judged by them alone, its temporary looked abandoned and a checkpoint
# into the same DIR removed it under it, failing that writer ("pages for
# reading back: No such file or directory"). The writer holds a lock
# (flock) on its temporary while it writes and until its rename; a locked
# temporary is never removed, an unlocked one of a writer that is gone is.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	COUNTER="$CRAC_BUILD_DIR/tests/image_counter"
	T="$(mktemp -d /tmp/crac-bats-tmplock.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
	require_image_engine
	holder=
}

teardown() {
	[ -z "$holder" ] || kill "$holder" 2>/dev/null || true
	rm -rf "$T"
}

@test "a temporary locked by its writer (another pid namespace: its PID means nothing here) is left alone; an unlocked one of a gone writer is removed" {
	run clean "$COUNTER" "$T/D" 1
	[ "$status" -eq 0 ]
	# PID 999999 and START 1: no such writer here
	mkdir -m 700 "$T/D.tmp-999999-1-locked" "$T/D.tmp-999999-1-gonexx"
	: >"$T/D.tmp-999999-1-locked/pages"
	: >"$T/D.tmp-999999-1-gonexx/pages"
	# the lock's holder: a sleep alone (the directory open as its fd 9)
	hold_flock "$T/D.tmp-999999-1-locked"
	holder=$HOLDER
	grep -q FLOCK /proc/locks
	run clean "$COUNTER" "$T/D" 2
	echo "$output"
	[ "$status" -eq 0 ]
	ls -la "$T"
	[ -f "$T/D.tmp-999999-1-locked/pages" ]
	[ ! -e "$T/D.tmp-999999-1-gonexx" ]
	kill "$holder"
	wait "$holder" 2>/dev/null || true
	holder=
	# the writer gone, its lock with it: the next checkpoint removes it
	run clean "$COUNTER" "$T/D" 3
	[ "$status" -eq 0 ]
	[ ! -e "$T/D.tmp-999999-1-locked" ]
	[ "$(ls "$T")" = D ]
}

@test "checkpoints into one DIR from two pid namespaces at once: both succeed, the image restores" {
	[ "$(id -u)" -eq 0 ] || skip "unshare --pid needs root"
	unshare --pid --fork --mount-proc true 2>/dev/null || skip "no pid namespaces here"
	run clean "$COUNTER" "$T/D" 1
	[ "$status" -eq 0 ]
	for i in 1 2 3; do
		# A, in its own pid namespace, writes a large image; B starts
		# once A's temporary is there
		(
			close_fds
			exec unshare --pid --fork --mount-proc "$COUNTER" "$T/D" 384 >"$T/a.out" 2>&1 </dev/null
		) &
		a=$!
		for _ in $(seq 1000); do
			ls "$T" | grep -q '^D\.tmp-' && break
			sleep 0.01
		done
		ls "$T"
		run clean "$COUNTER" "$T/D" 4
		echo "B: $output"
		[ "$status" -eq 0 ]
		sa=0
		wait "$a" || sa=$?
		cat "$T/a.out"
		[ "$sa" -eq 0 ]
		run clean "$CRAC" restore "$T/D"
		echo "$output" | grep -q "^restored: checksum="
	done
	[ "$(ls "$T" | grep -v '\.out$')" = D ]
}

@test "crac flatten's temporary is locked too: a checkpoint into OUT from another pid namespace leaves it while flatten runs" {
	[ "$(id -u)" -eq 0 ] || skip "unshare --pid needs root"
	unshare --pid --fork --mount-proc true 2>/dev/null || skip "no pid namespaces here"
	run clean env CRAC_IMAGE_INCREMENTAL=1 "$CRAC_BUILD_DIR/tests/image_incr" "$T/i0" "$T/i1" "$T/i2"
	[ "$status" -eq 0 ]
	# flatten in its own pid namespace (pid 1 there), held, its temporary
	# complete, before its last looks at OUT until this test creates
	# $T/go (CRAC_TEST_FLATTEN_HOLD: an event of ours, not a timer, which
	# the checkpoint below outlasted under CI load: flatten had gone on,
	# found OUT and removed its own temporary before the test looked)
	(
		close_fds
		CRAC_TEST_FLATTEN_HOLD="$T/go" exec unshare --pid --fork --mount-proc \
			"$CRAC" flatten "$T/i2" "$T/OUT" >"$T/f.out" 2>&1 </dev/null
	) &
	f=$!
	for _ in $(seq 3000); do   # up to 30 s for flatten to get there
		[ -e "$T/go.held" ] && break
		sleep 0.01
	done
	[ -e "$T/go.held" ] || { cat "$T/f.out"; false; }
	tmp="$(ls -d "$T"/OUT.tmp-1-*)"
	[ -e "$tmp/header" ]
	[ -e "$tmp/pages" ]
	# a checkpoint into OUT from here meanwhile: flatten's PID 1 is not it
	run clean "$COUNTER" "$T/OUT" 1
	echo "$output"
	[ "$status" -eq 0 ]
	[ -e "$tmp/header" ] || { cat "$T/f.out"; false; }   # still there, whole
	[ -e "$tmp/pages" ]
	touch "$T/go"
	sf=0
	wait "$f" || sf=$?
	cat "$T/f.out"
	# flatten then finds OUT made meanwhile: refused, OUT is the checkpoint's
	[ "$sf" -eq 1 ]
	grep -q "OUT appeared while the image was written" "$T/f.out"
	! grep -q "No such file" "$T/f.out" || false
	[ ! -e "$tmp" ]
	run clean "$CRAC" restore "$T/OUT"
	echo "$output" | grep -q "^restored: checksum="
}
