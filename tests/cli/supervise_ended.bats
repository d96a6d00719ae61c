#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `crac run` / `crac start` with a trigger that fires when the program has
# ended already (--checkpoint-after 0 of a program that exits at once, or
# is killed): crac says that the program ended (its exit status, or the
# signal) before the checkpoint, and that no image was written; never that
# "no process N" "keeps running cold" (src/cli/supervise.c).

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-superend.XXXXXX)"
	chmod 755 "$T"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
}

teardown() {
	rm -rf "$T"
}

# check_said STDERR PATTERN: the trigger's line, if any, says the end.
# (The trigger may also lose the race and not fire at all: the program's
# end is seen first; then nothing is said.)
check_said() {
	local err=$1 what=$2
	echo "stderr: $err"
	! grep -q "keeps running" <<<"$err"
	! grep -q "no process" <<<"$err"
	if [ -n "$err" ]; then
		grep -Eq "^crac: (run|start): process [0-9]+ $what before the checkpoint that --checkpoint-after 0 ms started could take it: no image was written$" <<<"$err"
		[ "$(wc -l <<<"$err")" -eq 1 ]
	fi
}

@test "crac run --checkpoint-after 0 of a program that exits: its status, no image" {
	local said=0
	for i in $(seq 1 8); do
		run --separate-stderr clean timeout 60 "$CRAC" run --checkpoint-to "$T/img" --checkpoint-after 0 -- sh -c 'exit 3'
		[ "$status" -eq 3 ]
		check_said "$stderr" "exited with status 3"
		[ -z "$stderr" ] || said=$((said + 1))
		[ ! -e "$T/img" ]
	done
	echo "said: $said of 8"
	[ "$said" -gt 0 ]
}

@test "crac run --checkpoint-after 0 of a program that is killed: its signal, no image" {
	local said=0
	for i in $(seq 1 8); do
		run --separate-stderr clean timeout 60 "$CRAC" run --checkpoint-to "$T/img" --checkpoint-after 0 -- sh -c 'kill -TERM $$'
		[ "$status" -eq 143 ]
		check_said "$stderr" "was killed by signal 15 \\(Terminated\\)"
		[ -z "$stderr" ] || said=$((said + 1))
		[ ! -e "$T/img" ]
	done
	echo "said: $said of 8"
	[ "$said" -gt 0 ]
}

@test "crac start --checkpoint-after 0 of a program that exits: its status, no image" {
	local said=0 err
	for i in $(seq 1 8); do
		run --separate-stderr clean timeout 60 "$CRAC" start --image "$T/img" --checkpoint-after 0 -- sh -c 'exit 4'
		[ "$status" -eq 4 ]
		# each start says why DIR is not restored: there is no image
		err=$(grep -v "^crac: start: no image at $T/img yet: starting sh cold$" <<<"$stderr" || true)
		check_said "$err" "exited with status 4"
		[ -z "$err" ] || said=$((said + 1))
		[ ! -e "$T/img/crac.img" ]
	done
	echo "said: $said of 8"
	[ "$said" -gt 0 ]
}
