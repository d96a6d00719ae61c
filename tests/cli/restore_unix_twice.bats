#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Two plain `crac restore DIR` of one image that listens on a Unix socket
# PATH (not abstract), started together. Between one restore's bind and its
# listen the other found its socket file answering nothing and removed it
# as stale, binding its own: the first then listened on a file no longer
# there, unreachable. The removal, bind and listen are made under a flock
# on the path's directory (src/objects/socket.c, unix_dir_lock): each
# restore ends with a listener that a connection to PATH reaches, or is
# refused with one line naming PATH in use. The test hook
# CRAC_LOADER_TEST_LISTEN_DELAY_MS makes the window between the bind and
# the listen 1.5 s wide.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/obj_sock"
	T="$(mktemp -d /tmp/crac-bats-unix2.XXXXXX)"
	chmod 755 "$T"
	mkdir -m 755 "$T/work"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
	require_image_engine
	PIDS=()
}

teardown() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$T"
}

# restore_bg NAME: `crac restore $T/img` in the background (the window
# between bind and listen made wide), stdout+stderr in $T/NAME.out
restore_bg() {
	(
		for fd in $(ls /proc/$BASHPID/fd); do
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		CRAC_LOADER_TEST_LISTEN_DELAY_MS=1500 exec "$CRAC" restore "$T/img" </dev/null >"$T/$1.out" 2>&1
	) &
	pid=$!
	PIDS+=("$pid")
}

# outcome NAME STATUS: "reachable" (its listener answered on the path), or
# "refused" (one line: the path is in use); anything else fails
outcome() {
	echo "== $1 (status $2):"
	cat "$T/$1.out"
	if [ "$2" -eq 0 ] && grep -q "^reachable " "$T/$1.out" && ! grep -q FAIL "$T/$1.out"; then
		echo reachable >"$T/$1.res"
	elif [ "$2" -eq 1 ] && [ "$(wc -l <"$T/$1.out")" -eq 1 ] &&
		grep -q "^crac: restore $T/img: fd [0-9]* (socket $T/work/sock): $T/work/sock is in use: another process listens there" "$T/$1.out"; then
		echo refused >"$T/$1.res"
	else
		echo "unexpected outcome of $1"
		return 1
	fi
}

@test "two plain restores of one image listening on a Unix path, started together, the bind-listen window wide: each ends reachable or clearly refused, never unreachable" {
	run clean "$PROG" "$T/img" "$T/work" unixonly
	echo "$output"
	[ "$status" -eq 0 ]
	[ -S "$T/work/sock" ]   # stale: the original exited
	for round in 1 2; do
		restore_bg a
		pa=$pid
		restore_bg b
		pb=$pid
		wait "$pa" && sa=0 || sa=$?
		wait "$pb" && sb=0 || sb=$?
		outcome a "$sa"
		outcome b "$sb"
		# they overlapped: at most one can hold the path at a time, and
		# the other found it listening
		[ "$(cat "$T/a.res" "$T/b.res" | sort | tr '\n' ' ')" = "reachable refused " ]
	done
}
