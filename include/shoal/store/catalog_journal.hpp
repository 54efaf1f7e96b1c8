// catalog_journal: the durable log of catalog changes, DIR/catalog.journal. Each append is one
// framed record (length, CRC-32, protobuf CatalogRecord holding one or more changes) written and
// fdatasync'ed before append() returns, so an acknowledged change survives kill -9. On open, the
// journal replays every whole record into a catalog; a torn record at the tail (a crash mid-write,
// never acknowledged) is cut off and reported through `warn`.
// Thread-safety: none; one owner.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "shoal/base/status.hpp"
#include "shoal/store/catalog.hpp"

namespace shoal {

class catalog_journal {
 public:
  /// Opens (creating when missing) the journal at `path` and applies every record to `into`;
  /// on failure `into` is left as it was.
  static result<std::unique_ptr<catalog_journal>> open(const std::string& path, catalog& into,
                                                       const std::function<void(const std::string&)>& warn);

  /// Opens (creating when missing) the journal at `path` and passes every change, in order, to
  /// `replay`; a change it refuses makes the journal corrupt (the error names the record).
  static result<std::unique_ptr<catalog_journal>> open(
      const std::string& path, const std::function<status(const catalog_change&)>& replay,
      const std::function<void(const std::string&)>& warn);

  ~catalog_journal();
  catalog_journal(const catalog_journal&) = delete;
  catalog_journal& operator=(const catalog_journal&) = delete;

  /// Appends `changes` as one atomic record and syncs it to disk.
  status append(const std::vector<catalog_change>& changes);

 private:
  catalog_journal(int fd, std::string path);
  int fd_;
  std::string path_;
  uint64_t end_ = 0;     // file size after the last whole record; appends write here
  bool broken_ = false;  // a failed write or sync left the tail unknown; refuse further appends
};

}  // namespace shoal
