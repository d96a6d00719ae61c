#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The external engine's hook ($CRAC_EXTERNAL_HOOK, src/engines/external.c)
# gets the program's stdin, stdout and stderr and no other descriptor: one
# the program holds without close-on-exec (here fd 3, a file) would stay
# open in the hook and all it starts (a lock, a listening socket, a pipe's
# end its peer waits to see closed).

load common
load ext_common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/ext_prog"
	T="$(mktemp -d /tmp/crac-bats-exthookfd.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_CONTROL CRAC_EXTERNAL_HOOK CRAC_EXTERNAL_PARK_MS CRAC_EXTERNAL_GENERATION_FILE \
		CRAC_EXTERNAL_TEST_REALTIME_OFFSET_FILE CRAC_EXTERNAL_TEST_BOOT_ID_FILE \
		CRAC_EXTERNAL_VMCLOCK CRAC_EXTERNAL_JUMP_MS
	export CRAC_ENGINE=external CRAC_EXTERNAL_LOGIND=0 CRAC_EXTERNAL_POLL_MS=50
	PID=
}

teardown() {
	if [ -n "$PID" ]; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$T"
}

@test "the hook gets only stdin, stdout and stderr, not a descriptor the program holds without close-on-exec" {
	export CRAC_BIN="$CRAC"
	# the hook lists its descriptors (ls's own: the directory it reads),
	# then resumes the process
	export CRAC_EXTERNAL_HOOK='ls -l /proc/self/fd >"'"$T"'/hook.fds"; "$CRAC_BIN" restore --pid "$CRAC_PID" >"'"$T"'/hook.resume" 2>&1'
	# fd 3 of the program: $T/held, open without close-on-exec
	SPAWN_FD3="$T/held" start_prog --self
	wait_for '^returned '
	cat "$T/hook.fds"
	grep -qx 'returned 2' "$T/out"
	# the program holds it (still), no close-on-exec
	[ "$(readlink "/proc/$PID/fd/3")" = "$T/held" ]
	flags="$(awk '/^flags:/ { print $2 }' "/proc/$PID/fdinfo/3")"
	[ -n "$flags" ]
	[ $(( 8#$flags & 02000000 )) -eq 0 ]
	# the hook had 0, 1, 2 and ls's directory, nothing of the program's
	! grep -q "$T/held" "$T/hook.fds" || false
	fds="$(awk 'NR > 1 && $(NF - 1) == "->" { print $(NF - 2) }' "$T/hook.fds" | sort -n | tr '\n' ' ')"
	echo "fds: $fds"
	[ "$fds" = "0 1 2 3 " ]
	grep -Eq ' 3 -> /proc/[0-9]+/fd$' "$T/hook.fds"
}
