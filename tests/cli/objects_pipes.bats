#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Carried kernel objects: pipes and FIFOs (src/objects/pipe.c). A program
# (tests/progs/obj_pipes) makes pipes whose ends are all its own (unread
# content, a larger pipe size, O_NONBLOCK and FD_CLOEXEC, a closed writer
# or reader, a second open of an end) and a FIFO with unread content,
# checkpoints itself with the image engine, and every restored instance
# checks each object. Refused with a clear line: a pipe to another
# process, content written in packet mode; at restore, a FIFO whose path
# is gone or is another FIFO now.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/obj_pipes"
	T="$(mktemp -d /tmp/crac-bats-pipes.XXXXXX)"
	chmod 755 "$T"
	mkdir -m 755 "$T/work"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
	HOLDER=
}

teardown() {
	[ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null
	rm -rf "$T"
}

checkpoint() {
	run clean "$PROG" "$T/img" "$T/work" "$@"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -d "$T/img" ]
}

restored_ok() {
	restored_says "pipe content" "pipe flags" "big size" "big content" eof epipe "reopened content" \
		    "reopened flags" "reopened same pipe" "fifo same" "fifo content" "fifo again" "fifo flags"
}

@test "pipes and a FIFO: unread content, sizes and flags, restored twice" {
	checkpoint
	restored_ok
	restored_ok
}

@test "FIFO kept open by another process: its content is not given twice" {
	mkfifo -m 600 "$T/work/fifo"
	# another process holds the FIFO open from before the checkpoint to
	# after the restore: the content stays in the kernel's pipe
	sleep 600 <>"$T/work/fifo" 3>&- &
	HOLDER=$!
	checkpoint
	restored_ok    # reads it from the kernel's pipe (exactly 9 bytes)
	restored_ok    # the first restore took it: written back from the image
}

@test "unprivileged: checkpoint and restore as nobody" {
	need_nobody "$PROG"
	chown 65534:65534 "$T" "$T/work"
	run clean $NOBODY "$PROG" "$T/img" "$T/work"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(stat -c %u "$T/img/pages")" = 65534 ]
	run clean $NOBODY "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "restored ok"
}

@test "refused: a pipe whose other end is in another process" {
	run clean "$PROG" "$T/img" "$T/work" child
	echo "$output"
	[ "$status" -eq 3 ]
	echo "$output" | grep -q "check fd [0-9]*: .*pipe pipe:\[[0-9]*\] (pipe, write end): its other end is not in this process (a pipe to another process cannot be carried)"
	[ ! -e "$T/img" ]
}

@test "refused: unread content written in packet mode (O_DIRECT)" {
	run clean "$PROG" "$T/img" "$T/work" packet
	echo "$output"
	[ "$status" -eq 3 ]
	echo "$output" | grep -q "its unread content was written in packet mode (O_DIRECT): the packet boundaries cannot be kept"
	[ ! -e "$T/img" ]
}

@test "refused at restore: the FIFO's path is gone" {
	checkpoint
	rm "$T/work/fifo"
	refused_restore "$T/img"
	[[ "$REASON" =~ ^fd\ [0-9]+\ \(fifo\):\ $T/work/fifo:\ No\ such\ file\ or\ directory ]]
}

@test "refused at restore: the FIFO's path is another FIFO now" {
	checkpoint
	# made while the old one still exists: another inode number
	mkfifo "$T/work/fifo.new"
	mv "$T/work/fifo.new" "$T/work/fifo"
	refused_restore "$T/img"
	[[ "$REASON" =~ ^fd\ [0-9]+\ \(fifo\):\ $T/work/fifo\ changed\ since\ the\ checkpoint\ \(its\ inode ]]
}

@test "refused at restore: the FIFO removed and made again (the same inode number, often)" {
	checkpoint
	rm "$T/work/fifo"
	mkfifo "$T/work/fifo"
	refused_restore "$T/img"
	# a new inode number is seen before the restore starts; the same
	# number, by the FIFO's birth time when it is opened again
	[[ "$REASON" =~ ^fd\ [0-9]+\ \(fifo\):\ $T/work/fifo\ changed\ since\ the\ checkpoint\ \(its\ inode ]] ||
	# refused before the point of no return, by the check crac inspect runs too
	[[ "$REASON" =~ ^fd\ [0-9]+\ \(fifo\):\ $T/work/fifo\ changed\ since\ the\ checkpoint\ \(its\ birth\ time\ \(it\ was\ made\ again\)\ differs\)$ ]]
}

@test "refused at restore: unread content damaged in the pages file" {
	checkpoint
	# the FIFO (the last descriptor) has the last content of the pages
	# file: "fifo data" at the start of its last page
	size=$(stat -c %s "$T/img/pages")
	printf g | dd of="$T/img/pages" bs=1 seek=$((size - 4096)) conv=notrunc status=none
	refused_restore "$T/img"
	[[ "$REASON" =~ ^fd\ [0-9]+\ \(fifo\ $T/work/fifo\):\ its\ unread\ content\ in\ the\ pages\ file\ is\ damaged\ \(checksum\) ]]
}

@test "damaged unread content: crac inspect says so and crac flatten refuses it, nothing at OUT" {
	checkpoint
	size=$(stat -c %s "$T/img/pages")
	printf g | dd of="$T/img/pages" bs=1 seek=$((size - 4096)) conv=notrunc status=none
	# inspect read every chunk and said "restorable here": the descriptors'
	# content in the pages file has a crc32c of its own, checked too now
	run "$CRAC" inspect "$T/img"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -Eq "^  data +FAILED: $T/img/pages: checksum mismatch in the content of fd [0-9]+ \\([0-9]+ bytes at [0-9]+\\)$"
	! echo "$output" | grep -q "restorable here" || false
	# flatten copied it as it was and said it was written and verified
	run --separate-stderr "$CRAC" flatten "$T/img" "$T/flat"
	echo "status $status, stdout: $output, stderr: $stderr"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[[ "$stderr" =~ ^crac:\ flatten\ $T/img:\ the\ content\ of\ fd\ [0-9]+\ in\ the\ pages\ file\ is\ damaged\ \(checksum\ mismatch\)$ ]]
	[ ! -e "$T/flat" ]
	[ -z "$(ls "$T" | grep '^flat')" ]
}

@test "a pipe larger than this user may make: refused before the point of no return, naming the size" {
	# root with CAP_SYS_RESOURCE may make any: nothing to refuse
	cap=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
	[ $(( 0x$cap >> 24 & 1 )) -eq 0 ] || skip "CAP_SYS_RESOURCE here: pipes of any size"
	checkpoint
	# fd 3 is the first end of the first pipe; 64 MiB is above fs.pipe-max-size
	"$CRAC_BUILD_DIR/tests/obj_edit" "$T/img" 3 u 0 0x4000000
	run clean "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	echo "$output" | grep -q "fd 3 (pipe): a pipe of 67108864 bytes cannot be made here (above fs.pipe-max-size it takes CAP_SYS_RESOURCE"
	run clean "$CRAC" inspect "$T/img"
	echo "$output" | grep -q "fd 3 (pipe): a pipe of 67108864 bytes cannot be made here"
}
