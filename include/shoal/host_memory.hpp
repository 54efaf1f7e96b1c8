// host_memory: how much memory this machine can still give to models. Until nodes have a model
// memory budget of their own, a node gossips the kernel's estimate of available memory
// (MemAvailable in /proc/meminfo) as its free model memory.
// Thread-safety: pure functions; read_available_memory() reads a /proc file (no disk I/O).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace shoal {

/// Returns MemAvailable in bytes from the text of /proc/meminfo, or nullopt if it is missing.
std::optional<uint64_t> parse_mem_available(const std::string& meminfo);

/// Returns MemAvailable in bytes, read from /proc/meminfo now; nullopt where there is none.
std::optional<uint64_t> read_available_memory();

/// Returns `bytes` for people: "512M", "1.5G", "900K".
std::string bytes_text(uint64_t bytes);

}  // namespace shoal
