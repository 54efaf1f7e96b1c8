#include "shoal/serving/tensor.hpp"

namespace shoal {

const char* v2_datatype_name(data_type t) {
  switch (t) {
    case data_type::fp32:
      return "FP32";
    case data_type::fp64:
      return "FP64";
    case data_type::int32:
      return "INT32";
    case data_type::int64:
      return "INT64";
    case data_type::boolean:
      return "BOOL";
    case data_type::bytes:
      return "BYTES";
  }
  return "?";
}

std::optional<data_type> parse_v2_datatype(std::string_view name) {
  for (data_type t : {data_type::fp32, data_type::fp64, data_type::int32, data_type::int64,
                      data_type::boolean, data_type::bytes}) {
    if (name == v2_datatype_name(t)) return t;
  }
  return std::nullopt;
}

size_t element_size(data_type t) {
  switch (t) {
    case data_type::fp32:
      return 4;
    case data_type::fp64:
      return 8;
    case data_type::int32:
      return 4;
    case data_type::int64:
      return 8;
    case data_type::boolean:
      return 1;
    case data_type::bytes:
      return 0;
  }
  return 0;
}

std::optional<size_t> element_count(const std::vector<int64_t>& shape, size_t limit) {
  size_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (d == 0) return size_t(0);
  }
  for (int64_t d : shape) {
    if (size_t(d) > limit / n) return std::nullopt;
    n *= size_t(d);
  }
  return n;
}

size_t tensor::elements() const { return element_count(shape).value_or(0); }

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

status tensor::check_size() const {
  auto n = element_count(shape);
  if (!n)
    return status::invalid_argument("tensor '" + name + "': shape " + shape_text(shape) +
                                    " is not a valid shape");
  if (type == data_type::bytes) {
    if (strings.size() != *n || !data.empty())
      return status::invalid_argument("tensor '" + name + "': shape " + shape_text(shape) +
                                      " needs " + std::to_string(*n) + " BYTES elements, got " +
                                      std::to_string(strings.size()));
    return status::ok();
  }
  const size_t want = *n * element_size(type);
  if (data.size() != want || !strings.empty())
    return status::invalid_argument("tensor '" + name + "': shape " + shape_text(shape) + " of " +
                                    v2_datatype_name(type) + " needs " + std::to_string(want) +
                                    " bytes (" + std::to_string(*n) + " elements), got " +
                                    std::to_string(data.size()) + " bytes");
  return status::ok();
}

status check_against(const tensor& t, const tensor_spec& spec) {
  bool fits = t.type == spec.type && t.shape.size() == spec.shape.size();
  for (size_t i = 0; fits && i < spec.shape.size(); ++i)
    fits = spec.shape[i] < 0 || spec.shape[i] == t.shape[i];
  if (fits) return status::ok();
  return status::invalid_argument("input '" + spec.name + "': the model takes " +
                                  v2_datatype_name(spec.type) + " " + shape_text(spec.shape) +
                                  ", got " + v2_datatype_name(t.type) + " " + shape_text(t.shape));
}

}  // namespace shoal
