#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# One build tree installed with `cmake --install BUILD --prefix P` into two
# prefixes other than the one it was configured for (CMAKE_INSTALL_PREFIX):
# each installed crac runs its own prefix's crac-cli (src/loader/front.c looks
# at the bindir-to-libexecdir path from its own directory before the
# configured libexecdir), whose `crac run` preloads its own prefix's
# libcrac.so, and a checkpoint and a restore made with each work. A prefix
# moved after the install still works, and a crac without its crac-cli names
# every place it looked.

load common

setup_file() {
	export P1="$(mktemp -d /tmp/crac-bats-reloc1.XXXXXX)"
	export P2="$(mktemp -d /tmp/crac-bats-reloc2.XXXXXX)"
	for p in "$P1" "$P2"; do
		CRAC_NO_LDCONFIG=1 cmake --install "$CRAC_BUILD_DIR" --prefix "$p" >"$p.log" 2>&1 || {
			cat "$p.log" >&2
			return 1
		}
	done
}

teardown_file() {
	rm -rf "$P1" "$P2" "$P1.log" "$P2.log"
}

setup() {
	T="$(mktemp -d /tmp/crac-bats-reloc.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LIBDIR CRAC_LOADER LD_PRELOAD
	CONFIGURED=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$CRAC_BUILD_DIR/CMakeCache.txt")
	pids=
}

teardown() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	rm -rf "$T"
}

@test "relocated install: each prefix's crac runs its own crac-cli, which preloads its own libcrac" {
	[ "$P1" != "$CONFIGURED" ] && [ "$P2" != "$CONFIGURED" ]
	for p in "$P1" "$P2"; do
		[ -x "$p/bin/crac" ] && [ -x "$p/libexec/crac-cli" ] && [ -x "$p/libexec/crac-loader" ]
		run "$p/bin/crac" --help
		echo "$p: $output" | head -3
		[ "$status" -eq 0 ]
		[[ "$output" == *"usage: crac "* ]]
		# crac run becomes the program: LD_PRELOAD names the library the
		# tool found, from its own directory (a crac-cli of the configured
		# prefix would take that prefix's library)
		run "$p/bin/crac" run -- sh -c 'echo "$LD_PRELOAD"'
		echo "$p: $output"
		[ "$status" -eq 0 ]
		[[ "$output" == "$p/lib/libcrac.so"* ]]
	done
}

# checkpoint_restore PREFIX: bash, waiting in `read` on a FIFO, under
# PREFIX's `crac run`; checkpointed with PREFIX's crac, restored with it
# reading another line.
checkpoint_restore() {
	local p=$1 img="$T/img-${1##*/}" in="$T/in-${1##*/}"
	mkfifo "$in"
	sleep 600 >"$in" &   # a writer that never writes: bash waits in read
	pids="$pids $!"
	(
		close_fds
		exec "$p/bin/crac" run --checkpoint-to "$img" -- bash -c 'echo ready; read -r line; echo "got $line"' \
			<"$in" >"$T/out" 2>&1
	) &
	local pid=$!
	pids="$pids $pid"
	for _ in $(seq 250); do
		[ -S "$CRAC_CONTROL_DIR/$pid.sock" ] && grep -q ready "$T/out" && break
		sleep 0.02
	done
	run "$p/bin/crac" checkpoint "$pid"
	echo "$p checkpoint: $output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"image written to $img"* ]]
	run "$p/bin/crac" inspect "$img"
	[ "$status" -eq 0 ]
	# the restored program maps this prefix's library
	echo "$output" | grep -q "^  $p/lib/libcrac.so"
	run sh -c 'echo "from $1" | timeout 60 "$2/bin/crac" restore "$3"' sh "${p##*/}" "$p" "$img"
	echo "$p restore: $output"
	[ "$status" -eq 0 ]
	[ "$output" = "got from ${p##*/}" ]
}

@test "relocated install: a checkpoint and a restore with each prefix's crac" {
	run "$P1/bin/crac" --version   # runs: a skip below means the engine is not built
	[ "$status" -eq 0 ]
	CRAC="$P1/bin/crac" require_image_engine
	checkpoint_restore "$P1"
	checkpoint_restore "$P2"
}

@test "relocated install: a prefix moved after the install still finds its tool and library" {
	mv "$P2" "$T/moved"
	run "$T/moved/bin/crac" run -- sh -c 'echo "$LD_PRELOAD"'
	mv "$T/moved" "$P2"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "$T/moved/lib/libcrac.so"* ]]
}

@test "relocated install: without its crac-cli, crac names every place it looked" {
	mkdir -p "$T/pfx/bin"
	cp "$P1/bin/crac" "$T/pfx/bin/crac"
	run "$T/pfx/bin/crac" --version
	echo "$output"
	if [ -x "$CONFIGURED/libexec/crac-cli" ]; then
		skip "an installed crac-cli in $CONFIGURED would answer"
	fi
	[ "$status" -eq 2 ]
	[[ "$output" == "crac: cannot run crac-cli, the crac command's tool: $T/pfx/bin/crac-cli: No such file or directory (errno 2); $T/pfx/bin/"*"/crac-cli: No such file or directory (errno 2); "*"/crac-cli: No such file or directory (errno 2)" ]]
}
