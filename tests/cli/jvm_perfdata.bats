#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# (Not named objects_*: it runs python3 under `crac run`, which the ASan
# stage of scripts/test.sh cannot do.)
# A JVM's performance-data file, without a JVM (tests/zoo/java.bats has
# one): python3 does what HotSpot does with /tmp/hsperfdata_USER/PID: it
# creates the file named by its own pid, maps it shared and writable,
# closes it, and a thread writes a counter there every millisecond (the
# StatSampler). The image engine takes no policy for it: it stores the
# mapping's pages and restores it as private memory at the same address,
# with what was written before; the file is not mapped again (it has
# changed by then: before, a `mapping ... warn` policy let the checkpoint
# go on and its read-back refused the changed file).

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-perfdata.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LOG
	need_python
	require_image_engine
	cat >"$T/perf.py" <<'PY'
import ctypes, mmap, os, pwd, signal, sys, threading, time
d = "/tmp/hsperfdata_" + pwd.getpwuid(os.geteuid()).pw_name
os.makedirs(d, mode=0o755, exist_ok=True)
path = "%s/%d" % (d, os.getpid())
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
os.ftruncate(fd, 32768)
m = mmap.mmap(fd, 32768, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
os.close(fd)
addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
m[0:8] = b"CRACPERF"
m[20000:20005] = b"hello"
def count():
    return int.from_bytes(m[8:16], "little")
def sample():   # HotSpot's StatSampler: the counters, every millisecond
    while True:
        m[8:16] = (count() + 1).to_bytes(8, "little")
        time.sleep(0.001)
threading.Thread(target=sample, daemon=True).start()
print("ready", path, flush=True)
orig = os.getpid()
# crac run: checkpoint now (again every 5 s: a checkpoint that failed, say
# refused, says why in crac run's output, and the test's timeout ends it)
n = 0
while os.getpid() == orig:
    if n % 500 == 0:
        os.kill(os.getppid(), signal.SIGUSR1)
    n += 1
    time.sleep(0.01)
# the restored copy: what the mapping holds, whether it still counts, what it is
print("magic", m[0:8].decode(), m[20000:20005].decode())
c = count(); time.sleep(0.1)
print("counting", count() > c > 0)
for l in open("/proc/self/maps"):
    f = l.split()
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    if lo <= addr < hi:
        print("mapping", f[1], f[5] if len(f) > 5 else "anonymous")
PY
	run_to_image "$T/run.out" -- "$PY" "$T/perf.py" || true
	PERF=$(sed -n 's/^ready //p' "$T/run.out")
	[ -f "$T/img/header" ] || { cat "$T/run.out"; false; }
}

teardown() {
	[ -z "${PERF:-}" ] || rm -f "$PERF"
	rm -rf "$T"
}

@test "a JVM-style perf-data file (/tmp/hsperfdata_USER/PID) is restored as private memory with its content" {
	[ -n "$PERF" ]
	run clean "$CRAC" inspect "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	# one line names it: a private anonymous mapping, not a mapped file
	[ "$(echo "$output" | grep -cF "$PERF")" -eq 1 ]
	echo "$output" | grep -F "$PERF" | grep -Eq " rw-p anon +32K "
	restores_twice "$(printf 'magic CRACPERF hello\ncounting True\nmapping rw-p anonymous')"
}
