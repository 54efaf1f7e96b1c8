// utf8: strict UTF-8 validation for text that crosses a wire boundary (protobuf `string` fields,
// CLI arguments, HTTP bodies). Strict means RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace shoal::utf8 {

/// Returns the length (1-4) of the well-formed sequence starting at text[i], or 0 when the bytes
/// there are not one (a stray continuation byte, an overlong form, a surrogate, a code point
/// above U+10FFFF, a sequence cut short). @pre i < text.size()
size_t sequence_length(std::string_view text, size_t i);

/// Returns the offset of the first byte that starts an invalid or truncated sequence, or
/// std::string_view::npos when `text` is valid UTF-8.
size_t first_invalid_byte(std::string_view text);

/// Returns true if `text` is valid UTF-8.
inline bool is_valid_utf8(std::string_view text) {
  return first_invalid_byte(text) == std::string_view::npos;
}

/// Returns `text` with each byte that does not start a valid sequence replaced by U+FFFD, so
/// it can go into a protobuf `string` field or JSON; valid text comes back unchanged.
std::string to_valid_utf8(std::string_view text);

}  // namespace shoal::utf8
