# SPDX-License-Identifier: MIT
# CracFlags.cmake - compiler flags that differ between gcc and clang.
#
# CRAC_NO_LIBCALL_LOOPS: for code that runs without libc (the loader, the
# lazy loader thread): the compiler must not turn a loop into a call to
# memset/memcpy. gcc: -fno-tree-loop-distribute-patterns; compilers without
# it (clang): -fno-builtin, which keeps clang's loop-idiom pass from
# emitting library calls.
#
# crac_portable_flags(TARGET...): drops from each target's COMPILE_OPTIONS the
# flags this compiler rejects (a gcc-only flag under clang), putting
# ${CRAC_NO_LIBCALL_LOOPS} in place of -fno-tree-loop-distribute-patterns,
# and says which it dropped. Flags are tested with check_c_compiler_flag
# (-Werror: clang only warns about some unknown -f flags).
include(CheckCCompilerFlag)

check_c_compiler_flag(-fno-tree-loop-distribute-patterns CRAC_CC_NO_TREE_LOOP_DISTRIBUTE)
if(CRAC_CC_NO_TREE_LOOP_DISTRIBUTE)
  set(CRAC_NO_LIBCALL_LOOPS -fno-tree-loop-distribute-patterns)
else()
  set(CRAC_NO_LIBCALL_LOOPS -fno-builtin)
endif()

function(crac_portable_flags)
  foreach(t IN LISTS ARGN)
    get_target_property(opts ${t} COMPILE_OPTIONS)
    if(NOT opts)
      continue()
    endif()
    set(out "")
    foreach(o IN LISTS opts)
      if(o STREQUAL "-fno-tree-loop-distribute-patterns")
        list(APPEND out ${CRAC_NO_LIBCALL_LOOPS})
        continue()
      endif()
      if(NOT o MATCHES "^-[fm]")
        list(APPEND out "${o}")
        continue()
      endif()
      string(MAKE_C_IDENTIFIER "CRAC_CC_FLAG${o}" var)
      set(CMAKE_REQUIRED_FLAGS -Werror)
      check_c_compiler_flag("${o}" ${var})
      unset(CMAKE_REQUIRED_FLAGS)
      if(${var})
        list(APPEND out "${o}")
      else()
        message(STATUS "crac: ${CMAKE_C_COMPILER_ID} does not take ${o}: left out for ${t}")
      endif()
    endforeach()
    set_property(TARGET ${t} PROPERTY COMPILE_OPTIONS "${out}")
  endforeach()
endfunction()
