#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo: tclsh8.6, unmodified under `crac run` with no policy file: a warm
# array, the interpreter in `gets stdin`, checkpointed from outside,
# restored twice one after the other and twice at once. See common.bash.

load common

setup() { zoo_setup; zoo_need tclsh tcl; }
teardown() { zoo_teardown; }

zoo_expect() { echo "answer $1 $((23 * $1)) 100000"; }

@test "zoo: tclsh (a warm array) restored twice, and twice at once" {
	zoo_stdin_test 60 tclsh "$ZOO_PROGS/zoo.tcl"
}
