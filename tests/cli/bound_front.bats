#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `crac restore DIR` (the crac command is the restore loader, src/loader/
# front.c) on a file system that does not answer, for real
# (bound_common.bash: a FUSE mount whose server never answers): its look
# for a CRIU image's marker is given up on at crac restore's limit, said
# as crac-cli's restore says it, instead of waiting for ever. Before, the
# lstat was the loader's own and `crac restore DIR` never returned.

bats_require_minimum_version 1.5.0

load common
load bound_common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-boundfront.XXXXXX)"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LOADER LISTEN_FDS LISTEN_PID
	unset CRAC_TEST_SLOW_FS CRAC_TEST_SYNC_GRACE_MS
	FROZEN=()
	FROZEN_PIDS=()
}

teardown() {
	thaw_mounts
	rm -rf "$T"
}

@test "front: crac restore DIR on a file system that does not answer gives up at crac restore's limit, naming the marker, as crac-cli does" {
	freeze_mount "$T/m"
	t0=$(date +%s%N)
	run --separate-stderr clean timeout -k 5 30 env CRAC_TEST_SYNC_GRACE_MS=1000 "$CRAC" restore "$T/m/img" </dev/null
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status ($ms ms): $output / $stderr"
	[ "$status" -eq 1 ]
	[ "$ms" -ge 900 ]
	[ "$ms" -lt 10000 ]
	[ "$stderr" = "crac: restore $T/m/img: the lstat of $T/m/img/crac-criu did not return after $(echo "$stderr" | sed -n 's/.* after \([0-9]*\) ms .*/\1/p') ms (crac restore's limit, 1000 ms): its file system does not answer; given up" ]
	# the same words as crac-cli's (--timens: a restore the loader does
	# not do itself)
	run --separate-stderr clean timeout -k 5 30 env CRAC_TEST_SYNC_GRACE_MS=1000 "$CRAC" restore --timens "$T/m/img" </dev/null
	echo "$status: $output / $stderr"
	[ "$status" -eq 1 ]
	echo "$stderr" | grep -Eq "^crac: restore $T/m/img: the lstat of $T/m/img/crac-criu did not return after [0-9]+ ms \(crac restore's limit, 1000 ms\): its file system does not answer; given up$"
}

@test "front: a look for the marker that answers: no marker, the loader's restore; a marker, crac-cli's" {
	run --separate-stderr clean "$CRAC" restore "$T/none" </dev/null
	echo "$status: $output / $stderr"
	[ "$status" -ne 0 ]
	[ "$stderr" = "crac: restore $T/none: cannot open the image directory: No such file or directory (errno 2)" ]
	mkdir "$T/c"
	echo "crac-criu-image 1" >"$T/c/crac-criu"
	run --separate-stderr clean env CRAC_CRIU="$T/no-criu" "$CRAC" restore "$T/c" </dev/null
	echo "$status: $output / $stderr"
	[ "$status" -ne 0 ]
	[ "$stderr" = "crac: $T/c/crac-criu is not a marker of the criu engine (first line \"crac-criu-image 1\", a pid and a tid expected)" ]
}
