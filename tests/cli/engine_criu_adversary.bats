#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The criu engine (src/engines/criu.c) against a CRIU that misbehaves (fake
# criu scripts through CRAC_CRIU; none needs root or the real CRIU):
#  - "success is verified, never assumed": a criu dump that exits 0 but
#    wrote no image (or not CRIU's) is a failed checkpoint, and the process
#    goes on instead of exiting as if its image were safe;
#  - criu runs without CRAC_ENGINE and CRAC_CONTROL: under `crac run` it
#    would load libcrac and start an endpoint of its own;
#  - (real CRIU, root) crac restore's RESTORED signal arriving after the
#    restored process stopped waiting for it (a criu restore slow to exit)
#    is ignored, not the default action of SIGRTMAX-2 (death).

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	COUNTER="$CRAC_BUILD_DIR/tests/criu_counter"
	T="$(mktemp -d /tmp/crac-bats-criua.XXXXXX)"
	chmod 755 "$T"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_CRIU_OPTS
	# the real CRIU given by the caller, if any (CRAC_CRIU=/path/to/criu
	# ctest -R engine_criu), for the tests that need one
	REAL_CRIU="${CRAC_CRIU:-}"
	export CRAC_CRIU="$T/criu"
}

teardown() {
	rm -rf "$T"
}

# require_real_criu: a CRIU whose `criu check` passes, and root; else skip.
require_real_criu() {
	[ -n "$REAL_CRIU" ] ||
		skip "CRAC_CRIU is not set: point it at a CRIU >= 4.1 (e.g. built from source) and run as root"
	[ -x "$REAL_CRIU" ] || skip "CRAC_CRIU=$REAL_CRIU is not an executable"
	[ "$(id -u)" -eq 0 ] || skip "CRIU needs root here (uid $(id -u))"
	"$REAL_CRIU" check >/dev/null 2>&1 || skip "CRAC_CRIU=$REAL_CRIU fails \`criu check\`"
}

# fake DUMP-BODY: a criu whose check passes and whose dump runs DUMP-BODY
# (sh; $dir is the -D directory, $pid the -t process)
fake() {
	cat >"$T/criu" <<EOF
#!/bin/sh
[ "\$1" = check ] && exit 0
dir=; pid=
while [ \$# -gt 0 ]; do
	case "\$1" in -D) dir=\$2; shift ;; -t) pid=\$2; shift ;; esac
	shift
done
$1
EOF
	chmod 755 "$T/criu"
}

@test "criu dump exits 0 but wrote nothing: not an image, the process goes on" {
	fake 'exit 0'
	run clean "$COUNTER" criu "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"criu dump exited 0 but wrote no image"*"inventory.img"*"no image was written to $T/img, the process goes on"* ]]
	[ ! -e "$T/img" ]
	[ -z "$(ls "$T" | grep tmp)" ]
}

@test "criu dump exits 0 with files that are not CRIU's: not an image" {
	fake 'for f in inventory pstree core-$pid; do echo junk >"$dir/$f.img"; done; exit 0'
	run clean "$COUNTER" criu "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"criu dump exited 0 but wrote no image"*"inventory.img is not a CRIU image"* ]]
	[ ! -e "$T/img" ]
}

@test "a RESTORED signal that comes after the restored process stopped waiting for it does not kill it" {
	require_real_criu
	LATE="$CRAC_BUILD_DIR/tests/criu_late"
	CRAC_CRIU="$REAL_CRIU" run clean "$LATE" "$T/img" 9 </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "result 1" ]
	# criu restore slow to exit: crac restore tells the restored process
	# after 6 s; it stopped waiting after 5 s (and went on without)
	cat >"$T/slow" <<EOF
#!/bin/sh
"$REAL_CRIU" "\$@"
rc=\$?
[ "\$1" = restore ] && sleep 6
exit \$rc
EOF
	chmod 755 "$T/slow"
	CRAC_CRIU="$T/slow" run clean "$CRAC" restore "$T/img" </dev/null
	echo "$output"
	echo "$output" | grep -qx "result 2"
	# it ran its 9 s (90 lines), not killed at 6 s by SIGRTMAX-2
	echo "$output" | grep -qx "alive 89"
}

@test "through a wrapper of criu, crac restore still exits as the restored program does (subreaper)" {
	require_real_criu
	LATE="$CRAC_BUILD_DIR/tests/criu_late"
	CRAC_CRIU="$REAL_CRIU" run clean "$LATE" "$T/img" 30 </dev/null
	[ "$status" -eq 0 ]
	printf '#!/bin/sh\n"%s" "$@"\n' "$REAL_CRIU" >"$T/wrap"
	chmod 755 "$T/wrap"
	P="$(sed -n 's/^pid=//p' "$T/img/crac-criu")"
	[ -n "$P" ]
	(
		close_fds
		CRAC_CRIU="$T/wrap" exec "$CRAC" restore "$T/img" </dev/null >"$T/r.out" 2>"$T/r.err"
	) &
	R=$!
	wait_line "$T/r.out" "result 2" 10
	kill -9 "$P"
	st=0
	wait "$R" || st=$?
	cat "$T/r.err"
	[ "$st" -eq 137 ]
}

@test "criu runs without CRAC_ENGINE and CRAC_CONTROL (no endpoint of its own under crac run)" {
	fake 'env >"'"$T"'/dump.env"; exit 1'
	# check too: it writes its environment, then passes
	sed -i 's|^\[ "$1" = check \] && exit 0|[ "$1" = check ] \&\& { env >"'"$T"'/check.env"; exit 0; }|' "$T/criu"
	CRAC_ENGINE=criu CRAC_CONTROL=1 run clean "$COUNTER" criu "$T/img" </dev/null
	echo "$output"
	[ "$status" -eq 1 ]
	[ -s "$T/dump.env" ]
	[ -s "$T/check.env" ]
	! grep -qE '^CRAC_(ENGINE|CONTROL)=' "$T/dump.env" || false
	! grep -qE '^CRAC_(ENGINE|CONTROL)=' "$T/check.env" || false
	# the rest of the environment is passed on
	grep -q "^CRAC_CONTROL_DIR=$T/ctl\$" "$T/dump.env"
}
