#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A supervised program (crac run, crac start) ends with its supervisor: the
# parent-death signal SIGTERM (cli/supervise.c). The kernel clears that
# signal when the program changes its credentials (a root server that
# drops to nobody); the program's libcrac then sees the supervisor end
# through a pidfd (core/control.c: the control endpoint's listener) and
# sends itself SIGTERM, once, saying why. A program that keeps its
# credentials gets the kernel's SIGTERM alone (once).

load common
load start_common

setup() {
	[ "$(id -u)" -eq 0 ] || skip "needs root: the program starts as root and drops to nobody"
	T="$(mktemp -d /tmp/crac-bats-pdrop.XXXXXX)"
	chmod 755 "$T"
	start_setup
	command -v "$PY" >/dev/null || skip "python3 is not installed"
	# written by the program, as nobody too
	mkdir -m 777 "$T/w"
}

teardown() { start_teardown; }

# the program: with DROP=1 it becomes nobody; it writes $1/ready once set
# up, a line to $1/term for each SIGTERM (then exits after 1 s, so that a
# second one would be counted), and sleeps
PROG='
import os, signal, sys, time
w = sys.argv[1]
def term(sig, frame):
    with open(w + "/term", "a") as f:
        f.write("uid %d\n" % os.getuid())
    signal.setitimer(signal.ITIMER_REAL, 1.0)
signal.signal(signal.SIGTERM, term)
signal.signal(signal.SIGALRM, lambda s, f: os._exit(0))
if os.environ.get("DROP") == "1":
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
open(w + "/ready", "w").write("uid %d\n" % os.getuid())
while True:
    time.sleep(1)
'

# supervised_then_killed CMD...: CMD (crac run or crac start with a trigger, and --) runs the
# program; once it is ready crac gets SIGKILL; the program must end within
# 10 s, having had exactly one SIGTERM
supervised_then_killed() {
	bg sup "$@" "$PY" -c "$PROG" "$T/w"
	child="$(child_of "$pid")"
	wait_for test -s "$T/w/ready"
	cat "$T/w/ready"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	for _ in $(seq 200); do kill -0 "$child" 2>/dev/null || break; sleep 0.05; done
	cat "$T/sup.err" "$T/w/term" || true
	! kill -0 "$child" 2>/dev/null || { kill -9 "$child"; false; }
	[ "$(wc -l <"$T/w/term")" -eq 1 ]
}

@test "crac run: a program that dropped from root to nobody ends with its supervisor killed by SIGKILL (one SIGTERM, said)" {
	DROP=1 supervised_then_killed "$CRAC" run --checkpoint-after 600s --
	grep -qx "uid 65534" "$T/w/ready"
	grep -qx "uid 65534" "$T/w/term"
	grep -Eq "^crac: (warning: )?control: the supervisor \(crac, pid $pid\) has ended; this process changed its credentials since it started \(uid 0 -> 65534\), which cleared its parent-death signal: SIGTERM sent to itself$" "$T/sup.err"
}

@test "crac run: a program that keeps its credentials ends by the kernel's parent-death signal alone (one SIGTERM, nothing said)" {
	DROP=0 supervised_then_killed "$CRAC" run --checkpoint-after 600s --
	grep -qx "uid 0" "$T/w/term"
	! grep -q "has ended" "$T/sup.err" || false
}

@test "crac start (cold): a program that dropped to nobody ends with its supervisor killed by SIGKILL" {
	DROP=1 supervised_then_killed "$CRAC" start --image "$T/img" --checkpoint-after 600s --
	grep -qx "uid 65534" "$T/w/term"
	grep -q "SIGTERM sent to itself" "$T/sup.err"
}
