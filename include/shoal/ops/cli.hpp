// cli: every `shoal` command except `shoal node` (main.cpp runs that one). Each command is one
// ZeroMQ call to a node: `snapshot push|list|promote|rollback`, `models`, `infer`,
// `cluster status`; `snapshot push-dir` is one push per file of a directory.
//
// Split in two so the parsing is testable without a node: parse_cli turns arguments into a
// cli_command (or a usage error), run_cli executes it and prints.
// Exit codes: 0 success; 1 the node refused or could not be reached (one line "shoal: <why>" on
// stderr); 2 a usage error (one line "shoal: <command>: <what>" then "try 'shoal <command>
// --help'"). Nothing else is ever written to stderr, except push's note on copies and push-dir's
// progress line and list of failures. Thread-safety: pure functions, apart from
// run_cli's I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shoal/base/model_id.hpp"
#include "shoal/base/status.hpp"

namespace shoal {

/// The node a command talks to when neither --node nor SHOAL_NODE says otherwise.
inline constexpr const char* default_node_address = "127.0.0.1:7421";
/// How long a command waits for the node's answer without --timeout.
inline constexpr std::chrono::milliseconds default_cli_timeout{10'000};
/// The same for a push, which carries a whole model file.
inline constexpr std::chrono::milliseconds default_push_timeout{60'000};

/// What the process environment contributes to parsing (passed in, so tests need no setenv).
struct cli_env {
  std::string shoal_node;  // $SHOAL_NODE; empty when unset
  std::string shoal_key;   // $SHOAL_KEY; empty when unset
  std::string user;        // $USER: who pushes and moves labels, unless --user says
  bool stderr_is_tty = false;  // progress redraws one line on a terminal, else prints lines
};

/// One parsed command line.
struct cli_command {
  enum class kind : uint8_t {
    help,
    push,
    push_dir,
    list,
    models,
    promote,
    rollback,
    infer,
    cluster_status,
    show,
    validate,
    validation_set,
    validation_rollback,
    policy_set,
    policy_show,
    shadow,
    canary,
    cluster_forget
  };
  kind what = kind::help;
  /// The command's name as typed, "snapshot promote"; for help, the command whose help to print
  /// ("" for `shoal --help`, "snapshot" for the snapshot group).
  std::string name;
  std::string node = default_node_address;  // HOST:PORT, already checked
  std::chrono::milliseconds timeout = default_cli_timeout;
  std::string api_key;              // --key, else $SHOAL_KEY; "" = none
  bool json = false;                // push, list, models, infer, cluster status
  model_id id;                      // all but models and push-dir
  std::string tenant;               // push-dir
  std::string file;                 // push; push-dir: the directory
  uint32_t jobs = 16;               // push-dir: pushes in flight at once (the node commits
                                    // the ones that arrive together with one fsync)
  std::string label;                // push, promote, rollback, infer; "" = none
  std::string note;                 // push
  // Registry metadata (push, push-dir) and who asks (push, promote, validation set, policy).
  std::string user;
  std::map<std::string, std::string> tags;
  std::string metrics_file;  // --metrics FILE (read when the command runs)
  std::string source;
  // push of an ONNX model with a text front end: --tokenizer KIND --vocab FILE --labels FILE
  // [--scores KIND] [--max-tokens N] [--unk TOKEN] [--cased]; files are read when the command
  // runs. Empty: no front end.
  std::map<std::string, std::string> text_front_end;
  std::string vocab_file, labels_file;
  bool force = false;                           // promote, push: past a refusing validation gate
  std::map<std::string, std::string> settings;  // policy set KEY=VALUE ...
  uint32_t share_ppm = 0;                       // shadow, canary: --share (parts per million)
  bool stop = false;                            // shadow, canary: --stop
  std::optional<uint32_t> version;  // promote VERSION, rollback --to, infer --version
  std::string text;                 // infer
  std::string forget;               // cluster forget NODE
  uint32_t top_k = 1;               // infer --k
};

/// Returns the command `args` (argv without the program name) ask for, or invalid_argument whose
/// message is the usage error line without the "shoal: " prefix ("snapshot promote: VERSION must
/// be a positive integer, got 'x'"). Options may come before or after positionals, as "--opt V" or
/// "--opt=V"; "--" ends the options. --help/-h anywhere wins over every other error once the
/// command is known.
result<cli_command> parse_cli(const std::vector<std::string>& args, const cli_env& env);

/// Returns the line that follows a usage error for `args`: "try 'shoal snapshot promote --help'"
/// (or "try 'shoal --help'" when no command could be recognised).
std::string cli_usage_hint(const std::vector<std::string>& args);

/// Returns the help text of a command name as in cli_command::name ("" for the overview).
std::string cli_help(const std::string& name);

/// Parses and executes `args`, writing results to `out` and errors to `err`; returns the exit code.
int run_cli(const std::vector<std::string>& args, const cli_env& env, std::ostream& out,
            std::ostream& err);

/// Runs argv (argv[0] is the program) with $SHOAL_NODE, stdout and stderr.
int run_cli(int argc, char** argv);

}  // namespace shoal
