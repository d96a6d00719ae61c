#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Probe (s23): the checkpointing process killed with SIGKILL at random
# moments of a chain of incremental checkpoints (tests/progs/image_incr.c,
# 64 MiB): every image left under its final name is whole and restores to
# its stage (the restored process keeps the environment of the first, so
# CRAC_IMAGE_STATS is set there), the parent of an image not written stays restorable, nothing
# else is left but the dead writer's temporaries, and the next checkpoint
# into that name (from a restore of the parent, incremental on it) removes
# them and writes a whole image.

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup probekill
	INCR="$CRAC_BUILD_DIR/tests/image_incr"
}

teardown() {
	[ -z "${pid:-}" ] || kill -9 "$pid" 2>/dev/null || true
	rm -rf "$T"
}

# after_kill: the state of $T after image_incr (pid $pid) was killed
after_kill() {
	local k name stage
	ls -la "$T"
	for name in $(ls -A "$T"); do
		case $name in
		i0 | i1 | i2) ;;
		i[012].tmp-"$pid"-*) ;;   # the dead writer's temporary
		*) echo "unexpected entry $name"; false ;;
		esac
	done
	# an image under its final name is whole: it restores to its stage
	for k in 0 1 2; do
		[ -e "$T/i$k" ] || continue
		restore_ok "$k" "$T/i$k" --populate
		[ "$k" -eq 0 ] || "$CRAC" inspect "$T/i$k" | grep -q "^parent:    \.\./i$((k - 1)) "
	done
	# the next image into the first name not written: incremental on its
	# parent, and the dead writer's temporaries gone
	for k in 1 2; do
		[ -e "$T/i$((k - 1))" ] && [ ! -e "$T/i$k" ] || continue
		run --separate-stderr clean timeout 60 "$CRAC" restore "$T/i$((k - 1))" -- next "$T/i$k"
		echo "next into i$k: status $status, stdout: $output, stderr: $stderr"
		[ "$status" -eq 0 ]
		echo "$stderr" | grep -q "MiB referenced from $k image"
		[ -z "$(ls -A "$T" | grep "^i$k\.tmp-")" ]
		restore_ok "$k" "$T/i$k"
		break
	done
}

@test "probe: image_incr killed with SIGKILL at random moments of its chain (25 runs): what is left restores, the next checkpoint cleans up" {
	local run at
	STATES=()
	for run in $(seq 25); do
		rm -rf "$T"/*
		spawn "$T.out" "$T.err" env CRAC_IMAGE_INCREMENTAL=1 CRAC_IMAGE_STATS=1 "$INCR" "$T/i0" "$T/i1" "$T/i2" 64
		pid=$SPAWNED
		# killed in the incremental part: once i0 (the full image) or
		# its temporary is there (looked for without a fork), then
		# after 0-300 ms
		local until=$((SECONDS + 30))
		while [ $SECONDS -lt $until ] && ! compgen -G "$T/i0*" >/dev/null; do :; done
		at=$((RANDOM % 300))
		sleep "$(printf '0.%03d' "$at")"
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" || true
		echo "run $run: killed $at ms after i0 appeared: $(cd "$T" && echo *)"
		STATES+=("$(cd "$T" && echo * | sed "s/-$pid-[^ ]*//g")")
		after_kill
	done
	rm -f "$T.out" "$T.err"
	# where the kills fell (at least one while an incremental image was
	# being written, else this probed nothing)
	printf '%s\n' "${STATES[@]}" | sort | uniq -c
	printf '%s\n' "${STATES[@]}" | grep -q "i[12]\.tmp"
}

@test "probe: the program killed with SIGKILL while crac checkpoint --incremental writes its image (20 runs): the command ends, one line (two when the image's line came before the death); the parent restores; DIR whole or absent" {
	export CRAC_CONTROL_DIR="$T/ctl"
	local run at cst hpid
	for run in $(seq 20); do
		rm -rf "$T/a0" "$T/a1" "$T/out"
		spawn "$T/out" "$T/out" env CRAC_IMAGE_INCREMENTAL=1 "$CRAC_BUILD_DIR/tests/ckpt_heap" 64 0
		pid=$SPAWNED
		for _ in $(seq 500); do
			grep -q '^ready' "$T/out" 2>/dev/null && break
			sleep 0.01
		done
		run "$CRAC" checkpoint --keep-running --image-dir "$T/a0" "$pid"
		[ "$status" -eq 0 ]
		# the program writes nothing between: its incremental image is
		# quick (some 20 ms, the command itself slower to start), the kill lands
		# before it, in it or after
		spawn "$T/ckpt.out" "$T/ckpt.out" timeout 30 "$CRAC" checkpoint --incremental --keep-running --image-dir "$T/a1" "$pid"
		hpid=$SPAWNED
		at=$((RANDOM % 150))
		sleep "$(printf '0.%03d' "$at")"
		kill -9 "$pid"
		cst=0
		wait "$hpid" || cst=$?
		wait "$pid" || true
		echo "run $run: killed after $at ms: checkpoint status $cst: $(cat "$T/ckpt.out")"
		[ "$cst" -ne 124 ]   # never waits on for a dead program
		if [ "$cst" -eq 0 ]; then
			[ "$(cat "$T/ckpt.out")" = "crac: image written to $T/a1" ]
		else
			# (killed after it put DIR in place but before it answered,
			# the program leaves a whole image: the command says so,
			# and it is checked below like any other; killed after it
			# sent its answer's text but before its status, that text,
			# "image written to DIR", comes first: two lines then)
			if [ "$(wc -l <"$T/ckpt.out")" -eq 2 ]; then
				[ "$(head -n 1 "$T/ckpt.out")" = "crac: image written to $T/a1" ]
				tail -n 1 "$T/ckpt.out" | grep -q "during the checkpoint, before it answered; but $T/a1 holds the image this checkpoint wrote"
			else
				[ "$(wc -l <"$T/ckpt.out")" -eq 1 ]
			fi
			if [ -e "$T/a1" ] && grep -q "during the checkpoint, before it answered" "$T/ckpt.out"; then
				grep -q "; but $T/a1 holds the image this checkpoint wrote" "$T/ckpt.out"
			else
				! grep -q "holds the image this checkpoint wrote" "$T/ckpt.out"
			fi
		fi
		# the parent restores (the program waits again: stopped by timeout)
		run clean timeout 2 "$CRAC" restore "$T/a0"
		echo "restore a0: status $status: $output"
		[ "$status" -eq 124 ]
		if [ -e "$T/a1" ]; then
			run clean "$CRAC" inspect "$T/a1"
			[ "$status" -eq 0 ]
			run clean timeout 2 "$CRAC" restore "$T/a1"
			[ "$status" -eq 124 ]
		fi
		[ -z "$(ls "$T" | grep '\.old-')" ]
	done
	pid=
}
