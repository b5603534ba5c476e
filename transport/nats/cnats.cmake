# Provides the imported target cnats::nats (nats.c).
#
# Debian 12's libnats-dev (3.4.1) installs a cnats CMake config that names
# files the package does not ship (libnats_static.a, libprotobuf-c.so), so a
# plain find_package(cnats CONFIG) stops with a fatal error there. We look for
# the header and the shared library first and make the target ourselves
# (libnats.so records its own dependencies: OpenSSL, protobuf-c); only when
# they are not found do we ask for the package config (a full upstream
# install). Used by the build (transport/nats/CMakeLists.txt) and installed next to
# catgaConfig.cmake for consumers of an installed catga::nats.
if(NOT TARGET cnats::nats)
  find_path(CATGA_CNATS_INCLUDE_DIR nats/nats.h)
  find_library(CATGA_CNATS_LIBRARY NAMES nats)
  if(CATGA_CNATS_INCLUDE_DIR AND CATGA_CNATS_LIBRARY)
    add_library(cnats::nats UNKNOWN IMPORTED GLOBAL)
    set_target_properties(cnats::nats PROPERTIES
      IMPORTED_LOCATION "${CATGA_CNATS_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${CATGA_CNATS_INCLUDE_DIR}")
    set(cnats_FOUND TRUE)
  else()
    find_package(cnats CONFIG REQUIRED)
  endif()
endif()
