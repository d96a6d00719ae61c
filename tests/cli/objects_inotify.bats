#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Carried kernel objects: inotify (src/objects/inotify.c). A program
# (tests/progs/obj_inotify) watches a directory and files in $T/w with two
# instances (watch numbers with gaps, IN_ONESHOT, IN_EXCL_UNLINK, a
# nonblocking and a blocking instance, a dup, an epoll registration), checkpoints itself with the image
# engine, and every restored instance checks that fdinfo shows the same
# numbers and masks and that changes made after the restore come as events
# with the same wd numbers. Refused with a clear line: a watched path gone
# or replaced at restore (naming the wd and the path), unread events at the
# checkpoint, watch numbers too sparse to be made again, a watch on /proc,
# a process without CAP_DAC_READ_SEARCH (the kernel tells a watch's inode,
# not its path).
# Every command that could block runs under timeout.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/obj_inotify"
	T="$(mktemp -d /tmp/crac-bats-inotify.XXXXXX)"
	chmod 755 "$T"
	W="$T/w"
	mkdir "$W"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
}

teardown() {
	rm -rf "$T"
}

checkpoint() {
	run clean timeout 60 "$PROG" "$T/img" "$W" "$@"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -d "$T/img" ]
}

restored_ok() {
	run clean timeout 60 "$@" "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	! echo "$output" | grep -q FAIL || false
	echo "$output" | grep -qx "restored ok"
	for what in watches "second instance" flags blocking "nothing pending" "create event" "modify event" \
		    "close_write event" "oneshot event" "oneshot gone" "new watch number" "open event" "in epoll"; do
		echo "$output" | grep -qx "ok inotify $what"
	done
}

# restore_fails: the restore exits 1 with nothing on stdout (the program
# never ran); its message is in $stderr
restore_fails() {
	run --separate-stderr clean timeout 60 "$CRAC" restore "$T/img"
	echo "status $status"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
}

@test "inotify: the same wd numbers, masks and flags, events after the restore; restored twice" {
	checkpoint
	restored_ok
	restored_ok
}

@test "refused at restore: a watched path removed, naming the wd and the path" {
	checkpoint
	mv "$W/d/f" "$W/f.away"
	restore_fails
	echo "$stderr" | grep -q "fd [0-9]* (inotify): wd 4: $W/d/f: No such file or directory"
	# crac inspect says the same, before any restore is tried (one check routine)
	run "$CRAC_BUILD_DIR/crac" inspect "$T/img"
	echo "$output"
	[ "$status" -ne 0 ]
	echo "$output" | grep -q "fd [0-9]* (inotify): wd 4: $W/d/f: No such file or directory"
	# back in place: restored
	mv "$W/f.away" "$W/d/f"
	restored_ok
}

@test "refused at restore: a watched file replaced by another (its inode differs)" {
	checkpoint
	cp "$W/d/f" "$W/d/f.new"
	mv "$W/d/f.new" "$W/d/f"
	restore_fails
	echo "$stderr" | grep -q "fd [0-9]* (inotify): wd 4: $W/d/f is another file now (its inode differs from the watched one's: replaced since the checkpoint)"
}

@test "refused at the checkpoint: unread events (they would be lost)" {
	run clean timeout 60 "$PROG" "$T/img" "$W" pending
	echo "$output"
	[ "$status" -eq 3 ]
	echo "$output" | grep -q "check fd [0-9]*: .*inotify anon_inode:inotify (inotify): it holds 32 bytes of unread events: pending events are not carried (the restored program would miss them); read them before the checkpoint"
	[ ! -e "$T/img" ]
}

@test "refused at the checkpoint: watch numbers too sparse to be made again (more than 65536 to skip)" {
	run clean timeout 60 "$PROG" "$T/img" "$W" sparse
	echo "$output"
	[ "$status" -eq 3 ]
	echo "$output" | grep -q "check fd [0-9]*: .*inotify anon_inode:inotify (inotify): its watch numbers go up to 65539, with 2 watches left: making those numbers again would take 65537 throwaway watches at restore, more than crac makes (65536, a second or two)"
	[ ! -e "$T/img" ]
}

@test "refused at the checkpoint: a watch on /proc (no path can be found from its handle)" {
	run clean timeout 60 "$PROG" "$T/img" "$W" proc
	echo "$output"
	[ "$status" -eq 3 ]
	echo "$output" | grep -q "check fd [0-9]*: .*inotify anon_inode:inotify (inotify): wd 2 (inode [0-9]* on device 0:[0-9]*): its file system does not open files by handle (/proc, /sys and other pseudo file systems do not), so its path cannot be found"
	[ ! -e "$T/img" ]
}

@test "unprivileged: without CAP_DAC_READ_SEARCH refused naming the wd; with it, checkpointed, and restored as nobody" {
	need_nobody "$PROG"
	chown -R 65534:65534 "$T"
	# the kernel tells a watch's inode, not its path: finding it needs
	# open_by_handle_at, which needs CAP_DAC_READ_SEARCH
	run clean timeout 60 $NOBODY "$PROG" "$T/img" "$W"
	echo "$output"
	[ "$status" -eq 3 ]
	echo "$output" | grep -q "check fd [0-9]*: .*inotify anon_inode:inotify (inotify): wd 5 (inode [0-9]* on device [0-9]*:[0-9]*): the kernel tells which inode a watch is on, not its path; finding the path needs CAP_DAC_READ_SEARCH (open_by_handle_at), which this process lacks"
	echo "$output" | grep -q "check fd [0-9]*: .*inotify anon_inode:inotify (inotify): wd 1 (inode [0-9]* on device"
	[ ! -e "$T/img" ]
	# that one capability (ambient, nothing else) at the checkpoint; the
	# restore needs none
	$NOBODY --inh-caps=+dac_read_search --ambient-caps=+dac_read_search true ||
		skip "setpriv cannot give nobody an ambient capability here"
	checkpoint_nobody() {
		run clean timeout 60 $NOBODY --inh-caps=+dac_read_search --ambient-caps=+dac_read_search \
			"$PROG" "$T/img" "$W"
		echo "$output"
		[ "$status" -eq 0 ]
	}
	checkpoint_nobody
	restored_ok $NOBODY
	restored_ok $NOBODY
}
