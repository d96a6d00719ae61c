#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The kernels users run (issue 11 §4): `crac check` with no PID says what
# this kernel offers, and every fallback is forced here with
# CRAC_PRETEND_MISSING (runtime/kernel.c), which makes crac act as if the
# kernel lacked the feature: PAGEMAP_SCAN (pages found from
# /proc/self/pagemap), userfaultfd (eager restore, saying why), close_range
# (descriptors closed one by one), kcmp (duplicated descriptors come back
# as separate opens), PR_SET_MM_MAP (the restore is refused, naming it).

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	COUNTER="$CRAC_BUILD_DIR/tests/image_counter"
	PROBE="$CRAC_BUILD_DIR/tests/image_probe"
	T="$(mktemp -d /tmp/crac-bats-kernel.XXXXXX)"
	chmod 755 "$T"
	mkdir -m 755 "$T/work"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOADER CRAC_PRETEND_MISSING
	require_image_engine
}

teardown() {
	rm -rf "$T"
}

# restores [ENV...] -- [crac restore options]: the probe image restores and
# every probe check passes.
restores() {
	run --separate-stderr clean env "$@" bash -c 'exec "$0" restore "$1" -- pid=$$' "$CRAC" "$T/img"
	echo "restore: status $status"
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "done generation=1" ]
}

@test "crac check with no PID lists what the kernel offers; a missing feature says what happens" {
	run "$CRAC" check
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "crac: what this kernel offers the image engine:" ]
	for f in PR_SET_MM_MAP PAGEMAP_SCAN userfaultfd kcmp close_range "timer ids" "time namespace" ptrace; do
		echo "$output" | grep -q "^  $f "
	done
	run env CRAC_PRETEND_MISSING=pagemap_scan,pr_set_mm_map "$CRAC" check
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "^  PAGEMAP_SCAN     no   fallback: /proc/self/pagemap is read entry by entry (slower; Linux 6.7 has it)$"
	echo "$output" | grep -q "^  PR_SET_MM_MAP    no   restore is impossible: it needs CONFIG_CHECKPOINT_RESTORE (Linux 3.18)$"
	run env CRAC_PRETEND_MISSING=timer_restore_ids "$CRAC" check
	echo "$output"
	echo "$output" | grep -q "^  timer ids        no   a POSIX timer refuses the checkpoint (timer_create with a given id: Linux 6.14)$"
}

@test "without PAGEMAP_SCAN: pages found from /proc/self/pagemap; the image restores" {
	run --separate-stderr clean env CRAC_PRETEND_MISSING=pagemap_scan "$PROBE" "$T/img" "$T/work"
	echo "$status $output $stderr"
	[ "$status" -eq 0 ]
	restores
}

@test "without userfaultfd: restore is eager and says why; --lazy refuses with the reason" {
	run clean "$COUNTER" "$T/img" 8
	[ "$status" -eq 0 ]
	run --separate-stderr clean env CRAC_PRETEND_MISSING=userfaultfd "$CRAC" restore --stats "$T/img"
	echo "$status $output $stderr"
	[ "$status" -eq 0 ]
	echo "$stderr" | grep -q "eager: this kernel's userfaultfd lacks the fork/remap/remove/unmap events lazy restore needs"
	run --separate-stderr clean env CRAC_PRETEND_MISSING=userfaultfd "$CRAC" restore --lazy "$T/img"
	[ "$status" -eq 1 ]
	[ "$stderr" = "crac: restore $T/img: --lazy: this kernel's userfaultfd lacks the fork/remap/remove/unmap events lazy restore needs" ]
}

@test "without close_range: inherited descriptors are still closed, one by one" {
	run --separate-stderr clean "$PROBE" "$T/img" "$T/work"
	[ "$status" -eq 0 ]
	restored_fds CRAC_PRETEND_MISSING=close_range
	[ "$fds" = "0 1 2 " ]
}

@test "without kcmp: a duplicated descriptor comes back as a separate open of the same file" {
	printf 'abcdefgh' >"$T/data"
	cat >"$T/dup.py" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
dup = os.dup(fd)
os.read(fd, 2)
print("ready", os.getpid(), flush=True)
sys.stdin.readline()
print("fd", os.read(fd, 2).decode(), "dup", os.read(dup, 2).decode(), flush=True)
PY
	PY3=$(python3 -c 'import sys; print(sys.executable)')
	mkfifo "$T/in"
	clean bash -c 'CRAC_PRETEND_MISSING=kcmp exec "$0" run -- "$1" "$2" "$3" <"$4"' "$CRAC" "$PY3" "$T/dup.py" "$T/data" "$T/in" >"$T/out" 2>&1 &
	exec 7>"$T/in"
	wait_line "$T/out" ready 10
	pid=$(awk '/ready/{print $2}' "$T/out")
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" "$pid"
	echo "$output"
	exec 7>&-
	[ "$status" -eq 0 ]
	run "$CRAC" inspect --json "$T/img"
	run --separate-stderr clean bash -c 'echo | exec "$0" restore "$1"' "$CRAC" "$T/img"
	echo "$status $output $stderr"
	[ "$status" -eq 0 ]
	# separate opens: each at the offset it had (2), no longer shared
	[ "$output" = "fd cd dup cd" ]
}

@test "without PR_SET_MM_MAP: the restore is refused before the point of no return, naming it; inspect agrees" {
	run --separate-stderr clean "$PROBE" "$T/img" "$T/work"
	[ "$status" -eq 0 ]
	run --separate-stderr clean env CRAC_PRETEND_MISSING=pr_set_mm_map "$CRAC" restore "$T/img" -- pid=1
	echo "$status $stderr"
	[ "$status" -eq 1 ]
	[ "$stderr" = "crac: restore $T/img: this kernel cannot set a process's memory layout (prctl PR_SET_MM_MAP: Invalid argument (errno 22)); it needs CONFIG_CHECKPOINT_RESTORE (Linux 3.18)" ]
	run env CRAC_PRETEND_MISSING=pr_set_mm_map "$CRAC" inspect "$T/img"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "^  process FAILED: this kernel cannot set a process's memory layout"
	restores
}
