# SPDX-License-Identifier: Apache-2.0
# SLUICE_FUZZ: builds tests/fuzz as libFuzzer targets (clang only), with every C++ target
# instrumented for coverage and ASan+UBSan. OFF (default): tests/fuzz builds the same targets
# as plain corpus-replay programs, run by ctest. hack/fuzz.sh configures its own build dir.
option(SLUICE_FUZZ "Build the libFuzzer targets in tests/fuzz (needs CMAKE_CXX_COMPILER=clang++)" OFF)

if(SLUICE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "SLUICE_FUZZ=ON needs clang (libFuzzer): configure with "
                        "-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ (or use hack/fuzz.sh)")
  endif()
  if(SLUICE_SANITIZERS)
    message(FATAL_ERROR "SLUICE_FUZZ=ON already builds with address,undefined: leave SLUICE_SANITIZE off")
  endif()
  message(STATUS "Fuzzing build: libFuzzer + address,undefined")
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()
