#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The control directory is opened once, component by component, checked on
# its descriptor and used only through it (src/core/ctl_dir.c, control.c):
# a component of its path swapped for a symbolic link between the check
# and the use (a directory above it another uid may write to) must not
# lead the bind, the rename or the removal of the socket elsewhere.
# CRAC_TEST_CONTROL_SWAP=PATH and CRAC_TEST_CONTROL_SWAP_TO=TARGET
# (control.c, tests only): once the directory is checked, PATH is renamed
# to PATH.swapped and a link to TARGET put in its place.
# CRAC_TEST_CONTROL_NOPROC=1: the setup acts as if /proc were not mounted.

bats_require_minimum_version 1.5.0

load common

setup() {
	common_setup ctldir --open CRAC_TEST_CONTROL_SWAP CRAC_TEST_CONTROL_SWAP_TO CRAC_TEST_CONTROL_NOPROC
	unset CRAC_CONTROL_DIR
	PROG="$CRAC_BUILD_DIR/tests/ctlprog"
}

teardown() {
	common_teardown
}

# started PID: once ctlprog (pid PID) said ready, in $T/p.out (10 s at most)
started() {
	wait_line "$T/p.out" ready 10 "$T/p.err"
	cat "$T/p.out" "$T/p.err"
	grep -q "ready pid=$1" "$T/p.out"
}

# (The runs expected to be refused are bounded by timeout: a control
# endpoint that started where it should not have would wait for SIGTERM.)

# nothing_in DIR: DIR holds no file (the attacker's directory stays empty)
nothing_in() {
	ls -la "$1"
	[ -z "$(ls -A "$1")" ]
}

@test "a component above the control directory swapped for a link after the check: nothing is bound or renamed into the link's target, the setup refuses naming the directory" {
	mkdir -m 777 "$T/att" "$T/evil"
	mkdir -m 700 "$T/att/ctl" "$T/evil/ctl"
	run timeout 20 env CRAC_CONTROL_DIR="$T/att/ctl" CRAC_TEST_CONTROL_SWAP="$T/att" CRAC_TEST_CONTROL_SWAP_TO="$T/evil" \
		"$PROG" --control
	echo "$output"
	[ "$status" -eq 1 ]
	nothing_in "$T/evil/ctl"
	# bound in the directory checked (moved aside), never renamed out of it
	ls -la "$T/att.swapped/ctl"
	[ -z "$(find "$T/evil" -type s)" ]
	[ -n "$(find "$T/att.swapped/ctl" -type s)" ]
	[[ "$output" == *"control: the rename of $T/att/ctl/"*".tmp to $T/att/ctl/"*".sock: refused: $T/att/ctl is not the directory the setup checked any more"* ]]
}

@test "the control directory itself swapped for a link after the check: nothing lands in the link's target" {
	mkdir -m 777 "$T/att"
	mkdir -m 700 "$T/att/ctl" "$T/evil"
	run timeout 20 env CRAC_CONTROL_DIR="$T/att/ctl" CRAC_TEST_CONTROL_SWAP="$T/att/ctl" CRAC_TEST_CONTROL_SWAP_TO="$T/evil" \
		"$PROG" --control
	echo "$output"
	[ "$status" -eq 1 ]
	nothing_in "$T/evil"
	[ -n "$(find "$T/att/ctl.swapped" -type s)" ]
	[[ "$output" == *"refused: refusing $T/att/ctl: it must be a directory owned by uid $(id -u) with mode 0700 (it is a symlink"* ]]
}

@test "a symbolic link on the way in a directory others may write to is refused, naming it; one only its owner (root or us) may replace is followed" {
	mkdir -m 777 "$T/pub"
	mkdir -m 755 "$T/real"
	ln -s "$T/real" "$T/pub/link"
	run timeout 20 env CRAC_CONTROL_DIR="$T/pub/link/ctl" "$PROG" --control
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"control: refusing $T/pub/link/ctl: $T/pub/link on its way is a symbolic link in a directory another uid may write to"* ]]
	[ ! -e "$T/real/ctl" ]
	# the same link in $T (ours, writable by nobody else): followed
	ln -s "$T/real" "$T/link"
	spawn "$T/p.out" "$T/p.err" env CRAC_CONTROL_DIR="$T/link/ctl" "$PROG" --control
	pid=$SPAWNED
	PIDS+=("$pid")
	started "$pid"
	[ -S "$T/real/ctl/$pid.sock" ]
	[ "$(stat -c %a "$T/real/ctl")" = 700 ]
	[ "$(stat -c %a "$T/real/ctl/$pid.sock")" = 600 ]
	run "$CRAC_BUILD_DIR/crac" checkpoint --dry-run "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	kill "$pid"
	wait "$pid" || true
	# removed at the end, through the directory checked
	[ ! -e "$T/real/ctl/$pid.sock" ]
}

@test "a link in a sticky directory (/tmp) is followed only when its owner is us or root" {
	id nobody >/dev/null 2>&1 || skip "no user nobody"
	[ "$(id -u)" -eq 0 ] || skip "needs root (to give the link to nobody)"
	mkdir -m 1777 "$T/sticky"
	mkdir -m 755 "$T/real"
	ln -s "$T/real" "$T/sticky/theirs"
	chown -h nobody "$T/sticky/theirs"
	run timeout 20 env CRAC_CONTROL_DIR="$T/sticky/theirs/ctl" "$PROG" --control
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"refusing $T/sticky/theirs/ctl: $T/sticky/theirs on its way is a symbolic link"* ]]
	[ ! -e "$T/real/ctl" ]
	ln -s "$T/real" "$T/sticky/ours"
	spawn "$T/p.out" "$T/p.err" env CRAC_CONTROL_DIR="$T/sticky/ours/ctl" "$PROG" --control
	pid=$SPAWNED
	PIDS+=("$pid")
	started "$pid"
	[ -S "$T/real/ctl/$pid.sock" ]
}

@test "without /proc: bound by its path where no other uid can replace an entry on the way, refused (saying why, naming the entry) where one can" {
	mkdir -m 777 "$T/att"
	run timeout 20 env CRAC_CONTROL_DIR="$T/att/ctl" CRAC_TEST_CONTROL_NOPROC=1 "$PROG" --control
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"control: refusing $T/att/ctl: /proc is not mounted here"*"$T/att/ctl on its way may be replaced by another uid"* ]]
	[ -z "$(find "$T/att" -type s)" ]
	# $T: ours, writable by nobody else
	spawn "$T/p.out" "$T/p.err" env CRAC_CONTROL_DIR="$T/ctl" CRAC_TEST_CONTROL_NOPROC=1 "$PROG" --control
	pid=$SPAWNED
	PIDS+=("$pid")
	started "$pid"
	[ -S "$T/ctl/$pid.sock" ]
	[ "$(stat -c %a "$T/ctl/$pid.sock")" = 600 ]
}

@test "unprivileged (nobody): the control directory made and used through its descriptor, a client connects, the socket removed at the end" {
	[ "$(id -u)" -eq 0 ] || skip "needs root (to become nobody)"
	command -v setpriv >/dev/null || skip "needs setpriv(1)"
	id nobody >/dev/null 2>&1 || skip "no user nobody"
	mkdir -m 755 "$T/home"
	chown nobody "$T/home"
	nob() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
	spawn "$T/p.out" "$T/p.err" setpriv --reuid=nobody --regid=nogroup --clear-groups \
		env CRAC_CONTROL_DIR="$T/home/ctl" "$PROG" --control
	pid=$SPAWNED
	PIDS+=("$pid")
	started "$pid"
	[ -S "$T/home/ctl/$pid.sock" ]
	[ "$(stat -c %U:%a "$T/home/ctl")" = nobody:700 ]
	run nob env CRAC_CONTROL_DIR="$T/home/ctl" "$CRAC_BUILD_DIR/crac" checkpoint --dry-run "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	kill "$pid"
	wait_no_file "$T/home/ctl/$pid.sock" 5
}

@test "unprivileged (nobody): a component swapped for a link after the check leads nothing into the link's target either" {
	[ "$(id -u)" -eq 0 ] || skip "needs root (to become nobody)"
	command -v setpriv >/dev/null || skip "needs setpriv(1)"
	id nobody >/dev/null 2>&1 || skip "no user nobody"
	mkdir -m 755 "$T/home"
	chown nobody "$T/home"
	setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c \
		"mkdir -m 777 '$T/home/att' '$T/home/evil' && mkdir -m 700 '$T/home/att/ctl' '$T/home/evil/ctl'"
	run timeout 20 setpriv --reuid=nobody --regid=nogroup --clear-groups env CRAC_CONTROL_DIR="$T/home/att/ctl" \
		CRAC_TEST_CONTROL_SWAP="$T/home/att" CRAC_TEST_CONTROL_SWAP_TO="$T/home/evil" "$PROG" --control
	echo "$output"
	[ "$status" -eq 1 ]
	nothing_in "$T/home/evil/ctl"
	[ -n "$(find "$T/home/att.swapped/ctl" -type s)" ]
	[[ "$output" == *"control: the rename of $T/home/att/ctl/"*".tmp to $T/home/att/ctl/"*".sock: refused: $T/home/att/ctl is not the directory the setup checked any more"* ]]
}
