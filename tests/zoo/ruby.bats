#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo: ruby, unmodified under `crac run` with no policy file: a warm
# hash and 2 worker threads (Ruby's threads are kernel threads), the main
# thread reading stdin, checkpointed from outside, restored twice one after
# the other and twice at once; each answer is computed by a worker of the
# restored VM. The VM holds a POSIX timer (SIGVTALRM on CLOCK_MONOTONIC, to
# the process: its thread scheduling), which the image engine creates again
# with its id (Linux 6.14+; timers_posix.bats); before, it was refused. See
# common.bash.

load common

setup() { zoo_setup; zoo_need ruby ruby; }
teardown() { zoo_teardown; }

zoo_expect() { echo "answer $1 $((29 * $1)) 100000 workers=2"; }

@test "zoo: ruby (a warm hash, 2 worker threads) restored twice, and twice at once" {
	zoo_stdin_test 60 ruby "$ZOO_PROGS/zoo.rb"
}
