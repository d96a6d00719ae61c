#!/bin/sh
# SPDX-License-Identifier: MIT
# test.sh - builds crac and runs every test: the normal build (optimised,
# warnings are errors: some show only when optimising; unit, CLI,
# end-to-end and zoo tests), then the unit tests and the image engine's
# end-to-end tests again under AddressSanitizer and UBSan (the image engine
# checkpoints and restores ASan-built programs too), then a short fuzzing
# run of the image parser and a clang build (-Werror; unit and loader
# tests) when clang is there. Exit status 0 only if
# everything passed.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS=-Werror >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCRAC_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	ctest --output-on-failure -j"$jobs" -L unit)
# The image engine's tests whose programs link libcrac (ASan-built
# programs checkpointed and restored, descriptors carried). Their programs
# keep memory on purpose until they exit: no leak report there; every other
# ASan and UBSan check stays on. (Tests that start programs with `crac run`
# cannot run here: LD_PRELOAD of an ASan-built libcrac into a program
# without ASan is refused by ASan itself; others check layouts, like
# [heap], that ASan's allocator changes.)
(cd build-asan && ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
	ctest --output-on-failure -j"$jobs" -R 'cli\.(image_(trust|target|stdio|sync|compress_lazy|incremental_near)|objects_)')

if command -v clang >/dev/null 2>&1; then
	# The project builds with clang too, warning-free (-Werror), and its
	# unit tests and the loader's end-to-end tests pass with that build.
	CC=clang cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS=-Werror >/dev/null
	cmake --build build-clang -j"$jobs"
	(cd build-clang && ctest --output-on-failure -j"$jobs" -L unit &&
		ctest --output-on-failure -j"$jobs" -R 'cli\.(image_restore|image_lazy|loader_fill|front)$')
	sh tests/fuzz/run.sh 30
else
	echo "test.sh: clang not found: the fuzzing run is skipped (the corpus ran in ctest)"
fi
