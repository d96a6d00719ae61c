#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `cmake --install BUILD --prefix /usr/local` as root, then a plain
# `cc hello.c $(pkg-config --cflags --libs crac)`: no rpath, no
# LD_LIBRARY_PATH, the default pkg-config path. The binary runs because the
# install ran ldconfig (/usr/local/lib is in Debian's linker search path).
# Without it (CRAC_NO_LDCONFIG=1) the same binary fails with "libcrac.so.0:
# cannot open shared object file": the problem of issue 13 item 9.
#
# The real /usr/local and /etc (ld.so.cache) are not touched: each test runs
# in a private mount namespace with overlays on both, thrown away after.

setup() {
	T="$(mktemp -d /tmp/crac-bats-ldconfig.XXXXXX)"
	[ "$(id -u)" -eq 0 ] || skip "needs root (a private mount namespace with overlays on /etc and /usr/local)"
	command -v unshare >/dev/null || skip "no unshare (util-linux)"
	command -v pkg-config >/dev/null || skip "no pkg-config"
	mkdir -p "$T/etc.up" "$T/etc.work" "$T/local.up" "$T/local.work"
	unshare -m --propagation private sh -c "mount -t overlay overlay \
		-o lowerdir=/etc,upperdir=$T/etc.up,workdir=$T/etc.work /etc" 2>"$T/err" ||
		skip "cannot mount an overlay on /etc in a private mount namespace: $(cat "$T/err")"
	unset LD_LIBRARY_PATH PKG_CONFIG_PATH LD_PRELOAD CRAC_NO_LDCONFIG
}

teardown() {
	rm -rf "$T"
}

# in_fresh_root SCRIPT: runs sh -c SCRIPT with /etc and /usr/local overlaid
# (writes go to $T), $B the build dir and $S the source dir.
in_fresh_root() {
	B="$CRAC_BUILD_DIR" S="$CRAC_SOURCE_DIR" TT="$T" unshare -m --propagation private sh -ec "
		mount -t overlay overlay -o lowerdir=/etc,upperdir=\$TT/etc.up,workdir=\$TT/etc.work /etc
		mount -t overlay overlay -o lowerdir=/usr/local,upperdir=\$TT/local.up,workdir=\$TT/local.work /usr/local
		$1"
}

@test "install into /usr/local runs ldconfig: a plain pkg-config link runs" {
	run in_fresh_root '
		cmake --install "$B" --prefix /usr/local 2>&1 | grep "crac: "
		cc -o "$TT/hello" "$S/examples/hello.c" $(pkg-config --cflags --libs crac)
		readelf -d "$TT/hello" | grep -E "NEEDED|RPATH|RUNPATH"
		CRAC_ENGINE=sim "$TT/hello"'
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "crac: ran ldconfig (/usr/local/lib is in the dynamic linker's search path)"
	echo "$output" | grep -q "NEEDED.*\[libcrac.so.0\]"
	! echo "$output" | grep -q "RPATH\|RUNPATH" || false
	echo "$output" | grep -q "restored: generation 1, engine sim"
	# the real system is untouched
	[ -e "$T/local.up/lib/libcrac.so.0" ]
	[ -e "$T/etc.up/ld.so.cache" ]
}

@test "without ldconfig (CRAC_NO_LDCONFIG=1) the same plain link cannot find libcrac.so.0" {
	run in_fresh_root '
		CRAC_NO_LDCONFIG=1 cmake --install "$B" --prefix /usr/local 2>&1 | grep "crac: "
		cc -o "$TT/hello" "$S/examples/hello.c" $(pkg-config --cflags --libs crac)
		CRAC_ENGINE=sim "$TT/hello" || echo "hello: exit $?"'
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^hello: exit 127$"
	echo "$output" | grep -q "crac: CRAC_NO_LDCONFIG=1: ldconfig not run"
	echo "$output" | grep -q "libcrac.so.0: cannot open shared object file"
}

@test "install as a user into a directory of the search path says to run ldconfig; elsewhere how to find the library" {
	# the script alone, as the install runs it, for a user and another prefix
	run setpriv --reuid=nobody --regid=nogroup --clear-groups \
		cmake -DCMAKE_INSTALL_PREFIX=/usr/local -P "$CRAC_BUILD_DIR/ldconfig.cmake"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "crac: /usr/local/lib is in the dynamic linker's search path: run .sudo ldconfig."
	run cmake -DCMAKE_INSTALL_PREFIX="$T/prefix" -P "$CRAC_BUILD_DIR/ldconfig.cmake"
	echo "$output"
	echo "$output" | grep -q "crac: $T/prefix/lib is not in the dynamic linker's search path: a program linked with -lcrac needs -Wl,-rpath,$T/prefix/lib"
}
