#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Probe (s23): the images below an incremental image replaced or made
# hostile after it was written (a cycle, a missing grandparent, a parent
# whose header is a symbolic link or a FIFO, a parent directory others may
# write, a parent flattened in place), and a chain restored by another uid
# than the one that wrote it: each refused in one line naming the image,
# restore, inspect and flatten alike.

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup probeparent
	INCR="$CRAC_BUILD_DIR/tests/image_incr"
	EDIT="$CRAC_BUILD_DIR/tests/incr_edit"
	AS=()
}

teardown() {
	common_teardown
}

# chain [AS...]: $T/c/i0 (full), i1 and i2 (incremental), kept in $T/orig
chain() {
	mkdir -m 755 "$T/c"
	[ $# -eq 0 ] || chown 65534:65534 "$T/c"
	run --separate-stderr clean "$@" env CRAC_IMAGE_INCREMENTAL=1 "$INCR" "$T/c/i0" "$T/c/i1" "$T/c/i2"
	echo "chain: status $status, stdout: $output, stderr: $stderr"
	[ "$status" -eq 0 ]
	cp -a "$T/c" "$T/orig"
}

fresh() {
	rm -rf "$T/c"
	cp -a "$T/orig" "$T/c"
}

# refused DIR TEXT [AS...]: restore (as AS), inspect and flatten of DIR
# refuse, restore with exactly one line "crac: restore DIR: TEXT" (TEXT a
# glob pattern: * where a value is not known)
refused() {
	local dir=$1 text=$2
	shift 2
	run --separate-stderr clean "$@" timeout 30 "$CRAC" restore "$dir"
	echo "restore $dir: status $status, stdout: $output, stderr: $stderr"
	echo "want: crac: restore $dir: $text"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$(echo "$stderr" | wc -l)" -eq 1 ]
	[[ "$stderr" == "crac: restore $dir: "$text ]]
	run clean "$@" timeout 30 "$CRAC" inspect "$dir"
	echo "inspect: status $status: $output"
	[ "$status" -eq 1 ]
	[[ "$output" == *$text* ]]
	run clean "$@" timeout 30 "$CRAC" flatten "$dir" "$T/flat"
	echo "flatten: status $status: $output"
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | wc -l)" -eq 1 ]
	[[ "$output" == "crac: flatten $dir: "$text ]]
	[ ! -e "$T/flat" ]
}

@test "probe: a cycle i2 -> i1 -> i2, each recording the other's identity: refused, one line" {
	chain
	"$EDIT" "$T/c/i1" parent ../i2
	"$EDIT" "$T/c/i1" adopt "$T/c/i2"
	"$EDIT" "$T/c/i2" adopt "$T/c/i1"
	# a header's identity is its checksum: the two cannot both hold
	refused "$T/c/i2" "image $T/c/i2/../i1/../i2, 2 levels below $T/c/i2 was replaced or changed since the image above it was written (header crc32c $(printf '0x%x' 0x"$(od -An -tx4 -j12 -N4 "$T/c/i2/header" | tr -d ' ')"), recorded 0x"*
}

@test "probe: the grandparent missing: the child and the parent both refuse, naming it" {
	chain
	rm -rf "$T/c/i0"
	refused "$T/c/i2" "image $T/c/i2/../i1/../i0, 2 levels below $T/c/i2 is missing: cannot open the image directory: No such file or directory (errno 2) (an incremental image needs every image below it)"
	refused "$T/c/i1" "parent image $T/c/i1/../i0 of $T/c/i1 is missing: cannot open the image directory: No such file or directory (errno 2) (an incremental image needs every image below it)"
}

@test "probe: the parent's header a symbolic link (to its own bytes) or a FIFO, its directory writable by others: refused" {
	chain
	mv "$T/c/i1/header" "$T/c/h1"
	ln -s ../h1 "$T/c/i1/header"
	refused "$T/c/i2" "parent image $T/c/i2/../i1 of $T/c/i2 cannot be opened: $T/c/i2/../i1/header is a symbolic link: refused (an image's files are never followed) (an incremental image needs every image below it)"
	fresh
	rm "$T/c/i1/header"
	mkfifo "$T/c/i1/header"
	refused "$T/c/i2" "parent image $T/c/i2/../i1 of $T/c/i2 cannot be opened: $T/c/i2/../i1/header is a FIFO, not a regular file: refused (an incremental image needs every image below it)"
	fresh
	chmod 777 "$T/c/i1"
	refused "$T/c/i2" "$T/c/i2/../i1 can be written by other users (mode 0777): they could change the program it restores; \`crac restore --trust-owner\` accepts it"
	# a parent that is a directory of symbolic links to the image's files
	fresh
	mv "$T/c/i1" "$T/c/real"
	mkdir -m 700 "$T/c/i1"
	ln -s ../real/header "$T/c/i1/header"
	ln -s ../real/pages "$T/c/i1/pages"
	refused "$T/c/i2" "parent image $T/c/i2/../i1 of $T/c/i2 cannot be opened: $T/c/i2/../i1/header is a symbolic link: refused (an image's files are never followed) (an incremental image needs every image below it)"
}

@test "probe: a parent flattened in place is another image: its child refuses, naming it" {
	chain
	run clean "$CRAC" flatten "$T/c/i1" "$T/c/i1"
	echo "$output"
	[ "$status" -eq 0 ]
	refused "$T/c/i2" "parent image $T/c/i2/../i1 of $T/c/i2 was replaced or changed since the image above it was written (header crc32c $(printf '0x%x' 0x"$(od -An -tx4 -j12 -N4 "$T/c/i1/header" | tr -d ' ')"), recorded 0x"*
	restore_ok 1 "$T/c/i1"
}

# NOBODY: the command prefix that runs as nobody (skips without root)
need_nobody_here() {
	[ "$(id -u)" -eq 0 ] || skip "needs root to switch to nobody"
	command -v setpriv >/dev/null || skip "no setpriv"
	NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	"${NOBODY[@]}" test -x "$INCR" || skip "build tree not accessible to nobody"
}

@test "probe: root's chain restored by nobody; nobody's child on root's readable parent: refused, naming the owner" {
	need_nobody_here
	chain
	refused "$T/c/i2" "cannot open the image directory: Permission denied (errno 13); it is owned by uid 0 (mode 0700), not by uid 65534 who runs this: an image restores as the user who wrote it" "${NOBODY[@]}"
	# i2 given to nobody, the images below it readable by all: still root's
	chown -R 65534:65534 "$T/c/i2"
	chmod 755 "$T/c/i1" "$T/c/i0"
	chmod 644 "$T/c/i1/header" "$T/c/i1/pages" "$T/c/i0/header" "$T/c/i0/pages"
	refused "$T/c/i2" "$T/c/i2/../i1 is owned by uid 0, not by the restoring user (uid 65534): an image is code, restoring it runs that user's program as you; \`crac restore --trust-owner\` accepts it" "${NOBODY[@]}"
	AS=("${NOBODY[@]}")
	restore_ok 2 "$T/c/i2" --trust-owner
	# and the one two levels below, when the parent is nobody's
	chown -R 65534:65534 "$T/c/i1"
	refused "$T/c/i2" "$T/c/i2/../i1/../i0 is owned by uid 0, not by the restoring user (uid 65534): an image is code, restoring it runs that user's program as you; \`crac restore --trust-owner\` accepts it" "${NOBODY[@]}"
}

@test "probe: nobody restores root's image (--trust-owner) and checkpoints incrementally: a full image, which needs no one's trust" {
	need_nobody_here
	chain
	chmod 755 "$T/c/i0"
	chmod 644 "$T/c/i0/header" "$T/c/i0/pages"
	mkdir -m 755 "$T/n"
	chown 65534:65534 "$T/n"
	run --separate-stderr clean "${NOBODY[@]}" timeout 60 "$CRAC" restore --trust-owner "$T/c/i0" -- next "$T/n/n1"
	echo "status $status, stdout: $output, stderr: $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok stage 0" ]
	# not written on root's image (it would restore as nobody only with
	# --trust-owner again): full (image_track.c, img_incr_prepare)
	run clean "${NOBODY[@]}" "$CRAC" inspect "$T/n/n1"
	echo "$output"
	[ "$status" -eq 0 ]
	! echo "$output" | grep -q "^parent:"
	AS=("${NOBODY[@]}")
	restore_ok 1 "$T/n/n1"
}
