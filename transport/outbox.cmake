# catga::outbox: the durable local outbox (SQLite, WAL, synchronous=FULL) and
# the OutboxTransport decorator that relays it through catga::nats.
#
#   target_link_libraries(app PRIVATE catga::outbox)
find_package(SQLite3 REQUIRED)

add_library(catga_outbox
  ${CMAKE_CURRENT_SOURCE_DIR}/src/outbox/outbox_store.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/outbox/outbox_transport.cpp)
add_library(catga::outbox ALIAS catga_outbox)
set_target_properties(catga_outbox PROPERTIES EXPORT_NAME outbox OUTPUT_NAME catga_outbox
  POSITION_INDEPENDENT_CODE ON)
target_include_directories(catga_outbox PUBLIC
  $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_features(catga_outbox PUBLIC cxx_std_20)
# SQLite is PUBLIC: applications run their own statements on OutboxTransaction::db().
target_link_libraries(catga_outbox
  PUBLIC catga::mediator catga::nats SQLite::SQLite3
  PRIVATE spdlog::spdlog $<BUILD_INTERFACE:catga_warnings>)
if(CATGA_INSTALL)
  install(TARGETS catga_outbox EXPORT catgaTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/catga/outbox DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/catga)
endif()
