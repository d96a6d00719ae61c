#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo: php-cli, unmodified under `crac run` with no policy file: a warm
# array, the interpreter in fgets(STDIN), checkpointed from outside,
# restored twice one after the other and twice at once. See common.bash.

load common

setup() { zoo_setup; zoo_need php php-cli; }
teardown() { zoo_teardown; }

zoo_expect() { echo "answer $1 $((31 * $1)) 100000"; }

@test "zoo: php-cli (a warm array) restored twice, and twice at once" {
	zoo_stdin_test 60 php "$ZOO_PROGS/zoo.php"
}
