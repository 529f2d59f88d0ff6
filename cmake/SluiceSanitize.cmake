# SPDX-License-Identifier: Apache-2.0
# SLUICE_SANITIZE: sanitizers for every C/C++ target (plugin, agent, tests), halting on the
# first error. OFF (default) = none; ON = address,undefined; or a list such as
# "address,undefined". hack/test-sanitizers.sh builds with it in its own build directory.
set(SLUICE_SANITIZE "OFF" CACHE STRING "Sanitizers to build with: OFF, ON (= address,undefined) or a list, e.g. address,undefined")

set(SLUICE_SANITIZERS "")
if(SLUICE_SANITIZE MATCHES "^(ON|On|on|TRUE|True|true|YES|yes|1)$")
  set(SLUICE_SANITIZERS "address,undefined")
elseif(SLUICE_SANITIZE AND NOT SLUICE_SANITIZE MATCHES "^(OFF|Off|off|FALSE|False|false|NO|no|0)$")
  set(SLUICE_SANITIZERS "${SLUICE_SANITIZE}")
endif()

# Where the sanitized plugin and agent write their reports (see sluice_sanitizer_defaults()).
set(SLUICE_SANITIZER_REPORT_DIR ${CMAKE_BINARY_DIR}/sanitizer-reports)

if(SLUICE_SANITIZERS)
  string(REPLACE "," ";" _sl_san_list "${SLUICE_SANITIZERS}")
  foreach(s IN LISTS _sl_san_list)
    if(NOT s MATCHES "^(address|undefined|leak|thread|memory)$")
      message(FATAL_ERROR "SLUICE_SANITIZE: unknown sanitizer '${s}' (address, undefined, leak, thread, memory)")
    endif()
  endforeach()
  message(STATUS "Sanitizers: ${SLUICE_SANITIZERS}")
  # -fno-sanitize-recover: UBSan aborts on its first report instead of printing and going on.
  add_compile_options(-fsanitize=${SLUICE_SANITIZERS} -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${SLUICE_SANITIZERS} -fno-sanitize-recover=all)
  # Executables linked as non-PIE: a sanitized Debug plugin is ~60 MB with ~800k relative
  # relocations, which the dynamic loader applied at every start (a third of an exec's 170 ms
  # here; non-PIE: 106 ms), and the integration suites exec the plugin hundreds of times.
  add_link_options("$<$<STREQUAL:$<TARGET_PROPERTY:TYPE>,EXECUTABLE>:-no-pie>")
  file(MAKE_DIRECTORY ${SLUICE_SANITIZER_REPORT_DIR})
endif()

# The runtimes exec the plugin with an environment of their own (kubelet, the integration
# harness and hack/cluster.sh all pass no ASAN_OPTIONS), so the sanitized plugin and agent
# carry their options compiled in: halt on error, leak checking on, and every report
# written to ${SLUICE_SANITIZER_REPORT_DIR}/<name>.<pid> where hack/test-sanitizers.sh
# looks for them (a plugin whose failure a test expects would otherwise hide its report).
# ASAN_OPTIONS/UBSAN_OPTIONS in the environment still override these.
function(sluice_sanitizer_defaults target name)
  if(NOT SLUICE_SANITIZERS OR NOT TARGET ${target})
    return()
  endif()
  add_library(sluice_sanitizer_defaults_${name} OBJECT ${CMAKE_SOURCE_DIR}/cmake/sanitizer_defaults.cpp)
  target_compile_definitions(sluice_sanitizer_defaults_${name} PRIVATE
                             SLUICE_SANITIZER_LOG_PATH="${SLUICE_SANITIZER_REPORT_DIR}/${name}")
  target_link_libraries(${target} PRIVATE sluice_sanitizer_defaults_${name})
endfunction()
