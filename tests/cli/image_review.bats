#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Review of compressed images, incremental chains and flatten (session 5):
# refusals found without their reason. Under any limit on open files, a
# restore of a chain either runs or refuses with one line that says why
# (the loader opened the chain's files, then could not open
# /proc/self/maps and said only that).

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup review CRAC_IMAGE_COMPRESS CRAC_IMAGE_INCREMENTAL
	INCR="$CRAC_BUILD_DIR/tests/image_incr"
}

teardown() {
	common_teardown
}

@test "a chain restored under every RLIMIT_NOFILE from 6 to 40: it runs, or one line says why" {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$INCR" "$T/i0" "$T/i1" "$T/i2" 4
	echo "chain: $status / $output / $stderr"
	[ "$status" -eq 0 ]
	ran=0
	for n in $(seq 6 40); do
		run --separate-stderr clean bash -c 'ulimit -n "$1" && exec timeout 20 "$2" restore "$3"' _ "$n" "$CRAC" "$T/i2"
		echo "nofile $n: status $status / $output / $stderr"
		if [ "$status" -eq 0 ]; then
			[ "$output" = "ok stage 2" ]
			ran=1
			continue
		fi
		[ "$status" -eq 1 ]
		[ -z "$output" ]
		[ "$(echo "$stderr" | wc -l)" -eq 1 ]
		# the reason: an errno name or number, never a bare "cannot ..."
		[[ "$stderr" == "crac: restore $T/i2: "*"Too many open files"* ]]
	done
	[ "$ran" -eq 1 ]
}

# refused_all DIR TEXT: restore, flatten and inspect of DIR refuse, none
# hangs; restore and flatten in one line containing TEXT.
refused_all() {
	local dir=$1 text=$2
	run --separate-stderr clean timeout 20 "$CRAC" restore "$dir"
	echo "restore: $status / $output / $stderr"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$(echo "$stderr" | wc -l)" -eq 1 ]
	[[ "$stderr" == "crac: restore $dir: "*"$text"* ]]
	run --separate-stderr clean timeout 20 "$CRAC" flatten "$dir" "$T/flat"
	echo "flatten: $status / $output / $stderr"
	[ "$status" -eq 1 ]
	[[ "$stderr" == "crac: flatten $dir: "*"$text"* ]]
	[ ! -e "$T/flat" ]
	run clean timeout 20 "$CRAC" inspect "$dir"
	echo "inspect: $status / $output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "^  chain *FAILED: .*$text"
}

@test "a parent's files replaced by a FIFO, a symbolic link, a device: refused at once, nothing hangs" {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$INCR" "$T/i0" "$T/i1" "$T/i2" 4
	[ "$status" -eq 0 ]
	cp -a "$T/i1" "$T/keep"
	for f in header pages; do
		rm -rf "$T/i1" && cp -a "$T/keep" "$T/i1"
		rm "$T/i1/$f" && mkfifo "$T/i1/$f"
		refused_all "$T/i2" "$T/i2/../i1/$f is a FIFO, not a regular file: refused"
		rm "$T/i1/$f" && cp "$T/keep/$f" "$T/$f.copy" && ln -s "$T/$f.copy" "$T/i1/$f"
		refused_all "$T/i2" "$T/i2/../i1/$f is a symbolic link: refused"
		rm "$T/i1/$f"
		if mknod "$T/i1/$f" c 1 3 2>/dev/null; then   # root only
			refused_all "$T/i2" "$T/i2/../i1/$f is a character device, not a regular file: refused"
		fi
	done
	# the parent directory itself a FIFO, a link to a device
	rm -rf "$T/i1" && mkfifo "$T/i1"
	refused_all "$T/i2" "cannot open the image directory: Not a directory"
	rm "$T/i1" && ln -s /dev/null "$T/i1"
	refused_all "$T/i2" "cannot open the image directory: Not a directory"
	# a chain of links that never ends
	rm "$T/i1" && ln -s i1x "$T/i1" && ln -s i1 "$T/i1x"
	refused_all "$T/i2" "cannot open the image directory: Too many levels of symbolic links"
	rm "$T/i1" "$T/i1x" && mv "$T/keep" "$T/i1"
	run clean "$CRAC" restore "$T/i2"
	[ "$output" = "ok stage 2" ]
}
