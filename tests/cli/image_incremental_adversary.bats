#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Incremental images under attack (review of issue 12 item 3): hostile
# chains (parent paths naming a symbolic link, a FIFO, a device, an image of
# another user, the image itself, a skipped level; depths and references
# forged with a valid checksum, tests/progs/incr_edit.c), `crac flatten`
# with a hostile OUT or killed in the middle, and the checkpoint side
# (chains longer than 8, the program killed during an incremental
# checkpoint, two incremental checkpoints into one DIR at once). Each
# refusal is one line naming the image at fault; nothing half written is
# left at a target.

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup incradv
	INCR="$CRAC_BUILD_DIR/tests/image_incr"
	EDIT="$CRAC_BUILD_DIR/tests/incr_edit"
}

teardown() {
	[ -z "${pid:-}" ] || kill -9 "$pid" 2>/dev/null || true
	[ -z "${pid2:-}" ] || kill -9 "$pid2" 2>/dev/null || true
	rm -rf "$T"
}

# chain [AS...]: $T/i0 (full), $T/i1 and $T/i2 (incremental), by image_incr.
chain() {
	run --separate-stderr clean "$@" env CRAC_IMAGE_INCREMENTAL=1 "$INCR" "$T/i0" "$T/i1" "$T/i2"
	echo "chain: status $status, stdout: $output, stderr: $stderr"
	[ "$status" -eq 0 ]
	run "$EDIT" "$T/i2" show
	[ "${lines[0]}" = "depth 2 refs ${lines[0]##* }" ]
	cp -a "$T/i2" "$T/i2.orig"
}

# fresh: i2 as image_incr wrote it
fresh() {
	rm -rf "$T/i2"
	cp -a "$T/i2.orig" "$T/i2"
}

# refused DIR TEXT [restore options]: `crac restore` refuses DIR with status 1
# and one line containing TEXT; `crac inspect` and `crac flatten` refuse too.
refused() {
	local dir=$1 text=$2
	shift 2
	refused_restore "$dir" "$@"
	[[ "$REASON" == *"$text"* ]]
	run clean timeout 20 "$CRAC" inspect "$@" "$dir"
	echo "inspect: status $status: $output"
	[ "$status" -eq 1 ]
	run clean timeout 20 "$CRAC" flatten "$@" "$dir" "$T/flat"
	echo "flatten: status $status: $output"
	[ "$status" -eq 1 ]
	[ ! -e "$T/flat" ]
}

# start_sleep: `sleep 100` under crac run with incremental checkpoints, $pid
start_sleep() {
	export CRAC_CONTROL_DIR="$T/ctl"
	(
		close_fds
		CRAC_IMAGE_INCREMENTAL=1 exec "$CRAC" run -- "$@" </dev/null >"$T/out.$BASHPID" 2>&1
	) &
	pid=$!
	wait_sock "$CRAC_CONTROL_DIR/$pid.sock"
}

@test "hostile parent paths: FIFO, device, the image itself, a skipped level, a directory of another user" {
	chain
	mkfifo "$T/fifo"
	"$EDIT" "$T/i2" parent ../fifo
	refused "$T/i2" "parent image $T/i2/../fifo of $T/i2 cannot be opened: cannot open the image directory: Not a directory"
	"$EDIT" "$T/i2" parent /dev/zero
	refused "$T/i2" "parent image /dev/zero of $T/i2 cannot be opened"
	# itself, and its grandparent in place of its parent: not the image recorded
	"$EDIT" "$T/i2" parent .
	refused "$T/i2" "parent image $T/i2/. of $T/i2 was replaced or changed since the image above it was written"
	"$EDIT" "$T/i2" parent ../i0
	refused "$T/i2" "parent image $T/i2/../i0 of $T/i2 was replaced or changed"
	# a symbolic link to the recorded parent: that image, checked as such
	ln -s i1 "$T/link"
	"$EDIT" "$T/i2" parent ../link
	restore_ok 2 "$T/i2"
	# a cycle cannot be written: each image below is one level less deep
	fresh
	"$EDIT" "$T/i2" depth 3
	refused "$T/i2" "parent image $T/i2/../i1 of $T/i2 does not continue the chain (damaged image)"
	"$EDIT" "$T/i2" depth 9
	refused "$T/i2" "header: bad parent image record"
	"$EDIT" "$T/i2" depth 1
	refused "$T/i2" "header: bad page reference #"
	# another user's image as the parent (the same bytes, its owner changed)
	fresh
	[ "$(id -u)" -eq 0 ] || return 0
	chown -R 65534 "$T/i1"
	refused "$T/i2" "$T/i2/../i1 is owned by uid 65534, not by the restoring user (uid 0)"
	restore_ok 2 "$T/i2" --trust-owner
	chown -R 0 "$T/i1"
	chmod g+w "$T/i1/pages"
	refused "$T/i2" "$T/i2/../i1/pages can be written by other users (mode 0620)"
}

@test "forged references: out of range, overlapping, into the wrong chunk, of a wrong depth or mapping" {
	chain
	read -r addr len depth chunk map < <("$EDIT" "$T/i2" show | sed -n 2p)
	echo "reference #0: $addr $len $depth $chunk $map"
	"$EDIT" "$T/i2" ref 0 chunk 0   # chunk 0 of i1: an executable's data, far below
	refused "$T/i2" "page reference #0 of $T/i2 names no stored pages of $T/i2/"
	fresh
	"$EDIT" "$T/i2" ref 0 chunk 4000000000
	refused "$T/i2" "page reference #0 of $T/i2 names no stored pages of $T/i2/"
	fresh
	"$EDIT" "$T/i2" ref 1 addr "$addr"
	refused "$T/i2" "header: bad page reference #1"
	fresh
	"$EDIT" "$T/i2" ref 0 depth 3
	refused "$T/i2" "header: bad page reference #0"
	fresh
	"$EDIT" "$T/i2" ref 0 depth 0
	refused "$T/i2" "header: bad page reference #0"
	fresh
	"$EDIT" "$T/i2" ref 0 len 0x100000000
	refused "$T/i2" "header: bad page reference #0"
	fresh
	"$EDIT" "$T/i2" ref 0 map 0
	refused "$T/i2" "header: bad page reference #0"
	# the parent's own references are not the child's business (they name
	# the images below it, which the child names directly), but a
	# restore of the parent refuses them
	fresh
	"$EDIT" "$T/i1" ref 0 chunk 4000000000
	refused "$T/i2" "parent image $T/i2/../i1 of $T/i2 was replaced or changed"
	"$EDIT" "$T/i2" adopt "$T/i1"
	restore_ok 2 "$T/i2"
	refused "$T/i1" "page reference #0 of $T/i1 names no stored pages of $T/i1/../i0"
}

@test "crac flatten: OUT inside DIR or inside an image below it is refused, nothing written" {
	chain
	for out in "$T/i2/flat" "$T/i1/flat" "$T/i2/../i0/flat"; do
		run clean "$CRAC" flatten "$T/i2" "$out"
		echo "flatten $out: status $status: $output"
		[ "$status" -eq 1 ]
		[ "$(echo "$output" | wc -l)" -eq 1 ]
		[[ "$output" == "crac: flatten $T/i2: $out is inside the image "*": an image directory holds only its header and pages; choose another OUT" ]]
		[ ! -e "$out" ]
	done
	[ "$(ls "$T/i2")" = "$(printf 'header\npages')" ]
	[ "$(ls "$T/i1")" = "$(printf 'header\npages')" ]
	# so the chain's images can still be replaced, in place too
	run clean "$CRAC" flatten "$T/i2" "$T/i2"
	echo "$output"
	[ "$status" -eq 0 ]
	restore_ok 2 "$T/i2"
	# other existing targets: a symbolic link, a directory that is no image
	ln -s i0 "$T/link"
	mkdir "$T/other"
	touch "$T/other/x"
	for out in "$T/link" "$T/other" "$T"; do
		run clean "$CRAC" flatten "$T/i1" "$out"
		echo "flatten $out: status $status: $output"
		[ "$status" -eq 1 ]
	done
	[ "$(readlink "$T/link")" = i0 ]
	[ -e "$T/other/x" ]
}

@test "crac flatten: killed in the middle, OUT is as it was; the next flatten removes the temporary" {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$INCR" "$T/i0" "$T/i1" "$T/i2" 256
	[ "$status" -eq 0 ]
	run clean "$CRAC" flatten "$T/i0" "$T/out"   # a full image at OUT
	[ "$status" -eq 0 ]
	before=$(cat "$T/out/header" | md5sum)
	# killed while its temporary is being written: OUT is the old image
	spawn "$T/flatten.out" "$T/flatten.err" "$CRAC" flatten "$T/i2" "$T/out"
	fpid=$SPAWNED
	for _ in $(seq 500); do
		compgen -G "$T/out.tmp-$fpid-*/pages" >/dev/null && break
		sleep 0.01
	done
	kill -9 "$fpid"
	wait "$fpid" || true
	ls -l "$T"
	[ "$(cat "$T/out/header" | md5sum)" = "$before" ]
	restore_ok 0 "$T/out"
	compgen -G "$T/out.tmp-$fpid-*" >/dev/null   # its temporary, left behind
	cat "$T/flatten.out" "$T/flatten.err"
	[ ! -s "$T/flatten.out" ]
	# the temporary of a flatten that no longer runs: removed by the next
	run clean "$CRAC" flatten "$T/i2" "$T/out"
	echo "$output"
	[ "$status" -eq 0 ]
	ls "$T"
	[ -z "$(ls "$T" | grep "\.tmp-")" ]
	restore_ok 2 "$T/out"
}

@test "trust: root does not restore or flatten nobody's chain; nobody does not flatten root's" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to switch to nobody"
	command -v setpriv >/dev/null || skip "no setpriv"
	NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	"${NOBODY[@]}" test -x "$INCR" || skip "build tree not accessible to nobody"
	chown 65534:65534 "$T"
	chain "${NOBODY[@]}"
	refused "$T/i2" "$T/i2 is owned by uid 65534, not by the restoring user (uid 0)"
	# root's own image on top of nobody's: the parent is named
	chown -R 0:0 "$T/i2"
	refused "$T/i2" "$T/i2/../i1 is owned by uid 65534, not by the restoring user (uid 0)"
	restore_ok 2 "$T/i2" --trust-owner
	# nobody and root's image (readable by all): refused without --trust-owner
	chmod 755 "$T/i2"
	chmod 644 "$T/i2/header" "$T/i2/pages"
	run clean "${NOBODY[@]}" "$CRAC" flatten "$T/i2" "$T/flat"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == "crac: flatten $T/i2: $T/i2 is owned by uid 0, not by the restoring user (uid 65534)"* ]]
	[ ! -e "$T/flat" ]
	# and nobody cannot put its image over root's
	chown -R 65534:65534 "$T/i2"
	mkdir -m 755 "$T/rootimg"
	cp -a "$T/i0/header" "$T/i0/pages" "$T/rootimg/"
	chown -R 0:0 "$T/rootimg"
	run clean "${NOBODY[@]}" "$CRAC" flatten "$T/i2" "$T/rootimg"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"image directory $T/rootimg is owned by uid 0, not by this process (uid 65534)"* ]]
	cmp "$T/i0/pages" "$T/rootimg/pages"
}

@test "the program killed during an incremental checkpoint: its parent stays intact, nothing at the target" {
	spawn "$T/run.out" "$T/run.err" env CRAC_IMAGE_INCREMENTAL=1 CRAC_IMAGE_STATS=1 "$INCR" "$T/i0" "$T/i1" "$T/i2" 256
	pid=$SPAWNED
	# killed once the temporary of i1 is being written: looked for without
	# a pause (builtins only, no fork: i1's write takes some 50 ms, and
	# polling every 10 ms with sleep(1) missed it on a loaded machine)
	local until=$((SECONDS + 20))
	while [ $SECONDS -lt $until ]; do
		compgen -G "$T/i1.tmp-$pid-*/pages" >/dev/null && break
	done
	compgen -G "$T/i1.tmp-$pid-*/pages" >/dev/null || { ls -l "$T"; cat "$T/run.out" "$T/run.err"; false; }
	kill -9 "$pid"
	wait "$pid" || true
	ls -l "$T"
	[ ! -e "$T/i1" ]
	restore_ok 0 "$T/i0"
	# the next checkpoint into i1 (from a restore of i0): incremental on
	# i0, and the dead writer's temporary is gone
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 CRAC_IMAGE_STATS=1 "$CRAC" restore "$T/i0" -- next "$T/i1"
	echo "stdout: $output, stderr: $stderr"
	[ "$status" -eq 0 ]
	echo "$stderr" | grep -q "MiB referenced from 1 image below"
	[ -z "$(ls "$T" | grep "\.tmp-")" ]
	restore_ok 1 "$T/i1"
}

@test "two incremental checkpoints into one DIR at once: one whole image, both go on" {
	start_sleep sleep 100
	pid2=$pid
	start_sleep sleep 100
	run "$CRAC" checkpoint --keep-running --image-dir "$T/a0" "$pid"
	[ "$status" -eq 0 ]
	run "$CRAC" checkpoint --keep-running --image-dir "$T/b0" "$pid2"
	[ "$status" -eq 0 ]
	"$CRAC" checkpoint --incremental --keep-running --image-dir "$T/x" "$pid" >"$T/ca" 2>&1 &
	ca=$!
	"$CRAC" checkpoint --incremental --keep-running --image-dir "$T/x" "$pid2" >"$T/cb" 2>&1 &
	cb=$!
	sa=0 sb=0
	wait "$ca" || sa=$?
	wait "$cb" || sb=$?
	cat "$T/ca" "$T/cb"
	ls "$T"
	[ "$sa" -eq 0 ] || [ "$sb" -eq 0 ]
	[ -z "$(ls "$T" | grep "\.tmp-\|\.old-")" ]
	run "$CRAC" inspect "$T/x"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^parent:    \.\./[ab]0 (header crc32c 0x[0-9a-f]*; 1 image below"
	# both go on: each one's next image is whole, incremental or full
	for p in "$pid" "$pid2"; do
		run "$CRAC" checkpoint --incremental --image-dir "$T/y$p" "$p"
		echo "$output"
		[ "$status" -eq 0 ]
		run clean timeout 2 "$CRAC" restore "$T/y$p"
		[ "$status" -eq 124 ]   # sleep 100 runs again, until timeout stops it
	done
}

@test "a chain of more than 8: the ninth image is full, every one restores" {
	start_sleep sleep 100
	for k in 0 1 2 3 4 5 6 7 8 9 10; do
		run "$CRAC" checkpoint --incremental --keep-running --image-dir "$T/c$k" "$pid"
		echo "$output"
		[ "$status" -eq 0 ]
		run "$EDIT" "$T/c$k" show
		echo "c$k: ${lines[0]}"
		case $k in
		9) [[ "${lines[0]}" == "depth 0 "* ]] ;;
		10) [[ "${lines[0]}" == "depth 1 "* ]] ;;
		*) [[ "${lines[0]}" == "depth $k "* ]] ;;
		esac
	done
	kill "$pid"
	for k in 8 10; do
		run clean timeout 2 "$CRAC" restore "$T/c$k"
		[ "$status" -eq 124 ]
	done
}

@test "a chain of 8 under a directory 2600 bytes long: every image the checkpoint wrote restores, flattens" {
	# Each image below is reached from its child's directory ("DIR/../c7/
	# ../c6/..."): that path grows by a name per level and went over 4096
	# bytes at the deeper levels, where the checkpoint (which knows the
	# chain by absolute paths) had written the images: restore, inspect and
	# flatten refused "the path of the image below ... is too long".
	deep="$T"
	for _ in $(seq 13); do deep="$deep/$(printf 'd%.0s' $(seq 200))"; done
	mkdir -p "$deep"
	name=$(printf 'n%.0s' $(seq 200))
	start_sleep sleep 100
	for k in 0 1 2 3 4 5 6 7 8; do
		run "$CRAC" checkpoint --incremental --keep-running --image-dir "$deep/$name$k" "$pid"
		[ "$status" -eq 0 ] || { echo "$output"; false; }
	done
	kill "$pid"
	run "$EDIT" "$deep/${name}8" show
	[[ "${lines[0]}" == "depth 8 "* ]]
	for k in 7 8; do
		for opt in --populate ""; do
			run --separate-stderr clean timeout 2 "$CRAC" restore $opt "$deep/$name$k"
			echo "restore $opt $k: status $status, stderr: ${stderr:0:300}"
			[ "$status" -eq 124 ]   # sleep 100 runs again, until timeout stops it
		done
	done
	run clean "$CRAC" inspect "$deep/${name}8"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^  chain   ok: 8 images below"
	run clean "$CRAC" flatten "$deep/${name}8" "$T/flat"
	echo "${output:0:300}"
	[ "$status" -eq 0 ]
	run clean timeout 2 "$CRAC" restore "$T/flat"
	[ "$status" -eq 124 ]
	# the image 8 levels below missing: refused, one line (cut short: the
	# paths alone are longer than a message)
	mv "$deep/${name}0" "$deep/gone"
	run --separate-stderr clean "$CRAC" restore "$deep/${name}8"
	echo "missing: $stderr" | sed "s/dddd*/D/g; s/nnnn*/N/g"
	[ "$status" -eq 1 ]
	[ "$(echo "$stderr" | wc -l)" -eq 1 ]
	[[ "$stderr" == "crac: restore $T/"*": image $T/"* ]]
	run clean "$CRAC" inspect "$deep/${name}8"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "^  chain   FAILED: image $T/"
}

@test "an image whose own path is near 4096 bytes: its parent (../NAME) is found, or said missing" {
	# DIR/../NAME itself is over 4096 bytes: the parent is looked up from
	# DIR's directory and named by its real path
	deep="$T"
	for _ in $(seq 19); do deep="$deep/$(printf 'd%.0s' $(seq 200))"; done
	mkdir -p "$deep"
	name=$(printf 'n%.0s' $(seq 200))
	start_sleep sleep 100
	for k in 0 1; do
		run "$CRAC" checkpoint --incremental --keep-running --image-dir "$deep/$name$k" "$pid"
		[ "$status" -eq 0 ] || { echo "$output"; false; }
	done
	kill "$pid"
	run "$EDIT" "$deep/${name}1" show
	[[ "${lines[0]}" == "depth 1 "* ]]
	run --separate-stderr clean timeout 2 "$CRAC" restore "$deep/${name}1"
	echo "status $status, stderr: ${stderr:0:300}"
	[ "$status" -eq 124 ]
	run clean "$CRAC" inspect "$deep/${name}1"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^  chain   ok: 1 image below"
	mv "$deep/${name}0" "$deep/gone"
	run --separate-stderr clean "$CRAC" restore "$deep/${name}1"
	echo "missing: $stderr" | sed "s/dddd*/D/g; s/nnnn*/N/g"
	[ "$status" -eq 1 ]
	[ "$(echo "$stderr" | wc -l)" -eq 1 ]
	[[ "$stderr" == "crac: restore "*": parent image ../${name}0 of $T/"* ]]
}

@test "control characters in the name of an image below are escaped in every message" {
	chain
	esc=$(printf '\033')
	# a reference of i2 into i1 (depth 1; the first one may lie deeper)
	read -r addr _ < <("$EDIT" "$T/i2" show | awk 'NR > 1 && $3 == 1 { print; exit }')
	read -r _ off _ < <("$CRAC_BUILD_DIR/tests/image_edit" "$T/i1" chunk-at "$addr")
	mv "$T/i1" "$T/i1${esc}[31m"
	"$EDIT" "$T/i2" parent "../i1${esc}[31m"
	restore_ok 2 "$T/i2"
	ln -s "i1${esc}[31m" "$T/link"
	run clean "$CRAC" flatten "$T/i2" "$T/link"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"is an image below it ($T/i2/../i1\\x1b[31m)"* ]]
	run clean "$CRAC" flatten "$T/i2" "$T/link/x"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"is inside the image $T/i2/../i1\\x1b[31m:"* ]]
	# a damaged chunk of it, found by the restore and by flatten
	printf '\xff' | dd of="$T/i1${esc}[31m/pages" bs=1 seek=$((off + 100)) conv=notrunc status=none
	run --separate-stderr clean "$CRAC" restore --populate "$T/i2"
	echo "$stderr"
	[ "$status" -ne 0 ]
	[[ "$stderr" == *"page data checksum mismatch in chunk #"*"$T/i2/../i1\\x1b[31m): the pages file is damaged"* ]]
	[[ "$stderr" != *"$esc"* ]]
	run clean "$CRAC" flatten "$T/i2" "$T/flat"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"page data checksum mismatch in chunk #"*"$T/i2/../i1\\x1b[31m): the pages file is damaged"* ]]
	[[ "$output" != *"$esc"* ]]
}

@test "mremap and mprotect between checkpoints: moved onto, grown, moved with DONTUNMAP, moved back, mapped anew, PROT_NONE, huge pages, written by the kernel" {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 CRAC_IMAGE_STATS=1 \
		"$CRAC_BUILD_DIR/tests/incr_remap" "$T/r0" "$T/r1"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	echo "$stderr" | grep -q "MiB referenced from 1 image below"
	for opt in "" --populate; do
		run --separate-stderr clean "$CRAC" restore $opt "$T/r1"
		echo "restore $opt: status $status, stdout: $output, stderr: $stderr"
		[ "$status" -eq 0 ]
		[ "$output" = "ok remap" ]
	done
	run clean "$CRAC" flatten "$T/r1" "$T/flat"
	[ "$status" -eq 0 ]
	run --separate-stderr clean "$CRAC" restore "$T/flat"
	[ "$output" = "ok remap" ]
}

@test "a parent replaced after the loader opened the chain: the loader reads what it checked" {
	command -v strace >/dev/null || skip "no strace (it holds the loader between its checks and its reads)"
	chain
	# the loader's first munmap after the chain is open waits 1.5 s (the
	# first munmap is crac's own, before it runs the loader)
	spawn "$T/out" "$T/err" strace -f -qq -o "$T/trace" -e trace=openat,munmap \
		-e inject=munmap:delay_enter=1500000:when=2 "$CRAC" restore "$T/i2"
	rpid=$SPAWNED
	for _ in $(seq 500); do
		grep -q 'i1/../i0", O_RDONLY' "$T/trace" 2>/dev/null && break
		sleep 0.01
	done
	grep -q 'i1/../i0", O_RDONLY' "$T/trace"
	# i1 replaced meanwhile (by the image below it)
	mv "$T/i1" "$T/i1.orig"
	cp -a "$T/i0" "$T/i1"
	wait "$rpid" || true
	cat "$T/out" "$T/err"
	[ "$(cat "$T/out")" = "ok stage 2" ]
	# a restore that starts now sees the new i1, and refuses
	refused "$T/i2" "parent image $T/i2/../i1 of $T/i2 was replaced or changed"
}

@test "a checkpoint into a directory inside an image (its parent's) is refused: the image stays one" {
	start_sleep sleep 100
	run "$CRAC" checkpoint --keep-running --image-dir "$T/i0" "$pid"
	[ "$status" -eq 0 ]
	run "$CRAC" checkpoint --incremental --keep-running --image-dir "$T/i0/next" "$pid"
	echo "$output"
	[ "$status" -ne 0 ]
	echo "$output" | grep -q "image directory $T/i0/next would be inside the crac image $T/i0: an image directory holds only its header and pages; choose another directory"
	[ "$(ls "$T/i0")" = "$(printf 'header\npages')" ]
	# so it can still be replaced, and be a parent
	run "$CRAC" checkpoint --keep-running --image-dir "$T/i0" "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	run "$CRAC" checkpoint --incremental --image-dir "$T/i1" "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	run "$CRAC" inspect "$T/i1"
	echo "$output" | grep -q "^parent:    \.\./i0 "
	run clean timeout 2 "$CRAC" restore "$T/i1"
	[ "$status" -eq 124 ]
}

@test "a parent's pages file swapped (same size, header kept): restore, flatten and inspect all refuse" {
	chain
	size=$(stat -c %s "$T/i1/pages")
	head -c "$size" "$T/i0/pages" >"$T/other"
	cat "$T/other" >"$T/i1/pages"
	run --separate-stderr clean "$CRAC" restore "$T/i2"
	echo "restore: status $status, stdout: $output, stderr: $stderr"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"page data checksum mismatch in chunk #"*"$T/i2/../i1): the pages file is damaged" ]]
	run clean "$CRAC" flatten "$T/i2" "$T/flat"
	[ "$status" -eq 1 ]
	[ ! -e "$T/flat" ]
	# inspect reads what a restore reads: the chunks referenced below too
	run clean "$CRAC" inspect "$T/i2"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "^  data    ok: "
	echo "$output" | grep -q "^  chain   FAILED: page data checksum mismatch in chunk #[0-9]* (.*$T/i2/../i1): the pages file is damaged"
	run clean "$CRAC" inspect --json "$T/i2"
	echo "$output" | python3 -c 'import json, sys; d = json.load(sys.stdin); c = [x for x in d["checks"] if x["name"] == "chain"][0]; assert not c["ok"] and "checksum mismatch" in c["detail"], c'
	# a chain intact: ok, and says what it verified
	run clean env CRAC_IMAGE_INCREMENTAL=1 "$INCR" "$T/j0" "$T/j1" "$T/j2"
	[ "$status" -eq 0 ]
	run clean "$CRAC" inspect "$T/j2"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^  chain   ok: 2 images below, each as recorded: $T/j2/../j1, $T/j2/../j1/../j0; [0-9]* chunks referenced, crc32c ok"
}
