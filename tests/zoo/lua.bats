#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo (issue 11 §3): lua5.4, unmodified under `crac run` with no policy
# file: a warm table, the main thread in io.lines (fgets on stdin, holding
# the stdin FILE lock) when checkpointed from outside, restored twice one
# after the other and twice at once. See common.bash.

load common

setup() { zoo_setup; zoo_need lua5.4 lua5.4; }
teardown() { zoo_teardown; }

zoo_expect() { echo "answer $1 $((11 * $1)) 100000"; }

@test "zoo: lua5.4 (a warm table, checkpointed inside fgets) restored twice, and twice at once" {
	zoo_stdin_test 60 lua5.4 "$ZOO_PROGS/zoo.lua"
}
