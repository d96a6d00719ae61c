#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The temporary of a control endpoint's setup (DIR/PID-RANDOM.tmp, bound,
# then renamed to PID.sock once listening) outlives a process killed (-9)
# between its bind and its rename: nobody else would ever remove it. A
# later setup in the directory removes it (crac_ctl_sweep, ctl_dir.c) when
# PID is dead in our pid namespace, the file is a socket of our uid,
# untouched for a minute (CRAC_TEST_CONTROL_TMP_AGE_MS here: a process of
# another pid namespace, whose pid is not one of ours, may be between its
# bind and its listen), nothing listens on it, and it is still the file
# looked at when removed. Anything else there is left alone.
# CRAC_TEST_SLOW_FS=bound:MS holds a setup MS ms once bound (the window the
# tests kill it in).

bats_require_minimum_version 1.5.0

load common

setup() {
	common_setup ctltmp --open --control CRAC_TEST_SLOW_FS CRAC_TEST_CONTROL_TMP_AGE_MS CRAC_LOG \
		CRAC_TEST_SYNC_GRACE_MS
	PROG="$CRAC_BUILD_DIR/tests/ctlprog"
}

teardown() {
	common_teardown -9
}

TMPRE='^[0-9]\+-[0-9a-f]\{16\}\.tmp$'

# killed_in_setup DIR [PREFIX...]: a ctlprog (run by PREFIX..., e.g.
# setpriv) held once bound in DIR, killed -9 there; sets $dead (its pid)
# and $tmp (the temporary it left)
killed_in_setup() {
	local dir=$1
	shift
	spawn "$T/dead.out" "$T/dead.err" "$@" env CRAC_CONTROL_DIR="$dir" CRAC_TEST_SLOW_FS=bound:20000 \
		"$PROG" --control
	dead=$SPAWNED
	PIDS+=("$dead")
	tmp=
	for _ in $(seq 400); do
		tmp=$(ls "$dir" 2>/dev/null | grep "^$dead-" | grep -e "$TMPRE" || true)
		[ -n "$tmp" ] && break
		sleep 0.02
	done
	[ -n "$tmp" ]
	kill -9 "$dead"
	wait_gone "$dead" 4
	wait "$dead" 2>/dev/null || true
	[ -S "$dir/$tmp" ]
}

# start_prog OUT [VAR=VALUE...]: a ctlprog with its endpoint, in the
# background, ready (10 s at most); $pid
start_prog() {
	local out=$1
	shift
	spawn "$T/$out.out" "$T/$out.err" env "$@" "$PROG" --control
	pid=$SPAWNED
	PIDS+=("$pid")
	wait_line "$T/$out.out" ready 10 "$T/$out.err"
	cat "$T/$out.out" "$T/$out.err"
	grep -q "ready pid=$pid" "$T/$out.out"
}

@test "a setup killed (-9) between its bind and its rename: its temporary is removed by the next start once stale, which says so" {
	killed_in_setup "$T/ctl"
	ls -la "$T/ctl"
	start_prog b CRAC_TEST_CONTROL_TMP_AGE_MS=0 CRAC_LOG=info
	ls -la "$T/ctl"
	[ ! -e "$T/ctl/$tmp" ]
	[ -S "$T/ctl/$pid.sock" ]
	grep -q "1 stale temporary removed from $T/ctl" "$T/b.err"
	# nothing set aside left, no other temporary
	[ -z "$(ls "$T/ctl" | grep -v "^$pid\.sock$")" ]
	run "$CRAC" checkpoint --dry-run "$pid"
	[ "$status" -eq 0 ]
}

@test "a temporary younger than the age (a process of another pid namespace may be in its setup) is kept" {
	killed_in_setup "$T/ctl"
	start_prog b
	[ -S "$T/ctl/$tmp" ]
	[ -S "$T/ctl/$pid.sock" ]
}

@test "a dead pid's temporary something listens on (another pid namespace's, not yet renamed) is kept; so are a FIFO, a symbolic link, a file and another uid's socket at such names" {
	killed_in_setup "$T/ctl"
	# a dead pid's name, each a different thing
	d=$dead
	python3 - "$T/ctl/$d-1111111111111111.tmp" "$T/hold" <<'PY' &
import socket, sys, os, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(4)
open(sys.argv[2], "w").close()
time.sleep(60)
PY
	PIDS+=("$!")
	wait_until 10 "$T/hold" test -e "$T/hold"
	[ -S "$T/ctl/$d-1111111111111111.tmp" ]
	mkfifo -m 600 "$T/ctl/$d-2222222222222222.tmp"
	ln -s "$tmp" "$T/ctl/$d-3333333333333333.tmp"
	echo x > "$T/ctl/$d-4444444444444444.tmp"
	python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/ctl/$d-5555555555555555.tmp"
	if [ "$(id -u)" -eq 0 ]; then chown -h nobody "$T/ctl/$d-5555555555555555.tmp"; fi
	start_prog b CRAC_TEST_CONTROL_TMP_AGE_MS=0
	ls -la "$T/ctl"
	# the stale one (the link's target) removed; each of the others kept
	[ ! -e "$T/ctl/$tmp" ]
	[ -S "$T/ctl/$d-1111111111111111.tmp" ]
	[ -p "$T/ctl/$d-2222222222222222.tmp" ]
	[ -L "$T/ctl/$d-3333333333333333.tmp" ]
	[ "$(cat "$T/ctl/$d-4444444444444444.tmp")" = x ]
	if [ "$(id -u)" -eq 0 ]; then [ -S "$T/ctl/$d-5555555555555555.tmp" ]; fi
	! ls "$T/ctl" | grep -q '\.stale$'
}

@test "concurrent starts with a stale temporary: each gets its endpoint, the temporary removed once, nothing set aside left" {
	killed_in_setup "$T/ctl"
	for i in 1 2 3 4; do
		spawn "$T/c$i.out" "$T/c$i.err" env CRAC_TEST_CONTROL_TMP_AGE_MS=0 "$PROG" --control
		PIDS+=("$SPAWNED")
		c[$i]=$SPAWNED
	done
	for i in 1 2 3 4; do
		wait_line "$T/c$i.out" ready 10 "$T/c$i.err"
		cat "$T/c$i.err"
		grep -q "ready pid=${c[$i]}" "$T/c$i.out"
		[ -S "$T/ctl/${c[$i]}.sock" ]
	done
	ls -la "$T/ctl"
	[ ! -e "$T/ctl/$tmp" ]
	! ls "$T/ctl" | grep -q '\.stale$'
	! ls "$T/ctl" | grep -q '\.tmp$'
}

@test "unprivileged (nobody): a stale temporary of nobody's removed by nobody's next start; root's socket at such a name kept" {
	[ "$(id -u)" -eq 0 ] || skip "needs root (to become nobody)"
	command -v setpriv >/dev/null || skip "needs setpriv(1)"
	id nobody >/dev/null 2>&1 || skip "no user nobody"
	mkdir -m 755 "$T/home"
	chown nobody "$T/home"
	nob=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
	killed_in_setup "$T/home/ctl" "${nob[@]}"
	[ "$(stat -c %U "$T/home/ctl/$tmp")" = nobody ]
	# root's socket at a dead pid's temporary name in nobody's directory
	python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
		"$T/home/ctl/$dead-5555555555555555.tmp"
	spawn "$T/b.out" "$T/b.err" "${nob[@]}" env CRAC_CONTROL_DIR="$T/home/ctl" CRAC_TEST_CONTROL_TMP_AGE_MS=0 \
		"$PROG" --control
	pid=$SPAWNED
	PIDS+=("$pid")
	wait_line "$T/b.out" ready 10 "$T/b.err"
	cat "$T/b.out" "$T/b.err"
	ls -la "$T/home/ctl"
	grep -q "ready pid=$pid" "$T/b.out"
	[ ! -e "$T/home/ctl/$tmp" ]
	[ -S "$T/home/ctl/$dead-5555555555555555.tmp" ]
	[ -S "$T/home/ctl/$pid.sock" ]
}
