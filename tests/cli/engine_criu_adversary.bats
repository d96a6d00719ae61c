#!/usr/bin/env bats
# The criu engine (src/engines/criu.c) against a CRIU that misbehaves (fake
# criu scripts through CRAC_CRIU; none needs root or the real CRIU):
#  - "success is verified, never assumed": a criu dump that exits 0 but
#    wrote no image (or not CRIU's) is a failed checkpoint, and the process
#    goes on instead of exiting as if its image were safe;

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	COUNTER="$CRAC_BUILD_DIR/tests/criu_counter"
	T="$(mktemp -d /tmp/crac-bats-criua.XXXXXX)"
	chmod 755 "$T"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_CRIU_OPTS
	export CRAC_CRIU="$T/criu"
}

teardown() {
	rm -rf "$T"
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
