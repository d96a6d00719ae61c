#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# An image is code and a trust boundary (crac(1) SECURITY): what the restore
# loader and `crac inspect` (one check routine, src/image/check.c) refuse
# before the point of no return, and how the loader behaves after it.
#   - owner and mode: root does not run another user's image, nobody runs an
#     image others may write, unless --trust-owner
#   - a FIFO or a symbolic link where the header or pages file belongs:
#     refused at once (never waited on, never followed)
#   - crafted headers (checksum kept valid): every one refused in one line,
#     status 1, and inspect says the same
#   - a crash after the point of no return: one line naming where and when
#   - descriptors of `crac restore` itself never reach the restored program
#   - argument and environment limits said, never cut silently

bats_require_minimum_version 1.5.0

load common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROBE="$CRAC_BUILD_DIR/tests/image_probe"
	EDIT="$CRAC_BUILD_DIR/tests/image_edit"
	T="$(mktemp -d /tmp/crac-bats-trust.XXXXXX)"
	chmod 755 "$T"
	mkdir -m 755 "$T/work"
	unset CRAC_ENGINE CRAC_CONTROL CRAC_IMAGE_DIR CRAC_POLICIES CRAC_IMAGE_STATS CRAC_LOADER
	require_image_engine
}

teardown() {
	rm -rf "$T"
}

checkpoint() {
	run --separate-stderr clean "$PROBE" "$T/img" "$T/work"
	echo "checkpoint: status $status: $output $stderr"
	[ "$status" -eq 0 ]
}

# restore_refused [OPTIONS...]: `crac restore [OPTIONS] $T/img -- pid=1`
# refuses with status 1 and one line (refused_restore, common.bash); the
# reason (without "crac: restore DIR: ") in $REASON.
restore_refused() {
	refused_restore "$T/img" "$@" -- pid=1
}

# restores [OPTIONS...]: the image restores and every probe check passes.
restores() {
	run --separate-stderr clean bash -c 'exec "$0" restore "$@" -- pid=$$' "$CRAC" "$@" "$T/img"
	echo "restore: status $status"
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "done generation=1" ]
}

# inspect_says CHECK REASON: `crac inspect` fails CHECK with exactly REASON.
inspect_says() {
	run timeout 20 "$CRAC" inspect "$T/img"
	echo "inspect: status $status"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -qxF "  $(printf '%-7s' "$1") FAILED: $2"
	echo "$output" | grep -qx "result:    this machine cannot restore the image"
}

# ---- owner and mode ------------------------------------------------------------

@test "root does not restore an image owned by another user, unless --trust-owner" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to give the image away"
	checkpoint
	chown -R 65534:65534 "$T/img"
	restore_refused
	[ "$REASON" = "$T/img is owned by uid 65534, not by the restoring user (uid 0): an image is code, restoring it runs that user's program as you; \`crac restore --trust-owner\` accepts it" ]
	inspect_says owner "$REASON"
	restores --trust-owner
	run "$CRAC" inspect --trust-owner "$T/img"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "  owner   ok: not checked (--trust-owner)"
}

@test "an image file others may write is refused, unless --trust-owner" {
	checkpoint
	chmod 666 "$T/img/pages"
	restore_refused
	[ "$REASON" = "$T/img/pages can be written by other users (mode 0666): they could change the program it restores; \`crac restore --trust-owner\` accepts it" ]
	inspect_says owner "$REASON"
	chmod 600 "$T/img/pages"
	chmod 770 "$T/img"
	restore_refused
	[[ "$REASON" == "$T/img can be written by other users (mode 0770)"* ]]
	restores --trust-owner
}

@test "nobody does not restore root's image (it cannot even read it)" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to switch to nobody"
	setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$CRAC" || skip "build tree not accessible to nobody"
	checkpoint
	chmod 755 "$T/img"
	chmod 644 "$T/img/header" "$T/img/pages"
	run --separate-stderr clean setpriv --reuid=65534 --regid=65534 --clear-groups "$CRAC" restore "$T/img" -- pid=1
	echo "$status: $output $stderr"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[[ "$stderr" == "crac: restore $T/img: $T/img is owned by uid 0, not by the restoring user (uid 65534)"* ]]
}

# ---- files that are not what they should be ------------------------------------

@test "a FIFO or a symbolic link as header or pages is refused at once; inspect does not hang" {
	checkpoint
	for f in header pages; do
		mv "$T/img/$f" "$T/$f.real"
		mkfifo -m 600 "$T/img/$f"
		restore_refused
		[ "$REASON" = "$T/img/$f is a FIFO, not a regular file: refused" ]
		run --separate-stderr timeout 20 "$CRAC" inspect "$T/img"
		echo "inspect: $status $stderr"
		[ "$status" -eq 1 ]
		[ "$stderr" = "crac: inspect $T/img: $REASON" ]
		rm "$T/img/$f"
		ln -s "$T/$f.real" "$T/img/$f"
		restore_refused
		[ "$REASON" = "$T/img/$f is a symbolic link: refused (an image's files are never followed)" ]
		rm "$T/img/$f"
		mv "$T/$f.real" "$T/img/$f"
	done
	restores
}

@test "a missing header names the file and the errno" {
	checkpoint
	rm "$T/img/header"
	restore_refused
	[ "$REASON" = "$T/img/header: No such file or directory (errno 2)" ]
}

# ---- crafted headers (checksum valid) -------------------------------------------

@test "crafted headers are refused before the point of no return, and inspect agrees" {
	checkpoint
	cp -a "$T/img" "$T/good"
	for edit in vdso-block-zero map-at-zero file-past-end kind resume-moved vdso-kind; do
		rm -rf "$T/img"
		cp -a "$T/good" "$T/img"
		"$EDIT" "$T/img" $edit >/dev/null
		restore_refused
		echo "$edit: $REASON"
		case $edit in
		vdso-block-zero) [ "$REASON" = "the image records no [vvar]/[vdso] block" ] ;;
		map-at-zero) [[ "$REASON" =~ ^mapping\ 0x0-0x[0-9a-f]+\ \(.+\)\ lies\ below\ vm.mmap_min_addr:\ the\ kernel\ cannot\ map\ it$ ]] ;;
		file-past-end) [[ "$REASON" =~ ^mapping\ 0x[0-9a-f]+-0x[0-9a-f]+\ \(.+\)\ starts\ past\ the\ end\ of\ its\ file:\ its\ file\ offset\ \(field\ offset\)\ 0x[0-9a-f]+\ is\ past\ the\ end\ of\ /.+\ \([0-9]+\ bytes\):\ touching\ it\ would\ raise\ SIGBUS$ ]] ;;
		kind) [[ "$REASON" =~ ^header:\ bad\ kind\ or\ protection\ of\ mapping\ #0\ 0x[0-9a-f]+-0x[0-9a-f]+(\ .+)?:\ kind\ \(field\ kind\)\ 0x2a$ ]] ;;
		resume-moved) [ "$REASON" = "the resume block address lies in no private read-write mapping" ] ;;
		vdso-kind) [[ "$REASON" =~ ^mapping\ .+\ does\ not\ match\ the\ recorded\ \[vvar\]/\[vdso\]\ block$ ]] ;;
		esac
		if [ $edit != kind ]; then
			inspect_says layout "$REASON"
		fi
		run "$CRAC_BUILD_DIR/crac-loader" --check "$T/img"
		[ "$status" -eq 1 ]
	done
}

@test "a file mapping whose offset the kernel cannot map is refused before the point of no return, naming the mapping, the file, the field and the value, and inspect agrees" {
	checkpoint
	cp -a "$T/img" "$T/good"
	# a PROT_NONE mapping (the layout check's past-the-end rule is for
	# accessible ones): its mmap failed with EOVERFLOW after the point of
	# no return, and the restore died there. The layout check refuses it
	# now (the loader's own refusal stays behind it).
	for off in 0xfffffffffffff000 0x7ffffffffffff000; do
		rm -rf "$T/img"
		cp -a "$T/good" "$T/img"
		read -r range file < <("$EDIT" "$T/img" file-offset $off)
		: >"$T/ponr"
		refused_restore "$T/img" -- pid=1
		echo "$off: $REASON"
		# (the restore under CRAC_LOADER_PONR_FD: nothing written there)
		run --separate-stderr clean sh -c 'exec 3>"$1" && CRAC_LOADER_PONR_FD=3 exec "$0" restore "$2" -- pid=1' \
			"$CRAC" "$T/ponr" "$T/img"
		[ "$status" -eq 1 ]
		[ ! -s "$T/ponr" ]
		len=$(printf '0x%x' $((0x${range#*-} - 0x${range%-*})))
		# (the mapping's name is its file's path: said once)
		[ "$REASON" = "mapping 0x${range%-*}-0x${range#*-} ($file): its file offset (field offset) $off with its length $len ends past the largest offset of a file (2^63 - 1): the kernel cannot map it" ]
		inspect_says layout "$REASON"
	done
	# the largest offset that still fits is accepted by the layout check
	rm -rf "$T/img"
	cp -a "$T/good" "$T/img"
	read -r range file < <("$EDIT" "$T/img" file-offset 0)
	len=$((0x${range#*-} - 0x${range%-*}))
	"$EDIT" "$T/img" file-offset $(printf '0x%x' $(((1 << 63) - 4096 - len))) >/dev/null
	run timeout 20 "$CRAC" inspect "$T/img"
	echo "$output"
	echo "$output" | grep -q "^  layout  ok"
	# not page aligned: the header parser's refusal, naming the mapping,
	# the file, the field and the value
	rm -rf "$T/img"
	cp -a "$T/good" "$T/img"
	read -r range file < <("$EDIT" "$T/img" file-offset 0x1008)
	refused_restore "$T/img" -- pid=1
	[[ "$REASON" =~ ^header:\ mapping\ \#[0-9]+\ 0x${range%-*}-0x${range#*-}\ of\ file\ (.+):\ file\ offset\ \(field\ offset\)\ 0x1008\ is\ not\ page\ aligned$ ]]
	[ "${BASH_REMATCH[1]}" = "$file" ]
}

@test "a crash after the point of no return is named, never silent" {
	checkpoint
	run --separate-stderr clean env CRAC_LOADER_TEST_CRASH=1 "$CRAC" restore "$T/img" -- pid=1
	echo "status $status: $output / $stderr"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[[ "$stderr" =~ ^crac:\ restore\ $T/img:\ crashed\ at\ 0x[0-9a-f]+\ \(SIGSEGV,\ fault\ address\ 0x10\)\ while\ mapping\ the\ image:\ the\ image\ is\ damaged\ or\ does\ not\ fit\ this\ machine\;\ nothing\ was\ changed\ on\ disk$ ]]
}

# ---- what reaches the restored program ------------------------------------------

@test "descriptors of crac restore itself do not leak into the restored process" {
	checkpoint
	restored_fds
	[ "$fds" = "0 1 2 " ]
}

@test "argument and environment limits are said, never cut" {
	checkpoint
	run --separate-stderr "$CRAC" restore "$T/img" -- $(seq 16385)
	echo "$status: $stderr"
	[ "$status" -eq 2 ]
	[ "$stderr" = "crac: restore $T/img: too many new arguments (at most 16384 of them, 1048576 bytes in all)" ]
	envs=()
	for i in $(seq 16385); do envs+=(--env "K$i=v"); done
	run --separate-stderr "$CRAC" restore "${envs[@]}" "$T/img"
	echo "$status: $stderr"
	[ "$status" -eq 2 ]
	[ "$stderr" = "crac: restore $T/img: too many --env settings (at most 16384 of them, 1048576 bytes in all)" ]
	big=$(head -c 120000 /dev/zero | tr '\0' x)
	run --separate-stderr "$CRAC" restore "$T/img" -- $big $big $big $big $big $big $big $big $big
	echo "$status: ${stderr:0:300}"
	[ "$status" -eq 2 ]
	[ "$stderr" = "crac: restore $T/img: too many new arguments (at most 16384 of them, 1048576 bytes in all)" ]
}

@test "memory in the loader's reserved range: the checkpoint is refused while the process still runs, no image left" {
	run clean "$CRAC_BUILD_DIR/tests/ckpt_loader_range" "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "lies in the restore loader's reserved range 0x500000000000-0x500010000000"
	[ "${lines[-1]}" = "still running" ]
	[ ! -e "$T/img" ]
	[ -z "$(ls "$T" | grep img)" ]
}

@test "text from an image reaches the terminal escaped; --json stays valid for any bytes" {
	# a working directory whose name holds an escape sequence and a byte
	# that is not UTF-8: it is recorded in the image as it is
	W="$T/$(printf 'w\033[31mred\377')"
	mkdir -m 755 "$W"
	run --separate-stderr clean "$PROBE" "$T/img" "$W"
	echo "checkpoint: $status $output $stderr"
	[ "$status" -eq 0 ]
	run "$CRAC" inspect "$T/img"
	echo "$output"
	[ "$status" -eq 0 ]
	# no raw escape or control byte anywhere in the text output
	! printf '%s' "$output" | LC_ALL=C grep -q "$(printf '\033')" || false
	echo "$output" | grep -qF 'cwd '"$T"'/w\x1b[31mred'
	run "$CRAC" inspect --json "$T/img"
	[ "$status" -eq 0 ]
	! printf '%s' "$output" | LC_ALL=C grep -q "$(printf '\033')" || false
	# Python reads it back, and the bytes are recovered exactly
	printf '%s' "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
cwd = d["cwd"].encode("utf-8", "surrogateescape")
assert cwd == sys.argv[1].encode("utf-8", "surrogateescape"), (cwd, sys.argv[1])
' "$W"
}

# ---- mapped files: identified by stat, read only with --verify-files -------------------
#
# The loader takes a mapped file for the one the image saw when its device,
# inode, size, mtime and ctime are the recorded ones (src/image/check.c):
# no page of it is read unless `crac restore --verify-files`. The ctime is
# what no writer can put back: a content change whose mtime was reset with
# touch -d is still refused.

# mapped_checkpoint: image_probe with a 5-page data file mapped MAP_PRIVATE.
mapped_checkpoint() {
	head -c 20000 /dev/urandom >"$T/data.bin"
	run --separate-stderr clean "$PROBE" "$T/img" "$T/work" --map "$T/data.bin"
	echo "checkpoint: status $status: $output $stderr"
	[ "$status" -eq 0 ]
}

@test "mapped file: content changed in its first page, mtime reset with touch -d: refused (ctime), with and without --verify-files" {
	mapped_checkpoint
	mtime=$(stat -c %y "$T/data.bin")
	size=$(stat -c %s "$T/data.bin")
	printf 'QQQQ' | dd of="$T/data.bin" bs=1 seek=10 conv=notrunc status=none
	touch -d "$mtime" "$T/data.bin"
	[ "$(stat -c %y.%s "$T/data.bin")" = "$mtime.$size" ]
	restore_refused
	[ "$REASON" = "file $T/data.bin changed since the checkpoint (its status change time (ctime) differs): a write whose modification time was put back, or only a chmod, chown or new hard link (a backup, perf's build-id cache) that crac cannot tell apart from one; checkpoint again if its content is the same" ]
	restore_refused --verify-files
	[ "$REASON" = "file $T/data.bin changed since the checkpoint (its status change time (ctime) differs): a write whose modification time was put back, or only a chmod, chown or new hard link (a backup, perf's build-id cache) that crac cannot tell apart from one; checkpoint again if its content is the same" ]
	inspect_says files "$REASON"
}

@test "mapped file unchanged: restores with and without --verify-files; the files check says how it identified them" {
	mapped_checkpoint
	restores
	restores --verify-files
	run "$CRAC" inspect "$T/img"
	echo "$output"
	echo "$output" | grep -Eq "^  files +ok: [0-9]+ mapped files unchanged \(device, inode, size, mtime, ctime\)$"
}

@test "--verify-files reads the pages: the loader's --stats says which check ran" {
	mapped_checkpoint
	run --separate-stderr clean bash -c 'exec "$0" restore --stats "$@" -- pid=$$' "$CRAC" "$T/img"
	echo "$stderr"
	[ "$status" -eq 0 ]
	echo "$stderr" | grep -Eq "^crac: loader: checks [0-9.]+ ms \([0-9]+ mapped files by stat identity\)"
	run --separate-stderr clean bash -c 'exec "$0" restore --stats --verify-files "$@" -- pid=$$' "$CRAC" "$T/img"
	echo "$stderr"
	[ "$status" -eq 0 ]
	echo "$stderr" | grep -Eq "^crac: loader: checks [0-9.]+ ms \([0-9]+ mapped files by stat and first/last page\)"
}
