#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Socket activation with more than 64 sockets: the CLI takes as many as the
# loader does (CRAC_ACTIVATION_MAX, src/loader/activation.h, one definition
# for both; the CLI once refused a record of more than 64). `crac run`
# records every one, at whatever number the program holds it;
# `crac restore DIR` and `crac start` given as many sockets again put each
# at its number in the restored program. (`crac start` builds the value in
# a buffer of 600 bytes, src/cli/cmd_start.c: about 90 sockets; more are
# refused with the reason.)

bats_require_minimum_version 1.5.0
load common
load start_common

# sockets passed (each test may set its own)
N=70

setup() {
	T="$(mktemp -d /tmp/crac-bats-actmany.XXXXXX)"
	start_setup
	require_image_engine
	command -v "$PY" >/dev/null || skip "python3 is not installed"
}

teardown() { start_teardown; }

# activate NAME CMD...: CMD as systemd would start it with N sockets (a
# listening TCP socket each, 127.0.0.1, a port of the kernel's choosing)
# at fds 3...N+2, LISTEN_PID its own pid, LISTEN_FDS=N, nothing else open
# but stdio; "FD PORT INODE" of each socket in $T/NAME.socks; in the
# background (bg): $pid.
activate() {
	local name=$1
	shift
	bg "$name" "$PY" -c '
import fcntl, os, socket, sys
n, out = int(sys.argv[1]), sys.argv[2]
socks = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    socks.append(s)
# above where they go, then at 3...n+2
high = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD, 3 + n) for s in socks]
for s in socks:
    s.close()
lines = []
for i in range(n):
    os.dup2(high[i], 3 + i)
    os.close(high[i])
    os.set_inheritable(3 + i, True)
    c = socket.socket(fileno=os.dup(3 + i))
    lines.append("%d %d %d\n" % (3 + i, c.getsockname()[1], os.fstat(3 + i).st_ino))
    c.close()
# written above fd n+2 (a lower number would be one of the sockets)
tmp = fcntl.fcntl(os.open(out + ".tmp", os.O_WRONLY | os.O_CREAT, 0o644), fcntl.F_DUPFD, 3 + n)
os.write(tmp, "".join(lines).encode())
os.rename(out + ".tmp", out)
os.closerange(3 + n, 65536)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = str(n)
os.execv(sys.argv[3], sys.argv[3:])
' "$N" "$T/$name.socks" "$@"
	wait_for test -s "$T/$name.socks"
}

# first_port NAME: the port of socket 0 (the one the server serves).
first_port() { awk 'NR == 1 { print $2 }' "$T/$1.socks"; }

# holds_all PID NAME: process PID holds every socket of $T/NAME.socks at
# its fd (the same inode).
holds_all() {
	local fd port ino
	while read -r fd port ino; do
		[ "$(stat -L -c %i "/proc/$1/fd/$fd")" = "$ino" ] || {
			echo "fd $fd of $1: not socket $ino (port $port)"
			return 1
		}
	done <"$T/$2.socks"
}

# many_image: `crac run` activated with N sockets checkpoints the server
# (after one connection) into $T/img; DIR/activation records all N.
many_image() {
	activate first "$CRAC" run --checkpoint-to "$T/img" --checkpoint-after 300ms -- "$SERVER" "$T/d"
	a="$(ask_until "$(first_port first)")"
	echo "$a"
	[[ "$a" == "answer "*"boots=1 served=1 activated=1"* ]]
	wait "$pid"
	cat "$T/first.err"
	[ -f "$T/img/header" ]
	[ "$(wc -l <"$T/img/activation")" -eq "$N" ]
	[ "$(head -1 "$T/img/activation")" = "0 3" ]
	[ "$(tail -1 "$T/img/activation")" = "$((N - 1)) $((N + 2))" ]
}

# start_image: `crac start` activated with N sockets writes $T/img (after
# one connection), recording all N, and is stopped.
start_image() {
	activate first "$CRAC" start --image "$T/img" --checkpoint-after 300ms -- "$SERVER" "$T/d"
	a="$(ask_until "$(first_port first)")"
	[[ "$a" == "answer "*"boots=1 served=1 activated=1"* ]]
	wait_for grep -q "written to $T/img" "$T/first.err"
	cat "$T/first.err"
	[ "$(wc -l <"$T/img/activation")" -eq "$N" ]
	kill -TERM "$pid"
	wait "$pid" || true
}

# start_restores_all: crac start writes an image with $N sockets
# (start_image), and the next crac start restores it warm, every socket
# at its descriptor in the restored program.
start_restores_all() {
	start_image
	activate second "$CRAC" start --image "$T/img" --checkpoint-on USR2 -- "$SERVER" "$T/d"
	a="$(ask_until "$(first_port second)")"
	echo "$a"
	cat "$T/second.err"
	[[ "$a" == "answer "*"boots=1 served=2 activated=1" ]]
	! grep -q cold "$T/second.err" || false
	child="$(child_of "$pid")"
	holds_all "$child" second
}

@test "crac run with 150 activation sockets records them all; crac restore DIR given 150 again puts each at its fd" {
	# past 64 entries and past 511 characters of CRAC_ACTIVATION_FDS
	# ("SRC:DST," of up to 3 digits each), the CLI's old limits
	N=150
	many_image
	activate second "$CRAC" restore "$T/img"
	a="$(ask_until "$(first_port second)")"
	echo "$a"
	cat "$T/second.err"
	[[ "$a" == "answer pid=$pid boots=1 served=2 activated=1" ]]
	holds_all "$pid" second
	! grep "^crac" "$T/second.err" || false
}

@test "crac start with $N activation sockets: the image it writes records them all, the next start restores it with each at its fd" {
	start_restores_all
}

@test "crac start with 150 activation sockets: the image it writes records them all, the next start restores it with each at its fd (the loader's limit, not a smaller buffer of crac start's)" {
	N=150
	start_restores_all
}
