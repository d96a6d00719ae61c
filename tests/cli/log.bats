#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# crac's own messages (src/core/log.c): CRAC_LOG picks the level; at info a
# restored process says which engine and generation brought it back, on the
# stderr of `crac restore`; at the default level it says nothing when all
# went well; an unknown CRAC_LOG value is reported; a policy warning goes
# through the logger and CRAC_LOG=error silences it.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	COUNTER="$CRAC_BUILD_DIR/tests/image_counter"
	T="$(mktemp -d /tmp/crac-bats-log.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LOG
}

teardown() {
	rm -rf "$T"
}

@test "CRAC_LOG=info given at restore: the restored process names its engine and generation" {
	run clean "$COUNTER" "$T/img" 4
	[ "$status" -eq 0 ]
	run clean "$CRAC" restore --env CRAC_LOG=info "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^crac: restored by engine image: generation 1, every after_restore callback succeeded$"
	run clean "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	! echo "$output" | grep -q "^crac: restored by" || false
}

@test "an unknown CRAC_LOG value is reported, the default level kept" {
	CRAC_LOG=loud run clean "$COUNTER" "$T/img" 4
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^crac: CRAC_LOG=loud is not one of error, warn, info, debug: using warn$"
}

@test "a policy warning goes through the logger; CRAC_LOG=error drops it" {
	printf 'tcp * warn\n' > "$T/pol"
	prog() {
		CRAC_POLICIES="$T/pol" clean python3 - "$CRAC_BUILD_DIR" <<'PY'
import ctypes, socket, sys
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
c = socket.create_connection(l.getsockname()); a, _ = l.accept()
lib = ctypes.CDLL(sys.argv[1] + "/libcrac.so")
# the safety checks as the image engine would run them; nothing is written
print("rc", lib.crac_check(None))
PY
	}
	run prog
	echo "$output"
	echo "$output" | grep -q "^crac: warning: fd [0-9]*: tcp .* is not carried .*policy \"tcp \* warn\" lets the checkpoint go on"
	CRAC_LOG=error run prog
	echo "$output"
	echo "$output" | grep -q "^rc "
	! echo "$output" | grep -q "not carried" || false
}

@test "CRAC_LOG applies to messages printed while the library loads" {
	grep -q '^engines:.* external' <("$CRAC" --version) || skip "no external engine in this build"
	load_lib() {
		CRAC_ENGINE=external CRAC_EXTERNAL_POLL_MS=abc CRAC_EXTERNAL_LOGIND=0 \
			clean timeout 20 python3 -c 'import ctypes, sys; ctypes.CDLL(sys.argv[1] + "/libcrac.so")' "$CRAC_BUILD_DIR"
	}
	run load_lib
	echo "$output"
	echo "$output" | grep -q 'CRAC_EXTERNAL_POLL_MS="abc" is not a number'
	CRAC_LOG=error run load_lib
	echo "$output"
	[ "$status" -eq 0 ]
	! echo "$output" | grep -q 'CRAC_EXTERNAL_POLL_MS' || false
}
