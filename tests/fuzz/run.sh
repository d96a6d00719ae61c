#!/bin/sh
# SPDX-License-Identifier: MIT
# run.sh [SECONDS [LIBFUZZER OPTIONS...]]
#
# Builds fuzz_image with clang and libFuzzer (build dir $CRAC_FUZZ_BUILD,
# default build-fuzz-clang next to the sources) and fuzzes for SECONDS
# (default 60). New inputs go to a work corpus ($CRAC_FUZZ_WORK, default
# BUILD/fuzz-corpus), seeded from tests/fuzz/corpus, which is only read;
# crashes, hangs and leaks land in BUILD/artifacts/. Exit status non-zero
# if libFuzzer found something. See README.md for long runs.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${CRAC_FUZZ_BUILD:-$src/build-fuzz-clang}
secs=${1:-60}
[ $# -gt 0 ] && shift
work=${CRAC_FUZZ_WORK:-$build/fuzz-corpus}

cc=${CC:-clang}
case $cc in *clang*) ;; *) cc=clang ;; esac
command -v "$cc" >/dev/null || { echo "run.sh: $cc not found (libFuzzer needs clang)" >&2; exit 1; }

# Only the fuzzer is built: the rest of the project need not build with clang.
CC=$cc cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
	-DCRAC_FUZZ=ON >/dev/null
cmake --build "$build" --target fuzz_image -j"$(nproc)" >/dev/null

mkdir -p "$work" "$build/artifacts"
# -timeout: an input that runs for over 10 s is reported as a hang (a check
# never blocks); -rss_limit_mb: the target allocates at most a few MiB.
exec "$build/tests/fuzz/fuzz_image" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	-dict="$here/fuzz_image.dict" -artifact_prefix="$build/artifacts/" -print_final_stats=1 \
	"$@" "$work" "$here/corpus"
