#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Compressed images (`crac checkpoint --compress[=LEVEL]`, CRAC_IMAGE_COMPRESS,
# the CRAC_COMPRESS flag): each chunk of the pages file is one zstd frame
# when that saves a page, so restore decompresses only the chunks it reads,
# lazily too. tests/progs/image_zstd.c holds text-like pages (compress),
# pseudo-random ones (stored as they are) and untouched ones, and checks
# every page after each restore: lazy (as root), eager (--populate), as
# nobody, from an incremental chain, flattened. A damaged frame, a stored
# length that lies, a truncated pages file: refused with one line, or for
# lazy loading the process stopped before a damaged page is visible (as for
# a checksum mismatch).

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup zstd CRAC_IMAGE_COMPRESS CRAC_IMAGE_INCREMENTAL
	PROG="$CRAC_BUILD_DIR/tests/image_zstd"
	EDIT="$CRAC_BUILD_DIR/tests/image_edit"
	require_zstd
}

teardown() {
	[ -z "${pid:-}" ] || kill "$pid" 2>/dev/null || true
	rm -rf "$T"
}

# make [ENV...]: image_zstd writes $T/i0 (stage 0) and $T/i1 (stage 1).
make_images() {
	run --separate-stderr clean env "$@" "$PROG" "$T/i0" "$T/i1"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "continued after stage 0" ]
}

# compressed DIR: inspect says the image has compressed chunks, smaller.
compressed() {
	run "$CRAC" inspect "$1"
	echo "$output"
	[ "$status" -eq 0 ]
	# (compressed chunks came with version 5; images are of this build's version)
	echo "$output" | grep -q "^format: *version $(sed -n 's/^#define CRAC_IMG_VERSION \([0-9]*\).*/\1/p' "$CRAC_SOURCE_DIR/src/image/image.h"),"
	echo "$output" | grep -Eq "^compress: *zstd, [1-9][0-9]* of [0-9]+ chunks: [0-9.]+ MiB of memory in [0-9.]+ MiB \([0-9.]+x\)$"
	echo "$output" | grep -q "pages *ok"
	echo "$output" | grep -qx "result:    restorable here"
}

# lazy_possible: this user gets a userfaultfd for kernel faults
lazy_possible() {
	run clean "$CRAC" restore --lazy --stats "$T/i0"
	! echo "$output" | grep -q -- "--lazy: lazy restore needs"
}

@test "CRAC_IMAGE_COMPRESS: lazy, eager and unprivileged restores give back every page" {
	make_images CRAC_IMAGE_COMPRESS=1 CRAC_IMAGE_STATS=1
	echo "$stderr" | grep -q "zstd level 1 (CRAC_IMAGE_COMPRESS): [1-9][0-9]* chunks"
	compressed "$T/i0"
	compressed "$T/i1"
	# half the memory is text that compresses, a quarter random that does not
	[ "$(stat -c %s "$T/i1/pages")" -lt $((4 << 20)) ]
	AS=()
	for s in 0 1; do
		restore_ok $s "$T/i$s"
		restore_ok $s "$T/i$s" --populate
	done
	if lazy_possible; then
		restore_ok 1 "$T/i1" --lazy --stats
		echo "$stderr" | grep -q "lazy: large anonymous mappings load in the background"
		CRAC_LAZY_PREFETCH=off restore_ok 1 "$T/i1" --lazy
	fi
	chmod -R a+rX "$T"
	AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
	restore_ok 1 "$T/i1" --trust-owner
}

@test "the CRAC_COMPRESS flag; crac checkpoint --compress=LEVEL; bad levels" {
	run --separate-stderr clean env CRAC_IMAGE_STATS=1 "$PROG" "$T/i0" "$T/i1" 8 api
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	echo "$stderr" | grep -q "zstd level 1 (CRAC_COMPRESS)"
	compressed "$T/i1"
	AS=()
	restore_ok 1 "$T/i1" --populate

	spawn "$T/out" "$T/err" env CRAC_IMAGE_STATS=1 CRAC_ENGINE=image "$CRAC_BUILD_DIR/tests/ckpt_heap" 8 2
	pid=$SPAWNED
	wait_line "$T/out" ready 10
	run "$CRAC" checkpoint --compress=3 --image-dir "$T/c" "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q "zstd level 3 (--compress)" "$T/err"
	run "$CRAC" inspect "$T/c"
	echo "$output"
	echo "$output" | grep -q "pages *ok"

	for bad in 0 20 x ""; do
		run "$CRAC" checkpoint --compress="$bad" "$pid"
		[ "$status" -eq 2 ]
		[ "$output" = "crac: --compress wants a zstd level from 1 to 19, got \"$bad\"" ]
	done
	run --separate-stderr clean env CRAC_IMAGE_COMPRESS=99 "$PROG" "$T/b0" "$T/b1"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "CRAC_IMAGE_COMPRESS=99: not a zstd level (1-19, or yes)"
	[ ! -e "$T/b0" ]
}

@test "an incremental chain of compressed images restores, and flattens" {
	make_images CRAC_IMAGE_COMPRESS=1 CRAC_IMAGE_INCREMENTAL=1 CRAC_IMAGE_STATS=1
	echo "$stderr" | grep -q "MiB referenced from 1 image below"
	run "$CRAC" inspect "$T/i1"
	echo "$output"
	echo "$output" | grep -q "^parent: *../i0"
	AS=()
	restore_ok 1 "$T/i1"
	restore_ok 1 "$T/i1" --populate
	if lazy_possible; then
		# lazily, the pages taken from the compressed parent included
		restore_ok 1 "$T/i1" --lazy --stats
		echo "$stderr" | grep -Eq "by userfaultfd, [1-9][0-9]* of them with pages of images below"
	fi
	cp -a "$T/i0" "$T/i0.orig"
	# the parent's pages file overwritten (same size): refused, or the
	# process stopped by the lazy thread, naming the parent image
	dd if=/dev/urandom of="$T/i0/pages" bs=4096 count=$(( $(stat -c %s "$T/i0/pages") / 4096 )) \
		conv=notrunc status=none
	run --separate-stderr clean "$CRAC" restore "$T/i1"
	echo "$status / $output / $stderr"
	[ "$status" -ne 0 ]
	[ "$output" != "ok stage 1" ]
	[[ "$stderr" == *"/../i0"* ]]
	rm -rf "$T/i0"
	mv "$T/i0.orig" "$T/i0"
	run clean "$CRAC" flatten "$T/i1" "$T/f"
	echo "$output"
	[ "$status" -eq 0 ]
	rm -rf "$T/i0"   # the flat image needs no parent
	restore_ok 1 "$T/f"
	restore_ok 1 "$T/f" --populate
}

@test "crac flatten --compress[=LEVEL]: an uncompressed chain flattened into a compressed image, and back" {
	make_images CRAC_IMAGE_INCREMENTAL=1
	run "$CRAC" inspect "$T/i1"
	! echo "$output" | grep -q "^compress:"
	for bad in 0 20 x ""; do
		run "$CRAC" flatten "$T/i1" "$T/f" --compress="$bad"
		[ "$status" -eq 2 ]
		[ "$output" = "crac: --compress wants a zstd level from 1 to 19, got \"$bad\"" ]
	done
	[ ! -e "$T/f" ]
	run clean "$CRAC" flatten "$T/i1" "$T/f" --compress
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -Eq "^$T/f: zstd level 1: [1-9][0-9]* of [0-9]+ chunks compressed"
	compressed "$T/f"
	run clean "$CRAC" flatten "$T/i1" "$T/f9" --compress=9
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^$T/f9: zstd level 9: "
	compressed "$T/f9"
	# smaller than the same image flattened as it was
	run clean "$CRAC" flatten "$T/i1" "$T/u"
	[ "$status" -eq 0 ]
	[ "$(stat -c %s "$T/f/pages")" -lt "$(stat -c %s "$T/u/pages")" ]
	rm -rf "$T/i0"   # no chain needed
	AS=()
	restore_ok 1 "$T/f"
	restore_ok 1 "$T/f" --populate
	restore_ok 1 "$T/f9" --populate
	if lazy_possible; then
		restore_ok 1 "$T/f" --lazy --stats
	fi
	chmod -R a+rX "$T"
	AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
	restore_ok 1 "$T/f" --trust-owner
	# a compressed image flattened without --compress: uncompressed
	run clean "$CRAC" flatten "$T/f" "$T/f"
	[ "$status" -eq 0 ]
	run "$CRAC" inspect "$T/f"
	! echo "$output" | grep -q "^compress:"
	AS=()
	restore_ok 1 "$T/f" --populate
}

@test "an image of format version 4 (before compression) still restores" {
	make_images
	run "$CRAC" inspect "$T/i1"
	! echo "$output" | grep -q "^compress:"
	"$EDIT" "$T/i1" version 4
	run "$CRAC" inspect "$T/i1"
	echo "$output" | grep -q "^format: *version 4,"
	AS=()
	restore_ok 1 "$T/i1"
	restore_ok 1 "$T/i1" --populate
}

# refused_like DIR REGEX [restore options]: one line, "crac: restore DIR: "
# and a reason matching REGEX, nothing run (refused_restore, common.bash)
refused_like() {
	local dir=$1 re=$2
	shift 2
	refused_restore "$dir" "$@"
	[[ "$REASON" =~ ^$re$ ]]
}

@test "a damaged frame: refused before the program runs (eager), the process stopped before any page of it is visible (lazy)" {
	make_images CRAC_IMAGE_COMPRESS=1
	read -r idx off zlen len < <("$EDIT" "$T/i1" zchunk)
	[ -n "$len" ]
	[ "$zlen" -lt "$len" ]
	at=$((off + zlen / 2))
	byte=$(od -An -tu1 -j $at -N1 "$T/i1/pages" | tr -d ' ')
	printf "\\$(printf %03o $((byte ^ 255)))" | dd of="$T/i1/pages" bs=1 seek=$at conv=notrunc status=none
	refused_like "$T/i1" "(page data checksum mismatch in chunk #$idx \\($len bytes at 0x[0-9a-f]+, anon\\): the pages file is damaged|chunk #$idx \\($len bytes at 0x[0-9a-f]+, anon\\): the compressed chunk is not a zstd frame of its size \\(damaged\\))" --populate
	run "$CRAC" inspect "$T/i1"
	[ "$status" -eq 1 ]
	echo "$output" | grep -Eq "(checksum mismatch in page chunk #$idx |page chunk #$idx .*not a zstd frame)"
	if lazy_possible; then
		for prefetch in off on; do
			run --separate-stderr clean env CRAC_LAZY_PREFETCH=$prefetch "$CRAC" restore "$T/i1"
			echo "prefetch $prefetch: status $status"
			echo "stdout: $output"
			echo "stderr: $stderr"
			[ "$status" -eq 1 ]
			[ -z "$output" ]   # "ok stage 1" never printed: the damaged chunk was never visible
			echo "$stderr" | grep -Eqx "crac: restore $T/i1: (page data checksum mismatch in chunk #$idx \\($len bytes at 0x[0-9a-f]+, anon\\): the pages file is damaged|chunk #$idx \\($len bytes at 0x[0-9a-f]+, anon\\): the compressed chunk is not a zstd frame of its size \\(damaged\\)); found in $T/i1/pages while loading lazily \\(damaged before the restore, or changed since\\), before any of these pages was visible; the restored process is stopped"
		done
	fi
}

@test "a stored length that lies, a truncated pages file: refused with one line" {
	make_images CRAC_IMAGE_COMPRESS=1
	cp -a "$T/i1" "$T/keep"
	read -r idx off zlen len < <("$EDIT" "$T/i1" zchunk)
	[ -n "$len" ]
	# the frame said one byte short: it does not decompress to its size
	"$EDIT" "$T/i1" zlen-short
	refused_like "$T/i1" "chunk #$idx \\($len bytes at 0x[0-9a-f]+, anon\\): the compressed chunk is not a zstd frame of its size \\(damaged\\)" --populate
	# a stored length past the end of the pages file: the header is refused
	rm -rf "$T/i1" && cp -a "$T/keep" "$T/i1"
	"$EDIT" "$T/i1" zlen-huge
	refused_like "$T/i1" "header: bad page chunk #$idx \\($len bytes at 0x[0-9a-f]+, pages file offset $off\\) of mapping #[0-9]+ 0x[0-9a-f]+-0x[0-9a-f]+( [^:]+)?: past the end of the pages file"
	run "$CRAC" inspect "$T/i1"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "header: bad page chunk #$idx ($len bytes at 0x[0-9a-f]*, pages file offset $off) of mapping #"
	# the pages file cut inside a frame
	rm -rf "$T/i1" && cp -a "$T/keep" "$T/i1"
	truncate -s $((off + zlen / 2)) "$T/i1/pages"
	refused_like "$T/i1" "$T/i1/pages is truncated or damaged \\([0-9]+ bytes, the header says [0-9]+\\)"
	# untouched, it restores
	AS=()
	restore_ok 1 "$T/keep" --populate
}

@test "CRAC_IMAGE_COMPRESS_THREADS=2: chunks compressed in two halves at once restore exactly" {
	[ "$(nproc)" -ge 2 ] || skip "one CPU: no second compressor"
	make_images CRAC_IMAGE_COMPRESS=1 CRAC_IMAGE_COMPRESS_THREADS=2 CRAC_IMAGE_STATS=1
	echo "$stderr" | grep -Eq "chunks \([1-9][0-9]* in two halves at once\)"
	compressed "$T/i1"
	AS=()
	restore_ok 0 "$T/i0"
	restore_ok 1 "$T/i1" --populate
	restore_ok 1 "$T/i1"
	# (image_zstd fails if the compressor is left as a child, even a zombie)
}

# put_frame DIR FILE: FILE (a zstd frame of our own) in place of DIR's
# largest compressed chunk, its stored length FILE's size
put_frame() {
	dd if="$2" of="$1/pages" bs=1 seek="$off" conv=notrunc status=none
	"$EDIT" "$1" zlen-set "$(stat -c %s "$2")"
}

@test "frames of our own in a chunk's place: a bomb and a frame larger than the chunk refused, other valid encodings of its bytes restore" {
	command -v zstd >/dev/null || skip "no zstd command to make frames with"
	make_images CRAC_IMAGE_COMPRESS=1
	cp -a "$T/i1" "$T/keep"
	read -r idx off zlen len < <("$EDIT" "$T/i1" zchunk)
	[ -n "$len" ]
	dd if="$T/keep/pages" of="$T/orig.zst" bs=1 skip="$off" count="$zlen" status=none
	zstd -q -d -c "$T/orig.zst" >"$T/orig"
	[ "$(stat -c %s "$T/orig")" -eq "$len" ]
	# 64 MiB of zeros in 2 KiB; the chunk's bytes twice: the reader never
	# decompresses past the chunk (its buffer is the chunk), refused
	head -c 64M /dev/zero | zstd -q -19 -c >"$T/bomb.zst"
	cat "$T/orig" "$T/orig" | zstd -q -c >"$T/twice.zst"
	# the chunk's own frame behind a skippable frame, under a legacy
	# (v0.7) magic, followed by bytes that are no frame: never decoded
	# (a legacy frame would make libzstd allocate)
	{ printf '\x50\x2a\x4d\x18\x04\x00\x00\x00abcd'; cat "$T/orig.zst"; } >"$T/skippable.zst"
	{ printf '\x27\xb5\x2f\xfd'; tail -c +5 "$T/orig.zst"; } >"$T/legacy.zst"
	{ cat "$T/orig.zst"; printf '\0\0\0\0\0\0\0'; } >"$T/trailing.zst"
	for z in bomb twice skippable legacy trailing; do
		rm -rf "$T/i1" && cp -a "$T/keep" "$T/i1"
		put_frame "$T/i1" "$T/$z.zst"
		refused_like "$T/i1" "chunk #$idx \\($len bytes at 0x[0-9a-f]+, anon\\): the compressed chunk is not a zstd frame of its size \\(damaged\\)" --populate
		if lazy_possible; then
			run --separate-stderr clean "$CRAC" restore --lazy "$T/i1"
			echo "$z lazy: $status / $output / $stderr"
			[ "$status" -eq 1 ]
			[ -z "$output" ]
			[[ "$stderr" == *"chunk #$idx ($len bytes at "*"the compressed chunk is not a zstd frame of its size (damaged)"*"the restored process is stopped" ]]
		fi
	done
	# the same bytes as 16 frames, without a content size, with a 2 GiB
	# window (the reader decodes in one pass into the chunk: no window)
	split -b 65536 -d "$T/orig" "$T/part."
	for p in "$T"/part.*; do zstd -q -c "$p"; done >"$T/multi.zst"
	zstd -q -c --no-content-size "$T/orig" >"$T/nosize.zst"
	zstd -q -c --no-content-size --ultra -22 --long=31 "$T/orig" >"$T/window.zst"
	AS=()
	for z in multi nosize window; do
		rm -rf "$T/i1" && cp -a "$T/keep" "$T/i1"
		[ "$(stat -c %s "$T/$z.zst")" -lt "$len" ] || continue
		put_frame "$T/i1" "$T/$z.zst"
		restore_ok 1 "$T/i1" --populate
		lazy_possible && restore_ok 1 "$T/i1" --lazy
	done
}

@test "a chain of a compressed image and an uncompressed one, either way up: lazy, eager, flattened" {
	for mode in api0 api1; do
		rm -rf "$T/i0" "$T/i1" "$T/f"
		run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$PROG" "$T/i0" "$T/i1" 8 "$mode"
		echo "$mode: $status / $output / $stderr"
		[ "$status" -eq 0 ]
		run "$CRAC" inspect "$T/i1"
		echo "$output" | grep -q "^parent: *../i0"
		AS=()
		restore_ok 1 "$T/i1" --populate
		restore_ok 1 "$T/i1"
		if lazy_possible; then
			restore_ok 1 "$T/i1" --lazy --stats
			echo "$stderr" | grep -Eq "by userfaultfd, [1-9][0-9]* of them with pages of images below"
		fi
		run clean "$CRAC" flatten "$T/i1" "$T/f"
		[ "$status" -eq 0 ]
		restore_ok 1 "$T/f"
	done
}
