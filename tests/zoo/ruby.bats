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

setup() {
	zoo_setup
	zoo_need ruby ruby
	# the VM's POSIX timer comes back only where the kernel can give a
	# timer its id again (`crac check` with no PID says)
	! "$CRAC" check 2>&1 | grep -q '^  timer ids  *no' ||
		skip "this kernel cannot create a timer with a given id (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.14): Ruby's VM timer would be refused"
}
teardown() { zoo_teardown; }

zoo_expect() { echo "answer $1 $((29 * $1)) 100000 workers=2"; }

@test "zoo: ruby (a warm hash, 2 worker threads) restored twice, and twice at once" {
	zoo_stdin_test 60 ruby "$ZOO_PROGS/zoo.rb"
}
