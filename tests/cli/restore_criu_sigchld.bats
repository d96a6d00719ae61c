#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# crac restore of a CRIU image (src/cli/cmd_restore_criu.c) started with
# SIGCHLD ignored (a SIG_IGN survives exec: a caller that ignores it hands
# it on): the kernel would reap criu unseen, and a criu restore that
# succeeded would be taken for a failed one (exit status unknown) while the
# restored process runs on, never told it was restored. criu here is a
# stand-in (CRAC_CRIU), which "restores" nothing and exits 0: crac restore
# goes on to tell a process that is not there, and ends with 0.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-criusigchld.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LOADER CRAC_TEST_SLOW_FS \
		CRAC_TEST_SYNC_GRACE_MS CRAC_CRIU_OPTS LISTEN_FDS LISTEN_PID
	mkdir -m 700 "$T/img"
	# a pid no process has (above any pid_max)
	printf 'crac-criu-image 1\npid=2147483000\ntid=2147483000\nuid=0\n' >"$T/img/crac-criu"
	chmod 600 "$T/img/crac-criu"
	printf '#!/bin/sh\n[ "$1" = check ] && exit 0\nsleep 0.3\nexit 0\n' >"$T/criu"
	chmod 755 "$T/criu"
}

teardown() {
	rm -rf "$T"
}

# restored [WRAPPER...]: crac restore $T/img run by WRAPPER: status 0, criu
# not taken for failed, no work directory of criu's kept
restored() {
	run clean env CRAC_CRIU="$T/criu" TMPDIR="$T" timeout -k 5 60 "$@" "$CRAC" restore "$T/img"
	echo "$status: $output"
	[ "$status" -eq 0 ]
	! echo "$output" | grep -q "failed" || false
	echo "$output" | grep -q "is not crac restore's child"
	[ -z "$(ls "$T" | grep "^crac-criu-restore\.")" ]
}

@test "crac restore of a CRIU image: criu's success seen as such" {
	restored
}

@test "crac restore of a CRIU image started with SIGCHLD ignored: criu's success seen as such" {
	restored "$CRAC_BUILD_DIR/tests/sigchld_ign"
}
