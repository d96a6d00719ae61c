#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `crac restore DIR` run with its stdin, stdout or stderr closed (probe
# s20; `crac restore img <&- >&- 2>&-`, a careless service manager): the
# loader's own descriptors took the free numbers 0-2 and, as it keeps 0-2
# for the program, the restored program had them as its stdio: the image's
# header file (read-only) as its stdout, a socket as its stdin, the read
# end of a pipe of the loader's as its stderr, and that pipe's write end
# at fd 3: its writes to stdout and stderr failed with EBADF.
# Now the closed ones are /dev/null in the program, as a restore with them
# open gives it that restore's stdio: where crac-cli execs the loader
# (CRAC_LOADER, --timens, socket activation) and in the plain `crac restore
# DIR`, which front.c hands to the loader in the same process (its first
# step). Each test runs both ways.

load common

setup() {
	common_setup rcs --control-made
	require_image_engine
	need_python
}

teardown() {
	common_teardown -9
}

# the program: says ready; on SIGUSR1 writes 200 KiB to stderr (more than
# a pipe holds) and then "done" into $T/done, or what failed into $T/done.err
PROG='
import os, signal, sys, time
def usr1(s, f):
    try:
        os.write(2, b"x" * 4096 * 50)
    except OSError as e:
        open(sys.argv[1] + ".err", "w").write(str(e))
    open(sys.argv[1], "w").write("done\n")
signal.signal(signal.SIGUSR1, usr1)
print("ready", flush=True)
while True:
    time.sleep(0.1)
'

# checkpointed: PROG started under crac run (stdio $T/prog.out), once it is
# ready checkpointed into $T/img
checkpointed() {
	spawn "$T/prog.out" "$T/prog.out" "$CRAC" run -- "$PY" -c "$PROG" "$T/done"
	prog=$SPAWNED
	PIDS+=("$prog")
	image_of_ready "$prog" "$T/prog.out"
}

# fd_target PID FD: what /proc/PID/fd/FD points to ("closed" if nothing)
fd_target() { readlink "/proc/$1/fd/$2" 2>/dev/null || echo closed; }

@test "crac restore (plain, and through crac-cli) with stdin, stdout and stderr closed: the program's 0-2 are /dev/null, none of the loader's descriptors" {
	checkpointed
	local mode fd tgt r via loader
	for via in cli plain; do
	loader=
	[ "$via" = plain ] || loader="$CRAC_BUILD_DIR/crac-loader"
	for mode in "" --lazy --populate; do
		[ "$mode" != --lazy ] || [ "$(id -u)" -eq 0 ] || continue
		echo "through $via, restore $mode"
		rm -f "$T/done"
		(
			for fd in $(ls /proc/$BASHPID/fd); do eval "exec $fd>&-"; done
			exec env CRAC_LOADER="$loader" "$CRAC" restore $mode "$T/img"
		) &
		r=$!
		PIDS+=("$r")
		restored_running "$r" "$PY -c "
		for fd in 0 1 2; do
			tgt=$(fd_target "$r" "$fd")
			echo "restore $mode: fd $fd -> $tgt"
			[ "$tgt" = /dev/null ]
		done
		# its stderr takes what it writes: no error, no block
		rm -f "$T/done.err"
		kill -USR1 "$r"
		wait_file "$T/done" 5
		[ ! -e "$T/done.err" ]
		# and no descriptor of the image's
		! ls -l "/proc/$r/fd" | grep -F "$T/img" || false
		kill "$r"
	done
	done
}

@test "crac restore (plain, and through crac-cli) with only stdout closed: stdin and stderr are those of the restore, stdout /dev/null" {
	checkpointed
	local via loader
	for via in cli plain; do
		loader=
		[ "$via" = plain ] || loader="$CRAC_BUILD_DIR/crac-loader"
		(
			close_fds
			exec env CRAC_LOADER="$loader" "$CRAC" restore "$T/img" <"$T/prog.out" >&- 2>"$T/r.err"
		) &
		r=$!
		PIDS+=("$r")
		restored_running "$r" "$PY -c "
		echo "through $via: $(fd_target "$r" 0) $(fd_target "$r" 1) $(fd_target "$r" 2)"
		[ "$(fd_target "$r" 0)" = "$T/prog.out" ]
		[ "$(fd_target "$r" 1)" = /dev/null ]
		[ "$(fd_target "$r" 2)" = "$T/r.err" ]
		kill "$r"
	done
}

@test "crac start with stdin, stdout and stderr closed: cold and restored, the program's 0-2 are /dev/null, not the supervisor's descriptors" {
	local round r p fd tgt
	for round in cold restored; do
		rm -f "$T/done"
		(
			for fd in $(ls /proc/$BASHPID/fd); do eval "exec $fd>&-"; done
			exec "$CRAC" start --image "$T/simg" --checkpoint-after 1 -- "$PY" -c "$PROG" "$T/done"
		) &
		r=$!
		PIDS+=("$r")
		# the program: crac start's child running python (cold), or restored
		p=
		for _ in $(seq 200); do
			# (its command line is python's: a child of crac start
			# before its exec holds "$T/done" too, and one came and
			# went once under load)
			p=$(pgrep -P "$r" -f "^$PY -c .*$T/done" | head -1)
			[ -n "$p" ] && break
			sleep 0.05
		done
		[ -n "$p" ]
		PIDS+=("$p")
		restored_running "$p" "$PY -c "   # (cold: python started; restored: the loader done)
		for fd in 0 1 2; do
			tgt=$(fd_target "$p" "$fd")
			echo "$round: fd $fd -> $tgt"
			[ "$tgt" = /dev/null ]
		done
		if [ "$round" = cold ]; then
			# the image the trigger writes
			wait_file "$T/simg/header" 10
			sleep 0.5
		fi
		kill "$p" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$r" 2>/dev/null || break; sleep 0.05; done
	done
}

@test "crac restore (plain, and through crac-cli) with stdin closed where /dev/null cannot be opened: refused, naming the descriptor" {
	[ "$(id -u)" -eq 0 ] || skip "needs root (a mount namespace whose /dev/null this user cannot open)"
	id nobody >/dev/null 2>&1 || skip "no user nobody"
	command -v unshare >/dev/null && command -v setpriv >/dev/null || skip "needs unshare and setpriv"
	# a /dev/null only root may open: a 0600 file of root's bound over it
	: >"$T/null"
	chmod 0600 "$T/null"
	chmod 0755 "$T"
	local how
	for how in plain cli; do
		local cmd="$CRAC"
		[ "$how" = plain ] || cmd="$CRAC_BUILD_DIR/crac-cli"
		run unshare -m sh -c 'mount --bind "$1" /dev/null && exec setpriv --reuid=nobody --regid=nogroup --clear-groups "$2" restore "$3" <&-' \
			sh "$T/null" "$cmd" "$T/no-such-image"
		echo "$how: status $status: $output"
		[ "$status" -eq 1 ]
		echo "$output" | grep -q "descriptor 0 is closed and /dev/null cannot take its place: Permission denied"
	done
}
