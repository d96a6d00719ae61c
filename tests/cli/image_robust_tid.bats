#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Threads that take and release a robust mutex in a tight loop
# (tests/progs/robust_hammer.c) are mostly stopped inside the C library's
# lock code, between reading their tid and storing it into the lock word
# (or comparing it with the lock word, in the unlock). Restored with fresh
# thread ids (unprivileged: clone3 cannot ask for the old ones), such a
# worker must go on with its new tid (image_threads.c, in_libc_code and
# fix_cached_tid). It took the lock under its old tid, its unlock failed
# with EPERM and every other worker waited forever: about one image in two
# (image_restore.bats test 10 hung that way, once, in CI).

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/robust_hammer"
	T="$(mktemp -d /tmp/crac-bats-robusttid.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LOADER
	require_image_engine
	# fresh tids: as nobody when this is root, else as this user
	NOBODY=
	if [ "$(id -u)" -eq 0 ]; then
		need_nobody "$PROG"
		chown 65534:65534 "$T"
	fi
}

teardown() {
	rm -rf "$T"
}

@test "robust mutex in a tight loop: restored with fresh tids, every worker unlocks and is joined (8 images)" {
	for i in 1 2 3 4 5 6 7 8; do
		run clean $NOBODY timeout 60 "$PROG" "$T/img$i"
		echo "checkpoint $i: $status $output"
		[ "$status" -eq 0 ]
		[ -f "$T/img$i/header" ]
		run clean $NOBODY timeout 60 "$CRAC" restore "$T/img$i"
		echo "restore $i: $status $output"
		[ "$status" -eq 0 ]
		echo "$output" | grep -q "^restored ok: 4 workers joined"
	done
}
