// f32 weights x f32 activations, 1 token x 4 output rows per tile, AVX2 + FMA, in the canonical
// float order (runtime/float_order.h): two accumulators per row hold lanes 0-7 and 8-15.
// Ragged k is read with masked loads, so no scalar tail and no read past a row.
#include <immintrin.h>

#include "kernels_x86/float-order-avx2.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

template <int R>
void rows_tile(const float* w0, size_t k, const float* x, float* y) {
  __m256 lo[R], hi[R];
  for (int r = 0; r < R; r++) lo[r] = hi[r] = _mm256_setzero_ps();
  size_t j = 0;
  for (; j + 16 <= k; j += 16) {
    const __m256 x0 = _mm256_loadu_ps(x + j), x1 = _mm256_loadu_ps(x + j + 8);
    for (int r = 0; r < R; r++) {
      lo[r] = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + r * k + j), x0, lo[r]);
      hi[r] = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + r * k + j + 8), x1, hi[r]);
    }
  }
  if (j < k) {  // masked lanes add fma(0, 0, lane): the canonical tail
    const __m256i m0 = live_mask8(long(k - j)), m1 = live_mask8(long(k - j) - 8);
    const __m256 x0 = _mm256_maskload_ps(x + j, m0), x1 = _mm256_maskload_ps(x + j + 8, m1);
    for (int r = 0; r < R; r++) {
      lo[r] = _mm256_fmadd_ps(_mm256_maskload_ps(w0 + r * k + j, m0), x0, lo[r]);
      hi[r] = _mm256_fmadd_ps(_mm256_maskload_ps(w0 + r * k + j + 8, m1), x1, hi[r]);
    }
  }
  for (int r = 0; r < R; r++) y[r] = reduce16(lo[r], hi[r]);
}

}  // namespace

void lutra_f32_f32_gemm_1x4__avx2(const WeightView& w, const float* x, float* y, size_t m,
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
