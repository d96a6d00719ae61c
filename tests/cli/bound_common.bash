# SPDX-License-Identifier: MIT
# bound_common.bash - a file system that does not answer, for real
# (bound_*.bats): a FUSE mount whose server never reads /dev/fuse. The
# kernel's FUSE_INIT is never answered, so every request to it (a lookup
# under the mount point, the getattr of its root, an opendir) waits for
# ever, killably: the case of an NFS or FUSE server gone. (What else was
# tried here: fsfreeze does not work on tmpfs, and on a frozen ext4 only
# writers wait, never an lstat, a listing or an open; a FIFO where a file
# is expected makes only an open without O_NONBLOCK wait, never an lstat.)
# Needs common.bash, $T and python3; root and /dev/fuse, else the test is
# skipped.

# freeze_mount DIR: DIR (made if need be) is the mount point of such a
# file system from now on, until thaw_mounts.
freeze_mount() {
	[ "$(id -u)" -eq 0 ] || skip "mounting a FUSE file system needs root here (uid $(id -u))"
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	local py=/usr/bin/python3
	[ -x "$py" ] || py="$(command -v python3)" || skip "python3 is not installed"
	mkdir -p "$1"
	local out="$T/freeze.$RANDOM.out"
	# (stdio only: a descriptor of bats held would make bats wait for it)
	spawn "$out" "$out" "$py" -c '
import ctypes, os, signal, sys
mnt = sys.argv[1]
fd = os.open("/dev/fuse", os.O_RDWR)
libc = ctypes.CDLL(None, use_errno=True)
opts = "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other" % fd
if libc.mount(b"crac-stuck", mnt.encode(), b"fuse", 0, opts.encode()) != 0:
    sys.stderr.write("mount %s: %s\n" % (mnt, os.strerror(ctypes.get_errno())))
    sys.exit(1)
print("mounted", flush=True)
signal.pause()   # /dev/fuse never read: nothing is ever answered
' "$1"
	FROZEN_PIDS+=("$SPAWNED")
	FROZEN+=("$1")
	for _ in $(seq 100); do
		grep -q '^mounted' "$out" 2>/dev/null && return 0
		kill -0 "$SPAWNED" 2>/dev/null || break
		sleep 0.05
	done
	cat "$out"
	skip "cannot mount a FUSE file system at $1"
}

# thaw_mounts: the servers end (closing /dev/fuse aborts each connection:
# every request still waiting fails with ENOTCONN) and the mounts go.
thaw_mounts() {
	local p m
	for p in "${FROZEN_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${FROZEN_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	for m in "${FROZEN[@]}"; do
		umount -l "$m" 2>/dev/null || true
	done
	FROZEN_PIDS=()
	FROZEN=()
}
