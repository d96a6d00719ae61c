#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo (issue 11 §3): `python3 -m http.server`, unmodified under `crac
# run` with no policy file, warmed up by one request, checkpointed from
# outside and restored twice; each restored copy must serve the same file
# on the same port. It holds a listening socket: refused until the image
# engine carries it (issue 11 §2), which the test then skips with crac
# check's line. (Not restored twice at once: http.server does not set
# SO_REUSEPORT and, unmodified, cannot take a new port from restore
# arguments.)

load common

setup() { zoo_setup; zoo_python; }
teardown() { zoo_teardown; }

get() { curl -sf --max-time 5 "http://127.0.0.1:$port/zoo.txt"; }

@test "zoo: python3 -m http.server restored twice serves the same file" {
	zoo_need curl curl
	mkdir "$T/www"
	echo "answer from http.server" >"$T/www/zoo.txt"
	port=$(zoo_free_port)
	zoo_run "$ZOO_PY" -u -m http.server --bind 127.0.0.1 --directory "$T/www" "$port"
	zoo_until 30 get
	[ "$(get)" = "answer from http.server" ]
	zoo_refused_or_skip "its listening socket"
	zoo_checkpoint
	for i in 1 2; do
		zoo_restore_bg "$T/r$i"
		zoo_until 60 get
		[ "$(get)" = "answer from http.server" ]
		zoo_stop_restored
	done
}
