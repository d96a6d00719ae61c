#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The external engine under hostile conditions (review of the parked
# process and its hook):
#  - a program that ignores SIGCHLD (its children are reaped by the kernel)
#    still learns how its CRAC_EXTERNAL_HOOK ended: a failing or killed hook
#    resumes it at once, not at the park deadline;
#  - the process that waits for the hook (a copy of the program) holds none
#    of the program's descriptors while the hook runs;
#  - under `crac run` (libcrac in LD_PRELOAD), the hook's processes are no
#    crac programs: no control endpoint or engine of their own.

load common
load ext_common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/ext_prog"
	IGN="$CRAC_BUILD_DIR/tests/sigchld_ign"
	T="$(mktemp -d /tmp/crac-bats-exta.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_CONTROL CRAC_EXTERNAL_HOOK CRAC_EXTERNAL_PARK_MS CRAC_EXTERNAL_GENERATION_FILE \
		CRAC_EXTERNAL_TEST_REALTIME_OFFSET_FILE CRAC_EXTERNAL_TEST_BOOT_ID_FILE \
		CRAC_EXTERNAL_VMCLOCK CRAC_EXTERNAL_JUMP_MS
	export CRAC_ENGINE=external
	export CRAC_EXTERNAL_LOGIND=0
	export CRAC_EXTERNAL_WATCH=0
	PID=
}

teardown() {
	if [ -n "$PID" ]; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$T"
}

# start_ign [ext_prog options]: ext_prog with SIGCHLD ignored
start_ign() {
	local prog=$PROG
	PROG=$IGN
	start_prog "$prog" "$@"
	PROG=$prog
}

@test "SIGCHLD ignored: a failing hook resumes at once (not at the park deadline), its status in the report" {
	# a deadline far beyond wait_for's 10 s: only the hook's status can end the park in time
	export CRAC_EXTERNAL_PARK_MS=60000
	export CRAC_EXTERNAL_HOOK='exit 3'
	start_ign --self
	wait_for '^returned '
	grep -qx 'returned 3' "$T/out"
	grep -qE '^after alpha gen=0 engine=external outcome=3 unannounced=0 ' "$T/out"
	grep -qE 'engine external: .*CRAC_EXTERNAL_HOOK \(pid [0-9]+\) exited with status 3: no snapshot' "$T/out"
}

@test "SIGCHLD ignored: a hook killed by SIGKILL resumes at once, naming the signal" {
	export CRAC_EXTERNAL_PARK_MS=60000
	export CRAC_EXTERNAL_HOOK='echo $$ >"'"$T"'/hook.pid"; kill -9 $$'
	start_ign --self
	wait_for '^returned '
	grep -qx 'returned 3' "$T/out"
	grep -qE "CRAC_EXTERNAL_HOOK \\(pid $(cat "$T/hook.pid")\\) was killed by signal 9: no snapshot" "$T/out"
}

@test "SIGCHLD ignored: a hook that succeeds and resumes the process itself: RESTORED" {
	export CRAC_EXTERNAL_PARK_MS=60000
	export CRAC_BIN="$CRAC"
	export CRAC_EXTERNAL_HOOK='"$CRAC_BIN" restore --pid "$CRAC_PID" >/dev/null 2>&1'
	start_ign --self
	wait_for '^returned '
	grep -qx 'returned 2' "$T/out"
	grep -qE '^after alpha gen=1 engine=external outcome=2 unannounced=0 ' "$T/out"
}

@test "the process that waits for the hook keeps none of the program's descriptors open while it runs" {
	export CRAC_EXTERNAL_PARK_MS=60000
	export CRAC_BIN="$CRAC"
	# the hook's parent: its descriptors, then the resume
	export CRAC_EXTERNAL_HOOK='ls /proc/$PPID/fd >"'"$T"'/parent.fds" 2>&1; "$CRAC_BIN" restore --pid "$CRAC_PID" >/dev/null 2>&1'
	start_prog --self
	wait_for '^returned '
	grep -qx 'returned 2' "$T/out"
	cat "$T/parent.fds"
	[ ! -s "$T/parent.fds" ]
}

@test "under crac run, the hook's processes are not crac programs themselves (no endpoint, no engine of their own)" {
	export CRAC_EXTERNAL_PARK_MS=60000
	export CRAC_BIN="$CRAC"
	mkdir -m 700 "$T/ctl"
	# while the hook runs (and a child of it), the control sockets there are the program's only
	export CRAC_EXTERNAL_HOOK='sleep 0.5; ls "$CRAC_CONTROL_DIR" >"'"$T"'/ctl.ls"; env >"'"$T"'/hook.env"; "$CRAC_BIN" restore --pid "$CRAC_PID" >/dev/null 2>&1'
	spawn "$T/out" "$T/err" "$CRAC" run --engine external -- "$PROG" --self
	PID=$SPAWNED
	wait_for '^returned '
	grep -qx 'returned 2' "$T/out"
	cat "$T/ctl.ls"
	[ "$(wc -l <"$T/ctl.ls")" -eq 1 ]
	! grep -q '^CRAC_ENGINE=' "$T/hook.env" || false
	! grep -q '^CRAC_CONTROL=' "$T/hook.env" || false
}
