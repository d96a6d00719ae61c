#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo: memcached (multi-threaded, libevent: epoll, a listening socket,
# the pipes between its worker threads), unmodified under `crac run` with no
# policy file; 200 keys set before the checkpoint from outside; each of two
# restores must answer `get` with the values set before, and take new keys.

load common

setup() {
	zoo_setup
	zoo_python
	zoo_need memcached memcached
}
teardown() { zoo_teardown; }

# mc REQUEST...: sends the requests (\r\n added) to the server, prints the
# reply once it ends with END or STORED lines for every request
mc() {
	"$ZOO_PY" - "$port" "$@" <<-'PY'
	import socket, sys, time
	port, reqs = int(sys.argv[1]), sys.argv[2:]
	s = socket.create_connection(("127.0.0.1", port), timeout=5)
	s.sendall("".join(r + "\r\n" for r in reqs).encode())
	want = sum(1 for r in reqs if r.split()[0] in ("get", "set"))
	got = b""
	while got.count(b"END\r\n") + got.count(b"STORED\r\n") < want:
	    d = s.recv(65536)
	    if not d:
	        break
	    got += d
	sys.stdout.write(got.decode().replace("\r\n", "\n"))
	PY
}

@test "zoo: memcached restored twice answers get with the keys set before, and stores new ones" {
	port=$(zoo_free_port)
	zoo_run memcached -u "$(id -un)" -l 127.0.0.1 -p "$port" -U 0 -t 4
	zoo_until 30 mc version >/dev/null
	local i reqs=()
	for ((i = 0; i < 200; i++)); do reqs+=("set k$i 0 0 ${#i}" "$i"); done
	[ "$(mc "${reqs[@]}" | grep -c '^STORED$')" -eq 200 ]
	zoo_check_ok
	zoo_checkpoint
	for i in 1 2; do
		zoo_restore_bg "$T/r$i"
		zoo_until 60 mc version >/dev/null
		[ "$(mc "get k7")" = "$(printf 'VALUE k7 0 1\n7\nEND')" ]
		[ "$(mc "get k199")" = "$(printf 'VALUE k199 0 3\n199\nEND')" ]
		[ "$(mc "set new$i 0 0 2" "n$i" "get new$i" | tail -n 2 | head -n 1)" = "n$i" ]
		zoo_stop_restored
	done
}
