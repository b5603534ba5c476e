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

run_bench(dispatch "${DISPATCH}" dispatch)
foreach(field send_allocs send_3behaviors_allocs publish_3handlers_allocs)
  string(JSON value ERROR_VARIABLE err GET "${dispatch}" ${field})
  if(err OR NOT value MATCHES "^0(\\.0+)?$")
    message(FATAL_ERROR "bench_dispatch: ${field} is '${value}' ${err}, expected 0:\n${dispatch}")
  endif()
endforeach()

run_bench(codec "${CODEC}" codec)
foreach(field read_event_ratio read_order_ratio write_order_ratio)
  string(JSON value ERROR_VARIABLE err GET "${codec}" ${field})
  if(err OR NOT value MATCHES "^[0-9]")
    message(FATAL_ERROR "bench_codec: no number '${field}' ${err}:\n${codec}")
  endif()
endforeach()
message(STATUS "bench_smoke: ${dispatch}")
message(STATUS "bench_smoke: ${codec}")
