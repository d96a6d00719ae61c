#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Socket activation with plain `crac run` and `crac restore DIR` (issue 13
# item 3), as `crac start` does it: `crac run` under socket activation
# records which of the program's descriptors were systemd's sockets in
# DIR/activation when its checkpoint writes DIR; `crac restore DIR` given
# sockets again (LISTEN_FDS, LISTEN_PID naming it) puts them at those
# numbers instead of binding the address again; a mismatch refuses with
# one line. systemd-socket-activate (Debian package systemd) passes the
# sockets; no running systemd needed.

load common
load start_common

setup() {
	T="$(mktemp -d /tmp/crac-bats-act.XXXXXX)"
	start_setup
	require_image_engine
	command -v systemd-socket-activate >/dev/null ||
		skip "systemd-socket-activate is not installed (Debian package systemd)"
}

teardown() { start_teardown; }

# replaced FILE INODE: FILE is there with another inode.
replaced() {
	local now
	now="$(stat -c %i "$1" 2>/dev/null)" && [ "$now" != "$2" ]
}

# listener_inode PORT: the inode of the socket listening on 127.0.0.1:PORT.
listener_inode() {
	awk -v p="$(printf ':%04X' "$1")" '$2 ~ p"$" && $4 == "0A" { print $10 }' /proc/net/tcp
}

# activated_image: `crac run` under socket activation on $port1 checkpoints
# the server (once it says READY=1, after one connection) into $T/img.
activated_image() {
	port1="$(free_port)"
	bg first systemd-socket-activate -l "127.0.0.1:$port1" -E CRAC_CONTROL_DIR -E PATH \
		"$CRAC" run --checkpoint-to "$T/img" --checkpoint-after 300ms -- "$SERVER" "$T/d"
	wait_for listening "$port1"
	a="$(ask "$port1")"
	echo "$a"
	[[ "$a" == "answer "*"boots=1 served=1 activated=1"* ]]
	# the image engine ends the program once its image is written; crac with it
	wait "$pid"
	cat "$T/first.err"
	[ -f "$T/img/header" ]
}

@test "crac run under socket activation records DIR/activation; crac restore DIR hands a fresh socket to the restored program" {
	activated_image
	[ "$(cat "$T/img/activation")" = "0 3" ]
	# another socket, another port: the restored program serves it, warm
	port2="$(free_port)"
	[ "$port2" != "$port1" ]
	bg second systemd-socket-activate -l "127.0.0.1:$port2" -E CRAC_CONTROL_DIR -E PATH \
		"$CRAC" restore "$T/img"
	wait_for listening "$port2"
	a="$(ask "$port2")"
	echo "$a"
	cat "$T/second.err"
	[[ "$a" == "answer pid=$pid boots=1 served=2 activated=1" ]]
	[ "$(wc -l <"$T/d/boots")" -eq 1 ]
	# the passed socket, at the program's fd 3; the old address not bound again
	[ "$(readlink /proc/$pid/fd/3)" = "socket:[$(listener_inode "$port2")]" ]
	! listening "$port1" || false
	# nothing said by crac (systemd-socket-activate's own lines aside)
	! grep "^crac" "$T/second.err" || false
}

@test "crac restore DIR under socket activation refuses a mismatch with one line: a recorded socket not passed; sockets passed, none recorded" {
	activated_image
	# LISTEN_FDS=0 for this very process: the image's socket is not passed
	run --separate-stderr clean sh -c 'LISTEN_PID=$$ LISTEN_FDS=0 exec "$0" restore "$1"' "$CRAC" "$T/img"
	echo "$status: $stderr"
	[ "$status" -eq 1 ]
	[ "$stderr" = "crac: restore $T/img: the program of $T/img got socket 1 of socket activation (LISTEN_FDS) at fd 3; LISTEN_FDS passes 0 sockets now" ]
	# a damaged record
	printf '0 x\n' >"$T/img/activation"
	run --separate-stderr clean sh -c 'LISTEN_PID=$$ LISTEN_FDS=0 exec "$0" restore "$1"' "$CRAC" "$T/img"
	[ "$status" -eq 1 ]
	[ "$stderr" = "crac: restore $T/img: $T/img/activation is damaged" ]
	# LISTEN_PID of another process: not ours, the record is not consulted
	# (the restored program binds its address again, as without systemd)
	# an image made without socket activation, restored with a socket passed
	bg plain "$CRAC" run --checkpoint-to "$T/plain" --checkpoint-after 300ms -- "$SERVER" "$T/d2"
	wait "$pid"
	[ -f "$T/plain/header" ]
	[ ! -e "$T/plain/activation" ]
	port2="$(free_port)"
	bg third systemd-socket-activate -l "127.0.0.1:$port2" "$CRAC" restore "$T/plain"
	wait_for listening "$port2"
	ask "$port2" || true   # systemd-socket-activate starts crac at the first connection
	status=0
	wait "$pid" || status=$?
	cat "$T/third.err"
	[ "$status" -eq 1 ]
	[ "$(grep "^crac" "$T/third.err")" = "crac: restore $T/plain: LISTEN_FDS passes 1 socket, but the program of $T/plain got none at its checkpoint (it would bind its own address again)" ]
}

@test "crac run --checkpoint-on: each image gets its record; a checkpoint that fails leaves the old image and its record" {
	port1="$(free_port)"
	bg first systemd-socket-activate -l "127.0.0.1:$port1" -E CRAC_CONTROL_DIR -E PATH \
		"$CRAC" run --keep-running --checkpoint-to "$T/img" --checkpoint-on USR1 -- "$SERVER" "$T/d"
	wait_for listening "$port1"
	[[ "$(ask "$port1")" == "answer "*"activated=1"* ]]
	child="$(child_of "$pid")"
	wait_for test -S "$CRAC_CONTROL_DIR/$child.sock"
	kill -USR1 "$pid"
	wait_for test -f "$T/img/activation"
	[ "$(cat "$T/img/activation")" = "0 3" ]
	ino="$(stat -c %i "$T/img/header")"
	# a second checkpoint replaces the image (its record does not stop it)
	kill -USR1 "$pid"
	wait_for replaced "$T/img/header" "$ino"
	wait_for test -f "$T/img/activation"
	[ "$(cat "$T/img/activation")" = "0 3" ]
	# one the image engine refuses (DIR holds a file of someone else's):
	# the old image stays, with its record
	ino="$(stat -c %i "$T/img/header")"
	: >"$T/img/notes"
	kill -USR1 "$pid"
	wait_for grep -q "started failed" "$T/first.err"
	cat "$T/first.err"
	[ "$(stat -c %i "$T/img/header")" = "$ino" ]
	[ "$(cat "$T/img/activation")" = "0 3" ]
	! grep -q "cannot write" "$T/first.err" || false
	[[ "$(ask "$port1")" == "answer "*"activated=1"* ]]
}

# The record is written by a helper of image/dir.c, bounded by crac run's
# limit (CRAC_TEST_SYNC_GRACE_MS in tests): a file system that does not
# answer (CRAC_TEST_SLOW_FS=put:MS, src/image/dir.c) is given up on, said
# naming the step and the path, and crac run does not wait for ever.
@test "crac run under socket activation: the write of DIR/activation that does not return is given up after crac run's limit, naming the step and the path" {
	port1="$(free_port)"
	bg first env CRAC_TEST_SLOW_FS=put:600000 CRAC_TEST_SYNC_GRACE_MS=1000 \
		systemd-socket-activate -l "127.0.0.1:$port1" -E CRAC_CONTROL_DIR -E PATH -E CRAC_TEST_SLOW_FS \
		-E CRAC_TEST_SYNC_GRACE_MS "$CRAC" run --checkpoint-to "$T/img" --checkpoint-after 300ms -- "$SERVER" "$T/d"
	wait_for listening "$port1"
	ask "$port1"
	# the image engine ends the program once its image is written; crac with it
	wait_gone "$pid" 15 || { cat "$T/first.err"; false; }
	cat "$T/first.err"
	[ -f "$T/img/header" ]
	[ ! -e "$T/img/activation" ]
	grep -Eq "^crac: run: cannot write $T/img/activation \(which of the program's descriptors are the sockets of socket activation\): the write of $T/img/activation \(the open of $T/img\) did not return after [0-9]+ ms \(crac run's limit, 1000 ms\): its file system does not answer; given up; a restore under socket activation refuses the image$" "$T/first.err"
}
