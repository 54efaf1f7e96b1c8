// Data-movement and shape operators: each one's prepare and kernel. Reshape, Flatten, Squeeze,
// Unsqueeze, Identity and Dropout share their input's bytes (no copy); Shape, Size, Constant,
// ConstantOfShape and Range are constants of the plan; Transpose, Slice and Expand are one
// strided copy.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "serving/onnx_plan.hpp"

namespace shoal::onnx_exec {
namespace {

std::shared_ptr<blob> int64_blob(const std::vector<int64_t>& v, std::vector<int64_t> shape) {
  auto b = std::make_shared<blob>();
  b->type = data_type::int64;
  b->shape = std::move(shape);
  b->bytes.resize(v.size() * 8);
  if (!v.empty()) std::memcpy(b->bytes.data(), v.data(), v.size() * 8);
  return b;
}

// ---- strided copy: Transpose, Slice, Expand -----------------------------------------------------

// p: rank, base, dims..., strides... (input element strides per output dim; may be 0 or
// negative). Size-1 dims are dropped and neighbours that stay contiguous are merged.
void strided_program(int64_t base, std::vector<int64_t> dims, std::vector<int64_t> st,
                     std::vector<int64_t>* p) {
  std::vector<int64_t> d2, s2;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == 1) continue;
    d2.push_back(dims[i]);
    s2.push_back(st[i]);
  }
  if (d2.empty()) {
    d2.push_back(1);
    s2.push_back(0);
  }
  for (size_t d = d2.size() - 1; d-- > 0;) {
    if (s2[d] != s2[d + 1] * d2[d + 1]) continue;
    d2[d] *= d2[d + 1];
    s2[d] = s2[d + 1];
    d2.erase(d2.begin() + long(d) + 1);
    s2.erase(s2.begin() + long(d) + 1);
  }
  *p = {int64_t(d2.size()), base};
  p->insert(p->end(), d2.begin(), d2.end());
  p->insert(p->end(), s2.begin(), s2.end());
}

template <class E>
status strided_kernel(const step& s, const value* v, void* const* ptr, void*) {
  if (v[s.out[0]].count == 0) return status::ok();
  const E* x = in_ptr<E>(s, ptr, 0) + s.p[1];
  E* y = out_ptr<E>(s, ptr);
  const int64_t r = s.p[0];
  const int64_t* dims = s.p.data() + 2;
  const int64_t* st = dims + r;
  const int64_t n = dims[r - 1], is = st[r - 1];
  int64_t outer = 1;
  for (int64_t d = 0; d + 1 < r; ++d) outer *= dims[d];
  int64_t idx[k_max_rank] = {};
  int64_t off = 0, o = 0;
  for (int64_t it = 0; it < outer; ++it) {
    if (is == 1) {
      std::memcpy(y + o, x + off, size_t(n) * sizeof(E));
    } else {
      for (int64_t i = 0; i < n; ++i) y[o + i] = x[off + i * is];
    }
    o += n;
    for (int64_t d = r - 2; d >= 0; --d) {
      off += st[d];
      if (++idx[d] < dims[d]) break;
      off -= st[d] * dims[d];
      idx[d] = 0;
    }
  }
  return status::ok();
}

kernel pick_strided(data_type t) {
  switch (element_size(t)) {
    case 1:
      return strided_kernel<uint8_t>;
    case 4:
      return strided_kernel<uint32_t>;
    default:
      return strided_kernel<uint64_t>;
  }
}

status set_strided(op_ctx& c, int64_t base, std::vector<int64_t> dims, std::vector<int64_t> st) {
  if (dims.size() > k_max_rank) return c.fail("rank over 16 is not supported");
  strided_program(base, dims, std::move(st), &c.st().p);
  c.st().fn = pick_strided(c.in(0).type);
  return c.set_out(0, c.in(0).type, std::move(dims));
}

status prepare_transpose(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(1, 1));
  const auto& shape = c.in(0).shape;
  const size_t r = shape.size();
  std::vector<int64_t> perm;
  if (const attribute* a = c.n().attr("perm"))
    perm = a->ints;
  else
    for (size_t i = 0; i < r; ++i) perm.push_back(int64_t(r - 1 - i));
  if (perm.size() != r)
    return c.fail("perm has " + std::to_string(perm.size()) + " axes, the input " +
                  std::to_string(r));
  std::vector<char> seen(r, 0);
  const auto in_st = strides_of(shape);
  std::vector<int64_t> dims, st;
  for (int64_t p : perm) {
    if (p < 0 || p >= int64_t(r) || seen[size_t(p)]) return c.fail("perm is not a permutation");
    seen[size_t(p)] = 1;
    dims.push_back(shape[size_t(p)]);
    st.push_back(in_st[size_t(p)]);
  }
  return set_strided(c, 0, std::move(dims), std::move(st));
}

status prepare_slice(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(3, 5));
  auto starts = c.const_ints(1, "starts");
  if (!starts) return starts.error();
  auto ends = c.const_ints(2, "ends");
  if (!ends) return ends.error();
  const auto& shape = c.in(0).shape;
  const size_t r = shape.size();
  std::vector<int64_t> axes, steps(starts->size(), 1);
  if (c.has(3)) {
    auto a = c.const_ints(3, "axes");
    if (!a) return a.error();
    axes = *a;
  } else {
    for (size_t i = 0; i < starts->size(); ++i) axes.push_back(int64_t(i));
  }
  if (c.has(4)) {
    auto s = c.const_ints(4, "steps");
    if (!s) return s.error();
    steps = *s;
  }
  if (ends->size() != starts->size() || axes.size() != starts->size() ||
      steps.size() != starts->size())
    return c.fail("starts, ends, axes and steps must have one length");
  std::vector<int64_t> dims = shape, st = strides_of(shape);
  std::vector<char> seen(r, 0);
  int64_t base = 0;
  for (size_t i = 0; i < starts->size(); ++i) {
    int64_t ax = 0;
    if (!norm_axis(axes[i], r, &ax))
      return c.fail("axis " + std::to_string(axes[i]) + " is outside rank " + std::to_string(r));
    if (seen[size_t(ax)]) return c.fail("axis " + std::to_string(axes[i]) + " is given twice");
    seen[size_t(ax)] = 1;
    const int64_t dim = shape[size_t(ax)];
    if (steps[i] == 0) return c.fail("steps must not be 0");
    // A step longer than the axis takes one element, as a step of the axis' length does; clamped,
    // the stride and count arithmetic below cannot overflow on a step such as INT64_MIN.
    const int64_t longest = std::max<int64_t>(dim, 1);
    const int64_t step = std::clamp<int64_t>(steps[i], -longest, longest);
    int64_t s = (*starts)[i], e = (*ends)[i];
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    int64_t count = 0;
    if (dim == 0) {
      s = 0;
    } else if (step > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      count = e > s ? (e - s + step - 1) / step : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      count = s > e ? (s - e + (-step) - 1) / (-step) : 0;
    }
    if (count > 0) base += s * st[size_t(ax)];
    dims[size_t(ax)] = count;
    st[size_t(ax)] *= step;
  }
  return set_strided(c, base, std::move(dims), std::move(st));
}

status prepare_expand(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(2, 2));
  auto want = c.const_ints(1, "shape");
  if (!want) return want.error();
  const auto& shape = c.in(0).shape;
  std::vector<int64_t> out;
  if (!broadcast_shape(shape, *want, &out))
    return c.fail("input " + shape_text(shape) + " does not expand to " + shape_text(*want));
  const auto in_st = strides_of(shape);
  std::vector<int64_t> st(out.size(), 0);
  const size_t pad = out.size() - shape.size();
  for (size_t d = pad; d < out.size(); ++d)
    if (shape[d - pad] != 1) st[d] = in_st[d - pad];
  return set_strided(c, 0, std::move(out), std::move(st));
}

// ---- views: no copy
// ---------------------------------------------------------------------------------

status prepare_identity(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(1, 1));
  return c.set_alias(c.in(0).shape);
}

status prepare_dropout(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(1, 3));
  if (c.has_out(1)) {  // the mask: all true at inference
    auto mask = std::make_shared<blob>();
    mask->type = data_type::boolean;
    mask->shape = c.in(0).shape;
    mask->bytes.assign(c.in(0).count, 1);
    SHOAL_RETURN_IF_ERROR(c.set_constant(1, mask));
  }
  return c.set_alias(c.in(0).shape);
}

status prepare_reshape(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(2, 2));
  auto want = c.const_ints(1, "shape");
  if (!want) return want.error();
  const auto& shape = c.in(0).shape;
  const bool allow_zero = c.opset() >= 14 && c.n().attr_i("allowzero", 0) != 0;
  std::vector<int64_t> out = *want;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 0 && !allow_zero) {
      if (i >= shape.size())
        return c.fail("shape " + shape_text(*want) + " copies dim " + std::to_string(i) +
                      " the input " + shape_text(shape) + " lacks");
      out[i] = shape[i];
    }
    if (out[i] == -1) {
      if (infer >= 0) return c.fail("shape " + shape_text(*want) + " has more than one -1");
      infer = int(i);
      continue;
    }
    if (out[i] < 0) return c.fail("shape " + shape_text(*want) + " has a negative dim");
    known *= out[i];
  }
  const int64_t total = int64_t(c.in(0).count);
  if (infer >= 0) {
    if (known == 0 || total % known != 0)
      return c.fail("cannot reshape " + shape_text(shape) + " to " + shape_text(*want));
    out[size_t(infer)] = total / known;
  } else if (known != total) {
    return c.fail("cannot reshape " + shape_text(shape) + " (" + std::to_string(total) +
                  " elements) to " + shape_text(*want));
  }
  return c.set_alias(std::move(out));
}

status prepare_flatten(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(1, 1));
  const auto& shape = c.in(0).shape;
  int64_t axis = c.n().attr_i("axis", 1);
  if (axis < 0) axis += int64_t(shape.size());
  if (axis < 0 || axis > int64_t(shape.size())) return c.fail("axis is outside the input's rank");
  return c.set_alias(
      {dims_product(shape, 0, size_t(axis)), dims_product(shape, size_t(axis), shape.size())});
}

result<std::vector<int64_t>> axes_of(op_ctx& c, bool required) {
  if (c.opset() >= 13) {
    if (!c.has(1)) {
      if (required) return c.fail("needs its axes input");
      return std::vector<int64_t>{};
    }
    return c.const_ints(1, "axes");
  }
  if (c.has(1)) return c.fail("takes axes as an attribute before opset 13");
  const attribute* a = c.n().attr("axes");
  if (!a) {
    if (required) return c.fail("needs its axes attribute");
    return std::vector<int64_t>{};
  }
  return a->ints;
}

status prepare_squeeze(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(1, 2));
  auto axes = axes_of(c, false);
  if (!axes) return axes.error();
  const auto& shape = c.in(0).shape;
  std::vector<char> drop(shape.size(), 0);
  for (int64_t a : *axes) {
    int64_t ax = 0;
    if (!norm_axis(a, shape.size(), &ax))
      return c.fail("axis " + std::to_string(a) + " is outside rank " +
                    std::to_string(shape.size()));
    if (shape[size_t(ax)] != 1)
      return c.fail("dim " + std::to_string(a) + " of " + shape_text(shape) + " is not 1");
    drop[size_t(ax)] = 1;
  }
  std::vector<int64_t> out;
  for (size_t d = 0; d < shape.size(); ++d) {
    const bool gone = axes->empty() ? shape[d] == 1 : drop[d] != 0;
    if (!gone) out.push_back(shape[d]);
  }
  return c.set_alias(std::move(out));
}

status prepare_unsqueeze(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(1, 2));
  auto axes = axes_of(c, true);
  if (!axes) return axes.error();
  const auto& shape = c.in(0).shape;
  const size_t r = shape.size() + axes->size();
  std::vector<char> add(r, 0);
  for (int64_t a : *axes) {
    int64_t ax = 0;
    if (!norm_axis(a, r, &ax))
      return c.fail("axis " + std::to_string(a) + " is outside rank " + std::to_string(r));
    if (add[size_t(ax)]) return c.fail("axis " + std::to_string(a) + " is given twice");
    add[size_t(ax)] = 1;
  }
  std::vector<int64_t> out;
  size_t k = 0;
  for (size_t d = 0; d < r; ++d) out.push_back(add[d] ? 1 : shape[k++]);
  return c.set_alias(std::move(out));
}

// ---- Concat and Gather
// ------------------------------------------------------------------------------

status concat_kernel(const step& s, const value*, void* const* ptr, void*) {
  const int64_t outer = s.p[0];
  const size_t k = s.in.size();
  unsigned char* y = out_ptr<unsigned char>(s, ptr);
  for (int64_t o = 0; o < outer; ++o) {
    for (size_t i = 0; i < k; ++i) {
      const size_t chunk = size_t(s.p[1 + i]);
      if (chunk == 0) continue;
      std::memcpy(y, in_ptr<unsigned char>(s, ptr, i) + size_t(o) * chunk, chunk);
      y += chunk;
    }
  }
  return status::ok();
}

status prepare_concat(op_ctx& c) {
  if (c.n().in.empty()) return c.fail("has no inputs");
  for (size_t i = 0; i < c.n().in.size(); ++i)
    if (!c.has(i)) return c.fail("input " + std::to_string(i) + " is required");
  const auto& first = c.in(0).shape;
  const attribute* a = c.n().attr("axis");
  if (!a) return c.fail("needs its axis attribute");
  int64_t axis = 0;
  if (!norm_axis(a->i, first.size(), &axis))
    return c.fail("axis " + std::to_string(a->i) + " is outside rank " +
                  std::to_string(first.size()));
  std::vector<int64_t> out = first;
  out[size_t(axis)] = 0;
  const size_t es = element_size(c.in(0).type);
  auto& p = c.st().p;
  p = {dims_product(first, 0, size_t(axis))};
  for (size_t i = 0; i < c.n().in.size(); ++i) {
    const auto& s = c.in(i).shape;
    if (c.in(i).type != c.in(0).type) return c.fail("inputs must have one type");
    bool fits = s.size() == first.size();
    for (size_t d = 0; fits && d < s.size(); ++d) fits = d == size_t(axis) || s[d] == first[d];
    if (!fits)
      return c.fail("input shapes " + shape_text(first) + " and " + shape_text(s) +
                    " do not concatenate on axis " + std::to_string(axis));
    out[size_t(axis)] += s[size_t(axis)];
    p.push_back(dims_product(s, size_t(axis), s.size()) * int64_t(es));
  }
  c.st().fn = concat_kernel;
  return c.set_out(0, c.in(0).type, std::move(out));
}

template <class I>
status gather_kernel(const step& s, const value* v, void* const* ptr, void*) {
  const int64_t outer = s.p[0], n = s.p[1], inner = s.p[2];
  const size_t count = v[s.in[1]].count;
  const unsigned char* x = in_ptr<unsigned char>(s, ptr, 0);
  const I* idx = in_ptr<I>(s, ptr, 1);
  unsigned char* y = out_ptr<unsigned char>(s, ptr);
  for (size_t i = 0; i < count; ++i)
    if (idx[i] < -n || idx[i] >= n)
      return status::invalid_argument(
          "node '" + s.n->name + "' (Gather): index " + std::to_string(int64_t(idx[i])) +
          " is out of range for a dimension of size " + std::to_string(n) +
          " (valid: " + std::to_string(-n) + " to " + std::to_string(n - 1) + ")");
  for (int64_t o = 0; o < outer; ++o) {
    const unsigned char* xo = x + size_t(o * n * inner);
    for (size_t i = 0; i < count; ++i) {
      const int64_t j = idx[i] < 0 ? int64_t(idx[i]) + n : int64_t(idx[i]);
      std::memcpy(y, xo + size_t(j * inner), size_t(inner));
      y += inner;
    }
  }
  return status::ok();
}

status prepare_gather(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(2, 2));
  SHOAL_RETURN_IF_ERROR(c.need_type(1, {data_type::int32, data_type::int64}));
  const auto& shape = c.in(0).shape;
  int64_t axis = 0;
  const int64_t want = c.n().attr_i("axis", 0);
  if (!norm_axis(want, shape.size(), &axis))
    return c.fail("axis " + std::to_string(want) + " is outside rank " +
                  std::to_string(shape.size()));
  std::vector<int64_t> out(shape.begin(), shape.begin() + axis);
  out.insert(out.end(), c.in(1).shape.begin(), c.in(1).shape.end());
  out.insert(out.end(), shape.begin() + axis + 1, shape.end());
  c.st().p = {
      dims_product(shape, 0, size_t(axis)), shape[size_t(axis)],
      dims_product(shape, size_t(axis) + 1, shape.size()) * int64_t(element_size(c.in(0).type))};
  c.st().fn = c.in(1).type == data_type::int64 ? gather_kernel<int64_t> : gather_kernel<int32_t>;
  return c.set_out(0, c.in(0).type, std::move(out));
}

// ---- Cast
// -------------------------------------------------------------------------------------------

template <class F, class T>
T convert(F x) {
  if constexpr (std::is_same_v<T, bool>) {
    return x != F(0);
  } else if constexpr (std::is_floating_point_v<F> && std::is_integral_v<T>) {
    if (std::isnan(x)) return 0;
    if (x <= F(std::numeric_limits<T>::min())) return std::numeric_limits<T>::min();
    if (x >= F(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return T(x);
  } else {
    return T(x);
  }
}

template <class F, class T>
status cast_kernel(const step& s, const value* v, void* const* ptr, void*) {
  const F* x = in_ptr<F>(s, ptr, 0);
  T* y = out_ptr<T>(s, ptr);
  const size_t n = v[s.out[0]].count;
  for (size_t i = 0; i < n; ++i) y[i] = convert<F, T>(x[i]);
  return status::ok();
}

template <class F>
kernel pick_cast_to(data_type to) {
  switch (to) {
    case data_type::fp32:
      return cast_kernel<F, float>;
    case data_type::fp64:
      return cast_kernel<F, double>;
    case data_type::int32:
      return cast_kernel<F, int32_t>;
    case data_type::int64:
      return cast_kernel<F, int64_t>;
    case data_type::boolean:
      return cast_kernel<F, bool>;
    default:
      return nullptr;
  }
}

status prepare_cast(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(1, 1));
  const int64_t to = c.n().attr_i("to", 0);
  data_type t;
  switch (to) {
    case 1:
      t = data_type::fp32;
      break;
    case 11:
      t = data_type::fp64;
      break;
    case 6:
      t = data_type::int32;
      break;
    case 7:
      t = data_type::int64;
      break;
    case 9:
      t = data_type::boolean;
      break;
    default:
      return c.fail("casts to ONNX type " + std::to_string(to) +
                    "; Shoal casts to FLOAT, DOUBLE, INT32, INT64 and BOOL");
  }
  if (t == c.in(0).type) return c.set_alias(c.in(0).shape);
  switch (c.in(0).type) {
    case data_type::fp32:
      c.st().fn = pick_cast_to<float>(t);
      break;
    case data_type::fp64:
      c.st().fn = pick_cast_to<double>(t);
      break;
    case data_type::int32:
      c.st().fn = pick_cast_to<int32_t>(t);
      break;
    case data_type::int64:
      c.st().fn = pick_cast_to<int64_t>(t);
      break;
    case data_type::boolean:
      c.st().fn = pick_cast_to<bool>(t);
      break;
    default:
      return c.fail("cannot cast BYTES");
  }
  return c.set_out(0, t, c.in(0).shape);
}

// ---- constants of the plan ----------------------------------------------------------------------

status prepare_shape(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(1, 1));
  const auto& shape = c.in(0).shape;
  const int64_t r = int64_t(shape.size());
  int64_t start = 0, end = r;
  if (c.opset() >= 15) {
    start = c.n().attr_i("start", 0);
    end = c.n().attr_i("end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = std::clamp<int64_t>(start, 0, r);
    end = std::clamp<int64_t>(end, 0, r);
  }
  std::vector<int64_t> v;
  for (int64_t i = start; i < end; ++i) v.push_back(shape[size_t(i)]);
  return c.set_constant(0, int64_blob(v, {int64_t(v.size())}));
}

status prepare_size(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(1, 1));
  return c.set_constant(0, int64_blob({int64_t(c.in(0).count)}, {}));
}

status prepare_constant(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(0, 0));
  const node& n = c.n();
  if (const attribute* a = n.attr("value"); a && a->k == attribute::kind::t)
    return c.set_constant(0, a->t);
  auto b = std::make_shared<blob>();
  if (const attribute* a = n.attr("value_float"); a && a->k == attribute::kind::f) {
    b->type = data_type::fp32;
    b->bytes.resize(4);
    std::memcpy(b->bytes.data(), &a->f, 4);
  } else if (const attribute* a = n.attr("value_floats"); a && a->k == attribute::kind::floats) {
    b->type = data_type::fp32;
    b->shape = {int64_t(a->floats.size())};
    b->bytes.resize(a->floats.size() * 4);
    if (!a->floats.empty()) std::memcpy(b->bytes.data(), a->floats.data(), b->bytes.size());
  } else if (const attribute* a = n.attr("value_int"); a && a->k == attribute::kind::i) {
    b = int64_blob({a->i}, {});
  } else if (const attribute* a = n.attr("value_ints"); a && a->k == attribute::kind::ints) {
    b = int64_blob(a->ints, {int64_t(a->ints.size())});
  } else {
    return c.fail(
        "needs a value, value_float(s) or value_int(s) attribute (strings and sparse "
        "tensors are not supported)");
  }
  return c.set_constant(0, b);
}

status prepare_constant_of_shape(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(1, 1));
  auto shape = c.const_ints(0, "shape");
  if (!shape) return shape.error();
  auto b = std::make_shared<blob>();
  b->type = data_type::fp32;
  std::vector<unsigned char> one(4, 0);
  if (const attribute* a = c.n().attr("value"); a && a->k == attribute::kind::t) {
    if (a->t->bytes.size() != element_size(a->t->type))
      return c.fail("value must hold one element");
    b->type = a->t->type;
    one = a->t->bytes;
  }
  auto n = element_count(*shape, size_t(1) << 62);
  if (!n) return c.fail("shape " + shape_text(*shape) + " is not a valid shape");
  if (double(*n) * double(one.size()) > double(k_tensor_limit))
    return c.fail("output " + shape_text(*shape) + " would need " +
                  bytes_text(double(*n) * double(one.size())) + " (limit " +
                  bytes_text(k_tensor_limit) + " per tensor)");
  b->shape = *shape;
  b->bytes.resize(*n * one.size());
  for (size_t i = 0; i < *n; ++i)
    std::memcpy(b->bytes.data() + i * one.size(), one.data(), one.size());
  return c.set_constant(0, b);
}

template <class T>
status range_into(op_ctx& c, blob* b) {
  const T start = *static_cast<const T*>(c.const_data(0));
  const T limit = *static_cast<const T*>(c.const_data(1));
  const T delta = *static_cast<const T*>(c.const_data(2));
  if (delta == T(0)) return c.fail("delta must not be 0");
  const double count = std::max(std::ceil((double(limit) - double(start)) / double(delta)), 0.0);
  if (count * sizeof(T) > double(k_tensor_limit))
    return c.fail("would make " + std::to_string(count) + " elements");
  const size_t n = size_t(count);
  b->shape = {int64_t(n)};
  b->bytes.resize(n * sizeof(T));
  T* y = reinterpret_cast<T*>(b->bytes.data());
  for (size_t i = 0; i < n; ++i) y[i] = T(start + T(i) * delta);
  return status::ok();
}

status prepare_range(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(3, 3));
  for (size_t i = 0; i < 3; ++i) {
    if (!c.const_data(i)) return c.fail("its inputs must be known when the model is planned");
    if (c.in(i).count != 1) return c.fail("start, limit and delta must be scalars");
    if (c.in(i).type != c.in(0).type) return c.fail("start, limit and delta must have one type");
  }
  auto b = std::make_shared<blob>();
  b->type = c.in(0).type;
  switch (b->type) {
    case data_type::fp32:
      SHOAL_RETURN_IF_ERROR(range_into<float>(c, b.get()));
      break;
    case data_type::fp64:
      SHOAL_RETURN_IF_ERROR(range_into<double>(c, b.get()));
      break;
    case data_type::int32:
      SHOAL_RETURN_IF_ERROR(range_into<int32_t>(c, b.get()));
      break;
    case data_type::int64:
      SHOAL_RETURN_IF_ERROR(range_into<int64_t>(c, b.get()));
      break;
    default:
      return c.fail("takes numbers");
  }
  return c.set_constant(0, b);
}

}  // namespace

const std::map<std::string, prepare_fn>& shape_ops() {
  static const std::map<std::string, prepare_fn> ops = {
      {"Transpose", prepare_transpose}, {"Slice", prepare_slice},
      {"Expand", prepare_expand},       {"Identity", prepare_identity},
      {"Dropout", prepare_dropout},     {"Reshape", prepare_reshape},
      {"Flatten", prepare_flatten},     {"Squeeze", prepare_squeeze},
      {"Unsqueeze", prepare_unsqueeze}, {"Concat", prepare_concat},
      {"Gather", prepare_gather},       {"Cast", prepare_cast},
      {"Shape", prepare_shape},         {"Size", prepare_size},
      {"Constant", prepare_constant},   {"ConstantOfShape", prepare_constant_of_shape},
      {"Range", prepare_range},
  };
  return ops;
}

}  // namespace shoal::onnx_exec
