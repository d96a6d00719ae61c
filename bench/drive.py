#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
drive.py MODE QUERY EXPECT ERRFILE CMD...: the timing driver of bench/zoo.sh
(and, for bench/side.py and bench/lazyread.py, ask(), the TCP question, and
Lines, a program's output read line by line with a deadline). Takes CLOCK_MONOTONIC right
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
import codecs, os, select, socket, subprocess, sys, time


class Lines:
    """Lines from a descriptor (a pipe from a program), with a deadline."""

    def __init__(self, fd):
        self.fd, self.buf = fd, b""

    def until(self, pred, timeout=120):
        """The first line PRED is true of (lines before it are dropped);
        RuntimeError after TIMEOUT seconds, or at the end of the output."""
        end = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                s = line.decode(errors="replace")
                if pred(s):
                    return s
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise RuntimeError("no answer within %d s" % timeout)
            b = os.read(self.fd, 65536)
            if not b:
                raise RuntimeError("end of output before the answer")
            self.buf += b

    def rest(self, timeout=60):
        """All that is left to read, up to the end or TIMEOUT seconds."""
        end, data = time.monotonic() + timeout, self.buf
        while time.monotonic() < end and select.select([self.fd], [], [], end - time.monotonic())[0]:
            b = os.read(self.fd, 65536)
            if not b:
                break
            data += b
        return data.decode(errors="replace")


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
