# SPDX-License-Identifier: MIT
# common.bash - the program zoo (issue 11 §3): helpers shared by
# tests/zoo/*.bats (`load common`).
#
# Each zoo test starts a program unmodified under `crac run` with no policy
# file, warms it up, checkpoints it from outside (`crac checkpoint --engine
# image`), restores it twice one after the other and twice at once, and
# compares its answers after restore with what they must be.
#
# Two kinds of programs:
#  - stdin programs (zoo_stdin_test): they read one query per line of stdin
#    and print one answer per line; the original reads a FIFO, each restored
#    copy reads the stdin of its `crac restore` (a pipe with the queries), so
#    that two copies restored at once are independent. They are expected to
#    work: a refusal by the safety checks fails the test.
#  - programs holding kernel objects (listening sockets, epoll, eventfd,
#    pipes, open files: servers, sqlite3 on a file, `bash FILE`, a JVM),
#    which the image engine carries only as far as issue 11 §2 has got
#    (zoo_refused_or_skip). The test asks `crac check PID` first and, when
#    the program is refused, skips with the refusal line crac printed; when
#    it is not refused, the test must pass fully.
#
# A program that is not installed skips with the package that provides it
# (scripts/deps.sh installs the zoo's packages when it can).

source "$BATS_TEST_DIRNAME/../cli/common.bash"

ZOO_PROGS="$BATS_TEST_DIRNAME/progs"

# zoo_setup: $CRAC, a private $T, a private control directory.
zoo_setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-zoo.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	mkdir -m 0700 "$CRAC_CONTROL_DIR"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
	ZOO_KILL=""
	pid=""
	require_image_engine
}

# zoo_teardown: stops whatever the test left running, removes $T. After a
# failure, first shows what the program and each restored copy printed
# ($T/out, $T/r*, $T/c*: a restored server that died says why there).
zoo_teardown() {
	local p f
	if [ -z "${BATS_TEST_COMPLETED:-}" ] && [ -n "${T:-}" ]; then
		for f in "$T/out" "$T"/r[0-9]* "$T"/c[0-9]*; do
			[ -f "$f" ] || continue
			echo "--- $f:"
			tail -n 40 "$f"
		done
	fi
	for p in ${pid:-} $ZOO_KILL; do
		kill "$p" 2>/dev/null || true
	done
	rm -rf "$T"
}

# zoo_need CMD PACKAGE: skips when CMD is not installed.
zoo_need() {
	command -v "$1" >/dev/null 2>&1 ||
		skip "no $1 here (Debian package $2; scripts/deps.sh installs it)"
}

# zoo_python: the real python3 interpreter (not a pyenv-style shell shim,
# which would make `crac run` checkpoint the shim's shell instead).
zoo_python() {
	zoo_need python3 python3
	ZOO_PY="$(python3 -c 'import sys; print(sys.executable)')"
	[ -x "$ZOO_PY" ] || skip "python3 does not say where its interpreter is (sys.executable: '$ZOO_PY')"
}

# zoo_free_port: prints a TCP port free on 127.0.0.1 now.
zoo_free_port() {
	"${ZOO_PY:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# zoo_wait PATTERN FILE SECONDS: waits until a line of FILE matches PATTERN.
zoo_wait() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		grep -q -- "$1" "$2" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "waited $3 s for '$1' in $2; it holds:" >&2
	cat "$2" >&2 || true
	return 1
}

# zoo_run [CRAC RUN OPTIONS --] CMD...: starts `crac run -- CMD` in the
# background with only fds 0-2 open; stdin from $ZOO_STDIN (default
# /dev/null), stdout and stderr to $T/out. Sets $pid (the program's pid:
# crac run execs it).
zoo_run() {
	local opts=()
	if [ "${1:-}" = --opts ]; then
		shift
		while [ "$1" != -- ]; do opts+=("$1"); shift; done
		shift
	fi
	# (not `clean`: its own subshell would make $! another process)
	(
		for fd in $(ls /proc/$BASHPID/fd); do
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		exec "$CRAC" run "${opts[@]}" -- "$@" <"${ZOO_STDIN:-/dev/null}" >"$T/out" 2>&1
	) &
	pid=$!
	# the control endpoint is up once its socket exists
	local i
	for ((i = 0; i < 600; i++)); do
		[ -S "$CRAC_CONTROL_DIR/$pid.sock" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "no control endpoint for pid $pid; output:" >&2
	cat "$T/out" >&2
	return 1
}

# zoo_refused_or_skip NEEDS: asks `crac check $pid`; when the program would
# be refused, skips naming what it needs and the first refusal line.
zoo_refused_or_skip() {
	run timeout 30 "$CRAC" check "$pid"
	echo "$output"
	[ "$status" -ne 124 ] || { echo "crac check timed out" >&2; return 1; }
	[ "$status" -ne 0 ] || return 0
	local first n
	first="$(echo "$output" | sed -n 's/^  *check //p' | head -n 1)"
	n="$(echo "$output" | grep -c '^  *check ')"
	[ -n "$first" ] || { echo "crac check failed without a refusal line" >&2; return 1; }
	skip "needs $1 (issue 11 §2: kernel objects carried by the image engine): crac check says ($n refusals, first): $first"
}

# zoo_check_ok: the program must not be refused by the safety checks.
zoo_check_ok() {
	run timeout 30 "$CRAC" check "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "nothing stands in the way"
}

# zoo_checkpoint: checkpoints $pid from outside into $T/img; the original
# must exit once the image is written (it is gone within 20 s).
zoo_checkpoint() {
	run timeout 120 "$CRAC" checkpoint --engine image --image-dir "$T/img" "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -f "$T/img/header" ]
	local i t
	for ((i = 0; i < 400; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "the checkpointed process $pid did not exit in 20 s after its image was written; its threads:" >&2
		for t in /proc/"$pid"/task/*; do
			echo "  thread ${t##*/} ($(cat "$t/comm" 2>/dev/null)) waits in $(cat "$t/wchan" 2>/dev/null)" >&2
		done
		return 1
	fi
	wait "$pid" 2>/dev/null || true
	pid=""
}

# --- stdin programs ----------------------------------------------------------

# zoo_query K: the stdin line that asks for key K (tests may redefine it).
zoo_query() { echo "$1"; }
# zoo_eof: what the program prints at the end of its stdin (sqlite3: nothing).
zoo_eof() { echo eof; }

# zoo_restore_answers OUT K...: restores $T/img with the queries for the
# keys K... on its stdin (then EOF), output to OUT; checks that the restored
# program answered exactly (zoo_expect K for each, then zoo_eof) and exited 0,
# and did not start over ("ready" is never printed again).
zoo_restore_answers() {
	local out=$1 k st=0
	shift
	{ for k in "$@"; do zoo_query "$k"; done; } |
		clean timeout 120 "$CRAC" restore "$T/img" >"$out" 2>&1 || st=$?
	zoo_compare "$out" "$st" "$@"
}

# zoo_compare OUT STATUS K...: the check of zoo_restore_answers.
zoo_compare() {
	local out=$1 st=$2 k
	shift 2
	{ for k in "$@"; do zoo_expect "$k"; done; zoo_eof; } >"$out.expected"
	echo "restore exit status $st; output ($out):"
	cat "$out"
	[ "$st" -eq 0 ]
	diff -u "$out.expected" "$out"
}

# zoo_stdin_test TIMEOUT CMD...: the whole zoo test of a stdin program:
# start under crac run reading a FIFO, wait for "ready" (TIMEOUT s), one
# answer before the checkpoint, crac check, checkpoint from outside, two
# restores one after the other, two at once.
zoo_stdin_test() {
	local wait_s=$1
	shift
	mkfifo "$T/in"
	# a writer that never writes nor closes: the program waits for input
	sleep 3600 >"$T/in" &
	ZOO_KILL="$ZOO_KILL $!"
	ZOO_STDIN="$T/in" zoo_run "$@"
	zoo_wait '^ready' "$T/out" "$wait_s"
	zoo_query 5 >"$T/in"
	zoo_wait "^$(zoo_expect 5)\$" "$T/out" 30
	zoo_check_ok
	zoo_checkpoint
	# never restored twice from the same output: the first copy's answers
	# must not be mistaken for the second's
	zoo_restore_answers "$T/r1" 7 "${ZOO_MAXKEY:-99999}" 0
	zoo_restore_answers "$T/r2" 12345 1
	# two copies at once, each with its own stdin and its own answers
	local a b sa=0 sb=0
	{ zoo_query 42; zoo_query 4242; } | clean timeout 120 "$CRAC" restore "$T/img" >"$T/c1" 2>&1 &
	a=$!
	{ zoo_query 777; zoo_query 31; } | clean timeout 120 "$CRAC" restore "$T/img" >"$T/c2" 2>&1 &
	b=$!
	wait "$a" || sa=$?
	wait "$b" || sb=$?
	zoo_compare "$T/c1" "$sa" 42 4242
	zoo_compare "$T/c2" "$sb" 777 31
}

# --- servers -----------------------------------------------------------------

# zoo_restore_bg OUT [STDIN]: restores $T/img in the background (a server
# does not exit), its stdin from STDIN (default /dev/null); sets $rpid, the restored process's own pid (`crac restore` keeps
# its pid; not `clean`, whose subshell would make $! a shell that stopping
# leaves the server running), and adds it to what teardown stops.
zoo_restore_bg() {
	(
		for fd in $(ls /proc/$BASHPID/fd); do
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		exec "$CRAC" restore "$T/img" <"${2:-/dev/null}" >"$1" 2>&1
	) &
	rpid=$!
	ZOO_KILL="$ZOO_KILL $rpid"
}

# zoo_until SECONDS CMD...: retries CMD until it succeeds.
zoo_until() {
	local s=$1 i
	shift
	for ((i = 0; i < s * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	"$@"
}

# zoo_stop_restored: stops the restored server $rpid and waits for it.
zoo_stop_restored() {
	kill "$rpid" 2>/dev/null || true
	wait "$rpid" 2>/dev/null || true
}
