#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# bench/side.py BUILD OUT DOC - crac and CRIU side by side (issue 12 §6), run
# by bench/side.sh: the same unmodified programs, in the same run, through
#   - crac: `crac run` + `crac checkpoint --engine image` from outside, then
#     `crac restore DIR` (lazy: userfaultfd, as root) and
#     `crac restore --populate DIR` (eager);
#   - CRIU (when CRAC_BENCH_CRIU is a working criu; root): `criu dump`, then
#     `criu restore` and `criu lazy-pages` + `criu restore --lazy-pages`,
#     stdin and stdout passed with --inherit-fd, so that the restored program
#     answers the driver exactly as crac's does.
# Workloads:
#   - the zoo's programs that answer on stdin (tests/zoo/progs: python3 with
#     heavy imports, perl, gawk, lua5.4, sqlite3, bash): spawn to the first
#     answer, cold start vs restore; checkpoint time;
#   - bench/heap_serve with a dirty heap (16 MiB and 1 GiB): the first
#     checkpoint of the process (crac's fsync'd image vs criu dump + fsync of
#     its files), restore to the first answer, and the read of the whole heap
#     right after it (where a lazy restore pays for its pages);
#   - incremental vs full re-checkpoint (1 GiB heap, 1% of the pages changed)
#     when `crac checkpoint --help` lists --incremental.
# Every figure is median (min–max) over the runs; the kinds of one workload
# run interleaved (one untimed round first); the machine load is taken
# before and after each table. Writes DOC, OUT/side-*.dat and, with gnuplot,
# two PNGs next to DOC.
#
# Environment (all optional): CRAC_BENCH_CRIU (a criu binary), CRAC_BENCH_QUICK=1,
# CRAC_BENCH_SIDE_REPS (default 7; quick 2), CRAC_BENCH_SIDE_BIG_REPS (1 GiB
# and the incremental row; default 3, quick 1), CRAC_BENCH_SIDE_SIZES (MiB;
# default "16 1024", quick "16 256"), CRAC_BENCH_SIDE_INCR_MIB (default 1024,
# quick 256), CRAC_BENCH_SIDE_ZOO (program names; default all),
# CRAC_BENCH_TMPDIR (images; default /var/tmp), CRAC_BENCH_SIDE_CRIU_NOTE
# (set by side.sh: how CRIU was run).
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drive import Lines, ask as ask_tcp  # noqa: E402  (bench/drive.py)

build, out, doc = (os.path.abspath(a) for a in sys.argv[1:4])
src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
quick = os.environ.get("CRAC_BENCH_QUICK") == "1"
reps = int(os.environ.get("CRAC_BENCH_SIDE_REPS", "2" if quick else "7"))
big_reps = int(os.environ.get("CRAC_BENCH_SIDE_BIG_REPS", "1" if quick else "3"))
sizes = [int(s) for s in os.environ.get("CRAC_BENCH_SIDE_SIZES", "16 256" if quick else "16 1024").split()]
incr_mib = int(os.environ.get("CRAC_BENCH_SIDE_INCR_MIB", "256" if quick else "1024"))
# the lazy whole-heap read after idle, without the warm-up (largest heap of 1 GiB and more)
cold_reps = int(os.environ.get("CRAC_BENCH_SIDE_COLD_REPS", "1" if quick else "4"))
COLD_IDLE_S = 12
zoo_only = os.environ.get("CRAC_BENCH_SIDE_ZOO", "").split()
criu = os.environ.get("CRAC_BENCH_CRIU", "")
crac = os.path.join(build, "crac")
heap_serve = os.path.join(build, "bench", "heap_serve")
warm_bin = os.path.join(build, "bench", "warm")
progs = os.path.join(src, "tests", "zoo", "progs")
py = sys.executable

os.makedirs(out, exist_ok=True)
t_start = time.time()
tmp = tempfile.mkdtemp(prefix="crac-bench-side.", dir=os.environ.get("CRAC_BENCH_TMPDIR", "/var/tmp"))
os.environ["CRAC_CONTROL_DIR"] = os.path.join(tmp, "ctl")
os.mkdir(os.environ["CRAC_CONTROL_DIR"], 0o700)
for v in ("CRAC_ENGINE", "CRAC_CONTROL", "CRAC_IMAGE_DIR", "CRAC_POLICIES", "CRAC_IMAGE_STATS", "CRAC_LOADER",
          "CRAC_VERIFY_FILES", "CRAC_CRIU", "CRAC_CRIU_OPTS"):
    os.environ.pop(v, None)
notes = []


def note(s):
    notes.append(s)
    print("side: " + s, file=sys.stderr, flush=True)


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# -- statistics -----------------------------------------------------------------
def med(v):
    v = sorted(v)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def fmt(v, unit=""):
    """median (min–max), or a dash"""
    if not v:
        return "–"
    return "%s (%s–%s)%s" % (num(med(v)), num(min(v)), num(max(v)), unit)


def num(x):
    return "%.0f" % x if x >= 100 else "%.1f" % x if x >= 10 else "%.2f" % x


def ratio(a, b):
    """median of a / median of b, with the range of the pairwise extremes"""
    if not a or not b or not med(b):
        return "–"
    lo, hi = min(a) / max(b), max(a) / min(b)
    return "%.2f (%.2f–%.2f)" % (med(a) / med(b), lo, hi)


# -- processes --------------------------------------------------------------------
def run_quiet(cmd, timeout=900):
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout)


class Prog:
    """A program started with pipes on stdin and stdout (its own session, so
    that CRIU needs no --shell-job), waited for its "ready" line."""

    def __init__(self, cmd, ready="ready", env=None, tcp=None, quiet=False):
        # quiet: stderr to /dev/null (for CRIU, which restores a regular
        # file only at the size it had, and the restored copies write to it)
        self.err = os.path.join(tmp, "prog.err")
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL if quiet else open(self.err, "wb"),
                                  start_new_session=True, env=env)
        self.lines = Lines(self.p.stdout.fileno())
        try:
            if tcp:   # a server: ready when it answers (tcp: port, query, answer)
                wait_tcp(tcp[0], tcp[1], tcp[2], lambda: self.p.poll() is None, 300)
            else:
                self.lines.until(lambda s: s.startswith(ready), 300)
        except RuntimeError as e:
            self.kill()
            raise RuntimeError("%s: not ready: %s: %s" % (cmd[0], e, tail(self.err)))
        self.pid = self.p.pid
        self.stdin = os.readlink("/proc/%d/fd/0" % self.pid)
        self.stdout = os.readlink("/proc/%d/fd/1" % self.pid)

    def ask(self, q, pred, timeout=300):
        self.p.stdin.write((q + "\n").encode())
        self.p.stdin.flush()
        return self.lines.until(pred, timeout)

    def gone(self, timeout=30):
        try:
            self.p.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def wait_tcp(port, q, expect, alive, timeout=120):
    """Asks every millisecond until the answer comes (or ALIVE() is false)."""
    end = time.monotonic() + timeout
    while not ask_tcp(port, q, expect):
        if time.monotonic() > end or not alive():
            raise RuntimeError("no answer %r on port %d" % (expect, port))
        time.sleep(0.001)


def tail(path, n=300):
    try:
        with open(path, errors="replace") as f:
            return " ".join(f.read().split())[-n:]
    except OSError:
        return ""


def fsync_dir(d):
    for name in os.listdir(d):
        fd = os.open(os.path.join(d, name), os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    fd = os.open(d, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


# -- checkpoints: the time of the command (and CRIU's fsync) -------------------------
def ckpt_crac(prog, img, extra=()):
    shutil.rmtree(img, ignore_errors=True)
    t0 = time.monotonic()
    r = run_quiet([crac, "checkpoint", "--engine", "image", "--image-dir", img, *extra, str(prog.pid)])
    t = (time.monotonic() - t0) * 1e3
    if r.returncode:
        raise RuntimeError("crac checkpoint: " + " ".join(r.stdout.decode(errors="replace").split())[:300])
    return t


def ckpt_criu(prog, img):
    shutil.rmtree(img, ignore_errors=True)
    os.makedirs(img)
    os.sync()
    t0 = time.monotonic()
    r = run_quiet([criu, "dump", "-t", str(prog.pid), "-D", img, "-o", "dump.log"])
    if r.returncode == 0:
        fsync_dir(img)
    t = (time.monotonic() - t0) * 1e3
    if r.returncode:
        raise RuntimeError("criu dump: " + tail(os.path.join(img, "dump.log")))
    return t


def du_mib(d):
    total = 0
    for name in os.listdir(d):
        if name.endswith(".log"):
            continue
        total += os.lstat(os.path.join(d, name)).st_blocks * 512
    return total / 1048576


# -- memory the host backs: the same start for every timed step of a large heap --------
WARM_FROM_MIB = 256
warm_ms = []   # what each warm-up took (large: the memory had gone back to the host)


def warm(mib):
    """Before a timed step that needs MIB of fresh memory (a heap restored, an
    image in the page cache): writes 1.5 x MIB of fresh memory with
    bench/warm and frees it (untimed), so that the step meets memory that
    the host backs, whichever kind ran before it and however long ago (see
    the note on fresh memory after idle). Small heaps are left alone."""
    if mib < WARM_FROM_MIB:
        return
    r = run_quiet([warm_bin, str(mib * 3 // 2)], timeout=300)
    if r.returncode:
        raise RuntimeError("bench/warm: " + r.stdout.decode(errors="replace").strip())
    warm_ms.append(float(r.stdout.split()[0]))


# -- restores: spawn to the first answer -------------------------------------------
def restore(kind, img, ids, q1, expect, q2=None, tcp=None):
    """Spawns the restore of IMG (kind: lazy, eager, criu, criu-lazy) with new
    pipes as the program's stdin and stdout (ids: the pipe names at the
    checkpoint, for CRIU's --inherit-fd), sends q1, returns the ms to the
    line EXPECT and, with q2, the answer to it. Then closes stdin and waits
    for everything to exit. With TCP (port, query): the answer EXPECT comes
    from the server at PORT, asked every millisecond from the spawn on; the
    restored server (ids[2] for CRIU, which restores the pid) is then ended
    with SIGTERM."""
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    err = open(os.path.join(tmp, "restore.err"), "wb")
    procs = []
    try:
        t0 = time.monotonic_ns()
        if kind in ("lazy", "eager"):
            cmd = [crac, "restore", img] if kind == "lazy" else [crac, "restore", "--populate", img]
            procs.append(subprocess.Popen(cmd, stdin=a_r, stdout=b_w, stderr=err))
        else:
            cmd = [criu, "restore", "-D", img, "-o", "restore.log",
                   "--inherit-fd", "fd[%d]:%s" % (a_r, ids[0]), "--inherit-fd", "fd[%d]:%s" % (b_w, ids[1])]
            if kind == "criu-lazy":
                sock = os.path.join(img, "lazy-pages.socket")
                if os.path.exists(sock):
                    os.unlink(sock)
                procs.append(subprocess.Popen([criu, "lazy-pages", "-D", img, "-o", "lazy.log"],
                                              stdin=subprocess.DEVNULL, stdout=err, stderr=err))
                end = time.monotonic() + 30
                while not os.path.exists(sock):
                    if time.monotonic() > end or procs[0].poll() is not None:
                        raise RuntimeError("criu lazy-pages did not start: " + tail(os.path.join(img, "lazy.log")))
                    time.sleep(0.0002)
                cmd.append("--lazy-pages")
            procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                          pass_fds=(a_r, b_w)))
        os.close(a_r)
        os.close(b_w)
        a_r = b_w = -1
        lines = Lines(b_r)
        if tcp:
            wait_tcp(tcp[0], tcp[1], expect, lambda: procs[-1].poll() is None)
            t = (time.monotonic_ns() - t0) / 1e6
            os.kill(ids[2] if kind.startswith("criu") else procs[-1].pid, signal.SIGTERM)
            os.close(a_w)
            a_w = -1
            lines.rest()
            for p in reversed(procs):
                p.wait(120)
            return t, None
        os.write(a_w, (q1 + "\n").encode())
        lines.until(lambda s: s == expect)
        t = (time.monotonic_ns() - t0) / 1e6
        a2 = None
        if q2:
            os.write(a_w, (q2 + "\n").encode())
            a2 = lines.until(lambda s: s.startswith(q2))
        os.close(a_w)
        a_w = -1
        lines.rest()
        for p in reversed(procs):
            if p.wait(120):
                raise RuntimeError("%s exit status %d" % (os.path.basename(p.args[0]), p.returncode))
        return t, a2
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if tcp and kind.startswith("criu"):
            try:   # the server CRIU restored is not criu's child process
                os.kill(ids[2], signal.SIGKILL)
            except OSError:
                pass
        log = tail(os.path.join(img, "restore.log")) if kind.startswith("criu") else tail(err.name)
        raise RuntimeError("%s restore: %s: %s" % (kind, e, log))
    finally:
        for fd in (a_r, a_w, b_r, b_w):
            if fd >= 0:
                os.close(fd)
        err.close()


def rotate(kinds, i):
    """The order of round i: each kind in turn runs first, so that what comes
    right after a run that freed much memory (the VM's free page reporting
    makes the first touch of memory it gave back slower) is not always the
    same kind."""
    i %= len(kinds)
    return kinds[i:] + kinds[:i]


kinds_all = ["lazy", "eager"] + (["criu", "criu-lazy"] if criu else [])
label = {"cold": "cold start", "lazy": "crac restore (lazy)", "eager": "crac restore --populate",
         "criu": "CRIU restore", "criu-lazy": "CRIU restore --lazy-pages"}


# -- 1. the zoo's stdin programs ------------------------------------------------------
def cold_once(cmd, q, expect, tcp=None):
    t0 = time.monotonic_ns()
    if tcp:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_tcp(tcp[0], tcp[1], expect, lambda: p.poll() is None)
            return (time.monotonic_ns() - t0) / 1e6
        finally:
            p.terminate()
            p.wait(60)
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p.stdin.write((q + "\n").encode())
    p.stdin.flush()
    Lines(p.stdout.fileno()).until(lambda s: s == expect)
    t = (time.monotonic_ns() - t0) / 1e6
    p.stdin.close()
    p.stdout.read()
    p.wait(60)
    return t


k = 777
sq = "select 'answer', k, v, (select count(*) from t) from t where k = %d;" % k
zoo = [
    ("python3", [py, os.path.join(progs, "zoo.py")], str(k), "answer %d %d 100000 threads=5" % (k, 3 * k)),
    ("perl", ["perl", os.path.join(progs, "zoo.pl")], str(k), "answer %d %d 100000" % (k, 5 * k)),
    ("gawk", ["gawk", "-f", os.path.join(progs, "zoo.awk")], str(k), "answer %d %d 100000" % (k, 7 * k)),
    ("lua5.4", ["lua5.4", os.path.join(progs, "zoo.lua")], str(k), "answer %d %d 100000" % (k, 11 * k)),
    ("sqlite3", ["sqlite3", "-init", os.path.join(progs, "zoo.sql"), ":memory:"], sq,
     "answer %d %d 100000" % (k, 13 * k)),
    ("bash", ["bash", os.path.join(progs, "zoo.bash")], str(k), "answer %d %d 20000" % (k, 17 * k)),
]
# servers: (name, cmd, None, answer, (port, request, answer of the restored copy, preparation))
with socket.socket() as s0:
    s0.bind(("127.0.0.1", 0))
    port = s0.getsockname()[1]
www = os.path.join(tmp, "www")
os.mkdir(www)
with open(os.path.join(www, "zoo.txt"), "w") as fw:
    fw.write("answer from http.server\n")


def redis_keys():  # 1000 keys set in the server to checkpoint
    args = []
    for i in range(1000):
        args += ["k%d" % i, "v%d" % (29 * i)]
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "MSET", *args], stdout=subprocess.DEVNULL,
                   timeout=30, check=True)


zoo_tcp = [
    ("python3 -m http.server", [py, "-m", "http.server", "--bind", "127.0.0.1", "--directory", www, str(port)],
     None, "answer from http.server", (port, b"GET /zoo.txt HTTP/1.0\r\n\r\n", "answer from http.server", None)),
    ("node http server", ["node", os.path.join(progs, "server.js"), str(port)], None, "answer 777 17871 100000",
     (port, b"GET /777 HTTP/1.0\r\n\r\n", "answer 777 17871 100000", None)),
    ("redis-server", ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                      "--daemonize", "no"], None, "$-1", (port, b"GET k777\r\n", "v%d" % (29 * 777), redis_keys)),
]
zoo = [z + (None,) for z in zoo] + zoo_tcp
zoo_rows = []   # (name, mib crac, mib criu, {kind: [ms]}, ckpt crac [ms], ckpt criu [ms])
zoo_load = [load()]
for name, cmd, q, expect, tcp in zoo:
    if zoo_only and name.split()[0] not in zoo_only and name not in zoo_only:
        continue
    if not shutil.which(cmd[0]):
        note("%s: not installed (scripts/deps.sh installs it): left out" % name)
        continue
    print("== %s" % name, file=sys.stderr, flush=True)
    f = name.replace(".", "_")
    t = {kd: [] for kd in ["cold"] + kinds_all}
    ck = {"crac": [], "criu": []}
    imgs, ids, mib = {}, None, {}
    try:
        # the images: one checkpoint per fresh process, the last one kept
        for i in range(min(3, reps)):
            prog = Prog([crac, "run", "--", *cmd], tcp=tcp and tcp[:2] + (expect,))
            if tcp and tcp[3]:
                tcp[3]()
            ck["crac"].append(ckpt_crac(prog, os.path.join(tmp, f + ".crac")))
            if not prog.gone():
                note("%s: the original did not exit after crac's checkpoint" % name)
                prog.kill()
            if criu:
                prog = Prog(cmd, tcp=tcp and tcp[:2] + (expect,), quiet=True)
                if tcp and tcp[3]:
                    tcp[3]()
                ids = (prog.stdin, prog.stdout, prog.pid)
                ck["criu"].append(ckpt_criu(prog, os.path.join(tmp, f + ".criu")))
                prog.gone()
        imgs = {"lazy": f + ".crac", "eager": f + ".crac", "criu": f + ".criu", "criu-lazy": f + ".criu"}
        mib["crac"] = du_mib(os.path.join(tmp, f + ".crac"))
        if criu:
            mib["criu"] = du_mib(os.path.join(tmp, f + ".criu"))
        for i in range(reps + 1):
            for kd in rotate(["cold"] + kinds_all, i):
                if kd == "cold":
                    v = cold_once(cmd, q, expect, tcp and tcp[:2])
                else:
                    v = restore(kd, os.path.join(tmp, imgs[kd]), ids, q, tcp[2] if tcp else expect,
                                tcp=tcp and tcp[:2])[0]
                if i:
                    t[kd].append(v)
                elif kd == "lazy":
                    # the first lazy restore of an image records its working set (not in the medians)
                    note("%s: the first lazy restore, which records the working set: %s ms" % (name, num(v)))
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        note("%s: %s" % (name, e))
    zoo_rows.append((name, mib, t, ck))
    for d in (f + ".crac", f + ".criu"):
        shutil.rmtree(os.path.join(tmp, d), ignore_errors=True)
zoo_load.append(load())

# -- 2. heaps ---------------------------------------------------------------------------
heap_rows = []
cold = {}   # MiB: ({kind: [ms to the first answer]}, {kind: [read ms]}), after the warm-up and idle
heap_load = [load()]
for mib in sizes:
    with open("/proc/meminfo") as fm:
        avail = next(int(l.split()[1]) // 1024 for l in fm if l.startswith("MemAvailable:"))
    if avail < mib * 3 + 512:
        note("heap %d MiB: left out, MemAvailable %d MiB" % (mib, avail))
        continue
    print("== heap %d MiB" % mib, file=sys.stderr, flush=True)
    n = reps if mib < 1024 else big_reps
    t = {kd: [] for kd in kinds_all}
    rd = {kd: [] for kd in kinds_all}
    ck = {"crac": [], "criu": []}
    ids = None
    ci, cc = os.path.join(tmp, "heap.crac"), os.path.join(tmp, "heap.criu")
    try:
        for i in range(n):
            for who in rotate(["crac", "criu"] if criu else ["crac"], i):
                if who == "crac":
                    prog = Prog([crac, "run", "--", heap_serve, str(mib)])
                    warm(mib)
                    ck["crac"].append(ckpt_crac(prog, ci))
                else:
                    prog = Prog([heap_serve, str(mib)], quiet=True)
                    ids = (prog.stdin, prog.stdout)
                    warm(mib)
                    ck["criu"].append(ckpt_criu(prog, cc))
                prog.gone(120) or prog.kill()
        for i in range(n + 1):
            for kd in rotate(kinds_all, i):
                warm(mib)
                v, a = restore(kd, ci if kd in ("lazy", "eager") else cc, ids, "ping", "pong", "read")
                if "sum=ok" not in a:
                    raise RuntimeError("%s restore of %d MiB: wrong heap: %s" % (kd, mib, a))
                if i:
                    t[kd].append(v)
                    rd[kd].append(float(a.split("ms=")[1].split()[0]))
        if criu and mib >= 1024 and mib == max(sizes) and cold_reps > 0:
            # The same lazy restores and reads after COLD_IDLE_S of idle:
            # the memory they fill is what the host took back meanwhile
            # (section 2b), as for a program restored on a VM that had
            # been idle. What a run meets depends on what ran before it
            # (how much of the memory the last process freed is handed
            # back by then, which depends on how it was freed): so that
            # each kind meets the same, every run comes after the same
            # history, bench/warm writing and freeing 1.5 x the heap and
            # then COLD_IDLE_S with nothing running. The bound: `warm MIB
            # 2` after that same history, the cheapest way measured here
            # to get that much fresh memory (huge pages, both CPUs), which
            # the lazy restore has to get too.
            print("== heap %d MiB: lazy restore and read after %d s idle" % (mib, COLD_IDLE_S), file=sys.stderr,
                  flush=True)
            cold_t, cold_rd = {"lazy": [], "criu-lazy": []}, {"lazy": [], "criu-lazy": [], "bound": []}
            for i in range(cold_reps):
                for kd in rotate(["lazy", "criu-lazy", "bound"], i):
                    warm(mib)
                    time.sleep(COLD_IDLE_S)
                    if kd == "bound":
                        r = run_quiet([warm_bin, str(mib), "2"], timeout=300)
                        if r.returncode:
                            raise RuntimeError("bench/warm: " + r.stdout.decode(errors="replace").strip())
                        cold_rd[kd].append(float(r.stdout.split()[0]))
                        continue
                    v, a = restore(kd, ci if kd == "lazy" else cc, ids, "ping", "pong", "read")
                    if "sum=ok" not in a:
                        raise RuntimeError("%s restore of %d MiB after idle: wrong heap: %s" % (kd, mib, a))
                    cold_t[kd].append(v)
                    cold_rd[kd].append(float(a.split("ms=")[1].split()[0]))
            cold[mib] = (cold_t, cold_rd)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        note("heap %d MiB: %s" % (mib, e))
    heap_rows.append((mib, t, rd, ck))
    shutil.rmtree(ci, ignore_errors=True)
    shutil.rmtree(cc, ignore_errors=True)
heap_load.append(load())


# -- 2b. fresh memory after idle: a property of the machine, for the heap rows ----------------
def fresh_touch_ms(size=1 << 30):
    """ms to write one byte into each 4 KiB page of SIZE fresh anonymous
    bytes (MADV_HUGEPAGE, as crac's eager restore asks)."""
    import mmap
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        m.madvise(mmap.MADV_HUGEPAGE)
    t0 = time.monotonic()
    for off in range(0, size, 4096):
        m[off] = 1
    t = (time.monotonic() - t0) * 1e3
    m.close()
    return t


if any(mib >= WARM_FROM_MIB for mib in sizes) or incr_mib >= WARM_FROM_MIB:
    # Some VMs hand memory the guest freed back to the host after a few
    # seconds (free page reporting, DAMON): its next first touch is a fault
    # in the host too. Measured here, once: what that costs, and that a
    # warm-up right before (what every timed step of the large rows gets)
    # takes it away.
    time.sleep(20)
    idle = fresh_touch_ms()
    time.sleep(20)
    run_quiet([warm_bin, "1536"], timeout=300)
    fresh = (idle, fresh_touch_ms())
else:
    fresh = None


def note_fresh_memory(idle, warmed):
    cmdline = open("/proc/cmdline").read()
    why = " (this kernel's command line sets page_reporting.page_reporting_order)" \
        if "page_reporting" in cmdline else ""
    note("fresh memory after idle: writing 1 GiB of fresh anonymous memory (huge pages asked for; a Python loop, "
         "one byte a page) took %.0f ms after 20 s of idle, and %.0f ms after 20 s of idle and then `bench/warm "
         "1536`%s: memory the guest leaves free for a few seconds is handed back to the host and faulted in "
         "again on its first touch, and the kernel hands out free memory not yet handed back first. Whatever "
         "allocates much fresh memory pays it, crac and CRIU alike: an eager restore for its whole heap, a "
         "checkpoint for the page cache that takes its image, a lazy restore for the pages it loads. So that "
         "every kind meets the same memory, whichever ran before it, each timed step of the heap rows of %d MiB "
         "and more and of the incremental rows comes right after `bench/warm` wrote 1.5 x the heap of fresh "
         "memory and freed it (untimed; it took %s ms, median (min–max) of %d: a large figure is memory that "
         "had gone back to the host). A program restored or checkpointed after idle on such a VM pays the "
         "difference on top of these rows." % (idle, warmed, why, WARM_FROM_MIB, fmt(warm_ms) if warm_ms else "–",
                                                len(warm_ms)))


# -- 3. incremental vs full re-checkpoint --------------------------------------------------
incr = None           # None: not available; else (full [ms], incr [ms], full MiB, incr MiB)
incr_load = [load()]
helptext = run_quiet([crac, "checkpoint", "--help"]).stdout.decode(errors="replace")
if "--incremental" not in helptext:
    print("incremental: not available in this build", file=sys.stderr, flush=True)
else:
    print("== incremental vs full, %d MiB" % incr_mib, file=sys.stderr, flush=True)
    full, inc, full_mib, inc_mib = [], [], [], []
    prog = None
    try:
        prog = Prog([crac, "run", "--", heap_serve, str(incr_mib)])
        # the base: a full image that starts the write tracking (the
        # parent of an incremental image is the process's last image
        # checkpointed into with --keep-running --incremental)
        ckpt_crac(prog, os.path.join(tmp, "incr.base"), ["--keep-running", "--incremental"])
        # each incremental image holds the 1% written since the one before
        for i in range(big_reps + 1):
            d_inc = os.path.join(tmp, "incr.%d" % i)
            prog.ask("dirty 1", lambda s: s.startswith("dirtied"))
            warm(incr_mib)
            v = ckpt_crac(prog, d_inc, ["--keep-running", "--incremental"])
            if i:
                inc.append(v)
                inc_mib.append(du_mib(d_inc))
        # full images of the same process, 1% written before each
        for i in range(big_reps + 1):
            d_full = os.path.join(tmp, "full.%d" % i)
            prog.ask("dirty 1", lambda s: s.startswith("dirtied"))
            warm(incr_mib)
            v = ckpt_crac(prog, d_full, ["--keep-running"])
            if i:
                full.append(v)
                full_mib.append(du_mib(d_full))
        # the last incremental image restores the heap it had (lazy and eager)
        for kd in ("lazy", "eager"):
            a = restore(kd, d_inc, None, "ping", "pong", "read")[1]
            if "sum=ok" not in a:
                note("incremental: the %s restore of the last incremental image has a wrong heap: %s" % (kd, a))
        incr = (full, inc, full_mib, inc_mib)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        note("incremental: %s" % e)
        incr = (full, inc, full_mib, inc_mib)
    if prog:
        prog.kill()
incr_load.append(load())
if fresh:
    note_fresh_memory(*fresh)

shutil.rmtree(tmp, ignore_errors=True)


# -- the document ------------------------------------------------------------------------
def loads(l):
    return "load (1/5/15 min) %s before, %s after, %d cores" % (l[0], l[1], os.cpu_count())


def short_load(l):
    return "load %s -> %s on %d cores" % (l[0].split()[0], l[1].split()[0], os.cpu_count())


def rev():
    try:
        r = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        d = subprocess.run(["git", "-C", src, "status", "--porcelain", "--", "src", "include"],
                           capture_output=True, text=True)
        return r.stdout.strip() + (" with uncommitted changes in src/ or include/" if d.stdout.strip() else "")
    except OSError:
        return "unknown"


criu_ver = ""
if criu:
    criu_ver = run_quiet([criu, "--version"]).stdout.decode(errors="replace").split("\n")[0].replace("Version: ", "")
L = []
L.append("# crac side by side with CRIU")
L.append("")
L.append("Measured %s by `bench/side.sh` (run by `bench/run.sh`%s) on %d cores, Linux %s; crac built from %s. "
         % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t_start)), ", --quick" if quick else "", os.cpu_count(),
            os.uname().release, rev()))
L.append("Machine load (/proc/loadavg 1/5/15 min): %s at the start of the first table, %s at the end of the last; "
         "each table gives its own. With a load above the cores every time is stretched by waiting for a CPU: the "
         "ratios, taken in the same run with the kinds interleaved, mean more than the absolute times."
         % (zoo_load[0], incr_load[1]))
L.append("")
if criu:
    L.append("CRIU: %s (`%s`), run as root%s." % (criu_ver, os.path.basename(criu),
                                               os.environ.get("CRAC_BENCH_SIDE_CRIU_NOTE", "")))
else:
    L.append("CRIU: skipped (%s); the CRIU columns are empty." % os.environ.get(
        "CRAC_BENCH_SIDE_CRIU_WHY", "CRAC_BENCH_CRIU unset"))
L.append("")

# goals of issue 12 that this run can judge, against CRIU in the same run
def total(t, rd, kd):
    """Each run's time to the first answer plus its whole-heap read: a loader
    that starts loading during a slow restore (CRIU's daemon) reads less after
    the answer, so the read alone favours it."""
    return [a + b for a, b in zip(t.get(kd, []), rd.get(kd, []))]


def goal_rows():
    g = []
    py_row = next((r for r in zoo_rows if r[0] == "python3"), None)
    if py_row:
        t = py_row[2]
        v = med(t.get("lazy", []))
        g.append(("python3: restore to the first answer ≤ 10 ms (§1)",
                  "%s ms lazy, %s ms --populate; CRIU %s ms, --lazy-pages %s ms" % (
                      num(v) if v else "–", num(med(t["eager"])) if t.get("eager") else "–",
                      num(med(t["criu"])) if t.get("criu") else "–",
                      num(med(t["criu-lazy"])) if t.get("criu-lazy") else "–"),
                  "not measured" if not v else "**met**" if v <= 10 else "not met"))
    big = [r for r in heap_rows if r[0] >= 1024]
    if big:
        mib, t, rd, ck = big[-1]
        for what, a, b in (("first checkpoint ≤ CRIU dump + fsync (§5), %d MiB" % mib, ck["crac"], ck["criu"]),
                           ("whole-heap read after a lazy restore ≤ CRIU --lazy-pages (§4), %d MiB" % mib,
                            rd["lazy"], rd.get("criu-lazy", [])),
                           ("eager restore to the first answer vs CRIU restore, %d MiB" % mib,
                            t["eager"], t.get("criu", []))):
            if a and b:
                extra = ""
                if a is rd["lazy"]:
                    ta, tb = total(t, rd, "lazy"), total(t, rd, "criu-lazy")
                    extra = "; with the restore before it (first answer + read): %s ms vs %s ms: %s" % (
                        num(med(ta)), num(med(tb)), ratio(ta, tb))
                g.append((what, "%s ms vs %s ms: %s%s" % (num(med(a)), num(med(b)), ratio(a, b), extra),
                          "**met**" if med(a) <= med(b) else "not met"))
            else:
                g.append((what, "%s ms; CRIU not measured" % (num(med(a)) if a else "–"), "not measured"))
    for mib, (ct, crd) in sorted(cold.items()):
        a, b, bd = crd["lazy"], crd["criu-lazy"], crd["bound"]
        if a and b:
            ta, tb = total(ct, crd, "lazy"), total(ct, crd, "criu-lazy")
            g.append(("the same after %d s idle (memory the host took back; every run after the same history), "
                      "%d MiB" % (COLD_IDLE_S, mib),
                      "%s ms vs %s ms: %s; with the restore before it: %s ms vs %s ms: %s%s" % (
                          num(med(a)), num(med(b)), ratio(a, b), num(med(ta)), num(med(tb)), ratio(ta, tb),
                          "; bound (that much fresh memory after the same idle, huge pages, both CPUs): %s ms, "
                          "crac at %s of it, CRIU at %s" % (num(med(bd)), ratio(a, bd), ratio(b, bd)) if bd else ""),
                      "**met**" if med(a) <= med(b) else "not met"))
    if incr is not None and incr[1]:
        v = med(incr[1])
        g.append(("incremental re-checkpoint ≤ 50 ms, 1 GiB, 1% changed (§3)" if incr_mib >= 1024 else
                  "incremental re-checkpoint, %d MiB (the goal is at 1 GiB)" % incr_mib,
                  "%s ms (full: %s ms)" % (num(v), num(med(incr[0])) if incr[0] else "–"),
                  ("**met**" if v <= 50 else "not met") if incr_mib >= 1024 else "not measured"))
    else:
        g.append(("incremental re-checkpoint ≤ 50 ms (§3)", "incremental: not available in this build"
                  if incr is None else "failed (see the notes)", "not measured"))
    return g


L.append("### Goals (issue 12) judged in this run, medians")
L.append("")
L.append("| goal | measured | |")
L.append("|---|---|---|")
for a, b, c in goal_rows():
    L.append("| %s | %s | %s |" % (a, b, c))
L.append("")

# zoo table
L.append("### Programs (tests/zoo): spawn to the first answer, ms, median (min–max)")
L.append("")
if not zoo_rows:
    L.append("none measured (CRAC_BENCH_SIDE_ZOO, or none installed).")
    L.append("")
L.append(loads(zoo_load) + "; %d timed runs of each kind after one untimed round, interleaved (each round starts with "
         "the next kind)." % reps)
L.append("")
hdr = ["program", "image MiB crac / CRIU", "checkpoint ms crac", "checkpoint ms CRIU (dump + fsync)", "cold start",
       "crac restore (default)", "crac restore --populate", "CRIU restore", "CRIU --lazy-pages",
       "crac default / cold", "crac default / CRIU", "crac --populate / CRIU", "crac default / CRIU lazy-pages"]
L.append("| " + " | ".join(hdr) + " |")
L.append("|" + "---|" * len(hdr))
zdat = os.path.join(out, "side-programs.dat")
with open(zdat, "w") as fd:
    fd.write("# name " + " ".join("%s_med %s_lo %s_hi" % (x, x, x) for x in ["cold"] + ["lazy", "eager", "criu",
                                                                                     "criu-lazy"]) + "\n")
    for name, mib, t, ck in zoo_rows:
        g = lambda kd: t.get(kd, [])
        L.append("| %s | %s / %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, "%.1f" % mib["crac"] if "crac" in mib else "–", "%.1f" % mib["criu"] if "criu" in mib else "–",
            fmt(ck["crac"]), fmt(ck["criu"]), fmt(g("cold")), fmt(g("lazy")), fmt(g("eager")), fmt(g("criu")),
            fmt(g("criu-lazy")), ratio(g("lazy"), g("cold")), ratio(g("lazy"), g("criu")),
            ratio(g("eager"), g("criu")), ratio(g("lazy"), g("criu-lazy"))))
        fd.write('"%s" ' % name + " ".join("%s %s %s" % ((med(g(kd)), min(g(kd)), max(g(kd))) if g(kd) else ("-",) * 3)
                                       for kd in ["cold", "lazy", "eager", "criu", "criu-lazy"]) + "\n")
L.append("")

# heap table
L.append("### Heap (bench/heap_serve, every page dirty): checkpoint, restore to the first answer, whole-heap read")
L.append("")
if not heap_rows:
    L.append("none measured (CRAC_BENCH_SIDE_SIZES empty, or not enough memory).")
    L.append("")
L.append(loads(heap_load) + "; %d runs each (%d at 1 GiB and more), ms, median (min–max)." % (reps, big_reps))
L.append("")
hdr = ["heap", "what", "crac", "CRIU", "crac / CRIU"]
L.append("| " + " | ".join(hdr) + " |")
L.append("|" + "---|" * len(hdr))
hdat = os.path.join(out, "side-heap.dat")
with open(hdat, "w") as fd:
    fd.write("# label crac_med crac_lo crac_hi criu_med criu_lo criu_hi\n")
    for mib, t, rd, ck in heap_rows:
        h = "%d MiB" % mib if mib < 1024 else "%d GiB" % (mib // 1024)
        rows = [
            ("first checkpoint (crac: fsync'd image; CRIU: dump + fsync)", ck["crac"], ck["criu"], "ckpt"),
            ("eager restore → first answer (crac --populate; CRIU restore)", t["eager"], t.get("criu", []), "eager"),
            ("lazy restore → first answer (crac; CRIU --lazy-pages)", t["lazy"], t.get("criu-lazy", []), "lazy"),
            ("whole-heap read right after the lazy restore", rd["lazy"], rd.get("criu-lazy", []), "lazy read"),
            ("lazy restore and whole-heap read (first answer + read, each run)", total(t, rd, "lazy"),
             total(t, rd, "criu-lazy"), "lazy total"),
            ("whole-heap read right after the eager restore", rd["eager"], rd.get("criu", []), "eager read"),
        ]
        if mib in cold:
            ct, crd = cold[mib]
            rows += [
                ("whole-heap read right after the lazy restore, after %d s idle (%d runs)" % (
                    COLD_IDLE_S, len(crd["lazy"])), crd["lazy"], crd["criu-lazy"], "lazy read idle"),
                ("lazy restore and whole-heap read, after %d s idle" % COLD_IDLE_S,
                 total(ct, crd, "lazy"), total(ct, crd, "criu-lazy"), "lazy total idle"),
            ]
        for what, a, b, short in rows:
            L.append("| %s | %s | %s | %s | %s |" % (h, what, fmt(a), fmt(b), ratio(a, b)))
        if mib in cold and cold[mib][1]["bound"]:
            bd, crd = cold[mib][1]["bound"], cold[mib][1]
            L.append("| %s | bound after %d s idle: %d MiB of fresh memory, huge pages, both CPUs (`bench/warm %d 2`; "
                     "in the crac column; the ratio column: crac's read / the bound, CRIU's read / the bound) | "
                     "%s | – | %s; %s |" % (h, COLD_IDLE_S, mib, mib, fmt(bd), ratio(crd["lazy"], bd),
                                             ratio(crd["criu-lazy"], bd)))
            fd.write('"%s %s" %s %s\n' % (h, short, "%s %s %s" % (med(a), min(a), max(a)) if a else "- - -",
                                          "%s %s %s" % (med(b), min(b), max(b)) if b else "- - -"))
L.append("")

# incremental
L.append("### Incremental vs full re-checkpoint (crac, %d MiB heap, 1%% of the pages changed)" % incr_mib)
L.append("")
if incr is None:
    L.append("incremental: not available in this build (`crac checkpoint --help` does not list --incremental).")
else:
    full, inc, full_mib, inc_mib = incr
    L.append(loads(incr_load) + "; %d rounds, ms, median (min–max)." % big_reps)
    L.append("")
    L.append("| what | re-checkpoint ms | image MiB | ratio to full |")
    L.append("|---|---|---|---|")
    L.append("| full (`crac checkpoint --keep-running`) | %s | %s | 1 |" % (fmt(full), fmt(full_mib)))
    L.append("| incremental (`--incremental`) | %s | %s | %s |" % (fmt(inc), fmt(inc_mib), ratio(inc, full)))
    L.append("")
    L.append("Goal (issue 12 §3): re-checkpoint ≤ 50 ms with 1%% of the pages of 1 GiB changed: %s." % (
        "not measured" if not inc else ("**met** (%.1f ms)" % med(inc) if med(inc) <= 50 and incr_mib >= 1024
                                         else "%.1f ms at %d MiB%s" % (med(inc), incr_mib,
                                                                      "" if incr_mib >= 1024 else " (not the goal's size)"))))
L.append("")
L.append("![programs](bench-side-programs.png)")
L.append("")
L.append("![heap](bench-side-heap.png)")
L.append("")
L.append("How it is measured:")
L.append("")
L.append("- Restore times start with CLOCK_MONOTONIC right before the spawn of the restore command (for CRIU "
         "--lazy-pages: before the spawn of `criu lazy-pages`, which must listen before `criu restore --lazy-pages` "
         "starts) and end when the program's answer line reaches the driver (python3, `bench/side.py`) on the pipe "
         "it gave as the program's stdout; the query is written at once on the pipe given as its stdin. crac "
         "restore hands the restored program its own stdin/stdout; CRIU gets them with `--inherit-fd`. Then "
         "stdin is closed and every process must exit 0.")
L.append("- `crac restore DIR` (the default) is lazy (userfaultfd) where the kernel lets it and the image has 4 MiB "
         "or more in its large mappings; an image with less (bench-zoo.md's mode column says which) "
         "is filled before the jump, which answers sooner than a lazy thread that "
         "serves each first touch; the heap rows are always lazy.")
L.append("- The images are in the page cache (just written), on %s." % (
    os.environ.get("CRAC_BENCH_TMPDIR", "/var/tmp")))
L.append("- Programs: the zoo's own (`tests/zoo/progs`: a table of 100000 entries, bash 20000; python3 imports "
         "asyncio, decimal, email, http.client, json, sqlite3, ssl and xml and answers through a pool of 4 threads). "
         "crac: started with `crac run -- PROG` (libcrac preloaded, no policy file) and checkpointed from outside "
         "with `crac checkpoint --engine image --image-dir DIR PID` (the image fsync'd); CRIU: the plain program "
         "in its own session, `criu dump -t PID -D DIR`, then every file of the image and the directory fsync'd. "
         "Checkpoint times are of those commands (fresh processes; min(3, runs) each); cold start is the plain "
         "program. Servers (python3 -m http.server, node, redis-server): asked over TCP every millisecond from the "
         "spawn on until the reply holds the answer (redis: `GET k777`, with 1000 keys set before the checkpoint, "
         "which a cold start answers with nil), then ended with SIGTERM. java is in bench-zoo.md (crac only: it "
         "needs a policy file).")
L.append("- Heap: `bench/heap_serve MIB` (not linked with libcrac) maps the heap and writes every word; it answers "
         "\"ping\" at once and \"read\" by reading the whole heap and checking its checksum (time taken inside "
         "the program): after a lazy restore that read is where the pages come in. Each checkpoint is the first "
         "of a fresh process.")
L.append("- Reading the heap rows: after CRIU's eager restore the heap is resident (its Rss is the whole heap) in "
         "4 KiB pages, and the program's first read of each page still costs a fault on this VM (shadow paging: "
         "the kernel wrote the page, the program has not touched it yet); a second read is many times faster. "
         "crac's eager restore fills dense anonymous mappings of 2 MiB and more with huge pages "
         "(MADV_HUGEPAGE), so that first read runs at memory speed. After a lazy restore (crac's userfaultfd "
         "thread, CRIU's lazy-pages daemon) the read is where the pages are brought in. CRIU's daemon starts "
         "loading while its restore is still under way, so part of its heap is in before the first answer and its "
         "read alone looks shorter: the row \"lazy restore and whole-heap read\" adds each run's time to the "
         "first answer and its read. CRIU's daemon copies every page in (UFFDIO_COPY: 4 KiB pages); crac's "
         "thread moves whole 2 MiB blocks in as huge pages (UFFDIO_MOVE, Linux 6.8: a block read and verified "
         "into a huge page of its own, then moved, no copy) where fresh huge pages are quick, as they are after "
         "the warm-up below; on this VM after a few seconds idle a fresh huge page comes from memory the host "
         "took back (3 to 6 ms each here, against ~0.1 ms warm), and then it copies as CRIU does once a few "
         "blocks in a row were slow (`--stats` says which; CRAC_LAZY_MOVE=off copies always). The rows \"after "
         "%d s idle\" measure that case: the largest heap's lazy restore and read once more, each run after "
         "`bench/warm` wrote and freed 1.5 x the heap and then %d s in which nothing ran (so that crac and CRIU "
         "meet memory with the same history: without it, how much of the memory the run before freed has gone "
         "back to the host depends on how that run freed it, and one kind's figure swings by 3x with what ran "
         "before it), crac and CRIU in turn. Their bound: `bench/warm MIB 2` timed after the same history, the "
         "cheapest way measured here to get that much fresh memory from the host (huge pages, two threads): "
         "whatever loads the heap has to get that memory too." % (COLD_IDLE_S, COLD_IDLE_S))
L.append("- Incremental: one process under `crac run`, a first `--keep-running --incremental` checkpoint (a "
         "full image; it starts the write tracking), then rounds of 1% of the pages changed and `crac checkpoint "
         "--keep-running --incremental` (each image holds what was written since the one before), then rounds "
         "of 1% changed and a full `crac checkpoint --keep-running`; one untimed round first in each. The last "
         "incremental image is restored (lazy and eager) and its heap checked.")
L.append("- Fresh memory: each timed step of the heap rows of %d MiB and more and of the incremental rows comes "
         "right after `bench/warm` wrote and freed 1.5 x the heap of fresh memory (untimed), so that crac and CRIU "
         "meet memory the host backs whatever ran before them; why, and what idle costs on this VM, in the note on "
         "fresh memory below. The checkpoints of a heap alternate which of crac and CRIU goes first." % WARM_FROM_MIB)
L.append("- Ratios: median / median, in parentheses the extremes (min of one / max of the other, and the "
         "reverse).")
L.append("")
if notes:
    L.append("Notes and failures:")
    L.append("")
    L.extend("- " + n for n in notes)
    L.append("")
# a table with no rows: its header goes too
L = [l for i, l in enumerate(L)
     if not (l.startswith("| ") and i + 2 < len(L) and L[i + 1].startswith("|---") and L[i + 2] == "")
     and not (l.startswith("|---") and i + 1 < len(L) and L[i + 1] == "")]
with open(doc, "w") as fd:
    fd.write("\n".join(L))
print("\n".join(L))

# -- plots ---------------------------------------------------------------------------------
if shutil.which("gnuplot"):
    base = os.path.splitext(doc)[0]
    gp = """
set terminal pngcairo size 1100,520 noenhanced
set datafile missing "-"
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.7 border -1
set logscale y
set grid ytics
set key horizontal top center outside
set xtics rotate by -20
set output "%(base)s-programs.png"
set title "spawn to the first answer, ms (median, bars min-max; log scale); %(load)s"
plot "%(zdat)s" using 2:3:4:xtic(1) title "cold start", "" using 5:6:7 title "crac restore (default)", \
     "" using 8:9:10 title "crac restore --populate", "" using 11:12:13 title "CRIU restore", \
     "" using 14:15:16 title "CRIU --lazy-pages"
""" % {"base": base, "zdat": zdat, "load": short_load(zoo_load)}
    if heap_rows:
        gp += """
set output "%(base)s-heap.png"
set title "heap: crac vs CRIU, ms (median, bars min-max; log scale); %(hload)s"
plot "%(hdat)s" using 2:3:4:xtic(1) title "crac", "" using 5:6:7 title "CRIU"
""" % {"base": base, "hdat": hdat, "hload": short_load(heap_load)}
    r = subprocess.run(["gnuplot"], input=gp, text=True, capture_output=True)
    if r.returncode:
        print("side: gnuplot failed: " + r.stderr, file=sys.stderr)
print("side: wrote %s" % doc, file=sys.stderr)
