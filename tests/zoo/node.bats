#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo (issue 11 §3): node running an http server (progs/server.js: a
# warm Map, one request before the checkpoint), unmodified under `crac run`
# with no policy file, checkpointed from outside and restored twice; each
# restored copy must answer from its Map on the same port. libuv holds
# epoll, eventfd, pipes, /dev/null and the listening socket: refused until
# the image engine carries them (issue 11 §2), which the test then skips
# with crac check's line. (Not restored twice at once: node 20's http
# server cannot set SO_REUSEPORT.)

load common

setup() { zoo_setup; zoo_python; zoo_need node nodejs; zoo_need curl curl; }
teardown() { zoo_teardown; }

get() { curl -sf --max-time 5 "http://127.0.0.1:$port/$1"; }

@test "zoo: node http server restored twice answers from its Map" {
	port=$(zoo_free_port)
	zoo_run node "$ZOO_PROGS/server.js" "$port"
	zoo_wait '^ready' "$T/out" 60
	[ "$(get 5)" = "answer 5 115 100000" ]
	zoo_refused_or_skip "epoll, eventfd, pipes and its listening socket"
	zoo_checkpoint
	for i in 1 2; do
		zoo_restore_bg "$T/r$i"
		zoo_until 60 get 7 >/dev/null
		[ "$(get 7)" = "answer 7 161 100000" ]
		[ "$(get 99999)" = "answer 99999 2299977 100000" ]
		zoo_stop_restored
	done
}
