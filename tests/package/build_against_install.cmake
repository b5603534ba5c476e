# cmake -P build_against_install.cmake -DBUILD_DIR=<catga build> -DPROJECT_DIR=<project source>
#   -DWORK_DIR=<scratch dir> [-DCONFIG=<build type>] [-DCXX=<compiler>] [-DGENERATOR=<generator>]
#   [-DCOMPONENTS=<a,b,...>] [-DRUN=<exe,exe,...>] [-DRUN_CTEST=ON]
# Installs the catga build into WORK_DIR/prefix, then configures and builds
# PROJECT_DIR against it with find_package(catga), exactly as an application
# would, and runs the executables named in RUN and/or the project's CTest tests.
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

run("install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}" --config "${CONFIG}")
if(NOT EXISTS "${prefix}/include/catga/mediator.hpp")
  message(FATAL_ERROR "install did not put the headers under ${prefix}/include")
endif()
file(GLOB_RECURSE config_files "${prefix}/*/catgaConfig.cmake")
if(NOT config_files)
  message(FATAL_ERROR "install did not write catgaConfig.cmake under ${prefix}")
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
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
run("build" ${CMAKE_COMMAND} --build "${build}" --config "${CONFIG}")

foreach(exe IN LISTS executables)
  set(path "${build}/${exe}")
  if(NOT EXISTS "${path}")
    set(path "${build}/${CONFIG}/${exe}")
  endif()
  run("run ${exe}" "${path}")
  message("${last_output}")
endforeach()
if(RUN_CTEST)
  run("ctest" ${CMAKE_CTEST_COMMAND} --test-dir "${build}" --output-on-failure -C "${CONFIG}")
  message("${last_output}")
endif()
