# SPDX-License-Identifier: MIT
# common.bash - helpers shared by the bats tests (`load common`).

# close_fds [KEEP...]: closes every descriptor of this shell above 2 but
# each KEEP; run in the subshell that then execs the program under test.
# The image engine's safety check refuses descriptors an image cannot keep,
# bats holds a few open, and a process holding one of bats's makes bats
# wait for it.
close_fds() {
	local fd keep
	for fd in $(ls /proc/$BASHPID/fd); do
		[ "$fd" -gt 2 ] || continue
		for keep in "$@"; do
			[ "$fd" != "$keep" ] || continue 2
		done
		eval "exec $fd>&-"
	done
	return 0
}

# clean CMD...: runs CMD with only fds 0-2 open (close_fds).
clean() {
	(
		close_fds
		exec "$@"
	)
}

# spawn OUT ERR CMD...: starts CMD in the background with only fds 0-2 open
# (stdin /dev/null, or $SPAWN_STDIN; stdout OUT; stderr ERR, or stdout's
# when ERR is OUT) and fd 3 too when $SPAWN_FD3 names a file (written), and
# sets $SPAWNED to CMD's own pid. (`clean CMD &` would make $! a shell that
# stopping leaves CMD running, and a process holding a descriptor of bats
# makes bats wait for it.)
spawn() {
	local out=$1 err=$2
	shift 2
	(
		close_fds
		[ -z "${SPAWN_FD3:-}" ] || exec 3>"$SPAWN_FD3"
		[ "$err" != "$out" ] || exec "$@" <"${SPAWN_STDIN:-/dev/null}" >"$out" 2>&1
		exec "$@" <"${SPAWN_STDIN:-/dev/null}" >"$out" 2>"$err"
	) &
	SPAWNED=$!
}

# restore_bg NAME [VAR=VALUE...]: `crac restore $T/img` in the background
# with only stdio open, VAR=VALUE in its environment, stdout and stderr in
# $T/NAME.out and the loader's point-of-no-return bytes in $T/NAME.ponr
# (CRAC_LOADER_PONR_FD: "p" at the point of no return, "j" at the jump);
# sets $pid, the restored process's own (`crac restore` keeps its pid), and
# adds it to PIDS. Needs $CRAC and $T.
restore_bg() {
	local name=$1
	shift
	SPAWN_FD3="$T/$name.ponr" spawn "$T/$name.out" "$T/$name.out" \
		env CRAC_LOADER_PONR_FD=3 "$@" "$CRAC" restore "$T/img"
	pid=$SPAWNED
	PIDS+=("$pid")
}

# big_mapping CMD...: runs CMD (a test program that checkpoints itself into
# $T/img and says "big=0xADDR ... len=N" of its big mapping: image_lazy,
# image_thp) with only stdio open, shows its output, and sets BIG and LEN;
# fails when CMD fails or does not say them.
big_mapping() {
	run clean "$@"
	echo "$output"
	[ "$status" -eq 0 ]
	BIG=$(echo "$output" | sed -n 's/^big=\(0x[0-9a-f]*\) .*/\1/p')
	LEN=$(echo "$output" | sed -n 's/.* len=\([0-9]*\)$/\1/p')
	[ -n "$BIG" ]
	[ -n "$LEN" ]
}

# flip_byte FILE OFFSET: inverts the byte at OFFSET of FILE in place, and
# fails unless it reads back inverted.
flip_byte() {
	local byte
	byte=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\$(printf %03o $((byte ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
	[ "$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')" -eq $((byte ^ 255)) ]
}

# need_python: PY, the python3 to run (/usr/bin/python3 first, else the
# one in PATH); skips the test when there is none.
need_python() {
	PY=/usr/bin/python3
	[ -x "$PY" ] || PY="$(command -v python3)"
	[ -n "$PY" ] || skip "python3 is not installed"
}

# run_to_image OUT [crac run options...] -- CMD...: `crac run --checkpoint-to
# $T/img --checkpoint-on SIGUSR1 ... -- CMD...` (CMD sends its parent SIGUSR1
# to be checkpointed) for at most 60 s, with only stdio open, stdin
# /dev/null, stdout and stderr in OUT; returns crac run's exit status.
# VAR=VALUE before the call reaches CMD's environment. Needs $CRAC and $T.
run_to_image() {
	local out=$1
	shift
	(
		close_fds
		exec timeout 60 "$CRAC" run --checkpoint-to "$T/img" --checkpoint-on SIGUSR1 "$@"
	) </dev/null >"$out" 2>&1
}

# refused_restore DIR [OPTIONS...] [-- ARGS...]: `crac restore [OPTIONS]
# DIR [-- ARGS]` with only stdio open, for at most 60 s, refused before the
# program ran: status 1 exactly (the restore's refusal; 128+N would be a
# crash, 124 the timeout), nothing on stdout (the restored program would
# print), one line on stderr, "crac: restore DIR: REASON"; sets REASON
# ($stderr keeps the whole line).
refused_restore() {
	local dir=$1 opts=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	run --separate-stderr clean timeout 60 "$CRAC" restore "${opts[@]}" "$dir" "$@"
	echo "restore $dir: status $status"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$(echo "$stderr" | wc -l)" -eq 1 ]
	[ "${stderr#"crac: restore $dir: "}" != "$stderr" ]
	REASON="${stderr#"crac: restore $dir: "}"
}

# restores_twice EXPECTED: `crac restore $T/img`, twice (an image restores
# again), each with only stdio open and for at most 60 s: each exits 0 and
# says exactly EXPECTED (stdout and stderr).
restores_twice() {
	local i
	for i in 1 2; do
		run clean timeout 60 "$CRAC" restore "$T/img"
		echo "restore $i: status $status: $output"
		[ "$status" -eq 0 ]
		[ "$output" = "$1" ]
	done
}

# restored_fds [VAR=VALUE...]: `crac restore $T/img -- pid=PID wait-usr2`
# (an image of tests/progs/image_probe.c) started by a shell holding fds 5,
# 7 and 9 besides stdio, VAR=VALUE in its environment; once the restored
# program waits for SIGUSR2, its descriptors go in $fds ("0 1 2 " when
# none leaked), then it is let go and waited for. Needs $CRAC and $T.
restored_fds() {
	clean env "$@" bash -c 'exec 5</etc/hostname 7>/dev/null 9>/dev/null; echo $$ >"$2/pid"; exec "$0" restore "$1" -- pid=$$ wait-usr2' \
		"$CRAC" "$T/img" "$T" >"$T/out" 2>"$T/err" &
	local bg=$!
	wait_line "$T/out" "waiting for SIGUSR2" 10 "$T/err"
	local pid
	pid=$(cat "$T/pid")
	fds=$(ls /proc/"$pid"/fd | sort -n | tr '\n' ' ')
	kill -USR2 "$pid"
	wait "$bg"
	cat "$T/out" "$T/err"
	echo "fds: $fds"
}

# need_nobody PROG: sets NOBODY, a command prefix that runs what follows
# as nobody (uid and gid 65534, no groups); skips the test unless this is
# root, setpriv is there and nobody may run PROG (the build tree).
need_nobody() {
	[ "$(id -u)" -eq 0 ] || skip "needs root to switch to nobody"
	command -v setpriv >/dev/null || skip "no setpriv"
	NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
	$NOBODY test -x "$1" || skip "build tree not accessible to nobody"
}

# restored_says WHAT...: `crac restore $T/img` (only stdio open) exits 0,
# says "restored ok", no line of it holds FAIL, and it has a line
# "ok WHAT" for each WHAT (the checks of the restored test program).
restored_says() {
	local what
	run clean "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	! echo "$output" | grep -q FAIL || false
	echo "$output" | grep -qx "restored ok"
	for what in "$@"; do
		echo "$output" | grep -qx "ok $what"
	done
}

# restore_ok STAGE DIR [restore options...]: `crac restore [options] DIR`
# of an image of tests/progs/image_incr.c (run by the command prefix in the
# array AS, when set) exits 0 within 60 s and says exactly "ok stage STAGE".
restore_ok() {
	local stage=$1 dir=$2
	shift 2
	run --separate-stderr clean "${AS[@]}" timeout 60 "$CRAC" restore "$@" "$dir"
	echo "restore $* $dir: status $status"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok stage $stage" ]
}

# require_image_engine: skips the test, with the reason, when `crac --version`
# does not list the image engine. Needs $CRAC.
require_image_engine() {
	local engines
	engines="$("$CRAC" --version | sed -n 's/^engines://p')"
	case " $engines " in
	*" image "*) ;;
	*) skip "the image engine is not built (crac --version lists engines:$engines)" ;;
	esac
}

# require_zstd: skips the test, with crac's words, when this build has no
# zstd (`crac checkpoint --compress 1` says so). Needs $CRAC; sets status
# and output.
require_zstd() {
	run "$CRAC" checkpoint --compress 1
	if echo "$output" | grep -q "has no zstd"; then
		skip "this build has no zstd (libzstd-dev): $output"
	fi
}

# start_server [crac run options...]: the TCP server of tests/progs/
# checks_server.c (a listening socket and a log file, $T/server.log) under
# `crac run`, in the background, with only stdio inherited (and fd 5 too
# with EXTRA_PIPE=1: the caller opened it); waits for its port ($T/port)
# and its control socket. Needs $CRAC, $SERVER, $T, $CRAC_CONTROL_DIR;
# sets $PID.
start_server() {
	(
		close_fds ${EXTRA_PIPE:+5}
		exec "$CRAC" run "$@" -- "$SERVER" "$T/port" "$T/server.log" \
			</dev/null >"$T/out" 2>"$T/err"
	) &
	PID=$!
	for _ in $(seq 200); do
		[ -s "$T/port" ] && [ -S "$CRAC_CONTROL_DIR/$PID.sock" ] && return 0
		sleep 0.02
	done
	cat "$T/err" >&2
	return 1
}

# start_waiting SCENARIO [ENV=V...]: crac restore $T/img -- SCENARIO
# $T/sync (tests/progs/image_lazy.c: "wait", "wait3") in the background
# ($PID; with ENV and $WAIT_OPTS, options of crac restore), which touches
# its pages, creates $T/sync.ready and waits for $T/sync.go; returns once
# it is ready (false, with its output, if it never is). finish_waiting:
# lets it go on; status, output, stderr.
start_waiting() {
	local scenario=$1
	shift
	rm -f "$T/sync.ready" "$T/sync.go"
	# shellcheck disable=SC2086
	clean env "$@" timeout 60 "$CRAC" restore ${WAIT_OPTS:-} "$T/img" -- "$scenario" "$T/sync" >"$T/out" 2>"$T/err" &
	PID=$!
	for _ in $(seq 300); do
		[ -e "$T/sync.ready" ] && return 0
		kill -0 $PID 2>/dev/null || break
		sleep 0.1
	done
	cat "$T/out" "$T/err"
	false
}
finish_waiting() {
	touch "$T/sync.go"
	status=0
	wait $PID || status=$?
	output=$(cat "$T/out")
	stderr=$(cat "$T/err")
	echo "status $status"
	echo "stdout: $output"
	echo "stderr: $stderr"
}

# restored_running PID PREFIX: waits (30 s at most) until PID's command
# line (its arguments joined by spaces) starts with PREFIX (a restore has
# the program's once the loader set its argument area; /proc/PID/exe stays
# the loader's) and nothing is mapped in the restore loader's range
# [0x500000000000, +256 MiB) (CRAC_IMG_LOADER_LO in src/image/image.h):
# the loader recreated the program's descriptors before its jump, and is
# unmapped only after it, so what /proc shows of PID now is the restored
# program's own. (A program that is no restore passes as soon as it runs.)
# False, with what it saw, if not.
restored_running() {
	local cmd=
	for _ in $(seq 600); do
		cmd=$(tr '\0' ' ' < "/proc/$1/cmdline" 2> /dev/null) || cmd=
		if [ "${cmd#"$2"}" != "$cmd" ] && ! grep -q '^50000[0-9a-f]\{7\}-' "/proc/$1/maps" 2> /dev/null; then
			return 0
		fi
		kill -0 "$1" 2> /dev/null || break
		sleep 0.05
	done
	echo "pid $1: command line '$cmd' (not starting with '$2'), or the loader still mapped:"
	grep '^50000[0-9a-f]\{7\}-' "/proc/$1/maps" 2> /dev/null || true
	false
}

# common_setup NAME [--open] [--control|--control-made] [VAR...]: the
# start most tests share. CRAC, the crac under test; T, a new directory
# /tmp/crac-bats-NAME.XXXXXX (mode 755 with --open: programs of other
# users, or the image's checks, look into it); with --control,
# CRAC_CONTROL_DIR=$T/ctl exported (--control-made: made too, mode 0700);
# CRAC_ENGINE, CRAC_CONTROL, CRAC_IMAGE_DIR, CRAC_POLICIES and each VAR
# unset (none of the caller's environment chooses for the test); PIDS
# empty, for what common_teardown kills.
common_setup() {
	local name=$1 open= control=
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--open) open=1 ;;
		--control) control=1 ;;
		--control-made) control=2 ;;
		*) break ;;
		esac
		shift
	done
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d "/tmp/crac-bats-$name.XXXXXX")"
	[ -z "$open" ] || chmod 755 "$T"
	if [ -n "$control" ]; then
		export CRAC_CONTROL_DIR="$T/ctl"
		[ "$control" != 2 ] || mkdir -m 0700 "$CRAC_CONTROL_DIR"
	fi
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES "$@"
	PIDS=()
}

# hold_flock PATH: a `sleep 60` in the background (stdio /dev/null, no
# other descriptor but PATH, opened read-only as its fd 9) that holds
# flock(LOCK_EX) on PATH, as the writer of an image holds its temporary;
# returns once it holds it (5 s at most, else false). HOLDER: its pid, for
# the caller to kill. Needs $T.
hold_flock() {
	rm -f "$T/held"
	(
		close_fds
		exec 9<"$1" </dev/null >/dev/null 2>&1
		flock -n 9 && touch "$T/held"
		exec sleep 60
	) &
	HOLDER=$!
	wait_until 5 "pid $HOLDER to hold a flock on $1" test -e "$T/held" || return 1
	rm "$T/held"
}

# image_setup NAME [VAR...]: common_setup NAME --open (the image's checks
# look into $T), with the variables that choose how an image is written,
# loaded and logged (CRAC_IMAGE_STATS, CRAC_LOADER, CRAC_LAZY_PREFETCH,
# CRAC_LOG) and each VAR unset too; skips the test unless the image engine
# is built.
image_setup() {
	local name=$1
	shift
	common_setup "$name" --open CRAC_IMAGE_STATS CRAC_LOADER CRAC_LAZY_PREFETCH CRAC_LOG "$@"
	require_image_engine
}

# chain_setup NAME [VAR...]: common_setup NAME --open, with the variables a
# flatten test must not inherit (and VAR...) unset; the image engine
# required; the chain $T/i0 (full), $T/i1 and $T/i2 (incremental, 8 MiB) made
# by tests/image_incr, and BEFORE its chain_state.
chain_setup() {
	local name=$1
	shift
	common_setup "$name" --open CRAC_IMAGE_STATS CRAC_LOADER CRAC_LAZY_PREFETCH CRAC_LOG CRAC_IMAGE_COMPRESS \
		CRAC_IMAGE_INCREMENTAL CRAC_TEST_SLOW_FS CRAC_TEST_SYNC_GRACE_MS "$@"
	INCR="$CRAC_BUILD_DIR/tests/image_incr"
	require_image_engine
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$INCR" "$T/i0" "$T/i1" "$T/i2" 8
	echo "chain: status $status, stdout: $output, stderr: $stderr"
	[ "$status" -eq 0 ]
	BEFORE="$(chain_state)"
}

# chain_state: every file of the chain $T/i0 $T/i1 $T/i2 with its inode, size
# and mtime, and its checksum (what a flatten must leave as it was).
chain_state() {
	(cd "$T" && find i0 i1 i2 -type f | sort | xargs stat -c '%n %i %s %Y' && find i0 i1 i2 -type f | sort |
		xargs md5sum)
}

# flatten_ended: crac flatten (FPID) ended within 10 s; FST its exit status.
flatten_ended() {
	local i
	for i in $(seq 200); do
		kill -0 "$FPID" 2>/dev/null || break
		sleep 0.05
	done
	! kill -0 "$FPID" 2>/dev/null
	wait "$FPID" && FST=0 || FST=$?
}

# common_teardown [-9]: each of PIDS killed (SIGTERM; SIGKILL with -9),
# and $T removed.
common_teardown() {
	local p sig=${1:--TERM}
	for p in "${PIDS[@]}"; do kill "$sig" "$p" 2> /dev/null || true; done
	rm -rf "$T"
}

# image_of_ready PID OUT: once PID (a program under crac run) said "ready"
# in the file OUT and its control socket is there (10 s at most each, else
# false), `crac checkpoint --engine image --image-dir $T/img PID` succeeds.
# Needs $CRAC, $T and $CRAC_CONTROL_DIR.
image_of_ready() {
	wait_line "$2" ready 10
	wait_sock "$CRAC_CONTROL_DIR/$1.sock" 10
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" "$1"
	echo "$output"
	[ "$status" -eq 0 ]
}

# The bounded waits. Each polls every 20 ms until what it waits for is
# there, for SECONDS at most (whole or decimal; measured on the clock, so a
# loaded machine does not stretch it, and tried once more at the deadline);
# true as soon as it is, else false after saying on stdout what it waited
# for and for how long (and, where it helps, what it saw instead).

# wait_until SECONDS WHAT CMD...: until CMD (its output discarded)
# succeeds; WHAT names it in the failure, "waited SECONDS s for WHAT".
wait_until() {
	local secs=$1 what=$2 whole frac end now
	shift 2
	# SECONDS and the clock as microseconds (bash has no decimals; the
	# clock's separator follows the locale)
	whole=${secs%%.*}
	frac=
	[ "$whole" = "$secs" ] || frac=${secs#*.}
	frac=${frac}000000
	end=$((${EPOCHREALTIME//[!0-9]/} + ${whole:-0} * 1000000 + 10#${frac:0:6}))
	while :; do
		"$@" > /dev/null 2>&1 && return 0
		now=${EPOCHREALTIME//[!0-9]/}
		[ "$now" -lt "$end" ] || break
		sleep 0.02
	done
	"$@" > /dev/null 2>&1 && return 0
	echo "waited $secs s for $what"
	return 1
}

# wait_line FILE PATTERN [SECONDS [SHOW...]]: until a line of FILE matches
# PATTERN (grep's basic regular expression; 5 s unless SECONDS), a program
# saying it is ready in its log; on failure shows what FILE holds, and each
# file SHOW (its stderr, say).
wait_line() {
	local file=$1 pattern=$2 secs=${3:-5} f
	shift 2
	[ $# -eq 0 ] || shift
	wait_until "$secs" "a line matching '$pattern' in $file" grep -q -- "$pattern" "$file" && return 0
	for f in "$file" "$@"; do
		echo "$f holds:"
		cat "$f" 2> /dev/null || echo "(no such file)"
	done
	return 1
}

# wait_sock PATH [SECONDS]: until PATH is a socket (5 s unless SECONDS), a
# control socket listening.
wait_sock() {
	wait_until "${2:-5}" "the socket $1" test -S "$1"
}

# wait_file PATH [SECONDS]: until PATH exists and is not empty (5 s unless
# SECONDS), a pid or port a program wrote.
wait_file() {
	wait_until "${2:-5}" "$1 to exist, not empty" test -s "$1"
}

# wait_gone PID [SECONDS]: until process PID has ended (5 s unless SECONDS):
# kill -0 fails (bash reaps its own children as they end).
wait_gone() {
	wait_until "${2:-5}" "pid $1 to end" pid_ended "$1"
}
pid_ended() {
	! kill -0 "$1" 2> /dev/null
}

# wait_no_file PATH [SECONDS]: until nothing is at PATH (5 s unless
# SECONDS), a socket or lock its owner removes.
wait_no_file() {
	wait_until "${2:-5}" "$1 to go" no_file "$1"
}
no_file() {
	[ ! -e "$1" ]
}
