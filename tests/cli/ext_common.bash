# SPDX-License-Identifier: MIT
# ext_common.bash - helpers of the external engine's tests
# (tests/cli/engine_external*.bats: `load ext_common` after `load common`).
# They use $PROG (tests/progs/ext_prog), $T, and set $PID.

# start_prog [ext_prog options]: in the background, output in $T/out and
# $T/err; returns once it printed "ready" (up to 5 s).
start_prog() {
	spawn "$T/out" "$T/err" "$PROG" "$@"
	PID=$SPAWNED
	for _ in $(seq 250); do
		grep -q '^ready' "$T/out" 2>/dev/null && return 0
		sleep 0.02
	done
	cat "$T/err" >&2
	return 1
}

# wait_for PATTERN [FILE]: up to 10 s for a line of FILE ($T/out) matching
# the extended regular expression PATTERN.
wait_for() {
	for _ in $(seq 500); do
		grep -qE "$1" "${2:-$T/out}" 2>/dev/null && return 0
		sleep 0.02
	done
	echo "--- out:" >&2; cat "$T/out" >&2
	echo "--- err:" >&2; cat "$T/err" >&2
	return 1
}
