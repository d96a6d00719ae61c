#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/start.sh - `crac start` on a warm image vs a cold start: time from
# launching the command to the first answer of a TCP server, for python3
# with heavy imports (asyncio, decimal, email, http.client, json, sqlite3,
# ssl, xml, as tests/zoo) and for tests/progs/start_server (the C demo).
#
#   bench/start.sh [BUILD_DIR] [RUNS]     (defaults: build, 10)
#
# Each run launches the command and connects to 127.0.0.1:PORT every
# 0.2 ms until a line comes back; the run is then ended with SIGTERM.
# Rows: plain (the program alone), crac start cold (no image: under crac,
# no checkpoint taken), crac restore DIR (the image alone, no supervisor),
# crac start warm (restores the image a first `crac start` wrote after
# READY=1). The python3 kinds run interleaved (one of each per round), so
# that a change in the machine's load hits them alike. Each python3 row also
# has the page faults (minor + major, all threads, /proc/PID/stat of the
# answering process read at its answer) from its fork to the answer (for
# crac start also those of the crac process itself: the static front, then
# crac-cli, the supervisor), and the bound: a static binary that only touches as many fresh pages as the
# warm start takes faults (the fewest of three runs), timed in the same
# rounds. Prints the median and min/max in ms, and the load: the numbers
# mean little on a loaded machine. Writes the same as markdown to DOC
# (CRAC_BENCH_START_DOC, default docs/bench-start.md).
set -eu
# only stdio: an image cannot carry a pipe to another process
for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
B="$(cd "${1:-build}" && pwd)"
RUNS="${2:-10}"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
DOC="${CRAC_BENCH_START_DOC:-$SRC/docs/bench-start.md}"
T="$(mktemp -d /tmp/crac-bench-start.XXXXXX)"
trap 'rm -rf "$T"' EXIT
export CRAC_CONTROL_DIR="$T/ctl"
PY=/usr/bin/python3
PORT=$((20000 + $$ % 10000))   # below the ephemeral ports

cat >"$T/server.py" <<'PYEOF'
import asyncio, decimal, email.mime.text, http.client, json, os, socket, sqlite3, ssl, sys
import xml.etree.ElementTree
port = int(sys.argv[1])
warm = {i: str(i) * 3 for i in range(100000)}
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(64)
n = os.environ.get("NOTIFY_SOCKET")
if n:
    u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    u.sendto(b"READY=1", n)
    u.close()
while True:
    c, _ = s.accept()
    c.sendall(("answer %d %d\n" % (os.getpid(), len(warm))).encode())
    c.close()
PYEOF

cat >"$T/measure.py" <<'PYEOF'
import os, signal, socket, subprocess, sys, time
port, cmd = int(sys.argv[1]), sys.argv[2:]
t0 = time.perf_counter()
p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=open(os.environ["ERR"], "a"), close_fds=True)
while True:
    if time.perf_counter() - t0 > 30 or p.poll() is not None:
        sys.exit("no answer from %s (see its stderr)" % cmd)
    try:
        c = socket.create_connection(("127.0.0.1", port))
        line = c.makefile().readline()
        c.close()
        if line.startswith("answer"):
            break
    except OSError:
        pass
    time.sleep(0.0002)
t = (time.perf_counter() - t0) * 1000
# the answering process: the program itself (plain), or the restored or
# cold child of crac start; fields 10 and 12 of its stat: minflt, majflt
faults = -1
try:
    f = open("/proc/%d/stat" % int(line.split()[1])).read().rsplit(")", 1)[1].split()
    faults = int(f[7]) + int(f[9])
except (OSError, IndexError, ValueError):
    pass
# the command's own process at the answer: for crac start the supervisor
# (the static front, then crac-cli), which forked the answering process
own = -1
try:
    f = open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()
    own = int(f[7]) + int(f[9])
except (OSError, IndexError, ValueError):
    pass
p.send_signal(signal.SIGTERM)
p.wait()
print("%.1f %d %d" % (t, faults, own))
PYEOF

stats() { sort -n | awk '{ v[NR] = $1 } END { printf "median %6.1f ms   min %6.1f   max %6.1f   (%d runs)\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR], NR }'; }
med() { sort -g "$1" | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else printf "%.1f\n", NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
mmm() { sort -g "$1" | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else printf "%.1f (%.1f–%.1f)\n", NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2, a[1], a[NR] }'; }
run() {   # run LABEL CMD...
	label="$1"; shift
	printf '%-34s ' "$label"
	i=0
	while [ $i -lt "$RUNS" ]; do
		ERR="$T/err" "$PY" "$T/measure.py" "$PORT" "$@" | cut -d' ' -f1
		i=$((i + 1))
	done | stats
}
once() {  # once KIND CMD...: one run, "ms faults own" appended to T/KIND.ms, .faults, .own
	local k=$1 o
	shift
	o=$(ERR="$T/err" "$PY" "$T/measure.py" "$PORT" "$@") || { echo "$k: $o" >&2; return 0; }
	set -- $o
	echo "$1" >>"$T/$k.ms"
	echo "$2" >>"$T/$k.faults"
	echo "$3" >>"$T/$k.own"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "# bench/start.sh: first answer after launch, $(nproc) cores, $(uname -r), load $(cut -d' ' -f1 /proc/loadavg)"
if [ -z "${SKIP_PY:-}" ]; then
echo "## python3 with heavy imports"
# the image: a cold start that checkpoints after READY=1, then ends
ERR="$T/err" "$PY" - "$PORT" "$B/crac" "$T/img" "$PY" "$T/server.py" <<'PYEOF'
import subprocess, sys, time, signal
port, crac, img, py, srv = sys.argv[1:]
p = subprocess.Popen([crac, "start", "--image", img, "--checkpoint-on-ready", "--", py, srv, port],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, close_fds=True)
err = b""
while b"written to" not in err:
    line = p.stderr.readline()
    if not line:
        sys.exit("no image of server.py: " + err.decode(errors="replace"))
    err += line
p.send_signal(signal.SIGTERM); p.wait()
PYEOF
warm=("$B/crac" start --image "$T/img" --checkpoint-on-ready -- "$PY" "$T/server.py" "$PORT")
# the bound: the fewest page faults of three warm starts, as fresh pages
# faulted in by a static binary without libc (first_ns after them):
# bench/static/touch_pages.c. Those the loader's fill takes inside system
# calls (a `crac restore --stats` of the image: "N page faults filling")
# with one MADV_POPULATE_WRITE, the rest by touching them.
N="" NF=0
for _ in 1 2 3; do
	o=$(ERR="$T/err" "$PY" "$T/measure.py" "$PORT" "${warm[@]}") || continue
	f=$(echo "$o" | cut -d' ' -f2)
	[ "$f" -gt 0 ] 2>/dev/null || continue
	if [ -z "$N" ] || [ "$f" -lt "$N" ]; then N=$f; fi
done
if [ -n "$N" ]; then
	ERR="$T/fill.err" "$PY" "$T/measure.py" "$PORT" "$B/crac" restore --stats "$T/img" >/dev/null || true
	NF=$(sed -n 's/^crac: loader: .*; \([0-9]*\) page faults filling.*/\1/p' "$T/fill.err" 2>/dev/null | head -n 1)
	[ -n "$NF" ] && [ "$NF" -le "$N" ] || NF=0
fi
if [ -n "$N" ] && [ -x "$B/bench/image_heap" ] && command -v cc >/dev/null &&
   cc -O2 -static -nostdlib -fno-stack-protector -fcf-protection=none -DPAGES="$((N - NF))" -DPOPULATE="$NF" \
	-o "$T/touch" "$SRC/bench/static/touch_pages.c"; then
	:
else
	N=""
fi
kinds="plain cold restore warm"
for k in $kinds touch; do : >"$T/$k.ms"; : >"$T/$k.faults"; : >"$T/$k.own"; done
i=0
while [ $i -le "$RUNS" ]; do   # round 0 is untimed
	for k in $kinds touch; do
		case $k in
		plain) once $k "$PY" "$T/server.py" "$PORT" ;;
		cold) once $k sh -c "rm -rf '$T/cold'; exec '$B/crac' start --image '$T/cold' --checkpoint-after 1h -- '$PY' '$T/server.py' '$PORT'" ;;
		restore) once $k "$B/crac" restore "$T/img" ;;
		warm) once $k "${warm[@]}" ;;
		touch)
			[ -n "$N" ] || continue
			o=$("$B/bench/image_heap" spawn "$T/touch" 2>/dev/null) || continue
			a=$(echo "$o" | sed -n 's/^first_ns=\([0-9]*\).*/\1/p')
			sp=$(echo "$o" | sed -n 's/.*spawn_ns=\([0-9]*\).*/\1/p')
			[ -n "$a" ] && [ -n "$sp" ] && awk -v a="$a" -v s="$sp" 'BEGIN { printf "%.1f\n", (a - s) / 1e6 }' >>"$T/touch.ms"
			echo "$N" >>"$T/touch.faults" ;;
		esac
	done
	if [ $i -eq 0 ]; then for k in $kinds touch; do : >"$T/$k.ms"; : >"$T/$k.faults"; : >"$T/$k.own"; done; fi
	i=$((i + 1))
done
label() {
	case $1 in
	plain) echo "python3 (plain)" ;;
	cold) echo "crac start, cold (no image)" ;;
	restore) echo "crac restore DIR (no crac start)" ;;
	warm) echo "crac start, warm (restore)" ;;
	touch) echo "bound: fault in $N fresh pages" ;;
	esac
}
for k in $kinds touch; do
	[ -s "$T/$k.ms" ] || continue
	printf '%-34s %s   faults %s%s\n' "$(label $k)" "$(stats <"$T/$k.ms")" "$(med "$T/$k.faults" | cut -d. -f1)" \
		"$(case $k in cold|warm) echo ", crac's own $(med "$T/$k.own" | cut -d. -f1)" ;; esac)"
done
if [ -n "$N" ]; then
	BOUND_LINE="python3 crac start (warm): $(med "$T/warm.ms") ms, \`crac restore DIR\`: $(med "$T/restore.ms") ms; bound from its $N page faults: $(med "$T/touch.ms") ms"
	echo "$BOUND_LINE"
fi
if grep -q cold "$T/err" 2>/dev/null && grep -q "does not restore\|failed" "$T/err"; then
	echo "warning: some warm starts were cold:"; cat "$T/err"
fi
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
rev=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
	echo "# crac start: first answer after launch"
	echo
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/start.sh\` ($RUNS rounds after an untimed one; the kinds interleaved in each round) on $(nproc) cores, Linux $(uname -r); crac built from $rev. Machine load (/proc/loadavg, 1/5/15 min): $LOAD0 at the start, $LOAD1 at the end."
	echo
	echo "python3 with heavy imports (asyncio, decimal, email, http.client, json, sqlite3, ssl, xml; a 100000-entry dict) serving one line per TCP connection: from launching the command to the first line received (a client connects every 0.2 ms)."
	echo
	echo "| what | ms, median (min–max) | page faults to the answer (median) | crac start's own page faults (median) |"
	echo "|---|---|---|---|"
	for k in $kinds touch; do
		[ -s "$T/$k.ms" ] || continue
		own=–
		case $k in cold|warm) own=$(med "$T/$k.own" | cut -d. -f1) ;; esac
		echo "| $(label $k) | $(mmm "$T/$k.ms") | $(med "$T/$k.faults" | cut -d. -f1) | $own |"
	done
	echo
	[ -z "${BOUND_LINE:-}" ] || { echo "$BOUND_LINE."; echo; }
	echo "Page faults: minor + major of the answering process and all its threads (/proc/PID/stat, read when its answer arrives), from its fork: for \`crac restore DIR\` that is the crac command, which is the loader, and the restored program (one process, one exec); for \`crac start\` the child it forks, which execs the loader. A fault the lazy thread serves counts once; the pages it installs ahead (UFFDIO_COPY) are not faults. crac start's own: the faults of the crac process itself (the static front, then crac-cli, the supervisor that started the answering process) at the answer. The bound is a static binary without libc that faults in as many fresh anonymous pages as the fewest faults of three warm starts, timed from posix_spawn to its end in the same rounds: $NF of them with one MADV_POPULATE_WRITE, as many as the loader's fill takes inside its system calls (\`crac restore --stats\`: \"page faults filling\"; the kernel's fault for a system call costs a fraction of a program's own first touch), the other $((N - NF)) by touching them (on this VM the first touch of a page is the dear step: shadow paging), so a restore that takes that many faults cannot answer sooner."
	echo
} >"$DOC"
echo "start.sh: wrote $DOC" >&2

fi

echo "## tests/progs/start_server (C)"
S="$B/tests/start_server"
mkdir -p "$T/d"
run "start_server (plain)" env START_PORT="$PORT" "$S" "$T/d"
rm -rf "$T/img"
START_PORT="$PORT" "$B/crac" start --image "$T/img" --checkpoint-on-ready -- "$S" "$T/d" </dev/null >/dev/null 2>"$T/w" &
w=$!
for _ in $(seq 200); do grep -q "written to" "$T/w" && break; sleep 0.05; done
grep -q "written to" "$T/w" || { echo "no image of start_server:"; cat "$T/w"; exit 1; }
kill -TERM $w; wait $w || true
run "crac start, warm (restore)" env START_PORT="$PORT" "$B/crac" start --image "$T/img" --checkpoint-on-ready -- "$S" "$T/d"
