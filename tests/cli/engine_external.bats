#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The external engine (issue 14 items 2-4), without D-Bus (the logind path
# is in engine_external_logind.bats):
#  - announced: `crac checkpoint --engine external PID` parks the process
#    after its before-callbacks; `crac restore --pid PID` resumes it
#    (outcome RESTORED, generation + 1); the hook $CRAC_EXTERNAL_HOOK runs
#    while parked (and may resume the process itself); a failing hook and
#    the park deadline resume it with outcome ABORTED and no new generation;
#  - unannounced: the watcher notices a restore by a generation file, a
#    boot id, a jump of CLOCK_REALTIME against CLOCK_MONOTONIC (faked while
#    the process is stopped with SIGSTOP), or the VMClock device where the
#    kernel has one, and runs after_restore with unannounced=1.

load common
load ext_common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/ext_prog"
	T="$(mktemp -d /tmp/crac-bats-ext.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_CONTROL CRAC_EXTERNAL_HOOK CRAC_EXTERNAL_PARK_MS CRAC_EXTERNAL_GENERATION_FILE \
		CRAC_EXTERNAL_TEST_REALTIME_OFFSET_FILE CRAC_EXTERNAL_TEST_BOOT_ID_FILE \
		CRAC_EXTERNAL_VMCLOCK CRAC_EXTERNAL_JUMP_MS
	export CRAC_ENGINE=external
	# no D-Bus here: the logind path is tested on a private bus elsewhere
	export CRAC_EXTERNAL_LOGIND=0
	export CRAC_EXTERNAL_POLL_MS=50
	# the detection of an unannounced restore is said at level info
	export CRAC_LOG=info
	PID=
}

teardown() {
	if [ -n "$PID" ]; then
		kill -CONT "$PID" 2>/dev/null || true
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$T"
}

@test "crac --version lists the external engine" {
	run "$CRAC" --version
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qE '^engines:.* external( |$)'
}

@test "announced through the control endpoint: parked after before_checkpoint, resumed by crac restore --pid" {
	start_prog
	run timeout 20 "$CRAC" checkpoint --engine external "$PID"
	echo "$output"
	[ "$status" -eq 0 ]
	grep -qx 'before alpha gen=0 engine=external' "$T/out"
	grep -qx 'before beta gen=0 engine=external' "$T/out"
	# parked: nothing runs after_restore on its own
	sleep 0.3
	! grep -q '^after' "$T/out" || false

	run timeout 20 "$CRAC" restore --pid "$PID"
	echo "$output"
	[ "$status" -eq 0 ]
	wait_for '^after beta '
	grep -qE '^after alpha gen=1 engine=external outcome=2 unannounced=0 ' "$T/out"
	grep -qE '^after beta gen=1 engine=external outcome=2 unannounced=0 ' "$T/out"
}

@test "the hook runs while parked with CRAC_PID and CRAC_GENERATION, and may resume the process itself" {
	export CRAC_BIN="$CRAC"
	export CRAC_EXTERNAL_HOOK='echo "hook pid=$CRAC_PID gen=$CRAC_GENERATION id=$CRAC_INSTANCE_ID sock=$CRAC_CONTROL_SOCKET" >"'"$T"'/hook.out"; "$CRAC_BIN" restore --pid "$CRAC_PID" >"'"$T"'/hook.resume" 2>&1'
	start_prog --self
	wait_for '^returned '
	cat "$T/hook.out"
	grep -qE "^hook pid=$PID gen=0 id=[0-9a-f-]{36} sock=$T/ctl/$PID.sock\$" "$T/hook.out"
	grep -qx 'returned 2' "$T/out"
	grep -qE '^after alpha gen=1 engine=external outcome=2 unannounced=0 ' "$T/out"
	# the hook saw the instance id before the restore; after it, a new one
	old=$(sed -n 's/.* id=\([0-9a-f-]*\) .*/\1/p' "$T/hook.out")
	new=$(sed -n 's/^id //p' "$T/out")
	[ -n "$new" ]
	[ "$old" != "$new" ]
}

@test "a hook that fails resumes at once: outcome ABORTED, no new generation, the report names the hook" {
	export CRAC_EXTERNAL_HOOK='exit 3'
	start_prog --self
	wait_for '^returned '
	cat "$T/out"
	grep -qx 'returned 3' "$T/out"
	grep -qE '^after alpha gen=0 engine=external outcome=3 unannounced=0 ' "$T/out"
	grep -qE 'engine external: .*CRAC_EXTERNAL_HOOK \(pid [0-9]+\) exited with status 3: no snapshot' "$T/out"
}

@test "the park deadline resumes without a snapshot (outcome ABORTED, ETIMEDOUT in the report)" {
	export CRAC_EXTERNAL_PARK_MS=300
	start_prog --self
	wait_for '^returned '
	cat "$T/out"
	grep -qx 'returned 3' "$T/out"
	grep -qE '^after beta gen=0 engine=external outcome=3 unannounced=0 ' "$T/out"
	grep -qE "ETIMEDOUT.*nothing resumed process $PID within CRAC_EXTERNAL_PARK_MS=300 ms.*resumed without a snapshot" "$T/out"
}

@test "unannounced: a bumped generation file runs after_restore with unannounced=1, new id, generation + 1, each time" {
	echo 7 >"$T/gen"
	export CRAC_EXTERNAL_GENERATION_FILE="$T/gen"
	start_prog
	id0=$(sed -n 's/^ready [0-9]* id=//p' "$T/out")
	sleep 0.2
	! grep -q '^after' "$T/out" || false
	echo 8 >"$T/gen"
	wait_for '^after beta gen=1 '
	grep -qE '^after alpha gen=1 engine=external outcome=2 unannounced=1 id=' "$T/out"
	! grep -q '^before' "$T/out" || false
	# every registered resource, in the after_restore order (registration order)
	[ "$(grep '^after' "$T/out" | cut -d' ' -f2 | tr '\n' ' ')" = "alpha beta " ]
	id1=$(sed -n 's/^after alpha gen=1 .* id=//p' "$T/out")
	[ -n "$id1" ]
	[ "$id1" != "$id0" ]
	grep -q "unannounced restore detected: the generation file $T/gen went from \"7\" to \"8\"; generation 1" "$T/err"
	echo 9 >"$T/gen"
	wait_for '^after beta gen=2 '
	id2=$(sed -n 's/^after alpha gen=2 .* id=//p' "$T/out")
	[ -n "$id2" ]
	[ "$id2" != "$id1" ]
}

@test "unannounced: SIGSTOP, a realtime jump (faked through the test hook), SIGCONT: detected once" {
	echo 0 >"$T/rt"
	export CRAC_EXTERNAL_TEST_REALTIME_OFFSET_FILE="$T/rt"
	start_prog
	sleep 0.2
	kill -STOP "$PID"
	# while stopped, the wall clock runs an hour ahead of the monotonic one
	echo 3600000 >"$T/rt"
	sleep 0.2
	kill -CONT "$PID"
	wait_for '^after beta gen=1 '
	grep -qE '^after alpha gen=1 engine=external outcome=2 unannounced=1 ' "$T/out"
	grep -q 'unannounced restore detected: CLOCK_REALTIME moved +3600.[0-9]* s against CLOCK_MONOTONIC' "$T/err"
	# a jump is one event, not one per sample
	sleep 0.5
	[ "$(grep -c '^after alpha' "$T/out")" -eq 1 ]
}

@test "unannounced: a SIGSTOP alone (no jump) is no restore" {
	start_prog
	sleep 0.2
	kill -STOP "$PID"
	sleep 0.5
	kill -CONT "$PID"
	sleep 0.5
	! grep -q '^after' "$T/out" || false
}

@test "unannounced: a changed boot id (test hook) is a restore" {
	echo 11111111-1111-4111-8111-111111111111 >"$T/boot"
	export CRAC_EXTERNAL_TEST_BOOT_ID_FILE="$T/boot"
	start_prog
	sleep 0.2
	echo 22222222-2222-4222-8222-222222222222 >"$T/boot"
	wait_for '^after beta gen=1 '
	grep -qE '^after alpha gen=1 engine=external outcome=2 unannounced=1 ' "$T/out"
	grep -q 'unannounced restore detected: the boot id changed from 1111' "$T/err"
}

# poke64 FILE OFFSET VALUE: writes VALUE as a little-endian u64 at OFFSET, in place
poke64() {
	local v=$3 bytes="" i
	for i in 0 1 2 3 4 5 6 7; do
		bytes="$bytes$(printf '\\x%02x' $(( (v >> (8 * i)) & 255 )))"
	done
	printf "$bytes" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# vmclock FILE FLAGS GEN: a struct vmclock_abi (linux/vmclock-abi.h) in a page
vmclock() {
	head -c 4096 /dev/zero >"$1"
	poke64 "$1" 0 $(( 0x4b4c4356 | (4096 << 32) ))   # magic "VCLK", size
	poke64 "$1" 8 $(( 1 | (2 << 32) ))               # version 1, seq_count 2 (even: stable)
	poke64 "$1" 24 "$2"                              # flags
	poke64 "$1" 104 "$3"                             # vm_generation_counter
}

@test "unannounced: the VMClock layout (a struct vmclock_abi in a file): vm_generation_counter bumped" {
	vmclock "$T/vmclock" $((1 << 8)) 5
	export CRAC_EXTERNAL_VMCLOCK="$T/vmclock"
	start_prog
	sleep 0.2
	# in place (the watcher keeps the file open, as it keeps the device)
	poke64 "$T/vmclock" 104 6
	wait_for '^after beta gen=1 '
	grep -qE '^after alpha gen=1 engine=external outcome=2 unannounced=1 ' "$T/out"
	grep -q "unannounced restore detected: the VM generation counter of $T/vmclock went from 5 to 6" "$T/err"
}

@test "unannounced: a VMClock without VM_GEN_COUNTER_PRESENT is not used" {
	vmclock "$T/vmclock" 0 5
	export CRAC_EXTERNAL_VMCLOCK="$T/vmclock"
	start_prog
	sleep 0.2
	poke64 "$T/vmclock" 104 6
	sleep 0.5
	! grep -q '^after' "$T/out" || false
}

@test "unannounced: the real VMClock device, /dev/vmclock0" {
	if [ ! -e /dev/vmclock0 ]; then
		acpi=""
		[ -e /sys/bus/acpi/devices/AMZNC10C:00 ] && acpi=" (the hypervisor offers an ACPI VMClock device, AMZNC10C:00, but this kernel $(uname -r) has no driver for it: CONFIG_PTP_1588_CLOCK_VMCLOCK)"
		skip "no /dev/vmclock0 on this machine$acpi"
	fi
	flags=$(od -An -tu8 -j24 -N8 /dev/vmclock0 | tr -d ' ')
	[ -n "$flags" ] && [ $(( flags & (1 << 8) )) -ne 0 ] ||
		skip "/dev/vmclock0 has no VM generation counter (flags ${flags:-unreadable}: VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT not set)"
	# The counter changes only when the VM is restored from a snapshot: here we
	# check that the watcher reads it and stays quiet while it does not change.
	start_prog
	sleep 0.5
	ls -l /proc/$PID/fd | grep -q ' -> /dev/vmclock0$'
	! grep -q '^after' "$T/out" || false
	! grep -q 'unannounced' "$T/err" || false
}

@test "a park deadline too large to count in nanoseconds is none: parked until resumed, not resumed at once" {
	# 2^63 - 1 ms: park_ms * 10^6 overflowed into a budget already used up
	export CRAC_EXTERNAL_PARK_MS=9223372036854775807
	start_prog
	run timeout 20 "$CRAC" checkpoint --engine external "$PID"
	echo "$output"
	[ "$status" -eq 0 ]
	sleep 0.5
	cat "$T/out"
	! grep -q '^after' "$T/out" || false
	run timeout 20 "$CRAC" restore --pid "$PID"
	[ "$status" -eq 0 ]
	wait_for '^after beta '
	grep -qE '^after alpha gen=1 engine=external outcome=2 unannounced=0 ' "$T/out"
}

@test "unannounced: a clock threshold too large to count in nanoseconds turns the clock detector off" {
	# 18446744073710 ms * 10^6 wrapped around 2^64 to 0.45 ms: every
	# sample's jitter, or a small step of the wall clock, was a restore
	export CRAC_EXTERNAL_JUMP_MS=18446744073710
	echo 0 >"$T/rtoff"
	export CRAC_EXTERNAL_TEST_REALTIME_OFFSET_FILE="$T/rtoff"
	export CRAC_EXTERNAL_POLL_MS=20
	start_prog
	sleep 0.3
	echo 5 >"$T/rtoff"     # the wall clock steps 5 ms
	sleep 0.5
	cat "$T/err"
	[ "$(grep -c '^after alpha ' "$T/out" || true)" -eq 0 ]
}
