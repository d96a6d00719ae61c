#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# docs/guide.md is run: every block fenced as ```sh (not those marked
# "sh (not run)", which need root and a running systemd) is extracted in
# order into one bash script and run with `set -e` in a private $HOME, with
# this build's crac first on PATH. A command of the guide that fails (or a
# `until` loop that never ends: the timeout) fails this test.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-guide.XXXXXX)"
	chmod 755 "$T"
	require_image_engine
	for c in python3 curl pgrep; do
		command -v "$c" >/dev/null || skip "the guide needs $c"
	done
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LOG
}

teardown() {
	pkill -f "crac-bats-guide.*/www" 2>/dev/null || true
	pkill -f "http.server --bind 127.0.0.1 --directory $T" 2>/dev/null || true
	rm -rf "$T"
}

@test "every sh block of docs/guide.md runs" {
	{
		echo 'set -eu'
		# background jobs of the guide are stopped whatever happens
		echo 'trap '"'"'kill $(jobs -p) 2>/dev/null || true'"'"' EXIT'
		awk '/^```sh$/ { on = 1; print "# ---- block " ++n; next }
		     /^```/ { on = 0; next }
		     on { print }' "$CRAC_SOURCE_DIR/docs/guide.md"
	} >"$T/guide.sh"
	grep -c '^# ---- block' "$T/guide.sh"
	[ "$(grep -c '^# ---- block' "$T/guide.sh")" -ge 8 ]
	mkdir -m 0700 "$T/home" "$T/home/ctl"
	run clean env HOME="$T/home" CRAC_CONTROL_DIR="$T/home/ctl" \
		PATH="$CRAC_BUILD_DIR:$PATH" timeout 300 bash -x "$T/guide.sh" </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	# what the guide says happened, happened
	grep -q "no image at $T/home/warm" "$T/home/first.log"
	grep -q "written to $T/home/warm" "$T/home/first.log"
	! grep -q "starting python3 cold" "$T/home/second.log" || false
	grep -q "starting python3 cold" "$T/home/third.log"
	echo "$output" | grep -q "hello from a warm python"
	echo "$output" | grep -qx "read: first restore"
	echo "$output" | grep -qx "read: second restore"
}
