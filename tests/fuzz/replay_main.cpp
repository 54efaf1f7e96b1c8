// fuzz_regression_test: replays the kept inputs of every fuzz target with the normal compiler (no
// libFuzzer): each file under corpus/TARGET/ and regressions/TARGET/ goes through that target's
// entry once. An input that crashes, trips a sanitizer or breaks a FUZZ_CHECK aborts the run, and
// the signal handler names the file first. A target without seeds fails too: it would test
// nothing.
//   fuzz_regression_test                  every target, every kept input
//   fuzz_regression_test TARGET FILE...   these files through one target
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#define SHOAL_FUZZ_TARGETS(X) \
  X(http)                     \
  X(api)                      \
  X(gossip)                   \
  X(catalog_sync)             \
  X(fasttext)                 \
  X(onnx)                     \
  X(config)

#define SHOAL_DECLARE(name) extern "C" int shoal_fuzz_##name(const uint8_t* data, size_t size);
SHOAL_FUZZ_TARGETS(SHOAL_DECLARE)
#undef SHOAL_DECLARE

namespace {

namespace fs = std::filesystem;

struct fuzz_target {
  const char* name;
  int (*entry)(const uint8_t*, size_t);
};

#define SHOAL_ENTRY(name) {#name, shoal_fuzz_##name},
const fuzz_target targets[] = {SHOAL_FUZZ_TARGETS(SHOAL_ENTRY)};
#undef SHOAL_ENTRY

char current[4096];  // the input being replayed, for the signal handler

void name_the_input(int sig) {
  const char prefix[] = "\nfuzz_regression_test: crashed on input ";
  (void)!write(2, prefix, sizeof prefix - 1);
  (void)!write(2, current, std::strlen(current));
  (void)!write(2, "\n", 1);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

void replay(const fuzz_target& t, const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::snprintf(current, sizeof current, "%s (target %s)", file.c_str(), t.name);
  t.entry(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// Returns the regular files under `dir`, sorted (none when it does not exist).
std::vector<fs::path> files_under(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename() != "README.md") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) std::signal(sig, name_the_input);
  if (argc >= 2) {
    for (const auto& t : targets) {
      if (std::strcmp(t.name, argv[1]) != 0) continue;
      for (int i = 2; i < argc; ++i) replay(t, argv[i]);
      std::printf("%s: %d inputs replayed\n", t.name, argc - 2);
      return 0;
    }
    std::fprintf(stderr, "unknown target '%s'\n", argv[1]);
    return 2;
  }
  const fs::path root = SHOAL_FUZZ_DIR;
  int failed = 0;
  for (const auto& t : targets) {
    const auto seeds = files_under(root / "corpus" / t.name);
    const auto regressions = files_under(root / "regressions" / t.name);
    if (seeds.empty()) {
      std::fprintf(stderr, "%s: no seeds under %s\n", t.name, (root / "corpus" / t.name).c_str());
      ++failed;
      continue;
    }
    for (const auto& f : seeds) replay(t, f);
    for (const auto& f : regressions) replay(t, f);
    std::printf("%-13s %4zu seeds, %3zu regressions replayed\n", t.name, seeds.size(),
                regressions.size());
  }
  return failed == 0 ? 0 : 1;
}
