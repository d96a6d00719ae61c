#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Two processes of the same pid number in two pid namespaces (two
# containers) sharing one control directory (/tmp/crac-UID or a
# CRAC_CONTROL_DIR). Each start binds its socket under a temporary name
# of its own (DIR/PID-RANDOM.tmp: the old DIR/PID.tmp was removed by the
# other's start, which then renamed its own socket or lost it), and where
# DIR/PID.sock is the other's live socket, listens at
# DIR/PID.pidns-INO.sock (INO: the inode of its /proc/self/ns/pid), which
# `crac checkpoint PID` in that namespace finds. From the parent
# namespace, `crac checkpoint HOSTPID` finds either name by the pid the
# process knows itself by (NSpid), in its root first where its mount
# namespace is its own, and takes only that very process as the peer
# (SO_PEERCRED, pidfd). Root only (unshare).

bats_require_minimum_version 1.5.0

load common

setup() {
	common_setup ctlpidns --open --control CRAC_TEST_SYNC_GRACE_MS CRAC_TEST_SLOW_FS
	PROG="$CRAC_BUILD_DIR/tests/ctlprog"
	[ "$(id -u)" -eq 0 ] || skip "needs root (pid namespaces)"
	unshare --pid --fork --mount-proc --kill-child true 2>/dev/null || skip "no pid namespaces here"
}

teardown() {
	common_teardown
}

# ns_spawn NAME [VAR=VALUE...]: ctlprog as pid 1 of a new pid namespace
# (with its own /proc), CRAC_CONTROL=1 and VAR=VALUE; sets $hp, its pid as
# we see it (the child of unshare), and adds both to PIDS.
ns_spawn() {
	local name=$1 u
	shift
	spawn "$T/$name.out" "$T/$name.err" unshare --pid --fork --mount-proc --kill-child \
		env CRAC_CONTROL=1 "$@" "$PROG"
	u=$SPAWNED
	PIDS+=("$u")
	hp=
	# (the child of unshare itself: before its exec the subshell of spawn
	# has children of its own)
	for _ in $(seq 200); do
		if [ "$(cat /proc/"$u"/comm 2>/dev/null)" = unshare ]; then
			hp=$(cat /proc/"$u"/task/*/children 2>/dev/null | tr -d ' ')
			[ -n "$hp" ] && [ "$(readlink /proc/"$hp"/exe)" = "$PROG" ] && break
		fi
		hp=
		sleep 0.02
	done
	[ -n "$hp" ]
	PIDS+=("$hp")
}

# in_ns HOSTPID CMD...: CMD in that process's pid and mount namespaces
in_ns() {
	local p=$1
	shift
	nsenter -t "$p" -p -m -- "$@"
}

@test "two processes of pid 1 in two pid namespaces sharing the control directory: each keeps its endpoint (one at PID.sock, the other at PID.pidns-INO.sock)" {
	# A: held 3 s once bound under its temporary
	ns_spawn a CRAC_TEST_SLOW_FS=bound:3000
	a=$hp
	# (its temporary: 1-RANDOM.tmp; 1.tmp before the temporary's name was
	# unique, which B's start removed: A's rename then failed, ENOENT)
	for _ in $(seq 400); do ls "$T/ctl" 2>/dev/null | grep -q '^1\(-[0-9a-f]\{16\}\)\?\.tmp$' && break; sleep 0.02; done
	ls -la "$T/ctl"
	# B meanwhile: binds, listens and takes 1.sock first
	ns_spawn b
	b=$hp
	for _ in $(seq 400); do grep -q ready "$T/b.out" && grep -q ready "$T/a.out" && break; sleep 0.05; done
	cat "$T/a.out" "$T/a.err" "$T/b.out" "$T/b.err"
	ls -la "$T/ctl"
	grep -q 'ready pid=1$' "$T/a.out"
	grep -q 'ready pid=1$' "$T/b.out"
	! grep -q 'could not start' "$T/a.err" "$T/b.err"
	na=$(stat -L -c %i /proc/"$a"/ns/pid)
	nb=$(stat -L -c %i /proc/"$b"/ns/pid)
	[ "$na" != "$nb" ]
	[ -S "$T/ctl/1.sock" ]
	[ -S "$T/ctl/1.pidns-$na.sock" ]
	# no temporary left
	! ls "$T/ctl" | grep -q '\.tmp$'
	# each reached from its own namespace as `crac checkpoint 1`
	run --separate-stderr in_ns "$a" "$CRAC" checkpoint --engine sim 1
	echo "A: $status $output $stderr"
	[ "$status" -eq 0 ]
	run --separate-stderr in_ns "$b" "$CRAC" checkpoint --engine sim 1
	echo "B: $status $output $stderr"
	[ "$status" -eq 0 ]
	grep -q '^before alpha' "$T/a.out"
	grep -q '^before alpha' "$T/b.out"
	[ "$(grep -c '^before alpha' "$T/a.out")" -eq 1 ]
	[ "$(grep -c '^before alpha' "$T/b.out")" -eq 1 ]
	# each removes only its own on exit
	kill "$a"
	wait_no_file "$T/ctl/1.pidns-$na.sock" 4
	[ -S "$T/ctl/1.sock" ]
	run --separate-stderr in_ns "$b" "$CRAC" checkpoint --engine sim 1
	[ "$status" -eq 0 ]
}

@test "the second process of pid 1 (another pid namespace) started while the first listens at 1.sock gets its own endpoint" {
	ns_spawn a
	a=$hp
	wait_sock "$T/ctl/1.sock" 8
	ns_spawn b
	b=$hp
	wait_line "$T/b.out" ready 20 "$T/b.err"
	cat "$T/b.out" "$T/b.err"
	! grep -q 'could not start' "$T/b.err"
	nb=$(stat -L -c %i /proc/"$b"/ns/pid)
	[ -S "$T/ctl/1.pidns-$nb.sock" ]
	run --separate-stderr in_ns "$b" "$CRAC" checkpoint --engine sim 1
	echo "B: $status $output $stderr"
	[ "$status" -eq 0 ]
	grep -q '^before alpha' "$T/b.out"
	! grep -q '^before alpha' "$T/a.out"
	# A's own at 1.sock still answers A
	run --separate-stderr in_ns "$a" "$CRAC" checkpoint --engine sim 1
	echo "A: $status $output $stderr"
	[ "$status" -eq 0 ]
	grep -q '^before alpha' "$T/a.out"
}

# From the parent pid namespace (the host, seeing a container): the target
# named its socket with the pid it knows itself by (1), the client is given
# its pid as we see it. /proc/PID/status (NSpid) maps one to the other; what
# answers is taken only if it is that very process (SO_PEERCRED, pidfd).

@test "a client in the parent pid namespace reaches the endpoint of a program in a child pid namespace by the pid it sees" {
	ns_spawn a
	a=$hp
	for _ in $(seq 400); do grep -q ready "$T/a.out" && [ -S "$T/ctl/1.sock" ] && break; sleep 0.05; done
	[ -S "$T/ctl/1.sock" ]
	[ "$a" != 1 ]
	[ ! -e "$T/ctl/$a.sock" ]
	run --separate-stderr "$CRAC" checkpoint --engine sim "$a"
	echo "$status $output $stderr"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^before alpha' "$T/a.out")" -eq 1 ]
}

@test "from the parent pid namespace, two programs of pid 1 (one at 1.sock, the other at 1.pidns-INO.sock): each reached by its own pid, never the other" {
	ns_spawn a
	a=$hp
	wait_sock "$T/ctl/1.sock" 8
	ns_spawn b
	b=$hp
	nb=$(stat -L -c %i /proc/"$b"/ns/pid)
	wait_sock "$T/ctl/1.pidns-$nb.sock" 8
	# B: 1.sock answers as A (refused), then B's own
	run --separate-stderr "$CRAC" checkpoint --engine sim "$b"
	echo "B: $status $output $stderr"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^before alpha' "$T/b.out")" -eq 1 ]
	! grep -q '^before alpha' "$T/a.out"
	run --separate-stderr "$CRAC" checkpoint --engine sim "$a"
	echo "A: $status $output $stderr"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^before alpha' "$T/a.out")" -eq 1 ]
	[ "$(grep -c '^before alpha' "$T/b.out")" -eq 1 ]
}

@test "from the parent pid namespace: a program of pid 1 without an endpoint while another pid namespace's pid 1 listens at 1.sock: refused, saying whose socket it is" {
	ns_spawn a
	a=$hp
	wait_sock "$T/ctl/1.sock" 8
	ns_spawn b CRAC_CONTROL=0
	b=$hp
	wait_line "$T/b.out" ready 20
	run --separate-stderr "$CRAC" checkpoint --engine sim "$b"
	echo "B: $status $output $stderr"
	[ "$status" -ne 0 ]
	[[ "$stderr" == *"1.sock was answered by pid $a, not $b (pid 1 in its pid namespace): refused"* ]]
	! grep -q '^before alpha' "$T/a.out"
	! grep -q '^before alpha' "$T/b.out"
}

@test "from the parent pid namespace: a program of pid 1 without an endpoint, nothing at 1.sock: the names looked for are said" {
	ns_spawn b CRAC_CONTROL=0
	b=$hp
	wait_line "$T/b.out" ready 20
	nb=$(stat -L -c %i /proc/"$b"/ns/pid)
	run --separate-stderr "$CRAC" checkpoint --engine sim "$b"
	echo "B: $status $output $stderr"
	[ "$status" -ne 0 ]
	[[ "$stderr" == *"process $b has no control endpoint (looked for 1.sock and 1.pidns-$nb.sock (it is pid 1 in its pid namespace) in "* ]]
}

@test "from the parent pid namespace: a FIFO at 1.sock and a symbolic link to another's live socket at 1.pidns-INO.sock are refused, naming each; nothing reaches the other" {
	ns_spawn a
	a=$hp
	wait_sock "$T/ctl/1.sock" 8
	ns_spawn b CRAC_CONTROL=0
	b=$hp
	wait_line "$T/b.out" ready 20
	nb=$(stat -L -c %i /proc/"$b"/ns/pid)
	# A's socket moved to where B's second name leads, a FIFO at 1.sock
	mv "$T/ctl/1.sock" "$T/ctl/a.sock"
	mkfifo -m 600 "$T/ctl/1.sock"
	ln -s a.sock "$T/ctl/1.pidns-$nb.sock"
	run --separate-stderr timeout 20 "$CRAC" checkpoint --engine sim "$b"
	echo "B: $status $output $stderr"
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ]
	[[ "$stderr" == *"$T/ctl/1.sock is not a socket: refused"* ]]
	# (the first refusal is the one said; the link is refused as well:)
	rm "$T/ctl/1.sock"
	run --separate-stderr timeout 20 "$CRAC" checkpoint --engine sim "$b"
	echo "B: $status $output $stderr"
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ]
	[[ "$stderr" == *"$T/ctl/1.pidns-$nb.sock is a symlink: refused"* ]]
	! grep -q '^before alpha' "$T/a.out"
}

@test "from the parent pid namespace, another uid (nobody) cannot reach root's program in a child pid namespace: refused before anything is sent" {
	command -v setpriv >/dev/null || skip "needs setpriv(1)"
	id nobody >/dev/null 2>&1 || skip "no user nobody"
	ns_spawn a
	a=$hp
	wait_sock "$T/ctl/1.sock" 8
	run --separate-stderr timeout 20 setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$CRAC" checkpoint --engine sim "$a"
	echo "$status $output $stderr"
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ]
	[[ "$stderr" == *"permission denied"* ]]
	! grep -q '^before alpha' "$T/a.out"
	! grep -q 'refus' "$T/a.err"
}

@test "from the parent pid namespace: a program whose mount namespace has its own control directory (a tmpfs over it) is reached in its root (/proc/PID/root)" {
	mkdir -m 0700 "$T/ctl"
	spawn "$T/c.out" "$T/c.err" unshare --pid --fork --mount-proc --kill-child \
		sh -c 'mount -t tmpfs -o mode=0700 crac-ctl "$1" && exec env CRAC_CONTROL=1 "$2"' sh "$T/ctl" "$PROG"
	u=$SPAWNED
	PIDS+=("$u")
	c=
	for _ in $(seq 200); do
		c=$(cat /proc/"$u"/task/*/children 2>/dev/null | tr -d ' ')
		[ -n "$c" ] && [ "$(readlink /proc/"$c"/exe)" = "$PROG" ] && break
		c=
		sleep 0.02
	done
	[ -n "$c" ]
	PIDS+=("$c")
	wait_line "$T/c.out" ready 20 "$T/c.err"
	cat "$T/c.out" "$T/c.err"
	# its socket is in its own tmpfs: not in the directory we see there
	[ -z "$(ls -A "$T/ctl")" ]
	[ -S "/proc/$c/root$T/ctl/1.sock" ]
	run --separate-stderr "$CRAC" checkpoint --engine sim "$c"
	echo "$status $output $stderr"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^before alpha' "$T/c.out")" -eq 1 ]
}

@test "a pid given to another process during the lookup: the new process's socket at PID.sock is refused (its pidfd is not the one taken when the lookup began)" {
	# (SO_PEERPIDFD: Linux 6.5; pidfds told apart by their inode: pidfs, 6.9)
	[ "$(printf '%s\n' 6.9 "$(uname -r | cut -d- -f1)" | sort -V | head -1)" = 6.9 ] ||
		skip "needs Linux 6.9 (pidfs)"
	# in a pid namespace of our own, so that pid 2 can be handed on
	# (ns_last_pid): A is pid 2, then B, once A is gone
	spawn "$T/sh.out" "$T/sh.err" unshare --pid --fork --mount-proc --kill-child sh -c '
		env CRAC_CONTROL=1 "$1" >"$2/a.out" 2>"$2/a.err" &
		wait
		echo 1 >/proc/sys/kernel/ns_last_pid
		env CRAC_CONTROL=1 "$1" >"$2/b.out" 2>"$2/b.err" &
		echo $! >"$2/b.pid"
		wait' sh "$PROG" "$T"
	u=$SPAWNED
	PIDS+=("$u")
	for _ in $(seq 200); do
		s=$(cat /proc/"$u"/task/*/children 2>/dev/null | tr -d ' ')
		[ -n "$s" ] && [ "$(cat /proc/"$s"/comm)" = sh ] && break
		s=
		sleep 0.02
	done
	[ -n "$s" ]
	for _ in $(seq 400); do grep -q 'ready pid=2$' "$T/a.out" && [ -S "$T/ctl/2.sock" ] && break; sleep 0.05; done
	grep -q 'ready pid=2$' "$T/a.out"
	a=$(cat /proc/"$s"/task/*/children | tr -d ' ')
	# the client: its pidfd of pid 2 (A) taken, then held 4 s before it
	# looks into the directory
	spawn "$T/cl.out" "$T/cl.err" nsenter -t "$s" -p -m -- env CRAC_TEST_SLOW_FS=lookup:4000 \
		"$CRAC" checkpoint --engine sim 2
	cl=$SPAWNED
	PIDS+=("$cl")
	sleep 0.7
	kill "$a"
	wait_line "$T/b.out" 'ready pid=2$' 4 "$T/b.err"
	cat "$T/b.out" "$T/b.err"
	[ "$(cat "$T/b.pid")" = 2 ]
	wait "$cl" && st=0 || st=$?
	cat "$T/cl.out" "$T/cl.err"
	[ "$st" -ne 0 ]
	grep -q "2.sock was answered by a process of pid 2 that is not process 2 as the lookup began" "$T/cl.err"
	! grep -q '^before alpha' "$T/b.out"
}
