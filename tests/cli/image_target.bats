#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Image engine: the target directory. A checkpoint writes DIR only if
# nothing is there or DIR is a crac image of the caller; a user's folder, a
# file, a symbolic link or another user's image is refused before anything
# is written, with one line naming DIR and what it is, and left exactly as
# it was. A committed image is success. Temporaries left by a checkpoint
# that was killed (DIR.tmp-PID-START-XXXXXX) are removed by the next
# checkpoint to DIR.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	COUNTER="$CRAC_BUILD_DIR/tests/image_counter"
	T="$(mktemp -d /tmp/crac-bats-target.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
}

teardown() {
	rm -rf "$T"
}

# snapshot of a tree: names, types, sizes, contents
tree_sum() {
	(cd "$1" && find . -printf '%p %y %s %l\n' | sort && find . -type f -exec cat {} + | md5sum)
}

refused() {   # refused TARGET WORDS...: checkpoint into TARGET is refused
	local target="$1"; shift
	local before; before="$(tree_sum "$T")"
	run clean "$COUNTER" "$target" 1
	echo "$output"
	[ "$status" -ne 0 ]
	echo "$output" | grep -q "FAIL: crac_checkpoint_restore returned -"
	echo "$output" | grep -q "image directory $target"
	for w in "$@"; do
		echo "$output" | grep -q -- "$w"
	done
	# nothing written, nothing removed, no temporary
	[ "$(tree_sum "$T")" = "$before" ]
	! ls "$T" | grep -q '\.tmp-' || false
}

@test "a user's folder holding header, pages and more is refused and untouched" {
	require_image_engine
	mkdir "$T/D"
	echo "my header" > "$T/D/header"
	echo "my pages" > "$T/D/pages"
	echo "my notes" > "$T/D/notes.txt"
	refused "$T/D" "is not a crac image" "notes.txt"
}

@test "a folder whose header lacks the image magic is refused" {
	require_image_engine
	mkdir "$T/D"
	echo "my header" > "$T/D/header"
	refused "$T/D" "image magic"
}

@test "an empty folder is refused" {
	require_image_engine
	mkdir "$T/D"
	refused "$T/D" "without an image header"
}

@test "a regular file is refused and untouched" {
	require_image_engine
	echo "precious" > "$T/D"
	refused "$T/D" "regular file"
}

@test "a path below a regular file is refused saying the file is not a directory (not 'Permission denied')" {
	require_image_engine
	echo "precious" > "$T/F"
	local before; before="$(tree_sum "$T")"
	run clean "$COUNTER" "$T/F/img" 1
	echo "$output"
	[ "$status" -ne 0 ]
	echo "$output" | grep -q "cannot create the image in $T/F: not a directory (a regular file)"
	! echo "$output" | grep -q "Permission denied" || false
	[ "$(tree_sum "$T")" = "$before" ]
}

@test "a symbolic link, even to an image, is refused" {
	require_image_engine
	run clean "$COUNTER" "$T/real" 1
	[ "$status" -eq 0 ]
	ln -s real "$T/D"
	refused "$T/D" "symbolic link to real"
}

@test "an image owned by another user is refused" {
	require_image_engine
	[ "$(id -u)" -eq 0 ] || skip "needs root to give an image to another user"
	run clean "$COUNTER" "$T/D" 1
	[ "$status" -eq 0 ]
	chown -R nobody "$T/D"
	refused "$T/D" "owned by uid $(id -u nobody)"
}

@test "unprivileged: root's image is refused" {
	require_image_engine
	[ "$(id -u)" -eq 0 ] || skip "needs root to switch to nobody"
	run clean "$COUNTER" "$T/D" 1
	[ "$status" -eq 0 ]
	chmod 777 "$T"
	run clean setpriv --reuid=nobody --regid=nogroup --clear-groups "$COUNTER" "$T/D" 1
	echo "$output"
	[ "$status" -ne 0 ]
	echo "$output" | grep -q "image directory $T/D is owned by uid 0"
	[ "$(stat -c %U "$T/D/header")" = root ]
}

@test "our own image is replaced: success, old image gone, no leftovers" {
	require_image_engine
	run clean "$COUNTER" "$T/D" 1
	[ "$status" -eq 0 ]
	ino1="$(stat -c %i "$T/D/header")"
	run clean "$COUNTER" "$T/D" 2
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(ls "$T")" = D ]
	[ "$(ls "$T/D" | tr '\n' ' ')" = "header pages " ]
	[ "$(stat -c %i "$T/D/header")" != "$ino1" ]
	run clean "$CRAC" restore "$T/D"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^restored: checksum="
}

@test "kill -9 during a checkpoint: the temporary names its writer; the next checkpoint removes it" {
	require_image_engine
	clean "$COUNTER" "$T/D" 300 >/dev/null 2>&1 &
	bg=$!
	tmp=""
	for i in $(seq 1 500); do
		tmp="$(ls "$T" | grep '^D\.tmp-' || true)"
		[ -n "$tmp" ] && break
		sleep 0.01
	done
	[ -n "$tmp" ] || skip "no temporary seen while the checkpoint ran"
	echo "seen: $tmp"
	# D.tmp-PID-START-XXXXXX: PID and START are the writer's
	echo "$tmp" | grep -Eq '^D\.tmp-[0-9]+-[0-9]+-[A-Za-z0-9]{6}$'
	pid="$(echo "$tmp" | cut -d- -f2)"
	[ "$(cut -d' ' -f22 /proc/$pid/stat)" = "$(echo "$tmp" | cut -d- -f3)" ] ||
		skip "the checkpoint finished before it could be killed"
	kill -9 "$pid" 2>/dev/null || skip "the checkpoint finished before it could be killed"
	wait "$bg" || true
	[ -d "$T/$tmp" ] || skip "the checkpoint finished before it could be killed"
	ls -la "$T"
	# a temporary whose writer runs is left alone
	mkdir "$T/D.tmp-$$-$(cut -d' ' -f22 /proc/$$/stat)-abcdef"
	# and one of another image
	mkdir "$T/E.tmp-$pid-1-abcdef"
	run clean "$COUNTER" "$T/D" 1
	echo "$output"
	[ "$status" -eq 0 ]
	[ ! -e "$T/$tmp" ]
	[ -d "$T/D.tmp-$$-$(cut -d' ' -f22 /proc/$$/stat)-abcdef" ]
	[ -d "$T/E.tmp-$pid-1-abcdef" ]
	[ -d "$T/D" ]
}

@test "DIR/ with a trailing slash: the image is DIR, a symbolic link DIR/ is still refused" {
	require_image_engine
	run clean "$COUNTER" "$T/D/" 1
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(ls "$T")" = D ]
	[ "$(ls "$T/D" | tr '\n' ' ')" = "header pages " ]
	run clean "$COUNTER" "$T/D/" 1
	[ "$status" -eq 0 ]
	[ "$(ls "$T")" = D ]
	ln -s D "$T/L"
	run clean "$COUNTER" "$T/L/" 1
	echo "$output"
	[ "$status" -ne 0 ]
	echo "$output" | grep -q "image directory $T/L exists and is not a crac image (it is a symbolic link to D)"
	[ "$(ls "$T" | tr '
' ' ')" = "D L " ]
}
