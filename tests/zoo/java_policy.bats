#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A JVM as in java.bats (no flag), with a policy that says what to do with
# its class image instead of carrying it: `file JAVA_HOME/lib/modules
# reopen` (reopened by path at restore). Checkpointed from outside,
# restored twice one after the other and twice at once; each answer is
# computed by a pool thread of the restored JVM.

load common

setup() {
	zoo_setup
	zoo_need java openjdk-17-jdk-headless
	zoo_need javac openjdk-17-jdk-headless
	javac -d "$T" "$ZOO_PROGS/Zoo.java"
	JHOME="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
	[ -f "$JHOME/lib/modules" ] || skip "no lib/modules under $JHOME"
	echo "file $JHOME/lib/modules reopen" >"$T/policies"
}
teardown() { zoo_teardown; }

zoo_expect() { echo "answer $1 $((19 * $1)) 100000 pool=4"; }

@test "zoo: java with a policy for lib/modules restored twice, and twice at once" {
	zoo_stdin_test 120 --opts --policies "$T/policies" -- java -cp "$T" Zoo
}
