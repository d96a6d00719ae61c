#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The restore-time environment with real image restores (issue 5):
# `crac restore DIR --env K=V -- ARGS` reaches the after_restore callbacks
# (event argv/envp) and environ; crac_clock_monotonic_ns() never goes back
# across three checkpoint/restore cycles of one process (restore ->
# checkpoint -> restore ...).

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/env_image"
	TMP="$(mktemp -d)"
	unset X Y CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
}

teardown() {
	rm -rf "$TMP"
}

@test "image restore: new args and env reach the event and environ" {
	run clean "$PROG" "$TMP/img" 1
	echo "$output"
	[ "$status" -eq 0 ]
	run clean "$CRAC" restore "$TMP/img" --env X=1 --env 'Y=p q=r' -- a 'b c'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "cycle 1: gen=1 argc=2 [a] [b c] env=[X=1] env=[Y=p q=r] X=1 Y=p q=r" ]
	# without --env: nothing new
	run clean "$CRAC" restore "$TMP/img"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "cycle 1: gen=1 argc=0 X=(unset) Y=(unset)" ]
	run "$CRAC" restore "$TMP/img" --env NOEQUALS
	[ "$status" -eq 2 ]
	[[ "$output" == *"--env needs KEY=VALUE"* ]]
}

@test "image restore: monotonic clock never goes back across 3 cycles" {
	run clean "$PROG" "$TMP/img" 3
	[ "$status" -eq 0 ]
	for c in 1 2 3; do
		run clean "$CRAC" restore "$TMP/img"
		echo "$output"
		[ "$status" -eq 0 ]
		echo "$output" | grep -q "^cycle $c: gen=$c argc=0"
		echo "$output" | grep -q "^cycle $c: monotonic ok"
	done
	[ "${lines[-1]}" = "done" ]
}

@test "restore --timens: CLOCK_MONOTONIC continues from the checkpoint (root, or nobody in a user namespace)" {
	[ "$(id -u)" -eq 0 ] || skip "needs root (or a user namespace) to create a time namespace"
	run clean "$PROG" "$TMP/img" 1
	[ "$status" -eq 0 ]
	sleep 1.5
	# without --timens the plain clock shows the 1.5 s gap
	run clean "$CRAC" restore "$TMP/img"
	echo "$output"
	[ "$status" -eq 0 ]
	ms=$(echo "$output" | sed -n 's/^cycle 1: CLOCK_MONOTONIC moved \([0-9]*\) ms$/\1/p')
	[ "$ms" -ge 1500 ]
	# with it, the gap is gone
	run clean "$CRAC" restore --timens "$TMP/img"
	echo "$output"
	[ "$status" -eq 0 ]
	ms=$(echo "$output" | sed -n 's/^cycle 1: CLOCK_MONOTONIC moved \([0-9]*\) ms$/\1/p')
	[ "$ms" -lt 500 ]

	# unprivileged: a clear refusal, and the user-namespace route works
	command -v setpriv >/dev/null || skip "no setpriv"
	chmod 755 "$TMP"
	chown -R 65534:65534 "$TMP/img"
	setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$CRAC" || skip "build tree not accessible to nobody"
	NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
	run clean $NOBODY "$CRAC" restore --timens "$TMP/img"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"--timens: cannot create a time namespace: Operation not permitted; it needs CAP_SYS_ADMIN"* ]]
	if $NOBODY unshare -U -r true 2>/dev/null; then
		run clean $NOBODY unshare -U -r "$CRAC" restore --timens "$TMP/img"
		echo "$output"
		[ "$status" -eq 0 ]
		ms=$(echo "$output" | sed -n 's/^cycle 1: CLOCK_MONOTONIC moved \([0-9]*\) ms$/\1/p')
		[ "$ms" -lt 500 ]
	fi
}
