# cmake -DROOT=<source dir> -DWORK_DIR=<scratch dir> -P check_public_headers.cmake
#
# What an installed header may include (issue 23): no SIMD intrinsics header
# (<emmintrin.h>, <immintrin.h>, <x86intrin.h>, any <*intrin.h>,
# <arm_neon.h>) and no header of the codec, which is private to
# catga::mediator (mediator/src/codec/). Every library's public headers are
# scanned: the */include/ and */*/include/ folders of the source tree.
#
# First it checks itself on a scratch tree with known violations (they must be
# found), then the real tree (nothing may be found).
cmake_minimum_required(VERSION 3.25)
foreach(var ROOT WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_public_headers.cmake: -D${var}=... is required")
  endif()
endforeach()

# Appends "<file>: <message>" lines for every violation under `root` to `out`.
function(check_tree root out)
  set(violations "")
  # The codec's headers, by file name (an installed header cannot reach them
  # by any path, so the name is what counts).
  file(GLOB codec_headers RELATIVE "${root}/mediator/src/codec" "${root}/mediator/src/codec/*.hpp")
  # Before the codec had its folder, these were installed headers.
  list(APPEND codec_headers ascii_digits.hpp json_cursor.hpp)
  list(REMOVE_DUPLICATES codec_headers)
  file(GLOB include_dirs LIST_DIRECTORIES true "${root}/*/include" "${root}/*/*/include")
  foreach(dir IN LISTS include_dirs)
    file(RELATIVE_PATH rel_dir "${root}" "${dir}")
    if(NOT IS_DIRECTORY "${dir}" OR rel_dir MATCHES "^(build|tests|bench|third_party)/|/build/")
      continue()
    endif()
    file(GLOB_RECURSE headers "${dir}/*.hpp" "${dir}/*.h")
    foreach(header IN LISTS headers)
      file(RELATIVE_PATH rel "${root}" "${header}")
      file(STRINGS "${header}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]")
      foreach(line IN LISTS lines)
        string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[<\"]([^>\"]+)[>\"].*" "\\1" inc "${line}")
        cmake_path(GET inc FILENAME name)
        if(name MATCHES "^[a-z0-9_]*intrin\\.h$" OR name STREQUAL "arm_neon.h")
          list(APPEND violations "${rel}: includes <${inc}> (SIMD intrinsics belong in a library's src/)")
        elseif(name IN_LIST codec_headers)
          list(APPEND violations "${rel}: includes \"${inc}\" (the codec is private: mediator/src/codec/)")
        endif()
      endforeach()
    endforeach()
  endforeach()
  set(${out} "${violations}" PARENT_SCOPE)
endfunction()

# 1. A scratch tree with three known violations and one clean header.
set(fake "${WORK_DIR}/fake")
file(REMOVE_RECURSE "${fake}")
file(WRITE "${fake}/mediator/src/codec/json_cursor.hpp" "#pragma once\n")
file(WRITE "${fake}/mediator/include/catga/ids.hpp" "#pragma once\n#if defined(__SSE2__)\n#include <emmintrin.h>\n#endif\n")
file(WRITE "${fake}/mediator/include/catga/fields.hpp" "#pragma once\n#include \"catga/json_cursor.hpp\"\n")
file(WRITE "${fake}/transport/nats/include/catga/nats/scan.hpp" "#pragma once\n#  include <immintrin.h>\n")
file(WRITE "${fake}/pipeline/include/catga/pipeline/clean.hpp" "#pragma once\n#include <cstdint>\n")
file(WRITE "${fake}/mediator/src/codec/fast.cpp" "#include <x86intrin.h>\n")  # src/ may
check_tree("${fake}" fake_violations)
list(LENGTH fake_violations fake_count)
if(NOT fake_count EQUAL 3)
  string(REPLACE ";" "\n  " shown "${fake_violations}")
  message(FATAL_ERROR "self-check: expected 3 violations in the scratch tree, found ${fake_count}:\n  ${shown}")
endif()
file(REMOVE_RECURSE "${fake}")

# 2. The real tree.
check_tree("${ROOT}" violations)
if(violations)
  string(REPLACE ";" "\n  " shown "${violations}")
  message(FATAL_ERROR "installed headers that include intrinsics or the private codec (issue 23):\n  ${shown}")
endif()
message(STATUS "no installed header includes intrinsics or the private codec")
