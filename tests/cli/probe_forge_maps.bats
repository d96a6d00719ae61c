#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Probe (s25): the mapping records of a real image forged one field at a
# time, the header checksum made valid again (tests/image_edit), so that
# what refuses is the rule under test. An image is code: `crac restore`
# (by default, --populate, --lazy) refuses each in one line, status 1,
# before its point of no return (nothing written to CRAC_LOADER_PONR_FD),
# naming the mapping by its address range and the field at fault, and
# `crac inspect` fails the same check with the same line. Each record is
# one the image engine never writes, and each was seen restored before its
# rule: into a crash after the point of no return, a program killed by
# SIGBUS or SIGSEGV, a program that runs with the wrong memory, or a
# stored page written into the mapped file on disk.
#
# The program is tests/image_probe, run from a copy in $T (a forgery that
# escaped would write into that copy, not into the build tree), with a
# read-only private mapping of a file of its own ($T/mapfile, 5 pages).

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup forgemaps
	EDIT="$CRAC_BUILD_DIR/tests/image_edit"
	MOUNTED=
}

teardown() {
	[ -z "$MOUNTED" ] || umount "$MOUNTED" 2>/dev/null || true
	common_teardown
}

# checkpoint [MAPFILE]: $T/bin/image_probe (a copy) checkpointed into
# $T/good with a private read-only mapping of MAPFILE (default
# $T/mapfile, 20000 random bytes); $T/sums holds the checksums of the
# program and the mapped file.
checkpoint() {
	local mapfile=${1:-$T/mapfile}
	mkdir -m 755 "$T/bin" "$T/work"
	cp "$CRAC_BUILD_DIR/tests/image_probe" "$T/bin/image_probe"
	[ -e "$mapfile" ] || head -c 20000 /dev/urandom >"$mapfile"
	chmod 644 "$mapfile"
	run --separate-stderr clean "$T/bin/image_probe" "$T/good" "$T/work" --map "$mapfile"
	echo "checkpoint: status $status: $output $stderr"
	[ "$status" -eq 0 ]
	md5sum "$T/bin/image_probe" "$mapfile" >"$T/sums"
	"$EDIT" "$T/good" maps >"$T/maps"
	cat "$T/maps"
}

# (The tests' variables are never called i or j: bats's own functions,
# run from its traps, set those.)
# map_where AWK_CONDITION: the index of the first mapping of $T/maps
# matching the condition ($1 index, $2 start, $3 end, $4 offset, $5 prot,
# $6 flags, $7 kind, $8 file, $9 first chunk, $10 chunks, $11 stored,
# $12 name); fails if none.
map_where() {
	local found
	found=$(awk "$1 { print \$1; exit }" "$T/maps")
	[ -n "$found" ] || { echo "no mapping where $1" >&2; return 1; }
	echo "$found"
}

# range I: "START-END" of mapping I, as the refusals write it
range() {
	awk -v i="$1" '$1 == i { print $2 "-" $3 }' "$T/maps"
}

# forge EDIT...: $T/img, a fresh copy of $T/good with each EDIT (an
# image_edit operation, e.g. "map 3 flags 1") made
# mdesc I: "START-END NAME" of mapping I of $T/img as the header parser
# names it (no NAME when it has none)
mdesc() {
	"$EDIT" "$T/img" maps | awk -v i="$1" '$1 == i { printf "%s-%s%s", $2, $3, ($12 == "-" ? "" : " " $12) }'
}

# cdesc C: "(LEN bytes at ADDR, pages file offset OFF)" of chunk C of $T/img
cdesc() {
	"$EDIT" "$T/img" chunks | awk -v c="$1" '$1 == c { printf "(%s bytes at %s, pages file offset %s)", $4, $2, $3 }'
}

forge() {
	local e
	rm -rf "$T/img"
	cp -a "$T/good" "$T/img"
	for e in "$@"; do
		# shellcheck disable=SC2086
		"$EDIT" "$T/img" $e >/dev/null
	done
}

# refused CHECK REASON [OPTIONS...]: `crac restore` of $T/img, by default,
# with --populate and with --lazy (or the given OPTIONS, "-" for none),
# refuses in one line "crac: restore $T/img: REASON" (exactly), status 1,
# nothing on stdout, before the point of no return; `crac inspect` fails
# CHECK with exactly REASON (CHECK header: inspect refuses the header
# with that one line).
refused() {
	local check=$1 reason=$2 opt
	shift 2
	local opts=("$@")
	[ ${#opts[@]} -gt 0 ] || opts=(- --populate --lazy)
	for opt in "${opts[@]}"; do
		[ "$opt" != - ] || opt=
		: >"$T/ponr"
		run --separate-stderr clean sh -c 'exec 3>"$1"; CRAC_LOADER_PONR_FD=3 exec timeout 60 "$0" restore $2 "$3" -- pid=1' \
			"$CRAC" "$T/ponr" "$opt" "$T/img"
		echo "restore ${opt:-(default)}: status $status"
		echo "stdout: $output"
		echo "stderr: $stderr"
		echo "want:   crac: restore $T/img: $reason"
		[ "$status" -eq 1 ]
		[ -z "$output" ]
		[ "$stderr" = "crac: restore $T/img: $reason" ]
		[ ! -s "$T/ponr" ]
	done
	run --separate-stderr timeout 20 "$CRAC" inspect "$T/img"
	echo "inspect: status $status"
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 1 ]
	if [ "$check" = header ]; then
		[ "$stderr" = "crac: inspect $T/img: $T/img/header: $reason" ]
	else
		echo "$output" | grep -qxF "  $(printf '%-7s' "$check") FAILED: $reason"
	fi
}

# unchanged: the program and the mapped file are as they were
unchanged() {
	md5sum -c "$T/sums"
}

@test "forged field file: a file mapping given another mapped file's index is refused (it would map that file)" {
	checkpoint
	local mi
	mi=$(map_where "\$12 == \"$T/mapfile\"")
	forge "map $mi file 0"
	refused layout "mapping $(range "$mi") ($T/mapfile) of file $T/bin/image_probe: its name (field name) is not the path of its file (field file: #0): damaged image"
}

@test "forged field kind: a file mapping recorded as anonymous memory or shared memory, still naming its file, is refused (it would be zeros)" {
	checkpoint
	local mi file
	mi=$(map_where "\$12 == \"$T/mapfile\"")
	file=$(awk -v i="$mi" '$1 == i { print $8 }' "$T/maps")
	forge "map $mi kind 1"
	refused layout "mapping $(range "$mi") ($T/mapfile) is not a file mapping (field kind: anon) but names mapped file #$file (field file): damaged image"
	forge "map $mi kind 5"
	refused layout "mapping $(range "$mi") ($T/mapfile) is not a file mapping (field kind: shmem) but names mapped file #$file (field file): damaged image"
}

@test "forged field flags: a private file mapping with stored pages made shared is refused, and its file is left unchanged" {
	checkpoint
	local mi mj
	# the program's own .data (read-write, a page stored) and RELRO
	# (read-only, a page stored): shared, the first had its stored page
	# written into the program's file, the second failed to map (EACCES)
	# after the point of no return
	mi=$(map_where "\$12 == \"$T/bin/image_probe\" && \$5 == 3 && \$10 > 0")
	mj=$(map_where "\$12 == \"$T/bin/image_probe\" && \$5 == 1 && \$10 > 0")
	forge "map $mi flags 1"
	refused layout "mapping $(range "$mi") ($T/bin/image_probe): it is shared (field flags: 0x1) and stores 4096 bytes of pages (field n_chunks: 1): a shared file mapping's pages are its file's, and the restore would write these into the file: damaged image"
	unchanged
	forge "map $mj flags 1"
	refused layout "mapping $(range "$mj") ($T/bin/image_probe): it is shared (field flags: 0x1) and stores 4096 bytes of pages (field n_chunks: 1): a shared file mapping's pages are its file's, and the restore would write these into the file: damaged image"
	unchanged
}

@test "forged field flags: the stack, the heap or anonymous memory made shared is refused" {
	checkpoint
	local s h a
	s=$(map_where '$7 == 3')
	h=$(map_where '$7 == 2')
	a=$(map_where '$7 == 1 && $10 > 0')
	# a shared stack: the kernel refused it (EINVAL) after the point of no return
	forge "map $s flags 1"
	refused layout "mapping $(range "$s") ([stack]) is shared (field flags: 0x1), but the kernel maps no shared stack: damaged image"
	# shared heap or anonymous memory: restored shared (a child would share it)
	forge "map $h flags 1"
	refused layout "mapping $(range "$h") ([heap]) is shared (field flags: 0x1), but memory of this kind (field kind: heap) is private: damaged image"
	forge "map $a flags 3"
	refused layout "mapping $(range "$a") (anon) is shared (field flags: 0x3), but memory of this kind (field kind: anon) is private: damaged image"
}

@test "forged field kind: the [stack] recorded as anonymous memory, anonymous memory as the stack or as a second heap, is refused" {
	checkpoint
	local s a
	s=$(map_where '$7 == 3')
	a=$(map_where '$7 == 1 && $10 > 0')
	# restored, the stack did not grow down any more
	forge "map $s kind 1"
	refused layout "mapping $(range "$s") ([stack]) is named [stack] but is not the stack (field kind: anon): it would not grow down: damaged image"
	forge "map $a kind 3"
	refused layout "mapping $(range "$a") (stack) is the stack (field kind: stack) but not named [stack]: damaged image"
	# a second heap: named with the first (the image_probe's .bss lies
	# below its [heap])
	local h
	h=$(map_where '$7 == 2')
	[ "$a" -lt "$h" ]
	forge "map $a kind 2"
	refused layout "mappings $(range "$a") (heap) and $(range "$h") ([heap]) are both the heap (field kind), which a process has one of: damaged image"
}

@test "forged fields prot and offset: stored pages of a PROT_NONE file mapping past its file's end are refused (the loader died of SIGBUS)" {
	checkpoint
	local mi first r
	mi=$(map_where "\$12 == \"$T/bin/image_probe\" && \$5 == 3 && \$10 > 0")
	first=$(awk -v i="$mi" '$1 == i { print $9 }' "$T/maps")
	r=$(range "$mi")
	forge "map $mi prot 0" "map $mi offset 0x100000"
	refused layout "mapping $r ($T/bin/image_probe): its file offset (field offset) 0x100000 puts its stored chunk #$first (4096 bytes at ${r%-*}) past the end of its file ($(stat -c %s "$T/bin/image_probe") bytes): the restore would die of SIGBUS writing it in"
	unchanged
}

@test "forged field prot: an executable mapping of a file on a file system mounted noexec is refused (the kernel refused it after the point of no return)" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to mount a file system"
	mkdir -m 755 "$T/nx"
	mount -t tmpfs -o noexec,size=1m tmpfs "$T/nx" 2>/dev/null || skip "cannot mount a tmpfs here"
	MOUNTED="$T/nx"
	chmod 755 "$T/nx"
	checkpoint "$T/nx/mapfile"
	local mi
	mi=$(map_where "\$12 == \"$T/nx/mapfile\"")
	forge "map $mi prot 5"
	refused files "mapping $(range "$mi") ($T/nx/mapfile): it is executable (field prot: 0x5), and its file lies on a file system mounted noexec: the kernel would not map it so"
	# the same mapping readable only, as it was: restored
	rm -rf "$T/img"
	cp -a "$T/good" "$T/img"
	run --separate-stderr clean bash -c 'exec "$0" restore "$1" -- pid=$$' "$CRAC" "$T/img"
	echo "restore: status $status: $output / $stderr"
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "done generation=1" ]
}

@test "forged field end: a private writable mapping larger than the machine's memory and swap is refused (the kernel refused it after the point of no return)" {
	[ "$(cat /proc/sys/vm/overcommit_memory)" = 0 ] || skip "vm.overcommit_memory is not 0 (the heuristic)"
	checkpoint
	local h start big end
	h=$(map_where '$7 == 2')
	start=$(awk -v i="$h" '$1 == i { print $2 }' "$T/maps")
	# twice memory and swap together, in pages: between the [heap] and
	# the libraries lie tens of TiB
	big=$(awk '/^(MemTotal|SwapTotal):/ { kb += $2 } END { printf "%d", kb * 2 * 1024 }' /proc/meminfo)
	end=$(printf '%#x' $((start + big / 4096 * 4096)))
	forge "map $h end $end"
	refused process "mapping $start-$end ([heap]): its $((end - start)) bytes (fields start and end), private and writable or written in by the restore (fields flags, prot, stored), are more than this machine's memory and swap together ($(awk '/^(MemTotal|SwapTotal):/ { kb += $2 } END { printf "%d", kb * 1024 }' /proc/meminfo) bytes): the kernel would refuse to map it (vm.overcommit_memory 0)"
}

@test "forged fields flags and prot: a shared writable mapping of a file the restoring user may not write is refused naming the mapping" {
	need_nobody "$CRAC"
	mkdir -m 777 "$T/nb"
	head -c 20000 /dev/urandom >"$T/mapfile"
	chmod 644 "$T/mapfile"
	cp "$CRAC_BUILD_DIR/tests/image_probe" "$T/nb/image_probe"
	chmod 755 "$T/nb/image_probe"
	run --separate-stderr clean setpriv --reuid=65534 --regid=65534 --clear-groups "$T/nb/image_probe" "$T/nb/good" "$T/nb" \
		--map "$T/mapfile"
	echo "checkpoint as nobody: status $status: $output $stderr"
	[ "$status" -eq 0 ]
	"$EDIT" "$T/nb/good" maps >"$T/maps"
	local mi
	mi=$(map_where "\$12 == \"$T/mapfile\"")
	cp -a "$T/nb/good" "$T/nb/img"
	"$EDIT" "$T/nb/img" map "$mi" flags 1 >/dev/null
	"$EDIT" "$T/nb/img" map "$mi" prot 3 >/dev/null
	local want="crac: restore $T/nb/img: mapped file $T/mapfile: Permission denied (errno 13): opened for writing, for its shared writable mapping $(range "$mi") ($T/mapfile)"
	run --separate-stderr clean setpriv --reuid=65534 --regid=65534 --clear-groups "$CRAC" restore "$T/nb/img" -- pid=1
	echo "restore as nobody: status $status: $output / $stderr"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "$want" ]
}

# The forgeries the header parser and the layout check refused already (a
# regression table): each refused in one line before the point of no
# return, by default, with --populate and with --lazy; a header refusal
# is inspect's one line on stderr ("crac: inspect DIR: DIR/header: REASON").
@test "forged offsets, ranges and chunk records that were refused already still are: offset past the end or unaligned, file out of range, overlap, the vDSO block, chunks" {
	checkpoint
	local f a s r fc n
	f=$(map_where "\$12 == \"$T/mapfile\"")
	a=$(map_where '$7 == 1 && $10 > 1')
	s=$(map_where '$7 == 6')
	r=$(range "$f")
	fc=$(awk -v i="$a" '$1 == i { print $9 }' "$T/maps")
	n=$(awk -v i="$a" '$1 == i { print $10 }' "$T/maps")
	forge "map $f offset 0x100000"
	refused layout "mapping $r ($T/mapfile) starts past the end of its file: its file offset (field offset) 0x100000 is past the end of $T/mapfile (20000 bytes): touching it would raise SIGBUS"
	forge "map $f offset 0x800"
	refused header "header: mapping #$f $r of file $T/mapfile: file offset (field offset) 0x800 is not page aligned"
	local nf files
	nf=$("$EDIT" "$T/good" files | wc -l)
	files=$([ "$nf" -eq 1 ] && echo file || echo files)
	forge "map $f file 4096"
	refused header "header: bad file of mapping #$f $r $T/mapfile: file index (field file) 4096, the image has $nf $files"
	# overlapping the mapping before it; over the [vvar]/[vdso] block
	forge "map $f start $(awk -v i=$((f - 1)) '$1 == i { print $2 }' "$T/maps")"
	refused header "header: bad address range of mapping #$f $(mdesc "$f"): starts below the end of the mapping before it, $(awk -v i=$((f - 1)) '$1 == i { print $3 }' "$T/maps")"
	local past
	past=$(printf '%#x' $(($(awk -v i="$s" '$1 == i { print $2 }' "$T/maps") + 4096)))
	forge "map $((s - 1)) end $past"
	refused header "header: bad address range of mapping #$s $(mdesc "$s"): starts below the end of the mapping before it, $past"
	# a chunk moved out of its mapping, given to another mapping; a
	# mapping's chunk range off by one either way
	forge "chunkf $fc addr $(awk -v i="$f" '$1 == i { print $2 }' "$T/maps")"
	refused header "header: bad page chunk #$fc $(cdesc "$fc") of mapping #$a $(mdesc "$a"): not inside its mapping"
	forge "chunkf $fc map $f"
	refused header "header: bad page chunk #$fc $(cdesc "$fc") of mapping #$a $(mdesc "$a"): its mapping (field map) is another one"
	local held said
	held=$("$EDIT" "$T/good" chunks | awk -v a="$fc" -v b=$((fc + n - 1)) '$1 >= a && $1 < b { t += $4 } END { print t + 0 }')
	said=$(($(awk -v i="$a" '$1 == i { print $11 }' "$T/maps")))
	forge "map $a n_chunks $((n - 1))"
	refused header "header: stored size mismatch in mapping #$a $(mdesc "$a"): its chunks hold $held bytes, its record (field stored) says $said"
	forge "map $a n_chunks $((n + 1))"
	refused header "header: bad page chunk #$((fc + n)) $(cdesc $((fc + n))) of mapping #$a $(mdesc "$a"): its mapping (field map) is another one"
	forge "map $a first_chunk $((fc + 1))"
	refused header "header: bad chunk range of mapping #$a $(mdesc "$a"): its first chunk (field first_chunk) is #$((fc + 1)), the mappings before it end at #$fc"
}
