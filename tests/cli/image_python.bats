#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# An unmodified system program (python3) started with `crac run` is
# checkpointed from outside through its control endpoint with the image
# engine (`crac checkpoint --engine image --image-dir DIR PID`), exits, and
# `crac restore DIR` brings it back: its loop goes on from where it was,
# with the dictionary it built before the checkpoint.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-py.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	mkdir -m 0700 "$CRAC_CONTROL_DIR"
	command -v python3 >/dev/null || skip "no python3"
}

teardown() {
	[ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
	rm -rf "$T"
}

@test "python3 checkpointed through the control endpoint and restored twice" {
	cat >"$T/loop.py" <<'PY'
import sys, time
d = {i: str(i) * 3 for i in range(200000)}
print("ready", len(d), flush=True)
n = 0
while True:
    n += 1
    time.sleep(0.01)
    if n % 50 == 0:
        print("tick", n, len(d), sum(map(len, d.values())), flush=True)
PY
	(
		close_fds
		exec "$CRAC" run -- python3 "$T/loop.py" >"$T/out" 2>&1
	) &
	pid=$!
	wait_line "$T/out" "^tick 50 " 5
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	# the original exits once the image is written
	wait_gone "$pid" 5
	pid=
	last=$(sed -n 's/^tick \([0-9]*\) .*/\1/p' "$T/out" | tail -1)
	sum=$(sed -n 's/^tick [0-9]* 200000 \([0-9]*\)$/\1/p' "$T/out" | head -1)
	[ -n "$sum" ]
	for i in 1 2; do
		run clean timeout 1.5 "$CRAC" restore "$T/img"
		echo "$output"
		[ "$status" -eq 124 ]   # still looping when timeout stops it
		first=$(echo "$output" | sed -n 's/^tick \([0-9]*\) .*/\1/p' | head -1)
		[ "$first" -gt "$last" ]
		echo "$output" | grep -q "^tick [0-9]* 200000 $sum\$"
		! echo "$output" | grep -qi "error\|traceback" || false
	done
}
