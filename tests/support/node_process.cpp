// Test support for process-level tests: shoal nodes, CLI runs and raw HTTP (see node_process.hpp).
#include "support/node_process.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace shoal::testing {
namespace fs = std::filesystem;

namespace {

// True if TCP `port` on loopback can be bound right now.
bool bindable(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

// The first port of the kernel's ephemeral range (outgoing connections take their local port
// from it): 32768 when the file cannot be read.
int ephemeral_low() {
  std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0, high = 0;
  if (f >> low >> high && low > 0) return low;
  return 32768;
}

}  // namespace

uint16_t free_port() {
  // Below the ephemeral range: a port the OS hands out for "port 0" is also what it hands to
  // outgoing connections, and with many tests connecting at once one of them could take it
  // between our check and the node's bind. Random, so concurrent test processes rarely meet.
  static std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(::getpid()));
  const int low = 10000;
  const int high = std::max(low + 1000, ephemeral_low()) - 1;
  std::uniform_int_distribution<int> pick(low, high);
  for (int i = 0; i < 1000; ++i) {
    const auto port = static_cast<uint16_t>(pick(rng));
    if (bindable(port)) return port;
  }
  throw std::runtime_error("no free loopback port below the ephemeral range");
}

std::string shoal_bin() {
  const char* bin = std::getenv("SHOAL_BIN");
  if (bin == nullptr) throw std::runtime_error("SHOAL_BIN is not set (run through ctest)");
  return bin;
}

namespace {

int connect_loopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string read_until_close(int fd, std::chrono::milliseconds timeout) {
  std::string out;
  char buf[65536];
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void send_all(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;  // the peer may close early (e.g. 413); the reply tells the rest
    off += static_cast<size_t>(n);
  }
}

}  // namespace

run_result run_shoal(const std::vector<std::string>& args, std::chrono::seconds timeout) {
  return run_program(shoal_bin(), args, "", timeout);
}

std::optional<double> metric_value(const std::string& exposition, const std::string& series) {
  const std::string line_start = series + " ";
  for (size_t at = exposition.find(line_start); at != std::string::npos;
       at = exposition.find(line_start, at + 1)) {
    if (at == 0 || exposition[at - 1] == '\n') {
      return std::stod(exposition.substr(at + line_start.size()));
    }
  }
  return std::nullopt;
}

http_response http_call(uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body, const std::string& extra_headers) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!body.empty() || method == "POST") {
    req +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += extra_headers + "\r\n" + body;
  http_response r;
  int fd = connect_loopback(port);
  if (fd < 0) return r;
  send_all(fd, req);
  std::string raw = read_until_close(fd, std::chrono::milliseconds(10000));
  ::close(fd);
  auto head_end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos) return r;
  r.status = std::atoi(raw.c_str() + 9);
  r.headers = raw.substr(0, head_end);
  r.body = raw.substr(head_end + 4);
  return r;
}

std::string raw_exchange(uint16_t port, const std::string& bytes,
                         std::chrono::milliseconds timeout) {
  int fd = connect_loopback(port);
  if (fd < 0) return "";
  send_all(fd, bytes);
  std::string out = read_until_close(fd, timeout);
  ::close(fd);
  return out;
}

node_process::node_process(std::string data_dir, std::vector<std::string> extra_args,
                           uint16_t cluster_port)
    : data_dir_(std::move(data_dir)),
      extra_args_(std::move(extra_args)),
      http_port_(free_port()),
      zmq_port_(free_port()),
      grpc_port_(free_port()),
      cluster_port_(cluster_port != 0 ? cluster_port : free_port()) {
  log_path_ = data_dir_ + ".log";
  spawn();
}

node_process::~node_process() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  fs::remove(log_path_, ec);
}

std::string node_process::node_addr() const { return "127.0.0.1:" + std::to_string(zmq_port_); }

std::string node_process::log() const { return read_file(log_path_); }

bool node_process::alive() {
  if (pid_ <= 0) return false;
  int st = 0;
  if (::waitpid(pid_, &st, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

void node_process::spawn() {
  std::vector<std::string> args = {"node",
                                   "--data-dir",
                                   data_dir_,
                                   "--http-port",
                                   std::to_string(http_port_),
                                   "--zmq-port",
                                   std::to_string(zmq_port_),
                                   "--grpc-port",
                                   std::to_string(grpc_port_),
                                   "--cluster-port",
                                   std::to_string(cluster_port_)};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  pid_ = spawn_program(shoal_bin(), args, "/dev/null", "/dev/null", log_path_);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!alive()) throw std::runtime_error("node exited during start-up:\n" + log());
    if (http_call(http_port_, "GET", "/v2/health/ready").status == 200) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("node did not become ready within 20 s:\n" + log());
}

void node_process::send_signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int node_process::stop(int sig) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  int st = wait_for(pid_, std::chrono::milliseconds(15000));
  pid_ = -1;
  return st;
}

void node_process::restart() {
  if (pid_ > 0) stop(SIGKILL);
  spawn();
}

run_result node_process::cli(std::vector<std::string> args) const {
  args.push_back("--node");
  args.push_back(node_addr());
  return run_shoal(args);
}

std::string train_fasttext(const std::string& dir, const std::string& name,
                           const std::string& training_text,
                           const std::vector<std::string>& options) {
  const char* tool = std::getenv("FASTTEXT_BIN");
  std::string bin = tool != nullptr ? tool : "/usr/bin/fasttext";
  std::string input = dir + "/" + name + ".txt";
  write_file(input, training_text);
  std::vector<std::string> args = {"supervised", "-input", input,   "-output", dir + "/" + name,
                                   "-thread",    "1",      "-seed", "1",       "-verbose",
                                   "0"};
  args.insert(args.end(), options.begin(), options.end());
  auto r = run_program(bin, args);
  if (r.exit_code != 0) throw std::runtime_error("fasttext training failed: " + r.err);
  return dir + "/" + name + ".bin";
}

std::vector<std::string> fasttext_predict_prob(const std::string& model_path,
                                               const std::vector<std::string>& texts, int k) {
  const char* tool = std::getenv("FASTTEXT_BIN");
  std::string bin = tool != nullptr ? tool : "/usr/bin/fasttext";
  std::string input;
  for (const auto& t : texts) input += t + "\n";
  auto r = run_program(bin, {"predict-prob", model_path, "-", std::to_string(k)}, input);
  if (r.exit_code != 0) throw std::runtime_error("fasttext predict-prob failed: " + r.err);
  std::vector<std::string> lines;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::pair<std::string, std::string>> snapshot_files(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file())
      out.emplace_back(it->path().string(), read_file(it->path().string()));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace shoal::testing
