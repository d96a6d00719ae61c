#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
drive.py MODE QUERY EXPECT ERRFILE CMD...: the timing driver of bench/zoo.sh
(and ask(), the TCP question, of bench/side.py). Takes CLOCK_MONOTONIC right
before it spawns CMD (stderr to ERRFILE) and again when the expected answer
to QUERY arrives; prints the difference in ms.
No shell runs inside the timed span.
 MODE stdin: QUERY is written to CMD's stdin (a pipe) at once; the answer
   is the stdout line EXPECT. Then stdin is closed: the program must print
   nothing more than "eof" and exit 0.
 MODE tcp:PORT: QUERY (backslash escapes allowed) is sent on a new
   connection to 127.0.0.1:PORT, again every millisecond until the reply
   holds EXPECT; then CMD (a server) is stopped with SIGTERM.
 MODE probe:PORT (no CMD): the same polling, up to 120 s, no timing.
"""
import codecs, socket, subprocess, sys, time


def ask(port, q, expect):
    """One connection to 127.0.0.1:PORT, Q sent: does the reply hold EXPECT?"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
            c.sendall(q)
            data = b""
            while expect.encode() not in data:
                b = c.recv(65536)
                if not b:
                    break
                data += b
            return expect.encode() in data
    except OSError:
        return False


def main():
    mode, query, expect, err = sys.argv[1:5]
    cmd = sys.argv[5:]
    if mode.startswith("probe:"):
        port, q, end = int(mode[6:]), codecs.decode(query, "unicode_escape").encode(), time.monotonic() + 120
        while not ask(port, q, expect):
            if time.monotonic() > end:
                sys.exit("no answer %r on port %d" % (expect, port))
            time.sleep(0.05)
        return

    with open(err, "wb") as e:
        if mode == "stdin":
            t0 = time.monotonic_ns()
            p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=e, close_fds=True)
            p.stdin.write((query + "\n").encode())
            p.stdin.flush()
            got = None
            for line in p.stdout:
                if line.decode(errors="replace").rstrip("\n") == expect:
                    got = time.monotonic_ns()
                    break
            p.stdin.close()
            rest = p.stdout.read()
            rc = p.wait(timeout=120)
            if got is None:
                sys.exit("no answer %r (exit status %d)" % (expect, rc))
            if rc != 0 or rest.decode(errors="replace").strip() not in ("eof", ""):  # sqlite3 says nothing at EOF
                sys.exit("after the answer: exit status %d, output %r" % (rc, rest[:200]))
        else:
            port, q = int(mode[4:]), codecs.decode(query, "unicode_escape").encode()
            t0 = time.monotonic_ns()
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=e, stderr=e, close_fds=True)
            got = None
            while got is None and p.poll() is None and time.monotonic_ns() - t0 < 120e9:
                if ask(port, q, expect):
                    got = time.monotonic_ns()
                else:
                    time.sleep(0.001)
            p.terminate()
            rc = p.wait(timeout=60)
            if got is None:
                sys.exit("no answer %r on port %d (exit status %s)" % (expect, port, rc))
    print("%.3f" % ((got - t0) / 1e6))


if __name__ == "__main__":
    main()
