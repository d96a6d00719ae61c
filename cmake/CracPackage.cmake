# SPDX-License-Identifier: MIT
# CracPackage.cmake - `cpack -G DEB` in the build directory makes a Debian
# package of everything `cmake --install` installs: the crac command and its
# loader, libcrac (shared and static), crac.h, pkg-config and CMake files,
# the man pages, the Python binding and the bash completion.
#
# The package installs under CMAKE_INSTALL_PREFIX (the paths compiled into
# crac match it); for a distribution-style package configure with
# -DCMAKE_INSTALL_PREFIX=/usr. Its dependencies come from dpkg-shlibdeps
# (libc6, libsystemd0 when linked) when dpkg-dev is installed; it declares
# libcrac.so.0 in its shlibs and activates dpkg's ldconfig trigger, so a
# program linked with -lcrac runs right after `dpkg -i` (or apt install).
set(CPACK_PACKAGE_NAME crac)
set(CPACK_PACKAGE_VENDOR "The crac authors")
set(CPACK_PACKAGE_CONTACT "The crac authors <maintainers@users.noreply.github.com>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Coordinated Restore at Checkpoint for native Linux programs")
set(CPACK_PACKAGE_DESCRIPTION "crac checkpoints a running program to an image and restores it, \
with callbacks (C library libcrac, Python binding) that close and reopen what cannot be kept. \
The crac command runs unmodified programs with checkpoint support, checkpoints them and restores \
their images.")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_LICENSE ${CMAKE_SOURCE_DIR}/LICENSE)
set(CPACK_RESOURCE_FILE_README ${CMAKE_SOURCE_DIR}/README.md)
set(CPACK_GENERATOR DEB)
# install scripts (the Python binding's directory, ldconfig) see the real
# prefix; DESTDIR tells them it is staging
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "python3, bash-completion")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
# dpkg's ldconfig trigger (libc-bin) runs ldconfig after install and
# removal, wherever libcrac goes (CPack itself adds a postinst only for
# /lib and /usr/lib)
file(WRITE ${CMAKE_BINARY_DIR}/deb/triggers "activate-noawait ldconfig\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/deb/triggers)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
find_program(CRAC_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(CRAC_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6 (>= 2.34)")
endif()
include(CPack)
