#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A restore under a low RLIMIT_NOFILE (probe s20): the loader holds every
# mapped file of the image open from its check until it is mapped, so an
# image that maps more files than the limit allows is refused before the
# point of no return. The refusal said only "mapped file PATH: Too many open
# files"; it now names the limit, the number of files the image maps, and
# what to do.

load common

setup() {
	common_setup nofile --control-made
	require_image_engine
	need_python
}

teardown() {
	common_teardown -9
}

@test "an image that maps more files than RLIMIT_NOFILE allows: refused naming the limit, then restored with it raised" {
	spawn "$T/prog.out" "$T/prog.out" "$CRAC" run -- "$PY" -c '
import json, sqlite3, decimal, ssl, sys, time
print("ready", flush=True)
while True:
    line = sys.stdin.readline()   # (EOF at once before the checkpoint: /dev/null)
    if line:
        print("answer " + line.strip(), flush=True)
        break
    time.sleep(0.05)
'
	prog=$SPAWNED
	PIDS+=("$prog")
	image_of_ready "$prog" "$T/prog.out"
	run bash -c "ulimit -n 12; echo x | exec '$CRAC' restore '$T/img'"
	echo "$output"
	[ "$status" -ne 0 ]
	echo "$output" | grep -Eq "^crac: restore $T/img: mapped file .*: Too many open files \(errno 24\): the image maps [0-9]+ files, each held open until it is mapped, and RLIMIT_NOFILE is 12 \(raise it: ulimit -n\)$"
	# the same image with the limit as it was
	run bash -c "echo x | exec '$CRAC' restore '$T/img'"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "answer x" ]
}
