#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# An incremental checkpoint stores the pages written since its parent and
# nothing else, also in a mapping right next to the checkpointing thread's
# TLS block (tests/progs/incr_near.c): the capture's own window (pages
# within 1 MiB of its stack and thread pointers, always stored) stays
# inside the mapping that holds them. It once reached into a neighbour, and
# a heap that ASLR happened to place there was stored at every checkpoint.

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup incrnear
	NEAR="$CRAC_BUILD_DIR/tests/incr_near"
}

teardown() {
	common_teardown
}

@test "a mapping next to the TLS block: the incremental image stores its one written page" {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$NEAR" "$T/n0" "$T/n1"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^near "
	echo "$output" | sed -n 's/^near //p' >"$T/near"
	run clean "$CRAC" inspect --json "$T/n1"
	[ "$status" -eq 0 ]
	# each mapping (up to 4 MiB, as much as fits next to the TLS block, at
	# least 2 pages of it within the 1 MiB window): page 0 stored (written),
	# the rest from n0
	echo "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
want = [[int(x, 16) for x in l.split()] for l in open(sys.argv[1]) if l.strip()]
assert want
for a, n in want:
    m = [m for m in d["mappings"] if m["start"] <= a < m["start"] + m["mapped"]]
    assert len(m) == 1, (hex(a), m)
    m = m[0]
    print("%x+%x: mapped %d, stored %d, below %d" % (a, n, m["mapped"], m["stored"], m["below"]))
    # (it may have merged with a neighbour mapped later: ASan maps its own)
    assert m["start"] <= a and a + n <= m["start"] + m["mapped"], m
    assert m["stored"] <= 4096 and m["below"] >= n - 4096, m' "$T/near"
	run --separate-stderr clean "$CRAC" restore "$T/n1"
	echo "restore: $status, $output, $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok" ]
}
