# gradlens_cuda_emu_objects(): an OBJECT library `gradlens_cuda_emu` holding the gradlens/kernels/cuda/*.cu
# files rewritten for the host compiler (transform.py) plus the emulator, so the CUDA kernels can
# run where there is no GPU: as the whole CUDA backend (-DGRADLENS_CUDA=EMULATE), or inside one test
# binary of an ordinary build (tests/CMakeLists.txt), which is how CI executes every kernel.
function(gradlens_cuda_emu_objects)
  if(TARGET gradlens_cuda_emu)
    return()
  endif()
  file(GLOB cuda_files CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}
       ${PROJECT_SOURCE_DIR}/gradlens/kernels/cuda/*.cu ${PROJECT_SOURCE_DIR}/gradlens/kernels/cuda/*.cuh)
  list(TRANSFORM cuda_files PREPEND ${PROJECT_SOURCE_DIR}/ OUTPUT_VARIABLE cuda_absolute)
  set(emu_dir ${PROJECT_BINARY_DIR}/cuda_emu)
  set(outputs)
  foreach(f ${cuda_files})
    string(REGEX REPLACE "\\.cu$" ".cpp" out ${f})
    list(APPEND outputs ${emu_dir}/${out})
  endforeach()
  add_custom_command(
    OUTPUT ${outputs}
    COMMAND Python3::Interpreter ${PROJECT_SOURCE_DIR}/tools/cuda_emu/transform.py ${emu_dir}
            ${PROJECT_SOURCE_DIR} ${cuda_files}
    DEPENDS ${PROJECT_SOURCE_DIR}/tools/cuda_emu/transform.py ${cuda_absolute}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    COMMENT "Rewriting the CUDA kernels for the CPU emulator")
  set(sources ${outputs})
  list(FILTER sources INCLUDE REGEX "\\.cpp$")
  add_library(gradlens_cuda_emu OBJECT ${sources} ${PROJECT_SOURCE_DIR}/tools/cuda_emu/emulator.cpp)
  # The rewritten headers and the stand-in cuda_runtime.h come before the sources' own.
  target_include_directories(gradlens_cuda_emu BEFORE PRIVATE ${emu_dir}
                             ${PROJECT_SOURCE_DIR}/tools/cuda_emu ${PROJECT_SOURCE_DIR})
  target_link_libraries(gradlens_cuda_emu PRIVATE gradlens_options)
  # No contraction: a * b + c rounds twice, as nvcc's __fmul_rn/__fadd_rn promise and as the CPU
  # twins do; the kernels ask for a fused multiply-add by name (fmaf).
  target_compile_options(gradlens_cuda_emu PRIVATE -Wno-unused-parameter -ffp-contract=off)
  set_target_properties(gradlens_cuda_emu PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()

# cuda_emu_selftest: kernels that break the emulator's checks on purpose (tools/cuda_emu/selftest.cu),
# run through the same rewrite, to show each check catches its bug.
function(gradlens_cuda_emu_selftest)
  set(emu_dir ${PROJECT_BINARY_DIR}/cuda_emu_selftest)
  add_custom_command(
    OUTPUT ${emu_dir}/tools/cuda_emu/selftest.cpp
    COMMAND Python3::Interpreter ${PROJECT_SOURCE_DIR}/tools/cuda_emu/transform.py ${emu_dir}
            ${PROJECT_SOURCE_DIR} tools/cuda_emu/selftest.cu
    DEPENDS ${PROJECT_SOURCE_DIR}/tools/cuda_emu/transform.py
            ${PROJECT_SOURCE_DIR}/tools/cuda_emu/selftest.cu
    COMMENT "Rewriting the emulator's self-test kernels")
  add_executable(cuda_emu_selftest ${emu_dir}/tools/cuda_emu/selftest.cpp
                                   ${PROJECT_SOURCE_DIR}/tools/cuda_emu/emulator.cpp)
  target_include_directories(cuda_emu_selftest BEFORE PRIVATE ${PROJECT_SOURCE_DIR}/tools/cuda_emu)
  target_compile_options(cuda_emu_selftest PRIVATE -ffp-contract=off)
  add_test(NAME cuda_emu_selftest COMMAND cuda_emu_selftest)
  add_test(NAME cuda_emu_selftest_in_order COMMAND cuda_emu_selftest)
  set_tests_properties(cuda_emu_selftest cuda_emu_selftest_in_order PROPERTIES LABELS cpu)
  set_tests_properties(cuda_emu_selftest_in_order PROPERTIES ENVIRONMENT GRADLENS_EMU_SEED=0)
endfunction()
