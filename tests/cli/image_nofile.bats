#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# RLIMIT_NOFILE at restore: the loader keeps the pages file above the
# image's highest descriptor while it recreates them, so it needs one more
# than that number. It raises the soft limit up to the hard one; when the
# hard limit is too low, the restore is refused before the point of no
# return, naming the limit, instead of failing after the jump.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-nofile.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LOG
	need_python
	require_image_engine
	echo data >"$T/data"
	# a program holding a file at fd 500, checkpointed once it does
	cat >"$T/hi.py" <<'PY'
import os, signal, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY); os.dup2(fd, 500); os.close(fd)
print("ready", flush=True)
os.kill(os.getppid(), signal.SIGUSR1)   # crac run: checkpoint now (fd 500 is there)
while True: time.sleep(1)
PY
	run_to_image "$T/run.out" -- "$PY" "$T/hi.py" "$T/data"
	[ -f "$T/img/header" ] || { cat "$T/run.out"; false; }
}

teardown() {
	rm -rf "$T"
}

@test "a hard RLIMIT_NOFILE below the image's highest fd + 2: refused before the point of no return, naming the limit" {
	run bash -c 'ulimit -Sn 400; ulimit -Hn 501; exec "$0" restore "$1" </dev/null' "$CRAC" "$T/img"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"the image's highest descriptor is fd 500, and restoring it needs RLIMIT_NOFILE of at least 502"*"the hard limit here is 501"* ]]
	[ "${#lines[@]}" -eq 1 ]
}

@test "a soft RLIMIT_NOFILE too low but a hard one high enough: raised, the image restores" {
	run bash -c 'ulimit -Hn 4096; ulimit -Sn 400; exec timeout 3 "$0" restore "$1" </dev/null' "$CRAC" "$T/img"
	echo "$output"
	[ "$status" -eq 124 ]   # restored: the program runs until timeout stops it
	! [[ "$output" == *"crac: restore"* ]] || false
}
