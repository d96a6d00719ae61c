#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo (issue 11 §3): redis-server (no config file, no persistence),
# unmodified under `crac run` with no policy file; 1000 keys set before the
# checkpoint from outside; each of two restores must answer `redis-cli GET`
# with the values set before. It holds epoll, a pipe and its listening
# sockets: refused until the image engine carries them (issue 11 §2), which
# the test then skips with crac check's line. (Not restored twice at once:
# redis does not set SO_REUSEPORT.)

load common

setup() {
	zoo_setup
	zoo_python
	zoo_need redis-server redis-server
	zoo_need redis-cli redis-tools
}
teardown() { zoo_teardown; }

cli() { timeout 10 redis-cli -h 127.0.0.1 -p "$port" "$@"; }

@test "zoo: redis-server restored twice answers GET with the keys set before" {
	port=$(zoo_free_port)
	zoo_run redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize no
	zoo_until 60 cli PING >/dev/null
	local i args=()
	for ((i = 0; i < 1000; i++)); do args+=("k$i" "v$((29 * i))"); done
	[ "$(cli MSET "${args[@]}")" = OK ]
	[ "$(cli DBSIZE)" = 1000 ]
	zoo_refused_or_skip "epoll, a pipe and its listening socket"
	zoo_checkpoint
	for i in 1 2; do
		zoo_restore_bg "$T/r$i"
		zoo_until 60 cli PING >/dev/null
		[ "$(cli GET k7)" = v203 ]
		[ "$(cli GET k999)" = v28971 ]
		[ "$(cli DBSIZE)" = 1000 ]
		zoo_stop_restored
	done
}
