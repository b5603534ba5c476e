# catga_install_library(<target> <include-dir>)
# Installs a library target and its public headers (the contents of
# <include-dir>, under ${CMAKE_INSTALL_INCLUDEDIR}) as one install component
# with an export file of its own, so an application can install and load
# only the libraries it uses (docs/packaging.md):
#
#   cmake --install build --component nats
#   find_package(catga REQUIRED COMPONENTS nats)   # loads catga-nats-targets.cmake
#
# The component is the target's EXPORT_NAME (catga::nats -> nats), except
# catga::mediator, which is the component `core`. cmake/catgaConfig.cmake.in
# knows what each component needs.
include(GNUInstallDirs)

# catga_install_component_of(<target> <out-var>): the install component of a
# catga library target.
function(catga_install_component_of target out_var)
  get_target_property(name ${target} EXPORT_NAME)
  if(NOT name)
    set(name ${target})
  endif()
  if(name STREQUAL "mediator")
    set(name core)
  endif()
  set(${out_var} ${name} PARENT_SCOPE)
endfunction()

function(catga_install_library target include_dir)
  if(NOT CATGA_INSTALL)
    return()
  endif()
  catga_install_component_of(${target} component)
  install(TARGETS ${target} EXPORT catga-${component}-targets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT ${component}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT ${component}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT ${component}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(DIRECTORY ${include_dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT ${component})
  install(EXPORT catga-${component}-targets
    NAMESPACE catga::
    FILE catga-${component}-targets.cmake
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/catga
    COMPONENT ${component})
endfunction()
