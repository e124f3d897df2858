# The CPU kernels (gradlens/kernels/cpu/*.cpp) are compiled once per ISA, each copy with its own flags and
# its own namespace gradlens::cpu::<isa>; gradlens/kernels/cpu/common/isa.cpp picks one at start-up. Nothing
# else in the project is compiled for a specific ISA, and no ISA flag reaches consumers.
#
# gradlens_cpu_variant(ISA FLAGS... [DEFINES...]) compiles them into an OBJECT library, then links
# those objects into one relocatable object (ld -r) and makes every symbol in it local except its
# entry point gradlens_cpu_backend_<isa>. NOTE: without this step the inline functions and
# templates each copy instantiates (std::fill, Eigen's GEMM) are weak symbols of the same name, and
# the linker keeps one copy for the whole program: generic code could end up calling an AVX-512
# std::fill and die with an illegal instruction on an older CPU. Sets <ISA>_OBJECT in the caller.

# GNU ld for the partial link whatever the compiler (lld 14, Clang's choice, has no
# --force-group-allocation); Debian's binutils come with every compiler.
find_program(GRADLENS_PARTIAL_LINKER NAMES ld.bfd ld)
find_program(GRADLENS_OBJCOPY NAMES objcopy llvm-objcopy)
set(GRADLENS_CPU_VARIANT_ISOLATION ON)
if(NOT GRADLENS_PARTIAL_LINKER OR NOT GRADLENS_OBJCOPY OR APPLE OR WIN32)
  set(GRADLENS_CPU_VARIANT_ISOLATION OFF)  # one variant only (below): nothing to isolate
endif()

if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$" AND GRADLENS_CPU_VARIANT_ISOLATION)
  set(GRADLENS_CPU_ISAS generic avx2 avx512)
else()
  set(GRADLENS_CPU_ISAS generic)
endif()

set(GRADLENS_CPU_FLAGS_generic "")
set(GRADLENS_CPU_FLAGS_avx2 -mavx2 -mfma)
set(GRADLENS_CPU_FLAGS_avx512 -mavx512f -mavx512bw -mavx512vl -mavx2 -mfma)
# GCC 12 bug 105593: the AVX-512 intrinsics' `__m512 __Y = __Y;` (_mm512_undefined_ps) is reported
# as (maybe-)uninitialized once inlined into Eigen's and our kernels; fixed in GCC 13. Only the
# AVX-512 copies, only GCC before 13: the generic and AVX2 copies of the same code keep the warning.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  list(APPEND GRADLENS_CPU_FLAGS_avx512 -Wno-maybe-uninitialized -Wno-uninitialized)
endif()

function(gradlens_cpu_variant isa)
  cmake_parse_arguments(ARG "" "" "FLAGS;DEFINES" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/gradlens/kernels/cpu/*.cpp)
  set(lib gradlens_cpu_${isa})
  add_library(${lib} OBJECT ${sources})
  target_include_directories(${lib} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(${lib} PRIVATE GRADLENS_CPU_ISA=${isa} ${ARG_DEFINES})
  target_compile_options(${lib} PRIVATE ${ARG_FLAGS})
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # Static locals of inline functions (Eigen's cache sizes) would be STB_GNU_UNIQUE, which
    # objcopy cannot make local; as plain weak symbols they are localized like the rest.
    target_compile_options(${lib} PRIVATE -fno-gnu-unique)
  endif()
  target_link_libraries(${lib} PRIVATE Eigen3::Eigen gradlens_options gradlens_warnings)
  set_target_properties(${lib} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  if(NOT GRADLENS_CPU_VARIANT_ISOLATION)
    set(${isa}_OBJECT $<TARGET_OBJECTS:${lib}> PARENT_SCOPE)
    return()
  endif()
  set(object ${CMAKE_CURRENT_BINARY_DIR}/cpu_kernels_${isa}.o)
  add_custom_command(
    OUTPUT ${object}
    COMMAND ${GRADLENS_PARTIAL_LINKER} -r --force-group-allocation -o ${object}.partial.o
            "$<TARGET_OBJECTS:${lib}>"
    COMMAND ${GRADLENS_OBJCOPY} --keep-global-symbol=gradlens_cpu_backend_${isa} ${object}.partial.o
            ${object}
    DEPENDS ${lib} "$<TARGET_OBJECTS:${lib}>"
    COMMAND_EXPAND_LISTS VERBATIM
    COMMENT "Isolating the ${isa} CPU kernels in one object")
  set_source_files_properties(${object} PROPERTIES EXTERNAL_OBJECT TRUE GENERATED TRUE)
  set(${isa}_OBJECT ${object} PARENT_SCOPE)
endfunction()
