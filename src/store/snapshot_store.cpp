#include "shoal/store/snapshot_store.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <new>
#include <system_error>
#include <utility>

namespace shoal {
namespace {

namespace fs = std::filesystem;

status errno_status(const std::string& what, const std::string& path, int err) {
  return status::io_error(what + " " + path + ": " + std::strerror(err));
}

// Closes a file descriptor on every path out of a function.
class fd_guard {
 public:
  explicit fd_guard(int fd) : fd_(fd) {}
  ~fd_guard() {
    if (fd_ >= 0) ::close(fd_);
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

bool is_hex_digest(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

status write_all(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("cannot write", path, errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return status::ok();
}

// Makes a directory's entries (a rename, a new file or subdirectory) durable.
status fsync_dir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status("cannot open directory", path, errno);
  fd_guard guard(fd);
  if (::fsync(fd) != 0) return errno_status("cannot sync directory", path, errno);
  return status::ok();
}

// Creates `path` when missing; reports whether it did so the caller can sync the parent.
status make_dir(const std::string& path, bool* created) {
  *created = false;
  if (::mkdir(path.c_str(), 0755) == 0) {
    *created = true;
    return status::ok();
  }
  if (errno != EEXIST) return errno_status("cannot create directory", path, errno);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return errno_status("cannot stat", path, errno);
  if (!S_ISDIR(st.st_mode)) return status::io_error("cannot use " + path + ": not a directory");
  return status::ok();
}

result<std::string> read_whole_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return status::not_found("no such file " + path);
    return errno_status("cannot open", path, err);
  }
  fd_guard guard(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return errno_status("cannot stat", path, errno);
  std::string out;
  try {
    out.reserve(static_cast<size_t>(st.st_size));
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_status("cannot read", path, errno);
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
  } catch (const std::bad_alloc&) {
    return errno_status("cannot read", path, ENOMEM);
  } catch (const std::length_error&) {
    return errno_status("cannot read", path, EFBIG);
  }
  return out;
}

// Reads the pid a lock holder wrote, for the error message; "unknown" when it has not yet.
std::string lock_holder_pid(int fd) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "unknown";
  std::string pid(buf, static_cast<size_t>(n));
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  for (char c : pid) {
    if (c < '0' || c > '9') return "unknown";
  }
  return pid.empty() ? "unknown" : pid;
}

}  // namespace

std::string sha256_hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &md_len, EVP_sha256(), nullptr) != 1) {
    return std::string();  // only when libcrypto itself is broken; never matches a real digest
  }
  static const char* hex = "0123456789abcdef";
  std::string out(md_len * 2, '0');
  for (unsigned int i = 0; i < md_len; ++i) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 0xf];
  }
  return out;
}

snapshot_store::snapshot_store(std::string root) : root_(std::move(root)) {}

snapshot_store::~snapshot_store() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // closing the last descriptor releases the flock
}

result<std::unique_ptr<snapshot_store>> snapshot_store::open(const std::string& data_dir) {
  if (data_dir.empty()) return status::invalid_argument("the data dir must not be empty");
  std::string root = data_dir;
  while (root.size() > 1 && root.back() == '/') root.pop_back();

  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return status::io_error("cannot create directory " + root + ": " + ec.message());
  bool created = false;
  SHOAL_RETURN_IF_ERROR(make_dir(root + "/snapshots", &created));
  SHOAL_RETURN_IF_ERROR(make_dir(root + "/tmp", &created));

  // Lock before touching tmp/: another node's writes in progress live there.
  const std::string lock_path = root + "/LOCK";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("cannot open", lock_path, errno);
  fd_guard lock(fd);
  for (;;) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) break;
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      return status::unavailable("data dir " + root + " is in use by another shoal node (pid " +
                                 lock_holder_pid(fd) + ")");
    }
    return errno_status("cannot lock", lock_path, errno);
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0) return errno_status("cannot truncate", lock_path, errno);
  if (::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return errno_status("cannot write", lock_path, errno);
  }

  // A crash mid-put leaves a temp file behind; it was never renamed, so nothing refers to it.
  const std::string tmp = root + "/tmp";
  for (fs::directory_iterator it(tmp, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code rm_ec;
    fs::remove_all(it->path(), rm_ec);
    if (rm_ec) {
      return status::io_error("cannot remove leftover temp file " + it->path().string() + ": " +
                              rm_ec.message());
    }
  }
  if (ec) return status::io_error("cannot list " + tmp + ": " + ec.message());
  SHOAL_RETURN_IF_ERROR(fsync_dir(root));

  std::unique_ptr<snapshot_store> store;
  try {
    store.reset(new snapshot_store(root));
  } catch (const std::bad_alloc&) {
    return errno_status("cannot open store", root, ENOMEM);
  }
  store->lock_fd_ = lock.release();
  return store;
}

std::string snapshot_store::path_of(const std::string& sha256) const {
  return root_ + "/snapshots/" + sha256.substr(0, 2) + "/" + sha256;
}

bool snapshot_store::contains(const std::string& sha256) const {
  if (!is_hex_digest(sha256)) return false;
  struct stat st;
  return ::stat(path_of(sha256).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

status snapshot_store::remove(const std::string& sha256) {
  if (!is_hex_digest(sha256)) {
    return status::invalid_argument("'" + sha256.substr(0, 80) + "' is not a SHA-256 digest");
  }
  const std::string path = path_of(sha256);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return status::ok();
    return status::io_error("cannot remove " + path + ": " + std::strerror(errno));
  }
  auto slash = path.rfind('/');
  return fsync_dir(path.substr(0, slash));
}

result<std::string> snapshot_store::get(const std::string& sha256) const {
  if (!is_hex_digest(sha256)) {
    return status::invalid_argument("'" + sha256.substr(0, 80) +
                                    "' is not a SHA-256 digest (64 lower-case hex digits)");
  }
  const std::string path = path_of(sha256);
  auto bytes = read_whole_file(path);
  if (!bytes) {
    if (bytes.error().code() == status_code::not_found) {
      return status::not_found("no snapshot " + sha256 + " in " + root_ + " (no file " + path +
                               ")");
    }
    return bytes.error();
  }
  std::string actual = sha256_hex(*bytes);
  if (actual != sha256) {
    return status::corruption("snapshot file " + path + " is corrupt: its SHA-256 is " + actual +
                              ", expected " + sha256);
  }
  return std::move(bytes).value();
}

result<std::string> snapshot_store::put(std::string_view bytes) {
  try {
    const std::string sha = sha256_hex(bytes);
    if (sha.empty()) return status::internal("SHA-256 failed in libcrypto");
    const std::string final_path = path_of(sha);

    struct stat st;
    if (::stat(final_path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        static_cast<uint64_t>(st.st_size) == bytes.size()) {
      // Already stored; a damaged copy (same size, other bytes) is replaced below.
      if (get(sha).is_ok()) return sha;
    }

    std::string tmp_path = root_ + "/tmp/put-XXXXXX";
    int fd = ::mkstemp(tmp_path.data());
    if (fd < 0) return errno_status("cannot create temp file in", root_ + "/tmp", errno);
    fd_guard file(fd);
    auto fail = [&](status s) {
      ::close(file.release());
      ::unlink(tmp_path.c_str());
      return s;
    };
    if (::fchmod(fd, 0644) != 0) return fail(errno_status("cannot chmod", tmp_path, errno));
    status w = write_all(fd, bytes, tmp_path);
    if (!w) return fail(w);
    if (::fsync(fd) != 0) return fail(errno_status("cannot sync", tmp_path, errno));
    if (::close(file.release()) != 0) {
      int err = errno;
      ::unlink(tmp_path.c_str());
      return errno_status("cannot close", tmp_path, err);
    }

    const std::string shard = root_ + "/snapshots/" + sha.substr(0, 2);
    bool created = false;
    status d = make_dir(shard, &created);
    if (d && created) d = fsync_dir(root_ + "/snapshots");
    if (!d) {
      ::unlink(tmp_path.c_str());
      return d;
    }
    if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp_path.c_str());
      return errno_status("cannot rename " + tmp_path + " to", final_path, err);
    }
    SHOAL_RETURN_IF_ERROR(fsync_dir(shard));
    return sha;
  } catch (const std::bad_alloc&) {
    return errno_status("cannot store snapshot in", root_, ENOMEM);
  }
}

result<snapshot_store::staged> snapshot_store::stage(std::string_view bytes) {
  try {
    staged out;
    out.sha256 = sha256_hex(bytes);
    if (out.sha256.empty()) return status::internal("SHA-256 failed in libcrypto");
    struct stat st;
    if (::stat(path_of(out.sha256).c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        static_cast<uint64_t>(st.st_size) == bytes.size() && get(out.sha256).is_ok()) {
      return out;  // stored already (a damaged copy is replaced like put() does)
    }
    out.tmp_path = root_ + "/tmp/stage-XXXXXX";
    int fd = ::mkstemp(out.tmp_path.data());
    if (fd < 0) return errno_status("cannot create temp file in", root_ + "/tmp", errno);
    fd_guard file(fd);
    status w = ::fchmod(fd, 0644) == 0 ? write_all(fd, bytes, out.tmp_path)
                                       : errno_status("cannot chmod", out.tmp_path, errno);
    if (::close(file.release()) != 0 && w) w = errno_status("cannot close", out.tmp_path, errno);
    if (!w) {
      ::unlink(out.tmp_path.c_str());
      return w;
    }
    return out;
  } catch (const std::bad_alloc&) {
    return errno_status("cannot stage snapshot in", root_, ENOMEM);
  }
}

void snapshot_store::discard(const staged& s) {
  if (!s.tmp_path.empty()) ::unlink(s.tmp_path.c_str());
}

status snapshot_store::store_staged(const std::vector<staged>& batch) {
  auto fail = [&](status why) {
    for (const auto& s : batch) discard(s);
    return why;
  };
  auto sync_all = [&]() -> status {
    // syncfs: every dirty file and directory of this file system, with one flush of the disk.
    if (::syncfs(lock_fd_) != 0) return errno_status("cannot sync the file system of", root_, errno);
    return status::ok();
  };
  bool any = false;
  for (const auto& s : batch) any = any || !s.tmp_path.empty();
  if (!any) return status::ok();
  // The bytes durable before any name points at them...
  if (status synced = sync_all(); !synced) return fail(synced);
  // ...then in place (a shard directory made here is new too)...
  for (const auto& s : batch) {
    if (s.tmp_path.empty()) continue;
    bool created = false;
    if (status d = make_dir(root_ + "/snapshots/" + s.sha256.substr(0, 2), &created); !d) {
      return fail(d);
    }
    if (::rename(s.tmp_path.c_str(), path_of(s.sha256).c_str()) != 0) {
      return fail(errno_status("cannot rename " + s.tmp_path + " to", path_of(s.sha256), errno));
    }
  }
  // ...and the names durable. A failure here leaves whole, verified-on-read files in place
  // that nothing in the catalog names yet; the same push again finds them stored.
  return sync_all();
}

result<std::string> snapshot_store::node_id() {
  const std::string path = root_ + "/node-id";
  auto valid = [](const std::string& id) {
    if (id.size() != 32) return false;
    for (char c : id) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
  };
  {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      fd_guard guard(fd);
      char buf[64];
      ssize_t n = ::read(fd, buf, sizeof buf);
      std::string id = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
      while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
      if (!valid(id)) {
        return status::corruption(path + " does not hold a node id (32 hex digits); delete it to "
                                  "get a new one");
      }
      return id;
    }
    if (errno != ENOENT) return errno_status("cannot read", path, errno);
  }
  std::string bytes(16, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), 16) != 1) {
    return status::internal("cannot draw random bytes for a node id (libcrypto RAND_bytes)");
  }
  static const char* hex = "0123456789abcdef";
  std::string id;
  for (unsigned char c : bytes) {
    id += hex[c >> 4];
    id += hex[c & 15];
  }
  std::string tmp_path = root_ + "/tmp/node-id-XXXXXX";
  int fd = ::mkstemp(tmp_path.data());
  if (fd < 0) return errno_status("cannot create temp file in", root_ + "/tmp", errno);
  fd_guard file(fd);
  status w = write_all(fd, id + "\n", tmp_path);
  if (w && ::fsync(fd) != 0) w = errno_status("cannot sync", tmp_path, errno);
  if (w && ::fchmod(fd, 0644) != 0) w = errno_status("cannot chmod", tmp_path, errno);
  ::close(file.release());
  if (w && ::rename(tmp_path.c_str(), path.c_str()) != 0) {
    w = errno_status("cannot rename " + tmp_path + " to", path, errno);
  }
  if (!w) {
    ::unlink(tmp_path.c_str());
    return w;
  }
  SHOAL_RETURN_IF_ERROR(fsync_dir(root_));
  return id;
}

}  // namespace shoal
