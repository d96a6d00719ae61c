#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# crac flatten against what others do to its chain and its target: an
# unprivileged user flattening root's image, a target directory it may not
# write, the image below DIR truncated, overwritten or replaced while its
# pages are copied, many flattens of one chain into one OUT at once. Each
# ends with a message naming what is at fault, OUT absent or a whole image
# (as the status says), the chain untouched and no temporary left.

bats_require_minimum_version 1.5.0

load common

setup() { chain_setup flatprobe; }

teardown() {
	chmod 755 "$T" "$T/ro" 2>/dev/null || true
	common_teardown
}

temporaries() {
	ls -a "$T" "$T/out" "$T/ro" 2>/dev/null | grep -E '\.(tmp|old)-' || true
}

@test "flatten by nobody of root's image: refused naming the owner, with --trust-owner too; nothing written" {
	need_nobody "$CRAC"
	mkdir -m 1777 "$T/out"
	for opt in "" --trust-owner; do
		run --separate-stderr $NOBODY "$CRAC" flatten "$T/i2" "$T/out/flat" $opt
		echo "$opt: $status [$stderr]"
		[ "$status" -eq 1 ]
		echo "$stderr" | grep -q "flatten $T/i2: cannot open the image directory: Permission denied"
		echo "$stderr" | grep -q "owned by uid 0"
		[ ! -e "$T/out/flat" ]
	done
	# nor into root's image itself
	run --separate-stderr $NOBODY "$CRAC" flatten "$T/i2" "$T/i2" --trust-owner
	[ "$status" -eq 1 ]
	[ -z "$(temporaries)" ]
	[ "$(chain_state)" = "$BEFORE" ]
}

@test "flatten into a directory it may not write: refused naming OUT and the reason, the chain untouched" {
	need_nobody "$CRAC"
	mkdir -m 0755 "$T/ro"
	cp -a "$T/i0" "$T/i1" "$T/i2" "$T/ro/"
	chown -R 65534:65534 "$T/ro"
	run --separate-stderr $NOBODY "$CRAC" flatten "$T/ro/i2" "$T/ro/flat0"
	echo "writable: $status [$output] [$stderr]"
	[ "$status" -eq 0 ]
	rm -rf "$T/ro/flat0"
	chmod 0555 "$T/ro"
	run --separate-stderr $NOBODY "$CRAC" flatten "$T/ro/i2" "$T/ro/flat"
	echo "read-only: $status [$stderr]"
	[ "$status" -eq 1 ]
	echo "$stderr" | grep -q "cannot create the temporary image next to $T/ro/flat: Permission denied"
	[ ! -e "$T/ro/flat" ]
	[ -z "$(temporaries)" ]
}

# copying CMD: flatten $T/i2 $T/flat, each chunk's read slowed by 3 ms
# (some 2 s in all), CMD run once its worker holds $T/i1/pages open (the
# chain opened and checked, no page read yet); sets status and stderr.
copying() {
	spawn "$T/flat.out" "$T/flat.err" env CRAC_TEST_SLOW_FS=pageread:3 "$CRAC" flatten "$T/i2" "$T/flat" \
		--timeout 30s
	local f=$SPAWNED w i
	for i in $(seq 400); do
		w=$(pgrep -x -P "$f" crac || true)
		[ -n "$w" ] && ls -l "/proc/$w/fd" 2>/dev/null | grep -q " $T/i1/pages\$" && break
		sleep 0.01
	done
	eval "$1"
	wait "$f" && status=0 || status=$?
	stderr=$(cat "$T/flat.err")
	echo "[$1]: $status [$stderr]"
}

@test "the image below DIR truncated or overwritten while its pages are copied: refused naming the chunk and the image" {
	cp -a "$T/i1" "$T/i1.keep"
	copying 'truncate -s 4096 "$T/i1/pages"'
	[ "$status" -eq 1 ]
	echo "$stderr" | grep -Eq "cannot read chunk #[0-9]+ of $T/i2/\.\./i1: the pages file ends inside the chunk"
	[ ! -e "$T/flat" ]
	[ -z "$(temporaries)" ]
	rm -rf "$T/i1"
	cp -a "$T/i1.keep" "$T/i1"
	copying 'dd if=/dev/urandom of="$T/i1/pages" bs=4096 count=1000 conv=notrunc status=none'
	[ "$status" -eq 1 ]
	echo "$stderr" | grep -Eq "checksum mismatch in chunk #[0-9]+ .*$T/i2/\.\./i1\): the pages file is damaged"
	[ ! -e "$T/flat" ]
	[ -z "$(temporaries)" ]
}

@test "the image below DIR replaced by a FIFO while its pages are copied: the files opened are read, OUT whole" {
	copying 'mv "$T/i1" "$T/i1.moved" && mkfifo "$T/i1"'
	[ "$status" -eq 0 ]
	"$CRAC" inspect "$T/flat" >/dev/null
	[ -z "$(temporaries)" ]
	# and refused when it is one before the flatten opens it
	rm -rf "$T/flat"
	run --separate-stderr "$CRAC" flatten "$T/i2" "$T/flat"
	[ "$status" -eq 1 ]
	echo "$stderr" | grep -q "parent image $T/i2/../i1 of $T/i2 cannot be opened: .*Not a directory"
}

@test "four flattens of one chain into one OUT at once (15 rounds): one writes it, the others refuse; nothing left" {
	local r i ok
	for r in $(seq 15); do
		pids=()
		for i in 1 2 3 4; do
			spawn "$T/f$i.out" "$T/f$i.err" "$CRAC" flatten "$T/i2" "$T/flat"
			pids+=("$SPAWNED")
		done
		ok=0
		for i in 1 2 3 4; do
			if wait "${pids[$((i - 1))]}"; then
				ok=$((ok + 1))
			else
				grep -Eq "(appeared|was replaced) (while|since)" "$T/f$i.err" || { cat "$T/f$i.err"; false; }
			fi
		done
		echo "round $r: $ok written"
		[ "$ok" -ge 1 ]
		"$CRAC" inspect "$T/flat" >/dev/null
		[ -z "$(temporaries)" ]
		[ "$(chain_state)" = "$BEFORE" ]
		# every other round over the OUT the last one wrote
		[ $((r % 2)) -eq 0 ] || rm -rf "$T/flat"
	done
}

@test "flatten started with SIGCHLD blocked (inherited across exec): ends with its worker's status, at once" {
	need_python
	t0=$(date +%s%N)
	run --separate-stderr timeout -k 5 30 "$PY" -c 'import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
os.execv(sys.argv[1], sys.argv[1:])' "$CRAC" flatten "$T/i2" "$T/flat" --timeout 5s
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status: [$output] [$stderr] ($ms ms)"
	[ "$status" -eq 0 ]
	[ "$ms" -lt 4000 ]
	"$CRAC" inspect "$T/flat" >/dev/null
	[ -z "$(temporaries)" ]
}

@test "a previous image not put back (a symbolic link OUT.old-PID-START, its writer gone): flatten says so and leaves it" {
	# what a writer without RENAME_EXCHANGE moved aside is put back at OUT
	# when OUT is missing; a symbolic link under that name was no writer's
	mkdir "$T/elsewhere"
	ln -s "$T/elsewhere" "$T/flat.old-999999-1"
	run --separate-stderr clean "$CRAC" flatten "$T/i2" "$T/flat"
	echo "$status [$stderr]"
	[ "$status" -eq 0 ]
	echo "$stderr" | grep -q "flatten $T/i2: warning: the previous image $T/flat.old-999999-1 was not put back at $T/flat: .*it is left where it is"
	[ -L "$T/flat.old-999999-1" ]
	[ -f "$T/flat/header" ]
	[ "$(chain_state)" = "$BEFORE" ]
}
