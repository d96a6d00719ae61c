#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/zoo.sh BUILD [DOC] - the program zoo (issue 11 §3, tests/zoo): for
# each unmodified program that crac can checkpoint with no policy file, the
# cold start to its first answer, the image size, and the restore to its
# first answer. Prints a markdown table and writes DOC (default
# docs/bench-zoo.md) with the date, the machine load and the programs left
# out with the reason (not installed; refused by the safety checks, with
# the line `crac check` printed).
#
# Environment (all optional):
#   CRAC_BENCH_ZOO_REPS   timed runs of each kind per program (default 7)
#   CRAC_BENCH_TMPDIR     where the images go (default $TMPDIR or /tmp)
set -eu
build=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
src=$(pwd)
doc=${2:-$src/docs/bench-zoo.md}
reps=${CRAC_BENCH_ZOO_REPS:-7}
crac=$build/crac
progs=$src/tests/zoo/progs
for f in "$crac" "$build/crac-loader"; do
	[ -x "$f" ] || { echo "zoo.sh: $f missing (build first)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "zoo.sh: needs python3 (the timing driver)" >&2; exit 1; }
# the real interpreter, not a shell shim (pyenv): the driver and the zoo's python3
py=$(python3 -c 'import sys; print(sys.executable)')

tmp=$(mktemp -d "${CRAC_BENCH_TMPDIR:-${TMPDIR:-/tmp}}/crac-bench-zoo.XXXXXX")
export CRAC_CONTROL_DIR=$tmp/ctl
mkdir -m 0700 "$CRAC_CONTROL_DIR"
unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES
kill_list=""
cleanup() {
	local p
	for p in $kill_list; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The timing driver: bench/drive.py (its header says how it times).

median() {
	sort -g | awk '{ a[NR] = $1 } END {
		if (NR == 0) print "-";
		else if (NR % 2) printf "%.1f\n", a[(NR + 1) / 2];
		else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
minmax() {
	sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%.1f–%.1f", lo, hi; else print "-" }'
}

# wait_line PATTERN FILE SECONDS
wait_line() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		grep -q -- "$1" "$2" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# start_crac NAME READY [RUNOPTS... --] CMD...: starts `crac run` with a FIFO
# on stdin (a writer that never writes keeps it open), output to
# $tmp/NAME.out; waits for its control socket and, unless READY is empty,
# for a line matching READY. Sets $pid.
start_crac() {
	local name=$1 ready=$2 opts=() i
	shift 2
	if [ "$1" = --opts ]; then
		shift
		while [ "$1" != -- ]; do opts+=("$1"); shift; done
		shift
	fi
	rm -f "$tmp/$name.in"
	mkfifo "$tmp/$name.in"
	sleep 3600 >"$tmp/$name.in" &
	kill_list="$kill_list $!"
	(
		for fd in $(ls /proc/$BASHPID/fd); do
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		exec "$crac" run "${opts[@]}" -- "$@" <"$tmp/$name.in" >"$tmp/$name.out" 2>&1
	) &
	pid=$!
	kill_list="$kill_list $pid"
	for ((i = 0; i < 600; i++)); do
		[ -S "$CRAC_CONTROL_DIR/$pid.sock" ] && break
		sleep 0.05
	done
	[ -z "$ready" ] || wait_line "$ready" "$tmp/$name.out" 120
}

rows=$tmp/rows.md
skipped=$tmp/skipped.md
notes=$tmp/notes.md
: >"$rows"
: >"$skipped"
: >"$notes"
skip_prog() {  # skip_prog NAME REASON
	echo "- **$1**: $2" >>"$skipped"
	echo "zoo.sh: $1 left out: $2" >&2
}

# kinds CHECKOUT: what `crac check` refused, by kind: "epoll ×3, tcp listening ×1"
kinds() {
	sed -n 's/^  *check fd [0-9]*: [^)]*): \([a-z0-9]*\) .*(\([^)]*\)).*/\1 \2/p; s/^  *check \(mapping\|child\) .*/\1/p' "$1" |
		sed 's/^\(tcp\|udp\|unix\).*listening$/\1 listening/; t; s/^\(tcp\|udp\|unix\) .*/\1/; s/^\(pipe\) .*/\1/; s/^\(file\|device\|epoll\|eventfd\|signalfd\|timerfd\|memfd\) .*/\1/' |
		sort | uniq -c | awk '{ n = $1; $1 = ""; sub(/^ /, ""); printf "%s%s ×%d", (NR > 1 ? ", " : ""), $0, n }'
}

# slug NAME: NAME as a file name
slug() { echo "$1" | tr -c 'a-zA-Z0-9\n' '_'; }

# bench NAME MODE QUERY COLD RESTORED [--prep FUNC] CMD...:
# one row. MODE, QUERY: as for drive.py; COLD, RESTORED: the answer of a
# fresh program and of the restored one (they differ for redis, whose keys
# are set before the checkpoint by FUNC). A program refused by the safety
# checks goes into the list of programs left out, with crac check's lines
# by kind.
bench() {
	local name=$1 mode=$2 query=$3 cold=$4 restored=$5 prep="" i t f mib ready port=""
	shift 5
	[ "$1" != --prep ] || { prep=$2; shift 2; }
	f=$(slug "$name")
	command -v "$1" >/dev/null 2>&1 || { skip_prog "$name" "not installed ($1; scripts/deps.sh installs it)"; return 0; }
	echo "== $name" >&2
	ready='^ready'
	case $mode in tcp:*) ready=""; port=${mode#tcp:} ;; esac
	# -- cold start: the plain program, not under crac; one untimed run first
	: >"$tmp/$f.cold"
	for ((i = 0; i <= reps; i++)); do
		t=$("$py" "$src/bench/drive.py" "$mode" "$query" "$cold" "$tmp/$f.err" "$@") ||
			{ skip_prog "$name" "cold start failed: $(tail -n 2 "$tmp/$f.err" | tr '\n' ' ')"; return 0; }
		[ "$i" -eq 0 ] || echo "$t" >>"$tmp/$f.cold"
	done
	# -- the image: started under crac run (no policy file), warmed up,
	# checked, checkpointed from outside
	if ! start_crac "$f" "$ready" "$@" ||
		{ [ -n "$port" ] && ! "$py" "$src/bench/drive.py" "probe:$port" "$query" "$cold" /dev/null; }; then
		skip_prog "$name" "not ready under crac run: $(tail -n 2 "$tmp/$f.out" | tr '\n' ' ')"
		kill "$pid" 2>/dev/null || true
		return 0
	fi
	[ -z "$prep" ] || "$prep"
	if ! "$crac" check "$pid" >"$tmp/$f.check" 2>&1; then
		kill "$pid" 2>/dev/null || true
		skip_prog "$name" "$(refusal "$tmp/$f.check")"
		return 0
	fi
	if ! timeout 120 "$crac" checkpoint --engine image --image-dir "$tmp/$f.img" "$pid" >"$tmp/$f.ck" 2>&1; then
		skip_prog "$name" "checkpoint failed: $(tr '\n' ' ' <"$tmp/$f.ck")"
		kill "$pid" 2>/dev/null || true
		return 0
	fi
	# the original exits once its image is written
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "- **$name**: the checkpointed original did not exit within 10 s of its image being written (its threads wait in: $(for t in /proc/"$pid"/task/*; do printf '%s ' "$(cat "$t/wchan" 2>/dev/null)"; done)); measured anyway, the image restores" >>"$notes"
		tail -n 1 "$notes" >&2
		kill "$pid" 2>/dev/null || true
		sleep 0.5
	fi
	mib=$(du -sk "$tmp/$f.img" | awk '{ printf "%.1f", $1 / 1024 }')
	# -- restore to the first answer, lazy (the default here) and eager
	# (--populate: all memory loaded and verified first); one untimed first
	: >"$tmp/$f.rest"
	: >"$tmp/$f.eager"
	for ((i = 0; i <= reps; i++)); do
		t=$("$py" "$src/bench/drive.py" "$mode" "$query" "$restored" "$tmp/$f.err" "$crac" restore "$tmp/$f.img") ||
			{ failed "$name" "restore" "$tmp/$f.err"; return 0; }
		[ "$i" -eq 0 ] || echo "$t" >>"$tmp/$f.rest"
		t=$("$py" "$src/bench/drive.py" "$mode" "$query" "$restored" "$tmp/$f.err" "$crac" restore --populate "$tmp/$f.img") ||
			{ failed "$name" "restore --populate" "$tmp/$f.err"; return 0; }
		[ "$i" -eq 0 ] || echo "$t" >>"$tmp/$f.eager"
	done
	local lazy
	lazy=$("$py" "$src/bench/drive.py" "$mode" "$query" "$restored" "$tmp/$f.stats" "$crac" restore --stats "$tmp/$f.img" >/dev/null 2>&1;
		sed -n 's/^crac: restore stats:.*; \(eager\|lazy\):.*/\1/p' "$tmp/$f.stats" | head -n 1 || true)
	# where a restore's time goes, from that --stats run: the loader, the
	# threads, and the mapped address space the loader rebuilt
	local st
	st=$(sed -n 's/.*loader \([0-9.]*\) ms (.*, \([0-9.]*\) MiB mapped), threads \([0-9.]*\) ms.*/\1 \/ \3 ms, \2 MiB mapped/p' "$tmp/$f.stats" | head -n 1)
	printf '| %s | %s | %s (%s) | %s (%s) %s | %s (%s) | %s |\n' "$name" "$mib" \
		"$(median <"$tmp/$f.cold")" "$(minmax <"$tmp/$f.cold")" \
		"$(median <"$tmp/$f.rest")" "$(minmax <"$tmp/$f.rest")" "${lazy:--}" \
		"$(median <"$tmp/$f.eager")" "$(minmax <"$tmp/$f.eager")" "${st:--}" >>"$rows"
	tail -n 1 "$rows" >&2
	rm -rf "$tmp/$f.img"
}

# failed NAME WHAT ERRFILE: a restore that did not answer is a defect: into
# the notes with the lines of its stderr that say why, and its whole stderr
# kept (/tmp/crac-bench-zoo-NAME.err).
failed() {
	local keep
	keep="${CRAC_BENCH_TMPDIR:-${TMPDIR:-/tmp}}/crac-bench-zoo-$(slug "$1").err"
	cp "$3" "$keep" 2>/dev/null || true
	echo "- **$1**: \`crac $2\` did not answer (kept: $keep): $(grep -a -i -m 4 'crac\|signal\|assert\|crash\|no answer\|exit status' "$3" | tr '\n' ' ' | cut -c1-600)" >>"$notes"
	tail -n 1 "$notes" >&2
	skip_prog "$1" "$2 failed (see the defects above)"
}

# refusal CHECKOUT: "refused: N refusals (kinds); the first: LINE"
refusal() {
	echo "refused with no policy file (needs issue 11 §2): $(grep -c '^  *check ' "$1") refusals ($(kinds "$1")); the first: \`\` $(sed -n 's/^  *check //p' "$1" | head -n 1) \`\`"
}

# the source the build was made from (taken now: others may edit it meanwhile)
rev=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$src" status --porcelain -- src 2>/dev/null | awk '{ sub(/^src\//, "", $2); printf "%s%s", (NR > 1 ? ", " : ""), $2 }')
[ -z "$dirty" ] || rev="$rev with uncommitted changes in src/ ($dirty)"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
k=777
bench python3 stdin "$k" "answer $k $((3 * k)) 100000 threads=5" "answer $k $((3 * k)) 100000 threads=5" \
	"$py" "$progs/zoo.py"
bench perl stdin "$k" "answer $k $((5 * k)) 100000" "answer $k $((5 * k)) 100000" perl "$progs/zoo.pl"
bench gawk stdin "$k" "answer $k $((7 * k)) 100000" "answer $k $((7 * k)) 100000" gawk -f "$progs/zoo.awk"
bench lua5.4 stdin "$k" "answer $k $((11 * k)) 100000" "answer $k $((11 * k)) 100000" lua5.4 "$progs/zoo.lua"
bench tclsh stdin "$k" "answer $k $((23 * k)) 100000" "answer $k $((23 * k)) 100000" tclsh "$progs/zoo.tcl"
bench php-cli stdin "$k" "answer $k $((31 * k)) 100000" "answer $k $((31 * k)) 100000" php "$progs/zoo.php"
bench ruby stdin "$k" "answer $k $((29 * k)) 100000 workers=2" "answer $k $((29 * k)) 100000 workers=2" \
	ruby "$progs/zoo.rb"
sq="select 'answer', k, v, (select count(*) from t) from t where k = $k;"
bench "sqlite3 :memory:" stdin "$sq" "answer $k $((13 * k)) 100000" "answer $k $((13 * k)) 100000" \
	sqlite3 -init "$progs/zoo.sql" :memory:
bench "sqlite3 on-disk file" stdin "$sq" "answer $k $((13 * k)) 100000" "answer $k $((13 * k)) 100000" \
	sqlite3 -init "$progs/zoo.sql" "$tmp/zoo.db"
bench "bash -c" stdin "$k" "answer $k $((17 * k)) 20000" "answer $k $((17 * k)) 20000" \
	bash -c "$(cat "$progs/zoo.bash")"
bench "bash FILE" stdin "$k" "answer $k $((17 * k)) 20000" "answer $k $((17 * k)) 20000" bash "$progs/zoo.bash"
if command -v java >/dev/null 2>&1 && command -v javac >/dev/null 2>&1; then
	javac -d "$tmp" "$progs/Zoo.java"
	# no JVM flag (tests/zoo/java.bats says what crac does for a JVM)
	bench java stdin "$k" "answer $k $((19 * k)) 100000 pool=4" "answer $k $((19 * k)) 100000 pool=4" \
		java -cp "$tmp" Zoo
else
	skip_prog java "not installed (java, javac; scripts/deps.sh installs openjdk-17-jdk-headless)"
fi
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir "$tmp/www"
echo "answer from http.server" >"$tmp/www/zoo.txt"
bench "python3 -m http.server" "tcp:$port" 'GET /zoo.txt HTTP/1.0\r\n\r\n' "answer from http.server" \
	"answer from http.server" "$py" -m http.server --bind 127.0.0.1 --directory "$tmp/www" "$port"
bench "node http server" "tcp:$port" 'GET /777 HTTP/1.0\r\n\r\n' "answer 777 17871 100000" \
	"answer 777 17871 100000" node "$progs/server.js" "$port"
if command -v nginx >/dev/null 2>&1; then
	# one process (master_process off): a master's workers are children,
	# which an image does not hold (tests/zoo/nginx.bats)
	mkdir -p "$tmp/nginx"
	sed -e "s|@MASTER@|off|" -e "s|@STATE@|$tmp/nginx|g" -e "s|@ROOT@|$tmp/www|" -e "s|@PORT@|$port|" \
		"$src/tests/zoo/nginx.conf.in" >"$tmp/nginx/nginx.conf"
	bench "nginx (one process)" "tcp:$port" 'GET /zoo.txt HTTP/1.0\r\n\r\n' "answer from http.server" \
		"answer from http.server" nginx -e stderr -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf"
else
	skip_prog nginx "not installed (scripts/deps.sh installs nginx-light)"
fi
redis_keys() {  # 1000 keys set in the server to checkpoint
	local i args=()
	for ((i = 0; i < 1000; i++)); do args+=("k$i" "v$((29 * i))"); done
	timeout 30 redis-cli -h 127.0.0.1 -p "$port" MSET "${args[@]}" >/dev/null
}
bench "redis-server" "tcp:$port" 'GET k777\r\n' '$-1' "v$((29 * 777))" --prep redis_keys \
	redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize no
load1=$(cut -d' ' -f1-3 /proc/loadavg)

table() {
	echo "| program | image MiB | cold start → 1st answer, ms: median (min–max) | restore → 1st answer, ms: median (min–max), mode | restore --populate → 1st answer, ms | one lazy restore (--stats): loader / threads ms, address space |"
	echo "|---|---|---|---|---|---|"
	cat "$rows"
}
table

{
	echo "# crac: the program zoo, cold start vs restore"
	echo
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/zoo.sh\`${CRAC_BENCH_QUICK:+ (--quick: few runs)} on $(nproc) cores, Linux $(uname -r); crac built from $rev."
	printf 'Machine load (/proc/loadavg, 1/5/15 min): %s at the start, %s at the end' "$load0" "$load1"
	if awk -v a="${load0%% *}" -v b="${load1%% *}" -v n="$(nproc)" 'BEGIN { exit !(a > n || b > n) }'; then
		echo "; with a load above the $(nproc) cores, every time here is stretched by waiting for a CPU, and the ratios between columns mean more than the absolute numbers."
	else
		echo "."
	fi
	echo
	table
	echo
	echo "How it is measured (median of $reps runs each, after one untimed run):"
	echo
	echo "- The programs are those of the zoo tests (\`tests/zoo/progs\`): each builds a table (100000 entries; bash 20000) before it prints \"ready\", then answers one query per line of stdin from that table (python3 through a pool of 4 threads, after importing asyncio, decimal, email, http.client, json, sqlite3, ssl and xml; java through a pool of 4 threads; ruby through 2 worker threads)."
	echo "- A small driver (python3) takes CLOCK_MONOTONIC right before it spawns the command with pipes for stdin and stdout, writes the query at once, and takes CLOCK_MONOTONIC again when the expected answer line arrives; no shell runs in between. It then closes stdin and checks that the program printed nothing more than \"eof\" and exited 0."
	echo "- Cold start: the plain program (not under \`crac run\`), warm-up included: what a restore replaces."
	echo "- Image: the program started under \`crac run\` with no policy file, warmed up, checkpointed from outside with \`crac checkpoint --engine image\`; image MiB is its disk usage (\`du\`). Restore: \`crac restore DIR\` with the query on its stdin; the image is in the page cache; the mode after the times says whether the loader ran lazy (userfaultfd: pages come in on demand; root here) or eager (from \`crac restore --stats\`). \`crac restore --populate DIR\` is eager: all memory loaded and verified before the program runs."
	echo "- The last column comes from one more lazy restore with \`--stats\`: the loader's own time (from its exec to the jump into the program: checks, mapped files verified, memory map rebuilt), the time to recreate the threads, and the address space mapped (reservations included: a JVM reserves GiBs)."
	echo "- Servers (python3 -m http.server, node, nginx as one process, redis-server): the driver connects to the port every millisecond from the spawn on and sends the request until the reply holds the answer (a file; a value from the warm Map; \`GET k777\` with the 1000 keys set before the checkpoint, which a cold start answers with nil); then SIGTERM."
	echo "- java runs with no flag (\`java -cp DIR Zoo\`): its class image \`lib/modules\`, which it keeps open, is carried as an open file, and its performance-data file /tmp/hsperfdata_USER/PID (the jstat counters, mapped shared and writable) is stored as memory."
	echo
	if [ -s "$notes" ]; then
		echo "Defects seen while measuring:"
		echo
		cat "$notes"
		echo
	fi
	echo "Refused with no policy file, or not measured:"
	echo
	if [ -s "$skipped" ]; then cat "$skipped"; else echo "none."; fi
} >"$doc"
echo "zoo.sh: wrote $doc" >&2
