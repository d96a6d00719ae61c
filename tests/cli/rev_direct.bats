#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Review of the O_DIRECT writer's helper (image_write.c dworker_*): a
# full file system (a loop-mounted ext4 of 24 MiB), the program killed
# while the helper writes, the helper killed while it writes. In every
# case the checkpoint ends, the program goes on with every byte intact (or
# is gone), no temporary is left, and no helper is left behind, zombie or
# not (tests/progs/rev_direct.c).

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup revdirect
	PROG="$CRAC_BUILD_DIR/tests/rev_direct"
	MNT=
	PID=
}

teardown() {
	[ -z "$PID" ] || kill -9 "$PID" 2>/dev/null || true
	exec 7>&- 2>/dev/null || true
	[ -z "$MNT" ] || umount "$MNT" 2>/dev/null || true
	rm -rf "$T"
}

# small_fs: a 24 MiB ext4 mounted (loop) at $MNT, writable by anyone
small_fs() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (to mount a loop device)"
	command -v mkfs.ext4 >/dev/null || skip "no mkfs.ext4"
	truncate -s 24M "$T/fs.img"
	mkfs.ext4 -q "$T/fs.img"
	mkdir "$T/mnt"
	mount -o loop "$T/fs.img" "$T/mnt" || skip "cannot mount a loop device here"
	MNT="$T/mnt"
	chmod 777 "$MNT"
}

# enospc AS...: 64 MiB checkpointed into the 24 MiB file system: fails
# with ENOSPC naming the pages file, the program goes on, nothing left
enospc() {
	run clean "$@" "$PROG" "$MNT/img" 64 fail
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "failed as expected"
	echo "$output" | grep -q "No space left on device (ENOSPC): writing page data to $MNT/img.tmp-.*/pages at offset"
	echo "$output" | grep -qx "children 0"
	echo "$output" | grep -qx "continued"
	[ "$(ls -A "$MNT")" = "lost+found" ]
}

@test "ENOSPC in the O_DIRECT helper's writes: the checkpoint fails cleanly, the program goes on" {
	small_fs
	enospc env CRAC_IMAGE_WRITER=direct
	enospc env CRAC_IMAGE_WRITER=direct CRAC_IMAGE_DIRECT_HELPER=0
	# a batch refused first (the rest buffered, by this thread), then full
	enospc env CRAC_IMAGE_WRITER=direct CRAC_TEST_DIRECT_REFUSE=3
	enospc setpriv --reuid=nobody --regid=nogroup --clear-groups env CRAC_IMAGE_WRITER=direct
}

# start_big: the program with 1 GiB, waiting on a FIFO until `go`; sets
# PID once it says ready
start_big() {
	mkfifo "$T/in"
	exec 7<>"$T/in"   # (read-write: opening it blocks neither side)
	SPAWN_STDIN="$T/in" spawn "$T/out" "$T/out" env CRAC_IMAGE_WRITER=direct REV_WAIT_STDIN=1 "$PROG" "$T/img" 1024 ok
	for _ in $(seq 1 600); do
		grep -q '^ready' "$T/out" && break
		sleep 0.1
	done
	PID=$(sed -n 's/^ready //p' "$T/out")
	[ -n "$PID" ]
}

# go_find_helper: lets the checkpoint start and sets HELPER to the first
# child a thread of the program has (the O_DIRECT writer: the fsync
# helpers come only after the pages are written)
go_find_helper() {
	echo go >&7
	HELPER=
	for _ in $(seq 1 3000); do
		HELPER=$(cat /proc/"$PID"/task/*/children 2>/dev/null | tr -s ' ' '\n' | grep . | head -1 || true)
		[ -z "$HELPER" ] || break
		sleep 0.002
	done
	echo "helper: $HELPER"
	[ -n "$HELPER" ]
	ps -o pid,ppid,stat,wchan:20,comm -p "$HELPER" || true
}

@test "the program killed (-9) while the O_DIRECT helper writes: no helper is left" {
	start_big
	go_find_helper
	kill -9 "$PID"
	for _ in $(seq 1 100); do
		[ -e /proc/"$HELPER" ] || break
		sleep 0.05
	done
	ps -o pid,ppid,stat,comm -p "$HELPER" || true
	[ ! -e /proc/"$HELPER" ]
}

@test "the O_DIRECT helper killed (-9) while it writes: the checkpoint ends and fails, the program goes on" {
	# Fails before a fix of image_write.c: dworker_wait waits on the futex
	# for ever, every thread of the program stopped, the helper a zombie.
	start_big
	go_find_helper
	kill -9 "$HELPER"
	for _ in $(seq 1 300); do
		grep -q '^continued\|^FAIL' "$T/out" && break
		sleep 0.05
	done
	cat "$T/out"
	ps -o pid,stat,wchan:20,comm -L -p "$PID" || true
	grep -q "^FAIL: checkpoint returned" "$T/out"
	grep -q "$HELPER" "$T/out"
	[ ! -e /proc/"$HELPER" ]
	ls -A "$T"
	! ls -A "$T" | grep -q "img"
}

@test "the O_DIRECT helper stopped (SIGSTOP) while it writes: given up at the deadline, killed, the checkpoint fails, the program goes on" {
	# A write that does not return (a file system that stopped answering)
	# looks the same to the checkpoint: the wait ends at its deadline
	# (the default 10 s here; CRAC_TEST_SYNC_GRACE_MS=2000: 2 s of grace,
	# not 30, for the waits after it: the temporary's removal).
	export CRAC_TEST_SYNC_GRACE_MS=2000
	start_big
	go_find_helper
	kill -STOP "$HELPER"
	for _ in $(seq 1 400); do
		grep -q '^continued\|^FAIL' "$T/out" && break
		sleep 0.05
	done
	cat "$T/out"
	grep -q "^FAIL: checkpoint returned" "$T/out"
	grep -q "the writer (pid $HELPER) did not finish by the checkpoint's deadline" "$T/out"
	for _ in $(seq 1 100); do
		[ -e /proc/"$HELPER" ] || break
		sleep 0.05
	done
	[ ! -e /proc/"$HELPER" ]
	! ls -A "$T" | grep -q "img"
}

@test "the compression worker killed (-9) while it works: the checkpoint goes on without it, the image restores" {
	mkfifo "$T/in"
	exec 7<>"$T/in"
	SPAWN_STDIN="$T/in" spawn "$T/out" "$T/out" env CRAC_IMAGE_COMPRESS=1 CRAC_IMAGE_COMPRESS_THREADS=2 \
		REV_WAIT_STDIN=1 "$PROG" "$T/img" 512 ok
	for _ in $(seq 1 600); do
		grep -q '^ready' "$T/out" && break
		sleep 0.1
	done
	PID=$(sed -n 's/^ready //p' "$T/out")
	[ -n "$PID" ]
	echo go >&7
	# the worker: the child that lives on (the bounded helpers end at once)
	W=
	for _ in $(seq 1 1500); do
		c=$(cat /proc/"$PID"/task/*/children 2>/dev/null | tr -s ' ' '\n' | grep . | head -1 || true)
		if [ -n "$c" ]; then
			sleep 0.2
			if [ -e /proc/"$c" ] && grep -q "$c" /proc/"$PID"/task/*/children 2>/dev/null; then
				W=$c
				break
			fi
		fi
		sleep 0.002
	done
	echo "worker: $W"
	[ -n "$W" ]
	kill -9 "$W"
	for _ in $(seq 1 600); do
		grep -q '^continued\|^FAIL' "$T/out" && break
		sleep 0.05
	done
	cat "$T/out"
	grep -qx "continued" "$T/out"
	! grep -q "^FAIL" "$T/out"
	run clean "$CRAC" restore "$T/img"
	echo "$output"
	[ "$output" = "restored ok" ]
}
