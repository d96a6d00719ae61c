#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# How the checkpoint cuts a mapping's pages into chunks, the unit a restore
# reads and verifies at once (image/image.h, CRAC_IMG_CHUNK_SMALL): at most
# 128 KiB in a mapping under 64 MiB (a lazy restore's first fault in a
# chunk waits for all of it), at most 1 MiB in a larger mapping and in a
# compressed image; `crac inspect --json` gives each mapping's count. Every
# image restores with its pages intact, lazily and eagerly.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	LAZY="$CRAC_BUILD_DIR/tests/image_lazy"
	EDIT="$CRAC_BUILD_DIR/tests/image_edit"
	T="$(mktemp -d /tmp/crac-bats-chunks.XXXXXX)"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOADER CRAC_LAZY_PREFETCH \
		CRAC_IMAGE_COMPRESS CRAC_IMAGE_INCREMENTAL
	require_image_engine
}

teardown() {
	rm -rf "$T"
}

# image MiB [env...]: image_lazy's MiB mapping (a different pattern on every
# page) checkpointed into $T/img; BIG its address; LEN its length
image() {
	local mib=$1
	shift
	rm -rf "$T/img"
	big_mapping env "$@" "$LAZY" "$T/img" "$mib"
}

# chunk_len ADDR: the length of the chunk holding ADDR
chunk_len() {
	"$EDIT" "$T/img" chunk-at "$1" | awk '{ print $3 }'
}

# json_chunks: "CHUNKS STORED" of the mapping holding $BIG, from inspect --json
json_chunks() {
	"$CRAC" inspect --json "$T/img" | python3 -c '
import json, sys
big = int(sys.argv[1], 16)
for m in json.load(sys.stdin)["mappings"]:
    if m["start"] <= big < m["end"]:
        print(m["chunks"], m["stored"])' "$BIG"
}

# restores_ok: the pages read back, lazily (where possible) and eagerly
restores_ok() {
	for how in "" --populate; do
		run clean timeout 60 "$CRAC" restore $how "$T/img" -- read
		echo "restore $how: $status $output"
		[ "$status" -eq 0 ]
		[ "$output" = "ok read" ]
	done
}

@test "a mapping under 64 MiB: chunks of 128 KiB, counted by inspect --json" {
	image 8
	[ "$LEN" -eq $((8 << 20)) ]
	[ "$(chunk_len "$BIG")" -eq $((128 << 10)) ]
	[ "$(chunk_len $((BIG + LEN - 4096)))" -le $((128 << 10)) ]
	read -r n stored < <(json_chunks)
	echo "chunks $n stored $stored"
	# the mapping holds at least the 8 MiB of the pattern, none of it zero
	[ "$stored" -ge $((8 << 20)) ]
	[ "$n" -ge $((stored / (128 << 10))) ]
	restores_ok
}

@test "a mapping of 64 MiB or more: chunks of 1 MiB" {
	image 80
	[ "$(chunk_len "$BIG")" -eq $((1 << 20)) ]
	[ "$(chunk_len $((BIG + LEN / 2)))" -eq $((1 << 20)) ]
	read -r n stored < <(json_chunks)
	echo "chunks $n stored $stored"
	[ "$n" -ge $((stored >> 20)) ]
	[ "$n" -lt $(((stored >> 20) + 8)) ]
	restores_ok
}

@test "a compressed image: chunks of 1 MiB in any mapping" {
	image 8 CRAC_IMAGE_COMPRESS=1
	"$CRAC" inspect "$T/img" | grep -q "^compress:  zstd"
	[ "$(chunk_len "$BIG")" -eq $((1 << 20)) ]
	restores_ok
}

@test "incremental chains mixing chunks of 128 KiB and 1 MiB (compressed or not at each step, a mapping grown across 64 MiB by mremap): every image restores lazily and eagerly, and flattens" {
	for z in 100 010 001 011; do
		rm -rf "$T/c0" "$T/c1" "$T/c2" "$T/flat"
		run clean env CRAC_IMAGE_INCREMENTAL=1 "$CRAC_BUILD_DIR/tests/incr_chunks" "$T/c0" "$T/c1" "$T/c2" "$z"
		echo "$z: $output"
		[ "$status" -eq 0 ]
		[ "$output" = continued ]
		# the uncompressed images' chunks of the 60 MiB mapping: 128 KiB
		if [ "${z:0:1}" = 0 ]; then
			n="$("$CRAC" inspect --json "$T/c0" | python3 -c '
import json, sys
print(max(m["chunks"] for m in json.load(sys.stdin)["mappings"] if m["end"] - m["start"] == 60 << 20))')"
			[ "$n" -ge 480 ]
		fi
		"$CRAC" flatten "$T/c2" "$T/flat"
		for d in c0 c1 c2 flat; do
			want=${d#c}
			[ "$d" = flat ] && want=2
			for how in "" --populate; do
				run clean timeout 60 "$CRAC" restore $how "$T/$d"
				echo "$z $d $how: $status $output"
				[ "$status" -eq 0 ]
				[ "$output" = "ok $want" ]
			done
		done
	done
}
