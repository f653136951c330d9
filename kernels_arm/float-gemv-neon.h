// Float weights (n x k, row-major) x f32 activations, 1 token x 4 output rows per tile, AArch64
// Advanced SIMD, in the canonical float order (runtime/float_order.h): four q registers per row
// hold the 16 lanes, so a 4-row tile keeps 16 accumulators. One template for every weight type:
// Weights::T is the stored element and Weights::load16(p, w) widens 16 of them to floats
// exactly (f32: plain loads, f16: vcvt). The ragged end of k goes through zero-padded copies.
#pragma once

#include <arm_neon.h>

#include <cstring>

#include "kernels_arm/float-order-neon.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

// acc[r] += the 16 lanes of row r (at w + r * stride) times x: one fma per lane. The unroll
// pragmas let GCC 12 keep acc in registers (unrolled late, the arrays stay in memory).
template <class Weights, int R>
[[gnu::always_inline]] inline void gemv_step(float32x4_t (&acc)[R][4], const typename Weights::T* w, size_t stride,
                                             const float* x) {
  const float32x4x4_t xv = vld1q_f32_x4(x);
#pragma GCC unroll 4
  for (int r = 0; r < R; r++) {
    float32x4_t wv[4];
    Weights::load16(w + r * stride, wv);
    acc[r][0] = vfmaq_f32(acc[r][0], wv[0], xv.val[0]);
    acc[r][1] = vfmaq_f32(acc[r][1], wv[1], xv.val[1]);
    acc[r][2] = vfmaq_f32(acc[r][2], wv[2], xv.val[2]);
    acc[r][3] = vfmaq_f32(acc[r][3], wv[3], xv.val[3]);
  }
}

// y[r] = row r of the R rows at w0 (row stride k) times x. GCC's scheduler before register
// allocation is off here: it hoisted the loads of all rows and spilled accumulators.
template <class Weights, int R>
[[gnu::optimize("no-schedule-insns")]] void gemv_rows(const typename Weights::T* w0, size_t k, const float* x,
                                                      float* y) {
  float32x4_t acc[R][4];
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) acc[r][c] = vdupq_n_f32(0.0f);
  size_t j = 0;
  for (; j + 16 <= k; j += 16) gemv_step<Weights, R>(acc, w0 + j, k, x + j);
  if (j < k) {  // zero lanes add fma(0, 0, lane): the canonical tail
    float xt[16] = {};
    typename Weights::T wt[R][16] = {};
    std::memcpy(xt, x + j, (k - j) * 4);
    for (int r = 0; r < R; r++) std::memcpy(wt[r], w0 + r * k + j, (k - j) * sizeof wt[0][0]);
    gemv_step<Weights, R>(acc, wt[0], 16, xt);
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++) y[r] = reduce16(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
}

template <class Weights>
void float_gemm_1x4(const WeightView& w, const float* x, float* y, size_t m, size_t n_begin, size_t n_end) {
  const auto* wf = reinterpret_cast<const typename Weights::T*>(w.data);
  const size_t k = w.k;
  size_t r = n_begin;
  float out[4];
  for (; r + 4 <= n_end; r += 4) {
    for (size_t i = 0; i < m; i++) {  // tokens innermost: the 4 rows stay in cache
      gemv_rows<Weights, 4>(wf + r * k, k, x + i * k, out);
      for (int t = 0; t < 4; t++) y[i * w.n + r + t] = out[t];
    }
  }
  for (; r < n_end; r++)
    for (size_t i = 0; i < m; i++) gemv_rows<Weights, 1>(wf + r * k, k, x + i * k, &y[i * w.n + r]);
}

}  // namespace
}  // namespace lutra
