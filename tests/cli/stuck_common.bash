# SPDX-License-Identifier: MIT
# Shared by the tests of a file system that does not answer
# (image_sync_stuck.bats, robust_fs_stuck.bats). Needs common.bash, $PROG
# (ctlprog), $T and the array PIDS (killed in teardown).

# start_prog NAME [ENV...]: ctlprog with its control endpoint and ENV, in
# the background (stdio only: $T/NAME.out, $T/NAME.err); its pid in $pid,
# once it printed "ready" (5 s at most)
start_prog() {
	local name="$1"
	shift
	spawn "$T/$name.out" "$T/$name.err" env "$@" "$PROG" --control
	pid=$SPAWNED
	PIDS+=("$pid")
	for _ in $(seq 250); do
		grep -q '^ready' "$T/$name.out" 2>/dev/null && return 0
		sleep 0.02
	done
	return 1
}

# state DIR: every file of DIR with its checksum
state() {
	(cd "$1" && find . -type f | sort | xargs md5sum)
}

# checkpoint_stuck ENV...: ctlprog with ENV and a grace of 1 s
# (CRAC_TEST_SYNC_GRACE_MS) started as "stuck" ($pid), then checkpointed to
# $T/img with a deadline of 1 s (60 s at most): the checkpoint's $status and
# $output (printed), and $ms, how long it took.
checkpoint_stuck() {
	local t0
	start_prog stuck CRAC_TEST_SYNC_GRACE_MS=1000 "$@"
	t0=$(date +%s%N)
	run timeout -k 5 60 "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running --deadline 1000 "$pid"
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status: $output"
}

# runs_on: the program ($pid) still runs and answers a checkpoint, and no
# helper it started for the file system is left (each ended with its sleep).
runs_on() {
	kill -0 "$pid"
	run "$CRAC" checkpoint --engine sim "$pid"
	[ "$status" -eq 0 ]
	[ -z "$(ps -o pid= --ppid "$pid")" ]
}

# stuck_setup NAME: the setup of a test of a file system that does not
# answer (robust_fs_stuck.bats, bound_tmp.bats): common_setup NAME with the
# control endpoint and the variables that slow or shorten it unset, $PROG
# ctlprog, the image engine required.
stuck_setup() {
	common_setup "$1" --open --control CRAC_IMAGE_SYNC_HELPER CRAC_IMAGE_INCREMENTAL \
		CRAC_TEST_SLOW_SYNC_MS CRAC_TEST_SYNC_GRACE_MS CRAC_TEST_SLOW_FS
	PROG="$CRAC_BUILD_DIR/tests/ctlprog"
	require_image_engine
}
