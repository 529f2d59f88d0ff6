# SPDX-License-Identifier: Apache-2.0
# Every third-party dependency, found once. All come from Debian packages (hack/install-deps.sh).
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBBPF REQUIRED IMPORTED_TARGET libbpf)
pkg_check_modules(LIBNL REQUIRED IMPORTED_TARGET libnl-3.0 libnl-route-3.0)
find_package(nlohmann_json 3 REQUIRED)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
find_package(Threads REQUIRED)
find_package(CURL REQUIRED)
find_package(OpenSSL REQUIRED)
if(SLUICE_TESTS)
  find_package(GTest REQUIRED)
endif()

# SLUICE_STATIC_PLUGIN: the plugin as a static executable. The container runtime execs it on
# the node itself, where none of our libraries are installed (the image only carries it to the
# node: Dockerfile), and a static binary also starts without the dynamic loader's work on every
# ADD/DEL. Everything then links libbpf, libelf, zlib and libnl from their static archives and
# compiles spdlog/fmt once into libsluice (cni/lib/static/logging_impl.cpp: Debian ships no .a
# of those). Sanitizer and fuzzing builds cannot link statically and turn it off.
option(SLUICE_STATIC_PLUGIN "Link the sluice plugin as a static executable" ON)
if(SLUICE_STATIC_PLUGIN AND (SLUICE_SANITIZE AND NOT SLUICE_SANITIZE MATCHES "^(OFF|Off|off|FALSE|False|false|NO|no|0)$" OR SLUICE_FUZZ))
  message(STATUS "SLUICE_STATIC_PLUGIN off: sanitizer/fuzzing builds link dynamically")
  set(SLUICE_STATIC_PLUGIN OFF)
endif()

# sluice_system_libs: libbpf and libnl; sluice_logging: spdlog and fmt. Shared, or as above.
add_library(sluice_system_libs INTERFACE)
add_library(sluice_logging INTERFACE)
if(SLUICE_STATIC_PLUGIN)
  set(_sl_archives)
  foreach(lib nl-route-3 nl-3 bpf elf z)
    find_library(SLUICE_STATIC_${lib} NAMES lib${lib}.a REQUIRED)
    list(APPEND _sl_archives ${SLUICE_STATIC_${lib}})
  endforeach()
  target_include_directories(sluice_system_libs INTERFACE ${LIBBPF_INCLUDE_DIRS} ${LIBNL_INCLUDE_DIRS})
  target_link_libraries(sluice_system_libs INTERFACE ${_sl_archives} Threads::Threads)
  target_compile_definitions(sluice_logging INTERFACE SPDLOG_COMPILED_LIB SPDLOG_FMT_EXTERNAL)
  target_link_libraries(sluice_logging INTERFACE Threads::Threads)
else()
  target_link_libraries(sluice_system_libs INTERFACE PkgConfig::LIBBPF PkgConfig::LIBNL)
  target_link_libraries(sluice_logging INTERFACE spdlog::spdlog fmt::fmt)
endif()
