#!/bin/sh
# SPDX-License-Identifier: MIT
# install_check.sh BUILD_DIR SOURCE_DIR - `cmake --install` to a fresh
# prefix, then build the README example against it twice: with pkg-config
# (shared library) and with the CMake package (find_package(crac)). Both
# programs must run and report a sim restore.
set -eu
build=$1
src=$2
prefix=$(mktemp -d /tmp/crac-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/crac.h lib/libcrac.so lib/libcrac.a lib/pkgconfig/crac.pc \
	lib/cmake/crac/cracConfig.cmake bin/crac share/man/man3/crac_checkpoint_restore.3 \
	share/man/man1/crac.1; do
	[ -e "$prefix/$f" ] || { echo "install_check: $prefix/$f missing" >&2; exit 1; }
done

# pkg-config
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cc -o "$prefix/hello" "$src/examples/hello.c" $(pkg-config --cflags --libs crac) \
	-Wl,-rpath,"$prefix/lib"
out=$(CRAC_ENGINE=sim "$prefix/hello")
echo "$out" | grep -q "restored: generation 1, engine sim" || {
	echo "install_check: pkg-config build printed: $out" >&2; exit 1; }

# CMake package
mkdir "$prefix/proj"
cp "$src/examples/hello.c" "$prefix/proj/"
cat >"$prefix/proj/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(hello C)
find_package(crac REQUIRED)
add_executable(hello hello.c)
target_link_libraries(hello PRIVATE crac::crac)
CM
cmake -S "$prefix/proj" -B "$prefix/proj/b" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/proj/b" >/dev/null
out=$(CRAC_ENGINE=sim LD_LIBRARY_PATH="$prefix/lib" "$prefix/proj/b/hello")
echo "$out" | grep -q "restored: generation 1, engine sim" || {
	echo "install_check: CMake package build printed: $out" >&2; exit 1; }

# The Python binding: installed under the prefix, it finds the installed
# library by itself (no $CRAC_LIBRARY, no LD_LIBRARY_PATH, no ldconfig).
if command -v python3 >/dev/null 2>&1; then
	init=$(find "$prefix/lib" -path '*-packages/crac/__init__.py' | head -1)
	[ -n "$init" ] || { echo "install_check: the Python binding (crac/__init__.py) is not installed" >&2; exit 1; }
	pydir=$(dirname "$(dirname "$init")")
	out=$(cd / && env -u CRAC_LIBRARY -u LD_LIBRARY_PATH PYTHONPATH="$pydir" python3 -c '
import crac
print(crac.library_path)
print(crac.checkpoint(engine="sim").name)')
	[ "$out" = "$prefix/lib/libcrac.so.0
RESTORED" ] || { echo "install_check: the installed Python binding printed: $out" >&2; exit 1; }
	echo "install_check: the Python binding is installed in $pydir and loads $prefix/lib/libcrac.so.0"
fi
echo "install_check: pkg-config and CMake package builds work"
