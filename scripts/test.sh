#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test.
#   scripts/test.sh              # normal build in build/
#   scripts/test.sh --sanitize   # ASan+UBSan build in build-asan/
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh" test

extra=()
export BUILD_DIR="${BUILD_DIR:-$root/build}"
if [ "${1:-}" = "--sanitize" ]; then
  export BUILD_DIR="$root/build-asan"
  extra+=(-DSHOAL_SANITIZE=ON -DSHOAL_BUILD_BENCH=OFF)
  export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi
echo "== building in $BUILD_DIR"
"$root/scripts/build.sh" "${extra[@]}"
echo "== running tests"
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 900
