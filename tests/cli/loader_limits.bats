#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The restore loader (the installed crac command is the same binary) under
# a low RLIMIT_AS. Its two largest buffers (the image's header, the
# headers of the images below an incremental image: up to 64 MiB each)
# were .bss: every exec of crac reserved 128 MiB of address space, and
# under `ulimit -v` below that the kernel killed any crac command with
# SIGSEGV inside its exec (crac --version too), without a word. They are
# mapped now when needed, as large as needed (src/loader/loader.c,
# loader_buf).

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/obj_hostile"
	T="$(mktemp -d /tmp/crac-bats-limits.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
	require_image_engine
}

teardown() {
	rm -rf "$T"
}

@test "under ulimit -v 60000 (60 MiB of address space): crac --version, inspect and restore run" {
	echo data >"$T/f"
	run clean "$PROG" "$T/img" "$T/f"
	echo "$output"
	[ "$status" -eq 0 ]
	run clean sh -c 'ulimit -v 60000 && exec "$0" --version' "$CRAC"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^engines:"
	run clean sh -c 'ulimit -v 60000 && exec "$0" inspect "$1"' "$CRAC" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	run clean sh -c 'ulimit -v 60000 && exec "$0" restore "$1"' "$CRAC" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "fd 5: regular"
	# the program had no RLIMIT_AS: the restore under one cannot raise it, and says so
	echo "$output" | grep -q "resource limit RLIMIT_AS not restored (soft unlimited, hard unlimited; here 61440000, 61440000): Operation not permitted"
}

@test "an image whose mappings exceed RLIMIT_AS is refused before the point of no return, naming the limit" {
	# 256 MiB of the image's own memory (tests/progs/image_lazy), restored
	# under 200 MiB of address space: the loader's mmap of it failed after
	# the point of no return (the restore died there, 'Cannot allocate
	# memory')
	run clean "$CRAC_BUILD_DIR/tests/image_lazy" "$T/img" 256
	echo "$output"
	[ "$status" -eq 0 ]
	run clean sh -c 'ulimit -v 200000 && exec 3>"$2" && CRAC_LOADER_PONR_FD=3 exec "$0" restore "$1" -- read' \
		"$CRAC" "$T/img" "$T/ponr"
	echo "$output"
	[ "$status" -eq 1 ]
	[ ! -s "$T/ponr" ]
	[ "${#lines[@]}" -eq 1 ]
	echo "$output" | grep -q "^crac: restore $T/img: the image's mappings ([0-9]* bytes) exceed this process's RLIMIT_AS (204800000 bytes; ulimit -v)"
	# under enough address space, it restores
	run clean sh -c 'ulimit -v 1000000 && exec "$0" restore "$1" -- read' "$CRAC" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "ok read"
}

# restore_under KIB [RESTORE OPTIONS]: crac restore $T/img -- read under
# `ulimit -v KIB`, with the loader's point-of-no-return pipe in $T/ponr
# ("p" at the point of no return, "j" right before the jump).
restore_under() {
	local kib=$1
	shift
	: >"$T/ponr"
	run clean sh -c 'kib=$1 p=$2; shift 2; ulimit -v "$kib" && exec 3>"$p" &&
		CRAC_LOADER_PONR_FD=3 exec "$0" restore "$@" -- read' "$CRAC" "$kib" "$T/ponr" "$T/img" "$@"
	echo "under $kib KiB: $output"
}

@test "RLIMIT_AS counts the loader's own and its lazy thread's: a limit under the need is refused before the point of no return, one at it restores" {
	# 64 MiB of the image's own memory: the image's mappings fit in a
	# limit 1 MiB above them, but the loader's own ~10 MiB (and the lazy
	# thread's area) did not: the restore died after its point of no
	# return ('Cannot allocate memory'), the process lost
	run clean "$CRAC_BUILD_DIR/tests/image_lazy" "$T/img" 64
	echo "$output"
	[ "$status" -eq 0 ]
	sum0="$(cat "$T/img/header" "$T/img/pages" | cksum)"
	for opt in "" --populate; do
		rm -f "$T/img/working-set"
		# the image's mappings, as check.c counts them (refused: under them)
		restore_under 40000 $opt
		[ "$status" -eq 1 ]
		img="$(echo "$output" | sed -n 's/.*the image.s mappings (\([0-9]*\) bytes) exceed.*/\1/p')"
		[ -n "$img" ]
		# 1 MiB above them: refused before the point of no return,
		# naming the need and the limit
		lim=$((img / 1024 + 1024))
		restore_under "$lim" $opt
		[ "$status" -eq 1 ]
		[ ! -s "$T/ponr" ]
		[ "${#lines[@]}" -eq 1 ]
		echo "$output" | grep -q "^crac: restore $T/img: restoring needs [0-9]* bytes of address space ([0-9]* KiB: the image's mappings $img, the loader's own [0-9]*.*), more than this process's RLIMIT_AS ($((lim * 1024)) bytes; ulimit -v)$"
		need="$(echo "$output" | sed -n 's/.*restoring needs \([0-9]*\) bytes.*/\1/p')"
		[ "$need" -gt $((img + 8 * 1048576)) ]   # the loader itself is ~10 MiB
		# just under the need (whole KiB): refused the same way
		kib=$(((need + 1023) / 1024 - 1))
		restore_under "$kib" $opt
		[ "$status" -eq 1 ]
		[ ! -s "$T/ponr" ]
		echo "$output" | grep -q "restoring needs $need bytes of address space.*RLIMIT_AS ($((kib * 1024)) bytes; ulimit -v)$"
		# the image is untouched (nothing recorded either)
		[ "$(cat "$T/img/header" "$T/img/pages" | cksum)" = "$sum0" ]
		[ ! -e "$T/img/working-set" ]
		[ "$(ls "$T" | grep -c 'img')" -eq 1 ]
		# at the need: restores, and the program runs
		restore_under $((kib + 1)) $opt
		[ "$status" -eq 0 ]
		echo "$output" | grep -qx "ok read"
		[ "$(cat "$T/ponr")" = pj ]
	done
}
