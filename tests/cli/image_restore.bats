#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Image engine, end to end: a program checkpoints itself with the image
# engine (tests/progs/image_counter, image_threads), `crac restore DIR`
# brings it back in the restore command's own process (same pid), as many
# times as asked, 20 at once, with new arguments, as root and as nobody.
# The restored program checks its state checksum, clock_gettime (vDSO moved
# back), malloc (brk restored), MADV_DONTNEED giving zeros (anonymous
# semantics), and for threads: mutexes, condvars, TLS, a robust mutex,
# pthread_kill and join.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	COUNTER="$CRAC_BUILD_DIR/tests/image_counter"
	THREADS="$CRAC_BUILD_DIR/tests/image_threads"
	T="$(mktemp -d /tmp/crac-bats-image.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
}

teardown() {
	rm -rf "$T"
}

checkpoint_counter() {
	run clean timeout 60 "$COUNTER" "$T/img" "${1:-4}"
	echo "$output"
	[ "$status" -eq 0 ]
	BEFORE="$(echo "$output" | sed -n 's/^before: checksum=//p')"
	[ -n "$BEFORE" ]
}

@test "checkpoint writes a private image directory" {
	checkpoint_counter
	[ -d "$T/img" ]
	[ "$(stat -c %a "$T/img")" = 700 ]
	[ "$(stat -c %a "$T/img/header")" = 600 ]
	[ "$(stat -c %a "$T/img/pages")" = 600 ]
	# nothing left behind: no temporary directory
	[ "$(ls "$T")" = img ]
	# image = touched memory: 4 MiB of mapping plus a little, not the whole address space
	size=$(stat -c %s "$T/img/pages")
	[ "$size" -ge $((4 << 20)) ]
	[ "$size" -lt $((8 << 20)) ]
}

@test "restore: same state, clock, malloc, anonymous semantics" {
	checkpoint_counter
	run clean timeout 60 "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^restored: checksum=$BEFORE pid_changed=yes"
	echo "$output" | grep -q "^clock ok"
	echo "$output" | grep -q "^malloc ok"
	echo "$output" | grep -q "^dontneed ok"
}

@test "restore keeps the pid of the restore command and passes new arguments" {
	checkpoint_counter
	run clean timeout 60 bash -c 'echo "shell=$$"; exec "$0" restore "$1" -- one "two words"' "$CRAC" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	shell=$(echo "$output" | sed -n 's/^shell=//p')
	echo "$output" | grep -q "^pid=$shell\$"
	echo "$output" | grep -q "args=2:one,two words"
}

@test "restore three times in a row" {
	checkpoint_counter
	for i in 1 2 3; do
		run clean timeout 60 "$CRAC" restore "$T/img"
		echo "$output"
		[ "$status" -eq 0 ]
		echo "$output" | grep -q "^restored: checksum=$BEFORE"
	done
}

@test "20 concurrent restores of one image" {
	checkpoint_counter
	pids=()
	for i in $(seq 1 20); do
		clean timeout 60 "$CRAC" restore "$T/img" >"$T/out.$i" 2>&1 &
		pids+=($!)
	done
	fail=0
	for i in $(seq 1 20); do
		wait "${pids[$((i - 1))]}" || { echo "instance $i failed"; cat "$T/out.$i"; fail=1; }
		grep -q "^restored: checksum=$BEFORE" "$T/out.$i" || { cat "$T/out.$i"; fail=1; }
		grep -q "^dontneed ok" "$T/out.$i" || fail=1
	done
	[ "$fail" -eq 0 ]
}

@test "a second checkpoint replaces the image atomically" {
	checkpoint_counter 4
	first=$(stat -c %s "$T/img/pages")
	checkpoint_counter 8
	second=$(stat -c %s "$T/img/pages")
	[ "$second" -gt "$first" ]
	[ "$(ls "$T")" = img ]
	run clean timeout 60 "$CRAC" restore "$T/img"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^restored: checksum=$BEFORE"
}

@test "inspect shows header, mappings, threads and checks" {
	checkpoint_counter
	run "$CRAC" inspect "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	V=$(sed -n 's/^#define CRAC_IMG_VERSION \([0-9]*\).*/\1/p' "$CRAC_SOURCE_DIR/src/image/image.h")
	echo "$output" | grep -q "^format: *version $V, header"
	echo "$output" | grep -q "\[heap\]"
	echo "$output" | grep -q "libcrac.so"
	echo "$output" | grep -q "(checkpointer)"
	echo "$output" | grep -q "pages *ok"
	echo "$output" | grep -q "restorable here"
	run "$CRAC" inspect "$T/img" --json
	[ "$status" -eq 0 ]
	if command -v python3 >/dev/null; then
		V=$(sed -n 's/^#define CRAC_IMG_VERSION \([0-9]*\).*/\1/p' "$CRAC_SOURCE_DIR/src/image/image.h")
		echo "$output" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["restorable"] and d["version"]==int(sys.argv[1]) and len(d["threads"])==1 and any(m["kind"]=="heap" for m in d["mappings"])' "$V"
	fi
	run "$CRAC" inspect "$T/nothing"
	[ "$status" -eq 1 ]
	run "$CRAC" inspect
	[ "$status" -eq 2 ]
}

@test "threads: 8 workers with mutexes, condvars, TLS, robust mutex continue and join" {
	run clean timeout 60 "$THREADS" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	run "$CRAC" inspect "$T/img"
	echo "$output" | grep -q "^threads: *9"
	for i in 1 2 3; do
		run clean timeout 30 "$CRAC" restore "$T/img"
		echo "$output"
		[ "$status" -eq 0 ]
		echo "$output" | grep -q "^restored ok: 8 threads joined"
	done
}

@test "threads: checkpoint requested from a non-main thread" {
	run clean timeout 60 "$THREADS" "$T/img" --from-thread
	echo "$output"
	[ "$status" -eq 0 ]
	run clean timeout 30 "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^restored ok: 8 threads joined"
}

@test "unprivileged: checkpoint and restore as nobody" {
	need_nobody "$COUNTER"
	chown 65534:65534 "$T"
	run clean $NOBODY timeout 30 "$COUNTER" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	BEFORE="$(echo "$output" | sed -n 's/^before: checksum=//p')"
	[ "$(stat -c %u "$T/img/pages")" = 65534 ]
	run clean $NOBODY timeout 30 "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^restored: checksum=$BEFORE"
	echo "$output" | grep -q "^dontneed ok"
	# threads as nobody: fresh tids (no clone3 set_tid without privilege);
	# a worker stopped in the robust mutex's lock code with its old tid in
	# hand once took the lock under it after the restore: its unlock failed
	# (EPERM), the others waited forever (image_robust_tid.bats)
	run clean $NOBODY timeout 30 "$THREADS" "$T/img2"
	echo "$output"
	[ "$status" -eq 0 ]
	run clean $NOBODY timeout 30 "$CRAC" restore "$T/img2"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^restored ok: 8 threads joined"
}

@test "keep-running: the original continues; restores get the state of the checkpoint" {
	run clean timeout 60 "$COUNTER" "$T/img" 4 keep
	echo "$output"
	[ "$status" -eq 0 ]
	BEFORE="$(echo "$output" | sed -n 's/^before: checksum=//p')"
	AFTER="$(echo "$output" | sed -n 's/^continued: checksum=\([0-9a-f]*\) .*/\1/p')"
	[ -n "$AFTER" ]
	[ "$AFTER" != "$BEFORE" ]          # the original changed its state afterwards
	for i in 1 2; do
		run clean timeout 60 "$CRAC" restore "$T/img"
		echo "$output"
		[ "$status" -eq 0 ]
		echo "$output" | grep -q "^restored: checksum=$BEFORE pid_changed=yes"
	done
}
