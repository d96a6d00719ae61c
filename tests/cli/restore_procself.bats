#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# (Not named objects_*: it runs python3 under `crac run`, which the ASan
# stage of scripts/test.sh cannot do.)
# A descriptor of the process's own /proc directory (/proc/PID/stat: redis
# opens, reads and closes it every 100 ms, so a checkpoint may find it
# open) is carried as /proc/self/...: the restored process gets its own
# file, at the same offset, with no identity compared (another pid, other
# inode numbers). Before, the restore was refused: "/proc/PID/stat: No such
# file or directory" (zoo.redis failed so now and then). Another process's
# /proc files are still refused at restore if they changed.

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	T="$(mktemp -d /tmp/crac-bats-procself.XXXXXX)"
	chmod 755 "$T"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_LOG
	need_python
	require_image_engine
	# fd 50: /proc/self/stat (its link names /proc/PID/stat), read 5 bytes
	# in; the checkpoint is asked for then; the restored copy (a new pid)
	# says what it reads there
	cat >"$T/self.py" <<'PY'
import os, signal, sys, time
fd = os.open("/proc/self/stat", os.O_RDONLY); os.dup2(fd, 50); os.close(fd)
os.read(50, 5)
orig = os.getpid()
print("ready", flush=True)
os.kill(os.getppid(), signal.SIGUSR1)   # crac run: checkpoint now
while os.getpid() == orig:
    time.sleep(0.01)
print("offset", os.lseek(50, 0, os.SEEK_CUR))
print("link", os.readlink("/proc/self/fd/50") == "/proc/%d/stat" % os.getpid())
print("stat pid", int(os.pread(50, 100, 0).split()[0]) == os.getpid())
PY
	run_to_image "$T/run.out" -- "$PY" "$T/self.py"
	[ -f "$T/img/header" ] || { cat "$T/run.out"; false; }
}

teardown() {
	rm -rf "$T"
}

@test "an fd of the process's own /proc/PID/stat: the restored process reads its own, at the same offset" {
	# the image names it /proc/self/stat, not by the pid of the original
	grep -aq "/proc/self/stat" "$T/img/header"
	! grep -aqE "/proc/[0-9]+/stat" "$T/img/header" || false
	run clean "$CRAC" inspect "$T/img"
	[ "$status" -eq 0 ]
	restores_twice "$(printf 'offset 5\nlink True\nstat pid True')"
}
