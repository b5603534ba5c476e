# catga::transport: the in-memory transport (tests, single-process use).
find_package(Threads REQUIRED)

add_library(catga_transport
  src/in_memory_core.cpp
  src/in_memory_transport.cpp)
add_library(catga::transport ALIAS catga_transport)
set_target_properties(catga_transport PROPERTIES EXPORT_NAME transport OUTPUT_NAME catga_transport
  POSITION_INDEPENDENT_CODE ON)
# transport/include is shared with catga::nats; each target installs only its
# own header folder.
target_include_directories(catga_transport PUBLIC
  $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_features(catga_transport PUBLIC cxx_std_20)
target_link_libraries(catga_transport
  PUBLIC catga::mediator Threads::Threads
  PRIVATE $<BUILD_INTERFACE:catga_warnings>)

# catga_install_library() installs a whole include dir; ours is a subfolder.
if(CATGA_INSTALL)
  install(TARGETS catga_transport EXPORT catgaTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/catga/transport
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/catga)
endif()
