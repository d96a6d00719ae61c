#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The restore loader's ways of doing less before the program runs
# (src/loader/loader.c, issue 12): eager memory filled by two threads (a
# damaged chunk in either half is refused before the jump, naming it, the
# same as with one thread), dense anonymous mappings filled with huge pages
# where THP is "madvise", small anonymous mappings left to userfaultfd
# where it handles kernel faults, and the --stats line that says so.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	LAZY="$CRAC_BUILD_DIR/tests/image_lazy"
	EDIT="$CRAC_BUILD_DIR/tests/image_edit"
	T="$(mktemp -d /tmp/crac-bats-rperf.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOADER CRAC_LAZY_PREFETCH \
		CRAC_LAZY_SMALL CRAC_LOADER_THREADS CRAC_LOADER_HUGE CRAC_VERIFY_FILES
	# the plan of the image alone: no mapping made eager by a working set
	# that shows the program going through it (lazy_working_set.bats)
	export CRAC_WORKING_SET=lazy
	require_image_engine
}

teardown() {
	rm -rf "$T"
}

# checkpoint [MiB]: image_lazy into $T/img; BIG and LEN: its big mapping.
checkpoint() {
	big_mapping "$LAZY" "$T/img" "$@"
}

# two_cpus: skips unless this process may run on two CPUs (the second filler).
two_cpus() {
	[ "$(nproc)" -ge 2 ] || skip "one CPU here: the loader fills with one thread"
}

@test "eager fill: two threads, and the same program state as with one" {
	checkpoint
	two_cpus
	run --separate-stderr clean "$CRAC" restore --populate --stats "$T/img" -- read
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	echo "$stderr" | grep -Eq "^crac: loader: .*, fill [0-9.]+ ms \(3[0-9]\.[0-9]+ MiB, 2 threads, "
	run --separate-stderr clean env CRAC_LOADER_THREADS=1 "$CRAC" restore --populate --stats "$T/img" -- read
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	echo "$stderr" | grep -Eq "^crac: loader: .*, fill [0-9.]+ ms \(3[0-9]\.[0-9]+ MiB, 1 thread, "
}

@test "eager fill: a damaged chunk in the second thread's half is refused before the jump, naming it" {
	checkpoint
	two_cpus
	# the last chunk of the big mapping: the second half, filled by the second thread
	read -r idx off len < <("$EDIT" "$T/img" chunk-at $((BIG + LEN - 4096)))
	[ -n "$len" ]
	flip_byte "$T/img/pages" $((off + len / 2))
	for threads in 2 1; do
		run --separate-stderr clean env CRAC_LOADER_THREADS=$threads "$CRAC" restore --populate "$T/img" -- read
		echo "threads=$threads status $status: $output / $stderr"
		[ "$status" -eq 1 ]
		[ -z "$output" ]
		echo "$stderr" | grep -Eqx "crac: restore $T/img: page data checksum mismatch in chunk #$idx \\($len bytes at 0x[0-9a-f]+, anon\\): the pages file is damaged"
	done
}

@test "eager fill: a dense anonymous mapping gets huge pages while it is filled where THP is madvise (none with CRAC_LOADER_HUGE=off)" {
	thp=/sys/kernel/mm/transparent_hugepage/enabled
	[ -r "$thp" ] && grep -q '\[madvise\]' "$thp" || skip "THP mode is not madvise here ($(cat "$thp" 2>/dev/null))"
	checkpoint
	run --separate-stderr clean "$CRAC" restore --populate --stats "$T/img" -- read
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	echo "$stderr" | grep -Eq "^crac: loader: .* [1-9][0-9]* mappings with huge pages;"
	run --separate-stderr clean env CRAC_LOADER_HUGE=off "$CRAC" restore --populate --stats "$T/img" -- read
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	echo "$stderr" | grep -Eq "^crac: loader: .* 0 mappings with huge pages;"
}

@test "lazy: small anonymous mappings with stored pages are left to userfaultfd too (not with CRAC_LAZY_SMALL=off)" {
	checkpoint
	run clean "$CRAC" restore --lazy "$T/img" -- read
	if [ "$status" -ne 0 ] && echo "$output" | grep -q -- "--lazy: lazy restore needs"; then
		skip "no userfaultfd for kernel faults here: $output"
	fi
	run --separate-stderr clean "$CRAC" restore --stats "$T/img" -- read
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	all=$(echo "$stderr" | sed -n 's/^crac: loader: .* mappings, \([0-9]*\) by userfaultfd).*/\1/p')
	run --separate-stderr clean env CRAC_LAZY_SMALL=off "$CRAC" restore --stats "$T/img" -- read
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	big=$(echo "$stderr" | sed -n 's/^crac: loader: .* mappings, \([0-9]*\) by userfaultfd).*/\1/p')
	echo "with small: $all, without: $big"
	[ "$big" -ge 1 ]
	[ "$all" -gt "$big" ]
}

@test "the loader reads /proc/self/maps once (the vDSO check takes its place from the loader's own list)" {
	command -v strace >/dev/null || skip "no strace here"
	checkpoint
	run --separate-stderr clean strace -f -e trace=openat -o "$T/trace" "$CRAC" restore "$T/img" -- read
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	grep '/proc/self/maps' "$T/trace" || true
	[ "$(grep -c '"/proc/self/maps"' "$T/trace")" -eq 1 ]
}

@test "--stats counts the page faults the fill takes (4 KiB pages: one a page filled) and those since the fork" {
	checkpoint
	run --separate-stderr clean env CRAC_LOADER_HUGE=off "$CRAC" restore --populate --stats "$T/img" -- read
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	line=$(echo "$stderr" | grep -E "^crac: loader: .*, fill [0-9.]+ ms \([0-9.]+ MiB, .*; [0-9]+ page faults filling, [0-9]+ since the fork\), start ")
	mib=$(echo "$line" | sed -n 's/.*, fill [0-9.]* ms (\([0-9.]*\) MiB.*/\1/p')
	fill=$(echo "$line" | sed -n 's/.*; \([0-9]*\) page faults filling.*/\1/p')
	all=$(echo "$line" | sed -n 's/.* page faults filling, \([0-9]*\) since the fork.*/\1/p')
	pages=$(awk -v m="$mib" 'BEGIN { printf "%d", m * 256 }')
	echo "filled $pages pages, $fill faults filling, $all since the fork"
	# every 4 KiB page filled is faulted in once (MADV_POPULATE_WRITE or a
	# write through /proc/self/mem); a few more: the loader's own buffers
	[ "$fill" -ge "$pages" ]
	[ "$fill" -le $((pages + pages / 10 + 64)) ]
	[ "$all" -gt "$fill" ]
}
