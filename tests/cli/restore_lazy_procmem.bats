#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Another process reading a lazily restored process's memory (crac(1),
# "Lazy restore"): through /proc/PID/mem (gdb, ptrace) a page not loaded
# yet gives EIO, since the kernel does not wait for the userfaultfd there;
# process_vm_readv(2) (py-spy) waits for the page as the program's own
# accesses do. Once the crac-lazy thread has loaded everything and exited,
# or after a restore with --populate, /proc/PID/mem reads every page.
# tests/progs/image_lazy.c, scenario "wait": the restored program touches a
# few pages (page 0, one at each MiB from 2 to 9) and waits for $T/sync.go.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	LAZY="$CRAC_BUILD_DIR/tests/image_lazy"
	T="$(mktemp -d /tmp/crac-bats-procmem.XXXXXX)"
	chmod 755 "$T"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOADER CRAC_LAZY_PREFETCH
	require_image_engine
	command -v python3 >/dev/null || skip "no python3 (reads the memory)"
	run clean "$LAZY" "$T/img" 32
	echo "$output"
	[ "$status" -eq 0 ]
	BIG=$(echo "$output" | sed -n 's/^big=\(0x[0-9a-f]*\) .*/\1/p')
	[ -n "$BIG" ]
	run clean "$CRAC" restore --lazy --stats "$T/img" -- read
	if [ "$status" -ne 0 ] && echo "$output" | grep -q -- "--lazy: lazy restore needs"; then
		skip "no userfaultfd for kernel faults here: $output"
	fi
	PID=
}

teardown() {
	[ -z "${PID:-}" ] || kill "$PID" 2>/dev/null || true
	rm -rf "$T"
}

# start [ENV...] [-- RESTORE OPTIONS]: the "wait" scenario restored in the
# background; RPID is the restored process once it touched its pages.
start() {
	local env=() opts=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do env+=("$1"); shift; done
	[ $# -eq 0 ] || { shift; opts=("$@"); }
	clean env "${env[@]}" timeout 60 "$CRAC" restore "${opts[@]}" "$T/img" -- wait "$T/sync" \
		>"$T/out" 2>"$T/err" &
	PID=$!
	for _ in $(seq 300); do
		[ -e "$T/sync.ready" ] && break
		sleep 0.1
	done
	[ -e "$T/sync.ready" ] || { cat "$T/out" "$T/err"; false; }
	# down the tree (subshells, timeout) to the restored program
	RPID=$PID
	for _ in 1 2 3 4; do
		[ "$(cat /proc/"$RPID"/comm)" = image_lazy ] && break
		RPID=$(pgrep -P "$RPID" | head -n 1)
	done
	[ "$(cat /proc/"$RPID"/comm)" = image_lazy ]
}

# finish: the program goes on and finds every page as it was
finish() {
	touch "$T/sync.go"
	wait "$PID"
	PID=
	[ "$(cat "$T/out")" = "ok wait" ]
}

# peek HOW MIB...: the first word of the page at each MiB of the big
# mapping, read through /proc/PID/mem (HOW mem) or process_vm_readv (HOW
# vm): "MIB ok" (the page's pattern), "MIB wrong" or "MIB ERROR"
peek() {
	python3 - "$RPID" "$BIG" "$@" <<'PY'
import ctypes, os, struct, sys
pid, big, how = int(sys.argv[1]), int(sys.argv[2], 16), sys.argv[3]
libc = ctypes.CDLL(None, use_errno=True)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
fd = os.open("/proc/%d/mem" % pid, os.O_RDONLY) if how == "mem" else -1
for mib in map(int, sys.argv[4:]):
    addr, page = big + (mib << 20), mib << 8
    want = (page << 20) ^ 0x5eed
    try:
        if how == "mem":
            data = os.pread(fd, 8, addr)
        else:
            buf = ctypes.create_string_buffer(8)
            local, remote = iovec(ctypes.cast(buf, ctypes.c_void_p), 8), iovec(addr, 8)
            if libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) != 8:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            data = buf.raw
        print(mib, "ok" if struct.unpack("<Q", data)[0] == want else "wrong")
    except OSError as e:
        print(mib, "%s" % os.strerror(e.errno))
PY
}

@test "/proc/PID/mem: a page not loaded yet gives EIO, a loaded one reads; process_vm_readv waits for the page" {
	start CRAC_LAZY_PREFETCH=off
	# page 0 and MiB 2-9 were touched by the program: loaded
	run peek mem 0 2 9 20 31
	echo "$output"
	[ "$output" = "$(printf '0 ok\n2 ok\n9 ok\n20 Input/output error\n31 Input/output error')" ]
	# process_vm_readv waits for the crac-lazy thread to load the page
	run peek vm 20
	echo "$output"
	[ "$output" = "20 ok" ]
	run peek mem 20 31
	[ "$output" = "$(printf '20 ok\n31 Input/output error')" ]
	finish
}

@test "/proc/PID/mem reads every page once the crac-lazy thread is gone, and at once after --populate" {
	start
	# background loading (the default): the thread exits once every page is in
	# (60 s at most, the restore's own limit: a bound on slow work, 32 MiB
	# took 12.5 s here with four busy loops beside it)
	for _ in $(seq 600); do
		grep -qx crac-lazy /proc/"$RPID"/task/*/comm 2>/dev/null || break
		sleep 0.1
	done
	! grep -qx crac-lazy /proc/"$RPID"/task/*/comm
	run peek mem 0 13 20 31
	echo "$output"
	[ "$output" = "$(printf '0 ok\n13 ok\n20 ok\n31 ok')" ]
	finish
	rm -f "$T/sync.ready" "$T/sync.go"
	start CRAC_LAZY_PREFETCH=off -- --populate
	run peek mem 13 20 31
	echo "$output"
	[ "$output" = "$(printf '13 ok\n20 ok\n31 ok')" ]
	finish
}
