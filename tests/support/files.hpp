// Files for tests: a temporary directory that cleans up after itself, and whole-file reads and
// writes. Shared by every test suite (namespace shoal::testing).
// Thread-safety: no shared state; a temp_dir belongs to the thread that made it.
#pragma once

#include <string>
#include <string_view>

namespace shoal::testing {

/// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class temp_dir {
 public:
  /// Creates the directory; throws std::runtime_error when it cannot.
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  /// Returns the directory's path.
  const std::string& path() const { return path_; }
  /// Returns path() + "/" + name.
  std::string file(std::string_view name) const;

 private:
  std::string path_;
};

/// Returns the bytes of a file (empty if it cannot be read).
std::string read_file(const std::string& path);

/// Replaces a file's contents; returns false on failure.
bool write_file(const std::string& path, std::string_view bytes);

}  // namespace shoal::testing
