#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Probe (s23): memory changed between a parent image and its child in ways
# the other incremental tests do not change it (tests/progs/
# probe_incr_mem.c): a private file mapping's written pages dropped (they
# read the file again), the brk heap shrunk and grown, a mapping shrunk and
# grown in place by mremap or grown with MREMAP_MAYMOVE, a mapping PROT_NONE
# when the parent was written and written after, pages dropped while a
# read-only mapping was writable for a moment, MADV_FREE, a mapping split by
# mprotect or by mappings put over its middle (one chunk of the parent across
# them). A reference to the parent's bytes at any of these pages restores the
# wrong bytes.

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup probemem
	PROBE="$CRAC_BUILD_DIR/tests/probe_incr_mem"
}

teardown() {
	common_teardown
}

# restores DIR: every way ("ok mem"), and it is incremental on its parent
restores_every_way() {
	local dir=$1 opt
	run clean "$CRAC" inspect "$dir"
	echo "$output" | grep "^parent:"
	echo "$output" | grep -q "^parent:    \.\./d0 (header crc32c 0x[0-9a-f]*; 1 image below; [0-9.]* MiB taken from them"
	for opt in "" --populate; do
		run --separate-stderr clean timeout 60 "$CRAC" restore $opt "$dir"
		echo "restore $opt $dir: status $status, stdout: $output, stderr: $stderr"
		[ "$status" -eq 0 ]
		[ "$output" = "ok mem" ]
	done
	run clean "$CRAC" flatten "$dir" "$T/flat"
	[ "$status" -eq 0 ]
	run --separate-stderr clean timeout 60 "$CRAC" restore "$T/flat"
	[ "$output" = "ok mem" ]
	rm -rf "$T/flat"
}

@test "probe: file pages dropped, brk shrunk and grown, mremap shrink/grow/move, PROT_NONE then written, MADV_FREE: the child restores every page" {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$PROBE" "$T/file" "$T/d0" "$T/d1"
	echo "status $status, stdout: $output, stderr: $stderr"
	[ "$status" -eq 0 ]
	restores_every_way "$T/d1"
}

@test "probe: the same changes made by a process restored from the parent (lazily, and eagerly)" {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$PROBE" "$T/file" "$T/d0" "$T/d1"
	[ "$status" -eq 0 ]
	for opt in "" --populate; do
		rm -rf "$T/e"
		run --separate-stderr clean timeout 60 "$CRAC" restore $opt "$T/d0" -- into "$T/e"
		echo "restore $opt d0 into e: status $status, stdout: $output, stderr: $stderr"
		[ "$status" -eq 0 ]
		restores_every_way "$T/e"
	done
}
