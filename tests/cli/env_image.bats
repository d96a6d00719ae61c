#!/usr/bin/env bats
# The restore-time environment with real image restores (issue 5):
# `crac restore DIR --env K=V -- ARGS` reaches the after_restore callbacks
# (event argv/envp) and environ; crac_clock_monotonic_ns() never goes back
# across three checkpoint/restore cycles of one process (restore ->
# checkpoint -> restore ...).

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/env_image"
	TMP="$(mktemp -d)"
	unset X Y CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
}

teardown() {
	rm -rf "$TMP"
}

clean() {
	(
		for fd in $(ls /proc/$BASHPID/fd); do
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		exec "$@"
	)
}

@test "image restore: new args and env reach the event and environ" {
	run clean "$PROG" "$TMP/img" 1
	echo "$output"
	[ "$status" -eq 0 ]
	run clean "$CRAC" restore "$TMP/img" --env X=1 --env 'Y=p q=r' -- a 'b c'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "cycle 1: gen=1 argc=2 [a] [b c] env=[X=1] env=[Y=p q=r] X=1 Y=p q=r" ]
	# without --env: nothing new
	run clean "$CRAC" restore "$TMP/img"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "cycle 1: gen=1 argc=0 X=(unset) Y=(unset)" ]
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
