#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `crac checkpoint` shows how far a checkpoint is (issue 13 item 5): the
# process sends progress records over the control connection when the
# request asks for them (token progress=1, control.c); on a terminal a
# checkpoint that takes over a second shows one progress line on stderr,
# erased at the end; elsewhere nothing; `--stats` prints one line with the
# pages scanned / stored / zero pages skipped, MiB written and the time of
# each phase. A client that does not ask gets the plain answer.
#
# The target is tests/progs/ckpt_heap (MIB of heap, the last ZERO_MIB of
# it all zero). CRAC_TEST_SLOW_PAGES_US (image.c, tests only) makes the
# page writer sleep after each piece of at most 1 MiB, so that a checkpoint
# of a small heap takes over a second.

load common
load start_common

setup() {
	T="$(mktemp -d /tmp/crac-bats-progress.XXXXXX)"
	chmod 755 "$T"
	start_setup
	HEAP="$CRAC_BUILD_DIR/tests/ckpt_heap"
	unset CRAC_TEST_SLOW_PAGES_US CRAC_IMAGE_STATS CRAC_IMAGE_KEEP_ZERO CRAC_IMAGE_WRITER
}

teardown() { start_teardown; }

# heap NAME MIB ZERO_MIB [ENV=VALUE...]: ckpt_heap in the background,
# ready; $pid.
heap() {
	local name=$1 mib=$2 zero=$3
	shift 3
	bg "$name" env "$@" "$HEAP" "$mib" "$zero"
	wait_for grep -qs '^ready' "$T/$name.out"
	wait_for test -S "$CRAC_CONTROL_DIR/$pid.sock"
}

# stat_of LINE KEY: the number before " KEY" in the --stats line
# ("8249 stored" -> stat_of "$line" stored).
stat_of() {
	echo "$1" | grep -Eo "[0-9]+ $2" | head -1 | cut -d' ' -f1
}

# on_tty CMD...: runs CMD with stdin, stdout and stderr on a pseudo-terminal
# (script(1), util-linux); everything it wrote is in $output.
on_tty() {
	command -v script >/dev/null || skip "no script(1) (util-linux) to give crac a terminal"
	local cmd
	printf -v cmd '%q ' "$@"
	run script -qfec "$cmd" /dev/null </dev/null
}

@test "--stats: one line with the pages scanned, stored and zero pages skipped, MiB written and each phase" {
	require_image_engine
	# a baseline without heap, then 64 MiB of which the last 32 MiB are zero
	heap base 0 0
	run "$CRAC" checkpoint --engine image --image-dir "$T/base" --keep-running --stats "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	base="$(echo "$output" | grep '^crac: checkpoint stats: ')"
	heap big 64 32
	run "$CRAC" checkpoint --engine image --image-dir "$T/big" --keep-running --stats "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "crac: image written to $T/big" ]]
	big="$(echo "$output" | grep '^crac: checkpoint stats: ')"
	[ "$(echo "$output" | grep -c '^crac: checkpoint stats: ')" -eq 1 ]
	# the heap's 8192 written pages are stored, its 8192 zero pages skipped
	stored=$(( $(stat_of "$big" stored) - $(stat_of "$base" stored) ))
	zero=$(( $(stat_of "$big" "zero pages skipped") - $(stat_of "$base" "zero pages skipped") ))
	scanned=$(( $(stat_of "$big" "pages scanned") - $(stat_of "$base" "pages scanned") ))
	echo "heap: $stored stored, $zero zero, $scanned scanned"
	[ "$stored" -ge 8190 ]
	[ "$stored" -le 8194 ]
	[ "$zero" -ge 8190 ]
	[ "$zero" -le 8194 ]
	[ "$scanned" -ge 16380 ]
	[ "$scanned" -le 16400 ]
	# what was written: about 32 MiB, and the image holds as much
	mib=$(echo "$big" | grep -Eo '[0-9.]+ MiB written' | cut -d' ' -f1)
	[ "${mib%.*}" -ge 32 ]
	[ "${mib%.*}" -le 33 ]
	[ "$(stat -c %s "$T/big/pages")" -eq $(( $(stat_of "$big" stored) * 4096 )) ]
	# the image engine's phases, in order, then the total
	[[ "$big" =~ "; inhibitors "[0-9.]+" ms, callbacks "[0-9.]+" ms, prepare "[0-9.]+" ms, freeze "[0-9.]+" ms, capture "[0-9.]+" ms, pages "[0-9.]+" ms, fsync "[0-9.]+" ms, verify "[0-9.]+" ms, after_restore "[0-9.]+" ms; total "[0-9.]+" ms"$ ]]
	# the image is good
	run "$CRAC" inspect "$T/big"
	[ "$status" -eq 0 ]
}

@test "--stats without --keep-running: the line still comes (before the process exits); sim engine: no pages" {
	require_image_engine
	heap one 8 0
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" --stats "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"crac: checkpoint stats: "*" pages scanned, "*" stored, "*" zero pages skipped, "*" MiB written ("*"; inhibitors "*", verify "*" ms; total "*" ms"* ]]
	[[ "$output" != *"after_restore"* ]]   # the process exited after its image
	wait_for bash -c "! kill -0 $pid 2>/dev/null"
	heap two 0 0
	run "$CRAC" checkpoint --engine sim --stats "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ "crac: checkpoint stats: no pages written; inhibitors "[0-9.]+" ms, callbacks "[0-9.]+" ms, after_restore "[0-9.]+" ms; total "[0-9.]+" ms" ]]
	# without --stats: no such line
	run "$CRAC" checkpoint --engine sim "$pid"
	[ "$status" -eq 0 ]
	[[ "$output" != *"stats"* ]]
	run "$CRAC" checkpoint --help
	[[ "$output" == *"  --stats "* ]]
}

@test "a checkpoint over a second on a terminal: one progress line (MiB of ~total, MiB/s, ETA), erased at the end" {
	require_image_engine
	heap one 64 0 CRAC_TEST_SLOW_PAGES_US=30000
	on_tty "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running "$pid"
	echo "$output" | cat -v
	[ "$status" -eq 0 ]
	# redrawn in place: carriage return, the line, erase to its end
	[[ "$output" == *$'\r'"crac: checkpoint of process $pid: writing pages, "*" of ~"*" MiB, "*" MiB/s, ETA "*" s"$'\e[K'* ]]
	# the total is about the heap (64 MiB and the program's own pages)
	total=$(echo "$output" | tr '\r' '\n' | grep -Eo 'of ~[0-9]+' | head -1 | cut -d'~' -f2)
	[ "$total" -ge 64 ]
	[ "$total" -le 66 ]
	# at most 10 redraws a second (the checkpoint takes about 2 s)
	n=$(echo "$output" | tr '\r' '\n' | grep -c '^crac: checkpoint of process')
	echo "$n redraws"
	[ "$n" -ge 3 ]
	[ "$n" -le 40 ]
	# erased before the answer, which is on a line of its own
	# (the terminal ends the line with \r\n)
	[[ "$output" == *$'\r\e[K'"crac: image written to $T/img"$'\r' ]]
}

@test "a checkpoint under a second on a terminal shows no progress line" {
	# (the sim engine: an image's fsync may take a second on a busy machine)
	heap one 8 0
	on_tty "$CRAC" checkpoint --engine sim "$pid"
	echo "$output" | cat -v
	[ "$status" -eq 0 ]
	[[ "$output" != *"checkpoint of process"* ]]
	[[ "$output" != *$'\e'* ]]
	[ "$(echo "$output" | tr -d '\r')" = "crac: simulated snapshot (sim engine: no image)" ]
}

@test "not on a terminal: no progress bytes at all, however long the checkpoint" {
	require_image_engine
	heap one 64 0 CRAC_TEST_SLOW_PAGES_US=30000
	start=$(date +%s%N)
	"$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running "$pid" >"$T/stdout" 2>"$T/stderr"
	took=$(( ($(date +%s%N) - start) / 1000000 ))
	echo "took $took ms"; cat -v "$T/stdout" "$T/stderr"
	[ "$took" -gt 1200 ]   # long enough for a progress line on a terminal
	[ ! -s "$T/stderr" ]
	[ "$(cat "$T/stdout")" = "crac: image written to $T/img" ]
}

@test "a client that does not ask for progress gets the plain answer; one that asks gets records, then the answer" {
	require_image_engine
	[ -x "$PY" ] || skip "no python3 to speak the control protocol"
	heap one 16 0 CRAC_TEST_SLOW_PAGES_US=10000
	# the raw protocol: one request line, the answer up to STATUS
	raw() {
		"$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall((" ".join(sys.argv[2:]) + "\n").encode())
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
sys.stdout.write(data.decode())
' "$CRAC_CONTROL_DIR/$pid.sock" "$@"
	}
	run raw CHECKPOINT engine=image "image=$T/old" keep=1
	echo "$output"
	[ "$status" -eq 0 ]
	# (1: CRAC_CONTINUED)
	[ "${lines[0]}" = "crac: image written to $T/old" ]
	[ "${lines[1]}" = "STATUS 1" ]
	[ "${#lines[@]}" -eq 2 ]
	run raw CHECKPOINT engine=image "image=$T/new" keep=1 progress=1
	echo "$output"
	[ "$status" -eq 0 ]
	# a record at each phase, more while the pages are written
	for p in inhibitors callbacks prepare freeze capture pages fsync verify after_restore; do
		echo "$output" | grep -Eq "^PROGRESS phase=$p elapsed_us=[0-9]+ phase_us=[0-9]+ done=[0-9]+ total=[0-9]+ written=[0-9]+$"
	done
	[ "$(echo "$output" | grep -c '^PROGRESS phase=pages ')" -ge 2 ]
	# the answer's text when the image is in place (before the
	# after_restore callbacks), at the end the figures and STATUS (1:
	# CRAC_CONTINUED)
	n=${#lines[@]}
	[ "$(echo "$output" | grep -vc '^PROGRESS ')" -eq 3 ]
	echo "$output" | grep -qx "crac: image written to $T/new"
	[[ "${lines[n-2]}" =~ ^"STATS elapsed_us="[0-9]+" scanned="[0-9]+" stored="[0-9]+" zero="[0-9]+" written="[0-9]+" threads="[0-9]+" maps="[0-9]+" inhibitors_us="[0-9]+" callbacks_us=" ]]
	[ "${lines[n-1]}" = "STATUS 1" ]
}

@test "a client that asks for progress and does not read never holds the checkpoint: records are dropped, none torn" {
	require_image_engine
	[ -x "$PY" ] || skip "no python3 to speak the control protocol"
	# a send buffer of a few records (CRAC_TEST_CONTROL_SNDBUF, control.c)
	heap one 32 0 CRAC_TEST_SLOW_PAGES_US=20000 CRAC_TEST_CONTROL_SNDBUF=1
	run "$PY" -c '
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(("CHECKPOINT engine=image image=%s keep=1 progress=1\n" % sys.argv[2]).encode())
# not a byte read until the image is in place
t0 = time.time()
while not os.path.isdir(sys.argv[2]):
    if time.time() - t0 > 30:
        sys.exit("no image after 30 s: the checkpoint waited for the client")
    time.sleep(0.05)
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
sys.stdout.write(data.decode())
' "$CRAC_CONTROL_DIR/$pid.sock" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	# every line whole; the records of the pages phase (about 10 a second
	# for over a second) did not all fit
	n=${#lines[@]}
	for ((i = 0; i < n - 3; i++)); do
		[[ "${lines[i]}" =~ ^"PROGRESS phase="[a-z_]+" elapsed_us="[0-9]+" phase_us="[0-9]+" done="[0-9]+" total="[0-9]+" written="[0-9]+$ ]] ||
			[ "${lines[i]}" = "crac: image written to $T/img" ]
	done
	[ "$(echo "$output" | grep -c '^PROGRESS phase=pages ')" -lt 10 ]
	[[ "${lines[n-2]}" == "STATS elapsed_us="* ]]
	[ "${lines[n-1]}" = "STATUS 1" ]
	echo "$output" | grep -qx "crac: image written to $T/img"
}

@test "--timeout while the pages are written says so, with how far it got" {
	require_image_engine
	heap one 64 0 CRAC_TEST_SLOW_PAGES_US=50000
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running --timeout 1500ms "$pid"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" =~ "checkpoint of process $pid: no answer after 1.5 s (--timeout); it was writing the image: writing pages, "[0-9.]+" of ~"[0-9.]+" MiB so far. The checkpoint goes on" ]]
	# the checkpoint finishes in the process
	wait_for test -d "$T/img"
}

@test "--timeout for a stopped process (SIGSTOP) says it is stopped and how to go on, and the checkpoint comes once it is continued" {
	require_image_engine
	heap one 8 0
	kill -STOP "$pid"
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" --keep-running --timeout 1s "$pid"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$output" = "crac: checkpoint of process $pid: no answer after 1.0 s (--timeout): the process is stopped (state T: SIGSTOP or a job-control stop), and none of its threads runs until it is continued (kill -CONT $pid); the checkpoint is asked and goes on then; crac stopped waiting" ]
	[ ! -e "$T/img" ]
	kill -CONT "$pid"
	wait_for test -d "$T/img"
}
