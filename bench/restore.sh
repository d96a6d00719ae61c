#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/restore.sh BUILD [OUT] - what a restore costs before the program runs
# (issue 12 §1, §2), every figure against its bound measured in the same run:
#   - the floor: spawn of a static no-op binary to its first instruction,
#     against the spawn of `crac restore DIR` (one exec: the crac command
#     is the loader) and of `crac-cli restore DIR` (two execs: the tool,
#     then the loader, as a restore with --timens or socket activation
#     goes) to the restored program's first callback, for a 1 MiB heap
#   - python3 (json, email, http.client, asyncio, decimal, sqlite3, ssl, xml
#     imported: tests/zoo/progs/zoo.py) under `crac run`, checkpointed from
#     outside: cold start vs restore (lazy, --populate) to the first answer,
#     and where the loader's time goes (`crac restore --stats`)
#   - eager restore (--populate; what every unprivileged user gets) of a
#     16 MiB and a 1 GiB heap to the first callback, against the bound:
#     anonymous memory + pread of the same pages file (4 KiB pages, and
#     with MADV_HUGEPAGE as the loader does)
# Prints a markdown table (min–median–max) and writes DOC (default
# docs/bench-restore.md), OUT/restore.dat and, with gnuplot, the PNG next to
# DOC. The machine load is recorded at the start and the end.
#
# Environment (all optional):
#   CRAC_BENCH_RESTORE_REPS      timed runs of each kind (default 7; one untimed first)
#   CRAC_BENCH_RESTORE_BIG_REPS  the same for the 1 GiB heap (default 3)
#   CRAC_BENCH_RESTORE_SIZES     eager heap sizes in MiB (default "16 1024")
#   CRAC_BENCH_RESTORE_DOC       where the document goes
#   CRAC_BENCH_TMPDIR            where the images go (default $TMPDIR or /tmp)
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -eu
build=$(cd "$1" && pwd)
out=${2:-$build/results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
src=$(pwd)
doc=${CRAC_BENCH_RESTORE_DOC:-$src/docs/bench-restore.md}
png=${doc%.md}.png
reps=${CRAC_BENCH_RESTORE_REPS:-7}
big_reps=${CRAC_BENCH_RESTORE_BIG_REPS:-3}
sizes=${CRAC_BENCH_RESTORE_SIZES:-16 1024}
crac=$build/crac
loader=$build/crac-loader
heap=$build/bench/image_heap
cli=$build/crac-cli
for f in "$crac" "$loader" "$cli" "$heap"; do
	[ -x "$f" ] || { echo "restore.sh: $f missing (build first)" >&2; exit 1; }
done
command -v cc >/dev/null || { echo "restore.sh: needs a C compiler (the no-op and bound programs)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "restore.sh: needs python3 (the workload and its driver)" >&2; exit 1; }
py=$(python3 -c 'import sys; print(sys.executable)')   # the real interpreter, not a shim

tmp=$(mktemp -d "${CRAC_BENCH_TMPDIR:-${TMPDIR:-/tmp}}/crac-bench-restore.XXXXXX")
export CRAC_CONTROL_DIR=$tmp/ctl
mkdir -m 0700 "$CRAC_CONTROL_DIR"
unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOADER CRAC_VERIFY_FILES
kill_list=""
cleanup() {
	local p
	for p in $kill_list; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# -- helper programs ------------------------------------------------------------
# noop: bench/static/touch_pages.c with PAGES=0: static, no libc; its first
# instruction takes CLOCK_MONOTONIC and
# prints first_ns=N (the same clock image_heap's spawn_ns and cb_ns use).
cc -O2 -static -nostdlib -fno-stack-protector -fcf-protection=none -DPAGES=0 \
	-o "$tmp/noop" "$src/bench/static/touch_pages.c"
# touch: bench/static/touch_pages.c (a static no-op that first has POPULATE fresh pages faulted in
# by the kernel and touches PAGES others).
# bound FILE MODE: anonymous memory of FILE's size, filled from FILE with
# 4 MiB preads; MODE 4k, thp (MADV_HUGEPAGE first) or thp-populate (and
# MADV_POPULATE_WRITE: faulted in by one call, as the loader does); ms=T.
cat >"$tmp/bound.c" <<'C'
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	struct stat st;
	struct timespec a, b;
	int fd = open(argv[1], O_RDONLY);
	if (argc < 3 || fd < 0 || fstat(fd, &st) < 0)
		return 1;
	size_t len = (size_t)st.st_size, step = 4u << 20;
	clock_gettime(CLOCK_MONOTONIC, &a);
	char *raw = mmap(0, len + (2u << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p = (char *)(((unsigned long)raw + (2u << 20) - 1) & ~((2ul << 20) - 1));
	if (raw == MAP_FAILED)
		return 1;
	if (strcmp(argv[2], "4k"))
		madvise(p, len, MADV_HUGEPAGE);
	if (!strcmp(argv[2], "thp-populate"))
		madvise(p, len, 23 /* MADV_POPULATE_WRITE */);
	for (size_t d = 0; d < len;) {
		ssize_t n = pread(fd, p + d, len - d < step ? len - d : step, (off_t)d);
		if (n <= 0)
			return 1;
		d += (size_t)n;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("ms=%.3f\n", (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
	return 0;
}
C
cc -O2 -o "$tmp/bound" "$tmp/bound.c"

# -- statistics -----------------------------------------------------------------
stat3() {  # stat3 FILE: "median (min–max)"
	sort -g "$1" | awk '{ a[NR] = $1 } END {
		if (NR == 0) { print "-"; exit }
		m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		printf "%.1f (%.1f–%.1f)\n", m, a[1], a[NR] }'
}
med() {  # med FILE: the median alone
	sort -g "$1" | awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
med1() { awk -v a="$(med "$1")" 'BEGIN { printf "%.1f", a }'; }   # med1 FILE: the median, 0.1 ms
ratio() { awk -v a="$(med "$1")" -v b="$(med "$2")" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
kv() {  # kv KEY FILE: value of KEY=... on the last line that has it
	sed -n "s/.*[ ^]$1=\([^ ]*\).*/\1/p; s/^$1=\([^ ]*\).*/\1/p" "$2" | tail -n 1
}
notes=$tmp/notes
: >"$notes"
note() { echo "$*" | tee -a "$notes" >&2; }

# spawn_to KEY FILE CMD...: image_heap spawn CMD; appends (KEY - spawn_ns) in ms to FILE
spawn_to() {
	local key=$1 file=$2 o
	shift 2
	o=$(timeout 600 "$heap" spawn "$@" 2>"$tmp/spawn.err") || { note "- failed: $* : $(tr '\n' ' ' <"$tmp/spawn.err" | cut -c1-300)"; return 1; }
	echo "$o" >"$tmp/spawn.out"
	local a s
	a=$(kv "$key" "$tmp/spawn.out")
	s=$(kv spawn_ns "$tmp/spawn.out")
	[ -n "$a" ] && [ -n "$s" ] || { note "- no $key from: $*"; return 1; }
	# image_heap's restored instance checks its heap: sum=ok (and exit status 0)
	local sum
	sum=$(kv sum "$tmp/spawn.out")
	[ -z "$sum" ] || [ "$sum" = ok ] || { note "- wrong heap after: $*"; return 1; }
	awk -v a="$a" -v s="$s" 'BEGIN { printf "%.3f\n", (a - s) / 1e6 }' >>"$file"
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
rev=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$src" status --porcelain -- src 2>/dev/null | awk '{ sub(/^src\//, "", $2); printf "%s%s", (NR > 1 ? ", " : ""), $2 }')
[ -z "$dirty" ] || rev="$rev with uncommitted changes in src/ ($dirty)"

# -- 1. the floor: no-op spawn vs restore to the first instruction -------------
load_floor=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== floor: static no-op spawn vs restore of a 1 MiB heap" >&2
"$heap" checkpoint "$tmp/small" 1 1 >/dev/null 2>"$tmp/ck.err" || { cat "$tmp/ck.err" >&2; exit 1; }
# The bound of the floor: how many pages a restore faults in before its
# first callback (the crac command, the loader, the restored program), and
# a static program that only faults in that many fresh pages: those the
# loader's fill takes inside system calls (MADV_POPULATE_WRITE, writes
# through /proc/self/mem; `--stats`: "page faults filling") with one
# MADV_POPULATE_WRITE, the rest by touching them. On a VM with shadow
# paging the first touch of a page is what a spawn costs.
# The default (`crac restore DIR`) fills an image with under 4 MiB of
# large mappings eagerly, this one's heap included; `--lazy` leaves the
# heap to the lazy thread: the bound takes the one with fewer faults.
floor_faults="" floor_faults_def="" floor_faults_lazy="" floor_min_mode=""
for ((i = 0; i < 3; i++)); do
	for mode in def lazy; do
		if [ "$mode" = def ]; then
			o=$("$heap" spawn "$crac" restore "$tmp/small" 2>/dev/null) || continue
		else
			o=$("$heap" spawn "$crac" restore --lazy "$tmp/small" 2>/dev/null) || continue
		fi
		f=$(echo "$o" | sed -n 's/.* faults=\([0-9]*\).*/\1/p' | head -n 1)
		[ -n "$f" ] || continue
		eval "cur=\$floor_faults_$mode"
		if [ -z "$cur" ] || [ "$f" -lt "$cur" ]; then
			eval "floor_faults_$mode=$f"   # the fewest of three runs
		fi
		if [ -z "$floor_faults" ] || [ "$f" -lt "$floor_faults" ]; then
			floor_faults=$f
			floor_min_mode=$mode
		fi
	done
done
# fill_faults FILE: the loader's "N page faults filling" in a --stats output
fill_faults() { sed -n 's/^crac: loader: .*; \([0-9]*\) page faults filling.*/\1/p' "$1" | head -n 1; }
floor_fill="" floor_user=""
if [ -n "$floor_faults" ]; then
	if [ "$floor_min_mode" = def ]; then
		"$heap" spawn "$crac" restore --stats "$tmp/small" >/dev/null 2>"$tmp/floor.fill" || true
	else
		"$heap" spawn "$crac" restore --stats --lazy "$tmp/small" >/dev/null 2>"$tmp/floor.fill" || true
	fi
	floor_fill=$(fill_faults "$tmp/floor.fill")
	[ -n "$floor_fill" ] && [ "$floor_fill" -le "$floor_faults" ] || floor_fill=0
	floor_user=$((floor_faults - floor_fill))
	cc -O2 -static -nostdlib -fno-stack-protector -fcf-protection=none -DPAGES="$floor_user" \
		-DPOPULATE="$floor_fill" -o "$tmp/touch" "$src/bench/static/touch_pages.c" || floor_faults=""
fi
for f in t_noop t_touch r_crac r_crac_lazy r_loader r_crac_eager r_loader_eager; do : >"$tmp/$f"; done
for ((i = 0; i <= reps; i++)); do
	d=""
	[ "$i" -gt 0 ] || d=/dev/null   # the untimed first run
	spawn_to first_ns "${d:-$tmp/t_noop}" "$tmp/noop" || true
	[ -z "$floor_faults" ] || spawn_to first_ns "${d:-$tmp/t_touch}" "$tmp/touch" || true
	spawn_to cb_ns "${d:-$tmp/r_crac}" "$crac" restore "$tmp/small" || true
	spawn_to cb_ns "${d:-$tmp/r_crac_lazy}" "$crac" restore --lazy "$tmp/small" || true
	spawn_to cb_ns "${d:-$tmp/r_loader}" "$cli" restore "$tmp/small" || true
	spawn_to cb_ns "${d:-$tmp/r_crac_eager}" "$crac" restore --populate "$tmp/small" || true
	spawn_to cb_ns "${d:-$tmp/r_loader_eager}" "$cli" restore --populate "$tmp/small" || true
done
"$loader" --stats "$tmp/small" </dev/null >/dev/null 2>"$tmp/small.stats" || true
small_stats=$(grep -m1 '^crac: loader:' "$tmp/small.stats" | sed 's/^crac: loader: //' || true)
# Where a restore's time goes: seven `crac restore --stats` runs of the same
# image, the median of each step (the loader's line and libcrac's).
: >"$tmp/small.steps"
for ((i = 0; i < 7; i++)); do
	"$crac" restore --stats "$tmp/small" </dev/null >/dev/null 2>"$tmp/small.one" || continue
	awk '/^crac: loader:/ { for (i = 1; i < NF; i++) if ($(i + 1) == "ms" || $(i + 1) == "ms,") {
			k = $(i - 1); if (k ~ /^(checks|unmap|map|fill|start)$/) printf "%s %s\n", k, $i } }
	     /^crac: restore stats:/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^ms/) {
			k = $(i - 1); if (k == "loader") k = "loader_total"; else if (k == "then") k = "to_program";
			if (k ~ /^(loader_total|threads|to_program|total)$/) printf "%s %s\n", k, $i } }' \
		"$tmp/small.one" >>"$tmp/small.steps"
done
step() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/small.steps" >"$tmp/step.$1"; med "$tmp/step.$1"; }
# how the last of them loaded the image: "eager" or "lazy" (the end of its stats line)
floor_mode=$(sed -n 's/^crac: restore stats:.*; \(eager\|lazy\):.*/\1/p' "$tmp/small.one" 2>/dev/null | head -n 1)
if [ "$floor_mode" = eager ]; then
	floor_fill_what="the program's dirty file pages and its eager mappings (here all of them, the heap included: see above)"
	floor_start_what="no lazy thread here (an eager restore); the pages its threads touch first installed"
else
	floor_fill_what="the program's dirty file pages and small eager mappings"
	floor_start_what="the lazy thread started and the pages its threads touch first installed"
fi

# -- 2. python3 ------------------------------------------------------------------
load_py=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== python3: cold start vs restore to the first answer" >&2
# drive.py EXPECT ERRFILE CMD...: CLOCK_MONOTONIC before spawning CMD with
# "777" on its stdin, and when the line EXPECT arrives; prints "MS FAULTS":
# the ms, and the page faults (minor + major, all its threads: the kernel's
# counts in /proc/PID/stat) of the spawned process from the fork to the
# answer. A restore is one process from the exec of crac to the answer (crac
# execs the loader, which becomes the program), so FAULTS covers crac, the
# loader and the restored program. A fault the lazy thread serves counts as
# one minor fault of the thread that took it (whatever it loads around it);
# the pages the lazy thread installs ahead (UFFDIO_COPY) are not faults.
cat >"$tmp/drive.py" <<'PY'
import subprocess, sys, time
expect, err, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(err, "wb") as e:
    t0 = time.monotonic_ns()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=e, close_fds=True)
    p.stdin.write(b"777\n")
    p.stdin.flush()
    got = None
    for line in p.stdout:
        if line.decode(errors="replace").rstrip("\n") == expect:
            got = time.monotonic_ns()
            try:
                # fields 10 and 12: minflt, majflt (after the ")" of the name)
                f = open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()
                faults = int(f[7]) + int(f[9])
            except (OSError, IndexError, ValueError):
                faults = -1
            break
    p.stdin.close()
    p.stdout.read()
    rc = p.wait(timeout=120)
if got is None:
    sys.exit("no answer %r (exit status %d)" % (expect, rc))
print("%.3f %d" % ((got - t0) / 1e6, faults))
PY
expect="answer 777 2331 100000 threads=5"
zoo=$src/tests/zoo/progs/zoo.py
for f in py_cold py_lazy py_eager py_loader py_touch py_fill_touch; do : >"$tmp/$f"; : >"$tmp/${f}_faults"; done
py_stats="" py_stats_eager="" py_mib="" py_faults="" fill_pages="" fill_mib=""
rm -f "$tmp/py.in"
mkfifo "$tmp/py.in"
sleep 3600 >"$tmp/py.in" &
kill_list="$kill_list $!"
(
	for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
	exec "$crac" run -- "$py" "$zoo" <"$tmp/py.in" >"$tmp/py.out" 2>&1
) &
pid=$!
kill_list="$kill_list $pid"
for ((i = 0; i < 600; i++)); do grep -q '^ready' "$tmp/py.out" 2>/dev/null && break; sleep 0.05; done
if ! grep -q '^ready' "$tmp/py.out" || ! timeout 120 "$crac" checkpoint --engine image --image-dir "$tmp/py.img" "$pid" >"$tmp/py.ck" 2>&1; then
	note "- python3: not checkpointed: $(tail -n 3 "$tmp/py.out" "$tmp/py.ck" 2>/dev/null | tr '\n' ' ' | cut -c1-400)"
else
	for ((i = 0; i < 200; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	py_mib=$(du -sk "$tmp/py.img" | awk '{ printf "%.1f", $1 / 1024 }')
	# The bound of the python3 restore: the page faults of `crac restore
	# DIR` from the exec of crac to the answer (the fewest of three runs),
	# and the static binary that faults in that many fresh pages, timed in
	# the loop below with the restores.
	for ((i = 0; i < 3; i++)); do
		t=$("$py" "$tmp/drive.py" "$expect" "$tmp/py.err" "$crac" restore "$tmp/py.img") || continue
		f=${t##* }
		[ "$f" -gt 0 ] 2>/dev/null || continue
		if [ -z "$py_faults" ] || [ "$f" -lt "$py_faults" ]; then
			py_faults=$f
		fi
	done
	# The bound of the loader: the pages it fills before the jump (--stats:
	# "fill T ms (M MiB"), each a first write on this VM, and a static
	# binary that only writes that many fresh pages, timed in the loop below.
	"$py" "$tmp/drive.py" "$expect" "$tmp/py.fillstats" "$crac" restore --stats "$tmp/py.img" >/dev/null || true
	fill_mib=$(sed -n 's/^crac: loader: .*, fill [0-9.]* ms (\([0-9.]*\) MiB.*/\1/p' "$tmp/py.fillstats" | head -n 1)
	if [ -n "$fill_mib" ]; then
		fill_pages=$(awk -v m="$fill_mib" 'BEGIN { printf "%d", m * 1048576 / 4096 + 0.5 }')
		[ "$fill_pages" -gt 0 ] && cc -O2 -static -nostdlib -fno-stack-protector -fcf-protection=none \
			-DPAGES="$fill_pages" -o "$tmp/touch_fill" "$src/bench/static/touch_pages.c" || fill_pages=""
	fi
	# Of the restore's faults, those its fill takes inside system calls
	# (the same --stats run): the bound has the kernel fault in as many
	# with one MADV_POPULATE_WRITE and touches the rest.
	py_fill=""
	if [ -n "$py_faults" ]; then
		py_fill=$(fill_faults "$tmp/py.fillstats")
		[ -n "$py_fill" ] && [ "$py_fill" -le "$py_faults" ] || py_fill=0
		py_user=$((py_faults - py_fill))
		cc -O2 -static -nostdlib -fno-stack-protector -fcf-protection=none -DPAGES="$py_user" \
			-DPOPULATE="$py_fill" -o "$tmp/touch_py" "$src/bench/static/touch_pages.c" || py_faults=""
	fi
	for ((i = 0; i <= reps; i++)); do
		d=""
		[ "$i" -gt 0 ] || d=/dev/null   # the untimed first run
		[ -z "$py_faults" ] || spawn_to first_ns "${d:-$tmp/py_touch}" "$tmp/touch_py" || true
		[ -z "$fill_pages" ] || spawn_to first_ns "${d:-$tmp/py_fill_touch}" "$tmp/touch_fill" || true
		for k in cold lazy eager loader; do
			case $k in
			cold) cmd=("$py" "$zoo") ;;
			lazy) cmd=("$crac" restore "$tmp/py.img") ;;
			eager) cmd=("$crac" restore --populate "$tmp/py.img") ;;
			loader) cmd=("$cli" restore "$tmp/py.img") ;;
			esac
			if t=$("$py" "$tmp/drive.py" "$expect" "$tmp/py.err" "${cmd[@]}"); then
				[ "$i" -eq 0 ] || { echo "${t% *}" >>"$tmp/py_$k"; echo "${t##* }" >>"$tmp/py_${k}_faults"; }
			else
				note "- python3 $k: $t $(tr '\n' ' ' <"$tmp/py.err" | cut -c1-300)"
			fi
		done
	done
	# seven --stats runs: the one whose loader time is their median is
	# the one shown (a single run was 3.97 ms in one bench and 6.76 in the
	# next, its lazy thread's start and the threads' taking turns)
	: >"$tmp/py_loader_runs"
	for ((i = 0; i < 7; i++)); do
		"$py" "$tmp/drive.py" "$expect" "$tmp/py.stats.$i" "$crac" restore --stats "$tmp/py.img" >/dev/null || continue
		l=$(sed -n 's/^crac: restore stats: loader \([0-9.]*\) ms.*/\1/p' "$tmp/py.stats.$i" | head -n 1)
		[ -z "$l" ] || echo "$l $i" >>"$tmp/py_loader_runs"
	done
	mid=$(sort -g "$tmp/py_loader_runs" | awk '{ a[NR] = $2 } END { if (NR) print a[int((NR + 1) / 2)] }')
	if [ -n "$mid" ]; then cp "$tmp/py.stats.$mid" "$tmp/py.stats"; else : >"$tmp/py.stats"; fi
	py_loader_range=$(sort -g "$tmp/py_loader_runs" | awk '{ a[NR] = $1 } END { if (NR) printf "%s–%s", a[1], a[NR] }')
	"$py" "$tmp/drive.py" "$expect" "$tmp/py.stats2" "$crac" restore --populate --stats "$tmp/py.img" >/dev/null || true
	py_stats=$(grep -m1 '^crac: loader:' "$tmp/py.stats" | sed 's/^crac: loader: //' || true)
	py_total=$(grep -m1 '^crac: restore stats:' "$tmp/py.stats" | sed 's/^crac: restore stats: //' || true)
	py_stats_eager=$(grep -m1 '^crac: loader:' "$tmp/py.stats2" | sed 's/^crac: loader: //' || true)
fi
kill "$pid" 2>/dev/null || true

# -- 3. eager restore vs the anon+pread bound --------------------------------------
load_eager=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== eager restore vs anonymous memory + pread" >&2
eager_rows=$tmp/eager_rows
: >"$eager_rows"
dat=$out/restore.dat
echo "# mib eager_ms bound_4k_ms bound_thp_ms bound_thp_populate_ms" >"$dat"
for mib in $sizes; do
	memav=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
	if [ "$memav" -lt $((mib * 3 + 512)) ]; then
		note "- $mib MiB skipped: MemAvailable $memav MiB"
		continue
	fi
	n=$reps
	[ "$mib" -lt 1024 ] || n=$big_reps
	img=$tmp/heap-$mib
	"$heap" checkpoint "$img" "$mib" 1 >/dev/null 2>"$tmp/ck.err" || { note "- $mib MiB: checkpoint failed: $(cat "$tmp/ck.err")"; continue; }
	for f in e b4 bt bp; do : >"$tmp/$f-$mib"; done
	for ((i = 0; i <= n; i++)); do
		d=""
		[ "$i" -gt 0 ] || d=/dev/null
		# the order alternates: what runs right after another run's memory
		# was freed gets warm pages (the VM's free page reporting makes
		# the first touch of memory it gave back 2-5x slower)
		[ $((i % 2)) -eq 1 ] || spawn_to cb_ns "${d:-$tmp/e-$mib}" "$crac" restore --populate "$img" || true
		t=$("$tmp/bound" "$img/pages" 4k) && echo "${t#ms=}" >>"${d:-$tmp/b4-$mib}"
		t=$("$tmp/bound" "$img/pages" thp) && echo "${t#ms=}" >>"${d:-$tmp/bt-$mib}"
		t=$("$tmp/bound" "$img/pages" thp-populate) && echo "${t#ms=}" >>"${d:-$tmp/bp-$mib}"
		[ $((i % 2)) -eq 0 ] || spawn_to cb_ns "${d:-$tmp/e-$mib}" "$crac" restore --populate "$img" || true
	done
	"$heap" spawn "$crac" restore --populate --stats "$img" >/dev/null 2>"$tmp/e.stats" || true
	st=$(grep -m1 '^crac: loader:' "$tmp/e.stats" | sed 's/^crac: loader: //' || true)
	printf '| %s MiB | %s | %s | %s | %s | %s / %s / %s | %s |\n' "$mib" "$(stat3 "$tmp/e-$mib")" "$(stat3 "$tmp/b4-$mib")" \
		"$(stat3 "$tmp/bt-$mib")" "$(stat3 "$tmp/bp-$mib")" "$(ratio "$tmp/e-$mib" "$tmp/b4-$mib")" \
		"$(ratio "$tmp/e-$mib" "$tmp/bt-$mib")" "$(ratio "$tmp/e-$mib" "$tmp/bp-$mib")" "${st:--}" >>"$eager_rows"
	echo "$mib $(med "$tmp/e-$mib") $(med "$tmp/b4-$mib") $(med "$tmp/bt-$mib") $(med "$tmp/bp-$mib")" >>"$dat"
	rm -rf "$img"
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# -- the tables ----------------------------------------------------------------------
tables() {
	echo "### The floor: spawn to the first instruction (1 MiB heap image; ms, median (min–max))"
	echo
	echo "Load (1/5/15 min) at the start of this table: $load_floor; $(nproc) cores."
	echo
	echo "| what | ms | ratio to the no-op |"
	echo "|---|---|---|"
	echo "| static no-op binary, to its first instruction | $(stat3 "$tmp/t_noop") | 1 |"
	[ -z "$floor_faults" ] ||
		echo "| bound: a static binary that faults in $floor_faults fresh pages (the fewest page faults of \`crac restore DIR\` or \`crac restore --lazy DIR\` up to its first callback: $floor_fill by one MADV_POPULATE_WRITE, as many as the loader's fill takes inside system calls, and $floor_user by touching them), to its end | $(stat3 "$tmp/t_touch") | $(ratio "$tmp/t_touch" "$tmp/t_noop") |"
	echo "| \`crac restore DIR\` (one exec: the crac command is the loader), to the first callback | $(stat3 "$tmp/r_crac") | $(ratio "$tmp/r_crac" "$tmp/t_noop") |"
	echo "| \`crac restore --lazy DIR\` (the heap left to the lazy thread) | $(stat3 "$tmp/r_crac_lazy") | $(ratio "$tmp/r_crac_lazy" "$tmp/t_noop") |"
	echo "| \`crac-cli restore DIR\` (two execs: the tool, then the loader), to the first callback | $(stat3 "$tmp/r_loader") | $(ratio "$tmp/r_loader" "$tmp/t_noop") |"
	echo "| \`crac restore --populate DIR\` | $(stat3 "$tmp/r_crac_eager") | $(ratio "$tmp/r_crac_eager" "$tmp/t_noop") |"
	echo "| \`crac-cli restore --populate DIR\` | $(stat3 "$tmp/r_loader_eager") | $(ratio "$tmp/r_loader_eager" "$tmp/t_noop") |"
	echo
	echo "Loader, one run (\`--stats\`): ${small_stats:--}"
	echo
	echo "### python3 (${py_mib:-?} MiB image): spawn to the first answer (ms, median (min–max))"
	echo
	echo "Load (1/5/15 min) at the start of this table: $load_py; $(nproc) cores."
	echo
	echo "| what | ms | ratio to the cold start | page faults to the answer (median) |"
	echo "|---|---|---|---|"
	echo "| cold start: \`python3 zoo.py\` | $(stat3 "$tmp/py_cold") | 1 | $(med "$tmp/py_cold_faults") |"
	echo "| \`crac restore DIR\` (lazy) | $(stat3 "$tmp/py_lazy") | $(ratio "$tmp/py_lazy" "$tmp/py_cold") | $(med "$tmp/py_lazy_faults") |"
	echo "| \`crac restore --populate DIR\` (eager) | $(stat3 "$tmp/py_eager") | $(ratio "$tmp/py_eager" "$tmp/py_cold") | $(med "$tmp/py_eager_faults") |"
	echo "| \`crac-cli restore DIR\` (lazy, two execs: the tool, then the loader) | $(stat3 "$tmp/py_loader") | $(ratio "$tmp/py_loader" "$tmp/py_cold") | $(med "$tmp/py_loader_faults") |"
	[ -z "$py_faults" ] ||
		echo "| bound: a static binary that faults in $py_faults fresh pages (the fewest page faults of \`crac restore DIR\` to the answer in three runs: $py_fill by one MADV_POPULATE_WRITE, as many as the loader's fill takes inside system calls, and $py_user by touching them), to its end | $(stat3 "$tmp/py_touch") | $(ratio "$tmp/py_touch" "$tmp/py_cold") | $py_faults |"
	[ -z "$fill_pages" ] ||
		echo "| bound for the loader: a static binary that writes $fill_pages fresh pages (the $fill_mib MiB the loader fills before the jump, \`--stats\`), spawn to its end | $(stat3 "$tmp/py_fill_touch") | $(ratio "$tmp/py_fill_touch" "$tmp/py_cold") | $fill_pages |"
	echo
	[ -z "$py_faults" ] ||
		{ echo "python3 restore: $(med1 "$tmp/py_lazy") ms; bound from its $py_faults page faults: $(med1 "$tmp/py_touch") ms ($(ratio "$tmp/py_lazy" "$tmp/py_touch")× the bound)."; echo; }
	echo "Page faults: minor + major of the spawned process and all its threads from the fork to the answer (/proc/PID/stat read when the answer arrives): for a restore, the crac command, the loader (the pages it fills count, as it faults them in with MADV_POPULATE_WRITE) and the restored program. A fault the lazy thread serves counts once (one minor fault of the thread that took it), though it loads up to 64 KiB around it (and the rest of its chunk after); the pages the lazy thread installs ahead of the program (UFFDIO_COPY) are not faults and are not in the count."
	echo
	echo "Loader, the lazy run of median loader time of seven (\`--stats\`): ${py_stats:--}"
	echo
	echo "The same run, libcrac's line: ${py_total:--}"
	echo
	echo "Loader, one \`--populate\` run: ${py_stats_eager:--}"
	echo
	echo "### Eager restore (\`--populate\`) to the first callback vs the bound (ms, median (min–max))"
	echo
	echo "Load (1/5/15 min) at the start of this table: $load_eager; $(nproc) cores."
	echo
	echo "| heap | eager restore | bound: anon + pread, 4 KiB pages | bound: anon + MADV_HUGEPAGE + pread | bound: the same + MADV_POPULATE_WRITE first | ratio to the bounds (4 KiB / huge / huge populated) | loader, one run (\`--stats\`) |"
	echo "|---|---|---|---|---|---|---|"
	cat "$eager_rows"
}
# goal VALUE LIMIT: "met" or "not met" (VALUE <= LIMIT)
goal() { awk -v v="$1" -v l="$2" 'BEGIN { if (v !~ /^[0-9.]+$/ || v + 0 == 0) print "not measured"; else if (v + 0 <= l + 0) print "**met**"; else print "not met" }'; }
goals() {
	local py_loader e16 e1g b1g bp16 r_noop
	py_loader=$(echo "${py_total:-}" | sed -n 's/^loader \([0-9.]*\) ms.*/\1/p')
	e16=$(med "$tmp/e-16" 2>/dev/null || echo 0)
	e1g=$(med "$tmp/e-1024" 2>/dev/null || echo 0)
	b1g=$(med "$tmp/bp-1024" 2>/dev/null || echo 0)
	bp16=$(med "$tmp/bp-16" 2>/dev/null || echo 0)
	echo "### Goals (issue 12), medians of this run"
	echo
	echo "| goal | measured | |"
	echo "|---|---|---|"
	echo "| python3: restore to the first answer ≤ 10 ms | $(med "$tmp/py_lazy") ms (cold start $(med "$tmp/py_cold") ms: ratio $(ratio "$tmp/py_lazy" "$tmp/py_cold")) | $(goal "$(med "$tmp/py_lazy")" 10) |"
	echo "| python3: loader ≤ 5 ms | ${py_loader:-?} ms (median of seven \`--stats\` runs, ${py_loader_range:-?})${fill_pages:+; for comparison, a static binary writing its $fill_pages filled pages fresh: $(med "$tmp/py_fill_touch") ms} | $(goal "${py_loader:-0}" 5) |"
	echo "| restore to the first instruction ≤ 1.5× a static no-op spawn | \`crac restore\` $(ratio "$tmp/r_crac" "$tmp/t_noop")×, \`crac restore --lazy\` $(ratio "$tmp/r_crac_lazy" "$tmp/t_noop")×, \`crac-cli restore\` $(ratio "$tmp/r_loader" "$tmp/t_noop")× | $(goal "$(ratio "$tmp/r_crac" "$tmp/t_noop")" 1.5) |"
	echo "| eager 16 MiB ≤ 10 ms | $e16 ms (bound with huge pages, populated: $bp16 ms) | $(goal "$e16" 10) |"
	echo "| eager 1 GiB ≤ 0.5 s | $e1g ms (bound with huge pages, populated: $b1g ms) | $(goal "$e1g" 500) |"
	echo
	echo "What stands in the way, where a goal is not met here (measured on this machine; see issue 12):"
	echo
	if awk -v a="${load0%% *}" -v b="${load1%% *}" -v n="$(nproc)" 'BEGIN { exit !(a > n || b > n) }'; then
		echo "- The load: with the load above the cores, each time stretches by the wait for a CPU; every absolute goal above is a quiet-machine figure."
	fi
	[ -z "$floor_faults" ] ||
		echo "- The floor is page faults: \`crac restore --lazy DIR\` of the 1 MiB heap image faults in ${floor_faults_lazy:-?} pages before its first callback (the crac command, the loader, the restored libc, libcrac and stack; getrusage in the callback), \`crac restore DIR\` ${floor_faults_def:-?} (an image with under 4 MiB in its large mappings is filled before the jump, its heap included: the lazy thread's fixed costs and faults would cost the program more than filling it, measured on the zoo's redis, sqlite3 and lua), and a static binary that does nothing but fault in the fewer, $floor_faults, fresh pages takes $(med "$tmp/t_touch") ms, $(ratio "$tmp/t_touch" "$tmp/t_noop")× the no-op, in the same run: $floor_fill of them with one MADV_POPULATE_WRITE, as many as the loader's fill takes inside its system calls (\`--stats\`: \"page faults filling\"; a fault taken by the kernel for a system call costs a fraction of a program's own first touch of a page, the expensive step on this VM: shadow paging), and $floor_user by touching them. A restore cannot come within 1.5× of the no-op while it takes this many faults; \`crac restore DIR\` is at $(ratio "$tmp/r_crac" "$tmp/t_touch")× that bound, \`crac restore --lazy DIR\` at $(ratio "$tmp/r_crac_lazy" "$tmp/t_touch")×."
	if [ -s "$tmp/small.steps" ]; then
		spawn_rest=$(awk -v a="$(med "$tmp/r_crac")" -v b="$(step total)" 'BEGIN { printf "%.3f", a - b }')
		case $spawn_rest in
		-*) spawn_rest_text="the timed runs took less from their spawn than these --stats runs from the loader's start (--stats slows them, and they are other runs), so the spawn is not split out here" ;;
		*) spawn_rest_text="the rest, $spawn_rest ms, is the spawn and exec of the crac command up to the loader's first instruction" ;;
		esac
		echo "- Where the rest goes (medians of seven \`crac restore --stats\` runs of the same image; --stats itself adds its two lines of output): the loader $(step loader_total) ms from its first instruction (checks $(step checks): the image's header and crc, the owner, the layout, the CPU (each CPUID leaf a trap to the hypervisor here, about 6 µs), the vDSO, the process's limits and the mapped files by stat; the userfaultfd opened, the descriptors checked, the loader's process unmapped and the vDSO moved $(step unmap); one mmap per mapping $(step map); $floor_fill_what copied in $(step fill); $floor_start_what $(step start); the rest, $(awk -v t="$(step loader_total)" -v a="$(step checks)" -v b="$(step unmap)" -v c="$(step map)" -v d="$(step fill)" -v e="$(step start)" 'BEGIN { printf "%.3f", t - a - b - c - d - e }'), the program's descriptors recreated and the --stats line written), then libcrac's restore path $(step threads) ms (the thread's state, signal dispositions, limits, clocks and random) and $(step to_program) ms to the callback; $(step total) ms in all against $(med "$tmp/r_crac") ms from the spawn: $spawn_rest_text (the no-op's whole spawn: $(med "$tmp/t_noop") ms; crac is a static binary of $(du -k "$crac" | cut -f1) KiB). Each step is a few dozen system calls and page faults, none of which is a wait; on this VM a system call costs about 1 µs, and a program's first touch of a page $( [ -n "$fill_pages" ] && awk -v t="$(med "$tmp/py_fill_touch")" -v n="$(med "$tmp/t_noop")" -v p="$fill_pages" 'BEGIN { if (p > 0) printf "about %.1f µs in this run (the static binary of the python3 section that writes %d fresh pages, less the no-op, by page)", (t - n) * 1000 / p, p; else printf "(not measured)" }' || echo "(not measured)")."
	fi
	echo "- \`crac restore DIR\` is one exec: the installed \`crac\` command is the static loader (src/loader/front.c), which goes on as the loader for a plain restore; the \`crac-cli restore\` rows show what the second exec of a dynamically linked tool used to cost (and still costs a restore with --timens or socket activation, which go through the tool)."
	echo "- The restored program's own dirty file pages (.data, GOT, RELRO of every library: 0.26 MiB for the 1 MiB heap image, 2.3 MiB for python3) must be copied in before it runs: each is a copy-on-write fault on this VM (shadow paging makes the first touch of a page slow), which the loader takes writing them through /proc/self/mem into mappings already at their final protection (no mprotect after); userfaultfd cannot defer them (it serves anonymous memory only)."
	[ -z "$py_faults" ] ||
		echo "- python3 restore: $(med1 "$tmp/py_lazy") ms; bound from its $py_faults page faults: $(med1 "$tmp/py_touch") ms. \`crac restore DIR\` of python3 takes $py_faults page faults (fewest of three runs; median $(med "$tmp/py_lazy_faults")) from the exec of crac to the first answer. $py_fill of them are the loader's fill, taken by the kernel inside its system calls (MADV_POPULATE_WRITE, the writes through /proc/self/mem), each a fraction of a program's own first touch; $py_user are touches (the crac command's and the loader's own pages, the restored program's, the lazy thread's). A static binary that faults in as many fresh pages the same two ways takes $(med1 "$tmp/py_touch") ms in the same run: a restore that takes these faults cannot answer sooner; it is at $(ratio "$tmp/py_lazy" "$tmp/py_touch")× that bound, and the rest is the steps below, none of them a wait: the crac command's exec, the loader's checks, unmapping and mapping (\`--stats\`), libcrac's restore path (the threads made again), and python3's own first run of the code that answers (its library's code pages mapped anew, the heap pages it reads loaded by the lazy thread). (Until 2026-12 this bound touched all $py_faults pages, and so stood at about 9 ms: it counted the fill's faults at the price of a program's own, which they do not cost.)"
	[ -z "$fill_pages" ] ||
		echo "- The loader (python3): ${py_loader:-?} ms, the median of seven \`--stats\` runs (${py_loader_range:-?}). Its fill step, $(sed -n 's/^crac: loader: .*, fill \([0-9.]*\) ms.*/\1/p' "$tmp/py.fillstats" | head -n 1) ms, writes $fill_mib MiB ($fill_pages pages: the program's dirty file pages and small eager mappings) through /proc/self/mem: the kernel's copy-on-write, cheaper here than a program's own first writes (a static binary that writes $fill_pages fresh pages takes $(med1 "$tmp/py_fill_touch") ms from its spawn in the same run). No bound measured here stands in the way of 5 ms: the rest is the loader's own fixed work (checks: the image, the CPU (CPUID traps to the hypervisor), the vDSO and every mapped file by stat identity; one mmap per mapping; starting the lazy thread), each step in the \`--stats\` line below. $(awk -v a="${py_loader:-99}" 'BEGIN { if (a <= 5) print "Met."; else print "Not met, and not explained by a bound." }')"
	echo "- After the jump, python3's first answer waits only for the pages it touches that are not loaded yet. The first restore of the image (one of the three that count its page faults, before the timed runs) recorded its working set (\`DIR/working-set\`: the pages it touched in its first 50 ms, in order); each timed restore loads the first 256 of them at once, each page read alone and verified against its recorded crc, while the restore path runs, and more as the program faults on one not loaded yet. Any other page is a fault: the lazy thread reads and verifies its whole chunk (at most 128 KiB in a mapping under 64 MiB, 1 MiB in a larger one), installs the 64 KiB around the fault and wakes the thread, then the rest of the chunk and the prefetch in 64 KiB pieces, a waiting fault first; the pages each restored thread touches first (its stack top and thread block) and small anonymous mappings are installed by the loader before the jump (\`--stats\`: \"threads\" and its steps)."
	echo "- Eager: a new page is zeroed by the kernel before the pread fills it (clear_page is half of an eager restore's samples in perf), and each page is verified (crc32c, three streams interleaved); the bound programs verify nothing."
	echo
}
tables
goals

if command -v gnuplot >/dev/null 2>&1 && [ -s "$dat" ] && [ "$(wc -l <"$dat")" -gt 1 ]; then
	gnuplot <<GP 2>/dev/null || note "- gnuplot failed: no plot"
set terminal pngcairo size 900,500 noenhanced
set output "$png"
set title "eager restore (--populate) vs anonymous memory + pread (medians; $(nproc) cores, load $load0)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "ms (log scale)"
set logscale y
set xlabel "heap MiB"
plot "$dat" using 2:xtic(1) title "crac restore --populate", "" using 3 title "anon + pread (4 KiB pages)", "" using 4 title "anon + MADV_HUGEPAGE + pread", "" using 5 title "... + MADV_POPULATE_WRITE"
GP
fi

{
	echo "# crac: what a restore costs before the program runs"
	echo
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/restore.sh\`${CRAC_BENCH_QUICK:+ (--quick: few runs)} on $(nproc) cores, Linux $(uname -r); crac built from $rev."
	printf 'Machine load (/proc/loadavg, 1/5/15 min): %s at the start, %s at the end' "$load0" "$load1"
	if awk -v a="${load0%% *}" -v b="${load1%% *}" -v n="$(nproc)" 'BEGIN { exit !(a > n || b > n) }'; then
		echo "; with a load above the $(nproc) cores every time here is stretched by waiting for a CPU: the ratios, taken in the same run with the runs interleaved, mean more than the absolute numbers."
	else
		echo "."
	fi
	echo
	goals
	tables
	echo
	[ ! -s "$png" ] || { echo "![eager restore vs the bound]($(basename "$png"))"; echo; }
	echo "How it is measured ($reps timed runs of each kind, $big_reps for 1 GiB, after one untimed run; the kinds interleaved):"
	echo
	echo "- Every time starts with CLOCK_MONOTONIC taken right before posix_spawn (\`bench/image_heap spawn\`, or a python3 driver for the python3 rows) and ends with CLOCK_MONOTONIC taken in the spawned program: the no-op's first instruction; the restored program's first after_restore callback (the first restored code that can tell, after libcrac put its threads back); python3's answer line arriving on the driver's pipe."
	echo "- The no-op is a static binary without libc (\`_start\`: clock_gettime, write, exit_group). \`crac restore DIR\` is the loader from its first instruction (the crac command is the loader); \`crac-cli restore DIR\` is the tool (a dynamically linked program) parsing the options and exec'ing the loader: the difference between the two rows is that first exec."
	echo "- python3 runs \`tests/zoo/progs/zoo.py\` (the imports above, a 100000-entry dict, 4 pool threads); the image is made by \`crac run\` and \`crac checkpoint --engine image\` from outside, with no policy file; the restored copy answers the query on its stdin through a pool thread. Cold start is the plain interpreter."
	echo "- Eager: \`bench/image_heap checkpoint\` (one malloc'd heap, every word written), then \`crac restore --populate\`: every page read and its crc32c checked before the program runs. The bound programs allocate anonymous memory of the pages file's size and pread the file into it in 4 MiB steps (with MADV_HUGEPAGE first in the second one, and MADV_POPULATE_WRITE after it in the third: the loader's way of filling, without its checks and second thread); they verify nothing. The image is in the page cache."
	echo "- The loader lines come from \`--stats\`: checks (mapped files identified by stat: device, inode, size, mtime, ctime; \`--verify-files\` also reads their first and last page), unmapping the loader's process, mapping (one mmap per mapping; anonymous mappings with stored pages registered with userfaultfd when it handles kernel faults), filling the eager memory (merged preads, crc32c, a second thread from 1 MiB on, pages faulted in with MADV_POPULATE_WRITE before each read, huge pages for dense anonymous mappings of 2 MiB and more)."
	echo
	if [ -s "$notes" ]; then
		echo "Notes and failures:"
		echo
		cat "$notes"
	fi
} >"$doc"
echo "restore.sh: wrote $doc" >&2
