// The packed sgemm for weights known at plan time (Gemm and MatMul with a constant B): B is packed
// once into panels of 16 columns, so a call streams the weights without OpenBLAS's per-call
// packing, with AVX-512 or AVX2+FMA kernels chosen by what the CPU runs. Small batches (a
// chatbot's one text) are where that matters: OpenBLAS packs all of B for every call.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "serving/onnx_plan.hpp"

namespace shoal::onnx_exec {
namespace {

constexpr int64_t k_panel = 16;

// y rows [R][16] (row stride ldy) (+)= a rows [R][K] (row stride lda) x one packed panel [K][16].
template <int R>
__attribute__((target("avx512f"))) void panel_avx512(const float* a, int64_t lda, const float* b,
                                                     int64_t K, float* y, int64_t ldy,
                                                     bool accumulate) {
  __m512 c[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    c[r] = accumulate ? _mm512_loadu_ps(y + r * ldy) : _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m512 bv = _mm512_loadu_ps(b + k * k_panel);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) c[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r * lda + k]), bv, c[r]);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(y + r * ldy, c[r]);
}

// The same over two neighbouring panels (32 columns): 2 weight loads and R broadcasts feed 2R
// FMAs, so the FMA units rather than the loads set the pace.
template <int R>
__attribute__((target("avx512f"))) void panel2_avx512(const float* a, int64_t lda, const float* b,
                                                      int64_t K, float* y, int64_t ldy,
                                                      bool accumulate) {
  __m512 c0[R], c1[R];
  const float* b1 = b + K * k_panel;
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    c0[r] = accumulate ? _mm512_loadu_ps(y + r * ldy) : _mm512_setzero_ps();
    c1[r] = accumulate ? _mm512_loadu_ps(y + r * ldy + k_panel) : _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < K; ++k) {
    const __m512 v0 = _mm512_loadu_ps(b + k * k_panel), v1 = _mm512_loadu_ps(b1 + k * k_panel);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda + k]);
      c0[r] = _mm512_fmadd_ps(av, v0, c0[r]);
      c1[r] = _mm512_fmadd_ps(av, v1, c1[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    _mm512_storeu_ps(y + r * ldy, c0[r]);
    _mm512_storeu_ps(y + r * ldy + k_panel, c1[r]);
  }
}

template <int R>
__attribute__((target("avx2,fma"))) void panel_avx2(const float* a, int64_t lda, const float* b,
                                                    int64_t K, float* y, int64_t ldy,
                                                    bool accumulate) {
  __m256 lo[R], hi[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    lo[r] = accumulate ? _mm256_loadu_ps(y + r * ldy) : _mm256_setzero_ps();
    hi[r] = accumulate ? _mm256_loadu_ps(y + r * ldy + 8) : _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b + k * k_panel), b1 = _mm256_loadu_ps(b + k * k_panel + 8);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + k);
      lo[r] = _mm256_fmadd_ps(av, b0, lo[r]);
      hi[r] = _mm256_fmadd_ps(av, b1, hi[r]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(y + r * ldy, lo[r]);
    _mm256_storeu_ps(y + r * ldy + 8, hi[r]);
  }
}

using panel_fn = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, bool);

template <int R>
panel_fn panel_of(int isa) {
  return isa == 2 ? panel_avx512<R> : panel_avx2<R>;
}

// Runs `rows` (1..8) rows against one panel; a panel with fewer than 16 live columns goes through
// a 16-wide copy of y so the kernels never touch bytes past the row.
void run_panel(int isa, const float* a, int64_t K, const float* b, float* y, int64_t N,
               int64_t rows, int64_t cols, bool accumulate) {
  static const panel_fn avx512[8] = {panel_of<1>(2), panel_of<2>(2), panel_of<3>(2),
                                     panel_of<4>(2), panel_of<5>(2), panel_of<6>(2),
                                     panel_of<7>(2), panel_of<8>(2)};
  static const panel_fn avx2[4] = {panel_of<1>(1), panel_of<2>(1), panel_of<3>(1), panel_of<4>(1)};
  const int64_t step = isa == 2 ? 8 : 4;
  for (int64_t r0 = 0; r0 < rows; r0 += step) {
    const int64_t n = std::min(step, rows - r0);
    const panel_fn fn = isa == 2 ? avx512[n - 1] : avx2[n - 1];
    const float* ar = a + r0 * K;
    float* yr = y + r0 * N;
    if (cols == k_panel) {
      fn(ar, K, b, K, yr, N, accumulate);
      continue;
    }
    float tmp[8 * k_panel] = {};
    if (accumulate)
      for (int64_t r = 0; r < n; ++r) std::memcpy(tmp + r * k_panel, yr + r * N, size_t(cols) * 4);
    fn(ar, K, b, K, tmp, k_panel, accumulate);
    for (int64_t r = 0; r < n; ++r) std::memcpy(yr + r * N, tmp + r * k_panel, size_t(cols) * 4);
  }
}

}  // namespace

int packed_gemm_isa() {
  static const int isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
    return 0;
  }();
  return isa;
}

std::shared_ptr<const blob> pack_b(const float* b, bool trans, int64_t K, int64_t N) {
  auto p = std::make_shared<blob>();
  const int64_t panels = (N + k_panel - 1) / k_panel;
  p->type = data_type::fp32;
  p->shape = {panels, K, k_panel};
  p->bytes.assign(size_t(panels * K * k_panel) * sizeof(float), 0);
  float* out = reinterpret_cast<float*>(p->bytes.data());
  for (int64_t pn = 0; pn < panels; ++pn)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < k_panel && pn * k_panel + j < N; ++j) {
        const int64_t n = pn * k_panel + j;
        out[(pn * K + k) * k_panel + j] = trans ? b[n * K + k] : b[k * N + n];
      }
  return p;
}

void packed_gemm(int isa, const float* a, int64_t M, int64_t K, const float* bp, int64_t N,
                 float* y, bool accumulate) {
  // Row blocks outside, panels inside: a block of A stays in L1 while the panels stream.
  static const panel_fn pairs[6] = {panel2_avx512<1>, panel2_avx512<2>, panel2_avx512<3>,
                                    panel2_avx512<4>, panel2_avx512<5>, panel2_avx512<6>};
  const int64_t panels = (N + k_panel - 1) / k_panel;
  const int64_t block = isa == 2 ? 6 : 4;
  for (int64_t m0 = 0; m0 < M; m0 += block) {
    const int64_t rows = std::min(block, M - m0);
    int64_t pn = 0;
    if (isa == 2) {
      for (; (pn + 2) * k_panel <= N; pn += 2)
        pairs[rows - 1](a + m0 * K, K, bp + pn * K * k_panel, K, y + m0 * N + pn * k_panel, N,
                        accumulate);
    }
    for (; pn < panels; ++pn)
      run_panel(isa, a + m0 * K, K, bp + pn * K * k_panel, y + m0 * N + pn * k_panel, N, rows,
                std::min(k_panel, N - pn * k_panel), accumulate);
  }
}

}  // namespace shoal::onnx_exec
