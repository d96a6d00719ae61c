#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# crac start on a file system without renameat2(RENAME_EXCHANGE) (NFS, FUSE
# without rename2, vfat): here strace makes every renameat2 fail with EINVAL,
# as such a file system answers. The first image went into place (a plain
# rename), but every later one (--checkpoint-on refreshes, a fresh image
# after a refused restore) was refused "cannot put the image DIR.new-PID in
# place at DIR: Invalid argument": DIR was never refreshed. The previous
# image is now moved aside (DIR.new-PID.old) and the new one renamed into
# place; an aside image left by a crac start that was killed meanwhile is
# removed by the next writer, or, when it was killed between the two renames
# (no DIR at all), put back in place by the next crac start.

bats_require_minimum_version 1.5.0

load common
load start_common

setup() {
	T="$(mktemp -d /tmp/crac-bats-startnx.XXXXXX)"
	start_setup
	command -v strace >/dev/null || skip "no strace (makes renameat2 fail)"
	strace -qq -o /dev/null -e trace=renameat2 -e inject=renameat2:error=EINVAL true 2>/dev/null ||
		skip "this strace cannot inject an error (inject=...:error=)"
}

teardown() {
	start_teardown
}

# crac start under strace, every renameat2 refused (EINVAL); $pid: crac's pid
start_noexchange() {
	bg "$1" strace -f -qq -o /dev/null -e trace=renameat2 -e inject=renameat2:error=EINVAL \
		"$CRAC" start --image "$T/img" --checkpoint-on USR1 -- "$SERVER" "$T/d" 100
	tracee "$pid"
}

# tracee TRACER: $pid becomes strace's child (crac start)
tracee() {
	pid=$(child_of "$1")
	BG+=("$pid")
}

@test "no RENAME_EXCHANGE: --checkpoint-on refreshes replace DIR each time; the next start restores the newest" {
	start_noexchange cold
	wait_for test -s "$T/d/port"
	grep -q "no image at $T/img yet" "$T/cold.err"
	port="$(cat "$T/d/port")"
	for n in 1 2 3; do
		kill -USR1 "$pid"
		wait_for sh -c "[ \$(grep -c 'written to $T/img' '$T/cold.err') -eq $n ]"
		cat "$T/cold.err"
		! grep -q "cannot put the image" "$T/cold.err" || false
		[ -f "$T/img/start-key" ]
		[ -f "$T/img/header" ]
		! ls -d "$T"/img.new-* 2>/dev/null || false
		# each refresh holds what the program had then
		[[ "$(ask "$port")" == "answer "*"boots=1 served=$n "* ]]
	done
	kill -TERM "$pid"
	wait_for sh -c "! kill -0 $pid 2>/dev/null"   # crac start ends as its program ends
	notify_reader "$T/notify" "$T/notes"
	NOTIFY_SOCKET="$T/notify" bg warm "$CRAC" start --image "$T/img" --checkpoint-on USR1 -- "$SERVER" "$T/d" 100
	wait_for grep -q "READY=1" "$T/notes" || { cat "$T/warm.err"; false; }
	a="$(ask "$port")"
	echo "$a"
	# restored from the third image, taken when two answers were served
	[[ "$a" == "answer "*"boots=1 served=3 "* ]]
	[ ! -s "$T/warm.err" ]
}

@test "no RENAME_EXCHANGE: an image moved aside by a crac start that is gone (DIR.new-PID.old), DIR in place, is removed by the next writer" {
	sh -c 'exit 0' &
	dead=$!
	wait "$dead" || true
	mkdir -m 700 "$T/img.new-$dead.old"
	echo x >"$T/img.new-$dead.old/header"
	echo x >"$T/img.new-$dead.old/pages"
	echo x >"$T/img.new-$dead.old/start-key"
	chmod 600 "$T/img.new-$dead.old"/*
	# DIR in place (it was killed after its second rename: with no DIR,
	# the aside image is put back instead, see the next test)
	mkdir -m 700 "$T/img"
	echo x >"$T/img/header"
	chmod 600 "$T/img/header"
	# one of a crac start that still runs (this shell) stays
	mkdir -m 700 "$T/img.new-$$.old"
	bg cold "$CRAC" start --image "$T/img" --checkpoint-after 100ms -- "$SERVER" "$T/d" 100
	wait_for grep -q "written to $T/img" "$T/cold.err"
	cat "$T/cold.err"
	grep -q "removed 1 unfinished image of $T/img left by writers that are gone" "$T/cold.err"
	[ ! -e "$T/img.new-$dead.old" ]
	[ -d "$T/img.new-$$.old" ]
}

@test "no RENAME_EXCHANGE: killed between its two renames (no DIR), the next start puts the previous image back and restores it" {
	# the second image's install waits once it moved the previous image
	# aside (CRAC_TEST_SLOW_FS=aside:MS: its renames are made by helpers
	# of image/dir.c, which no count of crac start's own system calls
	# reaches), and is killed there
	bg cold env CRAC_TEST_SLOW_FS=aside:600000 strace -f -qq -o /dev/null -e trace=renameat2 \
		-e inject=renameat2:error=EINVAL \
		"$CRAC" start --image "$T/img" --checkpoint-on USR1 -- "$SERVER" "$T/d" 100
	tracee "$pid"
	wait_for test -s "$T/d/port"
	port="$(cat "$T/d/port")"
	# (seen once in CI, not reproduced: crac start gone before this; its
	# messages say why next time)
	kill -USR1 "$pid" || { cat "$T/cold.err"; ps -ef | grep -F "$T" || true; false; }
	wait_for grep -q "written to $T/img" "$T/cold.err"
	[[ "$(ask "$port")" == "answer "*"boots=1 served=1 "* ]]
	kill -USR1 "$pid"
	local writer=$pid
	wait_for test -d "$T/img.new-$writer.old"
	wait_for test ! -e "$T/img"
	kill -9 "$pid"
	wait_for sh -c "! kill -0 $pid 2>/dev/null"
	cat "$T/cold.err"
	# what the kill left: the first image aside, the second beside it, no DIR
	[ ! -e "$T/img" ]
	[ -d "$T/img.new-$writer.old" ]
	[ -d "$T/img.new-$writer" ]
	pkill -f "start_server $T/d" || true
	wait_for sh -c "! pgrep -f '[s]tart_server $T/d' >/dev/null"
	notify_reader "$T/notify" "$T/notes"
	NOTIFY_SOCKET="$T/notify" bg warm "$CRAC" start --image "$T/img" --checkpoint-on USR1 -- "$SERVER" "$T/d" 100
	wait_for grep -q "READY=1" "$T/notes" || { cat "$T/warm.err"; false; }
	cat "$T/warm.err"
	grep -q "$T/img was missing: put back the image a crac start that is gone had moved aside to $T/img.new-$writer.old" "$T/warm.err"
	a="$(ask "$port")"
	echo "$a"
	# restored (boots=1) from the first image, taken before any answer
	[[ "$a" == "answer "*"boots=1 served=1 "* ]]
	[ -f "$T/img/header" ]
	[ ! -e "$T/img.new-$writer.old" ]
}
