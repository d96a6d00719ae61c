#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Image engine, the page writer (src/engines/image_write.c): all-zero pages
# of anonymous memory are left out of the pages file (the restore gives
# zeros where no chunk is, eagerly and lazily), never those of a private
# file mapping (a missing page would come back from the file); every way
# of writing (O_DIRECT, vmsplice + splice, write) gives the same image.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	ZERO="$CRAC_BUILD_DIR/tests/ckpt_zero"
	T="$(mktemp -d /tmp/crac-bats-zero.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_WRITER CRAC_IMAGE_KEEP_ZERO
	unset CRAC_IMAGE_STATS CRAC_IMAGE_AIO
}

teardown() {
	rm -rf "$T" "${SHM:-/nonexistent}"
}

# checkpoint DIR [PREFIX...]: runs the program (16 MiB heap, half zeros).
checkpoint() {
	local dir=$1
	shift
	run clean "$@" "$ZERO" "$dir" "$T/data-$(basename "$dir")"
	echo "$output"
	[ "$status" -eq 0 ]
	BEFORE="$(echo "$output" | sed -n 's/^before: //p')"
	[ -n "$BEFORE" ]
}

# restored DIR [RESTORE ARGS...]: restores and checks every byte.
restored() {
	local dir=$1
	shift
	run clean $AS "$CRAC" restore "$@" "$dir"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "restored: $BEFORE"
	echo "$output" | grep -qx "pages ok"
}

@test "a heap that is half zeros: the pages file is about half as large, the restore gives back every byte" {
	require_image_engine
	CRAC_IMAGE_KEEP_ZERO=1 checkpoint "$T/full"
	checkpoint "$T/img"
	full=$(stat -c %s "$T/full/pages")
	half=$(stat -c %s "$T/img/pages")
	echo "pages: $full bytes with zero pages, $half without"
	# the 8 MiB of zero pages are missing, the rest is the same
	[ $((full - half)) -ge $((8 * 1048576 - 65536)) ]
	[ $((full - half)) -le $((8 * 1048576 + 1048576)) ]
	restored "$T/img" --populate
	restored "$T/img"
	restored "$T/full"
}

@test "zero pages are counted in the checkpoint's stats; the default writer is vmsplice + splice" {
	require_image_engine
	checkpoint "$T/img" env CRAC_IMAGE_STATS=1
	echo "$output" | grep -q "written with vmsplice+splice (the default)"
	echo "$output" | grep -Eq "^crac: checkpoint stats: .* ([89]\.[0-9]|1[0-9]\.[0-9]) MiB of zero pages left out"
}

@test "a private file mapping whose pages the program zeroed restores zeros, not the file's bytes" {
	require_image_engine
	checkpoint "$T/img"
	# the file still holds 0xab everywhere: the zeros must come from the image
	[ "$(od -An -tx1 -j $((3 * 4096)) -N 4 "$T/data-img" | tr -d ' ')" = abababab ]
	restored "$T/img" --populate
	restored "$T/img"
}

@test "every writer gives a restorable image: O_DIRECT (by a helper, AIO or neither), vmsplice + splice, write" {
	require_image_engine
	for w in direct splice write; do
		checkpoint "$T/img-$w" env CRAC_IMAGE_WRITER=$w CRAC_IMAGE_STATS=1
		echo "$output" | grep -q "written with .*(CRAC_IMAGE_WRITER=$w)"
		# O_DIRECT by a helper on the other CPU where there is one
		if [ "$w" = direct ] && [ "$(nproc)" -gt 1 ]; then
			echo "$output" | grep -q "written with O_DIRECT by a helper on the other CPU (CRAC_IMAGE_WRITER=direct)"
		fi
		restored "$T/img-$w"
	done
	# O_DIRECT by this thread
	checkpoint "$T/img-direct1" env CRAC_IMAGE_WRITER=direct CRAC_IMAGE_DIRECT_HELPER=0 CRAC_IMAGE_STATS=1
	echo "$output" | grep -q "written with O_DIRECT (CRAC_IMAGE_WRITER=direct)"
	restored "$T/img-direct1"
	# the helper's second batch refused as O_DIRECT refuses a misaligned
	# write: it and the rest written buffered, the image whole
	checkpoint "$T/img-refused" env CRAC_IMAGE_WRITER=direct CRAC_TEST_DIRECT_REFUSE=2 CRAC_IMAGE_STATS=1
	if [ "$(nproc)" -gt 1 ]; then
		echo "$output" | grep -q "written with vmsplice+splice (O_DIRECT refused a write (alignment))"
	fi
	restored "$T/img-refused"
	a=$(stat -c %s "$T/img-refused/pages")
	b=$(stat -c %s "$T/img-write/pages")
	[ $((a - b)) -le 65536 ]
	[ $((b - a)) -le 65536 ]
	# O_DIRECT through AIO
	checkpoint "$T/img-aio" env CRAC_IMAGE_WRITER=direct CRAC_IMAGE_AIO=1 CRAC_IMAGE_STATS=1
	echo "$output" | grep -q "written with O_DIRECT + AIO (CRAC_IMAGE_WRITER=direct)"
	restored "$T/img-aio"
	# the same pages (a few of the program's own may differ between runs)
	a=$(stat -c %s "$T/img-direct/pages")
	b=$(stat -c %s "$T/img-write/pages")
	[ $((a - b)) -le 65536 ]
	[ $((b - a)) -le 65536 ]
}

@test "an image in tmpfs (/dev/shm) is written with vmsplice + splice, the default" {
	require_image_engine
	[ -d /dev/shm ] && [ -w /dev/shm ] || skip "no writable /dev/shm"
	SHM="$(mktemp -d /dev/shm/crac-bats-zero.XXXXXX)"
	run clean env CRAC_IMAGE_STATS=1 "$ZERO" "$SHM/img" "$T/data"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "written with vmsplice+splice (the default)"
	BEFORE="$(echo "$output" | sed -n 's/^before: //p')"
	restored "$SHM/img"
}

@test "unprivileged: half-zero heap and zeroed file pages, checkpoint and restore as nobody" {
	require_image_engine
	command -v setpriv >/dev/null || skip "no setpriv"
	AS="setpriv --reuid=65534 --regid=65534 --clear-groups"
	$AS test -x "$ZERO" || skip "build tree not accessible to nobody"
	chown 65534:65534 "$T"
	checkpoint "$T/img" $AS
	restored "$T/img"
	restored "$T/img" --populate
}
