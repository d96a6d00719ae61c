#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A file system that fills up while an image is written (ENOSPC, a small
# tmpfs): a checkpoint and `crac flatten` fail with one reason naming the
# file at fault, whatever they were writing when the space ran out (the
# pages, the header, the directory); the image already at the target stays
# exactly as it was, no temporary is left, and the program goes on. Each
# is tried at every amount of free space around the size of the new image,
# a page at a time, so that the space runs out at every step of the write
# (for crac start also at the start-key it adds to the image).

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	HEAP="$CRAC_BUILD_DIR/tests/ckpt_heap"
	T="$(mktemp -d /tmp/crac-bats-enospc.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOG
	export CRAC_CONTROL_DIR="$T/ctl"
	require_image_engine
	MOUNTED=
	pid=
}

teardown() {
	# (crac start's program first: it would outlive its supervisor)
	[ -z "$pid" ] || pkill -9 -P "$pid" 2>/dev/null || true
	[ -z "$pid" ] || kill -9 "$pid" 2>/dev/null || true
	[ -z "$MOUNTED" ] || umount "$MOUNTED" 2>/dev/null || true
	rm -rf "$T"
}

# small_fs MIB: a tmpfs of MIB MiB at $T/fs
small_fs() {
	mkdir -m 755 "$T/fs"
	mount -t tmpfs -o mode=755,size="$1"m tmpfs "$T/fs" 2>/dev/null ||
		skip "cannot mount a tmpfs here (not root, or no mount permission)"
	MOUNTED="$T/fs"
}

# free_kib: KiB free in $T/fs
free_kib() {
	df -k --output=avail "$T/fs" | tail -1 | tr -d ' '
}

# leave_free KIB: $T/fs/fill sized so that KIB KiB stay free (or fewer)
leave_free() {
	rm -f "$T/fs/fill"
	local fill=$(($(free_kib) - $1))
	[ "$fill" -le 0 ] || fallocate -l "${fill}k" "$T/fs/fill"
}

# heap MIB: ckpt_heap with MIB MiB of heap under crac run (incremental
# checkpoints asked for), its pid in $pid once it answers
heap() {
	(
		close_fds
		CRAC_IMAGE_INCREMENTAL=1 exec "$CRAC" run -- "$HEAP" "$1" 0 </dev/null >"$T/heap.out" 2>&1
	) &
	pid=$!
	for _ in $(seq 250); do
		[ -S "$CRAC_CONTROL_DIR/$pid.sock" ] && grep -q ready "$T/heap.out" && return 0
		sleep 0.02
	done
	cat "$T/heap.out"
	return 1
}

# sums DIR: the checksums of DIR's files (or "none")
sums() {
	if [ -d "$1" ]; then (cd "$1" && md5sum header pages); else echo none; fi
}

# no_temporary: nothing but img/out, the filler and what was there
no_temporary() {
	! ls -a "$T/fs" | grep -E '\.(tmp|old)-' || false
}

@test "checkpoints as the space runs out at every step: the image in place is kept or replaced whole, the program goes on" {
	small_fs 16
	heap 4
	run "$CRAC" checkpoint --keep-running --image-dir "$T/fs/img" "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	size=$(du -sk "$T/fs/img" | cut -f1)
	failed=0 written=0
	for free in $(seq $((size - 32)) 8 $((size + 256))); do
		before="$(sums "$T/fs/img")"
		leave_free "$free"
		run "$CRAC" checkpoint --keep-running --image-dir "$T/fs/img" "$pid"
		echo "free ${free} KiB (image ${size} KiB): status $status: $output"
		if [ "$status" -eq 0 ]; then
			written=$((written + 1))
			run "$CRAC" inspect "$T/fs/img"
			[ "$status" -eq 0 ]
		else
			failed=$((failed + 1))
			[ "$status" -eq 1 ]
			# the reason names the file of the temporary image at fault
			echo "$output" | grep -Eq "engine image: No space left on device \(ENOSPC\): .*$T/fs/img\.tmp-[^ ]*/(pages|header)"
			[ "$(sums "$T/fs/img")" = "$before" ]
		fi
		no_temporary
		kill -0 "$pid"
	done
	[ "$failed" -gt 0 ]
	[ "$written" -gt 0 ]
	# with room again, the next checkpoint works, and the image restores
	rm -f "$T/fs/fill"
	run "$CRAC" checkpoint --image-dir "$T/fs/img" "$pid"
	[ "$status" -eq 0 ]
	wait_gone "$pid" 5
	run clean timeout 1 "$CRAC" restore "$T/fs/img"
	[ "$status" -eq 124 ]   # ckpt_heap waits again, until timeout stops it
}

@test "crac flatten as the space runs out at every step: one line naming the file, OUT kept as it was, no temporary" {
	small_fs 24
	heap 4
	for d in i0 i1; do
		run "$CRAC" checkpoint --keep-running --image-dir "$T/$d" "$pid"
		[ "$status" -eq 0 ]
	done
	kill -9 "$pid"
	pid=
	run "$CRAC" flatten "$T/i1" "$T/flat"
	echo "$output"
	[ "$status" -eq 0 ]
	size=$(du -sk "$T/flat" | cut -f1)
	# OUT absent, then an image there (of i0)
	for start in absent image; do
		rm -rf "$T/fs/out"
		[ $start = absent ] || cp -a "$T/i0" "$T/fs/out"
		failed=0 written=0
		for free in $(seq $((size - 64)) 4 $((size + 16))); do
			before="$(sums "$T/fs/out")"
			leave_free "$free"
			run clean "$CRAC" flatten "$T/i1" "$T/fs/out"
			echo "$start, free ${free} KiB (image ${size} KiB): status $status: $output"
			if [ "$status" -eq 0 ]; then
				written=$((written + 1))
				run "$CRAC" inspect "$T/fs/out"
				[ "$status" -eq 0 ]
				rm -rf "$T/fs/out"
				[ $start = absent ] || cp -a "$T/i0" "$T/fs/out"
			else
				failed=$((failed + 1))
				[ "$status" -eq 1 ]
				[ "${#lines[@]}" -eq 1 ]
				[[ "$output" =~ ^"crac: flatten $T/i1: writing $T/fs/out.tmp-"[^/]*(/pages|/header|)": No space left on device"$ ]]
				[ "$(sums "$T/fs/out")" = "$before" ]
			fi
			no_temporary
		done
		[ "$failed" -gt 0 ]
	done
}

@test "crac start writing DIR as the space runs out at every step: the program serves on, DIR is whole or absent, nothing left" {
	SERVER="$CRAC_BUILD_DIR/tests/start_server"
	small_fs 4
	mkdir "$T/d"
	# start_once: crac start on $T/fs/img until it has written DIR or said
	# why not; the program must answer meanwhile; then TERM
	start_once() {
		rm -f "$T/start.err" "$T/d/port"
		(
			close_fds
			exec "$CRAC" start --image "$T/fs/img" --checkpoint-on-ready -- "$SERVER" "$T/d" 100 \
				</dev/null >"$T/start.out" 2>"$T/start.err"
		) &
		pid=$!
		for _ in $(seq 500); do
			grep -q "written to\|not replaced\|no image written" "$T/start.err" && break
			sleep 0.02
		done
		cat "$T/start.err"
		local line
		exec 7<>"/dev/tcp/127.0.0.1/$(cat "$T/d/port")"
		read -r -t 5 line <&7
		exec 7<&-
		echo "answer: $line"
		[[ "$line" == "answer "* ]]
		kill -TERM "$pid"
		wait "$pid" || true
		pid=
	}
	start_once
	grep -q "written to $T/fs/img" "$T/start.err"
	size=$(du -sk "$T/fs/img" | cut -f1)
	failed=0 written=0
	for free in $(seq $((size - 40)) 4 $((size + 24))); do
		rm -rf "$T/fs/img"
		leave_free "$free"
		echo "free ${free} KiB (image ${size} KiB)"
		start_once
		if grep -q "written to $T/fs/img" "$T/start.err"; then
			written=$((written + 1))
			run "$CRAC" inspect "$T/fs/img"
			[ "$status" -eq 0 ]
			[ -f "$T/fs/img/start-key" ]
		else
			failed=$((failed + 1))
			grep -q "No space left on device" "$T/start.err"
			grep -Eq "$T/fs/img\.new-[0-9]+[^ ]*/(pages|header|start-key)" "$T/start.err"
			[ ! -e "$T/fs/img" ]
		fi
		! ls -a "$T/fs" | grep -E '\.(new|tmp|old)-' || false
	done
	echo "failed $failed, written $written"
	[ "$failed" -gt 0 ]
	[ "$written" -gt 0 ]
}
