#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Signals pending at a checkpoint (blocked, or not yet taken; sent to the
# process or to one thread) are carried by the image engine: each arrives
# exactly once, in order, with its siginfo, in the original process (a
# keep-running checkpoint must not eat them) and in every restored one, to
# the thread it was sent to; `crac inspect` lists them
# (src/engines/image_signals.c; program: tests/progs/pending_signals.c).

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/pending_signals"
	T="$(mktemp -d /tmp/crac-bats-pendsig.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LOG
	require_image_engine
}

teardown() {
	rm -rf "$T"
}

expected() {
	printf '%s main: USR1/user RTMIN/101 RTMIN/102\n%s thread: USR2/user RTMIN+1/201 RTMIN+1/202\n%s: ok' "$1" "$1" "$1"
}

@test "pending signals come back once each, in order, with their values, to their thread: original and restored" {
	run clean timeout 60 "$PROG" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(expected original)" ]
	[ -f "$T/img/header" ]
	restores_twice "$(expected restored)"
}

@test "crac inspect lists the pending signals, per thread and for the process, in order" {
	run clean timeout 60 "$PROG" "$T/img"
	[ "$status" -eq 0 ]
	run "$CRAC" inspect "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q '^pending:   6 signals$'
	local lines
	lines=$(echo "$output" | sed -n '/^pending:/,/^secrets:/p' | sed '1d;$d')
	# thread-directed first (the thread took them in its stop handler),
	# then the process's; each real-time signal's instances in order
	[ "$(echo "$lines" | awk '{ print ($1 == "process" ? "process" : "thread"), $($1 == "process" ? 2 : 3) }' |
	     tr '\n' ' ')" = "thread SIGUSR2 thread SIGRTMIN+1 thread SIGRTMIN+1 process SIGUSR1 process SIGRTMIN+0 process SIGRTMIN+0 " ]
	echo "$lines" | grep -q 'SIGUSR2 *SI_TKILL from pid'
	echo "$lines" | grep -q '^  process *SIGUSR1 *SI_USER from pid'
	[ "$(echo "$lines" | grep -o 'value 0x[0-9a-f]*' | tr '\n' ' ')" = "value 0xc9 value 0xca value 0x65 value 0x66 " ]
	run "$CRAC" inspect --json "$T/img"
	[ "$status" -eq 0 ]
	python3 -c 'import json,sys; d=json.load(sys.stdin); s=d["signals"]; assert [(x["tid"]!=0, x["name"]) for x in s] == [(True,"SIGUSR2"),(True,"SIGRTMIN+1"),(True,"SIGRTMIN+1"),(False,"SIGUSR1"),(False,"SIGRTMIN+0"),(False,"SIGRTMIN+0")], s' <<<"$output"
}

@test "an unmodified program checkpointed from outside (crac run) gets its pending signals back" {
	(
		close_fds
		exec timeout 60 "$CRAC" run --checkpoint-to "$T/img" --checkpoint-on SIGUSR1 -- "$PROG" --cli
	) </dev/null >"$T/run.out" 2>&1 || true
	cat "$T/run.out"
	[ -f "$T/img/header" ]
	restores_twice "$(expected restored)"
}

@test "crac run --keep-running: the original keeps its pending signals (the main thread gives back the process's)" {
	(
		close_fds
		exec timeout 60 "$CRAC" run --keep-running --checkpoint-to "$T/img" --checkpoint-on SIGUSR1 -- \
			"$PROG" --cli "$T/img"
	) </dev/null >"$T/run.out" 2>&1
	cat "$T/run.out"
	[ -f "$T/img/header" ]
	[ "$(grep -v '^ready$\|^crac: image written' "$T/run.out")" = "$(expected original)" ]
	restores_twice "$(expected restored)"
}

@test "more pending signals than carried: the checkpoint fails, and every one still comes, once, in order" {
	[ "$(ulimit -i)" = unlimited ] || [ "$(ulimit -i)" -ge 2000 ] || skip "RLIMIT_SIGPENDING $(ulimit -i) < 2000"
	run clean timeout 60 "$PROG" --overflow "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[ ! -e "$T/img" ]
	# (3 more for the process, 3 for the thread: pending_signals.c)
	echo "$output" | grep -q "E2BIG.*1106 signals are pending (blocked or not yet taken), 1103 of them for the process: the image engine carries at most 1024; they stay pending"
	echo "$output" | grep -qx "aborted: 1100 of 1100 SIGRTMIN+2 back, 0 twice, 0 odd (in order)"
	echo "$output" | grep -qx "aborted: ok"
	# the same to one thread: named, with its count
	run clean timeout 60 "$PROG" --overflow-thread "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[ ! -e "$T/img" ]
	echo "$output" | grep -q "1106 signals are pending (blocked or not yet taken), 1103 of them for thread [0-9]* (pend-thread): "
	echo "$output" | grep -qx "aborted thread: 1100 of 1100 SIGRTMIN+2 back, 0 twice, 0 odd (in order)"
	echo "$output" | grep -qx "aborted: ok"
}

@test "1024 pending signals are carried, 1025 refused naming the queue and the count (process and thread)" {
	local mode
	for mode in --overflow --overflow-thread; do
		# 1018 + the 6 others: 1024, all carried, in order
		rm -rf "$T/img"
		run clean env PENDING_OVERFLOW_N=1018 timeout 60 "$PROG" $mode "$T/img"
		echo "$output"
		[ "$status" -eq 0 ]
		echo "$output" | grep -qx "original carried\( thread\)\?: 1018 of 1018 SIGRTMIN+2 back, 0 twice, 0 odd (in order)"
		echo "$output" | grep -qx "original: ok"
		run "$CRAC" inspect "$T/img"
		echo "$output" | grep -q '^pending:   1024 signals$'
		run clean timeout 60 "$CRAC" restore "$T/img"
		echo "$output"
		[ "$status" -eq 0 ]
		echo "$output" | grep -qx "restored carried\( thread\)\?: 1018 of 1018 SIGRTMIN+2 back, 0 twice, 0 odd (in order)"
		echo "$output" | grep -qx "restored: ok"
		# one more: refused, every one still there
		rm -rf "$T/img"
		run clean env PENDING_OVERFLOW_N=1019 timeout 60 "$PROG" $mode "$T/img"
		echo "$output"
		[ "$status" -eq 0 ]
		[ ! -e "$T/img" ]
		echo "$output" | grep -q "E2BIG.*: 1025 signals are pending (blocked or not yet taken), 1022 of them for \(the process\|thread [0-9]* (pend-thread)\): the image engine carries at most 1024; they stay pending"
		echo "$output" | grep -qx "aborted\( thread\)\?: 1019 of 1019 SIGRTMIN+2 back, 0 twice, 0 odd (in order)"
		echo "$output" | grep -qx "aborted: ok"
	done
}

@test "where ptrace is refused (signals taken off the queues and given back): once each, in order; a full table names the queue" {
	export CRAC_TEST_SIGNALS_TAKE=1
	run clean timeout 60 "$PROG" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(expected original)" ]
	restores_twice "$(expected restored)"
	rm -rf "$T/img"
	run clean timeout 60 "$PROG" --overflow-thread "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[ ! -e "$T/img" ]
	echo "$output" | grep -q "more than 1024 signals are pending (blocked or not yet taken), at least 10[0-9][0-9] of them for thread [0-9]* (pend-thread): "
	echo "$output" | grep -qx "aborted thread: 1100 of 1100 SIGRTMIN+2 back, 0 twice, 0 odd (in order)"
}

@test "a POSIX timer's pending expiry comes back as its siginfo (SI_TIMER, value, timer id), once" {
	"$CRAC_BUILD_DIR/tests/posix_timers" --probe ||
		skip "this kernel cannot create a timer with a given id (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.14)"
	run clean timeout 60 "$PROG" --timer "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'original timer: SI_TIMER/301 id ok overrun 0 (1)\n%s' "$(expected original)")" ]
	run "$CRAC" inspect "$T/img"
	echo "$output" | grep -q "^  process *SIGRTMIN+3 *SI_TIMER timer [0-9]* overrun 0 value 0x12d$"
	restores_twice "$(printf 'restored timer: SI_TIMER/301 id ok overrun 0 (1)\n%s' "$(expected restored)")"
}

@test "a restored process checkpointed again with signals pending: carried again, none of the first round's twice" {
	run clean timeout 60 "$PROG" --again "$T/img" "$T/img2"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(expected original)" ]
	run clean timeout 60 "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '%s\n%s' "$(expected restored)" "$(expected "restored, checkpointed again")")" ]
	run clean timeout 60 "$CRAC" restore "$T/img2"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(expected "restored again")" ]
}

# signals_during: SIGRTMIN+4 queued by another process every 20 ms while the
# program checkpoints itself again and again (keep-running). Before, a
# signal queued during a checkpoint went in front of the ones the
# checkpoint had taken and gave back at its end (1 2 5 3 4).
signals_during_case() {
	local mode="$1" pid tid
	clean timeout 60 "$CRAC_BUILD_DIR/tests/signals_during" "$T/img" 30 $mode >"$T/out" 2>"$T/err" &
	local prog=$!
	wait_file "$T/out" 5
	read -r _ pid _ tid <"$T/out"
	"$CRAC_BUILD_DIR/tests/signals_during" --send "$pid" "$tid" 30 20000
	wait "$prog" || true
	cat "$T/out" "$T/err"
	grep -qx "original: 30 of 30 in order" "$T/out"
	# at least one checkpoint ran while the signals came
	[ "$(sed -n 's/^\([0-9]*\) checkpoints$/\1/p' "$T/err")" -ge 2 ]
	restores_twice "restored: in order"
}

@test "real-time signals queued while checkpoints run: each once, in order, in the original and the restored (process)" {
	signals_during_case ""
}

@test "real-time signals queued to a thread while checkpoints run: each once, in order (thread)" {
	signals_during_case thread
}

@test "an unmodified program reading its signals through a signalfd in an epoll loop reads the pending ones after restore (level- and edge-triggered)" {
	local mode
	for mode in lt et; do
		rm -rf "$T/img"
		(
			close_fds
			exec timeout 60 "$CRAC" run --checkpoint-to "$T/img" --checkpoint-on SIGUSR1 -- \
				"$CRAC_BUILD_DIR/tests/sigfd_epoll" "$mode"
		) </dev/null >"$T/run.out" 2>&1 || true
		cat "$T/run.out"
		[ -f "$T/img/header" ]
		restores_twice "restored: USR2 TERM CHLD RTMIN/11 RTMIN/12"
	done
}

@test "SIGCHLD of an exited child: the refused checkpoint gives it back once, with its siginfo" {
	run clean timeout 60 "$CRAC_BUILD_DIR/tests/pending_misc" child "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "child: refused, SIGCHLD back once (CLD_EXITED, the child's pid)" ]
	[ ! -e "$T/img" ]
}

@test "pending SIGPIPE (thread-directed), a blocked SIG_IGN signal and an SA_RESETHAND handler's: once each, original and restored" {
	run clean timeout 60 "$CRAC_BUILD_DIR/tests/pending_misc" misc "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "original: PIPE once, USR1 (ignored, blocked) once, USR2 handled once, then SIG_DFL" ]
	restores_twice "restored: PIPE once, USR1 (ignored, blocked) once, USR2 handled once, then SIG_DFL"
}

# A flood of SIGRTMIN+4 (values 1, 2, 3, ... as fast as they can be queued)
# while the program checkpoints itself again and again (keep-running) and
# takes what is pending between: each once, in order. Before the engine
# read the queues with ptrace (PTRACE_PEEKSIGINFO) instead of taking the
# signals off and giving them back, one queued during a give-back landed
# among the given-back ones (some 2000 out of order in 50000).
flood_case() {
	local pid tid
	clean timeout 60 "$CRAC_BUILD_DIR/tests/signals_during" "$T/img" 50000 "$1" >"$T/out" 2>"$T/err" &
	local prog=$!
	wait_file "$T/out" 5
	read -r _ pid tid _ <<<"$(sed -n '1s/^pid \([0-9]*\) tid \([0-9]*\)$/x \1 \2/p' "$T/out")"
	"$CRAC_BUILD_DIR/tests/signals_during" --send "$pid" "$tid" 50000 0
	wait "$prog" || true
	cat "$T/out" "$T/err"
	grep -qx "flood: 50000 taken, 0 twice, 0 missing, 0 out of order, 0 failed checkpoints" "$T/out"
	[ "$(sed -n 's/^\([0-9]*\) checkpoints$/\1/p' "$T/err")" -ge 2 ]
}

@test "a flood of real-time signals to the process while checkpoints run: none lost, none doubled, in order, no checkpoint failed" {
	flood_case flood
}

@test "a flood of real-time signals to a thread while checkpoints run: none lost, none doubled, in order, no checkpoint failed" {
	flood_case flood-thread
}

@test "a checkpoint failed by a full file system (ENOSPC) gives every pending signal back once" {
	mkdir "$T/small"
	mount -t tmpfs -o size=64k tmpfs "$T/small" 2>/dev/null || skip "cannot mount a tmpfs here (not root)"
	run clean timeout 60 "$CRAC_BUILD_DIR/tests/pending_misc" misc-fail "$T/small/img"
	umount "$T/small"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "No space left on device"
	echo "$output" | grep -qx "failed: PIPE once, USR1 (ignored, blocked) once, USR2 handled once, then SIG_DFL"
}

@test "the program's own SIGRTMAX-1 (the engine's stop signal), blocked and pending for the process and for a thread: once each, original and restored" {
	# Before, the thread's was delivered to the stop handler when the
	# ptrace helper unblocked the stop signal, and ignored there (lost),
	# and no SIGRTMAX-1 was carried into the image.
	run clean timeout 60 "$CRAC_BUILD_DIR/tests/pending_misc" rtmax1 "$T/img"
	echo "$output"
	if echo "$output" | grep -q "ptrace"; then
		skip "the ptrace helper is not allowed here"
	fi
	[ "$status" -eq 0 ]
	[ "$output" = "original: SIGRTMAX-1 once for the process (5), once for the thread (6)" ]
	restores_twice "restored: SIGRTMAX-1 once for the process (5), once for the thread (6)"
}

@test "the program's own SIGRTMAX-1 with disposition SIG_IGN (blocked, pending): once each, original and restored" {
	# Setting SIG_IGN discards what is pending: before, the engine put the
	# program's SIG_IGN back after letting the threads go, and the
	# thread's instance they had given back was discarded.
	run clean timeout 60 "$CRAC_BUILD_DIR/tests/pending_misc" rtmax1-ign "$T/img"
	echo "$output"
	if echo "$output" | grep -q "ptrace"; then
		skip "the ptrace helper is not allowed here"
	fi
	[ "$status" -eq 0 ]
	[ "$output" = "original: SIGRTMAX-1 once for the process (5), once for the thread (6)" ]
	restores_twice "restored: SIGRTMAX-1 once for the process (5), once for the thread (6)"
}

@test "a failed stop (a thread in vfork past the deadline) keeps the program's own SIGRTMAX-1, SIG_IGN or SIG_DFL" {
	# The failed stop discards the engine's stop signal left pending in
	# the thread that never took it by setting SIG_IGN: before, that
	# discarded the program's own pending for the process too.
	echo "child * warn" >"$T/policies"
	local dfl
	for dfl in "" dfl; do
		run clean env CRAC_POLICIES="$T/policies" timeout 60 "$CRAC_BUILD_DIR/tests/pending_misc" \
			rtmax1-stopfail "$T/img" $dfl
		echo "$output"
		[ "$status" -eq 0 ]
		echo "$output" | grep -q "did not stop"
		echo "$output" | grep -qx "stop failed: SIGRTMAX-1 once for the process (5), once for the thread (6)"
		[ ! -e "$T/img" ]
	done
}

@test "a seccomp filter that refuses ptrace (EPERM) or kills for it: the signals are taken and given back, once each, in order" {
	# The helper that reads the queues inherits the filter: the engine
	# asks a helper of its own first (once for each number of filters).
	# Before, the first checkpoint failed (PTRACE_SEIZE: EPERM).
	local mode
	for mode in seccomp seccomp-kill; do
		rm -rf "$T/img"
		run clean timeout 60 "$CRAC_BUILD_DIR/tests/pending_misc" $mode "$T/img"
		echo "$output"
		[ "$status" -eq 0 ]
		[ "$output" = "seccomp: two checkpoints; USR1/7 RTMIN/8 RTMIN/9 once each after each" ]
	done
}

@test "a process traced already (strace -f): its pending signals are taken and given back, once each, in order" {
	# Its threads cannot be seized by the helper that reads the queues:
	# before, the checkpoint failed (PTRACE_SEIZE: EPERM).
	command -v strace >/dev/null || skip "no strace"
	run clean timeout 60 strace -f -o /dev/null "$PROG" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(expected original)" ]
	restores_twice "$(expected restored)"
}

@test "ptrace refused only when the queues are read (CRAC_TEST_SIGNALS_PEEK_EPERM): the threads stop again and take them; once each, in order" {
	# What no look ahead foresaw (an LSM, a thread traced on its own):
	# the checkpoint stops the threads once more, taking the signals off
	# their queues. Before, it failed.
	export CRAC_TEST_SIGNALS_PEEK_EPERM=1
	run clean timeout 60 "$PROG" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(expected original)" ]
	restores_twice "$(expected restored)"
	# only the process's and the checkpointing thread's: taken at once
	run clean timeout 60 "$CRAC_BUILD_DIR/tests/pending_misc" child "$T/img2"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "child: refused, SIGCHLD back once (CLD_EXITED, the child's pid)" ]
}
