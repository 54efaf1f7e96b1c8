#include "shoal/base/host_memory.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace shoal {

std::optional<uint64_t> parse_meminfo(const std::string& meminfo, const std::string& field) {
  std::istringstream in(meminfo);
  std::string line;
  const std::string head = field + ":";
  while (std::getline(in, line)) {
    if (line.rfind(head, 0) != 0) continue;
    const char* p = line.c_str() + head.size();
    char* end = nullptr;
    unsigned long long kib = std::strtoull(p, &end, 10);
    if (end == p) return std::nullopt;
    while (*end == ' ') ++end;
    if (std::string(end) != "kB") return std::nullopt;
    return static_cast<uint64_t>(kib) * 1024;
  }
  return std::nullopt;
}

std::optional<uint64_t> parse_mem_available(const std::string& meminfo) {
  return parse_meminfo(meminfo, "MemAvailable");
}

namespace {
std::optional<uint64_t> read_meminfo(const std::string& field) {
  std::ifstream f("/proc/meminfo");
  if (!f) return std::nullopt;
  std::stringstream text;
  text << f.rdbuf();
  return parse_meminfo(text.str(), field);
}
}  // namespace

std::optional<uint64_t> read_available_memory() { return read_meminfo("MemAvailable"); }

std::optional<uint64_t> read_total_memory() { return read_meminfo("MemTotal"); }

std::string bytes_text(uint64_t bytes) {
  const char* units[] = {"", "K", "M", "G", "T"};
  double v = static_cast<double>(bytes);
  size_t u = 0;
  while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(bytes));
  } else if (v < 10) {
    std::snprintf(buf, sizeof buf, "%.1f%s", v, units[u]);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f%s", v, units[u]);
  }
  return buf;
}

}  // namespace shoal
