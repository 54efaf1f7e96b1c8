#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test.
#   scripts/test.sh              # normal build in build/
#   scripts/test.sh --sanitize   # ASan+UBSan build in build-asan/
#   scripts/test.sh --fuzz [TARGET...]
#       # libFuzzer build (clang, ASan+UBSan) in build-fuzz/; each fuzzer (all, or the TARGETs:
#       # tests/fuzz/README.md) runs SHOAL_FUZZ_SECONDS (default 60) from the committed seeds
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

if [ "${1:-}" = "--fuzz" ]; then
  shift
  "$root/scripts/deps.sh" fuzz
  export BUILD_DIR="$root/build-fuzz"
  targets=("$@")
  [ ${#targets[@]} -gt 0 ] || targets=(http api gossip catalog_sync fasttext onnx config)
  seconds="${SHOAL_FUZZ_SECONDS:-60}"
  echo "== building the fuzzers in $BUILD_DIR"
  cmake -S "$root" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DSHOAL_FUZZ=ON -DSHOAL_BUILD_BENCH=OFF >/dev/null
  cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"
  # Stop at the first error of either sanitizer; libFuzzer keeps the input that caused it.
  export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  found=()
  printf '%-13s %12s %8s %7s %7s %s\n' target executions exec/s cov ft crashes >"$BUILD_DIR/fuzz-summary.txt"
  for t in "${targets[@]}"; do
    echo "== fuzzing $t for ${seconds}s"
    grown="$BUILD_DIR/corpus/$t"    # new inputs go here; the committed seeds stay as they are
    crashes="$BUILD_DIR/crashes/$t"
    mkdir -p "$grown" "$crashes"
    log="$BUILD_DIR/fuzz-$t.log"
    rc=0
    "$BUILD_DIR/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" \
      "$grown" "$root/tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
    final="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
    # (a crash prints the stats twice: once from the crash handler, once at exit)
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$final")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$final")"
    written="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)"
    printf '%-13s %12s %8s %7s %7s %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
      "$([ $rc -eq 0 ] && echo 0 || echo "1: ${written:-see $log}")" | tee -a "$BUILD_DIR/fuzz-summary.txt"
    if [ $rc -ne 0 ]; then
      grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|.*fuzz check failed)' "$log" | head -5 || true
      found+=("$t")
    fi
  done
  echo "== summary (also in $BUILD_DIR/fuzz-summary.txt)"
  cat "$BUILD_DIR/fuzz-summary.txt"
  if [ ${#found[@]} -gt 0 ]; then
    echo "fuzzers that found a crash: ${found[*]} (inputs under $BUILD_DIR/crashes/; to keep one" \
      "as a regression see tests/fuzz/README.md)" >&2
    exit 1
  fi
  exit 0
fi

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
