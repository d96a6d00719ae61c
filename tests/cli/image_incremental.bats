#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Incremental checkpoints (CRAC_IMAGE_INCREMENTAL=1): a process checkpointed
# with keep-running, or restored from an image made with incremental
# checkpoints asked for, checkpoints again writing only the pages it wrote
# since; the new image references its parent, and a restore follows the
# chain. tests/progs/image_incr.c changes pages, drops pages with
# MADV_DONTNEED, lets the kernel write a page (read(2)), maps and unmaps
# mappings and forks between its checkpoints, and checks every page of every
# stage after each restore: eager (--populate), default (lazy where the user
# may), restored from a chain of three, and as nobody. A missing, replaced or
# damaged parent refuses the restore with one line naming it.

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup incr
	INCR="$CRAC_BUILD_DIR/tests/image_incr"
}

teardown() {
	[ -z "${pid:-}" ] || kill "$pid" 2>/dev/null || true
	rm -rf "$T"
}

# chain [AS...]: image_incr writes $T/i0 (full), $T/i1 and $T/i2 (incremental).
chain() {
	run --separate-stderr clean "$@" env CRAC_IMAGE_INCREMENTAL=1 CRAC_IMAGE_STATS=1 CRAC_LOG=info \
		"$INCR" "$T/i0" "$T/i1" "$T/i2"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	echo "$stderr" | grep -q "a full image was written to $T/i0: this process has no image to be incremental to"
	echo "$stderr" | grep -q "MiB referenced from 1 image below"
	echo "$stderr" | grep -q "MiB referenced from 2 images below"
}

@test "a chain of three: every stage restores exactly, eager and by default" {
	AS=()
	chain
	# the later images hold only what changed
	[ "$(stat -c %s "$T/i1/pages")" -lt "$(( $(stat -c %s "$T/i0/pages") / 2 ))" ]
	[ "$(stat -c %s "$T/i2/pages")" -lt "$(( $(stat -c %s "$T/i0/pages") / 2 ))" ]
	for s in 0 1 2; do
		restore_ok $s "$T/i$s"
		restore_ok $s "$T/i$s" --populate
	done
}

@test "a restored process checkpoints incrementally against the image it came from" {
	AS=()
	chain
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 CRAC_IMAGE_STATS=1 "$CRAC" restore "$T/i1" -- next "$T/i3"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok stage 1" ]
	echo "$stderr" | grep -q "MiB referenced from 2 images below"
	restore_ok 2 "$T/i3"
	restore_ok 2 "$T/i3" --populate
	# the whole directory moves: the parents are named relative to it
	mv "$T" "$T.moved"
	T0="$T"
	T="$T.moved"
	restore_ok 2 "$T/i3"
	mv "$T" "$T0"
	T="$T0"
}

@test "a missing parent refuses with one line naming it" {
	AS=()
	chain
	mv "$T/i1" "$T/i1.away"
	run --separate-stderr clean "$CRAC" restore "$T/i2"
	echo "stderr: $stderr"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$(echo "$stderr" | wc -l)" -eq 1 ]
	echo "$stderr" | grep -q "^crac: restore $T/i2: parent image $T/i2/../i1 of $T/i2 is missing: "
	# an image two levels below
	mv "$T/i1.away" "$T/i1"
	mv "$T/i0" "$T/i0.away"
	run --separate-stderr clean "$CRAC" restore "$T/i2"
	echo "stderr: $stderr"
	[ "$status" -eq 1 ]
	echo "$stderr" | grep -q "image $T/i2/../i1/../i0, 2 levels below $T/i2 is missing"
}

@test "a replaced parent refuses; a damaged one too" {
	AS=()
	chain
	# i1 replaced by another image (the same process's first one)
	mv "$T/i1" "$T/i1.orig"
	cp -a "$T/i0" "$T/i1"
	run --separate-stderr clean "$CRAC" restore "$T/i2"
	echo "stderr: $stderr"
	[ "$status" -eq 1 ]
	[ "$(echo "$stderr" | wc -l)" -eq 1 ]
	echo "$stderr" | grep -q "parent image $T/i2/../i1 of $T/i2 was replaced or changed since the image above it was written"
	rm -rf "$T/i1"
	mv "$T/i1.orig" "$T/i1"
	restore_ok 2 "$T/i2"
	# a byte of i0's page data flipped: its chunk's checksum says so
	size=$(stat -c %s "$T/i0/pages")
	printf '\xff' | dd of="$T/i0/pages" bs=1 seek=$((size / 2)) conv=notrunc status=none
	run --separate-stderr clean "$CRAC" restore --populate "$T/i2"
	echo "stderr: $stderr"
	[ "$status" -eq 1 ]
	echo "$stderr" | grep -q "page data checksum mismatch in chunk #[0-9]* (.*$T/i2/../i1/../i0): the pages file is damaged"
}

@test "an image cannot be its own parent: a full image, said why" {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 CRAC_LOG=info "$INCR" "$T/i0" "$T/i0" "$T/i2"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	echo "$stderr" | grep -q "a full image was written to $T/i0: $T/i0 is its own parent image"
	AS=()
	restore_ok 1 "$T/i0"
	restore_ok 2 "$T/i2"
}

@test "without CRAC_IMAGE_INCREMENTAL every image is full" {
	run --separate-stderr clean env CRAC_IMAGE_STATS=1 "$INCR" "$T/i0" "$T/i1" "$T/i2"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	! echo "$stderr" | grep -q "referenced from" || false
	rm -rf "$T/i0" "$T/i1"
	AS=()
	restore_ok 2 "$T/i2"
}

@test "a stopped thread that writes late: the image is written once it is at rest" {
	# CRAC_TEST_LATE_REST_MS: the stop handler goes on writing its stack
	# after the thread was counted as stopped (a thread preempted there).
	# Before the engine waited for it to be at rest, about every second
	# image here held a chunk whose bytes were not those of its crc.
	run --separate-stderr clean env CRAC_TEST_LATE_REST_MS=400 "$CRAC_BUILD_DIR/tests/image_late_rest" "$T" 8
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	AS=()
	for k in 1 2 3 4 5 6 7 8; do
		run --separate-stderr clean "$CRAC" restore --populate "$T/c$k"
		echo "restore $T/c$k: status $status, stdout: $output, stderr: $stderr"
		[ "$status" -eq 0 ]
		[ "$output" = "ok $k" ]
	done
}

@test "unprivileged: a chain as nobody" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to switch to nobody"
	command -v setpriv >/dev/null || skip "no setpriv"
	setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$INCR" || skip "build tree not accessible to nobody"
	chown 65534:65534 "$T"
	AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	chain "${AS[@]}"
	for s in 0 1 2; do
		restore_ok $s "$T/i$s"
	done
	run --separate-stderr clean "${AS[@]}" env CRAC_IMAGE_INCREMENTAL=1 CRAC_IMAGE_STATS=1 "$CRAC" restore "$T/i2" -- next "$T/i3"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	echo "$stderr" | grep -q "MiB referenced from 3 images below"
	restore_ok 3 "$T/i3"
}

@test "crac inspect shows the chain, and a broken one" {
	AS=()
	chain
	run clean "$CRAC" inspect "$T/i2"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^parent:    \.\./i1 (header crc32c 0x[0-9a-f]*; 2 images below; [0-9.]* MiB taken from them in [0-9]* ranges)"
	echo "$output" | grep -q "^tracking:  a restored process tracks the pages it writes"
	echo "$output" | grep -q "^  chain   ok: 2 images below, each as recorded: $T/i2/../i1, $T/i2/../i1/../i0"
	run clean "$CRAC" inspect --json "$T/i2"
	[ "$status" -eq 0 ]
	echo "$output" | python3 -c 'import json, sys; d = json.load(sys.stdin); p = d["parent"]; assert p["path"] == "../i1" and p["depth"] == 2 and p["refs"] > 0 and d["tracking"], d'
	run clean "$CRAC" inspect "$T/i0"
	! echo "$output" | grep -q "^parent:" || false
	mv "$T/i0" "$T/i0.away"
	run clean "$CRAC" inspect "$T/i2"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "^  chain   FAILED: image $T/i2/../i1/../i0, 2 levels below $T/i2 is missing"
}

@test "crac inspect: a mapping's L counts the pages it takes from the images below, as the loader does" {
	AS=()
	chain
	run clean "$CRAC" inspect --json "$T/i2"
	[ "$status" -eq 0 ]
	# big's last part (15 MiB, after the pages made read-only): little of
	# its own in i2, the rest taken from i1 and i0: lazy, as the loader
	# plans it
	echo "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
big = [m for m in d["mappings"] if m["mapped"] >= 14 << 20 and m["kind"] == "anon"]
assert len(big) == 1, big
m = big[0]
assert m["stored"] < 1 << 19 and m["stored"] + m["below"] >= 1 << 20 and m["lazy"], m
print("%x" % m["start"])' >"$T/big"
	run clean "$CRAC" inspect "$T/i2"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -Eq "^mappings: .* MiB stored, [0-9.]+ MiB taken from images below \([0-9.]+ MiB of them lazy where userfaultfd allows: L\)$"
	echo "$output" | grep -Eq "^  0*$(cat "$T/big") [0-9a-f]+ rw-p anon +[0-9]+K +[0-9]+K L *$"
	run clean "$CRAC" inspect --json "$T/i0"
	echo "$output" | python3 -c 'import json, sys; d = json.load(sys.stdin); assert all(m["below"] == 0 for m in d["mappings"])'
	# and the loader agrees: lazily restored, every page exact
	run --separate-stderr clean "$CRAC" restore --lazy --stats "$T/i2"
	if [ "$status" -ne 0 ] && echo "$stderr" | grep -q -- "--lazy: lazy restore needs"; then
		return 0   # no userfaultfd for kernel faults here: inspect's part is tested
	fi
	echo "$output / $stderr"
	[ "$output" = "ok stage 2" ]
	echo "$stderr" | grep -Eq "^crac: loader: .* mappings, [1-9][0-9]* by userfaultfd, [1-9][0-9]* of them with pages of images below\)"
}

@test "crac flatten: one image that restores without the chain" {
	AS=()
	chain
	run clean "$CRAC" flatten "$T/i2" "$T/flat"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^$T/flat: [0-9]* chunks, [0-9.]* MiB of page data (2 images below merged)"
	mv "$T/i0" "$T/i0.away"
	mv "$T/i1" "$T/i1.away"
	run clean "$CRAC" inspect "$T/flat"
	echo "$output"
	[ "$status" -eq 0 ]
	! echo "$output" | grep -q "^parent:" || false
	restore_ok 2 "$T/flat"
	restore_ok 2 "$T/flat" --populate
	# the chain missing: flatten refuses like a restore, nothing written
	run clean "$CRAC" flatten "$T/i2" "$T/flat2"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "flatten $T/i2: parent image $T/i2/../i1 of $T/i2 is missing"
	[ ! -e "$T/flat2" ]
	[ -z "$(ls "$T" | grep tmp)" ]
	# never over an image below it
	mv "$T/i0.away" "$T/i0"
	mv "$T/i1.away" "$T/i1"
	run clean "$CRAC" flatten "$T/i2" "$T/i1"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "is an image below it"
	restore_ok 2 "$T/i2"
	# in place
	run clean "$CRAC" flatten "$T/i2" "$T/i2"
	[ "$status" -eq 0 ]
	rm -rf "$T/i0" "$T/i1"
	restore_ok 2 "$T/i2"
}

@test "an unmodified program under crac run, checkpointed from outside" {
	export CRAC_CONTROL_DIR="$T/ctl"
	CRAC_IMAGE_INCREMENTAL=1 spawn "$T/out" "$T/out" "$CRAC" run -- sleep 100
	pid=$SPAWNED
	wait_sock "$CRAC_CONTROL_DIR/$pid.sock"
	for d in i0 i1; do
		run "$CRAC" checkpoint --keep-running --image-dir "$T/$d" "$pid"
		echo "$output"
		[ "$status" -eq 0 ]
	done
	run "$CRAC" checkpoint --image-dir "$T/i2" "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	wait_gone "$pid" 5
	run "$CRAC" inspect "$T/i2"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^parent:    \.\./i1 (header crc32c 0x[0-9a-f]*; 2 images below"
	run clean timeout 2 "$CRAC" restore "$T/i2"
	echo "$output"
	[ "$status" -eq 124 ]   # sleep 100 runs again, until timeout stops it
}

@test "crac checkpoint --incremental: the option alone, without the environment" {
	export CRAC_CONTROL_DIR="$T/ctl"
	spawn "$T/out" "$T/out" "$CRAC" run -- sleep 100
	pid=$SPAWNED
	wait_sock "$CRAC_CONTROL_DIR/$pid.sock"
	# the first: full (nothing to be incremental to), said at info level
	run "$CRAC" -v checkpoint --incremental --keep-running --image-dir "$T/i0" "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	# without the option: full, no parent
	run "$CRAC" checkpoint --keep-running --image-dir "$T/f1" "$pid"
	[ "$status" -eq 0 ]
	run "$CRAC" inspect "$T/f1"
	! echo "$output" | grep -q "^parent:" || false
	# with it: references the last image it was checkpointed into with
	# --incremental (tracking goes on through the full one in between)
	run "$CRAC" checkpoint --incremental --image-dir "$T/i1" "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	wait_gone "$pid" 5
	run "$CRAC" inspect "$T/i1"
	echo "$output"
	echo "$output" | grep -q "^parent:    \.\./i0 (header crc32c 0x[0-9a-f]*; 1 image below"
	run clean timeout 2 "$CRAC" restore "$T/i1"
	[ "$status" -eq 124 ]
}

@test "an incremental image is written with O_DIRECT by default (no page cache to fill), CRAC_IMAGE_WRITER=splice keeps it" {
	AS=()
	chain
	echo "$stderr" | grep "checkpoint stats" >"$T/stats"
	cat "$T/stats"
	[ "$(wc -l <"$T/stats")" -eq 3 ]
	# the full image: vmsplice + splice; the incremental ones: O_DIRECT where
	# the file system takes it (else splice, saying why)
	sed -n 1p "$T/stats" | grep -q "written with vmsplice+splice (the default)"
	if [ "$(stat -f -c %T "$T")" = tmpfs ] && ! sed -n 2p "$T/stats" | grep -q "O_DIRECT"; then
		sed -n 2p "$T/stats" | grep -q "the file system refuses O_DIRECT"
	else
		[ "$(grep -Ec "written with O_DIRECT( by a helper on the other CPU)? \(the default for an incremental image\)" "$T/stats")" -eq 2 ]
	fi
	for s in 0 1 2; do restore_ok $s "$T/i$s" --populate; done
	rm -rf "$T"/i[0-2]
	chain env CRAC_IMAGE_WRITER=splice
	[ "$(echo "$stderr" | grep -c "written with vmsplice+splice (CRAC_IMAGE_WRITER=splice)")" -eq 3 ]
	restore_ok 2 "$T/i2"
}
