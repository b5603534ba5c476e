# bench_eventstore: the event store against plain js_Publish in the same run
# (see BENCHMARKS.md, "eventstore"). Starts its own nats-server with the test
# fixture's launcher, compiled in by path (as bench_transport does).
if(TARGET catga::eventsourcing)
  add_executable(bench_eventstore
    ${CMAKE_CURRENT_SOURCE_DIR}/eventstore.cpp
    ${PROJECT_SOURCE_DIR}/tests/support/nats_server.cpp
    ${PROJECT_SOURCE_DIR}/tests/support/child_process.cpp)
  target_include_directories(bench_eventstore PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
  target_link_libraries(bench_eventstore PRIVATE
    catga::eventsourcing catga_bench_util cnats::nats spdlog::spdlog Threads::Threads catga_warnings)
endif()
