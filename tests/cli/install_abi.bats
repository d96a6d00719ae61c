#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The ABI of libcrac.so: it exports exactly the functions include/crac.h
# declares, each at a version of crac.map (CRAC_0.1 ...), nothing internal;
# a program linked against it records the version it needs.

setup() {
	LIB="$CRAC_BUILD_DIR/libcrac.so"
	T="$(mktemp -d /tmp/crac-bats-abi.XXXXXX)"
	command -v objdump >/dev/null || skip "no objdump (binutils)"
}

teardown() {
	rm -rf "$T"
}

# the functions crac.h declares: declarations start in column 0 with a type
declared() {
	sed -n 's/^[a-zA-Z_][^(]*[ *]\(crac_[a-z0-9_]*\)(.*/\1/p' "$CRAC_SOURCE_DIR/include/crac.h" |
		grep -v '^crac_[a-z_]*_fn$' | sort -u
}

@test "libcrac.so exports exactly crac.h's functions, all versioned" {
	declared >"$T/declared"
	[ "$(wc -l <"$T/declared")" -gt 30 ]
	# defined dynamic symbols: address flags section size version name
	objdump -T "$LIB" | awk '$4 != "*UND*" && $NF ~ /^[a-z_]/ && $2 == "g" { print $(NF-1), $NF }' |
		sort -k2 >"$T/exported"
	cat "$T/exported"
	awk '{ print $2 }' "$T/exported" >"$T/names"
	diff "$T/declared" "$T/names" || {
		echo "declared in crac.h but not exported (add them to crac.map): $(comm -23 "$T/declared" "$T/names" | tr '\n' ' ')"
		echo "exported but not in crac.h: $(comm -13 "$T/declared" "$T/names" | tr '\n' ' ')"
		false
	}
	# every one at a version node of crac.map
	! awk '$1 !~ /^CRAC_[0-9]+\.[0-9]+$/' "$T/exported" | grep . || false
}

@test "crac.map names only functions that crac.h declares" {
	sed -n 's/^[[:space:]]*\(crac_[a-z0-9_]*\);.*/\1/p' "$CRAC_SOURCE_DIR/crac.map" | sort -u >"$T/map"
	declared >"$T/declared"
	diff "$T/declared" "$T/map"
}

@test "a program linked against libcrac needs version CRAC_0.1" {
	cc -o "$T/hello" "$CRAC_SOURCE_DIR/examples/hello.c" -I"$CRAC_SOURCE_DIR/include" \
		-L"$CRAC_BUILD_DIR" -lcrac -Wl,-rpath,"$CRAC_BUILD_DIR"
	readelf -V "$T/hello" | grep -A3 "File: libcrac.so.0" | grep -q "Name: CRAC_0.1"
	run env CRAC_ENGINE=sim "$T/hello"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "restored: generation 1, engine sim"
}
