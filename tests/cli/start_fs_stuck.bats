#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `crac start DIR` on a file system that does not answer (an NFS or FUSE
# server gone), simulated by CRAC_TEST_SLOW_FS=OP:MS (src/image/dir.c: the
# operation's helper first sleeps MS ms): the open of DIR.lock, the lstats
# of DIR and the resolution of PROG end at --timeout, each said naming the
# path; PROG starts cold.

bats_require_minimum_version 1.5.0

load common
load start_common

setup() {
	T="$(mktemp -d /tmp/crac-bats-startstuck.XXXXXX)"
	start_setup
	unset CRAC_TEST_SLOW_FS CRAC_TEST_SYNC_GRACE_MS
	require_image_engine
}

teardown() { start_teardown; }

# stuck_start OP: crac start --timeout 1s with CRAC_TEST_SLOW_FS=OP:600000,
# until PROG started cold (20 s at most); $ms how long that took.
stuck_start() {
	local t0
	t0=$(date +%s%N)
	bg start env CRAC_TEST_SLOW_FS="$1:600000" "$CRAC" start --image "$T/img" --timeout 1s \
		--checkpoint-on-ready -- "$SERVER" "$T/d" 100
	wait_line "$T/start.err" "cold" 20
	ms=$((($(date +%s%N) - t0) / 1000000))
	cat "$T/start.err"
	echo "($ms ms)"
}

# image_by_cold_start: $T/img written by a cold crac start of PROG (ready:
# --checkpoint-on-ready), which is then stopped.
image_by_cold_start() {
	bg cold "$CRAC" start --image "$T/img" --checkpoint-on-ready -- "$SERVER" "$T/d" 100
	wait_for grep -q "written to $T/img" "$T/cold.err"
	kill -TERM "$pid"
	wait "$pid" || true
}

@test "the open of DIR.lock does not return: given up at --timeout naming the lock file; PROG starts cold and writes no image" {
	stuck_start open
	grep -Eq "^crac: start: cannot open the lock file $T/img\.lock: the open of $T/img\.lock did not return after [0-9]+ ms \(crac start --timeout, 1000 ms\): its file system does not answer; given up: starting $SERVER cold; it writes no image: without a lock file it writes no image$" "$T/start.err"
	[ "$ms" -lt 8000 ]
	wait_for test -n "$(real_children "$pid")"
	kill -0 "$pid"
}

@test "the lstat of DIR does not return: given up at --timeout naming DIR, said once as a warning and as the reason of the cold start" {
	stuck_start lstat
	grep -Eq "^crac: start: warning: the lstat of $T/img did not return after [0-9]+ ms \(crac start --timeout, 1000 ms\): its file system does not answer; given up$" "$T/start.err"
	grep -Eq "^crac: start: the lstat of $T/img did not return after [0-9]+ ms \(crac start --timeout, 1000 ms\): its file system does not answer; given up: starting $SERVER cold" "$T/start.err"
	# three lstats given up on (PROG's, DIR's twice), 1 s each
	[ "$ms" -lt 12000 ]
	wait_for test -n "$(real_children "$pid")"
}

@test "the resolution of PROG does not return: given up at --timeout naming PROG; the key says it was not found, PROG starts cold" {
	stuck_start realpath
	grep -Eq "^crac: start: warning: the resolution of $SERVER did not return after [0-9]+ ms \(crac start --timeout, 1000 ms\): its file system does not answer; given up$" "$T/start.err"
	grep -q "starting $SERVER cold" "$T/start.err"
	[ "$ms" -lt 8000 ]
	wait_for test -n "$(real_children "$pid")"
}

@test "a file system that answers: the bounded open, lstats and resolution make the usual warm start" {
	image_by_cold_start
	port="$(cat "$T/d/port")"
	bg warm "$CRAC" start --image "$T/img" --checkpoint-on-ready -- "$SERVER" "$T/d" 100
	wait_for ask "$port"
	cat "$T/warm.err"
	# restored: no second cold boot, nothing said
	[ "$(wc -l <"$T/d/boots")" -eq 1 ]
	[ ! -s "$T/warm.err" ]
	grep -q "exe dev" "$T/img/start-key"
}

@test "the check of DIR before a cold start writes it does not return: given up at --timeout naming DIR; PROG starts cold and writes no image" {
	stuck_start check
	grep -Eq "^crac: start: no image at $T/img yet: starting $SERVER cold; it writes no image: the check of $T/img \(the lstat of it\) did not return after [0-9]+ ms \(crac start --timeout, 1000 ms\): its file system does not answer; given up$" "$T/start.err"
	[ "$ms" -lt 8000 ]
	wait_for test -n "$(real_children "$pid")"
	kill -0 "$pid"
}

@test "the read of DIR/start-key does not return: given up at --timeout naming the file; PROG starts cold" {
	image_by_cold_start
	stuck_start read
	grep -Eq "^crac: start: the read of $T/img/start-key did not return after [0-9]+ ms \(crac start --timeout, 1000 ms\): its file system does not answer; given up: starting $SERVER cold" "$T/start.err"
	[ "$ms" -lt 8000 ]
	wait_for test -n "$(real_children "$pid")"
	[ "$(wc -l <"$T/d/boots")" -eq 2 ]
}

@test "a file system that answers: crac start still refuses to replace a directory that is not its image, naming what it holds" {
	mkdir "$T/img"
	touch "$T/img/header" "$T/img/notes.txt"
	bg other "$CRAC" start --image "$T/img" --checkpoint-on-ready -- "$SERVER" "$T/d" 100
	wait_for grep -q "cold" "$T/other.err"
	cat "$T/other.err"
	grep -q "it writes no image: $T/img is not a crac image of this user (it holds notes.txt); crac start replaces only its own" "$T/other.err"
	[ -e "$T/img/notes.txt" ]
}

@test "an open of DIR.lock given up on holds no descriptor of crac start's: the helper's, of its own table, ends with it" {
	# the open returns, then its helper does not answer (as a late open
	# that returns after the helper was given up on)
	stuck_start opened
	grep -Eq "^crac: start: cannot open the lock file $T/img\.lock: the open of $T/img\.lock did not return after [0-9]+ ms \(crac start --timeout, 1000 ms\)" "$T/start.err"
	wait_for test -n "$(real_children "$pid")"
	ls -l "/proc/$pid/fd" "/proc/$(real_children "$pid")/fd"
	# neither crac start nor PROG holds DIR.lock (with the caller's table
	# shared, the open's descriptor stayed in crac start's)
	[ -z "$(ls -l "/proc/$pid/fd" | grep "$T/img\.lock")" ]
	[ -z "$(ls -l "/proc/$(real_children "$pid")/fd" | grep "$T/img\.lock")" ]
}

# The header, read only under socket activation (or with DIR/activation
# there), is opened and read by a helper too.
@test "the open of the image to read its header does not return: given up at --timeout naming DIR; PROG starts cold and writes no image" {
	image_by_cold_start
	: >"$T/img/activation"   # (no socket recorded: the header is read all the same)
	ino=$(stat -c %i "$T/img/header")
	stuck_start header
	grep -Eq "^crac: start: the open of the image $T/img \(its directory, header and pages files\) did not return after [0-9]+ ms \(crac start --timeout, 1000 ms\): its file system does not answer; given up: starting $SERVER cold; it writes no image: the file system of $T/img does not answer$" "$T/start.err"
	[ "$ms" -lt 8000 ]
	wait_for test -n "$(real_children "$pid")"
	[ "$(wc -l <"$T/d/boots")" -eq 2 ]
	# ready, and no image written over the one in place
	wait_for grep -q "writes no image" "$T/start.err"
	sleep 1
	! grep -q "written to" "$T/start.err"
	[ "$(stat -c %i "$T/img/header")" = "$ino" ]
}

# The install of a new image (crac start's own files in DIR.new-PID, the
# rename into place): each step given up at --timeout, naming it; DIR is
# not replaced, the program runs on.
@test "the write of DIR.new-PID/start-key does not return: given up at --timeout naming the file; DIR not replaced, the program runs on" {
	bg start env CRAC_TEST_SLOW_FS=write:600000 "$CRAC" start --image "$T/img" --timeout 1s \
		--checkpoint-on-ready -- "$SERVER" "$T/d" 100
	wait_for grep -q "not replaced" "$T/start.err"
	cat "$T/start.err"
	grep -Eq "^crac: start: the write of $T/img\.new-$pid/start-key \(its creation\) did not return after [0-9]+ ms \(crac start --timeout, 1000 ms\): its file system does not answer; given up; $T/img not replaced$" "$T/start.err"
	[ ! -e "$T/img" ]
	[ ! -e "$T/img.new-$pid" ]   # (removed: the removal answers)
	kill -0 "$pid"
	ask "$(cat "$T/d/port")"
}

@test "the rename of DIR.new-PID into place does not return: given up at --timeout naming both; nothing removed, the program runs on" {
	bg start env CRAC_TEST_SLOW_FS=move:600000 "$CRAC" start --image "$T/img" --timeout 1s \
		--checkpoint-on-ready -- "$SERVER" "$T/d" 100
	wait_for grep -q "cannot put" "$T/start.err"
	cat "$T/start.err"
	grep -Eq "^crac: start: cannot put the image $T/img\.new-$pid in place: rename $T/img\.new-$pid to $T/img did not return after [0-9]+ ms \(crac start --timeout, 1000 ms\): its file system does not answer; given up \(it may still happen when the file system answers again\)$" "$T/start.err"
	# the late rename's to finish: the new image is left whole
	[ ! -e "$T/img" ]
	[ -s "$T/img.new-$pid/start-key" ] && [ -s "$T/img.new-$pid/header" ]
	kill -0 "$pid"
	ask "$(cat "$T/d/port")"
}

@test "the search for the restore loader does not return: given up at --timeout naming the path; PROG starts cold" {
	image_by_cold_start
	stuck_start loader
	grep -Eq "^crac: start: the search for the restore loader stopped: access to /[^ ]*/crac-loader did not return after [0-9]+ ms \(crac start --timeout, 1000 ms\): its file system does not answer; given up: starting $SERVER cold" "$T/start.err"
	[ "$ms" -lt 8000 ]
	wait_for test -n "$(real_children "$pid")"
	[ "$(wc -l <"$T/d/boots")" -eq 2 ]
}

@test "a lock of DIR.lock granted after it was given up on is released at once: another process takes every byte while PROG runs cold" {
	[ -n "$PY" ] || skip "no python3"
	# CRAC_TEST_SLOW_FS=locked: the lock is granted, but its call returns
	# only after it was given up on (a lock server that answers late)
	stuck_start locked
	grep -Eq "^crac: start: warning: $T/img is missing, and the search for an image moved aside stopped: the lock of $T/img\.lock \(byte 1\) did not return after [0-9]+ ms \(crac start --timeout, 1000 ms\): its file system does not answer; given up \($T/img\.lock closed: a late grant is released at once; this crac start takes no lock from now on\)$" "$T/start.err"
	wait_for test -n "$(real_children "$pid")"
	kill -0 "$pid"
	# crac start holds no DIR.lock, and no byte of it is locked: another
	# crac start could write, swap and restore DIR meanwhile
	[ -z "$(ls -l "/proc/$pid/fd" | grep "$T/img\.lock")" ]
	run "$PY" -c '
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for byte in (0, 1, 2):
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, byte)
print("free")' "$T/img.lock"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = free ]
}

@test "the locks of DIR.lock do not return (a lock server gone): given up at --timeout naming the lock file and the byte; PROG starts cold and writes no image" {
	stuck_start lock
	# the first (byte 1, the look for an image moved aside) given up on:
	# DIR.lock closed (a late grant released at once), no lock taken after
	dropped="\($T/img\.lock closed: a late grant is released at once; this crac start takes no lock from now on\)"
	grep -Eq "^crac: start: warning: $T/img is missing, and the search for an image moved aside stopped: the lock of $T/img\.lock \(byte 1\) did not return after [0-9]+ ms \(crac start --timeout, 1000 ms\): its file system does not answer; given up $dropped$" "$T/start.err"
	grep -Eq "^crac: start: cannot lock $T/img\.lock: the lock of $T/img\.lock \(byte 1\) did not return after [0-9]+ ms \(crac start --timeout, 1000 ms\): its file system does not answer; given up $dropped: starting $SERVER cold; it writes no image: the file system of $T/img does not answer$" "$T/start.err"
	[ "$(grep -c "did not return" "$T/start.err")" -eq 2 ]
	[ "$ms" -lt 8000 ]
	wait_for test -n "$(real_children "$pid")"
	kill -0 "$pid"
}
