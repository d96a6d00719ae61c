#!/bin/sh
# SPDX-License-Identifier: MIT
# deps.sh - installs what building and testing crac needs on Debian 12, if
# it is missing, and says what it installs (apt's own progress shows on the
# terminal, on stderr):
#  - build and tests (required): a C compiler, CMake, bats, python3,
#    setpriv, pkg-config, man (for the man page test);
#  - the program zoo (tests/zoo, bench/zoo.sh; best effort): perl, gawk,
#    lua5.4, sqlite3, redis-server and redis-cli, node, nginx, memcached, a
#    JDK, tclsh, php, ruby, curl (Debian starts the redis, nginx and memcached services it
#    installs, where systemd
#    runs: stop them if you do not want them);
#  - optional features (best effort): libsystemd-dev (sd-bus, sd_notify),
#    dbus and python3-dbusmock (a private bus for the logind tests),
#    systemd (systemd-socket-activate), libzstd-dev (compressed images).
# Uses sudo when not root; without root and without sudo it says what to run
# as root instead.
#
# A required package that cannot be installed stops the script (exit 1). A
# best-effort package that cannot be installed is reported and left out: its
# tests skip with the reason ("no lua5.4 ...", "no libzstd ..."); exit 0.
# CRAC_DEPS_NO_ZOO=1 leaves the zoo out, CRAC_DEPS_NO_FEATURES=1 the optional
# features; CRAC_DEPS_DRY_RUN=1 only says what would be installed.
set -eu
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
# apt-get without questions: through env, since sudo resets the environment
# (a DEBIAN_FRONTEND set before `sudo` never reaches apt-get)
apt_quiet="env DEBIAN_FRONTEND=noninteractive apt-get"

have_pc() { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$1"; }
# python3 -c 'import M' with python3 from PATH or Debian's own (a Debian
# python3-* package installs for /usr/bin/python3)
have_py() {
	python3 -c "import $1" >/dev/null 2>&1 || /usr/bin/python3 -c "import $1" >/dev/null 2>&1
}

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
	command -v nginx >/dev/null 2>&1 || zoo="$zoo nginx-light"
	command -v memcached >/dev/null 2>&1 || zoo="$zoo memcached"
	command -v curl >/dev/null 2>&1 || zoo="$zoo curl"
	# javac for the zoo's Java program (a JRE alone cannot compile it)
	command -v java >/dev/null 2>&1 && command -v javac >/dev/null 2>&1 ||
		zoo="$zoo openjdk-17-jdk-headless"
	command -v tclsh >/dev/null 2>&1 || zoo="$zoo tcl"
	command -v php >/dev/null 2>&1 || zoo="$zoo php-cli"
	command -v ruby >/dev/null 2>&1 || zoo="$zoo ruby"
fi

# Optional features: what their tests look for, Debian 12 package.
features=""
if [ "${CRAC_DEPS_NO_FEATURES:-0}" != 1 ]; then
	have_pc libsystemd || features="$features libsystemd-dev"
	command -v dbus-daemon >/dev/null 2>&1 || features="$features dbus"
	have_py dbusmock || features="$features python3-dbusmock"
	command -v systemd-socket-activate >/dev/null 2>&1 || features="$features systemd"
	have_pc libzstd || features="$features libzstd-dev"
fi
optional="$zoo$features"

if [ -z "$need$optional" ]; then
	echo "crac: everything needed is installed" >&2
	exit 0
fi
[ -z "$need" ] || echo "crac: missing (build and tests, required):$need" >&2
[ -z "$zoo" ] || echo "crac: missing (the program zoo, best effort):$zoo" >&2
[ -z "$features" ] || echo "crac: missing (optional features, best effort):$features" >&2
if [ "${CRAC_DEPS_DRY_RUN:-0}" = 1 ]; then
	echo "crac: CRAC_DEPS_DRY_RUN=1: nothing installed" >&2
	exit 0
fi

# cannot_install WHY: the build packages are required (exit 1); the others
# are not (their tests skip, saying which package is missing).
cannot_install() {
	if [ -n "$need" ]; then
		echo "crac: $1; cannot install:$need$optional" >&2
		echo "crac: as root, run: apt-get update && apt-get install$need$optional" >&2
		exit 1
	fi
	echo "crac: $1; not installed (their tests will skip):$optional" >&2
	echo "crac: as root, run: apt-get update && apt-get install$optional" >&2
	exit 0
}
if [ -n "$sudo" ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		cannot_install "not root and sudo is not installed"
	fi
	# without a terminal sudo cannot ask for a password: say so now
	if ! (: </dev/tty) 2>/dev/null && ! sudo -n true 2>/dev/null; then
		cannot_install "not root, and sudo needs a password but there is no terminal to ask on"
	fi
	echo "crac: not root: installing with sudo" >&2
fi
if ! command -v apt-get >/dev/null 2>&1; then
	cannot_install "no apt-get (this script knows Debian's packages only)"
fi
echo "crac: apt-get update" >&2
# apt's progress goes to the terminal (stderr), not into a caller's stdout
$sudo apt-get update >&2 || cannot_install "apt-get update failed"
if [ -n "$need" ]; then
	echo "crac: installing (build and tests):$need" >&2
	$sudo $apt_quiet install -y $need >&2
fi
# Best-effort packages one by one, so that one that cannot be installed (not
# in this release, no space, no network) leaves the others and the build alone.
failed=""
installed=""
for p in $optional; do
	echo "crac: installing (best effort): $p" >&2
	if $sudo $apt_quiet install -y --no-install-recommends "$p" >&2; then
		installed="$installed $p"
	else
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
echo "crac: installed:$need$installed" >&2
[ -z "$failed" ] || echo "crac: could not install (their tests will skip):$failed" >&2
exit 0
