#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The thread-group leader of a restored process runs the program's original
# main thread, whichever thread took the checkpoint. An external checkpoint
# (`crac checkpoint PID`) runs on the control endpoint's thread; before the
# fix the restored leader was that thread, it exited once the checkpoint
# call was done and left the process <defunct>: /proc/PID/maps empty, and a
# second checkpoint failing with ESRCH.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/thr_leader"
	T="$(mktemp -d /tmp/crac-bats-leader.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	mkdir -m 0700 "$CRAC_CONTROL_DIR"
	unset CRAC_ENGINE CRAC_IMAGE_DIR CRAC_POLICIES
	require_image_engine
	pids=()
}

teardown() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$T"
}

# bg OUT CMD...: starts CMD in the background with only fds 0-2 open (see
# clean), stdout and stderr to OUT; its pid (the one of CMD) in $bgpid
bg() {
	spawn "$1" "$1" "${@:2}"
	bgpid=$SPAWNED
	pids+=("$bgpid")
}

# wait_tick FILE N: until the main thread printed tick N or later
wait_tick() {
	for _ in $(seq 200); do
		local last
		last=$(sed -n 's/^tick \([0-9]*\) .*/\1/p' "$1" | tail -1)
		[ -n "$last" ] && [ "$last" -ge "$2" ] && return 0
		sleep 0.02
	done
	echo "no tick $2 in $1:"; cat "$1"
	return 1
}

# checkpoint PID DIR: external checkpoint; the process exits once written
checkpoint() {
	run "$CRAC" checkpoint --engine image --image-dir "$2" "$1"
	echo "$output"
	[ "$status" -eq 0 ]
	wait_gone "$1" 5
}

# check_leader PID OUT SIGBLK: the restored process is alive and its leader
# is the main thread, with signal mask SIGBLK
check_leader() {
	local pid=$1 out=$2
	wait_tick "$out" $(( $(sed -n 's/^tick \([0-9]*\) .*/\1/p' "$out" | tail -1) + 3 ))
	stat=$(ps -o stat= -p "$pid")
	echo "stat: $stat"
	[ -n "$stat" ]
	[[ "$stat" != Z* ]]
	grep -q "\[stack\]" "/proc/$pid/maps"
	[ -n "$(tr '\0' ' ' <"/proc/$pid/cmdline")" ]
	[ "$(cat "/proc/$pid/task/$pid/comm")" = thr-main ]
	# the main thread itself says it is the leader
	tail -1 "$out" | grep -q "leader=1\( \|$\)"
	# the main thread's signal mask is its own (not the restore loader's)
	[ "$(sed -n 's/^SigBlk:[[:space:]]*//p' "/proc/$pid/task/$pid/status")" = "$3" ]
	# every thread is back (main, worker, control endpoint)
	[ "$(ls "/proc/$pid/task" | wc -l)" -ge 3 ]
	# the control endpoint answers (it sees the process)
	run "$CRAC" check "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "external checkpoint: the restored leader is the main thread, and it checkpoints again" {
	bg "$T/out" "$CRAC" run -- "$PROG"
	pid=$bgpid
	wait_tick "$T/out" 5
	[ "$(cat "/proc/$pid/task/$pid/comm")" = thr-main ]
	checkpoint "$pid" "$T/img1"

	bg "$T/out1" "$CRAC" restore "$T/img1"
	r1=$bgpid
	wait_tick "$T/out1" 1
	check_leader "$r1" "$T/out1" 0000000000000000

	# a second external checkpoint of the restored process, restored again
	checkpoint "$r1" "$T/img2"
	bg "$T/out2" "$CRAC" restore "$T/img2"
	r2=$bgpid
	wait_tick "$T/out2" 1
	check_leader "$r2" "$T/out2" 0000000000000000
	# the tick count goes on from where the second checkpoint was
	last1=$(sed -n 's/^tick \([0-9]*\) .*/\1/p' "$T/out1" | tail -1)
	first2=$(sed -n 's/^tick \([0-9]*\) .*/\1/p' "$T/out2" | head -1)
	[ "$first2" -gt 5 ]
	[ "$first2" -le $((last1 + 1)) ]
	! grep -qi "error\|failed" "$T/out1" "$T/out2" || false
}
