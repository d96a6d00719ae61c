#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The crac command is the restore loader (src/loader/front.c): a plain
# `crac restore DIR` of an image of the image engine is one exec, the
# loader's; every other command line, and a restore the loader does not do
# exactly as the tool would (--timens, --help, an abbreviated option, a CRIU
# image, socket activation, CRAC_LOADER), execs crac-cli with the same
# arguments, which behaves as it always did.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/env_image"
	TMP="$(mktemp -d)"
	unset X Y CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LOADER LISTEN_FDS LISTEN_PID
	command -v strace >/dev/null || skip "needs strace (to count the execs of a restore)"
}

teardown() {
	rm -rf "$TMP"
}

# execs LOG: the programs exec'd (successfully) in strace's log, one a line
execs() {
	sed -n 's/.*execve("\([^"]*\)".*= 0$/\1/p' "$1" | sed 's|.*/||'
}

@test "front: crac restore DIR is one exec (no crac-cli), with -q, --env=K=V and options in any order" {
	run clean "$PROG" "$TMP/img" 1
	[ "$status" -eq 0 ]
	run clean strace -f -qq -e trace=execve -o "$TMP/trace" "$CRAC" restore -q "$TMP/img" --env=X=1 --env 'Y=p q=r' --stats -- a 'b c'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"cycle 1: gen=1 argc=2 [a] [b c] env=[X=1] env=[Y=p q=r] X=1 Y=p q=r"* ]]
	[[ "$output" == *"crac: loader: checks "* ]]   # --stats reached the loader
	execs "$TMP/trace"
	[ "$(execs "$TMP/trace")" = crac ]
}

@test "front: other command lines go to crac-cli with their arguments unchanged" {
	run clean "$PROG" "$TMP/img" 1
	[ "$status" -eq 0 ]
	# an abbreviated option (getopt_long's), --help, a usage error, another command
	run clean strace -f -qq -e trace=execve -o "$TMP/trace" "$CRAC" restore --pop "$TMP/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"cycle 1: gen=1 argc=0"* ]]
	[ "$(execs "$TMP/trace" | tr '\n' ' ')" = "crac crac-cli crac-loader " ]
	run "$CRAC" restore --help
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "usage: crac restore DIR"* ]]
	run "$CRAC" restore --populate --lazy "$TMP/img"
	[ "$status" -eq 2 ]
	[ "$output" = "crac: --populate and --lazy exclude each other" ]
	run "$CRAC" restore "$TMP/img" --env NOEQUALS
	[ "$status" -eq 2 ]
	[[ "$output" == *"--env needs KEY=VALUE"* ]]
	run "$CRAC" restore "$TMP/img" "$TMP/img"
	[ "$status" -eq 2 ]
	[[ "$output" == *"unexpected"* ]]
	run "$CRAC" --version
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "crac "* ]]
	# a loader named by CRAC_LOADER and socket activation are the tool's
	run clean env CRAC_LOADER="$CRAC_BUILD_DIR/crac-loader" strace -f -qq -e trace=execve -o "$TMP/trace" \
		"$CRAC" restore "$TMP/img"
	[ "$status" -eq 0 ]
	[ "$(execs "$TMP/trace" | tr '\n' ' ')" = "crac crac-cli crac-loader " ]
	# a directory holding the CRIU engine's marker is the tool's too
	mkdir "$TMP/criu"
	echo "crac-criu-image 1" >"$TMP/criu/crac-criu"
	run clean strace -f -qq -e trace=execve -o "$TMP/trace" "$CRAC" restore "$TMP/criu"
	[ "$status" -ne 0 ]
	[ "$(execs "$TMP/trace" | head -n 2 | tr '\n' ' ')" = "crac crac-cli " ]
}

@test "front: the tool runs under the name crac; without crac-cli the crac command says where it looked" {
	# the program is sh; its parent, the supervisor (a trigger), is named crac
	"$CRAC" run --checkpoint-on USR2 -- sh -c 'cat /proc/$PPID/comm' >"$TMP/comm"
	[ "$(cat "$TMP/comm")" = crac ]
	mkdir "$TMP/alone"
	cp "$CRAC" "$TMP/alone/crac"
	run "$TMP/alone/crac" --version
	echo "$output"
	if [ -x /usr/local/libexec/crac-cli ] || [ -x /usr/libexec/crac-cli ]; then
		skip "an installed crac-cli would answer"
	fi
	[ "$status" -eq 2 ]
	[[ "$output" == "crac: cannot run crac-cli, the crac command's tool: $TMP/alone/crac-cli: No such file or directory (errno 2); "*"/crac-cli: No such file or directory (errno 2)" ]]
}

@test "front: a crac-cli next to crac that cannot be run is named with its own error, not passed over" {
	mkdir "$TMP/broken"
	cp "$CRAC" "$TMP/broken/crac"
	printf 'not a program\n' >"$TMP/broken/crac-cli"
	chmod 0644 "$TMP/broken/crac-cli"
	run "$TMP/broken/crac" --version   # no x bit: EACCES, for root too
	echo "$output"
	[ "$status" -eq 2 ]
	[ "$output" = "crac: cannot run crac-cli, the crac command's tool: $TMP/broken/crac-cli: Permission denied (errno 13)" ]
}

@test "front: a refused restore of a very long DIR keeps its reason and ends its line (DIR shown shortened)" {
	d="$(printf '/%.0s' $(seq 4070))nonexistent-img"   # 4085 bytes: under PATH_MAX
	run --separate-stderr "$CRAC" restore "$d"
	echo "$stderr" | cut -c1-300
	[ "$status" -eq 1 ]
	[[ "$stderr" == "crac: restore "*"/.../"*"nonexistent-img: cannot open the image directory: No such file or directory (errno 2)" ]]
	[ "${#stderr}" -lt 400 ]
}
