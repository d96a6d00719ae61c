#!/bin/sh
# deps.sh - installs what building and testing crac needs on Debian 12, if
# it is missing: a C compiler, CMake, bats, pkg-config, man (for the man
# page test); then, best effort, the programs of the zoo (tests/zoo,
# bench/zoo.sh): perl, gawk, lua5.4, sqlite3, redis-server and redis-cli,
# node, a JDK (java and javac). Uses sudo when not root.
#
# The build packages must install (an error stops the script). A zoo package
# that cannot be installed is reported and left out: its zoo tests skip with
# the reason ("no lua5.4 ..."). CRAC_DEPS_NO_ZOO=1 leaves the zoo out.
set -eu
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi

need=""
command -v cc >/dev/null 2>&1 || need="$need build-essential"
command -v cmake >/dev/null 2>&1 || need="$need cmake"
command -v bats >/dev/null 2>&1 || need="$need bats"
command -v python3 >/dev/null 2>&1 || need="$need python3"
command -v setpriv >/dev/null 2>&1 || need="$need util-linux"
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
command -v man >/dev/null 2>&1 || need="$need man-db groff-base"

# The zoo: command, Debian 12 package(s).
zoo=""
if [ "${CRAC_DEPS_NO_ZOO:-0}" != 1 ]; then
	command -v perl >/dev/null 2>&1 || zoo="$zoo perl"
	command -v gawk >/dev/null 2>&1 || zoo="$zoo gawk"
	command -v lua5.4 >/dev/null 2>&1 || zoo="$zoo lua5.4"
	command -v sqlite3 >/dev/null 2>&1 || zoo="$zoo sqlite3"
	command -v redis-server >/dev/null 2>&1 || zoo="$zoo redis-server"
	command -v redis-cli >/dev/null 2>&1 || zoo="$zoo redis-tools"
	command -v node >/dev/null 2>&1 || zoo="$zoo nodejs"
	# javac for the zoo's Java program (a JRE alone cannot compile it)
	command -v java >/dev/null 2>&1 && command -v javac >/dev/null 2>&1 ||
		zoo="$zoo openjdk-17-jdk-headless"
fi

[ -n "$need$zoo" ] || exit 0
# cannot_install WHY: the build packages are required (exit 1); the zoo's
# are not (their tests skip, saying which package is missing).
cannot_install() {
	if [ -n "$need" ]; then
		echo "crac: $1; cannot install:$need$zoo" >&2
		exit 1
	fi
	echo "crac: $1; zoo packages not installed (their tests will skip):$zoo" >&2
	exit 0
}
if [ -n "$sudo" ] && ! command -v sudo >/dev/null 2>&1; then
	cannot_install "not root and no sudo"
fi
echo "crac: apt-get update" >&2
# apt's progress goes to the terminal (stderr), not into a caller's stdout
$sudo apt-get update >&2 || cannot_install "apt-get update failed"
if [ -n "$need" ]; then
	echo "crac: installing (build and tests):$need" >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y $need >&2
fi
# Zoo packages one by one, so that one that cannot be installed (not in
# this release, no space, no network) leaves the others and the build alone.
failed=""
for p in $zoo; do
	echo "crac: installing (zoo): $p" >&2
	if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "$p" >&2; then
		failed="$failed $p"
	fi
done
# redis-server's package starts a system service; the zoo starts its own
# servers on their own ports, so stop it if it was started just now.
case "$zoo" in
*redis-server*)
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
		$sudo systemctl stop redis-server >&2 || true
	fi ;;
esac
[ -z "$failed" ] || echo "crac: could not install (their zoo tests will skip):$failed" >&2
exit 0
