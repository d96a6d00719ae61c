#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The working set (IMAGE/working-set): the first lazy restore of an image
# records the pages the program touches in its first 50 ms, later ones load
# them first, each page verified alone against the crc recorded for it. A
# hint only: a file that is not the image's own (link, FIFO, other owner,
# writable by others, damaged, stale) is not used, a page that does not
# match is left to the normal path (which verifies its whole chunk and
# stops the process on damage), and every scenario of tests/progs/image_lazy.c
# comes back exact while it loads, with faults served meanwhile.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	LAZY="$CRAC_BUILD_DIR/tests/image_lazy"
	EDIT="$CRAC_BUILD_DIR/tests/image_edit"
	T="$(mktemp -d /tmp/crac-bats-ws.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOADER CRAC_LAZY_PREFETCH \
		CRAC_WORKING_SET CRAC_TEST_WS_SLOW
	# Recording for 1 s, not 50 ms: what a recording restore writes must
	# not depend on the scheduler. Under CI load the program once touched
	# no page in its first 50 ms, the working set was empty, and a check of
	# what the next restore loaded failed. (Tests that need longer set
	# their own.)
	export CRAC_TEST_WS_RECORD_MS=1000
	# The working set used to order the loading only: "read" goes through
	# all of the big mapping, which would otherwise be loaded eagerly once
	# its working set shows that (the test of that sets its own).
	export CRAC_WORKING_SET=lazy
	require_image_engine
}

teardown() {
	# a restore left waiting by a failed start_waiting (timeout passes the signal on)
	[ -z "${PID:-}" ] || kill "$PID" 2>/dev/null || true
	rm -rf "$T"
}

# checkpoint [DIR]: image_lazy (32 MiB mapping) into DIR ($T/img)
checkpoint() {
	run clean "$LAZY" "${1:-$T/img}"
	echo "$output"
	[ "$status" -eq 0 ]
	BIG=$(echo "$output" | sed -n 's/^big=\(0x[0-9a-f]*\) .*/\1/p')
	[ -n "$BIG" ]
}

# restore [ENV=V...] -- ARGS: crac restore --stats of $T/img; $output, $stderr
restore() {
	local envs=()
	while [ "$1" != "--" ]; do envs+=("$1"); shift; done
	shift
	run --separate-stderr clean env "${envs[@]}" timeout 60 "$CRAC" restore --stats "$T/img" -- "$@"
	echo "status $status"
	echo "stdout: $output"
	echo "stderr: $stderr"
}

# record: the first restore, which writes the working set (skips without lazy)
record() {
	restore -- read
	if [ "$status" -ne 0 ] && echo "$stderr" | grep -q -- "lazy restore needs"; then
		skip "no userfaultfd for kernel faults here"
	fi
	if echo "$stderr" | grep -q "lazy: .*eager\|restore was eager"; then
		skip "restore is eager here: $stderr"
	fi
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	echo "$stderr" | grep -Eq "^crac: working set: recording it: [0-9]+ pages written$"
	[ -f "$T/img/working-set" ]
	[ ! -L "$T/img/working-set" ]
}

# loaded_first: the last restore loaded N > 0 pages of the working set first
loaded_first() {
	local n
	n=$(echo "$stderr" | sed -n 's/^crac: working set: loaded first: \([0-9]*\) of [0-9]* pages in .*/\1/p')
	[ -n "$n" ]
	[ "$n" -gt 0 ]
}

# used_next [ENV=V...]: the next restore (with ENV) loads pages of the
# working set first (loaded_first) and comes back exact. The program is
# "wait0", which touches nothing of the big mapping until told to go (once
# everything is in: its working-set line said): a program's own faults
# come first and load whole chunks, and "read" on a loaded machine got
# through the chunks of all 256 pages loaded first before the thread
# did ("loaded first: 0 of 4096 pages ... (256 gone through)").
used_next() {
	WAIT_OPTS=--stats start_waiting wait0 "$@"
	ws_said
	finish_waiting
	[ "$status" -eq 0 ]
	[ "$output" = "ok wait0" ]
	loaded_first
}

# restored_below PID: RPID, the restored image_lazy below PID (subshells,
# timeout) once it is there, else empty. Shell builtins only (a children
# file has no newline at its end: read fails, having read it).
restored_below() {
	local p=$1 c i
	RPID=
	for i in 1 2 3 4 5; do
		c=
		read -r c 2> /dev/null < "/proc/$p/comm" || :
		[ "$c" != image_lazy ] || { RPID=$p; return 0; }
		p=
		read -r p _ 2> /dev/null < "/proc/$1/task/$1/children" || :
		[ -n "$p" ] || return 0
		set -- "$p"
	done
}

# unclaim_caught PID: PID (timeout, started with crac restore of an image
# under CRAC_TEST_WS_DAMAGE=1 CRAC_TEST_WS_UNCLAIM_SLOW=1) has a restored
# process, RPID, whose thread crac-ws-writer sleeps (nanosleep, system
# call 35: with these hooks only in the second before it removes a claim
# whose read-back failed; WRITER, its id): RPID is stopped, and true if
# the claim still holds the name (the writer has not begun to remove it).
# Else false, RPID not stopped: the writer got past its second first (a
# machine too loaded), or was never seen in 60 s. Shell builtins only, no
# command started (a fork is slow on a loaded machine, and this second is
# all there is): it pauses on a FIFO nobody writes.
unclaim_caught() {
	local t c n i l nv rc=1
	RPID= WRITER=
	mkfifo "$T/never"
	exec {nv}<> "$T/never"
	for ((i = 0; i < 3000 && rc == 1; i++)); do
		[ -n "$RPID" ] || restored_below "$1"
		for t in ${RPID:+/proc/$RPID/task/*}; do
			c= n=
			read -r c 2> /dev/null < "$t/comm" || :
			[ "$c" = crac-ws-writer ] || continue
			read -r n _ 2> /dev/null < "$t/syscall" || :
			[ "$n" = 35 ] || continue
			kill -STOP "$RPID"
			if [ -e "$T/img/working-set" ]; then
				WRITER=${t##*/}
				rc=0
			else
				kill -CONT "$RPID"
				rc=2
			fi
			break
		done
		[ "$rc" -eq 1 ] || break
		# (over: the writer came and went between two looks)
		while read -r l; do
			[ "${l#crac: working set:}" = "$l" ] || rc=3
		done 2> /dev/null < "$T/err"
		kill -0 "$1" 2> /dev/null || rc=4
		read -r -t 0.02 -u "$nv" l || :
	done
	exec {nv}>&-
	rm -f "$T/never"
	echo "unclaim_caught: $rc (0: caught, 1: not seen, 2: claim gone, 3: over, 4: restore gone)"
	[ "$rc" -eq 0 ]
}

@test "the first lazy restore records the working set; later ones load it first, every scenario exact while it loads" {
	checkpoint
	record
	# the user's file, like the image's own: regular, rw------- (it holds
	# the addresses and a crc32c of each page the program touched first:
	# not for other users even where the directory is readable), no
	# temporary left
	[ "$(stat -c '%u %a' "$T/img/working-set")" = "$(id -u) 600" ]
	[ "$(stat -c '%a' "$T/img/header")" = 600 ]
	[ -z "$(ls -A "$T/img" | grep -v -x -e header -e pages -e working-set)" ]
	used_next
	# the first 256 pages load at once; a fault on a page of the working
	# set past them sends the loading on (nothing else loads here)
	restore CRAC_LAZY_PREFETCH=off -- read
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	n=$(echo "$stderr" | sed -n 's/^crac: working set: loaded first: [0-9]* of \([0-9]*\) pages in [0-9.]* ms (\([0-9]*\) gone through).*/\1 \2/p')
	echo "entries, gone through: $n"
	[ -n "$n" ]
	[ "${n% *}" -gt 256 ]   # (a working set of more than the first 256)
	[ "${n#* }" -gt 256 ]
	# 2 ms between the runs of pages it loads: the program's faults come
	# while it loads (served first, into the chunk buffer it sets up after)
	for s in read syscall dontneed free mprotect mremap munmap fork rawfork threads; do
		restore CRAC_TEST_WS_SLOW=1 -- "$s"
		[ "$status" -eq 0 ]
		[ "$output" = "ok $s" ]
		echo "$stderr" | grep -Eq "^crac: working set: loaded first: [0-9]+ of [0-9]+ pages in "
	done
}

# A page the program drops (MADV_DONTNEED) while the run of the working set
# holding it is being copied in: the copy is refused (EAGAIN) until the
# event is read, and reading it lets the madvise go on and zap. The copy
# tried again must leave that page out: copied after the zap, it held its
# old bytes where zeros must be (and, write-protected for incremental
# checkpoints, the next image took it from the parent image). dropall
# drops each of the first 256 pages alone; CRAC_TEST_WS_SLOW=1 waits 2 ms
# before each run's copy and after each read of the events.
@test "pages dropped while the working set copies them read zeros, tracked for incremental checkpoints or not" {
	for incr in 0 1; do
		rm -rf "$T/img"
		CRAC_IMAGE_INCREMENTAL=$incr checkpoint
		record
		restore CRAC_TEST_WS_SLOW=1 CRAC_LAZY_PREFETCH=off -- dropall
		echo "(incremental $incr)"
		[ "$status" -eq 0 ]
		[ "$output" = "ok dropall" ]
		loaded_first
	done
}

# ws_said: the restore start_waiting started says its working-set line
# (--stats: once every page is in, so a recording is over and stored) in
# 60 s; false, with its stderr, if it does not.
ws_said() {
	for _ in $(seq 600); do
		grep -q "^crac: working set:" "$T/err" && return 0
		kill -0 "$PID" 2> /dev/null || break
		sleep 0.1
	done
	grep -q "^crac: working set:" "$T/err" || { cat "$T/err"; false; }
}

# ws_stored: within 60 s, $T/img/working-set holds pages (more than its
# 40-byte head: a store after the empty claim, at a quiet moment).
ws_stored() {
	for _ in $(seq 600); do
		[ "$(stat -c %s "$T/img/working-set" 2> /dev/null || echo 0)" -gt 40 ] && return 0
		sleep 0.1
	done
	ls -la "$T/img"
	false
}

# writer_stuck: the restored image_lazy ($RP, found if unset) has a thread
# crac-ws-writer in nanosleep (system call 35: with CRAC_TEST_WS_STUCK=1,
# the 10 s wait of a store that does not answer); WRITER, its id.
writer_stuck() {
	local t n
	[ -n "${RP:-}" ] || RP=$(pgrep -f "^$LAZY $T/img")
	WRITER=
	for t in /proc/"$RP"/task/*; do
		[ "$(cat "$t/comm" 2> /dev/null)" = crac-ws-writer ] || continue
		n=$(cut -d' ' -f1 "$t/syscall" 2> /dev/null)
		echo "process $RP, thread ${t##*/} crac-ws-writer: system call $n"
		[ "$n" = 35 ] && WRITER=${t##*/}
	done
	[ -n "$WRITER" ]
}

# waiting [ENV=V...]: the "wait3" scenario (a page in each of three
# chunks, then it waits) restored with --stats, recording the working set,
# let go on once the recording is over and stored (its line said: not a
# time, which a loaded machine may outlast); status, stdout, stderr.
waiting() {
	WAIT_OPTS=--stats start_waiting wait3 "$@"
	ws_said
	finish_waiting
}

@test "faults served while the working set loads: the chunks they read are not taken for verified afterwards" {
	checkpoint
	restore -- read   # (skips without lazy restore)
	rm -f "$T/img/working-set"
	# a working set of the three pages "wait3" touches; then restores that
	# load it slowly, so that the program's faults come in between (each
	# reads its chunk into the chunk buffer; the rest of the chunk loads
	# later, from there)
	waiting
	[ "$status" -eq 0 ]
	[ "$output" = "ok wait3" ]
	echo "$stderr" | grep -Eq "^crac: working set: recording it: [0-9]+ pages written$"
	for pf in on off; do
		# (the loading goes on meanwhile: no synchronisation, and with
		# prefetch off nothing but the program's reads ends it)
		WAIT_OPTS=--stats start_waiting wait3 CRAC_TEST_WS_SLOW=1 CRAC_LAZY_PREFETCH=$pf
		sleep 0.3
		finish_waiting
		[ "$status" -eq 0 ]
		[ "$output" = "ok wait3" ]
	done
}

@test "a restore killed while it records leaves the pages so far (partial), used as they are and not recorded again" {
	checkpoint
	restore -- read   # (skips without lazy restore)
	rm -f "$T/img/working-set"
	# killed at once (before its first fault, or soon after): a partial
	# working set, perhaps empty
	rm -f "$T/sync.ready" "$T/sync.go"
	clean env CRAC_TEST_WS_RECORD_MS=60000 CRAC_LAZY_PREFETCH=off timeout -s KILL 0.001 "$CRAC" restore "$T/img" -- wait3 "$T/sync" || true
	if [ -f "$T/img/working-set" ]; then
		restore -- read
		[ "$status" -eq 0 ]
		echo "$stderr" | grep -Eq "^crac: working set: recorded in part \(the restore that recorded it ended early\), loaded first: [0-9]+ of [0-9]+ pages"
		if echo "$stderr" | grep -q "recording"; then false; fi
		rm "$T/img/working-set"
	fi
	# (killed that early, it may have been writing its claim: a temporary
	# is left, which the next test of this file is about; not this one's)
	rm -f "$T/img"/.working-set.tmp-*
	# killed while it waits, after three faults and a quiet moment
	start_waiting wait3 CRAC_TEST_WS_RECORD_MS=60000
	ws_stored
	# the restored process: it has the checkpointed program's command line
	# (killing the children of $PID, a shell of the job, would kill its
	# timeout and leave it running on: a restore that still records)
	pkill -KILL -f "^$LAZY $T/img"
	wait $PID || true
	PID=
	[ -z "$(pgrep -f "^$LAZY $T/img")" ]
	[ -f "$T/img/working-set" ]
	[ -z "$(ls -A "$T/img" | grep -v -x -e header -e pages -e working-set)" ]
	restore -- read
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	echo "$stderr" | grep -Eq "^crac: working set: recorded in part \(the restore that recorded it ended early\), loaded first: [0-9]+ of [1-9][0-9]* pages"
	if echo "$stderr" | grep -q "recording"; then false; fi
}

@test "a damaged page named by the working set is never loaded from it: the normal path stops the process" {
	checkpoint
	record
	# the first page the working set names in the big mapping, and its chunk
	local addr=""
	for a in $(od -An -tx8 -j 40 -w16 "$T/img/working-set" | awk '{print $1}'); do
		if [ $((16#$a)) -ge $((BIG)) ] && [ $((16#$a)) -lt $((BIG + (32 << 20))) ]; then
			addr=0x$a
			break
		fi
	done
	[ -n "$addr" ]
	read -r idx off len < <("$EDIT" "$T/img" chunk-at "$addr")
	[ -n "$len" ]
	# one byte changed in every page of that chunk
	for ((p = 0; p < len; p += 4096)); do
		printf '\x5a' | dd of="$T/img/pages" bs=1 seek=$((off + p + 100)) conv=notrunc status=none
	done
	restore -- read
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	echo "$stderr" | grep -Eq "^crac: restore $T/img: page data checksum mismatch in chunk #$idx \\($len bytes at 0x[0-9a-f]+, anon\\): the pages file is damaged"
}

@test "a working set that is not the image's own is not used, and is recorded anew: link, FIFO, other owner, writable by others, damaged, truncated, stale" {
	checkpoint
	record
	cp "$T/img/working-set" "$T/good"
	# another image's working set
	checkpoint "$T/other"
	used_next   # (still $T/img: nothing changed)
	run clean env timeout 60 "$CRAC" restore --stats "$T/other" -- read
	[ "$status" -eq 0 ]
	[ -f "$T/other/working-set" ]
	check() {   # check WHAT: the restore says why, works, and writes a good one
		restore -- read
		[ "$status" -eq 0 ]
		[ "$output" = "ok read" ]
		echo "$stderr" | grep -Eq "^crac: working set: working-set $1: not used; recording it anew: [0-9]+ pages written$"
		[ -f "$T/img/working-set" ]
		[ ! -L "$T/img/working-set" ]
		[ "$(stat -c %u "$T/img/working-set")" = "$(id -u)" ]
		used_next
	}
	echo "never touched" > "$T/target"
	ln -sf "$T/target" "$T/img/working-set"
	check "a symbolic link, not followed"
	[ "$(cat "$T/target")" = "never touched" ]
	rm "$T/img/working-set"
	mkfifo "$T/img/working-set"
	check "not a regular file"
	cp "$T/good" "$T/img/working-set"
	chown 1000 "$T/img/working-set" 2>/dev/null || skip "cannot chown here (not root)"
	check "owned by uid 1000, not by the image's owner"
	cp "$T/good" "$T/img/working-set"
	chmod 666 "$T/img/working-set"
	check "writable by other users \\(owner uid $(id -u)\\)"
	cp "$T/good" "$T/img/working-set"
	printf '\xff' | dd of="$T/img/working-set" bs=1 seek=60 conv=notrunc status=none
	check "damaged \\(crc32c mismatch\\)"
	head -c 100 "$T/good" > "$T/img/working-set"
	check "truncated or padded \\(its count does not match its size\\)"
	cp "$T/other/working-set" "$T/img/working-set"
	check "recorded for another image \\(stale\\)"
}

@test "not recorded where it may not be: CRAC_WORKING_SET=off, a read-only image directory; recorded anew on request" {
	checkpoint
	restore CRAC_WORKING_SET=off -- read
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	echo "$stderr" | grep -qx "crac: working set: not used (CRAC_WORKING_SET=off)"
	[ ! -e "$T/img/working-set" ]
	chmod 555 "$T/img"
	restore -- read
	[ "$status" -eq 0 ]
	echo "$stderr" | grep -qx "crac: working set: none, and not recorded (the image is not yours, or its directory is not writable)"
	[ ! -e "$T/img/working-set" ]
	chmod 755 "$T/img"
	# recorded anew on request, over a good one
	record
	restore CRAC_WORKING_SET=record -- read
	[ "$status" -eq 0 ]
	echo "$stderr" | grep -Eq "^crac: working set: recording it anew \(CRAC_WORKING_SET=record\): [0-9]+ pages written$"
}

@test "concurrent first restores: one working set, no temporary left, and it is used next" {
	checkpoint
	for i in 1 2 3 4; do
		clean env timeout 60 "$CRAC" restore "$T/img" -- read > "$T/out$i" 2> "$T/err$i" &
	done
	wait
	for i in 1 2 3 4; do
		cat "$T/err$i"
		[ "$(cat "$T/out$i")" = "ok read" ]
	done
	[ -f "$T/img/working-set" ]
	[ -z "$(ls -A "$T/img" | grep -v -x -e header -e pages -e working-set)" ]
	used_next
}

@test "a new checkpoint into the directory replaces the image and drops its working set" {
	checkpoint
	record
	checkpoint
	[ ! -e "$T/img/working-set" ]
	record
}

@test "temporaries left by restores killed before their rename (thread ids recur: a pid namespace) do not stop the recording" {
	checkpoint
	record   # (skips without lazy restore)
	rm -f "$T/img/working-set"
	command -v unshare > /dev/null || skip "no unshare"
	clean unshare -pf --mount-proc true 2> /dev/null || skip "no pid namespace here"
	# what a restore killed between its temporary and the rename leaves
	# (kill -9): in a new pid namespace each restore's threads get the
	# same ids again, so its loading thread's name is among these
	for i in $(seq 1 64); do
		echo stale > "$T/img/.working-set.tmp-$i"
	done
	for k in 1 2; do
		run --separate-stderr clean unshare -pf --mount-proc timeout 60 "$CRAC" restore --stats "$T/img" -- read
		echo "status $status"
		echo "stderr: $stderr"
		[ "$status" -eq 0 ]
		[ "$output" = "ok read" ]
		if [ "$k" -eq 1 ]; then
			echo "$stderr" | grep -Eq "^crac: working set: recording it: [0-9]+ pages written$"
		else
			# used (how many pages it loads before read's own faults
			# do depends on the load: used_next shows that it loads)
			echo "$stderr" | grep -Eq "^crac: working set: loaded first: [0-9]+ of [1-9][0-9]* pages"
		fi
	done
	used_next
	[ -f "$T/img/working-set" ]
	# the stale ones untouched (not ours to judge), and nothing else left
	[ "$(cat "$T/img/.working-set.tmp-1")" = stale ]
	[ -z "$(ls -A "$T/img" | grep -v -x -e header -e pages -e working-set -e '\.working-set\.tmp-[0-9]*')" ]
	# a checkpoint into the directory removes them with the image
	checkpoint
	[ -z "$(ls -A "$T/img" | grep -v -x -e header -e pages)" ]
}

@test "not recorded on a read-only file system (each restore would record page by page and store nothing)" {
	checkpoint
	record   # (skips without lazy restore)
	rm -f "$T/img/working-set"
	mkdir "$T/ro"
	mount --bind "$T/img" "$T/ro" 2> /dev/null || skip "cannot mount here (not root)"
	if ! mount -o remount,bind,ro "$T/ro"; then
		umount "$T/ro"
		skip "cannot remount read-only here"
	fi
	run --separate-stderr clean timeout 60 "$CRAC" restore --stats "$T/ro" -- read
	umount "$T/ro"
	echo "status $status"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	echo "$stderr" | grep -qx "crac: working set: none, and not recorded (the image is not yours, or its directory is not writable)"
	[ ! -e "$T/img/working-set" ]
	# writable again: recorded
	record
}

@test "a file system without RENAME_NOREPLACE (NFS, some FUSE): the name is claimed by a hard link, by one restore of several; one meanwhile says the file is being recorded" {
	checkpoint
	record   # (skips without lazy restore)
	rm -f "$T/img/working-set"
	# a recording that lasts: claimed, three faults, a quiet moment stored
	WAIT_OPTS=--stats start_waiting wait3 CRAC_TEST_WS_RECORD_MS=60000 CRAC_PRETEND_MISSING=rename_noreplace
	ws_stored
	[ -f "$T/img/working-set" ]
	restore CRAC_PRETEND_MISSING=rename_noreplace -- read
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	echo "$stderr" | grep -Eq "^crac: working set: recorded in part \(another restore is recording it now\), loaded first: [0-9]+ of [1-9][0-9]* pages"
	if echo "$stderr" | grep -q "^crac: working set: recording"; then false; fi
	finish_waiting
	[ "$status" -eq 0 ]
	[ "$output" = "ok wait3" ]
	echo "$stderr" | grep -Eq "^crac: working set: recording it: [0-9]+ pages written$"
	[ -z "$(ls -A "$T/img" | grep -v -x -e header -e pages -e working-set)" ]
	used_next
	# concurrent first restores: one claims it and writes it
	rm "$T/img/working-set"
	for i in 1 2 3 4; do
		clean env CRAC_PRETEND_MISSING=rename_noreplace timeout 60 "$CRAC" restore --stats "$T/img" -- read \
			> "$T/out$i" 2> "$T/err$i" &
	done
	wait
	for i in 1 2 3 4; do
		cat "$T/err$i"
		[ "$(cat "$T/out$i")" = "ok read" ]
		if grep -q "not written" "$T/err$i"; then false; fi
	done
	[ "$(cat "$T"/err[1-4] | grep -Ec "^crac: working set: recording it: [0-9]+ pages written$")" -eq 1 ]
	[ -f "$T/img/working-set" ]
	[ -z "$(ls -A "$T/img" | grep -v -x -e header -e pages -e working-set)" ]
	used_next
}

@test "a full file system: the recording's claim is removed, and a later restore records it" {
	checkpoint
	record   # (skips without lazy restore)
	local m="$T/mnt"
	mkdir "$m"
	mount -t tmpfs -o size=48m tmpfs "$m" 2> /dev/null || skip "cannot mount a tmpfs here (not root)"
	mkdir "$m/img"
	chmod 755 "$m" "$m/img"
	cp -a "$T/img/header" "$T/img/pages" "$m/img/"
	# one page left: enough for the claim (an empty working set), not
	# for the store after it
	dd if=/dev/zero of="$m/fill" bs=4k status=none 2> /dev/null || true
	truncate -s -4096 "$m/fill"
	run --separate-stderr clean timeout 60 "$CRAC" restore --stats "$m/img" -- read
	echo "status $status"
	echo "stderr: $stderr"
	local left full=$stderr
	left=$(ls -A "$m/img")
	rm "$m/fill"
	run --separate-stderr clean timeout 60 "$CRAC" restore --stats "$m/img" -- read
	local status2=$status stderr2=$stderr
	umount "$m"
	echo "left: $left"
	[ "$(echo "$full" | grep "^crac: working set:")" = "crac: working set: recording it: not written: No space left on device (errno 28); the file it had claimed removed: a later restore records it" ]
	[ "$left" = "$(printf 'header\npages')" ]
	echo "then: $status2 $stderr2"
	[ "$status2" -eq 0 ]
	echo "$stderr2" | grep -Eq "^crac: working set: recording it: [0-9]+ pages written$"
}

@test "a working set is said written only once read back: a file changed after its write is removed" {
	checkpoint
	record   # (skips without lazy restore)
	rm -f "$T/img/working-set"
	# (CRAC_TEST_WS_DAMAGE: a byte of each file changed after its write,
	# as by a file system that lost it)
	restore CRAC_TEST_WS_DAMAGE=1 -- read
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	echo "$stderr" | grep -qx "crac: working set: recording it: not written: Input/output error (errno 5); the file it had claimed removed: a later restore records it"
	[ -z "$(ls -A "$T/img" | grep -v -x -e header -e pages)" ]
	record
}

@test "a program that forks (glibc fork) while its working set is recorded: the pages it touched before are kept" {
	checkpoint
	record   # (skips without lazy restore)
	rm -f "$T/img/working-set"
	# touchfork: 64 pages, then fork() at once (which waits for the
	# loading: the recording ends there)
	restore -- touchfork
	[ "$status" -eq 0 ]
	[ "$output" = "ok touchfork" ]
	local n
	n=$(echo "$stderr" | sed -n 's/^crac: working set: recording it: \([0-9]*\) pages written$/\1/p')
	[ -n "$n" ]
	[ "$n" -ge 64 ]
	# whole (not partial), and used (how many of its pages the loading
	# gets to before the program's own faults depends on the machine)
	[ "$(stat -c %s "$T/img/working-set")" -eq $((40 + 16 * n)) ]
	[ "$(od -An -tu4 -j36 -N4 "$T/img/working-set" | tr -d ' ')" = 0 ]   # (flags: not partial)
	restore CRAC_LAZY_PREFETCH=off -- read
	[ "$status" -eq 0 ]
	echo "$stderr" | grep -Eq "^crac: working set: loaded first: [0-9]+ of $n pages"
}

@test "a file system that does not answer holds no fault: the stores are the writer's, waited for 2 s at most" {
	checkpoint
	record   # (skips without lazy restore)
	rm -f "$T/img/working-set"
	# (CRAC_TEST_WS_STUCK: each store waits 10 s first, as on a hung NFS
	# server) the program's first faults come while the claim hangs: it
	# is ready while the writer still waits (not a time: a loaded machine
	# may take seconds to get there, but never the writer's 10 s)
	local t0 t1
	t0=$(date +%s%N)
	WAIT_OPTS=--stats start_waiting wait3 CRAC_TEST_WS_STUCK=1
	t1=$(date +%s%N)
	echo "ready after $(((t1 - t0) / 1000000)) ms"
	writer_stuck
	# everything loaded: the last store waited for 2 s, then not: said
	# while the writer still waits
	ws_said
	t1=$(date +%s%N)
	echo "reported after $(((t1 - t0) / 1000000)) ms"
	writer_stuck
	finish_waiting
	[ "$status" -eq 0 ]
	[ "$output" = "ok wait3" ]
	echo "$stderr" | grep -Eqx "crac: working set: recording it: not written: the file system did not answer within 2 s \(the store goes on without this restore, in thread [0-9]+, crac-ws-writer, which stays until the file system answers: a partial file it leaves is removed\)"
	[ -z "$(ls -A "$T/img" | grep -v -x -e header -e pages)" ]
	record
}

@test "a writer given up on says what it is: its thread named crac-ws-writer, its id in the report" {
	checkpoint
	record   # (skips without lazy restore)
	rm -f "$T/img/working-set"
	# (CRAC_TEST_WS_STUCK: each store waits 10 s first)
	WAIT_OPTS=--stats start_waiting wait3 CRAC_TEST_WS_STUCK=1
	ws_said
	local p w
	p=$(pgrep -f "^$LAZY $T/img")
	w=$(sed -n 's/.*in thread \([0-9]*\), crac-ws-writer,.*/\1/p' "$T/err")
	echo "process $p, writer $w: $(cat /proc/$p/task/*/comm | tr '\n' ' ')"
	[ -n "$w" ]
	[ "$(cat "/proc/$p/task/$w/comm")" = crac-ws-writer ]
	finish_waiting
	[ "$status" -eq 0 ]
	[ "$output" = "ok wait3" ]
}

@test "a mapping the program goes through at once is loaded eagerly once its working set shows it; one touched here and there stays lazy" {
	checkpoint
	# "read" reads every page of the 32 MiB mapping: its recording (page
	# by page, 1 s) holds whole MiB blocks of it
	restore CRAC_WORKING_SET= -- read
	if [ "$status" -ne 0 ] && echo "$stderr" | grep -q -- "lazy restore needs"; then
		skip "no userfaultfd for kernel faults here"
	fi
	[ "$status" -eq 0 ]
	echo "$stderr" | grep -Eq "^crac: working set: recording it: [0-9]+ pages written$"
	restore CRAC_WORKING_SET= -- read
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	# the big mapping eager (the image's small ones stay lazy, if any)
	echo "$stderr" | grep -Eq "^crac: working set: loaded first; 1 mapping it shows walked loaded eagerly \(32 MiB\): |eager: the working set shows the program goes through most of its large mappings at once"
	local lazy
	lazy=$(echo "$stderr" | sed -n 's/^crac: restore stats: .*(\([0-9.]*\) MiB read, \([0-9.]*\) MiB lazy.*/\2/p')
	echo "lazy MiB: $lazy"
	[ -n "$lazy" ]
	[ "${lazy%.*}" -lt 32 ]
	# asked to keep it lazy: it is
	restore CRAC_WORKING_SET=lazy -- read
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	if echo "$stderr" | grep -q "walked"; then false; fi
	echo "$stderr" | grep -Eq "^crac: restore stats: .*\([0-9.]+ MiB read, 3[2-9]\.[0-9] MiB lazy"
	# a program that touches three pages of it in the 200 ms recorded (it
	# reads the rest later): recorded, and still lazy
	rm "$T/img/working-set"
	waiting CRAC_WORKING_SET= CRAC_TEST_WS_RECORD_MS=200
	[ "$status" -eq 0 ]
	echo "$stderr" | grep -Eq "^crac: working set: recording it: [0-9]+ pages written$"
	used_next CRAC_WORKING_SET=
	if echo "$stderr" | grep -q "walked"; then false; fi
}

@test "a recording with no page touched stores nothing and removes its claim: a later restore records it" {
	checkpoint
	restore -- read   # (skips without lazy restore)
	rm -f "$T/img/working-set"
	# "wait0" touches nothing lazy until told to go, after the 100 ms
	# recorded (the small mappings are eager without prefetch)
	WAIT_OPTS=--stats start_waiting wait0 CRAC_TEST_WS_RECORD_MS=100 CRAC_LAZY_PREFETCH=off
	sleep 0.5
	ls -la "$T/img"
	finish_waiting
	[ "$status" -eq 0 ]
	[ "$output" = "ok wait0" ]
	echo "$stderr" | grep -qx "crac: working set: recording it: no page touched in its first 100 ms: none written, its claim removed: a later restore records it"
	[ -z "$(ls -A "$T/img" | grep -v -x -e header -e pages)" ]
	record
}

@test "a store that fails never removes a file another restore put in its place meanwhile" {
	checkpoint
	record   # (skips without lazy restore)
	cp "$T/img/working-set" "$T/good"
	rm "$T/img/working-set"
	# The claim fails its read-back (CRAC_TEST_WS_DAMAGE) and the writer
	# goes to remove it, 1 s later (CRAC_TEST_WS_UNCLAIM_SLOW); another file
	# takes the name in between, as another restore's store would (a
	# rename over it). Not timed: the process is stopped while the writer
	# is in that second and the claim still holds the name, and the file
	# is moved in then; a machine too loaded to catch the writer there
	# tries again.
	local moved=
	for attempt in 1 2 3 4 5; do
		rm -f "$T/sync.ready" "$T/sync.go"
		clean env CRAC_TEST_WS_DAMAGE=1 CRAC_TEST_WS_UNCLAIM_SLOW=1 timeout 60 "$CRAC" restore --stats "$T/img" \
			-- wait3 "$T/sync" > "$T/out" 2> "$T/err" &
		PID=$!
		if unclaim_caught "$PID"; then
			cp "$T/good" "$T/other"
			mv -f "$T/other" "$T/img/working-set"
			kill -CONT "$RPID"
			moved=1
		fi
		echo "attempt $attempt: process ${RPID:-?}, writer ${WRITER:-?}: ${moved:-missed}"
		[ -z "$moved" ] || break
		finish_waiting
		rm -f "$T/img/working-set"
	done
	[ -n "$moved" ]
	# the writer done (its thread gone) before the program ends
	for _ in $(seq 600); do
		[ -e "/proc/$RPID/task/$WRITER" ] || break
		sleep 0.05
	done
	[ ! -e "/proc/$RPID/task/$WRITER" ]
	finish_waiting
	[ "$status" -eq 0 ]
	[ "$output" = "ok wait3" ]
	echo "$stderr" | grep -qx "crac: working set: recording it: not written: Input/output error (errno 5); working-set is another restore's now"
	cmp "$T/good" "$T/img/working-set"
	[ -z "$(ls -A "$T/img" | grep -v -x -e header -e pages -e working-set)" ]
	used_next
}
