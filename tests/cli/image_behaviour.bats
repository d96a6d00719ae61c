#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Image engine: what a restored process can rely on. tests/progs/image_probe
# sets up process state, checkpoints itself with the image engine, and in
# every restored instance checks (one "ok NAME" line each, stdout compared
# exactly): pid = the restore command's, pthread_self and glibc's cached
# tid, errno, memory, sched_getcpu following the CPU it is pinned to (rseq
# re-registered), clocks, malloc (small, 64 MiB mmap'd, realloc of an old
# block), signal dispositions, mask (kernel-enforced), altstack, raise() on
# the altstack, SIGALRM from setitimer and alarm, a SIGUSR2 from another
# process, cwd, umask, RLIMIT_NOFILE, a new thread, the generation counter
# and instance id; then restore -> checkpoint -> restore chains, mapped
# files and a dlopen'ed library, and all of it as user nobody.

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROBE="$CRAC_BUILD_DIR/tests/image_probe"
	T="$(mktemp -d /tmp/crac-bats-behaviour.XXXXXX)"
	chmod 755 "$T"
	mkdir -m 755 "$T/work"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_IMAGE_NEW_TIDS
	NOBODY=""
	# sched_getcpu is checked on each allowed CPU, at most 8
	NCPU=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
	[ "$NCPU" -le 8 ] || NCPU=8
}

teardown() {
	rm -rf "$T"
}

# expected GEN [kill] [map] [dl] [chain]: the exact stdout of a restored
# generation GEN of image_probe.
expected() {
	local gen=$1 kill=no map=no dl=no chain=no
	shift
	for a in "$@"; do
		case $a in
		kill) kill=yes ;;
		map) map=yes ;;
		dl) dl=yes ;;
		chain) chain=yes ;;
		esac
	done
	echo "restored generation=$gen"
	for c in pid pthread_self errno memory sched_getcpu clock malloc sigaction sigmask sigaltstack raise setitimer; do
		echo "ok $c"
	done
	if [ $kill = yes ]; then
		echo "waiting for SIGUSR2"
		echo "ok kill"
	fi
	for c in cwd umask rlimit pthread_create generation; do
		echo "ok $c"
	done
	[ $map = no ] || echo "ok mapped file"
	[ $dl = no ] || echo "ok dlopen"
	if [ $chain = yes ]; then
		echo "checkpoint generation=$gen"
	else
		echo "done generation=$gen"
	fi
}

# same EXPECTED ACTUAL: compares two texts, shows the difference.
same() {
	if [ "$1" != "$2" ]; then
		echo "--- expected / +++ actual:"
		diff <(echo "$1") <(echo "$2") || true
		return 1
	fi
}

# checkpoint_probe [ARGS...]: image_probe $T/img $T/work ARGS, as $NOBODY if set.
checkpoint_probe() {
	run --separate-stderr clean $NOBODY "$PROBE" "$T/img" "$T/work" "$@"
	echo "checkpoint: status $status"
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "checkpoint generation=0" ]
	[ -f "$T/img/header" ]
}

# restore_probe DIR [ARGS...]: `crac restore DIR -- pid=<its pid> ARGS` from
# cwd /, as $NOBODY if set; the pid is that of the shell that execs it.
restore_probe() {
	local dir=$1
	shift
	run --separate-stderr clean bash -c 'cd / && exec $NOBODY "$0" restore "$1" -- pid=$$ "${@:2}"' \
		"$CRAC" "$dir" "$@"
	echo "restore $dir: status $status"
	echo "$output"
	echo "stderr: $stderr"
}

info_cpu() {
	echo "info: sched_getcpu followed $NCPU allowed cpu(s)"
}

# kill_scenario: restores $T/img with wait-usr2 in the background, sends it
# SIGUSR2 from this shell once it waits, checks its output.
kill_scenario() {
	export NOBODY
	clean bash -c 'cd / && echo $$ >"$2/restored.pid" && exec $NOBODY "$0" restore "$1" -- pid=$$ wait-usr2' \
		"$CRAC" "$T/img" "$T" >"$T/out" 2>"$T/err" &
	local bg=$!
	if ! wait_line "$T/out" '^waiting for SIGUSR2$' 20 "$T/err"; then
		kill -KILL "$(cat "$T/restored.pid")" 2>/dev/null || true
		return 1
	fi
	local pid
	pid=$(cat "$T/restored.pid")
	# still blocked (the mask survived), the signal waits for sigsuspend
	kill -USR2 "$pid"
	local st=0
	wait "$bg" || st=$?
	echo "restore: status $st"
	cat "$T/out"
	echo "stderr:"
	cat "$T/err"
	[ "$st" -eq 0 ]
	same "$(expected 1 kill)" "$(cat "$T/out")"
	same "$(info_cpu)
info: SIGUSR2 from pid $BASHPID" "$(cat "$T/err")"
}

@test "restored process: pid, threads, errno, cpu, clocks, malloc, signals, cwd, umask, rlimit" {
	checkpoint_probe
	restore_probe "$T/img"
	[ "$status" -eq 0 ]
	same "$(expected 1)" "$output"
	same "$(info_cpu)" "$stderr"
	# a second restore of the same image is generation 1 again
	restore_probe "$T/img"
	[ "$status" -eq 0 ]
	same "$(expected 1)" "$output"
}

@test "dispositions the restoring shell ignores are the saved ones after restore" {
	checkpoint_probe
	# SIG_IGN survives exec: the loader and the restored process start
	# with SIGHUP, SIGTERM and SIGWINCH ignored and SIGPIPE at its default;
	# the restore sets what differs from the image (the probe checks that
	# SIGHUP and SIGTERM, which it never set, are as at the checkpoint,
	# SIGWINCH SIG_DFL and SIGPIPE SIG_IGN)
	run --separate-stderr clean bash -c 'cd / && trap "" WINCH HUP TERM && trap - PIPE && exec "$0" restore "$1" -- pid=$$' \
		"$CRAC" "$T/img"
	echo "$output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	same "$(expected 1)" "$output"
}

@test "a signal sent by another process reaches the restored process" {
	checkpoint_probe
	kill_scenario
}

@test "stdio after restore is the restore command's, even when the original's is gone" {
	# the checkpointing process writes to a file that is removed afterwards
	clean "$PROBE" "$T/img" "$T/work" >"$T/ckpt.out" 2>&1
	[ "$(cat "$T/ckpt.out")" = "checkpoint generation=0" ]
	rm "$T/ckpt.out"
	clean bash -c 'cd / && exec "$0" restore "$1" -- pid=$$' "$CRAC" "$T/img" >"$T/r.out" 2>"$T/r.err"
	same "$(expected 1)" "$(cat "$T/r.out")"
	same "$(info_cpu)" "$(cat "$T/r.err")"
	[ ! -e "$T/ckpt.out" ]
}

@test "restore -> checkpoint -> restore: three generations, state and generation carry on" {
	checkpoint_probe
	restore_probe "$T/img" "chain=$T/img2"
	[ "$status" -eq 0 ]
	same "$(expected 1 chain)" "$output"
	[ -f "$T/img2/header" ]
	# img2 was written by the restored process (whose pid was the restore command's)
	gen1_pid=$("$CRAC" inspect "$T/img2" --json | sed -n 's/.*"pid":\([0-9]*\),.*/\1/p')
	first_pid=$("$CRAC" inspect "$T/img" --json | sed -n 's/.*"pid":\([0-9]*\),.*/\1/p')
	[ -n "$gen1_pid" ]
	[ "$gen1_pid" != "$first_pid" ]

	restore_probe "$T/img2" "chain=$T/img3"
	[ "$status" -eq 0 ]
	same "$(expected 2 chain)" "$output"
	[ "$stderr" = "$(info_cpu)" ]

	restore_probe "$T/img3"
	[ "$status" -eq 0 ]
	same "$(expected 3)" "$output"

	# earlier images are untouched by the later checkpoints
	restore_probe "$T/img2"
	[ "$status" -eq 0 ]
	same "$(expected 2)" "$output"
	restore_probe "$T/img"
	[ "$status" -eq 0 ]
	same "$(expected 1)" "$output"
}

@test "a mapped data file and a dlopen'ed library work after restore" {
	head -c 20000 /dev/urandom >"$T/data.bin"
	args=(--map "$T/data.bin")
	want=(map)
	if command -v cc >/dev/null; then
		mkdir "$T/lib"
		echo 'int probe_answer(void) { return 42; }' >"$T/lib/p.c"
		cc -shared -fPIC -o "$T/lib/libprobe.so" "$T/lib/p.c"
		args+=(--dlopen "$T/lib/libprobe.so")
		want+=(dl)
	else
		echo "# no C compiler: the dlopen part is not run" >&3
	fi
	checkpoint_probe "${args[@]}"
	run "$CRAC" inspect "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "  $T/data.bin (20000 bytes, inode $(stat -c %i "$T/data.bin"))"
	restore_probe "$T/img"
	[ "$status" -eq 0 ]
	same "$(expected 1 "${want[@]}")" "$output"
}

@test "unprivileged: the probe as nobody (checks, a signal from root, a chain)" {
	need_nobody "$PROBE"
	chown -R 65534:65534 "$T"
	checkpoint_probe
	[ "$(stat -c %u "$T/img/pages")" = 65534 ]
	export NOBODY
	restore_probe "$T/img"
	[ "$status" -eq 0 ]
	same "$(expected 1)" "$output"
	same "$(info_cpu)" "$stderr"

	kill_scenario

	restore_probe "$T/img" "chain=$T/img2"
	[ "$status" -eq 0 ]
	same "$(expected 1 chain)" "$output"
	[ "$(stat -c %u "$T/img2/header")" = 65534 ]
	restore_probe "$T/img2"
	[ "$status" -eq 0 ]
	same "$(expected 2)" "$output"
}
