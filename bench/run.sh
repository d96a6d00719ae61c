#!/bin/sh
# bench/run.sh - builds crac (Release) and runs every benchmark, prints a
# table per benchmark and writes PNG plots into docs/ (gnuplot, installed
# from Debian's packages if missing).
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
if ! command -v gnuplot >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
	$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq gnuplot-nox >/dev/null
fi
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
out=build-bench/results
mkdir -p "$out" docs

for script in bench/*.sh; do
	[ "$script" = bench/run.sh ] && continue
	sh "$script" build-bench "$out"
done
