#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo (issue 11 §3): `bash FILE`, unmodified under `crac run` with no
# policy file. bash reads its script through a descriptor it keeps open
# (fd 255) for as long as it runs: refused until the image engine carries
# open files (issue 11 §2), which the test then skips with crac check's
# line; once not refused, it must restore twice, and twice at once.

load common

setup() { zoo_setup; zoo_need bash bash; }
teardown() { zoo_teardown; }

zoo_expect() { echo "answer $1 $((17 * $1)) 20000"; }

@test "zoo: bash FILE (a warm associative array) restored twice, and twice at once" {
	mkfifo "$T/in"
	sleep 3600 >"$T/in" &
	ZOO_KILL="$ZOO_KILL $!"
	ZOO_STDIN="$T/in" zoo_run bash "$ZOO_PROGS/zoo.bash"
	zoo_wait '^ready' "$T/out" 60
	zoo_refused_or_skip "its open script file (fd 255)"
	zoo_query 5 >"$T/in"
	zoo_wait "^$(zoo_expect 5)\$" "$T/out" 30
	zoo_checkpoint
	zoo_restore_answers "$T/r1" 7 19999 0
	zoo_restore_answers "$T/r2" 12345 1
	local a b sa=0 sb=0
	zoo_query 42 | clean timeout 120 "$CRAC" restore "$T/img" >"$T/c1" 2>&1 &
	a=$!
	zoo_query 777 | clean timeout 120 "$CRAC" restore "$T/img" >"$T/c2" 2>&1 &
	b=$!
	wait "$a" || sa=$?
	wait "$b" || sb=$?
	zoo_compare "$T/c1" "$sa" 42
	zoo_compare "$T/c2" "$sb" 777
}
