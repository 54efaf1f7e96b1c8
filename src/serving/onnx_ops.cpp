// Arithmetic operators: each one's prepare (types, shapes, parameters, kernel choice) and kernel.
// Elementwise ops broadcast through a collapsed loop (broadcast_loop) so the inner loop is a plain
// contiguous or scalar run; Gemm and MatMul use the packed sgemm (onnx_gemm.cpp) when their
// weights are constants and this CPU has AVX2 or AVX-512, else OpenBLAS's sgemm.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "serving/onnx_plan.hpp"

namespace shoal::onnx_exec {
namespace {

// ---- broadcasting
// --------------------------------------------------------------------------------

// Encodes the loop over `out` reading each operand (numpy broadcasting) into p: rank, dims, then
// each operand's element strides per dim (0 where it is broadcast). Size-1 dims are dropped and
// neighbours that are contiguous in every operand are merged, so the innermost dim is as long as
// it can be.
void broadcast_program(const std::vector<int64_t>& out,
                       const std::vector<const std::vector<int64_t>*>& ins,
                       std::vector<int64_t>* p) {
  const size_t r = out.size(), k = ins.size();
  std::vector<int64_t> dims;
  std::vector<std::vector<int64_t>> st(k);
  for (size_t d = 0; d < r; ++d) {
    if (out[d] == 1) continue;
    dims.push_back(out[d]);
    for (size_t j = 0; j < k; ++j) {
      const auto& s = *ins[j];
      const size_t pad = r - s.size();
      int64_t stride = 0;
      if (d >= pad && s[d - pad] != 1) {
        stride = 1;
        for (size_t e = d - pad + 1; e < s.size(); ++e) stride *= s[e];
      }
      st[j].push_back(stride);
    }
  }
  if (dims.empty()) {
    dims.push_back(1);
    for (auto& s : st) s.push_back(0);
  }
  // Merge from the inside out.
  for (size_t d = dims.size() - 1; d-- > 0;) {
    bool merge = true;
    for (size_t j = 0; j < k && merge; ++j) merge = st[j][d] == st[j][d + 1] * dims[d + 1];
    if (!merge) continue;
    dims[d] *= dims[d + 1];
    dims.erase(dims.begin() + long(d) + 1);
    for (auto& s : st) {
      s[d] = s[d + 1];
      s.erase(s.begin() + long(d) + 1);
    }
  }
  p->push_back(int64_t(dims.size()));
  p->insert(p->end(), dims.begin(), dims.end());
  for (const auto& s : st) p->insert(p->end(), s.begin(), s.end());
}

// Runs inner(out_offset, operand_offsets, n, operand_inner_strides) for every innermost run.
template <size_t K, class F>
void broadcast_loop(const int64_t* p, F&& inner) {
  const int64_t r = p[0];
  const int64_t* dims = p + 1;
  const int64_t* st[K];
  int64_t inner_st[K], off[K] = {};
  for (size_t j = 0; j < K; ++j) {
    st[j] = p + 1 + r * int64_t(j + 1);
    inner_st[j] = st[j][r - 1];
  }
  const int64_t n = dims[r - 1];
  int64_t outer = 1;
  for (int64_t d = 0; d + 1 < r; ++d) outer *= dims[d];
  int64_t idx[k_max_rank] = {};
  int64_t o = 0;
  for (int64_t it = 0; it < outer; ++it) {
    inner(o, off, n, inner_st);
    o += n;
    for (int64_t d = r - 2; d >= 0; --d) {
      for (size_t j = 0; j < K; ++j) off[j] += st[j][d];
      if (++idx[d] < dims[d]) break;
      for (size_t j = 0; j < K; ++j) off[j] -= st[j][d] * dims[d];
      idx[d] = 0;
    }
  }
}

// ---- elementwise binary
// ----------------------------------------------------------------------------

struct add_op {
  template <class T>
  static T f(T a, T b) {
    return a + b;
  }
};
struct sub_op {
  template <class T>
  static T f(T a, T b) {
    return a - b;
  }
};
struct mul_op {
  template <class T>
  static T f(T a, T b) {
    return a * b;
  }
};
struct div_op {
  template <class T>
  static T f(T a, T b) {
    if constexpr (std::is_integral_v<T>) {
      if (b == 0) return 0;  // refused before the loop; kept safe
      if (b == -1) return T(std::make_unsigned_t<T>(0) - std::make_unsigned_t<T>(a));
    }
    return a / b;
  }
};
struct pow_op {
  template <class T>
  static T f(T a, T b) {
    if constexpr (std::is_integral_v<T>) {
      if (b < 0) return a == 1 ? 1 : 0;
      T r = 1;
      for (T i = 0; i < b && i < 64; ++i)
        r = T(std::make_unsigned_t<T>(r) * std::make_unsigned_t<T>(a));
      return r;
    } else {
      return std::pow(a, b);
    }
  }
};
struct eq_op {
  template <class T>
  static bool f(T a, T b) {
    return a == b;
  }
};
struct gt_op {
  template <class T>
  static bool f(T a, T b) {
    return a > b;
  }
};
struct lt_op {
  template <class T>
  static bool f(T a, T b) {
    return a < b;
  }
};
struct and_op {
  static bool f(bool a, bool b) { return a && b; }
};
struct or_op {
  static bool f(bool a, bool b) { return a || b; }
};

template <class T, class R, class F>
status binary_kernel(const step& s, const value*, void* const* ptr, void*) {
  const T* a = in_ptr<T>(s, ptr, 0);
  const T* b = in_ptr<T>(s, ptr, 1);
  R* y = out_ptr<R>(s, ptr);
  broadcast_loop<2>(s.p.data(), [&](int64_t o, const int64_t* off, int64_t n, const int64_t* in) {
    const T* pa = a + off[0];
    const T* pb = b + off[1];
    R* py = y + o;
    if (in[0] && in[1]) {
      for (int64_t i = 0; i < n; ++i) py[i] = F::f(pa[i], pb[i]);
    } else if (in[0]) {
      const T vb = *pb;
      for (int64_t i = 0; i < n; ++i) py[i] = F::f(pa[i], vb);
    } else if (in[1]) {
      const T va = *pa;
      for (int64_t i = 0; i < n; ++i) py[i] = F::f(va, pb[i]);
    } else {
      const R v = F::f(*pa, *pb);
      for (int64_t i = 0; i < n; ++i) py[i] = v;
    }
  });
  return status::ok();
}

template <class T>
status int_div_kernel(const step& s, const value* v, void* const* ptr, void* work) {
  const T* b = in_ptr<T>(s, ptr, 1);
  for (size_t i = 0; i < v[s.in[1]].count; ++i)
    if (b[i] == 0)
      return status::invalid_argument("node '" + s.n->name + "' (Div): integer division by zero");
  return binary_kernel<T, T, div_op>(s, v, ptr, work);
}

template <class F, bool compare>
kernel pick_binary(data_type t) {
  using B = std::conditional_t<compare, bool, void>;
  switch (t) {
    case data_type::fp32:
      return binary_kernel<float, std::conditional_t<compare, B, float>, F>;
    case data_type::fp64:
      return binary_kernel<double, std::conditional_t<compare, B, double>, F>;
    case data_type::int32:
      return binary_kernel<int32_t, std::conditional_t<compare, B, int32_t>, F>;
    case data_type::int64:
      return binary_kernel<int64_t, std::conditional_t<compare, B, int64_t>, F>;
    default:
      return nullptr;
  }
}

status prepare_broadcast(op_ctx& c, size_t k, data_type out_type) {
  std::vector<int64_t> shape = c.in(0).shape;
  for (size_t i = 1; i < k; ++i) {
    std::vector<int64_t> next;
    if (!broadcast_shape(shape, c.in(i).shape, &next))
      return c.fail("input shapes " + shape_text(c.in(0).shape) + " and " +
                    shape_text(c.in(i).shape) + " do not broadcast");
    shape = std::move(next);
  }
  if (shape.size() > k_max_rank) return c.fail("rank over 16 is not supported");
  std::vector<const std::vector<int64_t>*> ins;
  for (size_t i = 0; i < k; ++i) ins.push_back(&c.in(i).shape);
  broadcast_program(shape, ins, &c.st().p);
  return c.set_out(0, out_type, shape);
}

status same_types(op_ctx& c, size_t k) {
  for (size_t i = 1; i < k; ++i)
    if (c.in(i).type != c.in(0).type)
      return c.fail(std::string("inputs are ") + v2_datatype_name(c.in(0).type) + " and " +
                    v2_datatype_name(c.in(i).type) + "; they must have one type");
  return status::ok();
}

template <class F, bool compare>
status prepare_binary(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(2, 2));
  SHOAL_RETURN_IF_ERROR(same_types(c, 2));
  if (compare && std::is_same_v<F, eq_op> && c.in(0).type == data_type::boolean) {
    c.st().fn = binary_kernel<bool, bool, eq_op>;
  } else {
    SHOAL_RETURN_IF_ERROR(
        c.need_type(0, {data_type::fp32, data_type::fp64, data_type::int32, data_type::int64}));
    c.st().fn = pick_binary<F, compare>(c.in(0).type);
    if (std::is_same_v<F, div_op> && c.in(0).type == data_type::int32)
      c.st().fn = int_div_kernel<int32_t>;
    if (std::is_same_v<F, div_op> && c.in(0).type == data_type::int64)
      c.st().fn = int_div_kernel<int64_t>;
  }
  return prepare_broadcast(c, 2, compare ? data_type::boolean : c.in(0).type);
}

template <class F>
status prepare_logic(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(2, 2));
  SHOAL_RETURN_IF_ERROR(c.need_type(0, {data_type::boolean}));
  SHOAL_RETURN_IF_ERROR(c.need_type(1, {data_type::boolean}));
  c.st().fn = binary_kernel<bool, bool, F>;
  return prepare_broadcast(c, 2, data_type::boolean);
}

template <class T>
status where_kernel(const step& s, const value*, void* const* ptr, void*) {
  const bool* cond = in_ptr<bool>(s, ptr, 0);
  const T* a = in_ptr<T>(s, ptr, 1);
  const T* b = in_ptr<T>(s, ptr, 2);
  T* y = out_ptr<T>(s, ptr);
  broadcast_loop<3>(s.p.data(), [&](int64_t o, const int64_t* off, int64_t n, const int64_t* in) {
    for (int64_t i = 0; i < n; ++i)
      y[o + i] = cond[off[0] + i * in[0]] ? a[off[1] + i * in[1]] : b[off[2] + i * in[2]];
  });
  return status::ok();
}

status prepare_where(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(3, 3));
  SHOAL_RETURN_IF_ERROR(c.need_type(0, {data_type::boolean}));
  if (c.in(1).type != c.in(2).type) return c.fail("X and Y must have one type");
  switch (element_size(c.in(1).type)) {
    case 1:
      c.st().fn = where_kernel<uint8_t>;
      break;
    case 4:
      c.st().fn = where_kernel<uint32_t>;
      break;
    default:
      c.st().fn = where_kernel<uint64_t>;
      break;
  }
  return prepare_broadcast(c, 3, c.in(1).type);
}

// ---- elementwise unary
// -----------------------------------------------------------------------------

struct relu_op {
  template <class T>
  static T f(T x, float) {
    return x < T(0) ? T(0) : x;
  }
};
struct leaky_relu_op {
  template <class T>
  static T f(T x, float a) {
    return x < T(0) ? T(a) * x : x;
  }
};
struct sigmoid_op {
  template <class T>
  static T f(T x, float) {
    return T(1) / (T(1) + std::exp(-x));
  }
};
struct tanh_op {
  template <class T>
  static T f(T x, float) {
    return std::tanh(x);
  }
};
struct erf_op {
  template <class T>
  static T f(T x, float) {
    return std::erf(x);
  }
};
struct gelu_op {
  template <class T>
  static T f(T x, float) {
    return T(0.5) * x * (T(1) + std::erf(x * T(M_SQRT1_2)));
  }
};
struct gelu_tanh_op {
  template <class T>
  static T f(T x, float) {
    return T(0.5) * x * (T(1) + std::tanh(T(0.7978845608028654) * (x + T(0.044715) * x * x * x)));
  }
};
struct sqrt_op {
  template <class T>
  static T f(T x, float) {
    return std::sqrt(x);
  }
};
struct exp_op {
  template <class T>
  static T f(T x, float) {
    return std::exp(x);
  }
};
struct log_op {
  template <class T>
  static T f(T x, float) {
    return std::log(x);
  }
};
struct neg_op {
  template <class T>
  static T f(T x, float) {
    if constexpr (std::is_integral_v<T>)
      return T(std::make_unsigned_t<T>(0) - std::make_unsigned_t<T>(x));
    else
      return -x;
  }
};
struct abs_op {
  template <class T>
  static T f(T x, float) {
    if constexpr (std::is_integral_v<T>)
      return x < 0 ? neg_op::f(x, 0) : x;
    else
      return std::fabs(x);
  }
};
struct reciprocal_op {
  template <class T>
  static T f(T x, float) {
    return T(1) / x;
  }
};
struct not_op {
  static bool f(bool x, float) { return !x; }
};

template <class T, class F>
status unary_kernel(const step& s, const value* v, void* const* ptr, void*) {
  const T* x = in_ptr<T>(s, ptr, 0);
  T* y = out_ptr<T>(s, ptr);
  const float a = s.f.empty() ? 0.0f : s.f[0];
  const size_t n = v[s.out[0]].count;
  for (size_t i = 0; i < n; ++i) y[i] = F::f(x[i], a);
  return status::ok();
}

template <class F, bool ints>
status prepare_unary(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(1, 1));
  const data_type t = c.in(0).type;
  if (ints) {
    SHOAL_RETURN_IF_ERROR(
        c.need_type(0, {data_type::fp32, data_type::fp64, data_type::int32, data_type::int64}));
  } else {
    SHOAL_RETURN_IF_ERROR(c.need_type(0, {data_type::fp32, data_type::fp64}));
  }
  if (t == data_type::fp32) c.st().fn = unary_kernel<float, F>;
  if (t == data_type::fp64) c.st().fn = unary_kernel<double, F>;
  if constexpr (ints) {
    if (t == data_type::int32) c.st().fn = unary_kernel<int32_t, F>;
    if (t == data_type::int64) c.st().fn = unary_kernel<int64_t, F>;
  }
  return c.set_out(0, t, c.in(0).shape);
}

status prepare_leaky_relu(op_ctx& c) {
  c.st().f = {c.n().attr_f("alpha", 0.01f)};
  return prepare_unary<leaky_relu_op, false>(c);
}

status prepare_gelu(op_ctx& c) {
  const std::string approx = c.n().attr_s("approximate", "none");
  if (approx == "tanh") return prepare_unary<gelu_tanh_op, false>(c);
  if (approx != "none") return c.fail("approximate='" + approx + "' is not 'none' or 'tanh'");
  return prepare_unary<gelu_op, false>(c);
}

status prepare_not(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(1, 1));
  SHOAL_RETURN_IF_ERROR(c.need_type(0, {data_type::boolean}));
  c.st().fn = unary_kernel<bool, not_op>;
  return c.set_out(0, data_type::boolean, c.in(0).shape);
}

// ---- softmax
// ---------------------------------------------------------------------------------------

template <bool log>
status softmax_kernel(const step& s, const value*, void* const* ptr, void*) {
  const float* x = in_ptr<float>(s, ptr, 0);
  float* y = out_ptr<float>(s, ptr);
  const int64_t outer = s.p[0], n = s.p[1], inner = s.p[2];
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const float* px = x + o * n * inner + i;
      float* py = y + o * n * inner + i;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < n; ++j) m = std::max(m, px[j * inner]);
      if (std::isinf(m)) m = 0;  // all -inf (or +inf): let exp give what it gives
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        const float e = std::exp(px[j * inner] - m);
        if (!log) py[j * inner] = e;
        sum += e;
      }
      if (log) {
        const float l = float(std::log(sum));
        for (int64_t j = 0; j < n; ++j) py[j * inner] = px[j * inner] - m - l;
      } else {
        const float inv = float(1.0 / sum);
        for (int64_t j = 0; j < n; ++j) py[j * inner] *= inv;
      }
    }
  }
  return status::ok();
}

template <bool log>
status prepare_softmax(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(1, 1));
  SHOAL_RETURN_IF_ERROR(c.need_type(0, {data_type::fp32}));
  const auto& shape = c.in(0).shape;
  int64_t axis = 0;
  const int64_t want = c.n().attr_i("axis", c.opset() >= 13 ? -1 : 1);
  if (!norm_axis(want, std::max<size_t>(shape.size(), 1), &axis))
    return c.fail("axis " + std::to_string(want) + " is outside rank " +
                  std::to_string(shape.size()));
  if (c.opset() >= 13) {
    c.st().p = {dims_product(shape, 0, size_t(axis)), shape.empty() ? 1 : shape[size_t(axis)],
                dims_product(shape, size_t(axis) + 1, shape.size())};
  } else {  // before 13: the input is coerced to 2-D at axis
    c.st().p = {dims_product(shape, 0, size_t(axis)),
                dims_product(shape, size_t(axis), shape.size()), 1};
  }
  c.st().fn = softmax_kernel<log>;
  return c.set_out(0, data_type::fp32, shape);
}

// ---- Gemm and MatMul
// --------------------------------------------------------------------------------

status gemm_kernel(const step& s, const value*, void* const* ptr, void*) {
  const int64_t M = s.p[0], N = s.p[1], K = s.p[2], ta = s.p[3], tb = s.p[4], has_c = s.p[5];
  const int64_t c_rs = s.p[6], c_cs = s.p[7];
  const float alpha = s.f[0], beta = s.f[1];
  const float* a = in_ptr<float>(s, ptr, 0);
  const float* b = in_ptr<float>(s, ptr, 1);
  float* y = out_ptr<float>(s, ptr);
  if (M == 0 || N == 0) return status::ok();
  float blas_beta = 0;
  if (has_c && beta != 0) {
    const float* cc = in_ptr<float>(s, ptr, 2);
    for (int64_t m = 0; m < M; ++m) {
      float* row = y + m * N;
      const float* crow = cc + m * c_rs;
      if (c_cs == 1 && beta == 1.0f) {
        std::memcpy(row, crow, size_t(N) * sizeof(float));
      } else {
        for (int64_t n = 0; n < N; ++n) row[n] = beta * crow[n * c_cs];
      }
    }
    blas_beta = 1;
  }
  if (K == 0) {
    if (blas_beta == 0) std::memset(y, 0, size_t(M * N) * sizeof(float));
    return status::ok();
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M),
              int(N), int(K), alpha, a, int(ta ? M : K), b, int(tb ? K : N), blas_beta, y, int(N));
  return status::ok();
}

// Gemm or MatMul with weights known at plan time: p = rows, N, K, has_c, c_rs, c_cs, isa;
// f = beta; extra = B packed.
status packed_gemm_kernel(const step& s, const value*, void* const* ptr, void*) {
  const int64_t M = s.p[0], N = s.p[1], K = s.p[2], has_c = s.p[3], c_rs = s.p[4], c_cs = s.p[5];
  const float beta = s.f[0];
  float* y = out_ptr<float>(s, ptr);
  if (M == 0 || N == 0) return status::ok();
  bool accumulate = false;
  if (has_c && beta != 0) {
    const float* cc = in_ptr<float>(s, ptr, 2);
    for (int64_t m = 0; m < M; ++m) {
      float* row = y + m * N;
      const float* crow = cc + m * c_rs;
      if (c_cs == 1 && beta == 1.0f) {
        std::memcpy(row, crow, size_t(N) * sizeof(float));
      } else {
        for (int64_t n = 0; n < N; ++n) row[n] = beta * crow[n * c_cs];
      }
    }
    accumulate = true;
  }
  packed_gemm(int(s.p[6]), in_ptr<float>(s, ptr, 0), M, K,
              reinterpret_cast<const float*>(s.extra->bytes.data()), N, y, accumulate);
  return status::ok();
}

status prepare_gemm(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(2, 3));
  SHOAL_RETURN_IF_ERROR(c.need_type(0, {data_type::fp32}));
  SHOAL_RETURN_IF_ERROR(c.need_type(1, {data_type::fp32}));
  const auto& a = c.in(0).shape;
  const auto& b = c.in(1).shape;
  if (a.size() != 2 || b.size() != 2)
    return c.fail("A and B must be 2-D, are " + shape_text(a) + " and " + shape_text(b));
  const int64_t ta = c.n().attr_i("transA", 0), tb = c.n().attr_i("transB", 0);
  const int64_t M = ta ? a[1] : a[0], K = ta ? a[0] : a[1];
  const int64_t KB = tb ? b[1] : b[0], N = tb ? b[0] : b[1];
  if (K != KB)
    return c.fail(
        "A " + shape_text(a) + " and B " + shape_text(b) + " do not multiply" +
        (ta || tb ? " (with transA=" + std::to_string(ta) + ", transB=" + std::to_string(tb) + ")"
                  : ""));
  if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
    return c.fail("dims over 2^31 are not supported");
  int64_t has_c = 0, c_rs = 0, c_cs = 0;
  if (c.has(2)) {
    SHOAL_RETURN_IF_ERROR(c.need_type(2, {data_type::fp32}));
    std::vector<int64_t> cs = c.in(2).shape;
    if (cs.size() > 2) return c.fail("C must have rank 2 or less, is " + shape_text(cs));
    while (cs.size() < 2) cs.insert(cs.begin(), 1);
    if ((cs[0] != 1 && cs[0] != M) || (cs[1] != 1 && cs[1] != N))
      return c.fail("C " + shape_text(c.in(2).shape) + " does not broadcast to [" +
                    std::to_string(M) + "," + std::to_string(N) + "]");
    has_c = 1;
    c_cs = cs[1] == 1 ? 0 : 1;
    c_rs = cs[0] == 1 ? 0 : cs[1];
  }
  c.st().p = {M, N, K, ta, tb, has_c, c_rs, c_cs};
  c.st().f = {c.n().attr_f("alpha", 1.0f), c.n().attr_f("beta", 1.0f)};
  c.st().fn = gemm_kernel;
  if (!ta && c.st().f[0] == 1.0f && !c.const_data(0)) {
    if (auto packed = c.packed(1, tb != 0, K, N)) {
      c.st().p = {M, N, K, has_c, c_rs, c_cs, packed_gemm_isa()};
      c.st().f = {c.st().f[1]};
      c.st().extra = std::move(packed);
      c.st().fn = packed_gemm_kernel;
    }
  }
  return c.set_out(0, data_type::fp32, {M, N});
}

status matmul_kernel(const step& s, const value*, void* const* ptr, void*) {
  const float* a = in_ptr<float>(s, ptr, 0);
  const float* b = in_ptr<float>(s, ptr, 1);
  float* y = out_ptr<float>(s, ptr);
  const int64_t M = s.p[0], N = s.p[1], K = s.p[2], nb = s.p[3];
  if (M == 0 || N == 0 || nb == 0) return status::ok();
  if (K == 0) {
    std::memset(y, 0, size_t(nb * M * N) * sizeof(float));
    return status::ok();
  }
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t ao = s.p[size_t(4 + i)], bo = s.p[size_t(4 + nb + i)];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(M), int(N), int(K), 1.0f, a + ao,
                int(K), b + bo, int(N), 0.0f, y + i * M * N, int(N));
  }
  return status::ok();
}

status prepare_matmul(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(2, 2));
  SHOAL_RETURN_IF_ERROR(c.need_type(0, {data_type::fp32}));
  SHOAL_RETURN_IF_ERROR(c.need_type(1, {data_type::fp32}));
  std::vector<int64_t> a = c.in(0).shape, b = c.in(1).shape;
  if (a.empty() || b.empty()) return c.fail("inputs must not be scalars");
  const bool a1 = a.size() == 1, b1 = b.size() == 1;
  if (a1) a.insert(a.begin(), 1);
  if (b1) b.push_back(1);
  const int64_t M = a[a.size() - 2], K = a.back(), N = b.back();
  if (b[b.size() - 2] != K)
    return c.fail("shapes " + shape_text(c.in(0).shape) + " and " + shape_text(c.in(1).shape) +
                  " do not multiply");
  if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
    return c.fail("dims over 2^31 are not supported");
  std::vector<int64_t> ab(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2), batch;
  if (!broadcast_shape(ab, bb, &batch))
    return c.fail("batch dims of " + shape_text(c.in(0).shape) + " and " +
                  shape_text(c.in(1).shape) + " do not broadcast");
  std::vector<int64_t> out = batch;
  if (!a1) out.push_back(M);
  if (!b1) out.push_back(N);
  auto& p = c.st().p;
  const int64_t nb = dims_product(batch, 0, batch.size());
  if (bb.empty() || dims_product(bb, 0, bb.size()) == 1) {
    // B is one matrix: A's batch folds into its rows, one sgemm.
    p = {nb * M, N, K, nb == 0 ? 0 : 1, 0, 0};
    if (!c.const_data(0)) {
      if (auto packed = c.packed(1, false, K, N)) {
        p = {nb * M, N, K, 0, 0, 0, packed_gemm_isa()};
        c.st().f = {0.0f};
        c.st().extra = std::move(packed);
        c.st().fn = packed_gemm_kernel;
        return c.set_out(0, data_type::fp32, out);
      }
    }
  } else {
    if (nb > (int64_t(1) << 20)) return c.fail("over 2^20 matrices in a batch");
    p = {M, N, K, nb};
    std::vector<int64_t> aoff, boff;
    // Offsets of each batch matrix, by broadcasting a counter over the batch shape.
    std::vector<int64_t> prog;
    std::vector<int64_t> ones_a = ab, ones_b = bb;
    broadcast_program(batch, {&ones_a, &ones_b}, &prog);
    broadcast_loop<2>(prog.data(), [&](int64_t, const int64_t* off, int64_t n, const int64_t* in) {
      for (int64_t i = 0; i < n; ++i) {
        aoff.push_back((off[0] + i * in[0]) * M * K);
        boff.push_back((off[1] + i * in[1]) * K * N);
      }
    });
    p.insert(p.end(), aoff.begin(), aoff.end());
    p.insert(p.end(), boff.begin(), boff.end());
  }
  c.st().fn = matmul_kernel;
  return c.set_out(0, data_type::fp32, out);
}

// ---- reductions
// -------------------------------------------------------------------------------------

enum class reduce_kind { sum, mean, max };

template <class T>
using acc_t = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

template <class T, reduce_kind R>
void acc_add(acc_t<T>& a, T x) {
  if constexpr (R == reduce_kind::max) {
    if (x > a || (std::is_floating_point_v<T> && std::isnan(double(x)))) a = x;
  } else {
    a += x;
  }
}

template <class T, reduce_kind R>
acc_t<T> acc_init() {
  if constexpr (R == reduce_kind::max) {
    if constexpr (std::is_floating_point_v<T>)
      return -std::numeric_limits<double>::infinity();
    else
      return std::numeric_limits<int64_t>::min();
  }
  return 0;
}

template <class T, reduce_kind R>
T acc_done(acc_t<T> a, int64_t count) {
  if constexpr (R == reduce_kind::mean) {
    if constexpr (std::is_integral_v<T>)
      return count ? T(a / count) : T(0);
    else
      return T(a / double(count));
  }
  return T(a);
}

template <class T, reduce_kind R>
status reduce_kernel(const step& s, const value* v, void* const* ptr, void* work) {
  const T* x = in_ptr<T>(s, ptr, 0);
  T* y = out_ptr<T>(s, ptr);
  acc_t<T>* acc = static_cast<acc_t<T>*>(work);
  if (s.p[0] == 0) {  // outer, r, inner
    const int64_t outer = s.p[1], r = s.p[2], inner = s.p[3];
    for (int64_t o = 0; o < outer; ++o) {
      const T* px = x + o * r * inner;
      if (inner == 1) {
        acc_t<T> a = acc_init<T, R>();
        for (int64_t j = 0; j < r; ++j) acc_add<T, R>(a, px[j]);
        y[o] = acc_done<T, R>(a, r);
        continue;
      }
      if constexpr (std::is_same_v<T, float> && R != reduce_kind::max) {
        // Sum rows straight into the output (a loop the compiler vectorizes), as PyTorch does.
        float* py = y + o * inner;
        std::memcpy(py, px, size_t(inner) * sizeof(float));
        for (int64_t j = 1; j < r; ++j)
          for (int64_t i = 0; i < inner; ++i) py[i] += px[j * inner + i];
        if (R == reduce_kind::mean)
          for (int64_t i = 0; i < inner; ++i) py[i] /= float(r);
        continue;
      }
      for (int64_t i = 0; i < inner; ++i) acc[i] = acc_init<T, R>();
      for (int64_t j = 0; j < r; ++j)
        for (int64_t i = 0; i < inner; ++i) acc_add<T, R>(acc[i], px[j * inner + i]);
      for (int64_t i = 0; i < inner; ++i) y[o * inner + i] = acc_done<T, R>(acc[i], r);
    }
    return status::ok();
  }
  // General: walk the input, adding each element into its output's accumulator.
  const int64_t rank = s.p[1];
  const int64_t* dims = s.p.data() + 2;
  const int64_t* ost = dims + rank;
  const int64_t r = ost[rank];
  const size_t n_out = v[s.out[0]].count, n_in = v[s.in[0]].count;
  for (size_t i = 0; i < n_out; ++i) acc[i] = acc_init<T, R>();
  int64_t idx[k_max_rank] = {};
  int64_t o = 0;
  for (size_t i = 0; i < n_in; ++i) {
    acc_add<T, R>(acc[o], x[i]);
    for (int64_t d = rank - 1; d >= 0; --d) {
      o += ost[d];
      if (++idx[d] < dims[d]) break;
      o -= ost[d] * dims[d];
      idx[d] = 0;
    }
  }
  for (size_t i = 0; i < n_out; ++i) y[i] = acc_done<T, R>(acc[i], r);
  return status::ok();
}

template <reduce_kind R>
status prepare_reduce(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(1, 2));
  SHOAL_RETURN_IF_ERROR(
      c.need_type(0, {data_type::fp32, data_type::fp64, data_type::int32, data_type::int64}));
  const bool axes_input = R == reduce_kind::sum ? c.opset() >= 13 : c.opset() >= 18;
  std::vector<int64_t> axes;
  if (axes_input) {
    if (c.has(1)) {
      auto r = c.const_ints(1, "axes");
      if (!r) return r.error();
      axes = *r;
    }
  } else {
    if (c.has(1))
      return c.fail("takes axes as an attribute before opset " +
                    std::to_string(R == reduce_kind::sum ? 13 : 18));
    if (const attribute* a = c.n().attr("axes")) axes = a->ints;
  }
  const auto& shape = c.in(0).shape;
  const bool keep = c.n().attr_i("keepdims", 1) != 0;
  if (axes.empty() && c.n().attr_i("noop_with_empty_axes", 0) != 0) return c.set_alias(shape);
  std::vector<char> red(shape.size(), axes.empty() ? 1 : 0);
  for (int64_t a : axes) {
    int64_t ax = 0;
    if (!norm_axis(a, shape.size(), &ax))
      return c.fail("axis " + std::to_string(a) + " is outside rank " +
                    std::to_string(shape.size()));
    red[size_t(ax)] = 1;
  }
  if (shape.size() > k_max_rank) return c.fail("rank over 16 is not supported");
  std::vector<int64_t> out;
  int64_t r = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (red[d]) r *= shape[d];
    if (!red[d])
      out.push_back(shape[d]);
    else if (keep)
      out.push_back(1);
  }
  // Is the reduced part one block (outer, r, inner) once size-1 dims are ignored?
  int first = -1, last = -1;
  bool block = true;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1 || !red[d]) continue;
    if (first < 0)
      first = int(d);
    else if (last + 1 != int(d)) {
      for (int e = last + 1; e < int(d); ++e) block = block && shape[size_t(e)] == 1;
    }
    last = int(d);
  }
  auto& p = c.st().p;
  size_t acc_count = 0;
  if (block) {
    const size_t lo = first < 0 ? shape.size() : size_t(first);
    const size_t hi = first < 0 ? shape.size() : size_t(last) + 1;
    const int64_t inner = dims_product(shape, hi, shape.size());
    p = {0, dims_product(shape, 0, lo), r, inner};
    acc_count = size_t(inner);
  } else {
    // Output strides per input dim (0 where reduced).
    std::vector<int64_t> kept;
    for (size_t d = 0; d < shape.size(); ++d) kept.push_back(red[d] ? 1 : shape[d]);
    auto ks = strides_of(kept);
    p = {1, int64_t(shape.size())};
    p.insert(p.end(), shape.begin(), shape.end());
    for (size_t d = 0; d < shape.size(); ++d) p.push_back(red[d] ? 0 : ks[d]);
    p.push_back(r);
    acc_count = size_t(dims_product(out, 0, out.size()));
  }
  const data_type t = c.in(0).type;
  c.st().work_bytes = acc_count * 8;
  switch (t) {
    case data_type::fp32:
      c.st().fn = reduce_kernel<float, R>;
      break;
    case data_type::fp64:
      c.st().fn = reduce_kernel<double, R>;
      break;
    case data_type::int32:
      c.st().fn = reduce_kernel<int32_t, R>;
      break;
    default:
      c.st().fn = reduce_kernel<int64_t, R>;
      break;
  }
  return c.set_out(0, t, out);
}

// ---- LayerNormalization
// -----------------------------------------------------------------------------

status layer_norm_kernel(const step& s, const value*, void* const* ptr, void*) {
  const float* x = in_ptr<float>(s, ptr, 0);
  const float* scale = in_ptr<float>(s, ptr, 1);
  const float* bias = s.p[2] ? in_ptr<float>(s, ptr, 2) : nullptr;
  float* y = out_ptr<float>(s, ptr);
  const int64_t outer = s.p[0], n = s.p[1];
  const double eps = s.f[0];
  for (int64_t o = 0; o < outer; ++o) {
    const float* px = x + o * n;
    float* py = y + o * n;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; ++i) mean += px[i];
    mean /= double(n);
    for (int64_t i = 0; i < n; ++i) var += (px[i] - mean) * (px[i] - mean);
    var /= double(n);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < n; ++i) {
      const float v = float((px[i] - mean) * inv) * scale[i];
      py[i] = bias ? v + bias[i] : v;
    }
  }
  return status::ok();
}

status prepare_layer_norm(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(2, 3));
  for (size_t i = 0; i < 3; ++i)
    if (c.has(i)) SHOAL_RETURN_IF_ERROR(c.need_type(i, {data_type::fp32}));
  if (c.has_out(1) || c.has_out(2))
    return c.fail("its Mean and InvStdDev outputs are not supported (inference uses Y only)");
  const auto& shape = c.in(0).shape;
  int64_t axis = 0;
  const int64_t want = c.n().attr_i("axis", -1);
  if (!norm_axis(want, shape.size(), &axis))
    return c.fail("axis " + std::to_string(want) + " is outside rank " +
                  std::to_string(shape.size()));
  const int64_t n = dims_product(shape, size_t(axis), shape.size());
  if (int64_t(c.in(1).count) != n || (c.has(2) && int64_t(c.in(2).count) != n))
    return c.fail("Scale and B must have the " + std::to_string(n) +
                  " elements of the normalized dims");
  c.st().p = {dims_product(shape, 0, size_t(axis)), n, c.has(2) ? 1 : 0};
  c.st().f = {c.n().attr_f("epsilon", 1e-5f)};
  c.st().fn = layer_norm_kernel;
  return c.set_out(0, data_type::fp32, shape);
}

}  // namespace

const std::map<std::string, prepare_fn>& math_ops() {
  static const std::map<std::string, prepare_fn> ops = {
      {"Add", prepare_binary<add_op, false>},
      {"Sub", prepare_binary<sub_op, false>},
      {"Mul", prepare_binary<mul_op, false>},
      {"Div", prepare_binary<div_op, false>},
      {"Pow", prepare_binary<pow_op, false>},
      {"Equal", prepare_binary<eq_op, true>},
      {"Greater", prepare_binary<gt_op, true>},
      {"Less", prepare_binary<lt_op, true>},
      {"And", prepare_logic<and_op>},
      {"Or", prepare_logic<or_op>},
      {"Not", prepare_not},
      {"Where", prepare_where},
      {"Relu", prepare_unary<relu_op, true>},
      {"LeakyRelu", prepare_leaky_relu},
      {"Sigmoid", prepare_unary<sigmoid_op, false>},
      {"Tanh", prepare_unary<tanh_op, false>},
      {"Erf", prepare_unary<erf_op, false>},
      {"Gelu", prepare_gelu},
      {"Sqrt", prepare_unary<sqrt_op, false>},
      {"Exp", prepare_unary<exp_op, false>},
      {"Log", prepare_unary<log_op, false>},
      {"Neg", prepare_unary<neg_op, true>},
      {"Abs", prepare_unary<abs_op, true>},
      {"Reciprocal", prepare_unary<reciprocal_op, false>},
      {"Softmax", prepare_softmax<false>},
      {"LogSoftmax", prepare_softmax<true>},
      {"Gemm", prepare_gemm},
      {"MatMul", prepare_matmul},
      {"ReduceSum", prepare_reduce<reduce_kind::sum>},
      {"ReduceMean", prepare_reduce<reduce_kind::mean>},
      {"ReduceMax", prepare_reduce<reduce_kind::max>},
      {"LayerNormalization", prepare_layer_norm},
  };
  return ops;
}

}  // namespace shoal::onnx_exec
