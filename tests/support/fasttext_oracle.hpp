// fasttext_oracle: the real fastText tool as the test oracle for our fastText runtime. It runs
// `fasttext supervised|cbow|quantize|predict-prob` as child processes (run_program, process.hpp) on
// files in a temporary directory (temp_dir, files.hpp), and builds the deterministic synthetic
// chatbot-intent corpus and the probe texts the parity tests feed to both implementations.
// Thread-safety: the functions keep no state; run them from one thread at a time per directory.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "support/files.hpp"
#include "support/process.hpp"

namespace shoal::testing {

/// Returns the fastText tool to run: $FASTTEXT_BIN, else /usr/bin/fasttext.
std::string fasttext_tool();

/// One prediction as the tool prints it: the label with its prefix, and p + 1e-5.
struct tool_prediction {
  std::string label;
  double prob = 0;
};

/// Runs `fasttext predict-prob model - k` with one text per line (a text must not hold '\n').
/// Returns one list per text; on failure returns nothing and sets `error`.
std::vector<std::vector<tool_prediction>> predict_prob(const std::string& model_path,
                                                       const std::vector<std::string>& texts, int k,
                                                       std::string& error);

/// Trains `fasttext <command> -input input -output prefix args...` (quiet, one thread).
/// Returns prefix + ".bin", or "" with `error` set.
std::string train(const std::string& command, const std::string& input, const std::string& prefix,
                  const std::vector<std::string>& args, std::string& error);

/// Quantizes the supervised model `bin` as `fasttext quantize -input input -output prefix
/// -thread 1 -verbose 0 args...` does (the tool reads prefix + ".bin", so `bin` is copied there
/// first unless it is that file; -input is only read with -retrain). Returns prefix + ".ftz", or
/// "" with `error` set.
std::string quantize(const std::string& bin, const std::string& input, const std::string& prefix,
                     const std::vector<std::string>& args, std::string& error);

/// The intents the corpus uses (label names without prefix).
std::vector<std::string> intent_names();

/// Returns a deterministic synthetic chatbot-intent training set in fastText's format: `lines`
/// lines of "<prefix><intent> text" (a few carry two labels) with varied phrasing, punctuation,
/// digits, typos, emoji and Cyrillic, Greek, CJK and Arabic lines. With a prefix other than the
/// default, '#' never appears in a text (it would turn order numbers into labels).
std::string intent_corpus(uint32_t seed, std::string_view label_prefix, size_t lines);

/// Returns a deterministic training set with many labels ("__label__topic<N>"), each with its own
/// made-up keywords (Latin and Cyrillic syllables), mixed with shared filler words: enough labels
/// that the output layer is large.
std::string many_label_corpus(uint32_t seed, size_t labels, size_t lines_per_label);

/// Returns texts for many_label_corpus models: keyword mixes of several topics, plus unseen words.
std::vector<std::string> many_label_probes(uint32_t seed, size_t labels);

/// Returns texts to predict: fresh phrasings of every intent (from `seed`) and hand-picked hard
/// cases: empty and blank lines, unseen words, punctuation, digits, other scripts, emoji, very long
/// words and lines, invalid UTF-8, tokens that look like labels. None holds '\n' or "</s>".
std::vector<std::string> probe_texts(uint32_t seed);

}  // namespace shoal::testing
