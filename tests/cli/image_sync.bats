#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The image engine makes the image durable with an fsync helper on the other
# core (src/engines/image_capture.c): a clone(CLONE_VM | CLONE_FILES) child
# that fdatasyncs the pages file while the pages are scanned, and fsyncs the
# header and the directory while a second one fsyncs the pages file, while
# the program's threads run again and the checkpointing thread reads the
# image back (it then waits for both, for a bounded time:
# image_sync_stuck.bats). The program never sees it: tests/progs/image_sync_helper.c checks
# after each keep-running checkpoint that no child is left (not even a
# zombie), that no SIGCHLD came and that it still has its two threads; the
# images restore. CRAC_IMAGE_SYNC_HELPER=0 makes every fsync in the
# checkpointing thread, as before.

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup sync CRAC_IMAGE_SYNC_HELPER CRAC_IMAGE_INCREMENTAL
	PROG="$CRAC_BUILD_DIR/tests/image_sync_helper"
	AS=()
}

teardown() {
	common_teardown
}

# run_and_restore [ENV...]: three keep-running checkpoints, then each restored.
run_and_restore() {
	run --separate-stderr clean "${AS[@]}" env "$@" "$PROG" "$T"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "continued ok" ]
	for s in 0 1 2; do
		run --separate-stderr clean "${AS[@]}" "$CRAC" restore "$T/$s"
		echo "restore $s: status $status, stdout: $output, stderr: $stderr"
		[ "$status" -eq 0 ]
		[ "$output" = "restored $s ok" ]
	done
}

@test "the fsync helper leaves no child, no SIGCHLD, no thread; the images restore" {
	run_and_restore
}

@test "incremental images with the fsync helper" {
	run_and_restore CRAC_IMAGE_INCREMENTAL=1
}

@test "CRAC_IMAGE_SYNC_HELPER=0: every fsync in the checkpointing thread" {
	run_and_restore CRAC_IMAGE_SYNC_HELPER=0
}

@test "unprivileged: the fsync helper as nobody" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to switch to nobody"
	command -v setpriv >/dev/null || skip "no setpriv"
	setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$PROG" || skip "build tree not accessible to nobody"
	chown 65534:65534 "$T"
	AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	run_and_restore CRAC_IMAGE_INCREMENTAL=1
}
