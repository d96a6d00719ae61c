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
