#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Carried kernel objects: epoll (src/objects/epoll.c). A program
# (tests/progs/obj_epoll) registers a TCP listener, an eventfd
# (edge-triggered), a pipe and a fired one-shot eventfd in an epoll
# instance, and that instance in a second one; checkpoints itself with the
# image engine, and every restored instance checks that the registrations
# came back with their events and data (a client connects: epoll_wait
# reports the listener with its data and accept works). Refused: a watched
# number closed and reused by another file; a watched descriptor a policy
# leaves out.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/obj_epoll"
	T="$(mktemp -d /tmp/crac-bats-epoll.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
}

teardown() {
	rm -rf "$T"
}

restored_ok() {
	restored_says quiet flags listener nested eventfd pipe oneshot
}

@test "epoll: registrations (listener, eventfd, pipe, nested, one-shot) with their data; restored twice" {
	require_image_engine
	run clean "$PROG" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	restored_ok
	restored_ok
}

@test "epoll watching a number closed and reused by another file is refused" {
	require_image_engine
	run clean "$PROG" "$T/img" reused
	echo "$output"
	[ "$status" -eq 3 ]
	echo "$output" | grep -Eq "watches fd [0-9]+, which no longer holds the watched (open )?file \(it was closed there"
	[ ! -e "$T/img" ]
}

@test "epoll watching a number closed while its file stays open elsewhere is refused" {
	require_image_engine
	run clean "$PROG" "$T/img" closed
	echo "$output"
	[ "$status" -eq 3 ]
	echo "$output" | grep -Eq "watches fd [0-9]+, which no longer holds the watched file \(it was closed there, the file staying open elsewhere\): the registration cannot be made again at that number"
	[ ! -e "$T/img" ]
}

@test "epoll watching a descriptor a policy leaves out is refused" {
	require_image_engine
	run clean "$PROG" "$T/img" omitted
	echo "$output"
	[ "$status" -eq 3 ]
	echo "$output" | grep -Eq "fd 3 \(anon_inode:\[eventpoll\]\): watches fd 4, which is not carried \(a policy leaves it out\)"
	[ ! -e "$T/img" ]
}

@test "unprivileged: epoll checkpointed and restored as nobody" {
	require_image_engine
	need_nobody "$PROG"
	chown 65534:65534 "$T"
	run clean $NOBODY "$PROG" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	run clean $NOBODY "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "restored ok"
}

@test "hostile registrations (a number the image does not hold, the instance itself, a count that does not add up): refused before the point of no return" {
	require_image_engine
	run clean "$PROG" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	cp -a "$T/img" "$T/orig"
	# fd 3 is the inner instance; its first registration's target number
	# is the blob's first word
	for edit in "blob32 0 999:watches fd 999, which the image does not hold" \
		    "blob32 0 3:watches fd 3, itself" \
		    "blob32 0 0x80000000:watches a negative descriptor number" \
		    "u 0 99:its registrations in the image do not add up"; do
		rm -rf "$T/img"
		cp -a "$T/orig" "$T/img"
		"$CRAC_BUILD_DIR/tests/obj_edit" "$T/img" 3 ${edit%%:*}
		run clean "$CRAC" restore "$T/img"
		echo "$output"
		[ "$status" -eq 1 ]
		[ "${#lines[@]}" -eq 1 ]
		echo "$output" | grep -qF "fd 3 (epoll): ${edit#*:}"
		# the check's refusal (crac inspect's), before the point of no return
		run clean "$CRAC" inspect "$T/img"
		echo "$output" | grep -qF "fd 3 (epoll): ${edit#*:}"
	done
}
