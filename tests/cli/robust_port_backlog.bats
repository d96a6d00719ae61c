#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The port check holds a restored listener's port from before the loader's
# point of no return (crac_obj_socket_check, src/objects/socket.c): the
# held socket listens, so a client connecting while the restore runs is
# queued in its backlog. Then:
#   - the restore succeeds: the held socket IS the program's listener, the
#     queued connection is handed over and the program accepts it;
#   - the restore ends before the program runs (refused, killed): the held
#     socket is closed with the loader and each queued connection is
#     reset: the client gets ECONNRESET at once, never a hang.
# The loader is held at its point of no return by a full pipe as its
# CRAC_LOADER_PONR_FD ("p" cannot be written until the test reads).

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/obj_sock"
	T="$(mktemp -d /tmp/crac-bats-backlog.XXXXXX)"
	chmod 755 "$T"
	mkdir -m 755 "$T/work"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
	require_image_engine
	command -v python3 >/dev/null || skip "no python3 to drive the client"
	run clean "$PROG" "$T/img" "$T/work" taken
	echo "$output"
	[ "$status" -eq 0 ]
	PORT="$(echo "$output" | sed -n 's/^port //p')"
	[ -n "$PORT" ]
	cat >"$T/drive.py" <<'PY'
import os, socket, subprocess, sys, threading, time
crac, img, port, action = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
# a pipe with no room left: the loader's "p" waits at its point of no return
r, w = os.pipe()
os.set_blocking(w, False)
for size in (65536, 4096, 1):
    try:
        while True:
            os.write(w, b"x" * size)
    except BlockingIOError:
        pass
os.set_blocking(w, True)
env = dict(os.environ, CRAC_LOADER_PONR_FD=str(w))
fds = [w]
if len(sys.argv) > 5:
    # socket activation of the program's fd sys.argv[5]: a listener passed
    # to the loader as CRAC_ACTIVATION_FDS (what crac start sets)
    act = socket.socket()
    act.bind(("127.0.0.1", 0))
    act.listen(4)
    fds.append(act.fileno())
    env["CRAC_ACTIVATION_FDS"] = "%d:%s" % (act.fileno(), sys.argv[5])
p = subprocess.Popen([crac, "restore", img], pass_fds=fds, stdin=subprocess.DEVNULL,
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
os.close(w)
c = None
for _ in range(400):
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=2)
        break
    except OSError:
        time.sleep(0.025)
if c is None:
    print("never connected")
    sys.exit(1)
c.sendall(b"hello")
time.sleep(0.3)
print("connected during the restore, loader " + ("waiting" if p.poll() is None else "gone"), flush=True)
if action == "handover":
    def drain():
        while os.read(r, 1 << 16):
            pass
    threading.Thread(target=drain, daemon=True).start()
    out, _ = p.communicate(timeout=30)
    sys.stdout.write(out.decode())
    print("status %d" % p.returncode)
else:
    p.kill()
    p.wait()
    c.settimeout(10)
    t0 = time.monotonic()
    try:
        got = c.recv(16)
        print("client: end of file" if not got else "client: got %r" % got)
    except ConnectionResetError:
        print("client: reset")
    except socket.timeout:
        print("client: no answer (a hang)")
    print("client waited %d ms" % ((time.monotonic() - t0) * 1000))
PY
}

teardown() {
	rm -rf "$T"
}

@test "a client connecting while the restore runs (port held by the check) is handed over: the restored program accepts it" {
	run timeout -k 5 60 python3 "$T/drive.py" "$CRAC" "$T/img" "$PORT" handover
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "connected during the restore, loader waiting"
	echo "$output" | grep -qx "listening"
	echo "$output" | grep -qx "accepted"
	echo "$output" | grep -qx "status 0"
}

@test "a client queued on the held port when the restore ends before the program runs gets a reset at once, not a hang" {
	run timeout -k 5 60 python3 "$T/drive.py" "$CRAC" "$T/img" "$PORT" killed
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "connected during the restore, loader waiting"
	echo "$output" | grep -qx "client: reset"
	ms="$(echo "$output" | sed -n 's/^client waited \([0-9]*\) ms$/\1/p')"
	[ "$ms" -lt 2000 ]
	# the port is free again at once (a cold start, another restore, may
	# have it): bound without SO_REUSEADDR
	python3 -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' "$PORT"
}

@test "under socket activation too, the port the check holds stays held to the program (a client connecting during the restore is accepted)" {
	run clean "$PROG" "$T/img2" "$T/work" activated
	echo "$output"
	[ "$status" -eq 0 ]
	port2="$(echo "$output" | sed -n 's/^port //p')"
	actfd="$(echo "$output" | sed -n 's/^actfd //p')"
	[ -n "$port2" ]
	[ -n "$actfd" ]
	run timeout -k 5 60 python3 "$T/drive.py" "$CRAC" "$T/img2" "$port2" handover "$actfd"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "connected during the restore, loader waiting"
	echo "$output" | grep -qx "accepted"
	echo "$output" | grep -qx "status 0"
}
