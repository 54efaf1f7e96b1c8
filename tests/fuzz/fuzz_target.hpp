// fuzz_target: what every fuzz target in this folder shares. Each target file defines its entry
// as SHOAL_FUZZ_ENTRY: libFuzzer's LLVMFuzzerTestOneInput in a fuzzer (clang, SHOAL_FUZZ), or a
// name of its own in fuzz_regression_test, which links every target into one executable and
// replays the kept inputs through them with the normal compiler.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#ifndef SHOAL_FUZZ_ENTRY
#define SHOAL_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

// Stops the run, naming the invariant an input broke: libFuzzer keeps the input as a crash, the
// replay fails. For properties beyond "does not crash" (a decoded value re-encodes and decodes
// to the same value).
#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

namespace shoal::fuzz {

inline std::string_view view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace shoal::fuzz
