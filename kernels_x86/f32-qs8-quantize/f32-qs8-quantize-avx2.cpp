// Per-token absmax int8 quantization, AVX2. Bit-identical to the scalar reference: the max is
// order-free, x*s is the same single multiply, vcvtps2dq rounds half to even under the default
// MXCSR like std::nearbyint, and the saturating packs are the clamp to [-128, 127].
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "runtime/kernel_variants.h"

namespace lutra {

float lutra_f32_qs8_quantize__avx2(const float* x, size_t k, int8_t* xq) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 vmax = _mm256_setzero_ps();
  size_t j = 0;
  for (; j + 8 <= k; j += 8) vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(x + j), abs_mask));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  float amax = _mm_cvtss_f32(m4);
  for (; j < k; j++) amax = std::max(amax, std::fabs(x[j]));

  const float s = 127.0f / std::max(amax, 1e-5f);
  const __m256 vs = _mm256_set1_ps(s);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // undo the packs' lane split
  j = 0;
  for (; j + 32 <= k; j += 32) {
    __m256i q0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j), vs));
    __m256i q1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8), vs));
    __m256i q2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 16), vs));
    __m256i q3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 24), vs));
    __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(xq + j), _mm256_permutevar8x32_epi32(b, order));
  }
  for (; j < k; j++) xq[j] = int8_t(std::clamp(std::nearbyint(x[j] * s), -128.0f, 127.0f));
  return s;
}

}  // namespace lutra
