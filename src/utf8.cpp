#include "shoal/utf8.hpp"

namespace shoal::utf8 {

size_t first_invalid_byte(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    // The allowed range of the second byte depends on the lead byte: that is what rules out
    // overlong forms (E0, F0), surrogates (ED) and code points above U+10FFFF (F4).
    size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c == 0xE0) {
      len = 3, lo = 0xA0;
    } else if (c == 0xED) {
      len = 3, hi = 0x9F;
    } else if (c >= 0xE1 && c <= 0xEF) {
      len = 3;
    } else if (c == 0xF0) {
      len = 4, lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      len = 4;
    } else if (c == 0xF4) {
      len = 4, hi = 0x8F;
    } else {
      return i;  // a continuation byte, C0/C1, or F5..FF
    }
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

std::string to_valid_utf8(std::string_view text) {
  std::string out;
  size_t bad = first_invalid_byte(text);
  if (bad == std::string_view::npos) return std::string(text);
  out.reserve(text.size() + 8);
  while (bad != std::string_view::npos) {
    out.append(text.substr(0, bad));
    out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
    text.remove_prefix(bad + 1);
    bad = first_invalid_byte(text);
  }
  out.append(text);
  return out;
}

}  // namespace shoal::utf8
