// f32 weights x f32 activations, 1 token x 4 output rows per tile, AArch64 Advanced SIMD, in the
// canonical float order (runtime/float_order.h): four q registers per row hold the 16 lanes, so
// a 4-row tile keeps 16 accumulators. The ragged end of k goes through zero-padded copies.
#include <arm_neon.h>

#include <cstring>

#include "kernels_arm/float-order-neon.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

// acc[r] += the 16 lanes of row r (at w + r * stride) times x: one fma per lane. The unroll
// pragmas let GCC 12 keep acc in registers (unrolled late, the arrays stay in memory).
template <int R>
[[gnu::always_inline]] inline void step(float32x4_t (&acc)[R][4], const float* w, size_t stride, const float* x) {
#pragma GCC unroll 4
  for (int c = 0; c < 4; c++) {
    const float32x4_t xv = vld1q_f32(x + 4 * c);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) acc[r][c] = vfmaq_f32(acc[r][c], vld1q_f32(w + r * stride + 4 * c), xv);
  }
}

template <int R>
void rows_tile(const float* w0, size_t k, const float* x, float* y) {
  float32x4_t acc[R][4];
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) acc[r][c] = vdupq_n_f32(0.0f);
  size_t j = 0;
  for (; j + 16 <= k; j += 16) step<R>(acc, w0 + j, k, x + j);
  if (j < k) {  // zero lanes add fma(0, 0, lane): the canonical tail
    float xt[16] = {};
    float wt[R][16] = {};
    std::memcpy(xt, x + j, (k - j) * 4);
    for (int r = 0; r < R; r++) std::memcpy(wt[r], w0 + r * k + j, (k - j) * 4);
    step<R>(acc, wt[0], 16, xt);
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++) y[r] = reduce16(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
}

}  // namespace

void lutra_f32_f32_gemm_1x4__neon(const WeightView& w, const float* x, float* y, size_t m,
                                  size_t n_begin, size_t n_end) {
  const float* wf = reinterpret_cast<const float*>(w.data);
  const size_t k = w.k;
  size_t r = n_begin;
  float out[4];
  for (; r + 4 <= n_end; r += 4) {
    for (size_t i = 0; i < m; i++) {  // tokens innermost: the 4 rows stay in cache
      rows_tile<4>(wf + r * k, k, x + i * k, out);
      for (int t = 0; t < 4; t++) y[i * w.n + r + t] = out[t];
    }
  }
  for (; r < n_end; r++)
    for (size_t i = 0; i < m; i++) rows_tile<1>(wf + r * k, k, x + i * k, &y[i * w.n + r]);
}

}  // namespace lutra
