# catga_install_library(<target> <include-dir>)
# Installs a library target into the `catgaTargets` export set and its public
# headers (the contents of <include-dir>) under ${CMAKE_INSTALL_INCLUDEDIR}.
include(GNUInstallDirs)
function(catga_install_library target include_dir)
  if(NOT CATGA_INSTALL)
    return()
  endif()
  install(TARGETS ${target} EXPORT catgaTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(DIRECTORY ${include_dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()
