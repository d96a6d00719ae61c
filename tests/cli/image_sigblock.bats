#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Threads that block SIGRTMAX-1, the signal the image engine stops threads
# with (redis's allocator thread and one of node's threads do): a ptrace
# helper unblocks it, so the checkpoint takes as long as any other (before:
# it waited for the 10 s deadline and failed), and every thread's signal
# mask is exactly what it was, in the original and after restore. Where
# ptrace is refused the checkpoint fails at once, naming the thread.
# And a checkpoint given up at its deadline leaves no stop signal pending.
# Programs: tests/progs/thr_sigblock.c, thr_leader.c, thr_abort.c.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/thr_sigblock"
	LEADER="$CRAC_BUILD_DIR/tests/thr_leader"
	T="$(mktemp -d /tmp/crac-bats-sigblock.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
	require_image_engine
	pids=()
}

teardown() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$T"
}

# bg OUT CMD...: CMD in the background with only fds 0-2 open, output to
# OUT; its pid in $bgpid
bg() {
	spawn "$1" "$1" "${@:2}"
	bgpid=$SPAWNED
	pids+=("$bgpid")
}

# sigblk PID COMM: the SigBlk of PID's thread named COMM
sigblk() {
	for d in /proc/$1/task/*; do
		if [ "$(cat "$d/comm")" = "$2" ]; then
			sed -n 's/^SigBlk:[[:space:]]*//p' "$d/status"
			return 0
		fi
	done
	echo "no thread $2 in $1" >&2
	return 1
}

# checkpoint_ms OUTPUT: the time the checkpoint call took, in ms
checkpoint_ms() {
	echo "$1" | sed -n 's/^checkpoint: rc=[-0-9]* ms=\([0-9]*\)$/\1/p'
}

@test "threads that block the stop signal: quick checkpoint, masks kept in the original and after restore" {
	run clean timeout 30 "$PROG" "$T/img" --keep --linger
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^checkpoint: rc=1 "     # CRAC_CONTINUED
	ms=$(checkpoint_ms "$output")
	[ -n "$ms" ]
	[ "$ms" -lt 3000 ]                                 # the deadline is 10 s
	echo "$output" | grep -q "^masks ok$"
	echo "$output" | grep -q "^thread thr-sleeper: before=4000000000000000 after=4000000000000000$"
	echo "$output" | grep -q "^thread thr-waiter: before=4000000000000800 after=4000000000000800$"
	# blocked only inside ppoll(): the mask outside stays empty
	echo "$output" | grep -q "^thread thr-ppoll: before=0000000000000000 after=0000000000000000$"
	echo "$output" | grep -q "^thread thr-suspend: before=0000000000000200 after=0000000000000200$"

	bg "$T/out" "$CRAC" restore "$T/img"
	rpid=$bgpid
	wait_line "$T/out" "^masks ok$"
	cat "$T/out"
	grep -q "^restored pid=$rpid$" "$T/out"
	[ "$(sigblk "$rpid" thr-sleeper)" = 4000000000000000 ]
	[ "$(sigblk "$rpid" thr-waiter)" = 4000000000000800 ]
	[ "$(sigblk "$rpid" thr-plain)" = 0000000000000000 ]
}

@test "threads that block the stop signal, as nobody" {
	need_nobody "$PROG"
	chown 65534:65534 "$T"
	run clean timeout 30 $NOBODY "$PROG" "$T/img" --keep
	echo "$output"
	[ "$status" -eq 0 ]
	ms=$(checkpoint_ms "$output")
	[ -n "$ms" ]
	[ "$ms" -lt 3000 ]
	echo "$output" | grep -q "^masks ok$"
	run clean timeout 30 $NOBODY "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^restored pid="
	echo "$output" | grep -q "^thread thr-sleeper: before=4000000000000000 after=4000000000000000$"
	echo "$output" | grep -q "^masks ok$"
}

@test "ptrace refused: the checkpoint fails at once, naming the thread and why" {
	[ "$(id -u)" -eq 0 ] || skip "needs root (to drop CAP_SYS_PTRACE and still read /proc/self/pagemap)"
	command -v setpriv >/dev/null || skip "no setpriv"
	# without CAP_SYS_PTRACE, a process that is not dumpable cannot be
	# ptraced, not even by its own helper
	run clean timeout 30 setpriv --bounding-set -sys_ptrace "$PROG" "$T/img" --keep --undumpable
	echo "$output"
	[ "$status" -eq 1 ]
	ms=$(checkpoint_ms "$output")
	[ -n "$ms" ]
	[ "$ms" -lt 3000 ]
	echo "$output" | grep -q "thread [0-9]* (thr-[a-z]*) blocks signal SIGRTMAX-1.*cannot be stopped with ptrace.*PTRACE_SEIZE: Operation not permitted.*not dumpable"
	# nothing changed: every mask as before, no image
	echo "$output" | grep -q "^masks ok$"
	[ ! -e "$T/img" ]
}

@test "external checkpoint of a process whose main thread blocks the stop signal" {
	export CRAC_CONTROL_DIR="$T/ctl"
	mkdir -m 0700 "$CRAC_CONTROL_DIR"
	bg "$T/out" "$CRAC" run -- "$LEADER" --block
	pid=$bgpid
	wait_line "$T/out" "^tick 3 leader=1 blocked=1$"
	# crac check says how the image engine will stop that thread
	run "$CRAC" check "$pid"
	echo "$output"
	echo "$output" | grep -Eq "^  note: thread $pid \(thr-main\) blocks .*SIGRTMAX-1.*it will be stopped with ptrace"
	t0=$(date +%s%N)
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" "$pid"
	t1=$(date +%s%N)
	echo "$output"
	[ "$status" -eq 0 ]
	[ $(( (t1 - t0) / 1000000 )) -lt 3000 ]
	wait_gone "$pid" 5

	bg "$T/out1" "$CRAC" restore "$T/img"
	rpid=$bgpid
	wait_line "$T/out1" "^tick"
	last=$(sed -n 's/^tick \([0-9]*\) .*/\1/p' "$T/out1" | tail -1)
	wait_line "$T/out1" "^tick $((last + 2)) "
	cat "$T/out1"
	# the main thread is the leader and still blocks the signal
	tail -1 "$T/out1" | grep -q "leader=1 blocked=1$"
	! grep -q "blocked=0" "$T/out1" || false
	[ "$(sigblk "$rpid" thr-main)" = 4000000000000000 ]
}

@test "a checkpoint given up at its deadline leaves no stop signal behind" {
	# thr-vfork waits 3 s in vfork(), where only fatal signals reach it;
	# the checkpoint gives up after 1.5 s. Before the fix, the stop signal
	# still pending then killed the process once vfork returned.
	echo "child * warn" >"$T/policies"
	run clean env CRAC_POLICIES="$T/policies" timeout 30 "$CRAC_BUILD_DIR/tests/thr_abort" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^checkpoint: rc=-110 "
	echo "$output" | grep -q "thread [0-9]* did not stop for the checkpoint"
	echo "$output" | grep -q "^alive after abort$"
	[ ! -e "$T/img" ]
}
