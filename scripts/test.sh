#!/usr/bin/env bash
# Sets up, builds and runs the test suite three times: a Release build with
# warnings as errors, the whole suite under AddressSanitizer + UBSan, then
# the threaded tests under ThreadSanitizer.
#   scripts/test.sh             all three
#   scripts/test.sh --fast      Release build only
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)

echo "== tests (Release, -Werror) =="
(cd build && ctest --output-on-failure -j "$jobs")
echo "== Release: setup, build and tests took $((SECONDS - start)) s =="

[ "${1:-}" = "--fast" ] && exit 0

start=$SECONDS
echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer) =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBFN_WERROR=ON -DBFN_SANITIZE=ON \
  -DBFN_BENCH=OFF -DCMAKE_C_FLAGS_DEBUG="-O1 -g" >/dev/null
cmake --build build-asan -j "$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  BFN_TEST_SCALE=small ctest --output-on-failure -j "$jobs")
echo "== ASan + UBSan: build and tests took $((SECONDS - start)) s =="

# The programs that run threads: the nets' own pool (gemm, layers, net,
# sample, train, eval), then the app's worker threads. BLAS is not built
# with ThreadSanitizer, so it stays single-threaded by default (tests that
# set more threads run the nets' pools, whose BLAS calls are serial anyway).
# The app tests wait on its threads with time limits, so they run one at a
# time, after the engine's (the same total time as all at once on 2 cores).
start=$SECONDS
echo "== tests (ThreadSanitizer, threaded programs) =="
tsan_engine=(test_gemm test_layers test_net test_sample test_train test_eval)
tsan_app=(app_threads)
[ -f tests/app_stress.c ] && tsan_app+=(app_stress)
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DBFN_WERROR=ON -DBFN_TSAN=ON \
  -DBFN_BENCH=OFF -DCMAKE_C_FLAGS_DEBUG="-O1 -g" >/dev/null
cmake --build build-tsan -j "$jobs" --target "${tsan_engine[@]}" "${tsan_app[@]}"
tsan_opts="halt_on_error=1:second_deadlock_stack=1"
[ -f tests/tsan.supp ] && tsan_opts="$tsan_opts:suppressions=$PWD/tests/tsan.supp"
only() { local IFS='|'; echo "^($*)\$"; }
(cd build-tsan && export OPENBLAS_NUM_THREADS=1 TSAN_OPTIONS="$tsan_opts" BFN_TEST_SCALE=small &&
  ctest --output-on-failure -j "$jobs" -R "$(only "${tsan_engine[@]}")" &&
  ctest --output-on-failure -j 1 -R "$(only "${tsan_app[@]}")")
echo "== ThreadSanitizer: build and tests took $((SECONDS - start)) s =="
