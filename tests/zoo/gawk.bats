#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo (issue 11 §3): gawk, unmodified under `crac run` with no policy
# file: a warm array, checkpointed from outside, restored twice one after
# the other and twice at once. See common.bash.

load common

setup() { zoo_setup; zoo_need gawk gawk; }
teardown() { zoo_teardown; }

zoo_expect() { echo "answer $1 $((7 * $1)) 100000"; }

@test "zoo: gawk (a warm array) restored twice, and twice at once, answers from its array" {
	zoo_stdin_test 60 gawk -f "$ZOO_PROGS/zoo.awk"
}
