#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# bench/lazyread.py MIB REPS NAME=BUILD... [criu] - the whole-heap read right
# after a lazy restore (issue 12 §4), for several crac builds and CRIU
# --lazy-pages in one run, the kinds interleaved (each round starts with the
# next kind; one untimed round first). Root (lazy restore needs userfaultfd
# for kernel faults; CRIU needs root). For comparing changes to the lazy
# loader: e.g. a build of the commit before as base=DIR.
#
# Each NAME=BUILD is a build directory (crac, bench/heap_serve, libcrac.so):
# its own image (`crac run -- heap_serve MIB`, `crac checkpoint`), since the
# lazy thread is the restored libcrac's. "criu" adds CRIU --lazy-pages
# ($CRAC_BENCH_CRIU or criu in PATH; under bench/side.sh's /run tmpfs trick for
# its kerndat cache, e.g. `unshare -m sh -c 'mount -t tmpfs x /run && ...'`).
# Prints, per kind, the read time (heap_serve's own "read ms="), the time
# from the spawn to "pong", their sum (a slow restore gives CRIU's lazy-pages
# daemon a head start: at 16 MiB the heap is in before "pong") and (crac)
# the restored process's CPU time up to
# the read's answer (all its threads: utime + stime, in clock ticks),
# median (min-max), and each build's ratio to
# CRIU and to the first build. Images in $CRAC_BENCH_TMPDIR (/var/tmp).
# NAME+=BUILD restores that build's image with CRAC_LAZY_MOVE=off (the lazy
# thread copies every page, as CRIU's daemon does). CRAC_BENCH_IDLE=S sleeps
# S seconds before each restore (on a VM that hands free memory back to its
# host, what a restore after idle meets; bench/side.py's "after idle" rows);
# with CRAC_BENCH_IDLE_WARM=MIB, bench/warm MIB runs right before that sleep,
# so that every kind meets memory with the same history.
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drive import Lines  # noqa: E402  (bench/drive.py)

mib, reps = int(sys.argv[1]), int(sys.argv[2])
builds, use_criu = {}, False
for a in sys.argv[3:]:
    if a == "criu":
        use_criu = True
    else:
        name, d = a.split("=", 1)
        builds[name] = os.path.abspath(d)
idle = float(os.environ.get("CRAC_BENCH_IDLE", "0"))
criu = os.environ.get("CRAC_BENCH_CRIU") or shutil.which("criu") or ""
if use_criu and not criu:
    sys.exit("lazyread.py: criu asked for, but CRAC_BENCH_CRIU is unset and no criu in PATH")
tmp = tempfile.mkdtemp(prefix="crac-lazyread.", dir=os.environ.get("CRAC_BENCH_TMPDIR", "/var/tmp"))
os.environ["CRAC_CONTROL_DIR"] = os.path.join(tmp, "ctl")
os.mkdir(os.environ["CRAC_CONTROL_DIR"], 0o700)


def start(cmd):
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    Lines(p.stdout.fileno()).until(lambda s: s.startswith("ready"), 300)
    return p, os.readlink("/proc/%d/fd/0" % p.pid), os.readlink("/proc/%d/fd/1" % p.pid)


def run(cmd):
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode:
        raise RuntimeError("%s: %s" % (cmd[0], r.stdout.decode(errors="replace")[-400:]))


imgs, ids = {}, None
for name, b in builds.items():
    if name.endswith("+") and name[:-1] in imgs:
        imgs[name] = imgs[name[:-1]]
        continue
    img = os.path.join(tmp, name)
    p, _, _ = start([os.path.join(b, "crac"), "run", "--", os.path.join(b, "bench", "heap_serve"), str(mib)])
    run([os.path.join(b, "crac"), "checkpoint", "--engine", "image", "--image-dir", img, str(p.pid)])
    p.wait(120)
    imgs[name] = img
if use_criu:
    img = os.path.join(tmp, "criu")
    os.makedirs(img)
    p, i0, i1 = start([next(iter(builds.values())) + "/bench/heap_serve", str(mib)])
    ids = (i0, i1)
    run([criu, "dump", "-t", str(p.pid), "-D", img, "-o", "dump.log"])
    p.wait(120)
    imgs["criu"] = img


def restore(kind):
    """Restore, ping, read: (ms to pong, read ms)."""
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    procs = []
    t0 = time.monotonic_ns()
    if kind != "criu":
        env = dict(os.environ, CRAC_LAZY_MOVE="off") if kind.endswith("+") else None
        procs.append(subprocess.Popen([os.path.join(builds[kind], "crac"), "restore", imgs[kind]],
                                      stdin=a_r, stdout=b_w, stderr=subprocess.DEVNULL, env=env))
    else:
        img = imgs[kind]
        sock = os.path.join(img, "lazy-pages.socket")
        if os.path.exists(sock):
            os.unlink(sock)
        procs.append(subprocess.Popen([criu, "lazy-pages", "-D", img, "-o", "lazy.log"],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        while not os.path.exists(sock):
            time.sleep(0.0002)
        procs.append(subprocess.Popen([criu, "restore", "-D", img, "-o", "restore.log", "--lazy-pages",
                                       "--inherit-fd", "fd[%d]:%s" % (a_r, ids[0]),
                                       "--inherit-fd", "fd[%d]:%s" % (b_w, ids[1])],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, pass_fds=(a_r, b_w)))
    os.close(a_r)
    os.close(b_w)
    lines = Lines(b_r)
    os.write(a_w, b"ping\n")
    lines.until(lambda s: s == "pong")
    t = (time.monotonic_ns() - t0) / 1e6
    os.write(a_w, b"read\n")
    a = lines.until(lambda s: s.startswith("read"))
    cpu = 0.0
    if kind != "criu":   # the restored process's CPU time (all its threads), ms
        with open("/proc/%d/stat" % procs[0].pid) as f:
            st = f.read().rsplit(")", 1)[1].split()
        cpu = (int(st[11]) + int(st[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")
    os.close(a_w)
    lines.until(lambda s: s == "eof")
    os.close(b_r)
    for p in reversed(procs):
        if p.wait(120):
            raise RuntimeError("%s: exit status %d" % (kind, p.returncode))
    if "sum=ok" not in a:
        raise RuntimeError("%s: wrong heap: %s" % (kind, a))
    return t, float(a.split("ms=")[1].split()[0]), cpu


def med(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


kinds = list(imgs)
res = {k: ([], [], []) for k in kinds}
print("load %s" % open("/proc/loadavg").read().split()[:3], flush=True)
try:
    for i in range(reps + 1):
        for kd in kinds[i % len(kinds):] + kinds[:i % len(kinds)]:
            if idle:
                if os.environ.get("CRAC_BENCH_IDLE_WARM"):
                    run([os.path.join(next(iter(builds.values())), "bench", "warm"),
                         os.environ["CRAC_BENCH_IDLE_WARM"]])
                time.sleep(idle)
            t, r, c = restore(kd)
            if i:
                res[kd][0].append(t)
                res[kd][1].append(r)
                res[kd][2].append(c)
    print("load %s" % open("/proc/loadavg").read().split()[:3], flush=True)
    for kd in kinds:
        t, r, c = res[kd]
        s = [a + b for a, b in zip(t, r)]
        print("%-8s read %8.1f (%.1f-%.1f) ms   pong %7.2f (%.2f-%.2f) ms   spawn to read's end %8.1f (%.1f-%.1f) ms"
              "   cpu %6.0f (%.0f-%.0f) ms   reads %s" % (
                  kd, med(r), min(r), max(r), med(t), min(t), max(t), med(s), min(s), max(s), med(c), min(c), max(c),
                  " ".join("%.0f" % x for x in r)))
    first = kinds[0]
    for kd in kinds:
        for ref in ([first] if kd != first else []) + (["criu"] if use_criu and kd != "criu" else []):
            for what, f in (("read", lambda x: x[1]), ("spawn to read's end", lambda x: [a + b for a, b in zip(x[0], x[1])])):
                a, b = f(res[kd]), f(res[ref])
                print("%s / %s, %s: %.2f (%.2f-%.2f)" % (kd, ref, what, med(a) / med(b), min(a) / max(b),
                                                         max(a) / min(b)))
finally:
    shutil.rmtree(tmp, ignore_errors=True)
