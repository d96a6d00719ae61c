#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/side.sh BUILD OUT [DOC] - crac and CRIU side by side (bench/side.py
# does the work; default DOC docs/bench-side.md, plots next to it).
#
# CRIU is used only when CRAC_BENCH_CRIU names a criu binary that runs as
# root and passes `criu check`; otherwise this prints
#   CRIU: skipped (CRAC_BENCH_CRIU unset / not working: REASON)
# and measures crac alone.
#
# CRIU keeps what it learns about the kernel (kerndat) in /run/criu.kdat,
# but only when /run is a tmpfs; elsewhere every criu command probes the
# kernel again (about 0.1-0.2 s here). Where /run is not a tmpfs, the
# benchmark (crac included) runs in a private mount namespace with a tmpfs
# on /run, so that CRIU is measured as it runs on a usual system; the
# document says so.
set -eu
build=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
cd "$(dirname "$0")/.."
doc=${3:-$(pwd)/docs/bench-side.md}
for f in "$build/crac" "$build/bench/heap_serve" "$build/bench/warm"; do
	[ -x "$f" ] || { echo "side.sh: $f missing (build first)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "side.sh: needs python3 (the driver)" >&2; exit 1; }

criu=${CRAC_BENCH_CRIU:-}
why=""
if [ -z "$criu" ]; then
	why="CRAC_BENCH_CRIU unset"
elif [ "$(id -u)" -ne 0 ]; then
	why="not working: CRIU needs root, this is uid $(id -u)"
elif ! [ -x "$criu" ]; then
	why="not working: $criu is not an executable"
elif ! msg=$("$criu" check 2>&1); then
	why="not working: \`criu check\` says: $(echo "$msg" | grep -m1 -i error || echo "$msg" | tail -n 1)"
fi
if [ -n "$why" ]; then
	echo "CRIU: skipped ($why)" >&2
	export CRAC_BENCH_SIDE_CRIU_WHY="$why"
	unset CRAC_BENCH_CRIU
	exec python3 bench/side.py "$build" "$out" "$doc"
fi
export CRAC_BENCH_CRIU="$(cd "$(dirname "$criu")" && pwd)/$(basename "$criu")"
echo "CRIU: $("$criu" --version | head -n 1) ($CRAC_BENCH_CRIU)" >&2
if [ "$(stat -f -c %T /run 2>/dev/null)" != tmpfs ] && command -v unshare >/dev/null; then
	export CRAC_BENCH_SIDE_CRIU_NOTE="; /run is not a tmpfs on this machine, so CRIU could not keep its kernel-feature cache (criu.kdat) and would probe the kernel again in every command: the whole benchmark ran in a private mount namespace with a tmpfs on /run, as on a usual system"
	exec unshare -m --propagation private sh -c \
		'mount -t tmpfs -o mode=0755 crac-bench-run /run && exec python3 bench/side.py "$@"' side "$build" "$out" "$doc"
fi
exec python3 bench/side.py "$build" "$out" "$doc"
