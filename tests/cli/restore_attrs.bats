#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Attributes the kernel keeps per thread (src/engines/image_attrs.c). The
# restored process is `crac restore` itself, which exec'ed the loader:
# before, it ran on with the restoring command's attributes, silently. A
# program that had dropped capabilities got them back, one that had set
# no_new_privs or a parent-death signal lost them, and a program that had
# installed a seccomp filter ran without it (a sandbox gone). Now each is
# given back (capabilities only ever lowered), and an image whose process
# ran under more seccomp filters than the restoring process has is refused
# before anything changes, naming the count.
# (Not objects_*: it runs under `crac run`, which the ASan stage cannot.)

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/proc_attrs"
	T="$(mktemp -d /tmp/crac-bats-attrs.XXXXXX)"
	chmod 755 "$T"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LOG
	require_image_engine
}

teardown() {
	rm -rf "$T"
}

# checkpoint WHAT...: proc_attrs under crac run, checkpointed by its
# control thread (not the thread that changed them) into $T/img
checkpoint() {
	run clean timeout 60 "$CRAC" run --checkpoint-to "$T/img" --checkpoint-on SIGUSR1 -- "$PROG" "$@" </dev/null
	echo "$output"
	echo "status $status"
	[ "$status" -eq 0 ]   # the original exits once the image is written
	[ -f "$T/img/header" ]
	echo "$output" | grep '^before ' | sed 's/^before //' >"$T/before"
}

@test "pdeathsig, subreaper, personality, no_new_privs, timer slack: the same after a restore, twice" {
	checkpoint pdeathsig subreaper personality nnp timerslack
	grep -qx "pdeathsig 12" "$T/before"
	grep -qx "nnp 1" "$T/before"
	for i in 1 2; do
		run clean timeout 30 "$CRAC" restore "$T/img"
		echo "$output"
		[ "$status" -eq 0 ]
		echo "$output" | grep '^after ' | sed 's/^after //' >"$T/after"
		for key in pdeathsig subreaper personality nnp timerslack capeff capprm capbnd seccomp; do
			diff <(grep "^$key " "$T/before") <(grep "^$key " "$T/after")
		done
	done
}

@test "a thread the restore recreates gets its own: pdeathsig, timer slack, no_new_privs (not the main thread's)" {
	checkpoint thread
	grep -qx "nnp 0" "$T/before"
	run clean timeout 30 "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "after thread-pdeathsig 10"
	echo "$output" | grep -qx "after thread-timerslack 777777"
	echo "$output" | grep -qx "after thread-nnp 1"
	# the main thread's stay as they were
	echo "$output" | grep -qx "after pdeathsig 0"
	echo "$output" | grep -qx "after nnp 0"
	echo "$output" | grep -qx "after timerslack $(sed -n 's/^timerslack //p' "$T/before")"
}

@test "capabilities the program dropped stay dropped after a restore by root" {
	[ "$(id -u)" -eq 0 ] || skip "dropping capabilities needs root (uid $(id -u))"
	grep -q '^CapEff:.*[1-9a-f]' /proc/self/status || skip "no capabilities here"
	checkpoint caps
	run clean timeout 30 "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep '^after ' | sed 's/^after //' >"$T/after"
	for key in capeff capprm capbnd; do
		diff <(grep "^$key " "$T/before") <(grep "^$key " "$T/after")
	done
	# CAP_NET_RAW (13) and CAP_SYS_TIME (25) are gone
	eff=$(sed -n 's/^capeff //p' "$T/after")
	[ $(( 0x$eff & (1 << 13 | 1 << 25) )) -eq 0 ]
}

@test "a seccomp filter of the program: refused at restore without it, restored under it" {
	checkpoint seccomp
	grep -qx "sysinfo 1" "$T/before"   # EPERM: the filter
	run clean timeout 30 "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	echo "$output" | grep -q "^crac: restore $T/img: the process ran under 1 seccomp filter, this restore under 0: a filter cannot be made again"
	! echo "$output" | grep -q '^after' || false
	# crac inspect says the same
	run clean "$CRAC" inspect "$T/img"
	echo "$output" | grep -q "ran under 1 seccomp filter"
	# under the same filter (a restore in the same sandbox): restored
	run clean timeout 30 "$PROG" --filtered "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "after sysinfo 1"
	echo "$output" | grep -qx "after seccomp 1"
}

@test "a seccomp filter that fails prctl: the checkpoint still counts it, the restore without it is refused" {
	# PR_GET_SECCOMP fails under it (EPERM): the count must come from
	# /proc, else the image said 0 filters and the restore ran without it
	checkpoint seccomp-prctl
	grep -qx "seccomp 1" "$T/before"
	run clean timeout 30 "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	echo "$output" | grep -q "^crac: restore $T/img: the process ran under 1 seccomp filter, this restore under 0: a filter cannot be made again"
	! echo "$output" | grep -q '^after' || false
}

@test "unprivileged: no_new_privs, pdeathsig and a seccomp filter (with no_new_privs) as nobody" {
	need_nobody "$PROG"
	chown 65534:65534 "$T"
	CRAC_CONTROL_DIR="$T/ctl" run clean timeout 60 $NOBODY "$CRAC" run --checkpoint-to "$T/img" \
		--checkpoint-on SIGUSR1 -- "$PROG" pdeathsig nnp seccomp </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "before nnp 1"
	run clean timeout 30 $NOBODY "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "the process ran under 1 seccomp filter, this restore under 0"
	run clean timeout 30 $NOBODY "$PROG" --filtered "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "after pdeathsig 12"
	echo "$output" | grep -qx "after nnp 1"
	echo "$output" | grep -qx "after sysinfo 1"
}

@test "capabilities a thread had that the restoring user lacks are reported, naming the thread" {
	# proc_attrs' main thread holds them; crac run's control thread
	# checkpoints it: only the checkpointing thread's were reported
	[ "$(id -u)" -eq 0 ] || skip "needs root (uid $(id -u))"
	command -v setpriv >/dev/null || skip "no setpriv"
	grep -q '^CapEff:.*[1-9a-f]' /proc/self/status || skip "no capabilities here"
	NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
	$NOBODY test -x "$PROG" || skip "build tree not accessible to nobody"
	checkpoint caps
	chmod -R a+rX "$T/img"
	run clean timeout 30 $NOBODY "$CRAC" restore --trust-owner "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "after capprm 0000000000000000"
	local tid
	tid=$(sed -n 's/^tid //p' "$T/before")
	echo "$output" | grep -q "^crac: after restore: image: .*thread $tid (proc_attrs): permitted capabilities 0x[0-9a-f]* not restored: the restoring process lacks them"
}
