#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# crac restore's looks at DIR before the loader, on a file system that does
# not answer (an NFS or FUSE server gone), simulated by
# CRAC_TEST_SLOW_FS=OP:MS (src/image/dir.c: the step first sleeps MS ms):
# the look for a CRIU image's marker (`criu`), the check of a CRIU image's
# owner (`owner`) and the read of its marker (`read`), the read of an
# image's header under socket activation (`header`) are made by helpers
# bounded by crac restore's limit (30 s; CRAC_TEST_SYNC_GRACE_MS in tests)
# and given up on naming the step and the path. (`crac restore DIR` of the
# image engine without activation is the loader's own, src/loader/front.c;
# these run in crac-cli, which the front execs for a CRIU image, under
# socket activation, or is run directly here.)

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	CLI="$CRAC_BUILD_DIR/crac-cli"
	T="$(mktemp -d /tmp/crac-bats-rststuck.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LOADER CRAC_TEST_SLOW_FS \
		CRAC_TEST_SYNC_GRACE_MS LISTEN_FDS LISTEN_PID
	mkdir -m 700 "$T/img"
}

teardown() {
	rm -rf "$T"
}

# given_up OP WHAT CMD...: CMD with step OP held for 600 s and a limit of
# 1 s fails (status 1) within 10 s with one line: "crac: restore $T/img: "
# WHAT (an extended regular expression) " did not return after N ms
# (crac restore's limit, 1000 ms): its file system does not answer; given up"
given_up() {
	local op=$1 what=$2 t0 ms
	shift 2
	t0=$(date +%s%N)
	run clean env CRAC_TEST_SLOW_FS=$op:600000 CRAC_TEST_SYNC_GRACE_MS=1000 timeout -k 5 60 "$@"
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$op: $status: $output ($ms ms)"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	echo "$output" | grep -Eq "^crac: restore $T/img: $what did not return after [0-9]+ ms \\(crac restore's limit, 1000 ms\\): its file system does not answer; given up$"
	[ "$ms" -lt 10000 ]
}

@test "crac restore: the look for a CRIU image's marker that does not return is given up, naming the path" {
	given_up criu "the lstat of $T/img/crac-criu" "$CLI" restore "$T/img"
}

@test "crac restore of a CRIU image: the check of its owner and the read of its marker that do not return are given up, naming the path" {
	printf 'crac-criu-image 1\npid=2147483000\ntid=2147483000\nuid=0\n' >"$T/img/crac-criu"
	chmod 600 "$T/img/crac-criu"
	given_up owner "the check of the owner of $T/img and its files" "$CRAC" restore "$T/img"
	given_up read "the read of $T/img/crac-criu" "$CRAC" restore "$T/img"
	# they answer: the checks pass and the restore goes on (to criu, or
	# to the lack of it)
	run clean env CRAC_TEST_SYNC_GRACE_MS=1000 timeout -k 5 60 "$CRAC" restore "$T/img"
	echo "$status: $output"
	! echo "$output" | grep -q "did not return" || false
	! echo "$output" | grep -q "owned by\|not a marker" || false
}

@test "crac restore under socket activation: the read of the image's header that does not return is given up, naming the image" {
	# LISTEN_PID: the shell's pid, which exec keeps (crac, then crac-cli)
	given_up header "the open of the image $T/img \\(its directory, header and pages files\\)" \
		sh -c 'export LISTEN_FDS=1 LISTEN_PID=$$; exec "$0" restore "$1"' "$CRAC" "$T/img"
}
