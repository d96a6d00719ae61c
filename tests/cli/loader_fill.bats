#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The loader fills the small eager mappings (dirty library pages: RELRO,
# .data, GOT; small anonymous memory) through /proc/self/mem with their
# final protection already in place (fill_mem in src/loader/loader.c), the
# large ones by preadv. Each path, and the fallbacks (no /proc/self/mem; a
# kernel that refuses forced writes to read-only mappings), restores the
# same state, and every mapping comes back with its recorded protection.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	COUNTER="$CRAC_BUILD_DIR/tests/image_counter"
	LAZY="$CRAC_BUILD_DIR/tests/image_lazy"
	T="$(mktemp -d /tmp/crac-bats-fill.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOADER CRAC_PRETEND_MISSING
	require_image_engine
}

teardown() {
	[ -z "${PID:-}" ] || kill "$PID" 2>/dev/null || true
	rm -rf "$T"
}

@test "every fill path restores the same state: /proc/self/mem, without it, with forced writes refused; eager and lazy" {
	run clean "$COUNTER" "$T/img" 4
	echo "$output"
	[ "$status" -eq 0 ]
	before="$(echo "$output" | sed -n 's/^before: checksum=//p')"
	[ -n "$before" ]
	# populate: the header read by pread (no MADV_POPULATE_WRITE) instead of copied by the kernel
	for pretend in "" proc_mem proc_mem_force populate; do
		for mode in "" --populate; do
			run --separate-stderr clean env CRAC_PRETEND_MISSING="$pretend" "$CRAC" restore $mode "$T/img"
			echo "pretend '$pretend' $mode: status $status"
			echo "stdout: $output"
			echo "stderr: $stderr"
			[ "$status" -eq 0 ]
			echo "$output" | grep -q "^restored: checksum=$before "
			echo "$output" | grep -q "^malloc ok"
			echo "$output" | grep -q "^dontneed ok"
		done
	done
}

# perms_match PID: every mapping the image records (but the vDSO block) is
# in /proc/PID/maps with the recorded start, end and permissions.
perms_match() {
	local bad=0 start end perm
	while read -r start end perm; do
		if ! grep -q "^0*$start-0*$end $perm " "/proc/$1/maps"; then
			echo "not restored as recorded: $start-$end $perm"
			bad=1
		fi
	done < <("$CRAC" inspect "$T/img" | awk '$1 ~ /^[0-9a-f]+$/ && $2 ~ /^[0-9a-f]+$/ && $4 !~ /^(vvar|vvar_vclock|vdso)$/ { print $1, $2, $3 }')
	return $bad
}

@test "mappings filled through /proc/self/mem keep their protection (RELRO read-only, code not writable)" {
	run clean "$LAZY" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	for pretend in "" proc_mem_force; do
		rm -f "$T/sync.ready" "$T/sync.go"
		clean env CRAC_PRETEND_MISSING="$pretend" CRAC_LAZY_PREFETCH=off timeout 60 "$CRAC" restore "$T/img" -- wait "$T/sync" >"$T/out" 2>"$T/err" &
		PID=$!
		for _ in $(seq 300); do
			[ -e "$T/sync.ready" ] && break
			kill -0 $PID 2>/dev/null || break
			sleep 0.1
		done
		[ -e "$T/sync.ready" ] || { cat "$T/out" "$T/err"; false; }
		# the restored process (its command line is the checkpointed one's)
		rp=$(pgrep -xf "$LAZY $T/img" | head -1)
		[ -n "$rp" ]
		# the image holds dirty pages of read-only file mappings (RELRO): the case that matters
		"$CRAC" inspect "$T/img" | awk '$3 == "r--p" && $4 == "file" && $6 != "0K"' | grep -q .
		perms_match "$rp"
		# the header file the loader copied its header from is not left mapped
		if grep -F "$T/img/header" "/proc/$rp/maps"; then false; fi
		touch "$T/sync.go"
		wait $PID
		PID=
		grep -q "^ok wait" "$T/out"
	done
}

@test "the header the checks verify is the one the loader uses: a damaged header is refused whether the kernel copies it or pread reads it" {
	run clean "$COUNTER" "$T/img" 4
	echo "$output"
	[ "$status" -eq 0 ]
	size=$(stat -c %s "$T/img/header")
	# one byte in the middle of the header's tables, flipped
	off=$((size / 2))
	byte=$(od -An -tu1 -j "$off" -N1 "$T/img/header" | tr -d ' ')
	printf "$(printf '\\%03o' $(((byte + 1) % 256)))" | dd of="$T/img/header" bs=1 seek="$off" conv=notrunc status=none
	for pretend in "" populate; do
		run --separate-stderr clean env CRAC_PRETEND_MISSING="$pretend" "$CRAC" restore "$T/img"
		echo "pretend '$pretend': status $status"
		echo "stdout: $output"
		echo "stderr: $stderr"
		[ "$status" -eq 1 ]
		echo "$stderr" | grep -q "^crac: restore $T/img: .*"
		if echo "$output" | grep -q "^restored"; then false; fi
	done
}
