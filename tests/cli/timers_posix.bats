#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# POSIX timers (timer_create) of an unmodified program are carried by the
# image engine with no policy: created again at restore with the same ids
# (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.14), clock, signal and value, and
# armed with the time they had left (tests/progs/posix_timers.c). Ruby's VM
# has one (tests/zoo/ruby.bats). A timer that signals one thread is still
# refused, with the reason.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-ptimers.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LOG
	require_image_engine
	"$CRAC_BUILD_DIR/tests/posix_timers" --probe ||
		skip "this kernel cannot create a timer with a given id (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.14)"
}

teardown() {
	rm -rf "$T"
}

@test "POSIX timers come back with their ids, settings, time left and signal value" {
	run_to_image "$T/run.out" -- "$CRAC_BUILD_DIR/tests/posix_timers" || true
	cat "$T/run.out"
	[ -f "$T/img/header" ]
	restores_twice "$(printf 'a: interval 2000000 ns\nb: one shot, 900-1000 s left\nc: disarmed\na ticks: yes, value kept\ntimers: 3')"
}

@test "a timer on the process's CPU time comes back (the kernel shows its clock as -6, not 2)" {
	(
		close_fds
		POSIX_TIMERS_WAIT_S=10 exec timeout 60 "$CRAC" run --checkpoint-to "$T/img" --checkpoint-on SIGUSR1 -- \
			"$CRAC_BUILD_DIR/tests/posix_timers" --cpu-timer
	) </dev/null >"$T/run.out" 2>&1 || true
	cat "$T/run.out"
	! grep -q "ClockID: -6" "$T/run.out"
	[ -f "$T/img/header" ]
	run clean timeout 30 "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'a: interval 2000000 ns\nb: one shot, 900-1000 s left\nc: disarmed\ne: one shot, 990-1000 s of CPU left\na ticks: yes, value kept\ntimers: 4')" ]
}

@test "a timer that signals one thread is refused with the reason; under a warn policy it is left out" {
	# refused: the program goes on cold, and gives up after 2 s
	POSIX_TIMERS_WAIT_S=2 run_to_image "$T/run.out" -- "$CRAC_BUILD_DIR/tests/posix_timers" --thread-timer || true
	cat "$T/run.out"
	[ ! -e "$T/img" ]
	grep -q "check timer posix:[0-9]*: .*signals one thread" "$T/run.out"
	local d
	d=$(sed -n 's/^d: //p' "$T/run.out")
	echo "timer posix:$d warn" >"$T/policies"
	run_to_image "$T/run2.out" --policies "$T/policies" -- "$CRAC_BUILD_DIR/tests/posix_timers" --thread-timer || true
	cat "$T/run2.out"
	[ -f "$T/img/header" ]
	run clean timeout 30 "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'a: interval 2000000 ns\nb: one shot, 900-1000 s left\nc: disarmed\na ticks: yes, value kept\ntimers: 3')" ]
}

@test "on a kernel that cannot create a timer with a given id, a POSIX timer is refused with the reason" {
	CRAC_PRETEND_MISSING=timer_restore_ids POSIX_TIMERS_WAIT_S=2 run_to_image "$T/run.out" -- \
		"$CRAC_BUILD_DIR/tests/posix_timers" || true
	cat "$T/run.out"
	[ ! -e "$T/img" ]
	[ "$(grep -c "check timer posix:[0-9]*: .*PR_TIMER_CREATE_RESTORE_IDS, Linux 6.14" "$T/run.out")" -eq 3 ]
}

@test "a thousand POSIX timers come back, each with its own time left" {
	# more than a fixed table of 64 and than 64 KiB of /proc/self/timers
	(
		close_fds
		exec timeout 60 "$CRAC" run --checkpoint-to "$T/img" --checkpoint-on SIGUSR1 -- \
			"$CRAC_BUILD_DIR/tests/posix_timers" --many 1000
	) </dev/null >"$T/run.out" 2>&1 || true
	cat "$T/run.out"
	[ -f "$T/img/header" ]
	for i in 1 2; do
		run clean timeout 30 "$CRAC" restore "$T/img"
		echo "$output"
		[ "$status" -eq 0 ]
		[ "$output" = "$(printf 'a: interval 2000000 ns\nb: one shot, 900-1000 s left\nc: disarmed\na ticks: yes, value kept\nmany: 1000 of 1000 as they were\ntimers: 1003')" ]
	done
}

@test "a restore under a RLIMIT_SIGPENDING too low for the image's timers says so" {
	(
		close_fds
		exec timeout 60 "$CRAC" run --checkpoint-to "$T/img" --checkpoint-on SIGUSR1 -- \
			"$CRAC_BUILD_DIR/tests/posix_timers" --many 1000
	) </dev/null >"$T/run.out" 2>&1 || true
	[ -f "$T/img/header" ]
	run clean timeout 30 prlimit --sigpending=500 "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"POSIX timer "*" of 1003) not created again: "*"RLIMIT_SIGPENDING, 500 here"* ]]
}
