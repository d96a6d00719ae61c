#!/bin/bash
# SPDX-License-Identifier: MIT
# make_corpus.sh BUILD_DIR [OUT_DIR]
#
# Seeds for fuzz_image from a real image: checkpoints tests/progs/image_probe
# with the image engine (as tests/cli/image_refuse.bats does) and writes
# OUT_DIR/seed-probe-*: the image's header with the pages that hold its
# resume block, with each flag of the target (tests/fuzz/fuzz_image.c) once,
# since mutations rarely touch the first byte:
#   fix          0x01  size and crc recomputed by the target (mutations reach the checks)
#   raw          0x00  parsed as is (its checksum is right)
#   mode         0x03  fix, header group-writable (the owner check refuses)
#   trust        0x05  fix, --trust-owner
#   msg64, msg1, msg0  0x09, 0x11, 0x19: fix, message buffer of 64, 1, 0 bytes
#   pages-missing, pages-link, pages-fifo  0x21, 0x41, 0x61: fix, DIR/pages is
#                      not a regular file (crac_img_open refuses; no page data)
#   small-cap    0x81  fix, header buffer too small (refused; no page data)
# and OUT_DIR/seed-fds-*: seed-probe-raw with descriptors added (a device,
# a dup, a directory, a FIFO, a file, a symbolic link: driver.c), and
# OUT_DIR/seed-signals-{fix,raw}: an image of tests/progs/pending_signals,
# whose header holds six pending signals (format 6).
# BUILD_DIR is a normal (gcc) build with tests: it has tests/image_probe and
# tests/fuzz/fuzz_image_regress. OUT_DIR defaults to tests/fuzz/corpus.
set -eu

build=${1:?usage: make_corpus.sh BUILD_DIR [OUT_DIR]}
here=$(cd "$(dirname "$0")" && pwd)
out=${2:-$here/corpus}
probe=$build/tests/image_probe
pending=$build/tests/pending_signals
regress=$build/tests/fuzz/fuzz_image_regress
for f in "$probe" "$pending" "$regress"; do
	[ -x "$f" ] || { echo "make_corpus.sh: $f not built" >&2; exit 1; }
done

t=$(mktemp -d /tmp/crac-fuzz-corpus.XXXXXX)
trap 'rm -rf "$t"' EXIT
mkdir "$t/work"
head -c 20000 /dev/urandom >"$t/data.bin"
printf '%s\n' 'file * reopen' 'dir * reopen' >"$t/policies"
unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOADER

# The checkpoint refuses open descriptors it cannot save: close all but 0-2.
(
	for fd in $(ls /proc/$BASHPID/fd); do
		if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
	done
	# descriptors the image carries (the fds check): a file, a directory,
	# (devices and FIFOs once the checkpoint carries them)
	exec 3<"$t/data.bin" 4<"$t/work"
	export CRAC_POLICIES=$t/policies
	exec "$probe" "$t/img" "$t/work" --map "$t/data.bin"
) </dev/null >"$t/out" 2>"$t/err" || {
	echo "make_corpus.sh: image_probe failed to checkpoint:" >&2
	cat "$t/out" "$t/err" >&2
	exit 1
}

mkdir -p "$out"
for s in fix:0x01 raw:0x00 mode:0x03 trust:0x05 msg64:0x09 msg1:0x11 msg0:0x19 \
	pages-missing:0x21 pages-link:0x41 pages-fifo:0x61 small-cap:0x81; do
	"$regress" --make-seed "$t/img" "$out/seed-probe-${s%%:*}" "${s#*:}"
done
# descriptors of every kind the fds check looks at, added by hand
"$regress" --make-fd-seeds "$out/seed-probe-raw" "$out"
# pending signals, for and by threads and the process
(
	for fd in $(ls /proc/$BASHPID/fd); do
		if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
	done
	exec "$pending" "$t/img-signals"
) </dev/null >"$t/out" 2>"$t/err" || {
	echo "make_corpus.sh: pending_signals failed:" >&2
	cat "$t/out" "$t/err" >&2
	exit 1
}
for s in fix:0x01 raw:0x00; do
	"$regress" --make-seed "$t/img-signals" "$out/seed-signals-${s%%:*}" "${s#*:}"
done
ls -l "$out"/seed-*
