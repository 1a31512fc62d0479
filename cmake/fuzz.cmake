# Fuzz targets and the replay of their saved inputs (included at the end of
# the top-level CMakeLists.txt; uses its BFN_ENGINE_SRC).
#
# Every build, any compiler:
#   fuzz_replay_<target>  runs each file of tests/fuzz/regress/<target>/ and
#                         tests/fuzz/corpus/<target>/ through the target's
#                         entry point; ctest test fuzz_regress_<target>, so CI
#                         replays every past finding (under ASan in the
#                         sanitizer build).
#   fuzz_absurd_models    ctest: model files with absurd values are refused
#                         with the right status and message.
#   fuzz_make_seeds       regenerates the seed corpora and absurd files.
# With -DBFN_FUZZ=ON (clang only; CC=clang):
#   fuzz_<target>         libFuzzer executables with ASan + UBSan, linked to an
#                         instrumented copy of the engine (bfn_fuzz_engine).
# Targets: idx (IDX files, data sets), model (model and checkpoint files),
# args (bfn train/sample/eval/info/data command lines).

option(BFN_FUZZ "Build libFuzzer targets (needs clang)" OFF)
# "undefined" alone gives a build several times faster on inputs that make
# large allocations, for long runs whose corpus is then replayed with ASan.
set(BFN_FUZZ_SANITIZERS "address,undefined" CACHE STRING "Sanitizers of the fuzz targets")

set(BFN_FUZZ_DIR ${CMAKE_SOURCE_DIR}/tests/fuzz)
set(BFN_FUZZ_TARGETS idx model args)
set(BFN_FUZZ_SRC_idx ${BFN_FUZZ_DIR}/fuzz_idx.c)
set(BFN_FUZZ_SRC_model ${BFN_FUZZ_DIR}/fuzz_model.c)
set(BFN_FUZZ_SRC_args
  ${BFN_FUZZ_DIR}/fuzz_args.c
  ${BFN_FUZZ_DIR}/cli/cmd_train.c
  ${BFN_FUZZ_DIR}/cli/cmd_sample.c
  ${BFN_FUZZ_DIR}/cli/cmd_eval.c
  ${BFN_FUZZ_DIR}/cli/cmd_info.c
  ${BFN_FUZZ_DIR}/cli/cmd_data.c
  ${BFN_FUZZ_DIR}/cli/cli_main.c
  ${CMAKE_SOURCE_DIR}/src/cli/args.c)

foreach(t ${BFN_FUZZ_TARGETS})
  add_executable(fuzz_replay_${t} ${BFN_FUZZ_SRC_${t}} ${BFN_FUZZ_DIR}/replay.c)
  target_include_directories(fuzz_replay_${t} PRIVATE ${BFN_FUZZ_DIR} ${CMAKE_SOURCE_DIR}/src/cli)
  target_link_libraries(fuzz_replay_${t} PRIVATE bfn)
  set(dirs ${BFN_FUZZ_DIR}/corpus/${t})
  if(EXISTS ${BFN_FUZZ_DIR}/regress/${t})
    list(APPEND dirs ${BFN_FUZZ_DIR}/regress/${t})
  endif()
  add_test(NAME fuzz_regress_${t} COMMAND fuzz_replay_${t} ${dirs})
  set_tests_properties(fuzz_regress_${t} PROPERTIES TIMEOUT 300)
endforeach()

add_executable(fuzz_absurd_models ${BFN_FUZZ_DIR}/absurd_models.c ${CMAKE_SOURCE_DIR}/tests/check.c)
target_include_directories(fuzz_absurd_models PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(fuzz_absurd_models PRIVATE bfn)
add_test(NAME fuzz_absurd_models COMMAND fuzz_absurd_models ${BFN_FUZZ_DIR})

add_executable(fuzz_make_seeds ${BFN_FUZZ_DIR}/make_seeds.c)
target_link_libraries(fuzz_make_seeds PRIVATE bfn)

if(BFN_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "BFN_FUZZ=ON needs clang for libFuzzer: configure with CC=clang")
  endif()
  set(BFN_FUZZ_FLAGS -g -fno-omit-frame-pointer -fsanitize=${BFN_FUZZ_SANITIZERS}
      -fno-sanitize-recover=undefined)
  # The engine again, instrumented for coverage so libFuzzer sees inside it.
  add_library(bfn_fuzz_engine STATIC ${BFN_ENGINE_SRC})
  target_include_directories(bfn_fuzz_engine PUBLIC ${CMAKE_SOURCE_DIR}/include
                             PRIVATE ${CMAKE_SOURCE_DIR}/src/engine)
  target_compile_options(bfn_fuzz_engine PRIVATE ${BFN_FUZZ_FLAGS} -fsanitize=fuzzer-no-link)
  target_link_libraries(bfn_fuzz_engine PUBLIC PkgConfig::OPENBLAS PkgConfig::PNG PkgConfig::ZLIB
                        Threads::Threads m)
  foreach(t ${BFN_FUZZ_TARGETS})
    add_executable(fuzz_${t} ${BFN_FUZZ_SRC_${t}})
    target_include_directories(fuzz_${t} PRIVATE ${BFN_FUZZ_DIR} ${CMAKE_SOURCE_DIR}/src/cli)
    target_compile_options(fuzz_${t} PRIVATE ${BFN_FUZZ_FLAGS} -fsanitize=fuzzer)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer,${BFN_FUZZ_SANITIZERS})
    target_link_libraries(fuzz_${t} PRIVATE bfn_fuzz_engine)
  endforeach()
endif()
