#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Restore-or-start (issue 13 item 2): `crac start --image DIR [triggers] --
# PROG ARGS` restores DIR when it holds a good image of PROG, else says why
# once, starts PROG cold and writes DIR (the cold program keeps running);
# concurrent starts on one DIR: one writes, none corrupts it.

load common
load start_common

bats_require_minimum_version 1.5.0

setup() {
	T="$(mktemp -d /tmp/crac-bats-start.XXXXXX)"
	start_setup
	require_image_engine
}

teardown() { start_teardown; }

# cold_then_image NAME [options]: a cold start that writes $T/img, then ends it.
cold_then_image() {
	local name="$1"
	shift
	bg "$name" "$CRAC" start --image "$T/img" "$@" --checkpoint-on-ready -- "$SERVER" "$T/d" 100
	wait_for grep -q "written to $T/img" "$T/$name.err"
	kill -TERM "$pid"
	status=0; wait "$pid" || status=$?
	rm -f "$T/d/port"
}

@test "no image: the reason once, PROG starts cold, DIR is written while it keeps running; the next start restores it" {
	bg cold "$CRAC" start --image "$T/img" --checkpoint-on-ready -- "$SERVER" "$T/d" 100
	wait_for grep -q "written to $T/img" "$T/cold.err"
	cat "$T/cold.err"
	[ "$(grep -c "starting $SERVER cold" "$T/cold.err")" -eq 1 ]
	grep -q "no image at $T/img yet" "$T/cold.err"
	grep -q "keeps running" "$T/cold.err"
	[ -f "$T/img/start-key" ]
	[ -f "$T/img/header" ]
	! ls -d "$T"/img.new-* 2>/dev/null || false
	port="$(cat "$T/d/port")"
	[[ "$(ask "$port")" == "answer "*"boots=1 served=1 "* ]]   # the cold one, after its checkpoint
	kill -TERM "$pid"
	status=0; wait "$pid" || status=$?
	[ "$status" -eq 143 ]

	notify_reader "$T/notify" "$T/notes"
	NOTIFY_SOCKET="$T/notify" bg warm "$CRAC" start --image "$T/img" --checkpoint-on-ready -- "$SERVER" "$T/d" 100
	wait_for grep -q "READY=1" "$T/notes"
	a="$(ask "$port")"
	echo "$a"
	# restored: no cold boot, the connection count of the image's moment
	[[ "$a" == "answer "*"boots=1 served=1 "* ]]
	[ "$(wc -l <"$T/d/boots")" -eq 1 ]
	[ ! -s "$T/warm.err" ]
	# the restored program is crac's child and has crac's NOTIFY_SOCKET
	child="$(child_of "$pid")"
	[[ "$a" == *"pid=$child "* ]]
}

@test "other arguments: the image is not PROG's (the reason names them), cold start; --key restores despite them" {
	cold_then_image one
	bg other "$CRAC" start --image "$T/img" --checkpoint-on-ready -- "$SERVER" "$T/d" 150
	wait_for test -s "$T/d/port"
	cat "$T/other.err"
	grep -q "is of another program or other arguments (recorded \"arg 100\", now \"arg 150\")" "$T/other.err"
	grep -q "starting $SERVER cold" "$T/other.err"
	wait_for grep -q "written to $T/img" "$T/other.err"
	kill -TERM "$pid"; wait "$pid" || true
	rm -rf "$T/img" "$T/d/port"

	cold_then_image keyed --key demo
	bg keyed2 "$CRAC" start --image "$T/img" --key demo --checkpoint-on-ready -- "$SERVER" "$T/d" 999
	wait_for test -s "$T/d/boots"
	sleep 0.3
	[ ! -s "$T/keyed2.err" ]
	[ "$(wc -l <"$T/d/boots")" -eq 3 ]   # two cold starts above, none now
}

# Without $NOTIFY_SOCKET a warm start makes no NOTIFY_SOCKET for the restored
# program (--checkpoint-on-ready is disarmed once restored: nothing it sent
# there would be used); the cold start after a refused restore makes one, and
# the program's READY=1 there writes the image.
@test "warm without NOTIFY_SOCKET: no socket made for the restored program; a refused restore's cold start gets one, READY=1 writes the image" {
	command -v strace >/dev/null || skip "no strace (to see which sockets crac makes)"
	cp "$SERVER" "$T/srv"
	START_SHOW_NOTIFY=1 bg one "$CRAC" start --image "$T/img" --key k --checkpoint-on-ready -- "$T/srv" "$T/d" 100
	wait_for grep -q "written to $T/img" "$T/one.err"
	port="$(cat "$T/d/port")"
	kill -TERM "$pid"
	wait "$pid" || true
	bg warm strace -f -qq -o "$T/trace" -e trace=mkdir,mkdirat,bind \
		"$CRAC" start --image "$T/img" --key k --checkpoint-on-ready -- "$T/srv" "$T/d" 100
	a="$(ask_until "$port")"
	echo "$a"
	cat "$T/trace"
	[[ "$a" == "answer "*"boots=1 "* ]]   # restored
	! grep -q "crac-notify-" "$T/trace" || false
	# and not left with the socket of the run that made the image (gone):
	# the new environment is set by libcrac's restoring thread (setenv
	# takes glibc's locks: not while the other threads are stopped), so a
	# thread of the program released first may answer before it is there
	a="$(ask_until "$port" '* notify=')"
	echo "$a"
	[[ "$a" == *" notify=" ]]
	[ ! -s "$T/warm.err" ]
	kill -TERM "$(child_of "$pid")"
	wait "$pid" || true

	touch -d '2 hours ago' "$T/srv"   # the loader refuses: cold, after the warm attempt
	bg two strace -f -qq -o "$T/trace" -e trace=mkdir,mkdirat,bind \
		"$CRAC" start --image "$T/img" --key k --checkpoint-on-ready -- "$T/srv" "$T/d" 100
	wait_for grep -q "written to $T/img" "$T/two.err"
	cat "$T/two.err" "$T/trace"
	grep -q "the restore of $T/img failed" "$T/two.err"
	grep -Eq 'mkdir(at)?\(.*/crac-notify-' "$T/trace"
	[ "$(wc -l <"$T/d/boots")" -eq 2 ]
	kill -TERM "$(child_of "$pid")"   # crac start (strace's child: a TERM to strace would leave it running)
	wait "$pid" || true
}

@test "an image the restore checks refuse: the reason once, cold start, a fresh image replaces it" {
	cold_then_image one
	# the executable changed since: same key (size, mtime...) would differ, so keep the key
	# and damage what the checks look at: the header's checksum
	printf 'X' | dd of="$T/img/header" bs=1 seek=100 conv=notrunc 2>/dev/null
	run "$CRAC" inspect "$T/img"
	[ "$status" -ne 0 ]
	bg two "$CRAC" start --image "$T/img" --checkpoint-on-ready -- "$SERVER" "$T/d" 100
	wait_for grep -q "written to $T/img" "$T/two.err"
	cat "$T/two.err"
	[ "$(grep -c "starting $SERVER cold" "$T/two.err")" -eq 1 ]
	# said once, by the loader (crac start does not read the header of an
	# image without socket activation), before its point of no return
	[ "$(grep -c "checksum mismatch" "$T/two.err")" -eq 1 ]
	grep -q "the restore of $T/img failed (exit status 1, its reason above): starting $SERVER cold" "$T/two.err"
	run "$CRAC" inspect "$T/img"
	[ "$status" -eq 0 ]
}

# The restore checks are the loader's alone (crac start checks the key, and
# the header only for socket activation, before it starts the loader): a refusal
# there is said once, by the loader, and crac start goes on cold.
@test "a file the image maps changed: the loader refuses before its point of no return, its reason once, cold start" {
	cp "$SERVER" "$T/srv"
	bg one "$CRAC" start --image "$T/img" --key k --checkpoint-on-ready -- "$T/srv" "$T/d" 100
	wait_for grep -q "written to $T/img" "$T/one.err"
	kill -TERM "$pid"
	wait "$pid" || true
	rm -f "$T/d/port"
	touch -d '2 hours ago' "$T/srv"   # its mtime and ctime move: not the file mapped then
	run "$CRAC" inspect "$T/img"
	[ "$status" -ne 0 ]
	bg two "$CRAC" start --image "$T/img" --key k --checkpoint-on-ready -- "$T/srv" "$T/d" 100
	wait_for grep -q "written to $T/img" "$T/two.err"
	cat "$T/two.err"
	[ "$(grep -c "changed since the checkpoint" "$T/two.err")" -eq 1 ]
	grep -q "the restore of $T/img failed (exit status 1, its reason above): starting $T/srv cold" "$T/two.err"
	[ "$(grep -c "starting $T/srv cold" "$T/two.err")" -eq 1 ]
	[ "$(wc -l <"$T/d/boots")" -eq 2 ]   # cold twice, never restored
	run "$CRAC" inspect "$T/img"         # the fresh image replaced it
	[ "$status" -eq 0 ]
}

@test "three concurrent starts on no image: one writes DIR, all serve, nothing left behind; three on the image: one restores, the others (its port taken) are refused before the point of no return and start cold" {
	for i in 1 2 3; do
		mkdir -p "$T/d$i"
		bg "c$i" "$CRAC" start --image "$T/img" --checkpoint-on-ready -- "$SERVER" "$T/d$i" 200
		eval "p$i=$pid"
	done
	wait_for test -f "$T/img/start-key"
	for i in 1 2 3; do wait_for test -s "$T/d$i/port"; done
	sleep 0.5
	cat "$T"/c?.err
	[ "$(cat "$T"/c?.err | grep -c "written to $T/img")" -eq 1 ]
	[ "$(cat "$T"/c?.err | grep -c "another crac start is writing the image")" -eq 2 ]
	for i in 1 2 3; do [[ "$(ask "$(cat "$T/d$i/port")")" == "answer "* ]]; done
	! ls -d "$T"/img.new-* 2>/dev/null || false
	run "$CRAC" inspect "$T/img"
	[ "$status" -eq 0 ]
	# the image is the writer's program: its arguments name its directory
	k="$(grep -l "written to $T/img" "$T"/c?.err | sed 's/.*c\([0-9]\)\.err$/\1/')"
	kill -TERM $p1 $p2 $p3
	wait $p1 $p2 $p3 || true
	for i in 1 2 3; do bg "w$i" "$CRAC" -v start --image "$T/img" --checkpoint-on-ready -- "$SERVER" "$T/d$k" 200; done
	all_said() { [ "$(cat "$T"/w?.err 2>/dev/null | grep -c "restored by engine image\|cold")" -ge 3 ]; }
	wait_for all_said
	sleep 0.5
	cat "$T"/w?.err
	# each restores (same pid and listening port as the image) or, when an
	# instance already holds that port, is refused and starts cold; the
	# image is never damaged
	[ "$(cat "$T"/w?.err | grep -c "restored by engine image")" -ge 1 ]
	for i in 1 2 3; do
		grep -q "restored by engine image" "$T/w$i.err" || grep -q "starting $SERVER cold" "$T/w$i.err"
	done
	[ "$(pgrep -fc "start_server $T/d$k ")" -ge 3 ]
	run "$CRAC" inspect "$T/img"
	[ "$status" -eq 0 ]
}

@test "a signal refresh while restored: --checkpoint-on USR1 writes a new image from the restored process" {
	cold_then_image one
	bg two "$CRAC" start --image "$T/img" --checkpoint-on-ready --checkpoint-on USR1 -- "$SERVER" "$T/d" 100
	sleep 0.5
	before="$(stat -c %i "$T/img/header")"
	kill -USR1 "$pid"
	wait_for grep -q "written to $T/img" "$T/two.err"
	[ "$(stat -c %i "$T/img/header")" != "$before" ]
	run "$CRAC" inspect "$T/img"
	[ "$status" -eq 0 ]
}

@test "CRAC_IMAGE_INCREMENTAL is not passed on: every image crac start writes is full, and restores" {
	export CRAC_IMAGE_INCREMENTAL=1
	cold_then_image one
	grep -q "written to $T/img" "$T/one.err"
	bg two "$CRAC" -v start --image "$T/img" --checkpoint-on-ready --checkpoint-on USR1 -- "$SERVER" "$T/d" 100
	wait_for grep -q "restored by engine image" "$T/two.err"
	grep -q "CRAC_IMAGE_INCREMENTAL is not passed on" "$T/two.err"
	prog="$(child_of "$pid")"
	! tr '\0' '\n' </proc/$prog/environ | grep -q CRAC_IMAGE_INCREMENTAL || false
	header_changed() { [ "$(stat -c %i "$T/img/header" 2>/dev/null)" != "$before" ]; }
	for round in 1 2; do
		before="$(stat -c %i "$T/img/header")"
		kill -USR1 "$pid"
		wait_for header_changed
		run "$CRAC" inspect "$T/img"
		echo "$output"
		[ "$status" -eq 0 ]
		! echo "$output" | grep -q "^parent:" || false
	done
	kill -TERM "$pid"
	wait "$pid" || true
	rm -f "$T/d/port"
	bg three "$CRAC" -v start --image "$T/img" --checkpoint-on-ready -- "$SERVER" "$T/d" 100
	wait_for grep -q "restored by engine image" "$T/three.err"
	cat "$T/three.err"
	! grep -q "cold" "$T/three.err" || false
}

@test "exit status: the program's; 2 usage (no trigger, no DIR); 127 PROG not found; --help lists the options" {
	run "$CRAC" start --image "$T/img" -- "$SERVER" "$T/d"
	[ "$status" -eq 2 ]
	[[ "$output" == *"say when PROG is warm"* ]]
	run "$CRAC" start --checkpoint-after 1s -- "$SERVER" "$T/d"
	[ "$status" -eq 2 ]
	run -127 clean "$CRAC" start --image "$T/img" --checkpoint-after 1h -- "$T/no-such-program"
	[ "$status" -eq 127 ]
	run clean "$CRAC" start --image "$T/img" --checkpoint-after 1h -- sh -c 'exit 7'
	[ "$status" -eq 7 ]
	run "$CRAC" start --help
	[ "$status" -eq 0 ]
	for o in --image --key --quiet --checkpoint-after --checkpoint-on --checkpoint-when-listening \
		 --checkpoint-on-ready "exit status"; do
		[[ "$output" == *"$o"* ]]
	done
}

# The program (and the loader) are started by a clone(CLONE_VM|CLONE_VFORK)
# child of the supervisor that shares its memory until the exec
# (supervise.c): the environment is built beforehand, LISTEN_PID is written
# by the child, the caller's signal mask comes back, and an exec that fails
# is said once, by the supervisor.
@test "the cold program: the caller's signal mask and ignored signals, crac's NOTIFY_SOCKET, LISTEN_PID its own pid; an exec error said once" {
	notify_reader "$T/notify" "$T/notes"
	# the program reads its own status (not a shell: see show_proc.c)
	# USR2 ignored by crac's caller; one socket of socket activation (fd 3)
	bg run sh -c "trap '' USR2; exec 3</dev/null; \
		LISTEN_PID=\$\$ LISTEN_FDS=1 NOTIFY_SOCKET='$T/notify' exec '$CRAC' start --image '$T/img' --checkpoint-after 1h -- '$CRAC_BUILD_DIR/tests/show_proc' '$T'"
	wait_for test -s "$T/environ"
	cat "$T/status" "$T/environ"
	[ "$(sed -n 's/^SigBlk:[[:space:]]*//p' "$T/status")" = 0000000000000000 ]
	sigign="$(sed -n 's/^SigIgn:[[:space:]]*//p' "$T/status")"
	(( (0x$sigign >> (12 - 1)) & 1 ))   # SIGUSR2 (12): ignored, as crac's caller had it
	grep -qx "LISTEN_PID=$(cat "$T/pid")" "$T/environ"
	[ "$(grep -c '^LISTEN_PID=' "$T/environ")" -eq 1 ]
	grep -q '^LISTEN_FDS=1$' "$T/environ"
	notify="$(sed -n 's/^NOTIFY_SOCKET=//p' "$T/environ")"
	[ "$(grep -c '^NOTIFY_SOCKET=' "$T/environ")" -eq 1 ]
	[ -n "$notify" ] && [ "$notify" != "$T/notify" ]   # crac's own, relayed to $T/notify
	[ "$(cat "$T/pid")" = "$(child_of "$pid")" ]        # the supervisor's child
	kill -TERM "$pid"
	wait "$pid" || true

	printf '#!/bin/sh\nexit 0\n' >"$T/noexec"
	chmod 0644 "$T/noexec"
	run -126 clean "$CRAC" start --image "$T/img2" --checkpoint-after 1h -- "$T/noexec"
	echo "$output"
	[ "$(grep -c "cannot run $T/noexec: Permission denied" <<<"$output")" -eq 1 ]
	run -127 clean "$CRAC" start --image "$T/img2" --checkpoint-after 1h -- "$T/no-such-program"
	[ "$(grep -c "cannot run" <<<"$output")" -eq 1 ]
}

# The child is started with clone3 and CLONE_CLEAR_SIGHAND (no sigaction per
# signal in it); where the kernel or a seccomp filter refuses clone3 (ENOSYS:
# Docker's; EINVAL: before Linux 5.5; EPERM), with clone, the child resetting
# the handlers itself. strace makes clone3 fail (and says it did: INJECTED).
@test "clone3 refused (ENOSYS, EINVAL, EPERM): the program starts cold and restores through clone, ignored signals kept; an exec error said once" {
	command -v strace >/dev/null || skip "no strace (to refuse clone3)"
	strace -qq -o /dev/null -e inject=clone3:error=ENOSYS true 2>/dev/null || skip "this strace cannot fail clone3"
	cat >"$T/prog" <<-EOS
	#!/bin/sh
	echo "\$\$" >"$T/pid.tmp"
	mv "$T/pid.tmp" "$T/pid"
	exec sleep 30
	EOS
	chmod +x "$T/prog"
	for err in ENOSYS EINVAL EPERM; do
		rm -f "$T/pid" "$T/trace"
		bg "cold$err" sh -c "trap '' USR2; exec strace -qq -o '$T/trace' -e trace=clone3 -e inject=clone3:error=$err \
			'$CRAC' start --image '$T/img' --checkpoint-after 1h -- '$T/prog'"
		wait_for test -s "$T/pid"
		wait_for grep -qx sleep "/proc/$(cat "$T/pid")/comm"   # past the shell's own forks
		cat "/proc/$(cat "$T/pid")/status" >"$T/status"
		grep -q "clone3(.*) = -1 $err .*(INJECTED)" "$T/trace"
		[ "$(sed -n 's/^SigBlk:[[:space:]]*//p' "$T/status")" = 0000000000000000 ]
		sigign="$(sed -n 's/^SigIgn:[[:space:]]*//p' "$T/status")"
		(( (0x$sigign >> (12 - 1)) & 1 ))   # SIGUSR2 (12): ignored, as crac's caller had it
		kill -TERM "$(child_of "$pid")"     # crac start (strace's child)
		wait "$pid" || true
	done
	# a warm start through clone: restored, answers
	bg cold strace -qq -o /dev/null -e inject=clone3:error=ENOSYS \
		"$CRAC" start --image "$T/img2" --checkpoint-on-ready -- "$SERVER" "$T/d" 100
	wait_for grep -q "written to $T/img2" "$T/cold.err"
	port="$(cat "$T/d/port")"
	kill -TERM "$(child_of "$pid")"
	wait "$pid" || true
	bg warm strace -qq -o "$T/trace" -e trace=clone3 -e inject=clone3:error=ENOSYS \
		"$CRAC" start --image "$T/img2" --checkpoint-on-ready -- "$SERVER" "$T/d" 100
	a="$(ask_until "$port")"
	echo "$a"
	[[ "$a" == "answer "*"boots=1 "* ]]   # restored: no second boot
	[ "$(wc -l <"$T/d/boots")" -eq 1 ]
	grep -q "(INJECTED)" "$T/trace"
	[ ! -s "$T/warm.err" ]
	kill -TERM "$(child_of "$pid")"
	wait "$pid" || true

	printf '#!/bin/sh\nexit 0\n' >"$T/noexec"
	chmod 0644 "$T/noexec"
	run -126 clean strace -qq -o /dev/null -e inject=clone3:error=ENOSYS "$CRAC" start --image "$T/img3" \
		--checkpoint-after 1h -- "$T/noexec"
	echo "$output"
	[ "$(grep -c "cannot run $T/noexec: Permission denied" <<<"$output")" -eq 1 ]
}

# glibc's execvpe runs a script without "#!" as /bin/sh SCRIPT ARGS, that
# argument vector on the stack of the CLONE_VM child: its stack has room
# for the arguments (as posix_spawn gives it), however many.
@test "a cold script without #! and 30000 arguments: run by /bin/sh with all of them" {
	printf 'echo "$#" >"%s/argc"\n' "$T" >"$T/noshebang"
	chmod +x "$T/noshebang"
	run clean "$CRAC" start --image "$T/img" --checkpoint-after 1h -- "$T/noshebang" $(seq 30000)
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(cat "$T/argc")" -eq 30000 ]
}

# (SIG_IGN survives exec: a service manager or shell that ignores SIGCHLD
# passes it on; the kernel then reaps crac start's child unseen, no SIGCHLD
# and no status: crac start waited forever, and a TERM, forwarded to a pid
# that was gone, did not end it)
@test "SIGCHLD ignored by crac start's caller: it still sees its program end, and the program gets SIGCHLD ignored as without crac" {
	IGN="$CRAC_BUILD_DIR/tests/sigchld_ign"
	run clean timeout -s KILL 20 "$IGN" "$CRAC" start --image "$T/img" --checkpoint-on USR1 -- sh -c 'exit 3'
	echo "status $status: $output"
	[ "$status" -eq 3 ]   # not 137: killed by the timeout
	bg ign "$IGN" "$CRAC" start --image "$T/img2" --checkpoint-on USR1 -- "$CRAC_BUILD_DIR/tests/show_proc" "$T/d"
	local crac=$pid
	wait_for test -s "$T/d/environ"
	grep SigIgn "$T/d/status"
	ign="$(sed -n 's/^SigIgn:[[:space:]]*//p' "$T/d/status")"
	(( (16#$ign >> 16) & 1 ))   # SIGCHLD (17): ignored
	kill -TERM "$crac"
	wait_for sh -c "! kill -0 $crac 2>/dev/null"
}
