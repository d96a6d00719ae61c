#!/bin/sh
# deps.sh - installs what building and testing crac needs on Debian 12, if
# it is missing: a C compiler, CMake, bats, pkg-config, man (for the man
# page test). Uses sudo when not root.
set -eu
need=""
command -v cc >/dev/null 2>&1 || need="$need build-essential"
command -v cmake >/dev/null 2>&1 || need="$need cmake"
command -v bats >/dev/null 2>&1 || need="$need bats"
command -v python3 >/dev/null 2>&1 || need="$need python3"
command -v setpriv >/dev/null 2>&1 || need="$need util-linux"
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
command -v man >/dev/null 2>&1 || need="$need man-db groff-base"
[ -n "$need" ] || exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
echo "crac: installing:$need" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $need >/dev/null
