// snapshot_store: content-addressed, crash-safe storage of snapshot bytes under a data directory.
// put() writes a temp file, fsyncs it, renames it into place and fsyncs the directory, so a crash
// never leaves a half-written snapshot visible; get() verifies the SHA-256 before returning bytes.
// Layout: DIR/snapshots/ab/abcdef… (hex digest), DIR/tmp/ for writes in progress.
// Thread-safety: put(), stage() and get() may run concurrently (files are immutable once
// renamed); store_staged() one at a time.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/base/status.hpp"

namespace shoal {

/// Returns the lower-case hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

class snapshot_store {
 public:
  /// Opens (creating when missing) the store under `data_dir`; removes leftover temp files.
  /// Holds an exclusive lock on DIR/LOCK until destroyed: a second open of the same directory,
  /// from this or another process, returns unavailable naming the holder's pid.
  static result<std::unique_ptr<snapshot_store>> open(const std::string& data_dir);

  /// Releases the data directory's lock.
  ~snapshot_store();
  snapshot_store(const snapshot_store&) = delete;
  snapshot_store& operator=(const snapshot_store&) = delete;

  /// Stores `bytes` durably and returns their hex SHA-256; storing the same bytes twice is a no-op.
  result<std::string> put(std::string_view bytes);

  /// A put in two steps, for many at once (the catalog actor's group commit): stage() writes the
  /// bytes to a temp file, not yet synced or in place; store_staged() then makes a whole batch
  /// durable and puts each in place with one syncfs for the files and one for the directories
  /// (instead of two fsyncs per snapshot). Until then nothing is visible: a crash leaves only
  /// temp files, which open() removes.
  struct staged {
    std::string sha256;
    std::string tmp_path;  // "" when these bytes were stored already
  };
  /// Thread-safe (writers stage concurrently).
  result<staged> stage(std::string_view bytes);
  /// Makes `batch` durable and in place; on failure the batch's temp files are removed and none
  /// of it counts as stored. Not concurrent with another store_staged().
  status store_staged(const std::vector<staged>& batch);
  /// Removes a staged temp file that will not be stored (its push failed).
  void discard(const staged& s);

  /// Returns the bytes stored under `sha256`; corruption when they no longer match it,
  /// not_found when absent.
  result<std::string> get(const std::string& sha256) const;

  /// Removes the file of `sha256` (a damaged copy, so that a good one can be fetched in its
  /// place); ok when there was none.
  status remove(const std::string& sha256);

  /// Returns true if a snapshot with this digest is stored.
  bool contains(const std::string& sha256) const;

  /// Returns the path of the file holding `sha256` (it may not exist).
  std::string path_of(const std::string& sha256) const;

  /// Returns this data dir's node id (32 hex digits), creating DIR/node-id durably on first use.
  /// The id names the node in the cluster across restarts; a copied data dir must get a new one
  /// (delete the file).
  result<std::string> node_id();

 private:
  explicit snapshot_store(std::string root);
  std::string root_;
  int lock_fd_ = -1;  // DIR/LOCK, flock'ed for the store's lifetime
};

}  // namespace shoal
