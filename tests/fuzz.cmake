# libFuzzer targets (tests/fuzz/fuzz_*.c) and the opt-in ctest entry that runs them.
#
# The targets need clang, so they live in their own build tree, made by
# tests/fuzz/run-fuzzers: CC=clang, -DORRERY_FUZZ=ON and
# CMAKE_C_FLAGS=-fsanitize=fuzzer-no-link,address,undefined, so liborrery and the gateway
# sources are instrumented for coverage and the sanitizers while only the fuzz targets
# themselves link libFuzzer's main. The normal gcc build never sees them.
#
# test_fuzz (the script with FUZZ_SECONDS=60) is registered only when ORRERY_RUN_FUZZERS=1
# is in the environment at configure time, so CI opts in and everyone else is unaffected.
option(ORRERY_FUZZ "Build the libFuzzer targets (clang only; see tests/fuzz/run-fuzzers)" OFF)

if(ORRERY_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "ORRERY_FUZZ needs clang (CC=clang); tests/fuzz/run-fuzzers sets it up")
  endif()

  # The gateway without its main(): gw_routes.c names every handler, so all of it links.
  file(GLOB ORRERY_FUZZ_GW_SRCS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/services/gateway/*.c)
  list(REMOVE_ITEM ORRERY_FUZZ_GW_SRCS ${CMAKE_SOURCE_DIR}/services/gateway/main.c)
  add_library(orrery_fuzz_gateway STATIC ${ORRERY_FUZZ_GW_SRCS})
  target_include_directories(orrery_fuzz_gateway PUBLIC ${CMAKE_SOURCE_DIR}/services/gateway)
  target_link_libraries(orrery_fuzz_gateway PUBLIC orrery PkgConfig::MHD)

  set(ORRERY_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  set(ORRERY_FUZZ_TARGETS)
  file(GLOB ORRERY_FUZZ_SRCS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_*.c)
  foreach(src ${ORRERY_FUZZ_SRCS})
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src})
    set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
    target_compile_options(${name} PRIVATE ${ORRERY_FUZZ_FLAGS})
    target_link_options(${name} PRIVATE ${ORRERY_FUZZ_FLAGS})
    target_link_libraries(${name} PRIVATE orrery_fuzz_gateway)
    list(APPEND ORRERY_FUZZ_TARGETS ${name})
  endforeach()
  add_custom_target(fuzzers DEPENDS ${ORRERY_FUZZ_TARGETS})
elseif("$ENV{ORRERY_RUN_FUZZERS}" STREQUAL "1")
  # Builds its own clang tree under this build directory; 3 targets x 60 s plus the build.
  add_test(NAME test_fuzz COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/run-fuzzers)
  set_tests_properties(test_fuzz PROPERTIES TIMEOUT 1200
    ENVIRONMENT "FUZZ_SECONDS=60;ORRERY_FUZZ_BUILD_DIR=${CMAKE_BINARY_DIR}/fuzz-build")
endif()
