#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/inventory.sh BUILD OUT - the inventory with many descriptors.
#
# Environment (all optional):
#   CRAC_BENCH_INVENTORY_MAX      largest number of descriptors (10, 100, 1000,
#                                 10000; default 10000)
#   CRAC_BENCH_INVENTORY_TIMEOUT  seconds for the whole measurement (default
#                                 180); the sizes not reached by then are left
#                                 out, and said so
set -eu
build=$1
out=$2
max=${CRAC_BENCH_INVENTORY_MAX:-10000}
limit=${CRAC_BENCH_INVENTORY_TIMEOUT:-180}
echo "== safety-check inventory vs open descriptors (crac_check, median of 7; up to $max, at most $limit s) =="
rc=0
timeout "$limit" "$build/bench/inventory_fds" "$max" >"$out/inventory.dat" || rc=$?
printf '%8s %12s %10s %10s\n' fds median_ms min_ms problems
grep -v '^#' "$out/inventory.dat" | while read -r n med min p; do
	printf '%8s %12s %10s %10s\n' "$n" "$med" "$min" "$p"
done
title="crac_check(): inventory time vs open descriptors (load $(cut -d' ' -f1 /proc/loadavg), $(nproc) cores)"
if [ "$rc" -eq 124 ]; then
	echo "inventory.sh: stopped after $limit s: the larger sizes are missing (crac_check is that slow there)" >&2
	title="$title; stopped after $limit s"
elif [ "$rc" -ne 0 ]; then
	echo "inventory.sh: inventory_fds failed (exit status $rc)" >&2
fi
if [ "$(grep -vc '^#' "$out/inventory.dat")" -gt 0 ]; then
	gnuplot <<GP
set terminal pngcairo size 800,480 noenhanced
set output "docs/bench-inventory.png"
set title "$title"
set logscale xy
set xlabel "open file descriptors"
set ylabel "milliseconds (median of 7)"
set grid
plot "$out/inventory.dat" using 1:2 with linespoints lw 2 title "crac_check()"
GP
	echo "plot: docs/bench-inventory.png"
fi
[ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]
