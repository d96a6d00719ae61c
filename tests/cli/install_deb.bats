#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `cpack -G DEB` in the build directory: a Debian package with the CLI and
# its loader, the library, the header, pkg-config and CMake files, the man
# pages, the Python binding, the bash completion and the license; its
# dependencies, shlibs and dpkg's ldconfig trigger. Installed with dpkg -i
# (in a private mount namespace with overlays on /etc, /var and the prefix:
# the real system is untouched), a plain `cc hello.c $(pkg-config --cflags
# --libs crac)` runs, and Debian's python3 imports the binding.

setup_file() {
	command -v cpack >/dev/null || skip "no cpack"
	command -v dpkg-deb >/dev/null || skip "no dpkg-deb"
	export DEBDIR="$(mktemp -d /tmp/crac-bats-deb.XXXXXX)"
	(cd "$CRAC_BUILD_DIR" && cpack -G DEB -B "$DEBDIR" >"$DEBDIR/cpack.log" 2>&1) || {
		cat "$DEBDIR/cpack.log" >&2
		return 1
	}
}

teardown_file() {
	[ -z "${DEBDIR:-}" ] || rm -rf "$DEBDIR"
}

setup() {
	command -v cpack >/dev/null || skip "no cpack"
	command -v dpkg-deb >/dev/null || skip "no dpkg-deb"
	DEB=$(ls "$DEBDIR"/crac_*.deb)
	PREFIX=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$CRAC_BUILD_DIR/CMakeCache.txt")
	T="$(mktemp -d /tmp/crac-bats-deb1.XXXXXX)"
}

teardown() {
	rm -rf "$T"
}

@test "the package holds the CLI, the library, the header, pkg-config, man pages, the binding, the completion" {
	dpkg-deb -c "$DEB" | awk '{ print $6 }' >"$T/files"
	p=".$PREFIX"
	for f in bin/crac libexec/crac-cli libexec/crac-loader lib/libcrac.so.0 lib/libcrac.so lib/libcrac.a \
		include/crac.h lib/pkgconfig/crac.pc lib/cmake/crac/cracConfig.cmake \
		share/man/man1/crac.1 share/man/man3/crac_checkpoint_restore.3 share/man/man7/crac.7 \
		share/bash-completion/completions/crac share/doc/crac/LICENSE; do
		grep -qx "$p/$f" "$T/files" || { echo "missing: $p/$f"; false; }
	done
	grep -q "^$p/lib/python3[.0-9]*/[a-z]*-packages/crac/__init__.py\$" "$T/files"
	dpkg-deb -f "$DEB" Package Version Depends >"$T/control"
	cat "$T/control"
	grep -q "^Package: crac\$" "$T/control"
	grep -q "^Version: 0\.[0-9]*\.[0-9]*\$" "$T/control"
	grep -q "^Depends: .*libc6" "$T/control"
	dpkg-deb -e "$DEB" "$T/ctl"
	grep -qx "libcrac 0 crac (= [0-9.]*)" "$T/ctl/shlibs"
	grep -qx "activate-noawait ldconfig" "$T/ctl/triggers"
}

@test "dpkg -i: a plain pkg-config link runs (the ldconfig trigger ran), python3 imports the binding" {
	[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i in a private mount namespace)"
	command -v dpkg >/dev/null || skip "no dpkg"
	[ -d "$PREFIX" ] || skip "the install prefix $PREFIX does not exist here"
	mkdir -p "$T"/{etc,var,pfx}.{up,work}
	unset LD_LIBRARY_PATH PKG_CONFIG_PATH LD_PRELOAD CRAC_LIBRARY PYTHONPATH
	run env DEB="$DEB" TT="$T" P="$PREFIX" S="$CRAC_SOURCE_DIR" unshare -m --propagation private sh -ec '
		for d in etc var; do
			mount -t overlay overlay -o lowerdir=/$d,upperdir=$TT/$d.up,workdir=$TT/$d.work /$d
		done
		mount -t overlay overlay -o lowerdir=$P,upperdir=$TT/pfx.up,workdir=$TT/pfx.work $P
		rm -f /var/lib/man-db/auto-update   # no man-db index rebuild (in the overlay)
		dpkg -i "$DEB" >$TT/dpkg.log 2>&1 || { cat $TT/dpkg.log; exit 1; }
		echo "dpkg: $(dpkg-query -W -f "\${Package} \${Version} \${Status}" crac)"
		"$P/bin/crac" --version | head -1
		cc -o "$TT/hello" "$S/examples/hello.c" $(pkg-config --cflags --libs crac)
		CRAC_ENGINE=sim "$TT/hello"
		# Debian'"'"'s python3 (the one the package is for), from /
		cd / && /usr/bin/python3 -c "import crac; print(\"python:\", crac.library_path, crac.checkpoint(engine=\"sim\").name)"' 2>&1
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^dpkg: crac 0\.[0-9.]* install ok installed\$"
	echo "$output" | grep -q "^crac 0\."
	echo "$output" | grep -q "restored: generation 1, engine sim"
	echo "$output" | grep -q "^python: $PREFIX/lib/libcrac.so.0 RESTORED\$"
	# nothing reached the real system
	[ -e "$T/pfx.up/bin/crac" ]
	[ -e "$T/etc.up/ld.so.cache" ]
}
