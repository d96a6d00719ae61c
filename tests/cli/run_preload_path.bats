#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `crac run` preloads libcrac through LD_PRELOAD, whose list the dynamic
# linker splits at spaces and colons with no way to escape them: a libcrac
# whose path holds one (an install prefix "/opt/my apps", CRAC_LIBDIR) was
# not preloaded at all; the linker printed "cannot be preloaded ...:
# ignored" and the program ran without libcrac and without its control
# endpoint while `crac run` said nothing. It is refused, naming the path.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-preload.XXXXXX)"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LIBDIR LD_PRELOAD
	export CRAC_CONTROL_DIR="$T/ctl"
}

teardown() {
	rm -rf "$T"
}

# libdir NAME: a copy of the built libcrac in $T/NAME
libdir() {
	mkdir -p "$T/$1"
	cp -a "$CRAC_BUILD_DIR"/libcrac.so* "$T/$1/"
}

# maps of the program `crac run` started: does it hold libcrac?
@test "a library path without space or colon: the program runs with libcrac" {
	libdir plain
	run --separate-stderr env CRAC_LIBDIR="$T/plain" "$CRAC" run -- sh -c 'grep -c "/plain/libcrac" /proc/$$/maps'
	echo "status $status, out $output, err $stderr"
	[ "$status" -eq 0 ]
	[ "$output" -ge 1 ]
}

@test "a library path with a space or a colon: refused, never run without libcrac" {
	for name in "my lib" "my:lib"; do
		libdir "$name"
		run --separate-stderr env CRAC_LIBDIR="$T/$name" "$CRAC" run -- sh -c 'echo ran; grep -c libcrac /proc/$$/maps'
		echo "$name: status $status, out $output, err $stderr"
		[ "$status" -eq 2 ]
		[ -z "$output" ]
		[[ "$stderr" == *"$T/$name/libcrac.so"* ]]
		[[ "$stderr" == *"LD_PRELOAD"* ]]
		[[ "$stderr" != *"cannot be preloaded"* ]]
	done
}
