#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# crac flatten over a file system that does not answer (an NFS or FUSE
# server gone), simulated by CRAC_TEST_SLOW_FS=OP:MS (the step first sleeps
# MS ms): the opens and reads of the chain's images, the creation of the
# temporary, the page copy and the read back are made by a child that
# flatten watches (src/cli/watch.c); a step that lasts longer than
# --timeout is given up on, naming the step and the file, the temporary is
# removed and the chain is left as it was. (image/dir.c's own bounded looks
# of flatten: robust_fs_stuck.bats.)

bats_require_minimum_version 1.5.0

load common

setup() {
	common_setup flatstuck --open CRAC_IMAGE_STATS CRAC_LOADER CRAC_LAZY_PREFETCH CRAC_LOG CRAC_IMAGE_COMPRESS \
		CRAC_IMAGE_INCREMENTAL CRAC_TEST_SLOW_FS CRAC_TEST_SYNC_GRACE_MS
	INCR="$CRAC_BUILD_DIR/tests/image_incr"
	require_image_engine
}

teardown() { common_teardown; }

# chain: $T/i0 (full), $T/i1 and $T/i2 (incremental), by image_incr.
chain() {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$INCR" "$T/i0" "$T/i1" "$T/i2" 8
	echo "chain: status $status, stdout: $output, stderr: $stderr"
	[ "$status" -eq 0 ]
}

# stuck OP WHAT [ARGS...]: flatten $T/i2 to $T/flat --timeout 1s ARGS with
# step OP held for 600 s: fails within 10 s, one line naming WHAT (an
# extended regular expression) and the limit, nothing at $T/flat, no
# temporary left, the chain untouched, no worker left behind.
stuck() {
	local op=$1 what=$2 t0 ms before
	shift 2
	before="$(chain_state)"
	t0=$(date +%s%N)
	run --separate-stderr env CRAC_TEST_SLOW_FS=$op:600000 timeout -k 5 60 "$CRAC" flatten "$T/i2" "$T/flat" \
		--timeout 1s "$@"
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$op: $status: [$output] [$stderr] ($ms ms)"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$(echo "$stderr" | wc -l)" -eq 1 ]
	echo "$stderr" | grep -Eq "^crac: flatten $T/i2: $what did not return after [0-9]+ ms \\(crac flatten --timeout, 1000 ms\\): its file system does not answer; given up$"
	[ "$ms" -lt 10000 ]
	[ ! -e "$T/flat" ]
	[ -z "$(ls "$T" | grep "\.tmp-")" ]
	[ "$(chain_state)" = "$before" ]
	# the worker given up on is gone (killed in its sleep)
	! pgrep -x -f "$CRAC flatten $T/i2 $T/flat --timeout 1s.*" >/dev/null || false
}

# flattened: a flatten that answers writes $T/flat, a whole image
flattened() {
	run "$CRAC" flatten "$T/i2" "$T/flat" --timeout 1s "$@"
	echo "$output"
	[ "$status" -eq 0 ]
	"$CRAC" inspect "$T/flat" >/dev/null
	[ -z "$(ls "$T" | grep "\.tmp-")" ]
}

@test "flatten --timeout 1s: an open or read of the chain's images that does not return is given up naming the image; the chain is untouched" {
	chain
	stuck image "the open of the image $T/i2 \\(its directory, header and pages files\\)"
	stuck chain "the open of the images below $T/i2 \\($T/i2/\\.\\./i1 and those below it: their directories, headers and pages files\\)"
	stuck pageread "the read of chunk #0 of $T/i2/pages"
	flattened
}

@test "flatten --timeout 1s: the creation of its temporary, the page copy and the read back that do not return are given up naming the file; no temporary is left" {
	chain
	stuck mkdtemp "the creation of the temporary image next to $T/flat"
	stuck pagewrite "the write of $T/flat\\.tmp-[0-9]+-[0-9]+-[A-Za-z0-9]+/pages \\(at byte 0\\)"
	stuck readback "the read back of $T/flat\\.tmp-[0-9]+-[0-9]+-[A-Za-z0-9]+/header"
	# with --compress too (the write is watched after the compression)
	stuck pagewrite "the write of $T/flat\\.tmp-[0-9]+-[0-9]+-[A-Za-z0-9]+/pages \\(at byte 0\\)" --compress=19
	flattened
}

@test "flatten over an existing OUT whose page copy does not return: OUT is kept as it was" {
	chain
	run "$CRAC" flatten "$T/i1" "$T/flat"
	[ "$status" -eq 0 ]
	cp "$T/flat/header" "$T/flat.header"
	for op in pageread pagewrite readback; do
		run env CRAC_TEST_SLOW_FS=$op:600000 timeout -k 5 60 "$CRAC" flatten "$T/i2" "$T/flat" --timeout 1s
		echo "$op: $status: $output"
		[ "$status" -eq 1 ]
		echo "$output" | grep -q "did not return after"
		cmp "$T/flat/header" "$T/flat.header"
		[ -z "$(ls "$T" | grep "\.tmp-")" ]
	done
	"$CRAC" inspect "$T/flat" >/dev/null
}

@test "flatten --timeout 0: no limit, no watcher; a slow step only makes it slower" {
	chain
	t0=$(date +%s%N)
	run env CRAC_TEST_SLOW_FS=image:1500 timeout -k 5 60 "$CRAC" flatten "$T/i2" "$T/flat" --timeout 0
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status: $output ($ms ms)"
	[ "$status" -eq 0 ]
	[ "$ms" -ge 1500 ]
	"$CRAC" inspect "$T/flat" >/dev/null
}

@test "flatten over an existing OUT whose previous image's removal does not return: OUT written, the previous image left is said" {
	chain
	run "$CRAC" flatten "$T/i1" "$T/flat"
	[ "$status" -eq 0 ]
	run --separate-stderr env CRAC_TEST_SLOW_FS=remove:600000 timeout -k 5 60 "$CRAC" flatten "$T/i2" "$T/flat" \
		--timeout 1s
	echo "$status: [$output] [$stderr]"
	[ "$status" -eq 0 ]
	"$CRAC" inspect "$T/flat" >/dev/null
	left=$(ls "$T" | grep "^flat\.tmp-")
	[ -n "$left" ]
	echo "$stderr" | grep -q "^crac: flatten $T/i2: warning: $T/flat written, but the previous image (now $T/$left) could not be removed: .*did not return after"
}
