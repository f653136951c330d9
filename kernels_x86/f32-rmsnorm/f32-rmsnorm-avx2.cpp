// RMSNorm, AVX2 + FMA: the sum of squares in 8 lanes (masked tail), then y = x * inv * w with
// the same two multiplies as the reference.
#include <immintrin.h>

#include <cmath>

#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_f32_rmsnorm__avx2(const float* x, const float* w, float* y, size_t n, float eps) {
  __m256 acc = _mm256_setzero_ps();
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 v = _mm256_loadu_ps(x + j);
    acc = _mm256_fmadd_ps(v, v, acc);
  }
  __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n - j)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  if (j < n) {
    __m256 v = _mm256_maskload_ps(x + j, live);
    acc = _mm256_fmadd_ps(v, v, acc);
  }
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  const float inv = 1.0f / std::sqrt(_mm_cvtss_f32(s) / float(n) + eps);
  const __m256 vinv = _mm256_set1_ps(inv);
  for (j = 0; j + 8 <= n; j += 8)
    _mm256_storeu_ps(y + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j), vinv), _mm256_loadu_ps(w + j)));
  if (j < n) {
    __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_maskload_ps(x + j, live), vinv), _mm256_maskload_ps(w + j, live));
    _mm256_maskstore_ps(y + j, live, v);
  }
}

}  // namespace lutra
