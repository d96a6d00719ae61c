#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/image.sh BUILD OUT - the image engine with 16 MiB .. 4 GiB dirty heaps
# (DESIGN §7): checkpoint time and rate, image size, restore latency (from
# the spawn of `crac restore` to the first after_restore callback), and the
# time for the restored program to read and then write all of its heap,
# against a never-restored process. Prints a markdown table and the goals,
# writes docs/bench-image.md and docs/bench-image.png.
#
# Environment (all optional):
#   CRAC_BENCH_IMAGE_SIZES   heap sizes in MiB (default "16 256 1024 4096")
#   CRAC_BENCH_IMAGE_REPS    timed restores / fresh runs per size (default 5)
#   CRAC_BENCH_IMAGE_CKPTS   checkpoints per size (default 5)
#   CRAC_BENCH_TMPDIR        where the images go (default $TMPDIR or /tmp)
set -eu
build=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
cd "$(dirname "$0")/.."

sizes=${CRAC_BENCH_IMAGE_SIZES:-16 256 1024 4096}
reps=${CRAC_BENCH_IMAGE_REPS:-5}
ckpts=${CRAC_BENCH_IMAGE_CKPTS:-5}
bin=$build/bench/image_heap
crac=$build/crac
for f in "$bin" "$crac" "$build/crac-loader"; do
	[ -x "$f" ] || { echo "image.sh: $f missing (build first)" >&2; exit 1; }
done

tmp=$(mktemp -d "${CRAC_BENCH_TMPDIR:-${TMPDIR:-/tmp}}/crac-bench-image.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

dat=$out/image.dat
rows=$tmp/rows.md
notes=$tmp/notes.md
: >"$rows"
: >"$notes"
echo "# mib ckpt_ms ckpt_gibs du_mib apparent_mib restore_cb_ms restore_ret_ms loader_ms r_read_ms r_write_ms f_first_write_ms f_read_ms f_write_ms" >"$dat"

median() {
	sort -g | awk '{ a[NR] = $1 } END {
		if (NR == 0) print "-";
		else if (NR % 2) print a[(NR + 1) / 2];
		else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
minmax() {
	sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%s–%s", lo, hi; else print "-" }'
}
kv() {  # kv KEY FILE: value of KEY=... on the last line that has it
	sed -n "s/.*[ ^]$1=\([^ ]*\).*/\1/p; s/^$1=\([^ ]*\).*/\1/p" "$2" | tail -n 1
}
fmt_size() {
	if [ "$1" -ge 1024 ]; then echo "$(($1 / 1024)) GiB"; else echo "$1 MiB"; fi
}
note() {
	echo "$*" | tee -a "$notes" >&2
}
skip_row() {  # skip_row MIB REASON
	printf '| %s | %s |\n' "$(fmt_size "$1")" "$2" >>"$rows"
}

# The disk's own rate for a durable write (what an fsync'd image is bound by):
# 1 GiB of zeros with dd conv=fdatasync, twice, the better one.
disk=$(for k in 1 2; do
	dd if=/dev/zero of="$tmp/dd" bs=1M count=1024 conv=fdatasync 2>&1 | tail -n 1 |
		awk '{ for (i = 1; i < NF; i++) if ($i == "s,") print 1 / $(i - 1) }'
	rm -f "$tmp/dd"
done | sort -g | tail -n 1)
disk=$(awk -v d="${disk:-0}" 'BEGIN { printf "%.2f", d }')

load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== image engine: checkpoint / restore vs heap size (restores: median of $reps, checkpoints: median of $ckpts; image in page cache) =="
for mib in $sizes; do
	name=$(fmt_size "$mib")
	img=$tmp/img-$mib
	# Space: the image plus the previous one while the next checkpoint
	# replaces it (removed first here, but keep a margin); 10 GiB for 4 GiB.
	need=$((mib * 5 / 2))
	[ "$mib" -ge 4096 ] && [ "$need" -lt 10240 ] && need=10240
	avail=$(df -Pk "$tmp" | awk 'NR == 2 { print int($4 / 1024) }')
	if [ "$avail" -lt "$need" ]; then
		note "- $name skipped: $avail MiB free on $(df -P "$tmp" | awk 'NR == 2 { print $6 }') (needs $need MiB)"
		skip_row "$mib" "skipped: only $avail MiB free disk (needs $need MiB)"
		continue
	fi
	# Memory: the heap, the image in the page cache and a restored copy.
	memav=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
	if [ "$memav" -lt $((mib * 3 + 512)) ]; then
		note "- $name skipped: MemAvailable $memav MiB (needs $((mib * 3 + 512)) MiB)"
		skip_row "$mib" "skipped: MemAvailable $memav MiB (needs $((mib * 3 + 512)) MiB)"
		continue
	fi

	# -- checkpoint (CRAC_KEEP_RUNNING: the call returns once the image is committed)
	if ! timeout 900 "$bin" checkpoint "$img" "$mib" "$ckpts" >"$tmp/ck.out" 2>"$tmp/ck.err" ||
		[ "$(grep -c '^ckpt ' "$tmp/ck.out")" -ne "$ckpts" ]; then
		err=$(grep -v '^$' "$tmp/ck.err" | tr '\n' ' ' | cut -c1-400)
		note "- $name: checkpoint FAILED: ${err:-exit status, no message}"
		skip_row "$mib" "checkpoint failed: ${err:-no message}"
		rm -rf "$img"
		continue
	fi
	sed -n 's/^ckpt .* ms=//p' "$tmp/ck.out" >"$tmp/ck.ms"
	ck_ms=$(median <"$tmp/ck.ms")
	ck_range=$(minmax <"$tmp/ck.ms")
	ck_gibs=$(awk -v m="$mib" -v t="$ck_ms" 'BEGIN { printf "%.2f", (m / 1024) / (t / 1000) }')
	du_mib=$(du -sk "$img" | awk '{ printf "%.1f", $1 / 1024 }')
	app_mib=$(du -sk --apparent-size "$img" | awk '{ printf "%.1f", $1 / 1024 }')

	# -- restores and fresh runs, interleaved; one untimed warm-up of each
	#    (first touch of memory the VM gave back is slower)
	for f in r_cb r_ret r_load r_read r_write r_mibread f_first f_read f_write; do : >"$tmp/$f"; done
	rfail=""
	i=0
	while [ "$i" -le "$reps" ]; do
		if [ -z "$rfail" ]; then
			if timeout 600 "$bin" spawn "$crac" restore --stats "$img" >"$tmp/r.out" 2>"$tmp/r.err" &&
				[ "$(kv sum "$tmp/r.out")" = ok ] && [ -n "$(kv cb_ns "$tmp/r.out")" ]; then
				if [ "$i" -gt 0 ]; then
					sp=$(kv spawn_ns "$tmp/r.out")
					awk -v a="$(kv cb_ns "$tmp/r.out")" -v s="$sp" 'BEGIN { printf "%.3f\n", (a - s) / 1e6 }' >>"$tmp/r_cb"
					awk -v a="$(kv ret_ns "$tmp/r.out")" -v s="$sp" 'BEGIN { printf "%.3f\n", (a - s) / 1e6 }' >>"$tmp/r_ret"
					kv read_ms "$tmp/r.out" >>"$tmp/r_read"
					kv write_ms "$tmp/r.out" >>"$tmp/r_write"
					sed -n 's/.*restore stats: loader \([0-9.]*\) ms.*/\1/p' "$tmp/r.err" >>"$tmp/r_load"
					sed -n 's/.*restore stats: .*(\([0-9.]*\) MiB read.*/\1/p' "$tmp/r.err" >>"$tmp/r_mibread"
				fi
			else
				err=$(cat "$tmp/r.err" "$tmp/r.out" | grep -v '^$' | tr '\n' ' ' | cut -c1-400)
				rfail="restore failed: ${err:-no message}"
				note "- $name: $rfail"
			fi
		fi
		if timeout 600 "$bin" fresh "$mib" >"$tmp/f.out" 2>"$tmp/f.err" && [ "$(kv sum "$tmp/f.out")" = ok ]; then
			if [ "$i" -gt 0 ]; then
				kv first_write_ms "$tmp/f.out" >>"$tmp/f_first"
				kv read_ms "$tmp/f.out" >>"$tmp/f_read"
				kv write_ms "$tmp/f.out" >>"$tmp/f_write"
			fi
		else
			note "- $name: fresh run failed: $(cat "$tmp/f.err" | tr '\n' ' ' | cut -c1-300)"
		fi
		i=$((i + 1))
	done
	rm -rf "$img"

	r_cb=$(median <"$tmp/r_cb"); r_cb_range=$(minmax <"$tmp/r_cb")
	r_ret=$(median <"$tmp/r_ret"); r_load=$(median <"$tmp/r_load")
	r_mibread=$(median <"$tmp/r_mibread")
	r_read=$(median <"$tmp/r_read"); r_write=$(median <"$tmp/r_write")
	f_first=$(median <"$tmp/f_first"); f_read=$(median <"$tmp/f_read"); f_write=$(median <"$tmp/f_write")

	if [ "$r_cb" = - ]; then
		v_rest="MISS (failed)"; v_touch="-"
	else
		v_rest=$(awk -v t="$r_cb" 'BEGIN { print (t <= 5) ? "PASS" : "MISS" }')
		# the restored program's first pass over its heap (read all):
		# with a lazy restore, that is where the pages come in
		v_touch=$(awk -v r="$r_read" -v w="$r_write" -v f="$f_first" 'BEGIN {
			t = (r > w) ? r : w
			if (f == "-" || f <= 0) print "-"; else printf "%s (%.2f×)", (t <= 1.5 * f) ? "PASS" : "MISS", t / f }')
	fi
	v_ck=$(awk -v g="$ck_gibs" 'BEGIN { print (g >= 2.5) ? "PASS" : "MISS" }')

	printf '| %s | %s (%s) | %s | %s / %s | %s (%s) | %s | %s / %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
		"$name" "$ck_ms" "$ck_range" "$ck_gibs" "$du_mib" "$app_mib" "$r_cb" "$r_cb_range" "$r_ret" \
		"$r_load" "$r_mibread" "$r_read" "$r_write" "$f_read" "$f_write" "$f_first" \
		"$v_rest" "$v_ck" "$v_touch" >>"$rows"
	[ "$r_cb" = - ] || echo "$mib $ck_ms $ck_gibs $du_mib $app_mib $r_cb $r_ret $r_load $r_read $r_write $f_first $f_read $f_write" >>"$dat"
	echo "  $name done" >&2
done

load1=$(cut -d' ' -f1-3 /proc/loadavg)

# -- the table
table=$tmp/table.md
{
	echo "| heap | checkpoint ms (min–max) | checkpoint GiB/s | image du / apparent MiB | restore ms → 1st after_restore (min–max) | restore ms → call returns | loader ms / MiB read (--stats) | restored: read all ms | restored: write all ms | fresh: read all ms | fresh: write all ms | fresh: first write ms | restore ≤ 5 ms | checkpoint ≥ 2.5 GiB/s | restored touch (slower of read all / write all) ≤ 1.5× fresh first write |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	cat "$rows"
} >"$table"

# -- goals over the whole run
goal=$tmp/goal.md
awk -v reps="$reps" '
	!/^#/ { n++; mib[n] = $1; r[n] = $6; g[n] = $3 }
	END {
		print "Goals (issue): Restore ≤ 5 ms for a 1 GiB heap and flat in heap size; checkpoint ≥ 2.5 GiB/s"
		print "Goal (DESIGN §7): the write-touch cost after restore within 1.5× of a fresh process (fresh anonymous pages)"
		print ""
		one = 0
		for (i = 1; i <= n; i++) if (mib[i] == 1024) one = i
		if (one) printf "- 1 GiB restore: %s ms (median of %d) → %s\n", r[one], reps, (r[one] <= 5) ? "PASS" : "MISS"
		else print "- 1 GiB restore: not measured → MISS"
		if (n >= 2) {
			ratio = r[n] / r[1]
			flat = (r[n] <= 2 * r[1] || r[n] - r[1] <= 1)
			printf "- flat in heap size (largest ≤ 2× smallest, or within 1 ms): %s ms at %d MiB vs %s ms at %d MiB (%.1f×) → %s\n",
				r[n], mib[n], r[1], mib[1], ratio, flat ? "PASS" : "MISS"
		}
		all = 1; worst = 1e9
		for (i = 1; i <= n; i++) { if (g[i] < 2.5) all = 0; if (g[i] < worst) worst = g[i] }
		if (n) printf "- checkpoint ≥ 2.5 GiB/s at every size: slowest %.2f GiB/s → %s\n", worst, all ? "PASS" : "MISS"
		printf "- for reference, this disk writes %s GiB/s durably (1 GiB, dd conv=fdatasync, best of 2): an fsync'"'"'d image cannot be written faster\n", disk
	}' disk="$disk" "$dat" >"$goal"

echo
cat "$table"
echo
cat "$goal"
[ -s "$notes" ] && { echo; cat "$notes"; }

# -- docs/bench-image.md
kernel=$(uname -r)
# Which sources the measured build came from (the build's own source tree).
srcdir=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt" 2>/dev/null)
if [ -n "$srcdir" ] && commit=$(git -C "$srcdir" rev-parse --short HEAD 2>/dev/null); then
	srcnote="commit $commit"
	git -C "$srcdir" diff --quiet HEAD -- src include 2>/dev/null ||
		srcnote="$srcnote plus uncommitted changes in src/ or include/"
else
	srcnote="${srcdir:-an unknown source tree}"
fi
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
fs=$(df -PT "$tmp" | awk 'NR == 2 { print $2 " on " $1 }')
{
	echo "# Image engine: checkpoint and restore vs heap size"
	echo
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/image.sh\` (run by \`bench/run.sh\`${CRAC_BENCH_QUICK:+ --quick: few runs, small heaps}); crac built from $srcnote."
	echo
	echo "Machine: Linux $kernel, $cpu, $(nproc) cores, $mem RAM; images on $fs."
	echo "Machine load (/proc/loadavg, 1/5/15 min): $load0 at the start, $load1 at the end, on $(nproc) cores (a load above the cores stretches every time here by the wait for a CPU)."
	echo
	echo "How:"
	echo "- The heap is one malloc() block (one anonymous mapping), every 8-byte word a different non-zero value, so every page is dirty."
	echo "- Checkpoint: \`crac_checkpoint_restore()\` with engine \"image\" and CRAC_KEEP_RUNNING, timed from just before the call to its CRAC_CONTINUED return (image written, fsync'd, renamed); median of $ckpts, the previous image removed and \`sync\` done before each. GiB/s = heap size / that time."
	echo "- Image size: \`du -s\` (blocks) / \`du -s --apparent-size\` of the image directory."
	echo "- Restore: a small driver takes CLOCK_MONOTONIC right before posix_spawn of \`crac restore --stats DIR\`; the restored program takes CLOCK_MONOTONIC first thing in an after_restore callback registered above every built-in priority (it runs first), and again when \`crac_checkpoint_restore()\` returns CRAC_RESTORED. CLOCK_MONOTONIC is system-wide, so the two subtract. Median of $reps, after one untimed restore."
	echo "- The image is in the page cache (warm): caches are not dropped (drop_caches needs root, which this benchmark does not require); the checkpoint has just written it."
	echo "- Touch: the restored program then reads every word (sum checked against the one taken before the checkpoint) and writes every byte (memset). A fresh, never-restored process with the same heap does the same passes (\"fresh: read/write all\", its heap resident), and \"fresh: first write\" is its first write to the newly allocated heap (fresh anonymous pages: what building the heap costs). The 1.5× goal compares the slower of the restored program's two passes (after a lazy restore the first pass, read all, is where the pages come in) with that first write. Fresh runs are interleaved with the restores, median of $reps after one untimed run."
	echo "- Lazy restore (the default here: the benchmark runs as root, so the loader gets a userfaultfd that handles kernel faults): the loader registers the heap with userfaultfd and reads nothing of it; the restored process's crac-lazy thread loads it on demand and, once the restore path is through, in the background. \"restore ms\" therefore does not include loading the heap; \"restored: read all\" does (the program reads while the background load runs ahead of it)."
	echo "- \"loader ms / MiB read\" come from \`--stats\` (the loader's own time, and the page data it read eagerly: equal to the image when restore is eager, near 0 when lazy)."
	echo "- When the loader reads every stored page (MiB read = image size: an eager restore), bringing the heap in is inside the restore time and the touch passes afterwards run on resident memory; a lazy restore moves that cost into the touch passes, which is why both are reported."
	echo "- This VM gives freed memory back to the host (free page reporting): the first touch of such memory is several times slower, and it hits whatever allocates fresh pages (the page cache for a new image, an eager restore, a fresh heap). Hence the wide min–max ranges; medians are reported."
	echo
	cat "$table"
	echo
	cat "$goal"
	if [ -s "$notes" ]; then
		echo
		echo "Notes:"
		cat "$notes"
	fi
	echo
	echo "![plot](bench-image.png)"
} >docs/bench-image.md

# -- docs/bench-image.png
if [ "$(grep -vc '^#' "$dat")" -gt 0 ]; then
	xtics=$(awk '!/^#/ { printf "%s%s", sep, $1; sep = ", " }' "$dat")
	xlo=$(awk '!/^#/ { print $1 / 1.6; exit }' "$dat")
	xhi=$(awk '!/^#/ { m = $1 } END { print m * 1.6 }' "$dat")
	gmax=$(awk 'BEGIN { m = 3 } !/^#/ && $3 * 1.2 > m { m = $3 * 1.2 } END { print m }' "$dat")
	gnuplot <<GP
set terminal pngcairo size 1500,480 noenhanced
set datafile missing "-"
set output "docs/bench-image.png"
set multiplot layout 1,3 title "crac image engine vs heap size (image in page cache; medians)"
set logscale x 2
set xtics ($xtics)
set xrange [$xlo:$xhi]
set xlabel "heap (MiB)"
set grid
set key top left Left reverse
set title "restore: spawn of crac restore -> first after_restore"
set logscale y
set ylabel "milliseconds"
plot "$dat" using 1:6 with linespoints lw 2 title "restore", \
     "$dat" using 1:8 with linespoints lw 1 title "loader (--stats)", \
     5 with lines dt 2 lw 2 title "goal 5 ms"
set title "checkpoint rate (dirty heap / time)"
unset logscale y
set yrange [0:$gmax]
set ylabel "GiB/s"
plot "$dat" using 1:3 with linespoints lw 2 title "checkpoint", \
     2.5 with lines dt 2 lw 2 title "goal 2.5 GiB/s"
set title "touching the whole heap afterwards"
set logscale y
set yrange [*:*]
set ylabel "milliseconds"
plot "$dat" using 1:10 with linespoints lw 2 title "restored: write all", \
     "$dat" using 1:9 with linespoints lw 2 title "restored: read all", \
     "$dat" using 1:11 with linespoints lw 2 dt 3 title "fresh: first write", \
     "$dat" using 1:13 with linespoints lw 1 dt 2 title "fresh: write all (resident)", \
     "$dat" using 1:12 with linespoints lw 1 dt 2 title "fresh: read all (resident)"
unset multiplot
GP
	echo "plot: docs/bench-image.png"
fi
echo "table: docs/bench-image.md"
