#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo (issue 11 §3), restored twice at once: a python3 HTTP server that
# listens with SO_REUSEPORT (tests/zoo/progs/reuseport.py, unmodified under
# `crac run`, no policy file) is checkpointed from outside; two copies are
# restored at the same time on the same port (the image engine re-binds the
# listener with SO_REUSEPORT kept), and both serve: requests reach two
# different pids, each with the warm value computed before the checkpoint.
# Then one copy is stopped and the other still serves alone.

load common

setup() { zoo_setup; zoo_python; }
teardown() { zoo_teardown; }

get() { curl -sf --max-time 5 "http://127.0.0.1:$port/"; }

@test "zoo: a SO_REUSEPORT server restored twice at once: both copies serve one port" {
	zoo_need curl curl
	port=$(zoo_free_port)
	zoo_run "$ZOO_PY" -u "$ZOO_PROGS/reuseport.py" "$port"
	zoo_wait '^ready' "$T/out" 30
	zoo_until 30 get
	warm="$(get | sed -n 's/^pid [0-9]* warm //p')"
	[ -n "$warm" ]
	zoo_check_ok
	zoo_checkpoint
	zoo_restore_bg "$T/r1"
	r1=$rpid
	zoo_restore_bg "$T/r2"
	r2=$rpid
	zoo_until 60 get
	# the kernel spreads new connections over both listeners: two
	# different pids answer, those of the two `crac restore` commands
	local pids="" i a n
	for ((i = 0; i < 200; i++)); do
		a="$(get)" || { echo "request $i failed"; cat "$T/r1" "$T/r2"; return 1; }
		[ "${a#* warm }" = "$warm" ]
		pids="$(printf '%s\n%s\n' "$pids" "$(echo "$a" | cut -d' ' -f2)" | sed '/^$/d' | sort -u)"
		n=$(echo "$pids" | wc -l)
		[ "$n" -lt 2 ] || break
	done
	echo "pids that answered: $(echo $pids); crac restore pids: $r1 $r2"
	[ "$n" -eq 2 ]
	echo "$pids" | grep -qx "$r1"
	echo "$pids" | grep -qx "$r2"
	# one copy stopped: the other serves alone
	local gone other last=""
	gone=$(echo "$pids" | head -n 1)
	other=$(echo "$pids" | tail -n 1)
	kill "$gone"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$gone" 2>/dev/null || break
		sleep 0.05
	done
	! kill -0 "$gone" 2>/dev/null || false
	for ((i = 0; i < 20; i++)); do
		a="$(get)"
		[ "${a#* warm }" = "$warm" ]
		a="$(echo "$a" | cut -d' ' -f2)"
		[ "$a" = "$other" ]
	done
}
