#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Options of every command (issue 13 item 8): getopt_long everywhere.
#   - `crac CMD --help` and `-h` print the full options on stdout, exit 0;
#   - every option crac(1) documents for CMD (its SYNOPSIS and the tags of
#     its section) appears in `crac CMD --help`, and every option that
#     --help lists is accepted by the parser, as --opt VALUE and --opt=VALUE;
#   - an unknown option, a missing value, a value given to an option taking
#     none: one line naming it with the usage, exit 2;
#   - "--" and the program's arguments after it are never parsed.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	MAN="$CRAC_SOURCE_DIR/docs/man/crac.1"
	T="$(mktemp -d /tmp/crac-bats-opts.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	need_python
	COMMANDS="checkpoint restore run start inspect flatten check"
}

teardown() {
	rm -rf "$T"
}

# man_options CMD: the options crac(1) documents for CMD, one per line: the
# options of its SYNOPSIS lines (with the trigger options where it takes
# triggers) and the tags (.TP) of its section(s) ".SS crac CMD...".
man_options() {
	"$PY" - "$MAN" "$1" <<'PYEOF'
import re, sys
text = open(sys.argv[1]).read().split("\n")
cmd = sys.argv[2]
opt_re = re.compile(r"(?<![\w\\-])\\-(?:\\-[a-z][a-z0-9\\-]*|[a-zA-Z](?![\w\\]))")
def opts(line):
    return [o.replace("\\-", "-") for o in opt_re.findall(line)]
found = set()
# SYNOPSIS: blocks between .PP lines
syn = text[text.index(".SH SYNOPSIS") + 1:]
syn = syn[:next(i for i, l in enumerate(syn) if l.startswith(".SH"))]
blocks, cur = [], []
for l in syn:
    if l == ".PP":
        blocks.append(cur); cur = []
    else:
        cur.append(l)
blocks.append(cur)
triggers = [b for b in blocks if b and b[0].startswith(".IR trigger")]
for b in blocks:
    if b and (b[0] + " ").startswith(".B crac " + cmd + " "):
        for l in b:
            found.update(opts(l))
        if any("trigger" in l for l in b):
            for t in triggers:
                for l in t:
                    found.update(opts(l))
# the section(s): .SS crac CMD ... up to the next .SS or .SH; its .TP tags
sec = None
for i, l in enumerate(text):
    if l.startswith(".SS") or l.startswith(".SH"):
        sec = l.split()[1:3] == ["crac", cmd] if l.startswith(".SS") else False
    elif sec and l == ".TP" and i + 1 < len(text):
        found.update(opts(text[i + 1]))
found.discard("--")
print("\n".join(sorted(found)))
PYEOF
}

# help_options CMD: the options `crac CMD --help` lists, "OPT METAVAR" per
# line (METAVAR empty for an option without a value): every "--opt" or
# "-o" that starts an indented line or follows "--opt, ".
help_options() {
	"$CRAC" "$1" --help | "$PY" -c '
import re, sys
for line in sys.stdin:
    # an optional value is written right after the name: --opt[=VALUE]
    m = re.match(r"^\s+((?:--?[a-zA-Z][a-z0-9-]*)(?:, --?[a-zA-Z][a-z0-9-]*)*)(\[=[A-Z]+\])?(?: ([A-Z\[][^ ]*))?(?:\s|$)", line)
    if not m or m.group(1) == "--":
        continue
    for o in m.group(1).split(", "):
        print(o, m.group(2) or m.group(3) or "")
'
}

# value METAVAR: a value the parser takes for an option with that metavar.
value() {
	case "$1" in
	DURATION) echo 1s ;;
	SIGNAL) echo USR1 ;;
	"[ADDR:]PORT") echo 127.0.0.1:8080 ;;
	PID) echo 1 ;;
	K=V) echo K=V ;;
	MS) echo 100 ;;
	E) echo sim ;;
	DIR) echo "$T/dir" ;;
	FILE) : >"$T/file"; echo "$T/file" ;;
	K) echo some-key ;;
	LEVEL) echo 3 ;;
	*) echo "no test value for the metavar \"$1\": add it to value() in $BATS_TEST_FILENAME" >&2; return 1 ;;
	esac
}

@test "crac CMD --help and -h: the options on stdout, nothing on stderr, exit 0" {
	for cmd in $COMMANDS; do
		for h in --help -h; do
			run --separate-stderr "$CRAC" "$cmd" "$h"
			echo "$cmd $h: $status: $output $stderr"
			[ "$status" -eq 0 ]
			[ -z "$stderr" ]
			[[ "${lines[0]}" == "usage: crac $cmd"* ]]
			[[ "$output" == *"--help"* ]]
		done
	done
	run --separate-stderr "$CRAC" --help
	[ "$status" -eq 0 ]
	for o in -v -vv -q --version --help; do
		[[ "$output" == *" $o"* ]] || { echo "crac --help lacks $o"; false; }
	done
}

@test "the option lists are read from crac(1) and from --help as they are written" {
	run man_options run
	echo "$output"
	for o in --engine --checkpoint-to --policies --keep-running --checkpoint-after --checkpoint-on \
		 --checkpoint-when-listening --checkpoint-on-ready; do
		grep -qx -- "$o" <<<"$output" || { echo "man_options run lacks $o"; false; }
	done
	run man_options start
	grep -qx -- --checkpoint-on-ready <<<"$output"   # through "trigger ..."
	grep -qx -- -q <<<"$output"                      # .BR \-\-quiet ", " \-q
	! grep -qx -- -U <<<"$output" || false                  # not from the text
	run man_options restore
	for o in --pid --env --populate --lazy --stats --timens --trust-owner --verify-files --quiet -q; do
		grep -qx -- "$o" <<<"$output" || { echo "man_options restore lacks $o"; false; }
	done
	run help_options run
	echo "$output"
	grep -qx -- "--checkpoint-after DURATION" <<<"$output"
	grep -qx -- "--checkpoint-when-listening \[ADDR:\]PORT" <<<"$output"
	grep -qx -- "--keep-running " <<<"$output"
}

@test "every option crac(1) documents for a command is in its --help" {
	for cmd in $COMMANDS; do
		listed="$(help_options "$cmd" | cut -d' ' -f1)"
		documented="$(man_options "$cmd")"
		# crac check has no option of its own in crac(1)
		[ -n "$documented" ] || [ "$cmd" = check ] || { echo "no options read for $cmd"; false; }
		for o in $documented; do
			grep -qx -- "$o" <<<"$listed" ||
				{ echo "crac(1) documents $o for crac $cmd; crac $cmd --help does not list it"; false; }
		done
	done
}

@test "every option a command's --help lists is accepted, as --opt VALUE and --opt=VALUE" {
	for cmd in $COMMANDS; do
		n=0
		while read -r o meta; do
			[ -n "$o" ] || continue
			n=$((n + 1))
			if [ -z "$meta" ]; then
				forms=("$o")
			elif [[ "$meta" == "[="*"]" ]]; then
				# an optional value: --opt alone, or --opt=VALUE
				m="${meta#[=}"
				v="$(value "${m%]}")"
				forms=("$o" "$o=$v")
			else
				v="$(value "$meta")"
				forms=("$o $v")
				[[ "$o" == --* ]] && forms+=("$o=$v")
			fi
			for f in "${forms[@]}"; do
				# the option first, then --help: it answers only if the
				# option before it was taken
				read -ra words <<<"$f"
				run --separate-stderr "$CRAC" "$cmd" "${words[@]}" --help
				[ "$status" -eq 0 ] && [[ "${lines[0]}" == "usage: crac $cmd"* ]] ||
					{ echo "crac $cmd $f --help: status $status: $stderr"; false; }
			done
		done < <(help_options "$cmd")
		echo "crac $cmd: $n options"
		[ "$n" -ge 2 ]
	done
}

@test "unknown option, missing value, value where none is taken: one line naming it, with the usage, exit 2" {
	for cmd in checkpoint restore run start inspect check; do
		run --separate-stderr "$CRAC" "$cmd" --no-such-option
		echo "$cmd: $status: $stderr"
		[ "$status" -eq 2 ]
		[ "${#stderr_lines[@]}" -eq 1 ]
		[[ "$stderr" == "crac: option \"--no-such-option\" is unknown (usage: crac $cmd"* ]]
		run --separate-stderr "$CRAC" "$cmd" --help=yes
		[ "$status" -eq 2 ]
		[[ "$stderr" == "crac: option \"--help\" takes no value (usage: crac $cmd"* ]]
	done
	run --separate-stderr "$CRAC" run --checkpoint-to
	[ "$status" -eq 2 ]
	[[ "$stderr" == "crac: option \"--checkpoint-to\" needs a value (usage: crac run"* ]]
	run --separate-stderr "$CRAC" start --image "$T/img" --key
	[ "$status" -eq 2 ]
	[[ "$stderr" == "crac: option \"--key\" needs a value (usage: crac start"* ]]
	run --separate-stderr "$CRAC" restore "$T/img" --env
	[ "$status" -eq 2 ]
	[[ "$stderr" == "crac: option \"--env\" needs a value (usage: crac restore"* ]]
	run --separate-stderr "$CRAC" run -kZ -- true
	[ "$status" -eq 2 ]
	[[ "$stderr" == "crac: option \"-Z\" is unknown (usage: crac run"* ]]
	run --separate-stderr "$CRAC" run --checkpoint -- true
	[ "$status" -eq 2 ]
	[[ "$stderr" == "crac: option \"--checkpoint\" is ambiguous"* ]]
	run --separate-stderr "$CRAC" --no-such-option check
	[ "$status" -eq 2 ]
	[[ "$stderr" == "crac: option \"--no-such-option\" is unknown (usage: crac "* ]]
	run --separate-stderr "$CRAC" inspect "$T/a" "$T/b"
	[ "$status" -eq 2 ]
	[ "$stderr" = "crac: unexpected \"$T/b\" (usage: crac inspect DIR [--json] [--trust-owner])" ]
}

@test "--env=K=V and --env K=V are one; DIR before or after the options; after -- nothing is parsed" {
	require_image_engine
	PROG="$CRAC_BUILD_DIR/tests/env_image"
	unset X Y CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
	run clean "$PROG" "$T/img" 1
	[ "$status" -eq 0 ]
	# the value of --env is never an option, even one that looks like one
	run clean "$CRAC" restore --env=X=1 --quiet "$T/img" --env 'Y=p q=r' -- --env=Z=9 --help
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "cycle 1: gen=1 argc=2 [--env=Z=9] [--help] env=[X=1] env=[Y=p q=r] X=1 Y=p q=r" ]
	run clean "$CRAC" restore --env X=--stats "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "cycle 1: gen=1 argc=0 env=[X=--stats] X=--stats Y=(unset)" ]
	run --separate-stderr "$CRAC" restore "$T/img" --env=NOEQUALS
	[ "$status" -eq 2 ]
	[ "$stderr" = "crac: --env needs KEY=VALUE, not \"NOEQUALS\"" ]
	# --pid takes --pid=PID and --env=K=V too (no endpoint here: exit 2, said)
	run --separate-stderr "$CRAC" restore --pid=2147483646 --env=A=B -- x
	echo "$stderr"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *2147483646* ]]
	run --separate-stderr "$CRAC" restore --pid=1 --populate
	[ "$status" -eq 2 ]
	[[ "$stderr" == "crac: --populate is an option of an image's restore (crac restore DIR), not of --pid"* ]]
	# crac run: the program's arguments after -- (or after PROG) are its own
	run clean "$CRAC" run --engine=sim -- sh -c 'echo "$CRAC_ENGINE $*"' sh --engine=x --help
	[ "$status" -eq 0 ]
	[ "$output" = "sim --engine=x --help" ]
	run clean "$CRAC" run --checkpoint-to="$T/rel" sh -c 'echo "$CRAC_IMAGE_DIR $*"' sh -h
	[ "$status" -eq 0 ]
	[ "$output" = "$T/rel -h" ]
}
