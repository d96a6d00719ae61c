#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Carried kernel objects: sockets (src/objects/socket.c). A program
# (tests/progs/obj_sock) makes a TCP listener on 127.0.0.1 (options,
# O_NONBLOCK), an IPv6 listener, a Unix listener at a path and one with an
# abstract name, a bound UDP socket, socket pairs inside the process (bytes
# queued both ways; datagram; a peer closed), checkpoints itself with the
# image engine, and every restored instance checks each socket. Refused: an
# established connection (the exact line, with the policy that closes it);
# the policy `close` restores it closed (end of file). At restore: a port
# another process holds fails with one line; SO_REUSEPORT lets two restored
# instances listen at once; a non-socket file at a Unix path is left alone.

bats_require_minimum_version 1.5.0

load common

setup() {
	common_setup sockets --open
	PROG="$CRAC_BUILD_DIR/tests/obj_sock"
	mkdir -m 755 "$T/work"
}

teardown() {
	common_teardown
}

# checkpoint [MODE]: the program checkpoints into $T/img; PORT is its port
checkpoint() {
	run clean "$PROG" "$T/img" "$T/work" "$@"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -d "$T/img" ]
	PORT="$(echo "$output" | sed -n 's/^port //p')"
	[ -n "$PORT" ]
}

restored_ok() {
	restored_says "tcp port" "tcp options" "tcp buffers" "tcp flags" "tcp accepts" "unix accepts" "unix mode" \
		    "abstract accepts" udp "pair content" "pair content back" "pair flags" "pair empty" \
		    "pair again" dgrampair orphan halfshut seqorphan udpconn unixdgram
	echo "$output" | grep -q "^ok tcp6"
}

@test "sockets: listeners (TCP, IPv6, Unix path and abstract), UDP, socket pairs; restored twice" {
	require_image_engine
	checkpoint
	restored_ok
	restored_ok
}

@test "an established connection is refused with the policy that closes it" {
	require_image_engine
	run clean "$PROG" "$T/img" "$T/work" established
	echo "$output"
	[ "$status" -eq 3 ]
	PORT="$(echo "$output" | sed -n 's/^port //p')"
	# the rules keep the service's end, the listener's port: the client's
	# ephemeral port is '*' (policy_suggested.bats applies them)
	echo "$output" | grep -Eq "an established connection \(127\.0\.0\.1:[0-9]+ -> 127\.0\.0\.1:$PORT\) cannot be carried; a policy \`tcp \*->127\.0\.0\.1:$PORT close\` restores it closed: the program sees its peer gone"
	echo "$output" | grep -Eq "an established connection \(127\.0\.0\.1:$PORT -> 127\.0\.0\.1:[0-9]+\) cannot be carried; a policy \`tcp 127\.0\.0\.1:$PORT->\* close\`"
	[ ! -e "$T/img" ]
}

@test "a descriptor in flight in a socket pair refuses the checkpoint, which changes nothing" {
	require_image_engine
	run clean "$PROG" "$T/img" "$T/work" scm
	echo "$output"
	[ "$status" -eq 3 ]
	echo "$output" | grep -q "descriptors or credentials queued in the socket pair (SCM_RIGHTS) are not carried"
	echo "$output" | grep -qx unchanged
	[ ! -e "$T/img" ]
}

@test "policy close: a connection is restored closed (end of file, EPIPE); its listener still accepts" {
	require_image_engine
	checkpoint close
	for i in 1 2; do
		run clean "$CRAC" restore "$T/img"
		echo "$output"
		[ "$status" -eq 0 ]
		echo "$output" | grep -qx "ok closed"
		echo "$output" | grep -qx "ok closed epoll"
		echo "$output" | grep -qx "ok closed listener accepts"
		echo "$output" | grep -qx "restored ok"
	done
}

@test "SO_REUSEPORT: two instances restored at once both listen on the port and accept" {
	require_image_engine
	checkpoint reuseport
	clean "$CRAC" restore "$T/img" >"$T/a.out" 2>&1 &
	A=$!
	PIDS+=("$A")
	clean "$CRAC" restore "$T/img" >"$T/b.out" 2>&1 &
	B=$!
	PIDS+=("$B")
	for _ in $(seq 100); do
		grep -qx listening "$T/a.out" && grep -qx listening "$T/b.out" && break
		sleep 0.1
	done
	cat "$T/a.out" "$T/b.out"
	grep -qx listening "$T/a.out"
	grep -qx listening "$T/b.out"
	# connections are spread over both listeners; each instance takes one and exits
	for _ in $(seq 200); do
		kill -0 "$A" 2>/dev/null || kill -0 "$B" 2>/dev/null || break
		(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || true
		sleep 0.05
	done
	wait "$A"
	wait "$B"
	cat "$T/a.out" "$T/b.out"
	grep -qx accepted "$T/a.out"
	grep -qx accepted "$T/b.out"
}

@test "a port another process holds at restore: one line naming the address, status 1" {
	require_image_engine
	checkpoint taken
	# the checkpointed listener had no SO_REUSEADDR; another process takes its port now
	# started directly (not through `clean`), so that $! is the holder itself
	"$PROG" x x hold "$PORT" >"$T/hold.out" 2>&1 &
	PIDS+=("$!")
	for _ in $(seq 50); do
		grep -q holding "$T/hold.out" && break
		sleep 0.1
	done
	grep -qx "holding $PORT" "$T/hold.out"
	start=$(date +%s%N)
	run clean "$CRAC" restore "$T/img"
	end=$(date +%s%N)
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	echo "$output" | grep -q "fd 3 (socket 127\.0\.0\.1:$PORT): the address is taken: another process holds it"
	# no long retry: 200 ms at most for a closing socket, then the answer
	[ $(((end - start) / 1000000)) -lt 3000 ]
}

@test "a Unix socket path that is another file at restore is left alone" {
	require_image_engine
	checkpoint
	rm -f "$T/work/sock"
	echo precious >"$T/work/sock"
	run clean "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "$T/work/sock exists and is not a socket: it is left alone"
	[ "$(cat "$T/work/sock")" = precious ]
}

@test "a Unix socket path another process listens on at restore is not taken over" {
	require_image_engine
	command -v python3 >/dev/null || skip "no python3 to listen on the path"
	checkpoint
	rm -f "$T/work/sock"
	python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(8); print("up", flush=True); time.sleep(60)' "$T/work/sock" >"$T/py.out" 2>&1 &
	PIDS+=("$!")
	for _ in $(seq 50); do
		grep -q up "$T/py.out" && break
		sleep 0.1
	done
	run clean "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "$T/work/sock is in use: another process listens there"
	[ -S "$T/work/sock" ]
}

@test "unprivileged: sockets checkpointed and restored as nobody" {
	require_image_engine
	need_nobody "$PROG"
	chown 65534:65534 "$T" "$T/work"
	run clean $NOBODY "$PROG" "$T/img" "$T/work"
	echo "$output"
	[ "$status" -eq 0 ]
	run clean $NOBODY "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	! echo "$output" | grep -q FAIL || false
	echo "$output" | grep -qx "restored ok"
}
