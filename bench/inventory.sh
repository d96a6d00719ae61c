#!/bin/sh
# bench/inventory.sh BUILD OUT - the inventory with many descriptors.
set -eu
build=$1
out=$2
"$build/bench/inventory_fds" >"$out/inventory.dat"
echo "== safety-check inventory vs open descriptors (crac_check, median of 7) =="
printf '%8s %12s %10s %10s\n' fds median_ms min_ms problems
grep -v '^#' "$out/inventory.dat" | while read -r n med min p; do
	printf '%8s %12s %10s %10s\n' "$n" "$med" "$min" "$p"
done
gnuplot <<GP
set terminal pngcairo size 800,480 noenhanced
set output "docs/bench-inventory.png"
set title "crac_check(): inventory time vs open descriptors"
set logscale xy
set xlabel "open file descriptors"
set ylabel "milliseconds (median of 7)"
set grid
plot "$out/inventory.dat" using 1:2 with linespoints lw 2 title "crac_check()"
GP
echo "plot: docs/bench-inventory.png"
