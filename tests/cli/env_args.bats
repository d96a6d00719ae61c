#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# New arguments and environment given at restore reach the program:
# `crac restore --pid PID --env K=V -- ARGS` resumes a process paused by the
# pause engine; its after_restore callbacks see the args (crac_restore_args,
# the event) and the variables (getenv), and main sees them after the round.
# A later resume without args leaves argc 0; the variables stay set.

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/env_pause"
	TMP="$(mktemp -d)"
	export CRAC_CONTROL_DIR="$TMP/ctl"
	mkdir -m 0700 "$CRAC_CONTROL_DIR"
	pid=
}

teardown() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}

# wait_paused N: until the program reported its N-th pause (10 s at most).
wait_paused() {
	local n="$1"
	for _ in $(seq 200); do
		if [ "$(grep -c 'paused; resume it with' "$TMP/err" 2>/dev/null)" -ge "$n" ]; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "program did not pause (pause #$n); stderr:" >&2
	cat "$TMP/err" >&2
	return 1
}

@test "crac restore --pid passes new args and env to the program" {
	env -u X -u Y "$PROG" >"$TMP/out" 2>"$TMP/err" &
	pid=$!
	wait_paused 1

	run "$CRAC" restore --pid "$pid" --env X=1 --env 'Y=p q=r' -- a 'b c'
	echo "$output"
	[ "$status" -eq 0 ]

	wait_paused 2
	run "$CRAC" restore --pid "$pid"
	echo "$output"
	[ "$status" -eq 0 ]

	local st=0
	wait "$pid" || st=$?
	pid=
	cat "$TMP/out"
	cat "$TMP/err" >&2
	[ "$st" -eq 0 ]

	diff -u - "$TMP/out" <<'EOF'
round 1 after_restore: outcome=2 argc=2 [a] [b c] env=[X=1] env=[Y=p q=r] X=1 Y=p q=r
round 1 returned 2: argc=2 [a] [b c] env=[X=1] env=[Y=p q=r] X=1 Y=p q=r
round 2 after_restore: outcome=2 argc=0 X=1 Y=p q=r
round 2 returned 2: argc=0 X=1 Y=p q=r
EOF
}

@test "args only, no env: variables stay unset" {
	env -u X -u Y "$PROG" >"$TMP/out" 2>"$TMP/err" &
	pid=$!
	wait_paused 1
	run "$CRAC" restore --pid "$pid" -- only
	[ "$status" -eq 0 ]
	wait_paused 2
	run "$CRAC" restore --pid "$pid" --env X=2
	[ "$status" -eq 0 ]
	local st=0
	wait "$pid" || st=$?
	pid=
	cat "$TMP/out"
	[ "$st" -eq 0 ]
	diff -u - "$TMP/out" <<'EOF'
round 1 after_restore: outcome=2 argc=1 [only] X=unset Y=unset
round 1 returned 2: argc=1 [only] X=unset Y=unset
round 2 after_restore: outcome=2 argc=0 env=[X=2] X=2 Y=unset
round 2 returned 2: argc=0 env=[X=2] X=2 Y=unset
EOF
}
