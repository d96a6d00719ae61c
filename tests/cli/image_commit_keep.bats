#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The commit of an image (src/image/dir.c crac_img_commit_expect, as `crac
# flatten` makes it) when OUT was replaced by another image between the
# last look and the rename, and the exchange that puts that image back
# fails (CRAC_TEST_NO_EXCHANGE=back: it fails with EIO; =back-keep: the
# move to a kept name fails too): the other image must survive flatten's
# cleanup of its temporary and the next writer's removal of stale
# temporaries, under the name the message gives.

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup keep CRAC_IMAGE_COMPRESS CRAC_IMAGE_INCREMENTAL CRAC_TEST_NO_EXCHANGE
	INCR="$CRAC_BUILD_DIR/tests/image_incr"
	command -v strace >/dev/null || skip "no strace (holds flatten at its rename)"
	strace -qq -o /dev/null -e inject=renameat2:delay_enter=1:when=1 true 2>/dev/null ||
		skip "this strace cannot delay a system call (inject=...:delay_enter)"
}

teardown() {
	[ -z "${fpid:-}" ] || kill -9 "$fpid" 2>/dev/null || true
	rm -rf "$T"
}

# the processes below PID, each on a line
below() {
	local c
	for c in $(pgrep -P "$1"); do
		echo "$c"
		below "$c"
	done
}

# replaced_at_rename MODE: $T/out flattened from $T/i0, then `crac flatten
# $T/i2 $T/out` with CRAC_TEST_NO_EXCHANGE=MODE, held at the entry of its
# first renameat2 (the commit's exchange) while another image ($T/i1's
# copy, header copied to $T/other.header) takes $T/out's place; its
# status in $st, its one line of stderr in $line.
replaced_at_rename() {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$INCR" "$T/i0" "$T/i1" "$T/i2" 8
	[ "$status" -eq 0 ]
	run clean "$CRAC" flatten "$T/i0" "$T/out"
	[ "$status" -eq 0 ]
	spawn "$T/flatten.out" "$T/flatten.err" env CRAC_TEST_NO_EXCHANGE="$1" strace -f -qq -o /dev/null \
		-e inject=renameat2:delay_enter=3000000:when=1 "$CRAC" flatten "$T/i2" "$T/out"
	fpid=$SPAWNED
	local held=
	for _ in $(seq 1000); do
		for c in $(below "$fpid"); do
			[ "$(cut -d' ' -f1 "/proc/$c/syscall" 2>/dev/null)" = 316 ] && held=1
		done
		[ -n "$held" ] && break
		sleep 0.01
	done
	[ -n "$held" ]
	cp -a "$T/i1" "$T/newer"
	cp "$T/i1/header" "$T/other.header"
	mv "$T/out" "$T/out.gone"
	mv "$T/newer" "$T/out"
	st=0
	wait "$fpid" || st=$?
	fpid=
	cat "$T/flatten.out" "$T/flatten.err"
	[ "$(wc -l <"$T/flatten.err")" -eq 1 ]
	line=$(cat "$T/flatten.err")
}

@test "OUT replaced at flatten's rename, putting it back fails: the other image is moved to DIR.kept-*, named, and outlives the next writer's cleanup" {
	replaced_at_rename back
	[ "$st" -eq 1 ]
	[[ "$line" = "crac: flatten $T/i2: image directory $T/out was replaced by another image while ours was written, and putting that one back failed (Input/output error): ours is at $T/out, the other one is now $T/out.kept-"*" (moved there from $T/out.tmp-"*", a name of our temporaries)" ]]
	kept=$(echo "$line" | grep -o "$T/out\.kept-[0-9]*-[0-9]*-[0-9]*")
	cmp "$kept/header" "$T/other.header"
	[ -z "$(ls "$T" | grep "\.tmp-")" ]
	# the next writer (its stale temporaries removed first) leaves it
	run clean "$CRAC" flatten "$T/i0" "$T/out"
	[ "$status" -eq 0 ]
	cmp "$kept/header" "$T/other.header"
	restore_ok 1 "$kept"
}

@test "OUT replaced at flatten's rename, putting it back and the move to a kept name fail: the other image stays at the temporary's name the message gives" {
	replaced_at_rename back-keep
	[ "$st" -eq 1 ]
	[[ "$line" = "crac: flatten $T/i2: image directory $T/out was replaced by another image while ours was written, and putting that one back failed (Input/output error): ours is at $T/out, the other one is now $T/out.tmp-"*"; it is not removed by this process, which moves it to $T/out.kept-"*" when it can; move it back by hand before this process exits"* ]]
	left=$(echo "$line" | grep -o "the other one is now $T/out\.tmp-[0-9]*-[0-9]*-[A-Za-z0-9]*" | sed 's/^the other one is now //')
	cmp "$left/header" "$T/other.header"
}
