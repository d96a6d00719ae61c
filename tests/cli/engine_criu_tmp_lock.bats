#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The criu engine's temporaries (src/engines/criu.c: make_tmp, clean_stale).
# A criu checkpoint into DIR removes the temporaries of DIR whose writer is
# gone (DIR.tmp-PID-START-XXXXXX). A writer in another pid namespace (a
# container sharing the volume) has a PID and START that mean nothing here:
# judged by them alone, its temporary looked abandoned and a checkpoint
# into the same DIR removed it while CRIU was writing it. The writer now
# holds a lock (flock) on its temporary until its rename (the helper holds
# it while CRIU dumps: the dumped process may hold neither the lock nor a
# descriptor of the temporary); a locked temporary is never removed.
#
# The first two tests use a fake criu and run everywhere; the last needs a
# real CRIU (CRAC_CRIU, as in engine_criu.bats), root and pid namespaces.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	COUNTER="$CRAC_BUILD_DIR/tests/criu_counter"
	T="$(mktemp -d /tmp/crac-bats-criulock.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_CRIU_OPTS
	REAL_CRIU="${CRAC_CRIU:-}"
	unset CRAC_CRIU
	holder=
	a=
}

teardown() {
	[ -z "$holder" ] || kill "$holder" 2>/dev/null || true
	# A (the last test) waits for go: let it end (its namespace with it)
	[ -z "$a" ] || { touch "$T/go"; wait "$a" 2>/dev/null || true; }
	rm -rf "$T"
}

# A criu whose `check` passes and whose dump fails.
failing_criu() {
	cat >"$T/criu" <<'EOF'
#!/bin/sh
[ "$1" = check ] && exit 0
exit 1
EOF
	chmod 755 "$T/criu"
	export CRAC_CRIU="$T/criu"
}

@test "criu engine: a temporary locked by its writer (another pid namespace) is left alone; an unlocked one of a gone writer is removed" {
	command -v flock >/dev/null || skip "flock(1) is not installed"
	failing_criu
	# PID 999999 and START 1: no such writer here
	mkdir -m 700 "$T/img.tmp-999999-1-locked" "$T/img.tmp-999999-1-gonexx"
	touch "$T/img.tmp-999999-1-locked/dump.log" "$T/img.tmp-999999-1-locked/core-5.img"
	touch "$T/img.tmp-999999-1-gonexx/dump.log" "$T/img.tmp-999999-1-gonexx/core-5.img"
	# the lock's holder: a sleep alone (the directory open as its fd 9)
	hold_flock "$T/img.tmp-999999-1-locked"
	holder=$HOLDER
	run clean "$COUNTER" criu "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 1 ]   # the fake dump fails
	ls -la "$T"
	[ -f "$T/img.tmp-999999-1-locked/core-5.img" ]
	[ ! -e "$T/img.tmp-999999-1-gonexx" ]
	kill "$holder"
	wait "$holder" 2>/dev/null || true
	holder=
	# the writer gone, its lock with it: the next checkpoint removes it
	run clean "$COUNTER" criu "$T/img" </dev/null
	[ "$status" -eq 1 ]
	[ ! -e "$T/img.tmp-999999-1-locked" ]
	[ -z "$(ls "$T" | grep '^img\.')" ]
}

@test "criu engine: its temporary is locked while criu dumps, by a process outside the dumped one (which holds no descriptor of it)" {
	command -v flock >/dev/null || skip "flock(1) is not installed"
	# the fake dump looks at its -D directory and at the process -t PID
	cat >"$T/criu" <<'EOF'
#!/bin/sh
[ "$1" = check ] && exit 0
while [ $# -gt 0 ]; do
	case "$1" in
	-t) pid=$2; shift ;;
	-D) dir=$2; shift ;;
	esac
	shift
done
out="${dir%/*}/seen"
flock -n -E 7 "$dir" true
echo "lock=$?" >"$out"
echo "fds=$(ls -l /proc/$pid/fd | grep -c -F "$dir")" >>"$out"
echo "locks=$(cat /proc/$pid/fdinfo/* | grep -c '^lock:')" >>"$out"
exit 1
EOF
	chmod 755 "$T/criu"
	export CRAC_CRIU="$T/criu"
	run clean "$COUNTER" criu "$T/img" </dev/null
	echo "$output"
	cat "$T/seen"
	[ "$status" -eq 1 ]
	[[ "$output" == *"criu dump failed (exit status 1)"* ]]
	grep -qx "lock=7" "$T/seen"    # held (flock -n failed with 7)
	grep -qx "fds=0" "$T/seen"     # not by the process dumped
	grep -qx "locks=0" "$T/seen"
	# the failed checkpoint removed its temporary, and its lock is gone
	[ "$(ls "$T")" = "criu
seen" ]
}

@test "criu engine: the lock is held during the dump when its descriptor is above 1023 (a program with many open)" {
	command -v flock >/dev/null || skip "flock(1) is not installed"
	cat >"$T/criu" <<'EOF'
#!/bin/sh
[ "$1" = check ] && exit 0
while [ $# -gt 0 ]; do
	[ "$1" = -D ] && dir=$2
	shift
done
flock -n -E 7 "$dir" true
echo "lock=$?" >"${dir%/*}/seen"
exit 1
EOF
	chmod 755 "$T/criu"
	: >"$T/f"
	echo "file $T/f warn" >"$T/pol"
	# fds 3-1029 taken (kept by the policy, with a warning): the
	# temporary's lock gets a descriptor above 1023, which the helper
	# once closed with everything else above 1023
	(
		close_fds
		ulimit -n 4096
		for i in $(seq 3 1029); do
			eval "exec $i<\"\$T/f\""
		done
		CRAC_POLICIES="$T/pol" CRAC_CRIU="$T/criu" exec "$COUNTER" criu "$T/img" </dev/null >"$T/out" 2>&1
	) || true
	tail -3 "$T/out"
	grep -q "criu dump failed (exit status 1)" "$T/out"
	cat "$T/seen"
	grep -qx "lock=7" "$T/seen"
}

@test "criu engine: checkpoints into one DIR from two pid namespaces at once: both succeed" {
	[ -n "$REAL_CRIU" ] ||
		skip "CRAC_CRIU is not set: point it at a CRIU >= 4.1 (e.g. built from source) and run as root"
	[ -x "$REAL_CRIU" ] || skip "CRAC_CRIU=$REAL_CRIU is not an executable"
	[ "$(id -u)" -eq 0 ] || skip "CRIU needs root here (uid $(id -u))"
	"$REAL_CRIU" check >/dev/null 2>&1 || skip "CRAC_CRIU=$REAL_CRIU fails \`criu check\`"
	unshare --pid --fork --mount-proc true 2>/dev/null || skip "no pid namespaces here"
	# A's criu dumps only once B is done (at most 30 s)
	cat >"$T/slowcriu" <<EOF
#!/bin/sh
if [ "\$1" = dump ]; then
	for i in \$(seq 300); do [ -e "$T/go" ] && break; sleep 0.1; done
fi
exec "$REAL_CRIU" "\$@"
EOF
	chmod 755 "$T/slowcriu"
	# A, in its own pid namespace (a shell its pid 1, A its pid 2, so
	# that the helper is reparented out of A's tree; its own session, as
	# CRIU dumps no session leader outside the namespace; stdio opened
	# inside its mount namespace, where CRIU finds their mounts)
	(
		close_fds
		CRAC_CRIU="$T/slowcriu" exec unshare --pid --fork --mount-proc \
			sh -c 'exec </dev/null >"$1.out" 2>&1; setsid -w "$0" criu "$1"; st=$?; exit $st' \
			"$COUNTER" "$T/D" </dev/null >/dev/null 2>&1
	) &
	a=$!
	for _ in $(seq 1000); do
		ls "$T" | grep -q '^D\.tmp-' && break
		sleep 0.01
	done
	tmp="$(ls -d "$T"/D.tmp-*)"
	echo "A's temporary: $tmp"
	# B, here, into the same DIR while A's criu waits
	export CRAC_CRIU="$REAL_CRIU"
	run clean "$COUNTER" criu "$T/D" </dev/null
	echo "B: $output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"before: "* ]]
	[ -e "$tmp" ]   # A's temporary, still there
	touch "$T/go"
	sa=0
	wait "$a" || sa=$?
	a=
	echo "A:"
	cat "$T/D.out"
	[ "$sa" -eq 0 ]
	! grep -q "No such file" "$T/D.out" || false
	# A's image is the one in place (its pid 2 in its namespace)
	grep -qx "pid=2" "$T/D/crac-criu"
	[ -f "$T/D/inventory.img" ]
	[ "$(ls "$T" | grep -v '\.out$' | grep -v criu | grep -vx go)" = D ]
}

# A criu whose `check` passes and whose dump "succeeds": it writes the
# heads of the images the engine verifies (inventory, pstree, core-PID:
# CRIU's magics, little-endian) into its -D directory and exits 0 (nothing
# is dumped; the engine goes on as after a dump: marker, commit).
succeeding_criu() {
	cat >"$T/criu" <<'EOF2'
#!/bin/sh
[ "$1" = check ] && exit 0
while [ $# -gt 0 ]; do
	case "$1" in
	-t) pid=$2; shift ;;
	-D) dir=$2; shift ;;
	esac
	shift
done
printf '\026\061\061\130' >"$dir/inventory.img"
printf '\031\103\126\124\060\060\047\120' >"$dir/pstree.img"
printf '\031\103\126\124\107\070\005\125' >"$dir/core-$pid.img"
exit 0
EOF2
	chmod 755 "$T/criu"
	export CRAC_CRIU="$T/criu"
}

# aside_locked ENGINE FILE: an image of ENGINE in $T/img (FILE in it), then
# a second checkpoint into it on a file system without RENAME_EXCHANGE
# (CRAC_TEST_NO_EXCHANGE=1) that holds 5 s once it moved the previous image
# aside (CRAC_TEST_SLOW_FS=aside:5000): meanwhile DIR.old-PID-START is
# locked (flock), as the temporaries are, so that a cleaner to which PID
# and START mean nothing (another pid namespace) leaves it alone; then the
# new image is in place and the old one is gone.
aside_locked() {
	command -v flock >/dev/null || skip "flock(1) is not installed"
	run clean "$COUNTER" "$1" "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	[ -f "$T/img/$2" ]
	spawn "$T/second.out" "$T/second.out" env CRAC_TEST_NO_EXCHANGE=1 CRAC_TEST_SLOW_FS=aside:5000 \
		"$COUNTER" "$1" "$T/img"
	holder=$SPAWNED
	for _ in $(seq 1000); do
		ls "$T" | grep -q '^img\.old-' && break
		sleep 0.02
	done
	old="$(ls -d "$T"/img.old-*)"
	echo "aside: $old"
	rc=0
	flock -n -E 7 "$old" true || rc=$?
	[ "$rc" -eq 7 ]
	st=0
	wait "$holder" || st=$?
	holder=
	cat "$T/second.out"
	[ "$st" -eq 0 ]
	[ -f "$T/img/$2" ]
	[ -z "$(ls "$T" | grep '^img\.')" ]
}

@test "criu engine: the previous image moved aside (no RENAME_EXCHANGE) is locked until it is removed" {
	succeeding_criu
	aside_locked criu crac-criu
}

@test "image engine: the previous image moved aside (no RENAME_EXCHANGE) is locked until it is removed" {
	require_image_engine
	aside_locked image header
}

@test "criu engine without pidfd_getfd (CRAC_PRETEND_MISSING=pidfd_getfd): the helper is killed and the temporary locked anew by the original, said at debug level" {
	command -v flock >/dev/null || skip "flock(1) is not installed"
	succeeding_criu
	# the commit's rename holds 5 s: the lock is looked at meanwhile
	spawn "$T/out" "$T/err" env CRAC_PRETEND_MISSING=pidfd_getfd CRAC_LOG=debug CRAC_TEST_SLOW_FS=rename:5000 \
		"$COUNTER" criu "$T/img"
	holder=$SPAWNED
	for _ in $(seq 1000); do
		grep -q "pidfd_getfd" "$T/err" 2>/dev/null && break
		sleep 0.02
	done
	tmp="$(ls -d "$T"/img.tmp-*)"
	echo "temporary: $tmp"
	cat "$T/err"
	grep -Eq "^crac: (debug: )?criu: the lock of $tmp could not be taken back from the helper [0-9]+ \(pidfd_getfd: Function not implemented\): helper killed, the temporary locked anew$" "$T/err"
	# locked, by the original (the helper is gone)
	rc=0
	flock -n -E 7 "$tmp" true || rc=$?
	[ "$rc" -eq 7 ]
	[ "$(cat /proc/$holder/fdinfo/* | grep -c '^lock:')" -ge 1 ]
	st=0
	wait "$holder" || st=$?
	holder=
	[ "$st" -eq 0 ]
	[ -f "$T/img/crac-criu" ]
	[ -z "$(ls "$T" | grep '^img\.')" ]
}
