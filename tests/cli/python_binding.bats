#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The Python binding (bindings/python/crac, ctypes over libcrac): imported
# from the source tree with PYTHONPATH, it finds the build tree's library
# through $CRAC_LIBRARY, or the one `crac run` preloaded. Hooks run in
# crac's order with an event; a failing hook raises CheckpointError carrying
# every failure; each instance restored from one image draws a different
# random.random() sequence unless CRAC_PY_KEEP_SEED=1; hooks of a checkpoint
# requested from outside run on the library's thread, holding the GIL.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-pybind.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	mkdir -m 0700 "$CRAC_CONTROL_DIR"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_PY_KEEP_SEED LD_PRELOAD
	command -v python3 >/dev/null || skip "no python3"
	export PYTHONPATH="$CRAC_SOURCE_DIR/bindings/python"
}

teardown() {
	[ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
	rm -rf "$T"
}

@test "python3 -c under crac run: the preloaded library, hooks in order, the event" {
	run "$CRAC" run -- python3 -c '
import crac, ctypes, threading
print("lib", crac.library_path)
@crac.before_checkpoint
def first(ev): print("before first", ev.kind.name, ev.outcome, ctypes.pythonapi.PyGILState_Check())
@crac.before_checkpoint
def second(ev): print("before second")
@crac.after_restore
def third(ev): print("after third", ev.outcome.name, ev.engine, ev.generation, ev.instance_id.version)
@crac.after_restore(priority=-1)
def early(ev): print("after early (priority -1)")
class Db(crac.Resource):
    def before_checkpoint(self, ev): print("before Db")
    def after_restore(self, ev): print("after Db")
crac.register(Db())
print("outcome", crac.checkpoint(engine="sim").name)
print("generation", crac.instance_id()[1])
'
	echo "$output"
	[ "$status" -eq 0 ]
	# the library `crac run` preloaded, not another copy
	echo "$output" | grep -q "^lib $(readlink -f "$CRAC_BUILD_DIR/libcrac.so")\$"
	# crac(7)'s order: increasing priority before the checkpoint (early's
	# -1 has no before hook), among equals the last registered first;
	# after_restore in the exact reverse
	expected="before Db
before second
before first BEFORE_CHECKPOINT None 1
after third RESTORED sim 1 4
after Db
after early (priority -1)
outcome RESTORED
generation 1"
	diff <(echo "$expected") <(echo "$output" | grep -v '^lib ')
}

@test "outside crac run: \$CRAC_LIBRARY, and a clear error without any library" {
	run env CRAC_LIBRARY="$CRAC_BUILD_DIR/libcrac.so.0" python3 -c '
import crac; print(crac.version(), crac.engines())'
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^0\.[0-9]*\.[0-9]* \[.*'sim'"
	run env CRAC_LIBRARY="$T/nope.so" LD_LIBRARY_PATH="$T" python3 -c 'import crac'
	echo "$output"
	[ "$status" -ne 0 ]
	echo "$output" | grep -q "ImportError: crac: cannot load libcrac: $T/nope.so (\$CRAC_LIBRARY)"
}

@test "failing hooks: CheckpointError carries every failure, the hooks' exceptions as causes" {
	run env CRAC_LIBRARY="$CRAC_BUILD_DIR/libcrac.so.0" python3 -c '
import crac, errno, gc
@crac.before_checkpoint
def db(ev): raise OSError(errno.EBUSY, "3 connections open")
@crac.before_checkpoint
def cache(ev): raise ValueError("cache dirty")
@crac.after_restore
def after(ev): print("after runs anyway:", ev.outcome.name)
def scoped():
    # registered from a scope that is gone, then collected: the ctypes
    # callback must stay alive
    crac.before_checkpoint(lambda ev: print("lambda hook runs"), name="lambda")
scoped(); gc.collect()
try:
    crac.checkpoint(engine="sim")
except crac.CheckpointError as e:
    print("caught", type(e).__name__, e.outcome.name, len(e.failures))
    for f in e.failures:
        print("failure", f.phase.name, f.resource, f.code, f.message, type(f.__cause__).__name__)
    print(e.report)
    assert e.suppressed is e.failures
else:
    print("no exception")
'
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^lambda hook runs"
	echo "$output" | grep -q "^after runs anyway: ABORTED"
	echo "$output" | grep -q "^caught CheckpointError ABORTED 2\$"
	echo "$output" | grep -q "^failure CHECKPOINT db -16 OSError: \[Errno 16\] 3 connections open OSError\$"
	echo "$output" | grep -q "^failure CHECKPOINT cache -5 ValueError: cache dirty ValueError\$"
	echo "$output" | grep -q "^crac: checkpoint aborted: 2 problems"
	echo "$output" | grep -q "before_checkpoint cache: .*(EIO): ValueError: cache dirty"
	# an after_restore failure after a successful snapshot: RestoreError
	run env CRAC_LIBRARY="$CRAC_BUILD_DIR/libcrac.so.0" python3 -c '
import crac
@crac.after_restore
def a(ev): raise RuntimeError("reconnect failed")
@crac.after_restore
def b(ev): raise KeyError("k")
try:
    crac.checkpoint(engine="sim")
except crac.RestoreError as e:
    print("restore error", e.outcome.name, [f.message for f in e.failures])
'
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qxF "restore error RESTORED ['RuntimeError: reconnect failed', \"KeyError: 'k'\"]"
}

# image_random KEEP: a python3 that seeded random with 42 checkpoints itself
# with the image engine into $T/img, then prints three random.random().
image_random() {
	cat >"$T/rnd.py" <<'PY'
import crac, random, sys
random.seed(42)
@crac.after_restore
def restored(ev): print("restored", ev.generation)
crac.checkpoint(engine="image", image_dir=sys.argv[1])
print("seq", " ".join("%.12f" % random.random() for _ in range(3)))
PY
	run clean env $1 "$CRAC" run -- python3 "$T/rnd.py" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -d "$T/img" ]
}

@test "one image restored 3 times: three different random sequences" {
	require_image_engine
	image_random ""
	for i in 1 2 3; do
		run clean "$CRAC" restore "$T/img"
		echo "$output"
		[ "$status" -eq 0 ]
		echo "$output" | grep -q "^restored 1\$"
		echo "$output" | grep "^seq " >>"$T/seqs"
	done
	cat "$T/seqs"
	[ "$(wc -l <"$T/seqs")" -eq 3 ]
	[ "$(sort -u "$T/seqs" | wc -l)" -eq 3 ]
	# not the sequence of seed 42 that the image holds
	! grep -q "^seq 0.639426798458" "$T/seqs" || false
}

@test "CRAC_PY_KEEP_SEED=1: the same sequence in every restored instance" {
	require_image_engine
	# set when the program started...
	image_random CRAC_PY_KEEP_SEED=1
	for i in 1 2 3; do
		run clean "$CRAC" restore "$T/img"
		echo "$output"
		[ "$status" -eq 0 ]
		echo "$output" | grep "^seq " >>"$T/seqs"
	done
	cat "$T/seqs"
	[ "$(wc -l <"$T/seqs")" -eq 3 ]
	[ "$(sort -u "$T/seqs" | wc -l)" -eq 1 ]
	# seed 42's sequence, where the image left it
	grep -q "^seq 0.639426798458 0.025010755223 0.275029318369\$" "$T/seqs"
	# ... or given to the restore
	rm -rf "$T/img" "$T/seqs"
	image_random ""
	for i in 1 2; do
		run clean "$CRAC" restore "$T/img" --env CRAC_PY_KEEP_SEED=1
		echo "$output"
		[ "$status" -eq 0 ]
		echo "$output" | grep "^seq " >>"$T/seqs"
	done
	[ "$(sort -u "$T/seqs")" = "seq 0.639426798458 0.025010755223 0.275029318369" ]
}

@test "a checkpoint requested from outside: hooks on the library's thread, with the GIL; the report reaches crac checkpoint" {
	cat >"$T/srv.py" <<'PY'
import crac, ctypes, threading, time
main = threading.get_ident()
@crac.before_checkpoint
def ok(ev):
    print("before on main thread:", threading.get_ident() == main,
          "GIL:", ctypes.pythonapi.PyGILState_Check(), flush=True)
@crac.before_checkpoint
def busy(ev): raise OSError(16, "still busy")
@crac.after_restore
def after(ev): print("after", ev.outcome.name, flush=True)
print("ready", flush=True)
while True:
    time.sleep(0.01)
PY
	(
		close_fds
		exec "$CRAC" run -- python3 "$T/srv.py" >"$T/out" 2>&1
	) &
	pid=$!
	for _ in $(seq 200); do grep -q "^ready" "$T/out" && [ -S "$CRAC_CONTROL_DIR/$pid.sock" ] && break; sleep 0.02; done
	run "$CRAC" checkpoint --engine sim "$pid"
	echo "$output"
	cat "$T/out"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "before_checkpoint busy: Device or resource busy (EBUSY): OSError: \[Errno 16\] still busy"
	wait_line "$T/out" "^after" 2
	grep -q "^before on main thread: False GIL: 1\$" "$T/out"
	grep -q "^after ABORTED\$" "$T/out"
	# still running, and a second request works the same
	kill -0 "$pid"
	run "$CRAC" checkpoint --engine sim "$pid"
	[ "$status" -eq 1 ]
	[ "$(grep -c "^after ABORTED" "$T/out")" -eq 2 ]
}

@test "the binding's ctypes structures match crac.h (offsets and sizes)" {
	command -v cc >/dev/null || skip "no C compiler"
	# the C side, generated from the binding's own field lists
	CRAC_LIBRARY="$CRAC_BUILD_DIR/libcrac.so.0" python3 -c '
import crac
structs = [("struct crac_event", crac._Event), ("struct crac_options", crac._Options),
           ("struct crac_resource_def", crac._ResourceDef), ("struct crac_failure", crac._Failure)]
c = ["#include <crac.h>", "#include <stddef.h>", "#include <stdio.h>", "int main(void) {"]
py = []
for cname, s in structs:
    c.append("printf(\"%%s size %%zu\\n\", \"%s\", sizeof(%s));" % (cname, cname))
    py.append("%s size %d" % (cname, __import__("ctypes").sizeof(s)))
    for f in s._fields_:
        c.append("printf(\"%%s %%s %%zu\\n\", \"%s\", \"%s\", offsetof(%s, %s));" % (cname, f[0], cname, f[0]))
        py.append("%s %s %d" % (cname, f[0], getattr(s, f[0]).offset))
c.append("return 0; }")
open("'"$T"'/layout.c", "w").write("\n".join(c) + "\n")
open("'"$T"'/py.txt", "w").write("\n".join(py) + "\n")
'
	cc -o "$T/layout" -I"$CRAC_SOURCE_DIR/include" "$T/layout.c"
	"$T/layout" >"$T/c.txt"
	diff "$T/c.txt" "$T/py.txt"
}

@test "python3 -m crac SCRIPT: an unmodified script restored twice draws different numbers" {
	require_image_engine
	cat >"$T/loop.py" <<'PY'
import random, sys, time
random.seed(42)      # the program seeds on its own, never imports crac
print("ready", "crac" in sys.modules, sys.argv[1:], flush=True)
n = 0
while True:
    n += 1
    time.sleep(0.01)
    if n % 20 == 0:
        print("r %.12f" % random.random(), flush=True)
PY
	(
		close_fds
		exec "$CRAC" run -- python3 -m crac "$T/loop.py" a1 >"$T/out" 2>&1
	) &
	pid=$!
	for _ in $(seq 200); do grep -q "^r " "$T/out" && [ -S "$CRAC_CONTROL_DIR/$pid.sock" ] && break; sleep 0.05; done
	grep -q "^ready True \['a1'\]\$" "$T/out"
	run "$CRAC" checkpoint --engine image --image-dir "$T/img" "$pid"
	echo "$output"
	[ "$status" -eq 0 ]
	wait_gone "$pid" 5
	pid=
	for i in 1 2; do
		run clean timeout 1.5 "$CRAC" restore "$T/img"
		echo "$output"
		[ "$status" -eq 124 ]   # still looping when timeout stops it
		echo "$output" | grep "^r " | head -1 >>"$T/first"
	done
	cat "$T/first"
	[ "$(wc -l <"$T/first")" -eq 2 ]
	[ "$(sort -u "$T/first" | wc -l)" -eq 2 ]
}

@test "a hook that calls crac.checkpoint itself: refused (EDEADLK), and the outer call keeps its hooks' exceptions" {
	run env CRAC_LIBRARY="$CRAC_BUILD_DIR/libcrac.so.0" python3 -c '
import crac
@crac.before_checkpoint
def first(ev): raise ValueError("boom")
@crac.before_checkpoint
def nested(ev):
    try:
        crac.checkpoint(engine="sim")
    except crac.CheckpointError as e:
        print("inner:", [f.code for f in e.failures])
try:
    crac.checkpoint(engine="sim")
except crac.CheckpointError as e:
    for f in e.failures:
        print("outer:", f.resource, f.code, type(f.__cause__).__name__)
'
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^inner: \[-35\]"
	echo "$output" | grep -q "^outer: first -5 ValueError$"
}

@test "crac.checkpoint(compress=True, incremental=True): a compressed image, then an incremental one against it" {
	require_image_engine
	require_zstd
	cat >"$T/inc.py" <<'PY'
import crac, sys
data = bytearray(b"text that compresses well " * 200000)   # 5 MiB
@crac.after_restore
def restored(ev): print("restored", ev.generation)
crac.checkpoint(engine="image", image_dir=sys.argv[1], compress=True, incremental=True)
data[4096:4101] = b"hello"
print("first", bytes(data[:4]))
crac.checkpoint(engine="image", image_dir=sys.argv[1] + "2", compress=True, incremental=True)
print("second", bytes(data[4096:4101]))
PY
	run clean "$CRAC" run -- python3 "$T/inc.py" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	run "$CRAC" inspect "$T/img"
	echo "$output"
	echo "$output" | grep -Eq "^compress: *zstd, [1-9][0-9]* of [0-9]+ chunks"
	echo "$output" | grep -q "^tracking:"
	# restored: writes a page, checkpoints again: incremental, compressed
	run clean "$CRAC" restore "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^first b'text'$"
	run "$CRAC" inspect "$T/img2"
	echo "$output"
	echo "$output" | grep -q "^parent: *\.\./img "
	echo "$output" | grep -Eq "^compress: *zstd"
	# the chunks of img it references, decompressed and verified
	echo "$output" | grep -Eq "^  chain +ok: 1 image below, each as recorded: .*img2/\.\./img; [1-9][0-9]* chunks? referenced, crc32c ok$"
	echo "$output" | grep -qx "result:    restorable here"
	run clean "$CRAC" restore "$T/img2"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^second b'hello'$"
}
