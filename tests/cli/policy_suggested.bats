#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The policy rules a refusal suggests, applied verbatim, work for real
# programs beyond the run they were suggested in (objects/glob.c,
# objects/socket.c crac_obj_put_connection_glob, runtime/checks.c suggest).
#
# For each server of the zoo, unmodified under `crac run` with no policy
# file, a client holds a connection open (an idle one, or a keep-alive one
# that asks again every 0.3 s): `crac check` refuses it. Every rule the
# refusal suggests goes, word for word, into a policy file; the program is
# started again with it. A new connection (another ephemeral port: the old
# one is still held) must not stop a checkpoint; the restored program must
# answer, and a checkpoint of it with a third connection (another port
# again) must pass too. A suggestion that named the ephemeral port (as
# before) or a random temporary's name matched only once. And the rule a
# restore suggests for a log file that changed (`reopen changed=ok`), for
# a name with a blank and brackets, must parse and let the next restore go
# on (objects/file.c wrote the name unescaped and unquoted).
#
# A program that is not installed skips, naming its package.

load ../zoo/common

setup() {
	zoo_setup
	zoo_python
	ZOO_PROGS="$BATS_TEST_DIRNAME/../zoo/progs"
	HOLDERS=""
	port=$(zoo_free_port)
}
teardown() {
	local h
	for h in $HOLDERS; do kill "$h" 2>/dev/null || true; done
	zoo_teardown
}

# hold NAME [REQUEST]: a client holding a connection to 127.0.0.1:$port in
# the background, with only stdio open; it says "local PORT" in $T/NAME once
# connected (and answered, with REQUEST: \r\n escapes, sent every 0.3 s
# while the server answers). Sets $held, the local (ephemeral) port.
hold() {
	local name=$1 req=${2:-}
	(
		close_fds
		exec "$ZOO_PY" -u - "$port" "$req" >"$T/$name" 2>&1 <<-'PY'
		import socket, sys, time
		port, req = int(sys.argv[1]), sys.argv[2].encode().decode("unicode_escape").encode()
		s = socket.create_connection(("127.0.0.1", port), timeout=10)
		if req:
		    s.sendall(req)
		    s.recv(65536)
		print("local", s.getsockname()[1])
		s.settimeout(None)
		while True:
		    time.sleep(0.3)
		    if req:
		        try:
		            s.sendall(req)
		            if not s.recv(65536):
		                break
		        except OSError:
		            break
		time.sleep(3600)   # the server closed it: hold the port still
		PY
	) &
	HOLDERS="$HOLDERS $!"
	zoo_wait '^local ' "$T/$name" 20
	held=$(sed -n 's/^local //p' "$T/$name")
}

# suggested PID: what `crac check PID` refuses, shown; every rule it
# suggests, one per line, in $T/rules. Fails if it is not refused.
suggested() {
	run timeout 30 "$CRAC" check "$1"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep '^  *check ' | grep -o 'policy `[^`]*`' | sed 's/^policy `//; s/`$//' >"$T/rules"
	echo "suggested rules:"
	cat "$T/rules"
	[ -s "$T/rules" ]
}

# cycle EPHEMERAL_OK ANSWER REQUEST -- CMD...: the whole test for a server.
# ANSWER: a command that succeeds once the server answers. REQUEST: what
# the holding client sends ("" for an idle connection). With EPHEMERAL_OK
# "conn", the refusal must name the connection and its rule must not name
# the ephemeral port.
cycle() {
	local want=$1 answer=$2 req=$3 first
	shift 4
	zoo_run "$@"
	zoo_until 60 $answer >/dev/null
	hold h1 "$req"
	first=$held
	suggested "$pid"
	if [ "$want" = conn ]; then
		grep -q ":$first" "$T/rules" && { echo "a rule names the ephemeral port $first"; return 1; }
		grep -Eq "^tcp \\*:$port->\\* close\$|^tcp 127\\.0\\.0\\.1:$port->\\* close\$" "$T/rules"
	fi
	cp "$T/rules" "$T/pol"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=""
	zoo_until 20 eval "! $answer >/dev/null 2>&1"

	# the same program with the suggested rules, a connection on another port
	zoo_run --opts --policies "$T/pol" -- "$@"
	zoo_until 60 $answer >/dev/null
	hold h2 "$req"
	[ "$held" != "$first" ]
	zoo_check_ok
	zoo_checkpoint
	zoo_restore_bg "$T/r1"
	zoo_until 60 $answer >/dev/null
	# the restored program, a third connection, checkpointed again
	hold h3 "$req"
	[ "$held" != "$first" ]
	run timeout 120 "$CRAC" checkpoint --engine image --keep-running --image-dir "$T/img2" "$rpid"
	echo "$output"
	[ "$status" -eq 0 ]
	$answer
	zoo_stop_restored
}

http_get() { curl -sf --max-time 5 "http://127.0.0.1:$port/$1"; }
KEEPALIVE='GET /1 HTTP/1.1\r\nHost: x\r\n\r\n'

@test "suggested rules: redis-server with a connected client" {
	zoo_need redis-server redis-server
	zoo_need redis-cli redis-tools
	redis_ping() { timeout 5 redis-cli -h 127.0.0.1 -p "$port" PING | grep -qx PONG; }
	cycle conn redis_ping 'PING\r\n' -- redis-server --bind 127.0.0.1 --port "$port" --save "" \
		--appendonly no --daemonize no
}

@test "suggested rules: memcached with a connected client" {
	zoo_need memcached memcached
	mc_version() { "$ZOO_PY" -c "import socket; s = socket.create_connection(('127.0.0.1', $port), timeout=5); s.sendall(b'version\r\n'); assert s.recv(100).startswith(b'VERSION')"; }
	cycle conn mc_version 'version\r\n' -- memcached -u "$(id -un)" -l 127.0.0.1 -p "$port" -U 0 -t 4
}

@test "suggested rules: node http server with a keep-alive client" {
	zoo_need node nodejs
	zoo_need curl curl
	node_get() { http_get 5 | grep -qx "answer 5 115 100000"; }
	cycle conn node_get "$KEEPALIVE" -- node "$ZOO_PROGS/server.js" "$port"
}

@test "suggested rules: nginx as one process with a keep-alive client" {
	zoo_need nginx nginx
	zoo_need curl curl
	mkdir -p "$T/www" "$T/tmp"
	echo "static answer from nginx" >"$T/www/zoo.txt"
	sed -e "s|@MASTER@|off|" -e "s|@STATE@|$T/tmp|g" -e "s|@ROOT@|$T/www|" -e "s|@PORT@|$port|" \
		"$BATS_TEST_DIRNAME/../zoo/nginx.conf.in" >"$T/nginx.conf"
	nginx_get() { http_get zoo.txt | grep -qx "static answer from nginx"; }
	cycle conn nginx_get 'GET /zoo.txt HTTP/1.1\r\nHost: x\r\n\r\n' -- nginx -e stderr -p "$T" -c "$T/nginx.conf"
}

@test "suggested rules: python3 -m http.server with an idle client" {
	zoo_need curl curl
	mkdir -p "$T/www"
	echo "static answer" >"$T/www/a.txt"
	py_get() { http_get a.txt | grep -qx "static answer"; }
	cycle conn py_get '' -- "$ZOO_PY" -u -m http.server --bind 127.0.0.1 --directory "$T/www" "$port"
}

@test "suggested rules: php -S, whose opcache lock is a deleted temporary with a random name" {
	zoo_need php php-cli
	zoo_need curl curl
	mkdir -p "$T/www"
	echo '<?php echo "php answer ", 6 * 7, "\n";' >"$T/www/index.php"
	php_get() { http_get index.php | grep -qx "php answer 42"; }
	cycle any php_get '' -- php -S "127.0.0.1:$port" -t "$T/www"
	# its random name is not in the rule that matched the second run's
	if grep -q ZendSem "$T/pol"; then
		! grep -Eq 'ZendSem\.[A-Za-z0-9]{6}' "$T/pol"
	fi
}

@test "suggested rules: a client holding an outgoing connection (python3)" {
	# a service outside crac that accepts and keeps every connection
	(
		close_fds
		exec "$ZOO_PY" -u -c 'import socket, sys
l = socket.create_server(("127.0.0.1", int(sys.argv[1])))
print("ready", flush=True)
kept = []
while True:
    kept.append(l.accept()[0])' "$port" >"$T/service" 2>&1
	) &
	HOLDERS="$HOLDERS $!"
	zoo_wait '^ready' "$T/service" 20
	# the client: connects, then counts "tick N" on stdout every 0.1 s
	cat >"$T/client.py" <<-'PY'
	import socket, sys, time
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
	print("local", s.getsockname()[1], flush=True)
	n = 0
	while True:
	    n += 1
	    print("tick", n, flush=True)
	    time.sleep(0.1)
	PY
	zoo_run "$ZOO_PY" -u "$T/client.py" "$port"
	zoo_wait '^tick 3$' "$T/out" 30
	first=$(sed -n 's/^local //p' "$T/out")
	suggested "$pid"
	! grep -q ":$first" "$T/rules"
	grep -qx "tcp \\*->127\\.0\\.0\\.1:$port close" "$T/rules"
	cp "$T/rules" "$T/pol"
	# the first client stays (its port stays taken); another run with the rule
	mv "$T/out" "$T/out1"
	ZOO_KILL="$ZOO_KILL $pid"
	pid=""
	zoo_run --opts --policies "$T/pol" -- "$ZOO_PY" -u "$T/client.py" "$port"
	zoo_wait '^tick 3$' "$T/out" 30
	[ "$(sed -n 's/^local //p' "$T/out")" != "$first" ]
	zoo_check_ok
	zoo_checkpoint
	zoo_restore_bg "$T/r1"
	# the restored client goes on counting where it was
	local last
	last=$(sed -n 's/^tick //p' "$T/out" | tail -n 1)
	zoo_wait "^tick $((last + 3))\$" "$T/r1" 30
	! grep -q '^local ' "$T/r1"
	zoo_stop_restored
}

# logger: a python3 program that appends to the log file $T/$LOGNAME (a
# blank, brackets: glob characters) a line per SIGUSR1, and says "logged N".
logger_run() {
	cat >"$T/logger.py" <<-'PY'
	import signal, sys, time
	log = open(sys.argv[1], "a", buffering=1)
	n = 0
	def usr1(sig, frame):
	    global n
	    n += 1
	    log.write("line %d\n" % n)
	    print("logged", n, flush=True)
	signal.signal(signal.SIGUSR1, usr1)
	print("ready", flush=True)
	while True:
	    time.sleep(0.1)
	PY
	zoo_run "$@" "$ZOO_PY" -u "$T/logger.py" "$T/$LOGNAME"
	zoo_wait '^ready' "$T/out" 30
}

@test "suggested rules: a log file (blank and brackets in its name) written after the checkpoint: reopen changed=ok" {
	LOGNAME='app log [1].txt'
	logger_run
	run timeout 120 "$CRAC" checkpoint --engine image --keep-running --image-dir "$T/img" "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	kill -USR1 "$pid"   # the original appends: the file changed
	zoo_wait '^logged 1$' "$T/out" 10
	run clean timeout 60 "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -o 'policy `[^`]*`' | sed 's/^policy `//; s/`$//' >"$T/pol"
	cat "$T/pol"
	grep -qx 'file ".*/app log \\\[1\\\]\.txt" reopen changed=ok' "$T/pol"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=""

	# with the rule: the same, and the restore goes on
	mv "$T/out" "$T/out1"
	logger_run --opts --policies "$T/pol" --
	run timeout 120 "$CRAC" checkpoint --engine image --keep-running --image-dir "$T/img2" "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	kill -USR1 "$pid"
	zoo_wait '^logged 1$' "$T/out" 10
	rm -rf "$T/img"
	mv "$T/img2" "$T/img"
	# restored; signalled once it has jumped into the program (before,
	# SIGUSR1 would end `crac restore`): the loader says "j" on fd 3 then
	SPAWN_FD3="$T/r1.ponr" spawn "$T/r1" "$T/r1" env CRAC_LOADER_PONR_FD=3 "$CRAC" restore "$T/img"
	rpid=$SPAWNED
	ZOO_KILL="$ZOO_KILL $rpid"
	zoo_until 30 grep -q j "$T/r1.ponr"
	kill -USR1 "$rpid"
	zoo_wait '^logged 1$' "$T/r1" 20
	# the restored program appended after the original's line
	tail -n 1 "$T/$LOGNAME" | grep -qx 'line 1'
	[ "$(grep -c '^line 1$' "$T/$LOGNAME")" -eq 3 ]   # run 1, run 2, restored
	zoo_stop_restored
}
