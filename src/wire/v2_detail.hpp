// v2_detail: what the V2 codec's two files (v2_codec.cpp: routes and metadata; v2_infer.cpp:
// infer bodies and answers) share: JSON output of numbers and the wording of errors. Private to
// src/wire.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/base/status.hpp"
#include "shoal/serving/api.hpp"
#include "shoal/serving/tensor.hpp"
#include "shoal/wire/v2_codec.hpp"

namespace shoal::v2_detail {

using json = nlohmann::json;

/// Appends `v` in decimal.
void append_uint(std::string& out, uint64_t v);
/// Appends the shortest decimal that reads back as the same float; null for NaN and infinities.
void append_float(std::string& out, float v);
/// The same for a double.
void append_double(std::string& out, double v);
/// Returns compact JSON, invalid UTF-8 replaced.
std::string dump(const json& j);
/// Returns at most 60 characters of `text`, control characters as '?', for messages.
std::string excerpt(std::string_view text);
/// Returns an invalid_argument: `what`, then an example of a good body.
status bad_body(std::string what);
/// Returns what kind of JSON value `j` is, for messages ("an integer", "a string", "null").
std::string json_type(const json& j);

/// Splits binary BYTES data (each element a 4-byte little-endian length, then its bytes) into
/// exactly `count` strings; `where` names the tensor in errors.
result<std::vector<std::string>> split_bytes(std::string_view data, size_t count,
                                             const std::string& where);
/// Appends `t`'s elements as binary data: packed, or BYTES with a 4-byte length before each.
void append_binary(std::string& out, const tensor& t);
/// Returns a text answer as the tensors "labels" (BYTES [B,K]) and "scores" (FP32 [B,K]), those
/// `outputs` selects, K as render_infer clamps it.
std::vector<tensor> text_tensors(const infer_result& r, uint32_t top_k, v2_outputs outputs);

}  // namespace shoal::v2_detail
