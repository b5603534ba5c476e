# cmake -P check_compile_fail.cmake
#   -DCXX=<compiler> -DSOURCE=<file> -DINCLUDES=<dir|dir|...>
#   -DGOOD=<define> -DCASES=<define|define|...> -DEXPECT=<regex>
# Passes when SOURCE compiles with -DGOOD and fails, printing EXPECT, with
# each of CASES. Only the front end runs (-fsyntax-only): no objects, fast.
cmake_minimum_required(VERSION 3.25)
foreach(var CXX SOURCE INCLUDES GOOD CASES EXPECT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_compile_fail.cmake: -D${var}=... is required")
  endif()
endforeach()

string(REPLACE "|" ";" includes "${INCLUDES}")
string(REPLACE "|" ";" cases "${CASES}")
set(include_flags "")
foreach(dir IN LISTS includes)
  if(dir)
    list(APPEND include_flags "-I${dir}")
  endif()
endforeach()

function(compile define out_rc out_text)
  execute_process(
    COMMAND ${CXX} -std=c++20 -fsyntax-only ${include_flags} -D${define} ${SOURCE}
    RESULT_VARIABLE rc
    OUTPUT_VARIABLE text
    ERROR_VARIABLE text)
  set(${out_rc} ${rc} PARENT_SCOPE)
  set(${out_text} "${text}" PARENT_SCOPE)
endfunction()

compile(${GOOD} rc text)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "control case ${GOOD} does not compile, so the check proves nothing:\n${text}")
endif()
message(STATUS "${GOOD}: compiles")

foreach(case IN LISTS cases)
  compile(${case} rc text)
  if(rc EQUAL 0)
    message(FATAL_ERROR "${case} compiled, but a wrong handler signature must be rejected")
  endif()
  if(NOT text MATCHES "${EXPECT}")
    message(FATAL_ERROR "${case} failed to compile without the message '${EXPECT}':\n${text}")
  endif()
  message(STATUS "${case}: rejected with '${EXPECT}'")
endforeach()
