# bench_transport: catga::nats against plain nats.c in the same process and
# run (see BENCHMARKS.md, "transport"). It starts its own nats-server with the
# test fixture's launcher, compiled in by path: tests/ is not part of a
# -DCATGA_BUILD_TESTS=OFF build, and the launcher needs only POSIX.
if(TARGET catga::nats)
  find_package(Threads REQUIRED)
  add_executable(bench_transport
    ${CMAKE_CURRENT_SOURCE_DIR}/transport.cpp
    ${PROJECT_SOURCE_DIR}/tests/support/nats_server.cpp
    ${PROJECT_SOURCE_DIR}/tests/support/child_process.cpp)
  target_include_directories(bench_transport PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
  target_link_libraries(bench_transport PRIVATE
    catga::nats catga_bench_util cnats::nats spdlog::spdlog Threads::Threads catga_warnings)
endif()
