#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo (issue 11 §3): bash, unmodified under `crac run` with no policy
# file, running the zoo's script given with -c: a warm associative array,
# the shell in `read`, checkpointed from outside, restored twice one after
# the other and twice at once. (`bash FILE` keeps FILE open on fd 255:
# bash_file.bats.) See common.bash.

load common

setup() { zoo_setup; zoo_need bash bash; }
teardown() { zoo_teardown; }

zoo_expect() { echo "answer $1 $((17 * $1)) 20000"; }
ZOO_MAXKEY=19999

@test "zoo: bash -c (a warm associative array) restored twice, and twice at once" {
	zoo_stdin_test 60 bash -c "$(cat "$ZOO_PROGS/zoo.bash")"
}
