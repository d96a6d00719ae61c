#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo (issue 11 §3): a JVM (progs/Zoo.java: a warm HashMap and a fixed
# pool of 4 threads), unmodified under `crac run` with no policy file and no
# JVM flag, checkpointed from outside, restored twice one after the other
# and twice at once; each answer is computed by a pool thread of the
# restored JVM.
#
# No flag is needed. What a JVM holds that needs crac's care:
#  - /tmp/hsperfdata_USER/PID, its performance-data file (jstat's counters),
#    mapped shared and writable and written all the time: the image engine
#    stores its content and restores it as private memory (the file would
#    have changed by the restore). Before, the checks refused it and the
#    JVM needed -XX:-UsePerfData.
#  - its class image lib/modules, open for as long as it runs: carried as
#    an open file (same offset; refused at restore if the file changed).

load common

setup() {
	zoo_setup
	zoo_need java openjdk-17-jdk-headless
	zoo_need javac openjdk-17-jdk-headless
	javac -d "$T" "$ZOO_PROGS/Zoo.java"
}
teardown() { zoo_teardown; }

zoo_expect() { echo "answer $1 $((19 * $1)) 100000 pool=4"; }

@test "zoo: java with no flag (warm class, pool of 4 threads) restored twice, and twice at once" {
	zoo_stdin_test 120 java -cp "$T" Zoo
}

@test "zoo: java's perf-data file is stored as memory; the restored JVM answers jcmd" {
	zoo_need jcmd openjdk-17-jdk-headless
	mkfifo "$T/in" "$T/rin"
	sleep 3600 >"$T/in" &
	ZOO_KILL="$ZOO_KILL $!"
	ZOO_STDIN="$T/in" zoo_run java -cp "$T" Zoo
	zoo_wait '^ready' "$T/out" 120
	local perf="/tmp/hsperfdata_$(id -un)/$pid"
	grep -q " rw-s .* $perf\$" "/proc/$pid/maps" ||
		skip "this JVM maps no $perf (-XX:-UsePerfData in JAVA_TOOL_OPTIONS?)"
	zoo_check_ok
	zoo_checkpoint
	# one mapping of that name, private anonymous memory with its pages
	# stored; no file of that name among the image's mapped files
	run "$CRAC" inspect "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | grep -cF "$perf")" -eq 1 ]
	echo "$output" | grep -F "$perf" | grep -Eq " rw-p anon +32K +[1-9][0-9]*K "
	# a restored JVM (its stdin a FIFO: it runs until told) answers, and
	# its attach listener (a Unix socket it makes under its new pid when
	# jcmd signals it) works
	sleep 3600 >"$T/rin" &
	ZOO_KILL="$ZOO_KILL $!"
	zoo_restore_bg "$T/r1" "$T/rin"
	echo 8 >"$T/rin"
	zoo_wait "^$(zoo_expect 8)\$" "$T/r1" 60
	run timeout 60 jcmd "$rpid" VM.version
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "JDK"
	zoo_stop_restored
}
