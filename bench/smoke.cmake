# bench_smoke (with the tests): runs the benchmarks that need no server once
# and checks what they print: one JSON line each, and dispatch's hot paths
# (send, send through 3 behaviors, publish to 3 handlers) allocating nothing.
# Speed is not checked here (BENCHMARKS.md is where it is recorded).
#   cmake -DDISPATCH=<bench_dispatch> -DCODEC=<bench_codec> -P smoke.cmake
function(run_bench name exe out_var)
  execute_process(COMMAND ${exe} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "bench_${name} exited with ${rc}:\n${out}")
  endif()
  string(REGEX MATCH "{\"bench\":\"${name}\"[^\n]*}" line "${out}")
  if(line STREQUAL "")
    message(FATAL_ERROR "bench_${name} printed no JSON line of its own:\n${out}")
  endif()
  set(${out_var} "${line}" PARENT_SCOPE)
endfunction()

# Fails unless each field of `json` (bench_<name>'s line) matches `pattern`.
function(check_fields name json pattern what)
  foreach(field IN LISTS ARGN)
    string(JSON value ERROR_VARIABLE err GET "${json}" ${field})
    if(err OR NOT value MATCHES "${pattern}")
      message(FATAL_ERROR "bench_${name}: ${field} is '${value}', expected ${what}:\n${json}")
    endif()
  endforeach()
endfunction()

run_bench(dispatch "${DISPATCH}" dispatch)
check_fields(dispatch "${dispatch}" "^0(\\.0+)?$" "0" send_allocs send_3behaviors_allocs publish_3handlers_allocs)
run_bench(codec "${CODEC}" codec)
check_fields(codec "${codec}" "^[0-9]" "a number" read_event_ratio read_order_ratio write_order_ratio)
message(STATUS "bench_smoke: ${dispatch}")
message(STATUS "bench_smoke: ${codec}")
