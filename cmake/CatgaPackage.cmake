# catga_install_package()
# Installs the package config (with the component `core`, which every other
# component needs), so that
#
#   find_package(catga CONFIG REQUIRED [COMPONENTS nats ...])
#   target_link_libraries(app PRIVATE catga::nats)   # or catga::catga, ...
#
# works against an installed copy. Each library's targets are in their own
# export file, installed with its component (cmake/CatgaInstall.cmake); the
# config loads the requested ones (cmake/catgaConfig.cmake.in). catga::catga
# is made by the config from the libraries it loaded. Call this at the end of
# the top-level CMakeLists.txt, after every library target exists.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

function(catga_install_package)
  set(config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/catga)

  configure_package_config_file(
    ${PROJECT_SOURCE_DIR}/cmake/catgaConfig.cmake.in
    ${PROJECT_BINARY_DIR}/catgaConfig.cmake
    INSTALL_DESTINATION ${config_dir})
  write_basic_package_version_file(
    ${PROJECT_BINARY_DIR}/catgaConfigVersion.cmake
    VERSION ${PROJECT_VERSION}
    COMPATIBILITY SameMajorVersion)

  catga_install_pkg_config()
  # The licence and the changelog travel with the package (share/doc/catga).
  install(FILES ${PROJECT_SOURCE_DIR}/LICENSE ${PROJECT_SOURCE_DIR}/CHANGELOG.md
    DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT core)

  install(FILES
    ${PROJECT_BINARY_DIR}/catgaConfig.cmake
    ${PROJECT_BINARY_DIR}/catgaConfigVersion.cmake
    DESTINATION ${config_dir} COMPONENT core)
endfunction()

# catga.pc beside the CMake package (${CMAKE_INSTALL_LIBDIR}/pkgconfig), for
# builds that do not use CMake:
#   g++ -std=c++20 app.cpp $(pkg-config --cflags --libs catga)
# One module with every library built, so it is installed only by a full
# install (component `pkgconfig`; `cmake --install build` installs every
# component). With static libraries (the
# default) their dependencies are public Requires, so a plain `--libs`
# links; with shared ones they are Requires.private.
function(catga_install_pkg_config)
  set(libs "")
  set(components "")
  # Dependents before their dependencies, as a static link needs them.
  foreach(component IN ITEMS eventsourcing outbox saga otel nats transport pipeline mediator)
    if(TARGET catga_${component})
      get_target_property(name catga_${component} OUTPUT_NAME)
      string(APPEND libs " -l${name}")
      list(PREPEND components ${component})
    endif()
  endforeach()
  list(JOIN components " " CATGA_PC_COMPONENTS)
  string(STRIP "${libs}" CATGA_PC_LIBS)

  set(requires nlohmann_json spdlog)
  set(link_requires "")
  if(TARGET catga_nats)
    list(APPEND link_requires libnats)
  endif()
  if(TARGET catga_outbox OR TARGET catga_eventsourcing)
    list(APPEND link_requires sqlite3)
  endif()
  if(TARGET catga_otel)
    list(APPEND link_requires cpp-httplib)
  endif()
  if(BUILD_SHARED_LIBS)
    set(CATGA_PC_LIBS_PRIVATE "-pthread")
    list(JOIN link_requires ", " CATGA_PC_REQUIRES_PRIVATE)
  else()
    string(APPEND CATGA_PC_LIBS " -pthread")
    set(CATGA_PC_LIBS_PRIVATE "")
    list(APPEND requires ${link_requires})
    set(CATGA_PC_REQUIRES_PRIVATE "")
  endif()
  list(JOIN requires ", " CATGA_PC_REQUIRES)

  set(pc_dir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
  file(RELATIVE_PATH CATGA_PC_PREFIX_FROM_PCDIR /root/${pc_dir} /root)
  string(REGEX REPLACE "/$" "" CATGA_PC_PREFIX_FROM_PCDIR "${CATGA_PC_PREFIX_FROM_PCDIR}")
  configure_file(${PROJECT_SOURCE_DIR}/cmake/catga.pc.in ${PROJECT_BINARY_DIR}/catga.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/catga.pc DESTINATION ${pc_dir} COMPONENT pkgconfig)
endfunction()
