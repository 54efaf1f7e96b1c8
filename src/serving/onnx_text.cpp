// The text front end of ONNX text models: shoal.* metadata_props, the whitespace and WordPiece
// tokenizers, and appending the props to a serialized model.
#include <algorithm>
#include <cstring>
#include <set>

#include "shoal/serving/onnx_model.hpp"

namespace shoal {
namespace {

constexpr size_t k_prop_limit = size_t(16) << 20;
constexpr size_t k_max_word_chars = 100;  // BERT's max_input_chars_per_word

const std::set<std::string>& known_keys() {
  static const std::set<std::string> keys = {"shoal.tokenizer", "shoal.vocab",      "shoal.labels",
                                             "shoal.unk",       "shoal.max_tokens", "shoal.scores",
                                             "shoal.lowercase"};
  return keys;
}

// Returns the byte length of the whitespace character at s[i], or 0 when there is none: ASCII
// whitespace and Unicode's White_Space characters (NEL, NBSP, U+1680, U+2000..U+200A, the line
// and paragraph separators, U+202F, U+205F, U+3000).
size_t space_at(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  if (c == ' ' || (c >= '\t' && c <= '\r')) return 1;
  if (c < 0xC2) return 0;
  auto at = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0; };
  if (c == 0xC2 && (at(1) == 0x85 || at(1) == 0xA0)) return 2;
  if (c == 0xE1 && at(1) == 0x9A && at(2) == 0x80) return 3;
  if (c == 0xE2 && at(1) == 0x80 &&
      ((at(2) >= 0x80 && at(2) <= 0x8A) || at(2) == 0xA8 || at(2) == 0xA9 || at(2) == 0xAF))
    return 3;
  if (c == 0xE2 && at(1) == 0x81 && at(2) == 0x9F) return 3;
  if (c == 0xE3 && at(1) == 0x80 && at(2) == 0x80) return 3;
  return 0;
}

bool is_ascii_punct(unsigned char c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
         (c >= 123 && c <= 126);
}

bool is_control(unsigned char c) {
  return (c < 32 && c != '\t' && c != '\n' && c != '\r') || c == 127;
}

// Splits `text` into lines ('\n', with a trailing '\r' dropped); a final newline ends the last
// line rather than starting an empty one.
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(at, end - at);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    at = end + 1;
  }
  return out;
}

void put_varint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(char(v | 0x80));
    v >>= 7;
  }
  out->push_back(char(v));
}

void put_bytes_field(std::string* out, int field, std::string_view bytes) {
  put_varint(out, uint64_t(field) << 3 | 2);
  put_varint(out, bytes.size());
  out->append(bytes);
}

// A per-thread buffer for the lowercased text (predict allocates nothing once it has grown).
std::string& text_buffer() {
  thread_local std::string buf;
  return buf;
}

}  // namespace

result<onnx_text_front_end> onnx_text_front_end::parse(
    const std::map<std::string, std::string>& props) {
  for (const auto& [key, value] : props) {
    if (!known_keys().count(key)) {
      std::string known;
      for (const auto& k : known_keys()) known += (known.empty() ? "" : ", ") + k;
      return status::invalid_argument("unknown text front end key '" + key + "' (known: " + known +
                                      ")");
    }
    if (value.size() > k_prop_limit)
      return status::invalid_argument(key + " is " + std::to_string(value.size()) +
                                      " bytes; the limit is 16 MiB");
  }
  auto get = [&](const char* key) -> const std::string* {
    auto it = props.find(key);
    return it == props.end() ? nullptr : &it->second;
  };
  onnx_text_front_end f;
  const std::string* tok = get("shoal.tokenizer");
  if (!tok) return status::invalid_argument("shoal.tokenizer is missing (whitespace or wordpiece)");
  if (*tok == "whitespace")
    f.kind_ = tokenizer_kind::whitespace;
  else if (*tok == "wordpiece")
    f.kind_ = tokenizer_kind::wordpiece;
  else
    return status::invalid_argument("shoal.tokenizer '" + *tok +
                                    "' is not whitespace or wordpiece");

  if (const std::string* lc = get("shoal.lowercase")) {
    if (*lc != "0" && *lc != "1")
      return status::invalid_argument("shoal.lowercase must be 0 or 1, is '" + *lc + "'");
    f.lowercase_ = *lc == "1";
  }
  if (const std::string* mt = get("shoal.max_tokens")) {
    size_t v = 0;
    bool ok = !mt->empty() && mt->size() <= 7;
    for (char ch : *mt) {
      ok = ok && ch >= '0' && ch <= '9';
      v = v * 10 + size_t(ch - '0');
    }
    if (!ok || v < 1 || v > 1000000)
      return status::invalid_argument("shoal.max_tokens must be a number from 1 to 1000000, is '" +
                                      *mt + "'");
    f.max_tokens_ = v;
  }
  if (const std::string* sc = get("shoal.scores")) {
    if (*sc == "logits")
      f.scores_ = score_kind::logits;
    else if (*sc == "probabilities")
      f.scores_ = score_kind::probabilities;
    else if (*sc == "log_probabilities")
      f.scores_ = score_kind::log_probabilities;
    else
      return status::invalid_argument("shoal.scores '" + *sc +
                                      "' is not logits, probabilities or log_probabilities");
  }

  const std::string* vocab = get("shoal.vocab");
  if (!vocab) return status::invalid_argument("shoal.vocab is missing (one token per line)");
  f.vocab_text_ = std::make_shared<const std::string>(*vocab);
  const auto tokens = lines_of(*f.vocab_text_);
  if (tokens.empty()) return status::invalid_argument("shoal.vocab has no tokens");
  f.vocab_.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].empty())
      return status::invalid_argument("shoal.vocab line " + std::to_string(i + 1) + " is empty");
    auto [it, fresh] = f.vocab_.emplace(tokens[i], int64_t(i));
    if (!fresh)
      return status::invalid_argument("shoal.vocab has '" + std::string(tokens[i]) +
                                      "' twice (lines " + std::to_string(it->second + 1) + " and " +
                                      std::to_string(i + 1) + ")");
  }
  f.vocab_size_ = tokens.size();

  const std::string* labels = get("shoal.labels");
  if (!labels) return status::invalid_argument("shoal.labels is missing (one label per line)");
  std::set<std::string_view> seen;
  for (std::string_view l : lines_of(*labels)) {
    if (l.empty())
      return status::invalid_argument("shoal.labels line " + std::to_string(f.labels_.size() + 1) +
                                      " is empty");
    if (!seen.insert(l).second)
      return status::invalid_argument("shoal.labels has '" + std::string(l) + "' twice");
    f.labels_.emplace_back(l);
  }
  if (f.labels_.empty()) return status::invalid_argument("shoal.labels has no labels");

  const std::string* unk = get("shoal.unk");
  const std::string unk_token = unk                                    ? *unk
                                : f.kind_ == tokenizer_kind::wordpiece ? "[UNK]"
                                                                       : "<unk>";
  auto it = f.vocab_.find(unk_token);
  if (it == f.vocab_.end())
    return status::invalid_argument(
        "shoal.unk '" + unk_token + "' is not in shoal.vocab" +
        (unk ? "" : " (the default for this tokenizer; set shoal.unk)"));
  f.unk_id_ = it->second;
  f.unk_token_ = it->first;
  return f;
}

size_t onnx_text_front_end::memory_bytes() const {
  size_t n = vocab_text_ ? vocab_text_->size() : 0;
  n += vocab_.size() * (sizeof(std::string_view) + sizeof(int64_t) + 16);
  for (const auto& l : labels_) n += l.size() + sizeof(std::string);
  return n;
}

int64_t onnx_text_front_end::lookup(std::string_view token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

template <class F>
void onnx_text_front_end::each_token(std::string_view text, F&& emit) const {
  // Clean and lowercase into the thread's buffer: the tokens are views into it.
  std::string& buf = text_buffer();
  buf.clear();
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (kind_ == tokenizer_kind::wordpiece && is_control(c)) continue;
    if (lowercase_ && c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
    buf.push_back(char(c));
  }
  const std::string_view s = buf;
  size_t i = 0;
  while (i < s.size()) {
    if (size_t w = space_at(s, i)) {
      i += w;
      continue;
    }
    size_t end = i;
    while (end < s.size() && !space_at(s, end)) ++end;
    const std::string_view word = s.substr(i, end - i);
    i = end;
    if (kind_ == tokenizer_kind::whitespace) {
      if (!emit(word, false, lookup(word))) return;
      continue;
    }
    // BasicTokenizer: each punctuation character is a word of its own.
    size_t a = 0;
    while (a < word.size()) {
      size_t b = a;
      if (is_ascii_punct(static_cast<unsigned char>(word[a]))) {
        b = a + 1;
      } else {
        while (b < word.size() && !is_ascii_punct(static_cast<unsigned char>(word[b]))) ++b;
      }
      const std::string_view piece_word = word.substr(a, b - a);
      a = b;
      // WordPiece: greedy longest match first, continuations with "##".
      size_t chars = 0;
      for (char ch : piece_word) chars += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
      if (chars > k_max_word_chars) {
        if (!emit(piece_word, false, -1)) return;
        continue;
      }
      thread_local std::string cont;
      thread_local std::vector<std::pair<std::string_view, int64_t>> pieces;
      pieces.clear();
      size_t start = 0;
      bool bad = false;
      while (start < piece_word.size()) {
        size_t stop = piece_word.size();
        int64_t found = -1;
        std::string_view found_piece;
        while (stop > start) {
          std::string_view sub = piece_word.substr(start, stop - start);
          if (start > 0) {
            cont.assign("##");
            cont.append(sub);
            found = lookup(cont);
          } else {
            found = lookup(sub);
          }
          if (found >= 0) {
            found_piece = sub;
            break;
          }
          --stop;
          while (stop > start && (static_cast<unsigned char>(piece_word[stop]) & 0xC0) == 0x80)
            --stop;
        }
        if (found < 0) {
          bad = true;
          break;
        }
        pieces.emplace_back(found_piece, found);
        start = stop;
      }
      if (bad) {
        if (!emit(piece_word, false, -1)) return;
        continue;
      }
      bool first = true;
      for (const auto& [p, id] : pieces) {
        if (!emit(p, !first, id)) return;
        first = false;
      }
    }
  }
}

std::vector<std::string> onnx_text_front_end::tokens(std::string_view text) const {
  std::vector<std::string> out;
  each_token(text, [&](std::string_view t, bool continuation, int64_t id) {
    if (id < 0)
      out.emplace_back(unk_token_);
    else
      out.push_back((continuation ? "##" : "") + std::string(t));
    return true;
  });
  return out;
}

void onnx_text_front_end::ids(std::string_view text, std::vector<int64_t>* ids) const {
  ids->clear();
  each_token(text, [&](std::string_view, bool, int64_t id) {
    ids->push_back(id >= 0 ? id : unk_id_);
    return ids->size() < max_tokens_;
  });
  if (ids->empty()) ids->push_back(unk_id_);
}

status check_text_front_end(const std::map<std::string, std::string>& props) {
  auto f = onnx_text_front_end::parse(props);
  return f.error();
}

std::string with_text_front_end(std::string onnx_bytes,
                                const std::map<std::string, std::string>& props) {
  for (const auto& [key, value] : props) {
    std::string entry;
    put_bytes_field(&entry, 1, key);
    put_bytes_field(&entry, 2, value);
    put_bytes_field(&onnx_bytes, 14, entry);
  }
  return onnx_bytes;
}

}  // namespace shoal
