#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo: nginx, unmodified under `crac run` with no policy file.
#  - As one process (`master_process off;`, nginx's single-process mode):
#    warmed up by a request, checkpointed from outside and restored twice;
#    each restored copy must serve the same static file and the same
#    computed answer on the same port. It holds epoll, a listening socket,
#    an eventfd-like channel and shared anonymous memory of its own.
#    Its error log goes to stderr: a log file it appends to (a notice at
#    start) would change between the checkpoint and a restore, which the
#    restore then refuses, naming the file (as it must).
#  - As a master with a worker (nginx's default): refused, and the refusal
#    says why the suggested rule would not serve (the worker is a child
#    process, not part of the image: a master restored without it accepts
#    no connection) and what works instead.

load common

setup() {
	zoo_setup
	zoo_python
	zoo_need nginx nginx-light
	zoo_need curl curl
	mkdir "$T/www" "$T/tmp"
	chmod 755 "$T" "$T/www"   # a worker started as root runs as nobody
	echo "static answer from nginx" >"$T/www/zoo.txt"
	port=$(zoo_free_port)
}
teardown() { zoo_teardown; }

# conf MASTER: an nginx.conf in $T serving $T/www on $port (nginx.conf.in,
# bench/zoo.sh's too), its pid file and temporary files in $T/tmp
conf() {
	sed -e "s|@MASTER@|$1|" -e "s|@STATE@|$T/tmp|g" -e "s|@ROOT@|$T/www|" -e "s|@PORT@|$port|" \
		"$BATS_TEST_DIRNAME/nginx.conf.in" >"$T/nginx.conf"
}

get() { curl -sf --max-time 5 "http://127.0.0.1:$port/$1"; }

@test "zoo: nginx as one process restored twice serves the same file and answer" {
	conf off
	zoo_run nginx -e stderr -p "$T" -c "$T/nginx.conf"
	zoo_until 30 get zoo.txt
	[ "$(get zoo.txt)" = "static answer from nginx" ]
	zoo_check_ok
	zoo_checkpoint
	for i in 1 2; do
		zoo_restore_bg "$T/r$i"
		zoo_until 60 get zoo.txt
		[ "$(get zoo.txt)" = "static answer from nginx" ]
		[ "$(get computed)" = "computed GET /computed" ]
		zoo_stop_restored
	done
}

@test "zoo: nginx with a worker process is refused, and the refusal says what works" {
	conf on
	zoo_run nginx -e stderr -p "$T" -c "$T/nginx.conf"
	zoo_until 30 get zoo.txt
	run timeout 30 "$CRAC" check "$pid"
	echo "$output"
	[ "$status" -ne 0 ]
	echo "$output" | grep -q "check child [0-9]*: .*child process [0-9]* (nginx)"
	echo "$output" | grep -q "a process that hands its work to its children (a master and its workers) serves nothing"
	echo "$output" | grep -q "nginx: master_process off"
	# and a checkpoint is refused the same way: the server goes on
	run timeout 60 "$CRAC" checkpoint --engine image --image-dir "$T/img" "$pid"
	echo "$output"
	[ "$status" -ne 0 ]
	[ ! -e "$T/img" ]
	[ "$(get zoo.txt)" = "static answer from nginx" ]
}
