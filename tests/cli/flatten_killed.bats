#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# crac flatten's worker (src/cli/watch.c) killed (SIGKILL) at the moments
# flatten_worker.bats does not reach: its image whole and verified but not
# yet in place, and just after it put it in place; then at random moments
# of whole runs, its own or of crac flatten itself. Whatever the moment,
# OUT is either absent (status 1) or the flattened image (status 0: what
# the status says is what OUT is), the chain is untouched, and no
# temporary is left once crac flatten has ended (those of a crac flatten
# killed itself: once the next flatten to OUT has run).

bats_require_minimum_version 1.5.0

load common

setup() { chain_setup flatkill CRAC_TEST_FLATTEN_HOLD; }

teardown() {
	[ -z "${FPID:-}" ] || kill -9 "$FPID" 2>/dev/null || true
	[ -z "${WPID:-}" ] || kill -9 "$WPID" 2>/dev/null || true
	common_teardown
}

# temporaries: the names next to OUT that a flatten or a checkpoint writes
# before its rename (none once it has ended)
temporaries() {
	ls "$T" | grep -E '\.(tmp|old)-' || true
}

# held SLOW: crac flatten $T/i2 $T/flat in the background, CRAC_TEST_SLOW_FS
# =SLOW, held once its temporary is whole and verified
# (CRAC_TEST_FLATTEN_HOLD); waits until it is held (30 s at most). Sets
# FPID (crac flatten) and WPID (its worker).
held() {
	local i
	spawn "$T/flat.out" "$T/flat.err" env CRAC_TEST_SLOW_FS="$1" CRAC_TEST_FLATTEN_HOLD="$T/go" \
		"$CRAC" flatten "$T/i2" "$T/flat" --timeout 60s
	FPID=$SPAWNED
	for i in $(seq 600); do
		[ -e "$T/go.held" ] && break
		sleep 0.05
	done
	WPID=$(pgrep -P "$FPID" || true)
	echo "flatten $FPID, worker $WPID: $(ls "$T")"
	[ -e "$T/go.held" ]
	[ -n "$WPID" ]
}

# kill_worker_after MS (under 100): the worker of crac flatten (FPID), if
# it runs MS ms from now, killed (SIGKILL); WPID it (or empty: none yet;
# spawn's own process before its exec is not one).
kill_worker_after() {
	sleep "0.0$(printf %02d "$1")"
	WPID=$(pgrep -x -P "$FPID" crac || true)
	[ -z "$WPID" ] || kill -KILL "$WPID" 2>/dev/null || true
}

# status_of_out: crac flatten (FPID) ended within 10 s; its status agrees
# with OUT (0: the flattened image, which inspect reads; 1: nothing at
# OUT); no worker left, no temporary, the chain untouched. Sets ST.
status_of_out() {
	flatten_ended
	ST=$FST
	echo "status $ST; out: $(ls "$T"); stderr: $(cat "$T/flat.err")"
	! kill -0 "$WPID" 2>/dev/null
	if [ "$ST" -eq 0 ]; then
		"$CRAC" inspect "$T/flat" >/dev/null
	else
		[ "$ST" -eq 1 ]
		[ ! -e "$T/flat" ]
	fi
	[ -z "$(temporaries)" ]
	[ "$(chain_state)" = "$BEFORE" ]
}

@test "flatten: its worker killed once its image is whole, while it puts it in place: the temporary removed" {
	# the commit's check of OUT held 3 s (its first check too, earlier);
	# the kill lands in it, or (a slow machine) before: the same outcome
	held check:3000
	touch "$T/go"
	sleep 1
	kill -KILL "$WPID"
	status_of_out
	[ "$ST" -eq 1 ]
	grep -q "its worker (pid $WPID) was killed by signal 9" "$T/flat.err"
}

@test "flatten: its worker killed just after it put OUT in place: status 0, said, OUT the flattened image" {
	# the fsync of OUT's parent after the rename held 3 s (the fsyncs of
	# the temporary too, before the hold); the kill lands in it, or (a slow
	# machine) before the rename: then status 1 and nothing at OUT
	held fsync:3000
	touch "$T/go"
	sleep 1
	kill -KILL "$WPID"
	status_of_out
	grep -q "its worker (pid $WPID) was killed by signal 9" "$T/flat.err"
	if [ "$ST" -eq 0 ]; then
		grep -q "after it had put $T/flat in place" "$T/flat.err"
	fi
}

@test "flatten: its worker killed at random moments (60 runs): OUT as the status says, no temporary left" {
	local r ms w
	for r in $(seq 60); do
		spawn "$T/flat.out" "$T/flat.err" "$CRAC" flatten "$T/i2" "$T/flat" --timeout 60s
		FPID=$SPAWNED
		ms=$((RANDOM % 60))
		kill_worker_after "$ms"
		echo "run $r: killed after $ms ms"
		status_of_out
		rm -rf "$T/flat"
	done
}

@test "flatten in place (OUT = DIR), its worker killed at random moments (40 runs): DIR a whole image, no temporary left" {
	local r ms
	for r in $(seq 40); do
		cp -a "$T/i2" "$T/top"
		spawn "$T/flat.out" "$T/flat.err" "$CRAC" flatten "$T/top" "$T/top" --timeout 60s
		FPID=$SPAWNED
		ms=$((RANDOM % 60))
		kill_worker_after "$ms"
		wait "$FPID" && st=0 || st=$?
		echo "run $r: killed after $ms ms: status $st; $(ls "$T"); $(cat "$T/flat.err")"
		"$CRAC" inspect "$T/top" >/dev/null
		[ -z "$(temporaries)" ]
		[ "$(chain_state)" = "$BEFORE" ]
		rm -rf "$T/top"
	done
}

@test "crac flatten itself killed at random moments (40 runs): its worker dies too; the next flatten leaves no temporary" {
	local r ms
	for r in $(seq 40); do
		spawn "$T/flat.out" "$T/flat.err" "$CRAC" flatten "$T/i2" "$T/flat" --timeout 60s
		FPID=$SPAWNED
		ms=$((RANDOM % 60))
		sleep "0.0$(printf %02d "$ms")"
		WPID=$(pgrep -x -P "$FPID" crac || true)
		kill -KILL "$FPID" 2>/dev/null || true
		wait "$FPID" || true
		for _ in $(seq 100); do
			[ -z "$WPID" ] || ! kill -0 "$WPID" 2>/dev/null && break
			sleep 0.05
		done
		[ -z "$WPID" ] || ! kill -0 "$WPID" 2>/dev/null
		[ ! -e "$T/flat" ] || "$CRAC" inspect "$T/flat" >/dev/null
		[ "$(chain_state)" = "$BEFORE" ]
	done
	run "$CRAC" flatten "$T/i2" "$T/flat" --timeout 10s
	echo "$status: $output"
	[ "$status" -eq 0 ]
	[ -z "$(temporaries)" ]
	"$CRAC" inspect "$T/flat" >/dev/null
}

@test "flatten over an OUT on a file system without RENAME_EXCHANGE, its worker killed at random moments (80 runs): OUT whole, nothing aside left" {
	# (CRAC_TEST_NO_EXCHANGE: the previous image moved aside first, as
	# OUT.old-PID-START, locked by the worker and its helpers until put back
	# or removed)
	local r ms
	run "$CRAC" flatten "$T/i2" "$T/flat"
	[ "$status" -eq 0 ]
	for r in $(seq 80); do
		spawn "$T/flat.out" "$T/flat.err" env CRAC_TEST_NO_EXCHANGE=1 "$CRAC" flatten "$T/i2" "$T/flat" --timeout 60s
		FPID=$SPAWNED
		ms=$((15 + RANDOM % 45))
		kill_worker_after "$ms"
		wait "$FPID" && st=0 || st=$?
		echo "run $r: killed after $ms ms: status $st; $(ls "$T" | tr '\n' ' '); $(cat "$T/flat.err")"
		"$CRAC" inspect "$T/flat" >/dev/null
		[ -z "$(temporaries)" ]
		[ "$(chain_state)" = "$BEFORE" ]
	done
}

# aside_then_kill STATE: crac flatten $T/i2 $T/flat over the flattened image
# at $T/flat (inode PREV), on a file system without RENAME_EXCHANGE, each
# helper of the commit's renames outliving its rename by 2 s, as on a busy
# machine where the kernel ends a killed worker's helpers late
# (CRAC_TEST_SLOW_FS=renamed): its worker killed once the previous image
# is set aside as OUT.old-PID-START (its lock held by the worker and, in
# the table of descriptors it shares, the helper), and (STATE `aside`)
# nothing is at OUT yet, or (STATE `in`) the new image is at OUT; waits
# 10 s at most for that. Sets FPID, WPID, ST (flatten_ended). (STATE LINGER
# TIMEOUT: the helpers outlive their renames by LINGER ms, --timeout TIMEOUT.)
aside_then_kill() {
	local i
	run "$CRAC" flatten "$T/i2" "$T/flat"
	[ "$status" -eq 0 ]
	PREV=$(stat -c %i "$T/flat")
	spawn "$T/flat.out" "$T/flat.err" env CRAC_TEST_NO_EXCHANGE=1 CRAC_TEST_SLOW_FS=renamed:"${2:-2000}" \
		"$CRAC" flatten "$T/i2" "$T/flat" --timeout "${3:-60s}"
	FPID=$SPAWNED
	for i in $(seq 200); do
		if ls "$T" | grep -q '^flat\.old-'; then
			[ "$1" = aside ] && [ ! -e "$T/flat" ] && break
			[ "$1" = in ] && [ -e "$T/flat" ] && break
		fi
		sleep 0.05
	done
	WPID=$(pgrep -x -P "$FPID" crac || true)
	echo "state $1 after $i polls: worker $WPID; $(ls "$T" | tr '\n' ' ')"
	[ -n "$WPID" ]
	kill -KILL "$WPID"
	flatten_ended
	ST=$FST
	echo "status $ST; $(ls "$T" | tr '\n' ' '); stderr: $(cat "$T/flat.err")"
}

@test "flatten without RENAME_EXCHANGE, its worker killed with OUT set aside while a helper of its outlives it: the previous image put back" {
	aside_then_kill aside
	[ "$ST" -eq 1 ]
	grep -q "its worker (pid $WPID) was killed by signal 9" "$T/flat.err"
	! grep -q "not put back" "$T/flat.err"
	# the previous image at OUT again, whole; nothing aside, no temporary
	[ "$(stat -c %i "$T/flat")" = "$PREV" ]
	"$CRAC" inspect "$T/flat" >/dev/null
	[ -z "$(temporaries)" ]
	[ "$(chain_state)" = "$BEFORE" ]
}

@test "flatten without RENAME_EXCHANGE, its worker killed with the new image in place while a helper of its outlives it: status 0, the previous image removed" {
	aside_then_kill in
	[ "$ST" -eq 0 ]
	grep -q "after it had put $T/flat in place" "$T/flat.err"
	[ "$(stat -c %i "$T/flat")" != "$PREV" ]
	"$CRAC" inspect "$T/flat" >/dev/null
	[ -z "$(temporaries)" ]
	[ "$(chain_state)" = "$BEFORE" ]
}

@test "flatten without RENAME_EXCHANGE, its worker killed while a helper of its does not end within --timeout: said, what it left untouched, cleaned by the next flatten" {
	# the helper outlives its rename by 5 s, the watcher waits 2 s for it
	aside_then_kill aside 5000 2s
	[ "$ST" -eq 1 ]
	grep -q "warning: a helper of its worker (pid [0-9]*) did not end within [0-9]* ms" "$T/flat.err"
	# untouched: the previous image aside, nothing at OUT
	ls "$T" | grep -q '^flat\.old-'
	[ ! -e "$T/flat" ]
	# once the helper has ended, the next flatten puts it back, then
	# replaces it
	helper=$(grep -o "a helper of its worker (pid [0-9]*)" "$T/flat.err" | grep -o "[0-9]*")
	for _ in $(seq 200); do
		kill -0 "$helper" 2>/dev/null || break
		sleep 0.05
	done
	! kill -0 "$helper" 2>/dev/null
	run "$CRAC" flatten "$T/i2" "$T/flat"
	echo "$status: $output"
	[ "$status" -eq 0 ]
	"$CRAC" inspect "$T/flat" >/dev/null
	[ -z "$(temporaries)" ]
	[ "$(chain_state)" = "$BEFORE" ]
}
