#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A program whose executable was replaced while it runs (a package
# upgrade: the new file renamed over the old one) maps a deleted file, which
# the image engine cannot hold whatever a policy says (image_capture.c:
# "mapping ... of deleted file ... cannot be restored"). The safety checks
# suggested `mapping "PATH (deleted)" warn`, "accepts it anyway"; with that
# rule `crac check` said nothing stood in the way and the checkpoint then
# failed in the engine (probe s20). Now the check says that no policy helps
# the image engine and what does (start the program again), and refuses a
# warn rule for it.

load common

setup() {
	T="$(mktemp -d /tmp/crac-bats-delmap.XXXXXX)"
	CRAC="$CRAC_BUILD_DIR/crac"
	export CRAC_CONTROL_DIR="$T/ctl"
	mkdir -m 0700 "$CRAC_CONTROL_DIR"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
	require_image_engine
	# a program of our own to replace: a copy of sleep
	cp "$(command -v sleep)" "$T/prog"
	PID=""
}

teardown() {
	[ -z "$PID" ] || kill "$PID" 2>/dev/null || true
	rm -rf "$T"
}

# start [RUN OPTIONS...]: $T/prog under crac run; $PID
start() {
	spawn "$T/out" "$T/out" "$CRAC" run "$@" -- "$T/prog" 120
	PID=$SPAWNED
	wait_sock "$CRAC_CONTROL_DIR/$PID.sock" 10
	# the upgrade: a new file renamed over the one it runs
	cp "$T/prog" "$T/prog.new"
	mv "$T/prog.new" "$T/prog"
}

@test "an executable replaced while it runs: the check suggests no policy the image engine would refuse anyway" {
	start
	run "$CRAC" check "$PID"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"check mapping $T/prog (deleted): "*"private mapping of a deleted file"* ]]
	[[ "$output" == *"the image engine cannot hold it, whatever a policy says: start the program again"* ]]
	[[ "$output" != *"warn\` accepts it anyway"* ]]
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" "$PID"
	echo "$output"
	[ "$status" -eq 1 ]
	[ ! -e "$T/img" ]
	kill -0 "$PID"
}

@test "a warn rule for such a mapping: refused by the check, naming the rule; the program runs on" {
	echo "mapping \"$T/prog (deleted)\" warn" >"$T/policies"
	start --policies "$T/policies"
	run "$CRAC" check "$PID"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"check mapping $T/prog (deleted): "*"policy \"mapping \"$T/prog (deleted)\" warn\" says warn, but the image engine cannot hold it"* ]]
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" "$PID"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"says warn, but the image engine cannot hold it"* ]]
	[ ! -e "$T/img" ]
	kill -0 "$PID"
}
