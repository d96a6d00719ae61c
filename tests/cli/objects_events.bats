#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Carried kernel objects: eventfd, timerfd, signalfd and memfd
# (src/objects/eventfd.c, timerfd.c, signalfd.c, memfd.c). A program
# (tests/progs/obj_events) makes them, checkpoints itself with the image
# engine, and every restored instance checks each: counters (one above 32
# bits, a semaphore), timers (relative time counted from the restore,
# interval, unread expirations, absolute CLOCK_REALTIME and CLOCK_MONOTONIC
# times kept, disarmed), the signalfd mask, memfd name, content, offset,
# seals and holes. Refused with a clear line: a memfd also mapped by the
# process, a memfd too large for an image; at restore, memfd content
# damaged in the pages file.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/obj_events"
	T="$(mktemp -d /tmp/crac-bats-events.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
}

teardown() {
	rm -rf "$T"
}

checkpoint() {
	run clean "$PROG" "$T/img" "$@"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -d "$T/img" ]
}

restored_ok() {
	restored_says "eventfd counter" "eventfd nonblock" "eventfd wide counter" "eventfd blocking" \
		    "eventfd semaphore" "timer relative" "timer interval" "timer periodic fires" \
		    "timer pending expiration" "timer pending expirations" "timer absolute realtime" \
		    "timer absolute monotonic" "timer disarmed" "signalfd mask" "signalfd reads" \
		    "memfd name" "memfd content" "memfd offset" "memfd seals" "memfd opened again" "memfd sparse"
}

@test "eventfd, timerfd, signalfd, memfd: restored twice, the second time 2 s later" {
	checkpoint
	restored_ok
	# a relative timer armed for 3 s still has more than 2 s left: its time
	# counts from the restore (the program checks it); absolute ones keep
	# their time
	sleep 2
	restored_ok
}

@test "restore --timens: an absolute CLOCK_MONOTONIC timer keeps its time in the namespace's clock" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to create a time namespace"
	checkpoint
	sleep 2
	# the namespace's monotonic clock continues from the checkpoint: the
	# absolute timer is due when it was (the program compares its time
	# left with the clock it sees), the relative one counts from the restore
	run clean "$CRAC" restore --timens "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	! echo "$output" | grep -q FAIL || false
	echo "$output" | grep -qx "ok timer absolute monotonic"
	echo "$output" | grep -qx "ok timer relative"
	echo "$output" | grep -qx "restored ok"
}

@test "unprivileged: checkpoint and restore as nobody" {
	need_nobody "$PROG"
	chown 65534:65534 "$T"
	run clean $NOBODY "$PROG" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	run clean $NOBODY "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	! echo "$output" | grep -q FAIL || false
	echo "$output" | grep -qx "restored ok"
}

@test "refused: a memfd the process also maps" {
	run clean "$PROG" "$T/img" mapped
	echo "$output"
	[ "$status" -eq 3 ]
	echo "$output" | grep -q "check fd [0-9]*: .*memfd /memfd:shared-map (deleted) (memfd, 4096 bytes): it is also mapped by the process (at 0x[0-9a-f]*): a restored mapping is a copy of its own, no longer the memfd's memory; close the descriptor before the checkpoint, or unmap it"
	[ ! -e "$T/img" ]
}

@test "refused: a memfd too large for an image" {
	run clean "$PROG" "$T/img" huge
	echo "$output"
	[ "$status" -eq 3 ]
	echo "$output" | grep -q "check fd [0-9]*: .*memfd /memfd:huge (deleted) (memfd, 104857600 bytes): it is too large to be carried (104857600 bytes; at most 67108864 are stored in an image)"
	[ ! -e "$T/img" ]
}

@test "refused at restore: memfd content damaged in the pages file" {
	checkpoint
	# the sparse memfd's content is the last 8 MiB of the pages file; its
	# one written byte ('x') is 4 MiB before the end
	size=$(stat -c %s "$T/img/pages")
	printf y | dd of="$T/img/pages" bs=1 seek=$((size - (4 << 20))) conv=notrunc status=none
	refused_restore "$T/img"
	echo "$stderr" | grep -q "fd [0-9]* (memfd plain): its content in the pages file is damaged (checksum)"
}

@test "memfds restore where vm.memfd_noexec=1 (a pid namespace of its own): an executable one stays so" {
	[ "$(id -u)" -eq 0 ] || skip "a pid namespace needs root (uid $(id -u))"
	command -v unshare >/dev/null || skip "no unshare"
	checkpoint
	# made under memfd_noexec=0: mode 0777; memfd_create without MFD_EXEC
	# under 1 gave a memfd sealed against exec, and its fchmod failed
	# after the point of no return
	run clean unshare -pf --mount-proc sh -c \
		'echo 1 >/proc/sys/vm/memfd_noexec 2>/dev/null || exit 77; exec "$0" restore "$1"' "$CRAC" "$T/img"
	echo "$output"
	[ "$status" -ne 77 ] || skip "vm.memfd_noexec cannot be set here"
	[ "$status" -eq 0 ]
	! echo "$output" | grep -q FAIL || false
	echo "$output" | grep -qx "restored ok"
	echo "$output" | grep -qx "ok memfd seals"
}

@test "where vm.memfd_noexec=2 forbids an executable memfd: refused before the point of no return, naming it" {
	[ "$(id -u)" -eq 0 ] || skip "a pid namespace needs root (uid $(id -u))"
	command -v unshare >/dev/null || skip "no unshare"
	checkpoint
	# the memfd of mode 0777 needs MFD_EXEC, which 2 refuses: the loader
	# found it only after its point of no return, and the process died
	run --separate-stderr clean unshare -pf --mount-proc sh -c \
		'echo 2 >/proc/sys/vm/memfd_noexec 2>/dev/null || exit 77; exec 3>"$2"; CRAC_LOADER_PONR_FD=3 exec "$0" restore "$1"' \
		"$CRAC" "$T/img" "$T/ponr"
	echo "status $status"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -ne 77 ] || skip "vm.memfd_noexec cannot be set here"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ ! -s "$T/ponr" ]
	echo "$stderr" | grep -q "fd [0-9]* (memfd): cannot create an executable memfd (vm.memfd_noexec=2 forbids them here)"
}

@test "a timerfd on a clock no timer can be made on here: refused before the point of no return, naming the clock" {
	checkpoint
	# fd 6 is the first timerfd; clock 99 does not exist
	"$CRAC_BUILD_DIR/tests/obj_edit" "$T/img" 6 u 0 99
	refused_restore "$T/img"
	echo "$stderr" | grep -q "fd 6 (timerfd): a timer on its clock (99) cannot be made here: Invalid argument"
	run clean "$CRAC" inspect "$T/img"
	echo "$output" | grep -q "fd 6 (timerfd): a timer on its clock (99) cannot be made here"
}
