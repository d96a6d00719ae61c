#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Lazy restore (userfaultfd): large anonymous mappings are loaded on demand
# and in the background. With CRAC_LAZY_PREFETCH=off nothing is loaded but
# what the program touches, so every scenario of tests/progs/image_lazy.c
# meets pages that are not there yet: system calls reading and writing them,
# MADV_DONTNEED / MADV_FREE, mprotect splitting the mapping, mremap, munmap,
# fork (glibc's and a raw system call), threads. A damaged chunk stops the process before a damaged page is
# visible; so does a pages file changed or truncated while loading (only verified bytes are ever copied in).
# Unprivileged, restore is eager and says why; --lazy refuses.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	LAZY="$CRAC_BUILD_DIR/tests/image_lazy"
	EDIT="$CRAC_BUILD_DIR/tests/image_edit"
	T="$(mktemp -d /tmp/crac-bats-lazy.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOADER CRAC_LAZY_PREFETCH
	# these tests are about what faults, prefetch and read-ahead load: no
	# working set loaded first (lazy_working_set.bats runs the scenarios
	# with one)
	export CRAC_WORKING_SET=off
	require_image_engine
}

teardown() {
	# a restore left waiting by a failed start_waiting (timeout passes the signal on)
	[ -z "${PID:-}" ] || kill "$PID" 2>/dev/null || true
	rm -rf "$T"
}

# checkpoint [MiB]: image_lazy into $T/img; BIG and LEN: its big mapping.
checkpoint() {
	big_mapping "$LAZY" "$T/img" "$@"
}

# restored_huge [ENV=V...]: `crac restore --stats $T/img -- huge` with
# ENV and only stdio open, 60 s at most, shows what it said, exits 0 and
# says "ok huge"; KB, its "huge KB" (the big mapping's AnonHugePages).
restored_huge() {
	run --separate-stderr clean env "$@" timeout 60 "$CRAC" restore --stats "$T/img" -- huge
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "ok huge"
	KB=$(echo "$output" | sed -n 's/^huge \([0-9]*\)$/\1/p')
}

# need_lazy: skips unless this user gets a userfaultfd for kernel faults.
need_lazy() {
	run clean "$CRAC" restore --lazy --stats "$T/img" -- read
	if [ "$status" -ne 0 ] && echo "$output" | grep -q -- "--lazy: lazy restore needs"; then
		skip "no userfaultfd for kernel faults here: $output"
	fi
}

@test "every scenario with nothing loaded in advance" {
	checkpoint
	need_lazy
	for s in read syscall dontneed free mprotect mremap munmap fork rawfork threads; do
		run --separate-stderr clean env CRAC_LAZY_PREFETCH=off timeout 60 "$CRAC" restore --stats "$T/img" -- "$s"
		echo "$s: status $status"
		echo "stdout: $output"
		echo "stderr: $stderr"
		[ "$status" -eq 0 ]
		[ "$output" = "ok $s" ]
		echo "$stderr" | grep -q "MiB lazy, .*; lazy: large anonymous mappings load in the background"
	done
}

@test "every scenario with prefetch on: after each fault the rest of its chunk loads in the background" {
	checkpoint
	need_lazy
	for s in read syscall dontneed free mprotect mremap munmap fork rawfork threads; do
		run --separate-stderr clean timeout 60 "$CRAC" restore --stats "$T/img" -- "$s"
		echo "$s: status $status"
		echo "stdout: $output"
		echo "stderr: $stderr"
		[ "$status" -eq 0 ]
		[ "$output" = "ok $s" ]
	done
}

@test "the restored program does not wait for the lazy thread to leave the loader; the last of the two out unmaps it" {
	checkpoint
	need_lazy
	# the lazy thread late (100 ms): the program runs with the loader still
	# mapped, and the lazy thread unmaps it once out
	run --separate-stderr clean env CRAC_TEST_LAZY_LATE=1 timeout 60 "$CRAC" restore "$T/img" -- loader
	echo "late: status $status, stdout: $output, stderr: $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'loader mapped at first: yes\nok loader')" ]
	# as it comes (mostly the lazy thread out first: the program unmaps it)
	for i in 1 2 3 4 5; do
		run --separate-stderr clean timeout 60 "$CRAC" restore "$T/img" -- loader
		echo "run $i: status $status, stdout: $output, stderr: $stderr"
		[ "$status" -eq 0 ]
		echo "$output" | grep -qx "ok loader"
	done
}

@test "loading on demand: what the program touched was loaded by faults" {
	checkpoint
	need_lazy
	run --separate-stderr clean env CRAC_LAZY_PREFETCH=off "$CRAC" restore --stats "$T/img" -- read
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	# 32 MiB read page by page: loaded in windows of 64 KiB, by faults only
	echo "$stderr" | grep -Eq "^crac: lazy restore: 32 MiB loaded in [0-9.]+ ms after the jump \(512 faults, 0 zero pages"
}

@test "streaming: a program that reads on where the loading got to waits once a chunk, not once a window" {
	checkpoint 64
	need_lazy
	# every page read at once: the program catches up with the loading
	# again and again; each fault right after a loaded page gets the rest
	# of its chunk (1 MiB), so at most about one fault a chunk (with 64 KiB
	# windows it was up to one a window: 1024 for 64 MiB)
	for i in 1 2 3; do
		run --separate-stderr clean "$CRAC" restore --stats "$T/img" -- read
		echo "$stderr"
		[ "$status" -eq 0 ]
		[ "$output" = "ok read" ]
		n=$(echo "$stderr" | sed -n 's/^crac: lazy restore: 64 MiB loaded in [0-9.]* ms after the jump (\([0-9]*\) faults, .*/\1/p')
		[ -n "$n" ] && [ "$n" -le 80 ]
	done
}

@test "background prefetch: everything is loaded while the program does not touch it" {
	checkpoint 64
	need_lazy
	run --separate-stderr clean "$CRAC" restore --stats "$T/img" -- fork
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok fork" ]
	# fork() waited for the loader to finish (pthread_atfork): no fork event
	echo "$stderr" | grep -Eq "^crac: lazy restore: 64 MiB loaded in [0-9.]+ ms after the jump \([0-9]+ faults, [0-9]+ zero pages, [0-9]+ remove/unmap/remap events, 0 forks\)"
}

@test "read-ahead: with two CPUs a helper thread reads and verifies the next chunk meanwhile; with one, none" {
	checkpoint 64
	need_lazy
	[ "$(nproc)" -ge 2 ] || skip "one CPU: no read-ahead"
	# the program waits (fork) until everything is loaded: prefetch reads
	# the 64 MiB chunk after chunk, each but the first read ahead (pages
	# copied: blocks moved in are read ahead as blocks, not counted here,
	# and how many are moved before slow huge pages end the moves depends
	# on the machine's memory and load: the "moves" tests below)
	export CRAC_LAZY_MOVE=off
	run --separate-stderr clean "$CRAC" restore --stats "$T/img" -- fork
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok fork" ]
	n=$(echo "$stderr" | sed -n 's/^crac: lazy restore: 64 MiB loaded .*; \([0-9]*\) chunks read ahead$/\1/p')
	[ -n "$n" ]
	[ "$n" -ge 16 ]
	# one CPU: no helper, the same pages
	run --separate-stderr clean taskset -c 0 "$CRAC" restore --stats "$T/img" -- fork
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok fork" ]
	echo "$stderr" | grep -Eq "^crac: lazy restore: 64 MiB loaded in [0-9.]+ ms after the jump \([^)]*\)"
	! echo "$stderr" | grep -q "read ahead"
}

# need_move: skips unless the kernel has UFFDIO_MOVE (Linux 6.8) and gives
# transparent huge pages to a mapping that asks (THP not "never").
need_move() {
	local v major minor
	v=$(uname -r)
	major=${v%%.*}
	minor=${v#*.}
	minor=${minor%%[!0-9]*}
	[ "$major" -gt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -ge 8 ]; } || skip "Linux $v has no UFFDIO_MOVE (6.8)"
	grep -q '\[never\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null &&
		skip "transparent huge pages are off here"
	true
}

@test "moves: whole 2 MiB blocks go in as huge pages (UFFDIO_MOVE), holes read zero; CRAC_LAZY_MOVE=off copies every page" {
	# a mapping that does not start on a 2 MiB boundary, with pages the
	# image does not store (zero) here and there: its chunks are cut at
	# multiples of their size in the address space, so its aligned blocks
	# are whole chunks and go in whole, their holes zero
	big_mapping "$LAZY" "$T/img" 64 holes
	need_lazy
	need_move
	[ $((BIG % 2097152)) -eq 4096 ]
	# (force: moved even if fresh huge pages are slow here, see the next test)
	restored_huge CRAC_TEST_LAZY_MOVE=force
	[ -n "$KB" ] && [ "$KB" -gt 0 ]
	echo "$stderr" | grep -Eq "^crac: lazy restore: [0-9]+ MiB loaded in [0-9.]+ ms after the jump \([^)]*\); [0-9]+ MiB of it moved in, in 2 MiB blocks"
	# copies only: the same bytes, in small pages
	restored_huge CRAC_LAZY_MOVE=off
	[ "$KB" = 0 ]
	! echo "$stderr" | grep -q "moved in"
	# the scenarios that change the mapping while blocks are moved in
	for s in read dontneed free mprotect mremap munmap fork rawfork threads; do
		run --separate-stderr clean env CRAC_TEST_LAZY_MOVE=force timeout 60 "$CRAC" restore --stats "$T/img" -- "$s"
		echo "$s: status $status"
		echo "stdout: $output"
		echo "stderr: $stderr"
		[ "$status" -eq 0 ]
		[ "$output" = "ok $s" ]
	done
}

@test "moves: slow fresh huge pages (a VM whose host took free memory back) and the thread copies instead, and says so" {
	big_mapping "$LAZY" "$T/img" 64 holes
	need_lazy
	need_move
	# every block's read taken as slow: three moved, then copies
	restored_huge CRAC_TEST_LAZY_MOVE=slow
	# at most three blocks' huge pages (one read that took over 3 ms is
	# copied, not moved), the rest small
	[ -n "$KB" ] && [ "$KB" -gt 0 ] && [ "$KB" -le 6144 ] && [ $((KB % 2048)) -eq 0 ]
	echo "$stderr" | grep -Eq "^crac: lazy restore: .*; [0-9]+ MiB of it moved in, in 2 MiB blocks; moving blocks in given up after 3 slow reads in a row \(the last [0-9.]+ ms: fresh huge pages are slow here"
	# as it comes: moved, or not (with the probe's time)
	restored_huge
	echo "$stderr" | grep -Eq "^crac: lazy restore: .*(MiB of it moved in, in 2 MiB blocks|no blocks moved in: a fresh huge page took [0-9.]+ ms|no blocks moved in: no huge page for the block buffer)"
}

@test "a raw fork's child is served through a userfaultfd of its own (fork event)" {
	checkpoint
	need_lazy
	run --separate-stderr clean env CRAC_LAZY_PREFETCH=off "$CRAC" restore --stats "$T/img" -- rawfork
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok rawfork" ]
	echo "$stderr" | grep -Eq "^crac: lazy restore: .*, 1 forks\)"
}

@test "inspect marks the mappings that load lazily" {
	checkpoint
	# only the large mapping with CRAC_LAZY_SMALL=off (the loader's too)
	run env CRAC_LAZY_SMALL=off "$CRAC" inspect "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^mappings: .*(32.0 MiB of it lazy where userfaultfd allows: L)$"
	start=$(printf '%012x' "$BIG")
	echo "$output" | grep -Eq "^  $start [0-9a-f]+ rw-p anon +32768K +32768K L *$"
	[ "$(echo "$output" | grep -c "K L ")" -eq 1 ]
	run env CRAC_LAZY_SMALL=off "$CRAC" inspect "$T/img" --json
	[ "$status" -eq 0 ]
	echo "$output" | python3 -c 'import json,sys; d=json.load(sys.stdin); l=[m for m in d["mappings"] if m["lazy"]]; assert len(l)==1 and l[0]["start"]==int(sys.argv[1],16), l' "$BIG"
	# by default the small anonymous mappings with pages stored too, as
	# the loader plans them (inspect_lazy_review.bats counts them against
	# the loader's)
	run "$CRAC" inspect "$T/img"
	[ "$status" -eq 0 ]
	echo "$output" | grep -Eq "^  $start [0-9a-f]+ rw-p anon +32768K +32768K L *$"
	[ "$(echo "$output" | grep -c "K L ")" -ge 2 ]
	[ -z "$(echo "$output" | grep "K L " | grep -v " rw-p anon ")" ]
}

@test "kernel limit: a locked mapping moved and grown while loading stops the process with the reason" {
	# mremap populates the grown part of a locked mapping (faults to the
	# lazy loader) before it reports the move, and no page may be filled
	# until it does: the process would hang. It is stopped after 5 s, with
	# the reason; --populate restores it fine.
	run clean "$LAZY" "$T/img" 32 second
	[ "$status" -eq 0 ]
	need_lazy
	run --separate-stderr clean env CRAC_LAZY_PREFETCH=off timeout 60 "$CRAC" restore "$T/img" -- mlock-mremap
	echo "status $status"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "crac: restore $T/img: lazy loading is stuck: for 5 s a thread has waited for a page the kernel does not let us fill while a memory-map change stays unreported (mremap growing a locked mapping during loading does this); restore with --populate; the restored process is stopped" ]
	run --separate-stderr clean "$CRAC" restore --populate "$T/img" -- mlock-mremap
	[ "$status" -eq 0 ]
	[ "$output" = "ok mlock-mremap" ]
}

@test "a checkpoint waits for the lazy loading only until its deadline, then is refused naming the loader thread" {
	checkpoint
	need_lazy
	# the lazy thread stalls 2 s once the checkpoint hurries it (a pages
	# file that reads slowly); prefetch off: most of the heap still to load
	run --separate-stderr clean env CRAC_LAZY_PREFETCH=off CRAC_TEST_LAZY_STALL=1 timeout 60 \
		"$CRAC" restore --lazy "$T/img" -- stalled "$T/img2"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	# refused at the deadline (ETIMEDOUT), naming the lazy loader's thread,
	# and the process went on: its pages intact, a later checkpoint taken
	echo "$output" | grep -q "^refused: rc=-110 crac: checkpoint failed (ETIMEDOUT)"
	echo "$output" | grep -q "lazy loader: .*thread [0-9]* (crac's lazy loader) was still loading the memory"
	echo "$output" | grep -q "No checkpoint was taken; the process goes on"
	[ "${lines[-1]}" = "ok stalled" ]
	# the image of the second checkpoint holds every page
	run clean timeout 60 "$CRAC" restore --populate "$T/img2" -- read
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
}

@test "--populate restores eagerly" {
	checkpoint
	run --separate-stderr clean "$CRAC" restore --populate --stats "$T/img" -- read
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	echo "$stderr" | grep -q " 0.0 MiB lazy, .*; eager: --populate$"
	! echo "$stderr" | grep -q "^crac: lazy restore" || false
	run clean "$CRAC" restore --populate --lazy "$T/img"
	[ "$status" -eq 2 ]
}

@test "a damaged chunk stops the process before any of its pages is visible" {
	checkpoint
	need_lazy
	# a byte in the middle of the big mapping
	read -r idx off len < <("$EDIT" "$T/img" chunk-at $((BIG + LEN / 2)))
	[ -n "$len" ]
	byte=$(od -An -tu1 -j $((off + len / 2)) -N1 "$T/img/pages" | tr -d ' ')
	printf "\\$(printf %03o $((byte ^ 255)))" | dd of="$T/img/pages" bs=1 seek=$((off + len / 2)) conv=notrunc status=none
	for prefetch in off on; do
		run --separate-stderr clean env CRAC_LAZY_PREFETCH=$prefetch "$CRAC" restore "$T/img" -- read
		echo "prefetch $prefetch: status $status"
		echo "stdout: $output"
		echo "stderr: $stderr"
		[ "$status" -eq 1 ]
		[ -z "$output" ]   # "ok read" never printed: the damaged page was never read
		echo "$stderr" | grep -Eqx "crac: restore $T/img: page data checksum mismatch in chunk #$idx \\($len bytes at 0x[0-9a-f]+, anon\\): the pages file is damaged; found in $T/img/pages while loading lazily \\(damaged before the restore, or changed since\\), before any of these pages was visible; the restored process is stopped"
	done
	# --populate checks every chunk before the program runs
	run --separate-stderr clean "$CRAC" restore --populate "$T/img" -- read
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	echo "$stderr" | grep -Eqx "crac: restore $T/img: page data checksum mismatch in chunk #$idx \\($len bytes at 0x[0-9a-f]+, anon\\): the pages file is damaged"
}

@test "a pages file changed while loading lazily: a chunk already verified is verified again, the change is never loaded" {
	checkpoint
	need_lazy
	# the program loaded a window of the first chunk, then of eight others;
	# the chunk is larger than the 64 KiB window a fault loads (a 32 MiB
	# mapping's chunks are 128 KiB), so its last page is verified, not loaded
	read -r idx off len < <("$EDIT" "$T/img" chunk-at "$BIG")
	[ "$len" -ge $((128 << 10)) ]
	start_waiting wait CRAC_LAZY_PREFETCH=off
	# the last page of the first chunk: verified, but not loaded yet
	flip_byte "$T/img/pages" $((off + len - 100))
	finish_waiting
	[ "$status" -eq 1 ]
	[ -z "$output" ]   # neither "ok wait" nor "FAIL: pages without their pattern"
	echo "$stderr" | grep -Eqx "crac: restore $T/img: page data checksum mismatch in chunk #$idx \\($len bytes at $BIG, anon\\): the pages file is damaged; $T/img/pages changed while loading lazily; the pages of it loaded before came from the bytes verified then; the restored process is stopped"
}

@test "a pages file changed while loading lazily, in a chunk not loaded yet: stopped, naming the file" {
	checkpoint
	need_lazy
	read -r idx off len < <("$EDIT" "$T/img" chunk-at $((BIG + LEN / 2)))
	[ -n "$len" ]
	start_waiting wait CRAC_LAZY_PREFETCH=off
	flip_byte "$T/img/pages" $((off + len / 2))
	finish_waiting
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	echo "$stderr" | grep -Eqx "crac: restore $T/img: page data checksum mismatch in chunk #$idx \\($len bytes at 0x[0-9a-f]+, anon\\): the pages file is damaged; found in $T/img/pages while loading lazily \\(damaged before the restore, or changed since\\), before any of these pages was visible; the restored process is stopped"
}

@test "a pages file truncated while loading lazily: stopped, naming the file (no SIGBUS)" {
	checkpoint
	need_lazy
	read -r idx off len < <("$EDIT" "$T/img" chunk-at $((BIG + LEN / 2)))
	[ -n "$len" ]
	size=$(stat -c %s "$T/img/pages")
	start_waiting wait CRAC_LAZY_PREFETCH=off
	truncate -s $((off + len / 2)) "$T/img/pages"
	finish_waiting
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	echo "$stderr" | grep -Eqx "crac: restore $T/img: the pages file $T/img/pages was truncated while loading lazily \\(now $((off + len / 2)) bytes, the image needs $size\\): found reading chunk #$idx \\($len bytes at 0x[0-9a-f]+, anon\\), before any of these pages was visible; the restored process is stopped"
}

@test "unprivileged: restore is eager and says why; --lazy refuses" {
	need_nobody "$LAZY"
	chown 65534:65534 "$T"
	run clean $NOBODY "$LAZY" "$T/img"
	[ "$status" -eq 0 ]
	run --separate-stderr clean $NOBODY "$CRAC" restore --stats "$T/img" -- dontneed
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok dontneed" ]
	echo "$stderr" | grep -q "; eager: lazy restore needs a userfaultfd that also handles faults taken inside system calls: root (CAP_SYS_PTRACE), vm.unprivileged_userfaultfd=1, or read-write access to /dev/userfaultfd$"
	run --separate-stderr clean $NOBODY "$CRAC" restore --lazy "$T/img" -- read
	echo "$stderr"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "crac: restore $T/img: --lazy: lazy restore needs a userfaultfd that also handles faults taken inside system calls: root (CAP_SYS_PTRACE), vm.unprivileged_userfaultfd=1, or read-write access to /dev/userfaultfd" ]
}
