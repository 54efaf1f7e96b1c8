#include "shoal/store/catalog_journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <new>
#include <utility>

#include "store/catalog_proto.hpp"
#include "proto/shoal.pb.h"

namespace shoal {
namespace {

// Frame: [uint32 LE payload length][uint32 LE zlib CRC-32 of the payload][payload].
constexpr size_t header_size = 8;

status errno_status(const std::string& what, const std::string& path, int err) {
  return status::io_error(what + " " + path + ": " + std::strerror(err));
}

uint32_t load_le32(const char* p) {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 |
         static_cast<uint32_t>(b[2]) << 16 | static_cast<uint32_t>(b[3]) << 24;
}

void store_le32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint32_t crc_of(const char* data, size_t size) {
  return static_cast<uint32_t>(
      ::crc32(0L, reinterpret_cast<const Bytef*>(data), static_cast<uInt>(size)));
}

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

status fsync_dir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status("cannot open directory", path, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return errno_status("cannot sync directory", path, err);
  return status::ok();
}

// Returns true if a whole, checksummed, parseable record starts at `off`. A zero length never
// counts: append() never writes one, and zero-filled space after a crash must not look valid.
bool whole_record_at(const std::string& data, size_t off, uint32_t* payload_size) {
  if (data.size() - off < header_size) return false;
  uint32_t len = load_le32(data.data() + off);
  uint32_t crc = load_le32(data.data() + off + 4);
  if (len == 0 || len > data.size() - off - header_size) return false;
  if (crc_of(data.data() + off + header_size, len) != crc) return false;
  *payload_size = len;
  return true;
}

// Why the record at `off` is not whole, for the warning.
std::string damage_of(const std::string& data, size_t off) {
  size_t left = data.size() - off;
  if (left < header_size) return "only " + std::to_string(left) + " of its 8 header bytes";
  uint32_t len = load_le32(data.data() + off);
  if (len == 0) return "a zero length";
  if (len > left - header_size) {
    return "length " + std::to_string(len) + " but only " + std::to_string(left - header_size) +
           " payload bytes";
  }
  return "a CRC-32 mismatch";
}

}  // namespace

catalog_journal::catalog_journal(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

catalog_journal::~catalog_journal() {
  if (fd_ >= 0) ::close(fd_);
}

result<std::unique_ptr<catalog_journal>> catalog_journal::open(
    const std::string& path, catalog& into, const std::function<void(const std::string&)>& warn) {
  // Replay into a copy so a journal that fails half way leaves `into` as it was.
  std::unique_ptr<catalog> replay;
  try {
    replay = std::make_unique<catalog>(into);
  } catch (const std::bad_alloc&) {
    return errno_status("cannot read", path, ENOMEM);
  }
  auto journal = open(path, [&](const catalog_change& c) { return replay->apply(c); }, warn);
  if (journal) into = std::move(*replay);
  return journal;
}

result<std::unique_ptr<catalog_journal>> catalog_journal::open(
    const std::string& path, const std::function<status(const catalog_change&)>& replay,
    const std::function<void(const std::string&)>& warn) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("cannot open", path, errno);
  std::unique_ptr<catalog_journal> journal;
  try {
    journal.reset(new catalog_journal(fd, path));
  } catch (const std::bad_alloc&) {
    ::close(fd);
    return errno_status("cannot open", path, ENOMEM);
  }
  // The file may be new: make its directory entry durable before anything is acknowledged.
  SHOAL_RETURN_IF_ERROR(fsync_dir(dir_of(path)));

  std::string data;
  try {
    struct stat st;
    if (::fstat(fd, &st) != 0) return errno_status("cannot stat", path, errno);
    data.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < data.size()) {
      ssize_t n = ::pread(fd, data.data() + got, data.size() - got, static_cast<off_t>(got));
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_status("cannot read", path, errno);
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    data.resize(got);
  } catch (const std::bad_alloc&) {
    return errno_status("cannot read", path, ENOMEM);
  } catch (const std::length_error&) {
    return errno_status("cannot read", path, EFBIG);
  }

  size_t off = 0;
  uint64_t record = 0;
  while (off < data.size()) {
    uint32_t len = 0;
    if (!whole_record_at(data, off, &len)) {
      // A torn tail is a write that crashed before append() returned: nobody was told it
      // succeeded, so it may go. Anything whole after it was acknowledged and must not.
      for (size_t next = off + 1; next + header_size < data.size(); ++next) {
        uint32_t next_len = 0;
        pb::CatalogRecord probe;
        if (whole_record_at(data, next, &next_len) &&
            probe.ParseFromArray(data.data() + next + header_size, static_cast<int>(next_len))) {
          return status::corruption("catalog journal " + path + ": record " +
                                    std::to_string(record + 1) + " at byte " +
                                    std::to_string(off) + " is damaged (" + damage_of(data, off) +
                                    ") but whole records follow it at byte " +
                                    std::to_string(next) +
                                    "; refusing to drop acknowledged changes");
        }
      }
      std::string why = damage_of(data, off);
      if (::ftruncate(fd, static_cast<off_t>(off)) != 0) {
        return errno_status("cannot truncate the torn tail of", path, errno);
      }
      if (::fsync(fd) != 0) return errno_status("cannot sync", path, errno);
      if (warn) {
        warn("catalog journal " + path + ": cut off a torn record at byte " +
             std::to_string(off) + " (" + std::to_string(data.size() - off) + " bytes, " + why +
             "), left by an interrupted write that was never acknowledged");
      }
      data.resize(off);
      break;
    }
    ++record;
    const std::string where = "catalog journal " + path + ": record " + std::to_string(record) +
                              " at byte " + std::to_string(off);
    pb::CatalogRecord rec;
    if (!rec.ParseFromArray(data.data() + off + header_size, static_cast<int>(len))) {
      return status::corruption(where + " has a valid checksum but does not parse");
    }
    for (const pb::CatalogChange& pc : rec.changes()) {
      auto change = change_from_proto(pc);
      if (!change) return status::corruption(where + ": " + change.error().message());
      status s = replay(*change);
      if (!s) return status::corruption(where + " does not apply: " + s.message());
    }
    off += header_size + len;
  }

  journal->end_ = off;
  return journal;
}

status catalog_journal::append(const std::vector<catalog_change>& changes) {
  if (broken_) {
    return status::io_error("catalog journal " + path_ +
                            ": an earlier write failed; restart the node to recover");
  }
  if (changes.empty()) return status::ok();

  std::string frame;
  try {
    pb::CatalogRecord rec;
    for (const catalog_change& c : changes) change_to_proto(c, rec.add_changes());
    size_t size = rec.ByteSizeLong();
    if (size > std::numeric_limits<uint32_t>::max() - header_size) {
      return status::too_large("catalog record of " + std::to_string(size) +
                               " bytes is too large for " + path_);
    }
    frame.resize(header_size + size);
    if (!rec.SerializeToArray(frame.data() + header_size, static_cast<int>(size))) {
      return status::internal("cannot serialize a catalog record for " + path_);
    }
    store_le32(frame.data(), static_cast<uint32_t>(size));
    store_le32(frame.data() + 4, crc_of(frame.data() + header_size, size));
  } catch (const std::bad_alloc&) {
    return errno_status("cannot append to", path_, ENOMEM);
  }

  // On failure, cut the file back to the last whole record: a partial record followed by later
  // good ones would read as corruption on the next open.
  auto undo = [&](const std::string& what, int err) {
    if (::ftruncate(fd_, static_cast<off_t>(end_)) != 0) broken_ = true;
    return errno_status(what, path_, err);
  };
  size_t done = 0;
  while (done < frame.size()) {
    ssize_t n = ::pwrite(fd_, frame.data() + done, frame.size() - done,
                         static_cast<off_t>(end_ + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return undo("cannot write", errno);
    }
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd_) != 0) {
    // After a failed sync the kernel may have dropped the dirty pages: the tail is unknown.
    int err = errno;
    status s = undo("cannot sync", err);
    broken_ = true;
    return s;
  }
  end_ += frame.size();
  return status::ok();
}

}  // namespace shoal
