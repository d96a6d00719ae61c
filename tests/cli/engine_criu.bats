#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The criu engine (src/engines/criu.c, src/cli/cmd_restore_criu.c).
#
# The image engine's key end-to-end scenarios run against both engines that
# write an image, `image` and `criu` (tests/progs/criu_counter.c): same
# state after restore, clock, malloc, MADV_DONTNEED zeros, new arguments
# and environment in the event and environ, generation and instance id,
# reseeded randomness, a restored process checkpointed again, keep-running,
# and `crac checkpoint --engine E PID` through the control endpoint.
#
# The criu runs need a working CRIU (>= 4.1 on kernels with [vvar_vclock])
# and root: set CRAC_CRIU to its path, e.g.
#     CRAC_CRIU=/work/criu-bin/criu ctest -R engine_criu
# Without it they skip, saying why. The refusal of a broken CRIU (a fake
# criu whose `check` fails like Debian 12's 3.17 on this kernel) runs
# everywhere.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	COUNTER="$CRAC_BUILD_DIR/tests/criu_counter"
	CTLPROG="$CRAC_BUILD_DIR/tests/ctlprog"
	T="$(mktemp -d /tmp/crac-bats-criu.XXXXXX)"
	chmod 755 "$T"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_CRIU_OPTS
	# the real CRIU given by the caller, if any (tests of the fake one
	# set CRAC_CRIU themselves)
	REAL_CRIU="${CRAC_CRIU:-}"
	unset CRAC_CRIU
	pid=
}

teardown() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	[ -n "${rpid:-}" ] && kill "$rpid" 2>/dev/null || true
	rm -rf "$T"
}

# require_engine E: the image engine must be built; the criu engine needs
# $CRAC_CRIU pointing at a CRIU whose `criu check` passes, and root.
require_engine() {
	case "$1" in
	image)
		require_image_engine
		;;
	criu)
		[ -n "$REAL_CRIU" ] ||
			skip "CRAC_CRIU is not set: point it at a CRIU >= 4.1 (e.g. built from source) and run as root"
		[ -x "$REAL_CRIU" ] || skip "CRAC_CRIU=$REAL_CRIU is not an executable"
		[ "$(id -u)" -eq 0 ] || skip "CRIU needs root here (uid $(id -u))"
		local out
		if ! out="$("$REAL_CRIU" check 2>&1)"; then
			skip "CRAC_CRIU=$REAL_CRIU fails \`criu check\`: $(echo "$out" | grep -m1 Error || echo "$out" | tail -1)"
		fi
		export CRAC_CRIU="$REAL_CRIU"
		;;
	esac
}

# checkpoint E [CYCLES [keep]]: criu_counter checkpoints itself into $T/img.
checkpoint() {
	run clean "$COUNTER" "$1" "$T/img" "${2:-1}" ${3:-} </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	BEFORE="$(echo "$output" | sed -n 's/^before: checksum=\([0-9a-f]*\) .*/\1/p' | head -1)"
	ID0="$(echo "$output" | sed -n 's/^before: .* id=\([0-9a-f-]*\) .*/\1/p' | head -1)"
	[ -n "$BEFORE" ]
	[ -n "$ID0" ]
}

# restore ARGS...: crac restore $T/img ARGS... with only stdio open.
restore() {
	run clean "$CRAC" restore "$T/img" "$@" </dev/null
	echo "$output"
}

# ---- scenarios, each run with both engines ----------------------------------

state_args_env() {
	require_engine "$1"
	checkpoint "$1"
	restore --env CRAC_T=hello --env OTHER=2 -- one "two words"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^restored: checksum=$BEFORE outcome=2 engine=$1 gen=1 "
	echo "$output" | grep -q "id_changed=yes jump_ok=yes args=2:one,two words env=\[CRAC_T=hello\] env=\[OTHER=2\] CRAC_T=hello\$"
	! echo "$output" | grep -q "id=$ID0" || false
	echo "$output" | grep -q "^clock ok"
	echo "$output" | grep -q "^malloc ok"
	echo "$output" | grep -q "^dontneed ok"
	! echo "$output" | grep -q FAIL || false
}

@test "image: restore keeps the state, passes new args and env, new generation and id" { state_args_env image; }
@test "criu: restore keeps the state, passes new args and env, new generation and id" { state_args_env criu; }

two_instances() {
	require_engine "$1"
	checkpoint "$1"
	restore
	[ "$status" -eq 0 ]
	one="$output"
	restore
	[ "$status" -eq 0 ]
	two="$output"
	# both restored from the same image: same generation, no new args
	echo "$one" | grep -q "^restored: checksum=$BEFORE outcome=2 engine=$1 gen=1 .* args=0: CRAC_T=(unset)\$"
	echo "$two" | grep -q "^restored: checksum=$BEFORE outcome=2 engine=$1 gen=1 "
	# but their own identity and randomness
	id1="$(echo "$one" | sed -n 's/^restored: .* id=\([0-9a-f-]*\) .*/\1/p')"
	id2="$(echo "$two" | sed -n 's/^restored: .* id=\([0-9a-f-]*\) .*/\1/p')"
	r1="$(echo "$one" | sed -n 's/^rand=//p')"
	r2="$(echo "$two" | sed -n 's/^rand=//p')"
	[ -n "$id1" ]
	[ -n "$r1" ]
	[ "$id1" != "$id2" ]
	[ "$r1" != "$r2" ]
}

@test "image: two instances from one image differ in id and randomness" { two_instances image; }
@test "criu: two instances from one image differ in id and randomness" { two_instances criu; }

cycles() {
	require_engine "$1"
	checkpoint "$1" 3
	for gen in 1 2 3; do
		restore -- "cycle$gen"
		[ "$status" -eq 0 ]
		echo "$output" | grep -q "^restored: checksum=$BEFORE outcome=2 engine=$1 gen=$gen .* args=1:cycle$gen "
		echo "$output" | grep -q "^dontneed ok"
		if [ "$gen" -lt 3 ]; then
			# the restored process checkpointed itself again
			echo "$output" | grep -q "^before: checksum=$BEFORE gen=$gen "
		fi
	done
}

@test "image: a restored process checkpoints again, generations 1 2 3" { cycles image; }
@test "criu: a restored process checkpoints again, generations 1 2 3" { cycles criu; }

# A file system without RENAME_EXCHANGE (NFS, FUSE, vfat: EINVAL), made by
# the test hook CRAC_TEST_NO_EXCHANGE=1: each checkpoint after the first
# replaces an existing image and must take the commit's fallback (the old
# image moved aside, the new one renamed in, the old one removed).
no_exchange() {
	export CRAC_TEST_NO_EXCHANGE=1
	cycles "$1"
	unset CRAC_TEST_NO_EXCHANGE
	# the last restore checkpointed nothing: only the image is left
	[ -f "$T/img/${2}" ]
	ls -a "$T"
	[ -z "$(ls -a "$T" | grep '^img\.')" ]
}

@test "image: refreshing an image where the file system cannot exchange (EINVAL), generations 1 2 3" {
	no_exchange image header
}
@test "criu: refreshing an image where the file system cannot exchange (EINVAL), generations 1 2 3" {
	no_exchange criu crac-criu
}

keep_running() {
	require_engine "$1"
	run clean "$COUNTER" "$1" "$T/img" 1 keep </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^continued: checksum="
	BEFORE="$(echo "$output" | sed -n 's/^before: checksum=\([0-9a-f]*\) .*/\1/p')"
	# the image has the state of the checkpoint, not what came after
	restore
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^restored: checksum=$BEFORE outcome=2 engine=$1 gen=1 "
}

@test "image: keep-running, then restore the image" { keep_running image; }
@test "criu: keep-running, then restore the image" { keep_running criu; }

ignchld() {
	require_engine "$1"
	CRAC_T_IGNCHLD=1 checkpoint "$1"
	restore -- z
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^restored: checksum=$BEFORE outcome=2 engine=$1 gen=1 .* args=1:z "
}

@test "image: a program that ignores SIGCHLD" { ignchld image; }
@test "criu: a program that ignores SIGCHLD (the helper waits for criu all the same)" { ignchld criu; }

# A session leader: its pid is also its session id, which nothing of the
# engine may keep in use (CRIU restores the process with that pid).
session_leader() {
	require_engine "$1"
	run clean setsid -w "$COUNTER" "$1" "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	BEFORE="$(echo "$output" | sed -n 's/^before: checksum=\([0-9a-f]*\) .*/\1/p')"
	restore -- s
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^restored: checksum=$BEFORE outcome=2 engine=$1 gen=1 .* args=1:s "
}

@test "image: a session leader (setsid)" { session_leader image; }
@test "criu: a session leader (setsid) is restored with its pid" { session_leader criu; }

# On a terminal (script(1) gives each command its own pty): checkpointed on
# one, restored on another (criu: --shell-job both ways).
terminal() {
	require_engine "$1"
	command -v script >/dev/null || skip "script(1) is not installed"
	run clean script -qec "$COUNTER $1 $T/img" /dev/null </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	BEFORE="$(echo "$output" | sed -n 's/^before: checksum=\([0-9a-f]*\) .*/\1/p' | tr -d '\r')"
	[ -n "$BEFORE" ]
	run clean script -qec "$CRAC restore $T/img -- tty" /dev/null </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^restored: checksum=$BEFORE outcome=2 engine=$1 gen=1 .* args=1:tty "
	echo "$output" | grep -q "^dontneed ok"
}

@test "image: on a terminal, restored on another" { terminal image; }
@test "criu: on a terminal, restored on another (--shell-job)" { terminal criu; }

# crac checkpoint --engine E PID: the control endpoint's connection is
# answered by the original, the restored process runs its after_restore
# callbacks with the new arguments.
control_checkpoint() {
	require_engine "$1"
	(
		for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
		exec "$CTLPROG" --control </dev/null >"$T/out" 2>&1
	) &
	pid=$!
	for _ in $(seq 250); do [ -S "$CRAC_CONTROL_DIR/$pid.sock" ] && break; sleep 0.02; done
	run "$CRAC" checkpoint --engine "$1" --image-dir "$T/img" "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"image written to $T/img"* ]]
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	! kill -0 "$pid" 2>/dev/null || false
	pid=
	grep -q "^before alpha gen=0 engine=$1" "$T/out"
	# restore in the background: ctlprog waits for SIGTERM
	(
		for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
		exec "$CRAC" restore "$T/img" --env K=V -- x y </dev/null >"$T/rout" 2>&1
	) &
	rpid=$!
	for _ in $(seq 250); do grep -q "^after svc/db" "$T/rout" && break; sleep 0.02; done
	cat "$T/rout"
	grep -q "^after alpha gen=1 engine=$1 outcome=2 argc=2 argv=x,y env=K=V" "$T/rout"
	grep -q "^after svc/db gen=1 engine=$1 outcome=2" "$T/rout"
	kill -TERM "$rpid"
	wait "$rpid" || true
	rpid=
}

@test "image: crac checkpoint --engine image PID, then restore with args" { control_checkpoint image; }
@test "criu: crac checkpoint --engine criu PID, then restore with args" { control_checkpoint criu; }

@test "criu: restore while the checkpointed process still runs (keep-running) is refused naming its pid" {
	require_engine criu
	(
		for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
		exec "$CTLPROG" --control </dev/null >"$T/out" 2>&1
	) &
	pid=$!
	for _ in $(seq 250); do [ -S "$CRAC_CONTROL_DIR/$pid.sock" ] && break; sleep 0.02; done
	run "$CRAC" checkpoint --engine criu --keep-running --image-dir "$T/img" "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	kill -0 "$pid"
	restore
	[ "$status" -eq 1 ]
	[[ "$output" == *"pid $pid is in use (by ctlprog; the checkpointed process itself if it kept running)"* ]]
	kill "$pid"
	wait "$pid" || true
	pid=
	# once it is gone the image restores
	(
		for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
		exec "$CRAC" restore "$T/img" </dev/null >"$T/rout" 2>&1
	) &
	rpid=$!
	for _ in $(seq 250); do grep -q "^after svc/db" "$T/rout" && break; sleep 0.02; done
	cat "$T/rout"
	grep -q "^after alpha gen=1 engine=criu outcome=2" "$T/rout"
	kill -TERM "$rpid"
	wait "$rpid" || true
	rpid=
}

@test "criu: crac run --engine criu, an unmodified python3, crac checkpoint PID, crac restore" {
	require_engine criu
	command -v python3 >/dev/null || skip "python3 is not installed"
	(
		for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
		exec "$CRAC" run --engine criu --checkpoint-to "$T/img" -- python3 -c '
import time, json
n = 0
print("ready", flush=True)
while True:
    n += 1
    time.sleep(0.05)
    print("tick", n, flush=True)
' </dev/null >"$T/out" 2>&1
	) &
	pid=$!
	# (the waits are bounded generously and end at the event: a loaded
	# machine makes each step slow, never wrong)
	for _ in $(seq 1500); do [ -S "$CRAC_CONTROL_DIR/$pid.sock" ] && grep -q "^tick" "$T/out" && break; sleep 0.02; done
	# The dump freezes the program between two ticks it printed; ticks
	# printed before the checkpoint command was started come before the
	# dump, ticks printed after it returned come after. The original runs
	# on during and after the dump (criu dump --leave-running, then it
	# exits once the image is in place), so the ticks it printed until it
	# exited say nothing about where the dump was: on a loaded machine it
	# printed up to 11 more after it (restored from tick 37, its last 48),
	# which failed the old bound (the restored first tick within 1 below
	# the original's last).
	before="$(grep '^tick' "$T/out" | tail -1 | cut -d' ' -f2)"
	run "$CRAC" checkpoint "$pid"
	after="$(grep '^tick' "$T/out" | tail -1 | cut -d' ' -f2)"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"CRIU image written to $T/img"* ]]
	for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	! kill -0 "$pid" 2>/dev/null || false
	pid=
	(
		for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
		exec "$CRAC" restore "$T/img" </dev/null >"$T/rout" 2>&1
	) &
	rpid=$!
	for _ in $(seq 1500); do [ "$(grep -sc '^tick' "$T/rout")" -ge 3 ] && break; sleep 0.02; done
	kill -TERM "$rpid"
	wait "$rpid" || st=$?
	rpid=
	cat "$T/rout"
	echo "ticks before the checkpoint: $before, when it returned: $after"
	# It goes on counting from where it was: its first tick is the one
	# after the last the original printed before the dump (a restarted
	# program would print 1), then the next ones, one by one; and the
	# restore command passed SIGTERM on and ended with the program (128 + 15)
	grep '^tick' "$T/rout" | head -3 | cut -d' ' -f2 >"$T/ticks"
	first="$(head -1 "$T/ticks")"
	[ -n "$before" ] && [ -n "$after" ] && [ -n "$first" ]
	[ "$first" -ge $((before + 1)) ]
	[ "$first" -le $((after + 1)) ]
	[ "$first" -gt 1 ]
	[ "$(cat "$T/ticks")" = "$(seq "$first" $((first + 2)))" ]
	[ "${st:-0}" -eq 143 ]
}

# ---- without a working CRIU (run everywhere) ---------------------------------

# fake_criu: a criu that fails `check` the way Debian 12's 3.17 does here.
fake_criu() {
	cat >"$T/criu" <<'EOF'
#!/bin/sh
case "$1" in
check)
	echo "Error (criu/vdso.c:302): vdso: Unexpected rt vDSO area bounds" >&2
	echo "Error (criu/cr-check.c:1612): Can't init kernel features" >&2
	exit 1 ;;
--version)
	echo "Version: 3.17.1"; exit 0 ;;
*)
	echo "fake criu: $*" >&2; exit 1 ;;
esac
EOF
	chmod 755 "$T/criu"
	export CRAC_CRIU="$T/criu"
}

@test "crac --version lists the criu engine" {
	run "$CRAC" --version
	[ "$status" -eq 0 ]
	[[ "$output" == *"engines:"*" criu"* ]]
}

@test "a CRIU that fails criu check is refused with its own words and the 4.1 hint" {
	fake_criu
	run clean "$COUNTER" criu "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"engine criu"*"$T/criu check"*"failed"* ]]
	[[ "$output" == *"vdso: Unexpected rt vDSO area bounds"* ]]
	[[ "$output" == *"CRIU >= 4.1 is needed on kernels with [vvar_vclock]"* ]]
	# nothing written, the process went on (and said so)
	[ ! -e "$T/img" ]
	[ -z "$(ls "$T" | grep tmp)" ]
}

@test "the refusal also in a program that ignores SIGCHLD (criu check's status is not lost to auto-reaping)" {
	fake_criu
	CRAC_T_IGNCHLD=1 run clean "$COUNTER" criu "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"vdso: Unexpected rt vDSO area bounds"* ]]
	! [[ "$output" == *"No child processes"* ]] || false
}

@test "a CRIU refusing without privilege: all its lines (not just the last) in the refusal" {
	# what criu 4.2 prints to a user without CAP_CHECKPOINT_RESTORE
	cat >"$T/criu" <<'EOF'
#!/bin/sh
echo "CRIU needs to have the CAP_SYS_ADMIN or the CAP_CHECKPOINT_RESTORE capability: "
echo "setcap cap_checkpoint_restore+eip $0"
exit 1
EOF
	chmod 755 "$T/criu"
	export CRAC_CRIU="$T/criu"
	run clean "$COUNTER" criu "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"check\` failed: CRIU needs to have the CAP_SYS_ADMIN or the CAP_CHECKPOINT_RESTORE capability:; setcap cap_checkpoint_restore+eip $T/criu (CRIU needs root"* ]]
}

@test "as nobody with the real CRIU: refused with CRIU's words" {
	require_engine criu
	command -v setpriv >/dev/null || skip "setpriv is not installed"
	chmod 777 "$T"
	run clean setpriv --reuid=nobody --regid=nogroup --clear-groups "$COUNTER" criu "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"engine criu"*"check\` failed: "*"CAP_CHECKPOINT_RESTORE"* ]]
	[ ! -e "$T/img" ]
}

@test "crac restore of a CRIU image with a CRIU that fails criu check: the same refusal" {
	fake_criu
	mkdir -m 700 "$T/img"
	printf 'crac-criu-image 1\npid=99999\ntid=99999\n' >"$T/img/crac-criu"
	chmod 600 "$T/img/crac-criu"
	restore
	[ "$status" -eq 2 ]
	[[ "$output" == *"cannot restore the CRIU image"*"vdso: Unexpected rt vDSO area bounds"* ]]
	[[ "$output" == *"CRIU >= 4.1 is needed on kernels with [vvar_vclock]"* ]]
}

@test "criu engine without criu: refused, naming CRAC_CRIU" {
	export CRAC_CRIU="$T/no-such-criu"
	run clean "$COUNTER" criu "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"CRAC_CRIU=$T/no-such-criu: No such file or directory"* ]]
}

@test "criu engine: a directory that is not a crac image is not replaced" {
	# needs a criu that passes check only to get that far: a fake one that does
	cat >"$T/criu" <<'EOF'
#!/bin/sh
[ "$1" = check ] && { echo "Looks good."; exit 0; }
exit 1
EOF
	chmod 755 "$T/criu"
	export CRAC_CRIU="$T/criu"
	mkdir "$T/img"
	echo precious >"$T/img/data"
	run clean "$COUNTER" criu "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"is not a crac image"* ]]
	[ "$(cat "$T/img/data")" = precious ]
}

@test "criu engine: temporaries left by a killed criu checkpoint are removed, nothing else; a previous image set aside goes back where no image took its place" {
	cat >"$T/criu" <<'EOF'
#!/bin/sh
[ "$1" = check ] && exit 0
exit 1
EOF
	chmod 755 "$T/criu"
	export CRAC_CRIU="$T/criu"
	# a writer that is gone (pid 999999 does not run; start time 1)
	mkdir "$T/img.tmp-999999-1-abcdef"
	touch "$T/img.tmp-999999-1-abcdef/dump.log" "$T/img.tmp-999999-1-abcdef/core-5.img"
	# the same, holding something CRIU does not write: kept
	mkdir "$T/img.tmp-999998-1-abcdef"
	touch "$T/img.tmp-999998-1-abcdef/dump.log" "$T/img.tmp-999998-1-abcdef/notes.txt"
	# a previous image moved aside by a commit without RENAME_EXCHANGE
	# whose writer is gone, with no image at DIR: it is the image, and
	# goes back; one with a living writer (this shell, its start time):
	# kept
	mkdir "$T/img.old-999999-1" "$T/img.old-$$-$(awk '{print $22}' /proc/$$/stat)"
	touch "$T/img.old-999999-1/crac-criu" "$T/img.old-999999-1/core-5.img"
	touch "$T/img.old-$$-$(awk '{print $22}' /proc/$$/stat)/crac-criu"
	run clean "$COUNTER" criu "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 1 ]
	[ ! -e "$T/img.tmp-999999-1-abcdef" ]
	[ -e "$T/img.tmp-999998-1-abcdef/notes.txt" ]
	[ ! -e "$T/img.old-999999-1" ]
	[ -f "$T/img/core-5.img" ] && [ -f "$T/img/crac-criu" ]
	echo "$output" | grep -q "the previous image $T/img.old-999999-1, moved aside by a checkpoint that was killed before its new image took its place, is back at $T/img"
	[ -e "$T/img.old-$$-$(awk '{print $22}' /proc/$$/stat)/crac-criu" ]
	# the same with an image at DIR: the new one took its place, and the
	# one set aside goes
	mkdir "$T/img.old-999997-1"
	touch "$T/img.old-999997-1/crac-criu" "$T/img.old-999997-1/core-7.img"
	run clean "$COUNTER" criu "$T/img" </dev/null
	[ "$status" -eq 1 ]
	[ ! -e "$T/img.old-999997-1" ]
	[ -f "$T/img/core-5.img" ] && [ ! -e "$T/img/core-7.img" ]
}

@test "criu engine: CRAC_CRIU_OPTS reach criu dump; a bad one is reported with criu's first line" {
	cat >"$T/criu" <<'EOF'
#!/bin/sh
[ "$1" = check ] && exit 0
for a; do
	case "$a" in --bogus) echo "$0: unrecognized option '--bogus'"; echo "Usage:"; echo "  criu dump"; exit 1 ;; esac
done
exit 1
EOF
	chmod 755 "$T/criu"
	export CRAC_CRIU="$T/criu"
	CRAC_CRIU_OPTS="-v4 --bogus" run clean "$COUNTER" criu "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"criu dump failed (exit status 1): $T/criu: unrecognized option '--bogus'; no image was written"* ]]
}

@test "criu engine: a failing criu dump is reported with its words, the process goes on" {
	cat >"$T/criu" <<'EOF'
#!/bin/sh
[ "$1" = check ] && exit 0
# dump: write an error into the log as CRIU does, fail
dir=; log=
while [ $# -gt 0 ]; do
	case "$1" in -D) dir=$2; shift ;; -o) log=$2; shift ;; esac
	shift
done
echo "(00.001000) Error (criu/cr-dump.c:2000): Dumping FAILED (test)." >"$dir/$log"
exit 1
EOF
	chmod 755 "$T/criu"
	export CRAC_CRIU="$T/criu"
	run clean "$COUNTER" criu "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"criu dump failed (exit status 1): Error (criu/cr-dump.c:2000): Dumping FAILED (test).; no image was written to $T/img, the process goes on"* ]]
	[ ! -e "$T/img" ]
	[ -z "$(ls "$T" | grep tmp)" ]
}
