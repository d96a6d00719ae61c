#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Image engine: every reason to refuse a restore gives one clear line on
# stderr, "crac: restore DIR: REASON", and exit status 1: never a crash of
# the loader (128+signal), never a half-restored process, nothing on stdout.
# Damaged images (page checksum, truncated or altered header, truncated or
# missing files), mapped files changed after the checkpoint (a data file and
# a dlopen'ed library: size, mtime, first/last page, replaced, deleted), a
# CPU without a recorded feature, XSAVE differences, another format version,
# a different vDSO layout, a mapping over the loader, and directories that
# are no image. `crac inspect` says the same (exit 1) where it checks it.
#
# The header edits use tests/progs/image_edit, which keeps the header
# checksum valid so that the check under test is the one that refuses.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROBE="$CRAC_BUILD_DIR/tests/image_probe"
	EDIT="$CRAC_BUILD_DIR/tests/image_edit"
	T="$(mktemp -d /tmp/crac-bats-refuse.XXXXXX)"
	chmod 755 "$T"
	mkdir -m 755 "$T/work"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOADER
	# a data file of 5 pages, mapped read-only MAP_PRIVATE by the probe
	head -c 20000 /dev/urandom >"$T/data.bin"
}

teardown() {
	rm -rf "$T"
}

# checkpoint [PROBE ARGS...]: image_probe checkpoints into $T/img, mapping
# $T/data.bin.
checkpoint() {
	run --separate-stderr clean "$PROBE" "$T/img" "$T/work" --map "$T/data.bin" "$@"
	echo "checkpoint: status $status: $output $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "checkpoint generation=0" ]
	# sanity: this image is restorable before we damage it
	run "$CRAC" inspect "$T/img"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "result:    restorable here"
}

# restore_refused DIR: `crac restore DIR -- pid=1` refused before the
# program ran (refused_restore, common.bash); the reason in $REASON.
restore_refused() {
	refused_restore "$1" -- pid=1
}

# refused REASON: restore of $T/img refused with exactly this reason.
refused() {
	restore_refused "$T/img"
	if [ "$REASON" != "$1" ]; then
		echo "expected reason: $1"
		return 1
	fi
}

# refused_like REGEX: the same, the reason matching an (anchored) ERE.
refused_like() {
	restore_refused "$T/img"
	if ! [[ "$REASON" =~ ^$1$ ]]; then
		echo "expected reason like: $1"
		return 1
	fi
}

# inspect_fails CHECK DETAIL: `crac inspect` exits 1, its check CHECK says
# FAILED with DETAIL, and its verdict is that the image cannot be restored.
inspect_fails() {
	run "$CRAC" inspect "$T/img"
	echo "inspect: status $status"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -qxF "  $(printf '%-7s' "$1") FAILED: $2"
	echo "$output" | grep -qx "result:    this machine cannot restore the image"
	run "$CRAC" inspect "$T/img" --json
	[ "$status" -eq 1 ]
	echo "$output" | grep -q '"restorable":false}$'
	if command -v jq >/dev/null; then
		[ "$(echo "$output" | jq -r ".checks[] | select(.name == \"$1\") | .ok")" = false ]
		[ "$(echo "$output" | jq -r ".checks[] | select(.name == \"$1\") | .detail")" = "$2" ]
	fi
}

# inspect_cannot_load MESSAGE: `crac inspect` cannot even read the image.
inspect_cannot_load() {
	run --separate-stderr "$CRAC" inspect "$T/img"
	echo "inspect: status $status"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "crac: inspect $T/img: $1" ]
}

# ---- damaged images -------------------------------------------------------------

@test "corrupt page data: a byte flipped inside a stored heap chunk" {
	checkpoint
	read -r idx off len < <("$EDIT" "$T/img" chunk heap)
	[ -n "$len" ]
	[ "$len" -gt 200 ]
	# one byte in the middle of the chunk
	flip_byte "$T/img/pages" $((off + len / 2))
	refused_like "page data checksum mismatch in chunk #$idx \\($len bytes at 0x[0-9a-f]+, \\[heap\\]\\): the pages file is damaged"
	addr=$(echo "$REASON" | grep -Eo '0x[0-9a-f]+')
	inspect_fails data "$T/img/pages: checksum mismatch in page chunk #$idx ($len bytes at $addr of heap)"
}

@test "truncated header" {
	checkpoint
	size=$(stat -c %s "$T/img/header")
	truncate -s 100 "$T/img/header"
	refused "header is truncated or damaged (100 bytes, header says $size)"
	inspect_cannot_load "$T/img/header: header is truncated or damaged (100 bytes, header says $size)"
	truncate -s 10 "$T/img/header"
	refused "header is truncated (10 bytes)"
	inspect_cannot_load "$T/img/header: header is truncated (10 bytes)"
	truncate -s 0 "$T/img/header"
	refused "header is truncated (0 bytes)"
}

@test "header altered: checksum mismatch; bad magic" {
	checkpoint
	# a byte of the kernel release string
	flip_byte "$T/img/header" 48
	refused_like "header checksum mismatch \\(crc32c 0x[0-9a-f]+, recorded 0x[0-9a-f]+\\)"
	inspect_cannot_load "$T/img/header: $REASON"
	printf 'X' | dd of="$T/img/header" bs=1 seek=0 conv=notrunc status=none
	refused "not a crac image (bad magic in header)"
	inspect_cannot_load "$T/img/header: not a crac image (bad magic in header)"
}

@test "truncated or missing pages file; missing header file" {
	checkpoint
	size=$(stat -c %s "$T/img/pages")
	truncate -s $((size - 4096)) "$T/img/pages"
	refused_like "$T/img/pages is truncated or damaged \\([0-9]+ bytes, the header says [0-9]+\\)"
	# inspect runs the same check and says the same
	inspect_fails pages "$REASON"
	rm "$T/img/pages"
	refused "$T/img/pages: No such file or directory (errno 2)"
	inspect_cannot_load "$REASON"
	rm "$T/img/header"
	refused "$T/img/header: No such file or directory (errno 2)"
	inspect_cannot_load "$REASON"
}

# ---- mapped files changed after the checkpoint ----------------------------------------

@test "changed mapped file: size" {
	checkpoint
	echo x >>"$T/data.bin"
	refused "file $T/data.bin changed since the checkpoint (its size differs)"
	inspect_fails files "$REASON"
}

@test "changed mapped file: modification time only" {
	checkpoint
	touch -d '2001-02-03 04:05:06' "$T/data.bin"
	refused "file $T/data.bin changed since the checkpoint (its modification time differs)"
	inspect_fails files "$REASON"
}

@test "changed mapped file: a page in the middle rewritten, size and mtime put back" {
	checkpoint
	cp -a "$T/data.bin" "$T/data.orig"
	printf 'QQQQ' | dd of="$T/data.bin" bs=1 seek=9000 conv=notrunc status=none
	touch -r "$T/data.orig" "$T/data.bin"
	[ "$(stat -c %s.%Y "$T/data.bin")" = "$(stat -c %s.%Y "$T/data.orig")" ]
	refused "file $T/data.bin changed since the checkpoint (its status change time (ctime) differs): a write whose modification time was put back, or only a chmod, chown or new hard link (a backup, perf's build-id cache) that crac cannot tell apart from one; checkpoint again if its content is the same"
	inspect_fails files "$REASON"
}

@test "changed mapped file: replaced by an identical copy (another inode)" {
	checkpoint
	cp -a "$T/data.bin" "$T/data.new"
	ino_old=$(stat -c %i "$T/data.bin")
	mv "$T/data.new" "$T/data.bin"
	[ "$(stat -c %i "$T/data.bin")" != "$ino_old" ]
	refused "file $T/data.bin changed since the checkpoint (its inode (the file was replaced) differs)"
	inspect_fails files "$REASON"
}

@test "changed mapped file: deleted" {
	checkpoint
	rm "$T/data.bin"
	refused "mapped file $T/data.bin: No such file or directory (errno 2)"
	inspect_fails files "$REASON"
}

@test "changed library: a dlopen'ed copy of a shared library rebuilt after the checkpoint" {
	command -v cc >/dev/null || skip "no C compiler to build the test library"
	mkdir "$T/lib"
	echo 'int probe_answer(void) { return 42; }' >"$T/lib/p.c"
	cc -shared -fPIC -o "$T/lib/build.so" "$T/lib/p.c"
	cp "$T/lib/build.so" "$T/lib/libprobe.so"
	checkpoint --dlopen "$T/lib/libprobe.so"
	run "$CRAC" inspect "$T/img"
	echo "$output" | grep -q "^  $T/lib/libprobe.so ("
	# rebuilt in place: another size
	echo 'int probe_answer(void) { return 43; } int probe_more(void) { return 1; }' >"$T/lib/p.c"
	cc -shared -fPIC -o "$T/lib/build.so" "$T/lib/p.c"
	cat "$T/lib/build.so" >"$T/lib/libprobe.so"
	if [ "$(stat -c %s "$T/lib/libprobe.so")" = "$(stat -c %s "$T/lib/build.so")" ]; then
		echo >>"$T/lib/libprobe.so"   # make sure the size changed
	fi
	refused_like "file $T/lib/libprobe\\.so changed since the checkpoint \\(its (size|modification time|the content of its first page) differs\\)"
	[[ "$REASON" == *"$T/lib/libprobe.so"* ]]
	run "$CRAC" inspect "$T/img"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "^  files   FAILED: file $T/lib/libprobe.so changed since the checkpoint"
}

# ---- this machine differs --------------------------------------------------------------

@test "a CPU feature recorded in the image is missing here" {
	checkpoint
	run "$EDIT" "$T/img" cpu-missing
	[ "$status" -ne 77 ] || skip "this CPU has every feature bit the image format records"
	[ "$status" -eq 0 ]
	feature=$output   # "NAME (cpuid W bit N)"
	[ -n "$feature" ]
	refused "this CPU lacks $feature that the checkpointed process could use"
	inspect_fails cpu "this CPU lacks $feature that the checkpointed process could use"
}

@test "XSAVE: a larger area, or a state component the OS does not enable" {
	checkpoint
	run "$CRAC" inspect "$T/img" --json
	xsave=$(echo "$output" | grep -o '"xsave_size":[0-9]*' | cut -d: -f2)
	[ -n "$xsave" ]
	cp -a "$T/img" "$T/img.orig"
	"$EDIT" "$T/img" xsave-size
	refused "XSAVE area size differs: $xsave bytes here, $((xsave + 64)) in the image"
	inspect_fails cpu "XSAVE area size differs: $xsave bytes here, $((xsave + 64)) in the image"

	rm -rf "$T/img"
	mv "$T/img.orig" "$T/img"
	run "$EDIT" "$T/img" xcr0
	[ "$status" -ne 77 ] || skip "every XSAVE state component is enabled here"
	[ "$status" -eq 0 ]
	mask=$output
	refused_like "the OS does not enable XSAVE state components $mask \\(XCR0 0x[0-9a-f]+, image 0x[0-9a-f]+\\)"
}

@test "unsupported format version; the refusal changed nothing" {
	checkpoint
	V=$(sed -n 's/^#define CRAC_IMG_VERSION \([0-9]*\).*/\1/p' "$CRAC_SOURCE_DIR/src/image/image.h")
	[ -n "$V" ]
	"$EDIT" "$T/img" version $((V + 1))
	refused "image format version $((V + 1)) is not supported (this build reads version $V)"
	inspect_cannot_load "$T/img/header: image format version $((V + 1)) is not supported (this build reads version $V)"
	"$EDIT" "$T/img" version 0
	refused "image format version 0 is not supported (this build reads version $V)"
	# back to the right version: the image restores (nothing was altered by the refusals)
	"$EDIT" "$T/img" version "$V"
	run --separate-stderr clean bash -c 'cd / && exec "$0" restore "$1" -- pid=$$' "$CRAC" "$T/img"
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "restored generation=1" ]
	[ "${lines[-1]}" = "done generation=1" ]
}

@test "vDSO layout differs" {
	checkpoint
	"$EDIT" "$T/img" vdso-size
	hex='0x[0-9a-f]+'
	refused_like "vDSO layout differs: \\[vvar\\]/\\[vvar_vclock\\]/\\[vdso\\] are $hex/$hex/$hex bytes here, $hex/$hex/$hex in the image \\(kernel $(uname -r | sed 's/[.+]/\\&/g')\\)"
	# the image's [vdso] is one page smaller than ours
	here=$(echo "$REASON" | sed -E 's|.* are 0x[0-9a-f]+/0x[0-9a-f]+/(0x[0-9a-f]+) bytes here.*|\1|')
	img=$(echo "$REASON" | sed -E 's|.* here, 0x[0-9a-f]+/0x[0-9a-f]+/(0x[0-9a-f]+) in the image.*|\1|')
	[ $((here - img)) -eq 4096 ]
	inspect_fails vdso "$REASON"
}

@test "a mapping that would overlap the restore loader" {
	checkpoint
	"$EDIT" "$T/img" overlap
	refused_like "mapping 0x500000000000-0x500000001000 \\(.+\\) lies in the restore loader's reserved range 0x500000000000-0x500010000000: the loader could not run while it is restored"
	# crac inspect runs the same check
	run "$CRAC" inspect "$T/img"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "^  layout  FAILED: mapping 0x500000000000-0x500000001000 .* lies in the restore loader's reserved range"
}

# ---- not an image ------------------------------------------------------------------------

@test "not an image: missing directory, a regular file, an empty directory, garbage" {
	run --separate-stderr "$CRAC" restore "$T/nothing"
	echo "$status: $stderr"
	[ "$status" -eq 1 ]
	[ "$stderr" = "crac: restore $T/nothing: cannot open the image directory: No such file or directory (errno 2)" ]
	run --separate-stderr "$CRAC" inspect "$T/nothing"
	[ "$status" -eq 1 ]
	[ "$stderr" = "crac: inspect $T/nothing: cannot open the image directory: No such file or directory (errno 2)" ]

	mkdir "$T/empty"
	restore_refused "$T/empty"
	[ "$REASON" = "$T/empty/header: No such file or directory (errno 2)" ]

	mkdir "$T/garbage"
	head -c 8192 /dev/urandom >"$T/garbage/header"
	: >"$T/garbage/pages"
	restore_refused "$T/garbage"
	[ "$REASON" = "not a crac image (bad magic in header)" ]

	touch "$T/file"
	restore_refused "$T/file"
	[ "$REASON" = "cannot open the image directory: Not a directory (errno 20)" ]
}

@test "an image nobody may not read: restore as another user is refused" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to switch to nobody"
	command -v setpriv >/dev/null || skip "no setpriv"
	setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$CRAC" || skip "build tree not accessible to nobody"
	checkpoint   # as root: the image is 0700, its files 0600
	run --separate-stderr clean setpriv --reuid=65534 --regid=65534 --clear-groups "$CRAC" restore "$T/img"
	echo "$status: $output $stderr"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	# (whose it is said: probe s20, "Permission denied" alone did not tell
	# a restore as the wrong user from a damaged image)
	[ "$stderr" = "crac: restore $T/img: cannot open the image directory: Permission denied (errno 13); it is owned by uid 0 (mode 0700), not by uid 65534 who runs this: an image restores as the user who wrote it" ]
	# the directory readable, its files not: the header is named
	chmod 755 "$T/img"
	run --separate-stderr clean setpriv --reuid=65534 --regid=65534 --clear-groups "$CRAC" restore "$T/img"
	echo "$status: $output $stderr"
	[ "$status" -eq 1 ]
	[ "$stderr" = "crac: restore $T/img: $T/img/header: Permission denied (errno 13); it is owned by uid 0 (mode 0600), not by uid 65534 who runs this: an image restores as the user who wrote it" ]
	run --separate-stderr clean setpriv --reuid=65534 --regid=65534 --clear-groups "$CRAC" inspect "$T/img"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"$T/img/header: Permission denied (errno 13); it is owned by uid 0 (mode 0600), not by uid 65534 who runs this"* ]]
}

@test "restore usage errors exit 2" {
	run --separate-stderr "$CRAC" restore
	[ "$status" -eq 2 ]
	[[ "$stderr" == "crac: usage: crac restore DIR"* ]]
	run --separate-stderr "$CRAC" restore "$T/a" "$T/b"
	[ "$status" -eq 2 ]
	[ "$stderr" = "crac: unexpected \"$T/b\" (usage: crac restore DIR [--populate | --lazy] [--stats] [--timens] [--trust-owner] [--verify-files] [--quiet|-q] [--env K=V]... [-- ARGS...])" ]
	run --separate-stderr env CRAC_LOADER=/nonexistent "$CRAC" restore "$T/a"
	[ "$status" -eq 2 ]
	[ "$stderr" = "crac: CRAC_LOADER=/nonexistent is not an executable file" ]
}
