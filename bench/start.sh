#!/bin/bash
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
# READY=1). Prints the median and min/max in ms, and the load: the numbers
# mean little on a loaded machine.
set -eu
# only stdio: an image cannot carry a pipe to another process
for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
B="$(cd "${1:-build}" && pwd)"
RUNS="${2:-10}"
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
p.send_signal(signal.SIGTERM)
p.wait()
print("%.1f" % t)
PYEOF

stats() { sort -n | awk '{ v[NR] = $1 } END { printf "median %6.1f ms   min %6.1f   max %6.1f   (%d runs)\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR], NR }'; }
run() {   # run LABEL CMD...
	label="$1"; shift
	printf '%-34s ' "$label"
	i=0
	while [ $i -lt "$RUNS" ]; do
		ERR="$T/err" "$PY" "$T/measure.py" "$PORT" "$@"
		i=$((i + 1))
	done | stats
}

echo "# bench/start.sh: first answer after launch, $(nproc) cores, $(uname -r), load $(cut -d' ' -f1 /proc/loadavg)"
if [ -z "${SKIP_PY:-}" ]; then
echo "## python3 with heavy imports"
run "python3 (plain)" "$PY" "$T/server.py" "$PORT"
run "crac start, cold (no image)" sh -c "rm -rf '$T/cold'; exec '$B/crac' start --image '$T/cold' --checkpoint-after 1h -- '$PY' '$T/server.py' '$PORT'"
# the image: a cold start that checkpoints after READY=1, then ends
ERR="$T/err" "$PY" - "$PORT" "$B/crac" "$T/img" "$PY" "$T/server.py" <<'PYEOF'
import subprocess, sys, time, signal
port, crac, img, py, srv = sys.argv[1:]
p = subprocess.Popen([crac, "start", "--image", img, "--checkpoint-on-ready", "--", py, srv, port],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, close_fds=True)
err = b""
while b"written to" not in err:
    err += p.stderr.readline()
p.send_signal(signal.SIGTERM); p.wait()
PYEOF
run "crac restore DIR (no crac start)" "$B/crac" restore "$T/img"
run "crac start, warm (restore)" "$B/crac" start --image "$T/img" --checkpoint-on-ready -- "$PY" "$T/server.py" "$PORT"
if grep -q cold "$T/err" 2>/dev/null && grep -q "does not restore\|failed" "$T/err"; then
	echo "warning: some warm starts were cold:"; cat "$T/err"
fi

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
