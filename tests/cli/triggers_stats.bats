#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# --stats on `crac run` and `crac start`: the checkpoint a trigger started
# prints its figures in one line, as `crac checkpoint --stats` does (issue
# 13 item 5); without a trigger `crac run --stats` is refused.

load common
load start_common

setup() {
	T="$(mktemp -d /tmp/crac-bats-tstats.XXXXXX)"
	start_setup
	require_image_engine
}

teardown() { start_teardown; }

STATS_RE='^crac: checkpoint stats: [0-9]+ pages scanned, [0-9]+ stored, [0-9]+ zero pages skipped, [0-9.]+ MiB written \([0-9]+ threads?, [0-9]+ mappings\);.* total [0-9.]+ ms$'

@test "crac run --stats: the triggered checkpoint's figures in one line; without --stats none" {
	bg run "$CRAC" run --stats --keep-running --checkpoint-after 300ms --checkpoint-to "$T/img" -- "$SERVER" "$T/d"
	wait_for grep -q "image written to $T/img" "$T/run.err"
	wait_for grep -q "checkpoint stats" "$T/run.err"
	kill -TERM "$pid"
	wait "$pid" || true
	cat "$T/run.err"
	[ "$(grep -cE "$STATS_RE" "$T/run.err")" -eq 1 ]
	bg plain "$CRAC" run --keep-running --checkpoint-after 300ms --checkpoint-to "$T/img2" -- "$SERVER" "$T/d2"
	wait_for grep -q "image written to $T/img2" "$T/plain.err"
	sleep 0.3
	kill -TERM "$pid"
	wait "$pid" || true
	! grep -q "checkpoint stats" "$T/plain.err" || false
}

@test "crac run --stats without a trigger is refused; crac start --stats prints the warm-up checkpoint's figures" {
	run "$CRAC" run --stats -- true
	[ "$status" -eq 2 ]
	[[ "$output" == *"run --stats is for the checkpoints of a trigger"* ]]
	bg start "$CRAC" start --stats --image "$T/simg" --checkpoint-after 300ms -- "$SERVER" "$T/d"
	wait_for grep -q "written to $T/simg" "$T/start.err"
	wait_for grep -q "checkpoint stats" "$T/start.err"
	kill -TERM "$pid"
	wait "$pid" || true
	cat "$T/start.err"
	[ "$(grep -cE "$STATS_RE" "$T/start.err")" -eq 1 ]
}
