#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite twice: a Release build with
# warnings as errors, then a build with AddressSanitizer + UBSan.
#   scripts/test.sh             both builds
#   scripts/test.sh --fast      Release build only
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)

echo "== tests (Release, -Werror) =="
(cd build && ctest --output-on-failure -j "$jobs")

[ "${1:-}" = "--fast" ] && exit 0

echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer) =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBFN_WERROR=ON -DBFN_SANITIZE=ON \
  -DBFN_BENCH=OFF -DCMAKE_C_FLAGS_DEBUG="-O1 -g" >/dev/null
cmake --build build-asan -j "$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && BFN_TEST_SCALE=small ctest --output-on-failure -j "$jobs")
