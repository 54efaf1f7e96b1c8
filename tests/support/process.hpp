// Child processes for tests: start a program with its standard streams on files, wait for it with
// a deadline, or run it to completion and capture what it printed. Shared by every test suite
// (namespace shoal::testing).
// Thread-safety: no shared state; wait for a child from the thread that started it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::testing {

/// What a child process did.
struct run_result {
  int exit_code = -1;  // 128 + signal when a signal ended it; -1 when it could not start
  std::string out;
  std::string err;
};

/// Starts `program args...` (looked up in $PATH when it holds no '/') with stdin read from
/// `in_path`, stdout truncated into `out_path` and stderr appended to `err_path`, with no signal
/// blocked. Returns its pid; throws std::runtime_error when it cannot start.
pid_t spawn_program(const std::string& program, const std::vector<std::string>& args,
                    const std::string& in_path, const std::string& out_path,
                    const std::string& err_path);

/// Waits for the child `pid` up to `timeout` and kills it (SIGKILL) when it overstays. Returns
/// the wait status as from waitpid.
int wait_for(pid_t pid, std::chrono::milliseconds timeout);

/// Runs `program args...` with `input` on its stdin, waits up to `timeout` (then kills it) and
/// captures its stdout and stderr. Never throws: when the program cannot start, exit_code is -1
/// and err says why.
run_result run_program(const std::string& program, const std::vector<std::string>& args,
                       std::string_view input = {},
                       std::chrono::seconds timeout = std::chrono::seconds(120));

}  // namespace shoal::testing
