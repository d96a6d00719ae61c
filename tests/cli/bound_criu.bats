#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The criu engine's looks at the target's file system at the setup of a
# checkpoint (src/engines/criu.c: target_check, clean_stale) on a file
# system that does not answer, for real (bound_common.bash: a FUSE mount
# whose server never answers): each is given up on at the checkpoint's
# deadline, the report naming the path and the step, instead of keeping
# the checkpoint (and the program) waiting for ever. Before, the lstat of
# DIR and the open of a stale temporary never returned. A fake criu (its
# check passes, its dump fails) is enough: nothing is dumped.

bats_require_minimum_version 1.5.0

load common
load bound_common

setup() {
	COUNTER="$CRAC_BUILD_DIR/tests/criu_counter"
	T="$(mktemp -d /tmp/crac-bats-boundcriu.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_CRIU_OPTS CRAC_TEST_SLOW_FS
	unset CRAC_TEST_SYNC_GRACE_MS
	REAL_CRIU="${CRAC_CRIU:-}"
	FROZEN=()
	FROZEN_PIDS=()
	cat >"$T/criu" <<'EOS'
#!/bin/sh
[ "$1" = check ] && exit 0
exit 1
EOS
	chmod 755 "$T/criu"
	export CRAC_CRIU="$T/criu"
}

teardown() {
	thaw_mounts
	rm -rf "$T"
}

# checkpoint_stuck: criu_counter's checkpoint into $T/img (deadline 10 s,
# the default), 40 s at most: $status, $output (printed), $ms.
checkpoint_stuck() {
	local t0
	t0=$(date +%s%N)
	run clean timeout -k 5 40 "$COUNTER" criu "$T/img" </dev/null
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status ($ms ms): $output"
}

@test "criu engine: a stale temporary that does not answer is given up on at the deadline, naming it and the step" {
	# a temporary of a writer that is gone (pid 999999, start time 1)
	# on a file system that does not answer
	freeze_mount "$T/img.tmp-999999-1-abcdef"
	# one of a gone writer that answers, next to it, holding something
	# CRIU does not write: kept
	mkdir "$T/img.tmp-999998-1-abcdef"
	touch "$T/img.tmp-999998-1-abcdef/dump.log" "$T/img.tmp-999998-1-abcdef/notes.txt"
	checkpoint_stuck
	[ "$status" -eq 1 ]
	[ "$ms" -lt 30000 ]
	echo "$output" | grep -Eq "the stale temporary $T/img\.tmp-999999-1-abcdef of $T/img \(its open\) did not return after [0-9]+ ms \(the checkpoint's deadline\): its file system does not answer; given up"
	echo "$output" | grep -q "^FAIL: crac_checkpoint_restore returned"
	# no image, nothing written next to it (names only: a look at the
	# mount point would wait as well)
	[ ! -e "$T/img" ]
	names=("$T"/img.tmp-*)
	[ "${names[*]}" = "$T/img.tmp-999998-1-abcdef $T/img.tmp-999999-1-abcdef" ]
}

@test "criu engine: the search for criu in a directory of PATH that does not answer is given up on at the deadline, naming the path" {
	freeze_mount "$T/bin"
	unset CRAC_CRIU
	t0=$(date +%s%N)
	run clean timeout -k 5 40 env PATH="$T/bin:$PATH" "$COUNTER" criu "$T/img" </dev/null
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status ($ms ms): $output"
	[ "$status" -eq 1 ]
	[ "$ms" -lt 30000 ]
	echo "$output" | grep -Eq "engine criu: .*the search for CRIU stopped: access to $T/bin/criu did not return after [0-9]+ ms \(the checkpoint's deadline\): its file system does not answer; given up"
}

@test "criu engine: the lstat of DIR that does not answer is given up on at the deadline, naming DIR" {
	freeze_mount "$T/img"
	checkpoint_stuck
	[ "$status" -eq 1 ]
	[ "$ms" -lt 30000 ]
	echo "$output" | grep -Eq "image directory $T/img: the lstat of $T/img did not return after [0-9]+ ms \(the checkpoint's deadline\): its file system does not answer; given up"
	names=("$T"/img.*)
	[ "${names[*]}" = "$T/img.*" ]
}

@test "criu engine: the look for the marker of DIR that does not answer is given up on at the deadline, naming the marker" {
	mkdir "$T/img"
	CRAC_TEST_SLOW_FS=criu-marker:600000 checkpoint_stuck
	[ "$status" -eq 1 ]
	[ "$ms" -lt 30000 ]
	echo "$output" | grep -Eq "image directory $T/img: the lstat of $T/img/crac-criu did not return after [0-9]+ ms \(the checkpoint's deadline\): its file system does not answer; given up"
}

@test "criu engine: the listing for stale temporaries that does not answer is given up on at the deadline, naming the directory" {
	CRAC_TEST_SLOW_FS=list:600000 checkpoint_stuck
	[ "$status" -eq 1 ]
	[ "$ms" -lt 30000 ]
	echo "$output" | grep -Eq "the look for stale temporaries of $T/img: the listing of $T did not return after [0-9]+ ms \(the checkpoint's deadline\): its file system does not answer; given up"
}

@test "criu engine: the removal of its unfinished image that does not return is given up on, said as a warning naming it; the failure is reported as before" {
	run clean timeout -k 5 40 env CRAC_TEST_SLOW_FS=criu-remove:600000 CRAC_TEST_SYNC_GRACE_MS=1000 \
		"$COUNTER" criu "$T/img" </dev/null
	echo "$status: $output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -Eq "^crac: warning: the unfinished image $T/img\.tmp-[0-9]+-[0-9]+-[A-Za-z0-9]{6} was not removed: the removal of $T/img\.tmp-[0-9]+-[0-9]+-[A-Za-z0-9]{6} did not return after [0-9]+ ms \(the checkpoint's deadline, and 1 s at least\): its file system does not answer; given up$"
	echo "$output" | grep -q "criu dump failed (exit status 1)"
}

# real_criu: the CRIU given by the caller (CRAC_CRIU), root; else skipped.
real_criu() {
	[ -n "$REAL_CRIU" ] || skip "CRAC_CRIU is not set: point it at a CRIU >= 4.1 and run as root"
	[ -x "$REAL_CRIU" ] || skip "CRAC_CRIU=$REAL_CRIU is not an executable"
	[ "$(id -u)" -eq 0 ] || skip "CRIU needs root here"
	"$REAL_CRIU" check >/dev/null 2>&1 || skip "CRAC_CRIU=$REAL_CRIU fails criu check"
	export CRAC_CRIU="$REAL_CRIU"
}

@test "criu engine (a real CRIU): the fsync of the image's files that does not return is given up on, naming the temporary; no image, the process goes on" {
	real_criu
	run clean timeout -k 5 40 env CRAC_TEST_SLOW_FS=criu-fsync:600000 CRAC_TEST_SYNC_GRACE_MS=1000 \
		"$COUNTER" criu "$T/img" </dev/null
	echo "$status: $output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -Eq "the fsync of $T/img\.tmp-[0-9]+-[0-9]+-[A-Za-z0-9]{6} did not return after [0-9]+ ms \(the checkpoint's deadline, and 1 s at least\): its file system does not answer; given up; no image was written to $T/img, the process goes on"
	[ ! -e "$T/img" ]
	names=("$T"/img.*)
	[ "${names[*]}" = "$T/img.*" ]
}

@test "criu engine (a real CRIU): the write of the marker that does not return is given up on, naming it; no image, the process goes on" {
	real_criu
	run clean timeout -k 5 40 env CRAC_TEST_SLOW_FS=write:600000 CRAC_TEST_SYNC_GRACE_MS=1000 \
		"$COUNTER" criu "$T/img" </dev/null
	echo "$status: $output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -Eq "the write of $T/img\.tmp-[0-9]+-[0-9]+-[A-Za-z0-9]{6}/crac-criu \(its creation\) did not return after [0-9]+ ms \(the checkpoint's deadline, and 1 s at least\): its file system does not answer; given up; no image was written to $T/img, the process goes on"
	[ ! -e "$T/img" ]
}

@test "criu engine (a real CRIU): with a file system that answers, the image is written and restores (the bounded marker, fsyncs and removal)" {
	real_criu
	run clean "$COUNTER" criu "$T/img" </dev/null
	echo "$status: $output"
	[ "$status" -eq 0 ]
	[ -f "$T/img/crac-criu" ]
	head -1 "$T/img/crac-criu" | grep -qx "crac-criu-image 1"
	[ "$(stat -c %a "$T/img/crac-criu")" = 600 ]
	[ -z "$(find "$T/img" -type f ! -perm 600)" ]
	run clean "$CRAC_BUILD_DIR/crac" restore "$T/img" </dev/null
	echo "$status: $output"
	echo "$output" | grep -q "^restored: checksum="
	# a second checkpoint replaces it (the previous image removed)
	run clean "$COUNTER" criu "$T/img" </dev/null
	[ "$status" -eq 0 ]
	names=("$T"/img*)
	[ "${names[*]}" = "$T/img" ]
}
