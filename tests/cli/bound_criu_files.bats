#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The criu engine's calls on the files of its temporary image that were
# made directly (src/engines/criu.c: make_tmp's chmod, the lock taken back
# without pidfd_getfd, the reads of dump.log, of criu.out and of the
# image's first bytes by verify_dump, the close that releases the lock),
# each of which never returns on a
# file system that does not answer: now made by bounded helpers, given up
# on at the checkpoint's deadline (and the grace: 1 s here) with the path
# and the step named, instead of keeping the checkpoint waiting for ever.
# CRAC_TEST_SLOW_FS=STEP:MS holds the helper of that step 600 s (as a call
# that does not return would: the test double of image/dir.c's bounded
# calls); before, these calls were made by the checkpointing thread
# itself, with no helper to hold and nothing to give up on (the tests
# failed: no such message). A fake criu is enough: its check passes, its
# dump fails or succeeds without writing anything.

bats_require_minimum_version 1.5.0

load common

setup() {
	COUNTER="$CRAC_BUILD_DIR/tests/criu_counter"
	T="$(mktemp -d /tmp/crac-bats-boundcriuf.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_CRIU_OPTS CRAC_TEST_SLOW_FS
	unset CRAC_PRETEND_MISSING
	export CRAC_TEST_SYNC_GRACE_MS=1000
	fake_criu 1
}

teardown() {
	rm -rf "$T"
}

# fake_criu STATUS: a criu whose check passes and whose dump writes one
# error line into its log (-o, in -D) and exits STATUS; with 2: no log,
# exits 1.
fake_criu() {
	cat >"$T/criu" <<EOS
#!/bin/sh
[ "\$1" = check ] && exit 0
dir=; log=
while [ \$# -gt 0 ]; do
	case "\$1" in -D) dir=\$2; shift ;; -o) log=\$2; shift ;; esac
	shift
done
[ "$1" = 2 ] && exit 1
echo "(00.001000) Error (criu/cr-dump.c:2000): Dumping FAILED (test)." >"\$dir/\$log"
exit $1
EOS
	chmod 755 "$T/criu"
	export CRAC_CRIU="$T/criu"
}

# checkpoint_held STEP [env...]: criu_counter's checkpoint into $T/img
# (deadline 10 s, the default) with STEP's helper held 600 s, 40 s at
# most: $status, $output (printed), $ms.
checkpoint_held() {
	local step=$1 t0
	shift
	t0=$(date +%s%N)
	run clean timeout -k 5 40 env CRAC_TEST_SLOW_FS="$step:600000" "$@" "$COUNTER" criu "$T/img" </dev/null
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$status ($ms ms): $output"
}

TMP_RE='img\.tmp-[0-9]+-[0-9]+-[A-Za-z0-9]{6}'
GIVEN_UP='did not return after [0-9]+ ms \(the checkpoint'"'"'s deadline, and 1 s at least\): its file system does not answer; given up'

@test "criu engine: the chmod of its temporary that does not return is given up on, naming it; no image, nothing left" {
	checkpoint_held criu-chmod
	[ "$status" -eq 1 ]
	[ "$ms" -lt 30000 ]
	echo "$output" | grep -Eq "the chmod of $T/$TMP_RE $GIVEN_UP; no image was written to $T/img, the process goes on"
	[ ! -e "$T/img" ]
	[ -z "$(ls "$T" | grep '^img\.')" ]
}

@test "criu engine: the read of criu's log that does not return is given up on, naming it in the failure" {
	checkpoint_held criu-log
	[ "$status" -eq 1 ]
	[ "$ms" -lt 30000 ]
	echo "$output" | grep -Eq "criu dump failed \(exit status 1\): its log could not be read: the read of $T/$TMP_RE/dump\.log $GIVEN_UP; no image was written to $T/img, the process goes on"
	[ -z "$(ls "$T" | grep '^img\.')" ]
}

@test "criu engine: the read of criu's output that does not return is given up on, naming it in the failure" {
	fake_criu 2
	checkpoint_held criu-out
	[ "$status" -eq 1 ]
	[ "$ms" -lt 30000 ]
	echo "$output" | grep -Eq "criu dump failed \(exit status 1\): its output could not be read: the read of $T/$TMP_RE/criu\.out $GIVEN_UP; no image was written to $T/img, the process goes on"
}

@test "criu engine: the read of the image criu wrote (verify_dump) that does not return is given up on, naming the file" {
	fake_criu 0
	checkpoint_held criu-verify
	[ "$status" -eq 1 ]
	[ "$ms" -lt 30000 ]
	echo "$output" | grep -Eq "the read of $T/$TMP_RE/inventory\.img $GIVEN_UP; no image was written to $T/img, the process goes on"
	[ ! -e "$T/img" ]
	[ -z "$(ls "$T" | grep '^img\.')" ]
}

@test "criu engine without pidfd_getfd: the lock taken anew that does not return is given up on, said as a warning naming the temporary; the checkpoint goes on" {
	checkpoint_held criu-relock CRAC_PRETEND_MISSING=pidfd_getfd
	[ "$status" -eq 1 ]
	[ "$ms" -lt 30000 ]
	echo "$output" | grep -Eq "^crac: warning: criu: the lock of $T/$TMP_RE could not be taken back from the helper [0-9]+ \(pidfd_getfd: Function not implemented\): the lock of $T/$TMP_RE $GIVEN_UP; it goes on unlocked$"
	# (what the fake criu said: the checkpoint went on after it)
	echo "$output" | grep -q "criu dump failed (exit status 1): Error (criu/cr-dump.c:2000): Dumping FAILED (test).; no image was written to $T/img"
	[ -z "$(ls "$T" | grep '^img\.')" ]
}

@test "criu engine: with the reads answered, a failing dump is reported with the words of its log, and of its output without a log" {
	run clean "$COUNTER" criu "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "criu dump failed (exit status 1): Error (criu/cr-dump.c:2000): Dumping FAILED (test).; no image was written to $T/img"
	fake_criu 0
	run clean "$COUNTER" criu "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "criu dump exited 0 but wrote no image (inventory.img: No such file or directory)"
}

@test "criu engine: the release of its temporary's lock (the close) that does not return is given up on, said as a warning naming the temporary" {
	checkpoint_held criu-unlock
	[ "$status" -eq 1 ]
	[ "$ms" -lt 30000 ]
	echo "$output" | grep -Eq "^crac: warning: criu: the release of the lock of $T/$TMP_RE \(its close\) $GIVEN_UP$"
	echo "$output" | grep -q "criu dump failed (exit status 1): Error (criu/cr-dump.c:2000): Dumping FAILED (test).; no image was written to $T/img"
}
