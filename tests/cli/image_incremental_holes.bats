#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Holes, dropped pages and the zero page in a tracked mapping, along a
# chain of incremental checkpoints (tests/progs/incr_holes.c): every image
# restores them as zeros, never as bytes of an image below, and stores
# nothing for them. A re-protect that also marks holes (the kernel's
# written-only fast path leaves uffd-wp markers there, reported swapped and
# not written) must keep this true; so must a dropped page and a 2 MiB range
# dropped whole (its page table may be freed).

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup incrholes
	HOLES="$CRAC_BUILD_DIR/tests/incr_holes"
}

teardown() {
	common_teardown
}

@test "holes, the zero page and dropped pages restore as zeros from every image of a chain" {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 CRAC_IMAGE_STATS=1 "$HOLES" "$T"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | tail -1)" = "done" ]
	echo "$stderr" | grep -q "referenced from 4 images below"
	for x in k0 k1 k2 k3 k4; do
		for how in "" --populate; do
			run --separate-stderr clean "$CRAC" restore $how "$T/$x"
			echo "restore $how $x: status $status, $output, $stderr"
			[ "$status" -eq 0 ]
			[ "$output" = "ok $x" ]
		done
	done
	# nothing of H's holes or of the dropped D is stored again: k1 and k4
	# (nothing written) store only the capture's own pages
	for x in k1 k4; do
		run clean "$CRAC" inspect --json "$T/$x"
		[ "$status" -eq 0 ]
		echo "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
big = [m for m in d["mappings"] if m["mapped"] >= (6 << 20)]
assert big, "no 6 MiB mapping"
for m in big:
    print("%x: mapped %d, stored %d, below %d" % (m["start"], m["mapped"], m["stored"], m["below"]))
    assert m["stored"] == 0, m
'
	done
}
