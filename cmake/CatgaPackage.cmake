# catga_install_package()
# Installs the umbrella target catga::catga, the `catgaTargets` export set
# (filled by catga_install_library) and a package config, so that
#
#   find_package(catga CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE catga::catga)   # or catga::mediator, ...
#
# works against an installed copy. Call it at the end of the top-level
# CMakeLists.txt, after every library target exists.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

function(catga_install_package)
  set(config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/catga)

  install(TARGETS catga_all EXPORT catgaTargets)

  # The config asks for cnats only when the JetStream transport is part of
  # this installation; consumers without NATS need no libnats-dev.
  if(TARGET catga_nats)
    set(CATGA_PACKAGE_WITH_NATS ON)
  else()
    set(CATGA_PACKAGE_WITH_NATS OFF)
  endif()
  # The components installed, for find_package(catga COMPONENTS ...).
  set(CATGA_PACKAGE_COMPONENTS "")
  foreach(component IN ITEMS mediator pipeline transport nats outbox saga eventsourcing)
    if(TARGET catga_${component})
      list(APPEND CATGA_PACKAGE_COMPONENTS ${component})
    endif()
  endforeach()

  # The outbox and the event store's projections use SQLite.
  if(TARGET catga_outbox OR TARGET catga_eventsourcing)
    set(CATGA_PACKAGE_WITH_SQLITE ON)
  else()
    set(CATGA_PACKAGE_WITH_SQLITE OFF)
  endif()

  configure_package_config_file(
    ${PROJECT_SOURCE_DIR}/cmake/catgaConfig.cmake.in
    ${PROJECT_BINARY_DIR}/catgaConfig.cmake
    INSTALL_DESTINATION ${config_dir})
  write_basic_package_version_file(
    ${PROJECT_BINARY_DIR}/catgaConfigVersion.cmake
    VERSION ${PROJECT_VERSION}
    COMPATIBILITY SameMajorVersion)

  install(EXPORT catgaTargets
    NAMESPACE catga::
    FILE catgaTargets.cmake
    DESTINATION ${config_dir})
  install(FILES
    ${PROJECT_BINARY_DIR}/catgaConfig.cmake
    ${PROJECT_BINARY_DIR}/catgaConfigVersion.cmake
    DESTINATION ${config_dir})
endfunction()
