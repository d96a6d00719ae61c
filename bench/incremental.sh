#!/bin/sh
# bench/incremental.sh - incremental against full checkpoints of a 1 GiB
# heap with 1% of its pages written between checkpoints (issue 12, item 3;
# goal: an incremental re-checkpoint <= 50 ms).
#
#   bench/incremental.sh [BUILD_DIR] [MIB] [PERMILLE] [REPS]
#
# Runs bench/ckpt_incr.c (see its header) in a fresh directory under
# ${TMPDIR:-/tmp} and prints its lines plus the median of each kind, with
# CRAC_IMAGE_STATS lines (stopped time, MiB written, MiB referenced).
set -eu
BUILD=${1:-build}
MIB=${2:-1024}
PERMILLE=${3:-10}
REPS=${4:-5}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/crac-bench-incr.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
echo "# incremental checkpoints: ${MIB} MiB heap, ${PERMILLE} per mille of its pages written between checkpoints"
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)"
CRAC_IMAGE_STATS=1 "$BUILD/bench/ckpt_incr" "$DIR" "$MIB" "$PERMILLE" "$REPS" 2>&1 | tee "$DIR/out"
for kind in incr full; do
	sed -n "s/^$kind rep=[0-9]* ms=//p" "$DIR/out" | sort -n |
		awk -v k="$kind" '{ v[NR] = $1 } END { if (NR) printf "%s: median %.1f ms, min %.1f, max %.1f (%d runs)\n", k, v[int((NR + 1) / 2)], v[1], v[NR], NR }'
done
