# PD_FUZZ=ON builds the libFuzzer targets of tests/fuzz/ (fuzz_<name>.c, one
# program each, with the helpers of tests/fuzz/fuzz.c) under AddressSanitizer
# and UndefinedBehaviorSanitizer, and instruments pd_core for coverage so that
# libFuzzer sees inside the library. scripts/fuzz.sh configures, builds and
# runs them; libFuzzer needs clang.
#
# Included from the top CMakeLists.txt right after pd_core is defined, which
# is why pd_core gets its flags through target_compile_options: directory
# compile options only reach targets defined after them.
option(PD_FUZZ "Build the libFuzzer targets in tests/fuzz (needs clang)" OFF)

if(PD_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR
      "PD_FUZZ=ON needs clang (libFuzzer), but the C compiler is "
      "${CMAKE_C_COMPILER_ID} (${CMAKE_C_COMPILER}). Configure a fresh build "
      "directory with CC=clang, as scripts/fuzz.sh does.")
  endif()

  # Every sanitizer report aborts, so libFuzzer records it as a crash.
  set(PD_FUZZ_SAN -fsanitize=address,undefined -fno-sanitize-recover=all)
  target_compile_options(pd_core PRIVATE
    -fsanitize=fuzzer-no-link ${PD_FUZZ_SAN} -fno-omit-frame-pointer)
  # Whatever links the instrumented library needs the sanitizer runtimes.
  target_link_options(pd_core INTERFACE ${PD_FUZZ_SAN})

  file(GLOB PD_FUZZ_SOURCES CONFIGURE_DEPENDS
       ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
  foreach(_src IN LISTS PD_FUZZ_SOURCES)
    get_filename_component(_name ${_src} NAME_WE)
    add_executable(${_name} ${_src} ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz.c)
    target_compile_options(${_name} PRIVATE
      -fsanitize=fuzzer ${PD_FUZZ_SAN} -fno-omit-frame-pointer)
    target_link_options(${_name} PRIVATE -fsanitize=fuzzer ${PD_FUZZ_SAN})
    target_link_libraries(${_name} PRIVATE pd_core)
  endforeach()
endif()
