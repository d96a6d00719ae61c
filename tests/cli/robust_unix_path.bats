#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A Unix socket path that cannot be bound again at restore (another file
# there, a symbolic link planted there, its directory gone or read-only)
# refuses the restore BEFORE the loader's point of no return
# (check_descriptors -> crac_obj_socket_check, src/objects/socket.c), with
# one line naming the fd and the path, and changes nothing: no file
# removed, no link followed, the stale socket files left as they were.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/obj_sock"
	T="$(mktemp -d /tmp/crac-bats-unixpath.XXXXXX)"
	chmod 755 "$T"
	mkdir -m 755 "$T/work"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
	require_image_engine
	MOUNTED=
}

teardown() {
	[ -z "$MOUNTED" ] || umount "$MOUNTED" 2>/dev/null || true
	rm -rf "$T"
}

# checkpoint: obj_sock's sockets (a Unix listener at $T/work/sock, a bound
# datagram socket at $T/work/dgram) in $T/img; the original exits, its
# socket files stay (stale)
checkpoint() {
	run clean "$PROG" "$T/img" "$T/work"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -S "$T/work/sock" ]
}

# restore_refused PATTERN: `crac restore` (run by $RESTORE_AS, a command
# prefix, when set) fails with one line matching PATTERN, and never reached
# its point of no return
restore_refused() {
	run clean ${RESTORE_AS:-} bash -c 'exec 3>"$1"; CRAC_LOADER_PONR_FD=3 exec "$2" restore "$3" </dev/null' _ \
		"$T/ponr" "$CRAC" "$T/img"
	echo "$status: $output"
	[ "$status" -eq 1 ]
	[ ! -s "$T/ponr" ]
	[ "${#lines[@]}" -eq 1 ]
	# (the reason's own text, then the error's name)
	echo "$output" | grep -Eq "^crac: restore $T/img: fd [0-9]+ \\(socket [^)]*\\): $1(: [^:]*)?\$"
}

# restore_hooked HOOK=MS: `crac restore $T/img` in the background, the
# loader's test hook HOOK (CRAC_LOADER_TEST_*_DELAY_MS) set, stdout in
# $T/r.out, stderr in $T/r.err, the point-of-no-return bytes in $T/ponr;
# sets r, its pid
restore_hooked() {
	SPAWN_FD3="$T/ponr" spawn "$T/r.out" "$T/r.err" env CRAC_LOADER_PONR_FD=3 "$1" "$CRAC" restore "$T/img"
	r=$SPAWNED
}

# swap_work: the directory of the Unix paths, $T/work, moved to
# $T/work.old and a symbolic link to $T/elsewhere put in its place
swap_work() {
	mv "$T/work" "$T/work.old"
	ln -s "$T/elsewhere" "$T/work"
}

# refused_swapped PATH HOW: the restore_hooked restore fails before its
# point of no return, nothing on stdout and one line on stderr: PATH cannot
# be bound, its directory $T/work "was replaced since the restore HOW"
# (an extended regular expression)
refused_swapped() {
	wait "$r" && status=0 || status=$?
	cat "$T/r.out" "$T/r.err"
	[ "$status" -eq 1 ]
	[ ! -s "$T/ponr" ]
	[ ! -s "$T/r.out" ]
	[ "$(wc -l <"$T/r.err")" -eq 1 ]
	grep -Eq "^crac: restore $T/img: fd [0-9]+ \\(socket $1\\): cannot bind $1: its directory $T/work was replaced since the restore $2" "$T/r.err"
}

# stale_elsewhere: stale socket files at $T/elsewhere/sock and dgram, as at
# the paths (following a link there would remove them and bind there);
# their identities in id_sock and id_dgram
stale_elsewhere() {
	python3 -c 'import socket, sys; [socket.socket(socket.AF_UNIX).bind(sys.argv[1] + n) for n in ("/sock", "/dgram")]' \
		"$T/elsewhere" || skip "no python3 to make a socket file"
	id_sock="$(stat -c '%i %z' "$T/elsewhere/sock")"
	id_dgram="$(stat -c '%i %z' "$T/elsewhere/dgram")"
}

# elsewhere_untouched: the stale_elsewhere files are the same, and nothing
# else was bound or made there
elsewhere_untouched() {
	[ -S "$T/elsewhere/sock" ]
	[ "$(stat -c '%i %z' "$T/elsewhere/sock")" = "$id_sock" ]
	[ -S "$T/elsewhere/dgram" ]
	[ "$(stat -c '%i %z' "$T/elsewhere/dgram")" = "$id_dgram" ]
	[ -z "$(ls "$T/elsewhere" | grep -vx 'sock\|dgram')" ]
}

# the restore works again once the path is free
restores_again() {
	run clean "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "restored ok"
}

@test "a regular file at the Unix path: refused before the point of no return, the file and the stale sockets untouched" {
	checkpoint
	rm "$T/work/sock"
	echo precious >"$T/work/sock"
	restore_refused "$T/work/sock exists and is not a socket: it is left alone and the socket cannot be bound there"
	[ "$(cat "$T/work/sock")" = precious ]
	[ -S "$T/work/dgram" ]
	rm "$T/work/sock"
	restores_again
}

@test "a symbolic link planted at the Unix path is never followed nor removed: refused before the point of no return" {
	checkpoint
	mkdir "$T/elsewhere"
	# a stale socket elsewhere (nothing listens on it): following the link
	# would remove it and bind there
	python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/elsewhere/target" ||
		skip "no python3 to make a socket file"
	rm "$T/work/sock"
	ln -s "$T/elsewhere/target" "$T/work/sock"
	ino="$(stat -c %i "$T/elsewhere/target")"
	restore_refused "$T/work/sock is a symbolic link: it is left alone, not followed, and the socket cannot be bound there"
	[ -L "$T/work/sock" ]
	[ "$(readlink "$T/work/sock")" = "$T/elsewhere/target" ]
	[ -S "$T/elsewhere/target" ]
	[ "$(stat -c %i "$T/elsewhere/target")" = "$ino" ]
	[ -S "$T/work/dgram" ]
	# a dangling link too
	rm "$T/work/sock"
	ln -s "$T/nothing-here" "$T/work/sock"
	restore_refused "$T/work/sock is a symbolic link: it is left alone, not followed, and the socket cannot be bound there"
	[ ! -e "$T/nothing-here" ]
	rm "$T/work/sock"
	restores_again
}

@test "the Unix path's directory is gone: refused before the point of no return, naming the directory" {
	checkpoint
	mv "$T/work" "$T/moved"
	restore_refused "cannot bind $T/work/[a-z]+: its directory $T/work does not exist"
	[ ! -e "$T/work" ]
	[ -S "$T/moved/sock" ]
	[ -S "$T/moved/dgram" ]
	# a file where the directory was
	touch "$T/work"
	restore_refused "cannot bind $T/work/[a-z]+: its directory $T/work is not a directory"
	rm "$T/work"
	mv "$T/moved" "$T/work"
	restores_again
}

@test "the Unix path's directory is read-only: refused before the point of no return, the stale socket files stay" {
	mount -t tmpfs -o mode=755,size=1m tmpfs "$T/work" 2>/dev/null || skip "cannot mount a tmpfs here (not root, or no mount permission)"
	MOUNTED="$T/work"
	checkpoint
	mount -o remount,ro "$T/work" || skip "cannot remount the tmpfs read-only"
	restore_refused "cannot bind $T/work/[a-z]+: its directory $T/work is on a read-only file system"
	[ -S "$T/work/sock" ]
	[ -S "$T/work/dgram" ]
	mount -o remount,rw "$T/work"
	restores_again
}

@test "unprivileged: a Unix path whose directory the restoring user cannot write: refused before the point of no return" {
	need_nobody "$PROG"
	chown 65534:65534 "$T" "$T/work"
	run clean $NOBODY "$PROG" "$T/img" "$T/work"
	echo "$output"
	[ "$status" -eq 0 ]
	# the directory is root's now: nobody cannot make the socket file
	chown 0:0 "$T/work"
	chmod 755 "$T/work"
	RESTORE_AS="$NOBODY" restore_refused "cannot bind $T/work/[a-z]+: its directory $T/work is not writable by this user"
	[ -S "$T/work/sock" ]
	[ -S "$T/work/dgram" ]
}

@test "the Unix path's directory replaced by a symbolic link after the check: the restore does not bind nor remove anything elsewhere, and removes no file it did not make" {
	checkpoint
	mkdir "$T/elsewhere"
	stale_elsewhere
	before="$(stat -c '%i %z' "$T/work/sock")"
	# the loader binds work/sock, then waits 3 s before it listens (the
	# test hook), still before its point of no return; meanwhile the
	# directory is swapped: its next path, work/dgram, now leads elsewhere
	restore_hooked CRAC_LOADER_TEST_LISTEN_DELAY_MS=3000
	for _ in $(seq 500); do
		[ -S "$T/work/sock" ] && [ "$(stat -c '%i %z' "$T/work/sock")" != "$before" ] && break
		sleep 0.02
	done
	[ "$(stat -c '%i %z' "$T/work/sock")" != "$before" ]   # bound again, not listening yet
	swap_work
	refused_swapped "$T/work/dgram" "checked it: the socket is not bound there"
	# nothing elsewhere removed or bound; its socket file at work/sock (now
	# elsewhere/sock, another file) was not removed through the link
	elsewhere_untouched
}

@test "an abstract name another process holds: refused before the point of no return (it was found at the bind, after it)" {
	checkpoint
	opid="$("$CRAC" inspect "$T/img" | sed -n 's/^process: *pid \([0-9]*\).*/\1/p')"
	[ -n "$opid" ]
	# obj_sock's abstract seqpacket listener: @crac-obj-sock-PID
	spawn "$T/hold.out" "$T/hold.err" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind("\0" + sys.argv[1])
s.listen(1)
print("holding", flush=True)
time.sleep(60)' "crac-obj-sock-$opid"
	holder=$SPAWNED
	wait_line "$T/hold.out" holding 5 "$T/hold.err" || { kill "$holder"; false; }
	restore_refused "the address is taken: another process holds it"
	[[ "$output" == *"(socket @crac-obj-sock-$opid): "* ]]
	kill "$holder"
	wait "$holder" || true
	restores_again
}

@test "a Unix path another process of this network namespace listens on: refused before the point of no return without connecting to it" {
	command -v python3 >/dev/null || skip "no python3"
	checkpoint
	rm "$T/work/sock"
	# a listener that reports every connection made to it (an unmodified
	# server answering the restore's probe would find its peer gone:
	# EPIPE, or death by SIGPIPE)
	spawn "$T/hold.out" "$T/hold.err" python3 -c '
import os, select, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
print("holding", flush=True)
n = 0
end = time.time() + 60
while time.time() < end and not os.path.exists(sys.argv[2]):
    if select.select([s], [], [], 0.1)[0]:
        s.accept()
        n += 1
# (connections made just before the stop file)
while select.select([s], [], [], 0.2)[0]:
    s.accept()
    n += 1
print("connections %d" % n, flush=True)' "$T/work/sock" "$T/stop"
	holder=$SPAWNED
	wait_line "$T/hold.out" holding 5 "$T/hold.err" || { kill "$holder"; false; }
	restore_refused "$T/work/sock is in use: another process listens there"
	touch "$T/stop"
	wait "$holder" || true
	cat "$T/hold.out" "$T/hold.err"
	grep -qx "connections 0" "$T/hold.out"
}

@test "Unix paths of 108 bytes (sizeof sun_path, no NUL): a listener, a bound datagram socket and one connected to it are restored" {
	# the kernel names such a socket with 111 bytes (the path, a NUL, the
	# family): getsockname's length, which bind and connect refuse (EINVAL)
	d="$T/$(printf 'd%.0s' $(seq 1 $((100 - ${#T}))))"
	mkdir -m 755 "$d"
	p="$d/$(printf 's%.0s' $(seq 1 $((108 - ${#d} - 1))))"
	q="$d/$(printf 'g%.0s' $(seq 1 $((108 - ${#d} - 1))))"
	[ "${#p}" -eq 108 ]
	[ "${#q}" -eq 108 ]
	run clean "$PROG" "$T/img" "$T/work" unixlong "$p" "$q"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -S "$p" ]
	[ -S "$q" ]
	restores_twice "long ok"
}

@test "the Unix path's directory replaced after it was locked, before the stale socket file's removal and the bind: nothing removed nor bound elsewhere, refused before the point of no return" {
	checkpoint
	mkdir "$T/elsewhere"
	stale_elsewhere
	# the loader locks work (the directory the check saw), then waits 2 s
	# (the test hook) before it looks at work/sock again; meanwhile the
	# directory is swapped for a link elsewhere
	restore_hooked CRAC_LOADER_TEST_LOCKED_DELAY_MS=2000
	sleep 0.7
	swap_work
	refused_swapped "$T/work/sock" "locked it: nothing is removed nor bound there"
	# nothing elsewhere removed or bound
	elsewhere_untouched
	# the directory checked keeps its stale socket files
	[ -S "$T/work.old/sock" ]
	[ -S "$T/work.old/dgram" ]
}

@test "the Unix path's directory replaced after it was locked by a link to an empty directory: the socket bound there is removed again, refused before the point of no return" {
	checkpoint
	mkdir "$T/elsewhere"
	restore_hooked CRAC_LOADER_TEST_LOCKED_DELAY_MS=2000
	sleep 0.7
	swap_work
	# refused at the first path, the one bound in the link's directory
	refused_swapped "$T/work/sock" "locked it: the socket is not bound there"
	[ -z "$(ls -A "$T/elsewhere")" ]
	[ -S "$T/work.old/sock" ]
	[ -S "$T/work.old/dgram" ]
}

# The stale socket file at a Unix path is removed only if it is the
# restoring user's: another user's (root's, as a second uid restores; a
# second uid's, as root restores) is left alone, even where the restoring
# user could remove it, and the restore is refused before its point of no
# return, naming the path and its owner.
@test "a second uid's restore finds a root-owned socket file at the Unix path: left alone, refused naming its owner" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to switch to uid 1000"
	command -v setpriv >/dev/null || skip "no setpriv"
	U1000="setpriv --reuid=1000 --regid=1000 --clear-groups"
	$U1000 test -x "$PROG" || skip "build tree not accessible to uid 1000"
	chown 1000:1000 "$T" "$T/work"
	run clean $U1000 "$PROG" "$T/img" "$T/work"
	echo "$output"
	[ "$status" -eq 0 ]
	# root's socket file now (nothing listens on it), in uid 1000's
	# directory: uid 1000 could remove it
	chown 0:0 "$T/work/sock"
	local ino
	ino=$(stat -c %i "$T/work/sock")
	run clean $U1000 bash -c 'exec 3>"$1"; CRAC_LOADER_PONR_FD=3 exec "$2" restore "$3" </dev/null' _ \
		"$T/ponr" "$CRAC" "$T/img"
	echo "$status: $output"
	[ "$status" -eq 1 ]
	[ ! -s "$T/ponr" ]
	[ "${#lines[@]}" -eq 1 ]
	echo "$output" | grep -Eq "^crac: restore $T/img: fd [0-9]+ \\(socket [^)]*\\): $T/work/sock is a socket file of uid 0, not of this user \\(uid 1000\\): it is left alone and the socket cannot be bound there(: [^:]*)?\$"
	[ -S "$T/work/sock" ]
	[ "$(stat -c %i:%u "$T/work/sock")" = "$ino:0" ]
	# its own again: removed as stale, and the restore works
	chown 1000:1000 "$T/work/sock"
	run clean $U1000 "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "restored ok"
}

@test "root's restore finds a second uid's socket file at the Unix path: left alone, refused naming its owner" {
	[ "$(id -u)" -eq 0 ] || skip "needs root"
	checkpoint
	chown 1000:1000 "$T/work/sock"
	local ino
	ino=$(stat -c %i "$T/work/sock")
	restore_refused "$T/work/sock is a socket file of uid 1000, not of this user \\(uid 0\\): it is left alone and the socket cannot be bound there"
	[ "$(stat -c %i:%u "$T/work/sock")" = "$ino:1000" ]
	[ -S "$T/work/dgram" ]
	chown 0:0 "$T/work/sock"
	restores_again
}
