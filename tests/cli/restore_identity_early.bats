#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Every restored instance has its own identity (crac_instance_id: a new
# instance id, generation + 1), also for a thread of the program that asks
# at once: a request already waiting when the restore lets the program's
# threads go. The image engine lets them go before the after_restore
# callbacks, and the identity used to be renewed only then: two copies
# restored at once with their input waiting both answered with the image's
# instance id and generation 0, the original's (probe s20). Now the engine
# renews it before any other thread runs, as it does the clock and crac's
# random generators.

load common

setup() {
	need_python
	common_setup idearly --control-made
	require_image_engine
	# the binding from the source tree; it uses the libcrac `crac run` preloaded
	export PYTHONPATH="${CRAC_SOURCE_DIR:-$BATS_TEST_DIRNAME/../..}/bindings/python"
}

teardown() {
	common_teardown -9
}

# one line per line of stdin: the line, the instance id, the generation
PROG='
import sys, crac
print("ready", flush=True)
for line in sys.stdin:
    u, g = crac.instance_id()
    print(line.strip(), u, g, flush=True)
print("eof", flush=True)
'

@test "copies restored at once with their input waiting: each answers with its own instance id, generation 1" {
	mkfifo "$T/in"
	sleep 300 >"$T/in" &
	PIDS+=("$!")
	SPAWN_STDIN="$T/in" spawn "$T/prog.out" "$T/prog.out" "$CRAC" run -- "$PY" -c "$PROG"
	PIDS+=("$SPAWNED")
	wait_line "$T/prog.out" '^ready' 10
	echo before >"$T/in"
	wait_line "$T/prog.out" '^before ' 10
	cat "$T/prog.out"
	local orig
	orig=$(awk '$1 == "before" { print $2 }' "$T/prog.out")
	[ -n "$orig" ]
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" "$SPAWNED"
	echo "$output"
	[ "$status" -eq 0 ]
	local round mode a b
	for round in 1 2 3; do
		for mode in "" --populate; do
			echo q | clean "$CRAC" restore $mode "$T/img" >"$T/a.out" 2>&1 &
			a=$!
			echo q | clean "$CRAC" restore $mode "$T/img" >"$T/b.out" 2>&1 &
			b=$!
			wait "$a"
			wait "$b"
			echo "round $round, restore $mode:"
			cat "$T/a.out" "$T/b.out"
			# each: "q ID 1", then eof
			[ "$(awk '$1 == "q" { print $3 }' "$T/a.out")" = 1 ]
			[ "$(awk '$1 == "q" { print $3 }' "$T/b.out")" = 1 ]
			ida=$(awk '$1 == "q" { print $2 }' "$T/a.out")
			idb=$(awk '$1 == "q" { print $2 }' "$T/b.out")
			[ -n "$ida" ] && [ -n "$idb" ]
			[ "$ida" != "$orig" ]
			[ "$idb" != "$orig" ]
			[ "$ida" != "$idb" ]
		done
	done
}
