#!/bin/sh
# SPDX-License-Identifier: MIT
# demo.sh - builds crac and runs the main demo: a program with a warm-up of
# over a second starts cold, then checkpoints itself with the image engine,
# and is restored from the image; cold-start and restore times are printed
# and the restored state is proven equal by a checksum of the whole index.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null

echo "== 1. callback order (sim engine) =="
build/examples/sim_demo
echo

if ! build/crac --version | grep -qw image; then
	echo "== 2. cold start vs restore: SKIPPED =="
	echo "the image engine is not in this build yet (see crac --version); the demo above used the sim engine"
	exit 0
fi

img=$(mktemp -d /tmp/crac-demo.XXXXXX)
trap 'rm -rf "$img"' EXIT
ms() { echo "$1 $2" | awk '{ printf "%.1f", ($2 - $1) / 1e6 }'; }
field() { echo "$1" | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }

echo "== 2. cold start vs restore (image engine) =="
t0c=$(date +%s%N)
cold=$(build/examples/warmup)
cold_ms=$(ms "$t0c" "$(field "$cold" t_ready_ns)")

build/examples/warmup --checkpoint "$img/image" >/dev/null
size=$(du -sh "$img/image" | cut -f1)

t0=$(date +%s%N)
restored=$(build/crac restore "$img/image")
restore_ms=$(ms "$t0" "$(field "$restored" t_ready_ns)")

cold_sum_ms=$(ms "$t0c" "$(field "$cold" t_sum_ns)")
restore_sum_ms=$(ms "$t0" "$(field "$restored" t_sum_ns)")

printf '%-22s %12s %28s   %s\n' "" "ready to serve" "and the whole index read" ""
printf '%-22s %9s ms %25s ms   checksum %s\n' "cold start (warm-up)" "$cold_ms" "$cold_sum_ms" "$(field "$cold" checksum)"
printf '%-22s %9s ms %25s ms   checksum %s   (image %s)\n' "crac restore" "$restore_ms" "$restore_sum_ms" \
	"$(field "$restored" checksum)" "$size"
if [ "$(field "$cold" checksum)" = "$(field "$restored" checksum)" ]; then
	echo "the restored index is identical to the one built cold ($(field "$restored" words) words)"
else
	echo "CHECKSUM MISMATCH: the restored state differs" >&2
	exit 1
fi
