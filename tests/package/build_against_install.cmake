# cmake -P build_against_install.cmake -DBUILD_DIR=<catga build> -DPROJECT_DIR=<project source>
#   -DWORK_DIR=<scratch dir> [-DCONFIG=<build type>] [-DCXX=<compiler>] [-DGENERATOR=<generator>]
#   [-DCOMPONENTS=<a,b,...>] [-DRUN=<exe,exe,...>] [-DRUN_ARGS=<arg,arg,...>] [-DRUN_CTEST=ON]
#   [-DVERSION=<x.y.z>] [-DPKG_CONFIG_SOURCE=<main.cpp>]
#   [-DINSTALL_COMPONENTS=<a,b,...>] [-DABSENT=<regex,regex,...>] [-DCONFIGURE_ARGS=<arg,arg,...>]
# Installs the catga build into WORK_DIR/prefix, then configures and builds
# PROJECT_DIR against it with find_package(catga), exactly as an application
# would, and runs the executables named in RUN (each with RUN_ARGS) and/or the
# project's CTest tests.
# With VERSION, also checks what the package carries besides the libraries
# (catga/version.hpp, LICENSE, CHANGELOG.md, catga.pc of that version). With
# PKG_CONFIG_SOURCE, also compiles and runs that file with nothing but
# `pkg-config --cflags --libs catga`, as a build without CMake would.
# With INSTALL_COMPONENTS, installs only those install components (one
# `cmake --install --component` each) instead of everything; ABSENT lists
# regular expressions that no installed path (relative to the prefix) may match.
# CONFIGURE_ARGS are added to the project's configure command.
cmake_minimum_required(VERSION 3.25)
foreach(var BUILD_DIR PROJECT_DIR WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "build_against_install.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT CONFIG)
  set(CONFIG Release)
endif()
string(REPLACE "," ";" components "${COMPONENTS}")
list(REMOVE_ITEM components "")
string(REPLACE ";" "\\;" components_arg "${components}")
string(REPLACE "," ";" executables "${RUN}")
list(REMOVE_ITEM executables "")
string(REPLACE "," ";" run_args "${RUN_ARGS}")
string(REPLACE "," ";" install_components "${INSTALL_COMPONENTS}")
string(REPLACE "," ";" absent "${ABSENT}")
string(REPLACE "," ";" configure_args "${CONFIGURE_ARGS}")

function(run step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${step} failed (${rc}):\n${out}")
  endif()
  message(STATUS "${step}: ok")
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

# A fresh scratch dir: nothing from an earlier run may satisfy find_package.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
set(build "${WORK_DIR}/build")

if(install_components)
  foreach(component IN LISTS install_components)
    run("install --component ${component}"
      ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}" --config "${CONFIG}" --component ${component})
  endforeach()
else()
  run("install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}" --config "${CONFIG}")
endif()
if(NOT EXISTS "${prefix}/include/catga/mediator.hpp")
  message(FATAL_ERROR "install did not put the headers under ${prefix}/include")
endif()
file(GLOB_RECURSE config_files "${prefix}/*/catgaConfig.cmake")
if(NOT config_files)
  message(FATAL_ERROR "install did not write catgaConfig.cmake under ${prefix}")
endif()

if(absent)
  file(GLOB_RECURSE installed LIST_DIRECTORIES true RELATIVE "${prefix}" "${prefix}/*")
  foreach(pattern IN LISTS absent)
    foreach(path IN LISTS installed)
      if(path MATCHES "${pattern}")
        message(FATAL_ERROR "the install of ${INSTALL_COMPONENTS} has ${path} (matches '${pattern}'), which it must not have")
      endif()
    endforeach()
  endforeach()
endif()

if(VERSION)
  foreach(file include/catga/version.hpp share/doc/catga/LICENSE share/doc/catga/CHANGELOG.md)
    if(NOT EXISTS "${prefix}/${file}")
      message(FATAL_ERROR "install did not put ${file} under ${prefix}")
    endif()
  endforeach()
  file(READ "${prefix}/include/catga/version.hpp" version_header)
  if(NOT version_header MATCHES "#define CATGA_VERSION_STRING \"${VERSION}\"")
    message(FATAL_ERROR "the installed catga/version.hpp does not say ${VERSION}")
  endif()
  file(READ "${prefix}/share/doc/catga/LICENSE" license)
  if(NOT license MATCHES "Apache License")
    message(FATAL_ERROR "the installed LICENSE is not the Apache License")
  endif()
  file(GLOB_RECURSE pc_files "${prefix}/*/pkgconfig/catga.pc")
  if(NOT pc_files)
    message(FATAL_ERROR "install did not write pkgconfig/catga.pc under ${prefix}")
  endif()
  list(GET pc_files 0 pc_file)
  get_filename_component(pc_dir "${pc_file}" DIRECTORY)
  find_program(PKG_CONFIG_EXECUTABLE NAMES pkg-config pkgconf REQUIRED)
  # Only this prefix may answer for catga; the system's .pc files still
  # answer for its dependencies (libnats, spdlog, ...).
  set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
  run("pkg-config --modversion catga" ${PKG_CONFIG_EXECUTABLE} --modversion catga)
  string(STRIP "${last_output}" pc_version)
  if(NOT pc_version STREQUAL VERSION)
    message(FATAL_ERROR "catga.pc says version ${pc_version}, the project ${VERSION}")
  endif()
  if(PKG_CONFIG_SOURCE)
    run("pkg-config --cflags --libs catga" ${PKG_CONFIG_EXECUTABLE} --cflags --libs catga)
    string(STRIP "${last_output}" pc_flags)
    message(STATUS "pkg-config --cflags --libs catga: ${pc_flags}")
    separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
    set(defines "-DCATGA_EXPECT_VERSION=\"${VERSION}\"")
    foreach(component IN LISTS components)
      string(TOUPPER "${component}" upper)
      list(APPEND defines -DCATGA_HAS_${upper})
    endforeach()
    if(NOT CXX)
      set(CXX c++)
    endif()
    file(MAKE_DIRECTORY "${WORK_DIR}/pkg-config")
    set(exe "${WORK_DIR}/pkg-config/consumer_pkg_config")
    run("compile with pkg-config" ${CXX} -std=c++20 ${defines} "${PKG_CONFIG_SOURCE}" -o "${exe}" ${pc_flags})
    run("run consumer_pkg_config" "${exe}")
    message("${last_output}")
  endif()
endif()

set(generator_args "")
if(GENERATOR)
  set(generator_args -G "${GENERATOR}")
endif()
set(compiler_args "")
if(CXX)
  set(compiler_args "-DCMAKE_CXX_COMPILER=${CXX}")
endif()
# The package registry could find another copy; only the prefix may count.
run("configure ${PROJECT_DIR}" ${CMAKE_COMMAND} -S "${PROJECT_DIR}" -B "${build}" ${generator_args} ${compiler_args}
  "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_BUILD_TYPE=${CONFIG}" "-DCATGA_EXPECT_COMPONENTS=${components_arg}"
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF ${configure_args})
run("build" ${CMAKE_COMMAND} --build "${build}" --config "${CONFIG}")

foreach(exe IN LISTS executables)
  set(path "${build}/${exe}")
  if(NOT EXISTS "${path}")
    set(path "${build}/${CONFIG}/${exe}")
  endif()
  run("run ${exe} ${run_args}" "${path}" ${run_args})
  message("${last_output}")
endforeach()
if(RUN_CTEST)
  run("ctest" ${CMAKE_CTEST_COMMAND} --test-dir "${build}" --output-on-failure -C "${CONFIG}")
  message("${last_output}")
endif()
