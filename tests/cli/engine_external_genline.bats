#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The watcher's generation file ($CRAC_EXTERNAL_GENERATION_FILE): a change
# of its first line is a restore, however long that line is. Only its first
# 127 bytes were compared: a platform publishing a longer line (a JSON
# object, a VM id before the counter) had every restore missed, and the
# restored instances kept the identity of the original.

load common
load ext_common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/ext_prog"
	T="$(mktemp -d /tmp/crac-bats-extg.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_CONTROL CRAC_EXTERNAL_HOOK CRAC_EXTERNAL_PARK_MS CRAC_EXTERNAL_GENERATION_FILE \
		CRAC_EXTERNAL_TEST_REALTIME_OFFSET_FILE CRAC_EXTERNAL_TEST_BOOT_ID_FILE \
		CRAC_EXTERNAL_VMCLOCK CRAC_EXTERNAL_JUMP_MS
	export CRAC_ENGINE=external
	export CRAC_EXTERNAL_LOGIND=0
	export CRAC_EXTERNAL_POLL_MS=20
	export CRAC_LOG=info
	PID=
}

teardown() {
	if [ -n "$PID" ]; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$T"
}

restores() {
	grep -c '^after alpha ' "$T/out" || true
}

# line N GEN: a first line of N bytes (GEN one digit), GEN near its end
line() {
	local pad
	pad=$(printf '%*s' "$1" '' | tr ' ' v)
	printf '{"vm":"%s","generation":%s}\n' "${pad:0:$(($1 - 24))}" "$2"
}

@test "watcher: a change at the end of a 300-byte first line is a restore" {
	line 300 1 >"$T/gen"
	[ "$(head -1 "$T/gen" | wc -c)" -eq 301 ]
	export CRAC_EXTERNAL_GENERATION_FILE="$T/gen"
	start_prog
	sleep 0.2
	line 300 2 >"$T/gen.new"
	mv "$T/gen.new" "$T/gen"
	wait_for '^after beta gen=1 '
	line 300 3 >"$T/gen.new"
	mv "$T/gen.new" "$T/gen"
	wait_for '^after beta gen=2 '
	sleep 0.2
	cat "$T/err"
	[ "$(restores)" -eq 2 ]
	grep -q "the generation file $T/gen went from .*(its first line changed past what is shown)" "$T/err"
}

@test "watcher: a change at the end of a 20000-byte first line is a restore; a second line is not read" {
	{ line 20000 1; echo second; } >"$T/gen"
	export CRAC_EXTERNAL_GENERATION_FILE="$T/gen"
	start_prog
	sleep 0.2
	{ line 20000 1; echo other; } >"$T/gen.new"
	mv "$T/gen.new" "$T/gen"
	sleep 0.3
	[ "$(restores)" -eq 0 ]
	{ line 20000 2; echo other; } >"$T/gen.new"
	mv "$T/gen.new" "$T/gen"
	wait_for '^after beta gen=1 '
	sleep 0.2
	[ "$(restores)" -eq 1 ]
}
