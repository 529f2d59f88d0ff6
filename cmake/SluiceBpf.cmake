# SPDX-License-Identifier: Apache-2.0
# sluice_bpf_object(<name> <src.bpf.c>): .bpf.c -> .bpf.o (clang -target bpf, CO-RE against a
# vmlinux.h generated from the build machine's kernel BTF) -> .skel.h (bpftool gen skeleton),
# exposed as the INTERFACE target sluice_bpf_<name> whose include dir holds <name>.skel.h.
# VARIANT <v> FLAGS <clang flags...> builds the same source differently into bpf-gen/<v>/ as
# sluice_bpf_<v>_<name> (the upgrade test's "next build" of the programs).
find_program(SLUICE_CLANG NAMES clang clang-14 REQUIRED)
find_program(SLUICE_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(SLUICE_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH "Kernel BTF used to generate vmlinux.h")
set(SLUICE_BPF_GEN_DIR ${CMAKE_BINARY_DIR}/bpf-gen)
set(SLUICE_VMLINUX_H ${SLUICE_BPF_GEN_DIR}/vmlinux/vmlinux.h)

add_custom_command(
  OUTPUT ${SLUICE_VMLINUX_H}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${SLUICE_BPF_GEN_DIR}/vmlinux
  COMMAND ${SLUICE_BPFTOOL} btf dump file ${SLUICE_VMLINUX_BTF} format c > ${SLUICE_VMLINUX_H}.tmp
  COMMAND ${CMAKE_COMMAND} -E rename ${SLUICE_VMLINUX_H}.tmp ${SLUICE_VMLINUX_H}
  COMMENT "Generating vmlinux.h from ${SLUICE_VMLINUX_BTF}"
  VERBATIM)
add_custom_target(sluice_vmlinux_h DEPENDS ${SLUICE_VMLINUX_H})

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(SLUICE_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(SLUICE_BPF_ARCH arm64)
else()
  set(SLUICE_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

function(sluice_bpf_object name src)
  cmake_parse_arguments(ARG "" "VARIANT" "DEFINES;FLAGS" ${ARGN})
  get_filename_component(src_abs ${src} ABSOLUTE)
  set(gen ${SLUICE_BPF_GEN_DIR})
  set(target sluice_bpf_${name})
  if(ARG_VARIANT)
    set(gen ${SLUICE_BPF_GEN_DIR}/${ARG_VARIANT})
    set(target sluice_bpf_${ARG_VARIANT}_${name})
  endif()
  set(obj ${gen}/${name}.bpf.o)
  set(skel ${gen}/${name}.skel.h)
  set(defs)
  foreach(d IN LISTS ARG_DEFINES)
    list(APPEND defs -D${d})
  endforeach()
  file(GLOB_RECURSE bpf_headers CONFIGURE_DEPENDS
       ${CMAKE_SOURCE_DIR}/bpf/include/*.h ${CMAKE_SOURCE_DIR}/bpf/lib/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${gen}
    COMMAND ${SLUICE_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${SLUICE_BPF_ARCH} ${defs} ${ARG_FLAGS}
            -Wall -Werror -Wno-unused-function
            -I${SLUICE_BPF_GEN_DIR}/vmlinux -I${CMAKE_SOURCE_DIR}/bpf/include
            -I${CMAKE_SOURCE_DIR}/bpf -c ${src_abs} -o ${obj}
    DEPENDS ${src_abs} ${bpf_headers} sluice_vmlinux_h
    COMMENT "BPF ${name} ${ARG_VARIANT}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${SLUICE_BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name} ${ARG_VARIANT}"
    VERBATIM)
  add_custom_target(${target}_gen DEPENDS ${skel})
  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_gen)
  target_include_directories(${target} INTERFACE ${gen} ${CMAKE_SOURCE_DIR}/bpf/include)
endfunction()
