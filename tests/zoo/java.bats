#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo (issue 11 §3): a JVM (progs/Zoo.java: a warm HashMap and a fixed
# pool of 4 threads), unmodified under `crac run` with no policy file,
# checkpointed from outside, restored twice one after the other and twice
# at once; each answer is computed by a pool thread of the restored JVM.
#
# Flags: -XX:-UsePerfData. Without it the JVM maps /tmp/hsperfdata_USER/PID
# shared and writable (the jstat/jcmd counters), which the safety checks
# refuse: a file written by others is not kept in sync by an image.
# Nothing else is needed for the image engine. The JVM keeps its class
# image lib/modules open for as long as it runs: refused until the image
# engine carries open files (issue 11 §2), which this test then skips with
# crac check's line. java_policy.bats runs the same with a policy for that
# file, and must pass today.

load common

setup() {
	zoo_setup
	zoo_need java openjdk-17-jdk-headless
	zoo_need javac openjdk-17-jdk-headless
	javac -d "$T" "$ZOO_PROGS/Zoo.java"
}
teardown() { zoo_teardown; }

zoo_expect() { echo "answer $1 $((19 * $1)) 100000 pool=4"; }

@test "zoo: java (warm class, pool of 4 threads) restored twice, and twice at once" {
	mkfifo "$T/in"
	sleep 3600 >"$T/in" &
	ZOO_KILL="$ZOO_KILL $!"
	ZOO_STDIN="$T/in" zoo_run java -XX:-UsePerfData -cp "$T" Zoo
	zoo_wait '^ready' "$T/out" 120
	zoo_refused_or_skip "its open class image lib/modules"
	zoo_query 5 >"$T/in"
	zoo_wait "^$(zoo_expect 5)\$" "$T/out" 30
	zoo_checkpoint
	zoo_restore_answers "$T/r1" 7 99999 0
	zoo_restore_answers "$T/r2" 12345 1
	local a b sa=0 sb=0
	zoo_query 42 | clean timeout 120 "$CRAC" restore "$T/img" >"$T/c1" 2>&1 &
	a=$!
	zoo_query 777 | clean timeout 120 "$CRAC" restore "$T/img" >"$T/c2" 2>&1 &
	b=$!
	wait "$a" || sa=$?
	wait "$b" || sb=$?
	zoo_compare "$T/c1" "$sa" 42
	zoo_compare "$T/c2" "$sb" 777
}
