#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Review of the external engine (defects 9 and 10):
#  - the watcher keeps its baseline through a sample it could not take (the
#    generation file missing, empty, being rewritten; the boot id
#    unreadable; the VMClock page truncated): one real change of a value is
#    one restore, neither lost nor doubled; a generation "file" that is not a
#    regular file (a FIFO) is never opened, and said once;
#  - when a park ends without a snapshot (deadline, failed hook), the hook's
#    whole process group is killed and the hook reaped before after_restore.

load common
load ext_common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/ext_prog"
	T="$(mktemp -d /tmp/crac-bats-extr.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_CONTROL CRAC_EXTERNAL_HOOK CRAC_EXTERNAL_PARK_MS CRAC_EXTERNAL_GENERATION_FILE \
		CRAC_EXTERNAL_TEST_REALTIME_OFFSET_FILE CRAC_EXTERNAL_TEST_BOOT_ID_FILE \
		CRAC_EXTERNAL_VMCLOCK CRAC_EXTERNAL_JUMP_MS
	export CRAC_ENGINE=external
	export CRAC_EXTERNAL_LOGIND=0
	export CRAC_EXTERNAL_POLL_MS=20
	export CRAC_LOG=info
	PID=
	KILL_PIDS=
}

teardown() {
	if [ -n "$PID" ]; then
		kill -CONT "$PID" 2>/dev/null || true
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	for p in $KILL_PIDS; do
		kill -9 "$p" 2>/dev/null || true
	done
	rm -rf "$T"
}

# restores: how many unannounced restores the program saw
restores() {
	grep -c '^after alpha ' "$T/out" || true
}

# alive PID: the process exists and is no zombie
alive() {
	[ -r "/proc/$1/stat" ] || return 1
	! sed 's/.*) //' "/proc/$1/stat" | grep -q '^[ZX]' || false
}

@test "watcher: a generation file rewritten in place (empty for a while) is one restore, not two" {
	echo 1 >"$T/gen"
	export CRAC_EXTERNAL_GENERATION_FILE="$T/gen"
	start_prog
	sleep 0.2
	# truncated at once, "2" written 0.2 s later: several samples see it empty
	{ sleep 0.2; echo 2; } >"$T/gen"
	wait_for '^after beta gen=1 '
	sleep 0.4
	cat "$T/err"
	[ "$(restores)" -eq 1 ]
	grep -q "the generation file $T/gen went from \"1\" to \"2\"; generation 1" "$T/err"
}

@test "watcher: a generation file missing for a while, then changed, is one restore" {
	echo 1 >"$T/gen"
	export CRAC_EXTERNAL_GENERATION_FILE="$T/gen"
	start_prog
	sleep 0.2
	rm "$T/gen"
	sleep 0.2
	echo 2 >"$T/gen"
	wait_for '^after beta gen=1 '
	sleep 0.3
	[ "$(restores)" -eq 1 ]
	grep -q "the generation file $T/gen went from \"1\" to \"2\"" "$T/err"
	# and missing then back with the same value: no restore
	rm "$T/gen"
	sleep 0.2
	echo 2 >"$T/gen"
	sleep 0.3
	[ "$(restores)" -eq 1 ]
}

@test "watcher: a generation file that is a FIFO is never opened, said once at info level" {
	mkfifo "$T/gen"
	export CRAC_EXTERNAL_GENERATION_FILE="$T/gen"
	start_prog
	sleep 0.3
	# nobody opens the FIFO for reading: a writer stays blocked in open()
	run timeout 1 sh -c "echo 5 >'$T/gen'"
	[ "$status" -eq 124 ]
	sleep 0.2
	cat "$T/err"
	[ "$(grep -c "generation file $T/gen is not a regular file" "$T/err")" -eq 1 ]
	[ "$(restores)" -eq 0 ]
}

@test "watcher: a boot id unreadable for a while, then changed, is one restore" {
	echo 11111111-1111-4111-8111-111111111111 >"$T/boot"
	export CRAC_EXTERNAL_TEST_BOOT_ID_FILE="$T/boot"
	start_prog
	sleep 0.2
	rm "$T/boot"
	sleep 0.2
	echo 22222222-2222-4222-8222-222222222222 >"$T/boot"
	wait_for '^after beta gen=1 '
	sleep 0.3
	[ "$(restores)" -eq 1 ]
	grep -q 'the boot id changed from 11111111-1111-4111-8111-111111111111 to 2222' "$T/err"
}

# poke64 FILE OFFSET VALUE: writes VALUE as a little-endian u64 at OFFSET, in place
poke64() {
	local v=$3 bytes="" i
	for i in 0 1 2 3 4 5 6 7; do
		bytes="$bytes$(printf '\\x%02x' $(( (v >> (8 * i)) & 255 )))"
	done
	printf "$bytes" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

@test "watcher: a VMClock page unreadable for a while (truncated), then a new generation, is one restore" {
	f="$T/vmclock"
	head -c 4096 /dev/zero >"$f"
	poke64 "$f" 0 $(( 0x4b4c4356 | (4096 << 32) ))
	poke64 "$f" 8 $(( 1 | (2 << 32) ))
	poke64 "$f" 24 $((1 << 8))
	poke64 "$f" 104 5
	export CRAC_EXTERNAL_VMCLOCK="$f"
	start_prog
	sleep 0.2
	# the same inode (the watcher keeps it open): emptied, then rewritten
	: >"$f"
	sleep 0.2
	head -c 4096 /dev/zero >>"$f"
	poke64 "$f" 0 $(( 0x4b4c4356 | (4096 << 32) ))
	poke64 "$f" 8 $(( 1 | (2 << 32) ))
	poke64 "$f" 104 6
	# the flag last: until then the page has no generation counter
	poke64 "$f" 24 $((1 << 8))
	wait_for '^after beta gen=1 '
	sleep 0.3
	[ "$(restores)" -eq 1 ]
	grep -q "the VM generation counter of $f went from 5 to 6" "$T/err"
}

@test "hook: the park deadline kills a hook still running and reaps it before after_restore" {
	export CRAC_EXTERNAL_PARK_MS=300
	export CRAC_EXTERNAL_HOOK='echo $$ >"'"$T"'/hook.pid"; exec sleep 31'
	start_prog --self
	wait_for '^returned '
	hp=$(cat "$T/hook.pid")
	KILL_PIDS="$hp"
	cat "$T/out" "$T/err"
	grep -qx 'returned 3' "$T/out"
	grep -qE '^after beta gen=0 engine=external outcome=3 unannounced=0 ' "$T/out"
	# our child: gone (reaped) by the time after_restore ran, not a zombie
	[ ! -e "/proc/$hp" ]
	grep -q "CRAC_EXTERNAL_HOOK (pid $hp) was still running when the park ended without a snapshot" "$T/err"
}

@test "hook: a hook that exited 0 leaving a child behind: the child is killed when the deadline passes" {
	export CRAC_EXTERNAL_PARK_MS=300
	# the child ignores SIGTERM: the grace ends with SIGKILL
	export CRAC_EXTERNAL_HOOK='sh -c "trap \"\" TERM; echo \$\$ >'"$T"'/child.pid; exec sleep 31" & sleep 0.1; exit 0'
	start_prog --self
	wait_for '^returned '
	cp=$(cat "$T/child.pid")
	KILL_PIDS="$cp"
	grep -qx 'returned 3' "$T/out"
	! alive "$cp" || false
}

@test "hook: a failing hook's background children are killed too" {
	export CRAC_EXTERNAL_HOOK='sleep 31 & echo $! >"'"$T"'/child.pid"; exit 4'
	start_prog --self
	wait_for '^returned '
	cp=$(cat "$T/child.pid")
	KILL_PIDS="$cp"
	grep -qx 'returned 3' "$T/out"
	grep -qE 'CRAC_EXTERNAL_HOOK \(pid [0-9]+\) exited with status 4: no snapshot' "$T/out"
	! alive "$cp" || false
}

@test "hook: a hook that resumed the process itself may go on running (the success path)" {
	export CRAC_BIN="$CRAC"
	export CRAC_EXTERNAL_HOOK='"$CRAC_BIN" restore --pid "$CRAC_PID" >/dev/null 2>&1; echo $$ >"'"$T"'/hook.pid"; sleep 1; echo done >"'"$T"'/hook.done"'
	start_prog --self
	wait_for '^returned '
	grep -qx 'returned 2' "$T/out"
	wait_until 3 "$T/hook.done" test -e "$T/hook.done"
}
