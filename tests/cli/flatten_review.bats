#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `crac flatten` under attack (review of session 6): OUT replaced or made
# by someone else while flatten writes its temporary (a checkpoint into
# DIR while DIR is flattened in place, two flattens into one OUT): flatten
# refuses rather than throw the other image away; --compress parsed by one
# parser for crac checkpoint and crac flatten (strict levels, and a level
# written "--compress 5" refused rather than taken for an operand).
# The window is held open by delaying flatten's first fsync (of the
# temporary's header, written just before): CRAC_TEST_SLOW_FS=fsync:MS
# (src/image/dir.c; the fsync is made by a helper of image/dir.c, bounded by
# --timeout, which strace of crac's own thread does not see).

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	INCR="$CRAC_BUILD_DIR/tests/image_incr"
	T="$(mktemp -d /tmp/crac-bats-flatrev.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOADER CRAC_LAZY_PREFETCH \
		CRAC_LOG CRAC_IMAGE_COMPRESS CRAC_IMAGE_INCREMENTAL
	require_image_engine
}

teardown() {
	[ -z "${fpid:-}" ] || kill -9 "$fpid" 2>/dev/null || true
	rm -rf "$T"
}

# chain: $T/i0 (full), $T/i1 and $T/i2 (incremental), by image_incr.
chain() {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$INCR" "$T/i0" "$T/i1" "$T/i2" 8
	echo "chain: status $status, stdout: $output, stderr: $stderr"
	[ "$status" -eq 0 ]
}

# slow_flatten ARGS...: `crac flatten ARGS` in the background ($fpid), its
# first fsync held for 3 s; returns once its temporary's header is written.
slow_flatten() {
	local out=${*: -1}
	spawn "$T/flatten.out" "$T/flatten.err" env CRAC_TEST_SLOW_FS=fsync:3000 "$CRAC" flatten "$@"
	fpid=$SPAWNED
	for _ in $(seq 500); do
		compgen -G "$out.tmp-*/header" >/dev/null && break
		sleep 0.01
	done
	compgen -G "$out.tmp-*/header" >/dev/null
}

# flatten_refused REASON: the slow_flatten ($fpid) fails with nothing on
# stdout and one line on stderr, "crac: flatten $T/i2: " and REASON (a
# basic regular expression, matched from there on)
flatten_refused() {
	local st=0
	wait "$fpid" || st=$?
	fpid=
	cat "$T/flatten.out" "$T/flatten.err"
	[ "$st" -eq 1 ]
	[ ! -s "$T/flatten.out" ]
	[ "$(wc -l <"$T/flatten.err")" -eq 1 ]
	grep -q "^crac: flatten $T/i2: $1" "$T/flatten.err"
}

# descendants PID: the processes below PID, each on a line
descendants() {
	local c
	for c in $(pgrep -P "$1"); do
		echo "$c"
		descendants "$c"
	done
}

# kept DIR HEADER: the image at DIR is the other one (its header is the
# copy HEADER), and flatten left no temporary in $T
kept() {
	cmp "$1/header" "$2"
	[ -z "$(ls "$T" | grep "\.tmp-")" ]
}

@test "flatten DIR DIR while a checkpoint replaces DIR: refused, the newer image stays" {
	chain
	cp -a "$T/i0" "$T/newer"            # a full image standing for the newer checkpoint
	cp "$T/i0/header" "$T/newer.header"
	slow_flatten "$T/i2" "$T/i2"
	mv "$T/i2" "$T/i2.gone"             # as a checkpoint's commit: DIR is another directory now
	mv "$T/newer" "$T/i2"
	flatten_refused "$T/i2 was replaced while it was flattened"
	kept "$T/i2" "$T/newer.header"   # the newer image was not thrown away
	run clean "$CRAC" inspect "$T/i2"
	[ "$status" -eq 0 ]
}

@test "two flattens into one absent OUT: the one that finds OUT made meanwhile refuses, OUT is the other's" {
	chain
	slow_flatten "$T/i2" "$T/out"
	run clean "$CRAC" flatten "$T/i1" "$T/out"   # done while the first one waits
	echo "$output"
	[ "$status" -eq 0 ]
	cp "$T/out/header" "$T/out.header"
	flatten_refused "$T/out appeared while the image was written"
	kept "$T/out" "$T/out.header"
	restore_ok 1 "$T/out"
}

@test "flatten over an existing OUT replaced meanwhile by another image: refused, OUT kept" {
	chain
	run clean "$CRAC" flatten "$T/i0" "$T/out"
	[ "$status" -eq 0 ]
	slow_flatten "$T/i2" "$T/out"
	run clean "$CRAC" flatten "$T/i1" "$T/out"
	[ "$status" -eq 0 ]
	cp "$T/out/header" "$T/out.header"
	flatten_refused "$T/out was replaced while the image was written"
	kept "$T/out" "$T/out.header"
}

# no_zstd_skip: skips when this build has no zstd
no_zstd_skip() {
	run "$CRAC" checkpoint --compress 1
	if echo "$output" | grep -q "has no zstd"; then
		skip "this build has no zstd (libzstd-dev): $output"
	fi
}

@test "--compress: one strict parser for checkpoint and flatten; a level written '--compress 5' is refused, not taken for DIR, OUT or the PID" {
	no_zstd_skip
	chain
	cd "$T"
	for bad in "" " 3" "+3" "3 " "-1" "0" "20" "3x" "0x3" "1e1" "999999999999999999999"; do
		run clean "$CRAC" checkpoint --compress="$bad" "$$"
		echo "checkpoint --compress=\"$bad\": $status: $output"
		[ "$status" -eq 2 ]
		[ "$output" = "crac: --compress wants a zstd level from 1 to 19, got \"$bad\"" ]
		run clean "$CRAC" flatten "$T/i2" "$T/out" --compress="$bad"
		echo "flatten --compress=\"$bad\": $status: $output"
		[ "$status" -eq 2 ]
		[ "$output" = "crac: --compress wants a zstd level from 1 to 19, got \"$bad\"" ]
	done
	# a bare --compress and a level after it: refused, nothing written at ./5
	run clean "$CRAC" flatten i2 --compress 5
	echo "$output"
	[ "$status" -eq 2 ]
	[ "$output" = "crac: --compress 5: a level goes after '=' (--compress=5); \"5\" would be taken for OUT" ]
	[ ! -e 5 ]
	run clean "$CRAC" flatten --compress 19 i2 out
	echo "$output"
	[ "$status" -eq 2 ]
	[ "$output" = "crac: --compress 19: a level goes after '=' (--compress=19); \"19\" would be taken for DIR" ]
	[ ! -e out ]
	run clean "$CRAC" checkpoint --compress 5 "$$"
	echo "$output"
	[ "$status" -eq 2 ]
	[ "$output" = "crac: --compress 5: a level goes after '=' (--compress=5); \"5\" would be taken for the process ID" ]
	# a directory of that name is DIR or OUT as before; the last number of
	# crac checkpoint is its PID as before
	run clean "$CRAC" flatten i2 --compress 5 --compress=05
	[ "$status" -eq 2 ]
	mkdir 5
	run clean "$CRAC" flatten i0 --compress 5
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"image directory 5 exists and is not a crac image"* ]]
	run clean "$CRAC" checkpoint --compress 1
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == "crac: process 1 has no control endpoint"* ]]
	run clean "$CRAC" flatten i2 out --compress=05
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "out: zstd level 5: ${lines[1]#out: zstd level 5: }" ]
	# (lazy where it may be, in the ASan build too: image_compress_lazy.bats)
	run --separate-stderr clean "$CRAC" restore out
	[ "$status" -eq 0 ]
	[ "$output" = "ok stage 2" ]
}

@test "flatten over OUT replaced between its last look and the rename: the rename puts it back, OUT kept" {
	command -v strace >/dev/null || skip "no strace (holds flatten at its rename)"
	strace -qq -o /dev/null -e inject=renameat2:delay_enter=1:when=1 true 2>/dev/null ||
		skip "this strace cannot delay a system call (inject=...:delay_enter)"
	chain
	run clean "$CRAC" flatten "$T/i0" "$T/out"
	[ "$status" -eq 0 ]
	# held at the entry of its first renameat2 (the commit's exchange),
	# after every check flatten itself makes; the renames are made by a
	# short-lived helper of flatten's (image/bounded.c: a file system that
	# does not answer fails the rename instead of hanging it), which
	# strace follows (-f): the process held is flatten, the worker it
	# watches (src/cli/watch.c) or that helper
	spawn "$T/flatten.out" "$T/flatten.err" strace -f -qq -o /dev/null \
		-e inject=renameat2:delay_enter=3000000:when=1 "$CRAC" flatten "$T/i2" "$T/out"
	fpid=$SPAWNED
	held=
	for _ in $(seq 1000); do
		for c in $(descendants "$fpid"); do
			[ "$(cut -d' ' -f1 "/proc/$c/syscall" 2>/dev/null)" = 316 ] && held=1
		done
		[ -n "$held" ] && break
		sleep 0.01
	done
	[ -n "$held" ]
	# meanwhile another image is committed at OUT, as a checkpoint does
	cp -a "$T/i1" "$T/newer"
	cp "$T/i1/header" "$T/out.header"
	mv "$T/out" "$T/out.gone"
	mv "$T/newer" "$T/out"
	flatten_refused "image directory $T/out was replaced while the image was written; nothing was replaced"
	kept "$T/out" "$T/out.header"   # the newer image is in place
	restore_ok 1 "$T/out"
}
