#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The man pages (docs/man) keep up with the API: every function declared in
# include/crac.h has docs/man/<name>.3 (a page, or a one-line `.so` link to
# one) whose NAME section lists it, and every page renders without warnings.
#
# Rendering needs `man` (Debian: man-db, which pulls in groff-base); without
# it that test is skipped, visibly, and the others still run.

setup() {
	SRC="${CRAC_SOURCE_DIR:-$BATS_TEST_DIRNAME/../..}"
	HEADER="$SRC/include/crac.h"
	MANDIR="$SRC/docs/man"
	T="$(mktemp -d /tmp/crac-bats-man.XXXXXX)"
}

teardown() {
	rm -rf "$T"
}

# api_functions HEADER: the names of the functions declared in HEADER, one
# per line, sorted. A declaration starts in column 0; comment lines start
# with "/*" or " *", struct members and continued parameter lists with
# blanks, so they are not read. Trailing comments are dropped first. A line
# may declare more than one function.
api_functions() {
	sed -n 's|/\*.*||; /^[A-Za-z_]/p' "$1" |
		grep -oE '\bcrac_[A-Za-z0-9_]+[[:space:]]*\(' |
		sed 's/[[:space:](]//g' | LC_ALL=C sort -u
}

# page_for NAME: the file that documents NAME, following a `.so` link.
page_for() {
	local f="$MANDIR/$1.3" target
	target="$(sed -n '1s|^\.so[[:space:]]\{1,\}man[0-9]/||p' "$f")"
	if [ -n "$target" ]; then
		echo "$MANDIR/$target"
	else
		echo "$f"
	fi
}

# name_section FILE: the lines of the NAME section.
name_section() {
	sed -n '/^\.SH NAME/,/^\.SH/{/^\.SH/!p;}' "$1"
}

@test "the function list is read from declarations only, several per line included" {
	cat >"$T/h.h" <<'EOF'
/* crac_in_comment() is not a declaration */
int crac_one(void);
/*
 * crac_in_block_comment(x) neither
 */
int crac_two(int a); int crac_three(void *p);
const char *crac_four(void); /* see crac_trailing() */
typedef int (*crac_callback)(const void *ev, void *arg);
struct crac_s {
	int (*crac_member)(void);
	int64_t x;	/* what crac_member_comment() adds */
};
int crac_five(int a,
	      int crac_param(b));
uint64_t crac_six (void);
EOF
	run api_functions "$T/h.h"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '%s\n' crac_five crac_four crac_one crac_six crac_three crac_two)" ]
}

@test "every function declared in include/crac.h has docs/man/<name>.3 that names it" {
	run api_functions "$HEADER"
	[ "$status" -eq 0 ]
	names="$output"
	echo "$(printf '%s\n' "$names" | wc -l) functions declared in $HEADER"
	# the extraction works on the real header
	for n in crac_version crac_checkpoint_restore crac_report_free; do
		printf '%s\n' "$names" | grep -qx "$n" || { echo "$n not found in $HEADER"; false; }
	done

	missing=
	unnamed=
	for n in $names; do
		if [ ! -f "$MANDIR/$n.3" ]; then
			missing="$missing $n"
			continue
		fi
		page="$(page_for "$n")"
		if [ ! -f "$page" ] || ! name_section "$page" | grep -qw -- "$n"; then
			unnamed="$unnamed $n(${page#"$MANDIR"/})"
		fi
	done
	[ -z "$missing" ] || echo "no man page docs/man/<name>.3 for:$missing"
	[ -z "$unnamed" ] || echo "page without the name in its NAME section:$unnamed"
	[ -z "$missing" ]
	[ -z "$unnamed" ]
}

@test "every .so link in docs/man points to a page that exists" {
	bad=
	for f in "$MANDIR"/*.[1-9]; do
		target="$(sed -n 's|^\.so[[:space:]]\{1,\}||p' "$f")"
		[ -n "$target" ] || continue
		sec="${f##*.}"
		case "$target" in
		man"$sec"/*) ;;
		*) bad="$bad ${f##*/}:wrong-section:$target"; continue ;;
		esac
		[ -f "$MANDIR/${target#*/}" ] || bad="$bad ${f##*/}:missing:$target"
	done
	[ -z "$bad" ] || echo "broken links:$bad"
	[ -z "$bad" ]
}

@test "every man page renders without warnings (man --warnings)" {
	command -v man >/dev/null 2>&1 ||
		skip "man not installed: install man-db (and groff-base) to check that the pages render"

	# the layout `.so man3/x.3` expects, so that links resolve from $T
	pages=0
	for f in "$MANDIR"/*.[1-9]; do
		sec="${f##*.}"
		mkdir -p "$T/man$sec"
		cp "$f" "$T/man$sec/"
		pages=$((pages + 1))
	done
	[ "$pages" -gt 0 ]

	# a locale that exists, so that man itself has nothing to complain about
	loc=C
	locale -a 2>/dev/null | grep -qix 'c\.utf-\{0,1\}8' && loc=C.UTF-8

	cd "$T"
	bad=0
	for f in man*/*; do
		rc=0
		LC_ALL=$loc MANWIDTH=80 MANPAGER=cat PAGER=cat \
			man --warnings -l "$f" >"$T/out" 2>"$T/err" || rc=$?
		if [ "$rc" -ne 0 ] || [ -s "$T/err" ] || [ ! -s "$T/out" ]; then
			echo "== $f (exit $rc):"
			cat "$T/err"
			[ -s "$T/out" ] || echo "(no output)"
			bad=$((bad + 1))
		fi
	done
	echo "$pages pages checked, $bad with problems"
	[ "$bad" -eq 0 ]
}
