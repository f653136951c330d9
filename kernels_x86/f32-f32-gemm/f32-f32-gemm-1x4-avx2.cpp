// f32 weights x f32 activations, 1 token x 4 output rows per tile, AVX2 + FMA.
// Ragged k is read with masked loads, so no scalar tail and no read past a row.
#include <immintrin.h>

#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int R>
void rows_tile(const float* w0, size_t k, const float* x, float* y) {
  __m256 acc[R];
  for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
  size_t j = 0;
  for (; j + 8 <= k; j += 8) {
    __m256 xv = _mm256_loadu_ps(x + j);
    for (int r = 0; r < R; r++) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + r * k + j), xv, acc[r]);
  }
  if (j < k) {
    __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(k - j)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 xv = _mm256_maskload_ps(x + j, live);
    for (int r = 0; r < R; r++)
      acc[r] = _mm256_fmadd_ps(_mm256_maskload_ps(w0 + r * k + j, live), xv, acc[r]);
  }
  for (int r = 0; r < R; r++) y[r] = hsum(acc[r]);
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
