# SPDX-License-Identifier: MIT
# start_common.bash - helpers of the tests of `crac start`, the warm-up
# triggers and systemd (start*.bats, triggers*.bats, systemd*.bats).
# Needs $T (a fresh directory). Sets CRAC, SERVER, CRAC_CONTROL_DIR, PY.

start_setup() {
	CRAC="${CRAC_TEST_CRAC:-$CRAC_BUILD_DIR/crac}"
	SERVER="${CRAC_TEST_SERVER:-$CRAC_BUILD_DIR/tests/start_server}"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES NOTIFY_SOCKET LISTEN_FDS LISTEN_PID
	PY=/usr/bin/python3
	[ -x "$PY" ] || PY="$(command -v python3)"
	mkdir -p "$T/d"
	BG=()
}

# Every background process a test started: killed (TERM, then KILL), and
# its children first (a crac start under strace outlives a TERM to strace).
start_teardown() {
	for p in "${BG[@]}"; do pkill -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
	sleep 0.1
	for p in "${BG[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	pkill -9 -f "start_server $T/" 2>/dev/null || true
	cd /
	rm -rf "$T"
}

# bg NAME CMD...: runs CMD in the background with only stdio open, stdout
# in $T/NAME.out, stderr in $T/NAME.err; its pid in $pid (and in BG).
bg() {
	local name="$1"
	shift
	(
		for fd in $(ls /proc/$BASHPID/fd); do
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		exec "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err"
	) &
	pid=$!
	BG+=("$pid")
}

# wait_for CMD...: up to 10 s for CMD to succeed.
wait_for() {
	for _ in $(seq 500); do
		"$@" && return 0
		sleep 0.02
	done
	echo "timed out waiting for: $*" >&2
	return 1
}

# real_children PID: PID's children that report their exit with a signal
# (field 38 of /proc/CHILD/stat, exit_signal, not 0): the program crac runs,
# not crac's own short-lived helpers (image/bounded.c: clone without an exit
# signal), which a test must never take for the program.
real_children() {
	local c
	for c in $(pgrep -P "$1"); do
		awk '{ sub(/^.*\) /, ""); if ($36 != 0) print FILENAME }' "/proc/$c/stat" 2>/dev/null |
			sed -n 's|^/proc/\([0-9]*\)/stat$|\1|p'
	done
}

# child_of PID: prints PID's one child, once there is exactly one (looked
# for and read in one step: a pgrep that found it once could find nothing a
# moment later on a loaded machine); crac's helpers are not counted.
child_of() {
	local f="$T/child_of.$1"
	wait_for one_child_into "$1" "$f" || return 1
	cat "$f"
}
one_child_into() {   # one_child_into PID FILE: PID has one child (real_children), written to FILE
	real_children "$1" >"$2" && [ "$(wc -l <"$2")" -eq 1 ]
}

# ask PORT: one answer line of the server on 127.0.0.1:PORT.
ask() {
	local line
	exec 7<>"/dev/tcp/127.0.0.1/$1" || return 1
	read -r -t 5 line <&7
	exec 7<&-
	echo "$line"
}

# ask_until PORT [PATTERN]: the first answer of the server on 127.0.0.1:PORT
# that matches the glob PATTERN (default: any line), asked again every 20 ms
# for up to 5 s (a restore still on its way, a value not set yet); prints
# nothing when none came, for the caller's check to fail on.
ask_until() {
	local a
	for _ in $(seq 250); do
		a="$(ask "$1" 2>/dev/null)" || a=""
		# shellcheck disable=SC2053
		[ -n "$a" ] && [[ "$a" == ${2:-*} ]] && { echo "$a"; return 0; }
		sleep 0.02
	done
	return 0
}

# notify_reader PATH FILE: a fake NOTIFY_SOCKET (systemd's side): every
# datagram received at PATH is appended to FILE, then "from=PID" (the
# sender's pid, as systemd sees it: SCM_CREDENTIALS), "fd=TEXT" for each
# descriptor sent along (FDSTORE=1: TEXT is the first bytes of the file it
# opens) and "--". Sets $reader.
notify_reader() {
	(
		for fd in $(ls /proc/$BASHPID/fd); do
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		exec "$PY" -c '
import os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
f = open(sys.argv[2], "a", buffering=1)
while True:
    data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(4 * 16))
    pid = [struct.unpack("iII", d)[0] for l, t, d in anc if t == socket.SCM_CREDENTIALS]
    fds = [x for l, t, d in anc if t == socket.SCM_RIGHTS
           for x in struct.unpack("%di" % (len(d) // 4), d[:len(d) // 4 * 4])]
    text = "".join("fd=%s\n" % os.pread(x, 64, 0).decode().strip() for x in fds)
    for x in fds:
        os.close(x)
    f.write(data.decode() + "\nfrom=%s\n%s--\n" % (pid[0] if pid else "?", text))
' "$1" "$2"
	) &
	reader=$!
	BG+=("$reader")
	wait_for test -S "$1"
}

# exited PID: waits (5 s) for PID to be gone.
exited() {
	for _ in $(seq 250); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.02; done
	return 1
}

# listening PORT: something listens on TCP PORT (/proc/net/tcp).
listening() {
	grep -qi "^ *[0-9]*: [0-9A-F]*:$(printf %04X "$1") [0-9A-F:]* 0A " /proc/net/tcp
}

# free_port: a TCP port from 20000 to 39999 nothing listens on right now
# (listening), tried at random up to 50 times; fails if none is found.
free_port() {
	local p
	for _ in $(seq 50); do
		p=$(( 20000 + RANDOM % 20000 ))
		listening "$p" || { echo "$p"; return 0; }
	done
	return 1
}
