// snapshot_store: content-addressed, crash-safe files under a real temp directory.
#include "shoal/store/snapshot_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "support/files.hpp"

namespace shoal {
namespace {

namespace fs = std::filesystem;
using testing::read_file;
using testing::write_file;

// A temp dir whose data_dir() a store can open (and create).
class store_dir : public testing::temp_dir {
 public:
  std::string data_dir() const { return file("data"); }
};

std::unique_ptr<snapshot_store> open_store(const std::string& dir) {
  auto r = snapshot_store::open(dir);
  EXPECT_TRUE(r.is_ok()) << r.error().to_string();
  return r ? std::move(r).value() : nullptr;
}

size_t files_under(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

TEST(snapshot_store, sha256_hex_matches_known_digests) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(std::string("a\0b", 3)), sha256_hex(std::string("a\0b", 3)));
  EXPECT_NE(sha256_hex(std::string("a\0b", 3)), sha256_hex("a"));
}

TEST(snapshot_store, open_creates_the_layout_and_records_the_pid) {
  store_dir t;
  auto store = open_store(t.data_dir());
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(fs::is_directory(t.data_dir() + "/snapshots"));
  EXPECT_TRUE(fs::is_directory(t.data_dir() + "/tmp"));
  EXPECT_EQ(read_file(t.data_dir() + "/LOCK"), std::to_string(::getpid()) + "\n");
}

TEST(snapshot_store, put_then_get_returns_the_same_bytes) {
  store_dir t;
  auto store = open_store(t.data_dir());
  ASSERT_NE(store, nullptr);
  std::string bytes("model\0bytes\xff", 12);
  auto sha = store->put(bytes);
  ASSERT_TRUE(sha.is_ok()) << sha.error().to_string();
  EXPECT_EQ(*sha, sha256_hex(bytes));
  auto back = store->get(*sha);
  ASSERT_TRUE(back.is_ok()) << back.error().to_string();
  EXPECT_EQ(*back, bytes);
}

TEST(snapshot_store, files_are_named_by_their_digest) {
  store_dir t;
  auto store = open_store(t.data_dir());
  ASSERT_NE(store, nullptr);
  auto sha = store->put("abc");
  ASSERT_TRUE(sha.is_ok());
  const std::string expected = t.data_dir() +
                               "/snapshots/ba/"
                               "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  EXPECT_EQ(store->path_of(*sha), expected);
  EXPECT_EQ(read_file(expected), "abc");
  EXPECT_TRUE(store->contains(*sha));
  EXPECT_FALSE(store->contains(sha256_hex("abd")));
  EXPECT_FALSE(store->contains("ba"));
  EXPECT_FALSE(store->contains("../../LOCK"));
  EXPECT_EQ(files_under(t.data_dir() + "/tmp"), 0u) << "no temp file survives a put";
}

TEST(snapshot_store, put_is_idempotent) {
  store_dir t;
  auto store = open_store(t.data_dir());
  ASSERT_NE(store, nullptr);
  auto first = store->put("same bytes");
  ASSERT_TRUE(first.is_ok());
  struct stat before;
  ASSERT_EQ(::stat(store->path_of(*first).c_str(), &before), 0);
  auto second = store->put("same bytes");
  ASSERT_TRUE(second.is_ok());
  EXPECT_EQ(*second, *first);
  struct stat after;
  ASSERT_EQ(::stat(store->path_of(*first).c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino) << "the stored file was not rewritten";
  EXPECT_EQ(files_under(t.data_dir() + "/snapshots"), 1u);
}

TEST(snapshot_store, empty_and_large_snapshots_round_trip) {
  store_dir t;
  auto store = open_store(t.data_dir());
  ASSERT_NE(store, nullptr);
  std::string large(3 << 20, '\0');
  for (size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>(i * 31 + (i >> 12));
  for (const std::string& bytes : {std::string(), large}) {
    auto sha = store->put(bytes);
    ASSERT_TRUE(sha.is_ok()) << sha.error().to_string();
    auto back = store->get(*sha);
    ASSERT_TRUE(back.is_ok()) << back.error().to_string();
    EXPECT_EQ(back->size(), bytes.size());
    EXPECT_TRUE(*back == bytes);
  }
}

TEST(snapshot_store, get_of_an_absent_digest_is_not_found) {
  store_dir t;
  auto store = open_store(t.data_dir());
  ASSERT_NE(store, nullptr);
  auto r = store->get(sha256_hex("never stored"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::not_found);
  EXPECT_NE(r.error().message().find(sha256_hex("never stored")), std::string::npos);
}

TEST(snapshot_store, get_of_something_not_a_digest_is_refused) {
  store_dir t;
  auto store = open_store(t.data_dir());
  ASSERT_NE(store, nullptr);
  for (const std::string& bad : {std::string(), std::string("../LOCK"), std::string(64, 'g'),
                                 std::string(64, 'A'), std::string(63, 'a')}) {
    auto r = store->get(bad);
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_EQ(r.error().code(), status_code::invalid_argument) << bad;
  }
}

TEST(snapshot_store, a_flipped_byte_is_reported_as_corruption) {
  store_dir t;
  auto store = open_store(t.data_dir());
  ASSERT_NE(store, nullptr);
  const std::string bytes = "a fasttext model, pretend";
  auto sha = store->put(bytes);
  ASSERT_TRUE(sha.is_ok());
  const std::string path = store->path_of(*sha);
  ::chmod(path.c_str(), 0644);
  std::string damaged = bytes;
  damaged[7] ^= 0x01;
  write_file(path, damaged);

  auto r = store->get(*sha);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::corruption);
  EXPECT_NE(r.error().message().find(path), std::string::npos) << r.error().message();
  EXPECT_TRUE(store->contains(*sha)) << "the file is still there, only damaged";

  auto again = store->put(bytes);
  ASSERT_TRUE(again.is_ok());
  auto repaired = store->get(*sha);
  ASSERT_TRUE(repaired.is_ok()) << "putting the same bytes again replaces a damaged copy";
  EXPECT_EQ(*repaired, bytes);
}

TEST(snapshot_store, a_truncated_file_is_reported_as_corruption) {
  store_dir t;
  auto store = open_store(t.data_dir());
  ASSERT_NE(store, nullptr);
  auto sha = store->put("0123456789");
  ASSERT_TRUE(sha.is_ok());
  ASSERT_EQ(::truncate(store->path_of(*sha).c_str(), 4), 0);
  auto r = store->get(*sha);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::corruption);
}

TEST(snapshot_store, a_second_open_of_the_same_dir_is_refused_with_the_pid) {
  store_dir t;
  auto first = open_store(t.data_dir());
  ASSERT_NE(first, nullptr);
  auto second = snapshot_store::open(t.data_dir());
  ASSERT_FALSE(second.is_ok());
  EXPECT_EQ(second.error().code(), status_code::unavailable);
  EXPECT_EQ(second.error().message(), "data dir " + t.data_dir() +
                                          " is in use by another shoal node (pid " +
                                          std::to_string(::getpid()) + ")");
  first.reset();
  auto third = snapshot_store::open(t.data_dir());
  EXPECT_TRUE(third.is_ok()) << "closing the store releases the lock: "
                             << third.error().to_string();
}

TEST(snapshot_store, a_dir_held_by_another_process_is_refused_with_its_pid) {
  store_dir t;
  int ready[2];
  int release[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(release), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = snapshot_store::open(t.data_dir());
    char c = store.is_ok() ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    (void)!::read(release[0], &c, 1);
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  auto r = snapshot_store::open(t.data_dir());
  (void)!::write(release[1], &c, 1);
  int wstatus = 0;
  ::waitpid(child, &wstatus, 0);
  for (int fd : {ready[0], ready[1], release[0], release[1]}) ::close(fd);

  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::unavailable);
  EXPECT_EQ(r.error().message(), "data dir " + t.data_dir() +
                                     " is in use by another shoal node (pid " +
                                     std::to_string(child) + ")");
  EXPECT_TRUE(snapshot_store::open(t.data_dir()).is_ok()) << "the lock died with its process";
}

TEST(snapshot_store, leftover_temp_files_are_removed_on_open_and_never_become_snapshots) {
  store_dir t;
  const std::string half_written = "half of a model that crashed mid-put";
  {
    auto store = open_store(t.data_dir());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->put("a whole model").is_ok());
  }
  // What a crash between write and rename leaves behind.
  write_file(t.data_dir() + "/tmp/put-Ab12Cd", half_written);
  fs::create_directories(t.data_dir() + "/tmp/stray-dir");
  write_file(t.data_dir() + "/tmp/stray-dir/x", "x");

  auto store = open_store(t.data_dir());
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(fs::is_empty(t.data_dir() + "/tmp"));
  EXPECT_FALSE(store->contains(sha256_hex(half_written)));
  EXPECT_EQ(store->get(sha256_hex(half_written)).error().code(), status_code::not_found);
  EXPECT_TRUE(store->get(sha256_hex("a whole model")).is_ok()) << "stored snapshots survive";
}

TEST(snapshot_store, every_visible_file_is_whole_and_named_by_its_digest) {
  store_dir t;
  auto store = open_store(t.data_dir());
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(
        store->put("model number " + std::to_string(i) + std::string(i * 100, 'x')).is_ok());
  }
  size_t seen = 0;
  for (const auto& e : fs::recursive_directory_iterator(t.data_dir() + "/snapshots")) {
    if (!e.is_regular_file()) continue;
    ++seen;
    const std::string name = e.path().filename().string();
    EXPECT_EQ(sha256_hex(read_file(e.path().string())), name);
    EXPECT_EQ(e.path().parent_path().filename().string(), name.substr(0, 2));
  }
  EXPECT_EQ(seen, 12u);
  EXPECT_TRUE(fs::is_empty(t.data_dir() + "/tmp"));
}

TEST(snapshot_store, a_data_dir_that_is_a_file_is_an_io_error) {
  store_dir t;
  write_file(t.path() + "/file", "not a directory");
  auto r = snapshot_store::open(t.path() + "/file");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::io_error);
  EXPECT_NE(r.error().message().find(t.path() + "/file"), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace shoal

namespace shoal {
namespace {

TEST(snapshot_store, the_node_id_is_created_once_and_kept_across_reopens) {
  store_dir t;
  std::string first;
  {
    auto store = open_store(t.data_dir());
    ASSERT_NE(store, nullptr);
    auto id = store->node_id();
    ASSERT_TRUE(id.is_ok()) << id.error().to_string();
    first = *id;
    EXPECT_EQ(first.size(), 32u);
    EXPECT_EQ(first.find_first_not_of("0123456789abcdef"), std::string::npos) << first;
    EXPECT_EQ(*store->node_id(), first);
  }
  auto store = open_store(t.data_dir());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->node_id(), first);
  EXPECT_EQ(read_file(t.data_dir() + "/node-id"), first + "\n");

  store_dir other;
  auto other_store = open_store(other.data_dir());
  ASSERT_NE(other_store, nullptr);
  EXPECT_NE(*other_store->node_id(), first) << "two data dirs, two ids";
}

TEST(snapshot_store, a_damaged_node_id_is_refused_not_replaced) {
  store_dir t;
  auto store = open_store(t.data_dir());
  ASSERT_NE(store, nullptr);
  write_file(t.data_dir() + "/node-id", "not-an-id\n");
  auto id = store->node_id();
  ASSERT_FALSE(id.is_ok());
  EXPECT_EQ(id.error().code(), status_code::corruption);
  EXPECT_NE(id.error().message().find("delete it"), std::string::npos) << id.error().message();
  EXPECT_EQ(read_file(t.data_dir() + "/node-id"), "not-an-id\n");
}

}  // namespace
}  // namespace shoal
