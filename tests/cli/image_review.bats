#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Review of compressed images, incremental chains and flatten (session 5):
# refusals found without their reason. Under any limit on open files, a
# restore of a chain either runs or refuses with one line that says why
# (the loader opened the chain's files, then could not open
# /proc/self/maps and said only that).

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	INCR="$CRAC_BUILD_DIR/tests/image_incr"
	T="$(mktemp -d /tmp/crac-bats-review.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOADER CRAC_LAZY_PREFETCH \
		CRAC_LOG CRAC_IMAGE_COMPRESS CRAC_IMAGE_INCREMENTAL
	require_image_engine
}

teardown() {
	rm -rf "$T"
}

@test "a chain restored under every RLIMIT_NOFILE from 6 to 40: it runs, or one line says why" {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$INCR" "$T/i0" "$T/i1" "$T/i2" 4
	echo "chain: $status / $output / $stderr"
	[ "$status" -eq 0 ]
	ran=0
	for n in $(seq 6 40); do
		run --separate-stderr clean bash -c 'ulimit -n "$1" && exec timeout 20 "$2" restore "$3"' _ "$n" "$CRAC" "$T/i2"
		echo "nofile $n: status $status / $output / $stderr"
		if [ "$status" -eq 0 ]; then
			[ "$output" = "ok stage 2" ]
			ran=1
			continue
		fi
		[ "$status" -eq 1 ]
		[ -z "$output" ]
		[ "$(echo "$stderr" | wc -l)" -eq 1 ]
		# the reason: an errno name or number, never a bare "cannot ..."
		[[ "$stderr" == "crac: restore $T/i2: "*"Too many open files"* ]]
	done
	[ "$ran" -eq 1 ]
}
