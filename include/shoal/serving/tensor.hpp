// tensor: the typed, shaped arrays that tensor models (ONNX) take and give, and that the V2
// protocol carries. A plain value: no views, no reference counts; the codecs at the edges fill
// it, models read it.
// Thread-safety: a value type; share it const.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/base/status.hpp"

namespace shoal {

/// The element types Shoal's kernels and the V2 protocol share.
enum class data_type : uint8_t { fp32, fp64, int32, int64, boolean, bytes };

/// Returns the V2 name of `t` ("FP32", "FP64", "INT32", "INT64", "BOOL", "BYTES").
const char* v2_datatype_name(data_type t);

/// Returns the type a V2 datatype name stands for; nullopt for a name Shoal does not take
/// (FP16, UINT8, ...).
std::optional<data_type> parse_v2_datatype(std::string_view name);

/// Returns the bytes one element takes in tensor::data (BOOL: 1); 0 for BYTES.
size_t element_size(data_type t);

/// Returns the number of elements of `shape` (1 for a scalar, shape {}), or nullopt when a dim is
/// negative or the product overflows `limit`.
std::optional<size_t> element_count(const std::vector<int64_t>& shape, size_t limit = size_t(1)
                                                                                      << 40);

struct tensor {
  std::string name;
  data_type type = data_type::fp32;
  std::vector<int64_t> shape;
  // Numeric types: the elements packed in row-major order, little-endian, element_size(type)
  // bytes each (BOOL: one byte, 0 or 1). BYTES: empty.
  std::string data;
  // BYTES: one string per element, row-major. Numeric types: empty.
  std::vector<std::string> strings;

  /// Returns the element count its shape says (0 when the shape is invalid).
  size_t elements() const;
  /// Returns ok when data (or strings) hold exactly elements() elements of the type, else an
  /// invalid_argument naming the tensor, what the shape says and what was given.
  status check_size() const;

  friend bool operator==(const tensor& a, const tensor& b) {
    return a.name == b.name && a.type == b.type && a.shape == b.shape && a.data == b.data &&
           a.strings == b.strings;
  }
};

/// What a model takes or gives, as V2 metadata shows it.
struct tensor_spec {
  std::string name;
  data_type type = data_type::fp32;
  std::vector<int64_t> shape;  // -1: any size (a dynamic dimension)

  friend bool operator==(const tensor_spec& a, const tensor_spec& b) {
    return a.name == b.name && a.type == b.type && a.shape == b.shape;
  }
};

/// Returns ok when `t` has the name's type and a shape that fits `spec` (same rank; each fixed
/// dim equal), else an invalid_argument that says which input, what the model takes and what
/// was given ("input 'x': the model takes FP32 [-1,300], got FP32 [2,30]").
status check_against(const tensor& t, const tensor_spec& spec);

/// Returns "[2,300]" (with -1 for dynamic dims).
std::string shape_text(const std::vector<int64_t>& shape);

}  // namespace shoal
