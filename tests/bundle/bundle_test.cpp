// Packaging. The on-premise bundle (scripts/bundle.sh) on a system that has none of Shoal's build
// dependencies and an older C library than the build's: a minimal Debian 11 root (glibc 2.31;
// debootstrap minbase, cached between runs by scripts/debian-root.sh). Inside it (chroot), the
// bundle's loader resolves every library, glibc's included, from the bundle, and a 3-node cluster
// started from the bundle's binary and config examples takes a pushed model and serves it from
// every node, each node mapping the bundle's libc. The .deb, which uses the system's libraries,
// is installed into a Debian 12 root. Needs root (chroot, mounting /proc in the root).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/node_process.hpp"

namespace shoal::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : fallback;
}

// A scratch copy at `root` of the cached minimal Debian root of `suite` (bookworm, bullseye;
// scripts/debian-root.sh makes it on first use): the tests change what they install into it.
::testing::AssertionResult copy_minimal_root(const std::string& source, const std::string& suite,
                                             const std::string& root) {
  auto cached = run_program(source + "/scripts/debian-root.sh", {suite}, {}, 900s);
  if (cached.exit_code != 0) {
    return ::testing::AssertionFailure() << "scripts/debian-root.sh: " << cached.err;
  }
  auto copied = run_program("cp", {"-a", cached.out.substr(0, cached.out.find('\n')), root});
  if (copied.exit_code != 0) return ::testing::AssertionFailure() << "cp -a: " << copied.err;
  return ::testing::AssertionSuccess();
}

// /proc mounted in the root while the test runs, as on any real system (the node reads
// /proc/meminfo for its default model memory, /proc/self/statm for its metrics); unmounted before
// the root is removed.
struct proc_mount {
  std::string at;
  bool mounted = false;
  explicit proc_mount(std::string path) : at(std::move(path)) {
    mounted = ::mount("proc", at.c_str(), "proc", 0, nullptr) == 0;
  }
  ~proc_mount() {
    if (mounted && ::umount(at.c_str()) != 0) ::umount2(at.c_str(), MNT_DETACH);
  }
};

// A node started from the bundle inside the root; SIGTERM and wait on destruction.
struct bundled_node {
  pid_t pid = -1;
  uint16_t http = 0, zmq = 0, cluster = 0;
  std::string log;
  ~bundled_node() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      wait_for(pid, 15s);
    }
  }
};

TEST(bundle, runs_a_cluster_in_a_debian_11_root_with_its_own_c_library_and_nothing_from_outside) {
  ASSERT_EQ(::geteuid(), 0u) << "this test needs root: chroot and mount /proc in the test root";
  const std::string source = env_or("SHOAL_SOURCE_DIR", ".");
  temp_dir work;

  // The bundle, from the binary under test.
  auto bundled = run_program(source + "/scripts/bundle.sh",
                             {"--binary", shoal_bin(), "--out", work.path()}, {}, 600s);
  ASSERT_EQ(bundled.exit_code, 0) << bundled.out << bundled.err;
  const std::string tarball = work.path() + "/shoal-" SHOAL_VERSION "-linux-x86_64.tar.gz";
  ASSERT_FALSE(read_file(tarball).empty()) << bundled.out;

  // A scratch copy of the cached minimal root, with the bundle unpacked at /opt/shoal.
  const std::string root = work.path() + "/root";
  ASSERT_TRUE(copy_minimal_root(source, "bullseye", root));
  ASSERT_EQ(run_program("tar", {"-xzf", tarball, "-C", root + "/opt"}).exit_code, 0);
  ASSERT_EQ(::rename((root + "/opt/shoal-" SHOAL_VERSION "-linux-x86_64").c_str(),
                     (root + "/opt/shoal").c_str()),
            0);

  // None of the build dependencies is in the root (Debian 11 has libssl.so.1.1, not .so.3).
  auto found = run_program("find", {root + "/usr", root + "/lib", "-name", "libzmq.so*", "-o",
                                    "-name", "libcaf_core*", "-o", "-name", "libprotobuf.so*", "-o",
                                    "-name", "libopenblas*", "-o", "-name", "libssl.so.3*"});
  ASSERT_EQ(found.exit_code, 0) << found.err;
  EXPECT_EQ(found.out, "") << "the test root should not have these";

  // The root's C library is older than the one the binary was linked against: its own loader
  // could not start it.
  auto glibc = run_program("chroot", {root, "getconf", "GNU_LIBC_VERSION"});
  EXPECT_EQ(glibc.out, "glibc 2.31\n") << glibc.err;
  const std::string elf = read_file(root + "/opt/shoal/libexec/shoal");
  EXPECT_NE(elf.find(std::string("GLIBC_2.34") + '\0'), std::string::npos)
      << "the binary needs no glibc newer than 2.31: this root proves nothing";
  // Reached through a symlink, as from a PATH directory: bin/shoal finds the bundle all the same.
  ASSERT_EQ(::symlink("/opt/shoal/bin/shoal", (root + "/usr/local/bin/shoal").c_str()), 0);

  proc_mount proc(root + "/proc");
  ASSERT_TRUE(proc.mounted) << "cannot mount /proc in the test root";

  // The bundle's loader lists what it loads inside the root: everything from /opt/shoal/lib
  // (through the rpath, libexec/../lib), the loader and libc included. (ldd cannot: bin/shoal is
  // a script, and the root's ldd would ask the root's loader.)
  auto listed =
      run_program("chroot", {root, "/opt/shoal/lib/ld-linux-x86-64.so.2", "--list",
                             "--library-path", "/opt/shoal/lib", "/opt/shoal/libexec/shoal"});
  ASSERT_EQ(listed.exit_code, 0) << listed.out << listed.err;
  EXPECT_EQ(listed.out.find("not found"), std::string::npos) << listed.out;
  std::istringstream lines(listed.out);
  std::string line;
  int from_bundle = 0;
  bool own_libc = false;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string soname, arrow, path;
    words >> soname >> arrow >> path;
    if (arrow != "=>") continue;  // the vdso
    if (path.rfind("/opt/shoal/", 0) == 0) {
      ++from_bundle;
      own_libc = own_libc || soname == "libc.so.6";
    } else {
      ADD_FAILURE() << "resolved outside the bundle: " << line;
    }
  }
  EXPECT_GE(from_bundle, 10) << listed.out;
  EXPECT_TRUE(own_libc) << listed.out;

  // A 3-node cluster from the bundle's own config examples (ports and data dirs overridden:
  // free loopback ports, data inside the root).
  ASSERT_TRUE(write_file(root + "/opt/shoal/etc/local-3/secret.txt", "bundle-test-secret-0123456789\n"));
  std::vector<std::unique_ptr<bundled_node>> nodes;
  for (int i = 0; i < 3; ++i) {
    auto n = std::make_unique<bundled_node>();
    n->http = free_port();
    n->zmq = free_port();
    n->cluster = free_port();
    nodes.push_back(std::move(n));
  }
  const std::string seeds = "127.0.0.1:" + std::to_string(nodes[0]->cluster);
  for (int i = 0; i < 3; ++i) {
    auto& n = *nodes[i];
    const std::string name = "n" + std::to_string(i + 1);
    n.log = work.path() + "/" + name + ".log";
    n.pid = spawn_program("chroot",
                          {root,
                           "/opt/shoal/bin/shoal",
                           "node",
                           "--config",
                           "/opt/shoal/etc/local-3/" + name + ".conf",
                           "--data-dir",
                           "/var/lib/shoal/" + name,
                           "--http-port",
                           std::to_string(n.http),
                           "--zmq-port",
                           std::to_string(n.zmq),
                           "--grpc-port",
                           std::to_string(free_port()),
                           "--cluster-port",
                           std::to_string(n.cluster),
                           "--seeds",
                           seeds,
                           "--model-memory-mb",
                           "256",
                           "--http-threads",
                           "2"},
                          "/dev/null", work.path() + "/" + name + ".out", n.log);
  }
  for (auto& n : nodes) {
    bool ready = false;
    for (int tries = 0; tries < 100 && !ready; ++tries) {
      ready = http_call(n->http, "GET", "/v2/health/ready").status == 200;
      if (!ready) std::this_thread::sleep_for(100ms);
    }
    ASSERT_TRUE(ready) << read_file(n->log);
    // The running node's C library is the bundle's (the node is chroot's process id: chroot, the
    // sh of bin/shoal and the loader each exec the next).
    const std::string maps = read_file("/proc/" + std::to_string(n->pid) + "/maps");
    std::istringstream mapped(maps);
    std::set<std::string> libcs;
    while (std::getline(mapped, line)) {
      if (line.size() > 10 && line.compare(line.size() - 10, 10, "/libc.so.6") == 0) {
        libcs.insert(line.substr(line.find('/')));
      }
    }
    EXPECT_EQ(libcs, std::set<std::string>{root + "/opt/shoal/lib/libc.so.6"}) << maps;
  }
  auto cli = [&](std::vector<std::string> args, uint16_t zmq) {
    std::vector<std::string> full = {root, "/usr/local/bin/shoal"};
    full.insert(full.end(), args.begin(), args.end());
    full.push_back("--node");
    full.push_back("127.0.0.1:" + std::to_string(zmq));
    return run_program("chroot", full);
  };
  // All three see each other.
  bool all_alive = false;
  run_result status;
  for (int tries = 0; tries < 100 && !all_alive; ++tries) {
    status = cli({"cluster", "status"}, nodes[2]->zmq);
    size_t alive = 0;
    for (size_t at = status.out.find(" alive"); at != std::string::npos;
         at = status.out.find(" alive", at + 1)) {
      ++alive;
    }
    all_alive = status.exit_code == 0 && alive >= 3;
    if (!all_alive) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(all_alive) << status.out << status.err;

  // A model trained here, pushed with the bundle's CLI inside the root, served by every node.
  temp_dir models;
  const std::string model = train_fasttext(
      models.path(), "bot", read_file(source + "/examples/intents-v1.txt"),
      {"-epoch", "25", "-lr", "0.5", "-dim", "16", "-bucket", "20000", "-wordNgrams", "2"});
  ASSERT_FALSE(model.empty());
  ASSERT_TRUE(write_file(root + "/tmp/bot.bin", read_file(model)));
  auto pushed = cli({"snapshot", "push", "acme/bot", "/tmp/bot.bin"}, nodes[1]->zmq);
  ASSERT_EQ(pushed.exit_code, 0) << pushed.out << pushed.err;
  const std::string body =
      R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["where is my parcel"]}]})";
  for (auto& n : nodes) {
    http_response r;
    for (int tries = 0; tries < 50; ++tries) {  // the catalog reaches every node within a moment
      r = http_call(n->http, "POST", "/v2/models/acme/bot/infer", body);
      if (r.status == 200) break;
      std::this_thread::sleep_for(100ms);
    }
    ASSERT_EQ(r.status, 200) << r.body << read_file(n->log);
    auto j = json::parse(r.body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.body;
    EXPECT_EQ(j["model_name"], "acme/bot");
    EXPECT_FALSE(j["outputs"][0]["data"][0].get<std::string>().empty()) << r.body;
  }
}

// The .deb (CPack, from this build directory): lintian finds no errors; it holds the binary, a
// conffile config, the systemd unit; installed into a minimal Debian root (dependencies forced:
// this tests the package's own files and scripts) it makes the shoal system user and
// /var/lib/shoal, and a purge removes them again.
TEST(deb, passes_lintian_and_installs_a_user_a_config_and_a_unit_and_purges_clean) {
  ASSERT_EQ(::geteuid(), 0u) << "this test needs root: chroot into the test root";
  const std::string source = env_or("SHOAL_SOURCE_DIR", ".");
  const std::string build = env_or("SHOAL_BUILD_DIR", "");
  ASSERT_FALSE(build.empty()) << "run through ctest (SHOAL_BUILD_DIR)";
  temp_dir work;
  auto packed = run_program("cpack", {"-G", "DEB", "--config", build + "/CPackConfig.cmake", "-B",
                                      work.path()},
                            {}, 600s);
  ASSERT_EQ(packed.exit_code, 0) << packed.out << packed.err;
  const std::string deb = work.path() + "/shoal_" SHOAL_VERSION "_amd64.deb";
  ASSERT_FALSE(read_file(deb).empty()) << packed.out;

  auto lint = run_program("lintian", {"--no-tag-display-limit", deb}, {}, 300s);
  ASSERT_NE(lint.exit_code, -1) << "lintian: " << lint.err << " (scripts/deps.sh test installs it)";
  std::istringstream tags(lint.out);
  std::string tag;
  while (std::getline(tags, tag)) EXPECT_NE(tag.rfind("E: ", 0), 0u) << tag;

  auto contents = run_program("dpkg-deb", {"-c", deb});
  ASSERT_EQ(contents.exit_code, 0) << contents.err;
  for (const char* path : {"./usr/bin/shoal", "./etc/shoal/node.conf",
                           "./lib/systemd/system/shoal.service",
                           "./usr/share/doc/shoal/copyright",
                           "./usr/share/man/man1/shoal.1.gz"}) {
    EXPECT_NE(contents.out.find(std::string(path) + "\n"), std::string::npos) << path;
  }
  auto conffiles = run_program("dpkg-deb", {"-I", deb, "conffiles"});
  EXPECT_EQ(conffiles.out, "/etc/shoal/node.conf\n");

  const std::string root = work.path() + "/root";
  ASSERT_TRUE(copy_minimal_root(source, "bookworm", root));
  ASSERT_TRUE(write_file(root + "/tmp/shoal.deb", read_file(deb)));
  auto installed = run_program("chroot", {root, "dpkg", "--force-depends", "-i", "/tmp/shoal.deb"});
  ASSERT_EQ(installed.exit_code, 0) << installed.out << installed.err;
  auto user = run_program("chroot", {root, "getent", "passwd", "shoal"});
  EXPECT_EQ(user.exit_code, 0) << "no shoal user";
  EXPECT_NE(user.out.find(":/var/lib/shoal:/usr/sbin/nologin"), std::string::npos) << user.out;
  auto owner = run_program("chroot", {root, "stat", "-c", "%U:%G %a", "/var/lib/shoal"});
  EXPECT_EQ(owner.out, "shoal:shoal 750\n") << owner.err;
  const std::string conf = read_file(root + "/etc/shoal/node.conf");
  EXPECT_NE(conf.find("\ndata_dir = /var/lib/shoal\n"), std::string::npos) << conf;
  const std::string unit = read_file(root + "/lib/systemd/system/shoal.service");
  EXPECT_NE(unit.find("ExecStart=/usr/bin/shoal node --config /etc/shoal/node.conf\n"),
            std::string::npos)
      << unit;
  EXPECT_NE(unit.find("User=shoal\n"), std::string::npos) << unit;

  auto purged = run_program("chroot", {root, "dpkg", "--purge", "shoal"});
  ASSERT_EQ(purged.exit_code, 0) << purged.out << purged.err;
  EXPECT_NE(run_program("chroot", {root, "getent", "passwd", "shoal"}).exit_code, 0);
  EXPECT_NE(run_program("chroot", {root, "test", "-e", "/var/lib/shoal"}).exit_code, 0);
  EXPECT_NE(run_program("chroot", {root, "test", "-e", "/usr/bin/shoal"}).exit_code, 0);
}

}  // namespace
}  // namespace shoal::testing
