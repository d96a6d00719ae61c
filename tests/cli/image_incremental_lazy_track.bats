#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A lazily restored process checkpoints incrementally writing only what it
# wrote since the restore (issue 12, item 3). Its lazy mappings belong to
# the lazy loader's userfaultfd, which the loader registers in missing and
# write-protect mode when the image asks for incremental checkpoints; the
# pages go in write-protected, and the checkpoint, threads stopped, takes
# the tracking over (image_lazy.c, img_track_lazy_handover in
# image_track.c). Before, those mappings (here 64 MiB) were stored whole.
# Pages never read since the restore (next-unread, no prefetch: not loaded
# when the checkpoint is asked for) must come back with their content:
# tests/progs/image_incr checks every page of the stage after each restore.

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup lazytrack
	INCR="$CRAC_BUILD_DIR/tests/image_incr"
}

teardown() {
	common_teardown
}

# chain [AS...]: $T/i0 (full, 64 MiB big mapping), $T/i1, $T/i2 (incremental, keep-running).
chain() {
	run --separate-stderr clean "$@" env CRAC_IMAGE_INCREMENTAL=1 "$INCR" "$T/i0" "$T/i1" "$T/i2" 64
	echo "chain: $status $output $stderr"
	[ "$status" -eq 0 ]
}

# stored DIR: the bytes of page data the image stores itself (crac inspect)
stored() {
	"${AS[@]}" "$CRAC" inspect --json "$1" | grep -o '"stored":[0-9]*' | head -1 | cut -d: -f2
}

# lazy_or_skip [AS...]: skips, with the reason, where lazy restore is impossible
lazy_or_skip() {
	run --separate-stderr clean "$@" "$CRAC" restore --lazy "$T/i0"
	if [ "$status" -ne 0 ] && echo "$stderr" | grep -q -- "--lazy: lazy restore needs"; then
		skip "no userfaultfd for kernel faults here: $stderr"
	fi
	[ "$status" -eq 0 ]
	[ "$output" = "ok stage 0" ]
}

# lazy_next FROM NEXT-ARG TO PREFETCH: restored lazily from FROM, changed
# (next / next-unread) and checkpointed incrementally into TO
lazy_next() {
	run --separate-stderr clean "${AS[@]}" env CRAC_IMAGE_INCREMENTAL=1 CRAC_LAZY_PREFETCH=$4 CRAC_LOG=info \
		timeout 60 "$CRAC" restore --lazy --stats "$1" -- "$2" "$3"
	echo "lazy restore of $1, $2 $3, prefetch $4: status $status"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	# really lazy, and really incremental
	echo "$stderr" | grep -Eq "^crac: loader: .* mappings, [1-9][0-9]* by userfaultfd"
	! echo "$stderr" | grep -q "a full image was written"
}

# track_case: the whole check, as "${AS[@]}"
track_case() {
	chain "${AS[@]}"
	lazy_or_skip "${AS[@]}"
	local i0 i1 i2
	i0=$(stored "$T/i0")
	i1=$(stored "$T/i1")
	i2=$(stored "$T/i2")
	echo "stored: i0 $i0, i1 $i1, i2 $i2"
	for pf in off on; do
		# stage 0 -> 1, nothing read first: with prefetch off, most pages
		# are not loaded when the checkpoint is asked for
		lazy_next "$T/i0" next-unread "$T/a$pf" $pf
		[ -z "$output" ]
		a=$(stored "$T/a$pf")
		echo "stored: a$pf $a (the keep-running image of the same changes: $i1)"
		# as small as the image of the same changes made by the process
		# that never stopped (1 MiB of slack: thread stacks, malloc)
		[ "$a" -le $((i1 + (1 << 20))) ]
		[ "$a" -lt $((i0 / 8)) ]
		# every page right: eager, lazy with and without prefetch
		restore_ok 1 "$T/a$pf" --populate
		restore_ok 1 "$T/a$pf" --lazy
		local as=("${AS[@]}")
		AS=("${as[@]}" env CRAC_LAZY_PREFETCH=off)
		restore_ok 1 "$T/a$pf" --lazy
		AS=("${as[@]}")
		# stage 1 -> 2 (every page read first; a forked child; mprotect)
		lazy_next "$T/i1" next "$T/b$pf" $pf
		[ "$output" = "ok stage 1" ]
		b=$(stored "$T/b$pf")
		echo "stored: b$pf $b (the keep-running image of the same changes: $i2)"
		[ "$b" -le $((i2 + (1 << 20))) ]
		restore_ok 2 "$T/b$pf" --populate
		restore_ok 2 "$T/b$pf" --lazy
		# and the restored image of a restored image: again small
		lazy_next "$T/a$pf" next "$T/c$pf" $pf
		[ "$output" = "ok stage 1" ]
		c=$(stored "$T/c$pf")
		echo "stored: c$pf $c"
		[ "$c" -le $((i2 + (1 << 20))) ]
		restore_ok 2 "$T/c$pf"
		restore_ok 2 "$T/c$pf" --populate
	done
}

@test "lazily restored: the next incremental image holds only what was written since, and every page comes back" {
	AS=()
	track_case
}

@test "unprivileged: the same as nobody, where lazy restore is possible" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to switch to nobody"
	command -v setpriv >/dev/null || skip "no setpriv"
	setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$INCR" || skip "build tree not accessible to nobody"
	chown 65534:65534 "$T"
	AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	track_case
}

# (glibc counts its own threads: when the last one ends it calls exit, and
# the lazy loader thread, not one of them, ends with the process)
@test "serving on after loading, the lazy loader does not keep a process alive whose last thread called pthread_exit" {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$CRAC_BUILD_DIR/tests/lazy_pexit" "$T/p"
	echo "checkpoint: $status $output $stderr"
	[ "$status" -eq 0 ]
	run --separate-stderr clean timeout 30 "$CRAC" restore --lazy "$T/p"
	echo "restore: status $status"
	echo "stdout: $output"
	echo "stderr: $stderr"
	if [ "$status" -ne 0 ] && echo "$stderr" | grep -q -- "--lazy: lazy restore needs"; then
		skip "no userfaultfd for kernel faults here: $stderr"
	fi
	[ "$status" -eq 0 ]   # not 124: timeout
	[ "$output" = "restored" ]
}

# tests/progs/incr_remap, restored lazily from its first image, moves its
# memory around while its pages are still loading (mremap onto another
# mapping, grown in place, MREMAP_DONTUNMAP, away and back, mapped anew,
# PROT_NONE, huge pages, written by the kernel), then checkpoints
# incrementally: a page moved is no longer what the image holds at its
# address, so it must be stored, never referenced.
@test "lazily restored, memory moved while loading: the incremental image restores every page" {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$CRAC_BUILD_DIR/tests/incr_remap" "$T/r0" "$T/r1"
	echo "first: $status $output $stderr"
	[ "$status" -eq 0 ]
	for pf in off on; do
		run --separate-stderr clean env CRAC_LAZY_PREFETCH=$pf timeout 60 "$CRAC" restore --lazy --stats \
			--env CRAC_IMAGE_INCREMENTAL=1 --env CRAC_LOG=info "$T/r0" -- into "$T/x$pf"
		echo "lazy restore, prefetch $pf: status $status"
		echo "stdout: $output"
		echo "stderr: $stderr"
		if [ "$status" -ne 0 ] && echo "$stderr" | grep -q -- "--lazy: lazy restore needs"; then
			skip "no userfaultfd for kernel faults here: $stderr"
		fi
		[ "$status" -eq 0 ]
		[ "$output" = "ok remap" ]
		echo "$stderr" | grep -Eq "^crac: lazy restore: .* [1-9][0-9]* remove/unmap/remap events"
		! echo "$stderr" | grep -q "a full image was written"
		for how in --populate --lazy ""; do
			run --separate-stderr clean timeout 60 "$CRAC" restore $how "$T/x$pf"
			echo "restore $how x$pf: status $status, stdout: $output, stderr: $stderr"
			[ "$status" -eq 0 ]
			[ "$output" = "ok remap" ]
		done
	done
}

# ten_chains MODE OUT [ENV...]: ten fresh incr_remap chains, each restored
# lazily from its first image (with ENV) to move its memory and checkpoint
# into $T/x (MODE: into, while loading; loaded-into, once loaded and at
# once), saying OUT; then $T/x restored with --populate: every page right.
ten_chains() {
	local mode=$1 want=$2 i
	shift 2
	for i in 1 2 3 4 5 6 7 8 9 10; do
		rm -rf "$T/r0" "$T/r1" "$T/x"
		run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$CRAC_BUILD_DIR/tests/incr_remap" "$T/r0" "$T/r1"
		[ "$status" -eq 0 ]
		run --separate-stderr clean env "$@" timeout 60 "$CRAC" restore --lazy --env CRAC_IMAGE_INCREMENTAL=1 \
			"$T/r0" -- "$mode" "$T/x"
		echo "lazy restore $i ($mode): status $status, stdout: $output, stderr: $stderr"
		if [ "$status" -ne 0 ] && echo "$stderr" | grep -q -- "--lazy: lazy restore needs"; then
			skip "no userfaultfd for kernel faults here: $stderr"
		fi
		[ "$status" -eq 0 ]
		[ "$output" = "$want" ]
		! echo "$stderr" | grep -q "a full image was written"
		run --separate-stderr clean timeout 60 "$CRAC" restore --populate "$T/x"
		echo "restore --populate $i: status $status, stdout: $output"
		[ "$status" -eq 0 ]
		[ "$output" = "ok remap" ]
	done
}

# The write protection of pages mremap moved is cleared by the lazy loader
# (they no longer hold what the image holds at their address); the kernel
# refuses that (EAGAIN) until the mremap is complete, which is after the
# loader read its event: tried once, it failed every time, and the moved
# pages that were loaded before the move (here some of e, where d moved
# with MREMAP_DONTUNMAP) were taken from the image below at their new
# address: zeros. Lost or not depended on what was loaded before the move
# (7 of 25 fresh images here): ten fresh chains, each checked.
@test "lazily restored, memory moved while loading, ten fresh images: no moved page is taken from the image below" {
	ten_chains into "ok remap" CRAC_LAZY_PREFETCH=off
}

# The same moves once every page is loaded, and the checkpoint right after
# them: the loader, serving on, clears the moved pages' protection only
# once each mremap is complete (after it read the event), and a checkpoint
# that took the tracking over before that took them from the image below.
# Loaded, it goes back to LOADING while such a range is left, and the
# hand-over waits for it (crac__img_lazy_settle).
@test "lazily restored, loaded, memory moved and checkpointed at once: no moved page is taken from the image below" {
	ten_chains loaded-into ""
}
