# cmake -DROOT=<source dir> -DWORK_DIR=<scratch dir> -P check_private_includes.cmake
#
# The walls between catga's libraries (docs/architecture.md): a library, the
# CLI, the sample and the examples include other libraries through their
# installed headers (<lib>/include) only, never through their private
# directories (<lib>/src). For every `#include "X"` in their sources this
# resolves X the way the compiler would (next to the file, then the owner's
# own src/, then the public include dirs); an include that resolves only in
# another library's src/, or whose resolved path lies in one, is a violation.
# No CMake file outside transport/ and tests/ may name a transport's src/
# folder, and no CMake file may read a global property to reach another
# library's files (the old CATGA_NATS_PRIVATE_INCLUDE / CATGA_NATS_SOURCES).
#
# First it checks itself on a scratch tree with one known violation (it must
# be found), then the real tree (nothing may be found).
cmake_minimum_required(VERSION 3.25)
foreach(var ROOT WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_private_includes.cmake: -D${var}=... is required")
  endif()
endforeach()

# Private directories, most specific first: <library>=<dir relative to root>.
set(private_dirs
  nats=transport/nats/src
  outbox=transport/outbox/src
  transport=transport/memory/src
  mediator=mediator/src
  pipeline=pipeline/src
  saga=saga/src
  eventsourcing=eventsourcing/src
  otel=otel/src
  cli=tools/catga)
# Who owns which files, most specific first (tests/ and bench/ may test
# private code and are not scanned).
set(owners
  nats=transport/nats
  outbox=transport/outbox
  transport=transport/memory
  mediator=mediator
  pipeline=pipeline
  saga=saga
  eventsourcing=eventsourcing
  otel=otel
  cli=tools
  sample=samples
  examples=examples)

# The library whose private dir holds `path` (absolute), or "".
function(private_owner root path out)
  set(found "")
  foreach(entry IN LISTS private_dirs)
    string(REPLACE "=" ";" kv "${entry}")
    list(GET kv 0 lib)
    list(GET kv 1 dir)
    set(private_dir "${root}/${dir}")
    cmake_path(IS_PREFIX private_dir "${path}" NORMALIZE inside)
    if(inside)
      set(found ${lib})
      break()
    endif()
  endforeach()
  set(${out} "${found}" PARENT_SCOPE)
endfunction()

# Appends "<file>: <message>" lines for every violation under `root` to `out`.
function(check_tree root out)
  set(violations "")
  set(public_dirs "")
  foreach(lib_dir IN ITEMS mediator pipeline transport saga eventsourcing otel)
    if(IS_DIRECTORY "${root}/${lib_dir}/include")
      list(APPEND public_dirs "${root}/${lib_dir}/include")
    endif()
  endforeach()
  set(scanned_owners "")
  foreach(entry IN LISTS owners)
    string(REPLACE "=" ";" kv "${entry}")
    list(GET kv 0 owner)
    list(GET kv 1 dir)
    if(NOT IS_DIRECTORY "${root}/${dir}")
      continue()
    endif()
    file(GLOB_RECURSE files "${root}/${dir}/*.hpp" "${root}/${dir}/*.cpp" "${root}/${dir}/*.h" "${root}/${dir}/*.cc")
    # The owner's own private dirs.
    set(own_private "")
    foreach(p IN LISTS private_dirs)
      string(REPLACE "=" ";" pkv "${p}")
      list(GET pkv 0 plib)
      list(GET pkv 1 pdir)
      if(plib STREQUAL owner)
        list(APPEND own_private "${root}/${pdir}")
      endif()
    endforeach()
    foreach(file IN LISTS files)
      # A more specific owner entry scanned it already.
      if(file IN_LIST scanned_owners)
        continue()
      endif()
      list(APPEND scanned_owners "${file}")
      file(RELATIVE_PATH rel_file "${root}" "${file}")
      if(rel_file MATCHES "(^|/)build/")  # a build tree inside a folder
        continue()
      endif()
      file(STRINGS "${file}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
      cmake_path(GET file PARENT_PATH here)
      foreach(line IN LISTS lines)
        string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\".*" "\\1" inc "${line}")
        set(resolved "")
        foreach(base IN ITEMS "${here}" ${own_private} ${public_dirs})
          if(EXISTS "${base}/${inc}" AND NOT IS_DIRECTORY "${base}/${inc}")
            cmake_path(SET resolved NORMALIZE "${base}/${inc}")
            break()
          endif()
        endforeach()
        if(resolved)
          private_owner("${root}" "${resolved}" lib)
          if(lib AND NOT lib STREQUAL owner)
            list(APPEND violations "${rel_file}: \"${inc}\" is private to ${lib}")
          endif()
          continue()
        endif()
        foreach(p IN LISTS private_dirs)
          string(REPLACE "=" ";" pkv "${p}")
          list(GET pkv 0 plib)
          list(GET pkv 1 pdir)
          if(NOT plib STREQUAL owner AND EXISTS "${root}/${pdir}/${inc}")
            list(APPEND violations "${rel_file}: \"${inc}\" resolves only in ${pdir} (private to ${plib})")
            break()
          endif()
        endforeach()
      endforeach()
    endforeach()
  endforeach()

  # CMake: nothing outside transport/ and tests/ names its private dirs, and
  # nobody publishes them through a global property.
  file(GLOB cmake_files "${root}/CMakeLists.txt" "${root}/cmake/*.cmake")
  foreach(dir IN ITEMS mediator pipeline transport saga eventsourcing otel tools samples examples)
    file(GLOB_RECURSE more "${root}/${dir}/CMakeLists.txt" "${root}/${dir}/*.cmake")
    list(APPEND cmake_files ${more})
  endforeach()
  foreach(file IN LISTS cmake_files)
    file(RELATIVE_PATH rel_file "${root}" "${file}")
    if(rel_file MATCHES "(^|/)build/")
      continue()
    endif()
    file(READ "${file}" text)
    if(text MATCHES "GLOBAL PROPERTY CATGA_")
      list(APPEND violations "${rel_file}: reads a global property to reach another library's files")
    endif()
    if(NOT rel_file MATCHES "^transport/" AND text MATCHES "transport/[a-z]+/src")
      list(APPEND violations "${rel_file}: names a transport's private src/ folder")
    endif()
  endforeach()
  set(${out} "${violations}" PARENT_SCOPE)
endfunction()

# 1. On a scratch tree with known violations: the check must see them.
set(fake "${WORK_DIR}/fake")
file(REMOVE_RECURSE "${fake}")
file(WRITE "${fake}/transport/nats/src/connection_impl.hpp" "#pragma once\n")
file(WRITE "${fake}/transport/nats/include/catga/nats/connection.hpp" "#pragma once\n")
file(WRITE "${fake}/eventsourcing/src/store.cpp"
  "#include \"catga/nats/connection.hpp\"\n#include \"connection_impl.hpp\"\n")
file(WRITE "${fake}/tools/catga/session.cpp" "#include \"../../transport/nats/src/connection_impl.hpp\"\n")
file(WRITE "${fake}/tools/CMakeLists.txt"
  "get_property(p GLOBAL PROPERTY CATGA_NATS_PRIVATE_INCLUDE)\n")
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
  message(FATAL_ERROR "includes through another library's private directory (docs/architecture.md):\n  ${shown}")
endif()
message(STATUS "no library includes another's private headers")
