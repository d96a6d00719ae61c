#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Eager fill of a dense anonymous mapping that neither starts nor ends on a
# 2 MiB boundary (a malloc'd heap block anywhere): the restore loader maps
# it widened to 2 MiB boundaries before its neighbours, fills it in whole
# huge pages and cuts it back (src/loader/loader.c, map_wide), so that its
# ends are no 4 KiB pages to fault in one by one. The restored program sees
# the same mappings, every page, anonymous semantics (MADV_DONTNEED gives
# zeros, fork); a damaged chunk of it is refused before the jump; as root the
# ends are seen to lie in huge pages (/proc/kpageflags), and not with
# CRAC_LOADER_HUGE=off. Its small neighbours are filled through
# /proc/self/mem a window of the pages file at a time: a damaged byte in
# their second window is refused too.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	THP="$CRAC_BUILD_DIR/tests/image_thp"
	EDIT="$CRAC_BUILD_DIR/tests/image_edit"
	T="$(mktemp -d /tmp/crac-bats-huge.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOADER CRAC_LAZY_PREFETCH \
		CRAC_LAZY_SMALL CRAC_LOADER_THREADS CRAC_LOADER_HUGE CRAC_VERIFY_FILES
	require_image_engine
}

teardown() {
	rm -rf "$T"
}

# checkpoint: image_thp into $T/img; BIG and LEN: its big mapping.
checkpoint() {
	big_mapping "$THP" "$T/img"
}

thp_madvise() {
	local thp=/sys/kernel/mm/transparent_hugepage/enabled
	[ -r "$thp" ] && grep -q '\[madvise\]' "$thp"
}

@test "eager: a dense mapping off 2 MiB boundaries comes back exactly, its ends in huge pages too (not with CRAC_LOADER_HUGE=off)" {
	checkpoint
	for threads in 2 1; do
		run --separate-stderr clean env CRAC_LOADER_THREADS=$threads "$CRAC" restore --populate --stats "$T/img"
		echo "threads=$threads status $status: $output / $stderr"
		[ "$status" -eq 0 ]
		[ "$(echo "$output" | head -n 1)" = ok ]
		echo "$stderr" | grep -Eq "^crac: loader: .*, fill [0-9.]+ ms \(8\.[0-9]+ MiB, $threads threads?, "
		ends=$(echo "$output" | sed -n 's/^ends //p')
		if ! thp_madvise; then
			echo "# THP mode is not madvise here: huge pages not checked" >&3
		elif [ "${ends%%:*}" = unknown ]; then
			echo "# huge pages not checked: $ends" >&3
		else
			[ "$ends" = huge ]
		fi
	done
	run --separate-stderr clean env CRAC_LOADER_HUGE=off "$CRAC" restore --populate "$T/img"
	echo "$output / $stderr"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | head -n 1)" = ok ]
	ends=$(echo "$output" | sed -n 's/^ends //p')
	[ "${ends%%:*}" = unknown ] || [ "$ends" = small ]
}

@test "eager: a damaged chunk at either end of the widened mapping is refused before the jump, naming it" {
	checkpoint
	for at in $((BIG)) $((BIG + LEN - 4096)); do
		cp -r "$T/img" "$T/bad"
		read -r idx off len < <("$EDIT" "$T/bad" chunk-at "$at")
		[ -n "$len" ]
		flip_byte "$T/bad/pages" $((off + len - 1))
		run --separate-stderr clean "$CRAC" restore --populate "$T/bad"
		echo "at $at status $status: $output / $stderr"
		[ "$status" -eq 1 ]
		[ -z "$output" ]
		echo "$stderr" | grep -Eqx "crac: restore $T/bad: page data checksum mismatch in chunk #$idx \\($len bytes at 0x[0-9a-f]+, anon\\): the pages file is damaged"
		rm -rf "$T/bad"
	done
}

@test "eager: a damaged byte of a small neighbour, in its second read window or its first, is refused before the jump" {
	checkpoint
	# the neighbour below: 128 KiB, filled through /proc/self/mem 64 KiB at a time
	read -r idx off len < <("$EDIT" "$T/img" chunk-at $((BIG - 4096)))
	[ "$len" -eq 131072 ]
	for at in $((off + len - 1)) $((off + 5)); do
		cp -r "$T/img" "$T/bad"
		flip_byte "$T/bad/pages" "$at"
		for pretend in "" proc_mem; do
			run --separate-stderr clean env CRAC_PRETEND_MISSING="$pretend" "$CRAC" restore --populate "$T/bad"
			echo "byte $at pretend '$pretend' status $status: $output / $stderr"
			[ "$status" -eq 1 ]
			[ -z "$output" ]
			echo "$stderr" | grep -Eqx "crac: restore $T/bad: page data checksum mismatch in chunk #$idx \\($len bytes at 0x[0-9a-f]+, anon\\): the pages file is damaged"
		done
		rm -rf "$T/bad"
	done
}

@test "eager as nobody (the unprivileged default): the widened mapping comes back exactly" {
	need_nobody "$THP"
	chown 65534:65534 "$T"
	run clean $NOBODY "$THP" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	run --separate-stderr clean $NOBODY "$CRAC" restore --stats "$T/img"
	echo "$output / $stderr"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | head -n 1)" = ok ]
	echo "$stderr" | grep -Eq "^crac: loader: .*, fill [0-9.]+ ms \(8\.[0-9]+ MiB, "
}

@test "lazy: the same mapping left to userfaultfd comes back exactly" {
	checkpoint
	run clean "$CRAC" restore --lazy "$T/img"
	if [ "$status" -ne 0 ] && echo "$output" | grep -q -- "--lazy: lazy restore needs"; then
		skip "no userfaultfd for kernel faults here: $output"
	fi
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | head -n 1)" = ok ]
}
