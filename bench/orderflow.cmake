# bench_orderflow: the order-flow sample end to end (see BENCHMARKS.md,
# "orderflow"). Needs the sample (CATGA_BUILD_EXAMPLES, as scripts/bench
# configures) and catga::nats; it starts its own nats-server or 3-node
# cluster with the test fixtures' launchers, compiled in by path.
if(TARGET catga::nats AND TARGET order_flow_lib)
  find_package(Threads REQUIRED)
  add_executable(bench_orderflow
    ${CMAKE_CURRENT_SOURCE_DIR}/orderflow.cpp
    ${PROJECT_SOURCE_DIR}/tests/support/nats_server.cpp
    ${PROJECT_SOURCE_DIR}/tests/support/nats_cluster.cpp
    ${PROJECT_SOURCE_DIR}/tests/support/child_process.cpp)
  target_include_directories(bench_orderflow PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
  target_link_libraries(bench_orderflow PRIVATE
    order_flow_lib cnats::nats spdlog::spdlog Threads::Threads catga_warnings)
endif()
