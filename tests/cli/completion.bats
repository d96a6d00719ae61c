#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# contrib/bash-completion/crac: sourced in bash, it completes subcommands,
# each subcommand's options (those of `crac CMD --help` too), engines, PIDs
# with a control socket, directories; and `cmake --install` installs it
# where bash-completion looks (DATADIR/bash-completion/completions/crac).

load common

setup() {
	T="$(mktemp -d /tmp/crac-bats-compl.XXXXXX)"
	COMPL="$CRAC_SOURCE_DIR/contrib/bash-completion/crac"
	export CRAC_CONTROL_DIR="$T/ctl"
	mkdir -m 0700 "$CRAC_CONTROL_DIR"
}

teardown() {
	[ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
	rm -rf "$T"
}

# complete LINE: what bash offers for LINE (the cursor at its end; a
# trailing space starts a new word), one per line, sorted
complete_line() {
	PATH="$CRAC_BUILD_DIR:$PATH" bash -c '
		source "$1"
		# as bash splits words (COMP_WORDBREAKS): --engine=i is 3 words
		read -ra COMP_WORDS <<<"${2//=/ = }"
		[[ $2 == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMP_LINE=$2
		COMP_POINT=${#2}
		_crac
		printf "%s\n" "${COMPREPLY[@]}" | sort' _ "$COMPL" "$1"
}

@test "crac che<TAB>: checkpoint check; crac <TAB>: every subcommand" {
	run complete_line "crac che"
	echo "$output"
	[ "$output" = "check
checkpoint" ]
	run complete_line "crac "
	echo "$output"
	for c in checkpoint restore run start inspect flatten check; do
		echo "$output" | grep -qx "$c"
	done
	run complete_line "crac --v"
	[ "$output" = "--version" ]
}

@test "options of each subcommand" {
	run complete_line "crac checkpoint --"
	echo "$output"
	for o in --engine --image-dir --keep-running --deadline --dry-run --force-checks --incremental --compress \
		 --timeout --stats --help; do
		echo "$output" | grep -qx -- "$o"
	done
	run complete_line "crac restore --"
	echo "$output"
	for o in --pid --populate --lazy --stats --timens --trust-owner --env; do
		echo "$output" | grep -qx -- "$o"
	done
	run complete_line "crac run --check"
	echo "$output"
	echo "$output" | grep -qx -- "--checkpoint-to"
	run complete_line "crac inspect --j"
	[ "$output" = "--json" ]
}

@test "values: engines, directories, PIDs with a control socket, the program after --" {
	run complete_line "crac checkpoint --engine "
	echo "$output"
	[ "$output" = "$("$CRAC_BUILD_DIR/crac" --version | sed -n 's/^engines: *//p' | tr ' ' '\n' | sort)" ]
	run complete_line "crac run --engine=i"
	[ "$output" = "image" ]
	mkdir "$T/imgdir" && touch "$T/imgfile"
	run complete_line "crac restore $T/img"
	echo "$output"
	[ "$output" = "$T/imgdir" ]
	run complete_line "crac run --checkpoint-to $T/img"
	[ "$output" = "$T/imgdir" ]
	run complete_line "crac flatten $T/imgdir $T/img"
	[ "$output" = "$T/imgdir" ]
	# a process with a control socket
	"$CRAC_BUILD_DIR/crac" run -- sleep 30 &
	pid=$!
	wait_sock "$CRAC_CONTROL_DIR/$pid.sock" 2
	run complete_line "crac checkpoint "
	echo "$output"
	[ "$output" = "$pid" ]
	run complete_line "crac run -- slee"
	echo "$output" | grep -qx sleep
}

@test "cmake --install puts it in share/bash-completion/completions" {
	CRAC_NO_LDCONFIG=1 cmake --install "$CRAC_BUILD_DIR" --prefix "$T/prefix" >/dev/null
	cmp "$COMPL" "$T/prefix/share/bash-completion/completions/crac"
}
