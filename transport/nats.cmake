# catga::nats: the JetStream transport over nats.c (libnats-dev, cnats).
#
#   find_package(catga CONFIG REQUIRED COMPONENTS nats)
#   target_link_libraries(app PRIVATE catga::nats)
#
# Public API (installed, documented in each header):
#   include/catga/nats/*.hpp         catga types only: connection, options,
#                                    start-up, transport, KV, ack subjects,
#                                    streams and consumers, dead letters
#   include/catga/nats/native/*.hpp  the nats.c level for code that calls
#                                    nats.c itself (event store): handles,
#                                    status -> Error, headers, the
#                                    connection's natsConnection/jsCtx; they
#                                    include nats.h, so link cnats::nats too
# src/nats/ is private to this library: nothing outside transport/ includes
# it (tests/check_private_includes.cmake fails the suite if something does).
# cnats is linked PRIVATE; consumers of an installed copy get cnats::nats
# from the installed catgaCnats.cmake (the package config includes it).
include(${CMAKE_CURRENT_LIST_DIR}/cnats.cmake)  # cnats::nats (see there why not find_package)
find_package(Threads REQUIRED)

set(CATGA_NATS_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/ack_reply.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/async_publisher.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/connection.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/dead_letters.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/error.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/header_block.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/jetstream_transport.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/key_value.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/kv_idempotency_store.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/message.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/native/connection.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/native/message.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/options.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/ordered_group.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/provisioning.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/pull_consumer.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/responder.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/startup.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/nats/streams.cpp)

add_library(catga_nats ${CATGA_NATS_SOURCES})
add_library(catga::nats ALIAS catga_nats)
set_target_properties(catga_nats PROPERTIES EXPORT_NAME nats OUTPUT_NAME catga_nats
  POSITION_INDEPENDENT_CODE ON)
target_include_directories(catga_nats
  PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
  PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
target_compile_features(catga_nats PUBLIC cxx_std_20)
target_link_libraries(catga_nats
  PUBLIC catga::mediator catga::pipeline Threads::Threads
  PRIVATE cnats::nats spdlog::spdlog $<BUILD_INTERFACE:catga_warnings>)

# The tests build these sources a second time with AddressSanitizer (the
# pull/fetch path must be proven clean); they read the list from here.
set_property(GLOBAL PROPERTY CATGA_NATS_SOURCES ${CATGA_NATS_SOURCES})

# The package config asks for cnats when this is ON.
set(CATGA_HAS_NATS ON CACHE INTERNAL "catga::nats is built")

# catga_install_library() installs a whole include dir; ours is a subfolder
# (transport/include is shared with catga::transport).
if(CATGA_INSTALL)
  install(TARGETS catga_nats EXPORT catgaTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/catga/nats
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/catga)
  install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/cnats.cmake RENAME catgaCnats.cmake
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/catga)
endif()
