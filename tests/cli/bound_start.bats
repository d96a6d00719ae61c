#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# crac start's look at whether DIR is a mount point (src/cli/cmd_start.c:
# mount_point, after the rename of the new image onto DIR failed with
# EBUSY or EXDEV): its lstat of DIR and stat of DIR's parent are bounded
# by --timeout as crac start's other looks at DIR. Simulated by
# CRAC_TEST_SLOW_FS=mountpoint:MS (src/image/dir.c: the lstat's helper
# first sleeps MS ms): a real file system that does not answer at DIR
# would be given up on earlier, at the check of DIR. Before, the lstat was
# made by crac start itself, never given up on.

bats_require_minimum_version 1.5.0

load common
load start_common

setup() {
	T="$(mktemp -d /tmp/crac-bats-boundstart.XXXXXX)"
	chmod 755 "$T"
	start_setup
	unset CRAC_TEST_SLOW_FS CRAC_TEST_SYNC_GRACE_MS
	require_image_engine
	MOUNTED=
	mkdir -m 700 "$T/D"
	mount -t tmpfs -o mode=700,size=64m tmpfs "$T/D" 2>/dev/null ||
		skip "cannot mount a tmpfs here (not root, or no mount permission)"
	MOUNTED="$T/D"
}

teardown() {
	[ -z "$MOUNTED" ] || umount "$MOUNTED" 2>/dev/null || true
	start_teardown
}

@test "crac start --image on a mount point whose lstat does not return: given up at --timeout naming DIR; the program runs on, nothing left next to DIR" {
	t0=$(date +%s%N)
	bg cold env CRAC_TEST_SLOW_FS=mountpoint:600000 "$CRAC" start --image "$T/D" --timeout 1s --checkpoint-on-ready \
		-- "$SERVER" "$T/d" 100
	for _ in $(seq 400); do grep -q "not known" "$T/cold.err" 2>/dev/null && break; sleep 0.05; done
	ms=$((($(date +%s%N) - t0) / 1000000))
	cat "$T/cold.err"
	echo "($ms ms)"
	grep -Eq "cannot put the image $T/D\.new-[0-9]+ in place at $T/D: (Device or resource busy|Invalid cross-device link); whether it is a mount point is not known: the lstat of $T/D did not return after [0-9]+ ms \(crac start --timeout, 1000 ms\): its file system does not answer; given up" "$T/cold.err"
	[ "$ms" -lt 15000 ]
	kill -0 "$pid"
	! ls -d "$T"/D.new-* 2>/dev/null || false
}
