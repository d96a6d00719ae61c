#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo (issue 11 §3): sqlite3, its default shell reading SQL from stdin
# (fgets, holding the stdin FILE lock, when checkpointed), an in-memory
# database of 100000 rows built by its -init file; unmodified under `crac
# run` with no policy file, checkpointed from outside, restored twice one
# after the other and twice at once. (On-disk database: sqlite3_disk.bats.)
# See common.bash.

load common

setup() { zoo_setup; zoo_need sqlite3 sqlite3; }
teardown() { zoo_teardown; }

zoo_query() { echo "select 'answer', k, v, (select count(*) from t) from t where k = $1;"; }
zoo_expect() { echo "answer $1 $((13 * $1)) 100000"; }
zoo_eof() { :; }   # the shell says nothing at the end of its input

@test "zoo: sqlite3 (in-memory database, default shell on stdin) restored twice, and twice at once" {
	zoo_stdin_test 60 sqlite3 -init "$ZOO_PROGS/zoo.sql" :memory:
}
