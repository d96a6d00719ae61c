#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `crac checkpoint PID --timeout` of a process whose libcrac sends no
# progress records (here tests/progs/control_fake with CONTROL_FAKE_HANG=1:
# it never answers): crac guesses the phase from outside, from the image
# engine's temporary DIR.tmp-PID-* next to the image (src/cli/cmd_checkpoint.c
# phase_of). Those looks (the listing of DIR's parent, the size of the
# temporary) are made after --timeout expired, on a file system that may
# not answer (simulated by CRAC_TEST_SLOW_FS=OP:MS, src/image/dir.c): each
# is given up on after 2 s, naming the path.

bats_require_minimum_version 1.5.0

load common
load stuck_common

setup() {
	common_setup phasestuck --open --control CRAC_TEST_SYNC_GRACE_MS CRAC_TEST_SLOW_FS
	FAKE="$CRAC_BUILD_DIR/tests/control_fake"
	spawn "$T/fake.out" "$T/fake.err" env CONTROL_FAKE_HANG=1 "$FAKE" "$T/ctl" self
	pid=$SPAWNED
	PIDS+=("$pid")
	wait_line "$T/fake.out" '^ready' 5
}

teardown() {
	common_teardown
}

# checkpoint [VAR=VALUE...]: crac checkpoint --timeout 1s of the fake,
# with the image in $T/img; $status, $stderr, $ms (how long it took)
checkpoint() {
	local t0
	t0=$(date +%s%N)
	run --separate-stderr timeout -k 5 60 env "$@" "$CRAC" checkpoint --engine image --image-dir "$T/img" \
		--timeout 1s "$pid"
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status ($ms ms): $output / $stderr"
}

@test "no progress records, a file system that answers: the temporary's size is said" {
	mkdir "$T/img.tmp-$pid-1-abcdef"
	head -c 3145728 /dev/urandom >"$T/img.tmp-$pid-1-abcdef/pages"
	checkpoint CRAC_TEST_NONE=1
	[ "$status" -eq 1 ]
	[[ "$stderr" =~ "no answer after 1.0 s (--timeout); it was writing the image: $T/img.tmp-$pid-1-abcdef holds "[3-9]\.[0-9]" MiB so far. The checkpoint goes on" ]]
}

@test "no progress records, the listing of DIR's parent does not return: given up after 2 s naming the directory" {
	checkpoint CRAC_TEST_SLOW_FS=list:600000
	[ "$status" -eq 1 ]
	[[ "$stderr" =~ "no answer after 1.0 s (--timeout); it was in a phase crac could not tell (the listing of $T did not return after "[0-9]+" ms (crac checkpoint's look after --timeout, 2000 ms): its file system does not answer; given up). The checkpoint goes on" ]]
	[ "$ms" -lt 10000 ]
}

@test "no progress records, the size of the temporary cannot be taken: given up after 2 s naming the temporary" {
	mkdir "$T/img.tmp-$pid-1-abcdef"
	checkpoint CRAC_TEST_SLOW_FS=du:600000
	[ "$status" -eq 1 ]
	[[ "$stderr" =~ "no answer after 1.0 s (--timeout); it was writing the image into $T/img.tmp-$pid-1-abcdef (how far it got is not known: the look at the files of $T/img.tmp-$pid-1-abcdef did not return after "[0-9]+" ms (crac checkpoint's look after --timeout, 2000 ms): its file system does not answer; given up). The checkpoint goes on" ]]
	[ "$ms" -lt 10000 ]
}
