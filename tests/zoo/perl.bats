#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo (issue 11 §3): perl, unmodified under `crac run` with no policy
# file: a warm hash, checkpointed from outside, restored twice one after
# the other and twice at once; each copy answers from the hash built before
# the checkpoint. See common.bash.

load common

setup() { zoo_setup; zoo_need perl perl; }
teardown() { zoo_teardown; }

zoo_expect() { echo "answer $1 $((5 * $1)) 100000"; }

@test "zoo: perl (a warm hash) restored twice, and twice at once, answers from its hash" {
	zoo_stdin_test 60 perl "$ZOO_PROGS/zoo.pl"
}
