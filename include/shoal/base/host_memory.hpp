// host_memory: the machine's memory as /proc/meminfo tells it: MemTotal sets the default model
// memory budget, MemAvailable caps the free model memory a node gossips (its budget may promise
// more than the machine still has).
// Thread-safety: pure functions; read_available_memory() reads a /proc file (no disk I/O).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace shoal {

/// Returns `field` ("MemTotal") in bytes from the text of /proc/meminfo, or nullopt if it is
/// missing or not in kB.
std::optional<uint64_t> parse_meminfo(const std::string& meminfo, const std::string& field);

/// Returns MemAvailable in bytes from the text of /proc/meminfo, or nullopt if it is missing.
std::optional<uint64_t> parse_mem_available(const std::string& meminfo);

/// Returns MemAvailable in bytes, read from /proc/meminfo now; nullopt where there is none.
std::optional<uint64_t> read_available_memory();

/// Returns MemTotal in bytes, read from /proc/meminfo now; nullopt where there is none.
std::optional<uint64_t> read_total_memory();

/// Returns `bytes` for people: "512M", "1.5G", "900K".
std::string bytes_text(uint64_t bytes);

}  // namespace shoal
