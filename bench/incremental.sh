#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/incremental.sh - incremental against full checkpoints of a 1 GiB
# heap with 1% of its pages written between checkpoints (issue 12, item 3;
# goal: an incremental re-checkpoint <= 50 ms).
#
#   bench/incremental.sh [BUILD_DIR] [MIB] [PERMILLE] [REPS] [DOC]
#
# Runs bench/ckpt_incr.c (see its header) in a fresh directory under
# ${TMPDIR:-/tmp} and prints its lines plus the median of each kind, with
# CRAC_IMAGE_STATS lines (stopped time, MiB written, MiB referenced); then
# bench/wp_probe.c (the kernel's own cost of finding and write-protecting
# again the same share of written pages: the bound under the goal). With
# DOC, writes both to that markdown file with the date, commit and load.
set -eu
BUILD=${1:-build}
MIB=${2:-1024}
PERMILLE=${3:-10}
REPS=${4:-5}
DOC=${5:-}
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
DIR=$(mktemp -d "${TMPDIR:-/tmp}/crac-bench-incr.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
echo "# incremental checkpoints: ${MIB} MiB heap, ${PERMILLE} per mille of its pages written between checkpoints"
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)"
CRAC_IMAGE_STATS=1 "$BUILD/bench/ckpt_incr" "$DIR" "$MIB" "$PERMILLE" "$REPS" 2>&1 | tee "$DIR/out"
for kind in incr full; do
	sed -n "s/^$kind rep=[0-9]* ms=//p" "$DIR/out" | sort -n |
		awk -v k="$kind" '{ v[NR] = $1 } END { if (NR) printf "%s: median %.1f ms, min %.1f, max %.1f (%d runs)\n", k, v[int((NR + 1) / 2)], v[1], v[NR], NR }'
done
echo "# the bound: bench/wp_probe $MIB $PERMILLE $REPS"
"$BUILD/bench/wp_probe" "$MIB" "$PERMILLE" "$REPS" 2>&1 | tee "$DIR/probe"
[ -n "$DOC" ] || exit 0
med() { sed -n "s/^$1 rep=[0-9]* ms=//p" "$DIR/out" | sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.1f (%.1f–%.1f, %d runs)", v[int((NR + 1) / 2)], v[1], v[NR], NR }'; }
{
	echo "# Incremental checkpoints: re-checkpoint of a ${MIB} MiB heap with ${PERMILLE}‰ of its pages written"
	echo
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/incremental.sh $BUILD $MIB $PERMILLE $REPS DOC\` on $(nproc) cores, Linux $(uname -r); crac built from $(git rev-parse --short HEAD 2>/dev/null || echo '?')."
	echo "Machine load (/proc/loadavg, 1/5/15 min): $LOAD0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end."
	echo
	echo "| checkpoint (keep-running, durable) | ms: median (min–max) |"
	echo "|---|---|"
	echo "| incremental (only the pages written since the last image) | $(med incr) |"
	echo "| full image of the same process | $(med full) |"
	echo
	echo "Goal (issue 12, item 3): incremental ≤ 50 ms."
	echo
	echo "The kernel's part, measured by \`bench/wp_probe\` in the same run (no crac: the same ${PERMILLE}‰ of the pages written, spread evenly, then found and write-protected again; 'next writes' is what the program pays afterwards):"
	echo
	echo '```'
	cat "$DIR/probe"
	echo '```'
	echo
	echo "Stats lines of the checkpoints (CRAC_IMAGE_STATS=1):"
	echo
	echo '```'
	grep "checkpoint stats" "$DIR/out" | tail -n 6
	echo '```'
} >"$DOC"
echo "wrote $DOC"
