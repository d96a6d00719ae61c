#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Two plain `crac restore DIR` of one image that listens on a TCP port
# (review "robust"): the second finds the port held by the first and is
# refused BEFORE the loader's point of no return (check_descriptors ->
# crac_obj_socket_check, src/objects/socket.c), with one line naming the
# port; the first is untouched and still accepts.

bats_require_minimum_version 1.5.0

load common

setup() {
	common_setup port2 --open
	PROG="$CRAC_BUILD_DIR/tests/obj_sock"
	mkdir -m 755 "$T/work"
	require_image_engine
}

teardown() {
	common_teardown
}

@test "two plain restores of one image listening on a TCP port: the second is refused before the point of no return, naming the port; the first serves on" {
	run clean "$PROG" "$T/img" "$T/work" taken
	echo "$output"
	[ "$status" -eq 0 ]
	PORT="$(echo "$output" | sed -n 's/^port //p')"
	[ -n "$PORT" ]
	restore_bg a
	first=$pid
	wait_line "$T/a.out" '^listening$' 20   # 20 s: a loaded machine
	[ "$(cat "$T/a.ponr")" = pj ]   # "p" at the point of no return, "j" at the jump
	restore_bg b
	wait "$pid" && status=0 || status=$?
	cat "$T/b.out"
	[ "$status" -eq 1 ]
	# refused before the point of no return: no byte on the pipe
	[ ! -s "$T/b.ponr" ]
	[ "$(wc -l <"$T/b.out")" -eq 1 ]
	grep -q "^crac: restore $T/img: fd 3 (socket 127\.0\.0\.1:$PORT): the address is taken: another process holds it" "$T/b.out"
	# the first is untouched: it still listens and accepts
	kill -0 "$first"
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT")
	wait "$first"
	grep -qx accepted "$T/a.out"
}

@test "two plain restores of one large image listening on a TCP port, started together: one restores, the other is refused before the point of no return" {
	command -v python3 >/dev/null || skip "no python3"
	# a free port, then a program with 200 MiB of heap listening there
	# (SO_REUSEADDR, as servers do): filling its memory takes long enough
	# that both restores used to pass the check before either bound the port
	PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
	export CRAC_CONTROL_DIR="$T/ctl"
	run clean timeout 60 "$CRAC" run --checkpoint-when-listening "$PORT" --checkpoint-to "$T/img" -- python3 -c '
import socket, sys
b = bytearray(b"x" * (200 << 20))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
while True:
    c, _ = s.accept()
    c.sendall(b"hi\n")
    c.close()
' "$PORT"
	echo "$output"
	[ "$status" -eq 0 ]
	for round in 1 2 3; do
		restore_bg "a$round"
		a=$pid
		restore_bg "b$round"
		b=$pid
		# the one that restored answers; the other ended, refused
		for _ in $(seq 100); do
			{ kill -0 "$a" 2>/dev/null && kill -0 "$b" 2>/dev/null; } || break
			sleep 0.05
		done
		sleep 0.5
		cat "$T/a$round.out" "$T/b$round.out"
		[ "$(cat "$T/a$round.ponr" "$T/b$round.ponr")" = pj ]
		[ "$(cat "$T/a$round.out" "$T/b$round.out" | wc -l)" -eq 1 ]
		# refused by the check (the other holds the port), or, when both
		# passed it and bound (SO_REUSEADDR lets two sockets bind before
		# either listens), by its listen before the point of no return
		grep -Eq "\(socket 127\.0\.0\.1:$PORT\): (the address is taken: another process holds it|cannot listen on 127\.0\.0\.1:$PORT: Address already in use)" "$T/a$round.out" "$T/b$round.out"
		[ "$(exec 3<>"/dev/tcp/127.0.0.1/$PORT"; head -1 <&3)" = hi ]
		kill "$a" "$b" 2>/dev/null || true
		wait "$a" "$b" 2>/dev/null || true
	done
}
