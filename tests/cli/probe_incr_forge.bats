#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Probe (s23): headers of a chain forged with their checksum kept valid
# (tests/progs/probe_forge.c, tests/progs/incr_edit.c), so that what refuses
# is the parser's and the chain checks' own rules: each refusal is one line
# naming the image and the field at fault, and restore, inspect and flatten
# agree; random bytes of the page reference table, the parent image record
# and the chunk table, of the image and of its parent, never crash crac
# restore, crac inspect or the loader.

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup probeforge
	INCR="$CRAC_BUILD_DIR/tests/image_incr"
	EDIT="$CRAC_BUILD_DIR/tests/incr_edit"
	FORGE="$CRAC_BUILD_DIR/tests/probe_forge"
}

teardown() {
	common_teardown
}

# chain: $T/c/i0 (full), i1 and i2 (incremental), kept in $T/orig
chain() {
	mkdir -m 755 "$T/c"
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$INCR" "$T/c/i0" "$T/c/i1" "$T/c/i2"
	echo "chain: status $status, stdout: $output, stderr: $stderr"
	[ "$status" -eq 0 ]
	cp -a "$T/c" "$T/orig"
}

# fresh: the chain as image_incr wrote it
fresh() {
	rm -rf "$T/c"
	cp -a "$T/orig" "$T/c"
}

# refused PATTERN: `crac restore $T/c/i2` refuses with status 1 and exactly
# one line "crac: restore $T/c/i2: REASON", REASON matching the glob
# PATTERN; inspect and flatten refuse with it too (flatten writes nothing).
refused() {
	local pat=$1
	refused_restore "$T/c/i2"
	echo "want: $pat"
	[[ "$REASON" == $pat ]]
	run clean timeout 20 "$CRAC" inspect "$T/c/i2"
	echo "inspect: status $status: $output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"$REASON"* ]]
	run clean timeout 20 "$CRAC" flatten "$T/c/i2" "$T/flat"
	echo "flatten: status $status: $output"
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | wc -l)" -eq 1 ]
	[[ "$output" == "crac: flatten $T/c/i2: "*"$REASON" ]]
	[ ! -e "$T/flat" ]
}

# ref_field I FIELD: field addr|len|depth|chunk|map of reference #I of i2
ref_field() {
	"$EDIT" "$T/c/i2" show | awk -v i="$1" -v f="$2" '
		BEGIN { split("addr len depth chunk map", n, " "); for (k in n) col[n[k]] = k }
		NR == i + 2 { print $col[f] }'
}

@test "probe: a forged parent image record is refused in one line naming the field and its value" {
	chain
	"$FORGE" "$T/c/i2" set depth 9
	refused "header: bad parent image record: depth 9 (at most 8 images below)"
	fresh
	"$FORGE" "$T/c/i2" set parent 0
	refused "header: bad parent image record: depth 2, no parent image named"
	fresh
	"$FORGE" "$T/c/i2" set depth 0
	refused "header: bad parent image record: a parent image named, depth 0 (a full image)"
	fresh
	"$FORGE" "$T/c/i2" set parent 0x7fffffff
	refused "header: bad parent image record: parent name at string table offset 2147483647, past its end ([1-9]* bytes)"
	fresh
	"$FORGE" "$T/c/i2" set img_flags 0x81
	refused "header: bad parent image record: unknown image flags 0x80"
	# the parent's own record: named as the parent's
	fresh
	"$FORGE" "$T/c/i1" set depth 9
	"$EDIT" "$T/c/i2" adopt "$T/c/i1"
	refused "parent image $T/c/i2/../i1 of $T/c/i2: header: bad parent image record: depth 9 (at most 8 images below)"
}

@test "probe: a forged page reference is refused in one line naming the field and its value" {
	chain
	local addr len map addr1
	addr=$(ref_field 0 addr) len=$(ref_field 0 len) map=$(ref_field 0 map) addr1=$(ref_field 1 addr)
	echo "reference #0: $addr $len map $map; #1 at $addr1"
	"$EDIT" "$T/c/i2" ref 0 addr $((addr + 8))
	refused "header: bad page reference #0: address $(printf '%#x' $((addr + 8))) is not page aligned"
	fresh
	"$EDIT" "$T/c/i2" ref 0 len 0
	refused "header: bad page reference #0: length 0x0 is not a whole number of pages"
	fresh
	"$EDIT" "$T/c/i2" ref 1 addr "$addr"
	refused "header: bad page reference #1: address $addr lies before the end of the one before it ($(printf '%#x' $((addr + len)))): not sorted, or overlapping"
	fresh
	"$EDIT" "$T/c/i2" ref 0 depth 3
	refused "header: bad page reference #0: depth 3 (the image has 2 images below)"
	fresh
	"$EDIT" "$T/c/i2" ref 0 map 100000
	refused "header: bad page reference #0: mapping #100000 (the image has [1-9]*)"
	fresh
	"$EDIT" "$T/c/i2" ref 0 map 0
	refused "header: bad page reference #0: mapping #0 0x*-0x* (file) is not a private anonymous mapping marked as taking pages from the images below"
	fresh
	"$EDIT" "$T/c/i2" ref 0 len 0x100000000
	refused "header: bad page reference #0: 0x100000000 bytes at $addr are not inside its mapping #$map 0x*-0x*"
}

# forged REGION IMG SEED0 RUNS BYTES: RUNS forgeries of BYTES random bytes
# in REGION of IMG (i2, or i1 with i2 adopting it); each: restore (by
# default and with --populate) either refuses in one line or restores
# stage 2 exactly; inspect answers 0 or 1, never crashes.
forged() {
	local region=$1 img=$2 seed0=$3 runs=$4 bytes=$5 seed opt changed moved
	for seed in $(seq "$seed0" $((seed0 + runs - 1))); do
		fresh
		changed=$("$FORGE" "$T/c/$img" "$seed" "$bytes" "$region")
		# Only chunk addresses changed: a chunk whose new address is still
		# page-aligned, inside its mapping and over no other page passes
		# every rule (the image's owner moved their own page data: in a
		# file mapping the page it left comes from the file again, the
		# page it moved to is replaced). Nothing in an image can tell
		# that from a real one; the restored program then runs on that
		# memory, which may crash it. Accepted only as such: the program's
		# own end (a signal, not crac's one line), never crac's failure.
		moved=$(echo "$changed" | awk '$5 != "addr" { bad = 1 } END { print bad ? 0 : NR > 0 }')
		[ "$img" != i1 ] || "$EDIT" "$T/c/i2" adopt "$T/c/i1"
		for opt in "" --populate; do
			run --separate-stderr clean timeout 30 "$CRAC" restore $opt "$T/c/i2"
			if [ "$status" -ne 0 ] || [ "$output" != "ok stage 2" ]; then
				echo "$region $img seed $seed $opt: status $status, stdout: $output, stderr: $stderr (changed: $changed)"
				if [ "$moved" = 1 ] && [ "$status" -ne 1 ] && ! echo "$stderr" | grep -q '^crac:'; then
					echo "  a chunk moved by its address alone: the restored program's own outcome"
					continue
				fi
				[ "$status" -eq 1 ]
				[ -z "$output" ]
				[ "$(echo "$stderr" | wc -l)" -eq 1 ]
				[[ "$stderr" == "crac: restore $T/c/i2: "* ]]
			fi
		done
		run clean timeout 30 "$CRAC" inspect "$T/c/i2"
		[ "$status" -le 1 ] || { echo "inspect, $region $img seed $seed: status $status: $output"; false; }
	done
}

@test "probe: random bytes of the references, the parent record and the chunk table, with a valid checksum: one line or an exact restore" {
	chain
	forged refs i2 1 12 1
	forged refs i2 101 6 3
	forged parent i2 201 10 1
	forged chunks i2 301 8 1
	forged refs i1 401 8 1
	forged parent i1 501 6 1
	forged chunks i1 601 6 2
}

@test "probe: bytes flipped or files cut short anywhere in the chain (40 cases): one line naming the image, or an exact restore" {
	chain
	local k img file size pos old opt
	RANDOM=2323   # the same cases every run
	for k in $(seq 40); do
		fresh
		img=i$((RANDOM % 3))
		file=$([ $((RANDOM % 2)) -eq 0 ] && echo header || echo pages)
		size=$(stat -c %s "$T/c/$img/$file")
		pos=$(((RANDOM * 32768 + RANDOM) % size))
		opt=$([ $((k % 2)) -eq 0 ] && echo --populate || true)
		if [ $((k % 4)) -eq 3 ]; then
			truncate -s "$pos" "$T/c/$img/$file"
			echo "case $k: $img/$file cut to $pos of $size bytes $opt"
		else
			old=$(od -An -tu1 -j"$pos" -N1 "$T/c/$img/$file" | tr -d ' ')
			printf "\\x$(printf %02x $((old ^ (1 << (RANDOM % 8)))))" |
				dd of="$T/c/$img/$file" bs=1 seek="$pos" conv=notrunc status=none
			echo "case $k: $img/$file byte $pos of $size flipped $opt"
		fi
		run --separate-stderr clean timeout 30 "$CRAC" restore $opt "$T/c/i2"
		echo "  status $status, stdout: $output, stderr: $stderr"
		if [ "$status" -eq 0 ]; then
			# a byte the restore never reads (a chunk of i1 or i0 that
			# the images above replaced)
			[ "$output" = "ok stage 2" ]
			[ "$file" = pages ] && [ "$img" != i2 ]
		else
			[ "$status" -eq 1 ]
			[ -z "$output" ]
			[ "$(echo "$stderr" | wc -l)" -eq 1 ]
			[[ "$stderr" == "crac: restore $T/c/i2: "* ]]
			# the image at fault named (i2's own faults by the prefix)
			[ "$img" = i2 ] || [[ "$stderr" == *"$T/c/i2/../i1"* ]]
			[ "$img" != i0 ] || [[ "$stderr" == *"$T/c/i2/../i1/../i0"* ]]
			run clean timeout 30 "$CRAC" inspect "$T/c/i2"
			[ "$status" -eq 1 ]
		fi
	done
}
