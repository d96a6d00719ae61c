#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Lazy restore of incremental images: a mapping that takes pages from the
# images below (struct crac_img_ref) is filled by the lazy loader thread
# like any other, each page from whichever image of the chain holds it,
# read whole by chunk and its crc checked before any page of it is
# visible. tests/progs/image_incr checks every page of every stage after
# each restore (see image_incremental.bats). As root: userfaultfd for
# kernel faults.

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup incrlazy
	INCR="$CRAC_BUILD_DIR/tests/image_incr"
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$INCR" "$T/i0" "$T/i1" "$T/i2"
	echo "chain: $status $output $stderr"
	[ "$status" -eq 0 ]
	run --separate-stderr clean "$CRAC" restore --lazy "$T/i0"
	if [ "$status" -ne 0 ] && echo "$stderr" | grep -q -- "--lazy: lazy restore needs"; then
		skip "no userfaultfd for kernel faults here: $stderr"
	fi
}

teardown() {
	common_teardown
}

# restore_lazy STAGE DIR [env...]: restored lazily (--lazy), every page checked.
restore_lazy() {
	local stage=$1 dir=$2
	shift 2
	run --separate-stderr clean env "$@" timeout 60 "$CRAC" restore --lazy --stats "$dir"
	echo "restore $dir ($*): status $status"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok stage $stage" ]
}

@test "a chain restored lazily, with and without prefetch: the mappings with references are lazy, every page exact" {
	for s in 1 2; do
		for prefetch in on off; do
			restore_lazy $s "$T/i$s" CRAC_LAZY_PREFETCH=$prefetch
			# the loader says so: mappings with pages of images below filled by userfaultfd
			echo "$stderr" | grep -Eq "^crac: loader: .* mappings, [1-9][0-9]* by userfaultfd, [1-9][0-9]* of them with pages of images below\)"
		done
	done
	# --populate: eager, as before
	run --separate-stderr clean "$CRAC" restore --populate --stats "$T/i2"
	[ "$status" -eq 0 ]
	[ "$output" = "ok stage 2" ]
	echo "$stderr" | grep -Eq "^crac: loader: .* mappings, 0 by userfaultfd\)"
}

@test "a restored-lazily chain checkpoints incrementally again, and that image restores lazily" {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$CRAC" restore --lazy "$T/i1" -- next "$T/i3"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok stage 1" ]
	restore_lazy 2 "$T/i3"
	restore_lazy 2 "$T/i3" CRAC_LAZY_PREFETCH=off
}

@test "a damaged pages file of an image below: stopped as for a damaged chunk of the image itself" {
	# a byte of i0's page data flipped (as image_incremental.bats does for --populate)
	size=$(stat -c %s "$T/i0/pages")
	byte=$(od -An -tu1 -j $((size / 2)) -N1 "$T/i0/pages" | tr -d ' ')
	printf "\\$(printf %03o $((byte ^ 255)))" | dd of="$T/i0/pages" bs=1 seek=$((size / 2)) conv=notrunc status=none
	for prefetch in on off; do
		run --separate-stderr clean env CRAC_LAZY_PREFETCH=$prefetch timeout 60 "$CRAC" restore --lazy "$T/i2"
		echo "prefetch $prefetch: status $status"
		echo "stdout: $output"
		echo "stderr: $stderr"
		[ "$status" -eq 1 ]
		[ -z "$output" ]   # "ok stage 2" never printed: no page of the damaged chunk was used
		[ "$(echo "$stderr" | wc -l)" -eq 1 ]
		echo "$stderr" | grep -Eqx "crac: restore $T/i2: page data checksum mismatch in chunk #[0-9]+ \\([0-9]+ bytes at 0x[0-9a-f]+, (anon|heap|stack)\\): the pages file is damaged; found in $T/i2/../i1/../i0/pages while loading lazily \\(damaged before the restore, or changed since\\), before any of these pages was visible; the restored process is stopped"
	done
	# eager: refused before the program runs, as before
	run --separate-stderr clean "$CRAC" restore --populate "$T/i2"
	[ "$status" -eq 1 ]
	echo "$stderr" | grep -q "page data checksum mismatch in chunk #[0-9]* (.*$T/i2/../i1/../i0): the pages file is damaged"
}

@test "a libcrac older or newer than the loader (the resume block's hand-over version): refused before the point of no return, one line" {
	EDIT="$CRAC_BUILD_DIR/tests/image_edit"
	# 0: a libcrac from before the version; 2: one from a later release
	for abi in 0 2; do
		"$EDIT" "$T/i2" resume-abi $abi
		if [ $abi -eq 0 ]; then
			want="older than this restore loader (their hand-over: unnumbered in the image, version 1 here)"
		else
			want="newer than this restore loader (their hand-over: version $abi in the image, version 1 here)"
		fi
		for how in --lazy --populate ""; do
			run --separate-stderr clean timeout 60 "$CRAC" restore $how "$T/i2"
			echo "abi $abi $how: status $status"
			echo "stdout: $output"
			echo "stderr: $stderr"
			[ "$status" -eq 1 ]
			[ -z "$output" ]   # the program never ran
			[ "$(echo "$stderr" | wc -l)" -eq 1 ]
			[ "$stderr" = "crac: restore $T/i2: the program's libcrac is $want: restore with the crac release of the program's libcrac, or checkpoint the program again with a libcrac of this release" ]
		done
		run "$CRAC" inspect "$T/i2"
		[ "$status" -eq 1 ]
		echo "$output" | grep -qF "  pages   FAILED: the program's libcrac is $want"
		echo "$output" | grep -qx "result:    this machine cannot restore the image"
	done
	# the same image, its version as this libcrac wrote it: restores lazily
	"$EDIT" "$T/i2" resume-abi 1
	restore_lazy 2 "$T/i2"
}
