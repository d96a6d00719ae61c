#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# scripts/deps.sh says what it installs, in three groups (required,
# the zoo, optional features), and without root and without sudo says what
# to run as root instead of failing silently. The tests never install
# anything: CRAC_DEPS_DRY_RUN=1, or a PATH without sudo and apt-get.

setup() {
	T="$(mktemp -d /tmp/crac-bats-deps.XXXXXX)"
	chmod 755 "$T"
	DEPS="$CRAC_SOURCE_DIR/scripts/deps.sh"
	# a PATH where nothing deps.sh looks for exists (only id)
	mkdir "$T/bin"
	ln -s "$(command -v id)" "$T/bin/id"
}

teardown() {
	rm -rf "$T"
}

@test "deps.sh (dry run) names every missing package by group" {
	run env PATH="$T/bin" CRAC_DEPS_DRY_RUN=1 /bin/sh "$DEPS"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^crac: missing (build and tests, required): build-essential cmake bats python3 util-linux pkg-config man-db groff-base\$"
	echo "$output" | grep -q "^crac: missing (the program zoo, best effort): perl gawk lua5.4 sqlite3 redis-server redis-tools nodejs nginx-light memcached curl openjdk-17-jdk-headless tcl php-cli ruby\$"
	echo "$output" | grep -q "^crac: missing (optional features, best effort): libsystemd-dev dbus .*systemd libzstd-dev\$"
	echo "$output" | grep -q "^crac: CRAC_DEPS_DRY_RUN=1: nothing installed\$"
	run env PATH="$T/bin" CRAC_DEPS_DRY_RUN=1 CRAC_DEPS_NO_ZOO=1 CRAC_DEPS_NO_FEATURES=1 /bin/sh "$DEPS"
	! echo "$output" | grep -q "zoo\|optional" || false
}

@test "deps.sh without root and without sudo: says what to run as root (exit 1 for required packages)" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to run as nobody"
	run setpriv --reuid=nobody --regid=nogroup --clear-groups env PATH="$T/bin" /bin/sh "$DEPS"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "^crac: not root and sudo is not installed; cannot install: build-essential cmake"
	echo "$output" | grep -q "^crac: as root, run: apt-get update && apt-get install build-essential cmake .* libzstd-dev\$"
	# with only optional packages missing: exit 0, their tests skip
	for c in cc cmake bats python3 setpriv pkg-config man; do
		ln -s /bin/true "$T/bin/$c"
	done
	run setpriv --reuid=nobody --regid=nogroup --clear-groups env PATH="$T/bin" CRAC_DEPS_NO_FEATURES=1 /bin/sh "$DEPS"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "^crac: not root and sudo is not installed; not installed (their tests will skip): perl gawk"
}

@test "deps.sh as root without apt-get: says so" {
	[ "$(id -u)" -eq 0 ] || skip "needs root"
	run env PATH="$T/bin" /bin/sh "$DEPS"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "^crac: no apt-get (this script knows Debian's packages only); cannot install: build-essential"
}

@test "deps.sh when nothing is missing: says so, needs neither root nor sudo" {
	CRAC_DEPS_DRY_RUN=1 sh "$DEPS" 2>"$T/err" || true
	grep -q "^crac: missing" "$T/err" && skip "this machine misses packages: $(grep '^crac: missing' "$T/err" | tr '\n' ' ')"
	run setpriv --reuid=nobody --regid=nogroup --clear-groups /bin/sh "$DEPS"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "crac: everything needed is installed" ]
}

@test "deps.sh with sudo: apt-get gets DEBIAN_FRONTEND=noninteractive through sudo's reset environment" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to run as nobody"
	# sudo resets the environment (env_reset, Debian's default): a variable
	# set before `sudo` never reaches apt-get, whose debconf questions then
	# waited on the terminal
	cat >"$T/bin/sudo" <<'SUDO'
#!/bin/sh
[ "$1" = -n ] && shift
exec /usr/bin/env -i PATH="$PATH" "$@"
SUDO
	cat >"$T/bin/apt-get" <<APT
#!/bin/sh
echo "\$1 frontend=\${DEBIAN_FRONTEND:-unset}" >>"$T/log/apt"
APT
	chmod 755 "$T/bin/sudo" "$T/bin/apt-get"
	ln -s /usr/bin/env "$T/bin/env"
	mkdir -m 777 "$T/log"
	for c in cc cmake bats python3 setpriv pkg-config man true; do
		ln -s /bin/true "$T/bin/$c"
	done
	run setpriv --reuid=nobody --regid=nogroup --clear-groups env PATH="$T/bin" CRAC_DEPS_NO_FEATURES=1 \
		/bin/sh "$DEPS" </dev/null
	echo "$output"
	cat "$T/log/apt"
	[ "$status" -eq 0 ]
	grep -q "^install " "$T/log/apt"
	! grep "^install " "$T/log/apt" | grep -v "frontend=noninteractive\$" || false
}
