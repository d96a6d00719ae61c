#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Review of the command line (getopt_long everywhere, review2): edge cases
# of option parsing that must refuse with one line and exit 2 rather than
# do something else than what was asked.

bats_require_minimum_version 1.5.0
load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-adv2.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
}

teardown() {
	rm -rf "$T"
}

@test "crac restore DIR --pid PID: refused (DIR and --pid exclude each other in either order), nothing resumed" {
	mkdir "$T/img"
	# --pid before DIR was refused already
	run --separate-stderr "$CRAC" restore --pid 1 "$T/img"
	[ "$status" -eq 2 ]
	# DIR before --pid: not the resume of process 1 with DIR forgotten
	run --separate-stderr "$CRAC" restore "$T/img" --pid 1
	echo "$status: $stderr"
	[ "$status" -eq 2 ]
	[ "$stderr" = "crac: unexpected \"--pid\" after DIR $T/img: crac restore DIR and crac restore --pid PID exclude each other (usage: crac restore --pid PID [--env K=V]... [-- ARGS...])" ]
}
