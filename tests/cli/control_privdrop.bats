#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A program started as root under `crac run` that drops to nobody (a
# service's usual start: memcached -u nobody) keeps the control endpoint
# it made as root, in root's directory, where as nobody it cannot make
# another (probe s20):
#  - not dumpable (what setuid leaves): `crac check` said "nothing stands
#    in the way", then the image engine refused the checkpoint (it cannot
#    read its own /proc/self/pagemap) after it had closed the endpoint,
#    which could not be made again: the program ran on, unreachable by
#    crac for good (`crac check PID`: "has no control endpoint"). Now the
#    check names it and the checkpoint is refused before the endpoint is
#    touched.
#  - dumpable again (prctl(PR_SET_DUMPABLE, 1)): its image is written
#    (--keep-running), and the endpoint, closed while the image was
#    written, could not be made again either. Now it stays open (parked)
#    while the image is written: the program answers the next request.

load common
load start_common

setup() {
	[ "$(id -u)" -eq 0 ] || skip "needs root: the program starts as root and drops to nobody"
	T="$(mktemp -d /tmp/crac-bats-ctlpd.XXXXXX)"
	chmod 755 "$T"
	start_setup
	command -v "$PY" >/dev/null || skip "python3 is not installed"
	require_image_engine
	mkdir "$T/nb" && chown 65534:65534 "$T/nb"
}

teardown() { start_teardown; }

# a program that becomes nobody (dumpable again with DUMPABLE=1), says so
# on stdout, then waits
PROG='
import os, sys, time
os.setgroups([]); os.setgid(65534); os.setuid(65534)
if os.environ.get("DUMPABLE") == "1":   # prctl(PR_SET_DUMPABLE, 1)
    import ctypes
    ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)
print("nobody", flush=True)
time.sleep(120)
'

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# mc_get PORT KEY: memcached's answer to "get KEY"
mc_get() {
	"$PY" - "$1" "$2" <<-'PY'
	import socket, sys
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
	s.sendall(("get %s\r\n" % sys.argv[2]).encode())
	got = b""
	while not got.endswith(b"END\r\n"):
	    d = s.recv(4096)
	    if not d:
	        break
	    got += d
	sys.stdout.write(got.decode().replace("\r\n", "\n"))
	PY
}

mc_set() {
	"$PY" - "$1" "$2" "$3" <<-'PY'
	import socket, sys
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
	k, v = sys.argv[2], sys.argv[3]
	s.sendall(("set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v)).encode())
	sys.stdout.write(s.recv(100).decode())
	PY
}

@test "memcached -u nobody (not dumpable): crac check names it, the checkpoint is refused, the endpoint still answers" {
	command -v memcached >/dev/null || skip "memcached is not installed (scripts/deps.sh installs it)"
	local port
	port=$(free_port)
	bg mc "$CRAC" run -- memcached -u nobody -l 127.0.0.1 -p "$port" -U 0 -t 2
	mc=$pid
	wait_for test -S "$CRAC_CONTROL_DIR/$mc.sock"
	wait_for mc_set "$port" k1 v1
	wait_for test "$(awk '/^Uid:/ { print $3 }' "/proc/$mc/status")" = 65534
	# the check says what the checkpoint would say
	run "$CRAC" check "$mc"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"the process is not dumpable"* ]]
	# the checkpoint is refused, nothing written
	run "$CRAC" checkpoint --engine image --image-dir "$T/nb/img" "$mc"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"not dumpable"* ]]
	[ ! -e "$T/nb/img" ]
	cat "$T/mc.err"
	! grep -q "could not restart the control endpoint" "$T/mc.err" || false
	# memcached runs on, with its data, and crac still reaches it
	[ "$(mc_get "$port" k1 | head -n 2 | tail -n 1)" = v1 ]
	run "$CRAC" check "$mc"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"the process is not dumpable"* ]]
}

@test "a program dropped to nobody, dumpable again: after its image is written (--keep-running) its endpoint still answers, and a second image is written" {
	DUMPABLE=1 bg prog "$CRAC" run -- "$PY" -c "$PROG"
	prog=$pid
	wait_for grep -q '^nobody$' "$T/prog.out"
	wait_for test -S "$CRAC_CONTROL_DIR/$prog.sock"
	run "$CRAC" check "$prog"
	echo "$output"
	[ "$status" -eq 0 ]
	run "$CRAC" checkpoint --engine image --keep-running --image-dir "$T/nb/img" "$prog"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(stat -c %u "$T/nb/img/header")" = 65534 ]
	cat "$T/prog.err"
	! grep -q "could not restart the control endpoint" "$T/prog.err" || false
	run "$CRAC" check "$prog"
	echo "$output"
	[ "$status" -eq 0 ]
	run "$CRAC" checkpoint --engine image --keep-running --image-dir "$T/nb/img2" "$prog"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -f "$T/nb/img2/header" ]
	# and a refused one (the target is not a crac image) leaves it too
	mkdir "$T/nb/other" && touch "$T/nb/other/x"
	run "$CRAC" checkpoint --engine image --keep-running --image-dir "$T/nb/other" "$prog"
	echo "$output"
	[ "$status" -eq 1 ]
	run "$CRAC" check "$prog"
	echo "$output"
	[ "$status" -eq 0 ]
	kill -0 "$prog"
}
