#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The image directory's own operations on a file system that does not
# answer (an NFS or FUSE server that stopped answering), simulated by
# CRAC_TEST_SLOW_FS=OP:MS (src/image/dir.c: the operation first sleeps MS
# ms): the fsync of the parent in the commit step and the removal of the
# unfinished image of a failed checkpoint end at the checkpoint's deadline
# (CRAC_TEST_SYNC_GRACE_MS shortens the 30 s they wait at least), naming
# the operation and the path; the program runs on.

bats_require_minimum_version 1.5.0

load common
load stuck_common

setup() {
	stuck_setup fsstuck
}

teardown() {
	common_teardown
}

@test "the commit's fsync of the parent does not return: given up at the deadline, the image is in place with a warning naming the directory" {
	start_prog stuck CRAC_TEST_SLOW_FS=fsync:600000 CRAC_TEST_SYNC_GRACE_MS=1000
	t0=$(date +%s%N)
	run timeout -k 5 60 "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running --deadline 1000 "$pid"
	t1=$(date +%s%N)
	echo "$status: $output"
	cat "$T/stuck.err"
	[ "$status" -eq 0 ]
	# said as a warning where the program says it (stderr), naming the directory
	grep -Eq "warning: .*fsync of $T did not return after [0-9]+ ms \(the checkpoint's deadline, and 1 s at least\): its file system does not answer; given up \(the rename may not survive a crash\)" "$T/stuck.err"
	[ $(((t1 - t0) / 1000000)) -lt 10000 ]
	# the image is in place and whole; the program runs on
	"$CRAC" inspect "$T/img" >/dev/null
	kill -0 "$pid"
	run "$CRAC" checkpoint --engine sim "$pid"
	[ "$status" -eq 0 ]
	# the helper given up on ended with its sleep: no child left
	[ -z "$(ps -o pid= --ppid "$pid")" ]
}

@test "a failed checkpoint whose unfinished image cannot be removed: given up at the deadline naming the file, the program runs on, the next checkpoint removes it" {
	start_prog good
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running "$pid"
	[ "$status" -eq 0 ]
	before="$(state "$T/img")"
	# the image's fsync does not return (the checkpoint fails), and
	# neither does the removal of its unfinished image
	start_prog stuck CRAC_TEST_SLOW_SYNC_MS=600000 CRAC_TEST_SLOW_FS=remove:600000 CRAC_TEST_SYNC_GRACE_MS=1000
	t0=$(date +%s%N)
	run timeout -k 5 60 "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running --deadline 1000 "$pid"
	t1=$(date +%s%N)
	echo "$status: $output"
	cat "$T/stuck.err"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "did not return after"
	grep -Eq "^crac: warning: image directory $T/img\.tmp-[^ ]* left in place: unlink $T/img\.tmp-[^ ]*/header did not return after [0-9]+ ms \(the checkpoint's deadline, and 1 s at least\): its file system does not answer; given up$" "$T/stuck.err"
	[ $(((t1 - t0) / 1000000)) -lt 10000 ]
	kill -0 "$pid"
	[ "$(state "$T/img")" = "$before" ]
	[ -z "$(ps -o pid= --ppid "$pid")" ]
	# the unfinished image is left; the next checkpoint to the same
	# directory (the file system answers again) removes it
	[ -n "$(ls -d "$T"/img.tmp-* 2>/dev/null)" ]
	kill "$pid"
	start_prog again
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$(ls -d "$T"/img.* 2>/dev/null)" ]
}

@test "CRAC_IMAGE_SYNC_HELPER=0: an fsync that does not return is given up at the deadline too, naming the file; the image in place is untouched" {
	start_prog good
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running "$pid"
	[ "$status" -eq 0 ]
	before="$(state "$T/img")"
	checkpoint_stuck CRAC_IMAGE_SYNC_HELPER=0 CRAC_TEST_SLOW_FS=fsync:600000
	[ "$status" -eq 1 ]
	echo "$output" | grep -Eq "fsync $T/img\.[^ ]*/(header|pages|) ?did not return after [0-9]+ ms \(the checkpoint's deadline, and 1 s at least\): the image's file system does not answer; given up, no image was written, the program goes on"
	# one fsync given up on (1 s), no other tried after it
	[ "$ms" -lt 10000 ]
	runs_on
	[ "$(state "$T/img")" = "$before" ]
	[ -z "$(ls -d "$T"/img.* 2>/dev/null)" ]
}

# The steps that run after the program's threads are released (and the
# stale-image cleanup before they are stopped) on the same file system:
# each ends at the deadline (the grace shortened to 1 s), naming the
# directory and the step; the program runs on, the image in place is kept.

@test "the commit's rename does not return: given up at the deadline naming both directories, the image in place kept, the program runs on" {
	start_prog good
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running "$pid"
	[ "$status" -eq 0 ]
	before="$(state "$T/img")"
	checkpoint_stuck CRAC_TEST_SLOW_FS=rename:600000
	[ "$status" -eq 1 ]
	echo "$output" | grep -Eq "rename $T/img\.tmp-[^ ]* to $T/img did not return after [0-9]+ ms \(the checkpoint's deadline, and 1 s at least\): its file system does not answer; given up \(it may still happen when the file system answers again\); the process goes on"
	[ "$ms" -lt 10000 ]
	runs_on
	[ "$(state "$T/img")" = "$before" ]
	# the unfinished image was removed (that file system answers)
	[ -z "$(ls -d "$T"/img.* 2>/dev/null)" ]
}

# given_up_before_writing OP TEXT [BOUND]: CRAC_TEST_SLOW_FS=OP:600000 fails
# the checkpoint in under 10 s, its output saying TEXT (a regex) "did not
# return after N ms (BOUND)" (default: the checkpoint's deadline and the
# grace of 1 s); nothing is written, the program runs on.
given_up_before_writing() {
	local bound="the checkpoint's deadline, and 1 s at least"
	[ $# -lt 3 ] || bound="$3"
	checkpoint_stuck CRAC_TEST_SLOW_FS="$1:600000"
	[ "$status" -eq 1 ]
	echo "$output" | grep -Eq "$2 did not return after [0-9]+ ms \($bound\): its file system does not answer; given up"
	[ "$ms" -lt 10000 ]
	runs_on
	[ -z "$(ls -d "$T"/img* 2>/dev/null)" ]
}

# The looks at the target when the checkpoint is set up (before the
# callbacks) end at the checkpoint's deadline itself: no grace.
@test "the target check does not return: given up naming the directory and the step, nothing written, the program runs on" {
	given_up_before_writing check "image directory $T/img: the check of the target \(looking at its parent directory\)" \
		"the checkpoint's deadline"
}

@test "the target check at the setup does not return, with the default grace of 30 s: given up at the deadline of 1 s" {
	start_prog stuck CRAC_TEST_SLOW_FS=check:600000
	t0=$(date +%s%N)
	run timeout -k 5 60 "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running --deadline 1000 "$pid"
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status: $output ($ms ms)"
	[ "$status" -eq 1 ]
	echo "$output" | grep -Eq "image directory $T/img: the check of the target \(looking at its parent directory\) did not return after [0-9]+ ms \(the checkpoint's deadline\): its file system does not answer; given up"
	[ "$ms" -lt 10000 ]
	runs_on
	[ -z "$(ls -d "$T"/img* 2>/dev/null)" ]
}

@test "the access check of the parent at the setup does not return: given up at the deadline naming the path" {
	given_up_before_writing access "image directory $T/img: access to $T" "the checkpoint's deadline"
}

@test "the listing for stale temporaries does not return: given up naming the directory, nothing written, the program runs on" {
	given_up_before_writing clean "the listing of $T for stale temporaries of img"
}

# crac flatten and crac start: their own looks at the file system end at
# their --timeout (not a fixed 30 s), naming the step, the path and the limit.

# flatten_given_up OP WHAT: crac flatten DIR OUT --timeout 1s with step OP
# of the file system not returning (CRAC_TEST_SLOW_FS) gives up within 10 s,
# saying "WHAT did not return ..." (WHAT an extended regular expression);
# neither OUT nor a temporary of it is left.
flatten_given_up() {
	local op=$1 what=$2 t0 ms
	t0=$(date +%s%N)
	run env CRAC_TEST_SLOW_FS=$op:600000 timeout -k 5 60 "$CRAC" flatten "$T/img" "$T/flat" --timeout 1s
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$op: $status: $output ($ms ms)"
	[ "$status" -eq 1 ]
	echo "$output" | grep -Eq "^crac: flatten $T/img: $what did not return after [0-9]+ ms \\(crac flatten --timeout, 1000 ms\\): its file system does not answer; given up$"
	[ "$ms" -lt 10000 ]
	[ ! -e "$T/flat" ]
	! ls -d "$T"/flat.tmp-* 2>/dev/null || false
}

@test "crac flatten --timeout 1s: a target check that does not return is given up after 1 s, naming the step and the path" {
	start_prog good
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running "$pid"
	[ "$status" -eq 0 ]
	flatten_given_up check "image directory $T/flat: the check of the target \\(looking at its parent directory\\)"
	flatten_given_up clean "the listing of $T for stale temporaries of flat"
	# it answers: flattened
	run "$CRAC" flatten "$T/img" "$T/flat" --timeout 1s
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "crac flatten --timeout 1s: its stats of DIR and OUT, the resolution of OUT's parent and the fsyncs of the new image that do not return are given up after 1 s, naming the step and the path" {
	start_prog good
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running "$pid"
	[ "$status" -eq 0 ]
	flatten_given_up realpath "the resolution of $T"
	flatten_given_up stat "the stat of $T/img"
	flatten_given_up lstat "the lstat of $T/flat"
	flatten_given_up fsync "writing $T/flat\\.tmp-[0-9]+-[0-9]+-[A-Za-z0-9]+/header: the fsync"
	# it answers: flattened
	run "$CRAC" flatten "$T/img" "$T/flat" --timeout 1s
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "crac start --timeout 1s: a cleanup of unfinished images that does not return is given up after 1 s with a warning; the program starts cold" {
	# an unfinished image of a writer that is gone
	mkdir -m 700 "$T/img.new-2147483646.tmp-2147483646-1-abcdef"
	t0=$(date +%s%N)
	run clean env CRAC_TEST_SLOW_FS=clean:600000 timeout -k 5 60 "$CRAC" start --image "$T/img" --timeout 1s \
		--checkpoint-after 1h -- sh -c 'echo cold run'
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status: $output ($ms ms)"
	[ "$status" -eq 0 ]
	echo "$output" | grep -Eq "^crac: start: warning: the cleanup of unfinished images of $T/img stopped: the listing of $T for stale temporaries of img\\.new-2147483646 did not return after [0-9]+ ms \\(crac start --timeout, 1000 ms\\): its file system does not answer; given up$"
	echo "$output" | grep -qx "cold run"
	[ "$ms" -lt 10000 ]
}

# crac run's and crac start's own looks at files (the policy file, the
# install paths of libcrac.so, PROG in PATH; crac start's listings of DIR's
# parent and its removals of unfinished images) on a file system that does
# not answer: bounded the same way (crac run: 30 s, CRAC_TEST_SYNC_GRACE_MS
# in tests; crac start: --timeout), naming the path and the time waited.

@test "crac run --policies: an access to the policy file that does not return is given up after crac run's limit, naming the path" {
	echo "allow fd" >"$T/pol"
	t0=$(date +%s%N)
	run clean env CRAC_TEST_SLOW_FS=access:600000 CRAC_TEST_SYNC_GRACE_MS=1000 timeout -k 5 60 \
		"$CRAC" run --policies "$T/pol" -- true
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status: $output ($ms ms)"
	[ "$status" -eq 2 ]
	echo "$output" | grep -Eq "^crac: policy file: access to $T/pol did not return after [0-9]+ ms \\(crac run's limit, 1000 ms\\): its file system does not answer; given up$"
	[ "$ms" -lt 10000 ]
	# a file system that answers: unchanged
	run clean "$CRAC" run --policies "$T/missing" -- true
	[ "$status" -eq 2 ]
	echo "$output" | grep -q "^crac: policy file $T/missing: No such file or directory$"
}

@test "crac run: an access to libcrac.so's install path that does not return is given up, naming the path; nothing runs" {
	t0=$(date +%s%N)
	run clean env CRAC_TEST_SLOW_FS=access:600000 CRAC_TEST_SYNC_GRACE_MS=1000 timeout -k 5 60 \
		"$CRAC" run -- sh -c 'echo ran'
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status: $output ($ms ms)"
	[ "$status" -eq 2 ]
	echo "$output" | grep -Eq "^crac: the search for libcrac.so stopped: access to /.*/libcrac\\.so did not return after [0-9]+ ms \\(crac run's limit, 1000 ms\\): its file system does not answer; given up$"
	! echo "$output" | grep -q "^ran$"
	[ "$ms" -lt 10000 ]
}

@test "crac run: the resolution of libcrac.so's path that does not return is given up, naming the path; nothing runs" {
	t0=$(date +%s%N)
	run clean env CRAC_TEST_SLOW_FS=librealpath:600000 CRAC_TEST_SYNC_GRACE_MS=1000 timeout -k 5 60 \
		"$CRAC" run -- sh -c 'echo ran'
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status: $output ($ms ms)"
	[ "$status" -eq 2 ]
	echo "$output" | grep -Eq "^crac: the search for libcrac.so stopped: the resolution of /.*/libcrac\\.so did not return after [0-9]+ ms \\(crac run's limit, 1000 ms\\): its file system does not answer; given up$"
	! echo "$output" | grep -q "^ran$"
	[ "$ms" -lt 10000 ]
}

@test "crac restore: the search for the restore loader that does not return is given up after crac restore's limit, naming the path" {
	start_prog good
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running "$pid"
	[ "$status" -eq 0 ]
	t0=$(date +%s%N)
	# (the tool's restore: `crac restore DIR` itself is the loader, src/loader/front.c)
	run clean env CRAC_TEST_SLOW_FS=loader:600000 CRAC_TEST_SYNC_GRACE_MS=1000 timeout -k 5 60 \
		"$CRAC_BUILD_DIR/crac-cli" restore "$T/img"
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status: $output ($ms ms)"
	[ "$status" -eq 2 ]
	echo "$output" | grep -Eq "^crac: access to /[^ ]*/crac-loader did not return after [0-9]+ ms \\(crac restore's limit, 1000 ms\\): its file system does not answer; given up$"
	[ "$ms" -lt 10000 ]
}

@test "crac start --timeout 1s: listings of DIR's parent that do not return are given up with warnings naming it; the program starts cold" {
	t0=$(date +%s%N)
	run clean env CRAC_TEST_SLOW_FS=list:600000 timeout -k 5 60 "$CRAC" start --image "$T/img" --timeout 1s \
		--checkpoint-after 1h -- sh -c 'echo cold run'
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status: $output ($ms ms)"
	[ "$status" -eq 0 ]
	# DIR is missing: the search for an image a killed writer moved aside
	echo "$output" | grep -Eq "^crac: start: warning: $T/img is missing, and the search for an image moved aside stopped: the listing of $T did not return after [0-9]+ ms \\(crac start --timeout, 1000 ms\\): its file system does not answer; given up$"
	# the writer's cleanup of unfinished images
	echo "$output" | grep -Eq "^crac: start: warning: the cleanup of unfinished images of $T/img stopped: the listing of $T did not return after [0-9]+ ms \\(crac start --timeout, 1000 ms\\): its file system does not answer; given up$"
	echo "$output" | grep -qx "cold run"
	[ "$ms" -lt 10000 ]
}

@test "crac start --timeout 1s: the removal of an unfinished image that does not return is given up with a warning naming the file; the program starts cold, the next start removes it" {
	# an image a crac start that is gone never put in place
	mkdir -m 700 "$T/img.new-2147483646"
	: >"$T/img.new-2147483646/header"
	t0=$(date +%s%N)
	run clean env CRAC_TEST_SLOW_FS=remove:600000 timeout -k 5 60 "$CRAC" start --image "$T/img" --timeout 1s \
		--checkpoint-after 1h -- sh -c 'echo cold run'
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status: $output ($ms ms)"
	[ "$status" -eq 0 ]
	echo "$output" | grep -Eq "^crac: start: warning: image directory $T/img\\.new-2147483646 left in place: unlink $T/img\\.new-2147483646/header did not return after [0-9]+ ms \\(crac start --timeout, 1000 ms\\): its file system does not answer; given up$"
	echo "$output" | grep -qx "cold run"
	[ "$ms" -lt 10000 ]
	[ -d "$T/img.new-2147483646" ]
	run clean timeout -k 5 60 "$CRAC" start --image "$T/img" --timeout 1s --checkpoint-after 1h -- sh -c 'echo cold run'
	echo "$status: $output"
	[ "$status" -eq 0 ]
	[ ! -e "$T/img.new-2147483646" ]
	echo "$output" | grep -q "removed 1 unfinished image"
}

@test "crac start --timeout 1s: a search of PATH for PROG that does not return is given up with a warning naming the path" {
	t0=$(date +%s%N)
	run clean env CRAC_TEST_SLOW_FS=access:600000 timeout -k 5 60 "$CRAC" start --image "$T/img" --timeout 1s \
		--checkpoint-after 1h -- sh -c 'echo cold run'
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status: $output ($ms ms)"
	echo "$output" | grep -Eq "^crac: start: warning: the search for sh in PATH stopped: access to [^ ]*/sh did not return after [0-9]+ ms \\(crac start --timeout, 1000 ms\\): its file system does not answer; given up$"
	# libcrac.so's install paths are looked at the same way: not found in
	# time, nothing runs
	echo "$output" | grep -Eq "^crac: the search for libcrac.so stopped: access to /.*/libcrac\\.so did not return after [0-9]+ ms \\(crac start --timeout, 1000 ms\\)"
	[ "$status" -eq 2 ]
	! echo "$output" | grep -q "^cold run$"
	[ "$ms" -lt 10000 ]
}
