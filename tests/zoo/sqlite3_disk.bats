#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo (issue 11 §3): sqlite3 with an on-disk database file (100000 rows
# written by its -init file), its default shell reading SQL from stdin;
# unmodified under `crac run` with no policy file. It holds the database
# file open: refused until the image engine carries open files (issue 11
# §2), which the test then skips with crac check's line; once not refused,
# it must restore twice, and twice at once, and answer from the file.

load common

setup() { zoo_setup; zoo_need sqlite3 sqlite3; }
teardown() { zoo_teardown; }

zoo_query() { echo "select 'answer', k, v, (select count(*) from t) from t where k = $1;"; }
zoo_expect() { echo "answer $1 $((13 * $1)) 100000"; }
zoo_eof() { :; }   # the shell says nothing at the end of its input

@test "zoo: sqlite3 (on-disk database file) restored twice, and twice at once" {
	mkfifo "$T/in"
	sleep 3600 >"$T/in" &
	ZOO_KILL="$ZOO_KILL $!"
	ZOO_STDIN="$T/in" zoo_run sqlite3 -init "$ZOO_PROGS/zoo.sql" "$T/zoo.db"
	zoo_wait '^ready' "$T/out" 60
	zoo_refused_or_skip "its open database file"
	# not refused: the whole stdin test on the same process
	zoo_query 5 >"$T/in"
	zoo_wait "^$(zoo_expect 5)\$" "$T/out" 30
	zoo_checkpoint
	zoo_restore_answers "$T/r1" 7 99999 0
	zoo_restore_answers "$T/r2" 12345 1
	local a b sa=0 sb=0
	{ zoo_query 42; } | clean timeout 120 "$CRAC" restore "$T/img" >"$T/c1" 2>&1 &
	a=$!
	{ zoo_query 777; } | clean timeout 120 "$CRAC" restore "$T/img" >"$T/c2" 2>&1 &
	b=$!
	wait "$a" || sa=$?
	wait "$b" || sb=$?
	zoo_compare "$T/c1" "$sa" 42
	zoo_compare "$T/c2" "$sb" 777
}
