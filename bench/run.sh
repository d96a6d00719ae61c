#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/run.sh [--quick] - builds crac (Release, in build-bench/) and runs
# every benchmark; each rewrites its document in docs/ (bench-*.md, with
# the date, the commit, the machine load and nproc) and its PNG plot
# (gnuplot, installed from Debian's packages if missing):
#   image.sh       heap sizes 16 MiB .. 4 GiB: checkpoint, restore, touch  -> docs/bench-image.md
#   checkpoint.sh  the first checkpoint of a fresh process, writers, disk  -> docs/bench-checkpoint.md
#   restore.sh     the floor, python3, eager restore vs its bound          -> docs/bench-restore.md
#   zoo.sh         the program zoo: cold start vs restore                  -> docs/bench-zoo.md
#   side.sh        side by side with CRIU (zoo programs, heaps, eager vs
#                  lazy, incremental vs full)                               -> docs/bench-side.md
#   start.sh       crac start cold/warm vs the plain program, page faults
#                  and their bound                                          -> docs/bench-start.md
#   inventory.sh   safety-check inventory vs open descriptors               -> docs/bench-inventory.png
#
# --quick: few runs and small heaps (about ten minutes; to check that
# everything works, not for the figures). The documents say which.
#
# CRIU: when CRAC_BENCH_CRIU names a criu binary that passes `criu check`
# (as root), checkpoint.sh and side.sh measure it in the same run; otherwise
# "CRIU: skipped (REASON)" is printed and the CRIU columns stay empty.
# Other environment: see each script (CRAC_BENCH_TMPDIR, CRAC_BENCH_*_REPS...).
set -eu
cd "$(dirname "$0")/.."
quick=0
case "${1:-}" in
--quick) quick=1 ;;
"") ;;
*) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
esac
sh scripts/deps.sh
if ! command -v gnuplot >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
	$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq gnuplot-nox >/dev/null
fi
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
out=build-bench/results
mkdir -p "$out" docs

# CRIU, once for every script: kept only if it works
if [ -n "${CRAC_BENCH_CRIU:-}" ]; then
	why=""
	if [ "$(id -u)" -ne 0 ]; then
		why="CRIU needs root, this is uid $(id -u)"
	elif ! [ -x "$CRAC_BENCH_CRIU" ]; then
		why="$CRAC_BENCH_CRIU is not an executable"
	elif ! msg=$("$CRAC_BENCH_CRIU" check 2>&1); then
		why="\`criu check\` says: $(echo "$msg" | grep -m1 -i error || echo "$msg" | tail -n 1)"
	fi
	if [ -n "$why" ]; then
		echo "CRIU: skipped (CRAC_BENCH_CRIU not working: $why)" >&2
		export CRAC_BENCH_SIDE_CRIU_WHY="CRAC_BENCH_CRIU not working: $why"
		unset CRAC_BENCH_CRIU
	else
		echo "CRIU: $("$CRAC_BENCH_CRIU" --version | head -n 1) ($CRAC_BENCH_CRIU)" >&2
	fi
else
	echo "CRIU: skipped (CRAC_BENCH_CRIU unset)" >&2
fi

if [ "$quick" = 1 ]; then
	# each only where the caller did not choose
	export CRAC_BENCH_QUICK=1
	: "${CRAC_BENCH_IMAGE_SIZES:=16 256}" "${CRAC_BENCH_IMAGE_REPS:=2}" "${CRAC_BENCH_IMAGE_CKPTS:=2}"
	: "${CRAC_BENCH_CKPT_MIB:=256}" "${CRAC_BENCH_CKPT_REPS:=1}"
	: "${CRAC_BENCH_RESTORE_REPS:=2}" "${CRAC_BENCH_RESTORE_BIG_REPS:=1}" "${CRAC_BENCH_RESTORE_SIZES:=16 256}"
	: "${CRAC_BENCH_ZOO_REPS:=2}" "${CRAC_BENCH_INVENTORY_MAX:=1000}"
	export CRAC_BENCH_IMAGE_SIZES CRAC_BENCH_IMAGE_REPS CRAC_BENCH_IMAGE_CKPTS CRAC_BENCH_CKPT_MIB \
		CRAC_BENCH_CKPT_REPS CRAC_BENCH_RESTORE_REPS CRAC_BENCH_RESTORE_BIG_REPS CRAC_BENCH_RESTORE_SIZES \
		CRAC_BENCH_ZOO_REPS CRAC_BENCH_INVENTORY_MAX
	start_runs=3 incr_mib=256 incr_reps=2
else
	start_runs=10 incr_mib=1024 incr_reps=7
fi

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "== bench/run.sh$( [ "$quick" = 1 ] && echo " --quick"): $(nproc) cores, Linux $(uname -r), load $(load)" >&2
failed=""
step() {  # step NAME CMD...: runs one benchmark; a failure is reported, the rest still run
	name=$1
	shift
	echo "== $name (load $(load))" >&2
	"$@" || {
		echo "== $name FAILED (exit status $?)" >&2
		failed="$failed $name"
	}
}
step image.sh sh bench/image.sh build-bench "$out"
step checkpoint.sh sh bench/checkpoint.sh build-bench "$out"
step restore.sh bash bench/restore.sh build-bench "$out"
step zoo.sh bash bench/zoo.sh build-bench
step side.sh sh bench/side.sh build-bench "$out"
step start.sh bash bench/start.sh build-bench "$start_runs"
step incremental.sh sh bench/incremental.sh build-bench "$incr_mib" 10 "$incr_reps" docs/bench-incremental.md
step inventory.sh sh bench/inventory.sh build-bench "$out"
echo "== done (load $(load))${failed:+; FAILED:$failed}" >&2
[ -z "$failed" ]
