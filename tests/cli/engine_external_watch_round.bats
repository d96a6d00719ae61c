#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The external engine's watcher (src/engines/external_watch.c) and rounds:
# a change of a source (here the generation file) seen while a round is on
# is that round's own only when the round restored (an announced snapshot:
# CRAC_RESTORED, new identity). A round that ended without a snapshot
# (a failing hook: CRAC_ABORTED) leaves it to the watcher: a snapshot that
# happened meanwhile is an unannounced restore, run once the round is over,
# never lost. A round that restored between two samples of the watcher is
# not taken for a second, unannounced restore.

load common
load ext_common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/ext_prog"
	T="$(mktemp -d /tmp/crac-bats-extwr.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_CONTROL CRAC_EXTERNAL_HOOK CRAC_EXTERNAL_PARK_MS \
		CRAC_EXTERNAL_TEST_REALTIME_OFFSET_FILE CRAC_EXTERNAL_TEST_BOOT_ID_FILE \
		CRAC_EXTERNAL_VMCLOCK CRAC_EXTERNAL_JUMP_MS
	export CRAC_ENGINE=external CRAC_EXTERNAL_LOGIND=0 CRAC_LOG=info
	export CRAC_EXTERNAL_GENERATION_FILE="$T/gen" CRAC_BIN="$CRAC"
	echo 7 >"$T/gen"
	PID=
}

teardown() {
	if [ -n "$PID" ]; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$T"
}

@test "a generation change during a round that aborts (failing hook) is an unannounced restore once the round is over" {
	export CRAC_EXTERNAL_POLL_MS=50
	# the platform snapshots and restores while parked, but the hook fails:
	# the round says no snapshot (ABORTED); the watcher samples the new
	# generation during it (300 ms, samples every 50 ms)
	export CRAC_EXTERNAL_HOOK='echo 8 >"'"$T"'/gen"; sleep 0.3; exit 3'
	start_prog --self
	wait_for '^returned '
	grep -qx 'returned 3' "$T/out"
	grep -qE '^after alpha gen=0 engine=external outcome=3 unannounced=0 ' "$T/out"
	# then the watcher's: the snapshot happened
	wait_for '^after beta gen=1 engine=external outcome=2 unannounced=1 '
	cat "$T/out"
	grep -qE '^after alpha gen=1 engine=external outcome=2 unannounced=1 ' "$T/out"
	grep -q "unannounced restore detected: the generation file $T/gen went from \"7\" to \"8\"; generation 1" "$T/err"
	# once
	sleep 0.3
	[ "$(grep -c '^after alpha' "$T/out")" -eq 2 ]
}

@test "a round that restores between two samples of the watcher: its change is its own, not a second restore" {
	# samples 2 s apart: the round (hook: new generation, then resume) is
	# over long before the next one
	export CRAC_EXTERNAL_POLL_MS=2000
	export CRAC_EXTERNAL_HOOK='echo 8 >"'"$T"'/gen"; "$CRAC_BIN" restore --pid "$CRAC_PID" >"'"$T"'/hook.resume" 2>&1'
	start_prog --self
	wait_for '^returned '
	grep -qx 'returned 2' "$T/out"
	grep -qE '^after alpha gen=1 engine=external outcome=2 unannounced=0 ' "$T/out"
	# two samples later: still one restore
	sleep 4.5
	cat "$T/out"
	[ "$(grep -c '^after alpha' "$T/out")" -eq 1 ]
	! grep -q 'unannounced=1' "$T/out" || false
	! grep -q "unannounced restore detected" "$T/err" || false
}

@test "a round that restores while the watcher samples: its change is its own, one restore" {
	export CRAC_EXTERNAL_POLL_MS=50
	export CRAC_EXTERNAL_HOOK='echo 8 >"'"$T"'/gen"; sleep 0.3; "$CRAC_BIN" restore --pid "$CRAC_PID" >"'"$T"'/hook.resume" 2>&1'
	start_prog --self
	wait_for '^returned '
	grep -qx 'returned 2' "$T/out"
	grep -qE '^after alpha gen=1 engine=external outcome=2 unannounced=0 ' "$T/out"
	sleep 0.5
	cat "$T/out"
	[ "$(grep -c '^after alpha' "$T/out")" -eq 1 ]
	! grep -q "unannounced restore detected" "$T/err" || false
}
