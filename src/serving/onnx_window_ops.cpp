// Window operators over [N,C,L]: Conv (im2col, then one sgemm per item) and MaxPool, 1-D only;
// a 2-D or 3-D input is refused with a message that says so.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "serving/onnx_plan.hpp"

namespace shoal::onnx_exec {
namespace {

// Reads pads/strides/dilations of a 1-D window op; fills begin/end pads, stride, dilation.
status window_attrs(op_ctx& c, int64_t L, int64_t k, int64_t* pb, int64_t* pe, int64_t* stride,
                    int64_t* dil) {
  const node& n = c.n();
  auto one = [&](const char* name, int64_t fallback, int64_t* out) -> status {
    *out = fallback;
    if (const attribute* a = n.attr(name)) {
      if (a->ints.size() != 1)
        return c.fail(std::string(name) + " must have one value for a 1-D input");
      *out = a->ints[0];
    }
    if (*out < 1) return c.fail(std::string(name) + " must be positive");
    return status::ok();
  };
  SHOAL_RETURN_IF_ERROR(one("strides", 1, stride));
  SHOAL_RETURN_IF_ERROR(one("dilations", 1, dil));
  *pb = *pe = 0;
  const std::string auto_pad = n.attr_s("auto_pad", "NOTSET");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    const int64_t out = (L + *stride - 1) / *stride;
    const int64_t total = std::max<int64_t>((out - 1) * *stride + (k - 1) * *dil + 1 - L, 0);
    *pb = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    *pe = total - *pb;
  } else if (auto_pad == "NOTSET") {
    if (const attribute* a = n.attr("pads")) {
      if (a->ints.size() != 2) return c.fail("pads must have two values for a 1-D input");
      *pb = a->ints[0];
      *pe = a->ints[1];
      if (*pb < 0 || *pe < 0) return c.fail("pads must not be negative");
    }
  } else if (auto_pad != "VALID") {
    return c.fail("auto_pad '" + auto_pad + "' is not supported");
  }
  return status::ok();
}

status conv_kernel(const step& s, const value*, void* const* ptr, void* work) {
  const int64_t N = s.p[0], C = s.p[1], L = s.p[2], M = s.p[3], k = s.p[4], Lout = s.p[5],
                stride = s.p[6], dil = s.p[7], pb = s.p[8], has_b = s.p[9];
  const float* x = in_ptr<float>(s, ptr, 0);
  const float* w = in_ptr<float>(s, ptr, 1);
  const float* b = has_b ? in_ptr<float>(s, ptr, 2) : nullptr;
  float* y = out_ptr<float>(s, ptr);
  float* col = static_cast<float*>(work);
  if (M == 0 || Lout == 0) return status::ok();
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x + n * C * L;
    for (int64_t ch = 0; ch < C; ++ch) {
      for (int64_t j = 0; j < k; ++j) {
        float* row = col + (ch * k + j) * Lout;
        for (int64_t o = 0; o < Lout; ++o) {
          const int64_t at = o * stride - pb + j * dil;
          row[o] = at >= 0 && at < L ? xn[ch * L + at] : 0.0f;
        }
      }
    }
    float* yn = y + n * M * Lout;
    if (C * k == 0) {
      std::memset(yn, 0, size_t(M * Lout) * sizeof(float));
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(M), int(Lout), int(C * k), 1.0f, w,
                  int(C * k), col, int(Lout), 0.0f, yn, int(Lout));
    }
    if (b)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t o = 0; o < Lout; ++o) yn[m * Lout + o] += b[m];
  }
  return status::ok();
}

status need_1d(op_ctx& c, const char* op) {
  const auto& x = c.in(0).shape;
  if (x.size() == 3) return status::ok();
  if (x.size() >= 4)
    return c.fail("input " + shape_text(x) + " makes this a " + std::to_string(x.size() - 2) +
                  "-D " + op + "; Shoal runs 1-D " + op + "s only (input [N,C,L])");
  return c.fail("input " + shape_text(x) + " must be [N,C,L]");
}

status prepare_conv(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(2, 3));
  for (size_t i = 0; i < 3; ++i)
    if (c.has(i)) SHOAL_RETURN_IF_ERROR(c.need_type(i, {data_type::fp32}));
  SHOAL_RETURN_IF_ERROR(need_1d(c, "convolution"));
  if (c.n().attr_i("group", 1) != 1) return c.fail("group must be 1");
  const auto& x = c.in(0).shape;
  const auto& w = c.in(1).shape;
  if (w.size() != 3 || w[1] != x[1])
    return c.fail("weights " + shape_text(w) + " do not fit input " + shape_text(x));
  const int64_t k = w[2];
  if (const attribute* ks = c.n().attr("kernel_shape"))
    if (ks->ints.size() != 1 || ks->ints[0] != k)
      return c.fail("kernel_shape disagrees with the weights");
  if (c.has(2) && int64_t(c.in(2).count) != w[0])
    return c.fail("B must have one value per output channel");
  int64_t pb, pe, stride, dil;
  SHOAL_RETURN_IF_ERROR(window_attrs(c, x[2], k, &pb, &pe, &stride, &dil));
  const int64_t span = (k - 1) * dil + 1;
  const int64_t lout = (x[2] + pb + pe - span) / stride + 1;
  if (x[2] + pb + pe < span)
    return c.fail("input length " + std::to_string(x[2]) + " is shorter than the kernel");
  const double work = double(x[1]) * double(k) * double(lout) * 4;
  if (work > double(k_tensor_limit))
    return c.fail("would need " + bytes_text(work) + " of scratch");
  c.st().p = {x[0], x[1], x[2], w[0], k, lout, stride, dil, pb, c.has(2) ? 1 : 0};
  c.st().work_bytes = size_t(work);
  c.st().fn = conv_kernel;
  return c.set_out(0, data_type::fp32, {x[0], w[0], lout});
}

status max_pool_kernel(const step& s, const value*, void* const* ptr, void*) {
  const int64_t rows = s.p[0], L = s.p[1], k = s.p[2], Lout = s.p[3], stride = s.p[4], dil = s.p[5],
                pb = s.p[6];
  const float* x = in_ptr<float>(s, ptr, 0);
  float* y = out_ptr<float>(s, ptr);
  for (int64_t r = 0; r < rows; ++r) {
    const float* px = x + r * L;
    for (int64_t o = 0; o < Lout; ++o) {
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < k; ++j) {
        const int64_t at = o * stride - pb + j * dil;
        if (at < 0 || at >= L) continue;
        if (px[at] > m || std::isnan(px[at])) m = px[at];
        if (std::isnan(m)) break;
      }
      y[r * Lout + o] = m;
    }
  }
  return status::ok();
}

status prepare_max_pool(op_ctx& c) {
  SHOAL_RETURN_IF_ERROR(c.need_inputs(1, 1));
  SHOAL_RETURN_IF_ERROR(c.need_type(0, {data_type::fp32}));
  SHOAL_RETURN_IF_ERROR(need_1d(c, "max pool"));
  if (c.has_out(1)) return c.fail("its Indices output is not supported");
  const attribute* ks = c.n().attr("kernel_shape");
  if (!ks || ks->ints.size() != 1 || ks->ints[0] < 1)
    return c.fail("kernel_shape must be one positive value for a 1-D input");
  const auto& x = c.in(0).shape;
  const int64_t k = ks->ints[0];
  int64_t pb, pe, stride, dil;
  SHOAL_RETURN_IF_ERROR(window_attrs(c, x[2], k, &pb, &pe, &stride, &dil));
  const int64_t span = (k - 1) * dil + 1;
  if (x[2] + pb + pe < span)
    return c.fail("input length " + std::to_string(x[2]) + " is shorter than the window");
  int64_t lout = 0;
  if (c.n().attr_i("ceil_mode", 0)) {
    lout = (x[2] + pb + pe - span + stride - 1) / stride + 1;
    if ((lout - 1) * stride >= x[2] + pb) --lout;  // the last window must start inside
  } else {
    lout = (x[2] + pb + pe - span) / stride + 1;
  }
  c.st().p = {x[0] * x[1], x[2], k, lout, stride, dil, pb};
  c.st().fn = max_pool_kernel;
  return c.set_out(0, data_type::fp32, {x[0], x[1], lout});
}

}  // namespace

const std::map<std::string, prepare_fn>& window_ops() {
  static const std::map<std::string, prepare_fn> ops = {
      {"Conv", prepare_conv},
      {"MaxPool", prepare_max_pool},
  };
  return ops;
}

}  // namespace shoal::onnx_exec
